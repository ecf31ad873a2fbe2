// End-to-end: a person in a real browser signs in to the embedded demo portal, sees the navigation their
// roles allow, opens apps inside the Luigi shell, and signs out.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPortico, startBrowser, frameWithUrl, assertAccessible, signInAt, sideNavLabels } from './harness.mjs';

let portico;
let browser;

before(async () => {
  portico = await startPortico();
  browser = await startBrowser();
});

after(async () => {
  await browser?.close();
  await portico?.stop();
});

async function signIn(page, user, deepLink = '/') {
  // Not signed in: the browser lands on the dev sign-in page, which says loudly what it is.
  await signInAt(page, portico.baseUrl + deepLink, user, { expectSignIn: true });
}

test('a developer lands on the deep link they asked for and sees only their apps', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));

  await signIn(page, 'dave', '/home/service-status/overview');
  assert.equal(new URL(page.url()).pathname, '/home/service-status/overview');

  // The app's iframe loads through /apps/<id>/ on the same origin and shows the user's context.
  const app = await frameWithUrl(page, '/apps/service-status/overview');
  await app.getByText('Service Status', { exact: true }).waitFor();
  assert.equal(await app.getByTestId('ctx-user').textContent(), 'Dave Developer (dave)');
  assert.equal(await app.getByTestId('ctx-roles').textContent(), 'developer');
  assert.equal(await app.getByTestId('ctx-tenant').textContent(), 'Portico Demo Portal (demo)');
  assert.equal(await app.getByTestId('ctx-location').textContent(), '/apps/service-status/overview');
  assert.equal(new URL(app.url()).origin, portico.baseUrl);

  // Inside the app, the admin-only node is not offered.
  const appNav = await sideNavLabels(page);
  assert.ok(appNav.includes('Overview'), `app navigation: ${appNav}`);
  assert.ok(!appNav.includes('Incident Review'), `app navigation: ${appNav}`);

  // At home, the developer's apps and nothing else.
  await page.getByTestId('nav-home').click();
  await page.getByTestId('nav-team-directory').waitFor();
  const homeNav = await sideNavLabels(page);
  // (with the pages dave may open listed under their app)
  assert.deepEqual(homeNav.sort(), ['Overview', 'Service Status', 'Team Directory']);

  // What the navigation hides, the proxy refuses, even when asked directly from the page.
  const status = await page.evaluate(() => fetch('/apps/admin-console/').then((r) => r.status));
  assert.equal(status, 403);

  assert.deepEqual(errors, []);
  await context.close();
});

test('an admin sees the admin app and opens it inside the shell', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'alice');
  await page.getByTestId('nav-admin-console').click();
  await page.waitForURL(/\/home\/admin-console$/);
  const app = await frameWithUrl(page, '/apps/admin-console/');
  await app.getByText('Admin Console', { exact: true }).waitFor();
  assert.equal(await app.getByTestId('ctx-roles').textContent(), 'developer, platform-admin');
  assert.equal(await app.getByTestId('ctx-user').textContent(), 'Alice Admin (alice)');

  // The admin also gets the admin-only node of a shared app, and it loads.
  await page.goto(portico.baseUrl + '/home/service-status/incidents');
  let incidents = await frameWithUrl(page, '/apps/service-status/incidents');
  await incidents.getByText('Service Status', { exact: true }).waitFor();
  assert.equal(await incidents.getByTestId('ctx-view').textContent(), '/incidents');

  // A reload of the deep link comes back to the same place (Luigi path routing, server fallback).
  await page.reload();
  assert.equal(new URL(page.url()).pathname, '/home/service-status/incidents');
  incidents = await frameWithUrl(page, '/apps/service-status/incidents');
  await incidents.getByText('Service Status', { exact: true }).waitFor();
  assert.equal(await incidents.getByTestId('ctx-user').textContent(), 'Alice Admin (alice)');
  await context.close();
});

test('a user without groups sees no apps and is told why', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'nora');
  const home = await frameWithUrl(page, '/shell/home.html');
  await home.getByTestId('home-no-apps').waitFor({ state: 'visible' });
  assert.equal(await home.getByTestId('home-roles').textContent(), 'none');
  assert.deepEqual(await sideNavLabels(page), []);
  await context.close();
});

test('signing out ends the session and the back button does not bring the portal back', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'dave', '/home/team-directory');
  await frameWithUrl(page, '/apps/team-directory/');

  await page.getByTestId('luigi-topnav-profile-btn').click();
  await page.getByTestId('logout-btn').click();
  // A page that says so, in the tenant's branding, with the way back in.
  await page.waitForURL(/\/auth\/signed-out$/);
  assert.equal(await page.getByTestId('signed-out').textContent(), 'You are signed out of Portico Demo Portal');
  await assertAccessible(page, 'signed-out page');
  await page.screenshot({ path: 'target/e2e/signed-out-desktop.png' });

  // The cookie is gone and the server-side session with it.
  const cookies = await context.cookies();
  assert.equal(cookies.filter((c) => c.name === 'portico_session').length, 0);
  const api = await context.request.get(portico.baseUrl + '/shell/config.json');
  assert.equal(api.status(), 401);

  await page.goBack();
  await page.waitForLoadState('load');
  // The shell page is never cached (no-store), so going back asks the server, which asks to sign in.
  await page.getByTestId('dev-sign-in-warning').waitFor({ timeout: 10000 });
  assert.match(page.url(), /\/auth\/login/);
  await assertAccessible(page, 'dev sign-in page');
  await context.close();
});

test('an app opened after the session ended sends the whole window to sign in, then back', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'dave', '/home/service-status');
  await frameWithUrl(page, '/apps/service-status/');
  // The session ends behind the shell's back (expiry, sign-out in another tab): the cookie is gone.
  await context.clearCookies();
  await page.getByTestId('nav-home').click();
  await page.getByTestId('nav-team-directory').click();
  await page.waitForURL(/\/auth\/login\?return_to=%2Fhome%2Fteam-directory/);
  await page.getByTestId('sign-in-dave').click();
  await page.waitForURL(/\/home\/team-directory$/);
  await frameWithUrl(page, '/apps/team-directory/');
  await context.close();
});
