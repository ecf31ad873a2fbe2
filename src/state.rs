//! Shared server state: the services every request uses.
//!
//! `AppState` holds what outlives a config reload (the session store, the upstream connection pool, the
//! signing keys, the token caches, the OIDC registry, the listener facts) plus the one swappable config
//! snapshot. It imports services, never handlers, extractors or middleware: those import it. The
//! per-request view of the snapshot is `http::RequestContext`. A route that needs one service only (the
//! JWKS, tenant resolution, the admin listener) takes that service as its own state instead.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::assertion::CurrentKeys;
use crate::auth::oidc::OidcRegistry;
use crate::auth::session::Sessions;
use crate::backstage::tokens::BackstageTokens;
use crate::config::Config;
use crate::doctor::health::HealthBoard;
use crate::proxy::cache::ResponseCache;
use crate::proxy::client::UpstreamClient;
use crate::shared::Redis;
use crate::telemetry::{Access, Metrics};
use crate::tls::TlsStore;

/// The server's shared state, one pointer wide: axum clones the state for every request and every
/// extractor, so a clone must be one reference-count increment, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl AppState {
    pub fn new(shared: SharedState) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = SharedState;
    fn deref(&self) -> &SharedState {
        &self.0
    }
}

pub struct SharedState {
    pub config: Arc<ArcSwap<Config>>,
    pub sessions: Sessions,
    pub upstreams: UpstreamClient,
    /// The keys that sign identity assertions (the assertions signed are kept per user:
    /// `auth::Principal`); a reload swaps them when `server.signing_keys` or the files change.
    pub signing_keys: CurrentKeys,
    /// Backstage user tokens per session.
    pub backstage_tokens: Arc<BackstageTokens>,
    /// Personal access tokens, kept where the sessions are (this process, or Redis).
    pub personal_tokens: crate::auth::personal::PersonalTokens,
    /// What this instance keeps per bearer token: the record its requests act through and its
    /// rate-limit bucket (`auth::BearerRecords`).
    pub bearer_records: Arc<crate::auth::BearerRecords>,
    /// The Redis every instance shares, when `sessions.store` is `redis`.
    pub redis: Option<Arc<Redis>>,
    /// Every OIDC tenant's relying party; discovery runs in the background.
    pub oidc: Arc<OidcRegistry>,
    /// The address the tenant listener is bound to.
    pub listen: SocketAddr,
    /// Cancelled when the server starts shutting down (first SIGTERM or Ctrl-C): listeners stop
    /// accepting, WebSocket relays send their Close frames.
    pub shutdown: CancellationToken,
    /// The WebSocket relays, so shutdown can wait for their Close frames.
    pub websockets: TaskTracker,
    /// The tenant listener's certificates, when it serves TLS.
    pub(crate) tls: Option<Arc<TlsStore>>,
    /// The Prometheus metrics (`GET /metrics` on the admin listener).
    pub metrics: Arc<Metrics>,
    /// The access layer's state: the metrics and the trusted proxies (fixed at start).
    pub access: Access,
    /// Upstream responses kept for apps with `cache:` on (bounded by `proxy.cache`, read per store).
    pub(crate) cache: Arc<ResponseCache>,
    /// What the health watch found about each watched tenant's apps (`doctor::watch`); the shell
    /// reads it with one lock-free load per `/shell/config.json`.
    pub health: Arc<HealthBoard>,
}

impl SharedState {
    /// Dev sign-in is only ever offered on a loopback listener: nobody else can reach it there.
    pub fn dev_sign_in_allowed(&self) -> bool {
        self.listen.ip().is_loopback()
    }
}
