// End-to-end: the "Access tokens" page (/shell/tokens: src/shell/tokens.rs, templates/tokens.html,
// web/shell/tokens.{js,css}) over the personal access token API (/auth/tokens), in Chromium against the
// embedded demo portal (tenant `demo`, `tokens: { personal: 90d }`): dave (developer: Service Status and
// Team Directory), alice (platform-admin and developer: also Admin Console), nora (no role, no app).
// The token a page mints is then used the way a script uses it: from Node, outside the browser, with
// no cookies. Screenshots: target/e2e/tokens-{empty,new,list,confirm}-{desktop,phone}.png, the profile
// menu (tokens-menu-desktop.png, tokens-menu-de-phone.png) and tokens-de-phone.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startPortico, startBrowser, assertAccessible, collectErrors } from './harness.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SHOTS = path.join(root, 'target', 'e2e');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const WAIT = { timeout: 10000 };
const run = promisify(execFile);
const TOKEN = /^portico_pat_([0-9a-f]{16})_([A-Za-z0-9_-]{20,})$/;

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

/** A fresh browser context signed in as `user` in the shell, with page errors collected. */
async function signedIn(user, { viewport = DESKTOP, locale } = {}) {
  const phone = viewport === PHONE;
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1, isMobile: phone, hasTouch: phone, ...(locale ? { locale } : {}) });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: portico.baseUrl });
  const page = await context.newPage();
  const errors = collectErrors(page);
  await page.goto(portico.baseUrl + '/');
  await page.getByTestId(`sign-in-${user}`).click(WAIT);
  await page.getByTestId('luigi-topnav-profile-btn').waitFor({ timeout: 15000 });
  await page.locator('[luigi-app-loading-indicator]').waitFor({ state: 'detached', timeout: 5000 }).catch(() => {});
  return { context, page, errors };
}

/** Opens the page from the shell's profile menu, as a person does; `label` is the entry's text. */
async function openFromProfileMenu(page, { label = 'Access tokens', shot } = {}) {
  await page.getByTestId('luigi-topnav-profile-btn').click();
  // Luigi 2.31 puts a profile item's testId on its <li>; the <a> inside is what is clicked.
  const entry = page.locator('[data-testid="profile-access-tokens"]');
  await entry.waitFor({ state: 'visible', ...WAIT });
  assert.equal((await entry.innerText()).trim(), label);
  if (shot) await page.screenshot({ path: path.join(SHOTS, shot) });
  // A real link (navigation.addNavHrefs): the keyboard reaches it, and it can open in a new tab.
  assert.equal(await entry.locator('a').getAttribute('href'), '/shell/tokens');
  await entry.locator('a').click();
  // The whole window goes there: a page of its own, not a view in the shell's frame.
  await page.waitForURL((url) => url.pathname === '/shell/tokens', WAIT);
  await listed(page);
}

/** Waits until the page has drawn the API's answer: the list or the empty state. */
async function listed(page) {
  await page.locator('[data-testid="tokens-list"] > li, [data-testid="tokens-empty"]:visible').first().waitFor(WAIT);
  await page.getByTestId('token-create').waitFor({ state: 'visible', ...WAIT });
  assert.equal(await page.getByTestId('token-create').isEnabled(), true, 'the form is ready once the list is there');
}

/** Text as a person reads it, whitespace folded. */
async function said(locator) {
  return (await locator.innerText()).replace(/\s+/g, ' ').trim();
}

/** Fills and sends the create form; resolves to the new token as the page shows it, and its id. */
async function create(page, { name, days, apps = [], readOnly = false }) {
  await page.getByTestId('token-name').fill(name);
  if (days !== undefined) await page.getByTestId('token-days').fill(String(days));
  for (const app of apps) await page.getByTestId(`token-app-${app}`).check();
  if (readOnly) await page.getByTestId('token-read-only').check();
  await page.getByTestId('token-create').click();
  const box = page.getByTestId('token-new');
  await box.waitFor({ state: 'visible', ...WAIT });
  const token = (await page.getByTestId('token-new-value').textContent()).trim();
  const match = TOKEN.exec(token);
  assert.ok(match, `the page shows a personal token: ${token}`);
  await page.getByTestId(`token-${match[1]}`).waitFor(WAIT);
  return { token, id: match[1], secret: match[2] };
}

/** A request as a script makes it: Node's fetch, no cookies, the token as bearer. */
function asScript(token, pathname, init = {}) {
  return fetch(portico.baseUrl + pathname, {
    redirect: 'manual',
    ...init,
    headers: { Authorization: `Bearer ${token}`, ...(init.headers || {}) },
  });
}

/** Nothing on the page is wider than the screen, and nothing inside `main` is cut off. */
async function fitsTheScreen(page) {
  const overflow = await page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const wide = document.documentElement.scrollWidth > width ? [`the page scrolls sideways: ${document.documentElement.scrollWidth} > ${width}`] : [];
    const cut = [...document.querySelectorAll('body *')]
      .filter((el) => el.getClientRects().length && !el.closest('.visually-hidden'))
      .filter((el) => el.getBoundingClientRect().right > width + 0.5 || el.scrollWidth > el.clientWidth + 1)
      .map((el) => `${el.tagName.toLowerCase()}.${el.className}: ${el.textContent.slice(0, 50)}`);
    return wide.concat(cut);
  });
  assert.deepEqual(overflow, [], 'elements overflow or are cut off');
}

/** The smallest button on the page, which fingers must still hit. */
async function smallestButton(page) {
  return page.evaluate(() => Math.min(...[...document.querySelectorAll('main button')]
    .filter((b) => b.getClientRects().length)
    .map((b) => Math.min(b.getBoundingClientRect().height, b.getBoundingClientRect().width))));
}

test('signed out: /shell/tokens sends the browser to sign in, and back to the page after it', async () => {
  const context = await browser.newContext({ viewport: DESKTOP });
  const page = await context.newPage();
  const errors = collectErrors(page);
  await page.goto(portico.baseUrl + '/shell/tokens');
  assert.equal(new URL(page.url()).pathname + new URL(page.url()).search, '/auth/login?return_to=%2Fshell%2Ftokens');
  await page.getByTestId('sign-in-dave').click(WAIT);
  await page.waitForURL((url) => url.pathname === '/shell/tokens', WAIT);
  await listed(page);
  assert.deepEqual(errors, []);
  await context.close();
});

test('dave: from the profile menu, mints a read-only token for Service Status; a script uses it within its reach; it is listed, never shown again, and revoked (desktop)', async () => {
  const { context, page, errors } = await signedIn('dave');
  await openFromProfileMenu(page, { shot: 'tokens-menu-desktop.png' });
  assert.equal(await page.title(), 'Access tokens · Portico Demo Portal');
  assert.equal(await page.locator('h1').textContent(), 'Access tokens');
  const headers = (await page.request.get(portico.baseUrl + '/shell/tokens')).headers();
  assert.match(headers['content-security-policy'], /script-src 'self';/);
  assert.doesNotMatch(headers['content-security-policy'], /unsafe-inline/);
  assert.equal(headers['cache-control'], 'no-store');

  // Nothing yet: the page says so, and the form offers what dave may open, up to the tenant's limit.
  assert.match(await said(page.getByTestId('tokens-empty')), /^No tokens yet\./);
  assert.equal(await page.getByTestId('token-days').inputValue(), '90');
  assert.equal(await page.getByTestId('token-days').getAttribute('max'), '90');
  const offered = await page.locator('[data-testid^="token-app-"]').evaluateAll((boxes) => boxes.map((b) => b.dataset.testid));
  assert.deepEqual(offered, ['token-app-service-status', 'token-app-team-directory'], 'only apps dave may open');
  assert.equal(await page.getByLabel('Service Status').count(), 1, 'each app is a labelled checkbox');
  await assertAccessible(page, 'Access tokens, empty (desktop)');
  await page.screenshot({ path: path.join(SHOTS, 'tokens-empty-desktop.png'), fullPage: true });

  // A name is needed: the page says so before asking the server.
  await page.getByTestId('token-create').click();
  assert.match(await said(page.getByTestId('token-create-error')), /Give the token a name/);
  assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), 'token-name');
  // The server's own message shows when it refuses (here: longer than the tenant allows).
  await page.getByTestId('token-name').fill('too long');
  await page.getByTestId('token-days').fill('120');
  await page.getByTestId('token-create').click();
  await page.getByTestId('token-create-error').getByText(/at most 90 days/).waitFor(WAIT);
  assert.equal(await said(page.getByTestId('token-create-error')),
    "The token could not be created: this portal's tokens live at most 90 days");
  await page.getByTestId('token-days').fill('');

  const { token, id, secret } = await create(page, { name: 'status probe', days: 30, apps: ['service-status'], readOnly: true });
  assert.equal(await page.getByTestId('token-create-error').isVisible(), false);

  // Shown once, clearly: focus on the box, the warning, the copy button and a curl line to paste.
  const box = page.getByTestId('token-new');
  assert.equal(await page.evaluate(() => document.activeElement && document.activeElement.dataset.testid), 'token-new');
  assert.match(await said(box.getByRole('heading')), /^Your new token “status probe”$/);
  assert.match(await said(page.getByTestId('token-new-warning')), /will not be shown again/);
  assert.equal(await page.getByTestId('token-curl').textContent(),
    `curl -H "Authorization: Bearer ${token}" ${portico.baseUrl}/apps/service-status/`);
  // The line, pasted into a terminal as it stands, works: curl as the script, no cookies.
  const curlLine = await page.getByTestId('token-curl').textContent();
  const { stdout: curled } = await run('sh', ['-c', `${curlLine} -s -o /dev/null -w '%{http_code}'`]);
  assert.equal(curled, '200', 'the shown curl line opens the app');
  await page.getByTestId('token-copy').click();
  await page.getByText('Copied.').waitFor(WAIT);
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), token, 'Copy puts the token on the clipboard');

  // Listed, in words.
  const item = page.getByTestId(`token-${id}`);
  assert.equal(await said(item.getByRole('heading')), 'status probe');
  assert.equal(await said(page.getByTestId(`token-reach-${id}`)), 'Service Status');
  assert.equal(await said(page.getByTestId(`token-read-only-badge-${id}`)), 'read-only');
  assert.equal(await said(page.getByTestId(`token-last-used-${id}`)), 'never');
  assert.match(await said(page.getByTestId(`token-expires-${id}`)), /\(in 30 days\)$/);
  await assertAccessible(page, 'Access tokens, new token (desktop)');
  await box.scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(SHOTS, 'tokens-new-desktop.png') });

  // As a script, outside the browser: within its reach it works, outside it is refused.
  const read = await asScript(token, '/apps/service-status/');
  assert.equal(read.status, 200, await read.text());
  const write = await asScript(token, '/apps/service-status/', { method: 'POST', body: 'x', headers: { 'Content-Type': 'text/plain' } });
  assert.equal(write.status, 403);
  assert.match(write.headers.get('www-authenticate') || '', /insufficient_scope/);
  const other = await asScript(token, '/apps/team-directory/');
  assert.equal(other.status, 403, 'narrowed to Service Status: Team Directory is out of reach');
  assert.match(other.headers.get('www-authenticate') || '', /insufficient_scope/);
  const admin = await asScript(token, '/apps/admin-console/');
  assert.equal(admin.status, 403, 'dave may not open Admin Console, with or without a token');

  // Reloaded: listed with its last use, the secret nowhere (the page never had it from the server).
  await page.reload();
  await listed(page);
  assert.equal(await box.isVisible(), false);
  const lastUsed = await said(page.getByTestId(`token-last-used-${id}`));
  assert.notEqual(lastUsed, 'never');
  assert.match(lastUsed, /just now|minute/);
  const html = await page.content();
  assert.ok(!html.includes(secret) && !html.includes(token), 'the secret is not on the page');
  assert.ok(!(await page.locator('body').innerText()).includes(secret));
  await page.screenshot({ path: path.join(SHOTS, 'tokens-list-desktop.png'), fullPage: true });

  // Revoked in the UI, after a confirm step that can be cancelled.
  await page.getByTestId(`token-revoke-${id}`).click();
  const confirm = page.getByTestId(`token-confirm-${id}`);
  await confirm.waitFor({ state: 'visible', ...WAIT });
  assert.match(await said(confirm), /^Revoke “status probe”\? Scripts that use it stop working at once\./);
  assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), `token-revoke-cancel-${id}`, 'focus on the safe choice');
  await page.getByTestId(`token-revoke-cancel-${id}`).click();
  assert.equal(await confirm.count(), 0);
  assert.equal((await asScript(token, '/apps/service-status/')).status, 200, 'cancel keeps the token');
  await page.getByTestId(`token-revoke-${id}`).click();
  await confirm.waitFor({ state: 'visible', ...WAIT });
  await assertAccessible(page, 'Access tokens, confirm revoke (desktop)');
  await page.screenshot({ path: path.join(SHOTS, 'tokens-confirm-desktop.png') });
  await page.getByTestId(`token-revoke-confirm-${id}`).click();
  await item.waitFor({ state: 'detached', ...WAIT });
  await page.getByTestId('tokens-empty').waitFor({ state: 'visible', ...WAIT });
  await page.getByText('“status probe” is revoked.').waitFor({ state: 'attached', ...WAIT });

  const revoked = await asScript(token, '/apps/service-status/');
  assert.equal(revoked.status, 401);
  assert.match(revoked.headers.get('www-authenticate') || '', /error="invalid_token"/);

  assert.deepEqual(errors, []);
  await context.close();
});

test('alice on a phone (390×844): the token wraps inside the screen, buttons are finger-sized; all-apps and narrowed tokens listed', async () => {
  const { context, page, errors } = await signedIn('alice', { viewport: PHONE });
  await openFromProfileMenu(page);
  await fitsTheScreen(page);
  await page.screenshot({ path: path.join(SHOTS, 'tokens-empty-phone.png'), fullPage: true });

  const all = await create(page, { name: 'nightly catalog sync for the platform team' });
  await page.getByTestId('token-new').waitFor(WAIT);
  assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), 'token-new');
  await fitsTheScreen(page);
  const value = await page.getByTestId('token-new-value').boundingBox();
  assert.ok(value.x >= 0 && value.x + value.width <= PHONE.width, `the token at ${JSON.stringify(value)}`);
  assert.ok(await smallestButton(page) >= 40, `buttons at least 40 px: ${await smallestButton(page)}`);
  // Not narrowed: every app alice may open; the curl line tries the first of them.
  assert.match(await page.getByTestId('token-curl').textContent(), / http:\/\/127\.0\.0\.1:\d+\/apps\/service-status\/$/);
  assert.equal(await said(page.getByTestId(`token-reach-${all.id}`)), 'all your apps');
  await assertAccessible(page, 'Access tokens, new token (phone)');
  await page.screenshot({ path: path.join(SHOTS, 'tokens-new-phone.png') });

  await page.getByTestId('token-new-done').click();
  assert.equal(await page.getByTestId('token-new').isVisible(), false);
  assert.ok(!(await page.content()).includes(all.secret), 'Done drops the secret from the page');

  const two = await create(page, { name: 'console reader', days: 7, apps: ['admin-console', 'team-directory'], readOnly: true });
  await page.getByTestId('token-new-done').click();
  assert.equal(await said(page.getByTestId(`token-reach-${two.id}`)), 'Admin Console and Team Directory');
  // Newest first.
  const order = await page.locator('[data-testid="tokens-list"] > li').evaluateAll((items) => items.map((i) => i.dataset.tokenId));
  assert.deepEqual(order, [two.id, all.id]);
  await fitsTheScreen(page);
  await page.screenshot({ path: path.join(SHOTS, 'tokens-list-phone.png'), fullPage: true });

  await page.getByTestId(`token-revoke-${two.id}`).click();
  await page.getByTestId(`token-confirm-${two.id}`).waitFor(WAIT);
  await fitsTheScreen(page);
  assert.ok(await smallestButton(page) >= 40);
  await page.screenshot({ path: path.join(SHOTS, 'tokens-confirm-phone.png') });
  await page.getByTestId(`token-revoke-confirm-${two.id}`).click();
  await page.getByTestId(`token-${two.id}`).waitFor({ state: 'detached', ...WAIT });
  await page.getByTestId(`token-revoke-${all.id}`).click();
  await page.getByTestId(`token-revoke-confirm-${all.id}`).click();
  await page.getByTestId('tokens-empty').waitFor({ state: 'visible', ...WAIT });
  assert.deepEqual(errors, []);
  await context.close();
});

test('German: nora (no app) gets the menu entry and the page in German, and is told a token reaches only what she can open', async () => {
  const { context, page, errors } = await signedIn('nora', { viewport: PHONE, locale: 'de-DE' });
  await openFromProfileMenu(page, { label: 'Zugriffstoken', shot: 'tokens-menu-de-phone.png' });
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'de');
  assert.equal(await page.locator('h1').textContent(), 'Zugriffstoken');
  assert.match(await said(page.getByTestId('tokens-empty')), /^Noch keine Token\./);
  assert.match(await said(page.locator('#reach-hint')), /Sie können hier noch keine App öffnen/);
  assert.equal(await page.locator('[data-testid^="token-app-"]').count(), 0);
  const { id } = await create(page, { name: 'Test' });
  assert.equal(await said(page.getByTestId(`token-last-used-${id}`)), 'nie');
  assert.equal(await said(page.getByTestId(`token-reach-${id}`)), 'alle Ihre Apps');
  // She can open no app, so there is no command to try it with.
  assert.equal(await page.getByTestId('token-curl').isVisible(), false);
  await fitsTheScreen(page);
  await assertAccessible(page, 'Zugriffstoken (phone)');
  await page.screenshot({ path: path.join(SHOTS, 'tokens-de-phone.png') });
  assert.doesNotMatch(await page.locator('main').innerText(), /\b(Your tokens|Create a token|Copy|never|Revoke)\b/);
  assert.deepEqual(errors, []);
  await context.close();
});
