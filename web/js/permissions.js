// Who may do what, mirrored from crates/core/src/permissions.rs so the page can hide buttons
// that would only earn a `forbidden`. The server decides every action; nothing here grants
// anything. Keep the two in step.

/** @typedef {import('./protocol.js').Role} Role */
/** @typedef {import('./protocol.js').Shape} Shape */

/**
 * Rank for acting on others: one may only mute, remove or re-role someone ranked below.
 * @param {Role} role
 * @returns {number}
 */
function rank(role) {
  switch (role) {
    case 'host':
      return 3;
    case 'cohost':
      return 2;
    default:
      return 1;
  }
}

/**
 * Whether `role` may send camera, microphone or screen in a session of `shape`.
 * @param {Role} role
 * @param {Shape} shape
 */
export function canPublish(role, shape) {
  return shape === 'room' || role !== 'attendee';
}

/**
 * Hosts and co-hosts run the session: they see the controls, the invite link and the waiting
 * room, and may mute, remove, re-role, admit, lock and rotate.
 * @param {Role} role
 */
export function runsSession(role) {
  return role === 'host' || role === 'cohost';
}

/**
 * Whether someone whose role is `viewer` hears, one by one, of the arrivals, changes and
 * departures of someone whose role is `subject`. On a stage only hosts and co-hosts hear about
 * each attendee; everyone else sees the stage and a count of the audience.
 * @param {Role} viewer
 * @param {Role} subject
 * @param {Shape} shape
 */
export function hearsAbout(viewer, subject, shape) {
  return shape === 'room' || runsSession(viewer) || subject !== 'attendee';
}

/**
 * What to tell someone whose own role went from `before` to `after`, or `null` if nothing
 * they can do changed.
 * @param {Role} before
 * @param {Role} after
 * @param {Shape} shape
 * @returns {string | null}
 */
export function roleChangeNotice(before, after, shape) {
  if (after === 'cohost') return 'You are now a co-host.';
  if (before === 'cohost') return 'You are no longer a co-host.';
  const wasOn = canPublish(before, shape);
  const isOn = canPublish(after, shape);
  if (isOn && !wasOn) return 'A host brought you on stage.';
  if (!isOn && wasOn) return 'A host moved you off stage.';
  return null;
}

/**
 * Only the host (the holder of the host link) ends the session.
 * @param {Role} role
 */
export function canEndSession(role) {
  return role === 'host';
}

/**
 * Whether a raised hand means anything for `role`: only for those who may not publish yet.
 * (The server accepts `raise_hand` from any attendee; the page offers it on stage only.)
 * @param {Role} role
 * @param {Shape} shape
 */
export function canRaiseHand(role, shape) {
  return role === 'attendee' && shape === 'stage';
}

/**
 * Whether `actor` may mute or remove someone whose role is `target`.
 * @param {Role} actor
 * @param {Role} target
 */
export function canActOn(actor, target) {
  return runsSession(actor) && rank(actor) > rank(target);
}

/**
 * Whether `actor` may give someone whose role is `target` the role `role`. Nobody becomes
 * host by promotion; only a host makes (or unmakes) co-hosts.
 * @param {Role} actor
 * @param {Role} target
 * @param {Role} role
 */
export function canSetRole(actor, target, role) {
  if (role === 'host' || !canActOn(actor, target)) return false;
  if (role === 'cohost' || target === 'cohost') return actor === 'host';
  return true;
}
