//! Rules for `shared_apps`: an app defined once, enabled by a list of known tenants, with per-tenant
//! overrides of `label`, `access` and `upstream` only. Here only `tenants` and `overrides` are checked;
//! each enabling tenant compiles its own copy against its own roles (see `apps`). Overrides merge at
//! struct level, and each value keeps its mark, so an error in an override points at the override.

use crate::config::diagnose::{Cx, suggest};
use crate::config::raw::{Env, RawApp, RawOverride, RawSharedApp, Val, field};
use crate::config::yaml::Mark;

/// One shared app, ready to be compiled per tenant.
pub(super) struct SharedApp {
    /// Its place in `shared_apps`, for key paths.
    pub index: usize,
    pub mark: Mark,
    /// The app's own keys.
    app: RawApp,
    /// The tenants that enable it, as listed.
    tenants: Vec<String>,
    /// Per-tenant replacements for some of the app's keys.
    overrides: Vec<(String, RawOverride)>,
}

impl SharedApp {
    pub(super) fn enabled_by(&self, tenant: &str) -> bool {
        self.tenants.iter().any(|enabled| enabled == tenant)
    }

    /// The app as `tenant` sees it: the shared keys, with that tenant's overrides replacing them. An
    /// overriding `upstream` also replaces a shared `static` bundle.
    pub(super) fn for_tenant(&self, tenant: &str) -> RawApp {
        let mut app = self.app.clone();
        let Some((_, replace)) = self.overrides.iter().find(|(name, _)| name == tenant) else {
            return app;
        };
        if replace.label.is_some() {
            app.label.clone_from(&replace.label);
        }
        if replace.access.is_some() {
            app.access.clone_from(&replace.access);
        }
        if replace.upstream.is_some() {
            app.upstream.clone_from(&replace.upstream);
            app.static_dir = None;
        }
        app
    }
}

/// `shared_apps:` (the current key). Apps no known tenant enables are left out.
pub(super) fn read(
    raw: Option<&Val<Vec<Val<RawSharedApp>>>>,
    cx: &mut Cx<'_>,
    tenant_ids: &[&str],
) -> Vec<SharedApp> {
    let items = raw
        .and_then(Val::get)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut out = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Some(raw) = item.get() else { continue };
        let shared = cx.at(&format!("[{index}]"), |cx| {
            let tenants = tenants(raw, item.mark, cx, tenant_ids)?;
            let overrides = overrides(raw, cx, &tenants);
            Some(SharedApp {
                index,
                mark: item.mark,
                app: raw.app(),
                tenants,
                overrides,
            })
        });
        out.extend(shared.filter(|shared| !shared.tenants.is_empty()));
    }
    out
}

/// `tenants:` of a shared app: known tenants, each once.
fn tenants(raw: &RawSharedApp, mark: Mark, cx: &mut Cx<'_>, known: &[&str]) -> Option<Vec<String>> {
    let Some(val) = &raw.tenants else {
        cx.error_at(
            mark,
            "tenants",
            "a shared app needs `tenants`",
            Some(format!(
                "the tenants that enable it, e.g. `tenants: [{}]`",
                known.join(", ")
            )),
        );
        return None;
    };
    let mut tenants: Vec<String> = Vec::new();
    cx.at("tenants", |cx| {
        for item in val.get().map(|list| list.0.as_slice()).unwrap_or_default() {
            let Some(Env(tenant)) = item.get() else {
                continue;
            };
            if !known.contains(&tenant.as_str()) {
                let hint = suggest(tenant, known, &format!("tenants: {}", known.join(", ")));
                cx.error(item.mark, format!("unknown tenant `{tenant}`"), Some(hint));
            } else if tenants.contains(tenant) {
                cx.error(
                    item.mark,
                    format!("tenant `{tenant}` is listed twice"),
                    None,
                );
            } else {
                tenants.push(tenant.clone());
            }
        }
    });
    Some(tenants)
}

/// `overrides:` of a shared app: only for tenants that enable it.
fn overrides(
    raw: &RawSharedApp,
    cx: &mut Cx<'_>,
    enabled: &[String],
) -> Vec<(String, RawOverride)> {
    let mut out = Vec::new();
    let Some(named) = field(&raw.overrides).flatten() else {
        return out;
    };
    cx.at("overrides", |cx| {
        for (name, replace) in &named.0 {
            let Some(tenant) = name.get() else { continue };
            if !enabled.contains(tenant) {
                cx.error_at(
                    name.mark,
                    tenant,
                    format!("overrides for tenant `{tenant}`, which does not enable this app"),
                    Some("add the tenant to `tenants`, or remove these overrides".into()),
                );
                continue;
            }
            if let Some(replace) = replace.get() {
                out.push((tenant.clone(), replace.clone()));
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::table;
    use crate::config::MemorySource;

    const TWO_TENANTS: &str = "\
tenants:
  acme:
    hosts: [acme.test]
    auth: { dev_sign_in: { users: [{ id: ann, groups: [eng] }] } }
    roles:
      developer: { groups: [eng] }
  globex:
    hosts: [globex.test]
    auth: { dev_sign_in: { users: [{ id: gil, groups: [staff] }] } }
    roles:
      engineer: { groups: [staff] }
shared_apps:
";

    #[test]
    fn shared_app_rules() {
        let shared = |app: &str| format!("{TWO_TENANTS}  - {app}\n");
        let cases = [
            (
                "compiles per tenant, with overrides",
                shared(
                    "{ id: wiki, tenants: [acme, globex], access: { roles: [developer] }, static: \"embedded:demo\", overrides: { globex: { label: Globex Wiki, access: { roles: [engineer] }, upstream: http://127.0.0.1:9000 } } }",
                ),
            ),
            (
                "a role one tenant lacks",
                shared(
                    "{ id: wiki, tenants: [acme, globex], access: { roles: [developer] }, static: \"embedded:demo\" }",
                ),
            ),
            (
                "no tenants",
                shared("{ id: wiki, access: { roles: [developer] }, static: \"embedded:demo\" }"),
            ),
            (
                "unknown and repeated tenants",
                shared(
                    "{ id: wiki, tenants: [acme, globx, acme], access: { roles: [developer] }, static: \"embedded:demo\" }",
                ),
            ),
            (
                "overrides for a tenant that does not enable it, and an override key not allowed",
                shared(
                    "{ id: wiki, tenants: [acme], access: { roles: [developer] }, static: \"embedded:demo\", overrides: { globex: {}, acme: { owner: x } } }",
                ),
            ),
            ("not a mapping", shared("wiki")),
            (
                "a problem every tenant's copy has is reported once",
                shared(
                    "{ tenants: [acme, globex], access: { roles: [developer] }, static: \"embedded:demo\" }",
                ),
            ),
        ];
        insta::assert_snapshot!(table(&MemorySource::default(), &cases));
    }
}
