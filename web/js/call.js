// One presence in a session: the signaling client, the two peer connections, what we publish
// and what we know about everyone else. The UI listens to a Call's events and calls its
// methods; it never sees the WebSocket or the SDP. The server decides every permission: the
// Call follows what it is told (our role, the shape) and the UI only hides what would fail.

import { Emitter } from './emitter.js';
import { openLocalMedia, openScreen, screenProblem } from './media.js';
import { Negotiator } from './negotiation.js';
import { canPublish } from './permissions.js';
import { PROTOCOL_VERSION, SignalingClient, isFatalError } from './protocol.js';
import { Publisher } from './publisher.js';
import { RemoteMedia } from './remote.js';
import { Requests } from './requests.js';

/** @typedef {import('./protocol.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./protocol.js').SessionInfo} SessionInfo */
/** @typedef {import('./protocol.js').SessionSettings} SessionSettings */
/** @typedef {import('./protocol.js').ChatMessage} ChatMessage */
/** @typedef {import('./protocol.js').WaitingInfo} WaitingInfo */
/** @typedef {import('./protocol.js').RecordingStatus} RecordingStatus */
/** @typedef {import('./protocol.js').MediaKind} MediaKind */
/** @typedef {import('./protocol.js').Role} Role */
/** @typedef {import('./protocol.js').ServerMessage} ServerMessage */
/** @typedef {import('./protocol.js').ClientMessage} ClientMessage */

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
 * Who speaks, as the server last said (ourselves included).
 * @typedef {object} Speakers
 * @property {string | null} active who holds the floor: the one speaking, or the last to speak
 * @property {string[]} speaking everyone speaking right now, loudest first
 */

/**
 * @typedef {object} CallEvents
 * @property {{participantId: string, role: Role, session: SessionInfo, resumeToken: string}} joined
 * @property {SessionInfo} waiting we are in the waiting room until a host admits us
 * @property {ParticipantInfo} self our own role, hand or mute state changed (as the server says)
 * @property {ParticipantInfo} participant_added someone is there (also for those already there at join)
 * @property {ParticipantInfo} participant_changed someone's role, hand or mute state changed
 * @property {string} participant_removed the id of someone who left
 * @property {string} media the id of a participant whose received media changed
 * @property {undefined} local what we publish, or its on/off state, changed
 * @property {SessionSettings} settings the session's settings changed
 * @property {ChatMessage} chat a chat message arrived (ours too, as the server stamped it)
 * @property {WaitingInfo[]} waiting_list who waits to be admitted (hosts and co-hosts)
 * @property {string | null} invite the invite link changed (hosts and co-hosts)
 * @property {{recording: RecordingStatus | null, error: string | null}} recording recording
 *   started or stopped; `error` says why it stopped by itself (hosts and co-hosts only)
 * @property {Speakers} speakers who speaks or holds the floor changed
 * @property {string} notice something worth telling the user that does not end the call
 * @property {{code: string, message: string}} refused the server refused something we asked (not fatal)
 * @property {CallEnd} ended the call is over; no more events follow
 */

/**
 * @typedef {object} CallOptions
 * @property {string} signalingUrl
 * @property {string} sessionId
 * @property {string} name
 * @property {string} [hostKey] the `k` of a host link
 * @property {string} [inviteKey] the `i` of an invite link
 * @property {string} [resumeToken] from an earlier `joined` in this session
 * @property {import('./publisher.js').PublisherDeps['openMedia']} [openMedia]
 */

/** Most chat messages kept in memory (the server keeps 200 for late joiners). */
const CHAT_KEPT = 1000;

/** @type {Record<MediaKind, string>} */
const DEVICE = { audio: 'microphone', video: 'camera' };

/** @extends {Emitter<CallEvents>} */
export class Call extends Emitter {
  /** @param {CallOptions} options */
  constructor(options) {
    super();
    /** @private @readonly */
    this.options = options;
    /** @private @readonly */
    this.signaling = new SignalingClient(options.signalingUrl);
    /** @private @readonly */
    this.negotiator = new Negotiator({
      sendPublishOffer: (sdp, sources) => this.send({ type: 'publish_offer', sdp, sources }),
      sendSubscribeAnswer: (sdp) => this.send({ type: 'subscribe_answer', sdp }),
      sendCandidate: (target, candidate) => this.send({ type: 'candidate', target, candidate }),
      onRemoteTrack: (participantId, track, stream) => this.emit('media', this.remote.arrive(participantId, track, stream)),
      onConnectionState: (target, state) => {
        if (state !== 'failed') return;
        this.emit('notice', target === 'publish'
          ? 'Your camera and microphone could not reach the server.'
          : 'The media of the others could not reach you.');
      },
      onError: (target, what, error) => {
        console.error(`hearth: ${target} ${what} failed`, error);
        this.emit('notice', `Media setup failed (${target} ${what}): ${describe(error)}`);
      },
    });
    /** @readonly what we send */
    this.publisher = new Publisher({
      setOutgoing: (outgoing) => this.negotiator.setOutgoing(outgoing),
      openMedia: options.openMedia ?? openLocalMedia,
      openScreen,
      screenProblem,
    });
    /** @readonly what we receive */
    this.remote = new RemoteMedia((participantId) => this.emit('media', participantId));
    /** @readonly chat, hand and host actions */
    this.requests = new Requests((message) => this.send(message));
    /** @type {string | null} our participant id, once joined */
    this.participantId = null;
    /** @type {ParticipantInfo | null} ourselves, as the server last described us */
    this.self = null;
    /** @type {SessionInfo | null} */
    this.session = null;
    /** @type {SessionSettings} */
    this.settings = { shape: 'room', locked: false, waiting_room: false, max_participants: 0 };
    /** @type {Map<string, ParticipantInfo>} everyone else, by id, in join order */
    this.participants = new Map();
    /** @type {ChatMessage[]} oldest first */
    this.chat = [];
    /** @type {WaitingInfo[]} hosts and co-hosts only */
    this.waiting = [];
    /** @type {string | null} hosts and co-hosts only */
    this.inviteUrl = null;
    /** @type {RecordingStatus | null} the recording in progress, if the session is being recorded */
    this.recording = null;
    /** @type {Speakers} nobody until the server says otherwise */
    this.speakers = { active: null, speaking: [] };
    /** @type {'connecting' | 'waiting' | 'joined' | 'ended'} */
    this.status = 'connecting';
    /** @type {CallEnd | null} */
    this.end = null;

    this.publisher.on('changed', () => this.emit('local', undefined));
    this.publisher.on('notice', (text) => this.emit('notice', text));
    this.publisher.on('started', () => this.tellDeviceState());
  }

  /** @returns {Role | null} */
  get role() {
    return this.self?.role ?? null;
  }

  /** The host key we joined with, if we hold the host link (it opens the recordings). */
  get hostKey() {
    return this.options.hostKey ?? null;
  }

  /** The session's id, as given to the constructor (known before `joined`). */
  get sessionId() {
    return this.options.sessionId;
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
      const { sessionId, name, hostKey, inviteKey, resumeToken } = this.options;
      this.send({
        type: 'join',
        version: PROTOCOL_VERSION,
        session_id: sessionId,
        name,
        ...(hostKey ? { host_key: hostKey } : {}),
        ...(inviteKey ? { invite_key: inviteKey } : {}),
        ...(resumeToken ? { resume_token: resumeToken } : {}),
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
   * Turns our microphone or camera off or on, and tells the others.
   * @param {MediaKind} kind
   * @param {boolean} muted
   */
  setMuted(kind, muted) {
    if (this.publisher.setMuted(kind, muted)) this.send({ type: 'mute', kind, muted });
  }

  /** Leaves the session: tells the server, closes the connections, releases the devices. */
  leave() {
    if (this.status === 'ended') return;
    this.send({ type: 'leave' });
    this.finish({ reason: 'left', message: 'You left the session.' });
  }

  /**
   * @private
   * @param {ClientMessage} message
   */
  send(message) {
    return this.signaling.send(message);
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
      case 'waiting':
        this.status = 'waiting';
        this.session = message.session;
        this.emit('waiting', message.session);
        break;
      case 'participant_joined':
        if (message.participant.id === this.participantId) break;
        this.participants.set(message.participant.id, message.participant);
        this.emit('participant_added', message.participant);
        break;
      case 'participant_updated':
        if (message.participant.id === this.participantId) {
          this.updateSelf(message.participant);
        } else {
          this.participants.set(message.participant.id, message.participant);
          this.emit('participant_changed', message.participant);
        }
        break;
      case 'participant_left':
        this.participantLeft(message.participant_id);
        break;
      case 'track_published': {
        if (message.track.participant_id === this.participantId) break;
        const changed = this.remote.announce(message.track);
        if (changed) this.emit('media', changed);
        break;
      }
      case 'track_unpublished': {
        const changed = this.remote.unannounce(message.track_id);
        if (changed) this.emit('media', changed);
        break;
      }
      case 'publish_answer':
        this.negotiator.handlePublishAnswer(message.sdp);
        break;
      case 'subscribe_offer':
        this.negotiator.handleSubscribeOffer(message.sdp);
        break;
      case 'candidate':
        this.negotiator.handleCandidate(message.target, message.candidate);
        break;
      case 'chat':
        this.chat.push(message.message);
        if (this.chat.length > CHAT_KEPT) this.chat.splice(0, this.chat.length - CHAT_KEPT);
        this.emit('chat', message.message);
        break;
      case 'settings_updated':
        this.settings = message.settings;
        this.emit('settings', message.settings);
        this.followPermissions();
        break;
      case 'waiting_updated':
        this.waiting = message.waiting;
        this.emit('waiting_list', message.waiting);
        break;
      case 'invite_rotated':
        this.inviteUrl = message.invite_url;
        this.emit('invite', message.invite_url);
        break;
      case 'recording_updated':
        this.recording = message.recording;
        this.emit('recording', { recording: message.recording, error: message.error ?? null });
        break;
      case 'active_speaker':
        this.speakers = { active: message.participant_id, speaking: message.speaking };
        this.emit('speakers', this.speakers);
        break;
      case 'muted_by_host':
        // The server already drops what we send of this kind; stop sending it at all, and say why.
        this.publisher.setMuted(message.kind, true);
        this.emit('notice', `A host turned off your ${DEVICE[message.kind]}.`);
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
    this.self = {
      id: message.participant_id,
      name: this.options.name.trim(),
      role: message.role,
      audio_muted: false,
      video_muted: false,
      hand_raised: false,
    };
    this.session = message.session;
    this.settings = message.settings;
    this.chat = [...(message.chat ?? [])];
    this.waiting = message.waiting ?? [];
    this.inviteUrl = message.invite_url ?? null;
    this.recording = message.recording ?? null;
    this.status = 'joined';
    this.emit('joined', {
      participantId: message.participant_id,
      role: message.role,
      session: message.session,
      resumeToken: message.resume_token,
    });
    for (const participant of message.participants) {
      this.participants.set(participant.id, participant);
      this.emit('participant_added', participant);
    }
    for (const track of message.tracks) this.remote.announce(track);
    this.followPermissions();
  }

  /**
   * The server's word about us: role, hand, mutes. Mutes are not applied to our tracks here
   * (a host's mute comes as `muted_by_host`, and an echo of our own older toggle must not undo
   * a newer one); the role may start or stop our publishing.
   * @private
   * @param {ParticipantInfo} info
   */
  updateSelf(info) {
    const before = this.self;
    this.self = info;
    if (before && before.role !== info.role) {
      const wasOn = before && canPublish(before.role, this.settings.shape);
      const isOn = canPublish(info.role, this.settings.shape);
      if (info.role === 'cohost') this.emit('notice', 'You are now a co-host.');
      else if (before.role === 'cohost') this.emit('notice', 'You are no longer a co-host.');
      else if (isOn && !wasOn) this.emit('notice', 'A host brought you on stage.');
      else if (!isOn && wasOn) this.emit('notice', 'A host moved you off stage.');
      if (info.role !== 'host' && info.role !== 'cohost') {
        this.inviteUrl = null;
        this.waiting = [];
      }
    }
    this.emit('self', info);
    this.followPermissions();
  }

  /**
   * Publishes when our role and the shape allow it, stops when they no longer do. The server
   * already stopped forwarding us in that case; this releases the camera and renegotiates.
   * @private
   */
  followPermissions() {
    const self = this.self;
    if (!self || this.status !== 'joined') return;
    void this.publisher.setAllowed(canPublish(self.role, this.settings.shape), () => ({
      audio: this.self?.audio_muted ?? false,
      video: this.self?.video_muted ?? false,
    }));
  }

  /**
   * After the devices opened: tell the others about a device we lack or started off, so they
   * show it as off rather than waiting for media that never comes.
   * @private
   */
  tellDeviceState() {
    const self = this.self;
    if (!self) return;
    for (const kind of /** @type {MediaKind[]} */ (['audio', 'video'])) {
      const muted = this.publisher.isMuted(kind);
      if (muted !== (kind === 'audio' ? self.audio_muted : self.video_muted)) this.send({ type: 'mute', kind, muted });
    }
  }

  /**
   * @private
   * @param {string} code
   * @param {string} text
   */
  serverError(code, text) {
    // A refused publish offer gets no answer; stop waiting for one. (The error does not say
    // which message it answers; with no publish offer outstanding this does nothing.)
    if (code === 'invalid_sdp' || code === 'forbidden') this.negotiator.publishRefused();
    // Before `joined`, any error means we are not in the session: end the call instead of
    // waiting forever.
    if (isFatalError(code) || this.status === 'connecting') {
      this.finish({ reason: 'error', code, message: text || code });
      return;
    }
    console.warn(`hearth: server error ${code}: ${text}`);
    this.emit('refused', { code, message: text });
    this.emit('notice', code === 'rate_limited' ? 'You are sending messages too fast; wait a moment.' : text || code);
  }

  /**
   * @private
   * @param {string} participantId
   */
  participantLeft(participantId) {
    if (!this.participants.delete(participantId)) return;
    this.remote.forget(participantId);
    this.emit('participant_removed', participantId);
  }

  /**
   * @private
   * @param {CallEnd} end
   */
  finish(end) {
    if (this.status === 'ended') return;
    this.status = 'ended';
    this.end = end;
    this.publisher.close();
    this.negotiator.close();
    this.signaling.close();
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
