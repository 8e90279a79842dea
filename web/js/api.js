// The server's small HTTP API (sessions). Errors come back as
// `{"error": {"code": "...", "message": "..."}}`, which we turn into an ApiError.

/**
 * @typedef {object} CreatedSession
 * @property {string} id
 * @property {string} title
 * @property {string} host_url the link that makes its holder the host (contains the host key)
 * @property {string} invite_url the link to give to attendees
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
 * @param {string} title
 * @returns {Promise<CreatedSession>}
 */
export async function createSession(title) {
  const body = await request('/api/sessions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ title }),
  });
  return /** @type {CreatedSession} */ (body);
}

/**
 * @param {string} id
 * @returns {Promise<SessionSummary>}
 */
export async function getSession(id) {
  const body = await request(`/api/sessions/${encodeURIComponent(id)}`, { method: 'GET' });
  return /** @type {SessionSummary} */ (body);
}

/**
 * @param {string} path
 * @param {RequestInit} init
 * @returns {Promise<unknown>}
 */
async function request(path, init) {
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
  if (response.ok && body !== null) return body;
  const error = /** @type {{error?: {code?: unknown, message?: unknown}} | null} */ (body)?.error;
  const code = typeof error?.code === 'string' ? error.code : `http_${response.status}`;
  const message = typeof error?.message === 'string' ? error.message : `The server answered ${response.status}.`;
  throw new ApiError(response.status, code, message);
}
