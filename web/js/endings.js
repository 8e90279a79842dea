// What to tell someone whose way into a session, or whose presence in it, came to an end: one
// wording per error code, shared by the join page (HTTP answers) and the room (WebSocket
// errors), so a dead link reads the same wherever it is found out.

/**
 * @typedef {object} Ending
 * @property {string} title
 * @property {string} text
 * @property {boolean} rejoin whether trying the same link again could work
 */

/** @type {Record<string, Ending>} */
const ENDINGS = {
  removed: {
    title: 'You were removed from this session',
    text: 'A host removed you. You cannot rejoin with this link.',
    rejoin: false,
  },
  session_ended: {
    title: 'This session has ended',
    text: 'The host ended the session for everyone. Its links no longer work.',
    rejoin: false,
  },
  declined: {
    title: 'You were not let in',
    text: 'A host declined your request to join this session.',
    rejoin: false,
  },
  session_locked: {
    title: 'This session is locked',
    text: 'A host locked the session: nobody new can join right now. Try again later.',
    rejoin: true,
  },
  session_full: {
    title: 'This session is full',
    text: 'There is no room for more people right now. Try again later.',
    rejoin: true,
  },
  invalid_link: {
    title: 'This invite link is no longer valid',
    text: 'The link was replaced or has expired. Ask the host for a new one.',
    rejoin: false,
  },
  unknown_session: {
    title: 'Session not found',
    text: 'There is no session at this address. Check the link you were given.',
    rejoin: false,
  },
  shutting_down: {
    title: 'The server is restarting',
    text: 'The server is stopping for a moment. Try again shortly.',
    rejoin: true,
  },
};

/**
 * The wording for an error code; `status` tells a link that never worked (404) from one that
 * stopped working (410).
 * @param {string} code
 * @param {string} serverMessage the server's own explanation, used for codes we have no words for
 * @param {number} [status] the HTTP status, when the error came from the API
 * @returns {Ending}
 */
export function endingFor(code, serverMessage, status) {
  if (code === 'invalid_link' && status === 404) {
    return {
      title: 'This link is not valid',
      text: 'Check that you copied the whole link, or ask the host for a new one.',
      rejoin: false,
    };
  }
  return ENDINGS[code] ?? { title: 'Could not join', text: serverMessage || code, rejoin: true };
}
