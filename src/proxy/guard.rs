//! What every request forwarded to an upstream (an app or Backstage) must pass, after the access
//! decision: a WebSocket upgrade only on GET, proof that a state change or WebSocket handshake comes
//! from this origin (CSRF; a handshake is a GET but opens a two-way channel, hence cross-site WebSocket
//! hijacking), and the request body limit (a body announced too large is refused before anything is
//! forwarded; one without a length fails at the limit as it streams, which breaks the upstream exchange
//! and answers 413, never a shortened body).
//!
//! The guard takes what it needs as plain values ([`Guard`]), not the session or the request context.
//! The CSRF proof itself is the HTTP kit's (`http::csrf`), a pure function over the headers.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};

use super::ProxyError;
use crate::audit::{self, AuditEvent};
use crate::http::RequestContext;
use crate::http::csrf;

/// What [`guard`] checks a request against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Guard<'a> {
    /// The tenant, for the audit log.
    pub tenant: &'a str,
    /// The session's CSRF token, which a state change or WebSocket handshake must carry; `None` for a
    /// bearer token's request, which no browser sends on its own (no cookie rides along: one with a
    /// cookie is refused before, see `auth::extract`), so there is no forgery to prove against.
    pub csrf_token: Option<&'a str>,
    /// Whether the tenant's origin is HTTPS (which `Origin` counts as this origin).
    pub https: bool,
    /// `proxy.max_request_body`.
    pub max_body: u64,
}

impl<'a> Guard<'a> {
    /// The guard of a signed-in request to this tenant: its session's CSRF token, the tenant's
    /// scheme and body limit.
    pub(crate) fn of(context: &'a RequestContext, csrf_token: Option<&'a str>) -> Self {
        Guard {
            tenant: context.tenant.id.as_str(),
            csrf_token,
            https: context.is_https(),
            max_body: context.config.proxy.max_request_body,
        }
    }
}

/// Refuses what must not be forwarded, and wraps the body so it cannot grow past the limit.
pub(crate) fn guard(request: Request, guard: &Guard<'_>) -> Result<Request, ProxyError> {
    let websocket = asks_for_websocket(request.headers());
    if websocket && request.method() != Method::GET {
        return Err(ProxyError::UpgradeNotGet);
    }
    let needs_proof = !request.method().is_safe() || websocket;
    let forged = guard.csrf_token.is_some_and(|token| {
        needs_proof && !csrf::proves_same_origin(request.headers(), token, guard.https)
    });
    if forged {
        audit::emit(AuditEvent::CsrfRejected {
            tenant: guard.tenant,
            path: request.uri().path(),
        });
        return Err(ProxyError::CsrfRejected);
    }
    let max_body = guard.max_body;
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > max_body) {
        return Err(ProxyError::BodyTooLarge { limit: max_body });
    }
    Ok(request.map(|body| Body::new(LimitedBody::new(body, max_body))))
}

/// `Connection: upgrade` with `Upgrade: websocket`: the start of a WebSocket (only valid on a GET).
pub(crate) fn asks_for_websocket(headers: &HeaderMap) -> bool {
    // `Upgrade` first: almost no request has one, and then `Connection` need not be read.
    let websocket = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    websocket
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Whether a failed exchange failed because the client's body went over the limit.
pub(crate) fn over_body_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    exceeded(error).is_some()
}

/// The limit a failed exchange's body went over, if that is why it failed.
pub(super) fn exceeded(error: &(dyn std::error::Error + 'static)) -> Option<u64> {
    let mut source = Some(error);
    while let Some(cause) = source {
        if let Some(exceeded) = cause.downcast_ref::<BodyLimitExceeded>() {
            return Some(exceeded.limit);
        }
        source = cause.source();
    }
    None
}

/// A client's request body that fails with [`BodyLimitExceeded`] as soon as it has given more than
/// `limit` bytes. It fails rather than ends: an ended body would be sent upstream as complete.
pub(crate) struct LimitedBody<B> {
    inner: B,
    left: u64,
    limit: u64,
}

impl<B> LimitedBody<B> {
    pub(crate) fn new(inner: B, limit: u64) -> Self {
        LimitedBody {
            inner,
            left: limit,
            limit,
        }
    }
}

impl<B> http_body::Body for LimitedBody<B>
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
            Poll::Ready(Some(Ok(frame))) => {
                let size = frame.data_ref().map_or(0, |data| data.len() as u64);
                if size > this.left {
                    this.left = 0;
                    return Poll::Ready(Some(Err(Box::new(BodyLimitExceeded {
                        limit: this.limit,
                    }))));
                }
                this.left -= size;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The error of a request body cut off at `proxy.max_request_body`.
#[derive(Debug, thiserror::Error)]
#[error("the request body is larger than the limit of {limit} bytes")]
pub(crate) struct BodyLimitExceeded {
    pub limit: u64,
}
