// One presence in a session: the signaling client, the two peer connections, what we publish
// and what we know about everyone else. The UI listens to a Call's events and calls its
// methods; it never sees the WebSocket or the SDP. The server decides every permission: the
// Call follows what it is told (our role, the shape) and the UI only hides what would fail.

import { Emitter } from './emitter.js';
import { Link } from './link.js';
import { openLocalMedia, openScreen, screenProblem } from './media.js';
import { Negotiator } from './negotiation.js';
import { headcount, unheard } from './audience.js';
import { canPublish, roleChangeNotice } from './permissions.js';
import { isFatalError, joinMessage } from './protocol.js';
import { Publisher } from './publisher.js';
import { RemoteMedia } from './remote.js';
import { Requests } from './requests.js';
import { replayOf, resync } from './resync.js';

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

/** @typedef {import('./call-types.js').CallEnd} CallEnd */
/** @typedef {import('./call-types.js').CallEvents} CallEvents */
/** @typedef {import('./call-types.js').CallOptions} CallOptions */
/** @typedef {import('./call-types.js').Speakers} Speakers */

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
    /** @private @readonly the signaling socket, reopened after a loss */
    this.link = new Link(options.signalingUrl, options.reconnect);
    /** @private replaced when a reconnect had to join afresh */
    this.negotiator = this.createNegotiator();
    /** @readonly what we send */
    this.publisher = new Publisher({
      setOutgoing: (outgoing) => this.negotiator.setOutgoing(outgoing),
      openMedia: options.openMedia ?? openLocalMedia,
      openScreen,
      screenProblem,
    });
    /** what we receive (replaced when a reconnect had to join afresh) */
    this.remote = this.createRemote();
    /** @readonly chat, hand and host actions */
    this.requests = new Requests((message) => this.request(message));
    /** @type {string | null} our participant id, once joined */
    this.participantId = null;
    /** @type {ParticipantInfo | null} ourselves, as the server last described us */
    this.self = null;
    /** @type {SessionInfo | null} */
    this.session = null;
    /** @type {SessionSettings} */
    this.settings = { shape: 'room', locked: false, waiting_room: false, max_participants: 0 };
    /** @type {Map<string, ParticipantInfo>} everyone else we hear about, by id, in join order */
    this.participants = new Map();
    /** attendees in the session (we included, if we are one), as the server last counted */
    this.audience = 0;
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
    /**
     * The socket was lost after we joined and a new one is on its way. `status` stays
     * `joined` meanwhile: we are still in the session and our media still flows.
     */
    this.reconnecting = false;
    /** @private @type {string | undefined} sent in every join, so a reconnect is recognised */
    this.resumeToken = options.resumeToken;
    /**
     * @private @type {Map<MediaKind, boolean>} our mute toggles that found no socket; sent on
     * resume, so the others do not go on seeing a device as on (or off) that we switched
     */
    this.unsentMutes = new Map();

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
    this.link.on('open', () => this.sendJoin());
    this.link.on('message', (message) => this.handle(message));
    this.link.on('close', (info) => this.socketClosed(info));
    this.link.connect();
  }

  /** Tries again at once while reconnecting (the browser says the network is back). */
  reconnectNow() {
    if (this.reconnecting) this.link.retryNow();
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
    // While reconnecting this finds no socket; the server lets us go when its grace runs out.
    this.send({ type: 'leave' });
    this.finish({ reason: 'left', message: 'You left the session.' });
  }

  /** @private */
  sendJoin() {
    // After a loss, ask to be the same participant again; the server checks the token.
    const resume = this.reconnecting ? this.participantId : null;
    this.send(joinMessage(this.options, this.resumeToken, resume));
  }

  /**
   * @private
   * @param {import('./protocol.js').CloseInfo} info
   */
  socketClosed(info) {
    if (info.byClient || this.status === 'ended') return;
    // Only a participant who is in is held by the server for a resume; before that
    // (connecting, in the waiting room) a lost socket ends the call, as it always did.
    if (this.status !== 'joined') {
      this.finish({ reason: 'lost', message: 'The connection to the server was lost.' });
      return;
    }
    if (!this.reconnecting) {
      this.reconnecting = true;
      this.emit('reconnecting', true);
    }
    if (!this.link.retry()) {
      this.finish({ reason: 'lost', message: 'The connection to the server was lost and could not be restored in time.' });
    }
  }

  /**
   * Tells the server how large we show a received video, in device pixels (0 x 0: not shown),
   * so it sends a layer that fits and none for what nobody sees. Lost while reconnecting: the
   * server keeps the last size it was told.
   * @param {string} trackId
   * @param {number} width
   * @param {number} height
   */
  showTrack(trackId, width, height) {
    this.send({ type: 'track_view', track_id: trackId, width, height });
  }

  /**
   * @private
   * @param {ClientMessage} message
   * @returns {boolean} whether it went out
   */
  send(message) {
    // Until the new socket is joined only `join` may go out: anything else would reach a
    // server that does not know yet who we are, and be refused.
    const sent = (!this.reconnecting || message.type === 'join') && this.link.send(message);
    if (!sent && message.type === 'mute') this.unsentMutes.set(message.kind, message.muted);
    return sent;
  }

  /**
   * What the user asked for (chat, hand, host actions): when it cannot go out now, say so
   * rather than drop it unseen.
   * @private
   * @param {ClientMessage} message
   */
  request(message) {
    const sent = this.send(message);
    if (!sent && this.reconnecting) this.emit('notice', 'Not sent: the connection is being restored. Try again in a moment.');
    return sent;
  }

  /**
   * @private
   * @param {ServerMessage} message
   */
  handle(message) {
    if (this.status === 'ended') return;
    switch (message.type) {
      case 'joined':
        if (!this.reconnecting) this.joined(message);
        else if (message.resumed && message.participant_id === this.participantId) this.resumed(message);
        else this.restart(message);
        break;
      case 'waiting':
        // A reconnect that joined afresh into a waiting room: we are someone new, waiting.
        if (this.reconnecting) this.startOver();
        this.status = 'waiting';
        this.session = message.session;
        this.emit('waiting', message.session);
        break;
      case 'participant_joined':
        if (message.participant.id === this.participantId) break;
        this.participants.set(message.participant.id, message.participant);
        this.emit('participant_added', message.participant);
        this.forgetUnheard([message.participant]);
        break;
      case 'participant_updated':
        if (message.participant.id === this.participantId) {
          this.updateSelf(message.participant);
          this.forgetUnheard(this.participants.values());
        } else {
          this.participants.set(message.participant.id, message.participant);
          this.emit('participant_changed', message.participant);
          this.forgetUnheard([message.participant]);
        }
        break;
      case 'audience':
        this.audience = message.count;
        this.emit('audience', message.count);
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
      case 'simulcast_layers':
        this.negotiator.setLayers(message.track_id, message.active);
        break;
      case 'chat':
        this.addChat(message.message);
        break;
      case 'settings_updated':
        this.settings = message.settings;
        this.emit('settings', message.settings);
        this.forgetUnheard(this.participants.values());
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
    this.resumeToken = message.resume_token;
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
    this.audience = message.audience ?? 0;
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
    // After a restart the devices are still open: offer them on the new publish connection.
    // (On a first join nothing is open yet, and this does nothing.)
    this.publisher.republish();
  }

  /**
   * The new socket is the same participant again. The peer connections never stopped, so
   * tiles stay; what happened meanwhile is replayed as the difference between what we knew
   * and the session now, and what went to the dead socket is sent again.
   * @private
   * @param {import('./protocol.js').JoinedMessage} message
   */
  resumed(message) {
    this.back();
    this.resumeToken = message.resume_token;
    this.session = message.session;
    this.audience = message.audience ?? 0;
    this.emit('audience', this.audience);
    const change = resync({
      selfId: this.participantId,
      participants: this.participants,
      tracks: this.remote.announced,
      chat: this.chat,
    }, message);
    // Replayed as the messages the dead socket would have brought, so each change takes the
    // path it always takes (and the UI needs no resume case).
    const replay = replayOf(change, message, this.remote.announced);
    if (this.self && this.self.role !== message.role) replay.push({ type: 'participant_updated', participant: { ...this.self, role: message.role } });
    const recording = message.recording ?? null;
    if (recording?.id !== this.recording?.id) replay.push({ type: 'recording_updated', recording });
    const invite = message.invite_url ?? null;
    // Only a rotation is news; gaining or losing the link comes with the role change.
    if (invite && this.inviteUrl && invite !== this.inviteUrl) replay.push({ type: 'invite_rotated', invite_url: invite });
    else this.inviteUrl = invite;
    for (const replayed of replay) this.handle(replayed);
    this.negotiator.resumed();
    const mutes = [...this.unsentMutes];
    this.unsentMutes.clear();
    for (const [kind, muted] of mutes) this.send({ type: 'mute', kind, muted });
  }

  /**
   * The server no longer held us (its grace ran out, a media connection failed, or it
   * refused the token): this `joined` is a new participant with a new id. The peer
   * connections belong to the one that is gone, so start over with new ones, keeping the
   * devices open, and the user is in the room again without reloading.
   * @private
   * @param {import('./protocol.js').JoinedMessage} message
   */
  restart(message) {
    this.startOver();
    this.joined(message);
    if (this.publisher.stream) this.tellDeviceState();
    this.emit('notice', 'The connection is back, but the server had let you go: you joined again as a new arrival.');
  }

  /** @private forgets everyone and closes both peer connections, ready to be someone new */
  startOver() {
    this.back();
    for (const id of [...this.participants.keys()]) this.participantLeft(id);
    this.negotiator.close();
    this.negotiator = this.createNegotiator();
    this.remote = this.createRemote();
    this.unsentMutes.clear();
    this.speakers = { active: null, speaking: [] };
    this.emit('speakers', this.speakers);
  }

  /** @private the new socket is joined: messages may go out again */
  back() {
    this.reconnecting = false;
    this.link.settled();
    this.emit('reconnecting', false);
  }

  /**
   * @private
   * @param {ChatMessage} message
   */
  addChat(message) {
    this.chat.push(message);
    if (this.chat.length > CHAT_KEPT) this.chat.splice(0, this.chat.length - CHAT_KEPT);
    this.emit('chat', message);
  }

  /** @private @returns {Negotiator} */
  createNegotiator() {
    return new Negotiator({
      sendPublishOffer: (sdp, sources) => this.send({ type: 'publish_offer', sdp, sources }),
      sendSubscribeAnswer: (sdp) => this.send({ type: 'subscribe_answer', sdp }),
      sendCandidate: (target, candidate) => this.send({ type: 'candidate', target, candidate }),
      requestSubscribeRestart: () => this.send({ type: 'ice_restart', target: 'subscribe' }),
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
  }

  /** @private @returns {RemoteMedia} */
  createRemote() {
    return new RemoteMedia((participantId) => this.emit('media', participantId));
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
      const notice = roleChangeNotice(before.role, info.role, this.settings.shape);
      if (notice) this.emit('notice', notice);
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
    // An idle socket is held for a resume like a lost one: the close that follows reconnects.
    if (code === 'idle_timeout' && this.status === 'joined') {
      console.warn(`hearth: server error ${code}: ${text}`);
      return;
    }
    // Before `joined` (the first, or on a new socket), any error means we are not in the
    // session: end the call instead of waiting forever.
    if (isFatalError(code) || this.status === 'connecting' || this.reconnecting) {
      this.finish({ reason: 'error', code, message: text || code });
      return;
    }
    console.warn(`hearth: server error ${code}: ${text}`);
    this.emit('refused', { code, message: text });
    this.emit('notice', code === 'rate_limited' ? 'You are sending messages too fast; wait a moment.' : text || code);
  }

  /** How many people are in the session, we included (see audience.js). */
  headcount() {
    return this.self ? headcount(this.self, this.participants.values(), this.audience, this.settings.shape) : 0;
  }

  /**
   * Forgets those of `candidates` the server no longer tells us about (see audience.js): the
   * one a message was about, or everyone when our role or the shape changed (a host of
   * thousands would otherwise re-check everyone at each arrival).
   * @private
   * @param {Iterable<ParticipantInfo>} candidates
   */
  forgetUnheard(candidates) {
    if (!this.self) return;
    for (const id of unheard(this.self, candidates, this.settings.shape)) this.participantLeft(id);
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
    this.link.close();
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
