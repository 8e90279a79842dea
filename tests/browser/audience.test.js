// The page's count and list of people on a stage (web/js/audience.js): the audience is a number
// to those who do not run the session. No browser needed: the module knows no DOM.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { headcount, unheard } from '../../web/js/audience.js';

/**
 * @param {string} id
 * @param {import('../../web/js/protocol.js').Role} role
 * @returns {import('../../web/js/protocol.js').ParticipantInfo}
 */
function person(id, role) {
  return { id, name: id, role, audio_muted: false, video_muted: false, hand_raised: false };
}

const host = person('h', 'host');
const speaker = person('s', 'speaker');
const ann = person('a', 'attendee');
const bob = person('b', 'attendee');

describe('audience', () => {
  test('an attendee counts the stage, and the audience from the server, once each', () => {
    // Ann sees the host and a speaker; the server counts 40 attendees, Ann among them.
    assert.equal(headcount(ann, [host, speaker], 40, 'stage'), 42);
    // The speaker is not in the audience count, so is added once.
    assert.equal(headcount(speaker, [host], 40, 'stage'), 42);
  });

  test('those who hear about everyone count the list, and so does everyone in a room', () => {
    assert.equal(headcount(host, [speaker, ann, bob], 2, 'stage'), 4);
    assert.equal(headcount(ann, [host, bob], 2, 'room'), 3, 'a stale count is not used in a room');
  });

  test('on a stage attendees forget other attendees, and nobody forgets anyone in a room', () => {
    assert.deepEqual(unheard(ann, [host, speaker, bob], 'stage'), ['b']);
    assert.deepEqual(unheard(speaker, [host, ann, bob], 'stage'), ['a', 'b']);
    assert.deepEqual(unheard(host, [speaker, ann, bob], 'stage'), []);
    assert.deepEqual(unheard(ann, [host, bob], 'room'), []);
  });
});
