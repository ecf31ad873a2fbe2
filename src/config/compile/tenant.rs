//! Rules for `tenants`: each tenant's id, hosts, origin, branding and Luigi settings, and the order in
//! which its parts are read (roles before the apps that name them). Every part is read even when
//! another is broken; the tenant is assembled only at the end.

use std::path::Path;
use std::sync::Arc;

use super::claims::Claims;
use super::shared_apps::{self, SharedApp};
use super::values::{self, Bad};
use super::{
    TeamScope, TenantScope, access, app_sources, backstage, health, previews, sign_in, tokens,
};
use crate::config::diagnose::{Cx, suggest};
use crate::config::env::TeamEnv;
use crate::config::model::{
    App, AppId, AppMount, AppTarget, BackstageSettings, BrandFile, BrandImage, Branding,
    CompressMode, CookieMode, IdentityModes, LuigiSettings, Placeholder, PublicOrigin,
    RequestAccess, RequestAccessError, ResponsiveNavigation, SignIn, Tenant, TenantId, Text, Theme,
};
use crate::config::raw::{
    Env, RawBranding, RawConfig, RawLuigi, RawTenant, RawTheme, Shown, Val, Written, field,
};
use crate::config::yaml::Mark;
use crate::rbac::{AccessPolicy, AccessRule, RoleMap};

/// `tenants:`, with the shared apps each tenant enables. `mark` is the document's, for a missing key.
pub(super) fn tenants(
    raw: &RawConfig,
    mark: Mark,
    cx: &mut Cx<'_>,
    base_dir: &Path,
    claims: &mut Claims,
) -> Vec<Arc<Tenant>> {
    // Tenant ids first: shared apps name them, and each tenant compiles the shared apps it enables.
    let named = raw
        .tenants
        .as_ref()
        .and_then(Val::get)
        .map(|named| named.0.as_slice())
        .unwrap_or_default();
    let ids: Vec<&str> = named
        .iter()
        .filter_map(|(id, _)| id.get())
        .map(String::as_str)
        .collect();
    let shared = cx.at("shared_apps", |cx| {
        shared_apps::read(raw.shared_apps.as_ref(), cx, &ids)
    });
    let mut tenants = Vec::new();
    let Some(val) = &raw.tenants else {
        let hint = "define at least one tenant under `tenants:`";
        cx.missing(mark, "tenants", hint);
        return tenants;
    };
    cx.at("tenants", |cx| {
        for (id, tenant) in named {
            let Some(id_text) = id.get() else { continue };
            cx.at(id_text, |cx| {
                if !values::identifier(cx, id_text, id.mark, "tenant id") {
                    return;
                }
                let read = tenant.get().and_then(|raw| {
                    let parts = Parts {
                        id: id_text,
                        mark: tenant.mark,
                        base_dir,
                        shared: &shared,
                    };
                    self::tenant(raw, &parts, cx, claims)
                });
                tenants.extend(read.map(Arc::new));
            });
        }
        if named.is_empty() && val.get().is_some() {
            cx.error(
                val.mark,
                "no tenants are defined",
                Some("add one, e.g. `tenants: { acme: { … } }`".into()),
            );
        }
    });
    tenants
}

/// What a tenant is read with besides its own keys.
struct Parts<'p> {
    id: &'p str,
    /// The tenant's mapping, for keys it lacks.
    mark: Mark,
    base_dir: &'p Path,
    shared: &'p [SharedApp],
}

fn tenant(
    raw: &RawTenant,
    parts: &Parts<'_>,
    cx: &mut Cx<'_>,
    claims: &mut Claims,
) -> Option<Tenant> {
    let id = parts.id;
    let public_origin = public_origin(raw, cx);
    let hosts = hosts(raw, cx, id, claims);
    let branding = cx.at("branding", |cx| {
        branding(raw.branding.as_ref(), cx, id, parts.base_dir)
    });
    let luigi = cx.at("luigi", |cx| luigi(raw.luigi.as_ref(), cx));
    let request_access = request_access(raw, cx);
    let sign_in = match &raw.auth {
        Some(val) => cx.at("auth", |cx| sign_in::sign_in(val, cx)),
        None => {
            let hint = "say how users sign in, e.g. `auth: { dev_sign_in: { users: [...] } }`";
            cx.missing(parts.mark, "auth", hint);
            None
        }
    };
    let roles = match &raw.roles {
        Some(val) => cx.at("roles", |cx| access::roles(val, cx)),
        None => {
            let hint = "map IdP groups to roles, e.g. `roles: { developer: { groups: [eng] } }`";
            cx.missing(parts.mark, "roles", hint);
            RoleMap::default()
        }
    };
    let health = tenant_health(raw, cx, &roles);
    let team = team_scope(raw, cx, id, parts.base_dir);
    let scope = TenantScope {
        id,
        roles: &roles,
        base_dir: parts.base_dir,
        team: None,
        backstage: None,
    };
    let backstage = match &raw.backstage {
        Some(val) => cx
            .at("backstage", |cx| {
                backstage::backstage(val, cx, &scope, claims, parts.base_dir)
            })
            .map(Some),
        None => Some(None),
    };
    let scope = TenantScope {
        backstage: backstage.as_ref().map(Option::as_ref),
        ..scope
    };
    let previews = cx.at("previews", |cx| {
        previews::previews(raw.previews.as_ref(), cx, &scope)
    });
    let tokens = cx.at("tokens", |cx| tokens::tokens(raw.tokens.as_ref(), cx));
    let mut apps = app_sources::tenant_apps(raw, cx, &scope, &team, parts.shared);
    if let Some(Some(settings)) = &backstage {
        apps.extend(builtin_catalog_app(settings, &roles, &apps));
        let ui = raw
            .backstage
            .as_ref()
            .and_then(Val::get)
            .and_then(|raw| raw.ui.as_ref());
        if let Some(ui) = ui {
            let app = cx.at("backstage", |cx| {
                cx.at("ui", |cx| backstage::ui_app(ui, cx, &scope, settings))
            });
            apps.extend(app.map(Arc::new));
        }
    }
    if let (Some(SignIn::Oidc(_)), Some(None)) = (&sign_in, &public_origin) {
        cx.error_at(
            parts.mark,
            "public_origin",
            "OIDC sign-in needs the tenant's `public_origin`",
            Some("redirect URIs are built from it, never from the Host header, e.g. `public_origin: https://portal.acme.example`".into()),
        );
    }
    let public_origin = public_origin?;
    let hosts = hosts?;
    let origin = match (&public_origin, hosts.first()) {
        (Some(origin), _) => Some(origin.origin.clone()),
        (None, Some(host)) => Some(format!("http://{host}")),
        (None, None) => None,
    };
    let assertion_issuer = origin
        .clone()
        .unwrap_or_else(|| format!("urn:portico:tenant:{id}"));
    Some(Tenant {
        id: TenantId::new(id),
        hosts,
        public_origin,
        origin,
        assertion_issuer,
        backstage: backstage?,
        branding: branding?,
        luigi: luigi?,
        sign_in: sign_in?,
        roles,
        apps,
        request_access: request_access?,
        health: health?,
        previews: previews?,
        tokens: tokens?,
    })
}

/// `health:`, which needs to know whether the tenant lists a host.
fn tenant_health(
    raw: &RawTenant,
    cx: &mut Cx<'_>,
    roles: &RoleMap,
) -> Option<Option<crate::config::HealthSettings>> {
    cx.at("health", |cx| {
        let has_host = field(&raw.hosts)
            .flatten()
            .is_some_and(|hosts| !hosts.0.is_empty());
        health::health(raw.health.as_ref(), cx, roles, has_host)
    })
}

/// The Catalog app every tenant with a Backstage gets (`backstage.catalog_app`, default on): the
/// embedded `catalog` bundle, for every role of the tenant (what each user sees in it is Backstage's
/// and the catalog scope's decision). An app of the tenant named `catalog`, or serving that bundle
/// itself (with its own label and roles), takes its place.
fn builtin_catalog_app(
    settings: &BackstageSettings,
    roles: &RoleMap,
    apps: &[Arc<App>],
) -> Option<Arc<App>> {
    let taken = apps.iter().any(|app| {
        app.id == CATALOG_APP
            || matches!(&app.target, AppTarget::Embedded(bundle) if bundle == CATALOG_APP)
    });
    if !settings.catalog_app || taken || roles.roles.is_empty() {
        return None;
    }
    let access = AccessRule {
        roles: roles.roles.iter().map(|(role, _)| role.clone()).collect(),
    };
    Some(Arc::new(App {
        id: AppId::new(CATALOG_APP),
        label: Text::builtin("builtin.catalog.label"),
        category: None,
        icon: Some("course-book".to_owned()),
        owner: None,
        description: Some(Text::builtin("builtin.catalog.description")),
        catalog_ref: None,
        policy: AccessPolicy::only(access.clone()),
        access,
        target: AppTarget::Embedded(CATALOG_APP.to_owned()),
        nodes: Vec::new(),
        luigi_client: true,
        identity: IdentityModes::default(),
        cookies: CookieMode::default(),
        mount: AppMount::Apps,
        cache: false,
        compress: CompressMode::default(),
    }))
}

/// The id and the embedded bundle of the built-in Catalog app.
pub(crate) const CATALOG_APP: &str = "catalog";

/// `public_origin`: `Some(None)` when absent, `None` when broken (reported).
fn public_origin(raw: &RawTenant, cx: &mut Cx<'_>) -> Option<Option<PublicOrigin>> {
    let Some(val) = &raw.public_origin else {
        return Some(None);
    };
    values::parsed(cx, "public_origin", val, |text| {
        values::parse_origin(text).map_err(|message| Bad {
            message,
            hint: Some("the URL users type, e.g. https://portal.acme.example".into()),
        })
    })
    .map(Some)
}

/// `request_access`: `Some(None)` when absent, `None` when broken (every problem reported).
fn request_access(raw: &RawTenant, cx: &mut Cx<'_>) -> Option<Option<RequestAccess>> {
    let (Some(Shown(text)), Some(written)) = (field(&raw.request_access)?, &raw.request_access)
    else {
        return Some(None);
    };
    let errors = match RequestAccess::parse(text) {
        Ok(template) => return Some(Some(template)),
        Err(errors) => errors,
    };
    let names: Vec<&str> = Placeholder::ALL.iter().map(|(name, _)| *name).collect();
    let listing = format!(
        "placeholders: {}",
        names
            .iter()
            .map(|name| format!("{{{name}}}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let example = "e.g. `https://tickets.acme.example/new?summary=Access+to+{app}&group={group}`";
    for error in errors {
        let hint = match &error {
            RequestAccessError::UnknownPlaceholder(name) => {
                Some(suggest(name, &names, &listing))
            }
            RequestAccessError::Scheme(_) | RequestAccessError::PlainHttp(_) => Some(format!(
                "an https:// link (plain http:// only to localhost), or mailto:, {example}"
            )),
            RequestAccessError::PlaceholderInAddress(_) => Some(
                "placeholders may fill the path, the query and the fragment (the body of a mailto:), so the link always goes where it is written"
                    .to_owned(),
            ),
            RequestAccessError::BadCharacter(_) => Some(
                "percent-encode it: a space `%20` (or `+` in a query), `\"` `%22`, `<` `%3C`, `>` `%3E`"
                    .to_owned(),
            ),
            RequestAccessError::Unclosed | RequestAccessError::StrayClose => Some(format!(
                "braces are for placeholders; write a literal one as `%7B` or `%7D`; {listing}"
            )),
            RequestAccessError::NoHost
            | RequestAccessError::BadHost(_)
            | RequestAccessError::Credentials
            | RequestAccessError::NoAddress => Some(example.to_owned()),
        };
        cx.error_at(written.mark, "request_access", error.to_string(), hint);
    }
    None
}

/// `hosts`, lower-cased and claimed for this tenant.
fn hosts(raw: &RawTenant, cx: &mut Cx<'_>, id: &str, claims: &mut Claims) -> Option<Vec<String>> {
    let list = field(&raw.hosts)?;
    let mut hosts = Vec::new();
    for (index, item) in list
        .map(|list| list.0.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let Some(Env(host)) = item.get() else {
            continue;
        };
        let host = host.to_ascii_lowercase();
        claims.host(cx, id, &host, item.mark, &format!("hosts[{index}]"));
        hosts.push(host);
    }
    Some(hosts)
}

/// `apps_env` and `apps_static_roots`: what the tenant lets its teams' app files reach.
fn team_scope(raw: &RawTenant, cx: &mut Cx<'_>, tenant: &str, base_dir: &Path) -> TeamScope {
    let mut scope = TeamScope {
        env: TeamEnv {
            tenant: tenant.to_owned(),
            main_file: cx.file().clone(),
            ..TeamEnv::default()
        },
        ..TeamScope::default()
    };
    let env = field(&raw.apps_env).flatten().map(|list| list.0.as_slice());
    for item in env.unwrap_or_default() {
        let Some(Env(name)) = item.get() else {
            continue;
        };
        if crate::config::env::valid_name(name) {
            scope.env.allowed.push(name.clone());
        } else {
            cx.error_at(
                item.mark,
                "apps_env",
                format!("`{name}` is not an environment variable name"),
                Some("the bare name, e.g. `apps_env: [REGION]`, not `${REGION}`".into()),
            );
        }
    }
    let roots = field(&raw.apps_static_roots)
        .flatten()
        .map(|list| list.0.as_slice());
    for item in roots.unwrap_or_default() {
        let Some(Env(dir)) = item.get() else { continue };
        let full = base_dir.join(dir);
        match cx.source.canonicalize(&full) {
            Ok(root) if cx.source.is_dir(&root) => scope.static_roots.push(root),
            _ => cx.error_at(
                item.mark,
                "apps_static_roots",
                format!("`{}` is not a directory", full.display()),
                Some("a directory whose bundles app files may serve with `static:`; relative to this file".into()),
            ),
        }
    }
    scope
}

/// A shown value: the default when absent, `None` when broken (reported).
fn shown_or(field_value: &Option<Val<Shown>>, default: Option<String>) -> Option<Option<String>> {
    field(field_value).map(|text| text.map(|Shown(text)| text.clone()).or(default))
}

fn branding(
    raw: Option<&Val<RawBranding>>,
    cx: &mut Cx<'_>,
    tenant: &str,
    base_dir: &Path,
) -> Option<Branding> {
    let title = format!("{tenant} portal");
    let Some(val) = raw else {
        return Some(Branding {
            title,
            logo: None,
            favicon: None,
            theme: Theme::default(),
        });
    };
    let raw = val.get()?;
    let theme = match &raw.theme {
        Some(val) => cx.at("theme", |cx| val.get().map(|theme| self::theme(theme, cx))),
        None => Some(Some(Theme::default())),
    };
    Some(Branding {
        title: shown_or(&raw.title, Some(title))?.unwrap_or_default(),
        logo: brand_image(&raw.logo, "logo", cx, base_dir)?,
        favicon: brand_image(&raw.favicon, "favicon", cx, base_dir)?,
        theme: theme??,
    })
}

/// The most a branding image may weigh: a logo, not a photo.
const MAX_BRAND_IMAGE_BYTES: usize = 256 * 1024;

/// `logo:` or `favicon:`: a URL as written, or a file relative to the config, read now.
fn brand_image(
    value: &Option<Val<Shown>>,
    key: &str,
    cx: &mut Cx<'_>,
    base_dir: &Path,
) -> Option<Option<BrandImage>> {
    let (Some(Shown(text)), Some(written)) = (field(value)?, value) else {
        return Some(None);
    };
    if text.starts_with('/') || text.contains("://") || text.starts_with("data:") {
        return Some(Some(BrandImage::Url(text.clone())));
    }
    let extension = Path::new(text)
        .extension()
        .and_then(|ext| ext.to_str())
        .map(str::to_ascii_lowercase);
    let content_type = match extension.as_deref() {
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("ico") => "image/x-icon",
        _ => {
            cx.error_at(
                written.mark,
                key,
                format!("`{text}` is neither a URL nor an image file portico serves"),
                Some("a file next to this config ending in .svg, .png, .webp, .jpg, .gif or .ico, or a URL starting with / or https://".into()),
            );
            return None;
        }
    };
    let path = base_dir.join(text);
    match cx.source.read_bytes(&path) {
        Ok(bytes) if bytes.len() > MAX_BRAND_IMAGE_BYTES => {
            cx.error_at(
                written.mark,
                key,
                format!("`{}` is larger than 256 KiB", path.display()),
                Some(
                    "a logo or favicon; shrink it (an SVG, or a PNG at the size it is shown)"
                        .into(),
                ),
            );
            None
        }
        Ok(bytes) => {
            use sha2::Digest;
            let version = crate::token::hex(&sha2::Sha256::digest(&bytes)[..8]);
            Some(Some(BrandImage::File(std::sync::Arc::new(BrandFile {
                bytes: bytes::Bytes::from(bytes),
                content_type,
                version,
            }))))
        }
        Err(error) => {
            cx.error_at(
                written.mark,
                key,
                format!("cannot read `{}`: {error}", path.display()),
                Some("a path relative to this config file".into()),
            );
            None
        }
    }
}

/// `theme:`; `None` when a colour is broken (reported).
fn theme(raw: &RawTheme, cx: &mut Cx<'_>) -> Option<Theme> {
    let shell_color = colour(&raw.shell_color, cx, "shell_color");
    let accent_color = colour(&raw.accent_color, cx, "accent_color");
    Some(Theme {
        shell_color: shell_color?,
        accent_color: accent_color?,
    })
}

/// A CSS hex colour; it is written into a stylesheet, so nothing else is accepted.
fn colour(raw: &Written<Shown>, cx: &mut Cx<'_>, key: &str) -> Option<Option<String>> {
    let Written(Some(val)) = raw else {
        return Some(None);
    };
    match val.get()? {
        // `shell_color: #0a6ed1` parses as an empty value: YAML reads `#…` as a comment.
        None => {
            cx.error_at(
                val.mark,
                key,
                "the colour is empty",
                Some("in YAML an unquoted `#` starts a comment: write `\"#0a6ed1\"`".into()),
            );
            None
        }
        Some(Shown(text)) => match values::colour(text) {
            Ok(colour) => Some(Some(colour)),
            Err(bad) => {
                cx.error_at(val.mark, key, bad.message, bad.hint);
                None
            }
        },
    }
}

/// `luigi: { responsive_navigation, side_nav_footer, frame_timeout }`.
fn luigi(raw: Option<&Val<RawLuigi>>, cx: &mut Cx<'_>) -> Option<LuigiSettings> {
    let Some(val) = raw else {
        return Some(LuigiSettings {
            responsive_navigation: ResponsiveNavigation::default(),
            side_nav_footer: None,
            frame_timeout: LuigiSettings::DEFAULT_FRAME_TIMEOUT,
        });
    };
    let raw = val.get()?;
    // Literal like every value the browser receives; only the parsed duration reaches it.
    let frame_timeout = match (field(&raw.frame_timeout)?, &raw.frame_timeout) {
        (Some(Shown(text)), Some(written)) => match values::duration(text) {
            Ok(timeout) if !timeout.is_zero() => Some(timeout),
            Ok(_) => {
                cx.error_at(
                    written.mark,
                    "frame_timeout",
                    "`frame_timeout` must be more than zero".to_owned(),
                    Some("how long an app may take to start, e.g. `10s`".into()),
                );
                None
            }
            Err(bad) => {
                cx.error_at(written.mark, "frame_timeout", bad.message, bad.hint);
                None
            }
        },
        _ => Some(LuigiSettings::DEFAULT_FRAME_TIMEOUT),
    };
    let navigation = match field(&raw.responsive_navigation)? {
        None => Some(ResponsiveNavigation::default()),
        Some(Shown(text)) => {
            let found = ResponsiveNavigation::ALL
                .iter()
                .find(|(name, _)| name == text);
            if found.is_none() {
                let names: Vec<&str> = ResponsiveNavigation::ALL
                    .iter()
                    .map(|(name, _)| *name)
                    .collect();
                let hint = suggest(text, &names, &format!("one of: {}", names.join(", ")));
                let mark = raw
                    .responsive_navigation
                    .as_ref()
                    .map_or(val.mark, |v| v.mark);
                cx.error_at(
                    mark,
                    "responsive_navigation",
                    format!("unknown navigation mode `{text}`"),
                    Some(hint),
                );
            }
            found.map(|(_, mode)| *mode)
        }
    };
    Some(LuigiSettings {
        responsive_navigation: navigation?,
        side_nav_footer: shown_or(&raw.side_nav_footer, None)?,
        frame_timeout: frame_timeout?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{BASE, table};
    use crate::config::MemorySource;

    #[test]
    fn tenant_rules() {
        let tenant = |extra: &str| format!("{BASE}{extra}");
        let cases = [
            ("a minimal tenant", tenant("")),
            ("an invalid tenant id", BASE.replace("  acme:", "  Acme:")),
            ("no tenants", "tenants: {}\n".to_owned()),
            ("no tenants key", "version: 1\n".to_owned()),
            ("not a mapping", "[]\n".to_owned()),
            ("missing auth and roles", "tenants:\n  acme:\n    hosts: [a.example]\n".to_owned()),
            ("a bad public origin", tenant("    public_origin: https://a.example/path\n")),
            ("hosts as a mapping", BASE.replace("hosts: [portal.acme.example]", "hosts: { a: b }")),
            (
                "branding and luigi",
                tenant("    branding:\n      title: [x]\n      theme:\n        shell_color: #fff\n        accent_color: \"#12345\"\n    luigi: { responsive_navigation: Simple, side_nav_footer: Acme }\n"),
            ),
            ("apps_env", tenant("    apps_env: [$REGION, OK_1, \"${REGION}\"]\n")),
            (
                "oidc without a public origin",
                BASE.replace(
                    "auth: { dev_sign_in: { users: [{ id: ann, groups: [eng] }] } }",
                    "auth: { oidc: { issuer: https://idp.example, client_id: portal, client_secret: s } }",
                ),
            ),
            (
                "a host listed twice and a port sibling",
                format!("{BASE}  globex:\n    hosts: [\"portal.acme.example:8080\", PORTAL.acme.example]\n    auth: {{ dev_sign_in: {{ users: [{{ id: g }}] }} }}\n    roles: {{}}\n"),
            ),
            (
                "a request_access link template",
                tenant("    request_access: \"https://tickets.acme.example/new?summary=Access+to+{app_label}&group={group}&by={user}\"\n"),
            ),
            (
                "a request_access mailto template",
                tenant("    request_access: \"mailto:access@acme.example?subject={app}%20{role}\"\n"),
            ),
            (
                "a request_access template that could run script",
                tenant("    request_access: \"javascript:alert({app})\"\n"),
            ),
            (
                "a request_access template over plain http, with a misspelt and an unknown placeholder",
                tenant("    request_access: \"http://tickets.acme.example/new?g={gruop}&x={ticket}\"\n"),
            ),
            (
                "a request_access template filling its host, with a space and an unclosed brace",
                tenant("    request_access: \"https://{tenant}.tickets.example/new?s=Access to {app\"\n"),
            ),
            ("request_access as a list", tenant("    request_access: [https://t.example/]\n")),
            (
                "request_access reading the environment",
                tenant("    request_access: \"https://t.example/?k=${TOKEN}\"\n"),
            ),
            ("an unknown default tenant", format!("default_tenant: acm\n{BASE}")),
            (
                "a broken default tenant is not also unknown",
                format!("default_tenant: acme\n{}", BASE.replace("hosts: [portal.acme.example]", "hosts: {}")),
            ),
        ];
        insta::assert_snapshot!(table(&MemorySource::default(), &cases));
    }
}
