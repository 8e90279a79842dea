// One presence in a session: the signaling client, the two peer connections and what we know
// about everyone else. The UI listens to a Call's events and calls its methods; it never sees
// the WebSocket or the SDP.

import { Emitter } from './emitter.js';
import { Negotiator } from './negotiation.js';
import { PROTOCOL_VERSION, SignalingClient, isFatalError } from './protocol.js';

/** @typedef {import('./protocol.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./protocol.js').TrackInfo} TrackInfo */
/** @typedef {import('./protocol.js').SessionInfo} SessionInfo */
/** @typedef {import('./protocol.js').MediaKind} MediaKind */
/** @typedef {import('./protocol.js').Role} Role */
/** @typedef {import('./protocol.js').ServerMessage} ServerMessage */
/** @typedef {import('./protocol.js').PcTarget} PcTarget */

/**
 * How a call ended.
 * - `left`: we pressed Leave.
 * - `error`: the server refused or ended us with an error message (`code` is set).
 * - `lost`: the connection dropped without an explanation.
 * @typedef {object} CallEnd
 * @property {'left' | 'error' | 'lost'} reason
 * @property {string} message shown to the user
 * @property {string} [code] the protocol error code, for `error`
 */

/**
 * @typedef {object} RemoteTrack
 * @property {string} participantId
 * @property {string} trackId
 * @property {MediaKind} kind
 */

/**
 * @typedef {object} CallEvents
 * @property {{participantId: string, role: Role, session: SessionInfo}} joined
 * @property {ParticipantInfo} participant_added someone is there (also for those already there at join)
 * @property {ParticipantInfo} participant_changed someone's mute state changed
 * @property {string} participant_removed the id of someone who left
 * @property {{participantId: string, stream: MediaStream}} stream a participant's media stream gained or lost a track
 * @property {{kind: MediaKind, muted: boolean}} local_mute our own mic/camera state
 * @property {string} notice something worth telling the user that does not end the call
 * @property {CallEnd} ended the call is over; no more events follow
 */

/**
 * @typedef {object} CallOptions
 * @property {string} signalingUrl
 * @property {string} sessionId
 * @property {string} name
 * @property {string} [hostKey]
 * @property {MediaStream | null} localStream our camera and microphone, if we got them
 */

/** @extends {Emitter<CallEvents>} */
export class Call extends Emitter {
  /** @param {CallOptions} options */
  constructor(options) {
    super();
    /** @private @readonly */
    this.options = options;
    /** @readonly */
    this.localStream = options.localStream;
    /** @private @readonly */
    this.signaling = new SignalingClient(options.signalingUrl);
    /** @private @readonly */
    this.negotiator = new Negotiator({
      sendPublishOffer: (sdp) => this.signaling.send({ type: 'publish_offer', sdp }),
      sendSubscribeAnswer: (sdp) => this.signaling.send({ type: 'subscribe_answer', sdp }),
      sendCandidate: (target, candidate) => this.signaling.send({ type: 'candidate', target, candidate }),
      onRemoteTrack: (participantId, track, stream) => this.remoteTrack(participantId, track, stream),
      onConnectionState: (target, state) => this.connectionState(target, state),
      onError: (target, what, error) => {
        console.error(`hearth: ${target} ${what} failed`, error);
        this.emit('notice', `Media setup failed (${target} ${what}): ${describe(error)}`);
      },
    });
    /** @type {string | null} our participant id, once joined */
    this.participantId = null;
    /** @type {Role | null} */
    this.role = null;
    /** @type {SessionInfo | null} */
    this.session = null;
    /** @type {Map<string, ParticipantInfo>} everyone else, by id */
    this.participants = new Map();
    /** @type {Map<string, TrackInfo>} every published track of the others, by track id */
    this.tracks = new Map();
    /** @type {Map<string, MediaStream>} the media we receive, by participant id */
    this.streams = new Map();
    /** @type {Map<string, RemoteTrack>} tracks that actually arrived, by track id */
    this.remoteTracks = new Map();
    /** @type {'connecting' | 'joined' | 'ended'} */
    this.status = 'connecting';
    /** @private @type {CallEnd | null} */
    this.end = null;
    /** @private @type {WeakSet<MediaStream>} remote streams we already watch */
    this.watched = new WeakSet();
  }

  /** The publish connection (read-only use, e.g. `getStats()`). */
  get publishPc() {
    return this.negotiator.publishPc;
  }

  /** The subscribe connection (read-only use, e.g. `getStats()`). */
  get subscribePc() {
    return this.negotiator.subscribePc;
  }

  /** Connects and joins. */
  start() {
    this.signaling.on('open', () => {
      const { sessionId, name, hostKey } = this.options;
      this.signaling.send({
        type: 'join',
        version: PROTOCOL_VERSION,
        session_id: sessionId,
        name,
        ...(hostKey ? { host_key: hostKey } : {}),
      });
    });
    this.signaling.on('message', (message) => this.handle(message));
    this.signaling.on('close', (info) => {
      if (info.byClient) return;
      this.finish({ reason: 'lost', message: 'The connection to the server was lost.' });
    });
    this.signaling.connect();
  }

  /**
   * Whether our own microphone or camera is off (or missing).
   * @param {MediaKind} kind
   * @returns {boolean}
   */
  isMuted(kind) {
    const track = this.localTrack(kind);
    return !track || !track.enabled;
  }

  /**
   * Whether we have that device at all.
   * @param {MediaKind} kind
   */
  hasDevice(kind) {
    return this.localTrack(kind) !== null;
  }

  /**
   * Turns our microphone or camera off or on, and tells the others.
   * @param {MediaKind} kind
   * @param {boolean} muted
   */
  setMuted(kind, muted) {
    const track = this.localTrack(kind);
    if (!track) return;
    track.enabled = !muted;
    if (this.status === 'joined') this.signaling.send({ type: 'mute', kind, muted });
    this.emit('local_mute', { kind, muted });
  }

  /** Leaves the session: tells the server, closes the connections, releases the devices. */
  leave() {
    if (this.status === 'ended') return;
    this.signaling.send({ type: 'leave' });
    this.finish({ reason: 'left', message: 'You left the session.' });
  }

  /**
   * @private
   * @param {ServerMessage} message
   */
  handle(message) {
    if (this.status === 'ended') return;
    switch (message.type) {
      case 'joined':
        this.joined(message);
        break;
      case 'participant_joined':
        if (message.participant.id === this.participantId) break;
        this.participants.set(message.participant.id, message.participant);
        this.emit('participant_added', message.participant);
        break;
      case 'participant_updated':
        // "Everyone" is told about a mute, us included; our own state is already shown.
        if (message.participant.id === this.participantId) break;
        this.participants.set(message.participant.id, message.participant);
        this.emit('participant_changed', message.participant);
        break;
      case 'participant_left':
        this.removeParticipant(message.participant_id);
        break;
      case 'track_published':
        this.tracks.set(message.track.id, message.track);
        break;
      case 'track_unpublished':
        this.tracks.delete(message.track_id);
        break;
      case 'publish_answer':
        this.negotiator.handlePublishAnswer(message.sdp);
        break;
      case 'subscribe_offer':
        this.negotiator.handleSubscribeOffer(message.sdp);
        break;
      case 'candidate':
        this.negotiator.handleCandidate(message.target, message.candidate);
        break;
      case 'pong':
        break;
      case 'error':
        this.serverError(message.code, message.message);
        break;
      default:
        console.warn('hearth: unknown server message', message);
    }
  }

  /**
   * @private
   * @param {import('./protocol.js').JoinedMessage} message
   */
  joined(message) {
    this.participantId = message.participant_id;
    this.role = message.role;
    this.session = message.session;
    this.status = 'joined';
    this.emit('joined', { participantId: message.participant_id, role: message.role, session: message.session });
    for (const participant of message.participants) {
      this.participants.set(participant.id, participant);
      this.emit('participant_added', participant);
    }
    for (const track of message.tracks) this.tracks.set(track.id, track);

    const stream = this.localStream;
    if (stream && stream.getTracks().length > 0) this.negotiator.publish(stream);
    // Tell the others about a device we do not have, so they show it as off rather than
    // waiting for media that never comes.
    for (const kind of /** @type {MediaKind[]} */ (['audio', 'video'])) {
      if (this.isMuted(kind)) this.signaling.send({ type: 'mute', kind, muted: true });
    }
  }

  /**
   * @private
   * @param {string} code
   * @param {string} text
   */
  serverError(code, text) {
    // Before `joined`, any error means we are not in the session (a wrong host key, for
    // example, is a non-fatal `bad_message`): end the call instead of waiting forever.
    if (isFatalError(code) || this.status === 'connecting') {
      this.finish({ reason: 'error', code, message: text || code });
      return;
    }
    console.warn(`hearth: server error ${code}: ${text}`);
    this.emit('notice', `Server: ${text || code}`);
  }

  /**
   * @private
   * @param {string} participantId
   */
  removeParticipant(participantId) {
    if (!this.participants.delete(participantId)) return;
    this.streams.delete(participantId);
    for (const [trackId, track] of this.remoteTracks) {
      if (track.participantId === participantId) this.remoteTracks.delete(trackId);
    }
    for (const [trackId, track] of this.tracks) {
      if (track.participant_id === participantId) this.tracks.delete(trackId);
    }
    this.emit('participant_removed', participantId);
  }

  /**
   * @private
   * @param {string} participantId
   * @param {MediaStreamTrack} track
   * @param {MediaStream} stream
   */
  remoteTrack(participantId, track, stream) {
    const kind = track.kind === 'audio' ? 'audio' : 'video';
    this.remoteTracks.set(track.id, { participantId, trackId: track.id, kind });
    this.streams.set(participantId, stream);
    if (!this.watched.has(stream)) {
      this.watched.add(stream);
      // The browser removes a track from its stream when the server's next offer drops it.
      stream.addEventListener('removetrack', (event) => {
        this.remoteTracks.delete(event.track.id);
        if (this.streams.get(participantId) === stream) this.emit('stream', { participantId, stream });
      });
    }
    this.emit('stream', { participantId, stream });
  }

  /**
   * @private
   * @param {PcTarget} target
   * @param {RTCPeerConnectionState} state
   */
  connectionState(target, state) {
    if (state === 'failed') {
      this.emit('notice', target === 'publish'
        ? 'Your camera and microphone could not reach the server.'
        : 'The media of the others could not reach you.');
    }
  }

  /**
   * @private
   * @param {MediaKind} kind
   * @returns {MediaStreamTrack | null}
   */
  localTrack(kind) {
    const stream = this.localStream;
    if (!stream) return null;
    return (kind === 'audio' ? stream.getAudioTracks() : stream.getVideoTracks())[0] ?? null;
  }

  /**
   * @private
   * @param {CallEnd} end
   */
  finish(end) {
    if (this.status === 'ended') return;
    this.status = 'ended';
    this.end = end;
    this.negotiator.close();
    this.signaling.close();
    for (const track of this.localStream?.getTracks() ?? []) track.stop();
    this.emit('ended', end);
  }
}

/**
 * @param {unknown} error
 * @returns {string}
 */
function describe(error) {
  return error instanceof Error ? error.message : String(error);
}
