// The Call's contract with the UI: what it is given, what it tells, how it ends. Types only,
// kept apart from call.js so the views can read the contract without the machinery.

/** @typedef {import('./protocol.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./protocol.js').SessionInfo} SessionInfo */
/** @typedef {import('./protocol.js').SessionSettings} SessionSettings */
/** @typedef {import('./protocol.js').ChatMessage} ChatMessage */
/** @typedef {import('./protocol.js').WaitingInfo} WaitingInfo */
/** @typedef {import('./protocol.js').RecordingStatus} RecordingStatus */
/** @typedef {import('./protocol.js').Role} Role */

/**
 * How a call ended.
 * - `left`: we pressed Leave.
 * - `error`: the server refused or ended us with an error message (`code` is set).
 * - `lost`: the connection dropped without an explanation, and could not be resumed in time.
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
 * @property {number} audience the count of attendees changed (on a stage, the audience we
 *   hear about only as a number unless we run the session)
 * @property {boolean} reconnecting the signaling socket was lost and we are getting it back
 *   (true), or we are back (false); the peer connections keep running meanwhile
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
 * @property {import('./link.js').LinkOptions} [reconnect] retry schedule after a lost socket
 */

export {};
