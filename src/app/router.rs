//! The tenant origin's router: every route prefix and the layer order, in one place.
//!
//! Each feature keeps its own handlers and route table; this file decides which features answer on a
//! tenant origin and which layers every request passes through, so the order is read here and nowhere
//! else. It must not hold handlers, and must not add a route prefix that `config::RESERVED_SEGMENTS`
//! does not list: config refuses app ids and node paths that a portico route would shadow, and the
//! shell answers only what no other route claims.

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};

use crate::state::AppState;
use crate::{apps, assertion, auth, backstage, http, shell, telemetry, tenant};

/// The tenant-origin router with all its layers.
///
/// Routes (the first path segment of each is in `config::RESERVED_SEGMENTS`):
///
/// | prefix | feature | what |
/// |---|---|---|
/// | `/auth/…` | `auth` | sign-in (OIDC or dev), callback, sign-out, back-channel logout, session probe |
/// | `/apps/<id>/…` | `apps` (on the `proxy` kit) | role-checked reverse proxy and static bundles of one app |
/// | `/.well-known/jwks.json` | `assertion` | the keys that verify identity assertions (its own state) |
/// | `/backstage/api/…` | `backstage` | the tenant's Backstage backend, called as the user |
/// | `/shell/…` | `shell` | the per-user Luigi config, theme, bootstrap and embedded Luigi files |
/// | anything else | `shell` | the shell page (Luigi path routing; `/home/…` is its navigation root) |
///
/// Layers, outermost first:
///
/// 1. `telemetry::access_log`: the request id and the client address, then one access line and the
///    request's metrics when the response body ends, so every answer below, errors and unknown hosts
///    included, is logged and counted with its id.
/// 2. `http::error::render_errors`: turns an error left by anything below into an HTML page for a
///    browser navigation, JSON for an API call, or a sign-in redirect; marks JSON `nosniff`. It sits
///    outside tenant resolution so that an unknown Host is rendered like any other error.
/// 3. `tenant::resolve_tenant`: Host → tenant and one config snapshot per request, before any route
///    runs, so no handler can run without a tenant or see two configs.
/// 4. `app::edge::HstsLayer`: `Strict-Transport-Security` on every answer of an https tenant
///    (`server.hsts`); error pages keep it when layer 2 renders them.
///
/// The layers wrap the routed service once, from outside, rather than through `Router::layer`, which
/// would wrap every route in each layer and box it: then every request cloned a chain of boxed
/// services per layer (24 boxed clones per proxied request). Outside, each layer's clone is a cheap
/// copy of its state and of the inner `Router` (one `Arc`); the outer router only holds that stack as
/// its fallback, so `App` and the tests still get a `Router`.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(auth::router())
        .merge(apps::router())
        .merge(assertion::router(state.signing_keys.clone()))
        .merge(backstage::router())
        .merge(shell::router())
        .with_state(state.clone());
    let layered = tower::ServiceBuilder::new()
        .layer(from_fn_with_state(
            state.access.clone(),
            telemetry::access_log,
        ))
        .layer(from_fn(http::error::render_errors))
        .layer(from_fn_with_state(
            state.config.clone(),
            tenant::resolve_tenant,
        ))
        .layer(super::edge::HstsLayer)
        .service(routes);
    Router::new().fallback_service(layered)
}
