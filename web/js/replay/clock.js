// The replay's one master clock: where on the recording's timeline the replay stands. Every
// media element follows it (see sync.js); it follows nothing but the time it is given, so it
// never touches the DOM or reads a clock itself.

export class MasterClock {
  /** @param {number} durationMs the recording's length; the clock never runs past it */
  constructor(durationMs) {
    /** @readonly */
    this.durationMs = Math.max(0, durationMs);
    /** @private position when the clock last started, stopped or was set */
    this.baseMs = 0;
    /** @private the `now` it started running at; null while stopped */
    this.startedAt = /** @type {number | null} */ (null);
  }

  /** Whether the clock is running. */
  get running() {
    return this.startedAt !== null;
  }

  /**
   * The position at `now`, in milliseconds on the recording's timeline.
   * @param {number} now a monotonic time in milliseconds (e.g. `performance.now()`)
   * @returns {number}
   */
  position(now) {
    if (this.startedAt === null) return this.baseMs;
    return this.clamp(this.baseMs + (now - this.startedAt));
  }

  /**
   * Whether the clock has reached the end of the recording.
   * @param {number} now
   */
  atEnd(now) {
    return this.position(now) >= this.durationMs;
  }

  /** @param {number} now */
  start(now) {
    if (this.startedAt !== null) return;
    this.startedAt = now;
  }

  /** @param {number} now */
  stop(now) {
    this.baseMs = this.position(now);
    this.startedAt = null;
  }

  /**
   * Puts the clock at `ms`; a running clock runs on from there.
   * @param {number} ms
   * @param {number} now
   */
  seek(ms, now) {
    this.baseMs = this.clamp(ms);
    if (this.startedAt !== null) this.startedAt = now;
  }

  /**
   * @private
   * @param {number} ms
   */
  clamp(ms) {
    return Math.min(this.durationMs, Math.max(0, ms));
  }
}
