// The two peer connections of a participant (docs/protocol.md, "Media"):
//   publish   - we offer; carries our microphone and camera, sendonly.
//   subscribe - the server offers; carries everyone else's tracks, we only answer.
// Because each connection has exactly one offering side, there is no glare to resolve. This
// module knows neither the DOM nor the WebSocket: it talks through the `NegotiationHooks`.

/** @typedef {import('./protocol.js').PcTarget} PcTarget */
/** @typedef {import('./protocol.js').IceCandidate} IceCandidate */

/**
 * @typedef {object} NegotiationHooks
 * @property {(sdp: string) => void} sendPublishOffer
 * @property {(sdp: string) => void} sendSubscribeAnswer
 * @property {(target: PcTarget, candidate: IceCandidate) => void} sendCandidate
 * @property {(participantId: string, track: MediaStreamTrack, stream: MediaStream) => void} onRemoteTrack
 *   a track of another participant arrived on the subscribe connection
 * @property {(target: PcTarget, state: RTCPeerConnectionState) => void} onConnectionState
 * @property {(target: PcTarget, what: string, error: unknown) => void} onError
 *   a negotiation step failed; the connection may be unusable
 */

/**
 * Runs async steps strictly one after another, in the order they were queued. Offers,
 * answers and candidates for one connection must be applied in message order, and each
 * `setRemoteDescription` must finish before the next one starts.
 */
class SerialQueue {
  constructor() {
    /** @private @type {Promise<void>} */
    this.tail = Promise.resolve();
  }

  /**
   * @param {() => Promise<void>} step
   * @param {(error: unknown) => void} onError
   */
  run(step, onError) {
    this.tail = this.tail.then(step).catch(onError);
  }
}

/**
 * One peer connection plus the bookkeeping that trickle ICE needs on both directions.
 */
class Leg {
  /**
   * @param {PcTarget} target
   * @param {RTCConfiguration} config
   * @param {NegotiationHooks} hooks
   */
  constructor(target, config, hooks) {
    /** @readonly */
    this.target = target;
    /** @readonly */
    this.pc = new RTCPeerConnection(config);
    /** @readonly */
    this.queue = new SerialQueue();
    /** @private @readonly */
    this.hooks = hooks;
    /**
     * Remote candidates that arrived before the remote description: the browser refuses
     * them until it knows the remote ICE credentials.
     * @private @type {IceCandidate[]}
     */
    this.pendingRemote = [];
    /**
     * Our candidates gathered before the SDP that introduces them was sent: the server
     * cannot use a candidate for a connection it has not heard of yet.
     * @private @type {IceCandidate[] | null}
     */
    this.pendingLocal = [];

    this.pc.addEventListener('icecandidate', (event) => {
      // A null candidate (or an empty string) is end-of-candidates, which the protocol
      // allows us to leave out.
      if (!event.candidate || !event.candidate.candidate) return;
      const candidate = event.candidate.toJSON();
      const init = {
        candidate: candidate.candidate ?? '',
        sdpMid: candidate.sdpMid ?? null,
        sdpMLineIndex: candidate.sdpMLineIndex ?? null,
        usernameFragment: candidate.usernameFragment ?? null,
      };
      if (this.pendingLocal) this.pendingLocal.push(init);
      else hooks.sendCandidate(target, init);
    });
    this.pc.addEventListener('connectionstatechange', () => {
      hooks.onConnectionState(target, this.pc.connectionState);
    });
  }

  /** Call right after our SDP went out: candidates may follow it now. */
  localDescriptionSent() {
    const pending = this.pendingLocal;
    this.pendingLocal = null;
    for (const candidate of pending ?? []) this.hooks.sendCandidate(this.target, candidate);
  }

  /**
   * @param {RTCSessionDescriptionInit} description
   */
  async setRemote(description) {
    await this.pc.setRemoteDescription(description);
    const pending = this.pendingRemote;
    this.pendingRemote = [];
    for (const candidate of pending) await this.addRemoteCandidate(candidate);
  }

  /**
   * Queues a remote candidate behind the descriptions already queued, holding it back if
   * no remote description is set yet.
   * @param {IceCandidate} candidate
   */
  remoteCandidate(candidate) {
    this.queue.run(async () => {
      if (!candidate.candidate) return; // end-of-candidates: nothing to do
      if (!this.pc.remoteDescription) {
        this.pendingRemote.push(candidate);
        return;
      }
      await this.addRemoteCandidate(candidate);
    }, (error) => this.hooks.onError(this.target, 'candidate', error));
  }

  /**
   * @private
   * @param {IceCandidate} candidate
   */
  async addRemoteCandidate(candidate) {
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (error) {
      // One unusable candidate (e.g. an address family we lack) is not a failure of the
      // connection; the others may well work.
      console.warn(`hearth: ${this.target} candidate refused`, candidate.candidate, error);
    }
  }

  close() {
    this.pc.close();
  }
}

/** Both connections of one participant. */
export class Negotiator {
  /**
   * @param {NegotiationHooks} hooks
   * @param {RTCConfiguration} [config]
   */
  constructor(hooks, config = {}) {
    /** @private @readonly */
    this.hooks = hooks;
    /** @private @readonly */
    this.config = config;
    /** @private @type {Leg | null} */
    this.publishLeg = null;
    /** @private @type {Leg | null} */
    this.subscribeLeg = null;
  }

  /** The publish connection, once `publish` was called. @returns {RTCPeerConnection | null} */
  get publishPc() {
    return this.publishLeg?.pc ?? null;
  }

  /** The subscribe connection, once the first offer arrived. @returns {RTCPeerConnection | null} */
  get subscribePc() {
    return this.subscribeLeg?.pc ?? null;
  }

  /**
   * Starts sending our tracks: one sendonly transceiver per track, then our offer.
   * @param {MediaStream} stream
   */
  publish(stream) {
    if (this.publishLeg) throw new Error('already publishing');
    const leg = new Leg('publish', this.config, this.hooks);
    this.publishLeg = leg;
    // Audio first, then video: a stable m-line order makes SDP dumps easier to compare.
    const tracks = [...stream.getAudioTracks(), ...stream.getVideoTracks()];
    for (const track of tracks) {
      leg.pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
    }
    leg.queue.run(async () => {
      await leg.pc.setLocalDescription(await leg.pc.createOffer());
      const sdp = leg.pc.localDescription?.sdp;
      if (!sdp) throw new Error('no local description after setLocalDescription');
      this.hooks.sendPublishOffer(sdp);
      leg.localDescriptionSent();
    }, (error) => this.hooks.onError('publish', 'offer', error));
  }

  /** @param {string} sdp the server's answer to our publish offer */
  handlePublishAnswer(sdp) {
    const leg = this.publishLeg;
    if (!leg) {
      console.warn('hearth: publish_answer without a publish connection');
      return;
    }
    leg.queue.run(
      () => leg.setRemote({ type: 'answer', sdp }),
      (error) => this.hooks.onError('publish', 'answer', error),
    );
  }

  /** @param {string} sdp a server offer for the subscribe connection */
  handleSubscribeOffer(sdp) {
    const leg = this.ensureSubscribeLeg();
    leg.queue.run(async () => {
      await leg.setRemote({ type: 'offer', sdp });
      await leg.pc.setLocalDescription(await leg.pc.createAnswer());
      const answer = leg.pc.localDescription?.sdp;
      if (!answer) throw new Error('no local description after setLocalDescription');
      this.hooks.sendSubscribeAnswer(answer);
      leg.localDescriptionSent();
    }, (error) => this.hooks.onError('subscribe', 'offer', error));
  }

  /**
   * @param {PcTarget} target
   * @param {IceCandidate} candidate a server candidate for that connection
   */
  handleCandidate(target, candidate) {
    const leg = target === 'publish' ? this.publishLeg : this.ensureSubscribeLeg();
    if (!leg) {
      console.warn('hearth: publish candidate before publishing; ignored');
      return;
    }
    leg.remoteCandidate(candidate);
  }

  /** Closes both connections; the negotiator is unusable afterwards. */
  close() {
    this.publishLeg?.close();
    this.subscribeLeg?.close();
  }

  /**
   * @private
   * @returns {Leg}
   */
  ensureSubscribeLeg() {
    if (this.subscribeLeg) return this.subscribeLeg;
    const leg = new Leg('subscribe', this.config, this.hooks);
    leg.pc.addEventListener('track', (event) => {
      // The server offers each track with `msid:<participant_id> <track_id>`, so the stream
      // id names the publisher and the track id is the one from `track_published`.
      const stream = event.streams[0];
      if (!stream) {
        console.warn('hearth: remote track without a stream; cannot tell whose it is', event.track.id);
        return;
      }
      this.hooks.onRemoteTrack(stream.id, event.track, stream);
    });
    this.subscribeLeg = leg;
    return leg;
  }
}
