// The test Backstage backend: catalog, auth (oauth2Proxy provider with portico's tenant-bound sign-in
// resolver, below), proxy, and a tiny `whoami` plugin that shows who Backstage thinks the caller is. Plain CommonJS, no build step. Run it through start.mjs,
// or by hand: `node index.js --config app-config.yaml` with BACKSTAGE_PORT and BACKSTAGE_CATALOG set.
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
const { createBackendModule, createBackendPlugin, coreServices } = require('@backstage/backend-plugin-api');
// The three below come with the auth backend; a real deployment lists them in its package.json.
const {
  authProvidersExtensionPoint,
  createProxyAuthProviderFactory,
  createSignInResolverFactory,
} = require('@backstage/plugin-auth-node');
const { oauth2ProxyAuthenticator } = require('@backstage/plugin-auth-backend-module-oauth2-proxy-provider');
const { NotFoundError } = require('@backstage/errors');

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

// The sign-in resolver a Backstage operator adds behind portico (docs/backstage-identity.md): portico
// names the user `X-Forwarded-User: <namespace>/<name>`, the namespace being the tenant's own, and may add
// a verified `X-Forwarded-Email`. The user is looked up ONLY in that namespace: the exact entity
// user:<namespace>/<name>, else the one User of that namespace whose spec.profile.email is the address.
// Never by email across namespaces, never in `default` unless portico names it, and never a user missing
// from the catalog. Everything else is a NotFoundError (the sign-in fails).
const ENTITY_PART = /^[a-z0-9]+(?:[-_.][a-z0-9]+)*$/i; // Backstage's rule for names and namespaces

const porticoTenantUser = createSignInResolverFactory({
  create() {
    return async (info, ctx) => {
      const forwarded = info.result.getHeader('x-forwarded-user') ?? '';
      const slash = forwarded.indexOf('/');
      const namespace = slash > 0 ? forwarded.slice(0, slash) : '';
      const name = forwarded.slice(slash + 1);
      if (!ENTITY_PART.test(namespace) || namespace.length > 63) {
        throw new NotFoundError('portico names users as <namespace>/<name>');
      }
      if (ENTITY_PART.test(name) && name.length <= 63) {
        try {
          return await ctx.signInWithCatalogUser({ entityRef: { kind: 'User', namespace, name } });
        } catch (error) {
          if (error?.name !== 'NotFoundError') throw error;
        }
      }
      const email = info.result.getHeader('x-forwarded-email');
      if (!email) throw new NotFoundError(`no user ${name} in namespace ${namespace}`);
      return ctx.signInWithCatalogUser({
        filter: { kind: 'User', 'metadata.namespace': namespace, 'spec.profile.email': email },
      });
    };
  },
});

// Replaces @backstage/plugin-auth-backend-module-oauth2-proxy-provider's module (same provider id, same
// header authenticator) with one whose only sign-in resolver is the one above.
const porticoOauth2ProxyProvider = createBackendModule({
  pluginId: 'auth',
  moduleId: 'portico-oauth2-proxy-provider',
  register(reg) {
    reg.registerInit({
      deps: { providers: authProvidersExtensionPoint },
      async init({ providers }) {
        providers.registerProvider({
          providerId: 'oauth2Proxy',
          factory: createProxyAuthProviderFactory({
            authenticator: oauth2ProxyAuthenticator,
            signInResolverFactories: { porticoTenantUser },
          }),
        });
      },
    });
  },
});

const backend = createBackend();
backend.add(rootHttpRouter);
backend.add(import('@backstage/plugin-catalog-backend'));
backend.add(import('@backstage/plugin-auth-backend'));
backend.add(porticoOauth2ProxyProvider);
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
