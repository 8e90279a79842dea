// Active speaker: whoever talks is highlighted on everyone's tiles, and the floor follows the
// voice. The server hears only the audio levels Chromium writes into its packets (RFC 6464), so
// the microphone must say something: Chromium's default fake microphone beeps 20 ms every
// 500 ms, which is not speech, so here it plays a continuous tone from a file instead.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ARTIFACTS, Participant, startServer, startSession, waitFor, withBrowser } from './helpers.js';

/** @type {import('./helpers.js').Server} */
let server;
/** @type {string} where the tone file lives */
let audioDir;
/** @type {string} */
let tone;

before(async () => {
  audioDir = mkdtempSync(path.join(tmpdir(), 'hearth-browser-audio-'));
  tone = path.join(audioDir, 'tone.wav');
  // Chromium loops the file; a sine at ffmpeg's default amplitude is far above the server's
  // voice threshold (-50 dBov).
  execFileSync('ffmpeg', ['-y', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=10',
    '-ar', '48000', '-ac', '1', tone]);
  server = await startServer('speakers');
});

after(async () => {
  await server?.stop();
  if (audioDir) rmSync(audioDir, { recursive: true, force: true });
});

/**
 * @typedef {object} SpeakerMarks
 * @property {boolean} speaking the tile has the `speaking` ring
 * @property {boolean} active the tile is marked as holding the floor
 * @property {boolean} icon the level icon beside the name shows
 * @property {string | null} label the tile's accessible name
 */

/**
 * How `viewer`'s page marks the camera tile of `who` (their own preview when it is themselves).
 * @param {Participant} viewer
 * @param {Participant} who
 * @returns {Promise<SpeakerMarks>}
 */
function marksOn(viewer, who) {
  const tile = viewer === who ? viewer.page.locator('[data-testid="local-tile"]') : viewer.tileOf(who);
  return tile.evaluate((element) => ({
    speaking: element.classList.contains('speaking'),
    active: element.classList.contains('active-speaker'),
    icon: !(/** @type {HTMLElement} */ (element.querySelector('[data-testid="tile-speaking"]')).hidden),
    label: element.getAttribute('aria-label'),
  }));
}

/**
 * Waits until `viewer` shows `who` speaking or not (and, when given, holding the floor or not).
 * @param {Participant} viewer
 * @param {Participant} who
 * @param {{speaking: boolean, active?: boolean}} want
 * @returns {Promise<SpeakerMarks>}
 */
function waitMarks(viewer, who, want) {
  const whose = viewer === who ? 'their own' : `${who.name}'s`;
  const what = [want.speaking ? 'speaking' : 'not speaking'];
  if (want.active !== undefined) what.push(want.active ? 'holding the floor' : 'not holding the floor');
  return waitFor(`${viewer.name} to show ${whose} tile as ${what.join(' and ')}`, async () => {
    const marks = await marksOn(viewer, who);
    if (marks.speaking !== want.speaking || (want.active !== undefined && marks.active !== want.active)) {
      throw new Error(JSON.stringify(marks)); // reported if the wait times out
    }
    return marks;
  });
}

/**
 * Asserts that a tile marked as speaking says so without colour too.
 * @param {SpeakerMarks} marks
 * @param {string} whose
 */
function assertSpeakingShown(marks, whose) {
  assert.equal(marks.icon, true, `${whose} tile shows the speaking icon beside the name`);
  assert.match(marks.label ?? '', /, speaking$/, `${whose} tile's accessible name says they speak`);
}

/**
 * Clicks the microphone button and waits until the other side shows the new state.
 * @param {Participant} who
 * @param {Participant} other
 * @param {boolean} muted
 */
async function toggleMic(who, other, muted) {
  await who.page.click('#mic-button');
  assert.equal(await who.page.getAttribute('#mic-button', 'aria-pressed'), String(muted), `${who.name}'s mic button shows the microphone ${muted ? 'off' : 'on'}`);
  await waitFor(`${other.name} to show ${who.name}'s microphone as ${muted ? 'off' : 'on'}`, async () =>
    (await other.tileOf(who).locator('[data-testid="mic-muted"]').isVisible()) === muted);
}

describe('active speaker', () => {
  test('the one talking is highlighted and holds the floor; a muted microphone is never heard', async () => {
    await withBrowser('speakers', async (browser) => {
      const host = await Participant.open(browser, 'Hana Host');
      const attendee = await Participant.open(browser, 'Ari Attendee');
      const title = 'Who speaks';
      const invite = await startSession(server, host, title);
      await attendee.joinByInvite(invite, title);
      await attendee.waitJoined();
      await attendee.waitTileOf(host);
      await host.waitTileOf(attendee);
      await attendee.waitReceiving(host);
      await host.waitReceiving(attendee);

      // Both microphones play the same tone: both are heard, on both pages.
      for (const viewer of [host, attendee]) {
        for (const who of [host, attendee]) await waitMarks(viewer, who, { speaking: true });
      }

      // The attendee mutes: only the host is heard, and the host takes the floor.
      await toggleMic(attendee, host, true);
      const hostSeen = await waitMarks(attendee, host, { speaking: true, active: true });
      assertSpeakingShown(hostSeen, `${host.name}'s`);
      await waitMarks(attendee, attendee, { speaking: false, active: false });
      // The server lists the host to the host too: their own preview is highlighted.
      assertSpeakingShown(await waitMarks(host, host, { speaking: true, active: true }), `${host.name}'s own`);
      await waitMarks(host, attendee, { speaking: false, active: false });
      mkdirSync(ARTIFACTS, { recursive: true });
      await attendee.page.screenshot({ path: path.join(ARTIFACTS, 'speakers-host-speaking.png') });

      // Turns change: the host mutes, the attendee unmutes and takes the floor.
      await toggleMic(host, attendee, true);
      await toggleMic(attendee, host, false);
      assertSpeakingShown(await waitMarks(host, attendee, { speaking: true, active: true }), `${attendee.name}'s`);
      await waitMarks(host, host, { speaking: false, active: false });
      await waitMarks(attendee, host, { speaking: false, active: false });
      await waitMarks(attendee, attendee, { speaking: true, active: true });
      await host.page.screenshot({ path: path.join(ARTIFACTS, 'speakers-attendee-speaking.png') });

      host.assertNoServerErrors();
      attendee.assertNoServerErrors();
    }, { args: [`--use-file-for-fake-audio-capture=${tone}`] });
  });
});
