// Shared machinery of the browser tests: start the real server binary, launch Chromium with
// fake camera and microphone, and drive participants through the web client like a person
// would. Every wait is a bounded poll that fails with a message saying what it waited for.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ARTIFACTS = path.join(REPO_ROOT, 'tests', 'browser', 'artifacts');

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const SERVER_START_MS = 20_000;

/** Chromium flags: offline, deterministic, fake devices, WebRTC over loopback. */
const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

/** @param {number} ms */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Thrown by a probe to stop waiting at once: what it waits for can no longer happen. */
export class GiveUp extends Error {}

/**
 * Polls `probe` until it returns something truthy, and returns that. Fails after `timeout`
 * with `what` and the last value or error seen, which usually says what went wrong.
 * @template T
 * @param {string} what
 * @param {() => Promise<T> | T} probe
 * @param {{timeout?: number, interval?: number}} [options]
 * @returns {Promise<NonNullable<T>>}
 */
export async function waitFor(what, probe, { timeout = 15_000, interval = 100 } = {}) {
  const deadline = Date.now() + timeout;
  /** @type {unknown} */
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value) return /** @type {NonNullable<T>} */ (value);
      last = value;
    } catch (error) {
      if (error instanceof GiveUp) throw new Error(`gave up waiting for ${what}: ${error.message}`);
      last = error;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${detail})`);
    }
    await sleep(interval);
  }
}

/**
 * A running Hearth server.
 * @typedef {object} Server
 * @property {string} url e.g. http://127.0.0.1:34567
 * @property {string} logPath where its output goes
 * @property {string} dataDir where it keeps its database and recordings
 * @property {() => Promise<void>} stop graceful (SIGTERM), then cleans up its own directories
 * @property {() => Promise<void>} kill SIGKILL: no chance to finish anything, like a crash
 */

/**
 * @typedef {object} ServerOptions
 * @property {string} [dataDir] a data directory to use and keep (a later server may start on
 *   it); by default the server gets a fresh one, removed on stop
 * @property {string[]} [args] more command-line flags, e.g. `['--ffmpeg', '/nonexistent']`
 */

/** @returns {string} a fresh directory for a server's data, to pass as `dataDir` */
export function tempDataDir() {
  return mkdtempSync(path.join(tmpdir(), 'hearth-browser-data-'));
}

/**
 * Starts the server binary on a free port and waits until it says where it listens.
 * @param {string} name used for the log file name
 * @param {ServerOptions} [options]
 * @returns {Promise<Server>}
 */
export async function startServer(name, { dataDir, args = [] } = {}) {
  const bin = path.resolve(REPO_ROOT, process.env.HEARTH_BIN ?? 'target/debug/hearth');
  if (!existsSync(bin)) {
    throw new Error(`server binary not found at ${bin}: run \`cargo build -p hearth\` or set HEARTH_BIN`);
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  const logPath = path.join(ARTIFACTS, `server-${name}.log`);
  const log = createWriteStream(logPath);
  // Its own working directory, so whatever the server writes there stays out of the repo.
  const workDir = mkdtempSync(path.join(tmpdir(), 'hearth-browser-test-'));
  const data = dataDir ?? path.join(workDir, 'hearth-data');
  const child = spawn(bin, ['--listen', '127.0.0.1:0', '--rtc-ip', '127.0.0.1', '--data-dir', data, ...args], {
    cwd: workDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info', NO_COLOR: '1' },
  });
  /** @type {number | null} */
  let exitCode = null;
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      exitCode = code ?? (signal ? -1 : 0);
      resolve(undefined);
    });
  });
  let stdout = '';
  child.stdout.on('data', (chunk) => {
    log.write(chunk);
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk) => log.write(chunk));

  const stop = async () => {
    if (exitCode === null) {
      child.kill('SIGTERM');
      const killed = await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)]);
      if (!killed) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    log.end();
    rmSync(workDir, { recursive: true, force: true });
  };
  const kill = async () => {
    if (exitCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    log.end();
    rmSync(workDir, { recursive: true, force: true });
  };

  try {
    const url = await waitFor('the server to print "listening on http://…"', () => {
      if (exitCode !== null) throw new Error(`server exited with ${exitCode}; see ${logPath}`);
      // eslint-disable-next-line no-control-regex
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout.replace(/\x1b\[[0-9;]*m/g, ''));
      return match?.[1];
    }, { timeout: SERVER_START_MS, interval: 50 });
    return { url, logPath, dataDir: data, stop, kill };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * @typedef {object} BrowserOptions
 * @property {string[]} [args] more Chromium flags, e.g. `--use-file-for-fake-audio-capture=…`
 *   for a microphone that says more than the default fake one's beeps
 */

/**
 * @param {BrowserOptions} [options]
 * @returns {Promise<import('playwright-core').Browser>}
 */
export async function launchBrowser({ args = [] } = {}) {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_BIN`);
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...args] });
}

/**
 * Per participant, what arrives from each other participant on the subscribe connection,
 * straight from `getStats()`.
 * @typedef {object} RemoteMedia
 * @property {number} framesDecoded
 * @property {number} videoPackets
 * @property {number} audioPackets
 * @property {number} frameWidth
 */

/** One person in a browser context of their own. */
export class Participant {
  /**
   * @param {import('playwright-core').BrowserContext} context
   * @param {import('playwright-core').Page} page
   * @param {string} name
   */
  constructor(context, page, name) {
    this.context = context;
    this.page = page;
    this.name = name;
    /** @type {string | null} set once joined */
    this.id = null;
    /** @type {string[]} every non-fatal server error the page reported (`code: message`) */
    this.serverErrors = [];
    page.on('console', (message) => {
      const match = /^hearth: server error (\w+): (.*)$/.exec(message.text());
      if (match) this.serverErrors.push(`${match[1]}: ${match[2]}`);
    });
  }

  /**
   * Asserts that the server refused nothing this participant's page did.
   * @param {string} [when]
   */
  assertNoServerErrors(when = 'so far') {
    assert.deepEqual(this.serverErrors, [], `${this.name}'s page got no error from the server ${when}`);
  }

  /**
   * A fresh context (own storage, own devices) with one page.
   * @param {import('playwright-core').Browser} browser
   * @param {string} name
   */
  static async open(browser, name) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') {
        console.log(`[${name} console.${message.type()}] ${message.text()}`);
      }
    });
    page.on('pageerror', (error) => console.log(`[${name} page error] ${error.message}`));
    return new Participant(context, page, name);
  }

  /** @returns {Promise<any>} `window.hearth.state()` */
  state() {
    return this.page.evaluate(() => /** @type {any} */ (window).hearth.state());
  }

  /** Waits until the client says it joined, and records our participant id. */
  async waitJoined() {
    const state = await waitFor(`${this.name} to join`, async () => {
      const s = await this.state();
      if (s.status === 'ended') throw new GiveUp(`${this.name}'s call ended: ${await this.page.locator('#message-text').textContent()}`);
      return s.status === 'joined' && s.participantId ? s : null;
    });
    this.id = state.participantId;
    return state;
  }

  /**
   * Opens an invite link and joins with our name.
   * @param {string} inviteUrl
   * @param {string} title the session title the join page should show
   * @returns {Promise<number>} when Join was clicked (Date.now())
   */
  async joinByInvite(inviteUrl, title) {
    await this.page.goto(inviteUrl);
    await waitFor(`${this.name}'s join page to show "Join ${title}"`, async () =>
      (await this.page.locator('#join-title').textContent()) === `Join ${title}`);
    await this.page.fill('#join-name-input', this.name);
    const clickedAt = Date.now();
    await this.page.click('#join-button');
    return clickedAt;
  }

  /**
   * What we receive from every other participant, from the subscribe connection's stats.
   * @returns {Promise<Record<string, RemoteMedia>>}
   */
  remoteMedia() {
    return this.page.evaluate(async () => {
      const hearth = /** @type {any} */ (window).hearth;
      /** @type {RTCPeerConnection | null} */
      const pc = hearth.subscribePc;
      if (!pc) return {};
      const state = hearth.state();
      // The track id in the stats is the MediaStreamTrack id, which the server sets to the
      // published track id (msid); the client maps those to their participants.
      /** @type {Map<string, string>} */
      const owner = new Map();
      for (const track of state.tracks) owner.set(track.id, track.participant_id);
      for (const track of state.remoteTracks) owner.set(track.trackId, track.participantId);
      /** @type {Record<string, {framesDecoded: number, videoPackets: number, audioPackets: number, frameWidth: number}>} */
      const result = {};
      const report = await pc.getStats();
      report.forEach((stat) => {
        if (stat.type !== 'inbound-rtp') return;
        const participantId = owner.get(stat.trackIdentifier);
        if (!participantId) return;
        const entry = (result[participantId] ??= { framesDecoded: 0, videoPackets: 0, audioPackets: 0, frameWidth: 0 });
        if (stat.kind === 'video') {
          entry.framesDecoded += stat.framesDecoded ?? 0;
          entry.videoPackets += stat.packetsReceived ?? 0;
          entry.frameWidth = Math.max(entry.frameWidth, stat.frameWidth ?? 0);
        } else if (stat.kind === 'audio') {
          entry.audioPackets += stat.packetsReceived ?? 0;
        }
      });
      return result;
    });
  }

  /**
   * The remote tile of another participant.
   * @param {Participant} other
   */
  tileOf(other) {
    if (!other.id) throw new Error(`${other.name} has not joined`);
    return this.page.locator(`[data-testid="tile"][data-participant-id="${other.id}"]`);
  }

  /**
   * Waits until the other's tile is there, with their name on it.
   * @param {Participant} other
   */
  async waitTileOf(other) {
    await waitFor(`${this.name} to show a tile named "${other.name}"`, async () => {
      const tile = this.tileOf(other);
      if ((await tile.count()) !== 1) return false;
      return (await tile.getAttribute('data-name')) === other.name
        && (await tile.locator('[data-testid="tile-name"]').textContent()) === other.name;
    });
  }

  /**
   * Waits until the other's tile is gone.
   * @param {Participant} other
   * @param {number} [timeout]
   */
  async waitNoTileOf(other, timeout = 10_000) {
    await waitFor(`${other.name}'s tile to disappear for ${this.name}`, async () => (await this.tileOf(other).count()) === 0, { timeout });
  }

  /**
   * Waits until video from `other` is being decoded right now (frames rising between two
   * samples) and shown (the <video> element knows its size), and audio packets arrive.
   * @param {Participant} other
   * @param {{audio?: boolean}} [options]
   */
  async waitReceiving(other, { audio = true } = {}) {
    const otherId = /** @type {string} */ (other.id);
    const first = await waitFor(`${this.name} to decode video from ${other.name}`, async () => {
      const media = (await this.remoteMedia())[otherId];
      return media && media.framesDecoded > 0 && (!audio || media.audioPackets > 0) ? media : null;
    }, { timeout: 20_000 });
    await waitFor(`${this.name}: frames${audio ? ' and audio packets' : ''} from ${other.name} to keep coming`, async () => {
      const media = (await this.remoteMedia())[otherId];
      return media && media.framesDecoded > first.framesDecoded && (!audio || media.audioPackets > first.audioPackets);
    });
    await waitFor(`${this.name}'s <video> of ${other.name} to have a size`, async () =>
      this.tileOf(other).locator('video').evaluate((video) => /** @type {HTMLVideoElement} */ (video).videoWidth > 0));
  }

  /**
   * Opens a side panel (people, chat, settings) unless it is open already.
   * @param {'people' | 'chat' | 'settings'} panel
   */
  async openPanel(panel) {
    if (await this.page.locator(`#${panel}-panel`).isVisible()) return;
    await this.page.click(`#${panel}-button`);
    await waitFor(`${this.name}'s ${panel} panel to open`, () => this.page.locator(`#${panel}-panel`).isVisible());
  }

  /**
   * The row of the People panel for `other` (or for ourselves).
   * @param {Participant} other
   */
  rowOf(other) {
    if (!other.id) throw new Error(`${other.name} has not joined`);
    return this.page.locator(`[data-testid="participant"][data-participant-id="${other.id}"]`);
  }

  /**
   * Clicks one of the host actions on `other`'s row in the People panel (waits for the button).
   * @param {Participant} other
   * @param {string} action the button's test id, e.g. `action-stage-on`
   */
  async act(other, action) {
    await this.openPanel('people');
    const button = this.rowOf(other).locator(`[data-testid="${action}"]`);
    await waitFor(`${this.name} to offer "${action}" on ${other.name}'s row`, () => button.isVisible());
    await button.click();
  }

  /** Confirms the page's confirmation dialog. */
  async confirm() {
    const ok = this.page.locator('[data-testid="confirm-ok"]');
    await waitFor(`${this.name}'s confirmation dialog`, () => ok.isVisible());
    await ok.click();
  }

  /**
   * Waits until the page shows the end-of-session message with this title.
   * @param {string | RegExp} title
   */
  async waitMessage(title) {
    const matches = (/** @type {string | null} */ text) => (typeof title === 'string' ? text === title : title.test(text ?? ''));
    await waitFor(`${this.name}'s page to say "${title}"`, async () =>
      (await this.page.locator('#message-view').isVisible()) && matches(await this.page.locator('#message-title').textContent()));
  }

  /**
   * Waits until one of the page's notices contains `text`.
   * @param {string | RegExp} text
   */
  async waitNotice(text) {
    await waitFor(`${this.name} to be told "${text}"`, async () => {
      const notices = await this.page.locator('[data-testid="notice"]').allTextContents();
      return notices.some((notice) => (typeof text === 'string' ? notice.includes(text) : text.test(notice)));
    });
  }

  /**
   * The chat as the page shows it.
   * @returns {Promise<{id: string, from: string, name: string, text: string}[]>}
   */
  chatShown() {
    return this.page.locator('[data-testid="chat-message"]').evaluateAll((items) => items.map((item) => ({
      id: /** @type {HTMLElement} */ (item).dataset.id ?? '',
      from: /** @type {HTMLElement} */ (item).dataset.from ?? '',
      name: item.querySelector('[data-testid="chat-name"]')?.textContent ?? '',
      text: item.querySelector('[data-testid="chat-text"]')?.textContent ?? '',
    })));
  }

  /**
   * Sends a chat message by typing it and pressing Enter.
   * @param {string} text
   */
  async say(text) {
    await this.openPanel('chat');
    await this.page.fill('#chat-input', text);
    await this.page.press('#chat-input', 'Enter');
  }
}

/**
 * Starts a session from the home page, as its host, and returns the invite link the room shows.
 * @param {Server} server
 * @param {Participant} host
 * @param {string} title
 * @param {{shape?: 'room' | 'stage', waitingRoom?: boolean}} [options]
 * @returns {Promise<string>}
 */
export async function startSession(server, host, title, { shape = 'room', waitingRoom = false } = {}) {
  await host.page.goto(`${server.url}/`);
  await host.page.fill('#title-input', title);
  await host.page.fill('#start-name-input', host.name);
  await host.page.selectOption('#shape-select', shape);
  if (waitingRoom) await host.page.check('#waiting-room-input');
  await host.page.click('#start-button');
  const state = await host.waitJoined();
  assert.equal(state.role, 'host', 'the one who started the session is its host');
  assert.equal(state.settings.shape, shape, 'the session has the shape chosen on the home page');
  assert.match(host.page.url(), /\/s\/[^/?]+\?k=/, 'the host lands on the host link');
  assert.equal(await host.page.locator('#room-title').textContent(), title);

  await host.page.click('#invite-button');
  const invite = await waitFor('the invite link to be shown', async () => host.page.inputValue('#invite-link'));
  // The link shows at once; whether it was copied is known only once the clipboard answers.
  const status = await waitFor('the invite copy status', async () => host.page.locator('#invite-status').textContent());
  assert.match(status, /copied|select and copy/i, 'the user is told whether the link was copied');
  assert.ok(!invite.includes('k='), `the invite link must not carry the host key: ${invite}`);
  assert.match(invite, /\/s\/[^/?]+\?i=[^&]+/, `the invite link carries an invite key: ${invite}`);
  assert.equal(invite, state.inviteUrl);
  return invite;
}

/**
 * Runs `body` with a fresh browser, closing it whatever happens; on failure, screenshots every
 * open page into the artifacts directory first (named after `name`).
 * @param {string} name
 * @param {(browser: import('playwright-core').Browser) => Promise<void>} body
 * @param {BrowserOptions} [options]
 */
export async function withBrowser(name, body, options) {
  const browser = await launchBrowser(options);
  try {
    await body(browser);
  } catch (error) {
    mkdirSync(ARTIFACTS, { recursive: true });
    let n = 0;
    for (const context of browser.contexts()) {
      for (const page of context.pages()) {
        n += 1;
        await page.screenshot({ path: path.join(ARTIFACTS, `${name}-failure-${n}.png`) }).catch(() => {});
      }
    }
    throw error;
  } finally {
    await browser.close();
  }
}

/**
 * A fresh server and browser with a host and an attendee in a session, each receiving the
 * other's media; both are closed when test `t` ends.
 * @param {import('node:test').TestContext} t
 * @param {string} name server log name
 * @param {string} title session title
 * @param {{serverArgs?: string[]}} [options]
 */
export async function hostAndAttendee(t, name, title, { serverArgs = [] } = {}) {
  const server = await startServer(name, { args: serverArgs });
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await server.stop();
  });
  const host = await Participant.open(browser, 'Hana Host');
  const attendee = await Participant.open(browser, 'Ari Attendee');
  const invite = await startSession(server, host, title);
  await attendee.joinByInvite(invite, title);
  const joined = await attendee.waitJoined();
  await attendee.waitReceiving(host);
  return { server, browser, host, attendee, joined };
}
