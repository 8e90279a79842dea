// The pure decisions behind the web client's reconnect, without a browser: when to try a new
// socket and when to give up (web/js/link.js), and what a resumed `joined` says changed while
// the socket was down (web/js/resync.js). The browser behaviour is in reconnect.test.js.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GIVE_UP_MS, retryDelay } from '../../web/js/link.js';
import { resync } from '../../web/js/resync.js';

/**
 * @param {string} id
 * @param {Partial<import('../../web/js/protocol.js').ParticipantInfo>} [fields]
 * @returns {import('../../web/js/protocol.js').ParticipantInfo}
 */
const person = (id, fields = {}) => ({
  id, name: id, role: 'attendee', audio_muted: false, video_muted: false, hand_raised: false, ...fields,
});

/**
 * @param {string} id
 * @param {string} owner
 * @returns {import('../../web/js/protocol.js').TrackInfo}
 */
const track = (id, owner) => ({ id, participant_id: owner, kind: 'video', codec: 'video/VP8', source: 'camera' });

/**
 * @param {string} id
 * @returns {import('../../web/js/protocol.js').ChatMessage}
 */
const chat = (id) => ({ id, from: 'p1', name: 'p1', text: id, at_ms: 0 });

/**
 * A resumed `joined` with these people, tracks and chat.
 * @param {Partial<import('../../web/js/protocol.js').JoinedMessage>} fields
 * @returns {import('../../web/js/protocol.js').JoinedMessage}
 */
const joined = (fields) => ({
  type: 'joined', version: 1, participant_id: 'me', role: 'attendee', session: { id: 's', title: 't' },
  participants: [], tracks: [], settings: { shape: 'room', locked: false, waiting_room: false, max_participants: 10 },
  chat: [], resume_token: 'x', resumed: true, ...fields,
});

describe('retry schedule', () => {
  test('backs off from half a second to five, then stays at five', () => {
    const delays = [0, 1, 2, 3, 4, 5, 6].map((attempts) => retryDelay({ attempts, lostAt: 0, now: 0 }));
    assert.deepEqual(delays, [500, 1_000, 2_000, 4_000, 5_000, 5_000, 5_000]);
  });

  test('gives up once the server grace has passed since the loss, with a last try at the deadline', () => {
    assert.equal(retryDelay({ attempts: 9, lostAt: 1_000, now: 1_000 + GIVE_UP_MS - 1_200 }), 1_200);
    assert.equal(retryDelay({ attempts: 9, lostAt: 1_000, now: 1_000 + GIVE_UP_MS }), null);
    assert.equal(retryDelay({ attempts: 0, lostAt: 0, now: 100, giveUpMs: 50 }), null);
  });
});

describe('resync after a resume', () => {
  test('nothing changed: nothing to replay, so no tile is touched', () => {
    const a = person('a');
    const known = { selfId: 'me', participants: new Map([['a', a]]), tracks: new Map([['t1', track('t1', 'a')]]), chat: [chat('c1')] };
    const change = resync(known, joined({ participants: [{ ...a }], tracks: [track('t1', 'a')], chat: [chat('c1')] }));
    assert.deepEqual(change, { left: [], arrived: [], updated: [], unpublished: [], published: [], chat: [] });
  });

  test('who left, came, changed, which tracks ended or started, and the chat we missed', () => {
    const known = {
      selfId: 'me',
      participants: new Map([['a', person('a')], ['b', person('b')]]),
      tracks: new Map([['ta', track('ta', 'a')], ['tb', track('tb', 'b')]]),
      chat: [chat('c1')],
    };
    const change = resync(known, joined({
      participants: [person('a', { hand_raised: true }), person('c')],
      tracks: [track('ta', 'a'), track('tc', 'c'), track('mine', 'me')],
      chat: [chat('c1'), chat('c2'), chat('c3')],
    }));
    assert.deepEqual(change.left, ['b']);
    assert.deepEqual(change.arrived.map((p) => p.id), ['c']);
    assert.deepEqual(change.updated.map((p) => [p.id, p.hand_raised]), [['a', true]]);
    assert.deepEqual(change.unpublished, ['tb']);
    assert.deepEqual(change.published.map((t) => t.id), ['tc'], 'our own track is not something we receive');
    assert.deepEqual(change.chat.map((m) => m.id), ['c2', 'c3']);
  });
});
