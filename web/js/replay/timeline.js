// What a recording's manifest means at a moment of its timeline: who is there, which streams
// play, which events have happened, and how far a media element may stray from the master
// clock before it is corrected. Pure: no DOM, no clock; every time is an argument.

/** @typedef {import('../recordings-api.js').Manifest} Manifest */
/** @typedef {import('../recordings-api.js').StreamEntry} StreamEntry */
/** @typedef {import('../recordings-api.js').ReplayEvent} ReplayEvent */

/** Beyond this, an element is moved to where it should be rather than nudged (seconds). */
export const SEEK_BEYOND_S = 0.3;
/** Within this an element counts as in step and plays at normal speed (seconds). */
const IN_STEP_S = 0.01;
/**
 * How hard a nudge pulls (playback rate change per second of drift) and how far it may go.
 * Sound is nudged gently: at most 0.9× to 1.1×, which is not heard as a change of pitch, and
 * its reported position jitters by a few tens of milliseconds. Pictures have neither problem:
 * they catch up quickly (up to 1.25×).
 */
const NUDGE = { audio: { gain: 2, max: 0.1 }, video: { gain: 5, max: 0.25 } };

/**
 * A time span on the recording's timeline, end excluded.
 * @typedef {object} Span
 * @property {number} fromMs
 * @property {number} toMs
 */

/**
 * One participant as the replay shows them: their tile is there during their spans.
 * @typedef {object} ReplayPerson
 * @property {string} id
 * @property {string} name
 * @property {string} role
 * @property {Span[]} spans when they were in the session, in order
 * @property {StreamEntry[]} streams everything they published, in order of start
 */

/**
 * How to bring one media element back in step with the master clock.
 * @typedef {{kind: 'seek', toS: number} | {kind: 'rate', rate: number}} Correction
 */

/**
 * The part of the timeline a stream covers.
 * @param {StreamEntry} stream
 * @returns {Span}
 */
export function streamSpan(stream) {
  return { fromMs: stream.start_ms, toMs: stream.start_ms + stream.duration_ms };
}

/**
 * Whether `span` covers `t`. At the very end of the recording, what reaches the end still
 * counts, so the last picture stays on screen.
 * @param {Span} span
 * @param {number} t
 * @param {number} durationMs
 */
export function covers(span, t, durationMs) {
  if (t >= durationMs) return span.fromMs <= durationMs && span.toMs >= durationMs && span.toMs > span.fromMs;
  return span.fromMs <= t && t < span.toMs;
}

/**
 * Where a stream's media element should be at master time `t`, in its own seconds.
 * @param {StreamEntry} stream
 * @param {number} t
 * @returns {number}
 */
export function localSeconds(stream, t) {
  return Math.min(stream.duration_ms, Math.max(0, t - stream.start_ms)) / 1000;
}

/**
 * Everyone in the recording, in the order they first appear, with when they were there: from
 * the join and leave events (someone may leave and come back), widened to cover their
 * streams (so a picture never plays without its tile).
 * @param {Manifest} manifest
 * @returns {ReplayPerson[]}
 */
export function people(manifest) {
  const end = manifest.duration_ms;
  /** @type {Map<string, ReplayPerson>} */
  const byId = new Map();
  for (const p of manifest.participants) {
    byId.set(p.id, { id: p.id, name: p.name, role: p.role, spans: [], streams: [] });
  }
  /** @type {Map<string, number>} join times of those in the session now, while reading events */
  const open = new Map();
  for (const event of sortedEvents(manifest.events)) {
    if (event.type === 'chat') continue;
    let person = byId.get(event.participant_id);
    if (!person) {
      person = { id: event.participant_id, name: event.name, role: 'attendee', spans: [], streams: [] };
      byId.set(person.id, person);
    }
    if (event.type === 'join' && !open.has(person.id)) open.set(person.id, event.at_ms);
    if (event.type === 'leave') {
      const from = open.get(person.id) ?? 0;
      open.delete(person.id);
      person.spans.push({ fromMs: from, toMs: Math.max(from, event.at_ms) });
    }
  }
  for (const [id, from] of open) byId.get(id)?.spans.push({ fromMs: from, toMs: end });
  for (const p of manifest.participants) {
    const person = byId.get(p.id);
    // No events about them (an older manifest, or events cut at their limit): their span.
    if (person && person.spans.length === 0) person.spans.push({ fromMs: p.joined_ms, toMs: p.left_ms ?? end });
  }
  for (const stream of [...manifest.streams].sort((a, b) => a.start_ms - b.start_ms)) {
    let person = byId.get(stream.participant_id);
    if (!person) {
      person = { id: stream.participant_id, name: 'Someone', role: 'attendee', spans: [], streams: [] };
      byId.set(person.id, person);
    }
    person.streams.push(stream);
    person.spans = widen(person.spans, streamSpan(stream));
  }
  const first = (/** @type {ReplayPerson} */ p) => p.spans[0]?.fromMs ?? Infinity;
  return [...byId.values()].filter((p) => p.spans.length > 0).sort((a, b) => first(a) - first(b));
}

/**
 * `spans` with `extra` merged in, in order, overlapping spans joined.
 * @param {Span[]} spans
 * @param {Span} extra
 * @returns {Span[]}
 */
function widen(spans, extra) {
  const all = [...spans, extra].sort((a, b) => a.fromMs - b.fromMs);
  /** @type {Span[]} */
  const merged = [];
  for (const span of all) {
    const last = merged[merged.length - 1];
    if (last && span.fromMs <= last.toMs) last.toMs = Math.max(last.toMs, span.toMs);
    else merged.push({ ...span });
  }
  return merged;
}

/**
 * Whether someone's tile is on screen at `t`.
 * @param {ReplayPerson} person
 * @param {number} t
 * @param {number} durationMs
 */
export function presentAt(person, t, durationMs) {
  return person.spans.some((span) => covers(span, t, durationMs));
}

/**
 * Events in time order (stable: same-time events keep the manifest's order).
 * @param {ReplayEvent[]} events
 * @returns {ReplayEvent[]}
 */
export function sortedEvents(events) {
  return events.map((event, i) => ({ event, i }))
    .sort((a, b) => a.event.at_ms - b.event.at_ms || a.i - b.i)
    .map(({ event }) => event);
}

/**
 * How many of `events` (sorted) have happened by `t`.
 * @param {ReplayEvent[]} events
 * @param {number} t
 * @returns {number}
 */
export function eventsBy(events, t) {
  let lo = 0;
  let hi = events.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (events[mid].at_ms <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * What to do about an element at `actualS` that should be at `expectedS`: far off, jump
 * there; a little off, play slightly faster or slower until it has caught up (a jump would
 * stutter, and seeking costs a decoder restart).
 * @param {number} actualS
 * @param {number} expectedS
 * @param {'audio' | 'video'} kind
 * @returns {Correction}
 */
export function correction(actualS, expectedS, kind) {
  const drift = actualS - expectedS;
  if (Math.abs(drift) > SEEK_BEYOND_S) return { kind: 'seek', toS: expectedS };
  if (Math.abs(drift) <= IN_STEP_S) return { kind: 'rate', rate: 1 };
  const { gain, max } = NUDGE[kind];
  const nudge = Math.min(max, Math.max(-max, drift * gain));
  return { kind: 'rate', rate: 1 - nudge };
}
