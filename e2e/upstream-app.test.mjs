// End-to-end: a real upstream micro-app (HTML, JS, CSS, a JSON API and a WebSocket, see
// fixtures/upstream-app.mjs) behind portico's role-checked proxy, inside the Luigi shell in Chromium.
// Everything the app loads or calls goes through /apps/live/ on the portal's origin; the upstream gets
// portico's identity headers and never the session cookie; a user without the role gets nothing through.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startPortico, startBrowser, frameWithUrl } from './harness.mjs';
import { startUpstreamApp } from './fixtures/upstream-app.mjs';

let upstream;
let portico;
let browser;
let dir;

before(async () => {
  upstream = await startUpstreamApp({ basePath: '/base' });
  dir = mkdtempSync(path.join(tmpdir(), 'portico-e2e-upstream-'));
  const config = path.join(dir, 'portico.yaml');
  // 127.0.0.1 on any port: dev sign-in answers only on a host the tenant lists, never merely as the
  // default tenant (DNS rebinding).
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
          - { id: nobody, name: No Body, email: nobody@acme.example, groups: [] }
    roles:
      developer: { groups: [eng] }
    apps:
      - { id: live, label: Live App, access: { roles: [developer] }, upstream: "http://127.0.0.1:${upstream.port}/base" }
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

/** Opens `deepLink` signed out, picks `user` on the dev sign-in page, waits for the shell. */
async function signIn(page, user, deepLink) {
  await page.goto(portico.baseUrl + deepLink);
  assert.match(page.url(), /\/auth\/login\?return_to=/);
  await page.getByTestId(`sign-in-${user}`).click();
  await page.getByTestId('luigi-topnav-profile-btn').waitFor({ timeout: 15000 });
}

/** Waits (bounded) until a data-testid element of `frame` has text other than the placeholder. */
async function filled(frame, testId, timeout = 10000) {
  const locator = frame.getByTestId(testId);
  try {
    await frame.waitForFunction(
      (id) => {
        const el = document.querySelector(`[data-testid="${id}"]`);
        return el && el.textContent !== '–' && el.textContent !== '';
      },
      testId,
      { timeout },
    );
  } catch (error) {
    const errors = await frame.getByTestId('live-errors').textContent().catch(() => '?');
    throw new Error(`${testId} stayed empty (app errors: ${errors || 'none'}): ${error.message}`);
  }
  return locator.textContent();
}

test('an upstream app loads, calls its API and its WebSocket through portico inside the shell', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const pageErrors = [];
  const requested = []; // every HTTP(S) request of the page and its frames
  const websockets = [];
  let echoRequest;
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('request', (request) => {
    requested.push(request.url());
    if (request.url().endsWith('/apps/live/api/echo')) echoRequest = request;
  });
  page.on('websocket', (ws) => websockets.push(ws.url()));
  // A browser cookie on the app's path (any app's script could have written it): the app keeps its
  // cookies in portico's jar (the default), so neither this nor portico's session cookie reaches it.
  await context.addCookies([{ name: 'app_pref', value: 'compact', url: `${portico.baseUrl}/apps/live/` }]);

  await signIn(page, 'dev', '/home/live');
  assert.equal(new URL(page.url()).pathname, '/home/live');
  const app = await frameWithUrl(page, '/apps/live/');
  assert.equal(new URL(app.url()).origin, portico.baseUrl);
  assert.equal(new URL(app.url()).pathname, '/apps/live/');

  // The identity the upstream received, set by portico.
  assert.equal(await filled(app, 'whoami-user'), 'dev');
  assert.equal(await filled(app, 'whoami-roles'), 'developer');
  // The session cookie stayed at portico.
  assert.equal(await filled(app, 'whoami-session-cookie'), 'no');
  // A POST with a JSON body went through the CSRF check and came back.
  assert.equal(await filled(app, 'echo-result'), 'hello through portico');
  // The WebSocket through /apps/live/ws answered.
  assert.equal(await filled(app, 'ws-result'), 'echo: ping');
  // The stylesheet, loaded by a relative URL, applies.
  const banner = await app.getByTestId('live-banner').evaluate((el) => {
    const style = getComputedStyle(el);
    return { color: style.color, border: style.borderLeftColor, width: style.borderLeftWidth };
  });
  assert.deepEqual(banner, { color: 'rgb(0, 128, 0)', border: 'rgb(10, 110, 209)', width: '6px' });
  assert.equal(await app.getByTestId('live-errors').textContent(), '');
  // The POST carried the session's CSRF token from the Luigi context (the one /shell/config.json hands
  // the shell), and portico did not pass it on to the upstream.
  const shellConfig = await (await context.request.get(`${portico.baseUrl}/shell/config.json`)).json();
  const csrfToken = shellConfig.luigi.navigation.globalContext.csrfToken;
  assert.ok(csrfToken, 'no csrfToken in the Luigi global context');
  assert.equal(await echoRequest.headerValue('x-portico-csrf'), csrfToken);

  // Every request went to portico's origin, none to the upstream directly, and the app's own files
  // and calls went through /apps/live/.
  const upstreamHost = `127.0.0.1:${upstream.port}`;
  const direct = [...requested, ...websockets].filter((url) => url.includes(upstreamHost));
  assert.deepEqual(direct, [], 'requests that bypassed portico');
  const foreign = requested.filter((url) => !url.startsWith('data:') && new URL(url).origin !== portico.baseUrl);
  assert.deepEqual(foreign, [], 'requests to another origin');
  for (const file of ['/apps/live/', '/apps/live/app.js', '/apps/live/app.css', '/apps/live/api/whoami', '/apps/live/api/echo',
    '/shell/luigi-client/2.31.0/luigi-client.js']) {
    assert.ok(requested.includes(portico.baseUrl + file), `${file} not requested; requested: ${requested.join(', ')}`);
  }
  assert.deepEqual(websockets, [`${portico.baseUrl.replace('http', 'ws')}/apps/live/ws`]);

  // What the upstream saw: everything below its base path, every request with dev's identity, none
  // with portico's session cookie, the WebSocket handshake included.
  const seen = upstream.requests;
  for (const wanted of ['GET /base/', 'GET /base/app.js', 'GET /base/app.css', 'GET /base/api/whoami', 'POST /base/api/echo', 'GET /base/ws']) {
    assert.ok(seen.some((r) => `${r.method} ${r.path}` === wanted), `upstream did not get ${wanted}: ${seen.map((r) => `${r.method} ${r.path}`)}`);
  }
  for (const r of seen) {
    assert.ok(r.path.startsWith('/base/'), `outside the base path: ${r.path}`);
    assert.equal(r.headers['x-portico-user'], 'dev', `${r.method} ${r.path}`);
    assert.equal(r.headers['x-portico-roles'], 'developer', `${r.method} ${r.path}`);
    assert.equal(r.headers['x-portico-app'], 'live', `${r.method} ${r.path}`);
    assert.equal(r.headers['x-portico-tenant'], 'acme', `${r.method} ${r.path}`);
    assert.equal(r.headers['x-portico-groups'], 'eng', `${r.method} ${r.path}`);
    assert.equal(r.headers['x-forwarded-host'], new URL(portico.baseUrl).host, `${r.method} ${r.path}`);
    assert.equal(r.headers['x-portico-csrf'], undefined, `${r.method} ${r.path}`);
    assert.doesNotMatch(r.headers.cookie ?? '', /portico_session/, `${r.method} ${r.path}`);
    assert.doesNotMatch(r.headers.cookie ?? '', /app_pref/, `${r.method} ${r.path}`);
  }
  assert.equal(seen.filter((r) => r.websocket).length, 1);

  assert.deepEqual(pageErrors, []);
  await context.close();
});

test('a user without the role gets 403 for the app, and the upstream hears nothing of them', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'nobody', '/');
  // The shell's navigation does not offer the app.
  const shellConfig = await (await context.request.get(`${portico.baseUrl}/shell/config.json`)).json();
  assert.doesNotMatch(JSON.stringify(shellConfig.luigi.navigation.nodes), /\/apps\/live|"nav-live"/);
  const before = upstream.requests.length;

  // A navigation to the app itself.
  const response = await page.goto(`${portico.baseUrl}/apps/live/`);
  assert.equal(response.status(), 403);
  // The API, the POST and the WebSocket, from a page of the portal's origin.
  await page.goto(`${portico.baseUrl}/`);
  await page.getByTestId('luigi-topnav-profile-btn').waitFor({ timeout: 15000 });
  const outcome = await page.evaluate(async () => {
    const get = await fetch('/apps/live/api/whoami');
    const post = await fetch('/apps/live/api/echo', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"message":"x"}',
    });
    const ws = await new Promise((resolve) => {
      const socket = new WebSocket(location.origin.replace('http', 'ws') + '/apps/live/ws');
      const timer = setTimeout(() => { socket.close(); resolve('timeout'); }, 5000);
      socket.onopen = () => { clearTimeout(timer); socket.close(); resolve('open'); };
      socket.onerror = () => { clearTimeout(timer); resolve('error'); };
    });
    return { get: get.status, post: post.status, ws };
  });
  assert.deepEqual(outcome, { get: 403, post: 403, ws: 'error' });

  assert.equal(upstream.requests.length, before, 'the upstream got requests while only nobody was active');
  assert.deepEqual(upstream.requests.filter((r) => r.headers['x-portico-user'] === 'nobody'), []);
  await context.close();
});
