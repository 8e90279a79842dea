// What changed in the session while our socket was down. A resumed `joined` describes the
// session as it is now, not what happened meanwhile (the server dropped those messages), so
// the Call compares it with what it knew and replays the difference as ordinary events: tiles
// of people still there stay as they are, only the changes show. Pure: no DOM, no socket.

/** @typedef {import('./protocol.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./protocol.js').TrackInfo} TrackInfo */
/** @typedef {import('./protocol.js').ChatMessage} ChatMessage */
/** @typedef {import('./protocol.js').JoinedMessage} JoinedMessage */

/**
 * What the Call knew when the socket was lost.
 * @typedef {object} Known
 * @property {string | null} selfId
 * @property {ReadonlyMap<string, ParticipantInfo>} participants everyone else, by id
 * @property {ReadonlyMap<string, TrackInfo>} tracks every announced track, by id
 * @property {readonly ChatMessage[]} chat
 */

/**
 * @typedef {object} Resync
 * @property {string[]} left ids of people who are gone
 * @property {ParticipantInfo[]} arrived people who came meanwhile, in the server's order
 * @property {ParticipantInfo[]} updated people still there whose role, hand or mutes changed
 * @property {string[]} unpublished ids of tracks that ended
 * @property {TrackInfo[]} published tracks that started
 * @property {ChatMessage[]} chat messages not seen yet, oldest first
 */

/** @typedef {import('./protocol.js').ServerMessage} ServerMessage */

/**
 * The changes as the messages the dead socket would have brought, in an order that keeps each
 * step valid (people leave before others arrive, tracks end before new ones start).
 * @param {Resync} change
 * @param {JoinedMessage} joined the `joined` that resumed us
 * @param {ReadonlyMap<string, TrackInfo>} announced the tracks we knew, for their owners
 * @returns {ServerMessage[]}
 */
export function replayOf(change, joined, announced) {
  return [
    ...change.left.map((id) => ({ type: /** @type {const} */ ('participant_left'), participant_id: id })),
    ...change.arrived.map((participant) => ({ type: /** @type {const} */ ('participant_joined'), participant })),
    ...change.updated.map((participant) => ({ type: /** @type {const} */ ('participant_updated'), participant })),
    ...change.unpublished.map((id) => ({
      type: /** @type {const} */ ('track_unpublished'), track_id: id, participant_id: announced.get(id)?.participant_id ?? '',
    })),
    ...change.published.map((track) => ({ type: /** @type {const} */ ('track_published'), track })),
    ...change.chat.map((chat) => ({ type: /** @type {const} */ ('chat'), message: chat })),
    { type: 'settings_updated', settings: joined.settings },
    { type: 'waiting_updated', waiting: joined.waiting ?? [] },
  ];
}

/**
 * @param {Known} known
 * @param {JoinedMessage} joined the `joined` that resumed us
 * @returns {Resync}
 */
export function resync(known, joined) {
  const others = joined.participants.filter((p) => p.id !== known.selfId);
  const present = new Set(others.map((p) => p.id));
  const tracks = joined.tracks.filter((t) => t.participant_id !== known.selfId);
  const live = new Set(tracks.map((t) => t.id));
  const seen = new Set(known.chat.map((m) => m.id));
  return {
    left: [...known.participants.keys()].filter((id) => !present.has(id)),
    arrived: others.filter((p) => !known.participants.has(p.id)),
    updated: others.filter((p) => {
      const before = known.participants.get(p.id);
      return before !== undefined && !sameParticipant(before, p);
    }),
    unpublished: [...known.tracks.keys()].filter((id) => !live.has(id)),
    published: tracks.filter((t) => !known.tracks.has(t.id)),
    chat: (joined.chat ?? []).filter((m) => !seen.has(m.id)),
  };
}

/**
 * @param {ParticipantInfo} a
 * @param {ParticipantInfo} b
 */
function sameParticipant(a, b) {
  return a.name === b.name && a.role === b.role && a.audio_muted === b.audio_muted
    && a.video_muted === b.video_muted && a.hand_raised === b.hand_raised;
}
