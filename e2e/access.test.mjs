// End-to-end: "My access" (web/shell/access.html, access.js, access.css over GET /shell/access.json),
// the shell view that says why a person sees what they see and how to get more. Reached from the
// profile menu of the shell bar, or by its address /home/_my-access. In Chromium against the embedded
// demo portal: alice (platform-admin and developer; groups demo-platform-admins, demo-eng), dave
// (developer; demo-eng), nora (no group, no role). Screenshots: target/e2e/access-{desktop,phone}.png,
// and in German (a browser asking for de-DE) target/e2e/access-de-{desktop,phone}.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { startPortico, startBrowser, frameWithUrl, assertAccessible } from './harness.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SHOTS = path.join(root, 'target', 'e2e');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const WAIT = { timeout: 10000 };
const TENANT = 'Portico Demo Portal';

let portico;
let browser;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  [portico, browser] = await Promise.all([startPortico(), startBrowser()]);
});

after(async () => {
  await browser?.close();
  await portico?.stop();
});

/**
 * A fresh browser context, signed in as `user` at `deepLink`, with page errors collected. `locale`
 * (e.g. 'de-DE') is the browser's language, which it asks for with Accept-Language too.
 */
async function signedIn(user, { viewport = DESKTOP, deepLink = '/', route, locale } = {}) {
  const phone = viewport === PHONE;
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1, isMobile: phone, hasTouch: phone, ...(locale ? { locale } : {}) });
  if (route) await route(context);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !/Failed to load resource/.test(message.text())) errors.push(`console: ${message.text()}`);
  });
  await page.goto(portico.baseUrl + deepLink);
  await page.getByTestId(`sign-in-${user}`).click();
  await page.getByTestId('luigi-topnav-profile-btn').waitFor({ timeout: 15000 });
  return { context, page, errors };
}

/** Opens "My access" from the profile menu of the shell bar (the avatar button). */
async function openFromProfileMenu(page) {
  await page.getByTestId('luigi-topnav-profile-btn').click();
  // Luigi 2.31 puts a profile item's testId on its <li>; the <a> inside is `luigi-topnav-profile-item`.
  const entry = page.locator('[data-testid="profile-my-access"]');
  await entry.waitFor({ state: 'visible', ...WAIT });
  assert.equal((await entry.innerText()).trim(), 'My access');
  // A real link (navigation.addNavHrefs), so the keyboard reaches it and Enter follows it.
  const link = entry.locator('a');
  assert.equal(await link.getAttribute('href'), '/home/_my-access');
  await link.focus();
  await page.keyboard.press('Enter');
  await page.waitForURL((url) => url.pathname === '/home/_my-access', WAIT);
  return accessView(page);
}

/** The view's frame once it has drawn the server's answer (or its failure). */
async function accessView(page) {
  const view = await frameWithUrl(page, '/shell/access.html');
  await view.locator('[data-testid="access-user"]:visible, [data-testid="access-error"]:visible').first().waitFor(WAIT);
  await page.locator('[luigi-app-loading-indicator]').waitFor({ state: 'detached', timeout: 5000 });
  return view;
}

/** Text as a person reads it, whitespace folded. */
async function said(locator) {
  return (await locator.innerText()).replace(/\s+/g, ' ').trim();
}

/** The roles shown, in order. */
function shownRoles(view) {
  return view.locator('[data-testid^="access-role-"]:visible').evaluateAll((sections) => sections.map((s) => s.dataset.role));
}

/** What a role opens: [[app label, [page labels]]], in order. */
function opens(view, role) {
  return view.getByTestId(`access-opens-${role}`).evaluate((list) => [...list.children].map((item) => [
    item.querySelector('.ax-app-link').textContent,
    [...item.querySelectorAll('.ax-pages a')].map((a) => a.textContent),
  ]));
}

async function noSidewaysScroll(view) {
  const { scroll, client } = await view.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
  assert.ok(scroll <= client, `the view scrolls sideways: ${scroll} > ${client}`);
}

test('dave: the profile menu leads to his access; developer, granted by demo-eng, opens what he sees; a link opens the app in the shell', async () => {
  const { context, page, errors } = await signedIn('dave');
  const view = await openFromProfileMenu(page);
  await page.waitForFunction(() => document.title.startsWith('My access'), null, WAIT);

  assert.equal(await view.locator('h1').textContent(), 'Your access');
  const user = view.getByTestId('access-user');
  assert.match(await said(user), /^Dave Developer dave@demo\.example Portal Portico Demo Portal \(demo\) Your groups demo-eng$/);

  assert.deepEqual(await shownRoles(view), ['developer']);
  const role = view.getByTestId('access-role-developer');
  assert.equal(await said(role.getByRole('heading', { level: 2 })), 'developer \u2013 Builds things');
  assert.match(await said(role), /Granted by your group demo-eng\./);
  assert.deepEqual(await opens(view, 'developer'), [['Service Status', ['Overview']], ['Team Directory', []]]);
  const body = await view.locator('body').innerText();
  for (const hidden of ['Admin Console', 'Incident Review', 'platform-admin']) assert.ok(!body.includes(hidden), `${hidden} shown to dave`);
  assert.equal(await view.getByTestId('access-no-roles').isVisible(), false);
  assert.equal(await view.getByTestId('access-unmapped').isVisible(), false);

  // Real links: the address of the app in the shell, in the whole window.
  const directory = view.getByTestId('access-opens-developer').getByRole('link', { name: 'Team Directory' });
  assert.equal(await directory.getAttribute('href'), '/home/team-directory');
  assert.equal(await directory.getAttribute('target'), '_top');
  assert.equal(await view.getByRole('link', { name: 'Overview' }).getAttribute('href'), '/home/service-status/overview');

  // A ctrl-click opens a new tab there and leaves this one where it is.
  const [tab] = await Promise.all([context.waitForEvent('page', WAIT), directory.click({ modifiers: ['Control'] })]);
  await tab.waitForURL((url) => url.pathname === '/home/team-directory', WAIT);
  await tab.close();
  assert.equal(new URL(page.url()).pathname, '/home/_my-access');

  // A plain click opens the app inside this shell, without reloading it.
  await page.evaluate(() => { window.__samePage = true; });
  await directory.click();
  await page.waitForURL((url) => url.pathname === '/home/team-directory', WAIT);
  const app = await frameWithUrl(page, '/apps/team-directory/');
  await app.getByTestId('app-title').filter({ hasText: 'Team Directory' }).waitFor(WAIT);
  assert.equal(await page.evaluate(() => window.__samePage), true, 'the link reloaded the shell');

  // Back to the view: shown again, it is still right.
  await page.goBack();
  await page.waitForURL((url) => url.pathname === '/home/_my-access', WAIT);
  const again = await accessView(page);
  assert.deepEqual(await shownRoles(again), ['developer']);
  assert.deepEqual(errors, []);
  await context.close();
});

test('alice, by deep link: both roles, platform-admin opening Admin Console and Incident Review; a page link opens that page (desktop, axe)', async () => {
  const { context, page, errors } = await signedIn('alice', { deepLink: '/home/_my-access' });
  assert.equal(new URL(page.url()).pathname, '/home/_my-access');
  const view = await accessView(page);
  assert.match(await said(view.getByTestId('access-user')), /Alice Admin alice@demo\.example .* Your groups demo-platform-admins and demo-eng$/);

  const roles = await shownRoles(view);
  assert.deepEqual([...roles].sort(), ['developer', 'platform-admin']);
  assert.match(await said(view.getByTestId('access-role-platform-admin')), /^platform-admin \u2013 Runs the portal Granted by your group demo-platform-admins\./);
  assert.match(await said(view.getByTestId('access-role-developer')), /Granted by your group demo-eng\./);
  const admin = await opens(view, 'platform-admin');
  const adminApps = Object.fromEntries(admin);
  assert.ok('Admin Console' in adminApps, JSON.stringify(admin));
  assert.ok((adminApps['Service Status'] || []).includes('Incident Review'), JSON.stringify(admin));
  // developer alone opens neither.
  const developer = Object.fromEntries(await opens(view, 'developer'));
  assert.ok(!('Admin Console' in developer), JSON.stringify(developer));
  assert.ok(!(developer['Service Status'] || []).includes('Incident Review'), JSON.stringify(developer));
  // Every group of alice grants a role.
  assert.equal(await view.getByTestId('access-unmapped').isVisible(), false);

  await noSidewaysScroll(view);
  await page.screenshot({ path: path.join(SHOTS, 'access-desktop.png') });
  await assertAccessible(view, 'My access (desktop)');
  await assertAccessible(page, 'the shell with My access (desktop)');

  await view.getByTestId('access-opens-platform-admin').getByRole('link', { name: 'Incident Review' }).click();
  await page.waitForURL((url) => url.pathname === '/home/service-status/incidents', WAIT);
  await frameWithUrl(page, '/apps/service-status/incidents');
  assert.deepEqual(errors, []);
  await context.close();
});

test('nora: no group, so no role, and the view says why and whom to ask', async () => {
  const { context, page, errors } = await signedIn('nora');
  const view = await openFromProfileMenu(page);
  const empty = view.getByTestId('access-no-roles');
  await empty.waitFor({ state: 'visible', ...WAIT });
  assert.equal(await said(empty), `You have no role here You are in no group, so you have no role in ${TENANT}. Ask your team lead or the platform team to add you to a group.`);
  assert.deepEqual(await shownRoles(view), []);
  assert.match(await said(view.getByTestId('access-user')), /Your groups none$/);
  await assertAccessible(view, 'My access without roles');
  assert.deepEqual(errors, []);
  await context.close();
});

test('phone (390 px): from the profile menu, no sideways scroll, axe, and by keyboard', async () => {
  const { context, page, errors } = await signedIn('alice', { viewport: PHONE });
  const view = await openFromProfileMenu(page);
  await view.getByTestId('access-role-platform-admin').waitFor(WAIT);
  await noSidewaysScroll(view);
  const frameBox = await page.locator('iframe[src*="/shell/access.html"]').boundingBox();
  assert.ok(frameBox && frameBox.x >= 0 && frameBox.x + frameBox.width <= PHONE.width, `the view's frame at ${JSON.stringify(frameBox)}`);
  await page.screenshot({ path: path.join(SHOTS, 'access-phone.png') });
  await assertAccessible(view, 'My access (phone)');

  // Keyboard: from the heading, Tab reaches the first role's first app, and Enter opens it in the shell.
  await view.locator('h1').click();
  await page.keyboard.press('Tab');
  const first = await view.evaluate(() => ({ href: document.activeElement.getAttribute('href'), visible: getComputedStyle(document.activeElement).outlineStyle }));
  assert.match(first.href || '', /^\/home\/[a-z-]+$/, JSON.stringify(first));
  assert.equal(first.visible, 'solid', 'the focused link shows where the focus is');
  await page.keyboard.press('Enter');
  await page.waitForURL((url) => url.pathname === first.href, WAIT);
  assert.deepEqual(errors, []);
  await context.close();
});

test('groups that grant nothing here are listed; a failed answer says so and can be tried again', async () => {
  let mode = 'unmapped';
  const { context, page } = await signedIn('dave', {
    route: (ctx) => ctx.route((url) => url.pathname === '/shell/access.json', async (route) => {
      if (mode === 'fail') return route.fulfill({ status: 500, contentType: 'text/plain', body: 'boom' });
      const response = await route.fetch();
      const answer = await response.json();
      answer.user.groups = [...answer.user.groups, 'dev-oncall', 'payroll-readers'];
      answer.unmappedGroups = ['dev-oncall', 'payroll-readers'];
      return route.fulfill({ response, json: answer });
    }),
  });
  let view = await openFromProfileMenu(page);
  const unmapped = view.getByTestId('access-unmapped');
  await unmapped.waitFor({ state: 'visible', ...WAIT });
  assert.match(await said(unmapped), new RegExp(`^Groups that give you no role here Your groups dev-oncall and payroll-readers grant no role in ${TENANT}\\.`));
  await assertAccessible(view, 'My access with unmapped groups');

  mode = 'fail';
  await page.reload();
  view = await accessView(page);
  const error = view.getByTestId('access-error');
  await error.waitFor({ state: 'visible', ...WAIT });
  assert.equal(await error.getAttribute('role'), 'alert');
  assert.match(await said(error), /Your access could not be loaded: the portal answered 500/);
  assert.equal(await view.getByTestId('access-user').isVisible(), false);
  await assertAccessible(view, 'My access, failed');

  mode = 'unmapped';
  await view.getByTestId('access-retry').click();
  await view.getByTestId('access-role-developer').waitFor({ state: 'visible', ...WAIT });
  assert.equal(await error.isVisible(), false);
  await context.close();
});

/** The words of the English view, none of which a German view may show. */
const ENGLISH = /\b(Your access|Why you see|Loading|Your groups|Granted|What it opens|opens nothing|no role|Groups that|How to get|Ask your|sign in again|Try again|could not be loaded)\b/;

test('German: a German browser gets My access in German, lists joined the German way (desktop and phone, axe)', async () => {
  // Desktop: alice, two roles.
  let { context, page, errors } = await signedIn('alice', { deepLink: '/home/_my-access', locale: 'de-DE' });
  let view = await accessView(page);
  assert.equal(await view.evaluate(() => document.documentElement.lang), 'de');
  assert.equal(await view.evaluate(() => document.title), 'Mein Zugriff');
  assert.equal(await view.locator('h1').textContent(), 'Ihr Zugriff');
  assert.equal(await said(view.getByTestId('access-intro')), `Warum Sie in ${TENANT} sehen, was Sie sehen, und wie Sie mehr Zugriff bekommen.`);
  assert.match(await said(view.getByTestId('access-user')),
    /^Alice Admin alice@demo\.example Portal Portico Demo Portal \(demo\) Ihre Gruppen demo-platform-admins und demo-eng$/);
  assert.match(await said(view.getByTestId('access-granted-platform-admin')), /^Diese Rolle erhalten Sie über Ihre Gruppe demo-platform-admins\.$/);
  assert.match(await said(view.getByTestId('access-granted-developer')), /^Diese Rolle erhalten Sie über Ihre Gruppe demo-eng\.$/);
  // (Shown in capitals by CSS; the text itself is as written.)
  assert.deepEqual(await view.locator('.ax-opens-title').allTextContents(), ['Was diese Rolle öffnet', 'Was diese Rolle öffnet']);
  assert.ok(await view.getByRole('list', { name: /^Seiten von / }).count() >= 1, 'the pages of an app are a list named in German');
  const more = await said(view.getByTestId('access-more'));
  assert.match(more, /^So erhalten Sie mehr Zugriff Apps und Seiten werden Rollen zugeordnet/);
  assert.match(more, /sobald Sie sich erneut angemeldet haben\.$/);
  assert.doesNotMatch(await view.locator('body').innerText(), ENGLISH);
  await noSidewaysScroll(view);
  await page.screenshot({ path: path.join(SHOTS, 'access-de-desktop.png') });
  await assertAccessible(view, 'My access in German (desktop)');
  assert.deepEqual(errors, []);
  await context.close();

  // Phone: the longer German words wrap; nothing leaves the screen or is cut off.
  ({ context, page, errors } = await signedIn('alice', { viewport: PHONE, deepLink: '/home/_my-access', locale: 'de-DE' }));
  view = await accessView(page);
  await view.getByTestId('access-role-platform-admin').waitFor(WAIT);
  assert.equal(await view.evaluate(() => document.documentElement.lang), 'de');
  await noSidewaysScroll(view);
  const overflowing = await view.evaluate(() => [...document.querySelectorAll('main *')]
    .filter((el) => el.getClientRects().length && (el.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5 || el.scrollWidth > el.clientWidth + 1))
    .map((el) => `${el.tagName.toLowerCase()}.${el.className}: ${el.textContent.slice(0, 40)}`));
  assert.deepEqual(overflowing, [], 'elements overflow or are cut off on a phone');
  await page.screenshot({ path: path.join(SHOTS, 'access-de-phone.png') });
  await assertAccessible(view, 'My access in German (phone)');
  assert.deepEqual(errors, []);
  await context.close();

  // Several groups, no role, a failure and "try again": plurals and German lists.
  let mode = 'unmapped';
  ({ context, page, errors } = await signedIn('dave', {
    deepLink: '/home/_my-access',
    locale: 'de-DE',
    route: (ctx) => ctx.route((url) => url.pathname === '/shell/access.json', async (route) => {
      if (mode === 'fail') return route.fulfill({ status: 500, contentType: 'text/plain', body: 'boom' });
      const response = await route.fetch();
      const answer = await response.json();
      answer.user.groups = [...answer.user.groups, 'dev-oncall', 'payroll-readers'];
      answer.unmappedGroups = ['dev-oncall', 'payroll-readers'];
      if (mode === 'none') answer.roles = [];
      return route.fulfill({ response, json: answer });
    }),
  }));
  view = await accessView(page);
  const unmapped = view.getByTestId('access-unmapped');
  await unmapped.waitFor({ state: 'visible', ...WAIT });
  assert.equal(await said(unmapped), `Gruppen, die Ihnen hier keine Rolle geben Ihre Gruppen dev-oncall und payroll-readers vergeben in ${TENANT} keine Rolle. Möglicherweise geben sie Ihnen Zugriff auf andere Portale oder Werkzeuge.`);
  assert.match(await said(view.getByTestId('access-user')), /Ihre Gruppen demo-eng, dev-oncall und payroll-readers$/);

  mode = 'none';
  await page.reload();
  view = await accessView(page);
  const none = view.getByTestId('access-no-roles');
  await none.waitFor({ state: 'visible', ...WAIT });
  assert.equal(await said(none), `Sie haben hier keine Rolle Ihre Gruppen (demo-eng, dev-oncall und payroll-readers) geben Ihnen in ${TENANT} keine Rolle. Bitten Sie Ihre Teamleitung oder das Plattform-Team, Sie einer Gruppe hinzuzufügen.`);
  await assertAccessible(view, 'My access in German, without roles');

  mode = 'fail';
  await page.reload();
  view = await accessView(page);
  const error = view.getByTestId('access-error');
  await error.waitFor({ state: 'visible', ...WAIT });
  assert.match(await said(error), /^Ihr Zugriff konnte nicht geladen werden: Das Portal antwortete mit 500\b.*Versuchen Sie es gleich noch einmal\. Erneut versuchen$/);
  await assertAccessible(view, 'My access in German, failed');
  mode = 'unmapped';
  await view.getByRole('button', { name: 'Erneut versuchen' }).click();
  await view.getByTestId('access-role-developer').waitFor({ state: 'visible', ...WAIT });
  assert.match(await said(view.getByTestId('access-granted-developer')), /^Diese Rolle erhalten Sie über Ihre Gruppe demo-eng\.$/);
  assert.doesNotMatch(await view.locator('body').innerText(), ENGLISH);
  assert.deepEqual(errors, []);
  await context.close();
});

// A link to an app dave may not open: the shell's not-found view and the proxy's 403 page name the
// owner and the group that would let him in, with the tenant's "Request access" link (the demo's
// request_access ticket template) filled in. Screenshots: target/e2e/request-access-{view,page}-{desktop,phone}.png.
const TICKET = 'https://tickets.demo.example/new?summary=Access+to+Admin%20Console&group=demo-platform-admins&requester=dave%40demo.example';

/** Nothing in `main` reaches past the right edge or is cut off inside its box. */
async function nothingOverflows(frameOrPage) {
  const overflowing = await frameOrPage.evaluate(() => [...document.querySelectorAll('main *')]
    .filter((el) => el.getClientRects().length && (el.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5 || el.scrollWidth > el.clientWidth + 1))
    .map((el) => `${el.tagName.toLowerCase()}.${el.className}: ${el.textContent.slice(0, 40)}`));
  assert.deepEqual(overflowing, [], 'elements overflow or are cut off');
}

for (const [kind, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
  test(`a link to an app dave may not open names its owner and offers "Request access" (${kind}, axe)`, async () => {
    const { context, page, errors } = await signedIn('dave', { viewport, deepLink: '/home/admin-console' });
    // In the shell: the not-found view explains, with the link as its first action.
    const view = await frameWithUrl(page, '/shell/not-found.html');
    await view.getByTestId('not-found-title').filter({ hasText: 'Admin Console' }).waitFor(WAIT);
    assert.match(await said(view.getByTestId('not-found-needs')), /members of demo-platform-admins have\./);
    assert.equal(await said(view.getByTestId('not-found-ask')), 'Ask team-platform or your team lead to add you to this group.');
    const link = view.getByTestId('not-found-request-access');
    assert.equal(await link.count(), 1);
    assert.equal(await said(link), 'Request access to demo-platform-admins');
    assert.equal(await link.getAttribute('href'), `${TICKET}&path=%2Fhome%2Fadmin-console`);
    assert.equal(await link.getAttribute('target'), '_blank');
    assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
    assert.deepEqual(await view.locator('#actions a').evaluateAll((links) => links.map((a) => a.dataset.testid)),
      ['not-found-request-access', 'not-found-home-link']);
    await page.locator('[luigi-app-loading-indicator]').waitFor({ state: 'detached', timeout: 5000 }).catch(() => {});
    await noSidewaysScroll(view);
    await nothingOverflows(view);
    await page.screenshot({ path: path.join(SHOTS, `request-access-view-${kind}.png`) });
    await assertAccessible(view, `the not-found view with a request link (${kind})`);

    // The app's own address, as a bookmark would open it: the 403 page says the same.
    const response = await page.goto(portico.baseUrl + '/apps/admin-console/');
    assert.equal(response.status(), 403);
    assert.equal(await said(page.getByTestId('error-app')), 'App: Admin Console · owned by team-platform');
    assert.equal(await said(page.getByTestId('error-needs')), 'platform-admin — granted to members of demo-platform-admins');
    assert.match(await said(page.getByTestId('error-ask')), /^Request access below, or ask the app’s owner, team-platform, or your team lead/);
    const request = page.getByTestId('request-access');
    assert.equal(await said(request), 'Request access to demo-platform-admins');
    assert.equal(await request.getAttribute('href'), `${TICKET}&path=%2Fapps%2Fadmin-console%2F`);
    await noSidewaysScroll(page);
    await nothingOverflows(page);
    await page.screenshot({ path: path.join(SHOTS, `request-access-page-${kind}.png`), fullPage: true });
    await assertAccessible(page, `the 403 page with a request link (${kind})`);
    assert.deepEqual(errors, []);
    await context.close();
  });
}
