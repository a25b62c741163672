/**
 * The browser of the end-to-end tests that need one (the web console, the front door's
 * cross-site attacks): Debian's chromium driven through playwright-core, which downloads no
 * browser of its own.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { describe, it } from 'vitest';

/** Debian's chromium, or CHROMIUM_PATH. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** What installs it (as root). */
export const CHROMIUM_FIX = 'apt-get install -y chromium';

/** A headless chromium, without what would reach beyond the machine (updates, sync, QUIC). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * describe() for the tests that drive chromium. Without chromium, one failing test stands in for
 * the block and names the fix: none of the block's hooks runs (nothing is started for tests that
 * cannot run) and none of its tests is registered, so the file shows one clear failure rather
 * than one per test or silent skips, and every other test of the run still runs.
 */
export function describeInBrowser(name: string, tests: () => void): void {
  if (existsSync(CHROMIUM_PATH)) {
    describe(name, tests);
    return;
  }
  it(`${name} (needs chromium)`, () => {
    const error = new Error(`chromium is not installed at ${CHROMIUM_PATH}; as root: ${CHROMIUM_FIX} (or set CHROMIUM_PATH to a chromium)`);
    error.stack = error.message;
    throw error;
  });
}
