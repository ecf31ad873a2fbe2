// What both sign-in ways share: finding the catalog user portico names, in one namespace only, and
// registering a proxy-style auth provider as a backend module.

'use strict';

const { createBackendModule } = require('@backstage/backend-plugin-api');
const { authProvidersExtensionPoint, createProxyAuthProviderFactory } = require('@backstage/plugin-auth-node');
const { NotFoundError } = require('@backstage/errors');
const { parseEntityRef, stringifyEntityRef } = require('@backstage/catalog-model');
const { entityPart } = require('./settings');

/**
 * The User entity `user:<namespace>/<name>`, else the one User of `namespace` whose
 * `spec.profile.email` is `email` (portico sends only verified addresses). Never another namespace,
 * never `default` unless named, never a user missing from the catalog: NotFoundError otherwise.
 */
async function findUserInNamespace(ctx, { namespace, name, email }) {
  if (!entityPart(namespace)) throw new NotFoundError('portico names users as <namespace>/<name>');
  let found;
  if (entityPart(name)) {
    try {
      found = await ctx.findCatalogUser({ entityRef: { kind: 'User', namespace, name } });
    } catch (error) {
      if (error?.name !== 'NotFoundError') throw error;
    }
  }
  if (!found && email) {
    found = await ctx.findCatalogUser({
      filter: { kind: 'User', 'metadata.namespace': namespace, 'spec.profile.email': email },
    });
  }
  // Whatever the catalog answered, the user must be in `namespace`.
  if (!found || parseEntityRef(stringifyEntityRef(found.entity)).namespace.toLowerCase() !== namespace.toLowerCase()) {
    throw new NotFoundError(`no user ${name} in namespace ${namespace}`);
  }
  return found.entity;
}

/**
 * An auth module registering the proxy provider `providerId`; `options()` gives
 * createProxyAuthProviderFactory's options when the backend starts.
 */
function proxyProviderModule(moduleId, providerId, options) {
  return createBackendModule({
    pluginId: 'auth',
    moduleId,
    register(reg) {
      reg.registerInit({
        deps: { providers: authProvidersExtensionPoint },
        async init({ providers }) {
          providers.registerProvider({ providerId, factory: createProxyAuthProviderFactory(options()) });
        },
      });
    },
  });
}

module.exports = { findUserInNamespace, proxyProviderModule };
