// Grants: what portico's roles allow in Backstage, as portico derived them from the `permissions`
// rules of the tenant's `backstage:` block (portico's config-reference), and how the policy turns
// them into Backstage decisions. Pure functions: the modules call them, the tests can too.
//
// In portico's assertion (and, after sign-in, in the `portico` claim of the Backstage token):
//   "grants": [{ "allow": ["catalog.entity.read"], "namespaces": ["acme", "common"] }, ...]
// `allow` holds Backstage permission names, `prefix.*` patterns or `*`.

'use strict';

const { AuthorizeResult } = require('@backstage/plugin-permission-common');
const { entityPart } = require('./settings');

const PATTERN = /^(?:\*|[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9_-]+)*(?:\.\*)?)$/i;
const CATALOG_ENTITY = 'catalog-entity';

class GrantError extends Error {}

/**
 * Checks the grants an assertion of `tenant` carries and returns them normalised. Every namespace
 * must be one the Backstage config gives that tenant; anything else is refused (GrantError).
 */
function checkGrants(grants, tenant) {
  if (grants === undefined) return [];
  if (!Array.isArray(grants) || grants.length > 100) throw new GrantError('grants: expected a list');
  return grants.map((grant, index) => {
    const allow = grant?.allow;
    const namespaces = grant?.namespaces;
    if (!Array.isArray(allow) || allow.some((p) => typeof p !== 'string' || !PATTERN.test(p))) {
      throw new GrantError(`grants[${index}].allow: expected permission names or patterns`);
    }
    if (!Array.isArray(namespaces) || namespaces.some((n) => !entityPart(n))) {
      throw new GrantError(`grants[${index}].namespaces: expected namespaces`);
    }
    const lower = namespaces.map((n) => n.toLowerCase());
    const foreign = lower.find((n) => !tenant.namespaces.has(n) && !tenant.sharedNamespaces.has(n));
    if (foreign !== undefined) {
      throw new GrantError(`grants[${index}]: namespace "${foreign}" is not ${tenant.issuer}'s`);
    }
    return { allow: [...allow], namespaces: lower };
  });
}

function matches(pattern, name) {
  if (pattern === '*') return true;
  if (pattern.endsWith('.*')) return name.startsWith(pattern.slice(0, -1));
  return pattern === name;
}

/**
 * The decision for `permission` (a Backstage permission: name, attributes, and for a resource
 * permission its resourceType) given a user's grants and their tenant's settings:
 * - DENY unless some grant allows the permission's name in at least one namespace the tenant may
 *   act in; shared namespaces count only for permissions whose action is `read`;
 * - for catalog entities, CONDITIONAL: allowed for entities in those namespaces (HAS_METADATA
 *   namespace), so lists are filtered and single entities checked by the catalog itself;
 * - for any other permission, ALLOW (it has no namespace to narrow to).
 */
function decide(permission, grants, tenant) {
  const read = permission.attributes?.action === 'read';
  const namespaces = new Set();
  for (const grant of grants) {
    if (!grant.allow.some((pattern) => matches(pattern, permission.name))) continue;
    for (const namespace of grant.namespaces) {
      if (tenant.namespaces.has(namespace) || (read && tenant.sharedNamespaces.has(namespace))) {
        namespaces.add(namespace);
      }
    }
  }
  if (namespaces.size === 0) return { result: AuthorizeResult.DENY };
  if (permission.type === 'resource' && permission.resourceType === CATALOG_ENTITY) {
    return {
      result: AuthorizeResult.CONDITIONAL,
      pluginId: 'catalog',
      resourceType: CATALOG_ENTITY,
      conditions: {
        anyOf: [...namespaces].sort().map((namespace) => ({
          rule: 'HAS_METADATA',
          resourceType: CATALOG_ENTITY,
          params: { key: 'namespace', value: namespace },
        })),
      },
    };
  }
  return { result: AuthorizeResult.ALLOW };
}

module.exports = { GrantError, checkGrants, decide };
