// Stage sessions: only hosts and speakers publish; the audience watches, raises a hand, and is
// brought on stage (and taken off) by a host. Real server, real Chromium, fake devices.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Participant, sleep, startServer, startSession, waitFor, withBrowser } from './helpers.js';

/** @type {import('./helpers.js').Server} */
let server;

before(async () => {
  server = await startServer('stage');
});

after(async () => {
  await server?.stop();
});

/**
 * Asserts that `who` sends nothing: no devices open, no publish connection in use, no preview.
 * @param {Participant} who
 * @param {string} why
 */
async function assertNotPublishing(who, why) {
  const state = await who.state();
  assert.equal(state.publishing, false, `${who.name} does not publish: ${why}`);
  assert.deepEqual(state.localTracks, [], `${who.name} holds no camera or microphone: ${why}`);
  assert.equal(await who.page.locator('[data-testid="local-tile"]').count(), 0, `${who.name} shows no preview of their own: ${why}`);
  assert.equal(await who.page.locator('#mic-button').isVisible(), false, `${who.name} has no mic button: ${why}`);
}

describe('stage', () => {
  test('an attendee watches, raises a hand, is brought on stage and taken off again', async () => {
    await withBrowser('stage', async (browser) => {
      const host = await Participant.open(browser, 'Hana Host');
      const attendee = await Participant.open(browser, 'Ari Attendee');
      const title = 'Town hall';
      const invite = await startSession(server, host, title, { shape: 'stage' });

      await attendee.joinByInvite(invite, title);
      const joined = await attendee.waitJoined();
      assert.equal(joined.role, 'attendee');
      assert.equal(joined.settings.shape, 'stage');

      // The audience sees and hears the host, and sends nothing.
      await attendee.waitTileOf(host);
      await attendee.waitReceiving(host);
      await assertNotPublishing(attendee, 'attendees of a stage session only watch');
      assert.equal(await attendee.page.locator('#hand-button').isVisible(), true, 'the audience can raise a hand');
      assert.equal(await attendee.page.locator('#settings-button').isVisible(), false, 'attendees get no host settings');

      // A second attendee: the host lists both; the audience is a count to the audience.
      const other = await Participant.open(browser, 'Bea Attendee');
      await other.joinByInvite(invite, title);
      await other.waitJoined();
      await attendee.openPanel('people');
      await waitFor(`${attendee.name} to count three people and an audience of two`, async () =>
        (await attendee.page.locator('#room-count').textContent()) === '3 people'
        && (await attendee.page.locator('#audience-count').textContent()) === 'You and 1 other in the audience'
        && (await attendee.page.locator('#people-count').textContent()) === '(3)');
      assert.equal(await attendee.rowOf(other).count(), 0, 'attendees are not listed to one another');
      assert.equal(await attendee.rowOf(host).count(), 1, 'the stage is listed');
      await host.openPanel('people');
      await waitFor(`${host.name} to list ${other.name}`, async () => (await host.rowOf(other).count()) === 1);
      assert.equal(await host.page.locator('#audience-count').isVisible(), false, 'the host lists the audience instead');
      await other.page.click('#leave-button');
      await waitFor(`${attendee.name} to see the audience shrink to themselves`, async () =>
        (await attendee.page.locator('#audience-count').textContent()) === 'You are the audience'
        && (await attendee.page.locator('#room-count').textContent()) === '2 people');

      // The host lists the attendee but shows no tile and receives nothing from them.
      await waitFor(`${host.name} to list ${attendee.name}`, async () =>
        (await host.rowOf(attendee).count()) === 1
        && (await host.rowOf(attendee).locator('[data-testid="role-badge"]').textContent()) === 'Attendee');
      assert.equal(await host.tileOf(attendee).count(), 0, 'no tile for someone in the audience');
      assert.equal((await host.remoteMedia())[/** @type {string} */ (attendee.id)], undefined, 'no media from the audience');
      assert.equal(await host.rowOf(attendee).locator('[data-testid="action-stage-off"]').count(), 0);

      // Hand up: the host sees it.
      await attendee.page.click('#hand-button');
      await waitFor(`${attendee.name}'s hand button to show the hand up`, async () =>
        (await attendee.page.getAttribute('#hand-button', 'aria-pressed')) === 'true');
      await waitFor(`${host.name} to see ${attendee.name}'s raised hand`, () =>
        host.rowOf(attendee).locator('[data-testid="hand-raised"]').isVisible());

      // On stage: the attendee publishes, the host decodes them.
      await host.act(attendee, 'action-stage-on');
      await waitFor(`${attendee.name} to become a speaker and publish`, async () => {
        const s = await attendee.state();
        return s.role === 'speaker' && s.publishing && s.localTracks.length === 2;
      });
      await host.waitTileOf(attendee);
      await host.waitReceiving(attendee);
      await waitFor(`${host.name} to list ${attendee.name} as a speaker with the hand down`, async () =>
        (await host.rowOf(attendee).locator('[data-testid="role-badge"]').textContent()) === 'Speaker'
        && !(await host.rowOf(attendee).locator('[data-testid="hand-raised"]').isVisible()));
      assert.equal(await attendee.page.locator('#hand-button').isVisible(), false, 'speakers need no hand');
      assert.equal(await attendee.page.locator('[data-testid="local-tile"]').count(), 1, 'a speaker sees their own preview');

      // Off stage: the tile and the media go, and the attendee's camera is released.
      await host.act(attendee, 'action-stage-off');
      await host.waitNoTileOf(attendee);
      await waitFor(`${attendee.name} to stop publishing`, async () => {
        const s = await attendee.state();
        return s.role === 'attendee' && !s.publishing && s.localTracks.length === 0;
      });
      await assertNotPublishing(attendee, 'taken off stage');
      await waitFor(`${host.name} to stop receiving video from ${attendee.name}`, async () => {
        const before = (await host.remoteMedia())[/** @type {string} */ (attendee.id)];
        await sleep(1_000);
        const after = (await host.remoteMedia())[/** @type {string} */ (attendee.id)];
        return !after || after.framesDecoded === before?.framesDecoded;
      });
      // The attendee still watches the host.
      await attendee.waitReceiving(host);
      // Stopping to send is renegotiated (the offer rejects the m-lines); the server must
      // accept that offer from someone who may no longer publish.
      attendee.assertNoServerErrors('while going on and off stage');
      host.assertNoServerErrors();
    });
  });
});
