// One recording on the host's recordings page: what it is (title, date, length, who was
// there, whether it is complete) and what the host can do with it: open the replay, share it
// by link (and stop sharing), download each file, export it as one video, delete it.

import { ApiError } from './api.js';
import { button, confirmAction, copyFrom, element } from './dom.js';
import { formatBytes, formatClock, formatDateTime } from './format.js';
import {
  deleteRecording, downloadUrl, exportFileUrl, exportStatus, getManifest, shareRecording, startExport, unshareRecording,
} from './recordings-api.js';

/** @typedef {import('./recordings-api.js').RecordingSummary} RecordingSummary */
/** @typedef {import('./recordings-api.js').ExportStatus} ExportStatus */

/** How often a running export is asked how far it got (ms). */
const EXPORT_POLL_MS = 500;

/** @type {Record<RecordingSummary['state'], string>} */
const STATE_LABEL = { recording: 'Recording now', complete: 'Complete', recovered: 'Recovered', failed: 'Failed' };

/**
 * @typedef {object} ItemContext
 * @property {string} hostKey
 * @property {(id: string) => void} onDeleted
 */

/**
 * @param {unknown} error
 * @returns {string}
 */
function describe(error) {
  return error instanceof Error ? error.message : String(error);
}

export class RecordingItem {
  /**
   * @param {RecordingSummary} summary
   * @param {ItemContext} context
   */
  constructor(summary, context) {
    /** @readonly */
    this.id = summary.id;
    /** @private @readonly */
    this.context = context;
    /** @private */
    this.summary = summary;
    /** @private @type {string | null} the replay link, while shared */
    this.replayUrl = summary.replay_url ?? null;
    /** @private @type {ExportStatus | null} */
    this.exported = null;
    /** @private @type {ReturnType<typeof setTimeout> | undefined} */
    this.poll = undefined;
    /** @private */
    this.alive = true;
    /** @private whether the list of files was fetched */
    this.filesLoaded = false;

    const item = element('li', 'recording-item');
    item.dataset.testid = 'recording';
    item.dataset.recordingId = summary.id;
    /** @readonly */
    this.element = item;

    const key = encodeURIComponent(context.hostKey);
    const el = {
      title: element('h2', 'recording-title'),
      state: element('span', 'badge'),
      date: element('time', 'recording-date'),
      duration: element('span', 'recording-duration'),
      size: element('span', 'recording-size muted'),
      people: element('p', 'recording-people'),
      note: element('p', 'recording-note'),
      open: element('a', 'button-link primary small', 'Open'),
      share: button('Share', 'recording-share', () => void this.share(), 'small'),
      exportButton: button('Export as one file', 'recording-export', () => void this.export(), 'small'),
      remove: button('Delete', 'recording-delete', () => void this.remove(), 'small danger'),
      sharePanel: element('div', 'recording-panel'),
      link: element('input'),
      copy: button('Copy', 'recording-copy', () => void this.copy(), 'small'),
      copied: element('span', 'muted small'),
      unshare: button('Stop sharing', 'recording-unshare', () => void this.unshare(), 'small'),
      exportPanel: element('div', 'recording-panel'),
      progress: element('progress'),
      exportText: element('span', 'recording-export-status small'),
      download: element('a', 'button-link small', 'Download'),
      downloads: element('details', 'recording-downloads'),
      files: element('ul', 'recording-files'),
      error: element('p', 'form-error'),
    };
    /** @private @readonly */
    this.el = el;
    el.title.dataset.testid = 'recording-title';
    el.state.dataset.testid = 'recording-state';
    el.date.dataset.testid = 'recording-date';
    el.duration.dataset.testid = 'recording-duration';
    el.people.dataset.testid = 'recording-participants';
    el.note.dataset.testid = 'recording-note';
    el.open.dataset.testid = 'recording-open';
    el.open.href = `/r/${encodeURIComponent(summary.id)}?k=${key}`;
    el.link.readOnly = true;
    el.link.dataset.testid = 'recording-share-link';
    el.link.setAttribute('aria-label', 'Replay link');
    el.copied.dataset.testid = 'recording-copy-status';
    el.sharePanel.dataset.testid = 'recording-share-panel';
    el.sharePanel.hidden = true;
    el.sharePanel.append(element('span', 'muted small', 'Anyone with this link can watch:'), el.link, el.copy, el.copied, el.unshare);
    el.progress.max = 1;
    el.progress.value = 0;
    el.progress.dataset.testid = 'recording-export-progress';
    el.progress.setAttribute('aria-label', 'Export progress');
    el.exportText.dataset.testid = 'recording-export-status';
    el.exportText.setAttribute('role', 'status');
    el.download.dataset.testid = 'recording-export-download';
    el.download.hidden = true;
    el.exportPanel.dataset.testid = 'recording-export-panel';
    el.exportPanel.hidden = true;
    el.exportPanel.append(el.progress, el.exportText, el.download);
    el.downloads.dataset.testid = 'recording-downloads';
    const label = element('summary', undefined, 'Download the separate files');
    el.downloads.append(label, el.files);
    el.downloads.addEventListener('toggle', () => {
      if (el.downloads.open) void this.loadFiles();
    });
    el.error.dataset.testid = 'recording-error';
    el.error.setAttribute('role', 'alert');
    el.error.hidden = true;

    const head = element('div', 'recording-head');
    head.append(el.title, el.state);
    const meta = element('p', 'recording-meta');
    meta.append(el.date, el.duration, el.size);
    const actions = element('div', 'recording-actions');
    actions.append(el.open, el.share, el.exportButton, el.remove);
    item.append(head, meta, el.people, el.note, actions, el.sharePanel, el.exportPanel, el.downloads, el.error);
    this.update(summary);
  }

  /**
   * Shows the recording as the server last listed it.
   * @param {RecordingSummary} summary
   */
  update(summary) {
    const before = this.summary.state;
    this.summary = summary;
    this.replayUrl = summary.replay_url ?? (summary.shared ? this.replayUrl : null);
    const { el } = this;
    const recording = summary.state === 'recording';
    this.element.dataset.state = summary.state;
    el.title.textContent = summary.title;
    el.state.textContent = STATE_LABEL[summary.state] ?? summary.state;
    el.state.dataset.state = summary.state;
    el.state.className = `badge state-${summary.state}`;
    el.date.textContent = formatDateTime(summary.started_at_ms);
    el.date.dateTime = new Date(summary.started_at_ms).toISOString();
    el.duration.textContent = recording ? 'in progress' : formatClock(summary.duration_ms);
    el.duration.title = recording ? '' : `${Math.round(summary.duration_ms / 100) / 10} seconds`;
    el.size.textContent = recording ? '' : formatBytes(summary.bytes);
    el.size.hidden = recording;
    el.people.textContent = summary.participants.length > 0 ? `With ${summary.participants.join(', ')}` : '';
    el.people.hidden = summary.participants.length === 0;
    const note = {
      recording: 'Being recorded now. Stop it in the session to export or delete it.',
      recovered: 'The server stopped unexpectedly while recording; everything saved up to that moment was recovered.',
      failed: `Recording stopped by an error${summary.error ? `: ${summary.error}` : '.'} What was recorded before it is kept.`,
      complete: '',
    }[summary.state] ?? '';
    el.note.textContent = note;
    el.note.hidden = note === '';
    el.note.classList.toggle('form-error', summary.state === 'failed');
    el.exportButton.disabled = recording;
    el.remove.disabled = recording;
    el.remove.title = recording ? 'Stop the recording first' : 'Delete this recording';
    if (before === 'recording' && !recording) {
      // Finished: its files changed, and now it can be exported.
      el.files.replaceChildren();
      this.filesLoaded = false;
    }
    if (!recording && this.exported === null) void this.refreshExport();
    this.renderShare();
  }

  /** Stops asking the server about it. */
  destroy() {
    this.alive = false;
    clearTimeout(this.poll);
  }

  /** @private */
  renderShare() {
    const { el } = this;
    el.share.hidden = this.replayUrl !== null;
    el.sharePanel.hidden = this.replayUrl === null;
    if (this.replayUrl !== null && el.link.value !== this.replayUrl) {
      el.link.value = this.replayUrl;
      el.copied.textContent = '';
    }
    this.element.dataset.shared = String(this.replayUrl !== null);
  }

  /**
   * @private
   * @param {string | null} text
   */
  showError(text) {
    this.el.error.textContent = text ?? '';
    this.el.error.hidden = text === null;
  }

  /** @private */
  async share() {
    this.showError(null);
    this.el.share.disabled = true;
    try {
      this.replayUrl = await shareRecording(this.id, this.context.hostKey);
      this.renderShare();
      await this.copy();
    } catch (error) {
      this.showError(`Could not share: ${describe(error)}`);
    } finally {
      this.el.share.disabled = false;
    }
  }

  /** @private */
  async copy() {
    const copied = await copyFrom(this.el.link);
    this.el.copied.textContent = copied ? 'Copied' : 'Select and copy the link';
    this.el.copied.dataset.copied = String(copied);
  }

  /** @private */
  async unshare() {
    this.showError(null);
    this.el.unshare.disabled = true;
    try {
      await unshareRecording(this.id, this.context.hostKey);
      this.replayUrl = null;
      this.renderShare();
    } catch (error) {
      this.showError(`Could not stop sharing: ${describe(error)}`);
    } finally {
      this.el.unshare.disabled = false;
    }
  }

  /** @private */
  async remove() {
    const when = formatDateTime(this.summary.started_at_ms);
    const ok = await confirmAction(`Delete the recording “${this.summary.title}” of ${when}? Its files and its replay link are gone for good.`, 'Delete');
    if (!ok) return;
    this.showError(null);
    this.el.remove.disabled = true;
    try {
      await deleteRecording(this.id, this.context.hostKey);
      this.destroy();
      this.context.onDeleted(this.id);
    } catch (error) {
      this.showError(`Could not delete: ${describe(error)}`);
      this.el.remove.disabled = false;
    }
  }

  /** @private lists the files, once, when the host opens the list */
  async loadFiles() {
    if (this.filesLoaded) return;
    this.filesLoaded = true;
    const { files } = this.el;
    files.replaceChildren(element('li', 'muted small', 'Loading…'));
    try {
      const manifest = await getManifest(this.id, { hostKey: this.context.hostKey });
      const names = new Map(manifest.participants.map((p) => [p.id, p.name]));
      const items = manifest.streams.map((stream) => {
        const item = element('li');
        const link = element('a', undefined, `${names.get(stream.participant_id) ?? 'Someone'}: ${stream.source}`);
        link.href = downloadUrl(stream);
        link.download = '';
        link.dataset.testid = 'recording-stream-link';
        link.dataset.streamId = stream.id;
        const about = `${stream.kind === 'audio' ? 'sound' : 'video'}, starts at ${formatClock(stream.start_ms)}, ${formatClock(stream.duration_ms)}, ${formatBytes(stream.bytes)}`;
        item.append(link, element('span', 'muted small', ` (${about})`));
        return item;
      });
      files.replaceChildren(...(items.length > 0 ? items : [element('li', 'muted small', 'Nothing was recorded.')]));
    } catch (error) {
      this.filesLoaded = false;
      files.replaceChildren(element('li', 'form-error', `Could not list the files: ${describe(error)}`));
    }
  }

  /** @private asks where the export stands, and keeps asking while it runs */
  async refreshExport() {
    clearTimeout(this.poll);
    try {
      this.renderExport(await exportStatus(this.id, { hostKey: this.context.hostKey }));
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return;
      this.renderExport({ state: 'failed', progress: 0, error: describe(error) });
    }
  }

  /** @private */
  async export() {
    this.showError(null);
    this.el.exportButton.disabled = true;
    try {
      this.renderExport(await startExport(this.id, this.context.hostKey));
    } catch (error) {
      if (error instanceof ApiError && error.code === 'export_unavailable') {
        this.renderExport({ state: 'unavailable', progress: 0, error: error.message });
      } else if (error instanceof ApiError && error.code === 'export_busy') {
        this.showError(error.message);
        this.el.exportButton.disabled = false;
      } else {
        this.renderExport({ state: 'failed', progress: 0, error: describe(error) });
      }
    }
  }

  /**
   * @private
   * @param {ExportStatus} status
   */
  renderExport(status) {
    if (!this.alive) return;
    this.exported = status;
    const { el } = this;
    const recording = this.summary.state === 'recording';
    el.exportPanel.dataset.state = status.state;
    el.exportPanel.hidden = status.state === 'none';
    el.progress.hidden = status.state !== 'running';
    el.progress.value = status.progress;
    el.download.hidden = status.state !== 'done';
    el.exportButton.hidden = status.state === 'running' || status.state === 'done';
    el.exportButton.disabled = recording || status.state === 'unavailable';
    el.exportButton.textContent = status.state === 'failed' ? 'Try the export again' : 'Export as one file';
    el.exportText.classList.toggle('form-error', status.state === 'failed' || status.state === 'unavailable');
    switch (status.state) {
      case 'running':
        el.exportText.textContent = `Exporting… ${Math.round(status.progress * 100)}%`;
        this.poll = setTimeout(() => void this.refreshExport(), EXPORT_POLL_MS);
        break;
      case 'done': {
        const kind = status.content_type === 'video/webm' ? 'WebM' : 'MP4';
        el.exportText.textContent = 'Exported as one video.';
        el.download.textContent = `Download the video (${kind})`;
        el.download.href = exportFileUrl(this.id, { hostKey: this.context.hostKey });
        break;
      }
      case 'failed':
        el.exportText.textContent = `The export failed: ${status.error ?? 'no reason given'}`;
        break;
      case 'unavailable':
        el.exportText.textContent = `Export is not available: ${status.error ?? 'ffmpeg is not installed on this server.'}`;
        break;
      default:
        el.exportText.textContent = '';
    }
  }
}
