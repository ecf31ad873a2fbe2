// The load of bench/soak.sh (see bench/README.md): sign-ins through the real OpenID Provider and
// proxied requests, all through the load balancer in front of the portico instances, for a bounded
// time; every ~15 s one line of counters, errors and both instances' RSS; a summary at the end.
//
// Usage: node bench/soak-load.mjs '<json>'   with
//   { base, issuer, sign_in: "oidc" | "dev", duration_s, rate, sign_in_rate, sign_in_workers, report_every_s,
//     accounts: [..], load_accounts: [..], pids: { name: pid, .. }, redis_port }
// Exits 0 when nothing failed, 1 otherwise. Loopback only: it refuses a base or issuer elsewhere.
//
// A sign-in is what a browser does: /auth/login at the portal, the OP's login form (POST), back to the
// portal's callback (with `sign_in: "dev"`, the dev sign-in form's POST instead); then the shell config and a proxied page with the new session, and for every other
// one a logout (POST /auth/logout with the CSRF token). The proxied traffic is GETs of the 1 KiB file
// (/apps/echo/file1k) and of /shell/config.json with long-lived sessions of `load_accounts`, paced at
// `rate` requests per second (at most 64 in flight). Visits are paced at `sign_in_rate` per second in
// all (each of the `sign_in_workers` starts one visit after the other, never two at once).

import net from 'node:net';
import { readFileSync } from 'node:fs';

const options = JSON.parse(process.argv[2] ?? '{}');
const { base, issuer } = options;
const devSignIn = options.sign_in === 'dev';
for (const url of devSignIn ? [base] : [base, issuer]) {
  if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(url ?? '')) {
    console.error(`soak-load: ${url} is not a loopback origin (http://127.0.0.1:<port>)`);
    process.exit(2);
  }
}
const durationMs = options.duration_s * 1000;
const reportMs = (options.report_every_s ?? 15) * 1000;
const started = Date.now();
const deadline = started + durationMs;
const REQUEST_TIMEOUT_MS = 10_000;

const counts = {
  sign_ins: 0,
  sign_in_failures: 0,
  logouts: 0,
  proxied: 0,
  proxied_failures: 0,
};
/** What failed, by a short description, with how often. */
const errors = new Map();
function fail(kind, what) {
  counts[kind] += 1;
  const key = String(what).slice(0, 200);
  errors.set(key, (errors.get(key) ?? 0) + 1);
}

// One cookie jar per origin, as a browser keeps them.
class Browser {
  constructor() { this.jars = new Map(); }

  cookieHeader(url) {
    const jar = this.jars.get(new URL(url).origin);
    if (!jar || jar.size === 0) return undefined;
    return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  remember(url, response) {
    const origin = new URL(url).origin;
    const jar = this.jars.get(origin) ?? new Map();
    this.jars.set(origin, jar);
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const attrs = attributes.join(';').toLowerCase();
      if (value === '' || attrs.includes('max-age=0') || attrs.includes('expires=thu, 01 jan 1970')) {
        jar.delete(name);
      } else {
        jar.set(name, value);
      }
    }
  }

  cookie(origin, name) { return this.jars.get(origin)?.get(name); }

  async request(method, url, { body, headers = {} } = {}) {
    const cookies = this.cookieHeader(url);
    const response = await fetch(url, {
      method,
      redirect: 'manual',
      body,
      headers: { ...headers, ...(cookies ? { cookie: cookies } : {}) },
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    this.remember(url, response);
    const text = await response.text();
    const location = response.headers.get('location');
    return { status: response.status, location: location && new URL(location, url).toString(), text };
  }
}

function expect(step, page, status) {
  if (page.status !== status) {
    throw new Error(`${step}: ${page.status} (expected ${status}) ${page.text.slice(0, 120).replace(/\s+/g, ' ')}`);
  }
}

/** Signs `account` in through the balancer and the OP; returns the browser holding the session. */
async function signIn(account) {
  const browser = new Browser();
  const navigate = { accept: 'text/html', 'sec-fetch-mode': 'navigate' };
  if (devSignIn) {
    const form = new URLSearchParams({ user: account, return_to: '/' }).toString();
    const picked = await browser.request('POST', `${base}/auth/dev-login`, {
      body: form,
      headers: { ...navigate, 'content-type': 'application/x-www-form-urlencoded', origin: base },
    });
    expect('portal /auth/dev-login', picked, 303);
    if (!browser.cookie(base, 'portico_session')) throw new Error('dev sign-in set no session cookie');
    return browser;
  }
  const login = await browser.request('GET', `${base}/auth/login?return_to=%2F`, { headers: navigate });
  expect('portal /auth/login', login, 303);
  const authorize = await browser.request('GET', login.location, { headers: navigate });
  expect('OP /auth', authorize, 303);
  const interaction = authorize.location;
  const form = new URLSearchParams({ prompt: 'login', login: account, password: 'any' }).toString();
  const submitted = await browser.request('POST', interaction, {
    body: form,
    headers: { ...navigate, 'content-type': 'application/x-www-form-urlencoded', origin: issuer },
  });
  expect('OP login form', submitted, 303);
  let next = submitted.location;
  for (let hops = 0; !next.startsWith(`${base}/`); hops += 1) {
    if (hops > 5) throw new Error(`OP: too many redirects, at ${next}`);
    const page = await browser.request('GET', next, { headers: navigate });
    expect(`OP ${new URL(next).pathname}`, page, 303);
    next = page.location;
  }
  if (!next.startsWith(`${base}/auth/callback`)) throw new Error(`OP sent the browser to ${next}`);
  const landed = await browser.request('GET', next, { headers: navigate });
  expect('portal /auth/callback', landed, 303);
  if (!browser.cookie(base, 'portico_session')) throw new Error('callback set no session cookie');
  return browser;
}

const api = { accept: 'application/json', 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors' };

/** One user's visit: sign in, the shell config, a proxied page, and every other time a logout. */
async function visit(account, logout) {
  const browser = await signIn(account);
  const config = await browser.request('GET', `${base}/shell/config.json`, { headers: api });
  expect('shell config after sign-in', config, 200);
  const page = await browser.request('GET', `${base}/apps/echo/file1k`, { headers: api });
  expect('proxied page after sign-in', page, 200);
  if (logout) {
    const csrf = JSON.parse(config.text).portico.csrfToken;
    const out = await browser.request('POST', `${base}/auth/logout`, {
      headers: { ...api, 'x-portico-csrf': csrf },
    });
    expect('logout', out, 200);
    const after = await browser.request('GET', `${base}/auth/session`, { headers: api });
    expect('session after logout', after, 401);
    counts.logouts += 1;
  }
}

async function signInWorker(worker) {
  let n = 0;
  const intervalMs = (1000 * options.sign_in_workers) / options.sign_in_rate;
  let next = Date.now() + (worker * intervalMs) / options.sign_in_workers;
  while (Date.now() < deadline) {
    const wait = next - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    next = Math.max(next + intervalMs, Date.now());
    if (Date.now() >= deadline) break;
    const account = options.accounts[(worker + n * options.sign_in_workers) % options.accounts.length];
    try {
      await visit(account, n % 2 === 1);
      counts.sign_ins += 1;
    } catch (error) {
      fail('sign_in_failures', `sign-in as ${account}: ${error.message}`);
    }
    n += 1;
  }
}

async function proxiedLoad(sessions) {
  const paths = ['/apps/echo/file1k', '/apps/echo/file1k', '/shell/config.json'];
  let inFlight = 0;
  let owed = 0;
  let i = 0;
  const one = async () => {
    const browser = sessions[i % sessions.length];
    const path = paths[i % paths.length];
    i += 1;
    inFlight += 1;
    try {
      const page = await browser.request('GET', `${base}${path}`, { headers: api });
      if (page.status === 200) counts.proxied += 1;
      else fail('proxied_failures', `GET ${path}: ${page.status} ${page.text.slice(0, 100)}`);
    } catch (error) {
      fail('proxied_failures', `GET ${path}: ${error.cause?.code ?? error.message}`);
    } finally {
      inFlight -= 1;
    }
  };
  const tickMs = 10;
  let last = Date.now();
  while (Date.now() < deadline) {
    const now = Date.now();
    owed += (options.rate * (now - last)) / 1000; // timers fire late on a busy machine: count real time
    last = now;
    while (owed >= 1 && inFlight < 64) {
      owed -= 1;
      one();
    }
    owed = Math.min(owed, options.rate); // no burst after a stall
    await new Promise((resolve) => setTimeout(resolve, tickMs));
  }
  while (inFlight > 0) await new Promise((resolve) => setTimeout(resolve, tickMs));
}

function rssMiB(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
    return (kb / 1024).toFixed(1);
  } catch {
    return 'gone';
  }
}

/** One Redis command over a raw socket (INFO/DBSIZE); the reply's text, or '?' on trouble. */
function redis(...args) {
  return new Promise((resolve) => {
    const socket = net.connect(options.redis_port, '127.0.0.1');
    let data = '';
    const done = (value) => { socket.destroy(); resolve(value); };
    socket.setTimeout(2000, () => done('?'));
    socket.on('error', () => done('?'));
    socket.on('data', (chunk) => {
      data += chunk;
      if (data.startsWith(':')) { if (data.includes('\r\n')) done(data.slice(1, data.indexOf('\r\n'))); return; }
      const m = /^\$(\d+)\r\n/.exec(data);
      if (m && data.length >= m[0].length + Number(m[1])) done(data.slice(m[0].length, m[0].length + Number(m[1])));
    });
    socket.write(`*${args.length}\r\n${args.map((a) => `$${a.length}\r\n${a}\r\n`).join('')}`);
  });
}

let lastProxied = 0;
let lastReport = started;
async function report() {
  const now = Date.now();
  const elapsed = Math.round((now - started) / 1000);
  const rps = Math.round(((counts.proxied - lastProxied) * 1000) / Math.max(1, now - lastReport));
  lastProxied = counts.proxied;
  lastReport = now;
  const rss = Object.entries(options.pids).map(([name, pid]) => `${name} ${rssMiB(pid)}`).join(', ');
  const info = options.redis_port ? await redis('INFO', 'memory') : '';
  const used = /used_memory_human:(\S+)/.exec(info)?.[1] ?? '-';
  const keys = options.redis_port ? await redis('DBSIZE') : '-';
  const mm = String(Math.floor(elapsed / 60)).padStart(2, '0');
  const ss = String(elapsed % 60).padStart(2, '0');
  console.log(
    `[soak ${mm}:${ss}] sign-ins ${counts.sign_ins} (+${counts.sign_in_failures} failed, ${counts.logouts} logged out) · `
      + `proxied ${counts.proxied} (+${counts.proxied_failures} failed, ${rps}/s) · RSS MiB ${rss} · `
      + `redis ${used}, ${keys} keys`,
  );
}

async function main() {
  // The long-lived sessions of the proxied load: accounts the sign-in workers never use, so the
  // per-user session limit never ends them.
  const sessions = [];
  for (const account of options.load_accounts) {
    try {
      sessions.push(await signIn(account));
    } catch (error) {
      console.error(`soak-load: the load session of ${account} could not sign in: ${error.message}`);
      process.exit(1);
    }
  }
  await report();
  const timer = setInterval(report, reportMs);
  const workers = [];
  for (let w = 0; w < options.sign_in_workers; w += 1) workers.push(signInWorker(w));
  workers.push(proxiedLoad(sessions));
  await Promise.all(workers);
  clearInterval(timer);
  await report();
  if (!devSignIn) {
    // The OP counts the refresh_token grants it answered: refreshes happened, and none was refused.
    try {
      const refreshes = await (await fetch(`${issuer}/__test/refreshes`)).json();
      console.log(`[soak] the OP answered ${refreshes.granted} refreshes and refused ${refreshes.refused}`);
      if (refreshes.refused > 0) fail('proxied_failures', `the OP refused ${refreshes.refused} refreshes`);
    } catch (error) {
      console.log(`[soak] could not ask the OP how many refreshes it answered: ${error.message}`);
    }
  }
  const failed = counts.sign_in_failures + counts.proxied_failures;
  const seconds = (Date.now() - started) / 1000;
  console.log(
    `[soak] done after ${seconds.toFixed(0)} s: ${counts.sign_ins} sign-ins (${counts.logouts} with logout), `
      + `${counts.proxied} proxied requests (${(counts.proxied / seconds).toFixed(0)}/s), ${failed} errors`,
  );
  for (const [what, n] of [...errors].sort((a, b) => b[1] - a[1])) console.log(`[soak] error ×${n}: ${what}`);
  process.exit(failed === 0 ? 0 : 1);
}

main();
