// How large we show each received video, for the server (`track_view` in docs/protocol.md):
// it sends the smallest simulcast layer that covers a tile, and nothing for a tile nobody can
// see (scrolled away, a hidden tab, a minimised window). No WebSocket here: `report` sends.

/**
 * @callback Report
 * @param {string} trackId
 * @param {number} width device pixels; 0 when not shown
 * @param {number} height device pixels; 0 when not shown
 * @returns {void}
 */

/** Reports wait this long after the last change: a window being resized changes every frame. */
const SETTLE_MS = 250;

export class ViewReporter {
  /** @param {Report} report */
  constructor(report) {
    /** @private @readonly */
    this.report = report;
    /** @private @type {Map<HTMLVideoElement, {visible: boolean}>} */
    this.watched = new Map();
    /** @private @type {Map<string, string>} what was last reported per track, "w x h" */
    this.sent = new Map();
    /** @private @type {ReturnType<typeof setTimeout> | null} */
    this.timer = null;
    /** @private @readonly */
    this.resize = new ResizeObserver(() => this.schedule());
    /** @private @readonly */
    this.intersection = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        const state = this.watched.get(/** @type {HTMLVideoElement} */ (entry.target));
        if (state) state.visible = entry.isIntersecting;
      }
      this.schedule();
    });
    /** @private @readonly */
    this.onVisibility = () => this.schedule();
    document.addEventListener('visibilitychange', this.onVisibility);
  }

  /**
   * Starts (or keeps) watching a remote video element; call again when its stream changed.
   * @param {HTMLVideoElement} video
   */
  watch(video) {
    if (!this.watched.has(video)) {
      // Until the observer says otherwise, assume shown: a new tile is usually on screen.
      this.watched.set(video, { visible: true });
      this.resize.observe(video);
      this.intersection.observe(video);
    }
    this.schedule();
  }

  /** @param {HTMLVideoElement} video */
  unwatch(video) {
    if (!this.watched.delete(video)) return;
    this.resize.unobserve(video);
    this.intersection.unobserve(video);
  }

  /**
   * Reports every size again: after a fresh join the server holds a new subscription and knows
   * none of them (a resumed one keeps what it was told).
   */
  forget() {
    this.sent.clear();
    this.schedule();
  }

  /** Stops everything (the call ended). */
  close() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.resize.disconnect();
    this.intersection.disconnect();
    document.removeEventListener('visibilitychange', this.onVisibility);
    this.watched.clear();
  }

  /** @private */
  schedule() {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, SETTLE_MS);
  }

  /** @private reports every track whose shown size changed */
  flush() {
    const hidden = document.visibilityState === 'hidden';
    const scale = window.devicePixelRatio || 1;
    /** @type {Map<string, [number, number]>} */
    const now = new Map();
    for (const [video, { visible }] of this.watched) {
      const stream = video.srcObject;
      if (!(stream instanceof MediaStream)) continue;
      const shown = visible && !hidden && video.isConnected;
      const width = shown ? Math.round(video.clientWidth * scale) : 0;
      const height = shown ? Math.round(video.clientHeight * scale) : 0;
      for (const track of stream.getVideoTracks()) {
        // An ended track is no longer forwarded: nothing to report.
        if (track.readyState !== 'ended') now.set(track.id, [width, height]);
      }
    }
    for (const [trackId, [width, height]] of now) {
      const key = `${width}x${height}`;
      if (this.sent.get(trackId) === key) continue;
      this.sent.set(trackId, key);
      this.report(trackId, width, height);
    }
    for (const trackId of [...this.sent.keys()]) if (!now.has(trackId)) this.sent.delete(trackId);
  }
}
