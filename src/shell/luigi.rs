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
//!   sends `portico.csrfToken` when signing out. It reads `portico.frameTimeoutMs` (the frame
//!   watchdog), `globalContext.tenant` (`id`, `title`) and `globalContext.user.id` (document title,
//!   recently used apps), and each node's `context.app` (`label`, `owner`) for frame titles and the
//!   watchdog's panel.
//! - `web/shell/home.js` (the home view, a launchpad) reads its node's `context.apps` (`id`, `label`,
//!   `category`, `icon`, `description`, `path`, `owner`, `catalogRef`) and the global context's `tenant`, `user` and `roles`. The views below home
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
use crate::doctor::health::TenantHealth;
use crate::i18n::Locale;
use crate::rbac::{self, Roles};

/// The path segment of the home node, the root of the shell's navigation: apps live at `/home/<app-id>`.
/// Config reserves it (`config::RESERVED_SEGMENTS`) so that no app id shadows it.
pub(crate) const HOME_SEGMENT: &str = "home";

/// The hidden home entry that explains an unknown or forbidden route (`web/shell/not-found.html`,
/// asking `/shell/route.json`); the shell's `pageNotFoundHandler` shows it and keeps the URL. App ids
/// start with a letter, so no app can take this segment.
pub(crate) const NOT_FOUND_SEGMENT: &str = "_not-found";

/// The hidden home entry of "My access" (`web/shell/access.html` over `/shell/access.json`), linked
/// from the profile menu.
pub(crate) const MY_ACCESS_SEGMENT: &str = "_my-access";

/// The side-navigation icon of an app whose config names none (an SAP icon, like config's names).
const DEFAULT_APP_ICON: &str = "product";

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
    /// How long the shell waits for a frame's Luigi Client handshake before it says what is wrong
    /// (`luigi.frame_timeout`).
    pub frame_timeout_ms: u64,
    /// What Luigi's profile menu shows (the bootstrap returns it from `staticUserInfoFn`).
    pub user: ProfileUser<'a>,
    /// The language of this document's texts (`de`): the bootstrap hands it to Luigi's i18n.
    pub locale: &'static str,
    /// While the tenant's apps are watched (`health:`), how often the open shell reads its config
    /// again to follow the marks: the watch's interval, within 1 s and 60 s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_refresh_ms: Option<u64>,
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
    /// Real `href`s on every navigation link: keyboard users reach the profile menu's entries, and
    /// any entry opens in a new tab with a middle click.
    pub add_nav_hrefs: bool,
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
    /// A shortcut entry: navigates to this path instead of having a view (an app's pages, listed
    /// beside the app, see [`home_entries`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view_url: Option<String>,
    /// Entries of one group share an iframe; see [`LuigiNode::in_app`] for why the group is the app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view_group: Option<&'a str>,
    /// Routable but never listed (the page that explains an unknown route).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hide_from_nav: Option<bool>,
    /// Every path below the entry opens its view at that path: routes inside an app are links.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_tree: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loading_indicator: Option<LoadingIndicator>,
    /// The entry's `data-testid` in the page.
    pub test_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<NodeContext<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_selected_for_children: Option<bool>,
    /// The home node always lists its children (maybe none); other entries only when they have some.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<LuigiNode<'a>>>,
    /// Text beside the entry's label (Luigi 2.31's `statusBadge`): "Degraded" on the entry of an
    /// app the health watch finds not answering ([`mark_health`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_badge: Option<StatusBadge<'a>>,
}

/// Luigi's `statusBadge` of a node: visible text in the side navigation, not colour alone.
#[derive(Debug, Serialize)]
pub(crate) struct StatusBadge<'a> {
    pub label: &'a str,
    /// `negative`, `positive`, `critical` or `informative`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub align: &'static str,
}

/// What the health watch says about a degraded app the user can see (`context.app.degraded` of its
/// entries, `degraded` of its launchpad summary).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DegradedMark {
    /// When the probes started failing, RFC 3339 (UTC).
    #[serde(serialize_with = "shared_text")]
    pub since: std::sync::Arc<str>,
    /// A fixed word (`refused`, `unreachable`, `tls`, `timeout`, `broken`, `status`, `redirect`)
    /// the shell translates (`health.reason.<code>`).
    pub code: &'static str,
    /// The status the app answered with, for `status` and `redirect`.
    pub status: Option<u16>,
    /// The reason in English, for a reader without the shell's texts: never the upstream's
    /// address or body.
    pub reason: String,
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
    /// Luigi's (SAP) icon name, as the navigation shows it.
    pub icon: Option<&'a str>,
    pub description: Option<&'a str>,
    /// The shell path the home view navigates to.
    pub path: String,
    /// The team that owns the app, as config says.
    pub owner: Option<&'a str>,
    /// The app's catalog entity (`catalog_ref`): the home view and the Catalog app show its owner
    /// and links, fetched as the user.
    #[serde(rename = "catalogRef")]
    pub catalog_ref: Option<&'a str>,
    /// Only while the health watch finds the app degraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded: Option<DegradedMark>,
}

/// The app an entry belongs to, as its view sees it.
#[derive(Debug, Serialize)]
pub(crate) struct AppContext<'a> {
    pub id: &'a str,
    pub label: &'a str,
    pub owner: Option<&'a str>,
    #[serde(rename = "catalogRef")]
    pub catalog_ref: Option<&'a str>,
    /// Only while the health watch finds the app degraded: the shell shows a panel instead of
    /// waiting for its frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded: Option<DegradedMark>,
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
    pub items: Vec<ProfileItem>,
    pub logout: Logout,
}

/// An entry of the profile menu: a link inside the shell, or a page of portico's own outside it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProfileItem {
    pub label: &'static str,
    pub icon: &'static str,
    /// A shell path, or…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// …a page outside the shell (the language switch, the access tokens page).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_link: Option<ExternalLink>,
    pub test_id: String,
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
    /// The portal's logo when its branding has one (see [`portal_icon`]), else an SAP icon name.
    pub icon: String,
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
    pub logo: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub favicon: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppLoadingIndicator {
    pub hide_automatically: bool,
}

impl<'a> LuigiNode<'a> {
    /// The root entry: the home view, listing `apps`, with their entries below it.
    fn home(apps: Vec<AppSummary<'a>>, children: Vec<LuigiNode<'a>>, locale: Locale) -> Self {
        LuigiNode {
            path_segment: HOME_SEGMENT,
            label: locale.texts().get("nav.home"),
            category: None,
            icon: Some("home"),
            link: None,
            view_url: Some("/shell/home.html".into()),
            view_group: Some("portico-home"),
            hide_from_nav: None,
            virtual_tree: None,
            loading_indicator: None,
            test_id: "nav-home".into(),
            context: Some(NodeContext::Home { apps }),
            keep_selected_for_children: None,
            children: Some(children),
            status_badge: None,
        }
    }

    /// A hidden entry for one of the shell's own views: `segment` below home, showing `view`.
    fn shell_view(segment: &'a str, label: &'a str, view: &str, group: &'a str) -> Self {
        LuigiNode {
            path_segment: segment,
            label,
            category: None,
            icon: None,
            link: None,
            view_url: Some(view.into()),
            // Its own frame: inheriting home's group, Luigi would reuse the home frame without
            // loading this view.
            view_group: Some(group),
            hide_from_nav: Some(true),
            virtual_tree: None,
            // The view loads Luigi Client, so the shell's indicator ends.
            loading_indicator: Some(LoadingIndicator { enabled: true }),
            test_id: format!("nav{}", segment.replace('_', "-")),
            context: None,
            keep_selected_for_children: None,
            children: None,
            status_badge: None,
        }
    }

    /// A side-navigation shortcut to `node`, one of `app`'s pages at `path` below the home entry,
    /// listed right after the app in its category. It has no icon, so Luigi indents it under the app's.
    fn page_link(app: &'a App, node: &'a NavNode, path: String, locale: Locale) -> Self {
        LuigiNode {
            path_segment: node.path.as_str(),
            label: node.label.get(locale),
            category: app.category.as_ref().map(|category| category.get(locale)),
            icon: None,
            test_id: format!("nav-{}-{}", app.id, path.replace('/', "-")),
            link: Some(format!("/{HOME_SEGMENT}/{}/{path}", app.id)),
            view_url: None,
            view_group: None,
            hide_from_nav: None,
            virtual_tree: None,
            loading_indicator: None,
            context: None,
            keep_selected_for_children: None,
            children: None,
            status_badge: None,
        }
    }

    /// An entry of `app`: the app's own (`node` is `None`, showing the app's root) or one of its nodes.
    fn in_app(
        app: &'a App,
        node: Option<&'a NavNode>,
        children: Vec<LuigiNode<'a>>,
        locale: Locale,
    ) -> Self {
        let (path_segment, label, icon, view, test_id) = match node {
            None => (
                app.id.as_str(),
                app.label.get(locale),
                // Every app has an icon: the collapsed side navigation shows nothing else of it.
                Some(app.icon.as_deref().unwrap_or(DEFAULT_APP_ICON)),
                "/",
                format!("nav-{}", app.id),
            ),
            Some(node) => (
                node.path.as_str(),
                node.label.get(locale),
                node.icon.as_deref(),
                node.view.as_str(),
                format!("nav-{}-{}", app.id, node.path),
            ),
        };
        let is_app = node.is_none();
        let is_parameter = node.is_some_and(NavNode::is_parameter);
        // An app without pages opens any path below it in its view (`/home/team-directory/people/42`):
        // the proxy decides each of those paths again, so this opens nothing the user may not. Not
        // for pages: Luigi keeps the side navigation at the deepest virtual tree, which would replace
        // the other apps with the app's pages.
        let is_virtual_tree = is_app && children.is_empty() && app.nodes.is_empty();
        LuigiNode {
            path_segment,
            label,
            category: app
                .category
                .as_ref()
                .filter(|_| is_app)
                .map(|category| category.get(locale)),
            icon,
            link: None,
            view_url: Some(if is_virtual_tree {
                // Luigi appends `/<rest of the path>` to it.
                app.base().into_owned()
            } else {
                format!("{}{view}", app.base())
            }),
            // One iframe group per app: same-origin frames of different apps must never be reused.
            view_group: Some(app.id.as_str()),
            // A route with a parameter (`/incidents/INC-7`) is reached by links, not listed.
            hide_from_nav: is_parameter.then_some(true),
            virtual_tree: is_virtual_tree.then_some(true),
            loading_indicator: Some(LoadingIndicator {
                enabled: app.luigi_client,
            }),
            test_id,
            context: Some(NodeContext::App {
                app: AppContext {
                    id: app.id.as_str(),
                    label: app.label.get(locale),
                    owner: app.owner.as_deref(),
                    catalog_ref: app.catalog_ref.as_deref(),
                    degraded: None,
                },
                view: node.map(|node| node.view.as_str()),
            }),
            // The side navigation stays on the apps, with this app's pages listed beside it.
            keep_selected_for_children: is_app.then_some(true),
            children: (!children.is_empty()).then_some(children),
            status_badge: None,
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
    locale: Locale,
) -> ShellConfig<'a> {
    let texts = locale.texts();
    let user = &signed_in.session.user;
    let csrf_token = signed_in.session.csrf_token.as_str();
    let apps = visible_apps(tenant, signed_in.roles());
    let summaries = apps
        .iter()
        .map(|app| AppSummary {
            id: app.id.as_str(),
            label: app.label.get(locale),
            category: app.category.as_ref().map(|category| category.get(locale)),
            icon: app.icon.as_deref(),
            description: app
                .description
                .as_ref()
                .map(|description| description.get(locale)),
            path: format!("/{HOME_SEGMENT}/{}", app.id),
            owner: app.owner.as_deref(),
            catalog_ref: app.catalog_ref.as_deref(),
            degraded: None,
        })
        .collect();
    let mut home_children = home_entries(&apps, signed_in.roles(), locale);
    home_children.push(LuigiNode::shell_view(
        NOT_FOUND_SEGMENT,
        texts.get("nav.notFound"),
        "/shell/not-found.html",
        "portico-not-found",
    ));
    home_children.push(LuigiNode::shell_view(
        MY_ACCESS_SEGMENT,
        texts.get("nav.myAccess"),
        "/shell/access.html",
        "portico-access",
    ));
    let branding = &tenant.branding;
    ShellConfig {
        portico: Portico {
            csrf_token,
            locale: locale.tag(),
            luigi_version: LUIGI_VERSION,
            frame_timeout_ms: u64::try_from(tenant.luigi.frame_timeout.as_millis())
                .unwrap_or(u64::MAX),
            health_refresh_ms: health_refresh_ms(tenant),
            user: ProfileUser {
                name: &user.name,
                email: &user.email,
                initials: initials(&user.name),
            },
        },
        luigi: LuigiConfig {
            navigation: Navigation {
                add_nav_hrefs: true,
                nodes: [LuigiNode::home(summaries, home_children, locale)],
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
                    items: profile_items(tenant, locale),
                    logout: Logout {
                        label: texts.get("nav.signOut"),
                        icon: "log",
                    },
                },
                product_switcher: product_switcher(config, tenant, signed_in, locale),
            },
            routing: Routing {
                use_hash_routing: false,
            },
            settings: Settings {
                header: Header {
                    title: &branding.title,
                    logo: branding.logo_href(),
                    favicon: branding.favicon_href(),
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

/// Shared text as a JSON string (serde's `Arc` support is a feature portico does not turn on).
fn shared_text<S: serde::Serializer>(text: &std::sync::Arc<str>, to: S) -> Result<S::Ok, S::Error> {
    to.serialize_str(text)
}

/// Marks the apps of `document` that `health` (the tenant's health watch) finds degraded: their
/// launchpad summary, the context of each of their entries, and a "Degraded" badge on the app's own
/// entry. Only apps already in the document are looked at, so the mark never names an app the user
/// cannot see; what it says is a fixed reason and a time, never the upstream's address or answer.
/// A pass over the finished document, so every caller of [`shell_config`] keeps its signature.
pub(crate) fn mark_health(document: &mut ShellConfig<'_>, health: &TenantHealth, locale: Locale) {
    let mark = |id: &str| {
        health
            .iter()
            .find(|(app, _)| app.as_str() == id)
            .and_then(|(_, state)| state.degraded())
            .map(|degraded| DegradedMark {
                since: degraded.since_text.clone(),
                code: degraded.reason.kind.code(),
                status: degraded.reason.status,
                reason: degraded.reason.text(),
            })
    };
    if !health.values().any(|state| state.degraded().is_some()) {
        return;
    }
    let badge = locale.texts().get("nav.degraded");
    let [home] = &mut document.luigi.navigation.nodes;
    if let Some(NodeContext::Home { apps }) = &mut home.context {
        for summary in apps.iter_mut() {
            summary.degraded = mark(summary.id);
        }
    }
    if let Some(children) = &mut home.children {
        each_app_node(children, &mut |node| {
            let Some(NodeContext::App { app, view }) = &mut node.context else {
                return;
            };
            app.degraded = mark(app.id);
            // The app's own entry (not one of its pages) carries the badge.
            if app.degraded.is_some() && view.is_none() {
                node.status_badge = Some(StatusBadge {
                    label: badge,
                    kind: "negative",
                    align: "right",
                });
            }
        });
    }
}

/// Calls `visit` with every node of an app below `nodes` (its entry and its pages), depth first: the
/// one walk the passes over a finished document ([`mark_health`], [`mark_previews`]) share.
fn each_app_node<'a>(nodes: &mut [LuigiNode<'a>], visit: &mut dyn FnMut(&mut LuigiNode<'a>)) {
    for node in nodes {
        if matches!(node.context, Some(NodeContext::App { .. })) {
            visit(node);
        }
        if let Some(children) = &mut node.children {
            each_app_node(children, visit);
        }
    }
}

/// Marks the entries of the apps this session sent to a preview upstream (`previews:`) with a
/// "Preview" badge, in place of any other: what the user sees there is not the app's own build.
pub(crate) fn mark_previews(document: &mut ShellConfig<'_>, previewed: &[&str], locale: Locale) {
    if previewed.is_empty() {
        return;
    }
    let badge = locale.texts().get("nav.preview");
    let [home] = &mut document.luigi.navigation.nodes;
    if let Some(children) = &mut home.children {
        each_app_node(children, &mut |node| {
            let entry_of_previewed = matches!(
                &node.context,
                Some(NodeContext::App { app, view: None }) if previewed.contains(&app.id)
            );
            if entry_of_previewed {
                node.status_badge = Some(StatusBadge {
                    label: badge,
                    kind: "informative",
                    align: "right",
                });
            }
        });
    }
}

/// How often an open shell reads its config again to follow the health marks: the watch's interval,
/// within 1 s (a page must not poll faster) and 60 s (a mark must not lag much behind); `None` while
/// the tenant's apps are not watched.
fn health_refresh_ms(tenant: &Tenant) -> Option<u64> {
    let health = tenant.health.as_ref()?;
    let every = health.interval.clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(60),
    );
    Some(u64::try_from(every.as_millis()).unwrap_or(60_000))
}

/// The profile menu's entries: "My access", "Access tokens" when the tenant issues personal tokens,
/// then a switch to each other language (by its own name, in its own language: someone who cannot
/// read this one still finds theirs). The switch comes back to the page the user was on
/// (`/shell/language` reads it from the `Referer`).
fn profile_items(tenant: &Tenant, locale: Locale) -> Vec<ProfileItem> {
    let my_access = ProfileItem {
        label: locale.texts().get("nav.myAccess"),
        icon: "employee-approvals",
        link: Some(format!("/{HOME_SEGMENT}/{MY_ACCESS_SEGMENT}")),
        external_link: None,
        test_id: "profile-my-access".to_owned(),
    };
    // A page of its own in the whole window, not a view in the shell's frame: it shows a new token's
    // secret once, and nothing of it should stay behind in the shell (`shell::tokens`).
    let access_tokens = tenant.tokens.personal.is_some().then(|| ProfileItem {
        label: locale.texts().get("nav.accessTokens"),
        icon: "key",
        link: None,
        external_link: Some(ExternalLink {
            url: super::tokens::PATH.to_owned(),
            same_window: true,
        }),
        test_id: "profile-access-tokens".to_owned(),
    });
    let languages = Locale::ALL
        .into_iter()
        .filter(|other| *other != locale)
        .map(|other| ProfileItem {
            label: other.name(),
            icon: "world",
            link: None,
            external_link: Some(ExternalLink {
                url: format!("/shell/language?set={}", other.tag()),
                same_window: true,
            }),
            test_id: format!("profile-language-{}", other.tag()),
        });
    std::iter::once(my_access)
        .chain(access_tokens)
        .chain(languages)
        .collect()
}

/// The home entry's children: each app with the pages the user may reach below it, and beside an app
/// that has pages, a shortcut to each of them in the app's own side-navigation group. Luigi lists one
/// level of the tree; without the shortcuts, opening an app's page would replace every other app in
/// the side navigation with that app's pages.
fn home_entries<'a>(apps: &[&'a App], roles: &Roles, locale: Locale) -> Vec<LuigiNode<'a>> {
    let mut entries = Vec::new();
    for app in apps {
        entries.push(LuigiNode::in_app(
            app,
            None,
            nav_nodes(app, &app.nodes, roles, locale),
            locale,
        ));
        entries.extend(
            reachable_pages(app, roles)
                .into_iter()
                .map(|(node, path)| LuigiNode::page_link(app, node, path, locale)),
        );
    }
    entries
}

/// The pages of `app` that `roles` may reach, depth first, each with its path below the app
/// (`builds/logs`); a page they may not reach takes its children with it, as in the navigation.
pub(crate) fn reachable_pages<'a>(app: &'a App, roles: &Roles) -> Vec<(&'a NavNode, String)> {
    fn walk<'a>(
        app: &'a App,
        nodes: &'a [NavNode],
        roles: &Roles,
        prefix: &str,
        found: &mut Vec<(&'a NavNode, String)>,
    ) {
        for node in nodes {
            // A parameter's route is no page one can list: it needs a value.
            if node.is_parameter()
                || !rbac::decide(roles, &app.policy, &http::Method::GET, &node.view).is_allowed()
            {
                continue;
            }
            let path = format!("{prefix}{}", node.path);
            found.push((node, path.clone()));
            walk(app, &node.children, roles, &format!("{path}/"), found);
        }
    }
    let mut found = Vec::new();
    walk(app, &app.nodes, roles, "", &mut found);
    found
}

/// The entries among `nodes` the user may reach, each with its reachable children; an entry the user
/// may not reach takes its children with it.
fn nav_nodes<'a>(
    app: &'a App,
    nodes: &'a [NavNode],
    roles: &Roles,
    locale: Locale,
) -> Vec<LuigiNode<'a>> {
    nodes
        .iter()
        .filter(|node| {
            rbac::decide(roles, &app.policy, &http::Method::GET, &node.view).is_allowed()
        })
        .map(|node| {
            let children = nav_nodes(app, &node.children, roles, locale);
            LuigiNode::in_app(app, Some(node), children, locale)
        })
        .collect()
}

/// Luigi's product switcher: this portal first, then the user's other portals; none if there are none.
fn product_switcher<'a>(
    config: &'a Config,
    tenant: &'a Tenant,
    signed_in: &SignedIn,
    locale: Locale,
) -> Option<ProductSwitcher<'a>> {
    let others = other_portals(config, tenant, signed_in);
    if others.is_empty() {
        return None;
    }
    let this_portal = PortalLink {
        label: &tenant.branding.title,
        sub_title: locale.texts().get("nav.thisPortal").into(),
        icon: portal_icon(tenant, None).unwrap_or_else(|| "home".to_owned()),
        selected: Some(true),
        test_id: format!("portal-{}", tenant.id),
        link: Some("/home"),
        external_link: None,
    };
    Some(ProductSwitcher {
        label: locale.texts().get("nav.yourPortals"),
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
                icon: portal_icon(other, other.origin.as_deref())
                    .unwrap_or_else(|| "chain-link".to_owned()),
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

/// A portal's logo for the product switcher: on `origin` when it is another tenant's (its logo is
/// served there, never through this tenant). `None` without a logo.
fn portal_icon(tenant: &Tenant, origin: Option<&str>) -> Option<String> {
    let href = tenant.branding.logo.as_ref()?.href("logo");
    Some(match origin {
        Some(origin) if href.starts_with('/') => format!("{origin}{href}"),
        _ => href,
    })
}

/// The origins of the images the user's product switcher shows from other portals, which the shell
/// page's CSP must allow (`img-src`); only those of the portals listed for this user.
pub(crate) fn switcher_image_origins(
    config: &Config,
    tenant: &Tenant,
    signed_in: &SignedIn,
) -> Vec<String> {
    other_portals(config, tenant, signed_in)
        .into_iter()
        .filter_map(|portal| {
            let rest = portal.icon.split_once("://")?;
            let host = rest.1.split('/').next()?;
            Some(format!("{}://{host}", rest.0))
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
