// What a participant can ask the server for besides media: chat, a raised hand and the host
// actions. Each method sends one message (docs/protocol.md); results come back as broadcasts
// to everyone (`participant_updated`, `settings_updated`, `recording_updated`, …) and
// refusals as a non-fatal `error` (`forbidden`, `unknown_participant`, `rate_limited`,
// `recording_unavailable`). No state, no DOM.

/** @typedef {import('./protocol.js').ClientMessage} ClientMessage */
/** @typedef {import('./protocol.js').MediaKind} MediaKind */
/** @typedef {import('./protocol.js').Role} Role */
/** @typedef {import('./protocol.js').SettingsChange} SettingsChange */

export class Requests {
  /** @param {(message: ClientMessage) => boolean} send */
  constructor(send) {
    /** @private @readonly */
    this.send = send;
  }

  /**
   * @param {string} text
   * @returns {boolean} whether it went out (it shows when the server echoes it)
   */
  chat(text) {
    if (!text.trim()) return false;
    return this.send({ type: 'chat', text });
  }

  /** @param {boolean} raised */
  raiseHand(raised) {
    this.send({ type: 'raise_hand', raised });
  }

  /**
   * Turns someone's microphone or camera off. There is no remote unmute.
   * @param {string} participantId
   * @param {MediaKind} kind
   */
  muteParticipant(participantId, kind) {
    this.send({ type: 'mute_participant', participant_id: participantId, kind });
  }

  /** @param {string} participantId */
  removeParticipant(participantId) {
    this.send({ type: 'remove_participant', participant_id: participantId });
  }

  /**
   * Co-host, speaker (on stage) or attendee.
   * @param {string} participantId
   * @param {Role} role
   */
  setRole(participantId, role) {
    this.send({ type: 'set_role', participant_id: participantId, role });
  }

  /** @param {SettingsChange} change */
  updateSettings(change) {
    this.send({ type: 'update_settings', change });
  }

  /** Replaces the invite link; the old one stops working, people inside stay. */
  rotateInvite() {
    this.send({ type: 'rotate_invite' });
  }

  /** @param {string} participantId someone in the waiting room */
  admit(participantId) {
    this.send({ type: 'admit', participant_id: participantId });
  }

  /** @param {string} participantId someone in the waiting room */
  decline(participantId) {
    this.send({ type: 'decline', participant_id: participantId });
  }

  /** Starts recording the session (hosts and co-hosts; nothing happens if it already is). */
  startRecording() {
    this.send({ type: 'start_recording' });
  }

  /** Stops recording the session (nothing happens if it is not). */
  stopRecording() {
    this.send({ type: 'stop_recording' });
  }

  /** Ends the session for everyone (host only). */
  endSession() {
    this.send({ type: 'end_session' });
  }
}
