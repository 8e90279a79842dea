// How times, lengths and sizes read on the page. Pure functions, shared by the room, the
// recordings page and the replay.

/**
 * A length of time as `mm:ss`, or `h:mm:ss` from an hour on.
 * @param {number} ms
 * @returns {string}
 */
export function formatClock(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${String(m).padStart(2, '0')}:${s}`;
}

/**
 * A size in bytes, rounded for people (1 decimal from KB on).
 * @param {number} bytes
 * @returns {string}
 */
export function formatBytes(bytes) {
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${value} ${units[0]}` : `${value.toFixed(1)} ${units[unit]}`;
}

const DATE_TIME = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/**
 * A moment (ms since the Unix epoch) as a local date and time.
 * @param {number} ms
 * @returns {string}
 */
export function formatDateTime(ms) {
  return DATE_TIME.format(new Date(ms));
}
