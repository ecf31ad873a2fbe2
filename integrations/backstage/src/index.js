// portico's Backstage backend modules. In packages/backend/src/index.ts (or index.js):
//
//   const { authModulePorticoProvider, permissionModulePorticoPolicy } = require('@portico/backstage-backend-modules');
//   backend.add(import('@backstage/plugin-auth-backend'));
//   backend.add(authModulePorticoProvider);
//   backend.add(import('@backstage/plugin-permission-backend'));
//   backend.add(permissionModulePorticoPolicy);
//
// and `auth.providers.portico` plus `permission.enabled: true` in app-config (settings.js, and
// docs/backstage-identity.md in portico's repository). A backend that keeps the oauth2Proxy way adds
// `authModulePorticoOauth2ProxyProvider` instead of the stock oauth2-proxy module (oauth2proxy.js).

'use strict';

const { authModulePorticoProvider, ASSERTION_HEADER } = require('./auth');
const { authModulePorticoOauth2ProxyProvider, porticoTenantUser } = require('./oauth2proxy');
const { permissionModulePorticoPolicy, PorticoPermissionPolicy } = require('./permission');
const { checkGrants, decide } = require('./grants');
const { readSettings } = require('./settings');

module.exports = {
  authModulePorticoProvider,
  authModulePorticoOauth2ProxyProvider,
  porticoTenantUser,
  permissionModulePorticoPolicy,
  PorticoPermissionPolicy,
  ASSERTION_HEADER,
  checkGrants,
  decide,
  readSettings,
};
