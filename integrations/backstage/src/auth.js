// The `portico` auth provider: signs a user in to Backstage from portico's signed assertion.
//
// portico calls `GET /api/auth/portico/refresh` itself (never on a browser's behalf) with the header
// `X-Portico-Assertion: <ES256 JWT>`. This module:
// - verifies the JWT against portico's JWKS (`jwksUrl`; keys fetched again when an unknown `kid`
//   appears, so portico's key rotation needs no restart here), its issuer (one of `tenants`), audience,
//   expiry and algorithm (ES256 only);
// - takes the namespace portico names (`backstage.namespace`) only if the Backstage config gives it to
//   that issuer, and looks the user up ONLY there: `user:<namespace>/<sub>`, else the one User of that
//   namespace whose `spec.profile.email` is the email portico sends (portico sends only verified ones);
// - keeps the user's ownership refs only inside the tenant's namespaces;
// - issues the Backstage token with a `portico` claim (issuer, tenant, roles, grants), which the
//   permission policy (permission.js) decides from.
// Anything else is an AuthenticationError or NotFoundError: the sign-in fails.

'use strict';

const { createProxyAuthenticator } = require('@backstage/plugin-auth-node');
const { AuthenticationError } = require('@backstage/errors');
const { stringifyEntityRef, parseEntityRef } = require('@backstage/catalog-model');
const { createRemoteJWKSet, jwtVerify } = require('jose');
const { readSettings } = require('./settings');
const { findUserInNamespace, proxyProviderModule } = require('./users');
const { GrantError, checkGrants } = require('./grants');

const ASSERTION_HEADER = 'x-portico-assertion';
/** portico signs sign-in assertions for a minute; anything issued longer ago is refused. */
const MAX_AGE_SECONDS = 300;

const porticoAuthenticator = createProxyAuthenticator({
  async defaultProfileTransform(result) {
    return {
      profile: {
        ...(result.email ? { email: result.email } : {}),
        ...(result.name ? { displayName: result.name } : {}),
      },
    };
  },
  initialize({ config }) {
    const settings = readSettings(config);
    // jose fetches the key set again on an unknown `kid`, at most every 30 s.
    const keys = createRemoteJWKSet(settings.jwksUrl, { cooldownDuration: 30_000, cacheMaxAge: 600_000 });
    return { settings, keys };
  },
  async authenticate({ req }, { settings, keys }) {
    const assertion = req.header(ASSERTION_HEADER);
    if (!assertion) {
      throw new AuthenticationError(`portico sign-in needs the ${ASSERTION_HEADER} header`);
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(assertion, keys, {
        issuer: [...settings.tenants.keys()],
        audience: settings.audience,
        algorithms: ['ES256'],
        requiredClaims: ['iss', 'aud', 'sub', 'exp', 'iat'],
        maxTokenAge: MAX_AGE_SECONDS,
        clockTolerance: 5,
      }));
    } catch (error) {
      throw new AuthenticationError(`portico assertion refused: ${error.code ?? error.message}`);
    }
    const tenant = settings.tenants.get(payload.iss);
    const namespace = String(payload.backstage?.namespace ?? '').toLowerCase();
    if (!tenant.namespaces.has(namespace)) {
      throw new AuthenticationError(
        `portico tenant ${payload.iss} named the namespace "${namespace}", which is not its own`,
      );
    }
    let grants;
    try {
      grants = checkGrants(payload.backstage?.grants, tenant);
    } catch (error) {
      if (error instanceof GrantError) throw new AuthenticationError(`portico assertion refused: ${error.message}`);
      throw error;
    }
    const roles = Array.isArray(payload.roles) ? payload.roles.filter((r) => typeof r === 'string') : [];
    return {
      result: {
        subject: String(payload.sub),
        email: typeof payload.email === 'string' && payload.email ? payload.email : undefined,
        name: typeof payload.name === 'string' ? payload.name : undefined,
        namespace,
        tenant,
        portico: { iss: payload.iss, tenant: String(payload.tenant ?? ''), roles, grants },
      },
      providerInfo: {},
    };
  },
});

/** Finds the user in the tenant's namespace only, and issues the token with the `portico` claim. */
async function signInInNamespace({ result }, ctx) {
  const { subject, email, namespace, tenant, portico } = result;
  const entity = await findUserInNamespace(ctx, { namespace, name: subject, email });
  const { ownershipEntityRefs } = await ctx.resolveOwnershipEntityRefs(entity);
  // Ownership through another tenant's group (a catalog entry claiming it) is not taken over.
  const ent = ownershipEntityRefs.filter((ref) => {
    const refNamespace = parseEntityRef(ref).namespace.toLowerCase();
    return tenant.namespaces.has(refNamespace) || tenant.sharedNamespaces.has(refNamespace);
  });
  return ctx.issueToken({ claims: { sub: stringifyEntityRef(entity), ent, portico } });
}

/** `backend.add(authModulePorticoProvider)`, with `auth.providers.portico` in app-config. */
const authModulePorticoProvider = proxyProviderModule('portico-provider', 'portico', () => ({
  authenticator: porticoAuthenticator,
  signInResolver: signInInNamespace,
}));

module.exports = { authModulePorticoProvider, ASSERTION_HEADER };
