//! The access layer (outermost on the tenant router): the request id, the client address, and one
//! `access` line plus the request's metrics when the response *body* ends.
//!
//! The line is written when the body ends, not when headers are sent, so it can say how many bytes
//! went out and whether the body completed: a response cut short (the client went away, the upstream
//! reset mid-body) is logged as such (`completed=false`, `end=client_gone|error`; `end` is left out of
//! a complete one). A response whose
//! body is already known to be empty is logged at once, without wrapping (the cheap path).
//!
//! The client address is the connection's peer, or, when the peer is one of `server.trusted_proxies`,
//! the last address in `X-Forwarded-For` that is not itself a trusted proxy. A client-sent
//! `X-Request-Id` is used only from a trusted proxy; anyone else gets a fresh id. This module never
//! logs a query string (only whether there was one), a cookie, a token or a session id.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};

use super::access_line::AccessFields;
use super::metrics::{self, Metrics, RequestRecord};
use super::otlp::{self, SpanSink};
use super::{ForwardedClient, Labels, RequestId, Taken, X_REQUEST_ID};
use crate::config::Cidr;
use crate::http::watched::{Ending, Watch, WatchedBody};

/// What the access layer needs: the metrics and the trusted proxies (read at start, like listeners).
#[derive(Clone)]
pub struct Access(Arc<AccessInner>);

struct AccessInner {
    metrics: Arc<Metrics>,
    trusted: Vec<Cidr>,
    /// Where request spans go, when trace export is on.
    spans: Option<SpanSink>,
}

impl Access {
    pub fn new(metrics: Arc<Metrics>, trusted_proxies: Vec<Cidr>, spans: Option<SpanSink>) -> Self {
        Access(Arc::new(AccessInner {
            metrics,
            trusted: trusted_proxies,
            spans,
        }))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.trusted.iter().any(|cidr| cidr.contains(ip))
    }

    /// The client: the peer, or behind a trusted proxy the nearest untrusted `X-Forwarded-For` entry.
    fn client(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?.ip();
        if self.0.trusted.is_empty() || !self.trusts(peer) {
            return Some(peer);
        }
        let mut client = peer;
        // Right to left: each trusted hop vouches for the one before it; the first untrusted entry is
        // the client. Anything unreadable stops the walk at the last address we could trust.
        let values = headers.get_all("x-forwarded-for").iter().rev();
        for value in values {
            let Ok(text) = value.to_str() else {
                return Some(client);
            };
            for entry in text.rsplit(',') {
                let Ok(ip) = entry.trim().parse::<IpAddr>() else {
                    return Some(client);
                };
                client = ip;
                if !self.trusts(ip) {
                    return Some(client);
                }
            }
        }
        Some(client)
    }

    /// A trusted proxy's `X-Request-Id` if it is a sane token, else a fresh id.
    fn request_id(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> HeaderValue {
        let from_proxy = peer
            .filter(|peer| !self.0.trusted.is_empty() && self.trusts(peer.ip()))
            .and_then(|_| headers.get(X_REQUEST_ID))
            .filter(|value| is_request_id(value.as_bytes()));
        match from_proxy {
            Some(value) => value.clone(),
            None => super::new_request_id(),
        }
    }
}

/// 1 to 128 characters of letters, digits and `-._:`: enough for UUIDs and trace ids, nothing that
/// could break a log line or a header.
fn is_request_id(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.len() <= 128
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'))
}

/// Middleware form of [`Access::begin`] and [`Started::finish`], for routers other than the tenant
/// origin's (the redirect listener); the tenant origin calls them from its one pass (`app::router`).
pub async fn access_log(
    State(access): State<Access>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = access.begin(&mut request);
    let response = access.scope(next.run(request)).await;
    started.finish(response)
}

impl Access {
    /// The start of a request: assigns its id, notes the client, and counts its body as it is read.
    /// [`Started::finish`] takes the response.
    pub fn begin(&self, request: &mut Request) -> Started {
        let started = Instant::now();
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| *peer);
        let client = self.client(peer, request.headers());
        let request_id = RequestId(self.request_id(peer, request.headers()));
        let trace = self.0.spans.is_some().then(|| {
            let trusted = peer
                .filter(|peer| self.trusts(peer.ip()))
                .map(|_| request.headers());
            let (trace_id, span_id, parent) = otlp::ids(trusted);
            Box::new(TraceStart {
                trace_id,
                span_id,
                parent,
                start: SystemTime::now(),
            })
        });
        let labels = Labels::default();
        let extensions = request.extensions_mut();
        extensions.insert(request_id.clone());
        extensions.insert(labels.clone());
        if let Some(client) = client.filter(|client| peer.is_some_and(|peer| peer.ip() != *client))
        {
            extensions.insert(ForwardedClient(client));
        }
        // A request without a body (most GETs) is not wrapped: nothing to count.
        if !http_body::Body::is_end_stream(request.body()) {
            let counted = labels.clone();
            let body = std::mem::take(request.body_mut());
            *request.body_mut() = Body::new(CountIn {
                inner: body,
                labels: counted,
            });
        }
        Started {
            access: self.clone(),
            started,
            request_id,
            method: request.method().clone(),
            uri: request.uri().clone(),
            client,
            labels,
            trace,
        }
    }

    /// Runs `handling` with this server's metrics in scope, so audit events inside it are counted.
    pub fn scope<F: Future>(&self, handling: F) -> impl Future<Output = F::Output> {
        metrics::scope(self.0.metrics.clone(), handling)
    }
}

/// A request the access layer has seen, waiting for its response.
pub struct Started {
    access: Access,
    started: Instant,
    request_id: RequestId,
    method: Method,
    uri: Uri,
    client: Option<IpAddr>,
    labels: Labels,
    trace: Option<Box<TraceStart>>,
}

impl Started {
    /// The request's id, as the response and the log line carry it.
    pub fn request_id(&self) -> &RequestId {
        &self.request_id
    }

    /// The request's target as it arrived.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Sets `X-Request-Id` on the response, and writes the access line and the metrics when its body
    /// ends (at once when it is known to be empty).
    pub fn finish(self, mut response: Response) -> Response {
        response
            .headers_mut()
            .insert(X_REQUEST_ID, self.request_id.0.clone());
        let pending = Pending {
            access: self.access,
            started: self.started,
            headers_after: self.started.elapsed(),
            request_id: self.request_id,
            method: self.method,
            uri: self.uri,
            client: self.client,
            status: response.status().as_u16(),
            labels: self.labels,
            trace: self.trace,
        };
        if http_body::Body::is_end_stream(response.body()) {
            pending.finish(0, Ending::Complete);
            return response;
        }
        response.map(|body| Body::new(WatchedBody::new(body, CountOut { bytes: 0, pending })))
    }
}

/// How a response body ended, as the access line says it (`end=`).
fn end_name(end: Ending) -> &'static str {
    match end {
        Ending::Complete => "complete",
        Ending::Dropped => "client_gone",
        Ending::Error => "error",
    }
}

/// A request's span, when trace export is on (boxed: the common case carries one pointer).
struct TraceStart {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent: Option<[u8; 8]>,
    start: SystemTime,
}

/// Everything the access line needs once the body ends.
struct Pending {
    access: Access,
    started: Instant,
    headers_after: Duration,
    request_id: RequestId,
    method: Method,
    uri: Uri,
    client: Option<IpAddr>,
    status: u16,
    labels: Labels,
    trace: Option<Box<TraceStart>>,
}

impl Pending {
    fn finish(self, bytes_out: u64, end: Ending) {
        let Taken {
            tenant,
            user,
            app,
            upstream,
            bytes_in,
        } = self.labels.take();
        let metrics = &self.access.0.metrics;
        metrics.request(&RequestRecord {
            tenant: tenant.as_ref(),
            app: app.as_ref(),
            method: &self.method,
            status: self.status,
            elapsed: self.headers_after,
            upstream: upstream.map(|call| call.elapsed),
            upstream_error: upstream.and_then(|call| call.error),
            cut_short: end != Ending::Complete,
        });
        if end == Ending::Error && upstream.is_some() {
            metrics.upstream_body_error(tenant.as_ref(), app.as_ref());
        }
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let trace_id = self
            .trace
            .as_ref()
            .map(|trace| crate::token::hex(&trace.trace_id));
        AccessFields {
            request_id: self.request_id.as_str(),
            client: self.client,
            method: &self.method,
            path: self.uri.path(),
            query: self.uri.query().is_some(),
            status: self.status,
            latency_us: micros(self.headers_after),
            duration_us: micros(self.started.elapsed()),
            bytes_in,
            bytes_out,
            completed: end == Ending::Complete,
            // Only when cut short.
            end: (end != Ending::Complete).then(|| end_name(end)),
            upstream_status: upstream.and_then(|call| call.status),
            upstream_us: upstream.map(|call| micros(call.elapsed)),
            tenant: tenant.as_ref().map_or("-", |t| t.as_str()),
            user: user.as_deref().unwrap_or("-"),
            app: app.as_ref().map_or("-", |a| a.as_str()),
            trace_id: trace_id.as_deref(),
        }
        .emit();
        if let (Some(trace), Some(sink)) = (self.trace, &self.access.0.spans) {
            sink.send(otlp::Span {
                trace_id: trace.trace_id,
                span_id: trace.span_id,
                parent_span_id: trace.parent,
                start: trace.start,
                duration: self.started.elapsed(),
                method: self.method,
                path: self.uri,
                status: self.status,
                tenant: tenant.map(|t| t.as_str().to_owned()),
                app: app.map(|a| a.as_str().to_owned()),
                request_id: self.request_id.as_str().to_owned(),
                upstream_status: upstream.and_then(|call| call.status),
                completed: end == Ending::Complete,
            });
        }
    }
}

/// The request body, counted into the request's [`Labels`] as it is read.
struct CountIn {
    inner: Body,
    labels: Labels,
}

impl http_body::Body for CountIn {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.labels.add_bytes_in(data.len());
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The response body's watcher: counts the bytes that go out; the body's end (or its drop) writes
/// the access line.
struct CountOut {
    bytes: u64,
    pending: Pending,
}

impl Watch for CountOut {
    fn data(&mut self, chunk: &Bytes) -> bool {
        self.bytes += chunk.len() as u64;
        true
    }

    fn end(self, end: Ending) {
        self.pending.finish(self.bytes, end);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn access(trusted: &[&str]) -> Access {
        Access::new(
            Arc::new(Metrics::new(|| None)),
            trusted.iter().map(|t| t.parse().unwrap()).collect(),
            None,
        )
    }

    fn xff(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().unwrap());
        headers.insert(X_REQUEST_ID, "abc-123".parse().unwrap());
        headers
    }

    #[test]
    fn the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy() {
        let peer: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let headers = xff("203.0.113.9, 10.0.0.7");
        let nobody = access(&[]);
        assert_eq!(nobody.client(Some(peer), &headers), Some(peer.ip()));
        assert_ne!(nobody.request_id(Some(peer), &headers), "abc-123");

        let proxies = access(&["10.0.0.0/8"]);
        assert_eq!(
            proxies.client(Some(peer), &headers),
            Some("203.0.113.9".parse().unwrap()),
            "the trusted hops are skipped, right to left"
        );
        assert_eq!(proxies.request_id(Some(peer), &headers), "abc-123");
        let spoofed = xff("1.2.3.4, 198.51.100.1, 10.0.0.7");
        assert_eq!(
            proxies.client(Some(peer), &spoofed),
            Some("198.51.100.1".parse().unwrap()),
            "what the client itself wrote in front is not believed"
        );
        let other: SocketAddr = "192.0.2.1:1".parse().unwrap();
        assert_eq!(proxies.client(Some(other), &headers), Some(other.ip()));
        assert_ne!(proxies.request_id(Some(other), &headers), "abc-123");
        let mut bad = xff("10.0.0.1");
        bad.insert(X_REQUEST_ID, "a b\"c".parse().unwrap());
        assert_ne!(proxies.request_id(Some(peer), &bad), "a b\"c");
    }
}
