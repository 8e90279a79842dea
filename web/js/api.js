// The server's small HTTP API (sessions; recordings are in recordings-api.js). Errors come back as
// `{"error": {"code": "...", "message": "..."}}`, which we turn into an ApiError.

/**
 * @typedef {object} CreatedSession
 * @property {string} id
 * @property {string} title
 * @property {string} host_url the link that makes its holder the host (contains the host key)
 * @property {string} invite_url the link to give to attendees (contains the invite key)
 */

/**
 * What the home page asks for.
 * @typedef {object} NewSession
 * @property {string} title
 * @property {import('./protocol.js').Shape} shape
 * @property {boolean} waiting_room
 */

/**
 * The key a link carries: `k` (host) or `i` (invite). The server answers only to a valid one.
 * @typedef {object} LinkKeys
 * @property {string | null} hostKey
 * @property {string | null} inviteKey
 */

/**
 * @typedef {object} SessionSummary
 * @property {string} id
 * @property {string} title
 * @property {number} participants how many people are in it now
 */

/** An HTTP API failure, with the server's stable error code when it sent one. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0 when the request never got an answer)
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    /** @readonly */
    this.status = status;
    /** @readonly */
    this.code = code;
  }
}

/**
 * @param {NewSession} session
 * @returns {Promise<CreatedSession>}
 */
export async function createSession(session) {
  const body = await request('/api/sessions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(session),
  });
  return /** @type {CreatedSession} */ (body);
}

/**
 * The public summary of a session, as seen through a link's key. A dead link answers 404 or
 * 410 with a code (`unknown_session`, `invalid_link`, `session_ended`).
 * @param {string} id
 * @param {LinkKeys} keys
 * @returns {Promise<SessionSummary>}
 */
export async function getSession(id, keys) {
  const query = new URLSearchParams();
  if (keys.hostKey) query.set('k', keys.hostKey);
  else if (keys.inviteKey) query.set('i', keys.inviteKey);
  const search = query.toString() ? `?${query}` : '';
  const body = await request(`/api/sessions/${encodeURIComponent(id)}${search}`, { method: 'GET' });
  return /** @type {SessionSummary} */ (body);
}

/**
 * One request to the API, its JSON answer parsed; a failure becomes an ApiError. A 204 (no
 * content) answers null.
 * @param {string} path
 * @param {RequestInit} init
 * @returns {Promise<unknown>}
 */
export async function request(path, init) {
  /** @type {Response} */
  let response;
  try {
    response = await fetch(path, { ...init, headers: { accept: 'application/json', ...init.headers } });
  } catch {
    throw new ApiError(0, 'network', 'The server could not be reached.');
  }
  /** @type {unknown} */
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (e.g. a proxy's error page); handled below.
  }
  if (response.ok && (body !== null || response.status === 204)) return body;
  const error = /** @type {{error?: {code?: unknown, message?: unknown}} | null} */ (body)?.error;
  const code = typeof error?.code === 'string' ? error.code : `http_${response.status}`;
  const message = typeof error?.message === 'string' ? error.message : `The server answered ${response.status}.`;
  throw new ApiError(response.status, code, message);
}
