// Brings a media connection back after its network went away: a connection that stays
// `disconnected` for a few seconds, or `failed`, gets an ICE restart (new credentials, fresh
// candidates, found again over the signaling socket), and another one later if that did not
// help. A short dropout heals by itself before the grace ends and costs nothing.

/** How long `disconnected` may last before a restart: ICE consent often recovers sooner. */
export const DISCONNECTED_GRACE_MS = 4_000;
/** How long a restart gets to work before the next one. */
export const RETRY_MS = 10_000;
/** Restarts are at least this far apart, however fast ICE gives up again. */
export const MIN_GAP_MS = 5_000;

/**
 * Watches `pc` and calls `restart` when it needs an ICE restart, until the returned function is
 * called. `timers` is injectable for tests.
 * @param {RTCPeerConnection} pc
 * @param {() => void} restart
 * @param {{setTimeout: typeof setTimeout, clearTimeout: typeof clearTimeout, now?: () => number}} [timers]
 * @returns {() => void} stops watching
 */
export function watchIce(pc, restart, timers = globalThis) {
  const now = timers.now ?? Date.now;
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null;
  let lastRestart = -Infinity;
  const cancel = () => {
    if (timer !== null) timers.clearTimeout(timer);
    timer = null;
  };
  /** @param {number} ms */
  const schedule = (ms) => {
    cancel();
    const wait = Math.max(ms, lastRestart + MIN_GAP_MS - now());
    timer = timers.setTimeout(() => {
      timer = null;
      if (healthy(pc.iceConnectionState)) return;
      lastRestart = now();
      restart();
      // Still not back by then: try again (a second network change, a lost offer).
      schedule(RETRY_MS);
    }, wait);
  };
  const onChange = () => {
    const state = pc.iceConnectionState;
    if (state === 'disconnected') {
      if (timer === null) schedule(DISCONNECTED_GRACE_MS);
    } else if (state === 'failed') {
      if (timer === null) schedule(0);
    } else if (healthy(state)) {
      cancel();
    }
    // `checking` (as after a restart) keeps the retry pending: a restart whose checks never
    // succeed is followed by another.
  };
  pc.addEventListener('iceconnectionstatechange', onChange);
  return () => {
    cancel();
    pc.removeEventListener('iceconnectionstatechange', onChange);
  };
}

/**
 * States that need nothing: connected, or not started or over.
 * @param {RTCIceConnectionState} state
 */
function healthy(state) {
  return state === 'connected' || state === 'completed' || state === 'new' || state === 'closed';
}
