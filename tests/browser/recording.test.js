// Recording, from the host's Record button to the replay: everyone is told while it runs, the
// host's recordings page lists it and shares it, the replay plays everyone in step under one
// clock, the export makes one MP4, and a revoked link or a deleted recording is gone. The tests
// run in order on one recording made by the first. Real server, real Chromium, fake devices.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ARTIFACTS, Participant, sleep, startServer, startSession, waitFor, withBrowser } from './helpers.js';
import { openRecordingsPage, recordingItem, replayState, waitPlaying } from './recording-helpers.js';

/** How long the first test records (ms): enough for everyone's streams, short enough for CI. */
const RECORD_MS = 7_000;
/** The most an element may be off the replay's master clock (ms). */
const MAX_DRIFT_MS = 100;

/** @type {import('./helpers.js').Server} */
let server;

/**
 * What the first test recorded, for the tests after it.
 * @type {{sessionId: string, hostKey: string, title: string, names: string[], chat: string,
 *   lateName: string, recordingId?: string, replayUrl?: string}}
 */
const made = { sessionId: '', hostKey: '', title: 'Recorded standup', names: [], chat: 'Minutes are in the doc', lateName: 'Lou Late' };

before(async () => {
  server = await startServer('recording');
});

after(async () => {
  await server?.stop();
});

/** @param {import('playwright-core').Page} page */
const indicatorShown = (page) => page.locator('[data-testid="recording-indicator"]').isVisible();

/**
 * The manifest, as the host's key opens it.
 * @returns {Promise<any>}
 */
async function manifest() {
  const response = await fetch(`${server.url}/api/recordings/${made.recordingId}?k=${made.hostKey}`);
  assert.equal(response.status, 200, 'the host key opens the manifest');
  return response.json();
}

describe('recording', () => {
  test('a host records: everyone sees it while it runs, a late joiner too; stopping clears it', async () => {
    await withBrowser('recording-live', async (browser) => {
      const host = await Participant.open(browser, 'Hana Host');
      const attendee = await Participant.open(browser, 'Ari Attendee');
      const invite = await startSession(server, host, made.title);
      const hostUrl = new URL(host.page.url());
      made.sessionId = decodeURIComponent(hostUrl.pathname.split('/')[2]);
      made.hostKey = hostUrl.searchParams.get('k') ?? '';
      await attendee.joinByInvite(invite, made.title);
      await attendee.waitJoined();
      await host.waitReceiving(attendee);
      await attendee.waitReceiving(host);

      // Only hosts get the button and the link; nobody sees the indicator yet.
      assert.equal(await host.page.locator('#record-button').isVisible(), true, 'the host has a Record button');
      assert.equal(await attendee.page.locator('#record-button').isVisible(), false, 'an attendee has no Record button');
      assert.equal(await attendee.page.locator('#recordings-link').isVisible(), false, 'an attendee has no Recordings link');
      const link = await host.page.getAttribute('#recordings-link', 'href');
      assert.equal(link, `/s/${made.sessionId}/recordings?k=${made.hostKey}`, 'the host link opens the recordings page');
      assert.equal(await indicatorShown(host.page), false);
      assert.equal(await indicatorShown(attendee.page), false);

      await host.page.click('#record-button');
      const startedAt = Date.now();
      for (const who of [host, attendee]) {
        await waitFor(`${who.name} to see the Recording indicator`, () => indicatorShown(who.page));
        assert.match(await who.page.locator('#recording-indicator').textContent() ?? '', /Recording/);
      }
      await waitFor('the button to say Stop recording', async () =>
        (await host.page.locator('#record-button').textContent()) === 'Stop recording');
      made.recordingId = await host.page.getAttribute('#recording-indicator', 'data-recording-id') ?? '';
      assert.match(made.recordingId, /^[0-9a-f]{32}$/, 'the indicator knows the recording');

      // Chat early on, so the replay test has time around it.
      await sleep(Math.max(0, 1_000 - (Date.now() - startedAt)));
      await attendee.say(made.chat);
      await waitFor(`${host.name} to get the chat`, async () => (await host.state()).chat.some((/** @type {any} */ m) => m.text === made.chat));

      // Someone who joins while it runs is told at once, by the join itself.
      const late = await Participant.open(browser, made.lateName);
      await late.joinByInvite(invite, made.title);
      await late.waitJoined();
      await waitFor(`${late.name} to see the Recording indicator`, () => indicatorShown(late.page), { timeout: 3_000 });
      assert.equal(await late.page.locator('#record-button').isVisible(), false);
      await host.waitReceiving(late);
      await sleep(1_000);
      // For people to look at: what a room being recorded looks like to its host.
      await host.page.screenshot({ path: path.join(ARTIFACTS, 'room-recording.png') });
      await late.page.click('#leave-button');
      await late.waitMessage('You left');
      await late.context.close();

      await sleep(Math.max(0, RECORD_MS - (Date.now() - startedAt)));
      await host.page.click('#record-button');
      for (const who of [host, attendee]) {
        await waitFor(`the Recording indicator to go away for ${who.name}`, async () => !(await indicatorShown(who.page)));
      }
      await host.waitNotice('Recording stopped');
      assert.equal(await host.page.locator('#record-button').textContent(), 'Record');
      made.names = [host.name, attendee.name, late.name];
      host.assertNoServerErrors();
      attendee.assertNoServerErrors();

      // The host leaves: the page after the call links to the recording.
      await host.page.click('#leave-button');
      await host.waitMessage('You left');
      const ended = host.page.locator('[data-testid="ended-recordings-link"]');
      await waitFor('the ended page to offer the recording', () => ended.isVisible());
      assert.equal(await ended.getAttribute('href'), link);
    });
  });

  test('the recordings page lists it, and Share makes a link that works without the host key', async () => {
    assert.ok(made.recordingId, 'the first test made a recording');
    await withBrowser('recording-list', async (browser) => {
      const host = await Participant.open(browser, 'Hana Host');
      const page = await openRecordingsPage(host.page, server, made.sessionId, made.hostKey);
      const item = recordingItem(page, made.recordingId ?? '');
      await waitFor('the recording to be listed as complete', async () => (await item.getAttribute('data-state')) === 'complete', { timeout: 20_000 });
      assert.equal(await item.locator('[data-testid="recording-title"]').textContent(), made.title);
      assert.equal(await item.locator('[data-testid="recording-state"]').textContent(), 'Complete');
      const duration = await item.locator('[data-testid="recording-duration"]').textContent() ?? '';
      assert.match(duration, /^\d\d:\d\d$/, `duration as mm:ss: ${duration}`);
      assert.ok(duration >= '00:05', `about ${RECORD_MS / 1000} s were recorded: ${duration}`);
      const people = await item.locator('[data-testid="recording-participants"]').textContent() ?? '';
      for (const name of made.names) assert.ok(people.includes(name), `${name} is listed among "${people}"`);
      const listed = await (await fetch(`${server.url}/api/sessions/${made.sessionId}/recordings?k=${made.hostKey}`)).json();
      assert.equal(listed.recordings.length, 1);
      assert.ok(listed.recordings[0].duration_ms > 5_000, `duration_ms ${listed.recordings[0].duration_ms}`);

      // One download link per stream; a download is served as an attachment.
      await item.locator('[data-testid="recording-downloads"] summary').click();
      const links = item.locator('[data-testid="recording-stream-link"]');
      await waitFor('the stream download links', async () => (await links.count()) >= 4);
      const href = await links.first().getAttribute('href') ?? '';
      assert.match(href, /download=1/);
      const download = await page.request.get(new URL(href, server.url).href);
      assert.equal(download.status(), 200);
      assert.match(download.headers()['content-disposition'] ?? '', /^attachment/);
      assert.ok((await download.body()).length > 1000, 'the file has content');

      await item.locator('[data-testid="recording-share"]').click();
      const shareLink = item.locator('[data-testid="recording-share-link"]');
      const url = await waitFor('the replay link to be shown', () => shareLink.inputValue());
      assert.match(url, new RegExp(`/r/${made.recordingId}\\?r=[^&]+$`), `a replay link: ${url}`);
      assert.ok(!url.includes(made.hostKey), 'the replay link does not carry the host key');
      assert.equal(await item.locator('[data-testid="recording-unshare"]').isVisible(), true);
      made.replayUrl = url;
      await page.screenshot({ path: path.join(ARTIFACTS, 'recordings-page.png'), fullPage: true });

      // A page that lost (or never had) the host key says so.
      await page.goto(`${server.url}/s/${made.sessionId}/recordings?k=not-the-key`);
      await waitFor('a bad key to be explained', async () =>
        (await page.locator('#recordings-message-title').textContent()) === 'This page needs the host link');
      await page.goto(`${server.url}/s/${made.sessionId}/recordings`);
      await waitFor('a missing key to be explained', async () =>
        (await page.locator('#recordings-message-title').textContent()) === 'This page needs the host link');
    });
  });

  test('the replay plays everyone in step under one clock, chat at its moment, and seeks', async () => {
    assert.ok(made.replayUrl, 'the previous test shared the recording');
    const m = await manifest();
    const chat = m.events.find((/** @type {any} */ e) => e.type === 'chat' && e.text === made.chat);
    assert.ok(chat, 'the chat is in the manifest');
    const lateSpan = m.participants.find((/** @type {any} */ p) => p.name === made.lateName);
    assert.ok(lateSpan?.left_ms, `the late joiner's presence has an end: ${JSON.stringify(lateSpan)}`);
    const videos = m.streams.filter((/** @type {any} */ s) => s.kind === 'video');
    const audios = m.streams.filter((/** @type {any} */ s) => s.kind === 'audio');
    assert.ok(videos.length >= 2 && audios.length >= 2, `two cameras and two microphones at least: ${m.streams.map((/** @type {any} */ s) => s.id + s.source)}`);

    console.log(`recorded: ${m.duration_ms} ms; ${m.streams.map((/** @type {any} */ s) => `${s.id} ${s.source} ${s.start_ms}-${s.start_ms + s.duration_ms}`).join(', ')}; chat at ${chat.at_ms}`);
    await withBrowser('recording-replay', async (browser) => {
      const viewer = await Participant.open(browser, 'Vi Viewer');
      const page = viewer.page;
      await page.goto(/** @type {string} */ (made.replayUrl));
      await waitFor('the replay to load', () => page.locator('#replay-view').isVisible());
      assert.equal(await page.locator('#replay-title').textContent(), made.title);
      const tiles = page.locator('[data-testid="replay-tile"]:visible');
      const lateTile = page.locator(`[data-testid="replay-tile"][data-name="${made.lateName}"]`);

      // At the start: the two who were there, and not yet the late joiner or the chat.
      await waitFor('two tiles at the start', async () => (await tiles.count()) === 2);
      assert.equal(await lateTile.isVisible(), false, 'the late joiner is not there at the start');
      const chatShown = page.locator('[data-testid="replay-event"][data-type="chat"]');
      assert.equal(await chatShown.count(), 0, 'no chat before it was sent');

      // Play from 1.5 s before the chat: the chat appears only once the clock passes it.
      const from = Math.max(0, Math.round((chat.at_ms - 1_500) / 100) * 100);
      await page.locator('#replay-seek').fill(String(from));
      assert.equal(Math.round((await replayState(page)).masterMs), from, 'the seek bar moved the clock');
      await page.click('#replay-play');
      await waitPlaying(page);
      /** @type {number[]} */
      const drifts = [];
      let sawBefore = false;
      await waitFor('the chat to appear once the clock passes it', async () => {
        const { state, chats } = await page.evaluate(() => ({
          state: /** @type {any} */ (window).hearthReplay.state(),
          chats: document.querySelectorAll('[data-testid="replay-event"][data-type="chat"]').length,
        }));
        if (state.masterMs < chat.at_ms) {
          assert.equal(chats, 0, `the chat (at ${chat.at_ms} ms) is not shown at ${state.masterMs} ms`);
          sawBefore = true;
          return false;
        }
        return state.masterMs > chat.at_ms + 150 && chats === 1;
      }, { timeout: 5_000, interval: 50 });
      assert.ok(sawBefore, 'the list was checked before the chat time');
      assert.equal(await chatShown.locator('[data-testid="replay-event-text"]').textContent(), made.chat);

      /**
       * Samples the replay a few times while it plays: every element that should play does,
       * within MAX_DRIFT_MS of the master clock; every video has a size, and over the whole
       * window draws frames (a camera that just began may hold a frame for a while); sound
       * moves on.
       * @param {string} when
       */
      const checkInStep = async (when) => {
        /** @type {Map<string, {frames: number, positionMs: number, at: number}>} each element when first seen playing */
        const seen = new Map();
        /** @type {Map<string, any>} each element when last seen playing */
        const last = new Map();
        for (let i = 0; i < 7; i++) {
          if (i > 0) await sleep(250);
          const state = await replayState(page);
          const active = state.tracks.filter((/** @type {any} */ t) => t.active && t.startMs + 300 < state.masterMs);
          assert.ok(active.length > 0, `${when}: something plays at ${state.masterMs} ms`);
          for (const track of active) {
            const drift = track.positionMs - state.masterMs;
            drifts.push(Math.abs(drift));
            assert.ok(!track.paused, `${when}: ${track.streamId} plays at ${state.masterMs} ms`);
            assert.ok(Math.abs(drift) < MAX_DRIFT_MS, `${when}: ${track.streamId} is ${Math.round(drift)} ms off the clock at ${Math.round(state.masterMs)} ms`);
            if (track.kind === 'video') assert.ok(track.videoWidth > 0, `${when}: ${track.streamId} has a picture`);
            if (!seen.has(track.streamId)) seen.set(track.streamId, { frames: track.frames, positionMs: track.positionMs, at: state.masterMs });
            last.set(track.streamId, { ...track, at: state.masterMs });
          }
        }
        for (const [id, end] of last) {
          const start = /** @type {{frames: number, positionMs: number, at: number}} */ (seen.get(id));
          if (end.at - start.at < 1_000) continue;
          if (end.kind === 'video') assert.ok(end.frames > start.frames, `${when}: ${id} draws frames (${start.frames} -> ${end.frames})`);
          else assert.ok(end.positionMs > start.positionMs + 500, `${when}: ${id} sound moves on`);
        }
        assert.ok([...last.values()].filter((t) => t.kind === 'video').length >= 2, `${when}: at least two cameras play`);
      };
      await checkInStep('after the chat');

      // Knocked out of step (as a stalled decoder or a slow disk would do): a picture far off
      // is moved back, sound a little off is nudged back.
      const knocked = await page.evaluate(() => {
        const playing = (/** @type {string} */ testid) => /** @type {HTMLMediaElement[]} */ ([...document.querySelectorAll(`[data-testid="${testid}"]`)])
          .find((media) => !media.paused);
        const video = playing('replay-video');
        const audio = playing('replay-audio');
        if (!video || !audio) return null;
        video.currentTime += 0.5;
        audio.currentTime += 0.15;
        const state = /** @type {any} */ (window).hearthReplay.state();
        const off = (/** @type {string | undefined} */ id) => state.tracks.find((/** @type {any} */ t) => t.streamId === id).positionMs - state.masterMs;
        return { ids: [video.dataset.streamId, audio.dataset.streamId], off: [off(video.dataset.streamId), off(audio.dataset.streamId)] };
      });
      assert.ok(knocked && knocked.off.every((off) => off > MAX_DRIFT_MS), `two elements knocked out of step: ${JSON.stringify(knocked)}`);
      const recoveredAt = Date.now();
      await waitFor('the knocked elements to be back in step', async () => {
        const state = await replayState(page);
        return knocked.ids.every((id) => {
          const track = state.tracks.find((/** @type {any} */ t) => t.streamId === id);
          return track.active && !track.paused && Math.abs(track.positionMs - state.masterMs) < MAX_DRIFT_MS / 2;
        });
      }, { timeout: 3_000, interval: 50 });
      console.log(`knocked out of step by 500 ms (video) and 150 ms (audio): back within ${MAX_DRIFT_MS / 2} ms after ${Date.now() - recoveredAt} ms`);

      // The late joiner's tile is there while they were, with their camera.
      const lateVideo = videos.find((/** @type {any} */ s) => s.participant_id === lateSpan.id);
      const lateMid = lateVideo ? lateVideo.start_ms + 100 : (lateSpan.joined_ms + lateSpan.left_ms) / 2;
      await page.evaluate((ms) => /** @type {any} */ (window).hearthReplay.seek(ms), lateMid);
      await waitFor('the late joiner to be on screen', () => lateTile.isVisible(), { timeout: 3_000 });
      if (lateVideo) {
        await waitPlaying(page);
        await sleep(150);
        // Their streams began late on the timeline: they too are where the clock is.
        const s = await replayState(page);
        const theirs = s.tracks.filter((/** @type {any} */ t) => t.participantId === lateSpan.id && t.active);
        assert.ok(theirs.length > 0, `the late joiner's streams play at ${s.masterMs} ms`);
        for (const track of theirs) {
          assert.ok(Math.abs(track.positionMs - s.masterMs) < MAX_DRIFT_MS, `${track.streamId} (from ${track.startMs} ms) is at ${Math.round(track.positionMs)} ms, the clock at ${Math.round(s.masterMs)} ms`);
        }
        await waitFor('the late joiner\'s camera to draw frames', async () => {
          const state = await replayState(page);
          const t = state.tracks.find((/** @type {any} */ x) => x.streamId === lateVideo.id);
          return !state.waiting && t.frames > 0 && t.videoWidth > 0;
        }, { timeout: 5_000 });
      }
      await page.evaluate((ms) => /** @type {any} */ (window).hearthReplay.seek(ms), lateSpan.left_ms + 600);
      await waitFor('the late joiner to be gone after they left', async () => !(await lateTile.isVisible()), { timeout: 3_000 });

      // A click in the middle of the seek bar: everything lands on the same moment and plays on.
      const bar = await page.locator('#replay-seek').boundingBox();
      assert.ok(bar);
      await page.mouse.click(bar.x + bar.width / 2, bar.y + bar.height / 2);
      const landed = await waitPlaying(page);
      assert.ok(Math.abs(landed.masterMs - m.duration_ms / 2) < m.duration_ms * 0.1, `the click put the clock mid-way: ${landed.masterMs} of ${m.duration_ms}`);
      await checkInStep('after seeking to the middle');
      await page.screenshot({ path: path.join(ARTIFACTS, 'replay.png') });

      // Back to the start: the list holds only what happened by then.
      await page.locator('#replay-seek').fill('0');
      await waitFor('the chat to leave the list after seeking back', async () => (await chatShown.count()) === 0, { timeout: 2_000 });
      const max = Math.max(...drifts);
      console.log(`replay drift: max ${Math.round(max)} ms, median ${Math.round(drifts.sort((a, b) => a - b)[drifts.length >> 1])} ms over ${drifts.length} samples`);
    });
  });

  test('export makes one MP4 of the whole recording', async () => {
    assert.ok(made.recordingId);
    await withBrowser('recording-export', async (browser) => {
      const host = await Participant.open(browser, 'Hana Host');
      const page = await openRecordingsPage(host.page, server, made.sessionId, made.hostKey);
      const item = recordingItem(page, made.recordingId ?? '');
      const started = Date.now();
      await item.locator('[data-testid="recording-export"]').click();
      const panel = item.locator('[data-testid="recording-export-panel"]');
      await waitFor('the export to finish', async () => {
        const state = await panel.getAttribute('data-state');
        if (state === 'failed') throw new Error(await item.locator('[data-testid="recording-export-status"]').textContent() ?? 'failed');
        return state === 'done';
      }, { timeout: 90_000, interval: 250 });
      console.log(`export took ${Date.now() - started} ms`);
      const href = await item.locator('[data-testid="recording-export-download"]').getAttribute('href') ?? '';
      const response = await page.request.get(new URL(href, server.url).href);
      assert.equal(response.status(), 200);
      assert.equal(response.headers()['content-type'], 'video/mp4');
      const body = await response.body();
      assert.ok(body.length > 10_000, `the file has content: ${body.length} bytes`);
      const dir = mkdtempSync(path.join(tmpdir(), 'hearth-export-'));
      try {
        const file = path.join(dir, 'export.mp4');
        writeFileSync(file, body);
        const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_format', '-show_streams', '-of', 'json', file]).toString());
        assert.ok(probe.streams.some((/** @type {any} */ s) => s.codec_type === 'video'), 'the export has a video stream');
        assert.ok(probe.streams.some((/** @type {any} */ s) => s.codec_type === 'audio'), 'the export has sound');
        const seconds = Number(probe.format.duration);
        const expected = (await manifest()).duration_ms / 1000;
        assert.ok(Math.abs(seconds - expected) < 1.5, `the export lasts ${seconds} s, the recording ${expected} s`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  test('stop sharing kills the replay link; delete removes the recording and its files', async () => {
    assert.ok(made.replayUrl && made.recordingId);
    const replayUrl = made.replayUrl;
    const replayKey = new URL(replayUrl).searchParams.get('r');
    await withBrowser('recording-revoke', async (browser) => {
      const host = await Participant.open(browser, 'Hana Host');
      const viewer = await Participant.open(browser, 'Vi Viewer');
      const page = await openRecordingsPage(host.page, server, made.sessionId, made.hostKey);
      const item = recordingItem(page, made.recordingId ?? '');
      // Shared: the listing remembers the link.
      await waitFor('the shared link to be listed', async () => (await item.locator('[data-testid="recording-share-link"]').inputValue()) === replayUrl);

      await item.locator('[data-testid="recording-unshare"]').click();
      await waitFor('the share button to come back', () => item.locator('[data-testid="recording-share"]').isVisible());
      const manifestUrl = `${server.url}/api/recordings/${made.recordingId}?r=${replayKey}`;
      assert.equal((await fetch(manifestUrl)).status, 404, 'the API refuses the revoked link');
      await viewer.page.goto(replayUrl);
      await waitFor('the replay page to explain the dead link', async () =>
        (await viewer.page.locator('#replay-message-title').textContent()) === 'This link does not open the recording');
      assert.equal(await viewer.page.locator('#replay-view').isVisible(), false);

      const stream = (await manifest()).streams[0];
      await item.locator('[data-testid="recording-delete"]').click();
      await host.confirm();
      await waitFor('the empty state after deleting', () => page.locator('[data-testid="recordings-empty"]').isVisible());
      assert.equal(await page.locator('[data-testid="recording"]').count(), 0);
      const listed = await (await fetch(`${server.url}/api/sessions/${made.sessionId}/recordings?k=${made.hostKey}`)).json();
      assert.deepEqual(listed.recordings, [], 'the API lists nothing');
      const file = await fetch(`${server.url}${stream.url}`);
      assert.equal(file.status, 404, 'the stream file is gone');
      assert.equal((await file.arrayBuffer()).byteLength > 0 && file.headers.get('content-type')?.startsWith('video/'), false, 'no media bytes');
    });
  });
});
