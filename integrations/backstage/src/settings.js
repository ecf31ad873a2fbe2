// The settings both modules read: `auth.providers.portico` of the Backstage app-config.
//
//   auth:
//     providers:
//       portico:
//         jwksUrl: https://portal.internal/.well-known/jwks.json   # portico's published keys
//         audience: backstage-sign-in                             # optional; what portico signs for
//         tenants:                                                # which portico tenant may name what
//           - issuer: https://portal.acme.example                 # the tenant's assertion issuer
//             namespaces: [acme, acme-labs]                       # users resolve here; grants may act here
//             sharedNamespaces: [common]                          # grants may only read here
//         otherUsers: deny                                        # users not signed in through portico
//
// The tenant list is Backstage's own word on which issuer may name which namespace: portico signs for
// every tenant with the same keys, so without it a mistake in one tenant's portico config could name
// another tenant's users. A sign-in or grant outside these namespaces is refused, never narrowed silently.

'use strict';

/** The audience portico's sign-in assertions carry (portico: `BACKSTAGE_SIGN_IN_AUDIENCE`). */
const DEFAULT_AUDIENCE = 'backstage-sign-in';

/** Backstage's rule for entity names and namespaces. */
const ENTITY_PART = /^[a-z0-9]+(?:[-_.][a-z0-9]+)*$/i;

function entityPart(text) {
  return typeof text === 'string' && text.length <= 63 && ENTITY_PART.test(text);
}

/** Reads and checks `auth.providers.portico`; throws with the key that is wrong. */
function readSettings(config) {
  const jwksUrl = config.getString('jwksUrl');
  let parsed;
  try {
    parsed = new URL(jwksUrl);
  } catch {
    throw new Error(`auth.providers.portico.jwksUrl: not a URL: ${jwksUrl}`);
  }
  const audience = config.getOptionalString('audience') ?? DEFAULT_AUDIENCE;
  const otherUsers = config.getOptionalString('otherUsers') ?? 'deny';
  if (otherUsers !== 'deny' && otherUsers !== 'allow') {
    throw new Error(`auth.providers.portico.otherUsers: "deny" or "allow", not "${otherUsers}"`);
  }
  const tenants = new Map();
  for (const [index, tenant] of config.getConfigArray('tenants').entries()) {
    const where = `auth.providers.portico.tenants[${index}]`;
    const issuer = tenant.getString('issuer');
    const namespaces = tenant.getStringArray('namespaces');
    const sharedNamespaces = tenant.getOptionalStringArray('sharedNamespaces') ?? [];
    for (const namespace of [...namespaces, ...sharedNamespaces]) {
      if (!entityPart(namespace)) throw new Error(`${where}: "${namespace}" is not a namespace`);
    }
    if (namespaces.length === 0) throw new Error(`${where}.namespaces: name at least one`);
    if (tenants.has(issuer)) throw new Error(`${where}.issuer: ${issuer} is listed twice`);
    tenants.set(issuer, {
      issuer,
      namespaces: new Set(namespaces.map((n) => n.toLowerCase())),
      sharedNamespaces: new Set(sharedNamespaces.map((n) => n.toLowerCase())),
    });
  }
  if (tenants.size === 0) throw new Error('auth.providers.portico.tenants: list at least one tenant');
  return { jwksUrl: parsed, audience, otherUsers, tenants };
}

module.exports = { DEFAULT_AUDIENCE, entityPart, readSettings };
