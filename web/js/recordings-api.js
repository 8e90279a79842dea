// The recordings part of the HTTP API (docs/api.md): a session's list, a recording's manifest,
// sharing, deleting and exporting. Every call carries a key in the query: the session's host
// key (`k`) or a replay link's key (`r`), the same way `<video src>` URLs must.

import { ApiError, request } from './api.js';

/** @typedef {'recording' | 'complete' | 'recovered' | 'failed'} RecordingState */

/**
 * A key that opens recordings: the host key of their session, or one recording's replay key.
 * @typedef {{hostKey: string} | {replayKey: string}} RecordingKey
 */

/**
 * A recording as the host's list shows it.
 * @typedef {object} RecordingSummary
 * @property {string} id
 * @property {string} title the session's title when recording started
 * @property {RecordingState} state
 * @property {string} [error] why it stopped, when it failed
 * @property {number} started_at_ms milliseconds since the Unix epoch
 * @property {number} duration_ms
 * @property {number} bytes on disk, all its files
 * @property {string[]} participants names of everyone who was there
 * @property {boolean} shared whether a replay link works now
 * @property {string} [replay_url] that link, while shared
 */

/**
 * @typedef {object} RecordingList
 * @property {boolean} enabled whether this server records at all
 * @property {RecordingSummary[]} recordings newest first
 */

/**
 * One person's presence during the recording; times on its timeline.
 * @typedef {object} ParticipantSpan
 * @property {string} id
 * @property {string} name
 * @property {string} role
 * @property {number} joined_ms
 * @property {number} [left_ms] absent when they stayed to the end
 */

/**
 * One recorded media file. Its own time 0 is at `start_ms` on the recording's timeline.
 * @typedef {object} StreamEntry
 * @property {string} id e.g. `s1`
 * @property {string} participant_id
 * @property {'audio' | 'video'} kind
 * @property {'microphone' | 'camera' | 'screen'} source
 * @property {string} codec
 * @property {string} file
 * @property {string} content_type
 * @property {number} start_ms
 * @property {number} duration_ms
 * @property {number} frames
 * @property {number} bytes
 * @property {number} [width]
 * @property {number} [height]
 * @property {number} gaps
 * @property {boolean} finished
 * @property {string} url where to fetch it (with the key that opened the manifest)
 */

/**
 * @typedef {object} ReplayEvent
 * @property {number} at_ms
 * @property {'join' | 'leave' | 'chat'} type
 * @property {string} participant_id
 * @property {string} name
 * @property {string} [text] chat only
 */

/**
 * Everything a replay needs. Every `*_ms` is on the recording's timeline (0 = its start).
 * @typedef {object} Manifest
 * @property {number} version
 * @property {string} id
 * @property {string} session_id
 * @property {string} title
 * @property {number} started_at_ms
 * @property {number} duration_ms
 * @property {RecordingState} state
 * @property {string} [error]
 * @property {'host' | 'replay'} access
 * @property {ParticipantSpan[]} participants
 * @property {StreamEntry[]} streams
 * @property {ReplayEvent[]} events in order
 */

/**
 * @typedef {object} ExportStatus
 * @property {'none' | 'running' | 'done' | 'failed' | 'unavailable'} state
 * @property {number} progress 0 to 1
 * @property {string} [error] why it failed or cannot run
 * @property {string} [content_type] of the finished file
 */

/**
 * The query string that carries a key.
 * @param {RecordingKey} key
 * @returns {string}
 */
export function keyQuery(key) {
  const query = new URLSearchParams('hostKey' in key ? { k: key.hostKey } : { r: key.replayKey });
  return query.toString();
}

/** @param {string} id */
const recordingPath = (id) => `/api/recordings/${encodeURIComponent(id)}`;

/**
 * A session's recordings (needs its host key).
 * @param {string} sessionId
 * @param {string} hostKey
 * @returns {Promise<RecordingList>}
 */
export async function listRecordings(sessionId, hostKey) {
  const body = await request(`/api/sessions/${encodeURIComponent(sessionId)}/recordings?${keyQuery({ hostKey })}`, { method: 'GET' });
  return /** @type {RecordingList} */ (body);
}

/**
 * @param {string} id
 * @param {RecordingKey} key
 * @returns {Promise<Manifest>}
 */
export async function getManifest(id, key) {
  const body = await request(`${recordingPath(id)}?${keyQuery(key)}`, { method: 'GET' });
  return /** @type {Manifest} */ (body);
}

/**
 * Makes (or returns) the replay link.
 * @param {string} id
 * @param {string} hostKey
 * @returns {Promise<string>}
 */
export async function shareRecording(id, hostKey) {
  const body = /** @type {{replay_url: string}} */ (await request(`${recordingPath(id)}/share?${keyQuery({ hostKey })}`, { method: 'POST' }));
  return body.replay_url;
}

/**
 * The replay link stops working; a later share makes a new one.
 * @param {string} id
 * @param {string} hostKey
 */
export async function unshareRecording(id, hostKey) {
  await request(`${recordingPath(id)}/share?${keyQuery({ hostKey })}`, { method: 'DELETE' });
}

/**
 * Deletes a recording for good.
 * @param {string} id
 * @param {string} hostKey
 */
export async function deleteRecording(id, hostKey) {
  await request(`${recordingPath(id)}?${keyQuery({ hostKey })}`, { method: 'DELETE' });
}

/**
 * @param {string} id
 * @param {RecordingKey} key
 * @returns {Promise<ExportStatus>}
 */
export async function exportStatus(id, key) {
  return /** @type {ExportStatus} */ (await request(`${recordingPath(id)}/export?${keyQuery(key)}`, { method: 'GET' }));
}

/**
 * Starts composing the recording into one file.
 * @param {string} id
 * @param {string} hostKey
 * @returns {Promise<ExportStatus>}
 */
export async function startExport(id, hostKey) {
  return /** @type {ExportStatus} */ (await request(`${recordingPath(id)}/export?${keyQuery({ hostKey })}`, { method: 'POST' }));
}

/**
 * Where the finished export downloads from.
 * @param {string} id
 * @param {RecordingKey} key
 * @returns {string}
 */
export function exportFileUrl(id, key) {
  return `${recordingPath(id)}/export/file?${keyQuery(key)}`;
}

/**
 * A stream's URL as a download (Content-Disposition: attachment).
 * @param {StreamEntry} stream
 * @returns {string}
 */
export function downloadUrl(stream) {
  return `${stream.url}${stream.url.includes('?') ? '&' : '?'}download=1`;
}

/**
 * What to tell someone whose link did not open a recording (or its list).
 * @param {unknown} error
 * @returns {{title: string, text: string}}
 */
export function recordingProblem(error) {
  if (!(error instanceof ApiError)) return { title: 'Something went wrong', text: String(error) };
  switch (error.code) {
    case 'invalid_link':
      return {
        title: 'This link does not open the recording',
        text: 'It may have been mistyped, or the host stopped sharing it. Ask the host for a new link.',
      };
    case 'unknown_recording':
      return { title: 'Recording not found', text: 'There is no recording at this address. It may have been deleted.' };
    case 'unauthorized':
      return {
        title: 'This page needs the host link',
        text: 'Only the host of a session can see its recordings. Open this page from the host link (the one with ?k=).',
      };
    case 'network':
      return { title: 'The server could not be reached', text: 'Check your connection and reload the page.' };
    default:
      return { title: 'Could not open the recording', text: error.message };
  }
}
