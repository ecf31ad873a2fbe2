//! Roles and the one access decision.
//!
//! A tenant's role map turns IdP groups into portal roles; an app's [`AccessPolicy`] says which roles may
//! reach which part of it. [`decide`] is the only function that answers "may this user reach this app at
//! this path": the shell calls it to build the navigation and the proxy calls it before forwarding, so
//! nothing hidden from the navigation is reachable through the proxy (BRIEF invariant 1).
//!
//! This module is pure: no IO, no config parsing, no HTTP. Default deny is structural: a rule lists the
//! roles it allows and nothing else passes.

use std::collections::BTreeSet;
use std::fmt;

/// A portal role name, as written in a tenant's `roles:` map.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleName(pub String);

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The roles one user holds in one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roles(pub BTreeSet<RoleName>);

impl Roles {
    /// Role names in a stable order, for headers, logs and the shell's context.
    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|role| role.0.as_str()).collect()
    }
}

/// A tenant's map from IdP groups to portal roles.
#[derive(Debug, Clone, Default)]
pub struct RoleMap {
    /// Each role with the groups that grant it. Every role has at least one group (config checks it).
    pub roles: Vec<(RoleName, Vec<String>)>,
}

impl RoleMap {
    /// The roles that these groups grant. Group names compare exactly, as IdPs send them.
    pub fn roles_for(&self, groups: &[String]) -> Roles {
        let granted = self
            .roles
            .iter()
            .filter(|(_, role_groups)| role_groups.iter().any(|group| groups.contains(group)))
            .map(|(role, _)| role.clone())
            .collect();
        Roles(granted)
    }

    /// Whether the map defines this role.
    pub fn defines(&self, role: &str) -> bool {
        self.roles.iter().any(|(name, _)| name.0 == role)
    }
}

/// The roles that may pass one rule. Never empty: an empty rule would deny everyone, which config reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule {
    pub roles: Vec<RoleName>,
}

impl AccessRule {
    fn allows(&self, roles: &Roles) -> bool {
        self.roles.iter().any(|role| roles.0.contains(role))
    }
}

/// Everything that decides access to one app: its own rule, and the narrower rules of its navigation nodes,
/// keyed by the path (inside the app) that each node's view lives under.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    pub app: AccessRule,
    /// `(path prefix inside the app, rule)`; a request path under a prefix needs that rule too.
    pub paths: Vec<(String, AccessRule)>,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Denied; the rule that failed, for the audit log and the 403 page.
    Deny {
        needed: Vec<RoleName>,
    },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// May a user with `roles` reach `path` (a normalised path inside the app, starting with `/`)?
///
/// The app's own rule must pass, and so must the rule of every node whose view path is a prefix of `path`
/// on a segment boundary: a node only ever narrows access, it never widens it.
pub fn decide(roles: &Roles, policy: &AccessPolicy, path: &str) -> Decision {
    if !policy.app.allows(roles) {
        return Decision::Deny {
            needed: policy.app.roles.clone(),
        };
    }
    for (prefix, rule) in &policy.paths {
        if is_under(path, prefix) && !rule.allows(roles) {
            return Decision::Deny {
                needed: rule.roles.clone(),
            };
        }
    }
    Decision::Allow
}

/// `path` is `prefix` or below it, on a segment boundary (`/reports` covers `/reports/x`, not `/reportsx`).
fn is_under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(roles: &[&str]) -> AccessRule {
        AccessRule {
            roles: roles.iter().map(|r| RoleName(r.to_string())).collect(),
        }
    }

    fn roles(names: &[&str]) -> Roles {
        Roles(names.iter().map(|r| RoleName(r.to_string())).collect())
    }

    fn policy() -> AccessPolicy {
        AccessPolicy {
            app: rule(&["developer", "admin"]),
            paths: vec![("/reports".into(), rule(&["admin"]))],
        }
    }

    #[test]
    fn role_map_grants_roles_by_group() {
        let map = RoleMap {
            roles: vec![
                (RoleName("admin".into()), vec!["admins".into()]),
                (
                    RoleName("developer".into()),
                    vec!["eng".into(), "admins".into()],
                ),
            ],
        };
        assert_eq!(
            map.roles_for(&["admins".into()]).names(),
            ["admin", "developer"]
        );
        assert_eq!(map.roles_for(&["eng".into()]).names(), ["developer"]);
        assert!(map.roles_for(&["sales".into()]).0.is_empty());
        assert!(map.roles_for(&[]).0.is_empty());
    }

    #[test]
    fn no_role_no_access() {
        assert!(!decide(&roles(&[]), &policy(), "/").is_allowed());
        assert!(!decide(&roles(&["sales"]), &policy(), "/").is_allowed());
    }

    #[test]
    fn node_rules_narrow_on_segment_boundaries() {
        let developer = roles(&["developer"]);
        assert!(decide(&developer, &policy(), "/").is_allowed());
        assert!(decide(&developer, &policy(), "/reportsx").is_allowed());
        assert!(!decide(&developer, &policy(), "/reports").is_allowed());
        assert!(!decide(&developer, &policy(), "/reports/2024").is_allowed());
        assert!(decide(&roles(&["admin"]), &policy(), "/reports/2024").is_allowed());
    }

    #[test]
    fn a_node_rule_never_widens_the_app_rule() {
        let policy = AccessPolicy {
            app: rule(&["admin"]),
            paths: vec![("/public".into(), rule(&["developer"]))],
        };
        assert!(!decide(&roles(&["developer"]), &policy, "/public").is_allowed());
    }
}
