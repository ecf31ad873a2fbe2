// The `portico` permission policy: decides every Backstage permission from the grants portico put in
// the user's sign-in (the `portico` claim; see auth.js and grants.js).
//
// The policy is not handed the user's token, only its credentials. The claim is read where Backstage
// keeps what a sign-in issued: the auth plugin's `/v1/userinfo`, asked with the user's own (limited)
// token. So it is the user's most recent sign-in through portico that counts, which is also how a
// change of roles in portico (a reload, a group removed at the IdP) reaches tokens issued earlier.
// Answers are kept for a few seconds per user.
//
// - Services (portico's own service token, other plugins) never reach a policy: Backstage allows them.
// - A user without a `portico` claim (signed in some other way) is denied, unless
//   `auth.providers.portico.otherUsers: allow` (for a migration from another provider).
// - A user whose tenant is no longer in the config is denied.

'use strict';

const { coreServices, createBackendModule } = require('@backstage/backend-plugin-api');
const { AuthorizeResult } = require('@backstage/plugin-permission-common');
const { policyExtensionPoint } = require('@backstage/plugin-permission-node/alpha');
const { readSettings } = require('./settings');
const { decide } = require('./grants');

const KEEP_MS = 5_000;

class PorticoPermissionPolicy {
  constructor({ settings, auth, discovery, logger }) {
    this.settings = settings;
    this.auth = auth;
    this.discovery = discovery;
    this.logger = logger;
    this.kept = new Map(); // userEntityRef -> { claim, until }
  }

  async handle(request, user) {
    if (!user) return { result: AuthorizeResult.DENY };
    const claim = await this.claim(user.credentials);
    if (!claim) {
      return { result: this.settings.otherUsers === 'allow' ? AuthorizeResult.ALLOW : AuthorizeResult.DENY };
    }
    const tenant = this.settings.tenants.get(claim.iss);
    if (!tenant) return { result: AuthorizeResult.DENY };
    return decide(request.permission, claim.grants ?? [], tenant);
  }

  /** The `portico` claim of the user's latest sign-in, or null. */
  async claim(credentials) {
    const userRef = credentials.principal.userEntityRef;
    const now = Date.now();
    const kept = this.kept.get(userRef);
    if (kept && kept.until > now) return kept.claim;
    const { token } = await this.auth.getLimitedUserToken(credentials);
    const response = await fetch(`${await this.discovery.getBaseUrl('auth')}/v1/userinfo`, {
      headers: { authorization: `Bearer ${token}` },
    });
    let claim = null;
    if (response.ok) {
      const body = await response.json();
      claim = body?.claims?.portico ?? null;
    } else if (response.status !== 404) {
      // Not knowing the user's grants is never a reason to allow: deny, and say why in the log.
      this.logger.warn(`portico policy: userinfo for ${userRef} answered ${response.status}`);
      return null;
    }
    if (this.kept.size > 10_000) this.kept.clear();
    this.kept.set(userRef, { claim, until: now + KEEP_MS });
    return claim;
  }
}

/** `backend.add(permissionModulePorticoPolicy)`, with the permission backend and `permission.enabled`. */
const permissionModulePorticoPolicy = createBackendModule({
  pluginId: 'permission',
  moduleId: 'portico-policy',
  register(reg) {
    reg.registerInit({
      deps: {
        policy: policyExtensionPoint,
        config: coreServices.rootConfig,
        auth: coreServices.auth,
        discovery: coreServices.discovery,
        logger: coreServices.logger,
      },
      async init({ policy, config, auth, discovery, logger }) {
        const settings = readSettings(config.getConfig('auth.providers.portico'));
        policy.setPolicy(new PorticoPermissionPolicy({ settings, auth, discovery, logger }));
      },
    });
  },
});

module.exports = { permissionModulePorticoPolicy, PorticoPermissionPolicy };
