//! Rules for a tenant's `backstage`: the backend URL, who portico is when it calls Backstage, which
//! plugins are reachable (never `auth`), and the catalog namespaces the tenant owns or shares, which are
//! claimed across tenants (see `claims`). Users are signed in to Backstage only in a namespace the
//! tenant owns, so a tenant can never name another tenant's users.

use std::path::Path;

use super::TenantScope;
use super::access;
use super::claims::{Claims, NamespaceClaim, Unscoped};
use super::{upstream, values};
use crate::config::diagnose::suggest;
use crate::config::diagnose::{Cx, join};
use crate::config::model::{
    App, AppId, AppMount, AppTarget, BackstageGrantRule, BackstageIdentity, BackstageSettings,
    BackstageSignIn, CompressMode, CookieMode, IdentityModes, Secret, Text,
};
use crate::config::raw::RawBackstageUi;
use crate::config::raw::{Env, FlexBool, RawBackstage, Val, field};
use crate::config::yaml::Mark;
use crate::rbac::AccessPolicy;
use crate::rbac::PathGlob;

pub(super) fn backstage(
    val: &Val<RawBackstage>,
    cx: &mut Cx<'_>,
    scope: &TenantScope<'_>,
    claims: &mut Claims,
    base_dir: &Path,
) -> Option<BackstageSettings> {
    let tenant = scope.id;
    let raw = val.get()?;
    let url = match &raw.url {
        None => {
            let hint = "the Backstage backend's base URL, e.g. http://127.0.0.1:7007";
            cx.missing(val.mark, "url", hint);
            None
        }
        Some(url) => values::parsed(cx, "url", url, |text| {
            values::parse_upstream(text)
                .map(|backend| (backend, text.trim_end_matches('/').to_ascii_lowercase()))
                .map_err(|message| {
                    values::Bad::new(
                        message,
                        "e.g. http://backstage.internal:7007 or https://backstage.internal",
                    )
                })
        }),
    };
    // The backend is the platform's (the main file), so its files are not confined to a team.
    let files = upstream::Files {
        base_dir,
        team: None,
    };
    let url = match url {
        Some((backend, text)) => {
            upstream::with_tls(backend, raw.tls.as_ref(), cx, &files).map(|backend| (backend, text))
        }
        None => None,
    };
    let identity = identity(raw, val.mark, cx, base_dir);
    let plugins = plugins(raw, cx);
    let namespaces = namespaces(cx, "namespaces", &raw.namespaces);
    let shared_namespaces = namespaces_shared(cx, raw, val.mark, &namespaces);
    if let Some((_, backend)) = &url {
        claim(
            cx,
            claims,
            tenant,
            backend,
            &namespaces,
            &shared_namespaces,
            val.mark,
        );
    }
    let user_namespace = user_namespace(raw, cx, &namespaces);
    let allow_unscoped = allow_unscoped(raw, cx);
    let sign_in = sign_in(raw, val.mark, cx);
    let readable: Vec<&str> = namespaces
        .iter()
        .chain(&shared_namespaces)
        .map(|(name, _)| name.as_str())
        .collect();
    let permissions = cx.at("permissions", |cx| {
        permissions(raw, cx, scope, &readable, &user_namespace)
    });
    let (backend, _) = url?;
    Some(BackstageSettings {
        backend,
        identity: identity?,
        plugins,
        namespaces: namespaces.into_iter().map(|(name, _)| name).collect(),
        shared_namespaces: shared_namespaces
            .into_iter()
            .map(|(name, _)| name)
            .collect(),
        user_namespace,
        allow_unscoped,
        sign_in: sign_in?,
        permissions: permissions?,
        catalog_app: field(&raw.catalog_app)?.is_none_or(|FlexBool(on)| *on),
    })
}

/// `ui: { access, url?, label?, category? }`: Backstage's web UI as an app of the tenant at
/// `/backstage/`. It gets no identity headers or assertion and keeps no cookies (the UI's files are
/// the same for everyone; its API calls go through `/backstage/api/` with the user's credential), and
/// its shareable answers (the hashed static files) are kept in portico's response cache.
pub(super) fn ui_app(
    val: &Val<RawBackstageUi>,
    cx: &mut Cx<'_>,
    scope: &TenantScope<'_>,
    settings: &BackstageSettings,
) -> Option<App> {
    let raw = val.get()?;
    let access = match &raw.access {
        Some(access) => cx.at("access", |cx| access::access_rule(access, cx, scope)),
        None => {
            let hint = "who may open Backstage's UI, e.g. `access: { roles: [developer] }`";
            cx.missing(val.mark, "access", hint);
            None
        }
    };
    let upstream = match &raw.url {
        None => Some(settings.backend.clone()),
        Some(url) => {
            values::parsed(cx, "url", url, |text| {
                values::parse_upstream(text).map_err(|message| {
                values::Bad::new(message, "where Backstage's UI files are served, e.g. http://backstage.internal:7007")
            })
            })
        }
    };
    let label = values::text_field(cx, "label", &raw.label);
    let category = values::text_field(cx, "category", &raw.category);
    let access = access?;
    Some(App {
        id: AppId::new("backstage"),
        label: label?.unwrap_or_else(|| Text::new("Backstage")),
        category: category?,
        icon: Some("it-system".to_owned()),
        owner: None,
        description: Some(Text::builtin("builtin.backstage.description")),
        catalog_ref: None,
        policy: AccessPolicy::only(access.clone()),
        access,
        target: AppTarget::Upstream(upstream?),
        nodes: Vec::new(),
        luigi_client: false,
        identity: IdentityModes {
            assertion: false,
            headers: false,
            access_token: false,
        },
        cookies: CookieMode::Drop,
        mount: AppMount::BackstageUi,
        cache: true,
        compress: CompressMode::Assets,
    })
}

/// `sign_in: auto | assertion | oauth2_proxy`.
fn sign_in(raw: &RawBackstage, mark: Mark, cx: &mut Cx<'_>) -> Option<BackstageSignIn> {
    let Some(Env(text)) = field(&raw.sign_in)? else {
        return Some(BackstageSignIn::default());
    };
    let found = BackstageSignIn::ALL.iter().find(|(name, _)| name == text);
    if found.is_none() {
        let names = BackstageSignIn::NAMES;
        let hint = suggest(text, &names, &format!("one of: {}", names.join(", ")));
        let mark = raw.sign_in.as_ref().map_or(mark, |val| val.mark);
        cx.error_at(
            mark,
            "sign_in",
            format!("unknown sign-in `{text}`"),
            Some(hint),
        );
    }
    found.map(|(_, mode)| *mode)
}

/// `permissions: [{ roles: [...], allow: [catalog.entity.read], namespaces: [...] }]`. `None` when
/// any rule is broken (reported): a rule left out could hide a mistake in what Backstage allows.
fn permissions(
    raw: &RawBackstage,
    cx: &mut Cx<'_>,
    scope: &TenantScope<'_>,
    readable: &[&str],
    user_namespace: &str,
) -> Option<Vec<BackstageGrantRule>> {
    let Some(list) = field(&raw.permissions)? else {
        return Some(Vec::new());
    };
    let mut rules = Vec::new();
    let mut ok = true;
    for (index, item) in list.iter().enumerate() {
        let Some(rule) = item.get() else {
            ok = false;
            continue;
        };
        let rule = cx.at(&format!("[{index}]"), |cx| {
            let roles = access::rule_roles(&rule.roles, item.mark, cx, scope);
            let allow = permission_names(&rule.allow, item.mark, cx);
            let namespaces = grant_namespaces(&rule.namespaces, cx, readable, user_namespace);
            Some(BackstageGrantRule {
                roles: roles?.roles,
                allow: allow?,
                namespaces: namespaces?,
            })
        });
        match rule {
            Some(rule) => rules.push(rule),
            None => ok = false,
        }
    }
    ok.then_some(rules)
}

/// `allow:` of a permission rule: Backstage permission names (`catalog.entity.read`), a `prefix.*`
/// pattern, or `*`; at least one.
fn permission_names(
    raw: &Option<Val<crate::config::raw::Texts>>,
    mark: Mark,
    cx: &mut Cx<'_>,
) -> Option<Vec<String>> {
    let hint = "Backstage permission names, e.g. `allow: [catalog.entity.read]`, `catalog.entity.*` or `*`";
    let Some(val) = raw else {
        cx.missing(mark, "allow", hint);
        return None;
    };
    let list = val.get()?;
    let mut names = Vec::new();
    let mut ok = true;
    for (index, item) in list.0.iter().enumerate() {
        let Some(Env(name)) = item.get() else {
            ok = false;
            continue;
        };
        if !permission_pattern_ok(name) {
            let message = format!("`{name}` is not a Backstage permission name or pattern");
            cx.error_at(
                item.mark,
                &format!("allow[{index}]"),
                message,
                Some(hint.into()),
            );
            ok = false;
            continue;
        }
        names.push(name.clone());
    }
    if names.is_empty() && ok {
        cx.error_at(
            val.mark,
            "allow",
            "a permission rule needs at least one permission",
            Some(hint.into()),
        );
        return None;
    }
    ok.then_some(names)
}

/// `*`, or dot-separated parts of letters, digits, `-` and `_`, optionally ending in `.*` (what the
/// policy in integrations/backstage accepts).
fn permission_pattern_ok(name: &str) -> bool {
    if name == "*" {
        return true;
    }
    let name = name.strip_suffix(".*").unwrap_or(name);
    !name.is_empty()
        && name.len() <= 200
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// `namespaces:` of a permission rule: some of the tenant's own or shared namespaces (any namespace
/// for an unscoped tenant). Default: all of them, or the user namespace for an unscoped tenant.
fn grant_namespaces(
    raw: &Option<Val<crate::config::raw::Texts>>,
    cx: &mut Cx<'_>,
    readable: &[&str],
    user_namespace: &str,
) -> Option<Vec<String>> {
    if raw.is_none() {
        if readable.is_empty() {
            return Some(vec![user_namespace.to_owned()]);
        }
        return Some(readable.iter().map(|name| (*name).to_owned()).collect());
    }
    let listed = namespaces(cx, "namespaces", raw);
    let mut ok = true;
    for (name, mark) in &listed {
        if !readable.is_empty() && !readable.contains(&name.as_str()) {
            cx.error_at(
                *mark,
                "namespaces",
                format!("`{name}` is not one of this tenant's namespaces"),
                Some(format!("the tenant's namespaces: {}", readable.join(", "))),
            );
            ok = false;
        }
    }
    ok.then(|| listed.into_iter().map(|(name, _)| name).collect())
}

/// `identity: user | service`; a service needs its token: `service_token` (`signed`, or the token)
/// or `service_token_file`, read now (each reload reads it again).
fn identity(
    raw: &RawBackstage,
    mark: Mark,
    cx: &mut Cx<'_>,
    base_dir: &Path,
) -> Option<BackstageIdentity> {
    let identity = field(&raw.identity)?.map_or("user", |Env(text)| text.as_str());
    match (identity, &raw.service_token, &raw.service_token_file) {
        ("user", _, _) => Some(BackstageIdentity::User),
        ("service", Some(_), Some(file)) => {
            cx.error_at(
                file.mark,
                "service_token_file",
                "`service_token` and `service_token_file` both name the token",
                Some("keep one: the file, to rotate the token without a restart".into()),
            );
            None
        }
        ("service", Some(token), None) if matches!(token.get(), Some(Env(token)) if token == "signed") => {
            Some(BackstageIdentity::SignedService)
        }
        ("service", Some(token), None) => token
            .get()
            .map(|Env(token)| BackstageIdentity::Service(Secret(token.clone()))),
        ("service", None, Some(file)) => {
            let Env(name) = file.get()?;
            let path = base_dir.join(name);
            let token = cx
                .source
                .read(&path)
                .ok()
                .map(|text| text.trim().to_owned());
            match token.filter(|token| !token.is_empty() && !token.contains(char::is_whitespace)) {
                Some(token) => Some(BackstageIdentity::Service(Secret(token))),
                None => {
                    cx.error_at(
                        file.mark,
                        "service_token_file",
                        format!("`{}` is unreadable, empty, or more than one token", path.display()),
                        Some("one line: the token of Backstage's backend.auth.externalAccess static entry".into()),
                    );
                    None
                }
            }
        }
        ("service", None, None) => {
            cx.error_at(
                mark,
                "service_token",
                "service identity needs `service_token`",
                Some("`service_token: signed` (portico signs a short-lived token that Backstage verifies with portico's JWKS), a static token from Backstage's backend.auth.externalAccess in `service_token_file: /run/secrets/backstage-token` (read again at each reload), or `service_token: ${BACKSTAGE_TOKEN}`".into()),
            );
            None
        }
        (other, _, _) => {
            let mark = raw.identity.as_ref().map_or(mark, |val| val.mark);
            cx.error_at(
                mark,
                "identity",
                format!("unknown Backstage identity `{other}`"),
                Some("`user` (sign users in to Backstage) or `service` (a static token)".into()),
            );
            None
        }
    }
}

/// `plugins` (default `[catalog]`): identifiers, never `auth`.
fn plugins(raw: &RawBackstage, cx: &mut Cx<'_>) -> Vec<String> {
    let Some(list) = field(&raw.plugins).flatten() else {
        return vec!["catalog".to_owned()];
    };
    let mut plugins = Vec::new();
    cx.at("plugins", |cx| {
        for item in &list.0 {
            let Some(Env(plugin)) = item.get() else { continue };
            if plugin == "auth" {
                cx.error(
                    item.mark,
                    "the `auth` plugin is never reachable through portico",
                    Some("portico signs users in to Backstage itself; exposing auth would let clients mint tokens".into()),
                );
                continue;
            }
            if values::identifier(cx, plugin, item.mark, "plugin id") {
                plugins.push(plugin.clone());
            }
        }
    });
    plugins
}

/// A list of catalog namespace names, lower-cased and without repeats.
fn namespaces(
    cx: &mut Cx<'_>,
    key: &str,
    raw: &Option<Val<crate::config::raw::Texts>>,
) -> Vec<(String, Mark)> {
    let mut out: Vec<(String, Mark)> = Vec::new();
    let Some(list) = field(raw).flatten() else {
        return out;
    };
    for item in &list.0 {
        let Some(Env(name)) = item.get() else {
            continue;
        };
        if !values::namespace_ok(name) {
            cx.error_at(
                item.mark,
                key,
                format!("`{name}` is not a Backstage namespace"),
                Some("letters, digits, `-`, `_` and `.`, at most 63 characters".into()),
            );
            continue;
        }
        if !out.iter().any(|(seen, _)| seen.eq_ignore_ascii_case(name)) {
            out.push((name.to_ascii_lowercase(), item.mark));
        }
    }
    out
}

/// `shared_namespaces`, which need namespaces of the tenant's own beside them.
fn namespaces_shared(
    cx: &mut Cx<'_>,
    raw: &RawBackstage,
    mark: Mark,
    own: &[(String, Mark)],
) -> Vec<(String, Mark)> {
    let shared = namespaces(cx, "shared_namespaces", &raw.shared_namespaces);
    if own.is_empty() && !shared.is_empty() {
        let mark = raw.shared_namespaces.as_ref().map_or(mark, |val| val.mark);
        cx.error_at(
            mark,
            "shared_namespaces",
            "shared namespaces without `namespaces` of its own would leave the catalog unscoped",
            Some("list the tenant's own catalog namespaces in `namespaces`".into()),
        );
    }
    shared
}

/// Records the tenant's namespaces (or that it has none) for the cross-tenant check.
fn claim(
    cx: &Cx<'_>,
    claims: &mut Claims,
    tenant: &str,
    backend: &str,
    own: &[(String, Mark)],
    shared: &[(String, Mark)],
    mark: Mark,
) {
    for (list, is_shared, key) in [
        (own, false, "namespaces"),
        (shared, true, "shared_namespaces"),
    ] {
        for (name, mark) in list {
            claims.namespace(NamespaceClaim {
                tenant: tenant.to_owned(),
                backend: backend.to_owned(),
                namespace: name.clone(),
                shared: is_shared,
                mark: *mark,
                path: join(cx.path(), key),
            });
        }
    }
    if own.is_empty() {
        claims.unscoped(Unscoped {
            tenant: tenant.to_owned(),
            backend: backend.to_owned(),
            mark,
            path: join(cx.path(), "namespaces"),
        });
    }
}

/// The namespace users are signed in to Backstage in: one the tenant owns (not merely shares), so
/// a tenant can never name users of another tenant's namespace, or of `default` it does not own.
fn user_namespace(raw: &RawBackstage, cx: &mut Cx<'_>, namespaces: &[(String, Mark)]) -> String {
    let fallback = namespaces
        .first()
        .map_or_else(|| "default".to_owned(), |(first, _)| first.clone());
    let Some(val) = &raw.user_namespace else {
        return fallback;
    };
    let Some(Env(name)) = val.get() else {
        return fallback;
    };
    let name = name.to_ascii_lowercase();
    let owned = namespaces.is_empty() || namespaces.iter().any(|(owned, _)| *owned == name);
    let valid = values::namespace_ok(&name);
    if !valid || !owned {
        let listed: Vec<&str> = namespaces.iter().map(|(n, _)| n.as_str()).collect();
        cx.error_at(
            val.mark,
            "user_namespace",
            if valid {
                format!("`{name}` is not one of this tenant's own `namespaces`")
            } else {
                format!("`{name}` is not a Backstage namespace")
            },
            Some(if listed.is_empty() {
                "letters, digits, `-`, `_` and `.`, at most 63 characters".to_owned()
            } else {
                format!(
                    "users are signed in to Backstage only in a namespace the tenant owns: one of [{}]",
                    listed.join(", ")
                )
            }),
        );
    }
    name
}

/// `allow_unscoped`: catalog endpoint globs let through although they cannot be scoped.
fn allow_unscoped(raw: &RawBackstage, cx: &mut Cx<'_>) -> Vec<PathGlob> {
    let mut globs = Vec::new();
    for item in field(&raw.allow_unscoped)
        .flatten()
        .map(|l| l.0.as_slice())
        .unwrap_or_default()
    {
        let Some(Env(glob)) = item.get() else {
            continue;
        };
        match PathGlob::parse(glob) {
            Some(parsed) => globs.push(parsed),
            None => cx.error_at(
                item.mark,
                "allow_unscoped",
                format!("`{glob}` is not a path glob"),
                Some("a catalog endpoint below /api/catalog, e.g. `/locations`".into()),
            ),
        }
    }
    globs
}

#[cfg(test)]
mod tests {
    use super::super::testing::{BASE, table};
    use crate::config::MemorySource;

    #[test]
    fn backstage_rules() {
        let mount = |keys: &str| format!("{BASE}    backstage: {{ {keys} }}\n");
        let cases = [
            ("no url", mount("identity: user")),
            (
                "a bad url hides nothing",
                mount("url: \"ftp://nope\", identity: robot, plugins: [auth, Catalog]"),
            ),
            (
                "service without a token",
                mount("url: http://127.0.0.1:7007, identity: service"),
            ),
            (
                "namespaces",
                mount(
                    "url: http://127.0.0.1:7007, namespaces: [acme, \"no/slash\", ACME], user_namespace: other, allow_unscoped: [locations, /locations]",
                ),
            ),
            (
                "shared without own",
                mount("url: http://127.0.0.1:7007, shared_namespaces: [common]"),
            ),
            (
                "a namespace claimed twice, and an unscoped neighbour",
                format!(
                    "{}  globex:\n    hosts: [g.example]\n    auth: {{ dev_sign_in: {{ users: [{{ id: g }}] }} }}\n    roles: {{}}\n    backstage: {{ url: http://127.0.0.1:7007/, namespaces: [Acme] }}\n  initech:\n    hosts: [i.example]\n    auth: {{ dev_sign_in: {{ users: [{{ id: i }}] }} }}\n    roles: {{}}\n    backstage: {{ url: http://127.0.0.1:7007 }}\n",
                    mount(
                        "url: http://127.0.0.1:7007, namespaces: [acme], shared_namespaces: [common]"
                    )
                ),
            ),
            (
                "sign-in and permission rules",
                mount(
                    "url: http://127.0.0.1:7007, namespaces: [acme], shared_namespaces: [common], sign_in: oauth2proxy, permissions: [{ roles: [develper], allow: [catalog.entity.read] }, { roles: [developer], allow: [\"catalog entity\", \"catalog.*.read\"] }, { roles: [developer] }, { roles: [developer], allow: [catalog.entity.*], namespaces: [acme, globex] }]",
                ),
            ),
            (
                "a token twice",
                mount(
                    "url: http://127.0.0.1:7007, identity: service, service_token: abc, service_token_file: token",
                ),
            ),
            (
                "a token file that is not there",
                mount("url: http://127.0.0.1:7007, identity: service, service_token_file: token"),
            ),
            (
                "a UI without an access rule, at a bad URL",
                mount("url: http://127.0.0.1:7007, ui: { url: \"ftp://x\" }"),
            ),
            (
                "a UI for an unknown role",
                mount("url: http://127.0.0.1:7007, ui: { access: { roles: [develper] } }"),
            ),
            (
                "permission rules that are fine",
                mount(
                    "url: http://127.0.0.1:7007, namespaces: [acme], sign_in: assertion, permissions: [{ roles: [developer], allow: [catalog.entity.read, \"catalog.location.*\", \"*\"], namespaces: [acme] }]",
                ),
            ),
        ];
        insta::assert_snapshot!(table(&MemorySource::default(), &cases));
    }

    #[test]
    fn catalog_refs_and_the_catalog_bundle_need_the_tenants_backstage() {
        let backstage = "    backstage: { url: http://127.0.0.1:7007, namespaces: [acme], shared_namespaces: [common] }\n";
        let app = |keys: &str| {
            format!(
                "    apps: [{{ id: x, access: {{ roles: [developer] }}, static: \"embedded:demo\", {keys} }}]\n"
            )
        };
        let cases = [
            (
                "refs in and out of the tenant's namespaces",
                format!(
                    "{BASE}{backstage}    apps: [{{ id: a, access: {{ roles: [developer] }}, static: \"embedded:demo\", catalog_ref: \"Component:ACME/cost-insights\" }}, {{ id: b, access: {{ roles: [developer] }}, static: \"embedded:demo\", catalog_ref: \"component:common/design-system\" }}]\n"
                ),
            ),
            (
                "another tenant's namespace",
                format!(
                    "{BASE}{backstage}{}",
                    app("catalog_ref: \"component:globex/inventory\"")
                ),
            ),
            (
                "not a full ref",
                format!("{BASE}{backstage}{}", app("catalog_ref: cost-insights")),
            ),
            (
                "no backstage",
                format!("{BASE}{}", app("catalog_ref: \"component:acme/x\"")),
            ),
            (
                "the catalog bundle without a backstage",
                format!(
                    "{BASE}    apps: [{{ id: cat, access: {{ roles: [developer] }}, static: \"embedded:catalog\" }}]\n"
                ),
            ),
        ];
        insta::assert_snapshot!(table(&MemorySource::default(), &cases));
    }

    fn compiled(text: &str) -> crate::config::Config {
        crate::config::load_str(
            &MemorySource::default(),
            "portico.yaml",
            text,
            std::path::Path::new("/etc/portico"),
        )
        .map(|loaded| loaded.config)
        .unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn a_tenant_with_a_backstage_gets_the_catalog_app_unless_it_has_its_own() {
        let with = |extra: &str, apps: &str| {
            compiled(&format!(
                "{BASE}      ops: {{ groups: [ops] }}\n    backstage: {{ url: http://127.0.0.1:7007{extra} }}\n    apps: [{apps}]\n"
            ))
        };
        let demo = "{ id: docs, access: { roles: [developer] }, static: \"embedded:demo\" }";
        let config = with("", demo);
        let catalog = config.tenants[0]
            .app("catalog")
            .unwrap_or_else(|| panic!("the built-in app"));
        assert_eq!(catalog.label, "Catalog");
        assert!(matches!(&catalog.target, crate::config::AppTarget::Embedded(b) if b == "catalog"));
        let roles: Vec<&str> = catalog.access.roles.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(roles, ["developer", "ops"], "every role of the tenant");
        // Turned off, or replaced by the tenant's own (its label and roles).
        assert!(
            with(", catalog_app: false", demo).tenants[0]
                .app("catalog")
                .is_none()
        );
        let own = format!(
            "{demo}, {{ id: software, label: Software, access: {{ roles: [ops] }}, static: \"embedded:catalog\" }}"
        );
        let config = with("", &own);
        assert!(config.tenants[0].app("catalog").is_none());
        assert_eq!(
            config.tenants[0]
                .app("software")
                .map(|a| a.label.fallback()),
            Some("Software")
        );
        // No Backstage, no Catalog app.
        let plain = compiled(&format!("{BASE}    apps: [{demo}]\n"));
        assert!(plain.tenants[0].app("catalog").is_none());
    }

    #[test]
    fn permission_rules_default_to_the_tenants_namespaces() {
        let text = format!(
            "{BASE}    backstage: {{ url: http://127.0.0.1:7007, namespaces: [acme], shared_namespaces: [common], permissions: [{{ roles: [developer], allow: [catalog.entity.read] }}] }}\n"
        );
        let config = crate::config::load_str(
            &MemorySource::default(),
            "portico.yaml",
            &text,
            std::path::Path::new("/etc/portico"),
        )
        .map(|loaded| loaded.config)
        .unwrap_or_else(|error| panic!("{error}"));
        let settings = config.tenants[0]
            .backstage
            .as_ref()
            .map(|b| (b.sign_in, b.permissions.clone()));
        let (sign_in, rules) = settings.unwrap_or_else(|| panic!("a backstage block"));
        assert_eq!(sign_in, crate::config::BackstageSignIn::Auto);
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].allow, ["catalog.entity.read"]);
        assert_eq!(rules[0].namespaces, ["acme", "common"]);
        assert_eq!(rules[0].roles[0].0, "developer");
    }
}
