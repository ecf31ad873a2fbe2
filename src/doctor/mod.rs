//! `portico doctor`: probes every app view a user can open, through portico's real proxy path, and
//! says what is wrong with each, whose it is and how to fix it.
//!
//! The driver ([`run`](crate::doctor::run)) builds the real portal in-process from a private copy
//! of the config (`app::shared_state` and `app::router`: tenant resolution, the session lookup,
//! `rbac::decide`, the proxy's header rules, the signed assertion, the upstream client and the static
//! bundles all as they run), puts a session for the chosen user straight into that copy's in-memory
//! store, and sends each app's entry view and each page view the navigation would show that user
//! through the router with `tower::ServiceExt::oneshot`, as a browser's frame would (a GET navigation,
//! following redirects only while they stay below `/apps/<id>/`, at most
//! [`MAX_REDIRECTS`](crate::doctor::MAX_REDIRECTS)). The answers go to the pure rules in
//! [`inspect`](crate::doctor::inspect()). An upstream app's own headers (its framing headers and
//! cookies, which portico's answer no longer shows) come back on the answer's extensions: each probe
//! asks for them with `apps::ShowUpstreamHeaders`, which only an in-process caller can set (request
//! extensions do not come over the wire). Why an upstream gave no answer comes from the error report
//! the error page was rendered from. Building and sending a probe, and reading its answer, is
//! `doctor::probe`, which the server's own health watch (`doctor::watch`) shares: both see an app
//! exactly as a user's frame would.
//!
//! What it must not do: open a way in. It adds no route and no listener:
//! the session exists only in the doctor's own process (the store is forced to `memory`, even when
//! the config says `redis`, so no instance can ever see it), is never sent anywhere but the in-process
//! router, and is removed at the end. It probes only what
//! the user may open (the navigation's filter, `shell::luigi::visible_apps` and `reachable_pages`) and
//! lists the rest as skipped, never asking the proxy for a view the user could not reach. Only GETs:
//! nothing a probe sends should change an app's state. Bodies are never buffered whole: at most
//! [`BODY_LIMIT`](crate::doctor::BODY_LIMIT) (1 MiB) of an HTML page is read for the rules, the rest
//! is dropped unread.
//!
//! JSON shape (`--format json`, stable; fields are only ever added):
//! `{"tenant", "user", "groups": [..], "probed": [{"app", "owner", "page", "status"}],
//! "skipped": [{"app", "owner", "page", "reason"}], "findings": [{"app", "owner", "page",
//! "severity": "error"|"warning", "rule": "status"|"luigi_client"|"root_absolute_url"|"framing"|
//! "cookie_path", "message", "fix"}], "errors", "warnings"}`; `owner` and `page` may be `null`
//! (an app without owner; a whole app skipped).

pub mod health;
mod inspect;
mod probe;
pub(crate) mod watch;

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use serde::Serialize;

pub use inspect::{Answer, Finding, Rule, Severity, View, inspect};
pub use probe::{BODY_LIMIT, MAX_REDIRECTS};

use crate::auth::session::SessionId;
use crate::auth::session::User;
use crate::config::{App, AppTarget, Config, NavNode, StoreSettings, Tenant};
use crate::rbac::{self, Decision};
use crate::shell::luigi::{reachable_pages, visible_apps};
use probe::Probe;

/// Why the doctor could not run (its findings are not errors of this kind).
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error("there is no tenant `{tenant}`; the tenants: {known}")]
    UnknownTenant { tenant: String, known: String },
    #[error("tenant `{tenant}` has no app `{app}`; its apps: {known}")]
    UnknownApp {
        tenant: String,
        app: String,
        known: String,
    },
    #[error("tenant `{0}` lists no host, so no request can reach it")]
    NoHost(String),
    #[error("cannot build the portal: {0}")]
    Start(#[from] crate::app::StartError),
    #[error("cannot put the probe's session into the store: {0}")]
    Session(String),
}

/// Who the probe runs as, where, and for which apps.
#[derive(Debug, Clone)]
pub struct Subject {
    pub tenant: String,
    /// The user's id (a demo user's, or any name for the report); `None`: "doctor".
    pub user: Option<String>,
    pub groups: Vec<String>,
    /// Only these apps (`--app`); empty: every app the user sees.
    pub apps: Vec<String>,
}

/// One view that was probed, and the status it finally answered.
#[derive(Debug, Serialize)]
pub struct Probed {
    pub app: String,
    pub owner: Option<String>,
    pub page: String,
    pub status: u16,
}

/// An app or page that was not probed, and why.
#[derive(Debug, Serialize)]
pub struct Skipped {
    pub app: String,
    pub owner: Option<String>,
    /// `None`: the whole app.
    pub page: Option<String>,
    pub reason: String,
}

/// The doctor's answer for one user on one tenant.
#[derive(Debug, Serialize)]
pub struct Report {
    pub tenant: String,
    pub user: Option<String>,
    pub groups: Vec<String>,
    pub probed: Vec<Probed>,
    pub skipped: Vec<Skipped>,
    pub findings: Vec<Finding>,
    pub errors: usize,
    pub warnings: usize,
}

impl Report {
    /// Whether any finding is an error (the command then exits 1).
    pub fn failed(&self) -> bool {
        self.errors > 0
    }

    /// One line per finding, then the skipped apps and pages, then a summary line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let owner = |owner: &Option<String>| match owner {
            Some(owner) => format!("owner {owner}"),
            None => "no owner".to_owned(),
        };
        for finding in &self.findings {
            out.push_str(&format!(
                "{}/{} ({}) {}: {}: {}; fix: {}\n",
                self.tenant,
                finding.app,
                owner(&finding.owner),
                finding.page,
                finding.severity.as_str(),
                finding.message,
                finding.fix
            ));
        }
        for skipped in &self.skipped {
            out.push_str(&format!(
                "{}/{} ({}){}: skipped: {}\n",
                self.tenant,
                skipped.app,
                owner(&skipped.owner),
                skipped
                    .page
                    .as_deref()
                    .map(|page| format!(" {page}"))
                    .unwrap_or_default(),
                skipped.reason
            ));
        }
        let apps = {
            let mut apps: Vec<&str> = self.probed.iter().map(|p| p.app.as_str()).collect();
            apps.dedup();
            apps.len()
        };
        out.push_str(&format!(
            "doctor {} as {}: {} view(s) of {apps} app(s) probed, {} error(s), {} warning(s), {} skipped\n",
            self.tenant,
            self.user.as_deref().unwrap_or("doctor"),
            self.probed.len(),
            self.errors,
            self.warnings,
            self.skipped.len(),
        ));
        out
    }
}

/// The views of one app to probe: its entry view and each page the user may reach.
struct Plan {
    app: String,
    views: Vec<String>,
}

/// What to probe on `tenant` for `roles` (the navigation's own filter) and what to skip, and why.
fn plan(
    tenant: &Tenant,
    roles: &rbac::Roles,
    chosen: impl Fn(&App) -> bool,
) -> (Vec<Plan>, Vec<Skipped>) {
    let visible = visible_apps(tenant, roles);
    let mut skipped = Vec::new();
    let mut plans = Vec::new();
    for app in tenant.apps.iter().filter(|app| chosen(app)) {
        let skip = |page: Option<String>, reason: String| Skipped {
            app: app.id.to_string(),
            owner: app.owner.clone(),
            page,
            reason,
        };
        if !visible.iter().any(|v| v.id == app.id) {
            skipped.push(skip(
                None,
                format!("not visible to this user ({})", needs(app, roles, "/")),
            ));
            continue;
        }
        let base = app.base();
        let mut views = vec![Probe::prefix(app)];
        let reachable = reachable_pages(app, roles);
        for (node, _) in &reachable {
            let view = format!("{base}{}", node.view);
            if !views.contains(&view) {
                views.push(view);
            }
        }
        // The pages not probed below a page that is (or below the app): hidden, or a parameter.
        let mut walk: Vec<&[NavNode]> = vec![&app.nodes];
        while let Some(nodes) = walk.pop() {
            for node in nodes {
                let view = format!("{base}{}", node.view);
                if node.is_parameter() {
                    skipped.push(skip(
                        Some(view),
                        format!(
                            "a path parameter (`{}`): no value to probe it with",
                            node.path
                        ),
                    ));
                } else if reachable.iter().any(|(n, _)| std::ptr::eq(*n, node)) {
                    walk.push(&node.children);
                } else {
                    skipped.push(skip(
                        Some(view),
                        format!(
                            "not visible to this user ({})",
                            needs(app, roles, &node.view)
                        ),
                    ));
                }
            }
        }
        plans.push(Plan {
            app: app.id.to_string(),
            views,
        });
    }
    (plans, skipped)
}

/// What the config says about the run before anything starts: the tenant, what to probe and skip,
/// and how to reach the tenant.
struct Survey {
    index: usize,
    plans: Vec<Plan>,
    skipped: Vec<Skipped>,
    host: String,
    https: bool,
}

fn survey(config: &Config, subject: &Subject) -> Result<Survey, DoctorError> {
    let Some(index) = config
        .tenants
        .iter()
        .position(|t| t.id.as_str() == subject.tenant)
    else {
        let known: Vec<&str> = config.tenants.iter().map(|t| t.id.as_str()).collect();
        return Err(DoctorError::UnknownTenant {
            tenant: subject.tenant.clone(),
            known: known.join(", "),
        });
    };
    let tenant = &config.tenants[index];
    for wanted in &subject.apps {
        if !tenant
            .apps
            .iter()
            .any(|app| app.id.as_str() == wanted.as_str())
        {
            let known: Vec<&str> = tenant.apps.iter().map(|a| a.id.as_str()).collect();
            return Err(DoctorError::UnknownApp {
                tenant: subject.tenant.clone(),
                app: wanted.clone(),
                known: known.join(", "),
            });
        }
    }
    let host = tenant
        .hosts
        .first()
        .cloned()
        .ok_or_else(|| DoctorError::NoHost(subject.tenant.clone()))?;
    let roles = tenant.roles.roles_for(&subject.groups);
    let chosen = |app: &App| {
        subject.apps.is_empty() || subject.apps.iter().any(|a| a.as_str() == app.id.as_str())
    };
    let (plans, skipped) = plan(tenant, &roles, chosen);
    Ok(Survey {
        index,
        plans,
        skipped,
        host,
        https: tenant.public_origin.as_ref().is_some_and(|o| o.https),
    })
}

fn find_app<'t>(tenant: &'t Tenant, id: &str) -> Option<&'t Arc<App>> {
    tenant.apps.iter().find(|app| app.id.as_str() == id)
}

/// Puts a session for `subject` into the run's own store, as a sign-in would (a demo user's name and
/// email when there is one).
async fn sign_in(
    state: &crate::state::AppState,
    tenant: &Tenant,
    subject: &Subject,
) -> Result<SessionId, DoctorError> {
    let user = User::stand_in(
        tenant,
        subject.user.as_deref(),
        subject.groups.clone(),
        "doctor",
    );
    let (session, id) = probe::synthetic_session(&tenant.id, user);
    state
        .sessions
        .insert(session)
        .await
        .map_err(|error| DoctorError::Session(error.to_string()))?;
    Ok(id)
}

/// Probes every view `subject` may open on its tenant of `config` (which this run owns: its copy
/// gets a memory session store).
pub async fn run(mut config: Config, subject: &Subject) -> Result<Report, DoctorError> {
    // The probe's session must never reach a shared store, and the run must export no traces.
    config.sessions.store = StoreSettings::Memory;
    config.telemetry.otlp_endpoint = None;
    let survey = survey(&config, subject)?;
    let tenant = config.tenants[survey.index].clone();
    let listen = config.server.listen;
    // Portico's own response timeout answers first; this only bounds a body that never ends.
    let deadline = config.proxy.response_timeout + Duration::from_secs(10);
    let state = crate::app::shared_state(config, listen)?;
    let session_id = sign_in(&state, &tenant, subject).await?;
    let prober = Probe::new(
        crate::app::router(state.clone()),
        &survey.host,
        survey.https,
        &session_id,
        deadline,
        concat!("portico-doctor/", env!("CARGO_PKG_VERSION")),
    );
    let mut report = Report {
        tenant: subject.tenant.clone(),
        user: subject.user.clone(),
        groups: subject.groups.clone(),
        probed: Vec::new(),
        skipped: survey.skipped,
        findings: Vec::new(),
        errors: 0,
        warnings: 0,
    };
    for plan in &survey.plans {
        if let Some(app) = find_app(&tenant, &plan.app) {
            probe_app(&prober, app, &plan.views, &mut report).await;
        }
    }
    // The session ends with the run (the store is this process's memory anyway).
    let _ = state.sessions.remove(&session_id).await;
    report.errors = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    report.warnings = report.findings.len() - report.errors;
    Ok(report)
}

/// The roles `app`'s rule for `path` needs, in words.
fn needs(app: &App, roles: &rbac::Roles, path: &str) -> String {
    match rbac::decide(roles, &app.policy, &Method::GET, path) {
        Decision::Deny { needed } => {
            let names: Vec<String> = needed.iter().map(ToString::to_string).collect();
            format!("needs one of the roles: {}", names.join(", "))
        }
        _ => "hidden by a rule above it".to_owned(),
    }
}

/// Probes `views` of `app` and adds what was probed and found to `report`.
async fn probe_app(prober: &Probe, app: &App, views: &[String], report: &mut Report) {
    let prefix = Probe::prefix(app);
    let upstream = match &app.target {
        AppTarget::Upstream(upstream) => Some(upstream.url.as_str()),
        _ => None,
    };
    for page in views {
        let got = prober.probe(page, &prefix).await;
        let view = View {
            app: app.id.as_str(),
            owner: app.owner.as_deref(),
            prefix: &prefix,
            page,
            luigi_client: app.luigi_client,
            cookies: app.cookies,
            upstream,
        };
        let answer = Answer {
            status: got.status,
            headers: &got.headers,
            upstream_headers: got.upstream_headers.as_ref(),
            upstream_error: got.error.as_deref(),
            body: &got.body,
            truncated: got.truncated,
        };
        report.findings.extend(inspect(&view, &answer));
        report.probed.push(Probed {
            app: app.id.to_string(),
            owner: app.owner.clone(),
            page: page.clone(),
            status: got.status.as_u16(),
        });
    }
}
