// What the recording tests share: the host's recordings page and the replay page, driven and
// read the way a person (or the page's test hook) would.

import { waitFor } from './helpers.js';

/**
 * Opens a session's recordings page with its host key, and waits until it has loaded.
 * @param {import('playwright-core').Page} page
 * @param {import('./helpers.js').Server} server
 * @param {string} sessionId
 * @param {string} hostKey
 */
export async function openRecordingsPage(page, server, sessionId, hostKey) {
  await page.goto(`${server.url}/s/${sessionId}/recordings?k=${hostKey}`);
  await waitFor('the recordings page to load', async () => {
    if (await page.locator('#recordings-message').isVisible()) {
      throw new Error(`the page says: ${await page.locator('#recordings-message').textContent()}`);
    }
    return page.locator('#recordings-view').isVisible();
  });
  return page;
}

/**
 * One recording's entry on the recordings page.
 * @param {import('playwright-core').Page} page
 * @param {string} recordingId
 */
export function recordingItem(page, recordingId) {
  return page.locator(`[data-testid="recording"][data-recording-id="${recordingId}"]`);
}

/**
 * The replay's master clock and every media element, sampled at one instant.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<any>}
 */
export function replayState(page) {
  return page.evaluate(() => /** @type {any} */ (window).hearthReplay.state());
}

/**
 * Waits until the replay plays (Play was pressed, every element is ready and the clock runs),
 * and returns its state then.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<any>}
 */
export async function waitPlaying(page) {
  return waitFor('the replay to play', async () => {
    const state = await replayState(page);
    return state && state.playing && !state.waiting ? state : null;
  }, { timeout: 8_000, interval: 50 });
}
