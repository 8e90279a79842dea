// The Chat panel: the history the server sent at join, then every message as the server
// stamped it. Our own messages appear when the server echoes them (with the name and time it
// gave them), never optimistically, so everyone sees the same thing.

import { byId, element } from '../dom.js';
import { MAX_CHAT_CHARS } from '../protocol.js';

/** @typedef {import('../call.js').Call} Call */
/** @typedef {import('../protocol.js').ChatMessage} ChatMessage */

const TIME = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

export class ChatPanel {
  /**
   * @param {Call} call
   * @param {(unread: number) => void} onUnread how many messages of others arrived while closed
   * @param {AbortSignal} signal removes the listeners
   */
  constructor(call, onUnread, signal) {
    /** @private @readonly */
    this.call = call;
    /** @private @readonly */
    this.onUnread = onUnread;
    /** @private @readonly */
    this.list = byId('chat-list', HTMLOListElement);
    /** @private @readonly */
    this.input = byId('chat-input', HTMLTextAreaElement);
    /** @private @readonly */
    this.sendButton = byId('chat-send', HTMLButtonElement);
    /** @private @readonly says why the input is off */
    this.hint = byId('chat-offline', HTMLElement);
    /** @private */
    this.open = false;
    /** @private */
    this.unread = 0;
    this.list.replaceChildren();
    this.input.value = '';
    this.input.maxLength = MAX_CHAT_CHARS;
    this.setOnline(true);

    const form = byId('chat-form', HTMLFormElement);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.send();
    }, { signal });
    this.input.addEventListener('keydown', (event) => {
      // Enter sends; Shift+Enter is a new line; nothing while an IME is composing.
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    }, { signal });
  }

  /** Shows everything the call has (after `joined`: the history). */
  renderAll() {
    this.list.replaceChildren(...this.call.chat.map((message) => this.item(message)));
    this.scrollToEnd();
  }

  /** @param {ChatMessage} message */
  append(message) {
    const atEnd = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    this.list.append(this.item(message));
    if (atEnd || message.from === this.call.participantId) this.scrollToEnd();
    if (!this.open && message.from !== this.call.participantId) {
      this.unread += 1;
      this.onUnread(this.unread);
    }
  }

  /** @param {boolean} open */
  setOpen(open) {
    this.open = open;
    if (!open) return;
    this.unread = 0;
    this.onUnread(0);
    this.scrollToEnd();
    this.input.focus();
  }

  /**
   * Turns sending off while the signaling socket is being restored. A message typed meanwhile
   * stays in the input (a disabled field keeps its text) and goes with the next Enter; nothing
   * is queued behind the user's back, so nothing arrives late and out of context.
   * @param {boolean} online
   */
  setOnline(online) {
    this.input.disabled = !online;
    this.sendButton.disabled = !online;
    this.hint.hidden = online;
  }

  /** @private */
  send() {
    const text = this.input.value;
    if (!text.trim()) return;
    if (this.call.requests.chat(text)) this.input.value = '';
  }

  /**
   * @private
   * @param {ChatMessage} message
   * @returns {HTMLLIElement}
   */
  item(message) {
    const mine = message.from === this.call.participantId;
    const item = element('li', mine ? 'chat-message mine' : 'chat-message');
    item.dataset.testid = 'chat-message';
    item.dataset.id = message.id;
    item.dataset.from = message.from;
    const head = element('div', 'chat-head');
    const name = element('span', 'chat-name', message.name);
    name.dataset.testid = 'chat-name';
    head.append(name);
    if (mine) head.append(element('span', 'muted', '(you)'));
    const time = element('time', 'chat-time muted', TIME.format(new Date(message.at_ms)));
    time.dateTime = new Date(message.at_ms).toISOString();
    head.append(time);
    const text = element('p', 'chat-text', message.text);
    text.dataset.testid = 'chat-text';
    item.append(head, text);
    return item;
  }

  /** @private */
  scrollToEnd() {
    this.list.scrollTop = this.list.scrollHeight;
  }
}
