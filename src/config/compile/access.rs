//! Rules for who may use what: a tenant's `roles` (each granted by at least one IdP group) and the
//! access rules of apps, nodes and request rules (each naming at least one role the tenant defines).
//! Default deny is checked here: an empty rule would hide its app from everyone, so it is refused.

use http::Method;

use super::TenantScope;
use super::values;
use crate::config::diagnose::{Cx, suggest};
use crate::config::model::REQUEST_METHODS;
use crate::config::raw::{Env, Named, RawAccess, RawRole, RawRule, Texts, Val, field};
use crate::config::yaml::Mark;
use crate::rbac::{AccessRule, PathGlob, RequestRule, RoleMap, RoleName};

/// `roles:` of a tenant. Broken roles are reported and left out; the map is always usable, so the
/// tenant's apps are still checked against the roles that are fine.
pub(super) fn roles(val: &Val<Named<Val<RawRole>>>, cx: &mut Cx<'_>) -> RoleMap {
    let mut map = RoleMap::default();
    let Some(named) = val.get() else {
        return map;
    };
    for (name, role) in &named.0 {
        let Some(name_text) = name.get() else {
            continue;
        };
        cx.at(name_text, |cx| {
            if !values::identifier(cx, name_text, name.mark, "role name") {
                return;
            }
            let Some(role) = role.get() else { return };
            let groups = field(&role.groups).flatten().map(|list| list.0.as_slice());
            let groups: Vec<String> = groups
                .unwrap_or_default()
                .iter()
                .filter_map(Val::get)
                .map(|Env(group)| group.clone())
                .collect();
            if groups.is_empty() {
                cx.error_at(
                    name.mark,
                    "groups",
                    format!("role `{name_text}` is not granted by any group"),
                    Some("list the IdP groups that grant it, e.g. `groups: [eng]`; a role no group maps to can never be held".into()),
                );
                return;
            }
            if let Some(description) = role
                .description
                .as_ref()
                .and_then(|val| values::translated(cx, "description", val))
            {
                map.descriptions
                    .insert(RoleName(name_text.clone()), description);
            }
            map.roles.push((RoleName(name_text.clone()), groups));
        });
    }
    map
}

/// An `access:` mapping (the current key), whose roles must exist in the tenant.
pub(super) fn access_rule(
    val: &Val<RawAccess>,
    cx: &mut Cx<'_>,
    scope: &TenantScope<'_>,
) -> Option<AccessRule> {
    rule_roles(&val.get()?.roles, val.mark, cx, scope)
}

/// The `roles:` of an access rule in the mapping at `mark` (the current key).
pub(super) fn rule_roles(
    roles: &Option<Val<Texts>>,
    mark: Mark,
    cx: &mut Cx<'_>,
    scope: &TenantScope<'_>,
) -> Option<AccessRule> {
    let Some(val) = roles else {
        let hint = "list the roles that may use this, e.g. `roles: [developer]`";
        cx.missing(mark, "roles", hint);
        return None;
    };
    let list = val.get()?;
    let mut rule = AccessRule { roles: Vec::new() };
    let mut ok = true;
    for (index, item) in list.0.iter().enumerate() {
        let Some(Env(role)) = item.get() else {
            ok = false;
            continue;
        };
        if !scope.roles.defines(role) {
            let known: Vec<&str> = scope
                .roles
                .roles
                .iter()
                .map(|(name, _)| name.0.as_str())
                .collect();
            let listing = if known.is_empty() {
                "(none)".to_owned()
            } else {
                known.join(", ")
            };
            let hint = suggest(
                role,
                &known,
                &format!("roles of tenant `{}`: {listing}", scope.id),
            );
            cx.error_at(
                item.mark,
                &format!("roles[{index}]"),
                format!("unknown role `{role}`"),
                Some(hint),
            );
            ok = false;
            continue;
        }
        rule.roles.push(RoleName(role.clone()));
    }
    if rule.roles.is_empty() && ok {
        cx.error_at(
            val.mark,
            "roles",
            "an access rule needs at least one role",
            Some("default deny: an empty list would hide this from everyone".into()),
        );
        return None;
    }
    ok.then_some(rule)
}

/// `rules: [{ methods: [POST], path: /admin/**, roles: [platform-admin] }]`: narrowing rules. `None`
/// when any rule is broken (reported): a rule left out would widen access.
pub(super) fn request_rules(
    list: &Val<Vec<Val<RawRule>>>,
    cx: &mut Cx<'_>,
    scope: &TenantScope<'_>,
) -> Option<Vec<RequestRule>> {
    let items = list.get()?;
    let mut rules = Vec::new();
    let mut ok = true;
    for (index, item) in items.iter().enumerate() {
        let rule = cx.at(&format!("[{index}]"), |cx| request_rule(item, cx, scope));
        ok &= rule.is_some();
        rules.extend(rule);
    }
    ok.then_some(rules)
}

fn request_rule(
    item: &Val<RawRule>,
    cx: &mut Cx<'_>,
    scope: &TenantScope<'_>,
) -> Option<RequestRule> {
    let raw = item.get()?;
    let mut methods = Vec::new();
    let mut ok = true;
    for method in field(&raw.methods)?
        .map(|list| list.0.as_slice())
        .unwrap_or_default()
    {
        let Some(Env(name)) = method.get() else {
            ok = false;
            continue;
        };
        let upper = name.to_ascii_uppercase();
        match REQUEST_METHODS.iter().find(|known| known.as_str() == upper) {
            Some(known) => methods.push(known.clone()),
            None => {
                let names: Vec<&str> = REQUEST_METHODS.iter().map(Method::as_str).collect();
                let hint = format!("one of {}", names.join(", "));
                cx.error_at(
                    method.mark,
                    "methods",
                    format!("unknown method `{name}`"),
                    Some(hint),
                );
                ok = false;
            }
        }
    }
    let glob = match &raw.path {
        None => {
            cx.missing(
                item.mark,
                "path",
                "a path glob inside the app, e.g. `/admin/**`",
            );
            None
        }
        Some(path) => values::parsed(cx, "path", path, |glob| {
            PathGlob::parse(glob).ok_or_else(|| {
                values::Bad::new(
                    format!("`{glob}` is not a path glob"),
                    "start with `/`; no `?`, `#`, `%`, `;`, `\\` or segments ending in `.`; `*` matches in one segment, `**` across segments",
                )
            })
        }),
    };
    let rule = rule_roles(&raw.roles, item.mark, cx, scope);
    let (path, rule) = (glob?, rule?);
    ok.then_some(RequestRule {
        methods,
        path,
        rule,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{BASE, table};
    use crate::config::MemorySource;

    #[test]
    fn role_and_access_rules() {
        let app = |keys: &str| {
            format!("{BASE}    apps:\n      - {{ id: x, static: \"embedded:demo\", {keys} }}\n")
        };
        let cases = [
            ("an unknown role, with a suggestion", app("access: { roles: [develper, admin] }")),
            ("an empty rule", app("access: { roles: [] }")),
            ("no roles key", app("access: {}")),
            ("access is not a mapping", app("access: [developer]")),
            (
                "roles without groups and with bad names",
                BASE.replace(
                    "developer: { groups: [eng] }",
                    "developer: { groups: [eng] }\n      Admin: { groups: [a] }\n      auditor: { description: Reads }\n      ops: { groups: [] }",
                ),
            ),
            (
                "request rules",
                app("access: { roles: [developer] }, rules: [{ methods: [post, FETCH], path: /admin/**, roles: [developer] }, { path: admin, roles: [nope] }, { roles: [developer] }]"),
            ),
            (
                "a good request rule",
                app("access: { roles: [developer] }, rules: [{ methods: GET, path: \"/exports/*.csv\", roles: developer }]"),
            ),
        ];
        insta::assert_snapshot!(table(&MemorySource::default(), &cases));
    }
}
