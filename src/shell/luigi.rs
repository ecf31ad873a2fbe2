//! The Luigi configuration of one signed-in user, built on the server.
//!
//! Apps and nodes the user may not reach are left out, not hidden: the browser never learns they exist.
//! Visibility is `rbac::decide` on the path each entry shows, the same call the proxy makes. Only JSON
//! goes out; the few function-valued parts of Luigi's config are added by the static bootstrap script.
//!
//! The document is typed: the structs below are the contract with the browser, and their field names
//! (serialised in camelCase) are the only place the keys are spelled. Who reads what:
//!
//! - `web/shell/bootstrap.js` passes `luigi` to `Luigi.setConfig`, adds `staticUserInfoFn` (returning
//!   `portico.user`) to `navigation.profile` and `customLogoutFn` to `navigation.profile.logout`, and
//!   sends `portico.csrfToken` when signing out.
//! - `web/shell/home.js` (the home view) reads its node's `context.apps` (`label`, `category`, `path`,
//!   `owner`, `catalogRef`) and the global context's `tenant`, `user` and `roles`. The views below home
//!   get the same `apps` (Luigi merges a node's context into its children's): the Catalog app
//!   (`web/demo-apps/catalog`) lists an entity's portal apps from it.
//! - Luigi itself reads the rest: `pathSegment`, `viewUrl` and `viewGroup` route and reuse iframes;
//!   `testId` becomes the entry's `data-testid`, which the browser tests select by; `context` reaches the
//!   micro-app through Luigi Client.
//!
//! This module must not decide access beyond asking `rbac`, and must not put anything in the document
//! that the user could not see in the shell anyway: no token but the CSRF token, nothing of another tenant
//! but its title and public origin.

use serde::Serialize;

use crate::assets::LUIGI_VERSION;
use crate::auth::SignedIn;
use crate::config::{App, Config, NavNode, SignIn, Tenant};
use crate::rbac::{self, Roles};

/// The path segment of the home node, the root of the shell's navigation: apps live at `/home/<app-id>`.
/// Config reserves it (`config::RESERVED_SEGMENTS`) so that no app id shadows it.
pub(crate) const HOME_SEGMENT: &str = "home";

/// The document `/shell/config.json` returns: Luigi's config plus what the bootstrap needs.
#[derive(Debug, Serialize)]
pub(crate) struct ShellConfig<'a> {
    pub portico: Portico<'a>,
    pub luigi: LuigiConfig<'a>,
}

/// What the bootstrap script needs besides Luigi's config.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Portico<'a> {
    /// Sent as `X-Portico-CSRF` when signing out.
    pub csrf_token: &'a str,
    pub luigi_version: &'a str,
    /// What Luigi's profile menu shows (the bootstrap returns it from `staticUserInfoFn`).
    pub user: ProfileUser<'a>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ProfileUser<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub initials: String,
}

/// The JSON part of Luigi's config (`Luigi.setConfig`).
#[derive(Debug, Serialize)]
pub(crate) struct LuigiConfig<'a> {
    pub navigation: Navigation<'a>,
    pub routing: Routing,
    pub settings: Settings<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Navigation<'a> {
    /// One root: the home node, with the user's apps as its children.
    pub nodes: [LuigiNode<'a>; 1],
    pub global_context: GlobalContext<'a>,
    pub profile: Profile,
    /// Only when the user has other portals on this deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_switcher: Option<ProductSwitcher<'a>>,
}

/// One navigation entry.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LuigiNode<'a> {
    pub path_segment: &'a str,
    pub label: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon: Option<&'a str>,
    pub view_url: String,
    /// Entries of one group share an iframe; see [`LuigiNode::in_app`] for why the group is the app.
    pub view_group: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loading_indicator: Option<LoadingIndicator>,
    /// The entry's `data-testid` in the page.
    pub test_id: String,
    pub context: NodeContext<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_selected_for_children: Option<bool>,
    /// The home node always lists its children (maybe none); other entries only when they have some.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<LuigiNode<'a>>>,
}

#[derive(Debug, Serialize)]
pub(crate) struct LoadingIndicator {
    pub enabled: bool,
}

/// What a node's view receives as its Luigi context.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum NodeContext<'a> {
    /// The home view: the apps it lists.
    Home { apps: Vec<AppSummary<'a>> },
    /// An app's view; `view` is the path inside the app, for entries below the app's own.
    App {
        app: AppContext<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        view: Option<&'a str>,
    },
}

/// One app as the home view lists it.
#[derive(Debug, Serialize)]
pub(crate) struct AppSummary<'a> {
    pub id: &'a str,
    pub label: &'a str,
    pub category: Option<&'a str>,
    /// The shell path the home view navigates to.
    pub path: String,
    /// The team that owns the app, as config says.
    pub owner: Option<&'a str>,
    /// The app's catalog entity (`catalog_ref`): the home view and the Catalog app show its owner
    /// and links, fetched as the user.
    #[serde(rename = "catalogRef")]
    pub catalog_ref: Option<&'a str>,
}

/// The app an entry belongs to, as its view sees it.
#[derive(Debug, Serialize)]
pub(crate) struct AppContext<'a> {
    pub id: &'a str,
    pub label: &'a str,
    pub owner: Option<&'a str>,
    #[serde(rename = "catalogRef")]
    pub catalog_ref: Option<&'a str>,
}

/// Luigi's global context: every view receives it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GlobalContext<'a> {
    pub tenant: TenantContext<'a>,
    pub user: UserContext<'a>,
    pub roles: Vec<&'a str>,
    /// Micro-apps send it as `X-Portico-CSRF` on state-changing calls from non-browser code paths.
    pub csrf_token: &'a str,
}

#[derive(Debug, Serialize)]
pub(crate) struct TenantContext<'a> {
    pub id: &'a str,
    pub title: &'a str,
}

#[derive(Debug, Serialize)]
pub(crate) struct UserContext<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    pub groups: &'a [String],
}

/// The profile menu; the bootstrap adds the user info and the sign-out function.
#[derive(Debug, Serialize)]
pub(crate) struct Profile {
    pub logout: Logout,
}

#[derive(Debug, Serialize)]
pub(crate) struct Logout {
    pub label: &'static str,
    pub icon: &'static str,
}

/// Luigi's product switcher, listing the user's portals.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProductSwitcher<'a> {
    pub label: &'static str,
    pub icon: &'static str,
    pub columns: &'static str,
    pub test_id: &'static str,
    pub items: Vec<PortalLink<'a>>,
}

/// One portal in the product switcher: this one (`selected`, `link`) or another (`externalLink`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PortalLink<'a> {
    pub label: &'a str,
    pub sub_title: String,
    pub icon: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected: Option<bool>,
    pub test_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_link: Option<ExternalLink>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExternalLink {
    pub url: String,
    pub same_window: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Routing {
    pub use_hash_routing: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Settings<'a> {
    pub header: Header<'a>,
    /// Config's `luigi.responsive_navigation`, as Luigi names the mode.
    pub responsive_navigation: &'a str,
    pub side_nav_footer_text: String,
    pub app_loading_indicator: AppLoadingIndicator,
}

#[derive(Debug, Serialize)]
pub(crate) struct Header<'a> {
    pub title: &'a str,
    pub logo: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub favicon: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppLoadingIndicator {
    pub hide_automatically: bool,
}

impl<'a> LuigiNode<'a> {
    /// The root entry: the home view, listing `apps`, with their entries below it.
    fn home(apps: Vec<AppSummary<'a>>, children: Vec<LuigiNode<'a>>) -> Self {
        LuigiNode {
            path_segment: HOME_SEGMENT,
            label: "Home",
            category: None,
            icon: Some("home"),
            view_url: "/shell/home.html".into(),
            view_group: "portico-home",
            loading_indicator: None,
            test_id: "nav-home".into(),
            context: NodeContext::Home { apps },
            keep_selected_for_children: None,
            children: Some(children),
        }
    }

    /// An entry of `app`: the app's own (`node` is `None`, showing the app's root) or one of its nodes.
    fn in_app(app: &'a App, node: Option<&'a NavNode>, children: Vec<LuigiNode<'a>>) -> Self {
        let (path_segment, label, icon, view, test_id) = match node {
            None => (
                app.id.as_str(),
                &app.label,
                &app.icon,
                "/",
                format!("nav-{}", app.id),
            ),
            Some(node) => (
                node.path.as_str(),
                &node.label,
                &node.icon,
                node.view.as_str(),
                format!("nav-{}-{}", app.id, node.path),
            ),
        };
        let is_app = node.is_none();
        LuigiNode {
            path_segment,
            label,
            category: app.category.as_deref().filter(|_| is_app),
            icon: icon.as_deref(),
            view_url: format!("{}{view}", app.base()),
            // One iframe group per app: same-origin frames of different apps must never be reused.
            view_group: app.id.as_str(),
            loading_indicator: Some(LoadingIndicator {
                enabled: app.luigi_client,
            }),
            test_id,
            context: NodeContext::App {
                app: AppContext {
                    id: app.id.as_str(),
                    label: &app.label,
                    owner: app.owner.as_deref(),
                    catalog_ref: app.catalog_ref.as_deref(),
                },
                view: node.map(|node| node.view.as_str()),
            },
            keep_selected_for_children: is_app.then_some(false),
            children: (!children.is_empty()).then_some(children),
        }
    }
}

/// The apps of `tenant` that `roles` may open, in config order.
pub(crate) fn visible_apps<'t>(tenant: &'t Tenant, roles: &Roles) -> Vec<&'t App> {
    tenant
        .apps
        .iter()
        .filter(|app| rbac::decide(roles, &app.policy, &http::Method::GET, "/").is_allowed())
        .map(AsRef::as_ref)
        .collect()
}

/// The document `/shell/config.json` returns for `signed_in` on `tenant`.
pub(crate) fn shell_config<'a>(
    config: &'a Config,
    tenant: &'a Tenant,
    signed_in: &'a SignedIn,
) -> ShellConfig<'a> {
    let user = &signed_in.session.user;
    let csrf_token = signed_in.session.csrf_token.as_str();
    let apps = visible_apps(tenant, signed_in.roles());
    let summaries = apps
        .iter()
        .map(|app| AppSummary {
            id: app.id.as_str(),
            label: &app.label,
            category: app.category.as_deref(),
            path: format!("/{HOME_SEGMENT}/{}", app.id),
            owner: app.owner.as_deref(),
            catalog_ref: app.catalog_ref.as_deref(),
        })
        .collect();
    let app_nodes = apps
        .iter()
        .map(|app| LuigiNode::in_app(app, None, nav_nodes(app, &app.nodes, signed_in.roles())))
        .collect();
    let branding = &tenant.branding;
    ShellConfig {
        portico: Portico {
            csrf_token,
            luigi_version: LUIGI_VERSION,
            user: ProfileUser {
                name: &user.name,
                email: &user.email,
                initials: initials(&user.name),
            },
        },
        luigi: LuigiConfig {
            navigation: Navigation {
                nodes: [LuigiNode::home(summaries, app_nodes)],
                global_context: GlobalContext {
                    tenant: TenantContext {
                        id: tenant.id.as_str(),
                        title: &branding.title,
                    },
                    user: UserContext {
                        id: &user.subject,
                        name: &user.name,
                        email: &user.email,
                        groups: &user.groups,
                    },
                    roles: signed_in.roles().names(),
                    csrf_token,
                },
                profile: Profile {
                    logout: Logout {
                        label: "Sign out",
                        icon: "log",
                    },
                },
                product_switcher: product_switcher(config, tenant, signed_in),
            },
            routing: Routing {
                use_hash_routing: false,
            },
            settings: Settings {
                header: Header {
                    title: &branding.title,
                    logo: branding.logo.as_deref().unwrap_or("/shell/logo.svg"),
                    favicon: branding.favicon.as_deref(),
                },
                responsive_navigation: tenant.luigi.responsive_navigation.as_str(),
                side_nav_footer_text: tenant
                    .luigi
                    .side_nav_footer
                    .clone()
                    .unwrap_or_else(|| format!("portico {}", env!("CARGO_PKG_VERSION"))),
                app_loading_indicator: AppLoadingIndicator {
                    hide_automatically: true,
                },
            },
        },
    }
}

/// The entries among `nodes` the user may reach, each with its reachable children; an entry the user
/// may not reach takes its children with it.
fn nav_nodes<'a>(app: &'a App, nodes: &'a [NavNode], roles: &Roles) -> Vec<LuigiNode<'a>> {
    nodes
        .iter()
        .filter(|node| {
            rbac::decide(roles, &app.policy, &http::Method::GET, &node.view).is_allowed()
        })
        .map(|node| LuigiNode::in_app(app, Some(node), nav_nodes(app, &node.children, roles)))
        .collect()
}

/// Luigi's product switcher: this portal first, then the user's other portals; none if there are none.
fn product_switcher<'a>(
    config: &'a Config,
    tenant: &'a Tenant,
    signed_in: &SignedIn,
) -> Option<ProductSwitcher<'a>> {
    let others = other_portals(config, tenant, signed_in);
    if others.is_empty() {
        return None;
    }
    let this_portal = PortalLink {
        label: &tenant.branding.title,
        sub_title: "This portal".into(),
        icon: "home",
        selected: Some(true),
        test_id: format!("portal-{}", tenant.id),
        link: Some("/home"),
        external_link: None,
    };
    Some(ProductSwitcher {
        label: "Your portals",
        icon: "grid",
        columns: "auto",
        test_id: "portico-portals",
        items: std::iter::once(this_portal).chain(others).collect(),
    })
}

/// Links to the user's other portals on this deployment, for Luigi's product switcher.
///
/// A user "belongs" to another tenant when that tenant signs people in from the same source (the same
/// OIDC issuer, or the same dev sign-in user id) and the user's current groups give them a role there.
/// That is all the server can know without a session on that tenant; the link leads to its sign-in,
/// and nothing of the other tenant is shared: no session, no cookie, no token.
fn other_portals<'a>(
    config: &'a Config,
    tenant: &Tenant,
    signed_in: &SignedIn,
) -> Vec<PortalLink<'a>> {
    let user = &signed_in.session.user;
    config
        .tenants
        .iter()
        .filter(|other| other.id != tenant.id)
        .filter(|other| {
            groups_there(&tenant.sign_in, other, &user.subject, &user.groups)
                .is_some_and(|groups| !other.roles.roles_for(groups).0.is_empty())
        })
        .filter_map(|other| {
            let url = format!("{}/", other.origin.as_deref()?);
            Some(PortalLink {
                label: &other.branding.title,
                sub_title: url.clone(),
                icon: "chain-link",
                selected: None,
                test_id: format!("portal-{}", other.id),
                link: None,
                external_link: Some(ExternalLink {
                    url,
                    same_window: true,
                }),
            })
        })
        .collect()
}

/// The user's groups as `other` would see them, if it signs people in from the same source: the same
/// OIDC issuer (the groups of this session), or dev sign-in listing the same user id (that listing's groups).
fn groups_there<'a>(
    here: &SignIn,
    other: &'a Tenant,
    subject: &str,
    groups: &'a [String],
) -> Option<&'a [String]> {
    match (here, &other.sign_in) {
        (SignIn::Oidc(a), SignIn::Oidc(b)) => (a.issuer == b.issuer).then_some(groups),
        (SignIn::Dev { .. }, SignIn::Dev { users }) => users
            .iter()
            .find(|listed| listed.id == subject)
            .map(|listed| listed.groups.as_slice()),
        _ => None,
    }
}

fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|word| word.chars().next())
        .take(2)
        .collect::<String>()
        .to_uppercase()
}

#[cfg(test)]
mod tests;
