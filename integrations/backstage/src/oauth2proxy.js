// For backends that keep the `oauth2Proxy` provider (portico's `sign_in: oauth2_proxy`): the same
// provider id and header authenticator as @backstage/plugin-auth-backend-module-oauth2-proxy-provider,
// whose module it replaces, with one sign-in resolver, `porticoTenantUser`: portico names the user
// `X-Forwarded-User: <namespace>/<name>` (plus a verified `X-Forwarded-Email`), and the user is looked
// up only in that namespace (users.js). Backstage cannot verify these headers: its
// `/api/auth/oauth2Proxy/refresh` must be reachable only from portico. Prefer auth.js.
//
// Needs @backstage/plugin-auth-backend-module-oauth2-proxy-provider in the backend (an optional peer).

'use strict';

const { createSignInResolverFactory } = require('@backstage/plugin-auth-node');
const { NotFoundError } = require('@backstage/errors');
const { stringifyEntityRef } = require('@backstage/catalog-model');
const { findUserInNamespace, proxyProviderModule } = require('./users');

const porticoTenantUser = createSignInResolverFactory({
  create() {
    return async (info, ctx) => {
      const forwarded = info.result.getHeader('x-forwarded-user') ?? '';
      const slash = forwarded.indexOf('/');
      if (slash <= 0) throw new NotFoundError('portico names users as <namespace>/<name>');
      const entity = await findUserInNamespace(ctx, {
        namespace: forwarded.slice(0, slash),
        name: forwarded.slice(slash + 1),
        email: info.result.getHeader('x-forwarded-email'),
      });
      return ctx.signInWithCatalogUser({ entityRef: stringifyEntityRef(entity) });
    };
  },
});

/** `backend.add(authModulePorticoOauth2ProxyProvider)` instead of the stock oauth2-proxy module. */
const authModulePorticoOauth2ProxyProvider = proxyProviderModule('portico-oauth2-proxy-provider', 'oauth2Proxy', () => ({
  // Required here, not at the top: backends using only the `portico` provider need not have it.
  authenticator: require('@backstage/plugin-auth-backend-module-oauth2-proxy-provider').oauth2ProxyAuthenticator,
  signInResolverFactories: { porticoTenantUser },
}));

module.exports = { authModulePorticoOauth2ProxyProvider, porticoTenantUser };
