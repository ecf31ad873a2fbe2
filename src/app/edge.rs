//! The edge of HTTPS: the plain listener that only redirects to https (`server.redirect_listen`), and
//! `Strict-Transport-Security` on the responses of tenants whose public origin is https.
//!
//! The redirect answers a host a tenant lists with 301 (GET, HEAD) or 308 (other methods, which keep
//! their body) to the same path on https, and anything else with 404 (or 400 without a Host): it never
//! proxies, never runs a route and never sets a cookie, so nothing of a session travels in the clear.
//! HSTS: the tenant origin's one pass (`app::router`) adds the configured value to every answer of an
//! https tenant, errors included (`http::error` keeps it when it renders one). Browsers ignore the
//! header over plain HTTP, so it is also right behind a TLS-terminating load balancer.

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::config::Config;
use crate::http::RequestContext;
use crate::tenant;

/// What the redirect listener knows: the config (which hosts are listed) and the https port.
#[derive(Clone)]
struct Redirects {
    config: Arc<ArcSwap<Config>>,
    https_port: u16,
}

/// The redirect listener's whole router.
pub(super) fn redirect_router(
    config: Arc<ArcSwap<Config>>,
    https_port: u16,
    access: crate::telemetry::Access,
) -> Router {
    Router::new()
        .fallback(redirect)
        .with_state(Redirects { config, https_port })
        .layer(axum::middleware::from_fn_with_state(
            access,
            crate::telemetry::access_log,
        ))
}

async fn redirect(State(redirects): State<Redirects>, request: Request) -> Response {
    let Some(host) = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
    else {
        return (StatusCode::BAD_REQUEST, "a Host header is required\n").into_response();
    };
    let config = redirects.config.load();
    let Some(tenant) = config.tenants.iter().find(|t| tenant::lists_host(t, host)) else {
        return (
            StatusCode::NOT_FOUND,
            "no portal is configured for this host\n",
        )
            .into_response();
    };
    let name = name_of(host).to_ascii_lowercase();
    // The tenant's own https origin when it is this name (it knows the public port), else this
    // server's TLS port.
    let origin = tenant
        .public_origin
        .as_ref()
        .filter(|origin| origin.https && name_of(origin_authority(&origin.origin)) == name)
        .map(|origin| origin.origin.clone())
        .unwrap_or_else(|| match redirects.https_port {
            443 => format!("https://{name}"),
            port => format!("https://{name}:{port}"),
        });
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str());
    let Ok(location) = HeaderValue::from_str(&format!("{origin}{path}")) else {
        return (StatusCode::BAD_REQUEST, "bad request target\n").into_response();
    };
    let status = if matches!(*request.method(), Method::GET | Method::HEAD) {
        StatusCode::MOVED_PERMANENTLY
    } else {
        StatusCode::PERMANENT_REDIRECT
    };
    (status, [(header::LOCATION, location)]).into_response()
}

/// `name` of `name:port` (an IPv6 literal keeps its brackets).
fn name_of(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

fn origin_authority(origin: &str) -> &str {
    origin.split_once("://").map_or(origin, |(_, rest)| rest)
}

/// The `Strict-Transport-Security` value for the answer to `request`: the configured one when its
/// tenant's public origin is https (read after tenant resolution), none otherwise.
pub(super) fn hsts_for(context: &RequestContext) -> Option<HeaderValue> {
    context
        .is_https()
        .then(|| context.config.server.hsts.clone())
        .flatten()
}

/// Adds the tenant's `Strict-Transport-Security` (from [`hsts_for`]) to an answer, errors included.
pub(super) fn add_hsts(value: Option<HeaderValue>, response: &mut Response) {
    if let Some(value) = value {
        response
            .headers_mut()
            .insert(header::STRICT_TRANSPORT_SECURITY, value);
    }
}

#[cfg(test)]
mod tests {
    use super::{name_of, origin_authority};

    #[test]
    fn names_lose_their_port_but_ipv6_literals_keep_their_brackets() {
        assert_eq!(name_of("portal.acme.test:8080"), "portal.acme.test");
        assert_eq!(name_of("portal.acme.test"), "portal.acme.test");
        assert_eq!(name_of("[::1]:8080"), "[::1]");
        assert_eq!(
            origin_authority("https://portal.acme.test:8443"),
            "portal.acme.test:8443"
        );
    }
}
