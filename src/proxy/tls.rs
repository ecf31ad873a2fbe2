//! TLS to `https://` upstreams (apps and Backstage): one pooled hyper client per distinct TLS setting
//! (`config::UpstreamTls`, found by its fingerprint), built with rustls on the ring provider.
//!
//! Clients are built when a config is prepared (at start, and by whoever compiles a new config), so a
//! request finds its client with one lock-free map read; a setting not prepared is built on first use
//! and kept. Settings with equal contents share one client and its connections, also across reloads.
//! The system's roots are loaded once, the first time a setting needs them; none loading is logged,
//! and then only upstreams with their own `ca` can be reached. Each setting has two clients: one that
//! offers h2 and http/1.1 by ALPN (the upstream picks), and an http/1.1-only one for WebSocket
//! handshakes, which cannot ride on HTTP/2. Verification is never turned off here: there is no code
//! path without a root store. This module knows no feature and no server state.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::body::Body;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;

use crate::config::{Config, TrustRoots, UpstreamTls};

pub(super) type HttpsClient = Client<HandshakeTimeout<HttpsConnector<HttpConnector>>, Body>;

/// The two clients of one TLS setting.
pub(super) struct TlsClient {
    /// Offers h2 and http/1.1; the upstream chooses.
    pub any: HttpsClient,
    /// http/1.1 only, for WebSocket handshakes.
    pub http1: HttpsClient,
}

/// The TLS clients by setting, and the system's roots once loaded.
pub(super) struct TlsClients {
    connect_timeout: Duration,
    clients: ArcSwap<HashMap<[u8; 32], Arc<TlsClient>>>,
    system_roots: OnceLock<Arc<RootCertStore>>,
}

impl TlsClients {
    pub(super) fn new(connect_timeout: Duration) -> Self {
        TlsClients {
            connect_timeout,
            clients: ArcSwap::default(),
            system_roots: OnceLock::new(),
        }
    }

    /// Builds the clients `config`'s https upstreams need and drops those no upstream uses any more
    /// (requests still holding one keep it until they finish). A setting that cannot be built (which
    /// compile-time checks make unlikely) is logged and left to fail its requests with a 502.
    pub(super) fn prepare(&self, config: &Config) {
        let mut wanted: Vec<&UpstreamTls> = Vec::new();
        for tenant in &config.tenants {
            let apps = tenant.apps.iter().filter_map(|app| match &app.target {
                crate::config::AppTarget::Upstream(upstream) => upstream.tls.as_deref(),
                _ => None,
            });
            let backstage = tenant
                .backstage
                .iter()
                .filter_map(|b| b.backend.tls.as_deref());
            wanted.extend(apps.chain(backstage));
        }
        let current = self.clients.load();
        let mut next = HashMap::new();
        for tls in wanted {
            if next.contains_key(&tls.fingerprint) {
                continue;
            }
            let client = match current.get(&tls.fingerprint) {
                Some(client) => Some(Arc::clone(client)),
                None => self.build(tls).map(Arc::new),
            };
            if let Some(client) = client {
                next.insert(tls.fingerprint, client);
            }
        }
        self.clients.store(Arc::new(next));
    }

    /// The client for `tls`: found, or built now and kept.
    pub(super) fn get(&self, tls: &UpstreamTls) -> Result<Arc<TlsClient>, rustls::Error> {
        if let Some(client) = self.clients.load().get(&tls.fingerprint) {
            return Ok(Arc::clone(client));
        }
        let client = Arc::new(self.try_build(tls)?);
        self.clients.rcu(|clients| {
            let mut clients = HashMap::clone(clients);
            clients
                .entry(tls.fingerprint)
                .or_insert_with(|| Arc::clone(&client));
            clients
        });
        Ok(client)
    }

    fn build(&self, tls: &UpstreamTls) -> Option<TlsClient> {
        self.try_build(tls)
            .map_err(|error| tracing::error!(%error, "cannot set up TLS to an upstream"))
            .ok()
    }

    fn try_build(&self, tls: &UpstreamTls) -> Result<TlsClient, rustls::Error> {
        let roots = match &tls.roots {
            TrustRoots::System => Arc::clone(self.system_roots()),
            TrustRoots::SystemAnd(extra) => {
                let mut roots = RootCertStore::clone(self.system_roots());
                for cert in extra {
                    roots.add(cert.clone())?;
                }
                Arc::new(roots)
            }
            TrustRoots::Only(certs) => {
                let mut roots = RootCertStore::empty();
                for cert in certs {
                    roots.add(cert.clone())?;
                }
                Arc::new(roots)
            }
        };
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
        let config = match &tls.client_auth {
            Some(auth) => {
                builder.with_client_auth_cert(auth.chain.clone(), auth.key.clone_key())?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(TlsClient {
            any: self.client(tls, config.clone(), true),
            http1: self.client(tls, config, false),
        })
    }

    fn client(&self, tls: &UpstreamTls, config: rustls::ClientConfig, h2: bool) -> HttpsClient {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(self.connect_timeout));
        http.enforce_http(false);
        let mut builder = HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only();
        if let Some(name) = &tls.server_name {
            builder = builder.with_server_name_resolver(FixedServerNameResolver::new(name.clone()));
        }
        let connector = if h2 {
            builder.enable_all_versions().wrap_connector(http)
        } else {
            builder.enable_http1().wrap_connector(http)
        };
        let connector = HandshakeTimeout {
            inner: connector,
            limit: self.connect_timeout,
        };
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build(connector)
    }

    /// The operating system's roots, loaded on first need; what could not be loaded is logged.
    fn system_roots(&self) -> &Arc<RootCertStore> {
        self.system_roots.get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "reading the system's CA certificates");
            }
            let mut roots = RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                tracing::warn!(
                    "no system CA certificates could be loaded: https upstreams without their own `tls.ca` will fail verification (install ca-certificates, or set SSL_CERT_FILE)"
                );
            } else {
                tracing::info!(added, ignored, "system CA certificates loaded for https upstreams");
            }
            Arc::new(roots)
        })
    }
}

/// The TLS error in an upstream failure, if TLS is what failed: a handshake refused (unknown CA, name
/// mismatch) or an alert from the upstream (a client certificate it refused, which TLS 1.3 reports
/// only after the handshake, when the response is read).
pub(super) fn tls_failure<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // `io::Error::source` skips the error it wraps (hyper-rustls wraps tokio-rustls's io::Error in
        // another), so an io::Error is looked into, not past.
        next = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::path::Path;

    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    use super::*;
    use crate::config::{AppTarget, MemorySource, load_str};

    /// Two CA certificates, `one.pem` and `two.pem`, in `/etc/portico`.
    fn files() -> MemorySource {
        let mut source = MemorySource::default();
        for name in ["one.pem", "two.pem"] {
            let mut params = CertificateParams::new(Vec::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let pem = params
                .self_signed(&KeyPair::generate().unwrap())
                .unwrap()
                .pem();
            source
                .files
                .insert(Path::new("/etc/portico").join(name), pem);
        }
        source
    }

    /// A config whose apps `a` and `b` reach https upstreams with `ca: <a_ca>` and `ca: <b_ca>`.
    fn config(files: &MemorySource, a_ca: &str, b_ca: &str) -> Config {
        let text = format!(
            "tenants:\n  acme:\n    hosts: [a]\n    auth: {{ dev_sign_in: {{ users: [{{ id: ann, groups: [eng] }}] }} }}\n    roles: {{ developer: {{ groups: [eng] }} }}\n    apps:\n      - {{ id: a, access: {{ roles: [developer] }}, upstream: {{ url: \"https://a\", tls: {{ ca: {a_ca} }} }} }}\n      - {{ id: b, access: {{ roles: [developer] }}, upstream: {{ url: \"https://b\", tls: {{ ca: {b_ca} }} }} }}\n      - {{ id: c, access: {{ roles: [developer] }}, upstream: \"http://c\" }}\n"
        );
        load_str(files, "portico.yaml", &text, Path::new("/etc/portico"))
            .unwrap()
            .config
    }

    fn tls_of(config: &Config, id: &str) -> Arc<UpstreamTls> {
        match &config.tenants[0].app(id).unwrap().target {
            AppTarget::Upstream(upstream) => Arc::clone(upstream.tls.as_ref().unwrap()),
            _ => unreachable!(),
        }
    }

    /// A reloaded config with the same TLS settings keeps its clients (and their pooled connections);
    /// settings that no upstream uses any more are let go; equal settings share one client.
    #[test]
    fn prepared_clients_are_reused_by_equal_settings_across_configs() {
        let clients = TlsClients::new(Duration::from_secs(1));
        let files = files();
        let first = config(&files, "one.pem", "two.pem");
        clients.prepare(&first);
        assert_eq!(clients.clients.load().len(), 2);
        let a = clients.get(&tls_of(&first, "a")).unwrap();

        // A new compile of the same files: new `UpstreamTls` values, the same clients.
        let second = config(&files, "one.pem", "one.pem");
        clients.prepare(&second);
        assert_eq!(
            clients.clients.load().len(),
            1,
            "b's old setting is dropped"
        );
        assert!(Arc::ptr_eq(
            &a,
            &clients.get(&tls_of(&second, "a")).unwrap()
        ));
        assert!(Arc::ptr_eq(
            &a,
            &clients.get(&tls_of(&second, "b")).unwrap()
        ));

        // A setting never prepared (a request of an older config in flight) is built and kept.
        let old_b = clients.get(&tls_of(&first, "b")).unwrap();
        assert!(!Arc::ptr_eq(&a, &old_b));
        assert_eq!(clients.clients.load().len(), 2);
    }

    /// An upstream failure whose cause is TLS is recognised through the io::Errors that wrap it.
    #[test]
    fn a_tls_error_is_found_inside_nested_io_errors() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let nested =
            std::io::Error::other(std::io::Error::new(std::io::ErrorKind::InvalidData, tls));
        assert!(matches!(
            tls_failure(&nested),
            Some(rustls::Error::InvalidCertificate(_))
        ));
        let plain = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(tls_failure(&plain).is_none());
    }
}

/// A connector whose whole connect, TCP and TLS handshake, must finish within `limit`
/// (`proxy.connect_timeout`). `HttpConnector`'s own timeout covers the TCP connect only, so an
/// upstream that accepted and never answered the ClientHello held the request until the response
/// timeout.
#[derive(Clone)]
pub(super) struct HandshakeTimeout<C> {
    inner: C,
    limit: Duration,
}

/// The connect did not finish within `proxy.connect_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("connecting (TCP and TLS handshake) took longer than {0:?}")]
pub(super) struct HandshakeTimedOut(Duration);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<C> tower::Service<http::Uri> for HandshakeTimeout<C>
where
    C: tower::Service<http::Uri>,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let limit = self.limit;
        let connecting = self.inner.call(uri);
        Box::pin(async move {
            match tokio::time::timeout(limit, connecting).await {
                Ok(connected) => connected.map_err(Into::into),
                Err(_) => Err(Box::new(HandshakeTimedOut(limit)) as BoxError),
            }
        })
    }
}
