//! The pooled HTTP client and the sending of one prepared request to an upstream (an app or Backstage).
//!
//! Bodies stream in both directions: the client's request body is handed to hyper as it arrives and the
//! upstream's response body is handed back the same way; nothing is collected in memory. A connect failure
//! is a 502, no response headers within the response timeout is a 504: never a hang, never a panic.
//! Responses come back without hop-by-hop headers; everything else about them is the gateway's to shape.
//! `http://` upstreams go through one plain pool (unchanged by TLS); `https://` ones through the client
//! of their TLS setting (`proxy::tls`), and a TLS failure is its own 502 (`upstream_tls`).
//! This is a service: it outlives config reloads and knows neither the server state nor any feature.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::http::{Request, Response, Uri, Version};
use hyper_util::client::legacy::connect::HttpConnector;

use super::ProxyError;
use super::guard::exceeded;
use super::headers::remove_hop_by_hop;
use super::pool::{PlainPool, SendError};
use super::tls::{TlsClients, tls_failure};
use crate::config::{Config, Upstream};

/// Keep-alive connection pools shared by all apps and tenants (plain http: one per worker; one per
/// TLS setting); they outlive config reloads.
///
/// Each worker thread (`app`'s runtime layout) takes plain-http connections from a pool of its own: a
/// pooled connection is driven by a task on the runtime that opened it, so a pool shared by workers
/// would wake another thread on every request and response. A thread says which worker it is with
/// [`UpstreamClient::enter_worker`]; any other thread uses the first pool.
#[derive(Clone)]
pub struct UpstreamClient {
    pools: Arc<[Arc<PlainPool>]>,
    tls: Arc<TlsClients>,
    idle_timeout: Duration,
}

thread_local! {
    /// The worker this thread serves, which picks its plain-http pool.
    static WORKER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl UpstreamClient {
    pub fn new(connect_timeout: Duration, idle_timeout: Duration, workers: usize) -> Self {
        let pool = || {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            connector.set_connect_timeout(Some(connect_timeout));
            connector.enforce_http(true);
            PlainPool::new(connector)
        };
        UpstreamClient {
            pools: (0..workers.max(1)).map(|_| pool()).collect(),
            tls: Arc::new(TlsClients::new(connect_timeout)),
            idle_timeout,
        }
    }

    /// A client for `config`'s timeouts and workers, prepared for its upstreams (see [`Self::prepare`]).
    pub fn for_config(config: &Config) -> Self {
        let client = Self::new(
            config.proxy.connect_timeout,
            config.proxy.idle_timeout,
            config.server.worker_count(),
        );
        client.prepare(config);
        client
    }

    /// Marks the calling thread as worker `index`: its requests use that worker's pool.
    pub fn enter_worker(index: usize) {
        WORKER.with(|worker| worker.set(index));
    }

    /// This thread's plain-http pool.
    fn pool(&self) -> &Arc<PlainPool> {
        let index = WORKER.with(std::cell::Cell::get);
        &self.pools[index % self.pools.len()]
    }

    /// Builds the TLS clients `config`'s https upstreams use (and loads the system's roots if one
    /// needs them), and lets go of those no upstream uses any more. Call it with every config that is
    /// put into service: at start, and after a reload compiled a new one.
    pub fn prepare(&self, config: &Config) {
        self.tls.prepare(config);
    }

    /// Sends `request` (headers already cleaned) to `upstream` at `target` below its base path.
    ///
    /// A WebSocket handshake (`upgrade`) goes over HTTP/1.1 even to an upstream that offers h2; the
    /// caller joins the upgraded connections after a `101 Switching Protocols` (apps/upstream's relay,
    /// which also closes them at shutdown).
    pub async fn forward(
        &self,
        upstream: &Upstream,
        target: Target<'_>,
        mut request: Request<Body>,
        response_timeout: Duration,
        upgrade: bool,
    ) -> Result<Response<Body>, ProxyError> {
        // Upstreams are spoken to in HTTP/1.1 whatever the client used: an HTTP/2 request handed on
        // as it came would be refused by an HTTP/1 connection (every h2 request was a 502). An
        // https upstream that chose h2 by ALPN gets h2 all the same: hyper ignores the version there.
        *request.version_mut() = Version::HTTP_11;
        let Some(tls) = &upstream.tls else {
            // Plain http: this worker's own pool, the request in origin form (`proxy::pool`).
            *request.uri_mut() = target.uri(upstream, false)?;
            let sent = self.pool().send(&upstream.authority, request);
            let response = match tokio::time::timeout(response_timeout, sent).await {
                Err(_) => return Err(timed_out(upstream, response_timeout)),
                Ok(Err(SendError::Connect(cause))) => {
                    return Err(ProxyError::UpstreamUnreachable {
                        upstream: upstream.url.clone(),
                        cause,
                    });
                }
                Ok(Err(SendError::Exchange(error))) => return Err(failed(upstream, error)),
                Ok(Ok(response)) => response,
            };
            return Ok(self.shape(response));
        };
        *request.uri_mut() = target.uri(upstream, true)?;
        // hyper-util's client sets Host from the URI's authority when none is present.
        let sent = match self.tls.get(tls) {
            // A WebSocket handshake needs HTTP/1.1; anything else may ride on h2.
            Ok(clients) if upgrade => clients.http1.request(request),
            Ok(clients) => clients.any.request(request),
            Err(error) => {
                return Err(ProxyError::UpstreamTls {
                    upstream: upstream.url.clone(),
                    cause: Box::new(error),
                });
            }
        };
        let response = match tokio::time::timeout(response_timeout, sent).await {
            Err(_) => return Err(timed_out(upstream, response_timeout)),
            Ok(Err(error)) if tls_failure(&error).is_some() => {
                // An unknown CA, a name mismatch, a client certificate refused: not a network
                // problem, and not one a retry fixes.
                return Err(ProxyError::UpstreamTls {
                    upstream: upstream.url.clone(),
                    cause: Box::new(error),
                });
            }
            Ok(Err(error)) if error.is_connect() => {
                return Err(ProxyError::UpstreamUnreachable {
                    upstream: upstream.url.clone(),
                    cause: Box::new(error),
                });
            }
            Ok(Err(error)) => return Err(failed(upstream, error)),
            Ok(Ok(response)) => response.map(Body::new),
        };
        Ok(self.shape(response))
    }

    /// The upstream's answer as the gateway gets it: without hop-by-hop headers, its body failing
    /// when it stalls for `proxy.idle_timeout`.
    fn shape(&self, response: Response<Body>) -> Response<Body> {
        let (mut parts, body) = response.into_parts();
        remove_hop_by_hop(&mut parts.headers);
        Response::from_parts(
            parts,
            Body::new(IdleTimeoutBody::new(body, self.idle_timeout)),
        )
    }

    /// A small request whose answer portico reads itself (at most 64 KiB), e.g. a token exchange.
    pub async fn fetch_small(
        &self,
        upstream: &Upstream,
        target: Target<'_>,
        request: Request<Body>,
        timeout: Duration,
    ) -> Result<(StatusCode, bytes::Bytes), ProxyError> {
        use http_body_util::BodyExt;
        let response = self
            .forward(upstream, target, request, timeout, false)
            .await?;
        let status = response.status();
        let body = http_body_util::Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await
            .map_err(|error| ProxyError::UpstreamFailed {
                upstream: upstream.url.clone(),
                cause: format!("reading the answer: {error}").into(),
            })?
            .to_bytes();
        Ok((status, body))
    }
}

fn timed_out(upstream: &Upstream, after: Duration) -> ProxyError {
    ProxyError::UpstreamTimeout {
        upstream: upstream.url.clone(),
        after,
    }
}

/// An exchange that failed once a connection was there.
fn failed(
    upstream: &Upstream,
    error: impl std::error::Error + Send + Sync + 'static,
) -> ProxyError {
    match exceeded(&error) {
        // The request body went over `proxy.max_request_body` as it streamed (a chunked body has no
        // length to refuse up front). hyper stops writing and closes the upstream connection without
        // the final chunk, so the upstream sees a broken message, not a shorter complete one; the
        // client learns why.
        Some(limit) => ProxyError::BodyTooLarge { limit },
        None => ProxyError::UpstreamFailed {
            upstream: upstream.url.clone(),
            cause: Box::new(error),
        },
    }
}

/// Where on an upstream a request goes: `path`, the pieces of the path below the upstream's base path
/// (already canonical, see `proxy::path`), and the query string, if any.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub path: &'a [&'a str],
    pub query: Option<&'a str>,
}

impl Target<'_> {
    /// The URI on `upstream`, absolute or in origin form (path and query), written into one buffer
    /// that the URI then owns (no copy).
    fn uri(&self, upstream: &Upstream, absolute: bool) -> Result<Uri, ProxyError> {
        let (scheme, authority) = match (absolute, upstream.tls.is_some()) {
            (false, _) => ("", ""),
            (true, true) => ("https://", upstream.authority.as_str()),
            (true, false) => ("http://", upstream.authority.as_str()),
        };
        let length = scheme.len()
            + authority.len()
            + upstream.base_path.len()
            + self.path.iter().map(|piece| piece.len()).sum::<usize>()
            + self.query.map_or(0, |query| query.len() + 1);
        let mut text = String::with_capacity(length + 1);
        text.push_str(scheme);
        text.push_str(authority);
        text.push_str(&upstream.base_path);
        for piece in self.path {
            text.push_str(piece);
        }
        if text.len() == scheme.len() + authority.len() && !absolute {
            // The root in origin form is `/`, never empty.
            text.push('/');
        }
        if let Some(query) = self.query {
            text.push('?');
            text.push_str(query);
        }
        Uri::try_from(text).map_err(|_| ProxyError::BadPath("the path cannot be forwarded"))
    }
}

/// An upstream response body that fails when no data arrives for `idle`: a stalled upstream then ends
/// the client's response instead of holding it open forever.
///
/// Not tower-http's `timeout::TimeoutBody`, which looks alike but differs where it matters here: it
/// does not pass on `is_end_stream` and `size_hint` (so hyper could no longer see an empty or
/// fixed-length upstream body as such), and it checks its timer before polling the body, failing a
/// frame that is ready at the deadline. This one polls the body first and passes both hints through.
pub(super) struct IdleTimeoutBody<B> {
    inner: B,
    idle: Duration,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl<B> IdleTimeoutBody<B> {
    pub(super) fn new(inner: B, idle: Duration) -> Self {
        IdleTimeoutBody {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

impl<B> http_body::Body for IdleTimeoutBody<B>
where
    B: http_body::Body<Data = bytes::Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = bytes::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let idle = this.idle;
                this.deadline
                    .as_mut()
                    .reset(tokio::time::Instant::now() + idle);
                Poll::Ready(frame.map(|result| result.map_err(Into::into)))
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(
                    "the upstream stopped sending (idle timeout)".into(),
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
