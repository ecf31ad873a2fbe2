//! The per-request context: the config snapshot and the tenant of one request.
//!
//! `tenant::context` loads the snapshot once; the tenant origin's one pass hands the [`RequestContext`]
//! to `apps::serve` or puts it into the request extensions, so a reload never splits a request across
//! configs. Handlers take it as an extractor; if
//! the order were ever wrong, the request fails with a 500 instead of running without a tenant.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::config::{Config, Tenant};
use crate::http::error::AppError;

/// The config snapshot and tenant of one request (`tenant::context`).
#[derive(Clone)]
pub struct RequestContext {
    pub config: Arc<Config>,
    pub tenant: Arc<Tenant>,
    /// Every name the request gave (Host, `:authority`) is one of the tenant's own hosts; false when the
    /// tenant answers only as `default_tenant`.
    pub host_listed: bool,
    /// The Host (or `:authority`) as the client gave it, port included, when `host_listed` and its port
    /// is a number: the tenant chose to answer that name, so upstreams may be told it when the tenant
    /// has no `public_origin` (a demo on `127.0.0.1:<any port>`).
    pub listed_authority: Option<String>,
}

impl RequestContext {
    /// Whether the tenant's own origin is HTTPS (its `public_origin`), which decides cookie prefixes and
    /// the origin that state-changing requests must come from.
    pub fn is_https(&self) -> bool {
        self.tenant
            .public_origin
            .as_ref()
            .is_some_and(|origin| origin.https)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .ok_or_else(|| AppError::internal("request context missing: tenant layer not run"))
    }
}
