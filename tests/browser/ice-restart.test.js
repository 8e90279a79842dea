// A network outage longer than the server waits: all UDP is dropped for 15 s, so the server's
// side of every media connection fails (it is started to give up after 5 + 3 s). The pages
// restart ICE by themselves (web/js/ice-watch.js) and media flows again, with the same
// participants and no reload. The WebSocket (TCP) stays up meanwhile, as on a network whose
// UDP is blocked or lost.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Participant, hostAndAttendee, sleep, waitFor } from './helpers.js';
import { enterNetns, nft } from './netns.js';

const TABLE = 'hearth';

test('after a long outage the pages restart ICE and media comes back', { timeout: 240_000 }, async (t) => {
  if (!enterNetns(import.meta.url)) return;
  const { server, host, attendee, joined } = await hostAndAttendee(t, 'ice-restart', 'Outage', {
    serverArgs: ['--ice-failed-secs', '3'],
  });
  await host.waitReceiving(attendee);
  const ids = [(await host.state()).participantId, joined.participantId];

  nft(`table inet ${TABLE} {
    chain out {
      type filter hook output priority 0; policy accept;
      meta l4proto udp drop
    }
  }`);
  await sleep(15_000);
  nft(`delete table inet ${TABLE}`);
  const frames = async (/** @type {Participant} */ viewer, /** @type {Participant} */ of) =>
    (await viewer.remoteMedia())[/** @type {string} */ (of.id)]?.framesDecoded ?? 0;
  const before = [await frames(attendee, host), await frames(host, attendee)];
  await waitFor('video both ways again', async () =>
    (await frames(attendee, host)) > before[0] + 30 && (await frames(host, attendee)) > before[1] + 30,
  { timeout: 60_000, interval: 500 });

  assert.deepEqual([(await host.state()).participantId, (await attendee.state()).participantId], ids, 'the same participants');
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  const restarts = Number(/hearth_ice_restarts_total (\d+)/.exec(metrics)?.[1] ?? 0);
  console.log(`ice_restarts=${restarts}`);
  assert.ok(restarts >= 1, 'it took an ICE restart (the server had given the connections up)');
});
