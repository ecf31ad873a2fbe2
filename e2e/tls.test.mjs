// End-to-end over HTTPS: portico serves TLS with a certificate from a CA this test makes (openssl CLI),
// Chromium trusts exactly that leaf's public key (--ignore-certificate-errors-spki-list, a pin check,
// not "ignore all errors"), a user who types the plain http address is redirected to https, signs in with
// dev sign-in and sees the Luigi shell, over HTTP/2, with HSTS. A screenshot of the shell is saved in
// target/e2e/tls-shell.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { CHROMIUM, freePort, porticoBinary } from './harness.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HOST = 'portal.localhost'; // Chromium resolves *.localhost to loopback by itself

let dir;
let port;
let redirectPort;
let portico;
let browser;
let spki;

/** A CA and a leaf for HOST signed by it, with openssl; returns the leaf's SPKI pin (base64 SHA-256). */
function makeCertificates() {
  const run = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=portico e2e CA', '-keyout', 'ca.key', '-out', 'ca.pem');
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${HOST}`,
    '-keyout', 'leaf.key', '-out', 'leaf.csr');
  writeFileSync(path.join(dir, 'leaf.ext'), `subjectAltName=DNS:${HOST}\nextendedKeyUsage=serverAuth\n`);
  run('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
    '-extfile', 'leaf.ext', '-out', 'leaf.pem');
  writeFileSync(path.join(dir, 'chain.pem'), readFileSync(path.join(dir, 'leaf.pem'), 'utf8') + readFileSync(path.join(dir, 'ca.pem'), 'utf8'));
  const leaf = new X509Certificate(readFileSync(path.join(dir, 'leaf.pem')));
  const der = leaf.publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}

/** Starts `portico serve` on the config; resolves once it says it serves https. */
async function startPortico(config) {
  const child = spawn(porticoBinary(), ['serve', '--config', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', RUST_LOG: 'info' },
  });
  let log = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`portico did not start within 20s:\n${log}`)), 20000);
    child.stderr.on('data', (chunk) => {
      log += chunk.toString();
      if (/serving on https:\/\/127\.0\.0\.1:\d+/.test(log)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`portico exited with ${code} before serving:\n${log}`));
    });
  });
  return {
    log: () => log,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await Promise.race([once(child, 'exit'), new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    },
  };
}

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'portico-e2e-tls-'));
  spki = makeCertificates();
  port = await freePort();
  redirectPort = await freePort();
  const config = path.join(dir, 'portico.yaml');
  writeFileSync(config, `
version: 1
server:
  listen: 127.0.0.1:${port}
  redirect_listen: 127.0.0.1:${redirectPort}
  tls: { cert: chain.pem, key: leaf.key }
tenants:
  acme:
    hosts: [${HOST}]
    public_origin: https://${HOST}:${port}
    branding: { title: Acme over TLS }
    auth:
      dev_sign_in:
        users:
          - { id: dev, name: Dev Eloper, email: dev@acme.example, groups: [acme-eng] }
    roles:
      developer: { groups: [acme-eng] }
    apps:
      - { id: rockets, label: Rocket Builds, category: Build, access: { roles: [developer] }, static: "embedded:demo" }
`);
  portico = await startPortico(config);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--ignore-certificate-errors-spki-list=${spki}`,
    ],
  });
});

after(async () => {
  await browser?.close();
  await portico?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a user typing the plain address lands on https, signs in and sees the shell', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));

  const first = await page.goto(`http://${HOST}:${redirectPort}/home`);
  assert.equal(new URL(page.url()).origin, `https://${HOST}:${port}`, 'redirected to https');
  assert.match(page.url(), /\/auth\/login\?return_to=/);
  assert.ok(first, 'a response');
  assert.equal(first.headers()['strict-transport-security'], 'max-age=31536000');
  const security = await first.securityDetails();
  assert.equal(security?.subjectName, HOST);
  assert.match(security?.protocol ?? '', /TLS 1\.[23]/);

  await page.getByTestId('dev-sign-in-warning').waitFor({ timeout: 10000 });
  await page.getByTestId('sign-in-dev').click();
  await page.getByTestId('luigi-topnav-profile-btn').waitFor({ timeout: 15000 });
  assert.equal(new URL(page.url()).origin, `https://${HOST}:${port}`);
  assert.equal(new URL(page.url()).pathname, '/home');

  // The session cookie is a __Host- cookie: Secure, on this https origin only.
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name.includes('portico_session'));
  assert.ok(session, `cookies: ${cookies.map((c) => c.name)}`);
  assert.ok(session.name.startsWith('__Host-') && session.secure, JSON.stringify(session));

  // HTTP/2 was negotiated by ALPN.
  const protocol = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
  assert.equal(protocol, 'h2');

  await page.getByTestId('nav-rockets').waitFor({ timeout: 10000 });
  mkdirSync(path.join(root, 'target', 'e2e'), { recursive: true });
  await page.screenshot({ path: path.join(root, 'target', 'e2e', 'tls-shell.png') });
  assert.deepEqual(errors, []);
  await context.close();
});

test('a browser that does not trust the certificate is refused', async () => {
  const strict = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await strict.newPage();
    await assert.rejects(page.goto(`https://${HOST}:${port}/`), /ERR_CERT/);
  } finally {
    await strict.close();
  }
});
