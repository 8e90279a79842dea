// Hearth signaling client: one WebSocket, JSON messages as described in docs/protocol.md.
// Knows nothing about the DOM or about peer connections; it only moves typed messages.

import { Emitter } from './emitter.js';

/** The protocol version this client speaks (docs/protocol.md). */
export const PROTOCOL_VERSION = 1;

/**
 * How often the client sends an application-level `ping` (the server pings too). A ping still
 * unanswered at the next one means the socket is dead even if the browser has not noticed: a
 * network that vanished (a Wi-Fi switch) sends no FIN, and TCP can take minutes to give up.
 */
const KEEPALIVE_MS = 15_000;

/**
 * Error codes after which the server closes the socket. Kept here so the UI can tell a
 * survivable hiccup from the end of the call without knowing the list itself.
 */
const FATAL_CODES = new Set([
  'message_too_large',
  'binary_not_supported',
  'unsupported_version',
  'unknown_session',
  'idle_timeout',
  'join_timeout',
  'too_slow',
  'shutting_down',
  'internal',
  'invalid_link',
  'session_ended',
  'session_locked',
  'session_full',
  'removed',
  'declined',
  'replaced',
]);

/** Longest chat message, in characters (`MAX_CHAT_CHARS` in crates/proto). */
export const MAX_CHAT_CHARS = 2000;

/** @typedef {'publish' | 'subscribe'} PcTarget */
/** @typedef {'audio' | 'video'} MediaKind */
/** @typedef {'host' | 'cohost' | 'speaker' | 'attendee'} Role */
/** @typedef {'room' | 'stage'} Shape */
/** @typedef {'microphone' | 'camera' | 'screen'} TrackSource */

/**
 * An ICE candidate in the browser's `RTCIceCandidateInit` shape.
 * @typedef {object} IceCandidate
 * @property {string} candidate
 * @property {string | null} [sdpMid]
 * @property {number | null} [sdpMLineIndex]
 * @property {string | null} [usernameFragment]
 */

/**
 * @typedef {object} ParticipantInfo
 * @property {string} id
 * @property {string} name
 * @property {Role} role
 * @property {boolean} audio_muted
 * @property {boolean} video_muted
 * @property {boolean} hand_raised
 */

/**
 * @typedef {object} TrackInfo
 * @property {string} id equal to the MediaStreamTrack id the subscriber sees
 * @property {string} participant_id equal to the MediaStream id the subscriber sees
 * @property {MediaKind} kind
 * @property {string} codec MIME type, e.g. `video/VP8`
 * @property {TrackSource} [source] absent from older servers: then microphone or camera
 */

/**
 * @typedef {object} SessionInfo
 * @property {string} id
 * @property {string} title
 */

/**
 * @typedef {object} SessionSettings
 * @property {Shape} shape
 * @property {boolean} locked no new joins
 * @property {boolean} waiting_room attendees wait until a host admits them
 * @property {number} max_participants
 */

/**
 * A partial change of settings; absent fields stay as they are.
 * @typedef {object} SettingsChange
 * @property {Shape} [shape]
 * @property {boolean} [locked]
 * @property {boolean} [waiting_room]
 */

/**
 * A chat message as the server stamped it: `name` is the sender's name as the server knows it.
 * @typedef {object} ChatMessage
 * @property {string} id
 * @property {string} from the sender's participant id
 * @property {string} name
 * @property {string} text
 * @property {number} at_ms milliseconds since the Unix epoch
 */

/**
 * A recording in progress, as everyone in the session is told about it.
 * @typedef {object} RecordingStatus
 * @property {string} id the recording's id (32 hex digits)
 * @property {number} started_at_ms milliseconds since the Unix epoch
 */

/**
 * Someone in the waiting room.
 * @typedef {object} WaitingInfo
 * @property {string} id their participant id once admitted
 * @property {string} name
 */

/**
 * Messages from the client to the server.
 * @typedef {{type: 'join', version: number, session_id: string, name: string, host_key?: string,
 *     invite_key?: string, resume_token?: string, resume?: string}
 *   | {type: 'publish_offer', sdp: string, sources: Record<string, TrackSource>}
 *   | {type: 'subscribe_answer', sdp: string}
 *   | {type: 'candidate', target: PcTarget, candidate: IceCandidate}
 *   | {type: 'mute', kind: MediaKind, muted: boolean}
 *   | {type: 'track_view', track_id: string, width: number, height: number}
 *   | {type: 'ice_restart', target: PcTarget}
 *   | {type: 'ping', nonce: number}
 *   | {type: 'leave'}
 *   | {type: 'chat', text: string}
 *   | {type: 'raise_hand', raised: boolean}
 *   | {type: 'mute_participant', participant_id: string, kind: MediaKind}
 *   | {type: 'remove_participant', participant_id: string}
 *   | {type: 'set_role', participant_id: string, role: Role}
 *   | {type: 'update_settings', change: SettingsChange}
 *   | {type: 'rotate_invite'}
 *   | {type: 'admit', participant_id: string}
 *   | {type: 'decline', participant_id: string}
 *   | {type: 'end_session'}
 *   | {type: 'start_recording'}
 *   | {type: 'stop_recording'}} ClientMessage
 */

/**
 * @typedef {object} JoinedMessage
 * @property {'joined'} type
 * @property {number} version
 * @property {string} participant_id
 * @property {Role} role
 * @property {SessionInfo} session
 * @property {ParticipantInfo[]} participants everyone already there whom you hear about, not you
 *   (on a stage, unless you run the session: the stage, not the audience)
 * @property {number} [audience] attendees in the session, you included if you are one
 * @property {TrackInfo[]} tracks every track already published
 * @property {SessionSettings} settings
 * @property {ChatMessage[]} chat recent chat, oldest first
 * @property {string} resume_token send it in later joins to this session
 * @property {string} [invite_url] hosts and co-hosts only
 * @property {WaitingInfo[]} [waiting] hosts and co-hosts only; absent when nobody waits
 * @property {RecordingStatus} [recording] present while the session is being recorded
 * @property {boolean} [resumed] true when this join resumed the participant named in `join.resume`
 */

/**
 * @typedef {object} ErrorMessage
 * @property {'error'} type
 * @property {string} code
 * @property {string} message human-readable, safe to show
 */

/**
 * Who speaks, from the audio levels the server reads in everyone's packets. Sent whenever it
 * changes (at most four times a second), and on entering while anyone holds the floor.
 * @typedef {object} ActiveSpeakerMessage
 * @property {'active_speaker'} type
 * @property {string | null} participant_id who holds the floor: the one speaking, or the last
 *   one to speak while nobody does; `null` before anyone spoke or when the holder left
 * @property {string[]} speaking everyone speaking right now, loudest first (at most 8)
 */

/**
 * Messages from the server to the client.
 * @typedef {JoinedMessage
 *   | {type: 'waiting', session: SessionInfo}
 *   | {type: 'participant_joined', participant: ParticipantInfo}
 *   | {type: 'participant_updated', participant: ParticipantInfo}
 *   | {type: 'participant_left', participant_id: string}
 *   | {type: 'track_published', track: TrackInfo}
 *   | {type: 'track_unpublished', track_id: string, participant_id: string}
 *   | {type: 'publish_answer', sdp: string}
 *   | {type: 'subscribe_offer', sdp: string}
 *   | {type: 'candidate', target: PcTarget, candidate: IceCandidate}
 *   | {type: 'chat', message: ChatMessage}
 *   | {type: 'settings_updated', settings: SessionSettings}
 *   | {type: 'waiting_updated', waiting: WaitingInfo[]}
 *   | {type: 'invite_rotated', invite_url: string}
 *   | {type: 'recording_updated', recording: RecordingStatus | null, error?: string}
 *   | ActiveSpeakerMessage
 *   | {type: 'muted_by_host', kind: MediaKind}
 *   | {type: 'audience', count: number}
 *   | {type: 'simulcast_layers', track_id: string, active: boolean[]}
 *   | {type: 'pong', nonce: number}
 *   | ErrorMessage} ServerMessage
 */

/**
 * Why the socket closed.
 * @typedef {object} CloseInfo
 * @property {number} code the WebSocket close code
 * @property {string} reason the WebSocket close reason
 * @property {boolean} byClient true when this client asked for the close
 */

/**
 * @typedef {object} SignalingEvents
 * @property {undefined} open the socket is connected (send `join` now)
 * @property {ServerMessage} message one message from the server
 * @property {CloseInfo} close the socket is gone; no more events follow
 */

/**
 * The `join` for a session link, presenting the resume token of an earlier join if we have
 * one, and asking to be participant `resume` again (after a lost socket).
 * @param {{sessionId: string, name: string, hostKey?: string, inviteKey?: string}} link
 * @param {string | undefined} resumeToken
 * @param {string | null} resume
 * @returns {ClientMessage}
 */
export function joinMessage(link, resumeToken, resume) {
  const { sessionId, name, hostKey, inviteKey } = link;
  return {
    type: 'join',
    version: PROTOCOL_VERSION,
    session_id: sessionId,
    name,
    ...(hostKey ? { host_key: hostKey } : {}),
    ...(inviteKey ? { invite_key: inviteKey } : {}),
    ...(resumeToken ? { resume_token: resumeToken } : {}),
    // Resuming needs the token too: without it the server could not check the claim.
    ...(resume && resumeToken ? { resume } : {}),
  };
}

/**
 * Whether the server closes the socket after an error with this code.
 * @param {string} code
 * @returns {boolean}
 */
export function isFatalError(code) {
  return FATAL_CODES.has(code);
}

/**
 * The signaling URL on the page's own origin (`ws:` for `http:`, `wss:` for `https:`).
 * @param {{protocol: string, host: string}} pageLocation
 * @returns {string}
 */
export function signalingUrl(pageLocation) {
  const scheme = pageLocation.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${pageLocation.host}/ws`;
}

/**
 * One signaling connection. Emits `open`, then `message` for every server message, then
 * exactly one `close`.
 * @extends {Emitter<SignalingEvents>}
 */
export class SignalingClient extends Emitter {
  /** @param {string} url */
  constructor(url) {
    super();
    /** @private @readonly */
    this.url = url;
    /** @private @type {WebSocket | null} */
    this.socket = null;
    /** @private @type {ReturnType<typeof setInterval> | undefined} */
    this.keepalive = undefined;
    /** @private */
    this.nonce = 0;
    /** @private */
    this.closedByClient = false;
    /** @private */
    this.closed = false;
    /** @private our last ping has had no answer yet (any frame from the server answers it) */
    this.unanswered = false;
  }

  /** The socket is still open though this client gave up on it (`close` sends the close frame). */
  get lingering() {
    const state = this.socket?.readyState;
    return state === WebSocket.OPEN || state === WebSocket.CONNECTING;
  }

  /** Opens the socket. Call once. */
  connect() {
    if (this.socket) throw new Error('SignalingClient.connect called twice');
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.addEventListener('open', () => {
      // The server pings too, but a page in a background tab may not see its pongs arrive in
      // time through some proxies; our own ping keeps intermediaries from idling us out.
      this.keepalive = setInterval(() => this.tick(), KEEPALIVE_MS);
      this.emit('open', undefined);
    });
    socket.addEventListener('message', (event) => this.receive(event.data));
    socket.addEventListener('close', (event) => this.finish(event.code, event.reason));
    // `error` is always followed by `close`, which carries the information we report.
  }

  /**
   * Sends one message. Messages sent while the socket is not open are dropped (the only
   * one that matters then, `leave`, is implied by the close anyway).
   * @param {ClientMessage} message
   * @returns {boolean} whether the message was handed to the socket
   */
  send(message) {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(message));
    return true;
  }

  /**
   * Closes the socket from our side. Anything already sent is still delivered first.
   */
  close() {
    this.closedByClient = true;
    const socket = this.socket;
    if (socket && (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING)) {
      socket.close(1000, 'bye');
    } else {
      this.finish(1000, 'bye');
    }
  }

  /** @private */
  tick() {
    if (this.unanswered) {
      // Given up without a close frame: on a dead network it could not arrive, and on a live
      // one it would end our participant, which the server instead hands to our next socket
      // (this one then gets `replaced`).
      console.warn('hearth: the server stopped answering; giving this socket up');
      this.finish(4000, 'no answer to ping');
      return;
    }
    this.unanswered = this.send({ type: 'ping', nonce: ++this.nonce });
  }

  /**
   * @private
   * @param {unknown} data
   */
  receive(data) {
    if (this.closed) return; // given up on: its messages no longer count
    this.unanswered = false;
    if (typeof data !== 'string') {
      console.warn('hearth: ignoring a binary frame from the server');
      return;
    }
    /** @type {unknown} */
    let parsed;
    try {
      parsed = JSON.parse(data);
    } catch {
      console.warn('hearth: ignoring a frame that is not JSON', data.slice(0, 200));
      return;
    }
    if (!parsed || typeof parsed !== 'object' || typeof (/** @type {{type?: unknown}} */ (parsed).type) !== 'string') {
      console.warn('hearth: ignoring a message without a type', parsed);
      return;
    }
    this.emit('message', /** @type {ServerMessage} */ (parsed));
  }

  /**
   * @private
   * @param {number} code
   * @param {string} reason
   */
  finish(code, reason) {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepalive);
    this.emit('close', { code, reason, byClient: this.closedByClient });
  }
}
