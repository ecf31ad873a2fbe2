// End-to-end: the shell orients the user and never leaves them with a spinner or with Luigi's own
// "could not map" message. Titles of the page and of each iframe, breadcrumbs, the recently used apps,
// the not-found view (unknown, forbidden, no such page) and the frame watchdog (an app that never
// starts Luigi Client, an app that does not answer, an app that is down). web/shell/bootstrap.js,
// not-found.js. Screenshots go to target/e2e/shell-<name>-{desktop,phone}.png; the not-found view in
// German (a browser asking for de-DE) to target/e2e/not-found-de{,-phone}.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPortico, startBrowser, frameWithUrl, freePort, assertAccessible, signInAt } from './harness.mjs';

const SHOTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'target', 'e2e');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const TENANT = 'Portico Demo Portal';

let demo; // portico on the embedded demo config
let watchdog; // portico on a config with broken apps (see `before`)
let frameTimeoutMs = 10000; // what the watchdog portico's shell waits for
let hanging; // a TCP server that accepts connections and never answers
let browser;
let dir;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  dir = mkdtempSync(path.join(tmpdir(), 'portico-e2e-shell-'));
  // An app whose page does not load Luigi Client, although config says it does.
  mkdirSync(path.join(dir, 'plain'));
  writeFileSync(path.join(dir, 'plain', 'index.html'),
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Plain</title></head>' +
    '<body><h1>A page without Luigi Client</h1></body></html>');
  hanging = createServer(() => { /* accept, never answer */ });
  await new Promise((resolve) => hanging.listen(0, '127.0.0.1', resolve));
  const closedPort = await freePort();
  const config = (luigi) => `
default_tenant: wd
tenants:
  wd:
    hosts: [127.0.0.1]
    branding: { title: Watchdog Portal }
${luigi}
    auth:
      dev_sign_in:
        users:
          - { id: dev, name: Dev Eloper, email: dev@wd.example, groups: [eng] }
    roles:
      developer: { groups: [eng] }
    apps:
      - { id: plain, label: Plain Page, owner: team-plain, access: { roles: [developer] }, luigi_client: true, static: ./plain }
      - { id: down, label: Down App, owner: team-down, access: { roles: [developer] }, luigi_client: true, upstream: "http://127.0.0.1:${closedPort}" }
      - { id: stuck, label: Stuck App, owner: team-stuck, access: { roles: [developer] }, luigi_client: true, upstream: "http://127.0.0.1:${hanging.address().port}" }
      - { id: fine, label: Fine App, access: { roles: [developer] }, static: "embedded:demo" }
`;
  const file = path.join(dir, 'portico.yaml');
  [demo, browser] = await Promise.all([startPortico(), startBrowser()]);
  // A short frame timeout keeps the test fast, if this portico has the setting; else the 10 s default.
  writeFileSync(file, config('    luigi: { frame_timeout: 3s }'));
  try {
    watchdog = await startPortico(['--config', file]);
    frameTimeoutMs = 3000;
  } catch {
    writeFileSync(file, config(''));
    watchdog = await startPortico(['--config', file]);
  }
});

after(async () => {
  await browser?.close();
  await Promise.all([demo?.stop(), watchdog?.stop()]);
  hanging?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * A signed-in page: opens `deepLink`, picks `user` on the dev sign-in page, waits for the shell.
 * `locale` (e.g. 'de-DE') is the browser's language, which it asks for with Accept-Language too.
 */
async function signedIn(portico, user, deepLink, viewport = DESKTOP, locale = undefined) {
  const context = await browser.newContext({ viewport, ...(locale ? { locale } : {}) });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await signInAt(page, portico.baseUrl + deepLink, user, { expectSignIn: true });
  return { context, page, errors };
}

async function shot(page, name, kind) {
  // Luigi fades its "Loading …" placeholder out; the picture shows what stays.
  await page.locator('[luigi-app-loading-indicator]').waitFor({ state: 'hidden', timeout: 2000 }).catch(() => {});
  await page.screenshot({ path: path.join(SHOTS, `shell-${name}-${kind}.png`) });
}

/** Waits (bounded) until the document title is `title`. */
async function titled(page, title, timeout = 5000) {
  await page.waitForFunction((want) => document.title === want, title, { timeout })
    .catch(async () => assert.fail(`document title stayed ${JSON.stringify(await page.title())}, wanted ${JSON.stringify(title)}`));
}

/** The titles of every iframe in the shell. */
function frameTitles(page) {
  return page.$$eval('iframe', (frames) => frames.map((f) => f.getAttribute('title')));
}

/** Waits (bounded) until Luigi shows no spinner. */
async function noSpinner(page, timeout = 5000) {
  await page.waitForFunction(() => !document.querySelector('.spinnerContainer'), null, { timeout })
    .catch(() => assert.fail('Luigi\'s loading spinner is still showing'));
}

function recentApps(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem('portico.recent.demo.dave') || 'null'));
}

function sideNav(page) {
  return page.locator('[data-testid="semiCollapsibleLeftNav"]');
}

test('titles name the page, the app and the portal, and follow navigation back and forward', async () => {
  const { context, page, errors } = await signedIn(demo, 'dave', '/home');
  await frameWithUrl(page, '/shell/home.html');
  await titled(page, `Home · ${TENANT}`);
  assert.deepEqual(await frameTitles(page), ['Home']);

  await sideNav(page).getByTestId('nav-service-status').click();
  await page.waitForURL(/\/home\/service-status$/);
  await frameWithUrl(page, '/apps/service-status/');
  await titled(page, `Service Status · ${TENANT}`);
  assert.deepEqual(await frameTitles(page), ['Service Status']);

  await sideNav(page).getByText('Overview', { exact: true }).first().click();
  await page.waitForURL(/\/home\/service-status\/overview$/);
  await titled(page, `Overview · Service Status · ${TENANT}`);
  // The app's frame is reused for its page; its title follows.
  await page.waitForFunction(() => [...document.querySelectorAll('iframe')].some((f) => f.title === 'Overview – Service Status'), null, { timeout: 5000 });

  await page.goto(demo.baseUrl + '/home/team-directory');
  await frameWithUrl(page, '/apps/team-directory/');
  await titled(page, `Team Directory · ${TENANT}`);
  await shot(page, 'titles', 'desktop');

  // Back and forward across apps bring back the app, its frame and its title.
  await page.goBack();
  await page.waitForURL(/\/home\/service-status\/overview$/);
  await titled(page, `Overview · Service Status · ${TENANT}`);
  const overview = await frameWithUrl(page, '/apps/service-status/overview');
  await overview.getByTestId('ctx-view').filter({ hasText: '/overview' }).waitFor({ timeout: 5000 });
  await page.goForward();
  await page.waitForURL(/\/home\/team-directory$/);
  await titled(page, `Team Directory · ${TENANT}`);
  await frameWithUrl(page, '/apps/team-directory/');
  // Luigi's own title updates (it writes its header title into document.title) do not undo ours.
  await page.waitForTimeout(500);
  assert.equal(await page.title(), `Team Directory · ${TENANT}`);

  for (const title of await frameTitles(page)) {
    assert.ok(title && title !== 'MFE', `an iframe titled ${JSON.stringify(title)}`);
  }
  // The launchpad's recently used apps: most recent first, each once.
  assert.deepEqual(await recentApps(page), ['team-directory', 'service-status']);
  assert.deepEqual(errors, []);
  await context.close();
});

test('breadcrumbs show where the user is and lead back up, on desktop and on a phone', async () => {
  for (const [kind, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    const { context, page } = await signedIn(demo, 'dave', '/home/service-status/overview', viewport);
    await frameWithUrl(page, '/apps/service-status/overview');
    const crumbs = page.getByRole('navigation', { name: 'Breadcrumb' });
    await crumbs.waitFor({ state: 'visible', timeout: 5000 });
    assert.deepEqual(await crumbs.locator('a, [aria-current]').allTextContents(), ['Home', 'Service Status', 'Overview']);
    const current = crumbs.locator('[aria-current="page"]');
    assert.equal(await current.textContent(), 'Overview');
    // The whole trail fits the screen, on a phone too.
    const box = await crumbs.boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= viewport.width, `breadcrumbs at ${JSON.stringify(box)}`);
    for (const item of await crumbs.getByRole('listitem').all()) {
      const itemBox = await item.boundingBox();
      assert.ok(itemBox && itemBox.x + itemBox.width <= viewport.width, `a breadcrumb off screen: ${JSON.stringify(itemBox)}`);
    }
    await shot(page, 'breadcrumbs', kind);

    await crumbs.getByRole('link', { name: 'Service Status' }).click();
    await page.waitForURL(/\/home\/service-status$/);
    await titled(page, `Service Status · ${TENANT}`);
    await page.waitForFunction(() => document.querySelector('nav[aria-label="Breadcrumb"] [aria-current="page"]')?.textContent === 'Service Status', null, { timeout: 5000 });
    assert.equal(await crumbs.getByRole('link', { name: 'Home' }).getAttribute('href'), '/home');

    await crumbs.getByRole('link', { name: 'Home' }).click();
    await page.waitForURL(/\/home$/);
    // At home there is nothing above: no breadcrumbs.
    await crumbs.waitFor({ state: 'hidden', timeout: 5000 });
    await context.close();
  }
});

test('an unknown or forbidden address is explained, never "Could not map"', async () => {
  const routeApi = await fetch(demo.baseUrl + '/shell/route.json?path=%2Fhome%2Fx');
  // 401: the endpoint exists (it needs a session); 404: this portico does not have it yet.
  const serverExplains = routeApi.status !== 404;

  for (const [kind, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    const { context, page, errors } = await signedIn(demo, 'dave', '/home/admin-console', viewport);
    const view = await frameWithUrl(page, '/shell/not-found.html');
    // The address the user asked for stays.
    assert.equal(new URL(page.url()).pathname, '/home/admin-console');
    await titled(page, `Page not found · ${TENANT}`);
    const title = view.getByTestId('not-found-title');
    const reason = view.getByTestId('not-found-reason');
    if (serverExplains) {
      await title.filter({ hasText: 'Admin Console' }).waitFor({ timeout: 5000 });
      assert.match(await reason.textContent(), /Admin Console exists, but you cannot open it/);
      const needs = await view.getByTestId('not-found-needs').innerText();
      assert.match(needs, /needs the role platform-admin/);
      assert.match(needs, /members of demo-platform-admins/);
      assert.match(needs, /Your roles: developer\./);
      assert.match(needs, /Ask team-platform or your team lead to add you/);
    } else {
      await reason.filter({ hasText: '/home/admin-console' }).waitFor({ timeout: 5000 });
    }
    await noSpinner(page);
    assert.doesNotMatch(await page.locator('body').innerText(), /Could not map|could not find the requested route/i);
    await shot(page, 'forbidden', kind);

    if (kind === 'desktop') {
      await assertAccessible(view, 'the not-found view (forbidden)');

      // A page the app does not have.
      await page.goto(demo.baseUrl + '/home/service-status/nope');
      const noPage = await frameWithUrl(page, '/shell/not-found.html');
      if (serverExplains) {
        await noPage.getByTestId('not-found-reason').filter({ hasText: 'Service Status has no page at /home/service-status/nope' }).waitFor({ timeout: 5000 });
        assert.equal(await noPage.getByTestId('not-found-app-link').getAttribute('href'), '/home/service-status');
      }

      // Nothing at all there.
      await page.goto(demo.baseUrl + '/home/no-such-app');
      const unknown = await frameWithUrl(page, '/shell/not-found.html');
      await unknown.getByTestId('not-found-reason').filter({ hasText: 'There is no page at /home/no-such-app' }).waitFor({ timeout: 5000 });
      assert.equal(new URL(page.url()).pathname, '/home/no-such-app');
      await noSpinner(page);
      await assertAccessible(unknown, 'the not-found view (unknown)');
      await shot(page, 'unknown', kind);
      assert.doesNotMatch(await page.locator('body').innerText(), /Could not map|could not find the requested route/i);

      // The home link is a real link, and a click stays in the shell.
      const home = unknown.getByTestId('not-found-home-link');
      assert.equal(await home.getAttribute('href'), '/home');
      assert.equal(await home.getAttribute('target'), '_top');
      await home.click();
      await page.waitForURL(/\/home$/);
      const homeView = await frameWithUrl(page, '/shell/home.html');
      await titled(page, `Home · ${TENANT}`);
      // The home view itself, not the not-found view's frame reused under the home view's URL.
      await homeView.waitForFunction(() => document.title === 'Home' && !document.querySelector('[data-testid="not-found-title"]'), null, { timeout: 5000 });

      // Back returns to the explanation, for the same address.
      await page.goBack();
      await page.waitForURL(/\/home\/no-such-app$/);
      const again = await frameWithUrl(page, '/shell/not-found.html');
      await again.getByTestId('not-found-reason').filter({ hasText: '/home/no-such-app' }).waitFor({ timeout: 5000 });

      // A navigation from code (as an app's Luigi Client would ask) to a page dave may not open.
      await page.evaluate(() => Luigi.navigation().navigate('/home/service-status/incidents'));
      await page.waitForURL(/\/home\/service-status\/incidents$/);
      if (serverExplains) {
        const incidents = await frameWithUrl(page, '/shell/not-found.html');
        await incidents.getByTestId('not-found-reason').filter({ hasText: 'Service Status (page Incident Review) exists' }).waitFor({ timeout: 5000 });
      }
      assert.doesNotMatch(await page.locator('body').innerText(), /Could not map|could not find the requested route/i);
    }
    assert.deepEqual(errors, []);
    await context.close();
  }
});

test('German: a German browser gets the forbidden, no-such-page and unknown explanations in German', async () => {
  const { context, page, errors } = await signedIn(demo, 'dave', '/home/admin-console', DESKTOP, 'de-DE');
  const view = await frameWithUrl(page, '/shell/not-found.html');
  assert.equal(new URL(page.url()).pathname, '/home/admin-console');
  // App and page labels are the server's (in German where config has them); the sentences are the view's.
  const explained = (route) => page.evaluate((p) => fetch(`/shell/route.json?path=${encodeURIComponent(p)}`).then((r) => r.json()), route);
  const admin = (await explained('/home/admin-console')).app.label;
  const title = view.getByTestId('not-found-title');
  await title.filter({ hasText: `Sie können die App „${admin}“ nicht öffnen` }).waitFor({ timeout: 5000 });
  assert.equal(await view.evaluate(() => document.documentElement.lang), 'de');
  assert.equal(await view.evaluate(() => document.title), `Sie können die App „${admin}“ nicht öffnen`);
  assert.equal(await view.getByTestId('not-found-reason').textContent(), `Die App „${admin}“ gibt es, aber Sie haben keinen Zugriff darauf.`);
  const needs = (await view.getByTestId('not-found-needs').innerText()).replace(/\s+/g, ' ');
  assert.match(needs, /Dafür brauchen Sie die Rolle platform-admin( \([^)]+\))?, die Mitglieder der Gruppe demo-platform-admins haben\./);
  assert.match(needs, /Ihre Rollen: developer\./);
  assert.match(needs, /Bitten Sie team-platform oder Ihre Teamleitung, Sie dieser Gruppe hinzuzufügen\./);
  assert.equal(await view.getByTestId('not-found-home-link').textContent(), 'Zur Startseite');
  const english = /\b(exists|cannot|needs the role|members of|Your roles|Ask|Go to Home|Page not found)\b/;
  assert.doesNotMatch(await view.locator('body').innerText(), english);
  await noSpinner(page);
  await page.locator('[luigi-app-loading-indicator]').waitFor({ state: 'hidden', timeout: 2000 }).catch(() => {});
  await page.screenshot({ path: path.join(SHOTS, 'not-found-de.png') });
  await assertAccessible(view, 'the not-found view in German (forbidden)');

  // On a phone the longer German sentences wrap; nothing leaves the screen.
  await page.setViewportSize(PHONE);
  // Luigi collapses its side navigation for the narrow screen; the view's frame then fills the rest.
  await page.waitForFunction((width) => {
    const frame = [...document.querySelectorAll('iframe')].find((f) => f.src.includes('/shell/not-found.html'));
    const box = frame && frame.getBoundingClientRect();
    return box && box.left < 60 && box.right <= width;
  }, PHONE.width, { timeout: 5000 });
  await page.waitForTimeout(300); // the end of the side navigation's transition
  const { scroll, client } = await view.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
  assert.ok(scroll <= client, `the view scrolls sideways on a phone: ${scroll} > ${client}`);
  await page.screenshot({ path: path.join(SHOTS, 'not-found-de-phone.png') });
  await page.setViewportSize(DESKTOP);

  // A page the app does not have.
  const status = (await explained('/home/service-status/nope')).app;
  await page.goto(demo.baseUrl + '/home/service-status/nope');
  const noPage = await frameWithUrl(page, '/shell/not-found.html');
  await noPage.getByTestId('not-found-reason')
    .filter({ hasText: `Die App „${status.label}“ hat unter /home/service-status/nope keine Seite, aber die App selbst können Sie öffnen. Die App wird von ${status.owner} betreut.` })
    .waitFor({ timeout: 5000 });
  assert.equal(await noPage.getByTestId('not-found-title').textContent(), `Die App „${status.label}“ hat diese Seite nicht`);
  assert.equal(await noPage.getByTestId('not-found-app-link').textContent(), `${status.label} öffnen`);

  // Nothing at all there.
  await page.goto(demo.baseUrl + '/home/no-such-app');
  const unknown = await frameWithUrl(page, '/shell/not-found.html');
  await unknown.getByTestId('not-found-reason').filter({ hasText: 'Unter /home/no-such-app gibt es in diesem Portal keine Seite.' }).waitFor({ timeout: 5000 });
  assert.equal(await unknown.getByTestId('not-found-title').textContent(), 'Seite nicht gefunden');
  assert.equal(await unknown.evaluate(() => document.documentElement.lang), 'de');
  await assertAccessible(unknown, 'the not-found view in German (unknown)');

  // A page of an app that dave's roles do not reach.
  const incident = await explained('/home/service-status/incidents');
  await page.evaluate(() => Luigi.navigation().navigate('/home/service-status/incidents'));
  await page.waitForURL(/\/home\/service-status\/incidents$/);
  const incidents = await frameWithUrl(page, '/shell/not-found.html');
  await incidents.getByTestId('not-found-reason')
    .filter({ hasText: `Die Seite „${incident.page}“ der App „${incident.app.label}“ gibt es, aber Sie haben keinen Zugriff darauf.` }).waitFor({ timeout: 5000 });
  assert.doesNotMatch(await page.locator('body').innerText(), /Could not map|could not find the requested route/i);
  assert.deepEqual(errors, []);
  await context.close();
});

test('an app that never starts, an app that does not answer and an app that is down never leave a spinner', async () => {
  const panelWait = frameTimeoutMs + 5000;
  for (const [kind, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    const { context, page, errors } = await signedIn(watchdog, 'dev', '/home/plain', viewport);
    await frameWithUrl(page, '/apps/plain/');
    const panel = page.getByTestId('portico-frame-panel');
    await panel.waitFor({ state: 'visible', timeout: panelWait });
    assert.equal(await panel.getAttribute('role'), 'alert');
    const text = await panel.innerText();
    assert.match(text, /Plain Page/);
    assert.match(text, /team-plain/);
    assert.match(text, /The page loaded but did not start Luigi Client/);
    assert.match(text, /luigi_client: false/);
    await noSpinner(page);
    await shot(page, 'watchdog', kind);
    if (kind === 'phone') {
      await context.close();
      continue;
    }
    await assertAccessible(page, 'the shell with the watchdog panel');

    // "Try again" loads the app anew (and, as it still does not start, says so again).
    await panel.getByRole('button', { name: 'Try again' }).click();
    await panel.waitFor({ state: 'detached', timeout: 2000 });
    await panel.waitFor({ state: 'visible', timeout: panelWait });

    // Somewhere else, the panel is gone.
    await page.getByTestId('nav-fine').click();
    await page.waitForURL(/\/home\/fine$/);
    await frameWithUrl(page, '/apps/fine/');
    await panel.waitFor({ state: 'detached', timeout: 2000 });
    await noSpinner(page);

    // An upstream that accepts and never answers: "not answering".
    await page.goto(watchdog.baseUrl + '/home/stuck');
    await panel.waitFor({ state: 'visible', timeout: panelWait });
    const stuck = await panel.innerText();
    assert.match(stuck, /Stuck App/);
    assert.match(stuck, /team-stuck/);
    assert.match(stuck, /The app is not answering: it may be down or slow/);
    await noSpinner(page);
    await shot(page, 'not-answering', kind);

    // An upstream that is down: portico's own 502 page shows in the frame and starts Luigi Client,
    // so the spinner ends at once and the watchdog stays quiet.
    await page.goto(watchdog.baseUrl + '/home/down');
    const down = await frameWithUrl(page, '/apps/down/');
    await down.getByTestId('error-page').waitFor({ state: 'visible', timeout: 10000 });
    assert.match(await down.getByTestId('error-page').innerText(), /502/);
    await noSpinner(page);
    await page.waitForTimeout(frameTimeoutMs + 500);
    assert.equal(await panel.count(), 0, 'the watchdog fired on an error page that started Luigi Client');
    assert.equal(await page.locator('.spinnerContainer').count(), 0);
    await shot(page, 'down', kind);
    assert.deepEqual(errors, []);
    await context.close();
  }
});

test('the shell page itself passes axe, at home and on an app page, on desktop and on a phone', async () => {
  for (const [kind, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    const { context, page } = await signedIn(demo, 'dave', '/home', viewport);
    await frameWithUrl(page, '/shell/home.html');
    await noSpinner(page);
    await assertAccessible(page, `shell at home (${kind})`);
    await shot(page, 'home', kind);
    // With breadcrumbs and the app's frame.
    await page.goto(demo.baseUrl + '/home/service-status/overview');
    await frameWithUrl(page, '/apps/service-status/overview');
    await page.getByRole('navigation', { name: 'Breadcrumb' }).waitFor({ state: 'visible', timeout: 5000 });
    await noSpinner(page);
    await assertAccessible(page, `shell on an app page (${kind})`);
    await context.close();
  }
});
