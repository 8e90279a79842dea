// Recording in the room: the red "Recording" indicator everyone sees while the session is
// recorded, the Record / Stop recording button of hosts and co-hosts, and the host's link to
// the recordings page. The server decides and tells everyone (`recording_updated`); the button
// only asks and waits for that word.

import { byId } from './dom.js';
import { formatClock } from './format.js';
import { runsSession } from './permissions.js';

/** @typedef {import('./call.js').Call} Call */

/** How long the button waits for the server's answer before it may be pressed again. */
const PENDING_MS = 5_000;

/**
 * The address of a session's recordings page, opened with its host key.
 * @param {string} sessionId
 * @param {string} hostKey
 * @returns {string}
 */
export function recordingsPageUrl(sessionId, hostKey) {
  return `/s/${encodeURIComponent(sessionId)}/recordings?k=${encodeURIComponent(hostKey)}`;
}

export class RecordingControls {
  /**
   * @param {Call} call
   * @param {(text: string) => void} notify shows a notice
   * @param {AbortSignal} signal removes the listeners and stops the clock
   */
  constructor(call, notify, signal) {
    /** @private @readonly */
    this.call = call;
    /** @private @readonly */
    this.el = {
      indicator: byId('recording-indicator', HTMLElement),
      elapsed: byId('recording-elapsed', HTMLElement),
      button: byId('record-button', HTMLButtonElement),
      link: byId('recordings-link', HTMLAnchorElement),
    };
    /** @private @type {ReturnType<typeof setTimeout> | undefined} */
    this.pending = undefined;
    const el = this.el;
    el.indicator.hidden = true;
    el.button.hidden = true;
    el.link.hidden = true;
    el.button.addEventListener('click', () => this.toggle(), { signal });
    const clock = setInterval(() => this.renderElapsed(), 1_000);
    const off = [
      call.on('recording', ({ recording, error }) => {
        this.settle();
        if (error && this.runs()) notify(error);
        else if (recording === null && this.runs()) notify('Recording stopped.');
        this.render();
      }),
      call.on('refused', ({ code }) => {
        if (code === 'recording_unavailable' || code === 'forbidden' || code === 'session_ended') this.settle();
        this.render();
      }),
    ];
    signal.addEventListener('abort', () => {
      clearInterval(clock);
      this.settle();
      for (const unsubscribe of off) unsubscribe();
      el.indicator.hidden = true;
    });
    this.render();
  }

  /** Brings the indicator, the button and the link in line with the call. */
  render() {
    const { call, el } = this;
    const joined = call.status === 'joined';
    const recording = joined ? call.recording : null;
    el.indicator.hidden = recording === null;
    el.indicator.dataset.recordingId = recording?.id ?? '';
    this.renderElapsed();

    const runs = joined && this.runs();
    el.button.hidden = !runs;
    el.button.disabled = this.pending !== undefined;
    el.button.setAttribute('aria-pressed', String(recording !== null));
    el.button.dataset.recording = String(recording !== null);
    el.button.textContent = recording ? 'Stop recording' : 'Record';
    el.button.title = recording
      ? 'Stop recording the session (the session goes on)'
      : 'Record everyone’s audio, video and the chat';

    const hostKey = call.hostKey;
    el.link.hidden = !joined || !hostKey;
    if (hostKey) el.link.href = recordingsPageUrl(call.sessionId, hostKey);
  }

  /** @private */
  runs() {
    const role = this.call.role;
    return role !== null && runsSession(role);
  }

  /** @private asks the server to start or stop, and waits for its word */
  toggle() {
    if (this.pending !== undefined) return;
    if (this.call.recording) this.call.requests.stopRecording();
    else this.call.requests.startRecording();
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.render();
    }, PENDING_MS);
    this.render();
  }

  /** @private */
  settle() {
    clearTimeout(this.pending);
    this.pending = undefined;
  }

  /** @private */
  renderElapsed() {
    const recording = this.call.recording;
    this.el.elapsed.textContent = recording ? formatClock(Date.now() - recording.started_at_ms) : '';
  }
}
