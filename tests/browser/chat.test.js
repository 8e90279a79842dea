// Chat: messages go to everyone as the server stamped them (its id, sender and name), and a
// late joiner gets the history. Real server, real Chromium, fake devices.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Participant, startServer, startSession, waitFor, withBrowser } from './helpers.js';

/** @type {import('./helpers.js').Server} */
let server;

before(async () => {
  server = await startServer('chat');
});

after(async () => {
  await server?.stop();
});

/**
 * Waits until `who` shows exactly these messages, in this order.
 * @param {Participant} who
 * @param {{from: Participant, text: string}[]} expected
 */
async function waitChat(who, expected) {
  await who.openPanel('chat');
  return waitFor(`${who.name} to show ${expected.length} chat message(s)`, async () => {
    const shown = await who.chatShown();
    if (shown.length !== expected.length) return null;
    const ok = expected.every((e, i) =>
      shown[i].text === e.text && shown[i].from === e.from.id && shown[i].name === e.from.name);
    if (!ok) throw new Error(`shown: ${JSON.stringify(shown)}`);
    return shown;
  });
}

describe('chat', () => {
  test('host and attendee chat; a late joiner sees the history', async () => {
    await withBrowser('chat', async (browser) => {
      const host = await Participant.open(browser, 'Hana Host');
      const attendee = await Participant.open(browser, 'Ari Attendee');
      const title = 'Book club';
      const invite = await startSession(server, host, title);
      await attendee.joinByInvite(invite, title);
      await attendee.waitJoined();

      assert.equal(await host.page.getAttribute('#chat-input', 'maxlength'), '2000');
      await host.say('Hello from the host');
      // The attendee's chat is closed: the message shows as unread first.
      await waitFor(`${attendee.name} to see an unread message`, async () =>
        (await attendee.page.locator('#chat-unread').textContent()) === '1');
      const first = [{ from: host, text: 'Hello from the host' }];
      await waitChat(attendee, first);
      await waitChat(host, first);
      assert.equal(await attendee.page.locator('#chat-unread').isVisible(), false, 'opening the chat clears the count');

      // Sent with the button this time; the input empties once it went out.
      await attendee.page.fill('#chat-input', 'Hi host!\nSecond line.');
      await attendee.page.click('#chat-send');
      await waitFor(`${attendee.name}'s chat input to clear`, async () => (await attendee.page.inputValue('#chat-input')) === '');
      const both = [...first, { from: attendee, text: 'Hi host!\nSecond line.' }];
      const onHost = await waitChat(host, both);
      await waitChat(attendee, both);

      // What the page shows is what the server sent: the same ids, senders and names.
      const serverChat = (await host.state()).chat;
      assert.deepEqual(onHost.map((m) => m.id), serverChat.map((/** @type {any} */ m) => m.id));
      assert.deepEqual(serverChat.map((/** @type {any} */ m) => m.name), [host.name, attendee.name]);
      assert.ok(new Set(serverChat.map((/** @type {any} */ m) => m.id)).size === 2, 'every message has its own id');

      // A late joiner gets both, oldest first, from `joined`.
      const late = await Participant.open(browser, 'Lou Latecomer');
      await late.joinByInvite(invite, title);
      await late.waitJoined();
      await waitChat(late, both);

      // And takes part like anyone else.
      await late.say('Sorry I am late');
      const all = [...both, { from: late, text: 'Sorry I am late' }];
      for (const who of [host, attendee, late]) {
        await waitChat(who, all);
        who.assertNoServerErrors();
      }
    });
  });
});
