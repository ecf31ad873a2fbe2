//! The forwarding kit: what both gateways (`/apps`, `/backstage`) use to hand a request to an upstream.
//!
//! `path` turns a raw path into its canonical spelling, `guard` refuses what must not be forwarded
//! (cross-site state changes, upgrades on other methods than GET, bodies over the limit), [`prepare`]
//! turns the client's request into the upstream's (header hygiene from [`headers`], forwarding facts,
//! identity, cookies, a WebSocket handshake's upgrade), and [`UpstreamClient`] sends it over the pooled
//! connections. It never forwards the session cookie or a client-sent identity header. This module
//! decides nothing about access (that is `rbac::decide`, called by each gateway before the guard) and
//! imports no feature: the gateways give it plain values (the user's claims, the portal's cookie names,
//! the CSRF token); the CSRF proof itself is the HTTP kit's (`http::csrf`), a pure function.
//! [`cache`] keeps the upstream answers that a shared cache may keep, for the gateway to consult after
//! its access decision.

pub(crate) mod cache;
pub(crate) mod client;
pub(crate) mod guard;
pub(crate) mod headers;
pub(crate) mod path;
pub(crate) mod pool;
pub(crate) mod tls;

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderValue, StatusCode, header};
use hyper::upgrade::OnUpgrade;

pub(crate) use client::{Target, UpstreamClient};
pub(crate) use guard::{Guard, guard, over_body_limit};
use headers::{Hop, Identity, SendCookies};

use crate::http::error::error_chain;
use crate::http::{Class, Problem};

/// Why a request could not be forwarded, or its upstream did not answer.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// 400: a path that could mean different things to portico and to the upstream.
    #[error("bad request path: {0}")]
    BadPath(&'static str),
    /// 400: a WebSocket upgrade on another method than GET (RFC 6455 §4.1), which an upstream might
    /// still switch protocols on after an access decision taken for that method.
    #[error("a WebSocket upgrade must be a GET request")]
    UpgradeNotGet,
    /// 403: a state change or WebSocket handshake that did not prove it came from this origin (the
    /// same answer as `auth`'s own CSRF refusal).
    #[error("this request did not come from the portal itself and was refused")]
    CsrfRejected,
    /// 413: the request body is larger than `proxy.max_request_body`.
    #[error("the request body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: u64 },
    /// 502: the upstream refused or did not accept the connection.
    #[error("the app is not reachable right now")]
    UpstreamUnreachable {
        upstream: String,
        #[source]
        cause: Cause,
    },
    /// 502: the upstream broke the exchange.
    #[error("the app failed to answer")]
    UpstreamFailed {
        upstream: String,
        #[source]
        cause: Cause,
    },
    /// 502: TLS with an https upstream failed (its certificate is not trusted or not for its name,
    /// or it refused portico's client certificate).
    #[error("the app's secure connection failed")]
    UpstreamTls {
        upstream: String,
        #[source]
        cause: Cause,
    },
    /// 504: no response headers within the response timeout.
    #[error("the app took too long to answer")]
    UpstreamTimeout { upstream: String, after: Duration },
}

/// What broke an exchange with an upstream, kept as the error itself (its chain goes to the log).
pub(crate) type Cause = Box<dyn std::error::Error + Send + Sync>;

impl Problem for ProxyError {
    fn classify(&self) -> Class {
        match self {
            ProxyError::BadPath(_) => Class::new(StatusCode::BAD_REQUEST, "bad_path"),
            ProxyError::UpgradeNotGet => Class::new(StatusCode::BAD_REQUEST, "bad_upgrade"),
            ProxyError::CsrfRejected => Class::new(StatusCode::FORBIDDEN, "csrf_rejected"),
            ProxyError::BodyTooLarge { .. } => {
                Class::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
            }
            ProxyError::UpstreamUnreachable { upstream, cause } => {
                Class::new(StatusCode::BAD_GATEWAY, "upstream_unreachable")
                    .detail(format!("{upstream}: {}", error_chain(&**cause)))
            }
            ProxyError::UpstreamFailed { upstream, cause } => {
                Class::new(StatusCode::BAD_GATEWAY, "upstream_failed")
                    .detail(format!("{upstream}: {}", error_chain(&**cause)))
            }
            ProxyError::UpstreamTls { upstream, cause } => {
                Class::new(StatusCode::BAD_GATEWAY, "upstream_tls")
                    .detail(format!("{upstream}: TLS failed: {}", error_chain(&**cause)))
            }
            ProxyError::UpstreamTimeout { upstream, after } => {
                Class::new(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout")
                    .detail(format!("{upstream}: no response within {after:?}"))
            }
        }
    }
}

impl ProxyError {
    /// What kind of upstream failure this is, for the `portico_upstream_errors_total{kind}` metric:
    /// `connect`, `timeout`, `reset`, `tls` or `other`; `None` for a request refused before it was sent.
    /// Read from the cause chain, so a new cause (a TLS handshake error) is classified here only.
    pub(crate) fn kind(&self) -> Option<&'static str> {
        match self {
            ProxyError::BadPath(_)
            | ProxyError::UpgradeNotGet
            | ProxyError::CsrfRejected
            | ProxyError::BodyTooLarge { .. } => None,
            ProxyError::UpstreamTimeout { .. } => Some("timeout"),
            ProxyError::UpstreamTls { .. } => Some("tls"),
            // A connect timeout is still a connect failure: the upstream was never reached.
            ProxyError::UpstreamUnreachable { cause, .. } => Some(match cause_kind(&**cause) {
                Some("tls") => "tls",
                _ => "connect",
            }),
            ProxyError::UpstreamFailed { cause, .. } => {
                Some(cause_kind(&**cause).unwrap_or("other"))
            }
        }
    }
}

/// What an exchange's result tells the access line: the upstream's status, or why there was none.
pub(crate) fn outcome(
    result: &Result<axum::http::Response<Body>, ProxyError>,
) -> (Option<u16>, Option<&'static str>) {
    match result {
        Ok(response) => (Some(response.status().as_u16()), None),
        Err(error) => (None, error.kind()),
    }
}

/// The kind of the first cause in the chain that says what it was.
fn cause_kind(error: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<rustls::Error>() {
            return Some("tls");
        }
        if let Some(hyper) = error.downcast_ref::<hyper::Error>() {
            if hyper.is_timeout() {
                return Some("timeout");
            }
            if hyper.is_incomplete_message() || hyper.is_canceled() {
                return Some("reset");
            }
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            match io.kind() {
                ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
                | ErrorKind::UnexpectedEof => return Some("reset"),
                ErrorKind::TimedOut => return Some("timeout"),
                ErrorKind::ConnectionRefused => return Some("connect"),
                // rustls reports handshake failures as InvalidData wrapping its own error.
                ErrorKind::InvalidData
                    if io
                        .get_ref()
                        .is_some_and(|inner| inner.is::<rustls::Error>()) =>
                {
                    return Some("tls");
                }
                _ => {}
            }
        }
        next = error.source();
    }
    None
}

impl From<path::BadPath> for ProxyError {
    fn from(bad: path::BadPath) -> Self {
        ProxyError::BadPath(bad.0)
    }
}

/// What [`prepare`] puts on a request beyond the cleaning every request gets.
pub(crate) struct Forward<'a> {
    /// Who sent it, and what the upstream is told the user reached.
    pub hop: Hop<'a>,
    /// Who the user is, in the forms the upstream asked for; `None` sends nothing about the user.
    pub identity: Option<&'a Identity<'a>>,
    /// Which `Cookie` the upstream gets.
    pub cookies: SendCookies<'a>,
    /// Whether a WebSocket handshake is handed on; otherwise its `Upgrade` goes like any hop-by-hop
    /// header. (The guard has refused an upgrade on any other method than GET.)
    pub websocket: bool,
}

/// A client's request made ready for an upstream.
pub(crate) struct Prepared {
    pub parts: Parts,
    pub body: Body,
    /// The browser's side of a WebSocket upgrade, to be joined with the upstream's.
    pub upgrade: Option<OnUpgrade>,
}

/// Turns a client's request into the upstream's: headers cleaned and set (see [`headers`]), no
/// extensions of portico's own, and for a WebSocket handshake the browser's side of the upgrade taken
/// and its `Connection`/`Upgrade` put back. The URI is the client's still; the client sets the
/// upstream's when it sends.
pub(crate) fn prepare(mut request: Request, forward: Forward<'_>) -> Prepared {
    let websocket =
        (forward.websocket && guard::asks_for_websocket(request.headers())).then(|| {
            let upgrade = request.headers().get(header::UPGRADE).cloned();
            (upgrade, hyper::upgrade::on(&mut request))
        });
    let (mut parts, body) = request.into_parts();
    headers::prepare_request_headers(
        &mut parts.headers,
        &forward.hop,
        forward.identity,
        forward.cookies,
    );
    parts.extensions = Extensions::default();
    let upgrade = websocket.map(|(upgrade, on_upgrade)| {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        if let Some(upgrade) = upgrade {
            parts.headers.insert(header::UPGRADE, upgrade);
        }
        on_upgrade
    });
    Prepared {
        parts,
        body,
        upgrade,
    }
}
