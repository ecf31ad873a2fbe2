// The test Backstage backend: catalog, auth (portico's own `portico` provider, and oauth2Proxy with
// portico's tenant-bound sign-in resolver, both from integrations/backstage), the permission framework
// with portico's policy, proxy, and a tiny `whoami` plugin that shows who Backstage thinks the caller is.
// Plain CommonJS, no build step. Run it through start.mjs (it passes the environment app-config.yaml
// needs, and --preserve-symlinks).
//
// whoami (GET, any sub-path, e.g. /api/whoami or /api/whoami/x?y=1), needs Backstage credentials:
//   200 {"principal": {"type": "user", "userEntityRef": "user:acme/alice"} | {"type": "service", "subject": "portico"},
//        "token": {"fingerprint": <first 16 hex of sha256(bearer token)>, "sub", "iss", "iat", "exp"} | null,
//        "method", "path", "query", "headers": {<every request header except authorization>}}
//   ?set-cookie=<name>=<value> makes the answer carry that Set-Cookie (Path=/).
//   GET /api/whoami/sign-ins: 200 [{"method", "headers": {...}}, ...], every request that reached
//   /api/auth/oauth2Proxy/refresh since start (oldest first, at most 1000), recorded before Backstage
//   handles it: so tests see exactly what a gateway sent when it signed a user in.
//   GET /api/whoami/revoke: marks the caller's bearer token as revoked; from then on every whoami request
//   with it gets 401 AuthenticationError, as Backstage answers a token it no longer accepts. Backstage itself
//   cannot revoke a user token (its lifetime is at least 10 minutes), so tests use this to make portico
//   see a 401 for a token it has cached.

'use strict';

const { createHash } = require('node:crypto');
const { createBackend } = require('@backstage/backend-defaults');
const { rootHttpRouterServiceFactory } = require('@backstage/backend-defaults/rootHttpRouter');
const { createBackendPlugin, coreServices } = require('@backstage/backend-plugin-api');
// portico's own modules (integrations/backstage), linked into node_modules by package.json's `file:`
// dependency; start.mjs runs node with --preserve-symlinks so their @backstage imports resolve here.
const {
  authModulePorticoOauth2ProxyProvider,
  authModulePorticoProvider,
  permissionModulePorticoPolicy,
} = require('@portico/backstage-backend-modules');

const revoked = new Set();
const signIns = [];

// Records calls of the oauth2Proxy sign-in endpoint (Express matches paths case-insensitively, so do we).
const rootHttpRouter = rootHttpRouterServiceFactory({
  configure({ app, applyDefaults }) {
    app.use((req, res, next) => {
      if (req.path.toLowerCase().replace(/\/+$/, '') === '/api/auth/oauth2proxy/refresh') {
        signIns.push({ method: req.method, headers: { ...req.headers } });
        if (signIns.length > 1000) signIns.shift();
      }
      next();
    });
    applyDefaults();
  },
});

function bearer(req) {
  const match = /^bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  return match ? match[1] : undefined;
}

function fingerprint(token) {
  return createHash('sha256').update(token).digest('hex').slice(0, 16);
}

function claims(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return {};
  try {
    return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return {};
  }
}

function backstageError(req, res, status, name, message) {
  res.status(status).json({
    error: { name, message },
    request: { method: req.method, url: req.originalUrl },
    response: { statusCode: status },
  });
}

const whoamiPlugin = createBackendPlugin({
  pluginId: 'whoami',
  register(env) {
    env.registerInit({
      deps: { httpRouter: coreServices.httpRouter, httpAuth: coreServices.httpAuth },
      async init({ httpRouter, httpAuth }) {
        httpRouter.use(async (req, res) => {
          try {
            const token = bearer(req);
            if (token && revoked.has(fingerprint(token))) {
              backstageError(req, res, 401, 'AuthenticationError', 'Token revoked by the test fixture');
              return;
            }
            if (req.method === 'GET' && req.path === '/sign-ins') {
              res.json(signIns);
              return;
            }
            if (req.method === 'GET' && req.path === '/revoke') {
              if (!token) {
                backstageError(req, res, 400, 'InputError', 'No bearer token to revoke');
                return;
              }
              revoked.add(fingerprint(token));
              res.json({ revoked: fingerprint(token) });
              return;
            }
            const credentials = await httpAuth.credentials(req);
            const { authorization, ...headers } = req.headers;
            const { sub, iss, iat, exp } = token ? claims(token) : {};
            // A plugin that sets a cookie (`?set-cookie=name=value`): on the portal's shared origin it
            // would land beside every app's cookies, so portico must not pass it on.
            if (typeof req.query['set-cookie'] === 'string') {
              res.append('Set-Cookie', `${req.query['set-cookie']}; Path=/`);
            }
            res.json({
              principal: credentials.principal,
              token: token ? { fingerprint: fingerprint(token), sub, iss, iat, exp } : null,
              method: req.method,
              path: req.path,
              query: req.query,
              headers,
            });
          } catch (error) {
            const status = error.name === 'AuthenticationError' ? 401 : error.name === 'NotAllowedError' ? 403 : 500;
            backstageError(req, res, status, error.name ?? 'Error', String(error.message ?? error));
          }
        });
      },
    });
  },
});

// The oauth2Proxy provider with portico's tenant-bound resolver (docs/backstage-identity.md): portico
// names the user `X-Forwarded-User: <namespace>/<name>` (plus a verified `X-Forwarded-Email`), and the
// user is looked up ONLY in that namespace. It replaces the stock oauth2-proxy module, whose resolvers
// cross namespaces.
const backend = createBackend();
backend.add(rootHttpRouter);
backend.add(import('@backstage/plugin-catalog-backend'));
backend.add(import('@backstage/plugin-auth-backend'));
backend.add(authModulePorticoOauth2ProxyProvider);
backend.add(authModulePorticoProvider);
backend.add(import('@backstage/plugin-permission-backend'));
backend.add(permissionModulePorticoPolicy);
backend.add(import('@backstage/plugin-proxy-backend'));
backend.add(whoamiPlugin);
backend.start();

// Under start.mjs: end with the parent. A closed stdin means start.mjs is gone, even if it was SIGKILLed.
if (process.env.BACKSTAGE_EXIT_WITH_STDIN === '1') {
  const stop = () => process.exit(0);
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}
