// The signaling link of one Call across sockets. A WebSocket can break under a live call (a
// Wi-Fi switch, a sleeping laptop, a proxy cutting it) while the peer connections carry on; the
// server then keeps the participant for a grace period (docs/protocol.md, "Resuming after a
// lost socket"). The Link opens a new socket when asked, on a backoff schedule bounded by that
// grace, and forwards only the current socket's events. It does not decide whether a lost
// socket is worth resuming (the Call knows whether it had joined, or was refused), and it knows
// nothing of the DOM or of peer connections.

import { Emitter } from './emitter.js';
import { SignalingClient } from './protocol.js';

/** @typedef {import('./protocol.js').ClientMessage} ClientMessage */
/** @typedef {import('./protocol.js').ServerMessage} ServerMessage */
/** @typedef {import('./protocol.js').CloseInfo} CloseInfo */

/**
 * Waits before each new socket, in order; the last one repeats. Short at first (most breaks
 * are a moment's network change), then spaced out so a dead server is not hammered.
 */
export const RETRY_DELAYS_MS = [500, 1_000, 2_000, 4_000, 5_000];

/**
 * How long after a loss to keep trying: the server's resume grace (`--resume-grace-secs`,
 * 30 s by default). Past it the server no longer holds us, so a new socket could only join as
 * someone new, which the user should choose (Rejoin) rather than have happen behind their back.
 */
export const GIVE_UP_MS = 30_000;

/**
 * A socket that has not opened by then is abandoned and the next one tried. Only a socket
 * that never opened is abandoned: closing an open one sends a close frame, which the server
 * takes as leaving.
 */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * @typedef {object} LinkOptions
 * @property {number[]} [delays] waits before each retry (the last repeats)
 * @property {number} [giveUpMs] how long after a loss `retry` still schedules an attempt
 * @property {() => number} [now] the clock, in milliseconds
 */

/**
 * @typedef {object} LinkEvents
 * @property {undefined} open a socket is open: send `join` now
 * @property {ServerMessage} message one message from the current socket
 * @property {CloseInfo} close the current socket is gone; `byClient` only after `close()`
 */

/**
 * How long to wait before the next socket, or `null` to give up. The last attempt is moved
 * up to the deadline rather than skipped. Pure: the clock is a parameter.
 * @param {object} at
 * @param {number} at.attempts attempts made since the loss
 * @param {number} at.lostAt when the socket was lost (ms)
 * @param {number} at.now (ms)
 * @param {number[]} [at.delays]
 * @param {number} [at.giveUpMs]
 * @returns {number | null}
 */
export function retryDelay({ attempts, lostAt, now, delays = RETRY_DELAYS_MS, giveUpMs = GIVE_UP_MS }) {
  const left = lostAt + giveUpMs - now;
  if (left <= 0) return null;
  return Math.min(delays[Math.min(attempts, delays.length - 1)], left);
}

/** @extends {Emitter<LinkEvents>} */
export class Link extends Emitter {
  /**
   * @param {string} url
   * @param {LinkOptions} [options]
   */
  constructor(url, { delays = RETRY_DELAYS_MS, giveUpMs = GIVE_UP_MS, now = Date.now } = {}) {
    super();
    /** @private @readonly */
    this.url = url;
    /** @private @readonly */
    this.delays = delays;
    /** @private @readonly */
    this.giveUpMs = giveUpMs;
    /** @private @readonly */
    this.now = now;
    /** @private @type {SignalingClient | null} the socket whose events count */
    this.client = null;
    /** @private @type {number | null} when the socket was lost, until `settled` */
    this.lostAt = null;
    /** @private attempts since the loss: picks the delay */
    this.attempts = 0;
    /** @private @type {ReturnType<typeof setTimeout> | undefined} the next attempt */
    this.timer = undefined;
    /** @private set by `close`: no socket is opened after it */
    this.closed = false;
    /**
     * @private @type {SignalingClient[]} sockets given up on that are still open: closed once
     * a new one is joined, when their close frame can no longer end us (and ends a leftover
     * participant if the server did not hand us over)
     */
    this.stale = [];
  }

  /** Opens the first socket. */
  connect() {
    this.open();
  }

  /**
   * Sends on the current socket.
   * @param {ClientMessage} message
   * @returns {boolean} false when no socket is open (the message is not sent)
   */
  send(message) {
    return this.client?.send(message) ?? false;
  }

  /**
   * Schedules a new socket after the current one was lost, unless the give-up time since the
   * loss has passed (`retryDelay`).
   * @returns {boolean} whether an attempt is scheduled (false: give up)
   */
  retry() {
    if (this.closed) return false;
    const now = this.now();
    this.lostAt ??= now;
    const delay = retryDelay({ attempts: this.attempts, lostAt: this.lostAt, now, delays: this.delays, giveUpMs: this.giveUpMs });
    if (delay === null) return false;
    this.attempts += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.open();
    }, delay);
    return true;
  }

  /** Tries at once if an attempt is waiting (the browser says the network is back). */
  retryNow() {
    if (this.timer === undefined || this.closed) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.open();
  }

  /** The current socket is joined: a later loss starts a fresh schedule. */
  settled() {
    this.lostAt = null;
    this.attempts = 0;
    this.dropStale();
  }

  /** Closes the current socket (with a close frame: the server ends us) and stops retrying. */
  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.dropStale();
    const client = this.client;
    if (client) client.close();
    else this.emit('close', { code: 1000, reason: 'bye', byClient: true });
  }

  /** @private */
  dropStale() {
    for (const client of this.stale.splice(0)) client.close();
  }

  /** @private */
  open() {
    if (this.closed) return;
    const client = new SignalingClient(this.url);
    this.client = client;
    let opened = false;
    const abandon = setTimeout(() => {
      if (!opened && this.client === client) client.close();
    }, CONNECT_TIMEOUT_MS);
    client.on('open', () => {
      opened = true;
      clearTimeout(abandon);
      if (this.client === client) this.emit('open', undefined);
    });
    client.on('message', (message) => {
      if (this.client === client) this.emit('message', message);
    });
    client.on('close', (info) => {
      clearTimeout(abandon);
      if (this.client !== client) return;
      this.client = null;
      if (client.lingering) this.stale.push(client);
      // Only our own `close()` counts as the client's: an abandoned attempt is a failure.
      this.emit('close', { ...info, byClient: this.closed });
    });
    client.connect();
  }
}
