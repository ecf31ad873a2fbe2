// End-to-end: the embedded demo as a newcomer runs it on a port of their choosing (`portico serve
// --listen`), and the shell's navigation as they move through it: both demo tenants on that port, the
// product switcher pointing there, an app's pages listed beside the other apps, and routes inside an
// app that are links (Luigi's virtual tree).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { startPortico, startBrowser, frameWithUrl, freePort, signInAt, sideNavLabels } from './harness.mjs';

const SHOTS = path.resolve('target/e2e');
let portico;
let browser;
let port;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  port = await freePort();
  portico = await startPortico([], { listen: `127.0.0.1:${port}` });
  browser = await startBrowser();
});

after(async () => {
  await browser?.close();
  await portico?.stop();
});

async function signIn(page, origin, user, deepLink = '/') {
  await signInAt(page, origin + deepLink, user, { expectSignIn: true });
}

test('on another port the second demo tenant still answers and the switcher links to it there', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, `http://localhost:${port}`, 'alice');
  await page.getByTestId('portico-portals').click();
  const globex = page.locator('#productSwitcherPopover').getByTestId('portal-globex');
  await globex.waitFor({ state: 'visible', timeout: 5000 });
  await globex.click();
  // The link names the port portico listens on, and globex answers there as itself.
  await page.waitForURL(new RegExp(`^http://globex\\.localhost:${port}/auth/login`), { timeout: 10000 });
  await page.getByTestId('sign-in-gina').waitFor({ timeout: 10000 });
  await page.getByTestId('sign-in-alice').click();
  await page.getByTestId('luigi-topnav-profile-btn').waitFor({ timeout: 15000 });
  assert.equal((await page.getByTestId('luigi-topnav-title').textContent()).trim(), 'Globex Portal');
  await context.close();
});

test('inside an app with pages, the other apps stay in the side navigation with the pages listed under the app', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, portico.baseUrl, 'alice', '/home/service-status/overview');
  await frameWithUrl(page, '/apps/service-status/overview');
  await page.getByTestId('nav-team-directory').waitFor({ timeout: 10000 });
  const labels = await sideNavLabels(page);
  for (const label of ['Service Status', 'Overview', 'Incident Review', 'Admin Console', 'Team Directory']) {
    assert.ok(labels.includes(label), `${label} in ${labels}`);
  }
  // The app's pages come right after the app, in its own group.
  assert.ok(labels.indexOf('Overview') === labels.indexOf('Service Status') + 1, `${labels}`);
  await page.getByTestId('nav-service-status-incidents').click();
  await page.waitForURL(/\/home\/service-status\/incidents$/, { timeout: 10000 });
  await frameWithUrl(page, '/apps/service-status/incidents');
  await page.getByTestId('nav-admin-console').click();
  await page.waitForURL(/\/home\/admin-console$/, { timeout: 10000 });
  await context.close();
});

test('a route inside an app is a link: it opens the app there, and the address follows the app', async () => {
  for (const [name, viewport] of [['desktop', { width: 1280, height: 800 }], ['phone', { width: 390, height: 844 }]]) {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    await signIn(page, portico.baseUrl, 'dave', '/home/team-directory/people/42');
    assert.equal(new URL(page.url()).pathname, '/home/team-directory/people/42');
    const app = await frameWithUrl(page, '/apps/team-directory/people/42');
    await app.getByTestId('person').getByText('Ada Lovelace').waitFor({ timeout: 10000 });
    assert.equal(await app.getByTestId('ctx-location').textContent(), '/apps/team-directory/people/42');

    // A link inside the app moves the shell's address along, without reloading the frame.
    await app.getByTestId('person-link-7').click();
    await page.waitForURL(/\/home\/team-directory\/people\/7$/, { timeout: 10000 });
    await app.getByTestId('person').getByText('Grace Hopper').waitFor({ timeout: 5000 });
    assert.equal(await app.getByTestId('person-link-7').getAttribute('href'), '/home/team-directory/people/7');
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(SHOTS, `demo-deep-link-${name}.png`) });

    // Reloading the shared address opens the same person.
    await page.reload();
    const again = await frameWithUrl(page, '/apps/team-directory/people/7');
    await again.getByTestId('person').getByText('Grace Hopper').waitFor({ timeout: 10000 });
    await context.close();
  }
});

test('a route with a path parameter opens its page with the value, under the page\'s rule', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  // alice may open Incident Review; its `:incident` route takes the incident from the address.
  await signIn(page, portico.baseUrl, 'alice', '/home/service-status/incidents/INC-7');
  assert.equal(new URL(page.url()).pathname, '/home/service-status/incidents/INC-7');
  const app = await frameWithUrl(page, '/apps/service-status/incidents/INC-7');
  assert.equal(await app.getByTestId('ctx-location').textContent(), '/apps/service-status/incidents/INC-7');
  // The route is no entry of its own: the side navigation lists the app and its pages, not ":incident".
  const labels = await sideNavLabels(page);
  assert.ok(labels.includes('Incident Review'), labels.join(', '));
  assert.ok(!labels.some((label) => label.includes(':') || label === 'Incident'), labels.join(', '));
  await context.close();

  // dave may not open Incident Review: the same link explains why instead of opening anything.
  const other = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const davePage = await other.newPage();
  await signIn(davePage, portico.baseUrl, 'dave', '/home/service-status/incidents/INC-7');
  const view = await frameWithUrl(davePage, '/shell/not-found.html');
  await view.getByTestId('not-found-needs').waitFor({ state: 'visible', timeout: 10000 });
  assert.match(await view.getByTestId('not-found-reason').innerText(), /Incident Review/);
  assert.equal(new URL(davePage.url()).pathname, '/home/service-status/incidents/INC-7');
  await other.close();
});

test('on a phone, the overflow menu\'s entries open by keyboard: the search and the portals', async () => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  await signIn(page, portico.baseUrl, 'alice');
  const menu = page.getByTestId('mobile-menu');
  await menu.waitFor({ state: 'visible', timeout: 10000 });

  // Tab reaches each entry of the open menu; Enter opens it, as a click would.
  const reach = async (testid) => {
    await menu.focus();
    await page.keyboard.press('Enter');
    const entry = page.locator(`a[data-testid="${testid}"]`);
    await entry.waitFor({ state: 'visible', timeout: 5000 });
    for (let i = 0; i < 10 && !(await entry.evaluate((el) => el === document.activeElement)); i++) {
      await page.keyboard.press('Tab');
    }
    assert.ok(await entry.evaluate((el) => el === document.activeElement), `${testid} takes the focus`);
    assert.equal(await entry.getAttribute('role'), 'button');
    await page.keyboard.press('Enter');
  };
  await reach('mobile-product-switcher');
  const portal = page.locator('[data-testid="portal-globex"]').filter({ visible: true });
  await portal.first().waitFor({ state: 'visible', timeout: 5000 });
  await page.keyboard.press('Escape');
  await page.reload();
  await page.getByTestId('luigi-topnav-profile-btn').waitFor({ timeout: 15000 });
  await reach('luigi-search-btn-mobile');
  await page.getByTestId('luigi-search-input').waitFor({ state: 'visible', timeout: 5000 });
  await context.close();
});
