//! "Why does this user see what they see?": for one tenant and the groups a user brings from the IdP,
//! every app and page, visible or not, and why: the roles each needs, the groups that grant them, and
//! for one path, the rule that decided it. `portico explain` prints it; the admin listener answers it
//! as JSON (`GET /explain`).
//!
//! Every verdict is `rbac::decide_by`, the decision the proxy and the navigation take, on the same
//! compiled config: this module explains, it never decides differently. It reads config only: no
//! session, no request, no user beyond the groups it is given.

use serde::Serialize;

use crate::config::{App, NavNode, Tenant};
use crate::rbac::{self, DecidedBy, Decision, Need, Roles};

/// What a user with `groups` meets on a tenant.
#[derive(Debug, Serialize)]
pub struct Explanation<'a> {
    pub tenant: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    pub groups: &'a [String],
    /// The roles the groups give, each with the groups that give it.
    pub roles: Vec<Granted<'a>>,
    /// Groups that give no role here (a typo in the IdP, or a group meant for another tenant).
    pub groups_without_role: Vec<&'a str>,
    pub apps: Vec<AppVerdict<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathVerdict<'a>>,
}

#[derive(Debug, Serialize)]
pub struct Granted<'a> {
    pub role: &'a str,
    pub by: Vec<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct AppVerdict<'a> {
    pub id: &'a str,
    pub label: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<&'a str>,
    pub visible: bool,
    /// Empty when visible.
    pub needs: Vec<Need<'a>>,
    /// The app's pages (only for an app the user sees: a hidden app hides its pages with it).
    pub pages: Vec<PageVerdict<'a>>,
}

#[derive(Debug, Serialize)]
pub struct PageVerdict<'a> {
    /// Where the page lives in the shell (`/home/<app>/<path>`).
    pub path: String,
    pub label: &'a str,
    pub visible: bool,
    pub needs: Vec<Need<'a>>,
}

/// The decision for one path.
#[derive(Debug, Serialize)]
pub struct PathVerdict<'a> {
    pub method: String,
    pub path: String,
    /// The app the path belongs to; `None`: no app of this tenant lives there.
    pub app: Option<&'a str>,
    pub allowed: bool,
    /// The rule that decided, in words (`the app's access`, `the node rule for /admin`,
    /// `the rule POST /admin/**`).
    pub rule: String,
    pub needs: Vec<Need<'a>>,
}

/// What `groups` (of `user`, a name for the report only) meet on `tenant`, and the decision for
/// `path` (`/apps/<id>/…` as the proxy sees it, or `/home/<id>/…` as the shell does) if one is given.
pub fn explain<'a>(
    tenant: &'a Tenant,
    user: Option<&'a str>,
    groups: &'a [String],
    path: Option<(&http::Method, &str)>,
) -> Explanation<'a> {
    let roles = tenant.roles.roles_for(groups);
    let granted = tenant
        .roles
        .roles
        .iter()
        .filter(|(role, _)| roles.0.contains(role))
        .map(|(role, by)| Granted {
            role: role.0.as_str(),
            by: by
                .iter()
                .filter(|group| groups.contains(group))
                .map(String::as_str)
                .collect(),
        })
        .collect();
    let groups_without_role = groups
        .iter()
        .filter(|group| !tenant.roles.roles.iter().any(|(_, by)| by.contains(group)))
        .map(String::as_str)
        .collect();
    Explanation {
        tenant: tenant.id.as_str(),
        user,
        groups,
        roles: granted,
        groups_without_role,
        apps: tenant
            .apps
            .iter()
            .map(|app| app_verdict(tenant, app, &roles))
            .collect(),
        path: path.map(|(method, path)| path_verdict(tenant, &roles, method, path)),
    }
}

fn needs<'a>(tenant: &'a Tenant, decision: &Decision) -> Vec<Need<'a>> {
    match decision {
        Decision::Deny { needed } => tenant.roles.needs(needed),
        _ => Vec::new(),
    }
}

fn app_verdict<'a>(tenant: &'a Tenant, app: &'a App, roles: &Roles) -> AppVerdict<'a> {
    let decision = rbac::decide(roles, &app.policy, &http::Method::GET, "/");
    let mut pages = Vec::new();
    if decision.is_allowed() {
        let base = format!("/home/{}", app.id);
        collect_pages(tenant, app, &app.nodes, roles, &base, &mut pages);
    }
    AppVerdict {
        id: app.id.as_str(),
        label: app.label.fallback(),
        owner: app.owner.as_deref(),
        visible: decision.is_allowed(),
        needs: needs(tenant, &decision),
        pages,
    }
}

/// Every page below `nodes`, depth first; a page the user may not see hides its children with it, as
/// the navigation does, so they are not listed.
fn collect_pages<'a>(
    tenant: &'a Tenant,
    app: &'a App,
    nodes: &'a [NavNode],
    roles: &Roles,
    base: &str,
    out: &mut Vec<PageVerdict<'a>>,
) {
    for node in nodes {
        let decision = rbac::decide(roles, &app.policy, &http::Method::GET, &node.view);
        let path = format!("{base}/{}", node.path);
        let visible = decision.is_allowed();
        out.push(PageVerdict {
            path: path.clone(),
            label: node.label.fallback(),
            visible,
            needs: needs(tenant, &decision),
        });
        if visible {
            collect_pages(tenant, app, &node.children, roles, &path, out);
        }
    }
}

fn path_verdict<'a>(
    tenant: &'a Tenant,
    roles: &Roles,
    method: &http::Method,
    path: &str,
) -> PathVerdict<'a> {
    let unknown = |rule: &str| PathVerdict {
        method: method.to_string(),
        path: path.to_owned(),
        app: None,
        allowed: false,
        rule: rule.to_owned(),
        needs: Vec::new(),
    };
    let (app_id, rest, shell) = if let Some(rest) = path.strip_prefix("/apps/") {
        let (id, rest) = rest.split_once('/').unwrap_or((rest, ""));
        (id, rest, false)
    } else if let Some(rest) = path.strip_prefix("/home/") {
        let (id, rest) = rest.split_once('/').unwrap_or((rest, ""));
        (id, rest, true)
    } else {
        return unknown("not an app path: give /apps/<id>/… or /home/<id>/…");
    };
    let Some(app) = tenant.app(app_id) else {
        return unknown("no app of this tenant has this id");
    };
    // The path inside the app: the proxy's canonical form, or for a shell path the view of the page
    // it names (the rest of a shell path below an app without pages is the app's own path).
    let inside = if shell && !app.nodes.is_empty() {
        match page_view(&app.nodes, rest) {
            Some(view) => view.to_owned(),
            None => return unknown("no page of this app lives at this shell path"),
        }
    } else {
        match crate::proxy::path::normalise(rest) {
            Ok(canonical) => canonical.decoded,
            Err(bad) => return unknown(&format!("the proxy refuses this path (400): {}", bad.0)),
        }
    };
    let (decision, by) = rbac::decide_by(roles, &app.policy, method, &inside);
    let rule = match by {
        DecidedBy::App => "the app's access".to_owned(),
        DecidedBy::Node(prefix) => format!("the node rule for {prefix} (and everything below it)"),
        DecidedBy::Request(rule) => {
            let methods: Vec<&str> = rule.methods.iter().map(http::Method::as_str).collect();
            let methods = if methods.is_empty() {
                "any method".to_owned()
            } else {
                methods.join(",")
            };
            format!("the rule {methods} {}", rule.path.as_str())
        }
    };
    PathVerdict {
        method: method.to_string(),
        path: path.to_owned(),
        app: Some(app.id.as_str()),
        allowed: decision.is_allowed(),
        rule,
        needs: needs(tenant, &decision),
    }
}

/// The view of the page a shell path names below its app (`reports/2024` → the `reports` page's
/// view, then its `2024` child's), a parameter page matching any segment; `None` when a segment
/// names no page. The app's own view for an empty path.
fn page_view<'a>(nodes: &'a [NavNode], rest: &str) -> Option<&'a str> {
    let mut level = nodes;
    let mut view = "/";
    for segment in rest.split('/').filter(|segment| !segment.is_empty()) {
        let node = level
            .iter()
            .find(|node| node.path == segment)
            .or_else(|| level.iter().find(|node| node.is_parameter()))?;
        view = &node.view;
        level = &node.children;
    }
    Some(view)
}

impl Explanation<'_> {
    /// The report as people read it: roles first, then one line per app and page, then the path.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let who = self
            .user
            .map_or_else(String::new, |user| format!("{user}, "));
        let groups = if self.groups.is_empty() {
            "no groups".to_owned()
        } else {
            format!("groups {}", self.groups.join(", "))
        };
        out.push_str(&format!("tenant {}: {who}{groups}\n", self.tenant));
        if self.roles.is_empty() {
            out.push_str("roles: none\n");
        }
        for granted in &self.roles {
            out.push_str(&format!(
                "role {} (from {})\n",
                granted.role,
                granted.by.join(", ")
            ));
        }
        if !self.groups_without_role.is_empty() {
            out.push_str(&format!(
                "groups that give no role here: {}\n",
                self.groups_without_role.join(", ")
            ));
        }
        out.push('\n');
        for app in &self.apps {
            let owner = app
                .owner
                .map_or_else(String::new, |owner| format!(", owned by {owner}"));
            out.push_str(&format!(
                "{} app {} ({}{owner}){}\n",
                mark(app.visible),
                app.id,
                app.label,
                why(&app.needs)
            ));
            for page in &app.pages {
                out.push_str(&format!(
                    "    {} page {} ({}){}\n",
                    mark(page.visible),
                    page.path,
                    page.label,
                    why(&page.needs)
                ));
            }
        }
        if let Some(path) = &self.path {
            let verdict = if path.allowed { "allowed" } else { "refused" };
            out.push_str(&format!(
                "\n{} {}: {verdict} by {}{}\n",
                path.method,
                path.path,
                path.rule,
                why(&path.needs)
            ));
        }
        out
    }
}

fn mark(visible: bool) -> &'static str {
    if visible { "visible" } else { "hidden " }
}

/// ` — needs role a (granted by groups x, y)` for what the user lacks; empty when nothing is lacking.
fn why(needs: &[Need<'_>]) -> String {
    if needs.is_empty() {
        return String::new();
    }
    let each: Vec<String> = needs
        .iter()
        .map(|need| {
            if need.groups.is_empty() {
                format!("role {} (no group grants it)", need.role)
            } else {
                format!("role {} (granted by {})", need.role, need.groups.join(", "))
            }
        })
        .collect();
    format!(" — needs {}", each.join(" or "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    #[test]
    fn a_shell_path_is_judged_by_its_pages_view_and_a_parameter_page_by_its_parents_rule() {
        let config = config::load_embedded().unwrap().config;
        let tenant = config.tenant("demo").unwrap();
        let dave = ["demo-eng".to_owned()];
        let judge = |path: &str| {
            explain(tenant, None, &dave, Some((&http::Method::GET, path)))
                .path
                .unwrap()
        };
        let page = judge("/home/service-status/incidents");
        assert!(!page.allowed);
        assert_eq!(
            page.rule,
            "the node rule for /incidents (and everything below it)"
        );
        assert_eq!(page.needs[0].role, "platform-admin");
        let incident = judge("/home/service-status/incidents/INC-7");
        assert!(
            !incident.allowed,
            "the parameter page takes its parent's rule"
        );
        assert!(judge("/home/service-status/overview").allowed);
        assert!(
            judge("/home/team-directory/people/42").allowed,
            "an app without pages"
        );
        let nowhere = judge("/home/service-status/nope");
        assert_eq!(nowhere.app, None);
        assert!(nowhere.rule.contains("no page"), "{}", nowhere.rule);
        assert_eq!(judge("/elsewhere").app, None);
        assert!(judge("/apps/service-status/a;b").rule.contains("400"));
    }
}
