// Recording when the server cannot do everything: it is killed mid-recording (the recording
// comes back as "recovered" and replays), it has no ffmpeg (export says why), or recording is
// turned off (the Record button is refused with the reason, the recordings page says so).

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Participant, sleep, startServer, startSession, tempDataDir, waitFor, withBrowser } from './helpers.js';
import { openRecordingsPage, recordingItem, replayState, waitPlaying } from './recording-helpers.js';

/** How long the crash test records before the kill (ms). */
const RECORD_MS = 6_000;
/** How much of the end a crash may lose (ms): what was in flight, not yet on disk. */
const MAY_LOSE_MS = 2_500;

/**
 * The session id and host key of the page a host is on.
 * @param {Participant} host
 */
function hostLink(host) {
  const url = new URL(host.page.url());
  return { sessionId: decodeURIComponent(url.pathname.split('/')[2]), hostKey: url.searchParams.get('k') ?? '' };
}

describe('recording limits', () => {
  test('a recording survives the server being killed: it is listed as recovered and replays; without ffmpeg, export says why', async () => {
    const dataDir = tempDataDir();
    const flags = ['--ffmpeg', '/nonexistent/ffmpeg'];
    let server = await startServer('recording-crash', { dataDir, args: flags });
    try {
      /** @type {{sessionId: string, hostKey: string}} */
      let link = { sessionId: '', hostKey: '' };
      let recordingId = '';
      let recordedMs = 0;
      await withBrowser('recording-crash', async (browser) => {
        const host = await Participant.open(browser, 'Hana Host');
        await startSession(server, host, 'Before the crash');
        link = hostLink(host);
        await waitFor('the host\'s camera preview to play', () => host.page.locator('[data-testid="local-tile"] video')
          .evaluate((video) => /** @type {HTMLVideoElement} */ (video).videoWidth > 0));
        await host.page.click('#record-button');
        await waitFor('the Recording indicator', () => host.page.locator('#recording-indicator').isVisible());
        const startedAt = Date.now();
        recordingId = await host.page.getAttribute('#recording-indicator', 'data-recording-id') ?? '';
        await sleep(RECORD_MS);
        recordedMs = Date.now() - startedAt;
        // No graceful stop: nothing gets to finish the files.
        await server.kill();
      });

      server = await startServer('recording-crash-restarted', { dataDir, args: flags });
      await withBrowser('recording-recovered', async (browser) => {
        const host = await Participant.open(browser, 'Hana Host');
        const page = await openRecordingsPage(host.page, server, link.sessionId, link.hostKey);
        const item = recordingItem(page, recordingId);
        await waitFor('the recording to be listed as recovered', async () => (await item.getAttribute('data-state')) === 'recovered');
        assert.equal(await item.locator('[data-testid="recording-state"]').textContent(), 'Recovered');
        assert.match(await item.locator('[data-testid="recording-note"]').textContent() ?? '', /stopped unexpectedly/);

        // No ffmpeg on this server: the page says so instead of offering an export that fails.
        const status = item.locator('[data-testid="recording-export-status"]');
        await waitFor('the export to be explained as unavailable', async () => /not installed/.test(await status.textContent() ?? ''));
        assert.equal(await item.locator('[data-testid="recording-export"]').isDisabled(), true, 'no export button to press');

        const manifest = await (await fetch(`${server.url}/api/recordings/${recordingId}?k=${link.hostKey}`)).json();
        assert.equal(manifest.state, 'recovered');
        const video = manifest.streams.find((/** @type {any} */ s) => s.kind === 'video');
        assert.ok(video, 'the camera was recorded');
        assert.ok(video.duration_ms >= recordedMs - MAY_LOSE_MS,
          `the recovered camera lasts ${video.duration_ms} ms of the ${recordedMs} ms recorded before the kill`);

        // The host's Open link replays it: the browser reads the repaired file to its end.
        const open = await item.locator('[data-testid="recording-open"]').getAttribute('href');
        await page.goto(`${server.url}${open}`);
        await waitFor('the replay to load', () => page.locator('#replay-view').isVisible());
        // The host key does not stay in the address bar, where copying it would give it away;
        // a reload in the same tab still opens the replay.
        assert.ok(!page.url().includes(link.hostKey), `the address bar holds no host key: ${page.url()}`);
        await page.reload();
        await waitFor('the replay to load again after a reload', () => page.locator('#replay-view').isVisible());
        assert.equal(await page.locator('[data-testid="replay-banner"]').isVisible(), true, 'the replay says it was recovered');
        const element = await waitFor('the camera element to know its length', async () => {
          const state = await replayState(page);
          const track = state.tracks.find((/** @type {any} */ t) => t.streamId === video.id);
          return track.elementDurationMs > 0 ? track : null;
        });
        console.log(`crash: recorded ${recordedMs} ms before the kill; recovered camera ${video.duration_ms} ms, the browser says ${Math.round(element.elementDurationMs)} ms`);
        assert.ok(Math.abs(element.elementDurationMs - video.duration_ms) < 1_000,
          `the browser's duration ${element.elementDurationMs} ms matches the manifest's ${video.duration_ms} ms`);
        await page.locator('#replay-seek').fill(String(Math.max(0, Math.floor((video.start_ms + video.duration_ms - 1_500) / 100) * 100)));
        await page.click('#replay-play');
        await waitPlaying(page);
        await waitFor('the end of the recovered camera to play', async () => {
          const state = await replayState(page);
          const track = state.tracks.find((/** @type {any} */ t) => t.streamId === video.id);
          return track.frames > 0 && track.videoWidth > 0 && track.positionMs > video.start_ms + video.duration_ms - 800;
        }, { timeout: 5_000 });
      });
    } finally {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('with recording turned off, Record is refused with the reason and the recordings page says so', async () => {
    const server = await startServer('recording-off', { args: ['--disable-recording'] });
    try {
      await withBrowser('recording-off', async (browser) => {
        const host = await Participant.open(browser, 'Hana Host');
        await startSession(server, host, 'Not recorded');
        const link = hostLink(host);
        await host.page.click('#record-button');
        await waitFor('the refusal to be shown', async () =>
          (await host.page.locator('[data-testid="notice"]').allTextContents()).some((text) => /record/i.test(text)));
        assert.equal(await host.page.locator('#recording-indicator').isVisible(), false, 'nothing is being recorded');
        await waitFor('the Record button to be usable again', async () => !(await host.page.locator('#record-button').isDisabled()));

        const page = await openRecordingsPage(host.page, server, link.sessionId, link.hostKey);
        assert.equal(await page.locator('[data-testid="recordings-disabled"]').isVisible(), true, 'the page says recording is off');
        assert.equal(await page.locator('[data-testid="recordings-empty"]').isVisible(), true, 'and that there is nothing yet');
      });
    } finally {
      await server.stop();
    }
  });
});
