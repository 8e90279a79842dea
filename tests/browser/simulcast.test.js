// Simulcast end to end in Chromium: the host's camera goes out in three layers, and the
// attendee's picture follows the attendee's link. An nftables rule polices the attendee's
// downlink (the UDP port its subscribe connection receives on) to ~300 kbit/s: the picture it
// decodes gets smaller instead of freezing, and grows back when the limit is lifted.
//
// Shaping needs a network of its own: see netns.js.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Participant, hostAndAttendee, waitFor } from './helpers.js';
import { enterNetns, nft } from './netns.js';

const TABLE = 'hearth';

/**
 * The UDP port the attendee's subscribe connection receives on: its selected local candidate.
 * @param {Participant} participant
 */
async function subscribePort(participant) {
  return participant.page.evaluate(async () => {
    const pc = /** @type {RTCPeerConnection} */ (/** @type {any} */ (window).hearth.subscribePc);
    const stats = [...(await pc.getStats()).values()];
    const pair = stats.find((s) => s.type === 'candidate-pair' && s.state === 'succeeded' && s.nominated);
    const local = stats.find((s) => s.type === 'local-candidate' && s.id === pair?.localCandidateId);
    return /** @type {number} */ (local?.port ?? 0);
  });
}

/**
 * Video packets the attendee's browser counts as lost (a layer switch with a hole or a jump in
 * the sequence numbers shows up there), and the keyframe requests (PLI) it sent.
 * @param {Participant} attendee
 */
async function videoTrouble(attendee) {
  return attendee.page.evaluate(async () => {
    const pc = /** @type {RTCPeerConnection} */ (/** @type {any} */ (window).hearth.subscribePc);
    let lost = 0;
    let plis = 0;
    (await pc.getStats()).forEach((stat) => {
      if (stat.type === 'inbound-rtp' && stat.kind === 'video') {
        lost += stat.packetsLost ?? 0;
        plis += stat.pliCount ?? 0;
      }
    });
    return { lost, plis };
  });
}

/**
 * The width of the host's video as the attendee decodes it now.
 * @param {Participant} attendee
 * @param {Participant} host
 */
async function widthOf(attendee, host) {
  const media = (await attendee.remoteMedia())[/** @type {string} */ (host.id)];
  return media?.frameWidth ?? 0;
}

test('a viewer on a policed link gets a smaller picture, and the full one back after', { timeout: 240_000 }, async (t) => {
  if (!enterNetns(import.meta.url)) return;
  const { host, attendee } = await hostAndAttendee(t, 'simulcast', 'Simulcast');
  // A large tile, so that the largest layer is the one the attendee wants.
  await attendee.page.evaluate(() => {
    const video = /** @type {HTMLVideoElement} */ (document.querySelector('[data-testid="tile"] video'));
    video.style.width = '960px';
    video.style.height = '540px';
  });

  // The estimate starts at 1 Mbit/s and climbs; the picture reaches the largest layer, the
  // camera's full 960 (web/js/media.js).
  let full = 0;
  await waitFor('the attendee to get the largest layer', async () => {
    full = await widthOf(attendee, host);
    return full >= 900;
  }, { timeout: 60_000, interval: 500 });
  console.log(`full_width=${full}`);

  const port = await subscribePort(attendee);
  assert.ok(port > 0, 'the attendee has a selected candidate');
  nft(`table inet ${TABLE} {
    chain out {
      type filter hook output priority 0; policy accept;
      udp dport ${port} limit rate over 37 kbytes/second burst 8 kbytes drop
    }
  }`);
  let limited = full;
  await waitFor('a smaller picture under the limit', async () => {
    limited = await widthOf(attendee, host);
    return limited > 0 && limited <= full / 2;
  }, { timeout: 60_000, interval: 500 });
  // And it keeps playing: frames are still decoded at the smaller size.
  const before = (await attendee.remoteMedia())[/** @type {string} */ (host.id)].framesDecoded;
  await waitFor('frames decoded under the limit', async () => {
    const now = (await attendee.remoteMedia())[/** @type {string} */ (host.id)].framesDecoded;
    return now >= before + 30;
  }, { timeout: 20_000, interval: 500 });
  console.log(`limited_width=${limited}`);

  nft(`flush chain inet ${TABLE} out`);
  const liftedAt = Date.now();
  // Let what the limit dropped be counted before looking at the switch back.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const beforeSwitch = await videoTrouble(attendee);
  await waitFor('the full picture back after the limit is lifted', async () => (await widthOf(attendee, host)) >= full, {
    timeout: 90_000,
    interval: 500,
  });
  console.log(`recovered_after_ms=${Date.now() - liftedAt}`);
  // The switch up, on an unlimited link: no packet counted lost, so the sequence numbers ran
  // on across layers (a jump to another layer's numbers counts as that many lost). Keyframe
  // requests are printed, not judged: the browser also asks when the resolution changes.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const afterSwitch = await videoTrouble(attendee);
  console.log(`switch_up_lost=${afterSwitch.lost - beforeSwitch.lost} switch_up_plis=${afterSwitch.plis - beforeSwitch.plis}`);
  assert.ok(afterSwitch.lost - beforeSwitch.lost <= 2, `packets lost across the switch: ${JSON.stringify({ beforeSwitch, afterSwitch })}`);
});
