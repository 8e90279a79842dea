// The two peer connections of a participant (docs/protocol.md, "Media"):
//   publish   - we offer; carries our microphone, camera and screen, sendonly.
//   subscribe - the server offers; carries everyone else's tracks, we only answer.
// Because each connection has exactly one offering side, there is no glare to resolve. This
// module knows neither the DOM nor the WebSocket: it talks through the `NegotiationHooks`.

import { watchIce } from './ice-watch.js';

/** @typedef {import('./protocol.js').PcTarget} PcTarget */
/** @typedef {import('./protocol.js').IceCandidate} IceCandidate */
/** @typedef {import('./protocol.js').TrackSource} TrackSource */

/**
 * The camera goes out in three layers (docs/protocol.md, "Simulcast"), smallest first: the
 * server forwards each viewer the one its link and tile size call for, so a weak link or a
 * thumbnail costs a viewer little, and nobody else loses quality for it. The browser drops
 * layers its own uplink cannot carry, top first. A screen share stays one stream: its text
 * must stay legible, and it rarely moves.
 * @type {RTCRtpEncodingParameters[]}
 */
const SIMULCAST = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_200_000 },
];

/**
 * One track to send, and what it is (the server tells subscribers).
 * @typedef {object} Outgoing
 * @property {MediaStreamTrack} track
 * @property {TrackSource} source
 */

/**
 * @typedef {object} NegotiationHooks
 * @property {(sdp: string, sources: Record<string, TrackSource>) => boolean} sendPublishOffer
 *   `sources` names what each sent track is, by MediaStreamTrack id (the msid in the SDP);
 *   false when there was no socket to send it on
 * @property {(sdp: string) => void} sendSubscribeAnswer
 * @property {(target: PcTarget, candidate: IceCandidate) => boolean} sendCandidate false when
 *   there was no socket to send it on
 * @property {(participantId: string, track: MediaStreamTrack, stream: MediaStream) => void} onRemoteTrack
 *   a track of another participant arrived on the subscribe connection
 * @property {(target: PcTarget, state: RTCPeerConnectionState) => void} onConnectionState
 * @property {() => void} requestSubscribeRestart asks the server to restart ICE on the subscribe
 *   connection (it offers; we cannot restart it ourselves)
 * @property {(target: PcTarget, what: string, error: unknown) => void} onError
 *   a negotiation step failed; the connection may be unusable
 */

/**
 * How long a publish offer waits for its answer before it is given up (rolled back), so one
 * lost answer cannot stall every later change of what we send.
 */
const PUBLISH_ANSWER_MS = 20_000;

/**
 * Most of our candidates kept per connection while the socket is down. A connection gathers a
 * handful; the bound only keeps a long outage from growing the list without end.
 */
const MAX_UNSENT_CANDIDATES = 64;

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
    /**
     * Our candidates that found no socket (it was down): sent again once we resumed, as the
     * connection may still need them (the socket broke while ICE was checking).
     * @private @type {IceCandidate[]}
     */
    this.unsent = [];

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
      else this.sendCandidate(init);
    });
    this.pc.addEventListener('connectionstatechange', () => {
      hooks.onConnectionState(target, this.pc.connectionState);
    });
    /** @type {() => void} stops the ICE watch; set by the negotiator */
    this.unwatch = () => {};
  }

  /** Call right after our SDP went out: candidates may follow it now. */
  localDescriptionSent() {
    const pending = this.pendingLocal;
    this.pendingLocal = null;
    for (const candidate of pending ?? []) this.sendCandidate(candidate);
  }

  /**
   * After a resume: sends the candidates that found no socket, or holds them until our next
   * SDP went out when one is about to be offered again (`holdCandidates`).
   */
  resendCandidates() {
    const unsent = this.unsent;
    this.unsent = [];
    if (this.pendingLocal) this.pendingLocal.push(...unsent);
    else for (const candidate of unsent) this.sendCandidate(candidate);
  }

  /** Holds our candidates until `localDescriptionSent`: an offer is about to be made again. */
  holdCandidates() {
    this.pendingLocal ??= [];
  }

  /**
   * @private
   * @param {IceCandidate} candidate
   */
  sendCandidate(candidate) {
    if (this.hooks.sendCandidate(this.target, candidate)) return;
    if (this.unsent.length < MAX_UNSENT_CANDIDATES) this.unsent.push(candidate);
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
    this.unwatch();
    this.pc.close();
  }
}

/**
 * The BUNDLE tag of a session description: the mid of the m-section whose transport the
 * others share (the first one of the group).
 * @param {string | undefined} sdp
 * @returns {string | null}
 */
function bundleTag(sdp) {
  const match = /^a=group:BUNDLE (\S+)/m.exec(sdp ?? '');
  return match ? match[1] : null;
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
    /** @private @type {Map<string, RTCRtpTransceiver>} our sending transceivers, by track id */
    this.transceivers = new Map();
    /** @private @type {Record<string, TrackSource>} what each sent track is, for the next offer */
    this.sources = {};
    /** @private an offer is queued and has not been created yet */
    this.offerQueued = false;
    /** @private @type {((sdp: string | null) => void) | null} resolves the outstanding offer */
    this.answerWaiter = null;
    /**
     * @private the last publish offer found no socket, or was given up without an answer: after
     * a resume it must be made again, or the change it carried (a screen share) never lands
     */
    this.offerLost = false;
  }

  /** The publish connection, once something was published. @returns {RTCPeerConnection | null} */
  get publishPc() {
    return this.publishLeg?.pc ?? null;
  }

  /** The subscribe connection, once the first offer arrived. @returns {RTCPeerConnection | null} */
  get subscribePc() {
    return this.subscribeLeg?.pc ?? null;
  }

  /**
   * Makes the publish connection send exactly these tracks, then offers the change. A track
   * that is no longer listed has its transceiver stopped (its m-line is rejected, so the server
   * unpublishes it), except the one carrying the shared transport, which goes inactive; a new
   * track gets a sendonly transceiver of its own, so the msid in the SDP is its own id. Calling
   * this with nothing before anything was published does nothing.
   * @param {Outgoing[]} outgoing
   */
  setOutgoing(outgoing) {
    if (!this.publishLeg && outgoing.length === 0) return;
    const leg = this.publishLeg ?? this.newPublishLeg();
    this.publishLeg = leg;
    const wanted = new Map(outgoing.map((entry) => [entry.track.id, entry]));
    let changed = false;
    const tag = bundleTag(leg.pc.localDescription?.sdp);
    for (const [trackId, transceiver] of this.transceivers) {
      if (wanted.has(trackId)) continue;
      this.transceivers.delete(trackId);
      changed = true;
      if (tag !== null && transceiver.mid === tag) {
        // This m-section carries the transport every other one shares (the BUNDLE tag).
        // Rejecting it makes the browser open a new ICE/DTLS transport for whatever is
        // published next, which the server cannot follow. Keep it, idle, for good; new tracks
        // get new transceivers (new SSRC and msid, so the server sees a new track).
        transceiver.direction = 'inactive';
        transceiver.sender.replaceTrack(null).catch((error) => this.hooks.onError('publish', 'replaceTrack', error));
      } else {
        transceiver.stop();
      }
    }
    // Audio first, then video: a stable m-line order makes SDP dumps easier to compare.
    const ordered = [...outgoing].sort((a, b) => Number(a.track.kind === 'video') - Number(b.track.kind === 'video'));
    for (const { track, source } of ordered) {
      if (this.transceivers.has(track.id)) continue;
      const stream = new MediaStream([track]);
      /** @type {RTCRtpTransceiverInit} */
      const init = { direction: 'sendonly', streams: [stream] };
      if (source === 'camera') init.sendEncodings = SIMULCAST;
      this.transceivers.set(track.id, leg.pc.addTransceiver(track, init));
      changed = true;
    }
    this.sources = Object.fromEntries(outgoing.map(({ track, source }) => [track.id, source]));
    if (changed) this.offerPublish(leg);
  }

  /**
   * Queues one publish offer. Offers wait for the previous answer (a new offer while one is
   * outstanding would make the answer apply to the wrong description), and changes made
   * meanwhile are folded into the next offer rather than each sending its own.
   * @private
   * @param {Leg} leg
   */
  offerPublish(leg) {
    if (this.offerQueued) return;
    this.offerQueued = true;
    leg.queue.run(async () => {
      this.offerQueued = false;
      await leg.pc.setLocalDescription(await leg.pc.createOffer());
      const sdp = leg.pc.localDescription?.sdp;
      if (!sdp) throw new Error('no local description after setLocalDescription');
      /** @type {ReturnType<typeof setTimeout> | undefined} */
      let timer;
      /** @type {Promise<string | null>} */
      const answered = new Promise((resolve) => {
        this.answerWaiter = resolve;
        timer = setTimeout(() => {
          console.warn('hearth: no publish_answer in time; giving the offer up');
          this.offerLost = true;
          this.publishRefused();
        }, PUBLISH_ANSWER_MS);
      });
      this.offerLost = !this.hooks.sendPublishOffer(sdp, { ...this.sources });
      leg.localDescriptionSent();
      const answer = await answered;
      clearTimeout(timer);
      if (leg.pc.signalingState === 'closed') return;
      if (answer === null) {
        // Refused: go back to the last agreed state; the next change offers again.
        await leg.pc.setLocalDescription({ type: 'rollback' });
        return;
      }
      await leg.setRemote({ type: 'answer', sdp: answer });
    }, (error) => this.hooks.onError('publish', 'offer', error));
  }

  /** @param {string} sdp the server's answer to our publish offer */
  handlePublishAnswer(sdp) {
    const waiter = this.answerWaiter;
    this.answerWaiter = null;
    if (!waiter) {
      console.warn('hearth: publish_answer without an offer outstanding');
      return;
    }
    waiter(sdp);
  }

  /**
   * The server refused our last publish offer (`invalid_sdp`, `forbidden`): stop waiting for
   * its answer. Does nothing when no offer is outstanding.
   */
  publishRefused() {
    const waiter = this.answerWaiter;
    this.answerWaiter = null;
    waiter?.(null);
  }

  /**
   * The signaling socket was lost and we resumed as the same participant on a new one. The
   * connections are still up; what may be missing is what went to the dead socket: our
   * candidates, and a publish offer or its answer. Such an offer is rolled back and made again
   * (the server takes it as a renegotiation). A lost subscribe answer needs nothing: the server
   * offers again on resume.
   */
  resumed() {
    const leg = this.publishLeg;
    if (leg && (this.answerWaiter || this.offerLost)) {
      this.offerLost = false;
      // Its candidates follow the new offer, which is the first the server may hear of them.
      leg.holdCandidates();
      this.publishRefused();
      this.offerPublish(leg);
    }
    leg?.resendCandidates();
    this.subscribeLeg?.resendCandidates();
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

  /**
   * Sends or pauses each simulcast layer of one of our tracks, as the server asks: layers
   * nobody receives cost our uplink and encoder for nothing. No renegotiation: only the
   * encodings' `active` flags change.
   * @param {string} trackId our MediaStreamTrack id
   * @param {boolean[]} active one flag per layer, smallest first
   */
  setLayers(trackId, active) {
    const sender = this.transceivers.get(trackId)?.sender;
    if (!sender) return;
    const parameters = sender.getParameters();
    if (parameters.encodings.length !== active.length) return;
    let changed = false;
    parameters.encodings.forEach((encoding, i) => {
      if (encoding.active !== active[i]) changed = true;
      encoding.active = active[i];
    });
    if (!changed) return;
    sender.setParameters(parameters).catch((error) => this.hooks.onError('publish', 'setParameters', error));
  }

  /** Closes both connections; the negotiator is unusable afterwards. */
  close() {
    this.publishRefused();
    this.publishLeg?.close();
    this.subscribeLeg?.close();
  }

  /**
   * The publish connection, restarting ICE by itself: a new offer with new credentials.
   * @private
   * @returns {Leg}
   */
  newPublishLeg() {
    const leg = new Leg('publish', this.config, this.hooks);
    leg.unwatch = watchIce(leg.pc, () => {
      leg.pc.restartIce();
      this.offerPublish(leg);
    });
    return leg;
  }

  /**
   * @private
   * @returns {Leg}
   */
  ensureSubscribeLeg() {
    if (this.subscribeLeg) return this.subscribeLeg;
    const leg = new Leg('subscribe', this.config, this.hooks);
    leg.unwatch = watchIce(leg.pc, () => this.hooks.requestSubscribeRestart());
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
