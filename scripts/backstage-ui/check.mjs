// The browser half of scripts/check-backstage-ui.sh (run it through that script, which builds the
// frontend first). Starts the test Backstage backend (tests/backstage/start.mjs), serve.mjs on the built
// frontend, and portico on 127.0.0.1:<port> with Backstage's UI mounted at /backstage/; signs in as eve
// (dev sign-in) in a headless Chromium, opens /backstage/ at the top level and checks that the real
// Backstage UI signs in (ProxiedSignInPage, provider `portico`) and lists acme's catalog, not globex's.
// USE: node check.mjs <dist dir> <port> <work dir>    exits 0 on success; stops everything it started.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const [dist, port, work] = process.argv.slice(2);
if (!dist || !port || !work) {
  console.error('usage: node check.mjs <dist dir> <port> <work dir>');
  process.exit(2);
}
const { chromium } = await import(path.join(repo, 'node_modules', 'playwright-core', 'index.mjs'));
const portico = process.env.PORTICO_BIN || path.join(repo, 'target', 'debug', 'portico');
const base = `http://127.0.0.1:${port}`;
const screenshot = path.join(repo, 'target', 'e2e', 'backstage-ui-real.png');
const log = (message) => console.error(`[check-backstage-ui] ${message}`);

const children = [];
let browser;
async function stopAll() {
  if (browser) await browser.close().catch(() => {});
  for (const child of children.reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    child.kill('SIGTERM');
    const exited = await Promise.race([once(child, 'exit').then(() => true), new Promise((r) => setTimeout(r, 6000))]);
    if (!exited) child.kill('SIGKILL');
  }
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    await stopAll();
    process.exit(1);
  });
}

/** Spawns `command` with a held-open stdin; resolves with its first stdout line matching `pattern`
 * (or stderr, with `fromStderr`), within `timeoutMs`. */
async function start(name, command, args, { pattern, timeoutMs, fromStderr = false, env = {} }) {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  children.push(child);
  let output = '';
  const watched = fromStderr ? child.stderr : child.stdout;
  const other = fromStderr ? child.stdout : child.stderr;
  other.on('data', (chunk) => process.env.CHECK_VERBOSE && process.stderr.write(chunk));
  const lines = createInterface({ input: watched });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within ${timeoutMs / 1000}s:\n${output.slice(-4000)}`)), timeoutMs);
    other.on('data', (chunk) => { output += chunk; });
    lines.on('line', (line) => {
      output += `${line}\n`;
      if (process.env.CHECK_VERBOSE) process.stderr.write(`${line}\n`);
      const match = pattern.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve({ child, match, output: () => output });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before it was ready:\n${output.slice(-4000)}`));
    });
  });
}

const failures = [];
try {
  // Backstage's auth backend (0.30) leaves the `ent` (ownership) claim out of user tokens by default
  // (auth.omitIdentityTokenOwnershipClaim); CHECK_BACKSTAGE_ENT_CLAIM=1 puts it back, to check the
  // rest of the UI while portico's refresh answer depends on that claim.
  const env = {};
  if (process.env.CHECK_BACKSTAGE_ENT_CLAIM === '1') {
    env.BACKSTAGE_EXTRA_CONFIG = path.join(work, 'backstage-ent-claim.yaml');
    writeFileSync(env.BACKSTAGE_EXTRA_CONFIG, 'auth:\n  omitIdentityTokenOwnershipClaim: false\n');
    log('with auth.omitIdentityTokenOwnershipClaim: false in Backstage (CHECK_BACKSTAGE_ENT_CLAIM=1)');
  }
  log('starting the test Backstage backend (tests/backstage/start.mjs)...');
  const backstage = await start('the Backstage backend', process.execPath, [path.join(repo, 'tests', 'backstage', 'start.mjs')], {
    pattern: /^(\{.*"sign_in_key".*\})$/,
    timeoutMs: 150000,
    env,
  });
  const ready = JSON.parse(backstage.match[1]);
  log(`Backstage at ${ready.url}`);

  const files = await start('serve.mjs', process.execPath, [path.join(repo, 'scripts', 'backstage-ui', 'serve.mjs'), dist], {
    pattern: /^(\{"url".*\})$/,
    timeoutMs: 10000,
  });
  const filesUrl = JSON.parse(files.match[1]).url;
  log(`the built frontend served at ${filesUrl}`);

  const config = path.join(work, 'portico.yaml');
  writeFileSync(config, `# Written by scripts/backstage-ui/check.mjs for one run.
version: 1
server: { signing_keys: [${JSON.stringify(ready.sign_in_key)}] }
tenants:
  acme:
    hosts: ["127.0.0.1"]
    auth:
      dev_sign_in:
        users:
          - { id: eve, name: Eve, email: eve@acme.example, groups: [acme-eng] }
          - { id: carol, name: Carol, email: carol@acme.example, groups: [acme-staff] }
    roles:
      developer: { groups: [acme-eng] }
      staff: { groups: [acme-staff] }
    apps:
      - { id: docs, label: Docs, access: { roles: [developer, staff] }, static: "embedded:demo" }
    backstage:
      url: ${JSON.stringify(ready.url)}
      identity: user
      sign_in: assertion
      namespaces: [acme, acme-labs]
      shared_namespaces: [common]
      user_namespace: acme-labs
      plugins: [catalog]
      permissions:
        - { roles: [developer], allow: [catalog.entity.read] }
      ui:
        url: ${JSON.stringify(filesUrl)}
        access: { roles: [developer] }
`);
  const checked = spawnSync(portico, ['check', config], { encoding: 'utf8' });
  if (checked.status !== 0) throw new Error(`portico check ${config} failed:\n${checked.stdout}${checked.stderr}`);
  const server = await start('portico', portico, ['serve', '--config', config, '--listen', `127.0.0.1:${port}`, '--admin-listen', '127.0.0.1:0'], {
    pattern: /serving on (http:\/\/127\.0\.0\.1:\d+)/,
    timeoutMs: 30000,
    fromStderr: true,
    env: { NO_COLOR: '1', RUST_LOG: 'info' },
  });
  log(`portico at ${server.match[1]}`);

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const seen = [];
  page.on('response', (response) => {
    const url = new URL(response.url());
    if (url.origin === base) seen.push(`${response.request().method()} ${url.pathname}${url.search} -> ${response.status()}`);
  });
  page.on('console', (message) => {
    if (message.type() === 'error') seen.push(`console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => seen.push(`page error: ${error.message}`));

  // Dev sign-in as eve.
  await page.goto(`${base}/auth/login?return_to=%2Fhome`);
  await page.getByTestId('sign-in-eve').click();
  await page.waitForURL((url) => !url.pathname.startsWith('/auth/'), { timeout: 15000 });
  log(`signed in as eve, at ${page.url()}`);

  // Backstage's UI, at the top level.
  const refresh = page.waitForResponse((r) => new URL(r.url()).pathname === '/backstage/api/auth/portico/refresh', { timeout: 60000 });
  await page.goto(`${base}/backstage/`);
  const refreshed = await refresh.catch(() => null);
  if (!refreshed) failures.push('the UI never called /backstage/api/auth/portico/refresh');
  else if (refreshed.status() !== 200) failures.push(`/backstage/api/auth/portico/refresh answered ${refreshed.status()}: ${await refreshed.text().catch(() => '')}`);
  else {
    const answer = await refreshed.json().catch(() => ({}));
    log(`refresh: 200 ${JSON.stringify(answer).slice(0, 400)}`);
    const identity = answer?.backstageIdentity?.identity ?? {};
    if (!Array.isArray(identity.ownershipEntityRefs)) {
      failures.push(`/backstage/api/auth/portico/refresh answered backstageIdentity.identity.ownershipEntityRefs = ${JSON.stringify(identity.ownershipEntityRefs)}; ProxiedSignInPage's schema requires an array of strings, so the UI shows "You do not appear to be signed in"`);
    }
  }

  const listed = await page.getByText(/(^|\/)payments-api$/).first().waitFor({ timeout: 60000 }).then(() => true, () => false);
  await page.waitForTimeout(1500); // the table settles
  mkdirSync(path.dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  log(`screenshot: ${screenshot} (at ${page.url()})`);
  if (!listed) failures.push('the catalog list never showed payments-api');
  if (await page.getByText(/inventory-api/).count()) failures.push('globex\'s inventory-api is listed');
  if (!new URL(page.url()).pathname.startsWith('/backstage/catalog')) failures.push(`the UI is at ${page.url()}, not /backstage/catalog`);
  const body = await page.locator('body').innerText();
  log(`page text (start): ${body.slice(0, 600).replace(/\s+/g, ' ')}`);
  for (const name of ['billing-ui', 'design-system']) {
    if (!body.includes(name)) failures.push(`${name} is not listed`);
  }
  const bad = seen.filter((line) => / -> [45]\d\d$/.test(line) || line.startsWith('console error') || line.startsWith('page error'));
  log(`requests to portico (${seen.length}):\n  ${seen.join('\n  ')}`);
  if (bad.length) log(`refused or failing (${bad.length}):\n  ${bad.join('\n  ')}`);
} catch (error) {
  failures.push(error.stack || String(error));
} finally {
  await stopAll();
}
if (failures.length) {
  console.error(`check-backstage-ui: FAILED\n- ${failures.join('\n- ')}`);
  process.exit(1);
}
console.error('check-backstage-ui: OK: the real Backstage UI signed in behind portico at /backstage/ and listed acme\'s catalog only');
process.exit(0);
