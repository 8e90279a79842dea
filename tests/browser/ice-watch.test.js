// When the web client restarts ICE (web/js/ice-watch.js), with a fake connection and clock: no
// browser needed.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DISCONNECTED_GRACE_MS, MIN_GAP_MS, RETRY_MS, watchIce } from '../../web/js/ice-watch.js';

/** A clock and timers that move only when told. */
function fakeTime() {
  let now = 0;
  /** @type {{at: number, fn: () => void, id: number}[]} */
  let pending = [];
  let next = 1;
  return {
    now: () => now,
    setTimeout: (/** @type {() => void} */ fn, /** @type {number} */ ms) => {
      const id = next++;
      pending.push({ at: now + ms, fn, id });
      return id;
    },
    clearTimeout: (/** @type {number} */ id) => {
      pending = pending.filter((t) => t.id !== id);
    },
    /** @param {number} ms */
    advance(ms) {
      const until = now + ms;
      for (;;) {
        pending.sort((a, b) => a.at - b.at);
        const due = pending[0];
        if (!due || due.at > until) break;
        pending.shift();
        now = due.at;
        due.fn();
      }
      now = until;
    },
  };
}

/** @returns {RTCPeerConnection & {set: (state: RTCIceConnectionState) => void}} */
function fakePc() {
  const pc = /** @type {any} */ (new EventTarget());
  pc.iceConnectionState = 'new';
  pc.set = (/** @type {RTCIceConnectionState} */ state) => {
    pc.iceConnectionState = state;
    pc.dispatchEvent(new Event('iceconnectionstatechange'));
  };
  return pc;
}

test('a short dropout heals by itself and costs no restart', () => {
  const time = fakeTime();
  const pc = fakePc();
  let restarts = 0;
  watchIce(pc, () => restarts++, /** @type {any} */ (time));
  pc.set('connected');
  pc.set('disconnected');
  time.advance(DISCONNECTED_GRACE_MS - 1);
  pc.set('connected');
  time.advance(60_000);
  assert.equal(restarts, 0);
});

test('a connection that stays disconnected is restarted, and again until it is back', () => {
  const time = fakeTime();
  const pc = fakePc();
  let restarts = 0;
  watchIce(pc, () => restarts++, /** @type {any} */ (time));
  pc.set('connected');
  pc.set('disconnected');
  time.advance(DISCONNECTED_GRACE_MS);
  assert.equal(restarts, 1);
  pc.set('checking'); // the restart's checks go nowhere: the network is still down
  time.advance(RETRY_MS);
  assert.equal(restarts, 2);
  pc.set('connected');
  time.advance(5 * RETRY_MS);
  assert.equal(restarts, 2, 'nothing more once connected');
});

test('a failed connection is restarted at once, but never faster than the minimum gap', () => {
  const time = fakeTime();
  const pc = fakePc();
  let restarts = 0;
  watchIce(pc, () => restarts++, /** @type {any} */ (time));
  pc.set('failed');
  time.advance(0);
  assert.equal(restarts, 1);
  pc.set('checking');
  pc.set('failed');
  time.advance(MIN_GAP_MS - 1);
  assert.equal(restarts, 1, 'ICE gave up again quickly; wait');
  time.advance(RETRY_MS);
  assert.equal(restarts, 2);
});

test('stopping the watch stops restarts', () => {
  const time = fakeTime();
  const pc = fakePc();
  let restarts = 0;
  const stop = watchIce(pc, () => restarts++, /** @type {any} */ (time));
  pc.set('disconnected');
  stop();
  time.advance(60_000);
  pc.set('failed');
  time.advance(60_000);
  assert.equal(restarts, 0);
});
