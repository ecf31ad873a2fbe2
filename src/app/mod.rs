//! Building and running the server: listeners, shared state, background tasks.
//!
//! `App::build` binds the sockets (so tests can bind port 0 and ask for the port), refuses configs that
//! are unsafe to serve (dev sign-in on a non-loopback listener), and `run` starts the background tasks and
//! serves until a shutdown signal. The routes and the layer order are `router`'s; the listeners'
//! connections (caps, TLS, client timeouts, protocols, draining) are `listener`'s; the https redirect and
//! HSTS are `edge`'s. It must not hold handlers.
//!
//! Shutdown: the first SIGTERM or Ctrl-C cancels `AppState::shutdown`; every listener stops accepting
//! and drains for at most `server.shutdown_timeout`, WebSocket relays send their Close frames, and
//! `run` returns. A second signal exits the process at once.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin;
use crate::assertion::{CurrentKeys, SigningKeys};
use crate::auth::oidc::{IdpStatus, OidcRegistry};
use crate::auth::personal::{PersonalTokens, RedisTokens};
use crate::auth::session::{CachedStore, INVALIDATE_CHANNEL, RedisStore, Sessions};
use crate::backstage::BackstageTokens;
use crate::config::{Config, SignIn, StoreSettings, TenantId};
use crate::doctor::health::HealthBoard;
use crate::doctor::watch::HealthWatch;
use crate::proxy::UpstreamClient;
use crate::proxy::cache::ResponseCache;
use crate::reload::{ConfigOrigin, Reloader};
use crate::shared::{Redis, RedisStatus};
use crate::state::{AppState, SharedState};
use crate::telemetry::{Access, Metrics, SpanSink};
use crate::tls::TlsStore;

mod edge;
mod listener;
mod router;

pub use router::router;

/// Why the server would not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "tenant `{tenant}` uses dev sign-in, which lets anyone act as any user, but portico would listen on \
         {addr}, which is not a loopback address; listen on 127.0.0.1 or configure a real sign-in method"
    )]
    DevSignInNotLoopback { tenant: TenantId, addr: SocketAddr },
    #[error(transparent)]
    SigningKeys(#[from] crate::assertion::KeyError),
    #[error(transparent)]
    IdpClient(#[from] crate::auth::oidc::ClientError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot set up the connection to Redis: {0}")]
    Redis(crate::shared::StoreError),
}

/// A bound, ready-to-run server.
pub struct App {
    /// The tenant listener, accepted on by the calling runtime (worker 0).
    listener: TcpListener,
    /// Copies of the same socket for workers 1.., each registered with its own runtime's poller.
    workers: Vec<std::net::TcpListener>,
    admin_listener: Option<TcpListener>,
    redirect_listener: Option<TcpListener>,
    tls: Option<TlsAcceptor>,
    state: AppState,
    reloader: Arc<Reloader>,
}

impl App {
    /// Binds the listeners named in `config.server` and prepares the state.
    pub async fn build(config: Config) -> Result<App, StartError> {
        let listen = config.server.listen;
        refuse_unsafe_dev_sign_in(&config)?;
        raise_file_limit(config.server.max_connections);
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: listen,
                source,
            })?;
        let workers =
            worker_sockets(&listener, config.server.worker_count()).map_err(|source| {
                StartError::Bind {
                    addr: listen,
                    source,
                }
            })?;
        let admin_listener = bind_optional(config.server.admin_listen).await?;
        let redirect_listener = bind_optional(config.server.redirect_listen).await?;
        let bound = listener.local_addr().map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;
        let state = shared_state(config, bound)?;
        let reloader = Arc::new(Reloader::new(
            state.config.clone(),
            state.oidc.clone(),
            bound,
            None,
        ));
        let tls = match &state.tls {
            Some(store) => Some(TlsAcceptor::from(store.server_config()?)),
            None => None,
        };
        Ok(App {
            listener,
            workers,
            admin_listener,
            redirect_listener,
            tls,
            state,
            reloader,
        })
    }

    /// The config came from a file: SIGHUP, a change to the files and `POST /reload` reload it.
    /// Without this (the embedded demo, in-process tests) a reload says there is nothing to read.
    #[must_use]
    pub fn reloading_from(mut self, origin: ConfigOrigin) -> App {
        self.reloader = Arc::new(Reloader::new(
            self.state.config.clone(),
            self.state.oidc.clone(),
            self.state.listen,
            Some(origin),
        ));
        self
    }

    /// The address the tenant listener is bound to (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.state.listen
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The address of the plain listener that redirects to https, if there is one.
    pub fn redirect_addr(&self) -> Option<SocketAddr> {
        self.redirect_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// Cancelling it shuts the server down as the first signal would (for embedding and tests).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    /// Serves until Ctrl-C or SIGTERM (or [`App::shutdown_token`]), then lets requests in flight
    /// finish, at most `server.shutdown_timeout`; a second signal exits at once.
    pub async fn run(self) -> std::io::Result<()> {
        let state = self.state.clone();
        let shutdown = state.shutdown.clone();
        spawn_background_tasks(&state);
        let health = HealthWatch::start(&state);
        tokio::spawn(signals(shutdown.clone()));
        add_reload_hooks(&self.reloader, &state, health);
        self.reloader.count_into(state.metrics.clone());
        self.reloader.reload_on_hangup()?;
        self.reloader.watch_files();
        let snapshot = state.config.load();
        let limits = listener::Limits::of(&snapshot.server);
        if let Some(admin_listener) = self.admin_listener {
            serve_admin(admin_listener, &state, &self.reloader)?;
        }
        let tls = self.tls;
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(
            addr = %state.listen,
            config = %snapshot.source,
            tenants = snapshot.tenants.len(),
            "portico is serving on {scheme}://{}",
            state.listen
        );
        let redirect = async {
            let Some(redirect_listener) = self.redirect_listener else {
                return Ok(());
            };
            tracing::info!(addr = %redirect_listener.local_addr()?, "redirecting plain HTTP to https");
            let router = edge::redirect_router(
                state.config.clone(),
                state.listen.port(),
                state.access.clone(),
            );
            listener::serve(
                redirect_listener,
                None,
                router,
                listener::Caps::new(limits),
                state.metrics.clone(),
                shutdown.clone(),
                "redirect",
            )
            .await
        };
        let caps = listener::Caps::new(limits);
        // Workers stop at shutdown, and also when this future is dropped without one (its runtime
        // ended, as at the end of a test): a worker thread must not outlive the server it belongs to.
        let stop_workers = shutdown.child_token();
        let _stop_workers_on_drop = stop_workers.clone().drop_guard();
        let mut workers = Vec::with_capacity(self.workers.len());
        for (index, socket) in self.workers.into_iter().enumerate() {
            let worker = Worker {
                index: index + 1,
                socket,
                tls: tls.clone(),
                state: state.clone(),
                limits,
                caps: caps.clone(),
                stop: stop_workers.clone(),
            };
            workers.push(worker.start()?);
        }
        let tenant = listener::serve(
            self.listener,
            tls,
            router::portal(state.clone()),
            caps,
            state.metrics.clone(),
            shutdown.clone(),
            "tenant",
        );
        let websockets = close_websockets(&state.websockets, &shutdown, limits.shutdown_timeout);
        let (tenant, redirect, ()) = tokio::join!(tenant, redirect, websockets);
        let mut stopped = tenant.and(redirect);
        for worker in workers {
            let outcome = worker.await.unwrap_or_else(|_| {
                Err(std::io::Error::other(
                    "a worker thread ended without a word",
                ))
            });
            stopped = stopped.and(outcome);
        }
        tracing::info!("portico stopped");
        stopped
    }
}

/// The runtime layout, after nginx's workers: `server.workers` threads, each with its own
/// single-threaded tokio runtime that accepts on its own registration of the tenant listener and
/// serves the connections it accepted from start to end, with its own upstream pool. A request never
/// hops between threads, so the hot path has no cross-thread wake-ups and no work-stealing
/// bookkeeping. Worker 0 is the runtime that calls [`App::run`]; it also runs the background tasks, the
/// admin and the redirect listeners.
///
/// The workers share one listening socket (duplicated descriptors) rather than one socket each with
/// `SO_REUSEPORT`: with reuse-port another process of the same user could bind the port too and
/// silently take a share of the connections, and the kernel would hash each connection to a fixed
/// worker even when that worker is busy. A shared accept queue hands a new connection to whichever
/// worker asks first; the price is that every idle worker wakes for each new connection (not for each
/// request on a kept-alive one).
struct Worker {
    index: usize,
    socket: std::net::TcpListener,
    tls: Option<TlsAcceptor>,
    state: AppState,
    limits: listener::Limits,
    caps: listener::Caps,
    /// Cancelled at shutdown, or when worker 0's `App::run` is dropped.
    stop: CancellationToken,
}

impl Worker {
    /// Starts the worker's thread; the receiver says how its listener ended.
    fn start(self) -> std::io::Result<tokio::sync::oneshot::Receiver<std::io::Result<()>>> {
        let (done, outcome) = tokio::sync::oneshot::channel();
        // The worker logs where the thread that started the server does (its scoped subscriber, if it
        // set one, as tests do; else the global one).
        let logs = tracing::dispatcher::get_default(Clone::clone);
        std::thread::Builder::new()
            .name(format!("portico-worker-{}", self.index))
            .spawn(move || {
                let _ = done.send(tracing::dispatcher::with_default(&logs, || self.run()));
            })?;
        Ok(outcome)
    }

    fn run(self) -> std::io::Result<()> {
        UpstreamClient::enter_worker(self.index);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let listener = TcpListener::from_std(self.socket)?;
            let state = self.state;
            let shutdown = self.stop;
            let tenant = listener::serve(
                listener,
                self.tls,
                router::portal(state.clone()),
                self.caps,
                state.metrics.clone(),
                shutdown.clone(),
                "tenant",
            );
            // The relays this runtime drives must send their Close frames before it stops (worker 0
            // reports on them).
            let websockets = async {
                shutdown.cancelled().await;
                state.websockets.close();
                let _ = tokio::time::timeout(self.limits.shutdown_timeout, state.websockets.wait())
                    .await;
            };
            tokio::join!(tenant, websockets).0
        })
    }
}

/// Copies of the tenant listener's socket for workers 1.. (`count - 1` of them).
fn worker_sockets(
    listener: &TcpListener,
    count: usize,
) -> std::io::Result<Vec<std::net::TcpListener>> {
    use std::os::fd::AsFd;
    (1..count)
        .map(|_| {
            let socket = std::net::TcpListener::from(listener.as_fd().try_clone_to_owned()?);
            socket.set_nonblocking(true)?;
            Ok(socket)
        })
        .collect()
}

async fn bind_optional(addr: Option<SocketAddr>) -> Result<Option<TcpListener>, StartError> {
    match addr {
        Some(addr) => TcpListener::bind(addr)
            .await
            .map(Some)
            .map_err(|source| StartError::Bind { addr, source }),
        None => Ok(None),
    }
}

/// Health and readiness on their own listener, which also stops at shutdown.
fn serve_admin(
    admin_listener: TcpListener,
    state: &AppState,
    reloader: &Arc<Reloader>,
) -> std::io::Result<()> {
    let admin_router = admin::router(admin::AdminState {
        config: state.config.clone(),
        oidc: state.oidc.clone(),
        reload: reloader.clone(),
        metrics: state.metrics.clone(),
        redis: state.redis.clone(),
        personal_tokens: state.personal_tokens.clone(),
    });
    tracing::info!(addr = %admin_listener.local_addr()?, "admin listener (health, readiness, metrics, config status and reload)");
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        if let Err(error) = axum::serve(admin_listener, admin_router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
        {
            tracing::error!(%error, "admin listener failed");
        }
    });
    Ok(())
}

/// At shutdown, the WebSocket relays send their Close frames (they watch the token themselves); this
/// waits for them, at most `deadline`, and says how many were cut.
async fn close_websockets(
    relays: &TaskTracker,
    shutdown: &CancellationToken,
    deadline: std::time::Duration,
) {
    shutdown.cancelled().await;
    relays.close();
    let open = relays.len();
    if open == 0 {
        return;
    }
    tracing::info!(websockets = open, "closing WebSockets (1001 going away)");
    if tokio::time::timeout(deadline, relays.wait()).await.is_err() {
        tracing::warn!(
            websockets = relays.len(),
            "shutdown deadline reached: cutting WebSockets that did not close"
        );
    }
}

/// What else follows an applied reload besides the config snapshot.
fn add_reload_hooks(reloader: &Reloader, state: &AppState, health: HealthWatch) {
    // Each tenant's health watch follows its `health:` settings (its apps and roles are read from
    // the config at every round anyway).
    reloader.add_hook(Box::new(move |_config| health.config_changed()));
    // Certificates are re-read from disk too (they are also polled every `server.tls.reload_interval`).
    let upstreams = state.upstreams.clone();
    reloader.add_hook(Box::new(move |config| {
        // TLS clients for upstreams the new config added; unused ones are let go.
        upstreams.prepare(config);
    }));
    let sessions = state.sessions.clone();
    reloader.add_hook(Box::new(move |config| {
        // Redis TTLs follow reloaded timeouts.
        sessions.apply(&config.sessions);
    }));
    if let Some(store) = state.tls.clone() {
        reloader.add_hook(Box::new(move |_config| {
            store.reload();
        }));
    }
    let keys = state.signing_keys.clone();
    reloader.add_hook(Box::new(move |config| {
        // New signing keys (a rotation) sign from now on and are published at once; assertions
        // kept under the old key are signed anew on their next use (`assertion::Kept`).
        match keys.load().reloaded(&config.server.signing_keys) {
            Ok(Some(next)) => {
                tracing::info!(kid = next.signing_kid(), "assertion signing keys reloaded");
                keys.store(Arc::new(next));
            }
            Ok(None) => {}
            // The config check parsed them; only a file that changed since could fail here.
            Err(error) => {
                tracing::error!(%error, "signing keys not reloaded; the old ones stay")
            }
        }
    }));
}

/// The services every request shares, for a tenant listener bound to `listen`. Binds nothing, so a test
/// can drive [`router`] in-process with it.
pub fn shared_state(config: Config, listen: SocketAddr) -> Result<AppState, StartError> {
    let signing_keys = if config.server.signing_keys.is_empty() {
        tracing::info!(
            "assertion signing key generated at start; several instances need shared `server.signing_keys`"
        );
        SigningKeys::generate()
    } else {
        SigningKeys::from_files(&config.server.signing_keys)?
    };
    let signing_keys: CurrentKeys = Arc::new(arc_swap::ArcSwap::from_pointee(signing_keys));
    let tls = match &config.server.tls {
        Some(settings) => Some(TlsStore::load(settings)?),
        None => None,
    };
    let (sessions, redis) = match &config.sessions.store {
        StoreSettings::Memory => (Sessions::in_memory(), None),
        StoreSettings::Redis(settings) => {
            let redis = Redis::open(settings).map_err(StartError::Redis)?;
            let store = CachedStore::new(
                RedisStore::new(redis.clone(), &config.sessions),
                redis.clone(),
                settings.outage_grace,
            );
            (Sessions::new(Arc::new(store)), Some(redis))
        }
    };
    let metrics = Arc::new(Metrics::new({
        let sessions = sessions.clone();
        move || sessions.count()
    }));
    let spans = config
        .telemetry
        .otlp_endpoint
        .clone()
        .and_then(SpanSink::start);
    let access = Access::new(
        metrics.clone(),
        config.server.trusted_proxies.clone(),
        spans,
    );
    let oidc = Arc::new(OidcRegistry::new(&config.tenants)?.shared_through(redis.clone()));
    {
        let oidc = oidc.clone();
        metrics.read_identity_providers_from(Box::new(move || {
            oidc.statuses()
                .into_iter()
                .map(|(tenant, status)| (tenant.to_string(), matches!(status, IdpStatus::Ready)))
                .collect()
        }));
    }
    if let Some(redis) = &redis {
        let redis = redis.clone();
        metrics
            .read_session_store_from(Box::new(move || matches!(redis.status(), RedisStatus::Up)));
    }
    if let Some(store) = &tls {
        let store = store.clone();
        metrics.read_certificates_from(Box::new(move || {
            store
                .expiry()
                .into_iter()
                .map(|certificate| (certificate.name, certificate.not_after))
                .collect()
        }));
    }
    let health = Arc::new(HealthBoard::default());
    {
        let health = health.clone();
        metrics.read_app_health_from(Box::new(move || health.app_up()));
    }
    let metrics_for_cache = metrics.cache_store();
    Ok(AppState::new(SharedState {
        signing_keys,
        backstage_tokens: Arc::new(BackstageTokens::shared_through(redis.clone())),
        personal_tokens: match &redis {
            Some(redis) => PersonalTokens::new(Arc::new(RedisTokens::new(redis.clone()))),
            None => PersonalTokens::in_memory(),
        },
        bearer_records: Arc::default(),
        redis,
        oidc,
        upstreams: UpstreamClient::for_config(&config),
        sessions,
        metrics,
        access,
        config: Arc::new(ArcSwap::from_pointee(config)),
        listen,
        shutdown: CancellationToken::new(),
        websockets: TaskTracker::new(),
        tls,
        cache: Arc::new(ResponseCache::new(metrics_for_cache)),
        health,
    }))
}

/// Dev sign-in lets anyone act as any user: it is refused on a listener others can reach, and shouted
/// about on loopback.
fn refuse_unsafe_dev_sign_in(config: &Config) -> Result<(), StartError> {
    let listen = config.server.listen;
    for tenant in &config.tenants {
        if matches!(tenant.sign_in, SignIn::Dev { .. }) {
            if !listen.ip().is_loopback() {
                return Err(StartError::DevSignInNotLoopback {
                    tenant: tenant.id.clone(),
                    addr: listen,
                });
            }
            tracing::warn!(
                tenant = %tenant.id,
                "DEV SIGN-IN IS ENABLED for tenant `{}`: anyone who can reach {listen} can act as any demo user. \
                 Fine for a demo on loopback; never for production.",
                tenant.id
            );
        }
    }
    Ok(())
}

/// What runs beside the listeners for the server's lifetime: expired sessions are purged (with the
/// timeouts of the current config snapshot), and every OIDC tenant's discovery is kept fresh.
fn spawn_background_tasks(state: &AppState) {
    let config = state.config.clone();
    tokio::spawn(
        state
            .sessions
            .clone()
            .purge_periodically(move || config.load().sessions.clone()),
    );
    tokio::spawn(state.oidc.clone().run_discovery());
    if let Some(redis) = &state.redis {
        tokio::spawn(redis.clone().probe(state.shutdown.clone()));
        let sessions = state.sessions.clone();
        tokio::spawn(redis.clone().subscribe(
            INVALIDATE_CHANNEL,
            state.shutdown.clone(),
            move |tag| sessions.invalidated(tag),
        ));
    }
    if let Some(store) = &state.tls {
        let interval = state
            .config
            .load()
            .server
            .tls
            .as_ref()
            .map_or(std::time::Duration::from_secs(5), |tls| tls.reload_interval);
        tokio::spawn(store.clone().watch(interval, state.shutdown.clone()));
    }
}

/// Each proxied connection needs a second descriptor for its upstream: with fewer files than that,
/// accepting fails (and is retried) long before `max_connections` is reached. So the soft file limit
/// is raised towards what the caps need, up to the hard limit (as Go programs and nginx's
/// `worker_rlimit_nofile` do), and a limit that is still too low is reported.
fn raise_file_limit(max_connections: usize) {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let wanted = u64::try_from(max_connections)
            .unwrap_or(u64::MAX)
            .saturating_mul(2)
            .saturating_add(1024);
        let limit = getrlimit(Resource::Nofile);
        let Some(current) = limit.current else {
            return; // unlimited
        };
        let target = limit.maximum.map_or(wanted, |maximum| wanted.min(maximum));
        let mut now = current;
        if target > current {
            let raised = Rlimit {
                current: Some(target),
                maximum: limit.maximum,
            };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                now = target;
            }
        }
        if now < wanted.saturating_sub(1024) {
            tracing::warn!(
                open_files = now,
                max_connections,
                "the process may open {now} files, fewer than twice server.max_connections \
                 ({max_connections}); raise the hard limit (e.g. LimitNOFILE in the systemd unit) or \
                 lower max_connections"
            );
        }
    }
}

/// The first SIGTERM or Ctrl-C starts the shutdown; a second exits at once.
async fn signals(shutdown: CancellationToken) {
    // One SIGTERM stream for both signals, so a second one sent at once is not missed.
    #[cfg(unix)]
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    for first in [true, false] {
        let ctrl_c = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        let term = async {
            match terminate.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {},
            () = term => {},
        }
        if first {
            tracing::info!(
                "shutting down: no new connections, requests in flight may finish; a second signal exits at once"
            );
            shutdown.cancel();
        }
    }
    tracing::warn!("second signal: exiting now");
    crate::telemetry::write_log_now();
    std::process::exit(1);
}
