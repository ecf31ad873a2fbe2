//! The Luigi configuration of one signed-in user, built on the server.
//!
//! Apps and nodes the user may not reach are left out, not hidden: the browser never learns they exist.
//! Visibility is `rbac::decide` on the path each entry shows, the same call the proxy makes. Only JSON
//! goes out; the few function-valued parts of Luigi's config are added by the static bootstrap script.

use serde_json::{Value, json};

use crate::assets::LUIGI_VERSION;
use crate::auth::SignedIn;
use crate::config::{App, NavNode, Tenant};
use crate::rbac::{self, Roles};

/// The apps of `tenant` that `roles` may open, in config order.
pub fn visible_apps<'t>(tenant: &'t Tenant, roles: &Roles) -> Vec<&'t App> {
    tenant
        .apps
        .iter()
        .filter(|app| rbac::decide(roles, &app.policy, "GET", "/").is_allowed())
        .map(AsRef::as_ref)
        .collect()
}

/// The document `/shell/config.json` returns: Luigi's config plus what the bootstrap needs.
pub fn shell_config(tenant: &Tenant, signed_in: &SignedIn) -> Value {
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
    json!({
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
                "responsiveNavigation": "semiCollapsible",
                "sideNavFooterText": format!("portico {}", env!("CARGO_PKG_VERSION")),
                "appLoadingIndicator": { "hideAutomatically": true },
            },
        },
    })
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
    if !rbac::decide(roles, &app.policy, "GET", &node.view).is_allowed() {
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
