// End-to-end: a preview override (src/apps/preview.rs, templates/preview.html, the shell's bottom band)
// in Chromium. Two small upstreams run in the test: the app's own ("production build") and a pull
// request's preview ("PR #42 preview"). The tenant lets developers send one app to a preview on
// loopback (`previews:`). A developer follows the preview link: it only shows a confirmation page,
// and the app still answers from production; "Use this preview" lands them in the shell with the
// preview in the app's frame and a band at the bottom that names it; "End preview" brings production
// back. The band hides nothing: the app's frame (with its own footer bar) and the side navigation end
// above it. Another session of the same user, signed in from the link and still looking at the
// question, never sees the preview. Desktop (1280×800) and phone (390×844); screenshots in
// target/e2e/preview-override-{confirm,shell,ended}-{desktop,phone}.png; axe-core on the confirmation
// page and on the shell with the band.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { startPortico, startBrowser, signInAt, collectErrors, assertAccessible, frameWithUrl } from './harness.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SHOTS = path.join(root, 'target', 'e2e');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const PRODUCTION = 'Cost Insights — production build';
const PR_PREVIEW = 'Cost Insights — PR #42 preview';

let production; // the app's own upstream
let preview; // the pull request's preview
let previewUrl; // its address, as the link carries it
let portico;
let browser;
let dir;

/**
 * A small upstream: every GET answers an HTML page headed `heading`, with a table and a footer bar
 * fixed to the bottom of the frame (what a Fiori-style app keeps its actions in), so a band over the
 * bottom of the portal shows whether it hides anything. `requests` counts what it was asked.
 */
async function startUpstream(heading) {
  const server = createServer((request, response) => {
    server.requests.push({ url: request.url, user: request.headers['x-portico-user'] ?? null });
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    response.end(`<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${heading}</title>
  <style>
    body { font-family: system-ui, sans-serif; margin: 0; padding: 1rem 1.25rem 4rem; color: #1d2d3e; }
    table { border-collapse: collapse; width: 100%; max-width: 32rem; }
    th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #d5dadd; }
    footer { position: fixed; left: 0; right: 0; bottom: 0; display: flex; justify-content: flex-end; gap: .5rem;
             padding: .5rem 1rem; background: #eef1f4; border-top: 1px solid #c9d0d6; }
    footer button { font: inherit; padding: .35rem .9rem; }
  </style>
</head>
<body>
  <main>
    <h1 data-testid="build">${heading}</h1>
    <table>
      <thead><tr><th scope="col">Team</th><th scope="col">This month</th></tr></thead>
      <tbody><tr><td>team-finops</td><td>€ 12,340</td></tr><tr><td>team-search</td><td>€ 8,905</td></tr></tbody>
    </table>
  </main>
  <footer><button type="button" data-testid="export">Export report</button></footer>
</body>
</html>`);
  });
  server.requests = [];
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  [production, preview] = await Promise.all([startUpstream(PRODUCTION), startUpstream(PR_PREVIEW)]);
  previewUrl = `http://127.0.0.1:${preview.address().port}/`;
  dir = mkdtempSync(path.join(tmpdir(), 'portico-e2e-preview-override-'));
  const file = path.join(dir, 'portico.yaml');
  // 127.0.0.1 on any port: dev sign-in answers only on a host the tenant lists.
  writeFileSync(file, `
default_tenant: hq
tenants:
  hq:
    hosts: [127.0.0.1]
    branding: { title: Finance Portal }
    auth:
      dev_sign_in:
        users:
          - { id: dev, name: Dev Eloper, email: dev@hq.example, groups: [eng] }
    roles:
      developer: { groups: [eng] }
    previews: { upstreams: ["http://127.0.0.1:*"], lifetime: 1h, roles: [developer] }
    apps:
      - id: cost-insights
        label: Cost Insights
        category: Insights
        owner: team-finops
        description: What the cloud costs, per team.
        access: { roles: [developer] }
        luigi_client: false
        upstream: "http://127.0.0.1:${production.address().port}"
`);
  [portico, browser] = await Promise.all([startPortico(['--config', file]), startBrowser()]);
});

after(async () => {
  await browser?.close();
  await portico?.stop();
  await Promise.all([production, preview].filter(Boolean).map((server) => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  }));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const link = () => `${portico.baseUrl}/shell/preview/cost-insights?upstream=${encodeURIComponent(previewUrl)}`;

async function newPage(viewport) {
  const phone = viewport === PHONE;
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1, isMobile: phone, hasTouch: phone });
  const page = await context.newPage();
  return { context, page, errors: collectErrors(page) };
}

/**
 * Opens the app in the shell and returns the heading its frame shows, and the `x-portico-preview`
 * header of the frame's document (null when the app's own upstream answered).
 */
async function openApp(page) {
  const answered = page.waitForResponse(
    (response) => new URL(response.url()).pathname === '/apps/cost-insights/' && response.request().isNavigationRequest(),
    { timeout: 15000 },
  );
  await page.goto(`${portico.baseUrl}/home/cost-insights`);
  const response = await answered;
  await page.getByTestId('luigi-topnav-profile-btn').waitFor({ timeout: 15000 });
  const frame = await frameWithUrl(page, '/apps/cost-insights/');
  const heading = frame.getByTestId('build');
  await heading.waitFor({ state: 'visible', timeout: 10000 });
  await page.locator('[luigi-app-loading-indicator]').waitFor({ state: 'detached', timeout: 5000 }).catch(() => {});
  return { frame, heading: await heading.textContent(), header: (await response.allHeaders())['x-portico-preview'] ?? null };
}

/**
 * Whether a click at the middle of the app's footer button reaches it: the element the portal page
 * has at that point must be the app's frame (not a band drawn over it).
 */
async function footerReachable(page, frame) {
  const button = frame.getByTestId('export');
  const box = await button.boundingBox();
  assert.ok(box, "the app's footer button has a box");
  return page.evaluate(({ x, y }) => document.elementFromPoint(x, y)?.tagName === 'IFRAME',
    { x: box.x + box.width / 2, y: box.y + box.height / 2 });
}

for (const [kind, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
  test(`a preview link asks first, "Use this preview" serves the app from it, "End preview" brings production back (${kind})`, async () => {
    const { context, page, errors } = await newPage(viewport);

    // Signed in, the app answers from production and no band shows.
    await signInAt(page, `${portico.baseUrl}/home/cost-insights`, 'dev', { expectSignIn: true });
    let app = await openApp(page);
    assert.equal(app.heading, PRODUCTION);
    assert.equal(app.header, null);
    assert.equal(await page.getByTestId('preview-override-banner').count(), 0);

    // The link: a confirmation page that names the app, the address, the owner, and asks.
    const previewRequestsBefore = preview.requests.length;
    await page.goto(link());
    const heading = page.getByTestId('preview-confirm');
    await heading.waitFor({ state: 'visible', timeout: 10000 });
    assert.equal(await heading.textContent(), 'Use a preview of Cost Insights?');
    assert.equal(await page.getByRole('heading', { level: 1 }).count(), 1);
    assert.equal(await page.getByTestId('preview-upstream').textContent(), previewUrl);
    const text = await page.locator('main').innerText();
    assert.match(text, /Only your session is affected/);
    assert.match(text, /for 1h at most/);
    assert.match(text, /Cost Insights is owned by team-finops\./);
    assert.match(await page.getByRole('note').innerText(), /acts as you/);
    assert.equal(await page.getByTestId('preview-replaces').count(), 0);
    const start = page.getByTestId('preview-start');
    assert.equal(await start.textContent(), 'Use this preview');
    assert.ok(await start.isVisible());
    assert.ok(await page.getByTestId('preview-cancel').isVisible());
    // Nothing of the page is out of reach sideways on a phone.
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
      'the confirmation page scrolls sideways');
    // The button is within the first screen, without scrolling.
    const startBox = await start.boundingBox();
    assert.ok(startBox.y + startBox.height <= viewport.height, `"Use this preview" is below the fold (${startBox.y})`);
    await assertAccessible(page, `the preview confirmation page (${kind})`);
    await page.screenshot({ path: path.join(SHOTS, `preview-override-confirm-${kind}.png`) });

    // A bare link changed nothing: the app still answers from production, the preview was not asked.
    app = await openApp(page);
    assert.equal(app.heading, PRODUCTION);
    assert.equal(app.header, null);
    assert.equal(await page.getByTestId('preview-override-banner').count(), 0);
    assert.equal(preview.requests.length, previewRequestsBefore, 'the preview upstream was asked before it was confirmed');

    // "Cancel" goes back to the app, still production.
    await page.goto(link());
    await page.getByTestId('preview-cancel').click();
    await page.waitForURL(`${portico.baseUrl}/home/cost-insights`, { timeout: 10000 });
    assert.equal(await page.getByTestId('preview-override-banner').count(), 0);

    // "Use this preview": back in the shell at the app, its frame shows the PR preview, the band names it.
    await page.goto(link());
    const answered = page.waitForResponse(
      (response) => new URL(response.url()).pathname === '/apps/cost-insights/' && response.request().isNavigationRequest(),
      { timeout: 15000 },
    );
    await page.getByTestId('preview-start').click();
    await page.waitForURL(`${portico.baseUrl}/home/cost-insights`, { timeout: 10000 });
    await page.getByTestId('luigi-topnav-profile-btn').waitFor({ timeout: 15000 });
    const response = await answered;
    assert.equal((await response.allHeaders())['x-portico-preview'], previewUrl);
    let frame = await frameWithUrl(page, '/apps/cost-insights/');
    await frame.getByTestId('build').waitFor({ state: 'visible', timeout: 10000 });
    assert.equal(await frame.getByTestId('build').textContent(), PR_PREVIEW);
    assert.equal(preview.requests.at(-1).user, 'dev', 'the preview gets the same identity');
    await page.locator('[luigi-app-loading-indicator]').waitFor({ state: 'detached', timeout: 5000 }).catch(() => {});
    const banner = page.getByTestId('preview-override-banner');
    assert.ok(await banner.isVisible(), 'the band is shown');
    assert.equal((await banner.getAttribute('role')), 'status');
    assert.equal(await page.getByTestId('preview-override-cost-insights').innerText(),
      `Preview: Cost Insights is served from ${previewUrl}, for you only.`);
    const end = page.getByTestId('preview-end-cost-insights');
    assert.equal(await end.innerText(), 'End preview');
    // The band sits at the bottom of the window, whole, and leaves the app reachable.
    const bannerBox = await banner.boundingBox();
    assert.equal(Math.round(bannerBox.y + bannerBox.height), viewport.height, 'the band is at the bottom');
    assert.ok(bannerBox.height <= viewport.height * 0.15, `the band is ${bannerBox.height}px high`);
    // The side navigation marks the app's entry.
    const entry = page.locator('[data-testid="nav-cost-insights"]').first();
    await entry.waitFor({ state: 'attached', timeout: 5000 });
    assert.match(await entry.textContent(), /Cost Insights\s*Preview/);
    // The badge stays inside the navigation, also when it is folded to icons (the phone's): there it
    // is a mark on the icon's corner, not the word running off the edge over the icon.
    const badgeBox = await entry.locator('.fd-object-status').boundingBox();
    const navBox = await page.locator('.fd-app__sidebar, .lui-side-nav, nav.fd-side-nav').first().boundingBox();
    assert.ok(badgeBox && navBox && badgeBox.x >= navBox.x && badgeBox.x + badgeBox.width <= navBox.x + navBox.width + 1,
      `the badge (${JSON.stringify(badgeBox)}) leaves the navigation (${JSON.stringify(navBox)})`);
    await assertAccessible(page, `the shell with the preview band (${kind})`);
    await page.screenshot({ path: path.join(SHOTS, `preview-override-shell-${kind}.png`) });
    assert.ok(await footerReachable(page, frame), "the band covers the app's footer bar");
    // The app's frame and the side navigation end above the band; the navigation's collapse button
    // (at its bottom) can be clicked.
    const frameBox = await page.locator('iframe').first().boundingBox();
    assert.ok(frameBox.y + frameBox.height <= bannerBox.y + 1, `the frame ends at ${frameBox.y + frameBox.height}, the band starts at ${bannerBox.y}`);
    const toggle = page.getByTestId('semiCollapsibleButton');
    const toggleBox = await toggle.boundingBox();
    assert.ok(toggleBox.y + toggleBox.height <= bannerBox.y + 1, 'the side navigation\'s collapse button is under the band');
    assert.ok(await toggle.evaluate((el) => {
      const box = el.getBoundingClientRect();
      return el.contains(document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2));
    }), 'the side navigation\'s collapse button is covered');

    // A reload keeps the preview (it is the session's, not the page's).
    app = await openApp(page);
    assert.equal(app.heading, PR_PREVIEW);
    assert.equal(app.header, previewUrl);

    // "End preview": back at the app, production again, no band, no mark.
    const back = page.waitForResponse(
      (r) => new URL(r.url()).pathname === '/apps/cost-insights/' && r.request().isNavigationRequest(),
      { timeout: 15000 },
    );
    await page.getByTestId('preview-end-cost-insights').click();
    await page.waitForURL(`${portico.baseUrl}/home/cost-insights`, { timeout: 10000 });
    await page.getByTestId('luigi-topnav-profile-btn').waitFor({ timeout: 15000 });
    assert.equal((await (await back).allHeaders())['x-portico-preview'], undefined);
    frame = await frameWithUrl(page, '/apps/cost-insights/');
    await frame.getByTestId('build').waitFor({ state: 'visible', timeout: 10000 });
    assert.equal(await frame.getByTestId('build').textContent(), PRODUCTION);
    assert.equal(await page.getByTestId('preview-override-banner').count(), 0);
    await page.locator('[data-testid="nav-cost-insights"]').first().waitFor({ state: 'attached', timeout: 5000 });
    assert.doesNotMatch(await page.locator('[data-testid="nav-cost-insights"]').first().textContent(), /Preview/);
    await page.locator('[luigi-app-loading-indicator]').waitFor({ state: 'detached', timeout: 5000 }).catch(() => {});
    await page.screenshot({ path: path.join(SHOTS, `preview-override-ended-${kind}.png`) });

    assert.deepEqual(errors, []);
    await context.close();
  });
}

test('another session of the same user never sees the preview the first one uses', async () => {
  const first = await newPage(DESKTOP);
  const second = await newPage(DESKTOP);
  await signInAt(first.page, `${portico.baseUrl}/home`, 'dev');
  // The second signs in from the link itself (signed out: sign in first, then back to the question).
  await second.page.goto(link());
  assert.match(second.page.url(), /\/auth\/login\?return_to=/);
  await second.page.getByTestId('sign-in-dev').click({ timeout: 10000 });
  await second.page.getByTestId('preview-confirm').waitFor({ state: 'visible', timeout: 10000 });
  assert.equal(second.page.url(), link());
  const cookie = async ({ context }) => (await context.cookies()).map((c) => `${c.name}=${c.value}`).sort().join('; ');
  assert.notEqual(await cookie(first), await cookie(second), 'two separate sessions');

  // The first session starts the preview.
  await first.page.goto(link());
  await first.page.getByTestId('preview-start').click();
  await first.page.waitForURL(`${portico.baseUrl}/home/cost-insights`, { timeout: 10000 });
  let frame = await frameWithUrl(first.page, '/apps/cost-insights/');
  await frame.getByTestId('build').waitFor({ state: 'visible', timeout: 10000 });
  assert.equal(await frame.getByTestId('build').textContent(), PR_PREVIEW);

  // The second one, whose question is still open, keeps production, now and after a reload, without
  // band or mark; then it declines.
  assert.equal(await second.page.getByTestId('preview-upstream').textContent(), previewUrl);
  for (let round = 0; round < 2; round += 1) {
    const app = await openApp(second.page);
    assert.equal(app.heading, PRODUCTION, `round ${round}`);
    assert.equal(app.header, null);
    assert.equal(await second.page.getByTestId('preview-override-banner').count(), 0);
    const entry = second.page.locator('[data-testid="nav-cost-insights"]').first();
    await entry.waitFor({ state: 'attached', timeout: 5000 });
    assert.doesNotMatch(await entry.textContent(), /Preview/);
  }
  await second.page.goto(link());
  await second.page.getByTestId('preview-cancel').click();
  await second.page.waitForURL(`${portico.baseUrl}/home/cost-insights`, { timeout: 10000 });
  assert.equal((await openApp(second.page)).heading, PRODUCTION);
  // A request of the app's own (a script in it fetching a JSON file) goes to production too.
  const fetched = await second.page.evaluate(() => fetch('/apps/cost-insights/data.json').then((r) => r.headers.get('x-portico-preview')));
  assert.equal(fetched, null);
  assert.equal(production.requests.at(-1).url, '/data.json');

  // Meanwhile the first still uses the preview; ending it there leaves the second as it was.
  const app = await openApp(first.page);
  assert.equal(app.heading, PR_PREVIEW);
  await first.page.getByTestId('preview-end-cost-insights').click();
  await first.page.waitForURL(`${portico.baseUrl}/home/cost-insights`, { timeout: 10000 });
  frame = await frameWithUrl(first.page, '/apps/cost-insights/');
  await frame.getByTestId('build').waitFor({ state: 'visible', timeout: 10000 });
  assert.equal(await frame.getByTestId('build').textContent(), PRODUCTION);
  assert.equal((await openApp(second.page)).heading, PRODUCTION);

  assert.deepEqual(first.errors, []);
  assert.deepEqual(second.errors, []);
  await Promise.all([first.context.close(), second.context.close()]);
});
