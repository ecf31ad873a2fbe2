//! The forwarding facts an upstream is told: the client's address (`X-Forwarded-For`) and the origin
//! the user reached (`X-Forwarded-Host`/`-Proto`), decided by portico from the tenant, never taken from
//! the client's `Host` or its own `X-Forwarded-*` (those were removed before, see `untrusted`).

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::http::RequestContext;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What an upstream is told the user reached (`X-Forwarded-Proto`, `-Host`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ForwardedOrigin<'a> {
    pub https: bool,
    /// `name` or `name:port`.
    pub host: Cow<'a, str>,
}

impl<'a> ForwardedOrigin<'a> {
    /// From an origin such as `https://portal.example`; anything but `https://` counts as plain HTTP.
    pub(crate) fn of(origin: &'a str) -> Self {
        let (scheme, host) = origin.split_once("://").unwrap_or(("http", origin));
        ForwardedOrigin {
            https: scheme == "https",
            host: Cow::Borrowed(host),
        }
    }
}

/// The hop a request takes through portico: who sent it and what the upstream is told it reached.
#[derive(Debug, Clone)]
pub(crate) struct Hop<'a> {
    pub client_ip: IpAddr,
    pub origin: Option<ForwardedOrigin<'a>>,
    /// Portico's id of the request, sent as `X-Request-Id` in place of any the client sent.
    pub request_id: Option<HeaderValue>,
}

impl<'a> Hop<'a> {
    /// The hop of a request from `peer` in `context`, on the tenant listener bound to `listen`.
    pub(crate) fn of(peer: SocketAddr, context: &'a RequestContext, listen: SocketAddr) -> Self {
        Hop {
            client_ip: peer.ip(),
            origin: forwarded_origin(context, listen),
            request_id: None,
        }
    }

    /// The same hop for a request a trusted proxy forwarded: `client` is the address it named.
    pub(crate) fn behind_proxy(mut self, client: Option<IpAddr>) -> Self {
        if let Some(client) = client {
            self.client_ip = client;
        }
        self
    }

    /// The same hop, carrying the request's id upstream.
    pub(crate) fn with_request_id(mut self, id: Option<&HeaderValue>) -> Self {
        self.request_id = id.cloned();
        self
    }
}

/// The origin upstreams are told the user reached (`X-Forwarded-Host`/`-Proto`): the tenant's public
/// origin when it has one; else the name the client used when the tenant lists it (with its port, so a
/// demo on `127.0.0.1:<port>` gets working absolute links); else the tenant's first host, or for a
/// tenant without hosts (reached through `default_tenant`) the listener's own address when it names
/// one. Never a Host the tenant does not list, which is whatever the client chose. Borrowed from the
/// request's context: nothing is built per request but for the hostless fallback.
pub(crate) fn forwarded_origin(
    context: &RequestContext,
    listen: SocketAddr,
) -> Option<ForwardedOrigin<'_>> {
    let tenant = &context.tenant;
    if tenant.public_origin.is_none() {
        if let Some(authority) = &context.listed_authority {
            return Some(ForwardedOrigin {
                https: false,
                host: Cow::Borrowed(authority),
            });
        }
    }
    match &tenant.origin {
        Some(origin) => Some(ForwardedOrigin::of(origin)),
        None if !listen.ip().is_unspecified() => Some(ForwardedOrigin {
            https: false,
            host: Cow::Owned(listen.to_string()),
        }),
        None => None,
    }
}

/// Sets `X-Forwarded-For`, `-Proto` and `-Host` from `hop`.
pub(crate) fn insert_forwarded(headers: &mut HeaderMap, hop: &Hop<'_>) {
    headers.insert(X_FORWARDED_FOR, ip_value(hop.client_ip));
    // The client's own id is never passed on as portico's (the access layer already chose: portico's
    // own, or a trusted proxy's), so the upstream's logs and portico's name the same request.
    match &hop.request_id {
        Some(id) => {
            headers.insert(X_REQUEST_ID, id.clone());
        }
        None => {
            headers.remove(X_REQUEST_ID);
        }
    }
    let https = hop.origin.as_ref().is_some_and(|origin| origin.https);
    headers.insert(
        X_FORWARDED_PROTO,
        HeaderValue::from_static(if https { "https" } else { "http" }),
    );
    if let Some(host) = hop
        .origin
        .as_ref()
        .and_then(|origin| HeaderValue::from_str(&origin.host).ok())
    {
        headers.insert(X_FORWARDED_HOST, host);
    }
}

/// An address as a header value; the text is built once and the header value takes it without a copy.
fn ip_value(ip: IpAddr) -> HeaderValue {
    let mut text = String::with_capacity(15);
    crate::http::push_ip(&mut text, ip);
    HeaderValue::from_maybe_shared(bytes::Bytes::from(text))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}
