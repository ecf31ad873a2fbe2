// Test harness for end-to-end tests: starts the real portico binary on a free loopback port and a real
// headless Chromium (Debian's package) driven by playwright-core. Everything started here is stopped by
// the returned `stop` functions, and every wait is bounded.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** The portico binary the tests run: PORTICO_BIN, else the debug build. */
export function porticoBinary() {
  const binary = process.env.PORTICO_BIN || path.join(root, 'target', 'debug', 'portico');
  if (!existsSync(binary)) {
    throw new Error(`${binary} does not exist: run \`cargo build\` first (make test does it)`);
  }
  return binary;
}

/**
 * Starts `portico serve` with extra args (or, with `argv`, portico with exactly those arguments, e.g.
 * `preview --serve …`); resolves with its base URL once it says it is serving.
 */
export async function startPortico(args = [], { listen = '127.0.0.1:0', argv } = {}) {
  const child = spawn(porticoBinary(), argv ?? ['serve', '--listen', listen, '--admin-listen', '127.0.0.1:0', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', RUST_LOG: 'info' },
  });
  let log = '';
  const baseUrl = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`portico did not start within 20s:\n${log}`)), 20000);
    child.stderr.on('data', (chunk) => {
      log += chunk.toString();
      const match = /serving on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`portico exited with ${code} before serving:\n${log}`));
    });
  });
  return {
    baseUrl,
    log: () => log,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await Promise.race([once(child, 'exit'), new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    },
  };
}

/** A free loopback port, for a server whose address another party must know in advance. */
export async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A fresh headless Chromium. The flags keep it off the closed network and quiet. */
export async function startBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Waits (bounded) for a frame whose URL contains `fragment`, e.g. the iframe of an app. */
export async function frameWithUrl(page, fragment, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const frame = page.frames().find((f) => f.url().includes(fragment));
    if (frame) return frame;
    await page.waitForTimeout(100);
  }
  throw new Error(`no frame with ${fragment}; frames: ${page.frames().map((f) => f.url()).join(', ')}`);
}

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * Runs axe-core (WCAG 2.x A and AA rules) on `frameOrPage` and fails on any serious or critical
 * violation, naming the rule and the elements. `what` names the page in the message. Returns the
 * violations of lower impact, for a test that wants to say more.
 */
export async function assertAccessible(frameOrPage, what) {
  await frameOrPage.evaluate(AXE_SOURCE);
  const result = await frameOrPage.evaluate(() =>
    window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }),
  );
  const blocking = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const described = blocking.map((v) => `${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.slice(0, 5).map((n) => n.target.join(' ')).join('\n    ')}`);
  if (blocking.length) throw new Error(`${what}: ${blocking.length} serious or critical accessibility violation(s):\n  ${described.join('\n  ')}`);
  return result.violations;
}

/**
 * Collects what went wrong in `page`'s scripts: uncaught errors, and console errors other than failed
 * loads (tests provoke those: a 403 page, a refused fetch, a mocked 503). A test asserts the list is
 * empty, so a script error or a CSP violation fails it.
 */
export function collectErrors(page) {
  const errors = [];
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !/Failed to load resource/.test(message.text())) errors.push(`console: ${message.text()}`);
  });
  return errors;
}

/**
 * Opens `url` signed out, picks `user` on the dev sign-in page and waits for the shell (its profile
 * button) and for the first view's loading indicator to go. With `expectSignIn`, first asserts that
 * the browser was sent to the sign-in page with its way back (`return_to`), and that the page says
 * loudly that it is the dev sign-in.
 */
export async function signInAt(page, url, user, { expectSignIn = false } = {}) {
  await page.goto(url);
  if (expectSignIn && !/\/auth\/login\?return_to=/.test(page.url())) {
    throw new Error(`${url} did not send a signed-out browser to sign in; it is at ${page.url()}`);
  }
  if (expectSignIn) await page.getByTestId('dev-sign-in-warning').waitFor({ timeout: 10000 });
  await page.getByTestId(`sign-in-${user}`).click({ timeout: 10000 });
  await page.getByTestId('luigi-topnav-profile-btn').waitFor({ timeout: 15000 });
  await page.locator('[luigi-app-loading-indicator]').waitFor({ state: 'detached', timeout: 5000 }).catch(() => {});
}

/** The labels of the shell's left navigation, as shown. */
export async function sideNavLabels(page) {
  return page.$$eval('[data-testid="semiCollapsibleLeftNav"] a[data-testid^="nav-"]', (links) =>
    links.map((a) => a.textContent.trim()).filter(Boolean));
}

/** The test Backstage (tests/backstage), and whether `make test` installed it. */
export const BACKSTAGE_DIR = path.join(root, 'tests', 'backstage');
export const missingBackstage = !existsSync(path.join(BACKSTAGE_DIR, 'node_modules', '@backstage', 'backend-defaults'));

/**
 * Starts tests/backstage/start.mjs with a piped stdin kept open; resolves once it prints its JSON line
 * (ports, tokens), with a `stop()` that ends it (start.mjs stops the backend when its stdin ends).
 * Bounded: 120 s to start, 10 s to stop before it is killed.
 */
export async function startBackstage() {
  const child = spawn(process.execPath, [path.join(BACKSTAGE_DIR, 'start.mjs')], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  let out = '';
  let log = '';
  child.stderr.on('data', (chunk) => { log = (log + chunk.toString()).slice(-6000); });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.stdin.end();
    const exited = await Promise.race([once(child, 'exit').then(() => true), new Promise((r) => setTimeout(() => r(false), 10000))]);
    if (!exited) child.kill('SIGKILL');
  };
  try {
    const ready = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the test Backstage did not start within 120s:\n${log}`)), 120000);
      child.stdout.on('data', (chunk) => {
        out += chunk.toString();
        const line = out.split('\n').find((l) => l.trim().startsWith('{'));
        if (line && out.includes('\n')) {
          clearTimeout(timer);
          try { resolve(JSON.parse(line)); } catch (error) { reject(new Error(`start.mjs printed ${line}: ${error.message}`)); }
        }
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the test Backstage exited with ${code} before it was ready:\n${log}`));
      });
    });
    return { ...ready, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
