// The replay page (/r/<recording id>?r=<replay key>, or ?k=<host key> for the host): loads the
// manifest, lets a ReplayPlayer lay out the tiles, and drives it from the play button and the
// seek bar. The chat, joins and leaves appear beside it as the clock reaches them.

import { byId, element, showPageMessage } from './dom.js';
import { formatClock, formatDateTime } from './format.js';
import { recordingsPageUrl } from './recording.js';
import { getManifest, recordingProblem } from './recordings-api.js';
import { ReplayPlayer } from './replay/player.js';
import { eventsBy } from './replay/timeline.js';

/** @typedef {import('./recordings-api.js').Manifest} Manifest */
/** @typedef {import('./recordings-api.js').ReplayEvent} ReplayEvent */
/** @typedef {import('./recordings-api.js').RecordingKey} RecordingKey */

/** How far the arrow keys move the replay (ms). */
const STEP_MS = 5_000;
/** How long a notice stays on screen. */
const NOTICE_MS = 8_000;

const el = {
  loading: byId('replay-loading', HTMLElement),
  view: byId('replay-view', HTMLElement),
  title: byId('replay-title', HTMLElement),
  badge: byId('replay-badge', HTMLElement),
  when: byId('replay-when', HTMLElement),
  banner: byId('replay-banner', HTMLElement),
  notices: byId('replay-notices', HTMLElement),
  tiles: byId('replay-tiles', HTMLElement),
  screens: byId('replay-screens', HTMLElement),
  empty: byId('replay-empty', HTMLElement),
  audio: byId('replay-audio', HTMLElement),
  play: byId('replay-play', HTMLButtonElement),
  time: byId('replay-time', HTMLElement),
  seek: byId('replay-seek', HTMLInputElement),
  status: byId('replay-status', HTMLElement),
  events: byId('replay-events', HTMLOListElement),
  eventsEmpty: byId('replay-events-empty', HTMLElement),
  hostLinks: byId('replay-host-links', HTMLElement),
  recordingsLink: byId('replay-recordings-link', HTMLAnchorElement),
  message: byId('replay-message', HTMLElement),
  messageTitle: byId('replay-message-title', HTMLElement),
  messageText: byId('replay-message-text', HTMLElement),
};

/** @type {ReplayPlayer | null} */
let player = null;

/**
 * @param {string} title
 * @param {string} text
 */
function showMessage(title, text) {
  showPageMessage(el, title, text);
}

/** @param {string} text */
function notice(text) {
  const item = element('p', 'notice', text);
  item.dataset.testid = 'notice';
  el.notices.append(item);
  setTimeout(() => item.remove(), NOTICE_MS);
}

/**
 * The link's recording id and key, if it has both.
 * @returns {{id: string, key: RecordingKey} | null}
 */
function fromAddress() {
  const match = /^\/r\/([^/]+)\/?$/.exec(location.pathname);
  if (!match) return null;
  const params = new URLSearchParams(location.search);
  const replayKey = params.get('r');
  const id = decodeURIComponent(match[1]);
  if (replayKey) return { id, key: { replayKey } };
  // A host's own link carries the host key, which must not travel further than this tab: it
  // is kept for this tab (so a reload still works) and taken out of the address bar, so that
  // copying the address can never hand someone the host key. Sharing is what replay links
  // (`?r=`) are for.
  const storageKey = `hearth.replay-host-key.${id}`;
  const hostKey = params.get('k') ?? sessionStorage.getItem(storageKey);
  if (!hostKey) return null;
  if (params.has('k')) {
    sessionStorage.setItem(storageKey, hostKey);
    history.replaceState(null, '', location.pathname);
  }
  return { id, key: { hostKey } };
}

/**
 * One line of the side list.
 * @param {ReplayEvent} event
 * @param {(ms: number) => void} seekTo
 * @returns {HTMLLIElement}
 */
function eventItem(event, seekTo) {
  const item = element('li', `chat-message replay-event ${event.type}`);
  item.dataset.testid = 'replay-event';
  item.dataset.type = event.type;
  item.dataset.atMs = String(event.at_ms);
  const head = element('div', 'chat-head');
  const name = element('span', 'chat-name', event.name);
  head.append(name);
  if (event.type !== 'chat') {
    const what = event.type === 'leave' ? 'left' : event.at_ms === 0 ? 'was there from the start' : 'joined';
    head.append(element('span', 'muted', what));
  }
  const at = element('button', 'chat-time link-button', formatClock(event.at_ms));
  at.type = 'button';
  at.title = 'Go to this moment';
  at.setAttribute('aria-label', `Go to ${formatClock(event.at_ms)}`);
  at.addEventListener('click', () => seekTo(event.at_ms));
  head.append(at);
  item.append(head);
  if (event.type === 'chat') {
    const text = element('p', 'chat-text', event.text ?? '');
    text.dataset.testid = 'replay-event-text';
    item.append(text);
  }
  return item;
}

/**
 * @param {Manifest} manifest
 * @param {RecordingKey} key
 */
function showReplay(manifest, key) {
  el.loading.hidden = true;
  el.view.hidden = false;
  el.title.textContent = manifest.title;
  document.title = `Replay: ${manifest.title} · Hearth`;
  el.when.textContent = `${formatDateTime(manifest.started_at_ms)} · ${formatClock(manifest.duration_ms)}`;
  const banner = {
    recording: 'This session is still being recorded: the replay shows what was recorded when the page opened.',
    recovered: 'The server stopped while this was being recorded; this is everything that was saved.',
    failed: `Recording stopped early${manifest.error ? `: ${manifest.error}` : '.'} This is everything that was saved.`,
    complete: '',
  }[manifest.state] ?? '';
  el.banner.textContent = banner;
  el.banner.hidden = banner === '';
  el.badge.hidden = manifest.state === 'complete';
  el.badge.textContent = manifest.state === 'recording' ? 'Still recording' : manifest.state === 'recovered' ? 'Recovered' : 'Incomplete';
  el.badge.classList.toggle('warn', manifest.state !== 'complete');
  if (manifest.access === 'host' && 'hostKey' in key) {
    el.recordingsLink.href = recordingsPageUrl(manifest.session_id, key.hostKey);
    el.hostLinks.hidden = false;
  }

  const replay = new ReplayPlayer(manifest, { tiles: el.tiles, screens: el.screens, audio: el.audio });
  player = replay;
  el.seek.max = String(manifest.duration_ms);
  el.seek.disabled = manifest.duration_ms <= 0;
  let dragging = false;
  /** The seek bar's value as the clock last wrote it: a different one is the user's, not yet seen. */
  let written = el.seek.value;
  let shown = 0;

  const seekTo = (/** @type {number} */ ms) => replay.seek(ms);
  const renderState = () => {
    const ended = !replay.playing && replay.position() >= replay.durationMs && replay.durationMs > 0;
    const label = replay.playing ? 'Pause' : ended ? 'Play again' : 'Play';
    el.play.textContent = label;
    el.play.setAttribute('aria-label', label);
    el.play.dataset.playing = String(replay.playing);
    el.view.dataset.state = replay.waiting ? 'waiting' : replay.playing ? 'playing' : ended ? 'ended' : 'paused';
    el.status.textContent = replay.waiting ? 'Loading…' : '';
  };
  const renderTime = (/** @type {number} */ t) => {
    el.view.dataset.masterMs = String(Math.round(t));
    el.time.textContent = `${formatClock(t)} / ${formatClock(replay.durationMs)}`;
    if (!dragging && el.seek.value === written) {
      el.seek.value = String(Math.round(t));
      written = el.seek.value;
    }
    el.seek.setAttribute('aria-valuetext', `${formatClock(t)} of ${formatClock(replay.durationMs)}`);
    const count = eventsBy(replay.events, t);
    if (count !== shown) {
      // Forward: the new ones join the end; back (a seek): the list is cut to the moment.
      while (shown > count) {
        el.events.lastElementChild?.remove();
        shown -= 1;
      }
      const atEnd = el.events.scrollHeight - el.events.scrollTop - el.events.clientHeight < 40;
      for (; shown < count; shown += 1) el.events.append(eventItem(replay.events[shown], seekTo));
      if (atEnd) el.events.scrollTop = el.events.scrollHeight;
      el.eventsEmpty.hidden = shown > 0;
    }
    el.empty.hidden = [...el.tiles.children].some((tile) => !(/** @type {HTMLElement} */ (tile).hidden));
  };
  replay.on('time', renderTime);
  replay.on('state', renderState);
  replay.on('blocked', (text) => notice(text));

  el.play.addEventListener('click', () => (replay.playing ? replay.pause() : replay.play()));
  el.seek.addEventListener('pointerdown', () => {
    dragging = true;
  });
  el.seek.addEventListener('pointerup', () => {
    dragging = false;
  });
  // `input` fires for every move by the user (dragging, a click, a key): the picture follows
  // the thumb. `change` is not a seek: the browser may fire it for a value the clock wrote.
  el.seek.addEventListener('input', () => {
    written = el.seek.value;
    replay.seek(Number(el.seek.value));
  });
  el.seek.addEventListener('change', () => {
    dragging = false;
  });
  document.addEventListener('keydown', (event) => {
    const target = event.target;
    if (target instanceof HTMLInputElement || target instanceof HTMLButtonElement || target instanceof HTMLTextAreaElement) return;
    if (event.key === ' ' || event.key === 'k') {
      event.preventDefault();
      if (replay.playing) replay.pause();
      else replay.play();
    } else if (event.key === 'ArrowRight' || event.key === 'ArrowLeft') {
      event.preventDefault();
      replay.seek(replay.position() + (event.key === 'ArrowRight' ? STEP_MS : -STEP_MS));
    }
  });
  renderState();
  renderTime(replay.position());
}

async function main() {
  const link = fromAddress();
  if (!link) {
    showMessage('This replay link is incomplete', 'A replay link looks like /r/<recording>?r=<key>. Check that you copied the whole link.');
    return;
  }
  try {
    showReplay(await getManifest(link.id, link.key), link.key);
  } catch (error) {
    const problem = recordingProblem(error);
    showMessage(problem.title, problem.text);
  }
}

// Read-only handles for tests and debugging: `hearthReplay.state()` samples the master clock
// and every element at one instant.
Object.defineProperty(window, 'hearthReplay', {
  value: Object.freeze({
    state: () => (player ? {
      masterMs: player.position(),
      durationMs: player.durationMs,
      playing: player.playing,
      waiting: player.waiting,
      tracks: player.trackStates(),
    } : null),
    /** @param {number} ms */
    seek: (ms) => player?.seek(ms),
  }),
});

void main();
