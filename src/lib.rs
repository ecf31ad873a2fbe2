//! portico: the front door of an internal developer portal.
//!
//! It hosts the SAP Luigi shell, builds each user's navigation on the server from the roles their IdP
//! groups map to, and reverse-proxies micro-apps under one authenticated origin, per tenant.
//! Start at `ARCHITECTURE.md` for the map; the modules below are listed in request order.

/// Health and readiness on the admin listener.
pub mod admin;
/// Building, binding and running the server; the router and its layer order.
pub mod app;
/// `/apps/<id>/…`: role-checked gateway to the micro-apps (upstreams and static bundles).
mod apps;
/// The signed identity assertion for upstreams and its JWKS.
mod assertion;
/// Files compiled into the binary.
mod assets;
/// Security events on the `audit` log target.
mod audit;
/// Sign-in, sessions, CSRF, sign-out.
pub mod auth;
/// `/backstage/api/…`: the tenant's Backstage backend, called as the user or as a service.
pub mod backstage;
/// Seconds since the Unix epoch, the one clock.
mod clock;
/// Config loading and validation with positioned diagnostics; the only module that knows YAML.
pub mod config;
/// `portico check --diff-against`: who gains and who loses which app, page or rule in a config change.
pub mod config_diff;
/// `portico doctor`: every app view a user can open, probed through the real proxy, with findings.
pub mod doctor;
/// Why a user sees what they see: every app and page, and the rule that decides a path.
pub mod explain;
/// The HTTP kit: errors → responses (HTML for browsers, JSON for API calls) and the request context.
mod http;
/// The languages portico speaks: which one a request gets, and portico's own texts in it.
mod i18n;
/// Server-side cookie jars per session and app: app cookies that never reach the browser.
mod jar;
/// `portico preview`: what a user with given groups sees, printed or served on loopback with a banner.
pub mod preview;
/// The forwarding kit both gateways use: path canonicalisation, guard, header hygiene, pooled client.
mod proxy;
/// Roles from groups and the one access decision.
pub mod rbac;
/// Config reload without restart: SIGHUP, file watch, `POST /reload`; last-known-good; status.
pub mod reload;
/// What instances share when sessions live in Redis: the connection, sealing, health, invalidation.
pub mod shared;
/// The Luigi shell page, per-user config and embedded Luigi files.
mod shell;
/// Shared state: one pointer to the services every request uses.
mod state;
/// Logging setup, request ids, access log.
pub mod telemetry;
/// Host header → tenant, before anything else runs.
mod tenant;
/// The tenant listener's certificates: SNI, reload, expiry.
mod tls;
/// Random tokens and the one hex encoder.
mod token;

/// Portico's own upstream pool, for `examples/bare_proxy.rs`: the hyper floor in `bench/run.sh` must
/// forward through the same client as portico, or it measures a different stack. Not an API.
#[doc(hidden)]
pub mod floor {
    pub use crate::proxy::pool::{PlainPool, SendError};
}

/// Internals the fuzz targets in `fuzz/` call directly; not an API, may change at any time.
#[doc(hidden)]
pub mod fuzzing {
    use axum::http::HeaderMap;

    pub use crate::proxy::headers::{rewrite_location, scope_set_cookies};
    pub use crate::proxy::path::{AppPath, normalise};

    /// `Cookie` without portico's own cookies, as `/apps` sends it.
    pub fn strip_session_cookie(headers: &mut HeaderMap) {
        crate::proxy::headers::strip_portal_cookies(headers, &crate::apps::PORTAL_COOKIES);
    }

    /// `Set-Cookie`s without portico's own cookies, as `/apps` passes them on.
    pub fn remove_session_cookie_overrides(headers: &mut HeaderMap) {
        crate::proxy::headers::remove_portal_set_cookies(headers, &crate::apps::PORTAL_COOKIES);
    }
}
