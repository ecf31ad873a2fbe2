//! The admin listener: liveness, readiness and metrics for orchestrators, kept off tenant origins.
//!
//! It must never expose anything about users or sessions (the metrics hold counts, never a user), and
//! never be reachable through a tenant host.

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::auth::oidc::{IdpStatus, OidcRegistry};
use crate::config::Config;
use crate::telemetry::Metrics;
use crate::telemetry::metrics;

/// What the admin listener reads: the config snapshot and the identity providers' status. Nothing that
/// reaches a session or a user.
#[derive(Clone)]
pub struct AdminState {
    pub config: Arc<ArcSwap<Config>>,
    pub oidc: Arc<OidcRegistry>,
    /// The server's metrics, for `GET /metrics`.
    pub metrics: Arc<Metrics>,
}

/// The admin listener's routes.
pub fn router(state: AdminState) -> Router {
    let metrics = state.metrics.clone();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(metrics_routes())
        .with_state(state)
        // Audit events of admin actions (a reload asked for here) count into this server's metrics.
        .layer(axum::middleware::from_fn(move |request, next: Next| {
            crate::telemetry::metrics::scope(metrics.clone(), next.run(request))
        }))
}

/// `GET /metrics`, on its own so other admin routes merge beside it.
fn metrics_routes() -> Router<AdminState> {
    Router::new().route("/metrics", get(metrics))
}

/// The Prometheus metrics, in the OpenMetrics text format.
async fn metrics(State(state): State<AdminState>) -> Response {
    match state.metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Alive: the process answers.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready: a config is loaded and every tenant's identity provider has been reached. 503 otherwise, saying
/// which tenant cannot sign users in and why.
async fn readyz(State(state): State<AdminState>) -> (StatusCode, Json<Value>) {
    let config = state.config.load();
    let mut ready = true;
    let sign_in: serde_json::Map<String, Value> = state
        .oidc
        .statuses()
        .into_iter()
        .map(|(tenant, status)| {
            let value = match status {
                IdpStatus::Ready => json!({ "status": "ready" }),
                IdpStatus::Starting => {
                    ready = false;
                    json!({ "status": "starting", "reason": "the identity provider has not been reached yet" })
                }
                IdpStatus::Unavailable(reason) => {
                    ready = false;
                    json!({ "status": "unavailable", "reason": reason })
                }
            };
            (tenant.as_str().to_owned(), value)
        })
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else { "not_ready" },
            "config": config.source,
            "tenants": config.tenants.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            "sign_in": sign_in,
            "version": env!("CARGO_PKG_VERSION"),
        })),
    )
}
