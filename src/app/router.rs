//! The tenant origin's router: every route prefix and the layer order, in one place.
//!
//! Each feature keeps its own handlers and route table; this file decides which features answer on a
//! tenant origin and which layers every request passes through, so the order is read here and nowhere
//! else. It must not hold handlers, and must not add a route prefix that `config::RESERVED_SEGMENTS`
//! does not list: config refuses app ids and node paths that a portico route would shadow, and the
//! shell answers only what no other route claims.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tower::{Service, ServiceExt};

use crate::http::AppError;
use crate::state::AppState;
use crate::{apps, assertion, auth, backstage, http, shell, tenant};

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
/// Every request passes, in one pass (`Portal`, in this order):
///
/// 1. `telemetry::Access::begin`: the request id and the client address; `Started::finish` at the
///    end writes one access line and the request's metrics when the response body ends, so every
///    answer below, errors and unknown hosts included, is logged and counted with its id.
/// 2. `tenant::context`: Host → tenant and one config snapshot per request, before any route runs, so
///    no handler can run without a tenant or see two configs (given to `apps::serve` as an argument,
///    to every other route in the request's extensions).
/// 3. The answer: `/apps/<id>/…` straight from `apps::serve` (the hot path: no router, no extractor
///    machinery), anything else from the routed features above.
/// 4. `app::edge::add_hsts`: `Strict-Transport-Security` on every answer of an https tenant
///    (`server.hsts`); error pages keep it when step 5 renders them.
/// 5. `http::error::render`: turns an error left by anything above into an HTML page for a browser
///    navigation, JSON for an API call, or a sign-in redirect; marks JSON `nosniff`. An unknown Host
///    is rendered like any other error.
///
/// One hand-written service rather than a stack of `from_fn` layers around the router: each layer
/// boxed its future and cloned the boxed service below it, and routing `/apps/*` through axum cost
/// the path match, its parameters and the extractors' futures; together about a tenth of a proxied
/// request's instructions (bench/README.md). The tenant listener serves the pass itself
/// (`portal`); this `Router` holds it as its fallback for callers that want a `Router` (tests).
pub fn router(state: AppState) -> Router {
    Router::new().fallback_service(portal(state))
}

/// The one pass alone, as the tenant listener serves it (without a `Router` around it, which would
/// cost a route lookup and a boxed clone per request).
pub(super) fn portal(state: AppState) -> Portal {
    let routes = Router::new()
        .merge(auth::router())
        .merge(auth::personal::router())
        .merge(apps::router())
        .merge(assertion::router(state.signing_keys.clone()))
        .merge(backstage::router())
        .merge(shell::router())
        .with_state(state.clone());
    Portal { state, routes }
}

/// The tenant origin's one pass (see [`router`]).
#[derive(Clone)]
pub(super) struct Portal {
    state: AppState,
    routes: Router,
}

impl Service<Request> for Portal {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let state = self.state.clone();
        let routes = self.routes.clone();
        Box::pin(async move {
            let started = state.access.begin(&mut request);
            let target = http::error::ErrorTarget::of(&request);
            let answer = state.access.scope(answer(&state, routes, request)).await;
            let response = http::error::render(target, started.uri(), started.request_id(), answer);
            Ok(started.finish(response))
        })
    }
}

/// Steps 2 to 4 of the pass: the tenant, the answer, HSTS.
async fn answer(state: &AppState, routes: Router, mut request: Request) -> Response {
    let context = match tenant::context(&state.config, &request) {
        Ok(context) => context,
        Err(error) => return AppError::from(error).into_response(),
    };
    let hsts = super::edge::hsts_for(&context);
    let mut response = if apps::is_app_request(request.uri().path()) {
        apps::serve(state, context, request).await.into_response()
    } else {
        request.extensions_mut().insert(context);
        match routes.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    };
    super::edge::add_hsts(hsts, &mut response);
    response
}
