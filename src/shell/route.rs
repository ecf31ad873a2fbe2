//! Why the shell cannot open a route: `GET /shell/route.json?path=/home/<app>/<page>…`.
//!
//! The shell's navigation leaves out what a user may not open, so a shared link to such a page falls
//! through Luigi's routing; its `pageNotFoundHandler` then shows `web/shell/not-found.html`, which asks
//! this module why. The answer names the app, the page, the roles that would open it and the IdP
//! groups that grant those roles: what the user needs to ask for access, and whom: the app's owner,
//! and the tenant's `request_access` links filled for each of those groups (the same links as the
//! proxy's 403 page). It is told only for the exact path the user already holds, never as a list:
//! no app beyond the one that path names, no role or group beyond those that would open that very
//! path, and never anything of another tenant. The decision itself stays with `rbac::decide`, the
//! call the proxy makes.

use serde::Serialize;

use super::luigi::HOME_SEGMENT;
use crate::config::{AccessAsk, AccessLink, App, NavNode, Tenant};
use crate::i18n::Locale;
use crate::rbac::{self, Decision, Need, RoleName, Roles};

/// What the view says about a route.
#[derive(Debug, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(crate) enum RouteAnswer<'a> {
    /// No app of this tenant lives there.
    Unknown { path: &'a str },
    /// The app (and page) exist, but the user's roles do not open them.
    Forbidden {
        path: &'a str,
        app: AppRef<'a>,
        /// The page's label, when the refusal is for a page of an app the user may open.
        page: Option<&'a str>,
        /// Each role that would open it, with the groups that grant it.
        needs: Vec<Need<'a>>,
        /// The user's roles here.
        roles: Vec<&'a str>,
        /// The tenant's `request_access` links for these roles' groups; empty without a template.
        request_access: Vec<AccessLink>,
    },
    /// The user may open the app, which has no page at this path.
    NoPage { path: &'a str, app: AppRef<'a> },
}

#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct AppRef<'a> {
    pub id: &'a str,
    pub label: &'a str,
    pub owner: Option<&'a str>,
}

/// Why `path` (a shell path, `/home/<app>/…`) does not open for `user` (as `{user}` names them in a
/// `request_access` link) with `roles` on `tenant`.
pub(crate) fn explain<'a>(
    tenant: &'a Tenant,
    roles: &'a Roles,
    user: &str,
    path: &'a str,
    locale: Locale,
) -> RouteAnswer<'a> {
    let mut segments = path
        .strip_prefix('/')
        .and_then(|rest| rest.strip_prefix(HOME_SEGMENT))
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .map(|rest| rest.split('/').filter(|segment| !segment.is_empty()))
        .into_iter()
        .flatten();
    let Some(app) = segments
        .next()
        .and_then(|id| tenant.apps.iter().find(|app| app.id.as_str() == id))
    else {
        return RouteAnswer::Unknown { path };
    };
    let app_ref = AppRef {
        id: app.id.as_str(),
        label: app.label.get(locale),
        owner: app.owner.as_deref(),
    };
    let forbidden = |page: Option<&'a str>, needed: Vec<RoleName>| {
        let needs = tenant.roles.needs(&needed);
        let ask = AccessAsk {
            app: app_ref.id,
            app_label: app_ref.label,
            page,
            user,
            tenant: tenant.id.as_str(),
            path,
        };
        let request_access = tenant
            .request_access
            .as_ref()
            .map(|template| template.links(&ask, needs.iter().map(|need| (need.role, need.groups))))
            .unwrap_or_default();
        RouteAnswer::Forbidden {
            path,
            app: AppRef { ..app_ref },
            page,
            needs,
            roles: roles.names(),
            request_access,
        }
    };
    if let Decision::Deny { needed } = rbac::decide(roles, &app.policy, &http::Method::GET, "/") {
        return forbidden(None, needed);
    }
    match page_at(app, segments) {
        Some(node) => match rbac::decide(roles, &app.policy, &http::Method::GET, &node.view) {
            Decision::Deny { needed } => forbidden(Some(node.label.get(locale)), needed),
            Decision::Allow => RouteAnswer::NoPage { path, app: app_ref },
        },
        None => RouteAnswer::NoPage { path, app: app_ref },
    }
}

/// The deepest of `app`'s pages that `segments` name, one page per segment; `None` when the first
/// segment names none.
fn page_at<'a, 's>(app: &'a App, segments: impl Iterator<Item = &'s str>) -> Option<&'a NavNode> {
    let mut level = app.nodes.as_slice();
    let mut found = None;
    for segment in segments {
        let Some(node) = level
            .iter()
            .find(|node| node.path == segment)
            .or_else(|| level.iter().find(|node| node.is_parameter()))
        else {
            break;
        };
        // A parameter's route is named by the page it belongs to ("Incident Review", not "Incident").
        if !node.is_parameter() {
            found = Some(node);
        }
        level = &node.children;
    }
    found
}

/// Each of `needed` with the groups that grant it on `tenant`.
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::config;

    fn demo() -> std::sync::Arc<Tenant> {
        let loaded = config::load_embedded().unwrap();
        loaded.config.tenants[0].clone()
    }

    #[test]
    fn a_forbidden_app_names_the_roles_and_the_groups_that_grant_them() {
        let tenant = demo();
        let roles = tenant.roles.roles_for(&["demo-eng".to_owned()]);
        let answer = explain(
            &tenant,
            &roles,
            "dave@demo.example",
            "/home/admin-console/anything",
            Locale::En,
        );
        let RouteAnswer::Forbidden {
            app,
            page,
            needs,
            roles,
            request_access,
            ..
        } = answer
        else {
            panic!("{answer:?}");
        };
        // The demo tenant's ticket link, once per group that grants a needed role, and no other.
        assert_eq!(
            request_access,
            [AccessLink {
                role: Some("platform-admin".to_owned()),
                group: Some("demo-platform-admins".to_owned()),
                url: "https://tickets.demo.example/new?summary=Access+to+Admin%20Console\
                      &group=demo-platform-admins&requester=dave%40demo.example\
                      &path=%2Fhome%2Fadmin-console%2Fanything"
                    .to_owned(),
            }]
        );
        assert_eq!(app.label, "Admin Console");
        assert_eq!(app.owner, Some("team-platform"));
        assert_eq!(page, None);
        assert_eq!(needs.len(), 1);
        assert_eq!(needs[0].role, "platform-admin");
        assert_eq!(needs[0].groups, ["demo-platform-admins".to_owned()]);
        assert_eq!(roles, ["developer"]);
    }

    #[test]
    fn a_forbidden_page_of_an_open_app_names_the_page() {
        let tenant = demo();
        let roles = tenant.roles.roles_for(&["demo-eng".to_owned()]);
        // The page itself, a route below it with a path parameter, and in German.
        for (path, locale, page) in [
            (
                "/home/service-status/incidents",
                Locale::En,
                "Incident Review",
            ),
            (
                "/home/service-status/incidents/INC-7",
                Locale::En,
                "Incident Review",
            ),
            (
                "/home/service-status/incidents/INC-7",
                Locale::De,
                "Störungsanalyse",
            ),
        ] {
            let answer = explain(&tenant, &roles, "dave@demo.example", path, locale);
            assert!(
                matches!(&answer, RouteAnswer::Forbidden { page: Some(shown), needs, .. } if *shown == page && needs[0].role == "platform-admin"),
                "{path}: {answer:?}"
            );
        }
    }

    #[test]
    fn unknown_apps_and_pages_say_so_without_naming_anything_else() {
        let tenant = demo();
        let roles = tenant.roles.roles_for(&["demo-eng".to_owned()]);
        for path in [
            "/home/no-such-app",
            "/elsewhere/service-status",
            "/homework",
            "/",
        ] {
            assert_eq!(
                explain(&tenant, &roles, "dave@demo.example", path, Locale::En),
                RouteAnswer::Unknown { path },
                "{path}"
            );
        }
        assert!(matches!(
            explain(
                &tenant,
                &roles,
                "dave@demo.example",
                "/home/service-status/nope",
                Locale::En
            ),
            RouteAnswer::NoPage {
                app: AppRef {
                    id: "service-status",
                    ..
                },
                ..
            }
        ));
    }

    #[test]
    fn a_tenant_without_a_request_access_template_offers_no_link() {
        let loaded = config::load_embedded().unwrap();
        let globex = &loaded.config.tenants[1];
        assert!(globex.request_access.is_none());
        let roles = globex.roles.roles_for(&["globex-staff".to_owned()]);
        let answer = explain(globex, &roles, "gina", "/home/ledger", Locale::En);
        assert!(
            matches!(&answer, RouteAnswer::Forbidden { request_access, needs, .. } if request_access.is_empty() && needs[0].role == "finance"),
            "{answer:?}"
        );
    }

    #[test]
    fn another_tenants_apps_are_unknown_here() {
        let loaded = config::load_embedded().unwrap();
        let demo = &loaded.config.tenants[0];
        let roles = demo.roles.roles_for(&["demo-eng".to_owned()]);
        assert!(matches!(
            explain(
                demo,
                &roles,
                "dave@demo.example",
                "/home/ledger",
                Locale::En
            ),
            RouteAnswer::Unknown { .. }
        ));
    }
}
