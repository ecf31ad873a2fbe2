//! The pooled HTTP client and the sending of one prepared request to an upstream (an app or Backstage).
//!
//! Bodies stream in both directions: the client's request body is handed to hyper as it arrives and the
//! upstream's response body is handed back the same way; nothing is collected in memory. A connect failure
//! is a 502, no response headers within the response timeout is a 504: never a hang, never a panic.
//! Responses come back without hop-by-hop headers; everything else about them is the gateway's to shape.
//! This is a service: it outlives config reloads and knows neither the server state nor any feature.

use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::http::header::{CONNECTION, UPGRADE};
use axum::http::{Request, Response, Uri, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

use prometheus_client::metrics::gauge::Gauge;

use super::ProxyError;
use super::guard::exceeded;
use super::headers::remove_hop_by_hop;
use crate::config::Upstream;
use crate::telemetry::metrics::GaugeGuard;

/// A keep-alive connection pool shared by all apps and tenants; it outlives config reloads.
#[derive(Clone)]
pub struct UpstreamClient {
    client: Client<HttpConnector, Body>,
    idle_timeout: Duration,
    /// Open WebSocket joins, for the metrics (a detached gauge when nobody reads it).
    websockets: Gauge,
}

impl UpstreamClient {
    pub fn new(connect_timeout: Duration, idle_timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        connector.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build(connector);
        UpstreamClient {
            client,
            idle_timeout,
            websockets: Gauge::default(),
        }
    }

    /// Counts open WebSocket joins in `gauge`.
    pub fn with_websocket_gauge(mut self, gauge: Gauge) -> Self {
        self.websockets = gauge;
        self
    }

    /// Sends `request` (headers already cleaned) to `upstream` at `target` below its base path.
    ///
    /// With `client_upgrade` (a WebSocket handshake), a `101 Switching Protocols` from the upstream
    /// joins the two upgraded connections and copies bytes both ways until either side closes.
    pub async fn forward(
        &self,
        upstream: &Upstream,
        target: Target<'_>,
        mut request: Request<Body>,
        response_timeout: Duration,
        client_upgrade: Option<OnUpgrade>,
    ) -> Result<Response<Body>, ProxyError> {
        *request.uri_mut() = target.uri(upstream)?;
        // Upstreams are spoken to in HTTP/1.1 whatever the client used: an HTTP/2 request handed on
        // as it came would be refused by the HTTP/1 connection pool (every h2 request was a 502).
        *request.version_mut() = Version::HTTP_11;
        // hyper sets Host from the URI's authority when none is present.
        let outcome = tokio::time::timeout(response_timeout, self.client.request(request)).await;
        let response = match outcome {
            Err(_) => {
                return Err(ProxyError::UpstreamTimeout {
                    upstream: upstream.url.clone(),
                    after: response_timeout,
                });
            }
            Ok(Err(error)) if exceeded(&error).is_some() => {
                // The request body went over `proxy.max_request_body` as it streamed (a chunked body
                // has no length to refuse up front). hyper stops writing and closes the upstream
                // connection without the final chunk, so the upstream sees a broken message, not a
                // shorter complete one; the client learns why.
                return Err(ProxyError::BodyTooLarge {
                    limit: exceeded(&error).unwrap_or_default(),
                });
            }
            Ok(Err(error)) if error.is_connect() => {
                return Err(ProxyError::UpstreamUnreachable {
                    upstream: upstream.url.clone(),
                    cause: Box::new(error),
                });
            }
            Ok(Err(error)) => {
                return Err(ProxyError::UpstreamFailed {
                    upstream: upstream.url.clone(),
                    cause: Box::new(error),
                });
            }
            Ok(Ok(response)) => response,
        };
        let mut response = response;
        if let Some(client_upgrade) = client_upgrade {
            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                let upstream_upgrade = hyper::upgrade::on(&mut response);
                let open = GaugeGuard::new(&self.websockets);
                tokio::spawn(async move {
                    join_upgraded(client_upgrade, upstream_upgrade).await;
                    drop(open);
                });
                let (mut parts, _) = response.into_parts();
                // The handshake's Connection/Upgrade must reach the browser; nothing else hop-by-hop.
                let connection = parts.headers.get(CONNECTION).cloned();
                let upgrade = parts.headers.get(UPGRADE).cloned();
                remove_hop_by_hop(&mut parts.headers);
                if let (Some(connection), Some(upgrade)) = (connection, upgrade) {
                    parts.headers.insert(CONNECTION, connection);
                    parts.headers.insert(UPGRADE, upgrade);
                }
                return Ok(Response::from_parts(parts, Body::empty()));
            }
        }
        let (mut parts, body) = response.into_parts();
        remove_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(
            parts,
            Body::new(IdleTimeoutBody::new(body, self.idle_timeout)),
        ))
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
            .forward(upstream, target, request, timeout, None)
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

/// Where on an upstream a request goes: `path`, the pieces of the path below the upstream's base path
/// (already canonical, see `proxy::path`), and the query string, if any.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub path: &'a [&'a str],
    pub query: Option<&'a str>,
}

impl Target<'_> {
    /// The absolute URI on `upstream`, written into one buffer that the URI then owns (no copy).
    fn uri(&self, upstream: &Upstream) -> Result<Uri, ProxyError> {
        const SCHEME: &str = "http://";
        let length = SCHEME.len()
            + upstream.authority.len()
            + upstream.base_path.len()
            + self.path.iter().map(|piece| piece.len()).sum::<usize>()
            + self.query.map_or(0, |query| query.len() + 1);
        let mut text = String::with_capacity(length);
        text.push_str(SCHEME);
        text.push_str(&upstream.authority);
        text.push_str(&upstream.base_path);
        for piece in self.path {
            text.push_str(piece);
        }
        if let Some(query) = self.query {
            text.push('?');
            text.push_str(query);
        }
        Uri::try_from(text).map_err(|_| ProxyError::BadPath("the path cannot be forwarded"))
    }
}

/// Copies bytes between the browser's and the upstream's upgraded connections until one side closes.
async fn join_upgraded(client: OnUpgrade, upstream: OnUpgrade) {
    let (client, upstream) = tokio::join!(client, upstream);
    let (Ok(client), Ok(upstream)) = (client, upstream) else {
        tracing::debug!("a WebSocket upgrade did not complete on both sides");
        return;
    };
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(%error, "WebSocket connection ended");
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
