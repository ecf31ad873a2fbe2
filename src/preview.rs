//! `portico preview`: exactly what a user with given IdP groups would see on a tenant, without
//! anyone signing in.
//!
//! Printed, it is the document `/shell/config.json` would return to that user (`--format json`,
//! built by the shell's own `shell::luigi::shell_config`, so it cannot drift from the portal), or
//! its navigation as a reviewer reads it (`--format text`: the side navigation by category, the
//! portal switcher and the profile menu, with where each entry leads). Served
//! (`--serve 127.0.0.1:8090`), it is the real portal of that one tenant on a loopback listener: its
//! dev sign-in offers one stand-in user holding exactly those groups, and every shell page carries a
//! banner saying whose navigation it is. Everything else is the tenant's own config: its apps and
//! upstreams, the access decision, the signed assertion.
//!
//! What it must not do: be a way around sign-in. `--serve` listens on a loopback address only
//! (refused otherwise, as dev sign-in is), keeps no other tenant, no admin or redirect listener and
//! no TLS, and forces the memory session store, so no preview session can reach a shared store or a
//! real portal instance. The upstreams do get requests as the stand-in user: a preview is for people
//! who may run the config anyway (it reads the same files and secrets).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;

use crate::auth::SignedIn;
use crate::auth::session::{Session, User};
use crate::config::{Config, DevUser, SignIn, StoreSettings, Tenant};
use crate::i18n::Locale;

/// Why a preview cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("there is no tenant `{tenant}`; the tenants: {known}")]
    UnknownTenant { tenant: String, known: String },
    #[error("portico speaks `en` and `de`, not `{0}`")]
    UnknownLanguage(String),
    #[error(
        "a preview listens on a loopback address only, not {0}: whoever reaches it is signed in as the previewed user"
    )]
    NotLoopback(SocketAddr),
    /// The preview's links name its address, so the port must be known before it binds.
    #[error("name a port for the preview to listen on, e.g. --serve 127.0.0.1:8090")]
    NoPort,
    #[error("the config is in use elsewhere, so its tenant cannot be changed for a preview")]
    SharedConfig,
}

/// Whom to preview: an id for the report (a demo user's id gives their name) and the groups.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user: Option<String>,
    pub groups: Vec<String>,
}

impl Viewer {
    /// The stand-in user, on `tenant`.
    fn user(&self, tenant: &Tenant) -> User {
        User::stand_in(tenant, self.user.as_deref(), self.groups.clone(), "preview")
    }

    /// How the banner and the outline name the viewer.
    fn described(&self) -> String {
        let groups = if self.groups.is_empty() {
            "no groups".to_owned()
        } else {
            format!("groups {}", self.groups.join(", "))
        };
        match &self.user {
            Some(user) => format!("{user} ({groups})"),
            None => format!("a user with {groups}"),
        }
    }
}

fn tenant<'c>(config: &'c Config, id: &str) -> Result<&'c Arc<Tenant>, PreviewError> {
    config
        .tenant(id)
        .ok_or_else(|| PreviewError::UnknownTenant {
            tenant: id.to_owned(),
            known: config
                .tenants
                .iter()
                .map(|t| t.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The document `/shell/config.json` would return to `viewer` on tenant `tenant_id`, in `lang`.
/// Its CSRF token reads `preview`: nothing can be sent with it, and the output stays the same from
/// run to run.
pub fn shell_config(
    config: &Config,
    tenant_id: &str,
    viewer: &Viewer,
    lang: &str,
) -> Result<Value, PreviewError> {
    let tenant = tenant(config, tenant_id)?;
    let locale =
        Locale::from_tag(lang).ok_or_else(|| PreviewError::UnknownLanguage(lang.into()))?;
    let mut session = Session::new(&tenant.id, viewer.user(tenant));
    "preview".clone_into(&mut session.csrf_token);
    let signed_in = SignedIn::unpresented(tenant, session);
    let document = crate::shell::luigi::shell_config(config, tenant, &signed_in, locale);
    // Serialising plain data to a `Value` cannot fail; `Null` would show if it ever did.
    Ok(serde_json::to_value(&document).unwrap_or(Value::Null))
}

/// The navigation of a `/shell/config.json` document as a reviewer reads it.
pub fn outline(tenant_id: &str, viewer: &Viewer, document: &Value) -> String {
    let luigi = &document["luigi"];
    let context = &luigi["navigation"]["globalContext"];
    let roles: Vec<&str> = context["roles"]
        .as_array()
        .map(|roles| roles.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = format!(
        "What {} sees on tenant {tenant_id} (roles: {}):\n",
        viewer.described(),
        if roles.is_empty() {
            "none, so no apps".to_owned()
        } else {
            roles.join(", ")
        }
    );
    let entries = luigi["navigation"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|home| home["children"].as_array().into_iter().flatten())
        .filter(|node| node["hideFromNav"] != Value::Bool(true));
    let mut category: Option<&str> = None;
    let mut any = false;
    // A page's entry follows its app's; it is indented below it.
    let mut app_target = String::new();
    for node in entries {
        let this = node["category"].as_str();
        if !any || this != category {
            any = true;
            category = this;
            let _ = writeln!(out, "\n{}", this.unwrap_or("(no category)"));
        }
        let target = node["link"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| {
                node["pathSegment"]
                    .as_str()
                    .map(|segment| format!("/home/{segment}"))
            })
            .unwrap_or_default();
        let label = node["label"].as_str().unwrap_or("");
        let page = !app_target.is_empty()
            && target.starts_with(app_target.as_str())
            && target.as_bytes().get(app_target.len()) == Some(&b'/');
        if page {
            let _ = writeln!(out, "    {label:<30} {target}");
        } else {
            let _ = writeln!(out, "  {label:<32} {target}");
            app_target = target;
        }
    }
    if !any {
        out.push_str("\n(no apps)\n");
    }
    let portals: Vec<String> = luigi["navigation"]["productSwitcher"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| {
            let label = item["label"].as_str().unwrap_or("");
            match item["externalLink"]["url"].as_str() {
                Some(url) => format!("{label} ({url})"),
                None => format!("{label} (this portal)"),
            }
        })
        .collect();
    out.push('\n');
    if !portals.is_empty() {
        let _ = writeln!(out, "Portals: {}", portals.join(", "));
    }
    let profile = &luigi["navigation"]["profile"];
    let mut menu: Vec<&str> = profile["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["label"].as_str())
        .collect();
    if let Some(sign_out) = profile["logout"]["label"].as_str() {
        menu.push(sign_out);
    }
    let _ = writeln!(out, "Profile menu: {}", menu.join(", "));
    out
}

/// The config `portico preview --serve` runs: the one tenant, answering on `listen` (a loopback
/// address) whatever the Host, signed in through a dev sign-in that offers only the stand-in user,
/// with the preview banner; sessions in memory; no admin, redirect or TLS listener.
pub fn serving_config(
    mut config: Config,
    tenant_id: &str,
    viewer: &Viewer,
    listen: SocketAddr,
) -> Result<Config, PreviewError> {
    if !listen.ip().is_loopback() {
        return Err(PreviewError::NotLoopback(listen));
    }
    if listen.port() == 0 {
        return Err(PreviewError::NoPort);
    }
    let user = viewer.user(tenant(&config, tenant_id)?);
    let index = config
        .tenants
        .iter()
        .position(|t| t.id.as_str() == tenant_id)
        .ok_or_else(|| PreviewError::UnknownTenant {
            tenant: tenant_id.to_owned(),
            known: String::new(),
        })?;
    let mut previewed = Arc::try_unwrap(config.tenants.swap_remove(index))
        .map_err(|_| PreviewError::SharedConfig)?;
    previewed.sign_in = SignIn::Dev {
        users: vec![DevUser {
            id: user.subject.clone(),
            name: user.name,
            email: user.email,
            groups: user.groups,
        }],
    };
    // Links and redirects point at the preview's own listener, never at the real portal; dev sign-in
    // answers only on a tenant's own hosts.
    previewed.hosts = vec![listen.to_string(), format!("localhost:{}", listen.port())];
    previewed.public_origin = None;
    previewed.origin = Some(format!("http://{listen}"));
    let id = previewed.id.clone();
    config.tenants = vec![Arc::new(previewed)];
    config.default_tenant = Some(id);
    config.sessions.store = StoreSettings::Memory;
    config.telemetry.otlp_endpoint = None;
    let server = &mut config.server;
    server.listen = listen;
    server.admin_listen = None;
    server.redirect_listen = None;
    server.tls = None;
    server.preview_banner = Some(viewer.described());
    Ok(config)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn demo() -> Config {
        crate::config::load_embedded().unwrap().config
    }

    fn viewer(user: Option<&str>, groups: &[&str]) -> Viewer {
        Viewer {
            user: user.map(str::to_owned),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    #[test]
    fn the_printed_config_is_the_shells_own_for_those_groups() {
        let config = demo();
        let dave =
            shell_config(&config, "demo", &viewer(Some("dave"), &["demo-eng"]), "en").unwrap();
        let text = outline("demo", &viewer(Some("dave"), &["demo-eng"]), &dave);
        insta::assert_snapshot!(text);
        assert_eq!(dave["portico"]["csrfToken"], "preview");
        // Someone whose groups grant nothing sees no app.
        let nobody = shell_config(&config, "demo", &viewer(None, &["unknown"]), "en").unwrap();
        let text = outline("demo", &viewer(None, &["unknown"]), &nobody);
        assert!(text.contains("roles: none, so no apps"), "{text}");
        assert!(text.contains("(no apps)"), "{text}");
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let config = demo();
        let error = shell_config(&config, "nope", &viewer(None, &[]), "en").unwrap_err();
        assert_eq!(
            error.to_string(),
            "there is no tenant `nope`; the tenants: demo, globex"
        );
        let error = shell_config(&config, "demo", &viewer(None, &[]), "fr").unwrap_err();
        assert!(matches!(error, PreviewError::UnknownLanguage(_)));
        let error = serving_config(
            demo(),
            "demo",
            &viewer(None, &[]),
            "0.0.0.0:8090".parse().unwrap(),
        )
        .unwrap_err();
        assert!(matches!(error, PreviewError::NotLoopback(_)));
    }

    #[test]
    fn the_served_config_keeps_one_tenant_and_only_the_stand_in_user() {
        let served = serving_config(
            demo(),
            "demo",
            &viewer(Some("dave"), &["demo-eng"]),
            "127.0.0.1:8090".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(served.tenants.len(), 1);
        let tenant = &served.tenants[0];
        let SignIn::Dev { users } = &tenant.sign_in else {
            panic!("dev sign-in")
        };
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].groups, ["demo-eng"]);
        assert_eq!(users[0].name, "Dave Developer");
        assert_eq!(tenant.origin.as_deref(), Some("http://127.0.0.1:8090"));
        assert!(matches!(served.sessions.store, StoreSettings::Memory));
        assert!(served.server.admin_listen.is_none());
        assert_eq!(
            served.server.preview_banner.as_deref(),
            Some("dave (groups demo-eng)")
        );
    }
}
