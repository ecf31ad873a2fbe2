//! Building and running the server: listeners, shared state, background tasks.
//!
//! `App::build` binds the sockets (so tests can bind port 0 and ask for the port), refuses configs that
//! are unsafe to serve (dev sign-in on a non-loopback listener), and `run` starts the background tasks and
//! serves until a shutdown signal. The routes and the layer order are [`router`]'s; the tenant listener's
//! connections (caps, header-read timeout, protocols) are `listener`'s. It must not hold handlers.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;

use crate::admin;
use crate::assertion::{AssertionCache, SigningKeys};
use crate::auth::oidc::OidcRegistry;
use crate::auth::session::Sessions;
use crate::config::{Config, SignIn, TenantId};
use crate::proxy::UpstreamClient;
use crate::state::{AppState, SharedState};
use crate::telemetry::{Access, Metrics, SpanSink};

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
}

/// A bound, ready-to-run server.
pub struct App {
    listener: TcpListener,
    admin_listener: Option<TcpListener>,
    state: AppState,
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
        let admin_listener = match config.server.admin_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?,
            ),
            None => None,
        };
        let bound = listener.local_addr().map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;
        let state = shared_state(config, bound)?;
        Ok(App {
            listener,
            admin_listener,
            state,
        })
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

    /// Serves until Ctrl-C or SIGTERM, then lets in-flight requests finish.
    pub async fn run(self) -> std::io::Result<()> {
        let state = self.state.clone();
        spawn_background_tasks(&state);
        if let Some(admin_listener) = self.admin_listener {
            let admin_router = admin::router(admin::AdminState {
                config: state.config.clone(),
                oidc: state.oidc.clone(),
                metrics: state.metrics.clone(),
            });
            tracing::info!(addr = %admin_listener.local_addr()?, "admin listener (health, readiness)");
            tokio::spawn(async move {
                if let Err(error) = axum::serve(admin_listener, admin_router)
                    .with_graceful_shutdown(shutdown_signal())
                    .await
                {
                    tracing::error!(%error, "admin listener failed");
                }
            });
        }
        let snapshot = state.config.load();
        tracing::info!(
            addr = %state.listen,
            config = %snapshot.source,
            tenants = snapshot.tenants.len(),
            "portico is serving on http://{}",
            state.listen
        );
        let limits = listener::Limits {
            header_read_timeout: snapshot.server.header_read_timeout,
            max_connections: snapshot.server.max_connections,
            max_connections_per_client: snapshot.server.max_connections_per_client,
        };
        let metrics = state.metrics.clone();
        listener::serve(
            self.listener,
            router(state),
            limits,
            metrics,
            shutdown_signal(),
        )
        .await
    }
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
    let sessions = Sessions::in_memory();
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
    Ok(AppState::new(SharedState {
        signing_keys: Arc::new(signing_keys),
        assertions: Arc::new(AssertionCache::default()),
        backstage_tokens: Arc::default(),
        oidc: Arc::new(OidcRegistry::new(&config.tenants)?),
        upstreams: UpstreamClient::new(config.proxy.connect_timeout, config.proxy.idle_timeout)
            .with_websocket_gauge(metrics.websockets()),
        sessions,
        metrics,
        access,
        config: Arc::new(ArcSwap::from_pointee(config)),
        listen,
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

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
