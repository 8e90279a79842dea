// Running a session: waiting room, lock, a new invite link, ending it, switching between room
// and stage, co-hosts and screen sharing. Real server, real Chromium, fake devices.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Participant, startServer, startSession, waitFor, withBrowser } from './helpers.js';

/** @type {import('./helpers.js').Server} */
let server;

before(async () => {
  server = await startServer('session');
});

after(async () => {
  await server?.stop();
});

/**
 * Changes one host setting through the Host settings panel.
 * @param {Participant} host
 * @param {'locked' | 'waiting-room'} setting
 * @param {boolean} on
 */
async function setSetting(host, setting, on) {
  await host.openPanel('settings');
  const box = host.page.locator(`#settings-${setting}`);
  await box.setChecked(on);
  await waitFor(`${host.name}'s "${setting}" setting to be ${on} and settled`, async () =>
    (await box.isChecked()) === on && !(await box.isDisabled()));
}

/**
 * Switches the session between room and stage through the Host settings panel.
 * @param {Participant} host
 * @param {'room' | 'stage'} shape
 */
async function setShape(host, shape) {
  await host.openPanel('settings');
  await host.page.selectOption('#settings-shape', shape);
  await waitFor(`the session to become a ${shape}`, async () => (await host.state()).settings.shape === shape);
}

describe('running a session', () => {
  test('the waiting room: a host admits one person and declines another', async () => {
    await withBrowser('waiting-room', async (browser) => {
      const host = await Participant.open(browser, 'Hana Host');
      const admitted = await Participant.open(browser, 'Ari Admitted');
      const declined = await Participant.open(browser, 'Dee Declined');
      const title = 'By invitation';
      const invite = await startSession(server, host, title, { waitingRoom: true });

      await admitted.joinByInvite(invite, title);
      await waitFor(`${admitted.name} to wait to be let in`, async () =>
        (await admitted.page.locator('#waiting-view').isVisible())
        && (await admitted.page.locator('#waiting-title').textContent()) === `Waiting to join ${title}`);
      await host.waitNotice(`${admitted.name} is waiting to join`);
      await host.openPanel('people');
      const entry = host.page.locator('[data-testid="waiting-person"]');
      await waitFor(`${host.name} to list ${admitted.name} as waiting`, async () =>
        (await entry.count()) === 1 && (await entry.locator('[data-testid="waiting-name"]').textContent()) === admitted.name);
      await entry.locator('[data-testid="waiting-admit"]').click();

      await admitted.waitJoined();
      await admitted.waitTileOf(host);
      await host.waitTileOf(admitted);
      await host.waitReceiving(admitted, { audio: false });
      await admitted.waitReceiving(host, { audio: false });

      await declined.joinByInvite(invite, title);
      await waitFor(`${declined.name} to wait`, () => declined.page.locator('#waiting-view').isVisible());
      await waitFor(`${host.name} to list ${declined.name} as waiting`, async () =>
        (await entry.locator('[data-testid="waiting-name"]').allTextContents()).includes(declined.name));
      await entry.locator('[data-testid="waiting-decline"]').click();
      await declined.waitMessage('You were not let in');
      await waitFor(`${host.name}'s waiting list to empty`, async () => !(await host.page.locator('#waiting-section').isVisible()));
      assert.equal((await host.state()).participants.length, 1, 'only the admitted person came in');
      host.assertNoServerErrors();
    });
  });

  test('a locked session keeps newcomers out; a new invite link retires the old one; ending it ends it for all', async () => {
    await withBrowser('lock-rotate-end', async (browser) => {
      const host = await Participant.open(browser, 'Hana Host');
      const inside = await Participant.open(browser, 'Ian Inside');
      const late = await Participant.open(browser, 'Lou Latecomer');
      const title = 'Closed doors';
      const invite = await startSession(server, host, title);
      await inside.joinByInvite(invite, title);
      await inside.waitJoined();

      await setSetting(host, 'locked', true);
      await waitFor(`${inside.name} to see the session locked`, () => inside.page.locator('#room-locked').isVisible());
      await late.joinByInvite(invite, title);
      await late.waitMessage('This session is locked');
      await setSetting(host, 'locked', false);

      await host.openPanel('settings');
      await host.page.click('#rotate-invite');
      await host.confirm();
      const rotated = await waitFor('a new invite link', async () => {
        const url = (await host.state()).inviteUrl;
        return url && url !== invite ? url : null;
      });
      assert.match(rotated, /\?i=/);
      await host.waitNotice('A new invite link was made');
      // The old link is dead at the door; the people inside stay.
      await late.page.goto(invite);
      await late.waitMessage('This invite link is no longer valid');
      assert.equal((await inside.state()).status, 'joined', 'people inside stay');
      await late.joinByInvite(rotated, title);
      await late.waitJoined();

      await host.openPanel('settings');
      await host.page.click('#end-session');
      await host.confirm();
      for (const who of [host, inside, late]) await who.waitMessage('This session has ended');
      await inside.page.goto(rotated);
      await inside.waitMessage('This session has ended');
      host.assertNoServerErrors();
    });
  });

  test('switching to stage takes an attendee off the air, switching back puts them on again', async () => {
    await withBrowser('shape', async (browser) => {
      const host = await Participant.open(browser, 'Hana Host');
      const attendee = await Participant.open(browser, 'Ari Attendee');
      const title = 'Flexible';
      const invite = await startSession(server, host, title);
      await attendee.joinByInvite(invite, title);
      await attendee.waitJoined();
      await host.waitReceiving(attendee, { audio: false });

      await setShape(host, 'stage');
      await host.waitNoTileOf(attendee);
      await waitFor(`${attendee.name} to stop publishing and be offered a hand`, async () => {
        const s = await attendee.state();
        return !s.publishing && s.localTracks.length === 0 && (await attendee.page.locator('#hand-button').isVisible());
      });

      await setShape(host, 'room');
      await host.waitTileOf(attendee);
      await host.waitReceiving(attendee, { audio: false });
      assert.equal(await attendee.page.locator('#hand-button').isVisible(), false, 'no hand in a room');
      attendee.assertNoServerErrors();
    });
  });

  test('a co-host runs the session with the host but cannot end it or act on the host', async () => {
    await withBrowser('cohost', async (browser) => {
      const host = await Participant.open(browser, 'Hana Host');
      const cohost = await Participant.open(browser, 'Cole Cohost');
      const guest = await Participant.open(browser, 'Gus Guest');
      const title = 'Shared duties';
      const invite = await startSession(server, host, title);
      for (const who of [cohost, guest]) {
        await who.joinByInvite(invite, title);
        await who.waitJoined();
      }
      assert.equal(await cohost.page.locator('#settings-button').isVisible(), false, 'attendees have no host settings');

      await host.act(cohost, 'action-make-cohost');
      await waitFor(`${cohost.name} to become co-host with the invite link`, async () => {
        const s = await cohost.state();
        return s.role === 'cohost' && s.inviteUrl === invite;
      });
      await cohost.waitNotice('You are now a co-host');
      await cohost.openPanel('settings');
      assert.equal(await cohost.page.locator('#end-session').isVisible(), false, 'only the host ends the session');
      await cohost.openPanel('people');
      await waitFor(`${cohost.name} to list ${host.name}`, async () => (await cohost.rowOf(host).count()) === 1);
      assert.equal(await cohost.rowOf(host).locator('button').count(), 0, 'no actions on the host');

      await guest.waitTileOf(cohost);
      await cohost.act(guest, 'action-mute-camera');
      await guest.waitNotice('A host turned off your camera');
      await waitFor(`${guest.name}'s camera button to show the camera off`, async () =>
        (await guest.page.getAttribute('#camera-button', 'aria-pressed')) === 'true');
      await waitFor(`${host.name} to show ${guest.name}'s camera as off`, () =>
        host.tileOf(guest).locator('[data-testid="camera-off"]').isVisible());
      for (const who of [host, cohost, guest]) who.assertNoServerErrors();
    });
  });

  test('a shared screen arrives as a tile of its own', async () => {
    await withBrowser('screen', async (browser) => {
      const host = await Participant.open(browser, 'Hana Host');
      const viewer = await Participant.open(browser, 'Vic Viewer');
      const title = 'Slides';
      const invite = await startSession(server, host, title);
      await viewer.joinByInvite(invite, title);
      await viewer.waitJoined();
      await viewer.waitReceiving(host, { audio: false });

      await host.page.click('#screen-button');
      await waitFor(`${host.name}'s screen button to say it shares`, async () =>
        (await host.page.getAttribute('#screen-button', 'aria-pressed')) === 'true');
      const screen = viewer.page.locator(`[data-testid="screen-tile"][data-participant-id="${host.id}"]`);
      await waitFor(`${viewer.name} to show ${host.name}'s screen`, async () =>
        (await screen.count()) === 1
        && (await screen.locator('[data-testid="tile-name"]').textContent()) === `${host.name}'s screen`
        && (await screen.locator('video').evaluate((video) => /** @type {HTMLVideoElement} */ (video).videoWidth > 0)));
      const state = await viewer.state();
      const sources = state.remoteTracks.filter((/** @type {any} */ t) => t.participantId === host.id).map((/** @type {any} */ t) => t.source).sort();
      assert.deepEqual(sources, ['camera', 'microphone', 'screen'], 'camera, microphone and screen arrive, each known by its source');
      assert.equal(await viewer.tileOf(host).count(), 1, 'the camera keeps its own tile');

      await host.page.click('#screen-button');
      await waitFor(`${viewer.name}'s screen tile of ${host.name} to go`, async () => (await screen.count()) === 0);
      await viewer.waitReceiving(host, { audio: false });
      for (const who of [host, viewer]) who.assertNoServerErrors();
    });
  });
});
