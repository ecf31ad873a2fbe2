//! The Luigi configuration of one signed-in user, built on the server.
//!
//! Apps and nodes the user may not reach are left out, not hidden: the browser never learns they exist.
//! Visibility is `rbac::decide` on the path each entry shows, the same call the proxy makes. Only JSON
//! goes out; the few function-valued parts of Luigi's config are added by the static bootstrap script.

use serde_json::{Value, json};

use crate::assets::LUIGI_VERSION;
use crate::auth::SignedIn;
use crate::config::{App, Config, NavNode, SignIn, Tenant};
use crate::rbac::{self, Roles};

/// The apps of `tenant` that `roles` may open, in config order.
pub fn visible_apps<'t>(tenant: &'t Tenant, roles: &Roles) -> Vec<&'t App> {
    tenant
        .apps
        .iter()
        .filter(|app| rbac::decide(roles, &app.policy, &http::Method::GET, "/").is_allowed())
        .map(AsRef::as_ref)
        .collect()
}

/// The document `/shell/config.json` returns: Luigi's config plus what the bootstrap needs.
pub fn shell_config(config: &Config, tenant: &Tenant, signed_in: &SignedIn) -> Value {
    let user = &signed_in.session.user;
    let roles = signed_in.roles.names();
    let apps = visible_apps(tenant, &signed_in.roles);
    let app_nodes: Vec<Value> = apps
        .iter()
        .map(|app| app_node(app, &signed_in.roles))
        .collect();
    let app_summaries: Vec<Value> = apps
        .iter()
        .map(|app| json!({ "id": app.id, "label": app.label, "category": app.category, "path": format!("/home/{}", app.id) }))
        .collect();
    let branding = &tenant.branding;
    let logo = branding.logo.as_deref().unwrap_or("/shell/logo.svg");
    let mut header = json!({ "title": branding.title, "logo": logo });
    if let Some(favicon) = &branding.favicon {
        header["favicon"] = json!(favicon);
    }
    let other_portals = other_portals(config, tenant, signed_in);
    let mut navigation_extra = serde_json::Map::new();
    if !other_portals.is_empty() {
        let mut items = vec![json!({
            "label": branding.title,
            "subTitle": "This portal",
            "icon": "home",
            "selected": true,
            "testId": format!("portal-{}", tenant.id),
            "link": "/home",
        })];
        items.extend(other_portals);
        navigation_extra.insert(
            "productSwitcher".into(),
            json!({ "label": "Your portals", "icon": "grid", "columns": "auto", "testId": "portico-portals", "items": items }),
        );
    }
    let mut document = json!({
        "portico": {
            "csrfToken": signed_in.session.csrf_token,
            "luigiVersion": LUIGI_VERSION,
            "user": { "name": user.name, "email": user.email, "initials": initials(&user.name) },
        },
        "luigi": {
            "navigation": {
                "nodes": [{
                    "pathSegment": "home",
                    "label": "Home",
                    "icon": "home",
                    "viewUrl": "/shell/home.html",
                    "viewGroup": "portico-home",
                    "testId": "nav-home",
                    "context": { "apps": app_summaries },
                    "children": app_nodes,
                }],
                "globalContext": {
                    "tenant": { "id": tenant.id, "title": branding.title },
                    "user": { "id": user.subject, "name": user.name, "email": user.email, "groups": user.groups },
                    "roles": roles,
                    // Micro-apps send it as `X-Portico-CSRF` on state-changing calls from non-browser code paths.
                    "csrfToken": signed_in.session.csrf_token,
                },
                "profile": {
                    "logout": { "label": "Sign out", "icon": "log" },
                },
            },
            "routing": { "useHashRouting": false },
            "settings": {
                "header": header,
                "responsiveNavigation": tenant.luigi.responsive_navigation.as_str(),
                "sideNavFooterText": tenant.luigi.side_nav_footer.clone()
                    .unwrap_or_else(|| format!("portico {}", env!("CARGO_PKG_VERSION"))),
                "appLoadingIndicator": { "hideAutomatically": true },
            },
        },
    });
    if let Some(navigation) = document["luigi"]["navigation"].as_object_mut() {
        navigation.extend(navigation_extra);
    }
    document
}

/// Links to the user's other portals on this deployment, for Luigi's product switcher.
///
/// A user "belongs" to another tenant when that tenant signs people in from the same source (the same
/// OIDC issuer, or the same dev sign-in user id) and the user's current groups give them a role there.
/// That is all the server can know without a session on that tenant; the link leads to its sign-in,
/// and nothing of the other tenant is shared: no session, no cookie, no token.
fn other_portals(config: &Config, tenant: &Tenant, signed_in: &SignedIn) -> Vec<Value> {
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
            Some(json!({
                "label": other.branding.title,
                "subTitle": url,
                "icon": "chain-link",
                "testId": format!("portal-{}", other.id),
                "externalLink": { "url": url, "sameWindow": true },
            }))
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

fn app_node(app: &App, roles: &Roles) -> Value {
    let children: Vec<Value> = app
        .nodes
        .iter()
        .filter_map(|node| nav_node(app, node, roles))
        .collect();
    let mut node = json!({
        "pathSegment": app.id,
        "label": app.label,
        "viewUrl": format!("/apps/{}/", app.id),
        // One iframe group per app: same-origin frames of different apps must never be reused.
        "viewGroup": app.id,
        "loadingIndicator": { "enabled": app.luigi_client },
        "testId": format!("nav-{}", app.id),
        "context": { "app": { "id": app.id, "label": app.label, "owner": app.owner } },
        "keepSelectedForChildren": false,
    });
    if let Some(category) = &app.category {
        node["category"] = json!(category);
    }
    if let Some(icon) = &app.icon {
        node["icon"] = json!(icon);
    }
    if !children.is_empty() {
        node["children"] = json!(children);
    }
    node
}

/// One entry, or `None` when the user may not reach its view (its children go with it).
fn nav_node(app: &App, node: &NavNode, roles: &Roles) -> Option<Value> {
    if !rbac::decide(roles, &app.policy, &http::Method::GET, &node.view).is_allowed() {
        return None;
    }
    let children: Vec<Value> = node
        .children
        .iter()
        .filter_map(|child| nav_node(app, child, roles))
        .collect();
    let mut value = json!({
        "pathSegment": node.path,
        "label": node.label,
        "viewUrl": format!("/apps/{}{}", app.id, node.view),
        "viewGroup": app.id,
        "loadingIndicator": { "enabled": app.luigi_client },
        "testId": format!("nav-{}-{}", app.id, node.path),
        "context": { "app": { "id": app.id, "label": app.label, "owner": app.owner }, "view": node.view },
    });
    if let Some(icon) = &node.icon {
        value["icon"] = json!(icon);
    }
    if !children.is_empty() {
        value["children"] = json!(children);
    }
    Some(value)
}

fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|word| word.chars().next())
        .take(2)
        .collect::<String>()
        .to_uppercase()
}
