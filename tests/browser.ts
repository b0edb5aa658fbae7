// Real-browser plumbing for the viewer tests: Debian's chromium driven by playwright-core at
// its executable path (nothing downloads a browser), a guard that records any request leaving
// this machine, and where screenshots go.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Screenshots and other test artifacts: $NLA_TEST_ARTIFACTS or ./test-artifacts (git-ignored). */
export const ARTIFACTS = process.env.NLA_TEST_ARTIFACTS ?? path.join(root, 'test-artifacts');

/**
 * The Chromium to drive: $NLA_CHROMIUM, else Debian's. Missing, the test fails (not skips):
 * the viewer is only tested in a real browser.
 */
export function chromiumPath(): string {
  const candidates = process.env.NLA_CHROMIUM ? [process.env.NLA_CHROMIUM] : ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
  const hit = candidates.find((p) => fs.existsSync(p));
  if (!hit) throw new Error(`the viewer tests need Chromium and found none at ${candidates.join(', ')}: install it with \`apt-get install chromium\` (scripts/setup.sh does) or set NLA_CHROMIUM to its path`);
  return hit;
}

export function launchChromium(): Promise<Browser> {
  // --no-sandbox: CI and this workplace run as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'] });
}

/** A context whose requests off this machine are aborted and listed in `outside`. */
export async function localOnlyContext(browser: Browser): Promise<{ context: BrowserContext; outside: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const outside: string[] = [];
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.protocol === 'file:' || u.protocol === 'data:' || ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) return route.continue();
    outside.push(u.href);
    return route.abort();
  });
  return { context, outside };
}

export function screenshotPath(name: string): string {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, name);
}
