// Browser tests that shape the network run in a network namespace of their own: the test file
// re-runs itself under `unshare --net` (root, plus `ip` and `nft`, which scripts/test
// installs), where only a loopback exists and the machine's own is never touched.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const INSIDE = 'HEARTH_BROWSER_NETNS';

/**
 * Call first in the test. Outside a namespace it runs the file `moduleUrl` again in a new one,
 * asserts that run passed, and returns false (the test returns). Inside, it brings loopback up
 * and returns true: run the test body.
 * @param {string} moduleUrl the test file's `import.meta.url`
 */
export function enterNetns(moduleUrl) {
  if (process.env[INSIDE]) {
    execFileSync('ip', ['link', 'set', 'lo', 'up']);
    return true;
  }
  // Run as a plain script: node's test runner would see the nested run and skip it.
  const env = { ...process.env, [INSIDE]: '1' };
  delete env.NODE_TEST_CONTEXT;
  const run = spawnSync('unshare', ['--net', '--', process.execPath, fileURLToPath(moduleUrl)], { env, stdio: 'inherit' });
  assert.equal(run.status, 0, 'the test inside its network namespace failed (unshare --net needs root)');
  return false;
}

/** @param {string} script an nftables script */
export function nft(script) {
  execFileSync('nft', ['-f', '-'], { input: script });
}
