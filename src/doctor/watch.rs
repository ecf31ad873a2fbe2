//! The server's health watch (health-aware navigation): every tenant with `health: { interval }`
//! gets a task that, every interval, probes the entry view of each app its synthetic user can see
//! (`health.as.groups`), the way `portico doctor` does, and keeps each app's state on the
//! [`HealthBoard`](super::health::HealthBoard) that `/shell/config.json` and `/metrics` read.
//!
//! How it probes: through a private twin of the running server's state ([`twin`]): the same config
//! (the shared `ArcSwap`, so a reload's apps, roles and hosts apply at the next round), upstream
//! client, signing keys and OIDC registry, but its own in-memory session store, metrics, access
//! state and response cache. Each round puts a session for the synthetic user into that private
//! store, sends one [`Probe`] per app through the real router in-process (tenant resolution, session
//! lookup, `rbac::decide`, the proxy's header rules, the signed assertion: what a user's frame gets),
//! judges the answer with the doctor's status rule ([`inspect`](super::inspect())), and removes the
//! session. Entry views only: a page of an app that answers its entry view but not a page is the
//! doctor's to find, not a reason to mark the whole app.
//!
//! What it must not do: open a way in. It binds no listener and adds no route; the synthetic session
//! never reaches the shared (Redis) store, is never sent anywhere but the in-process router, and
//! lives for one round. It probes only what its user may open (the navigation's own filter), one
//! probe at a time per tenant, each bounded by `health.timeout`, reading at most
//! [`BODY_LIMIT`](super::BODY_LIMIT) of an answer. Probe requests do not count in the server's
//! request metrics (the twin has its own); they do get access lines, with the user agent
//! `portico-health/<version>`, as upstream teams see them too.
//!
//! Lifecycle: [`HealthWatch::start`] (from `App::run`) starts a supervisor; every applied reload
//! wakes it ([`HealthWatch::config_changed`], a reload hook), and it starts, keeps or stops each
//! tenant's task to match the config (a changed `health:` restarts that tenant's task). A stopped
//! tenant's states leave the board. Everything ends with the server's shutdown token.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::Notify;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::health::{AppHealth, Change, HealthBoard, Outcome, Reason, ReasonKind, TenantHealth};
use super::probe::{Got, Probe, synthetic_session};
use super::{Answer, Rule, Severity, View, inspect};
use crate::auth::session::Sessions;
use crate::auth::session::User;
use crate::backstage::BackstageTokens;
use crate::config::{App, AppTarget, HealthSettings, Tenant, TenantId};
use crate::proxy::cache::ResponseCache;
use crate::shell::luigi::visible_apps;
use crate::state::{AppState, SharedState};
use crate::telemetry::{Access, Metrics};

/// The user agent of health probes, as upstreams log it.
const USER_AGENT: &str = concat!("portico-health/", env!("CARGO_PKG_VERSION"));
/// The synthetic user's subject (it never signs in anywhere: its session lives in the twin only).
const SUBJECT: &str = "portico-health";

/// The running watch: wake it when the config changed.
#[derive(Clone)]
pub(crate) struct HealthWatch {
    wake: Arc<Notify>,
}

impl HealthWatch {
    /// Starts the supervisor on the current runtime; it stops at `state.shutdown`.
    pub(crate) fn start(state: &AppState) -> HealthWatch {
        let wake = Arc::new(Notify::new());
        tokio::spawn(supervise(state.clone(), wake.clone()));
        HealthWatch { wake }
    }

    /// An applied reload: each tenant's watch is started, kept or stopped to match the new config.
    pub(crate) fn config_changed(&self) {
        // A permit is kept when the supervisor is busy, so no change is missed.
        self.wake.notify_one();
    }
}

/// Keeps one task per tenant whose `health` is on, with that tenant's current settings.
async fn supervise(state: AppState, wake: Arc<Notify>) {
    let twin = twin(&state);
    let mut running: HashMap<TenantId, (HealthSettings, CancellationToken)> = HashMap::new();
    let tasks = TaskTracker::new();
    loop {
        let config = state.config.load_full();
        let wanted: HashMap<&TenantId, &HealthSettings> = config
            .tenants
            .iter()
            .filter_map(|tenant| tenant.health.as_ref().map(|health| (&tenant.id, health)))
            .collect();
        running.retain(|tenant, (settings, stop)| {
            let keep = wanted.get(tenant).is_some_and(|wanted| *wanted == settings);
            if !keep {
                stop.cancel();
            }
            keep
        });
        for (tenant, settings) in wanted {
            if running.contains_key(tenant) {
                continue;
            }
            let stop = state.shutdown.child_token();
            tracing::info!(
                tenant = %tenant,
                interval = ?settings.interval,
                timeout = ?settings.timeout,
                groups = %settings.groups.join(","),
                "health watch started: probing the entry view of every app these groups see"
            );
            tasks.spawn(watch_tenant(
                twin.clone(),
                state.health.clone(),
                state.metrics.clone(),
                tenant.clone(),
                settings.clone(),
                stop.clone(),
            ));
            running.insert(tenant.clone(), (settings.clone(), stop));
        }
        tokio::select! {
            () = wake.notified() => {}
            () = state.shutdown.cancelled() => break,
        }
    }
    tasks.close();
    tasks.wait().await;
}

/// The private twin of the server's state the probes go through: shared config and upstream side,
/// private sessions, metrics, access state and cache (see the module's doc).
fn twin(state: &AppState) -> AppState {
    let sessions = Sessions::in_memory();
    let metrics = Arc::new(Metrics::new(|| None));
    AppState::new(SharedState {
        config: state.config.clone(),
        sessions,
        upstreams: state.upstreams.clone(),
        signing_keys: state.signing_keys.clone(),
        backstage_tokens: Arc::new(BackstageTokens::shared_through(None)),
        personal_tokens: crate::auth::personal::PersonalTokens::in_memory(),
        bearer_records: Arc::default(),
        redis: None,
        oidc: state.oidc.clone(),
        listen: state.listen,
        shutdown: state.shutdown.clone(),
        websockets: TaskTracker::new(),
        tls: None,
        access: Access::new(metrics.clone(), Vec::new(), None),
        cache: Arc::new(ResponseCache::new(metrics.cache_store())),
        metrics,
        health: Arc::new(HealthBoard::default()),
    })
}

/// One tenant's rounds, every `settings.interval`, until `stop`.
async fn watch_tenant(
    twin: AppState,
    board: Arc<HealthBoard>,
    metrics: Arc<Metrics>,
    tenant_id: TenantId,
    settings: HealthSettings,
    stop: CancellationToken,
) {
    let router = crate::app::router(twin.clone());
    let mut ticks = tokio::time::interval(settings.interval);
    // A round longer than the interval delays the next; rounds never overlap or bunch up.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut states = TenantHealth::new();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = stop.cancelled() => break,
        }
        let config = twin.config.load_full();
        let Some(tenant) = config.tenants.iter().find(|t| t.id == tenant_id) else {
            break;
        };
        let round = Round {
            twin: &twin,
            router: &router,
            metrics: &metrics,
            tenant,
            settings: &settings,
            stop: &stop,
        };
        states = round.run(&states).await;
        board.set(&tenant_id, states.clone());
    }
    board.forget(&tenant_id);
    tracing::info!(tenant = %tenant_id, "health watch stopped");
}

/// One probe of every app the synthetic user sees on one tenant.
struct Round<'a> {
    twin: &'a AppState,
    router: &'a axum::Router,
    metrics: &'a Metrics,
    tenant: &'a Tenant,
    settings: &'a HealthSettings,
    stop: &'a CancellationToken,
}

impl Round<'_> {
    /// The apps' states after this round, from `before`; apps no longer seen are dropped.
    async fn run(&self, before: &TenantHealth) -> TenantHealth {
        let tenant = self.tenant;
        // Config makes sure a watched tenant lists a host.
        let Some(host) = tenant.hosts.first() else {
            return TenantHealth::new();
        };
        let roles = tenant.roles.roles_for(&self.settings.groups);
        let apps = visible_apps(tenant, &roles);
        let (session, session_id) = synthetic_session(
            &tenant.id,
            User {
                subject: SUBJECT.to_owned(),
                name: "portico health probe".to_owned(),
                email: String::new(),
                groups: self.settings.groups.clone(),
            },
        );
        if let Err(error) = self.twin.sessions.insert(session).await {
            // The twin's store is this process's memory: this would be a bug, not an outage.
            tracing::error!(tenant = %tenant.id, %error, "health probe: cannot store the probe's session");
            return before.clone();
        }
        let probe = Probe::new(
            self.router.clone(),
            host,
            tenant.public_origin.as_ref().is_some_and(|o| o.https),
            &session_id,
            self.settings.timeout,
            USER_AGENT,
        );
        let mut after = TenantHealth::new();
        for app in apps {
            if self.stop.is_cancelled() {
                break;
            }
            let (outcome, detail) = self.probe(&probe, app).await;
            self.metrics
                .app_probe(&tenant.id, &app.id, matches!(outcome, Outcome::Up));
            let previous = before.get(&app.id);
            let (state, change) = AppHealth::next(previous, outcome, SystemTime::now());
            report(tenant, app, &state, change, detail.as_deref());
            after.insert(app.id.clone(), state);
        }
        let _ = self.twin.sessions.remove(&session_id).await;
        after
    }

    /// Probes `app`'s entry view: the outcome, and on failure the full reason for the log.
    async fn probe(&self, probe: &Probe, app: &App) -> (Outcome, Option<String>) {
        let prefix = Probe::prefix(app);
        let got = match tokio::time::timeout(self.settings.timeout, probe.probe(&prefix, &prefix))
            .await
        {
            Ok(got) => got,
            Err(_) => {
                let detail = format!("no answer within {:?}", self.settings.timeout);
                return (
                    Outcome::Failed(Reason::of(ReasonKind::Timeout)),
                    Some(detail),
                );
            }
        };
        judge(app, &prefix, &got)
    }
}

/// The doctor's status rule on `got`: up, or failed with a reason users may see and the rule's own
/// message (with the upstream's address and error) for the log.
fn judge(app: &App, prefix: &str, got: &Got) -> (Outcome, Option<String>) {
    let view = View {
        app: app.id.as_str(),
        owner: app.owner.as_deref(),
        prefix,
        page: prefix,
        luigi_client: app.luigi_client,
        cookies: app.cookies,
        upstream: match &app.target {
            AppTarget::Upstream(upstream) => Some(upstream.url.as_str()),
            _ => None,
        },
    };
    let answer = Answer {
        status: got.status,
        headers: &got.headers,
        upstream_headers: got.upstream_headers.as_ref(),
        upstream_error: got.error.as_deref(),
        body: &got.body,
        truncated: got.truncated,
    };
    let failed = inspect(&view, &answer)
        .into_iter()
        .find(|finding| finding.rule == Rule::Status && finding.severity == Severity::Error);
    let Some(finding) = failed else {
        return (Outcome::Up, None);
    };
    (
        Outcome::Failed(reason(got)),
        Some(format!("{}; fix: {}", finding.message, finding.fix)),
    )
}

/// What users may be told about a failed probe: a fixed kind, from portico's error code (never its
/// detail text, which names the upstream) or the status.
fn reason(got: &Got) -> Reason {
    let status = Some(got.status.as_u16());
    let kind = match got.error_code {
        Some("upstream_unreachable") => {
            let refused = got
                .error
                .as_deref()
                .is_some_and(|detail| detail.to_ascii_lowercase().contains("refused"));
            if refused {
                ReasonKind::Refused
            } else {
                ReasonKind::Unreachable
            }
        }
        Some("upstream_tls") => ReasonKind::Tls,
        Some("upstream_timeout" | "probe_timeout") => ReasonKind::Timeout,
        Some("upstream_failed") => ReasonKind::Broken,
        _ if got.status.is_redirection() => {
            return Reason {
                kind: ReasonKind::Redirect,
                status,
            };
        }
        _ => {
            return Reason {
                kind: ReasonKind::Status,
                status,
            };
        }
    };
    Reason::of(kind)
}

/// A log line for each change an app's users will notice (and at debug level, every failure).
fn report(
    tenant: &Tenant,
    app: &App,
    state: &AppHealth,
    change: Option<Change>,
    detail: Option<&str>,
) {
    let owner = app.owner.as_deref().unwrap_or("-");
    match (change, state) {
        (Some(Change::Degraded), AppHealth::Degraded(degraded)) => tracing::warn!(
            target: "portico::health",
            tenant = %tenant.id,
            app = %app.id,
            owner,
            reason = %degraded.reason.text(),
            since = %degraded.since_text,
            failures = degraded.failures,
            detail = detail.unwrap_or(""),
            "app `{}` is degraded: {}; owner {owner}",
            app.id,
            degraded.reason.text(),
        ),
        (Some(Change::Recovered { since }), _) => tracing::info!(
            target: "portico::health",
            tenant = %tenant.id,
            app = %app.id,
            owner,
            degraded_since = %humantime::format_rfc3339_seconds(since),
            "app `{}` answers again; owner {owner}",
            app.id,
        ),
        (
            _,
            AppHealth::Failing {
                failures, reason, ..
            }
            | AppHealth::Degraded(super::health::Degraded {
                failures, reason, ..
            }),
        ) => {
            tracing::debug!(
                target: "portico::health",
                tenant = %tenant.id,
                app = %app.id,
                failures,
                reason = %reason.text(),
                detail = detail.unwrap_or(""),
                "health probe failed"
            );
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, StatusCode};

    use super::*;

    fn got(status: StatusCode, error: Option<&str>, code: Option<&'static str>) -> Got {
        Got {
            status,
            headers: HeaderMap::new(),
            body: Vec::new(),
            truncated: false,
            upstream_headers: None,
            error: error.map(str::to_owned),
            error_code: code,
        }
    }

    #[test]
    fn reasons_come_from_codes_never_from_the_detail_text() {
        let refused = got(
            StatusCode::BAD_GATEWAY,
            Some("http://10.0.0.7:3000/: tcp connect error: Connection refused (os error 111)"),
            Some("upstream_unreachable"),
        );
        assert_eq!(reason(&refused), Reason::of(ReasonKind::Refused));
        let dns = got(
            StatusCode::BAD_GATEWAY,
            Some("http://nowhere.internal/: dns error"),
            Some("upstream_unreachable"),
        );
        assert_eq!(reason(&dns), Reason::of(ReasonKind::Unreachable));
        let slow = got(StatusCode::GATEWAY_TIMEOUT, None, Some("upstream_timeout"));
        assert_eq!(reason(&slow), Reason::of(ReasonKind::Timeout));
        let own = got(StatusCode::INTERNAL_SERVER_ERROR, None, None);
        assert_eq!(reason(&own).text(), "answers 500");
        let away = got(StatusCode::FOUND, None, None);
        assert_eq!(reason(&away).kind, ReasonKind::Redirect);
        // Whatever the detail says, the text users get is one of the fixed phrases.
        assert!(!reason(&refused).text().contains("10.0.0.7"));
    }
}
