// Reconnecting after a lost WebSocket: the attendee's page reaches the server through a TCP
// proxy, and the test cuts that proxy's sockets without a close frame, the way a Wi-Fi switch
// or a sleeping laptop does. WebRTC media goes straight to the server over UDP and is not cut.
// Real server, real Chromium, fake devices.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Participant, startServer, startSession, waitFor, withBrowser } from './helpers.js';

/**
 * A TCP proxy in front of the server. `cut` destroys every proxied socket (no WebSocket close
 * frame reaches either side); `freeze` keeps them open but carries nothing more on them, like
 * a network that vanished without a word; while `refusing`, new connections are dropped as
 * they arrive.
 * @typedef {object} Proxy
 * @property {string} url the proxy's http://127.0.0.1:<port>
 * @property {() => void} cut
 * @property {() => void} freeze
 * @property {(refusing: boolean) => void} refuse
 * @property {() => Promise<void>} close
 */

/**
 * @param {string} target the server's URL
 * @returns {Promise<Proxy>}
 */
async function startProxy(target) {
  const { hostname, port } = new URL(target);
  /** @type {Set<net.Socket>} */
  const sockets = new Set();
  /** @type {Set<[net.Socket, net.Socket]>} */
  const pairs = new Set();
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(port), hostname);
    sockets.add(client);
    sockets.add(upstream);
    /** @type {[net.Socket, net.Socket]} */
    const pair = [client, upstream];
    pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
      pairs.delete(pair);
    };
    for (const socket of [client, upstream]) {
      socket.on('error', drop);
      socket.on('close', drop);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const address = /** @type {net.AddressInfo} */ (server.address());
  return {
    url: `http://127.0.0.1:${address.port}`,
    cut: () => {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    freeze: () => {
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
      pairs.clear();
    },
    refuse: (on) => {
      refusing = on;
    },
    close: () => new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve(undefined));
    }),
  };
}

/**
 * The same link, through another origin (the proxy's).
 * @param {string} link
 * @param {string} origin
 */
function via(link, origin) {
  const url = new URL(link);
  const base = new URL(origin);
  url.host = base.host;
  return url.toString();
}

/**
 * The room's status line, as a user (or a screen reader) gets it.
 * @param {Participant} who
 */
async function statusLine(who) {
  const status = who.page.locator('#room-status');
  return { text: (await status.textContent()) ?? '', visible: await status.isVisible(), role: await status.getAttribute('role') };
}

/**
 * Starts watching the host's tiles: any tile of `other` that leaves the page is recorded, so a
 * leave-and-rejoin shows even if it happened between two looks.
 * @param {Participant} host
 * @param {Participant} other
 */
async function watchTile(host, other) {
  await host.tileOf(other).evaluate((tile) => {
    const w = /** @type {any} */ (window);
    w.testTile = tile;
    w.testTileRemovals = 0;
    new MutationObserver((records) => {
      for (const record of records) {
        for (const node of record.removedNodes) if (node === tile) w.testTileRemovals += 1;
      }
    }).observe(/** @type {Node} */ (tile.parentNode), { childList: true });
  });
}

/**
 * Waits until each shows the other and decodes their video.
 * @param {Participant} host
 * @param {Participant} attendee
 */
async function waitMediaBothWays(host, attendee) {
  await host.waitTileOf(attendee);
  await attendee.waitTileOf(host);
  await host.waitReceiving(attendee);
  await attendee.waitReceiving(host);
}

/**
 * @param {Participant} who
 * @param {Participant} from
 * @param {string} text
 */
async function waitChatFrom(who, from, text) {
  await who.openPanel('chat');
  await waitFor(`${who.name} to show "${text}" from ${from.name}`, async () =>
    (await who.chatShown()).some((m) => m.text === text && m.from === from.id));
}

describe('reconnect', () => {
  /** @type {import('./helpers.js').Server} */
  let server;
  /** @type {Proxy} */
  let proxy;

  before(async () => {
    server = await startServer('reconnect');
    proxy = await startProxy(server.url);
  });

  after(async () => {
    await proxy?.close();
    await server?.stop();
  });

  test('a lost socket comes back as the same participant, and the others notice nothing', async () => {
    await withBrowser('reconnect', async (browser) => {
      const host = await Participant.open(browser, 'Hana Host');
      const attendee = await Participant.open(browser, 'Ari Attendee');
      const title = 'Commute call';
      const invite = await startSession(server, host, title);
      await attendee.joinByInvite(via(invite, proxy.url), title);
      await attendee.waitJoined();
      await waitMediaBothWays(host, attendee);
      const attendeeId = attendee.id;

      await watchTile(host, attendee);
      // The attendee's own peer connections, to check they are the same ones afterwards.
      await attendee.page.evaluate(() => {
        const w = /** @type {any} */ (window);
        w.testPcs = [w.hearth.publishPc, w.hearth.subscribePc];
      });

      proxy.refuse(true);
      proxy.cut();
      await waitFor(`${attendee.name} to show "Reconnecting…"`, async () => {
        const status = await statusLine(attendee);
        return status.visible && status.text === 'Reconnecting…' && status.role === 'status';
      });
      // Chat waits rather than swallowing what is typed, and says why.
      assert.equal(await attendee.page.locator('#chat-input').isDisabled(), true, 'chat input is off while reconnecting');
      await attendee.openPanel('chat');
      assert.equal(await attendee.page.locator('#chat-offline').isVisible(), true, 'the chat says why it is off');
      // Media does not go through the proxy: the host keeps getting the attendee's video.
      await host.waitReceiving(attendee);
      assert.equal((await attendee.state()).status, 'joined', 'still in the session while reconnecting');
      // A microphone turned off meanwhile is off at once locally, and the others learn it
      // once the socket is back.
      await attendee.page.click('#mic-button');
      assert.equal(await attendee.page.getAttribute('#mic-button', 'aria-pressed'), 'true');

      proxy.refuse(false);
      await waitFor(`${attendee.name}'s status to clear`, async () => {
        const state = await attendee.state();
        return !state.reconnecting && !(await statusLine(attendee)).visible;
      }, { timeout: 20_000 });

      const state = await attendee.state();
      assert.equal(state.participantId, attendeeId, 'the attendee is the same participant');
      assert.equal(state.status, 'joined');
      assert.equal(await attendee.page.locator('#chat-input').isDisabled(), false, 'chat input is on again');
      const samePcs = await attendee.page.evaluate(() => {
        const w = /** @type {any} */ (window);
        return w.testPcs[0] === w.hearth.publishPc && w.testPcs[1] === w.hearth.subscribePc;
      });
      assert.equal(samePcs, true, 'the attendee kept both peer connections');

      // The host saw nothing happen: the same tile element all along, never removed.
      const tile = await host.page.evaluate(() => {
        const w = /** @type {any} */ (window);
        return { removals: w.testTileRemovals, connected: w.testTile.isConnected, id: w.testTile.dataset.participantId };
      });
      assert.deepEqual(tile, { removals: 0, connected: true, id: attendeeId }, "the host's tile of the attendee stayed in place");
      assert.equal(await host.tileOf(attendee).count(), 1);
      assert.ok((await host.state()).participants.some((/** @type {any} */ p) => p.id === attendeeId));
      await waitFor(`${host.name} to show ${attendee.name}'s microphone as off (switched while offline)`, async () =>
        host.tileOf(attendee).locator('[data-testid="mic-muted"]').isVisible());

      // Media still flows both ways (no audio from the attendee now: their microphone is off),
      // and chat works again.
      await host.waitReceiving(attendee, { audio: false });
      await attendee.waitReceiving(host);
      await attendee.say('Back from the tunnel');
      await waitChatFrom(host, attendee, 'Back from the tunnel');
      await waitChatFrom(attendee, attendee, 'Back from the tunnel');
      await host.say('Welcome back');
      await waitChatFrom(attendee, host, 'Welcome back');
      host.assertNoServerErrors();
      attendee.assertNoServerErrors();
    });
  });

  test('a socket that goes silent without closing is given up and resumed', async () => {
    await withBrowser('reconnect-silent', async (browser) => {
      const host = await Participant.open(browser, 'Hana Host');
      const attendee = await Participant.open(browser, 'Ari Attendee');
      const title = 'Lift ride';
      const invite = await startSession(server, host, title);
      await attendee.joinByInvite(via(invite, proxy.url), title);
      await attendee.waitJoined();
      await waitMediaBothWays(host, attendee);
      const attendeeId = attendee.id;
      await watchTile(host, attendee);

      // Nothing tells the browser: only its unanswered keepalive ping (every 15 s) can.
      proxy.freeze();
      await waitFor(`${attendee.name} to notice the silence and show "Reconnecting…"`, async () =>
        (await statusLine(attendee)).text === 'Reconnecting…', { timeout: 45_000, interval: 250 });
      await waitFor(`${attendee.name}'s status to clear`, async () => {
        const state = await attendee.state();
        return !state.reconnecting && !(await statusLine(attendee)).visible;
      }, { timeout: 20_000 });
      assert.equal((await attendee.state()).participantId, attendeeId, 'the same participant');
      const tile = await host.page.evaluate(() => {
        const w = /** @type {any} */ (window);
        return { removals: w.testTileRemovals, connected: w.testTile.isConnected };
      });
      assert.deepEqual(tile, { removals: 0, connected: true }, "the host's tile of the attendee stayed in place");
      await host.waitReceiving(attendee);
      await attendee.say('Out of the lift');
      await waitChatFrom(host, attendee, 'Out of the lift');
      host.assertNoServerErrors();
      attendee.assertNoServerErrors();
    });
  });

  test('after the server let go, a reconnect joins afresh and is back in the room', async () => {
    // A short grace, so the server lets go of the attendee while the proxy still refuses.
    const quick = await startServer('reconnect-fresh', { args: ['--resume-grace-secs', '2'] });
    const quickProxy = await startProxy(quick.url);
    try {
      await withBrowser('reconnect-fresh', async (browser) => {
        const host = await Participant.open(browser, 'Hana Host');
        const attendee = await Participant.open(browser, 'Ari Attendee');
        const title = 'Long tunnel';
        const invite = await startSession(quick, host, title);
        await attendee.joinByInvite(via(invite, quickProxy.url), title);
        await attendee.waitJoined();
        await waitMediaBothWays(host, attendee);
        const oldId = attendee.id;

        quickProxy.refuse(true);
        quickProxy.cut();
        await waitFor(`${attendee.name} to show "Reconnecting…"`, async () => (await statusLine(attendee)).text === 'Reconnecting…');
        // The server gives up on the attendee: the host sees them leave.
        await host.waitNoTileOf(attendee, 20_000);

        quickProxy.refuse(false);
        const state = await waitFor(`${attendee.name} to be in the room again as someone new`, async () => {
          const s = await attendee.state();
          return s.status === 'joined' && !s.reconnecting && s.participantId && s.participantId !== oldId ? s : null;
        }, { timeout: 20_000 });
        attendee.id = state.participantId;
        assert.equal(await attendee.page.locator('#room-view').isVisible(), true, 'still on the room page, not reloaded');
        assert.equal((await statusLine(attendee)).visible, false, 'the status cleared');
        assert.equal(await attendee.page.locator('[data-testid="tile"]').count(), 1, 'one tile: the host, once');
        await waitMediaBothWays(host, attendee);
        await attendee.say('New me');
        await waitChatFrom(host, attendee, 'New me');
      });
    } finally {
      await quickProxy.close();
      await quick.stop();
    }
  });

  test('when the server stays out of reach, the page says the connection is lost and offers Rejoin', async () => {
    await withBrowser('reconnect-lost', async (browser) => {
      const host = await Participant.open(browser, 'Hana Host');
      const attendee = await Participant.open(browser, 'Ari Attendee');
      const title = 'Dead zone';
      const invite = await startSession(server, host, title);
      await attendee.joinByInvite(via(invite, proxy.url), title);
      await attendee.waitJoined();
      await host.waitTileOf(attendee);

      proxy.refuse(true);
      try {
        proxy.cut();
        await waitFor(`${attendee.name} to show "Reconnecting…"`, async () => (await statusLine(attendee)).text === 'Reconnecting…');
        // The client tries for the server's 30 s grace; give it that and some.
        await waitFor(`${attendee.name}'s page to say "Connection lost"`, async () =>
          (await attendee.page.locator('#message-view').isVisible())
          && (await attendee.page.locator('#message-title').textContent()) === 'Connection lost', { timeout: 50_000, interval: 250 });
        const rejoin = attendee.page.locator('#rejoin-link');
        assert.equal(await rejoin.isVisible(), true, 'a Rejoin link is offered');
        assert.equal(await rejoin.textContent(), 'Rejoin');
        assert.equal(new URL(/** @type {string} */ (await rejoin.getAttribute('href'))).pathname, new URL(invite).pathname,
          'Rejoin leads back into the same session');
        assert.equal((await attendee.state()).status, 'ended');
        // The server let the attendee go as well.
        await host.waitNoTileOf(attendee, 20_000);
      } finally {
        proxy.refuse(false);
      }
    });
  });
});
