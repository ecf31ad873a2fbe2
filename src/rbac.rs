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
    /// The app's own method + path-glob rules (`rules:` in config); a matching request needs that rule too.
    pub requests: Vec<RequestRule>,
}

/// A narrowing rule for some requests inside an app, e.g. `POST /admin/**` needs `platform-admin`.
#[derive(Debug, Clone)]
pub struct RequestRule {
    /// Upper-case method names; empty means every method.
    pub methods: Vec<String>,
    pub path: PathGlob,
    pub rule: AccessRule,
}

/// A path pattern: `*` matches within one segment, `**` any number of whole segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathGlob {
    pattern: String,
}

impl PathGlob {
    /// `pattern` must start with `/`; config checks it.
    pub fn new(pattern: &str) -> Self {
        PathGlob {
            pattern: pattern.to_owned(),
        }
    }

    /// A pattern from config: it must start with `/` and may not hold `?`, `#`, `%`, `\\` or dot
    /// segments, because it is matched against normalised, decoded paths that never contain them.
    pub fn parse(pattern: &str) -> Option<Self> {
        let valid = pattern.starts_with('/')
            && !pattern.contains(['?', '#', '%', '\\'])
            && !pattern.split('/').any(|s| s == "." || s == "..");
        valid.then(|| PathGlob::new(pattern))
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    pub fn matches(&self, path: &str) -> bool {
        let pattern: Vec<&str> = self.pattern.split('/').filter(|s| !s.is_empty()).collect();
        let path: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match_segments(&pattern, &path)
    }
}

fn match_segments(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| match_segments(rest, &path[skip..])),
        Some((segment, rest)) => match path.split_first() {
            Some((first, path_rest)) => {
                match_segment(segment, first) && match_segments(rest, path_rest)
            }
            None => false,
        },
    }
}

/// `*` within one segment: any run of characters.
fn match_segment(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first)
        || !text[first.len()..].ends_with(last)
        || text.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(index) => rest = &rest[index + middle.len()..],
            None => return false,
        }
    }
    true
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

/// May a user with `roles` send `method` to `path` (a normalised path inside the app, starting with `/`)?
///
/// The app's own rule must pass, and so must the rule of every node whose view path is a prefix of `path`
/// on a segment boundary, and of every request rule matching the method and path: node and request
/// rules only ever narrow access, they never widen it. The navigation asks with `GET`.
pub fn decide(roles: &Roles, policy: &AccessPolicy, method: &str, path: &str) -> Decision {
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
    for request in &policy.requests {
        let method_matches = request.methods.is_empty()
            || request
                .methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(method));
        if method_matches && request.path.matches(path) && !request.rule.allows(roles) {
            return Decision::Deny {
                needed: request.rule.roles.clone(),
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
            requests: vec![RequestRule {
                methods: vec!["POST".into(), "DELETE".into()],
                path: PathGlob::new("/admin/**"),
                rule: rule(&["admin"]),
            }],
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
        assert!(!decide(&roles(&[]), &policy(), "GET", "/").is_allowed());
        assert!(!decide(&roles(&["sales"]), &policy(), "GET", "/").is_allowed());
    }

    #[test]
    fn node_rules_narrow_on_segment_boundaries() {
        let developer = roles(&["developer"]);
        assert!(decide(&developer, &policy(), "GET", "/").is_allowed());
        assert!(decide(&developer, &policy(), "GET", "/reportsx").is_allowed());
        assert!(!decide(&developer, &policy(), "GET", "/reports").is_allowed());
        assert!(!decide(&developer, &policy(), "GET", "/reports/2024").is_allowed());
        assert!(decide(&roles(&["admin"]), &policy(), "GET", "/reports/2024").is_allowed());
    }

    #[test]
    fn a_node_rule_never_widens_the_app_rule() {
        let policy = AccessPolicy {
            app: rule(&["admin"]),
            paths: vec![("/public".into(), rule(&["developer"]))],
            requests: vec![],
        };
        assert!(!decide(&roles(&["developer"]), &policy, "GET", "/public").is_allowed());
    }

    #[test]
    fn request_rules_narrow_by_method_and_glob() {
        let developer = roles(&["developer"]);
        let admin = roles(&["admin"]);
        assert!(decide(&developer, &policy(), "GET", "/admin/users").is_allowed());
        assert!(!decide(&developer, &policy(), "POST", "/admin/users").is_allowed());
        assert!(!decide(&developer, &policy(), "delete", "/admin").is_allowed());
        assert!(!decide(&developer, &policy(), "POST", "/admin/a/b/c").is_allowed());
        assert!(decide(&developer, &policy(), "POST", "/administrator").is_allowed());
        assert!(decide(&admin, &policy(), "POST", "/admin/users").is_allowed());
    }

    #[test]
    fn globs_match_segments() {
        let glob = |p: &str| PathGlob::new(p);
        assert!(glob("/api/*/items").matches("/api/v1/items"));
        assert!(!glob("/api/*/items").matches("/api/v1/x/items"));
        assert!(glob("/api/**/items").matches("/api/v1/x/items"));
        assert!(glob("/api/**").matches("/api"));
        assert!(glob("/files/*.csv").matches("/files/report.csv"));
        assert!(!glob("/files/*.csv").matches("/files/report.csv.exe"));
        assert!(glob("/**").matches("/anything/at/all"));
    }
}
