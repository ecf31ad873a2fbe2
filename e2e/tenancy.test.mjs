// End-to-end: two tenants on one portico, told apart by host name (acme.localhost and globex.localhost,
// which Chromium resolves to loopback by itself). Each shows its own branding, theme and apps; sessions
// are per host, so signing in to one does not sign you in to the other; editing the URL or replaying a
// cookie against the other host gets nothing; the product switcher links a user's other portal.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startPortico, startBrowser, freePort, frameWithUrl, sideNavLabels } from './harness.mjs';

const ACME = { id: 'acme', title: 'Acme Developer Portal', shell: '#8b1a1a', shellRgb: 'rgb(139, 26, 26)' };
const GLOBEX = { id: 'globex', title: 'Globex Engineering Hub', shell: '#1a4d2e', shellRgb: 'rgb(26, 77, 46)' };

let port;
let portico;
let browser;
let dir;

const origin = (tenant) => `http://${tenant.id}.localhost:${port}`;

before(async () => {
  port = await freePort();
  dir = mkdtempSync(path.join(tmpdir(), 'portico-e2e-tenancy-'));
  const config = path.join(dir, 'portico.yaml');
  // Each tenant's logo is a file next to the config (branding.logo), served by portico on its own origin.
  for (const [tenant, letter] of [[ACME, 'A'], [GLOBEX, 'G']]) {
    writeFileSync(path.join(dir, `${tenant.id}-logo.svg`), `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#fff"/><text x="16" y="23" font-size="20" text-anchor="middle" font-family="sans-serif" fill="${tenant.shell}">${letter}</text></svg>`);
  }
  // No default_tenant: a host no tenant lists gets a 404, never some tenant's shell.
  // bo is in both tenants (with a role in each), ann only in acme, gus only in globex.
  writeFileSync(config, `
version: 1
tenants:
  acme:
    hosts: [acme.localhost:${port}]
    branding:
      title: ${ACME.title}
      logo: acme-logo.svg
      theme: { shell_color: "${ACME.shell}", accent_color: "#d4400f" }
    auth:
      dev_sign_in:
        users:
          - { id: bo, name: Bo Both, email: bo@acme.example, groups: [acme-eng] }
          - { id: ann, name: Ann Acme, email: ann@acme.example, groups: [acme-eng] }
    roles:
      developer: { groups: [acme-eng] }
    apps:
      - { id: rockets, label: Rocket Builds, category: Build, access: { roles: [developer] }, static: "embedded:demo" }
  globex:
    hosts: [globex.localhost:${port}]
    branding:
      title: ${GLOBEX.title}
      logo: globex-logo.svg
      theme: { shell_color: "${GLOBEX.shell}", accent_color: "#2b7d2b" }
    auth:
      dev_sign_in:
        users:
          - { id: bo, name: Bo Both, email: bo@globex.example, groups: [globex-staff] }
          - { id: gus, name: Gus Globex, email: gus@globex.example, groups: [globex-staff] }
    roles:
      employee: { groups: [globex-staff] }
    apps:
      - { id: ledger, label: Globex Ledger, category: Finance, access: { roles: [employee] }, static: "embedded:demo" }
shared_apps:
  - id: directory
    label: Acme People
    category: Discover
    tenants: [acme, globex]
    access: { roles: [developer] }
    static: "embedded:demo"
    overrides:
      globex: { label: Globex People, access: { roles: [employee] } }
`);
  portico = await startPortico(['--config', config], { listen: `127.0.0.1:${port}` });
  browser = await startBrowser();
});

after(async () => {
  await browser?.close();
  await portico?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** On the dev sign-in page of `tenant` (checked), picks `user` and waits for the Luigi shell. */
async function pickUser(page, tenant, user) {
  assert.equal(new URL(page.url()).host, `${tenant.id}.localhost:${port}`);
  assert.match(page.url(), /\/auth\/login\?return_to=/);
  await page.getByTestId('dev-sign-in-warning').waitFor({ timeout: 10000 });
  // The sign-in page wears the tenant's branding: its title and its logo (loaded).
  assert.equal((await page.getByTestId('brand-title').textContent()).trim(), tenant.title);
  assert.ok(await page.getByTestId('brand-logo').evaluate((img) => img.complete && img.naturalWidth > 0), 'logo loaded');
  await page.getByTestId(`sign-in-${user}`).click();
  await page.getByTestId('luigi-topnav-profile-btn').waitFor({ timeout: 15000 });
  assert.equal(new URL(page.url()).host, `${tenant.id}.localhost:${port}`);
}

async function signIn(page, tenant, user, deepLink = '/') {
  await page.goto(origin(tenant) + deepLink);
  await pickUser(page, tenant, user);
}

/** The shell colour as the page has it: the CSS variable, the shell bar's background, theme.css's text. */
async function shellColours(page) {
  return page.evaluate(() => {
    const sheet = [...document.styleSheets].find((s) => s.href && new URL(s.href).pathname === '/shell/theme.css');
    return {
      variable: getComputedStyle(document.documentElement).getPropertyValue('--sapShellColor').trim(),
      shellbar: getComputedStyle(document.querySelector('.fd-shellbar')).backgroundColor,
      themeCss: sheet ? [...sheet.cssRules].map((r) => r.cssText).join('\n') : null,
    };
  });
}

/** Waits (bounded) for the demo app in `frame` to render the Luigi context it got. */
async function demoContext(frame) {
  await frame.waitForFunction(() => document.querySelector('[data-testid="ctx-tenant"]')?.textContent !== '–', null, { timeout: 10000 });
  const read = (id) => frame.getByTestId(id).textContent();
  return { title: await read('app-title'), user: await read('ctx-user'), email: await read('ctx-email'), tenant: await read('ctx-tenant'), app: await read('ctx-app') };
}

/** A plain HTTP GET to portico's port with the given Host and Cookie headers (what a browser cannot send). */
function rawGet(host, pathname, cookie) {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: pathname, headers: { host, cookie, accept: 'application/json' }, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${host}${pathname} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

test('acme.localhost shows acme: its title, theme colour, apps and the shared app under its label', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));

  await page.goto(origin(ACME) + '/');
  // acme's sign-in lists acme's users only.
  await page.getByTestId('dev-sign-in-warning').waitFor({ timeout: 10000 });
  assert.equal(await page.getByTestId('sign-in-ann').count(), 1);
  assert.equal(await page.getByTestId('sign-in-gus').count(), 0);
  await pickUser(page, ACME, 'bo');

  await page.waitForFunction((t) => document.title === t, `Home · ${ACME.title}`, { timeout: 5000 });
  assert.equal((await page.getByTestId('luigi-topnav-title').textContent()).trim(), ACME.title);
  // The tenant's logo file, in the shell bar, drawn at the bar's height.
  const logo = await page.getByTestId('luigi-topnav-logo').evaluate((img) => [new URL(img.src).pathname, img.getBoundingClientRect().width]);
  assert.equal(logo[0], '/shell/brand/logo');
  assert.ok(logo[1] >= 20, `logo width ${logo[1]}`);

  const colours = await shellColours(page);
  assert.equal(colours.variable, ACME.shell);
  assert.equal(colours.shellbar, ACME.shellRgb);
  assert.ok(colours.themeCss?.includes(`--sapShellColor: ${ACME.shell}`), `theme.css: ${colours.themeCss}`);

  await page.getByTestId('nav-directory').waitFor({ timeout: 10000 });
  assert.deepEqual((await sideNavLabels(page)).sort(), ['Acme People', 'Rocket Builds']);
  assert.equal(await page.getByTestId('nav-ledger').count(), 0);

  await page.getByTestId('nav-rockets').click();
  await page.waitForURL(/\/home\/rockets$/, { timeout: 10000 });
  const rockets = await demoContext(await frameWithUrl(page, '/apps/rockets/'));
  assert.equal(rockets.title, 'Rocket Builds');
  assert.equal(rockets.tenant, `${ACME.title} (acme)`);
  assert.equal(rockets.user, 'Bo Both (bo)');
  assert.equal(rockets.email, 'bo@acme.example');

  await page.getByTestId('nav-home').click();
  await page.getByTestId('nav-directory').click();
  await page.waitForURL(/\/home\/directory$/, { timeout: 10000 });
  const directory = await demoContext(await frameWithUrl(page, '/apps/directory/'));
  assert.equal(directory.title, 'Acme People');
  assert.equal(directory.tenant, `${ACME.title} (acme)`);

  assert.deepEqual(errors, []);
  await context.close();
});

test('globex.localhost in the same browser is not signed in, and after signing in shows globex', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, ACME, 'bo');

  // The session cookie is host-only: the browser keeps it for acme.localhost and sends it nowhere else.
  const acmeCookies = await context.cookies();
  assert.deepEqual(acmeCookies.map((c) => [c.name, c.domain]), [['portico_session', 'acme.localhost']]);

  await page.goto(origin(GLOBEX) + '/home');
  assert.match(page.url(), new RegExp(`^${origin(GLOBEX)}/auth/login\\?return_to=%2Fhome$`));
  await page.getByTestId('dev-sign-in-warning').waitFor({ timeout: 10000 });
  assert.equal(await page.getByTestId('luigi-topnav-profile-btn').count(), 0);
  assert.equal(await page.getByTestId('sign-in-gus').count(), 1);
  assert.equal(await page.getByTestId('sign-in-ann').count(), 0);

  await pickUser(page, GLOBEX, 'bo');
  assert.equal(new URL(page.url()).pathname, '/home');
  await page.waitForFunction((t) => document.title === t, `Home · ${GLOBEX.title}`, { timeout: 5000 });
  assert.equal((await page.getByTestId('luigi-topnav-title').textContent()).trim(), GLOBEX.title);
  const colours = await shellColours(page);
  assert.equal(colours.variable, GLOBEX.shell);
  assert.equal(colours.shellbar, GLOBEX.shellRgb);

  await page.getByTestId('nav-ledger').waitFor({ timeout: 10000 });
  assert.deepEqual((await sideNavLabels(page)).sort(), ['Globex Ledger', 'Globex People']);
  assert.equal(await page.getByTestId('nav-rockets').count(), 0);

  await page.getByTestId('nav-directory').click();
  await page.waitForURL(/\/home\/directory$/, { timeout: 10000 });
  const directory = await demoContext(await frameWithUrl(page, '/apps/directory/'));
  assert.equal(directory.title, 'Globex People');
  assert.equal(directory.tenant, `${GLOBEX.title} (globex)`);
  assert.equal(directory.email, 'bo@globex.example');

  // Two separate sessions now, one per host.
  const cookies = await context.cookies();
  assert.deepEqual(cookies.map((c) => c.domain).sort(), ['acme.localhost', 'globex.localhost']);
  assert.notEqual(cookies[0].value, cookies[1].value);

  // And acme's session is still acme's.
  await page.goto(origin(ACME) + '/home');
  await page.getByTestId('luigi-topnav-profile-btn').waitFor({ timeout: 15000 });
  await page.waitForFunction((t) => document.title === t, `Home · ${ACME.title}`, { timeout: 5000 });
  await context.close();
});

test('editing the URL or replaying the cookie does not reach the other tenant', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, ACME, 'bo');

  // A globex-only app's Luigi path on acme: the shell says there is no such page here, keeps the
  // address, and loads nothing of the app.
  await page.goto(origin(ACME) + '/home/ledger');
  const view = await frameWithUrl(page, '/shell/not-found.html');
  await view.getByTestId('not-found-reason').filter({ hasText: 'There is no page at /home/ledger' }).waitFor({ timeout: 10000 });
  assert.equal(new URL(page.url()).pathname, '/home/ledger');
  assert.equal(await page.getByTestId('luigi-alert').count(), 0);
  assert.deepEqual(page.frames().filter((f) => f.url().includes('/apps/ledger')).map((f) => f.url()), []);
  await page.waitForFunction((t) => document.title === t, `Page not found · ${ACME.title}`, { timeout: 5000 });

  // Asked directly from the acme page, with acme's session: no such app here (and acme's own app is fine).
  const statuses = await page.evaluate(async () => ({
    ledger: (await fetch('/apps/ledger/')).status,
    rockets: (await fetch('/apps/rockets/')).status,
  }));
  assert.deepEqual(statuses, { ledger: 404, rockets: 200 });

  // acme's session cookie sent to the same port with globex's Host: not signed in there.
  const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
  const acmeConfig = await rawGet(`acme.localhost:${port}`, '/shell/config.json', cookie);
  assert.equal(acmeConfig.status, 200, 'the replayed cookie is a live acme session');
  assert.equal(JSON.parse(acmeConfig.body).luigi.navigation.globalContext.tenant.id, 'acme');
  const globexConfig = await rawGet(`globex.localhost:${port}`, '/shell/config.json', cookie);
  assert.equal(globexConfig.status, 401);
  assert.match(globexConfig.type, /application\/json/);
  assert.equal(JSON.parse(globexConfig.body).error, 'not_signed_in');
  const globexApp = await rawGet(`globex.localhost:${port}`, '/apps/ledger/', cookie);
  assert.equal(globexApp.status, 401);

  // A host no tenant lists gets nothing (there is no default tenant).
  const unknown = await rawGet(`127.0.0.1:${port}`, '/shell/config.json', cookie);
  assert.equal(unknown.status, 404);
  await context.close();
});

test('the product switcher links a user in both tenants to the other portal, and only them', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, ACME, 'bo');

  // Luigi's shell-bar button takes its data-testid from the switcher's label ("Your portals").
  const switcher = page.getByTestId('portico-portals');
  await switcher.waitFor({ state: 'visible', timeout: 10000 });
  await switcher.click();
  const popover = page.locator('#productSwitcherPopover');
  const globexItem = popover.getByTestId('portal-globex');
  await globexItem.waitFor({ state: 'visible', timeout: 5000 });
  assert.match(await globexItem.innerText(), new RegExp(GLOBEX.title));
  // Each portal shows its own logo, the other one's loaded from its own origin (the shell's CSP allows
  // that origin's images for this user).
  const logos = await popover.locator('[data-testid^="portal-"] img').evaluateAll((imgs) =>
    imgs.map((img) => [new URL(img.src).origin + new URL(img.src).pathname, img.complete && img.naturalWidth > 0]));
  assert.deepEqual(logos, [[origin(ACME) + '/shell/brand/logo', true], [origin(GLOBEX) + '/shell/brand/logo', true]]);
  await page.screenshot({ path: 'target/e2e/tenancy-switcher-logos.png' });
  assert.match(await popover.getByTestId('portal-acme').innerText(), new RegExp(ACME.title));
  assert.deepEqual(
    await popover.locator('[data-testid^="portal-"]').evaluateAll((items) => items.map((li) => li.dataset.testid)),
    ['portal-acme', 'portal-globex'],
  );

  await globexItem.click();
  // Separate sessions: the link lands on globex's sign-in, not its shell.
  await page.waitForURL(new RegExp(`^${origin(GLOBEX)}/auth/login\\?return_to=`), { timeout: 10000 });
  await page.getByTestId('dev-sign-in-warning').waitFor({ timeout: 10000 });
  assert.equal(await page.getByTestId('luigi-topnav-profile-btn').count(), 0);
  await context.close();

  // ann is only in acme: no switcher at all.
  const annContext = await browser.newContext();
  const annPage = await annContext.newPage();
  await signIn(annPage, ACME, 'ann');
  await annPage.getByTestId('nav-rockets').waitFor({ timeout: 10000 });
  assert.equal(await annPage.getByTestId('portico-portals').count(), 0);
  assert.equal(await annPage.locator('#productSwitcherPopover, [data-testid^="portal-"]').count(), 0);
  const annConfig = await annPage.evaluate(() => fetch('/shell/config.json').then((r) => r.json()));
  assert.equal(annConfig.luigi.navigation.productSwitcher, undefined);
  await annContext.close();

  // Nor gus, only in globex.
  const gusContext = await browser.newContext();
  const gusPage = await gusContext.newPage();
  await signIn(gusPage, GLOBEX, 'gus');
  await gusPage.getByTestId('nav-ledger').waitFor({ timeout: 10000 });
  assert.equal(await gusPage.getByTestId('portico-portals').count(), 0);
  await gusContext.close();
});
