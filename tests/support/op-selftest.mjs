// Self-test of tests/support/op.mjs: drives the OP over plain HTTP exactly as the header
// of op.mjs documents (fetch with manual redirects + a tiny cookie jar).
// Run: node --test tests/support/op-selftest.mjs
import { strict as assert } from 'node:assert';
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';

import { startOp } from './op.mjs';

const T = { timeout: 5000 }; // per test
const CLIENT_ID = 'portico';
const CLIENT_SECRET = 'portico-secret';

let op;
let rp; // stands in for portico: only receives backchannel logout POSTs
let rpBase;
const backchannel = []; // { body } of each POST /backchannel
let onBackchannel = () => {};

before(async () => {
  rp = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    if (req.method === 'POST' && req.url === '/backchannel') {
      backchannel.push(new URLSearchParams(body));
      onBackchannel();
    }
    res.statusCode = 200;
    res.end();
  });
  rp.listen(0, '127.0.0.1');
  await once(rp, 'listening');
  rpBase = `http://127.0.0.1:${rp.address().port}`;
  op = await startOp({
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [`${rpBase}/auth/callback`],
      post_logout_redirect_uris: [`${rpBase}/logged-out`],
      backchannel_logout_uri: `${rpBase}/backchannel`,
    }],
  });
});

after(async () => {
  await op?.close();
  rp?.closeAllConnections();
  await new Promise((resolve) => (rp ? rp.close(resolve) : resolve()));
});

// --- helpers -----------------------------------------------------------------

// Cookie jar keyed by name; path/domain ignored (one host, names are unique enough).
class Jar {
  cookies = new Map();
  store(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]) < Date.now());
      if (!value || expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

async function http(jar, url, { method = 'GET', form, headers = {}, base = op.issuer } = {}) {
  const res = await fetch(new URL(url, base), {
    method,
    redirect: 'manual',
    signal: AbortSignal.timeout(2000),
    headers: {
      ...headers,
      ...(jar?.cookies.size ? { cookie: jar.header() } : {}),
      ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
    },
    body: form ? new URLSearchParams(form).toString() : undefined,
  });
  jar?.store(res);
  return { res, status: res.status, location: res.headers.get('location'), text: await res.text() };
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const decode = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url'));

async function verifyJwt(jwt) {
  const [h, p, s] = jwt.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  assert.equal(header.alg, 'RS256');
  const { keys } = await (await fetch(`${op.issuer}/jwks`, { signal: AbortSignal.timeout(2000) })).json();
  const jwk = keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, 'signing key published in jwks');
  const ok = verify('sha256', Buffer.from(`${h}.${p}`), createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(s, 'base64url'));
  assert.ok(ok, 'JWT signature verifies');
  return decode(jwt);
}

function authorizeUrl({ state, nonce, verifier, scope = 'openid profile email groups' }) {
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: `${rpBase}/auth/callback`,
    scope,
    state,
    nonce,
    ...(verifier ? {
      code_challenge: b64url(createHash('sha256').update(verifier).digest()),
      code_challenge_method: 'S256',
    } : {}),
  });
  return `/auth?${q}`;
}

// Steps 1-4 of the documented login; returns the code from the redirect to redirect_uri.
async function login(jar, account, base = op.issuer) {
  const state = b64url(randomBytes(12));
  const nonce = b64url(randomBytes(12));
  const verifier = b64url(randomBytes(32));

  const r1 = await http(jar, authorizeUrl({ state, nonce, verifier }), { base });
  assert.equal(r1.status, 303, r1.text);
  const m = r1.location.match(/^\/interaction\/([^/?]+)$/);
  assert.ok(m, `redirect to interaction, got ${r1.location}`);
  const uid = m[1];
  assert.ok(jar.cookies.has('_interaction') && jar.cookies.has('_interaction_resume'));

  const r2 = await http(jar, r1.location, { base });
  assert.equal(r2.status, 200);
  assert.match(r2.text, /name="login"/);
  assert.match(r2.text, /name="password"/);

  const r3 = await http(jar, `/interaction/${uid}`, {
    method: 'POST', form: { prompt: 'login', login: account, password: 'anything' }, base,
  });
  assert.equal(r3.status, 303, r3.text);
  assert.equal(r3.location, `${base}/auth/${uid}`);

  const r4 = await http(jar, r3.location, { base });
  assert.equal(r4.status, 303, r4.text);
  const cb = new URL(r4.location);
  assert.equal(`${cb.origin}${cb.pathname}`, `${rpBase}/auth/callback`);
  assert.equal(cb.searchParams.get('state'), state);
  assert.equal(cb.searchParams.get('iss'), base);
  assert.ok(jar.cookies.has('_session'), 'OP session cookie set');
  return { code: cb.searchParams.get('code'), nonce, verifier };
}

// A call to one of the OP's endpoints as the client (client_secret_basic).
async function asClient(path, form, base = op.issuer) {
  const basic = Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64');
  const r = await http(null, path, {
    method: 'POST', form, headers: { authorization: `Basic ${basic}` }, base,
  });
  return { status: r.status, body: r.text ? JSON.parse(r.text) : undefined };
}

async function token(form, base = op.issuer) {
  return asClient('/token', form, base);
}

// --- tests (run in order, sharing state) ---------------------------------------

const devJar = new Jar();
let devTokens;

test('discovery', T, async () => {
  const r = await http(null, '/.well-known/openid-configuration');
  assert.equal(r.status, 200);
  const d = JSON.parse(r.text);
  assert.equal(d.issuer, op.issuer);
  assert.equal(d.authorization_endpoint, `${op.issuer}/auth`);
  assert.equal(d.token_endpoint, `${op.issuer}/token`);
  assert.equal(d.end_session_endpoint, `${op.issuer}/session/end`);
  assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
  assert.equal(d.backchannel_logout_supported, true);
  assert.equal(d.backchannel_logout_session_supported, true);
  for (const s of ['openid', 'profile', 'email', 'groups', 'offline_access']) assert.ok(d.scopes_supported.includes(s), s);
  for (const c of ['groups', 'realm_access', 'name', 'email']) assert.ok(d.claims_supported.includes(c), c);
});

test('code + PKCE login as dev; claims in ID token; refresh token issued', T, async () => {
  const { code, nonce, verifier } = await login(devJar, 'dev');
  const r = await token({
    grant_type: 'authorization_code', code, redirect_uri: `${rpBase}/auth/callback`, code_verifier: verifier,
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.ok(r.body.access_token && r.body.refresh_token, 'access + refresh token');
  assert.equal(r.body.expires_in, 3600);
  const id = await verifyJwt(r.body.id_token);
  assert.equal(id.iss, op.issuer);
  assert.equal(id.aud, CLIENT_ID);
  assert.equal(id.sub, 'dev');
  assert.equal(id.nonce, nonce);
  assert.equal(id.name, 'Dev Eloper');
  assert.equal(id.email, 'dev@acme.test');
  assert.deepEqual(id.groups, ['acme-eng']);
  assert.ok(id.sid, 'sid in ID token');
  assert.equal(id.exp - id.iat, 3600);
  devTokens = r.body;
});

test('SSO: a second authorize with the _session cookie skips the login form', T, async () => {
  const r = await http(devJar, authorizeUrl({ state: 'sso', nonce: 'n2', verifier: b64url(randomBytes(32)) }));
  assert.equal(r.status, 303);
  const cb = new URL(r.location);
  assert.equal(cb.pathname, '/auth/callback');
  assert.ok(cb.searchParams.get('code'));
});

test('unknown account: login form shows an error', T, async () => {
  const jar = new Jar();
  const r1 = await http(jar, authorizeUrl({ state: 's', nonce: 'n', verifier: b64url(randomBytes(32)) }));
  const r = await http(jar, r1.location, { method: 'POST', form: { prompt: 'login', login: 'mallory', password: 'x' } });
  assert.equal(r.status, 200);
  assert.match(r.text, /unknown account/);
});

test('authorize without code_challenge is rejected', T, async () => {
  const r = await http(new Jar(), authorizeUrl({ state: 'st', nonce: 'n' }));
  assert.equal(r.status, 303);
  const cb = new URL(r.location);
  assert.equal(cb.searchParams.get('error'), 'invalid_request');
  assert.match(cb.searchParams.get('error_description'), /PKCE/);
  assert.equal(cb.searchParams.get('state'), 'st');
});

test('refresh returns a new ID token that follows setGroups', T, async () => {
  let r = await token({ grant_type: 'refresh_token', refresh_token: devTokens.refresh_token });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  let id = await verifyJwt(r.body.id_token);
  assert.deepEqual(id.groups, ['acme-eng']);

  op.setGroups('dev', []);
  r = await token({ grant_type: 'refresh_token', refresh_token: r.body.refresh_token });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  id = decode(r.body.id_token);
  assert.deepEqual(id.groups, []);
  assert.equal(id.nonce, decode(devTokens.id_token).nonce, 'nonce carried over');

  // Same over HTTP, for non-Node callers.
  const bad = await fetch(`${op.issuer}/__test/accounts/dev/groups`, {
    method: 'POST', body: '{"not":"an array"}', signal: AbortSignal.timeout(2000),
  });
  assert.equal(bad.status, 400);
  const res = await fetch(`${op.issuer}/__test/accounts/dev/groups`, {
    method: 'POST', body: JSON.stringify(['acme-eng', 'x']), signal: AbortSignal.timeout(2000),
  });
  assert.equal(res.status, 204);
  const unknown = await fetch(`${op.issuer}/__test/accounts/nobody/groups`, {
    method: 'POST', body: '[]', signal: AbortSignal.timeout(2000),
  });
  assert.equal(unknown.status, 404);
  r = await token({ grant_type: 'refresh_token', refresh_token: r.body.refresh_token });
  assert.deepEqual(decode(r.body.id_token).groups, ['acme-eng', 'x']);
  devTokens = { ...r.body };
});

async function idTokenOf(account) {
  const { code, verifier } = await login(new Jar(), account);
  const r = await token({
    grant_type: 'authorization_code', code, redirect_uri: `${rpBase}/auth/callback`, code_verifier: verifier,
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return decode(r.body.id_token);
}

test('other accounts: admin, nogroups, nested (realm_access only)', T, async () => {
  const admin = await idTokenOf('admin');
  assert.deepEqual(admin.groups, ['acme-platform-admins', 'acme-eng']);
  assert.equal(admin.name, 'Ada Admin');
  assert.equal(admin.email, 'admin@acme.test');
  assert.deepEqual((await idTokenOf('nogroups')).groups, []);
  const nested = await idTokenOf('nested');
  assert.deepEqual(nested.realm_access, { roles: ['acme-eng'] });
  assert.equal('groups' in nested, false);
});

test('RP-initiated logout with backchannel logout', T, async () => {
  const arrived = new Promise((resolve, reject) => {
    onBackchannel = resolve;
    setTimeout(() => reject(new Error('no backchannel logout within 3s')), 3000).unref();
  });
  const q = new URLSearchParams({
    id_token_hint: devTokens.id_token,
    post_logout_redirect_uri: `${rpBase}/logged-out`,
    state: 'bye',
  });
  const r1 = await http(devJar, `/session/end?${q}`);
  assert.equal(r1.status, 200);
  assert.match(r1.text, /action="[^"]*\/session\/end\/confirm"/);
  const xsrf = r1.text.match(/name="xsrf" value="([^"]+)"/)[1];

  const r2 = await http(devJar, '/session/end/confirm', { method: 'POST', form: { xsrf, logout: 'yes' } });
  assert.equal(r2.status, 303, r2.text);
  assert.equal(r2.location, `${rpBase}/logged-out?state=bye`);
  assert.equal(devJar.cookies.has('_session'), false, 'session cookie cleared');

  await arrived;
  assert.equal(backchannel.length, 1);
  const logoutToken = backchannel[0].get('logout_token');
  const lt = await verifyJwt(logoutToken);
  assert.ok('http://schemas.openid.net/event/backchannel-logout' in lt.events);
  assert.equal(lt.sid, decode(devTokens.id_token).sid);
  assert.equal(lt.sub, 'dev');
  assert.equal(lt.aud, CLIENT_ID);

  // Logout revoked the grant: the refresh token is dead.
  const r = await token({ grant_type: 'refresh_token', refresh_token: devTokens.refresh_token });
  assert.equal(r.status, 400);
  assert.equal(r.body.error, 'invalid_grant');
});

test('opaque access tokens for a resource: introspection tells their claims, revocation ends them', T, async () => {
  const client = {
    client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`${rpBase}/auth/callback`],
  };
  const rs = await startOp({
    clients: [client], accessTokenAudience: 'urn:test:rs', accessTokenFormat: 'opaque',
  });
  const without = await startOp({ clients: [client], introspection: false });
  try {
    const d = JSON.parse((await http(null, '/.well-known/openid-configuration', { base: rs.issuer })).text);
    assert.equal(d.introspection_endpoint, `${rs.issuer}/token/introspection`);
    assert.equal(d.revocation_endpoint, `${rs.issuer}/token/revocation`);
    const none = JSON.parse((await http(null, '/.well-known/openid-configuration', { base: without.issuer })).text);
    assert.equal('introspection_endpoint' in none, false, 'introspection: false publishes none');

    const { code, verifier } = await login(new Jar(), 'dev', rs.issuer);
    const r = await token({
      grant_type: 'authorization_code', code, redirect_uri: `${rpBase}/auth/callback`, code_verifier: verifier,
    }, rs.issuer);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const accessToken = r.body.access_token;
    assert.notEqual(accessToken.split('.').length, 3, `opaque, not a JWT: ${accessToken}`);

    const hint = { token: accessToken, token_type_hint: 'access_token' };
    const seen = await asClient('/token/introspection', hint, rs.issuer);
    assert.equal(seen.status, 200, JSON.stringify(seen.body));
    assert.equal(seen.body.active, true);
    assert.equal(seen.body.iss, rs.issuer);
    assert.equal(seen.body.aud, 'urn:test:rs');
    assert.equal(seen.body.sub, 'dev');
    assert.equal(seen.body.token_type, 'Bearer');
    assert.deepEqual(seen.body.groups, ['acme-eng']);
    assert.equal(seen.body.email, 'dev@acme.test');
    assert.equal(seen.body.email_verified, true);
    assert.ok(seen.body.exp > Date.now() / 1000);

    const revoked = await asClient('/token/revocation', hint, rs.issuer);
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    const after = await asClient('/token/introspection', hint, rs.issuer);
    assert.deepEqual(after.body, { active: false });
  } finally {
    await rs.close();
    await without.close();
  }
});
