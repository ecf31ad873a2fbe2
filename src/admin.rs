//! The admin listener: liveness and readiness for orchestrators, kept off tenant origins.
//!
//! It must never expose anything about users or sessions, and never be reachable through a tenant host.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Alive: the process answers.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready: a config is loaded; says which and how many tenants it serves.
async fn readyz(State(state): State<AppState>) -> Json<Value> {
    let config = state.config.load();
    Json(json!({
        "status": "ready",
        "config": config.source,
        "tenants": config.tenants.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}
