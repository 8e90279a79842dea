// The page's mirror of the server's permission rules (web/js/permissions.js mirrors
// crates/core/src/permissions.rs). No browser needed: the module knows no DOM. The same cases
// as the Rust unit tests, so a rule changed on one side only shows up here.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  canActOn, canEndSession, canPublish, canRaiseHand, canSetRole, hearsAbout, roleChangeNotice, runsSession,
} from '../../web/js/permissions.js';

/** @type {import('../../web/js/protocol.js').Role[]} */
const ROLES = ['host', 'cohost', 'speaker', 'attendee'];
/** @type {Record<string, number>} */
const RANK = { host: 3, cohost: 2, speaker: 1, attendee: 1 };

describe('permissions mirror', () => {
  test('attendees publish in rooms only, and raise a hand on stage only', () => {
    assert.equal(canPublish('attendee', 'room'), true);
    assert.equal(canPublish('attendee', 'stage'), false);
    for (const role of ['host', 'cohost', 'speaker']) {
      assert.equal(canPublish(/** @type {any} */ (role), 'stage'), true, role);
      assert.equal(canRaiseHand(/** @type {any} */ (role), 'stage'), false, role);
    }
    assert.equal(canRaiseHand('attendee', 'stage'), true);
    assert.equal(canRaiseHand('attendee', 'room'), false);
  });

  test('only hosts and co-hosts run the session; only the host ends it or makes co-hosts', () => {
    for (const role of ROLES) {
      assert.equal(runsSession(role), role === 'host' || role === 'cohost', role);
      assert.equal(canEndSession(role), role === 'host', role);
      assert.equal(canSetRole(role, 'attendee', 'cohost'), role === 'host', role);
      assert.equal(canSetRole(role, 'attendee', 'host'), false, `${role}: nobody promotes to host`);
    }
  });

  test('on a stage only hosts and co-hosts hear about each attendee', () => {
    for (const viewer of ROLES) {
      for (const subject of ROLES) {
        assert.equal(hearsAbout(viewer, subject, 'room'), true, `${viewer} about ${subject} in a room`);
        const expected = viewer === 'host' || viewer === 'cohost' || subject !== 'attendee';
        assert.equal(hearsAbout(viewer, subject, 'stage'), expected, `${viewer} about ${subject} on a stage`);
      }
    }
  });

  test('a role change is announced only when it changes what one may do', () => {
    assert.equal(roleChangeNotice('attendee', 'speaker', 'stage'), 'A host brought you on stage.');
    assert.equal(roleChangeNotice('speaker', 'attendee', 'stage'), 'A host moved you off stage.');
    assert.equal(roleChangeNotice('attendee', 'cohost', 'stage'), 'You are now a co-host.');
    assert.equal(roleChangeNotice('cohost', 'speaker', 'stage'), 'You are no longer a co-host.');
    assert.equal(roleChangeNotice('attendee', 'speaker', 'room'), null, 'in a room both publish');
  });

  test('nobody acts on an equal or higher rank', () => {
    for (const actor of ROLES) {
      for (const target of ROLES) {
        const expected = RANK[actor] > RANK[target] && RANK[actor] >= 2;
        assert.equal(canActOn(actor, target), expected, `${actor} -> ${target}`);
      }
    }
    assert.equal(canSetRole('cohost', 'speaker', 'attendee'), true, 'co-hosts take people off stage');
    assert.equal(canSetRole('cohost', 'cohost', 'speaker'), false, 'co-hosts do not demote co-hosts');
    assert.equal(canSetRole('host', 'cohost', 'speaker'), true, 'the host removes a co-host');
  });
});
