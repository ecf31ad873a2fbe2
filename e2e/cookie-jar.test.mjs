// End-to-end: what one app's script can do to another app's cookies on the portal's one origin, in
// Chromium. App `a` keeps its cookies in portico's jar (the default), app `s` opts out with
// `cookies: scoped`, and app `b` plays the other team's app: its script frames the others same-origin
// and reads their `document.cookie`, and writes cookies aimed at their paths (cookie tossing). It also
// tries what would act on the whole origin: a service worker for `/`, and `Clear-Site-Data`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startPortico, startBrowser } from './harness.mjs';

let upstream;
let portico;
let browser;
let dir;

/** One upstream for the three apps, each below its own base path (/a, /s, /b). */
async function startUpstream() {
  const server = createServer((req, res) => {
    const [, app, rest = ''] = /^\/([a-z]+)\/?(.*)$/.exec(new URL(req.url, 'http://u.invalid').pathname) ?? [];
    const headers = { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' };
    if (rest === '') {
      // The app's page sets its session cookie, readable by script as many frameworks' cookies are.
      headers['set-cookie'] = `${app}_session=secret-${app}; Path=/`;
      res.writeHead(200, headers);
      return res.end(`<!doctype html><title>${app}</title><p>app ${app}</p>`);
    }
    if (rest === 'whoami') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      return res.end(JSON.stringify({ cookie: req.headers.cookie ?? '' }));
    }
    if (rest === 'sw.js') {
      res.writeHead(200, {
        'content-type': 'text/javascript',
        'service-worker-allowed': '/',
      });
      return res.end('self.addEventListener("fetch", () => {});');
    }
    if (rest === 'clear') {
      res.writeHead(200, { 'content-type': 'text/plain', 'clear-site-data': '"cookies", "storage"' });
      return res.end('cleared');
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    return res.end('not found');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    stop: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

before(async () => {
  upstream = await startUpstream();
  dir = mkdtempSync(path.join(tmpdir(), 'portico-e2e-jar-'));
  const config = path.join(dir, 'portico.yaml');
  const url = `http://127.0.0.1:${upstream.port}`;
  writeFileSync(config, `
default_tenant: acme
tenants:
  acme:
    hosts: [127.0.0.1]
    branding: { title: Acme Portal }
    auth:
      dev_sign_in:
        users:
          - { id: dev, name: Dev Eloper, email: dev@acme.example, groups: [eng] }
    roles:
      developer: { groups: [eng] }
    apps:
      - { id: a, access: { roles: [developer] }, upstream: "${url}/a" }
      - { id: s, access: { roles: [developer] }, upstream: "${url}/s", cookies: scoped }
      - { id: b, access: { roles: [developer] }, upstream: "${url}/b" }
`);
  portico = await startPortico(['--config', config]);
  browser = await startBrowser();
});

after(async () => {
  await browser?.close();
  await portico?.stop();
  await upstream?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function signedInPage() {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${portico.baseUrl}/`);
  await page.getByTestId('sign-in-dev').click();
  await page.getByTestId('luigi-topnav-profile-btn').waitFor({ timeout: 15000 });
  return { context, page };
}

test("another app's script can neither read nor toss a jar app's cookies; a scoped app's it can", async () => {
  const { context, page } = await signedInPage();
  // The user opens apps a and s: each sets its session cookie.
  for (const app of ['a', 's']) {
    const response = await page.goto(`${portico.baseUrl}/apps/${app}/`);
    assert.equal(response.status(), 200);
  }
  const names = (await context.cookies()).map((c) => c.name).sort();
  assert.deepEqual(names, ['portico_session', 's_session'], 'the jar cookie never reached the browser');

  // App b's script: frame each app same-origin, read its document.cookie, then toss a cookie at it.
  await page.goto(`${portico.baseUrl}/apps/b/`);
  const seen = await page.evaluate(async () => {
    const frameCookie = (src) => new Promise((resolve, reject) => {
      const frame = document.createElement('iframe');
      frame.src = src;
      frame.onload = () => resolve(frame.contentDocument.cookie);
      frame.onerror = reject;
      document.body.append(frame);
    });
    const read = { a: await frameCookie('/apps/a/'), s: await frameCookie('/apps/s/') };
    document.cookie = 'a_session=tossed-by-b; path=/apps/a/';
    document.cookie = 's_session=tossed-by-b; path=/apps/s/';
    const upstreamGot = async (app) => (await (await fetch(`/apps/${app}/whoami`)).json()).cookie;
    return { read, a: await upstreamGot('a'), s: await upstreamGot('s') };
  });
  assert.doesNotMatch(seen.read.a, /a_session/, 'b read a\'s cookie');
  assert.doesNotMatch(seen.read.a, /portico_session/);
  assert.equal(seen.a, 'a_session=secret-a', 'a gets its jar cookie, not the tossed one');
  // The cost of `cookies: scoped`, in a real browser: readable, and replaced by the tossed cookie
  // (same name and path, and not HttpOnly).
  assert.match(seen.read.s, /s_session=secret-s/);
  assert.equal(seen.s, 's_session=tossed-by-b');
  await context.close();
});

test("an app's script cannot install a service worker for the whole origin or clear the portal's cookies", async () => {
  const { context, page } = await signedInPage();
  await page.goto(`${portico.baseUrl}/apps/b/`);
  const outcome = await page.evaluate(async () => {
    const register = async (scope) => {
      try {
        const registration = await navigator.serviceWorker.register('/apps/b/sw.js', { scope });
        return registration.scope;
      } catch (error) {
        return error.name;
      }
    };
    const origin = await register('/');
    const own = await register('/apps/b/');
    await fetch('/apps/b/clear');
    const session = await fetch('/auth/session', { headers: { accept: 'application/json' } });
    return { origin, own, session: session.status };
  });
  assert.equal(outcome.origin, 'SecurityError', 'a worker for the whole origin was registered');
  assert.equal(outcome.own, `${portico.baseUrl}/apps/b/`);
  assert.equal(outcome.session, 200, 'the portal session survived the app\'s Clear-Site-Data');
  await context.close();
});
