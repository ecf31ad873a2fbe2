// Starts the test Backstage backend (index.js) for portico's integration tests. Loopback + plain http only.
//
// USE
//   node tests/backstage/start.mjs [port]        (or BACKSTAGE_PORT=<port>; default: a free loopback port)
//   Installs nothing: run scripts/install-backstage.sh first (it makes tests/backstage/node_modules).
//   Waits (at most 120 s) until /.backstage/health/v1/readiness is 200 AND the catalog holds every entity of
//   catalog.yaml, then prints ONE line to stdout:
//     {"url":"http://127.0.0.1:<port>","token":"portico-service-token-for-tests","jwks_port":<port>,
//      "sign_in_key":"<path>","keys_dir":"<dir>"}
//   (token: a full-access static token, subject `portico`; jwks_port: where Backstage fetches the JWKS
//   of portico's signed service tokens, for a test to run a portico on; sign_in_key: the PEM of a key the
//   `portico` auth provider trusts, for test porticos' `server.signing_keys`; keys_dir: where that key
//   lies, every *.pem there being trusted) and runs until its stdin reaches EOF, or
//   SIGTERM/SIGINT. Spawn it with a *piped* stdin and keep the write end open (Rust: Stdio::piped() and keep
//   the ChildStdin alive): a parent that dies closes the pipe and so always stops it. On exit it stops the
//   backend (SIGTERM, SIGKILL after 5 s); the backend also exits by itself when this script's pipe to it
//   closes, so no node process outlives the test run even if this script is SIGKILLed.
//   The backend's logs, and this script's, go to stderr; a failed start exits 1 with the reason there.
//
// WHAT IS IN IT: see app-config.yaml (static tokens, oauth2Proxy sign-in resolvers), catalog.yaml (namespaces
// acme, globex, common, default, initech) and index.js (the `whoami` test plugin).

import { spawn } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const TOKEN = 'portico-service-token-for-tests';
const START_TIMEOUT_MS = 120_000;
const EXPECTED_ENTITIES = [
  'user:acme/alice', 'user:acme/bob', 'user:globex/hank', 'user:default/guest',
  'group:acme/platform', 'group:globex/ops',
  'component:acme/payments-api', 'component:acme/billing-ui', 'component:globex/inventory-api',
  'system:acme/payments', 'system:globex/warehouse',
  'api:acme/payments-rest', 'api:acme/billing-events', 'api:acme/ledger-grpc',
  'api:globex/inventory-rest', 'api:globex/orders-events',
  'component:common/design-system', 'api:common/audit-events', 'user:initech/mole',
  'component:acme-labs/doomed-widget', 'component:acme-labs/sturdy-widget',
  'user:acme-labs/dora', 'user:acme-labs/eve', 'user:acme-labs/carol', 'user:globex-rbac/hank',
];

function log(message) {
  process.stderr.write(`[backstage start.mjs] ${message}\n`);
}

async function freePort() {
  const server = createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function get(url, headers = {}) {
  try {
    const response = await fetch(url, { headers, signal: AbortSignal.timeout(5000) });
    return { status: response.status, body: await response.text() };
  } catch {
    return { status: 0, body: '' };
  }
}

function entityRef(entity) {
  return `${entity.kind}:${entity.metadata.namespace ?? 'default'}/${entity.metadata.name}`.toLowerCase();
}

if (!existsSync(join(here, 'node_modules', '@backstage', 'backend-defaults'))) {
  log('tests/backstage/node_modules is missing: run scripts/install-backstage.sh first');
  process.exit(1);
}

const requested = Number(process.argv[2] ?? process.env.BACKSTAGE_PORT ?? 0);
const port = requested > 0 ? requested : await freePort();
const url = `http://127.0.0.1:${port}`;
// Where the test of portico's signed service tokens runs the portico whose JWKS Backstage trusts.
const jwksPort = await freePort();

// The keys the `portico` auth provider trusts for sign-in assertions: every *.pem in `keysDir`, served
// as a JWKS (kid: the RFC 7638 thumbprint, as portico computes it) on `signInJwksPort`. One key is made
// here, for test porticos to sign with (`server.signing_keys`); a test may add more (a rotation).
const keysDir = mkdtempSync(join(tmpdir(), 'portico-backstage-keys-'));
const signInKey = join(keysDir, 'portico.pem');
writeFileSync(
  signInKey,
  generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
);
function publicJwk(pem) {
  const { kty, crv, x, y } = createPublicKey(pem).export({ format: 'jwk' });
  const kid = createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url');
  return { kty, crv, x, y, kid, alg: 'ES256', use: 'sig' };
}
const jwksServer = createHttpServer((req, res) => {
  if (req.url !== '/.well-known/jwks.json') {
    res.writeHead(404).end();
    return;
  }
  const keys = [];
  for (const name of readdirSync(keysDir).filter((n) => n.endsWith('.pem')).sort()) {
    try {
      keys.push(publicJwk(readFileSync(join(keysDir, name), 'utf8')));
    } catch {
      // a file being written; the next fetch sees it
    }
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
});
await new Promise((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
const signInJwksPort = jwksServer.address().port;
process.on('exit', () => rmSync(keysDir, { recursive: true, force: true }));

// --preserve-symlinks: portico's modules are linked in from integrations/backstage, and their imports
// of @backstage packages must resolve in this directory's node_modules, as in an installed backend.
// BACKSTAGE_EXTRA_CONFIG: a config laid over app-config.yaml (the demo's: demo/backstage/run.sh).
const configs = ['--config', join(here, 'app-config.yaml')];
if (process.env.BACKSTAGE_EXTRA_CONFIG) configs.push('--config', process.env.BACKSTAGE_EXTRA_CONFIG);
const backend = spawn(process.execPath, ['--preserve-symlinks', 'index.js', ...configs], {
  cwd: here,
  env: {
    ...process.env,
    BACKSTAGE_PORT: String(port),
    PORTICO_JWKS_PORT: String(jwksPort),
    PORTICO_SIGN_IN_JWKS_PORT: String(signInJwksPort),
    BACKSTAGE_CATALOG: join(here, 'catalog.yaml'),
    BACKSTAGE_EXIT_WITH_STDIN: '1',
    NODE_ENV: 'development',
  },
  // Backstage logs to stdout; this script's stdout is only for the ready line.
  stdio: ['pipe', process.stderr, process.stderr],
});
let backendExited = false;
const backendExit = new Promise((resolve) => {
  backend.once('exit', (code, signal) => {
    backendExited = true;
    resolve({ code, signal });
  });
});

let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(code), 8000).unref(); // never hang on shutdown
  if (!backendExited) {
    backend.kill('SIGTERM');
    const killed = await Promise.race([backendExit, sleep(5000).then(() => null)]);
    if (!killed) {
      backend.kill('SIGKILL');
      await backendExit;
    }
  }
  process.exit(code);
}
process.on('SIGTERM', () => stop(0));
process.on('SIGINT', () => stop(0));
process.stdin.on('end', () => stop(0));
process.stdin.on('error', () => stop(0));
process.stdin.resume(); // flowing mode, so 'end' fires when the parent closes the pipe
backendExit.then(({ code, signal }) => {
  if (!stopping) {
    log(`the backend exited early (code ${code}, signal ${signal})`);
    stop(1);
  }
});

const started = Date.now();
const deadline = started + START_TIMEOUT_MS;
let missing = EXPECTED_ENTITIES;
let ready = false;
while (Date.now() < deadline && !stopping) {
  if (!ready) {
    ready = (await get(`${url}/.backstage/health/v1/readiness`)).status === 200;
    if (ready) log(`readiness 200 after ${Date.now() - started} ms`);
  }
  if (ready) {
    const entities = await get(`${url}/api/catalog/entities?fields=kind,metadata.namespace,metadata.name`, {
      authorization: `Bearer ${TOKEN}`,
    });
    if (entities.status === 200) {
      const have = new Set(JSON.parse(entities.body).map(entityRef));
      missing = EXPECTED_ENTITIES.filter((ref) => !have.has(ref));
      if (missing.length === 0) break;
    }
  }
  await sleep(250);
}
if (stopping) {
  await new Promise(() => {}); // stop() exits
}
if (!ready || missing.length > 0) {
  log(ready ? `catalog still misses ${missing.join(', ')} after 120 s` : 'not ready after 120 s');
  await stop(1);
}
log(`catalog complete after ${Date.now() - started} ms`);
process.stdout.write(
  `${JSON.stringify({ url, token: TOKEN, jwks_port: jwksPort, sign_in_key: signInKey, keys_dir: keysDir })}\n`,
);
