//! Rules for a tenant's `health:` (health-aware navigation): how often its apps are probed, how long a
//! probe may take, and the groups of the synthetic user it runs as. The groups must grant a role: a
//! probe that sees no app would watch nothing and say nothing, which is never what was meant.

use super::values;
use crate::config::diagnose::Cx;
use crate::config::model::HealthSettings;
use crate::config::raw::{Env, RawHealth, Val, field};
use crate::config::yaml::Mark;
use crate::rbac::RoleMap;

/// `health:`: `Some(None)` when absent or `interval: off`, `None` when broken (every problem
/// reported). `has_host`: whether the tenant lists a host (the probe's requests need one).
pub(super) fn health(
    raw: Option<&Val<RawHealth>>,
    cx: &mut Cx<'_>,
    roles: &RoleMap,
    has_host: bool,
) -> Option<Option<HealthSettings>> {
    let Some(val) = raw else {
        return Some(None);
    };
    let raw = val.get()?;
    let interval = match &raw.interval {
        None => {
            cx.missing(
                val.mark,
                "interval",
                "how often to probe the apps, e.g. `interval: 30s`, or `interval: off`",
            );
            None
        }
        Some(written) => values::parsed(cx, "interval", written, |text| match text {
            "off" => Ok(None),
            text => {
                let interval = values::duration(text)?;
                if interval < HealthSettings::MIN_INTERVAL {
                    return Err(values::Bad::new(
                        format!("`{text}` is shorter than 100ms"),
                        "every probe is a request to every app: e.g. `30s`",
                    ));
                }
                Ok(Some(interval))
            }
        }),
    };
    let timeout = values::optional(
        cx,
        "timeout",
        raw.timeout.as_ref(),
        HealthSettings::DEFAULT_TIMEOUT,
        values::duration,
    );
    let groups = cx.at("as", |cx| groups(raw, cx, val.mark, roles));
    let interval = interval?;
    let (Some(interval), Some(timeout)) = (interval, timeout) else {
        // Off (or broken: reported above): nothing more is needed.
        return timeout.map(|_| None);
    };
    if !has_host {
        cx.error(
            val.mark,
            "the health probe needs the tenant to list a host",
            Some("its requests are sent to the tenant by Host, like a browser's: add `hosts: [...]`, or `interval: off`".into()),
        );
        return None;
    }
    match groups? {
        Some(groups) => Some(Some(HealthSettings {
            interval,
            timeout,
            groups,
        })),
        None => {
            cx.missing(
                val.mark,
                "as",
                "who the probe is: `as: { groups: [<a group that grants a role>] }`",
            );
            None
        }
    }
}

/// `as.groups`: `Some(None)` when `as` is absent, `None` when broken (reported).
fn groups(
    raw: &RawHealth,
    cx: &mut Cx<'_>,
    mark: Mark,
    roles: &RoleMap,
) -> Option<Option<Vec<String>>> {
    let Some(user) = field(&raw.as_user)? else {
        return Some(None);
    };
    let mark = raw.as_user.as_ref().map_or(mark, |val| val.mark);
    let Some(list) = field(&user.groups)? else {
        cx.missing(
            mark,
            "groups",
            "the IdP groups the probe holds, e.g. `groups: [acme-eng]`",
        );
        return None;
    };
    let mut groups = Vec::new();
    for item in &list.0 {
        // A broken entry was reported where it is.
        let Env(group) = item.get()?;
        if !groups.contains(group) {
            groups.push(group.clone());
        }
    }
    let list_mark = user.groups.as_ref().map_or(mark, |val| val.mark);
    if groups.is_empty() {
        cx.error_at(
            list_mark,
            "groups",
            "the probe holds no group, so it would see no app",
            Some(grants_hint(roles)),
        );
        return None;
    }
    if roles.roles_for(&groups).0.is_empty() {
        cx.error_at(
            list_mark,
            "groups",
            format!(
                "the groups {} grant no role of this tenant, so the probe would see no app",
                groups
                    .iter()
                    .map(|group| format!("`{group}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some(grants_hint(roles)),
        );
        return None;
    }
    Some(Some(groups))
}

/// Which groups grant which role, for a hint.
fn grants_hint(roles: &RoleMap) -> String {
    if roles.roles.is_empty() {
        return "the tenant defines no role yet: map a group to one under `roles:`".to_owned();
    }
    let grants: Vec<String> = roles
        .roles
        .iter()
        .map(|(role, groups)| format!("{} ← {}", role.0, groups.join(", ")))
        .collect();
    format!(
        "hold a group that grants the role whose apps the probe should watch: {}",
        grants.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::super::testing::{BASE, table};
    use crate::config::MemorySource;

    #[test]
    fn health_rules() {
        let tenant = |extra: &str| format!("{BASE}{extra}");
        let cases = [
            (
                "probing as a developer",
                tenant("    health: { interval: 30s, timeout: 2s, as: { groups: [eng] } }\n"),
            ),
            (
                "off needs nothing else",
                tenant("    health: { interval: off }\n"),
            ),
            (
                "off still checks the user it names",
                tenant("    health: { interval: off, as: { groups: [nobody] } }\n"),
            ),
            (
                "no interval",
                tenant("    health: { as: { groups: [eng] } }\n"),
            ),
            ("no user", tenant("    health: { interval: 30s }\n")),
            (
                "a user without groups",
                tenant("    health: { interval: 30s, as: {} }\n"),
            ),
            (
                "an empty group list",
                tenant("    health: { interval: 30s, as: { groups: [] } }\n"),
            ),
            (
                "groups that grant no role",
                tenant("    health: { interval: 30s, as: { groups: [eng-typo, guests] } }\n"),
            ),
            (
                "a bad interval and timeout",
                tenant("    health: { interval: often, timeout: 0s, as: { groups: [eng] } }\n"),
            ),
            (
                "too short an interval",
                tenant("    health: { interval: 10ms, as: { groups: [eng] } }\n"),
            ),
            (
                "a misspelt key",
                tenant("    health: { intervall: 30s, as: { groups: [eng] } }\n"),
            ),
            (
                "a tenant without hosts",
                BASE.replace("hosts: [portal.acme.example]", "hosts: []")
                    + "    health: { interval: 30s, as: { groups: [eng] } }\n",
            ),
        ];
        insta::assert_snapshot!(table(&MemorySource::default(), &cases));
    }
}
