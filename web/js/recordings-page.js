// The host's recordings page (/s/<session id>/recordings?k=<host key>): every recording of the
// session, newest first, each with what can be done with it (recording-item.js). While one is
// being recorded, the list refreshes itself until it is finished.

import { getSession } from './api.js';
import { byId, showPageMessage } from './dom.js';
import { RecordingItem } from './recording-item.js';
import { listRecordings, recordingProblem } from './recordings-api.js';

/** How often the list is refreshed while a recording is in progress (ms). */
const LIVE_REFRESH_MS = 2_000;

const el = {
  view: byId('recordings-view', HTMLElement),
  loading: byId('recordings-loading', HTMLElement),
  session: byId('recordings-session', HTMLElement),
  roomLink: byId('recordings-room-link', HTMLAnchorElement),
  heading: byId('recordings-heading', HTMLElement),
  refresh: byId('recordings-refresh', HTMLButtonElement),
  disabled: byId('recordings-disabled', HTMLElement),
  error: byId('recordings-error', HTMLElement),
  empty: byId('recordings-empty', HTMLElement),
  list: byId('recordings-list', HTMLUListElement),
  message: byId('recordings-message', HTMLElement),
  messageTitle: byId('recordings-message-title', HTMLElement),
  messageText: byId('recordings-message-text', HTMLElement),
};

/** @type {Map<string, RecordingItem>} */
const items = new Map();
/** @type {ReturnType<typeof setTimeout> | undefined} */
let refreshTimer;

/**
 * @param {string} title
 * @param {string} text
 */
function showMessage(title, text) {
  showPageMessage(el, title, text);
}

/**
 * @param {string} title
 */
function setTitle(title) {
  el.session.textContent = title;
  el.heading.textContent = `Recordings of ${title}`;
  document.title = `Recordings · ${title} · Hearth`;
}

function renderEmpty() {
  el.empty.hidden = items.size > 0;
}

/**
 * Fetches the list and brings the page in line with it: new recordings on top, changed ones
 * updated in place (so a share link or an export in progress stays on screen), deleted ones gone.
 * @param {string} sessionId
 * @param {string} hostKey
 * @param {boolean} first whether this is the page's first look
 */
async function load(sessionId, hostKey, first) {
  clearTimeout(refreshTimer);
  try {
    const { enabled, recordings } = await listRecordings(sessionId, hostKey);
    el.loading.hidden = true;
    el.view.hidden = false;
    el.error.hidden = true;
    el.disabled.hidden = enabled;
    const seen = new Set();
    /** @type {HTMLElement[]} */
    const ordered = [];
    for (const summary of recordings) {
      seen.add(summary.id);
      let item = items.get(summary.id);
      if (item) {
        item.update(summary);
      } else {
        item = new RecordingItem(summary, {
          hostKey,
          onDeleted: (id) => {
            items.get(id)?.element.remove();
            items.delete(id);
            renderEmpty();
          },
        });
        items.set(summary.id, item);
      }
      ordered.push(item.element);
    }
    for (const [id, item] of items) {
      if (seen.has(id)) continue;
      item.destroy();
      item.element.remove();
      items.delete(id);
    }
    el.list.replaceChildren(...ordered);
    if (recordings[0] && !el.session.textContent) setTitle(recordings[0].title);
    renderEmpty();
    if (recordings.some((r) => r.state === 'recording')) {
      refreshTimer = setTimeout(() => void load(sessionId, hostKey, false), LIVE_REFRESH_MS);
    }
  } catch (error) {
    const problem = recordingProblem(error);
    if (first) {
      showMessage(problem.title, problem.text);
    } else {
      el.error.textContent = `${problem.title}. ${problem.text}`;
      el.error.hidden = false;
    }
  }
}

function main() {
  const match = /^\/s\/([^/]+)\/recordings\/?$/.exec(location.pathname);
  const hostKey = new URLSearchParams(location.search).get('k');
  if (!match || !hostKey) {
    showMessage('This page needs the host link', 'Only the host of a session can see its recordings. Open this page from the host link (the one with ?k=), or with the Recordings button in the session.');
    return;
  }
  const sessionId = decodeURIComponent(match[1]);
  el.roomLink.href = `/s/${encodeURIComponent(sessionId)}?k=${encodeURIComponent(hostKey)}`;
  // The title from the session itself while it lives; an ended session answers 410, and the
  // recordings carry its title anyway.
  getSession(sessionId, { hostKey, inviteKey: null }).then((session) => {
    setTitle(session.title);
    el.roomLink.hidden = false;
  }, () => {});
  el.refresh.addEventListener('click', () => void load(sessionId, hostKey, false));
  void load(sessionId, hostKey, true);
}

main();
