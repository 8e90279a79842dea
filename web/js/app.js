// Entry point: decides which page to show (home, join, room, message) and wires a Call to the
// room view. Pages are sections of index.html; switching between them keeps the document, so
// the click on "Start session" still counts as the gesture that allows sound in the room.

import { ApiError, createSession, getSession } from './api.js';
import { Call } from './call.js';
import { openLocalMedia } from './media.js';
import { signalingUrl } from './protocol.js';
import { RoomView } from './room.js';

/** sessionStorage keys: per tab, so two tabs can be two different people. */
const NAME_KEY = 'hearth.name';
/** @param {string} sessionId */
const inviteKey = (sessionId) => `hearth.invite.${sessionId}`;

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new () => T} type
 * @returns {T}
 */
function byId(id, type) {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`index.html lacks #${id}`);
  return element;
}

const views = {
  home: byId('home-view', HTMLElement),
  join: byId('join-view', HTMLElement),
  room: byId('room-view', HTMLElement),
  message: byId('message-view', HTMLElement),
};

/** @type {import('./room.js').RoomElements} */
const roomElements = {
  status: byId('room-status', HTMLElement),
  notices: byId('notices', HTMLElement),
  tiles: byId('tiles', HTMLElement),
  title: byId('room-title', HTMLElement),
  count: byId('room-count', HTMLElement),
  invitePanel: byId('invite-panel', HTMLElement),
  inviteLink: byId('invite-link', HTMLInputElement),
  inviteStatus: byId('invite-status', HTMLElement),
  micButton: byId('mic-button', HTMLButtonElement),
  cameraButton: byId('camera-button', HTMLButtonElement),
  inviteButton: byId('invite-button', HTMLButtonElement),
  soundButton: byId('sound-button', HTMLButtonElement),
  leaveButton: byId('leave-button', HTMLButtonElement),
};

/** The call in progress, if any. @type {Call | null} */
let call = null;
/** Its view. @type {RoomView | null} */
let room = null;
/** The invite link of the current room. @type {string | null} */
let inviteUrl = null;
/** Bumped on every enter/leave, so a slow camera prompt cannot revive an abandoned room. */
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
  byId('room-count', HTMLElement).textContent = '';
  show('message');
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
  if (path === '/' || path === '/index.html') {
    homePage();
    return;
  }
  const match = /^\/s\/([^/]+)\/?$/.exec(path);
  if (match) {
    sessionPage(decodeURIComponent(match[1]), new URLSearchParams(location.search).get('k'));
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
  const error = byId('start-error', HTMLElement);
  if (!title || !name) {
    setError(error, 'Please enter a title and your name.');
    return;
  }
  setError(error, null);
  button.disabled = true;
  try {
    const session = await createSession(title);
    sessionStorage.setItem(NAME_KEY, name);
    sessionStorage.setItem(inviteKey(session.id), session.invite_url);
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
 * @param {string | null} hostKey
 */
function sessionPage(sessionId, hostKey) {
  const name = rememberedName();
  if (hostKey && name) {
    // The host just started this session (or rejoins it): no second name prompt.
    void enterRoom(sessionId, name, hostKey);
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
  form.dataset.hostKey = hostKey ?? '';
  show('join');
  getSession(sessionId).then((session) => {
    heading.textContent = `Join ${session.title}`;
    document.title = `Join ${session.title} · Hearth`;
    const others = session.participants;
    info.textContent = others === 0 ? 'Nobody is here yet.' : others === 1 ? '1 person is here.' : `${others} people are here.`;
    if (hostKey) info.textContent += ' You will join as host.';
    form.hidden = false;
    byId('join-name-input', HTMLInputElement).focus();
  }, (err) => {
    if (err instanceof ApiError && err.status === 404) {
      showMessage('Session not found', 'This session does not exist or has ended. Check the link you were given.', null);
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
  void enterRoom(form.dataset.sessionId ?? '', name, form.dataset.hostKey || null);
}

/**
 * @param {string} sessionId
 * @param {string} name
 * @param {string | null} hostKey
 */
async function enterRoom(sessionId, name, hostKey) {
  leaveCurrent();
  const mine = generation;
  const here = location.href;
  inviteUrl = sessionStorage.getItem(inviteKey(sessionId)) ?? `${location.origin}/s/${encodeURIComponent(sessionId)}`;
  show('room');
  roomElements.status.textContent = 'Opening camera and microphone…';
  const media = await openLocalMedia();
  if (mine !== generation) {
    for (const track of media.stream?.getTracks() ?? []) track.stop();
    return;
  }
  const current = new Call({
    signalingUrl: signalingUrl(location),
    sessionId,
    name,
    hostKey: hostKey ?? undefined,
    localStream: media.stream,
  });
  call = current;
  room = new RoomView(current, roomElements, inviteUrl, name);
  if (media.problem) roomElements.notices.append(noticeElement(media.problem));
  current.on('ended', (end) => {
    if (call !== current) return;
    room?.destroy();
    room = null;
    switch (end.reason) {
      case 'left':
        showMessage('You left', 'You left the session.', here);
        break;
      case 'lost':
        showMessage('Connection lost', end.message, here);
        break;
      case 'error':
        showMessage(
          end.code === 'unknown_session' ? 'Session not found' : current.participantId ? 'Disconnected by the server' : 'Could not join',
          end.message,
          end.code === 'unknown_session' ? null : here,
        );
        break;
    }
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

/**
 * @param {string} text
 * @returns {HTMLElement}
 */
function noticeElement(text) {
  const item = document.createElement('p');
  item.className = 'notice';
  item.dataset.testid = 'notice';
  item.textContent = text;
  return item;
}

byId('start-form', HTMLFormElement).addEventListener('submit', (event) => void startSession(event));
byId('join-form', HTMLFormElement).addEventListener('submit', joinSession);
window.addEventListener('popstate', () => {
  leaveCurrent();
  route();
});

// Read-only handles for tests and debugging: `hearth.state()`, `hearth.subscribePc.getStats()`.
Object.defineProperty(window, 'hearth', {
  value: Object.freeze({
    state: () => ({
      status: call?.status ?? 'idle',
      participantId: call?.participantId ?? null,
      role: call?.role ?? null,
      session: call?.session ?? null,
      inviteUrl,
      participants: call ? [...call.participants.values()] : [],
      tracks: call ? [...call.tracks.values()] : [],
      remoteTracks: call ? [...call.remoteTracks.values()] : [],
      tiles: room?.tileStates() ?? [],
    }),
    get subscribePc() {
      return call?.subscribePc ?? null;
    },
    get publishPc() {
      return call?.publishPc ?? null;
    },
  }),
});

route();
