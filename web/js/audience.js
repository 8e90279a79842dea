// Who the page lists and counts (docs/protocol.md, "Who hears about whom"). On a stage the
// server tells only hosts and co-hosts about each attendee; everyone else knows the audience
// as a number. Pure: no DOM, no socket.

import { hearsAbout } from './permissions.js';

/** @typedef {import('./protocol.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./protocol.js').Shape} Shape */

/**
 * How many people are in the session, `self` included: those we hear about, and on a stage
 * the audience we only know as a count.
 * @param {ParticipantInfo} self
 * @param {Iterable<ParticipantInfo>} others everyone else we hear about
 * @param {number} audience attendees in the session, as the server counted them
 * @param {Shape} shape
 */
export function headcount(self, others, audience, shape) {
  const listed = [...others];
  if (hearsAbout(self.role, 'attendee', shape)) return listed.length + 1;
  const stage = listed.filter((p) => p.role !== 'attendee').length;
  return stage + (self.role === 'attendee' ? 0 : 1) + audience;
}

/**
 * The ids among `candidates` that we no longer hear about, and so must forget: nothing more
 * will come about them (a speaker sent back to the audience, our co-host role taken away, a
 * room turned into a stage).
 * @param {ParticipantInfo} self
 * @param {Iterable<ParticipantInfo>} candidates
 * @param {Shape} shape
 * @returns {string[]}
 */
export function unheard(self, candidates, shape) {
  return [...candidates].filter((p) => !hearsAbout(self.role, p.role, shape)).map((p) => p.id);
}
