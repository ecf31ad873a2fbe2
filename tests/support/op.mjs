// Test OpenID Provider for portico's integration tests, built on the certified
// `oidc-provider` package (pinned in package.json). Loopback + plain http only.
//
// USE
//   Script:  OP_OPTIONS='{"clients":[...]}' node tests/support/op.mjs   (or JSON as argv[2])
//            Prints ONE line to stdout once listening:
//              {"issuer":"http://127.0.0.1:<port>","port":<port>}
//            then runs until stdin reaches EOF, or SIGTERM/SIGINT. Spawn it with a
//            *piped* stdin and keep the write end open (Rust: Stdio::piped() and keep
//            the ChildStdin alive): a stdin of /dev/null or a closed fd ends it at
//            once; a parent that dies closes the pipe and so always stops it.
//            Everything else the OP or oidc-provider logs goes to stderr.
//            Test controls, one line each on stdin, answered by one line on stdout
//            ({"ok":"<command>"} or {"error":"..."}):
//              stop    stop listening and drop every open connection (the IdP is down:
//                      connections are refused); grants, sessions and keys are kept
//              start   listen again on the same port (the IdP is back)
//              rotate  sign with a fresh key from now on and publish only that one (a
//                      key rotation); grants, sessions and refresh tokens are kept
//   Module:  const op = await startOp(options) -> { issuer, port, close(), setGroups(id, groups),
//            stop(), start(), rotateKeys(), provider } (provider: the current oidc-provider
//            instance, for events like backchannel.error; rotateKeys() replaces it)
//   HTTP:    POST /__test/accounts/<id>/groups, body JSON ["g1","g2"] -> 204 (404 unknown id)
//            (for the `nested` account this sets realm_access.roles, as it has no groups).
//            GET /__test/refreshes -> {"granted":n,"refused":m}: refresh_token grants so far.
//
// OPTIONS (all optional): port (0 = any free port), clients [{client_id, client_secret,
//   redirect_uris, post_logout_redirect_uris, backchannel_logout_uri, ...any other client
//   metadata}] (default: portico / portico-secret, redirect http://127.0.0.1:8080/auth/callback,
//   post-logout http://127.0.0.1:8080/auth/signed-out; grant_types authorization_code +
//   refresh_token, client_secret_basic; a backchannel_logout_uri implies
//   backchannel_logout_session_required, so logout tokens carry sid), accessTokenTtl /
//   idTokenTtl / refreshTokenTtl (seconds; 3600 / 3600 / 14 days), rotateRefreshTokens (true:
//   every refresh returns a new refresh token and the old one is spent; presenting a spent one is
//   refused AND revokes the grant, as reuse detection does at many IdPs; default: oidc-provider's,
//   which does not rotate for this confidential client), accounts
//   ({ id: { name, email, email_verified? (default: true when there is an email), groups?,
//   realm_access? } }, replaces the defaults below), accessTokenAudience (a resource server's
//   audience, e.g. "urn:portico:acme": every grant's access token is for it, with the account's
//   groups and verified email as claims; without it, oidc-provider's default opaque tokens for
//   userinfo), accessTokenFormat ("jwt", the default: those tokens are RFC 9068 JWTs; "opaque": a
//   random string, whose claims only the introspection endpoint tells), introspection (default
//   true: /token/introspection, RFC 7662, published in discovery as introspection_endpoint; any
//   confidential client may introspect any token, as a resource server does, and the answer has
//   the token's extra claims: groups, email, email_verified; false: no such endpoint).
//   /token/revocation (RFC 7009) is always on: a client revokes its own tokens (revoking an access
//   token revokes its whole grant), and an introspection after that says active: false.
//
// ACCOUNTS: admin (acme-platform-admins, acme-eng), dev (acme-eng), nogroups (groups []),
//   nested (no `groups` claim; realm_access: { roles: ["acme-eng"] }). Any password works;
//   an unknown login re-shows the form with an error. Scopes: openid profile email groups
//   offline_access; `groups` yields the claims groups + realm_access. Claims are in the ID
//   token too, and the ID token from a refresh reflects setGroups() changes.
//
// LOGIN OVER PLAIN HTTP (no JS needed; do not follow redirects automatically, keep a jar
// of every Set-Cookie and send all of them back; an empty value / past expiry deletes one):
//   1. GET  /auth?response_type=code&client_id=..&redirect_uri=..&scope=openid%20groups..
//              &state=..&nonce=..&code_challenge=<S256>&code_challenge_method=S256
//      -> 303 Location: /interaction/<uid>
//         Set-Cookie: _interaction=<uid> (path /interaction/<uid>),
//                     _interaction_resume=<uid> (path /auth/<uid>), each with a .sig twin
//   2. GET  /interaction/<uid>  (cookie _interaction + .sig)  -> 200 HTML login form
//      (optional for a script: it only renders the form)
//   3. POST /interaction/<uid>  (NOT .../login), application/x-www-form-urlencoded:
//           prompt=login&login=<account id>&password=<anything>
//      (cookie _interaction + .sig) -> 303 Location: <issuer>/auth/<uid>
//      Unknown account -> 200 with the form and "unknown account" (no redirect).
//   4. GET  /auth/<uid>  (cookie _interaction_resume + .sig)
//      -> 303 Location: <redirect_uri>?code=..&state=..&iss=<issuer urlencoded>
//         Set-Cookie: _session (+ .sig, path /) = the OP login session (needed for SSO and
//         logout); _interaction_resume is cleared (_interaction just expires, harmless).
//         No consent screen: loadExistingGrant grants whatever was asked for.
//   5. POST /token, Authorization: Basic base64(id:secret),
//           grant_type=authorization_code&code=..&redirect_uri=..&code_verifier=..
//      -> { access_token, id_token, refresh_token, expires_in, scope, token_type }
//      Refresh: grant_type=refresh_token&refresh_token=.. -> same shape, with a new ID token.
//   A second GET /auth with the _session cookie goes straight to the redirect_uri (SSO).
//
// RP-INITIATED LOGOUT (end_session has a confirmation form with an xsrf token):
//   1. GET  /session/end?id_token_hint=..&post_logout_redirect_uri=..&state=..
//      (cookie _session + .sig) -> 200 HTML with
//        <form id="op.logoutForm" method="post" action="<issuer>/session/end/confirm">
//          <input type="hidden" name="xsrf" value="<secret>"/>
//      and a button name="logout" value="yes". (Without a _session cookie the OP answers
//      with an auto-submitting form_post page with xsrf + logout=yes and sets a fresh
//      _session cookie, which step 2 then needs.)
//   2. POST /session/end/confirm  xsrf=<secret>&logout=yes  (cookie _session + .sig)
//      -> the OP first POSTs logout_token=<JWT with sub, sid, events
//         {"http://schemas.openid.net/event/backchannel-logout":{}}> to each client's
//         backchannel_logout_uri of that session (awaited, 2.5 s timeout), then
//      -> 303 Location: <post_logout_redirect_uri>?state=..; _session is cleared and the
//         grants (so refresh tokens) are revoked.
//      Leaving out logout=yes ("No, stay signed in") still logs out the hinted client.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';

import Provider, { errors } from 'oidc-provider';
// The package's own in-memory adapter (no exports map, so the module is reachable), created once per
// OP so that a provider rebuilt around a rotated key keeps grants, sessions and refresh tokens.
import { createMemoryAdapter } from 'oidc-provider/lib/adapters/memory_adapter.js';

const DEFAULT_CLIENT = {
  client_id: 'portico',
  client_secret: 'portico-secret',
  redirect_uris: ['http://127.0.0.1:8080/auth/callback'],
  post_logout_redirect_uris: ['http://127.0.0.1:8080/auth/signed-out'], // portico's route
};

const DEFAULT_ACCOUNTS = {
  admin: { name: 'Ada Admin', email: 'admin@acme.test', groups: ['acme-platform-admins', 'acme-eng'] },
  dev: { name: 'Dev Eloper', email: 'dev@acme.test', groups: ['acme-eng'] },
  nogroups: { name: 'Noah Groups', email: 'nogroups@acme.test', groups: [] },
  nested: { name: 'Nes Ted', email: 'nested@acme.test', realm_access: { roles: ['acme-eng'] } },
};

const DAY = 24 * 60 * 60;

export async function startOp(options = {}) {
  if (![undefined, 'jwt', 'opaque'].includes(options.accessTokenFormat)) {
    throw new TypeError(`accessTokenFormat must be "jwt" or "opaque", not ${options.accessTokenFormat}`);
  }
  // Own copy, so setGroups never mutates the caller's objects.
  const accounts = structuredClone(options.accounts ?? DEFAULT_ACCOUNTS);

  function setGroups(accountId, groups) {
    const account = Object.hasOwn(accounts, accountId) ? accounts[accountId] : undefined;
    if (!account) throw new Error(`unknown account ${accountId}`);
    if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string')) {
      throw new TypeError('groups must be an array of strings');
    }
    // Accounts that only carry nested roles keep that shape.
    if (!account.groups && account.realm_access) account.realm_access.roles = [...groups];
    else account.groups = [...groups];
  }

  // The issuer must contain the port, so listen first and attach the provider after.
  let handler = (req, res) => { res.statusCode = 503; res.end(); };
  const server = createServer((req, res) => handler(req, res));
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  // Fresh signing key per run (and per rotation); RS256 is the default id_token_signed_response_alg.
  const signingKey = () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    return {
      ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig',
    };
  };

  const clients = (options.clients ?? [DEFAULT_CLIENT]).map((c) => ({
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    post_logout_redirect_uris: [],
    // Without this the logout_token carries no sid (the spec default is false).
    ...(c.backchannel_logout_uri ? { backchannel_logout_session_required: true } : {}),
    ...c,
  }));

  const cookieKeys = [randomBytes(32).toString('base64url')];
  // refresh_token grants answered at /token, kept across key rotations.
  const refreshes = { granted: 0, refused: 0 };
  const adapter = createMemoryAdapter();
  // A function, so a key rotation can build the same provider around a new key. Grants, sessions and
  // tokens live in one in-memory adapter that every provider of this OP shares.
  const configWith = (jwk) => ({
    adapter,
    clients: structuredClone(clients),
    jwks: { keys: [jwk] },
    cookies: { keys: cookieKeys },

    async findAccount(ctx, id) {
      if (!Object.hasOwn(accounts, id)) return undefined; // unknown -> no session/tokens
      return {
        accountId: id,
        // Read the account on every call so setGroups shows up at the next refresh.
        async claims() {
          const a = accounts[id];
          return {
            sub: id,
            name: a.name,
            email: a.email,
            email_verified: a.email_verified ?? a.email !== undefined,
            ...(a.groups ? { groups: [...a.groups] } : {}),
            ...(a.realm_access ? { realm_access: structuredClone(a.realm_access) } : {}),
          };
        },
      };
    },

    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
    claims: {
      openid: ['sub'],
      profile: ['name'],
      email: ['email', 'email_verified'],
      groups: ['groups', 'realm_access'],
    },
    // By default (true) scope claims go to the ID token only when no access token for
    // userinfo is issued, i.e. never in the code flow. false: always put them there,
    // also in the ID token returned by a refresh_token grant.
    conformIdTokenClaims: false,

    pkce: { required: () => true }, // v9 only supports S256

    // Default: only with the offline_access scope (which also needs prompt=consent).
    // Here: every code/refresh grant of a client allowed to use refresh_token.
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    ...(options.rotateRefreshTokens ? { rotateRefreshToken: true } : {}),

    // Skip the consent screen: grant every requested scope/claim on the spot.
    async loadExistingGrant(ctx) {
      const { oidc } = ctx;
      const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
      const grant = (grantId && await oidc.provider.Grant.find(grantId))
        || new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
      grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
      if (oidc.requestParamClaims.size) grant.addOIDCClaims([...oidc.requestParamClaims]);
      // The resource server's scopes too (`accessTokenAudience`), so no consent screen asks for them.
      if (options.accessTokenAudience) {
        grant.addResourceScope(options.accessTokenAudience, [...oidc.requestParamScopes].join(' '));
      }
      await grant.save();
      return grant;
    },

    features: {
      devInteractions: { enabled: true }, // built-in login form (login + password)
      rpInitiatedLogout: { enabled: true },
      backchannelLogout: { enabled: true },
      // A resource server (portico with `bearer.introspect`) asks about opaque tokens issued to
      // other clients (a CLI), so a confidential client may introspect any token; a public one
      // only its own (oidc-provider's default rule, written out so it does not warn).
      introspection: {
        enabled: options.introspection ?? true,
        allowedPolicy: async (ctx, client, token) => (
          client.clientAuthMethod !== 'none' || token.clientId === client.clientId
        ),
      },
      // A client revokes only its own tokens.
      revocation: {
        enabled: true,
        allowedPolicy: async (ctx, client, token) => token.clientId === client.clientId,
      },
      // `accessTokenAudience`: access tokens for that resource carry the account's groups, as an
      // IdP issues them for a resource server (a portal's bearer API): JWTs (RFC 9068), or opaque
      // with `accessTokenFormat: 'opaque'` (the claims then show at introspection). A grant names it
      // with `resource=`, or gets it by default. Without the option: oidc-provider's defaults
      // (opaque tokens for userinfo).
      ...(options.accessTokenAudience ? {
        resourceIndicators: {
          enabled: true,
          defaultResource: () => options.accessTokenAudience,
          useGrantedResource: () => true,
          getResourceServerInfo: (ctx, resource) => {
            if (resource !== options.accessTokenAudience) throw new errors.InvalidTarget();
            return {
              scope: 'openid profile email groups',
              audience: resource,
              accessTokenTTL: options.accessTokenTtl ?? 3600,
              ...(options.accessTokenFormat === 'opaque'
                ? { accessTokenFormat: 'opaque' }
                : { accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } }),
            };
          },
        },
      } : {}),
    },
    ...(options.accessTokenAudience ? {
      // The account's groups (and verified email) in its access tokens: in a JWT's claims, or in
      // the introspection answer about an opaque one.
      async extraTokenClaims(ctx, token) {
        const account = accounts[token.accountId];
        if (!account) return undefined;
        return {
          ...(account.groups ? { groups: [...account.groups] } : {}),
          ...(account.email ? { email: account.email, email_verified: account.email_verified ?? true } : {}),
        };
      },
    } : {}),

    // oidc-provider refuses outgoing requests to special-use IPs (SSRF guard), which
    // includes 127.0.0.0/8, so backchannel logout to a loopback RP would fail. Drop the
    // guarding dispatcher: this OP only ever talks to loopback test servers.
    fetch: (url, { dispatcher, ...init }) => globalThis.fetch(url, init),

    ttl: {
      AccessToken: options.accessTokenTtl ?? 3600,
      IdToken: options.idTokenTtl ?? 3600,
      RefreshToken: options.refreshTokenTtl ?? 14 * DAY,
      AuthorizationCode: 60,
      Interaction: 3600,
      Grant: 14 * DAY,
      Session: 14 * DAY,
    },

    async renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  });

  let provider;
  try {
    provider = buildProvider(signingKey());
  } catch (err) {
    server.close(); // e.g. invalid client metadata: don't leave the port open
    throw err;
  }
  handler = provider.callback();

  function buildProvider(jwk) {
    const built = new Provider(issuer, configWith(jwk));
    built.use(testRoutes(() => provider));
    return built;
  }

  // The OP goes away (connections refused) and comes back on the same port, state intact.
  async function stop() {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(() => resolve()));
  }
  async function start() {
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  }
  function rotateKeys() {
    provider = buildProvider(signingKey());
    handler = provider.callback();
  }

  async function close() {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(() => resolve()));
  }

  return {
    issuer, port, close, setGroups, stop, start, rotateKeys, get provider() { return provider; },
  };

  // Runs before the provider's own routes (Provider#use inserts ahead of them).
  function testRoutes(current) {
    return async (ctx, next) => {
    const groupsRoute = ctx.path.match(/^\/__test\/accounts\/([^/]+)\/groups$/);
    if (groupsRoute && ctx.method === 'POST') {
      const id = decodeURIComponent(groupsRoute[1]);
      if (!Object.hasOwn(accounts, id)) ctx.throw(404, 'unknown account');
      let groups;
      try {
        groups = JSON.parse(await readBody(ctx.req));
        setGroups(id, groups);
      } catch (err) {
        ctx.throw(400, err.message);
      }
      ctx.status = 204;
      return;
    }
    if (ctx.path === '/__test/refreshes' && ctx.method === 'GET') {
      ctx.type = 'json';
      ctx.body = refreshes;
      return;
    }

    // The dev login form accepts any login and would finish the interaction with an
    // account findAccount can't find (-> 500 at /auth/<uid>). Handle the login POST here
    // with the public custom-interaction API instead, and re-show the form when unknown.
    const interaction = ctx.path.match(/^\/interaction\/[^/]+$/);
    if (interaction && ctx.method === 'POST') {
      const raw = await readBody(ctx.req);
      const form = new URLSearchParams(raw);
      if (form.get('prompt') === 'login') {
        const login = form.get('login') ?? '';
        if (!Object.hasOwn(accounts, login)) {
          ctx.type = 'html';
          ctx.body = `<!DOCTYPE html><p class="error">unknown account</p>
<form method="post" action="${ctx.path}"><input type="hidden" name="prompt" value="login"/>
<input required name="login"/><input required type="password" name="password"/>
<button type="submit">Sign-in</button></form>`;
          return;
        }
        const returnTo = await current().interactionResult(ctx.req, ctx.res, {
          login: { accountId: login },
        }, { mergeWithLastSubmission: false });
        ctx.status = 303;
        ctx.redirect(returnTo);
        return;
      }
      // Other prompts (never reached: no consent screen) go on to the dev interactions,
      // which read an already consumed body from req.body.
      ctx.req.body = raw;
    }
    await next();
    if (ctx.path === '/token' && ctx.oidc?.params?.grant_type === 'refresh_token') {
      if (ctx.status === 200) refreshes.granted += 1;
      else refreshes.refused += 1;
    }
    };
  }
}

async function readBody(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 64 * 1024) throw new Error('body too large');
  }
  return body;
}

// Script mode.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  // oidc-provider prints notices with console.info; keep stdout for the ready line.
  console.info = console.log = console.error;
  const options = JSON.parse(process.env.OP_OPTIONS || process.argv[2] || '{}');
  const op = await startOp(options);
  process.stdout.write(`${JSON.stringify({ issuer: op.issuer, port: op.port })}\n`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(0), 1000).unref(); // never hang on shutdown
    await op.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  const commands = { stop: op.stop, start: op.start, rotate: op.rotateKeys };
  let pending = '';
  let queue = Promise.resolve();
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => {
    pending += chunk;
    let newline;
    while ((newline = pending.indexOf('\n')) >= 0) {
      const command = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (!command) continue;
      // One at a time, answered in order.
      queue = queue.then(async () => {
        const run = commands[command];
        try {
          if (!run) throw new Error(`unknown command ${command}`);
          await run();
          process.stdout.write(`${JSON.stringify({ ok: command })}\n`);
        } catch (err) {
          process.stdout.write(`${JSON.stringify({ error: String(err.message ?? err) })}\n`);
        }
      });
    }
  }); // flowing mode, so 'end' fires when the parent closes the pipe
}
