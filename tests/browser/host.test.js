// Host controls on others: a remote mute the server enforces, and a removal that a reload
// cannot undo. Real server, real Chromium, fake devices.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Participant, sleep, startServer, startSession, waitFor, withBrowser } from './helpers.js';

/** @type {import('./helpers.js').Server} */
let server;

before(async () => {
  server = await startServer('host');
});

after(async () => {
  await server?.stop();
});

/**
 * How many audio packets and decoded frames `viewer` has received from `other` so far.
 * @param {Participant} viewer
 * @param {Participant} other
 */
async function received(viewer, other) {
  const media = (await viewer.remoteMedia())[/** @type {string} */ (other.id)];
  return { audio: media?.audioPackets ?? 0, frames: media?.framesDecoded ?? 0 };
}

describe('host controls', () => {
  test('a host mutes an attendee: the attendee is told and the server stops their audio', async () => {
    await withBrowser('remote-mute', async (browser) => {
      const host = await Participant.open(browser, 'Hana Host');
      const attendee = await Participant.open(browser, 'Ari Attendee');
      const title = 'Quiet please';
      const invite = await startSession(server, host, title);
      await attendee.joinByInvite(invite, title);
      await attendee.waitJoined();
      await host.waitTileOf(attendee);
      await host.waitReceiving(attendee);

      await host.act(attendee, 'action-mute-mic');

      // The attendee's page: mic off, with the reason.
      await waitFor(`${attendee.name}'s mic button to show the mic off`, async () =>
        (await attendee.page.getAttribute('#mic-button', 'aria-pressed')) === 'true');
      await attendee.waitNotice('A host turned off your microphone');
      const local = (await attendee.state()).localTracks.find((/** @type {any} */ t) => t.kind === 'audio');
      assert.equal(local?.enabled, false, 'the microphone track is disabled locally');

      // The host's page: the attendee is shown muted, and cannot be muted twice.
      await waitFor(`${host.name} to show ${attendee.name}'s microphone as off`, async () =>
        (await host.tileOf(attendee).locator('[data-testid="mic-muted"]').isVisible())
        && (await host.rowOf(attendee).locator('[data-testid="participant-mic-muted"]').isVisible()));
      assert.equal(await host.rowOf(attendee).locator('[data-testid="action-mute-mic"]').count(), 0);

      // The server drops the attendee's audio (a disabled track still sends silence): over a
      // window of two seconds, after letting packets already under way land, no audio arrives
      // while video keeps coming.
      await sleep(500);
      const start = await received(host, attendee);
      await sleep(2_000);
      const end = await received(host, attendee);
      assert.ok(end.frames > start.frames, `video from ${attendee.name} still arrives (${start.frames} -> ${end.frames} frames)`);
      assert.ok(end.audio - start.audio <= 2, `audio from ${attendee.name} stopped (${start.audio} -> ${end.audio} packets)`);

      // Only the attendee can turn it back on; then the audio flows again.
      await attendee.page.click('#mic-button');
      await waitFor(`${host.name} to receive ${attendee.name}'s audio again`, async () =>
        (await received(host, attendee)).audio > end.audio + 10);
      await waitFor(`${host.name} to show ${attendee.name}'s microphone as on`, async () =>
        !(await host.tileOf(attendee).locator('[data-testid="mic-muted"]').isVisible()));
      host.assertNoServerErrors();
      attendee.assertNoServerErrors();
    });
  });

  test('a removed attendee is out, and stays out after reloading the invite link', async () => {
    await withBrowser('removal', async (browser) => {
      const host = await Participant.open(browser, 'Hana Host');
      const attendee = await Participant.open(browser, 'Ari Attendee');
      const title = 'Members only';
      const invite = await startSession(server, host, title);
      await attendee.joinByInvite(invite, title);
      const joined = await attendee.waitJoined();
      await host.waitTileOf(attendee);

      await host.act(attendee, 'action-remove');
      await host.confirm();

      await attendee.waitMessage('You were removed from this session');
      assert.equal(await attendee.page.locator('#rejoin-link').isVisible(), false, 'no way back offered');
      await host.waitNoTileOf(attendee);
      await waitFor(`${host.name}'s list to drop ${attendee.name}`, async () => (await host.rowOf(attendee).count()) === 0);
      const token = await attendee.page.evaluate((id) => localStorage.getItem(`hearth.resume.${id}`), joined.session.id);
      assert.ok(token, 'the attendee kept a resume token for this session');

      // Same browser, same link: the server recognises the person and keeps them out.
      await attendee.joinByInvite(invite, title);
      await attendee.waitMessage('You were removed from this session');
      const after = await attendee.state();
      assert.equal(after.participantId, null, 'never got in');
      assert.equal(await attendee.page.locator('#room-view').isVisible(), false, 'the room is not shown');
      assert.equal((await host.state()).participants.length, 0, 'the host sees nobody come back');
      host.assertNoServerErrors();
    });
  });
});
