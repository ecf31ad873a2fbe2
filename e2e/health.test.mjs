// End-to-end: health-aware navigation in Chromium. A portal whose tenant has `health:` on (300ms) has
// one app whose upstream is down (nothing listens on its port) and one that is fine (an embedded
// bundle). A person sees the down app marked "Degraded" in the side navigation and on its launchpad
// tile with its owner; opening it shows a panel saying it is not answering, since when, whose it is,
// and "Try anyway" (which loads the frame: portico's own 502 page). Desktop (1280×800) and phone
// (390×844); screenshots in target/e2e/health-*.png; axe-core on each state.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import http from 'node:http';
import { startPortico, startBrowser, signInAt, collectErrors, assertAccessible, frameWithUrl, freePort } from './harness.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SHOTS = path.join(root, 'target', 'e2e');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

let portico;
let browser;
let dir;
/** The `flaky` app's upstream, which a test stops and starts again on the same port. */
let flaky;
let flakyPort;

/** Starts the flaky app's upstream on `port` (0: any); resolves with the server once it listens. */
function startFlaky(port) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html', connection: 'close' });
    res.end('<!doctype html><title>Flaky</title><p>flaky app</p>');
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

function stopFlaky() {
  return new Promise((resolve) => { flaky.closeAllConnections(); flaky.close(() => resolve()); });
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  dir = mkdtempSync(path.join(tmpdir(), 'portico-e2e-health-'));
  const closedPort = await freePort();
  flaky = await startFlaky(0);
  flakyPort = flaky.address().port;
  const file = path.join(dir, 'portico.yaml');
  writeFileSync(file, `
default_tenant: hq
tenants:
  hq:
    hosts: [127.0.0.1]
    branding: { title: Health Portal }
    auth:
      dev_sign_in:
        users:
          - { id: dev, name: Dev Eloper, email: dev@hq.example, groups: [eng] }
    roles:
      developer: { groups: [eng] }
    health: { interval: 300ms, timeout: 2s, as: { groups: [eng] } }
    apps:
      - id: cost-insights
        label: Cost Insights
        category: Insights
        icon: lead
        owner: team-finops
        description: What the cloud costs, per team.
        access: { roles: [developer] }
        luigi_client: true
        upstream: "http://127.0.0.1:${closedPort}"
      - id: fine
        label: Fine App
        category: Insights
        owner: team-fine
        access: { roles: [developer] }
        static: "embedded:demo"
      - id: flaky
        label: Flaky App
        category: Insights
        owner: team-flaky
        access: { roles: [developer] }
        luigi_client: false
        upstream: "http://127.0.0.1:${flakyPort}"
`);
  [portico, browser] = await Promise.all([startPortico(['--config', file]), startBrowser()]);
});

after(async () => {
  await browser?.close();
  await portico?.stop();
  if (flaky?.listening) await stopFlaky();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A signed-in page at home, once the navigation shows the down app as degraded (bounded: the
 *  watch needs two failed rounds, a few hundred milliseconds after start; the shell reads the state
 *  when it loads, so it is reloaded until then). */
async function signedInDegraded(viewport) {
  const phone = viewport === PHONE;
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1, isMobile: phone, hasTouch: phone });
  const page = await context.newPage();
  const errors = collectErrors(page);
  await signInAt(page, portico.baseUrl + '/home', 'dev');
  const deadline = Date.now() + 10000;
  for (;;) {
    const config = await page.evaluate(() => fetch('/shell/config.json').then((r) => r.json()));
    const apps = config.luigi.navigation.nodes[0].context.apps;
    if (apps.find((app) => app.id === 'cost-insights').degraded) break;
    assert.ok(Date.now() < deadline, 'the down app was not marked degraded within 10s');
    await page.waitForTimeout(200);
  }
  await page.reload();
  await page.getByTestId('luigi-topnav-profile-btn').waitFor({ timeout: 15000 });
  return { context, page, errors };
}

/** Opens the side navigation where a phone keeps it folded away. */
async function openSideNav(page) {
  const burger = page.locator('.lui-burger:visible, [data-testid="lui-burger"]:visible').first();
  if (await burger.count()) await burger.click();
}

for (const [kind, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
  test(`a degraded app is marked in the navigation and on its tile, and opens to a panel (${kind})`, async () => {
    const { context, page, errors } = await signedInDegraded(viewport);

    // The launchpad tile says it in words, with the owner.
    const home = await frameWithUrl(page, '/shell/home.html');
    const line = home.getByTestId('home-degraded-cost-insights');
    await line.waitFor({ state: 'visible', timeout: 10000 });
    assert.match(await line.innerText(), /^Degraded since \d{1,2}:\d{2}( [AP]M)? — owned by team-finops$/);
    assert.equal(await home.getByTestId('home-degraded-fine').count(), 0, 'a healthy app is not marked');
    await assertAccessible(home, `the launchpad with a degraded app (${kind})`);
    await page.screenshot({ path: path.join(SHOTS, `health-launchpad-${kind}.png`) });

    // The side navigation: a "Degraded" badge, text beside the label, on the down app only.
    if (kind === 'phone') await openSideNav(page);
    const entry = page.locator('[data-testid="nav-cost-insights"]').first();
    await entry.waitFor({ state: 'attached', timeout: 5000 });
    assert.match(await entry.textContent(), /Cost Insights\s*Degraded/);
    assert.doesNotMatch(await page.locator('[data-testid="nav-fine"]').first().textContent(), /Degraded/);
    if (kind === 'phone') await page.screenshot({ path: path.join(SHOTS, `health-nav-${kind}.png`) });

    // Opening it: the panel instead of a spinner.
    await page.goto(portico.baseUrl + '/home/cost-insights');
    const panel = page.getByTestId('portico-degraded-panel');
    await panel.waitFor({ state: 'visible', timeout: 10000 });
    assert.equal(await panel.getAttribute('role'), 'alert');
    const text = await panel.innerText();
    assert.match(text, /Cost Insights is not answering/);
    assert.match(text, /since \d{1,2}:\d{2}( [AP]M)?: no answer: connection refused\./);
    assert.match(text, /It is owned by team-finops/);
    await page.waitForFunction(() => !document.querySelector('.spinnerContainer'), null, { timeout: 5000 });
    await assertAccessible(page, `the shell with the degraded panel (${kind})`);
    await page.screenshot({ path: path.join(SHOTS, `health-panel-${kind}.png`) });

    // "Try anyway" loads the app: it is still down, so the frame shows portico's own 502 page.
    await panel.getByRole('button', { name: 'Try anyway' }).click();
    await panel.waitFor({ state: 'detached', timeout: 2000 });
    const frame = await frameWithUrl(page, '/apps/cost-insights/');
    await frame.getByTestId('error-page').waitFor({ state: 'visible', timeout: 10000 });
    assert.match(await frame.getByTestId('error-page').innerText(), /502/);
    await page.screenshot({ path: path.join(SHOTS, `health-tried-${kind}.png`) });

    // Another app: no panel there.
    await page.goto(portico.baseUrl + '/home/fine');
    await frameWithUrl(page, '/apps/fine/');
    assert.equal(await panel.count(), 0);
    assert.deepEqual(errors, []);
    await context.close();
  });
}

test('a shell that stays open follows the watch: the badge comes when an app stops answering and goes when it is back', async () => {
  const context = await browser.newContext({ viewport: DESKTOP, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const errors = collectErrors(page);
  await signInAt(page, portico.baseUrl + '/home', 'dev');
  const entry = page.locator('[data-testid="nav-flaky"]').first();
  await entry.waitFor({ state: 'attached', timeout: 10000 });
  assert.doesNotMatch(await entry.textContent(), /Degraded/);

  // The upstream stops; nobody reloads the page.
  await stopFlaky();
  await page.waitForFunction(
    () => /Degraded/.test(document.querySelector('[data-testid="nav-flaky"]')?.textContent || ''),
    null, { timeout: 10000 });
  // Opening it now shows the panel the watch's mark calls for.
  await entry.click();
  await page.getByTestId('portico-degraded-panel').waitFor({ state: 'visible', timeout: 10000 });

  // It answers again on the same port: the badge goes, still without a reload.
  flaky = await startFlaky(flakyPort);
  await page.waitForFunction(
    () => !/Degraded/.test(document.querySelector('[data-testid="nav-flaky"]')?.textContent || ''),
    null, { timeout: 10000 });
  assert.deepEqual(errors, []);
  await context.close();
});
