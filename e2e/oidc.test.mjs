// End-to-end sign-in through a real OpenID Provider (`oidc-provider`), as a person would: the portal
// sends the browser to the IdP's login page, the user signs in there, lands on the deep link they asked
// for, sees their role's navigation, signs out (at the IdP too), and the back button does not bring
// the portal back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startOp } from '../tests/support/op.mjs';
import { startPortico, startBrowser, frameWithUrl, freePort, sideNavLabels } from './harness.mjs';

let op;
let portico;
let browser;

before(async () => {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  op = await startOp({
    clients: [{
      client_id: 'portico',
      client_secret: 'e2e-secret',
      redirect_uris: [`${origin}/auth/callback`],
      post_logout_redirect_uris: [`${origin}/auth/signed-out`],
    }],
  });
  const dir = mkdtempSync(path.join(tmpdir(), 'portico-e2e-'));
  const config = path.join(dir, 'portico.yaml');
  writeFileSync(config, `
tenants:
  acme:
    hosts: ["127.0.0.1:${port}"]
    public_origin: ${origin}
    branding: { title: Acme Portal }
    auth:
      oidc: { issuer: "${op.issuer}", client_id: portico, client_secret: "\${E2E_OIDC_SECRET}", scopes: [profile, email, groups] }
    roles:
      platform-admin: { groups: [acme-platform-admins] }
      developer: { groups: [acme-eng] }
    apps:
      - { id: service-status, label: Service Status, access: { roles: [developer] }, static: embedded:demo }
      - { id: admin-console, label: Admin Console, access: { roles: [platform-admin] }, static: embedded:demo }
`);
  process.env.E2E_OIDC_SECRET = 'e2e-secret';
  portico = await startPortico(['--config', config], { listen: `127.0.0.1:${port}` });
  browser = await startBrowser();
});

after(async () => {
  await browser?.close();
  await portico?.stop();
  await op?.close();
});

async function waitForSignInAvailable() {
  // Discovery runs in the background after start; bounded wait until sign-in redirects to the IdP.
  for (let i = 0; i < 100; i += 1) {
    const response = await fetch(`${portico.baseUrl}/auth/login`, { redirect: 'manual' });
    if (response.status === 303) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('sign-in never became available');
}

test('a developer signs in at the IdP, lands on the deep link, and signs out everywhere', async () => {
  await waitForSignInAvailable();
  const context = await browser.newContext();
  const page = await context.newPage();

  await page.goto(`${portico.baseUrl}/home/service-status?view=compact`);
  // The IdP's own login page, on the IdP's origin.
  assert.ok(page.url().startsWith(op.issuer), page.url());
  await page.fill('input[name="login"]', 'dev');
  await page.fill('input[name="password"]', 'any password');
  await page.click('button[type="submit"]');

  await page.waitForURL(`${portico.baseUrl}/home/service-status?view=compact`);
  const app = await frameWithUrl(page, '/apps/service-status/');
  await app.getByText('Service Status', { exact: true }).waitFor();
  assert.equal(await app.getByTestId('ctx-user').textContent(), 'Dev Eloper (dev)');
  assert.equal(await app.getByTestId('ctx-roles').textContent(), 'developer');

  await page.getByTestId('nav-home').click();
  await page.getByTestId('nav-service-status').waitFor();
  assert.deepEqual(await sideNavLabels(page), ['Service Status']);

  // No token ever reaches the browser: only the opaque, HttpOnly session cookie.
  const cookies = await context.cookies(portico.baseUrl);
  const session = cookies.find((c) => c.name === 'portico_session');
  assert.ok(session?.httpOnly, 'HttpOnly session cookie');
  assert.equal(session.sameSite, 'Lax');
  const storage = await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }));
  assert.ok(!storage.includes('eyJ'), 'no JWT in web storage');

  // Sign out: portico ends its session, the IdP asks to confirm and ends its own.
  await page.getByTestId('luigi-topnav-profile-btn').click();
  await page.getByTestId('logout-btn').click();
  await page.waitForURL((url) => url.href.startsWith(op.issuer));
  await page.getByRole('button', { name: 'Yes, sign me out' }).click();
  await page.waitForURL(`${portico.baseUrl}/auth/signed-out`);
  await page.getByTestId('signed-out').waitFor();

  // Back: the portal is not shown again; the browser is sent to sign in, and the IdP asks for a login.
  // Going back through the IdP's pages to where the portal was: the shell is never cached (no-store),
  // so the browser asks again and is sent to the IdP's login form instead of seeing the portal.
  for (let step = 0; step < 3; step += 1) {
    await page.goBack();
    await page.waitForLoadState('load');
    await page.waitForTimeout(500);
    assert.equal(await page.locator('[data-testid="luigi-topnav-profile-btn"]').count(), 0, `back ${step + 1}: ${page.url()}`);
  }
  assert.ok(page.url().startsWith(op.issuer), `ends at the IdP: ${page.url()}`);
  const api = await context.request.get(`${portico.baseUrl}/shell/config.json`);
  assert.equal(api.status(), 401);
  await context.close();
});

test('an admin signing in at the IdP sees the admin app', async () => {
  await waitForSignInAvailable();
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${portico.baseUrl}/`);
  await page.fill('input[name="login"]', 'admin');
  await page.fill('input[name="password"]', 'x');
  await page.click('button[type="submit"]');
  await page.getByTestId('nav-admin-console').waitFor({ timeout: 15000 });
  assert.deepEqual((await sideNavLabels(page)).sort(), ['Admin Console', 'Service Status']);
  await context.close();
});
