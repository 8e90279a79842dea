// End-to-end: real server binary, real Chromium with fake camera and microphone, the web
// client driven the way a person drives it. Run with `node --test tests/browser/`.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ARTIFACTS, Participant, launchBrowser, startServer, startSession as startSessionAs, waitFor } from './helpers.js';

/** @type {import('./helpers.js').Server} */
let server;

before(async () => {
  server = await startServer('room');
});

after(async () => {
  await server?.stop();
});

/**
 * @param {Participant} host
 * @param {string} title
 */
const startSession = (host, title) => startSessionAs(server, host, title);

describe('browser', () => {
  test('host and attendee see and hear each other', async () => {
    const browser = await launchBrowser();
    try {
      const host = await Participant.open(browser, 'Hana Host');
      const attendee = await Participant.open(browser, 'Ari Attendee');
      const title = 'Standup';
      const invite = await startSession(host, title);

      const clickedAt = await attendee.joinByInvite(invite, title);
      const joined = await attendee.waitJoined();
      assert.equal(joined.role, 'attendee');
      // Time from the click to the first frame of the host decoded on the attendee's side.
      await waitFor("the attendee's first decoded frame of the host", async () => {
        const media = (await attendee.remoteMedia())[/** @type {string} */ (host.id)];
        return media && media.framesDecoded > 0;
      }, { timeout: 20_000, interval: 50 });
      console.log(`join_to_first_frame_ms=${Date.now() - clickedAt}`);

      await attendee.waitTileOf(host);
      await host.waitTileOf(attendee);
      await attendee.waitReceiving(host);
      await host.waitReceiving(attendee);

      // Nobody sees themselves as a remote tile, and everyone has their own preview.
      for (const participant of [host, attendee]) {
        assert.equal(await participant.page.locator('[data-testid="tile"]').count(), 1, `${participant.name} shows one remote tile`);
        assert.equal(await participant.page.locator('[data-testid="local-tile"]').count(), 1, `${participant.name} shows a local preview`);
        const muted = await participant.page.locator('[data-testid="tile"] video').evaluate((video) => /** @type {HTMLVideoElement} */ (video).muted);
        assert.equal(muted, false, `${participant.name} hears the other (remote <video> not muted)`);
      }

      mkdirSync(ARTIFACTS, { recursive: true });
      await attendee.page.screenshot({ path: path.join(ARTIFACTS, 'room.png') });
    } finally {
      await browser.close();
    }
  });

  test('mute and leave are seen by others', async () => {
    const browser = await launchBrowser();
    try {
      const host = await Participant.open(browser, 'Hana Host');
      const a = await Participant.open(browser, 'Abe Attendee');
      const b = await Participant.open(browser, 'Bea Attendee');
      const title = 'Retro';
      const invite = await startSession(host, title);
      for (const attendee of [a, b]) {
        await attendee.joinByInvite(invite, title);
        await attendee.waitJoined();
      }
      const three = [host, a, b];
      for (const viewer of three) {
        for (const other of three) {
          if (other === viewer) continue;
          await viewer.waitTileOf(other);
          await viewer.waitReceiving(other, { audio: false });
        }
      }

      // A turns the microphone off: the host (and B) see it on A's tile.
      await a.page.click('#mic-button');
      assert.equal(await a.page.getAttribute('#mic-button', 'aria-pressed'), 'true');
      for (const viewer of [host, b]) {
        await waitFor(`${viewer.name} to show ${a.name}'s microphone as off`, async () =>
          viewer.tileOf(a).locator('[data-testid="mic-muted"]').isVisible());
      }
      assert.equal(await host.tileOf(b).locator('[data-testid="mic-muted"]').isVisible(), false, "B's microphone is still on");

      // A late joiner gets everyone's existing video, and the state they had before.
      const late = await Participant.open(browser, 'Lou Latecomer');
      await late.joinByInvite(invite, title);
      await late.waitJoined();
      const four = [host, a, b, late];
      for (const other of three) {
        await late.waitTileOf(other);
        await late.waitReceiving(other, { audio: false });
      }
      await waitFor(`${late.name} to show ${a.name}'s microphone as off (from joined)`, async () =>
        late.tileOf(a).locator('[data-testid="mic-muted"]').isVisible());
      for (const viewer of three) {
        await viewer.waitTileOf(late);
        await viewer.waitReceiving(late, { audio: false });
      }
      for (const viewer of four) {
        assert.equal(await viewer.page.locator('[data-testid="tile"]').count(), 3, `${viewer.name} sees the other three`);
      }

      // A leaves with the button: A sees that, the others lose A's tile.
      await a.page.click('#leave-button');
      await waitFor(`${a.name} to be told they left`, async () =>
        (await a.page.locator('#message-title').textContent()) === 'You left' && (await a.page.locator('#rejoin-link').isVisible()));
      for (const viewer of [host, b, late]) await viewer.waitNoTileOf(a);

      // B closes the tab: the server notices and the others lose B's tile.
      await b.context.close();
      for (const viewer of [host, late]) await viewer.waitNoTileOf(b);
      assert.equal(await host.page.locator('[data-testid="tile"]').count(), 1, 'only the late joiner is left for the host');
    } finally {
      await browser.close();
    }
  });
});
