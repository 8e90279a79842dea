// Entry point: decides which page to show (home, join, waiting, room, message) and wires a
// Call to the room view. Pages are sections of index.html; switching between them keeps the
// document, so the click on "Start session" still counts as the gesture that allows sound.

import { ApiError, createSession, getSession } from './api.js';
import { Call } from './call.js';
import { byId } from './dom.js';
import { endingFor } from './endings.js';
import { signalingUrl } from './protocol.js';
import { recordingsPageUrl } from './recording.js';
import { listRecordings } from './recordings-api.js';
import { RoomView } from './room.js';

/** sessionStorage: per tab, so two tabs can be two different people. */
const NAME_KEY = 'hearth.name';
/**
 * localStorage: survives a reload or a closed tab, so a returning person is recognised (and a
 * removed one stays out).
 * @param {string} sessionId
 */
const resumeKey = (sessionId) => `hearth.resume.${sessionId}`;

/** @typedef {import('./api.js').LinkKeys} LinkKeys */

const views = {
  home: byId('home-view', HTMLElement),
  join: byId('join-view', HTMLElement),
  waiting: byId('waiting-view', HTMLElement),
  room: byId('room-view', HTMLElement),
  message: byId('message-view', HTMLElement),
};

/** The call in progress, if any. @type {Call | null} */
let call = null;
/** Its view. @type {RoomView | null} */
let room = null;
/** Bumped on every enter/leave, so events of an abandoned call cannot change the page. */
let generation = 0;

/** @param {keyof typeof views} name */
function show(name) {
  for (const [key, view] of Object.entries(views)) view.hidden = key !== name;
}

/**
 * @param {string} title
 * @param {string} text
 * @param {string | null} rejoinHref a link back into the session, when that makes sense
 */
function showMessage(title, text, rejoinHref) {
  byId('message-title', HTMLElement).textContent = title;
  byId('message-text', HTMLElement).textContent = text;
  const rejoin = byId('rejoin-link', HTMLAnchorElement);
  rejoin.hidden = rejoinHref === null;
  rejoin.href = rejoinHref ?? '/';
  byId('ended-recordings-link', HTMLAnchorElement).hidden = true;
  byId('recording-indicator', HTMLElement).hidden = true;
  byId('room-count', HTMLElement).textContent = '';
  byId('room-shape', HTMLElement).hidden = true;
  byId('room-locked', HTMLElement).hidden = true;
  document.title = `${title} · Hearth`;
  show('message');
}

/**
 * On the page a host sees after the call, a link to the session's recordings, when it has
 * any (the list needs the host key, which only the host holds).
 * @param {string} sessionId
 * @param {string} hostKey
 * @param {number} mine the generation the message belongs to
 */
function offerRecordings(sessionId, hostKey, mine) {
  listRecordings(sessionId, hostKey).then(({ recordings }) => {
    if (mine !== generation || recordings.length === 0) return;
    const link = byId('ended-recordings-link', HTMLAnchorElement);
    link.href = recordingsPageUrl(sessionId, hostKey);
    link.textContent = recordings.length === 1 ? 'The recording of this session' : `The ${recordings.length} recordings of this session`;
    link.hidden = false;
  }, () => {
    // No list, no link: the page already says what happened.
  });
}

/**
 * @param {HTMLElement} element
 * @param {string | null} text
 */
function setError(element, text) {
  element.textContent = text ?? '';
  element.hidden = text === null;
}

/** @returns {string} */
function rememberedName() {
  return sessionStorage.getItem(NAME_KEY) ?? '';
}

function route() {
  const path = location.pathname;
  byId('room-title', HTMLElement).textContent = '';
  byId('room-count', HTMLElement).textContent = '';
  byId('room-shape', HTMLElement).hidden = true;
  byId('room-locked', HTMLElement).hidden = true;
  if (path === '/' || path === '/index.html') {
    homePage();
    return;
  }
  const match = /^\/s\/([^/]+)\/?$/.exec(path);
  if (match) {
    const params = new URLSearchParams(location.search);
    sessionPage(decodeURIComponent(match[1]), { hostKey: params.get('k'), inviteKey: params.get('i') });
    return;
  }
  showMessage('Page not found', 'There is nothing at this address.', null);
}

function homePage() {
  document.title = 'Hearth';
  byId('start-name-input', HTMLInputElement).value = rememberedName();
  setError(byId('start-error', HTMLElement), null);
  show('home');
}

/** @param {SubmitEvent} event */
async function startSession(event) {
  event.preventDefault();
  const button = byId('start-button', HTMLButtonElement);
  const title = byId('title-input', HTMLInputElement).value.trim();
  const name = byId('start-name-input', HTMLInputElement).value.trim();
  const shape = byId('shape-select', HTMLSelectElement).value === 'stage' ? 'stage' : 'room';
  const waitingRoom = byId('waiting-room-input', HTMLInputElement).checked;
  const error = byId('start-error', HTMLElement);
  if (!title || !name) {
    setError(error, 'Please enter a title and your name.');
    return;
  }
  setError(error, null);
  button.disabled = true;
  try {
    const session = await createSession({ title, shape, waiting_room: waitingRoom });
    sessionStorage.setItem(NAME_KEY, name);
    const target = new URL(session.host_url, location.href);
    if (target.origin === location.origin) {
      // Same page, new address: keeps this click's permission to play sound in the room.
      history.pushState(null, '', target);
      route();
    } else {
      location.assign(target);
    }
  } catch (err) {
    setError(error, err instanceof ApiError ? `Could not start the session: ${err.message}` : String(err));
  } finally {
    button.disabled = false;
  }
}

/**
 * @param {string} sessionId
 * @param {LinkKeys} keys
 */
function sessionPage(sessionId, keys) {
  const name = rememberedName();
  if (keys.hostKey && name) {
    // The host just started this session (or rejoins it): no second name prompt.
    void enterRoom(sessionId, name, keys);
    return;
  }
  const heading = byId('join-title', HTMLElement);
  const info = byId('join-info', HTMLElement);
  const form = byId('join-form', HTMLFormElement);
  heading.textContent = 'Join';
  info.textContent = 'Looking up the session…';
  form.hidden = true;
  byId('join-name-input', HTMLInputElement).value = name;
  setError(byId('join-error', HTMLElement), null);
  form.dataset.sessionId = sessionId;
  form.dataset.hostKey = keys.hostKey ?? '';
  form.dataset.inviteKey = keys.inviteKey ?? '';
  show('join');
  getSession(sessionId, keys).then((session) => {
    heading.textContent = `Join ${session.title}`;
    document.title = `Join ${session.title} · Hearth`;
    const others = session.participants;
    info.textContent = others === 0 ? 'Nobody is here yet.' : others === 1 ? '1 person is here.' : `${others} people are here.`;
    if (keys.hostKey) info.textContent += ' You will join as host.';
    form.hidden = false;
    byId('join-name-input', HTMLInputElement).focus();
  }, (err) => {
    if (err instanceof ApiError && (err.status === 404 || err.status === 410)) {
      const ending = endingFor(err.code, err.message, err.status);
      showMessage(ending.title, ending.text, null);
    } else {
      showMessage('Could not load the session', err instanceof Error ? err.message : String(err), location.href);
    }
  });
}

/** @param {SubmitEvent} event */
function joinSession(event) {
  event.preventDefault();
  const form = byId('join-form', HTMLFormElement);
  const name = byId('join-name-input', HTMLInputElement).value.trim();
  if (!name) {
    setError(byId('join-error', HTMLElement), 'Please enter your name.');
    return;
  }
  sessionStorage.setItem(NAME_KEY, name);
  void enterRoom(form.dataset.sessionId ?? '', name, {
    hostKey: form.dataset.hostKey || null,
    inviteKey: form.dataset.inviteKey || null,
  });
}

/**
 * @param {string} sessionId
 * @param {string} name
 * @param {LinkKeys} keys
 */
function enterRoom(sessionId, name, keys) {
  leaveCurrent();
  const mine = generation;
  const here = location.href;
  show('room');
  const current = new Call({
    signalingUrl: signalingUrl(location),
    sessionId,
    name,
    hostKey: keys.hostKey ?? undefined,
    inviteKey: keys.inviteKey ?? undefined,
    resumeToken: localStorage.getItem(resumeKey(sessionId)) ?? undefined,
  });
  call = current;
  room = new RoomView(current, name);
  current.on('waiting', (session) => {
    if (mine !== generation) return;
    byId('waiting-title', HTMLElement).textContent = `Waiting to join ${session.title}`;
    document.title = `Waiting · ${session.title} · Hearth`;
    show('waiting');
  });
  current.on('joined', ({ resumeToken }) => {
    if (mine !== generation) return;
    if (resumeToken) localStorage.setItem(resumeKey(sessionId), resumeToken);
    show('room');
  });
  current.on('ended', (end) => {
    if (mine !== generation) return;
    room?.destroy();
    room = null;
    switch (end.reason) {
      case 'left':
        showMessage('You left', 'You left the session.', here);
        break;
      case 'lost':
        showMessage('Connection lost', end.message, here);
        break;
      case 'error': {
        const ending = endingFor(end.code ?? '', end.message);
        // A code we have no words for: say whether we ever got in.
        const title = ending.title === 'Could not join' && current.participantId ? 'Disconnected by the server' : ending.title;
        showMessage(title, ending.text, ending.rejoin ? here : null);
        break;
      }
    }
    if (keys.hostKey && current.participantId) offerRecordings(sessionId, keys.hostKey, mine);
  });
  current.start();
}

/** Leaves the current call, if any (e.g. when the user navigates back). */
function leaveCurrent() {
  generation += 1;
  if (call && call.status !== 'ended') call.leave();
  room?.destroy();
  room = null;
  call = null;
}

byId('start-form', HTMLFormElement).addEventListener('submit', (event) => void startSession(event));
byId('join-form', HTMLFormElement).addEventListener('submit', joinSession);
byId('waiting-leave', HTMLButtonElement).addEventListener('click', () => call?.leave());
// A network that comes back is the best moment to retry, rather than at the next backoff step.
window.addEventListener('online', () => call?.reconnectNow());
window.addEventListener('popstate', () => {
  leaveCurrent();
  route();
});

// Read-only handles for tests and debugging: `hearth.state()`, `hearth.subscribePc.getStats()`.
Object.defineProperty(window, 'hearth', {
  value: Object.freeze({
    state: () => {
      const publisher = call?.publisher;
      return {
        status: call?.status ?? 'idle',
        reconnecting: call?.reconnecting ?? false,
        participantId: call?.participantId ?? null,
        role: call?.role ?? null,
        self: call?.self ?? null,
        session: call?.session ?? null,
        settings: call?.settings ?? null,
        inviteUrl: call?.inviteUrl ?? null,
        recording: call?.recording ?? null,
        participants: call ? [...call.participants.values()] : [],
        waiting: call?.waiting ?? [],
        chat: call?.chat ?? [],
        tracks: call ? [...call.remote.announced.values()] : [],
        remoteTracks: call?.remote.list() ?? [],
        publishing: publisher?.allowed ?? false,
        localTracks: [
          ...(publisher?.stream?.getTracks() ?? []).map((track) => ({
            id: track.id, kind: track.kind, source: track.kind === 'audio' ? 'microphone' : 'camera', enabled: track.enabled,
          })),
          ...(publisher?.screen ? [{ id: publisher.screen.id, kind: 'video', source: 'screen', enabled: publisher.screen.enabled }] : []),
        ],
        tiles: room?.tileStates() ?? [],
        end: call?.end ?? null,
      };
    },
    get subscribePc() {
      return call?.subscribePc ?? null;
    },
    get publishPc() {
      return call?.publishPc ?? null;
    },
  }),
});

route();
