//! Prometheus metrics: one [`Metrics`] service per server, read by `GET /metrics` on the admin listener.
//!
//! Everything is counted where it is already known: the access layer counts each request when its
//! response body ends (tenant, app, method, status class, portico's and the upstream's time, upstream
//! errors by kind, cut-short responses), the tenant listener and the WebSocket joiner hold gauges, the
//! session count is read when scraped, and every audit event is counted through `audit_event`, which
//! `audit::emit` calls (sign-ins, their failures by reason, refreshes and reloads come from there).
//!
//! Label values are bounded by construction: a tenant or app label is a config id ([`LabelText`] is
//! made from `TenantId`/`AppId` or a fixed word, `-` when there is none), a method outside a short list
//! is `OTHER`, statuses are classes, reasons and kinds are fixed words. No user, session, path or
//! free-text reason may ever become a label: a label set that grows with traffic is a memory leak and
//! a privacy leak. The per-request path takes no global lock (the families' read locks only) and
//! allocates nothing once a series exists.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use axum::http::Method;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::config::{AppId, TenantId};

/// The `Content-Type` of [`Metrics::encode`]'s text (the OpenMetrics text format, which Prometheus
/// reads natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A label value: a config id or a fixed word. Compared and hashed by its text, so one text is one
/// series whichever variant carries it.
#[derive(Clone, Debug)]
pub enum LabelText {
    Fixed(&'static str),
    Tenant(TenantId),
    App(AppId),
    /// A name built from config (e.g. `backstage:<allowed plugin>`), never from a request alone.
    Shared(Arc<str>),
}

impl LabelText {
    pub const NONE: LabelText = LabelText::Fixed("-");

    pub fn as_str(&self) -> &str {
        match self {
            LabelText::Fixed(text) => text,
            LabelText::Tenant(id) => id.as_str(),
            LabelText::App(id) => id.as_str(),
            LabelText::Shared(text) => text,
        }
    }
}

impl PartialEq for LabelText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for LabelText {}

impl Hash for LabelText {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for LabelText {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// The request method, spelled out for the common ones; anything else is `OTHER`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MethodLabel(&'static str);

impl MethodLabel {
    /// Every label, in the order of [`MethodLabel::index`].
    const ALL: [&'static str; 8] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER",
    ];

    pub fn of(method: &Method) -> Self {
        MethodLabel(Self::ALL[Self::index(method)])
    }

    /// The label's place in [`MethodLabel::ALL`].
    fn index(method: &Method) -> usize {
        match *method {
            Method::GET => 0,
            Method::HEAD => 1,
            Method::POST => 2,
            Method::PUT => 3,
            Method::PATCH => 4,
            Method::DELETE => 5,
            Method::OPTIONS => 6,
            _ => 7,
        }
    }
}

impl EncodeLabelValue for MethodLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.0, encoder)
    }
}

/// `1xx` … `5xx`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StatusClass(&'static str);

impl StatusClass {
    /// Every class, in the order of [`StatusClass::index`].
    const ALL: [&'static str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

    pub fn of(status: u16) -> Self {
        StatusClass(Self::ALL[Self::index(status)])
    }

    /// The class's place in [`StatusClass::ALL`].
    fn index(status: u16) -> usize {
        match status / 100 {
            1 => 0,
            2 => 1,
            3 => 2,
            4 => 3,
            _ => 4,
        }
    }
}

impl EncodeLabelValue for StatusClass {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.0, encoder)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    tenant: LabelText,
    app: LabelText,
    method: MethodLabel,
    status: StatusClass,
}

/// One route's series, kept so that counting a request is one lookup of its route in a foldhash
/// map instead of three SipHash lookups in the families (about 2,000 instructions a request). Each
/// handle is a clone of the family's own series, made when the family would have made it (the
/// histogram of upstream time on the first upstream call, a counter on its first request), so
/// `/metrics` says exactly what it said without the cache. Routes come from config, never from a
/// request alone, so the map is bounded like the families.
struct RouteSeries {
    processing: Histogram,
    upstream: OnceLock<Histogram>,
    /// By method, then by status class.
    requests: [[OnceLock<Counter>; 5]; 8],
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    tenant: LabelText,
    app: LabelText,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CacheLabels {
    tenant: LabelText,
    app: LabelText,
    /// `hit`, `miss` or `revalidated` (`proxy::cache::CacheStatus`).
    status: &'static str,
}

/// The response cache's own series, updated by the cache as it stores and evicts.
#[derive(Clone, Debug, Default)]
pub struct CacheStoreMetrics {
    /// Bytes all entries take (bodies, headers, keys).
    pub stored_bytes: Gauge,
    pub entries: Gauge,
    /// Entries let go to make room (least recently used first).
    pub evictions: Counter,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct UpstreamErrorLabels {
    tenant: LabelText,
    app: LabelText,
    kind: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AuditLabels {
    event: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TenantOutcome {
    tenant: LabelText,
    outcome: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SignInLabels {
    tenant: LabelText,
    method: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BearerLabels {
    tenant: LabelText,
    via: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FailureLabels {
    tenant: LabelText,
    reason: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CertificateLabels {
    name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct IdpLabels {
    tenant: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AppProbeLabels {
    tenant: LabelText,
    app: LabelText,
    /// `up` or `failed`.
    outcome: &'static str,
}

fn processing_histogram() -> Histogram {
    // 100 µs to about 6.5 s: portico's own work is usually well under a millisecond.
    Histogram::new([
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0,
    ])
}

fn upstream_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ])
}

type HistogramFamily<S> = Family<S, Histogram, fn() -> Histogram>;

/// What one finished request contributes; filled by the access layer.
pub struct RequestRecord<'a> {
    pub tenant: Option<&'a TenantId>,
    pub app: Option<&'a LabelText>,
    pub method: &'a Method,
    pub status: u16,
    /// From the request's arrival until its response headers, all of it.
    pub elapsed: Duration,
    /// The upstream's share of `elapsed` (until its response headers), when one was called.
    pub upstream: Option<Duration>,
    /// Why the upstream exchange failed (`ProxyError::kind`), if it did.
    pub upstream_error: Option<&'static str>,
    /// The response body ended early (client gone, upstream reset mid-body).
    pub cut_short: bool,
}

/// The server's metrics. Created once with the app (`app::shared_state`), shared by `Arc`.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    processing: HistogramFamily<RouteLabels>,
    upstream: HistogramFamily<RouteLabels>,
    upstream_errors: Family<UpstreamErrorLabels, Counter>,
    cut_short: Family<RouteLabels, Counter>,
    /// The series every request of a route counts into, found once per route (see [`RouteSeries`]).
    routes: Mutex<HashMap<RouteLabels, Arc<RouteSeries>, foldhash::fast::RandomState>>,
    connections: Gauge,
    websockets: Gauge,
    sessions: Gauge,
    session_count: Box<dyn Fn() -> Option<usize> + Send + Sync>,
    audit: Family<AuditLabels, Counter>,
    sign_ins: Family<SignInLabels, Counter>,
    sign_in_failures: Family<FailureLabels, Counter>,
    bearer: Family<BearerLabels, Counter>,
    refreshes: Family<TenantOutcome, Counter>,
    reloads: Family<OutcomeLabels, Counter>,
    certificate_expiry: Family<CertificateLabels, Gauge>,
    /// Reads the served certificates' names and expiry times at every scrape (the TLS store renews
    /// them from disk on its own schedule); unset without TLS.
    certificates: std::sync::OnceLock<CertificateSource>,
    /// Whether each OIDC tenant's IdP answers (1) or is down or not yet reached (0), read at every
    /// scrape from the OIDC registry's probes.
    identity_providers: Family<IdpLabels, Gauge>,
    idp_source: std::sync::OnceLock<IdpSource>,
    /// Whether the session store answers (always 1 in memory; Redis's health otherwise).
    store_up: Gauge,
    store_source: std::sync::OnceLock<StoreSource>,
    /// Answers of apps with `cache:` on, by what the cache did.
    cache_responses: Family<CacheLabels, Counter>,
    cache_store: CacheStoreMetrics,
    /// Whether each app the health watch probes is up (1) or degraded (0), read at every scrape
    /// from the watch's board: only configured apps of watched tenants, so bounded by config.
    app_up: Family<RouteLabels, Gauge>,
    app_health_source: std::sync::OnceLock<AppHealthSource>,
    /// The health watch's probes, by tenant, app and outcome.
    app_probes: Family<AppProbeLabels, Counter>,
}

/// What [`Metrics::read_app_health_from`] takes: each probed app (tenant, app) and whether it is up.
pub type AppHealthSource = Box<dyn Fn() -> Vec<(TenantId, AppId, bool)> + Send + Sync>;

/// What [`Metrics::read_session_store_from`] takes: whether the shared session store answers.
pub type StoreSource = Box<dyn Fn() -> bool + Send + Sync>;

/// What [`Metrics::read_identity_providers_from`] takes: each OIDC tenant and whether its IdP answers.
pub type IdpSource = Box<dyn Fn() -> Vec<(String, bool)> + Send + Sync>;

/// What [`Metrics::read_certificates_from`] takes: the certificates served now, as name and not-after
/// time in seconds since the Unix epoch.
pub type CertificateSource = Box<dyn Fn() -> Vec<(String, i64)> + Send + Sync>;

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// The metrics, with `session_count` read at every scrape (`None`: the store cannot tell cheaply,
    /// and the gauge is left out).
    pub fn new(session_count: impl Fn() -> Option<usize> + Send + Sync + 'static) -> Self {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("portico"),
            requests: Family::default(),
            processing: Family::new_with_constructor(processing_histogram),
            upstream: Family::new_with_constructor(upstream_histogram),
            upstream_errors: Family::default(),
            cut_short: Family::default(),
            routes: Mutex::default(),
            connections: Gauge::default(),
            websockets: Gauge::default(),
            sessions: Gauge::default(),
            session_count: Box::new(session_count),
            audit: Family::default(),
            sign_ins: Family::default(),
            sign_in_failures: Family::default(),
            bearer: Family::default(),
            refreshes: Family::default(),
            reloads: Family::default(),
            certificate_expiry: Family::default(),
            certificates: std::sync::OnceLock::new(),
            identity_providers: Family::default(),
            idp_source: std::sync::OnceLock::new(),
            store_up: Gauge::default(),
            store_source: std::sync::OnceLock::new(),
            cache_responses: Family::default(),
            cache_store: CacheStoreMetrics::default(),
            app_up: Family::default(),
            app_health_source: std::sync::OnceLock::new(),
            app_probes: Family::default(),
        };
        metrics.register();
        metrics
    }

    fn register(&mut self) {
        let r = &mut self.registry;
        r.register(
            "requests",
            "Requests answered on the tenant listener, by tenant, app, method and status class",
            self.requests.clone(),
        );
        r.register_with_unit(
            "processing_duration",
            "Portico's own time per request until the response headers (without the upstream's)",
            Unit::Seconds,
            self.processing.clone(),
        );
        r.register_with_unit(
            "upstream_duration",
            "The upstream's time until its response headers",
            Unit::Seconds,
            self.upstream.clone(),
        );
        r.register(
            "upstream_errors",
            "Upstream exchanges that failed, by kind (connect, timeout, reset, tls, other)",
            self.upstream_errors.clone(),
        );
        r.register(
            "responses_cut_short",
            "Responses whose body ended early (client gone, upstream reset mid-body)",
            self.cut_short.clone(),
        );
        r.register(
            "open_connections",
            "Open client connections on the tenant listener",
            self.connections.clone(),
        );
        r.register(
            "open_websockets",
            "Open WebSocket connections joined to an upstream",
            self.websockets.clone(),
        );
        r.register("sessions", "Sessions in the store", self.sessions.clone());
        r.register(
            "audit_events",
            "Audit events, by event and outcome",
            self.audit.clone(),
        );
        r.register(
            "sign_ins",
            "Successful sign-ins, by tenant and method",
            self.sign_ins.clone(),
        );
        r.register(
            "sign_in_failures",
            "Failed or refused sign-ins, by tenant and reason",
            self.sign_in_failures.clone(),
        );
        r.register(
            "bearer_requests",
            "Requests with a bearer token, by tenant, kind (idp_token, personal_token) and outcome \
             (success, refused: the token failed a check, limited: over its rate limit)",
            self.bearer.clone(),
        );
        r.register(
            "session_refreshes",
            "Token refreshes, by tenant and outcome (success, failure: the session ended, \
             unavailable: the IdP could not be reached and the session was kept)",
            self.refreshes.clone(),
        );
        r.register(
            "config_reloads",
            "Configuration reloads, by outcome",
            self.reloads.clone(),
        );
        r.register(
            "certificate_expiry_timestamp_seconds",
            "When each served certificate expires, in seconds since the Unix epoch",
            self.certificate_expiry.clone(),
        );
        r.register(
            "identity_provider_up",
            "Whether each OIDC tenant's identity provider answers its probes (0: sign-in is degraded)",
            self.identity_providers.clone(),
        );
        r.register(
            "session_store_up",
            "Whether the session store answers (0: Redis cannot be reached; cached sessions ride out \
             sessions.redis.outage_grace, new sign-ins fail)",
            self.store_up.clone(),
        );
        self.register_cache();
        self.register_health();
    }

    /// The health watch's series (`doctor::watch`).
    fn register_health(&mut self) {
        let r = &mut self.registry;
        r.register(
            "app_up",
            "Whether each app the tenant's health watch probes answers its entry view (0: degraded, \
             shown so in the navigation), by tenant and app",
            self.app_up.clone(),
        );
        r.register(
            "app_probes",
            "Health-watch probes of apps' entry views, by tenant, app and outcome (up, failed)",
            self.app_probes.clone(),
        );
    }

    /// Counts one health-watch probe of `app`.
    pub fn app_probe(&self, tenant: &TenantId, app: &AppId, up: bool) {
        self.app_probes
            .get_or_create(&AppProbeLabels {
                tenant: LabelText::Tenant(tenant.clone()),
                app: LabelText::App(app.clone()),
                outcome: if up { "up" } else { "failed" },
            })
            .inc();
    }

    /// Reads the `app_up` gauge from `source` at every scrape (set once, at start).
    pub fn read_app_health_from(&self, source: AppHealthSource) {
        let _ = self.app_health_source.set(source);
    }

    /// The response cache's series (`proxy::cache`).
    fn register_cache(&mut self) {
        let r = &mut self.registry;
        r.register(
            "cache_responses",
            "GET and HEAD answers of apps with `cache:` on, by tenant, app and status (hit: from \
             memory; miss: from the upstream; revalidated: the upstream confirmed a stale entry)",
            self.cache_responses.clone(),
        );
        r.register(
            "cache_stored_bytes",
            "Bytes the response cache holds (bodies, headers, keys), bounded by proxy.cache.max_bytes",
            self.cache_store.stored_bytes.clone(),
        );
        r.register(
            "cache_entries",
            "Responses the response cache holds",
            self.cache_store.entries.clone(),
        );
        r.register(
            "cache_evictions",
            "Cached responses let go to make room, least recently used first",
            self.cache_store.evictions.clone(),
        );
    }

    /// Counts what the response cache did for one answer (`status`: `hit`, `miss`, `revalidated`).
    pub fn cache_response(&self, tenant: &TenantId, app: &AppId, status: &'static str) {
        self.cache_responses
            .get_or_create(&CacheLabels {
                tenant: LabelText::Tenant(tenant.clone()),
                app: LabelText::App(app.clone()),
                status,
            })
            .inc();
    }

    /// The series the response cache updates itself (`proxy::cache::ResponseCache::new`).
    pub fn cache_store(&self) -> CacheStoreMetrics {
        self.cache_store.clone()
    }

    /// Counts one finished request.
    pub fn request(&self, record: &RequestRecord<'_>) {
        let tenant = record
            .tenant
            .map_or(LabelText::NONE, |t| LabelText::Tenant(t.clone()));
        let app = record.app.cloned().unwrap_or(LabelText::NONE);
        let route = RouteLabels { tenant, app };
        let series = self.route_series(&route);
        let own = record
            .elapsed
            .saturating_sub(record.upstream.unwrap_or_default());
        series.processing.observe(own.as_secs_f64());
        if let Some(upstream) = record.upstream {
            series
                .upstream
                .get_or_init(|| self.upstream.get_or_create(&route).clone())
                .observe(upstream.as_secs_f64());
        }
        if record.cut_short {
            self.cut_short.get_or_create(&route).inc();
        }
        let (method, status) = (
            MethodLabel::index(record.method),
            StatusClass::index(record.status),
        );
        let RouteLabels { tenant, app } = route;
        if let Some(kind) = record.upstream_error {
            let labels = UpstreamErrorLabels {
                tenant: tenant.clone(),
                app: app.clone(),
                kind,
            };
            self.upstream_errors.get_or_create(&labels).inc();
        }
        series.requests[method][status]
            .get_or_init(|| {
                self.requests
                    .get_or_create(&RequestLabels {
                        tenant,
                        app,
                        method: MethodLabel(MethodLabel::ALL[method]),
                        status: StatusClass(StatusClass::ALL[status]),
                    })
                    .clone()
            })
            .inc();
    }

    /// The kept series of `route`, made on its first request.
    fn route_series(&self, route: &RouteLabels) -> Arc<RouteSeries> {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(series) = routes.get(route) {
            return series.clone();
        }
        let series = Arc::new(RouteSeries {
            processing: self.processing.get_or_create(route).clone(),
            upstream: OnceLock::new(),
            requests: Default::default(),
        });
        routes.insert(route.clone(), series.clone());
        series
    }

    /// An upstream response body that failed after its headers (a reset mid-body).
    pub fn upstream_body_error(&self, tenant: Option<&TenantId>, app: Option<&LabelText>) {
        let labels = UpstreamErrorLabels {
            tenant: tenant.map_or(LabelText::NONE, |t| LabelText::Tenant(t.clone())),
            app: app.cloned().unwrap_or(LabelText::NONE),
            kind: "reset",
        };
        self.upstream_errors.get_or_create(&labels).inc();
    }

    /// The gauge of open tenant-listener connections: the listener holds one [`GaugeGuard`] per
    /// connection.
    pub fn connection(&self) -> GaugeGuard {
        GaugeGuard::new(&self.connections)
    }

    /// The gauge of open WebSockets, for the upstream client to hold one guard per joined pair.
    pub fn websockets(&self) -> Gauge {
        self.websockets.clone()
    }

    /// Sets when the certificate `name` (a tenant host or the listener's default) expires. For the
    /// TLS certificate store: call it for every certificate loaded, on start and on every reload.
    pub fn set_certificate_expiry(&self, name: &str, not_after_unix: i64) {
        self.certificate_expiry
            .get_or_create(&CertificateLabels {
                name: name.to_owned(),
            })
            .set(not_after_unix);
    }

    /// [`Metrics::set_certificate_expiry`] from a certificate in DER (the first of a chain); a
    /// certificate that cannot be parsed is left out and reported.
    pub fn set_certificate_expiry_der(&self, name: &str, der: &[u8]) -> Result<(), String> {
        let (_, certificate) = x509_parser::parse_x509_certificate(der)
            .map_err(|error| format!("certificate `{name}` cannot be read: {error}"))?;
        self.set_certificate_expiry(name, certificate.validity().not_after.timestamp());
        Ok(())
    }

    /// Forgets the certificates no longer served (all of them before a reload sets the new ones).
    pub fn clear_certificate_expiry(&self) {
        self.certificate_expiry.clear();
    }

    /// Counts one audit event, and the specific family it belongs to.
    pub fn audit(&self, event: &AuditRecord<'_>) {
        self.audit
            .get_or_create(&AuditLabels {
                event: event.event,
                outcome: event.outcome,
            })
            .inc();
        let tenant = || LabelText::Shared(Arc::from(event.tenant));
        match (event.event, event.outcome) {
            ("sign_in", "success") => {
                let method = match event.method {
                    Some("oidc") => "oidc",
                    Some("dev") => "dev",
                    _ => "other",
                };
                self.sign_ins
                    .get_or_create(&SignInLabels {
                        tenant: tenant(),
                        method,
                    })
                    .inc();
            }
            ("sign_in", _) => {
                let reason = sign_in_failure_reason(event.reason.unwrap_or(""));
                self.sign_in_failures
                    .get_or_create(&FailureLabels {
                        tenant: tenant(),
                        reason,
                    })
                    .inc();
            }
            ("bearer", outcome) => {
                let via = match event.method {
                    Some("idp_token") => "idp_token",
                    Some("personal_token") => "personal_token",
                    _ => "other",
                };
                let outcome = match (outcome, event.reason) {
                    ("refused", Some("rate_limited")) => "limited",
                    (outcome, _) => fixed_outcome(outcome),
                };
                self.bearer
                    .get_or_create(&BearerLabels {
                        tenant: tenant(),
                        via,
                        outcome,
                    })
                    .inc();
            }
            ("refresh", outcome) => self.refresh_outcome(tenant(), fixed_outcome(outcome)),
            // The IdP could not be reached; the session lives on within `sessions.refresh_grace`.
            ("refresh_deferred", _) => self.refresh_outcome(tenant(), "unavailable"),
            ("reload" | "config_reload", outcome) => {
                self.reloads
                    .get_or_create(&OutcomeLabels {
                        outcome: fixed_outcome(outcome),
                    })
                    .inc();
            }
            _ => {}
        }
    }

    fn refresh_outcome(&self, tenant: LabelText, outcome: &'static str) {
        self.refreshes
            .get_or_create(&TenantOutcome { tenant, outcome })
            .inc();
    }

    /// A refresh that renewed the session's tokens (`success`), or that could not reach the IdP and
    /// kept the session (`unavailable`). Refused refreshes are counted from their audit event.
    pub fn refresh(&self, tenant: &TenantId, outcome: &'static str) {
        self.refresh_outcome(LabelText::Tenant(tenant.clone()), outcome);
    }

    /// Reads the certificate expiry gauge from `source` at every scrape (set once, at start).
    pub fn read_certificates_from(&self, source: CertificateSource) {
        let _ = self.certificates.set(source);
    }

    /// Reads the identity-provider gauge from `source` at every scrape (set once, at start).
    pub fn read_identity_providers_from(&self, source: IdpSource) {
        let _ = self.idp_source.set(source);
    }

    /// Reads the session store gauge from `source` at every scrape (set once, at start, for Redis).
    pub fn read_session_store_from(&self, source: StoreSource) {
        let _ = self.store_source.set(source);
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let store_up = self.store_source.get().is_none_or(|source| source());
        self.store_up.set(i64::from(store_up));
        if let Some(source) = self.idp_source.get() {
            // Tenants a reload removed disappear.
            self.identity_providers.clear();
            for (tenant, up) in source() {
                self.identity_providers
                    .get_or_create(&IdpLabels { tenant })
                    .set(i64::from(up));
            }
        }
        if let Some(source) = self.app_health_source.get() {
            // Apps and tenants no longer watched disappear.
            self.app_up.clear();
            for (tenant, app, up) in source() {
                self.app_up
                    .get_or_create(&RouteLabels {
                        tenant: LabelText::Tenant(tenant),
                        app: LabelText::App(app),
                    })
                    .set(i64::from(up));
            }
        }
        if let Some(source) = self.certificates.get() {
            // Renewed or replaced certificates show at once; ones no longer served disappear.
            self.clear_certificate_expiry();
            for (name, not_after) in source() {
                self.set_certificate_expiry(&name, not_after);
            }
        }
        match (self.session_count)() {
            Some(count) => {
                self.sessions.set(i64::try_from(count).unwrap_or(i64::MAX));
            }
            None => {
                self.sessions.set(0);
            }
        }
        let mut text = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// An audit event as the metrics see it: fixed words, the tenant id, and the free-text reason, which
/// is only ever matched against known reasons, never used as a label.
#[derive(Debug, Clone, Copy)]
pub struct AuditRecord<'a> {
    pub event: &'static str,
    pub outcome: &'static str,
    pub tenant: &'a str,
    pub method: Option<&'a str>,
    pub reason: Option<&'a str>,
}

fn fixed_outcome(outcome: &str) -> &'static str {
    match outcome {
        "success" => "success",
        "failure" => "failure",
        "refused" => "refused",
        _ => "other",
    }
}

/// The reason label of a failed sign-in: the known reasons (the start of the audit line's reason) as
/// one word each, everything else `other`. The reason text can carry an IdP's error description or an
/// error chain, which must never become a label.
pub fn sign_in_failure_reason(reason: &str) -> &'static str {
    const KNOWN: &[(&str, &str)] = &[
        ("the callback has no state", "no_state"),
        ("unknown or already used state", "unknown_state"),
        ("the login was started for another tenant", "other_tenant"),
        ("the login was started in another browser", "other_browser"),
        ("the login took too long", "expired"),
        ("the identity provider answered", "idp_error"),
        ("the callback came from another issuer", "wrong_issuer"),
        ("the callback has no `iss`", "missing_issuer"),
        ("the callback has no code", "no_code"),
        ("the code cannot be exchanged", "code_exchange"),
        ("code exchange failed", "code_exchange"),
        ("the token response has no ID token", "no_id_token"),
        ("ID token rejected", "id_token_rejected"),
        ("the access token", "access_token_mismatch"),
        ("dev sign-in on non-loopback listener", "dev_not_loopback"),
        ("dev sign-in asked for on a host", "unlisted_host"),
        ("unknown dev user", "unknown_user"),
    ];
    KNOWN
        .iter()
        .find(|(prefix, _)| reason.starts_with(prefix))
        .map_or("other", |(_, word)| word)
}

/// Holds one unit of a gauge; gives it back when dropped.
#[derive(Debug)]
pub struct GaugeGuard(Gauge);

impl GaugeGuard {
    pub fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        GaugeGuard(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

tokio::task_local! {
    /// The metrics of the server whose request (or task) is running: `audit::emit` has no state of
    /// its own, and several servers share one process in tests, so no global would do.
    static CURRENT: Arc<Metrics>;
}

/// Runs `future` with `metrics` as the ones `audit_event` counts into. The access layer and the
/// admin router wrap every request in it; a background task that emits audit events (a reload from a
/// signal or a file watch) must be wrapped too.
pub fn scope<F: Future>(metrics: Arc<Metrics>, future: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(metrics, future)
}

/// Counts an audit event into the current server's metrics; outside [`scope`] it is not counted.
pub(crate) fn audit_event(event: &AuditRecord<'_>) {
    let _ = CURRENT.try_with(|metrics| metrics.audit(event));
}

/// Counts a refresh outcome (see [`Metrics::refresh`]) into the current server's metrics.
pub(crate) fn refresh_event(tenant: &TenantId, outcome: &'static str) {
    let _ = CURRENT.try_with(|metrics| metrics.refresh(tenant, outcome));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::fmt::Write as _;

    use super::*;

    /// Every sample line whose name starts with `prefix`.
    fn samples(text: &str, prefix: &str) -> String {
        let mut lines: Vec<_> = text.lines().filter(|l| l.starts_with(prefix)).collect();
        lines.sort_unstable();
        let mut out = String::new();
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
        out
    }

    #[test]
    fn a_request_is_counted_with_bounded_labels() {
        let metrics = Metrics::new(|| Some(3));
        let tenant = TenantId::new("acme");
        let app = LabelText::App(AppId::new("grafana"));
        metrics.request(&RequestRecord {
            tenant: Some(&tenant),
            app: Some(&app),
            method: &Method::from_bytes(b"PROPFIND").unwrap(),
            status: 502,
            elapsed: Duration::from_millis(30),
            upstream: Some(Duration::from_millis(20)),
            upstream_error: Some("connect"),
            cut_short: false,
        });
        metrics.request(&RequestRecord {
            tenant: None,
            app: None,
            method: &Method::GET,
            status: 404,
            elapsed: Duration::from_millis(1),
            upstream: None,
            upstream_error: None,
            cut_short: false,
        });
        let text = metrics.encode().unwrap();
        assert_eq!(
            samples(&text, "portico_requests_total"),
            "portico_requests_total{tenant=\"-\",app=\"-\",method=\"GET\",status=\"4xx\"} 1\n\
             portico_requests_total{tenant=\"acme\",app=\"grafana\",method=\"OTHER\",status=\"5xx\"} 1\n"
        );
        assert!(text.contains(
            "portico_upstream_errors_total{tenant=\"acme\",app=\"grafana\",kind=\"connect\"} 1"
        ));
        assert!(text.contains("portico_sessions 3"));
        assert!(text.contains("portico_upstream_duration_seconds_bucket{le=\"0.025\",tenant=\"acme\",app=\"grafana\"} 1"), "{text}");
    }

    #[test]
    fn a_routes_kept_series_count_like_the_families() {
        let metrics = Metrics::new(|| None);
        let tenant = TenantId::new("acme");
        let app = LabelText::App(AppId::new("docs"));
        let request = |method: &Method, status: u16, upstream: Option<Duration>| {
            metrics.request(&RequestRecord {
                tenant: Some(&tenant),
                app: Some(&app),
                method,
                status,
                elapsed: Duration::from_millis(5),
                upstream,
                upstream_error: None,
                cut_short: false,
            });
        };
        request(&Method::GET, 200, None);
        request(&Method::GET, 204, None);
        request(&Method::POST, 200, None);
        request(&Method::GET, 404, None);
        let text = metrics.encode().unwrap();
        assert_eq!(
            samples(&text, "portico_requests_total"),
            "portico_requests_total{tenant=\"acme\",app=\"docs\",method=\"GET\",status=\"2xx\"} 2\n\
             portico_requests_total{tenant=\"acme\",app=\"docs\",method=\"GET\",status=\"4xx\"} 1\n\
             portico_requests_total{tenant=\"acme\",app=\"docs\",method=\"POST\",status=\"2xx\"} 1\n"
        );
        // No upstream was called: no upstream series, as without the kept series.
        assert!(
            !text.contains("portico_upstream_duration_seconds_count{"),
            "{text}"
        );
        assert!(
            text.contains(
                "portico_processing_duration_seconds_count{tenant=\"acme\",app=\"docs\"} 4"
            ),
            "{text}"
        );
        request(&Method::GET, 200, Some(Duration::from_millis(2)));
        let text = metrics.encode().unwrap();
        assert!(
            text.contains(
                "portico_upstream_duration_seconds_count{tenant=\"acme\",app=\"docs\"} 1"
            ),
            "{text}"
        );
    }

    #[test]
    fn certificate_expiry_is_read_from_the_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["acme.test".to_owned()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2030, 1, 2);
        let certificate = params
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let metrics = Metrics::new(|| None);
        metrics
            .set_certificate_expiry_der("acme.test", certificate.der())
            .unwrap();
        assert!(metrics.set_certificate_expiry_der("junk", b"nope").is_err());
        let text = metrics.encode().unwrap();
        assert!(
            text.contains(
                "portico_certificate_expiry_timestamp_seconds{name=\"acme.test\"} 1893542400"
            ),
            "{text}"
        );
        assert!(!text.contains("junk"));
        metrics.clear_certificate_expiry();
        assert!(!metrics.encode().unwrap().contains("acme.test"));
    }

    #[test]
    fn sign_in_failures_never_label_free_text() {
        assert_eq!(
            sign_in_failure_reason("the identity provider answered `access_denied` secret text"),
            "idp_error"
        );
        assert_eq!(
            sign_in_failure_reason("ID token rejected: bad sig"),
            "id_token_rejected"
        );
        assert_eq!(
            sign_in_failure_reason("alice@example.com did something"),
            "other"
        );
        let metrics = Metrics::new(|| None);
        metrics.audit(&AuditRecord {
            event: "sign_in",
            outcome: "failure",
            tenant: "acme",
            method: None,
            reason: Some("user bob@example.com is weird"),
        });
        let text = metrics.encode().unwrap();
        assert!(!text.contains("bob"), "{text}");
        assert!(
            text.contains("portico_sign_in_failures_total{tenant=\"acme\",reason=\"other\"} 1")
        );
        assert!(
            text.contains("portico_audit_events_total{event=\"sign_in\",outcome=\"failure\"} 1")
        );
    }
}
