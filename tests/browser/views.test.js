// Video nobody looks at costs no bandwidth: when the attendee's tab is hidden, the page tells
// the server (`track_view` 0x0) and the host's video stops arriving; the sound goes on. Shown
// again, the video comes back. A thumbnail-sized tile gets a smaller layer than a large one,
// and the host's page stops sending the layers nobody receives.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Participant, hostAndAttendee, sleep, waitFor } from './helpers.js';

/**
 * Pretends the page went to the background (a minimised window, another tab in front), as far
 * as the page can tell: `document.visibilityState` and its event.
 * @param {Participant} participant
 * @param {boolean} hidden
 */
async function setHidden(participant, hidden) {
  await participant.page.evaluate((hidden) => {
    Object.defineProperty(document, 'visibilityState', { value: hidden ? 'hidden' : 'visible', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

test('a hidden page receives no video, and gets it back when shown', { timeout: 120_000 }, async (t) => {
  const { host, attendee } = await hostAndAttendee(t, 'views', 'Views');
  const of = async () => (await attendee.remoteMedia())[/** @type {string} */ (host.id)];

  await setHidden(attendee, true);
  // The report settles for 250 ms and the server allocates every 500 ms; then it stops.
  await sleep(1500);
  const hidden = await of();
  await sleep(3000);
  const later = await of();
  assert.equal(later.videoPackets, hidden.videoPackets, 'no video packets while hidden');
  assert.ok(later.audioPackets > hidden.audioPackets + 50, 'the sound goes on');

  await setHidden(attendee, false);
  await waitFor('video again once shown', async () => (await of()).framesDecoded > later.framesDecoded + 30, { timeout: 20_000 });

  // A small tile needs no more than the smallest layer.
  await attendee.page.evaluate(() => {
    const video = /** @type {HTMLVideoElement} */ (document.querySelector('[data-testid="tile"] video'));
    video.style.width = '200px';
    video.style.height = '112px';
  });
  await waitFor('a thumbnail gets the small layer', async () => {
    const { frameWidth } = await of();
    return frameWidth > 0 && frameWidth <= 240;
  }, { timeout: 30_000, interval: 500 });

  // Nobody receives the two larger layers now: the host is told to pause them, and its
  // camera's outbound streams for them stop.
  const sent = () => host.page.evaluate(async () => {
    const pc = /** @type {RTCPeerConnection} */ (/** @type {any} */ (window).hearth.publishPc);
    /** @type {Record<string, number>} */
    const bytes = {};
    (await pc.getStats()).forEach((stat) => {
      if (stat.type === 'outbound-rtp' && stat.kind === 'video' && stat.rid) bytes[stat.rid] = stat.bytesSent;
    });
    return bytes;
  });
  /** @type {Record<string, number>} */
  let before = {};
  await waitFor('the host stops sending the larger layers', async () => {
    const now = await sent();
    const stopped = before.f !== undefined && now.f === before.f && now.h === before.h && now.q > before.q;
    before = now;
    return stopped;
  }, { timeout: 30_000, interval: 1000 });

  // A big tile again: the top layer comes back, at the host and at the attendee.
  await attendee.page.evaluate(() => {
    const video = /** @type {HTMLVideoElement} */ (document.querySelector('[data-testid="tile"] video'));
    video.style.width = '960px';
    video.style.height = '540px';
  });
  await waitFor('the full picture back', async () => (await of()).frameWidth >= 960, { timeout: 30_000, interval: 500 });
});
