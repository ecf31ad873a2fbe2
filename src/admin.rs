//! The admin listener: liveness and readiness for orchestrators, config reload and its status for
//! operators, kept off tenant origins.
//!
//! It must never expose anything about users or sessions, and never be reachable through a tenant host.

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::auth::oidc::{IdpStatus, OidcRegistry};
use crate::config::Config;
use crate::reload::{ReloadOutcome, Reloader, Trigger};

/// What the admin listener reads: the config snapshot and the identity providers' status. Nothing that
/// reaches a session or a user.
#[derive(Clone)]
pub struct AdminState {
    pub config: Arc<ArcSwap<Config>>,
    pub oidc: Arc<OidcRegistry>,
    /// Config reload (`POST /reload`) and its status (`GET /config/status`).
    pub reload: Arc<Reloader>,
}

/// The admin listener's routes.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/reload", post(reload))
        .route("/config/status", get(config_status))
        .with_state(state)
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

/// Reloads the config now: 200 with the new generation and what changed, 422 with every diagnostic
/// when the config has errors (the running one stays), 409 for the embedded demo (no file).
async fn reload(State(state): State<AdminState>) -> (StatusCode, Json<Value>) {
    let outcome = state.reload.reload(Trigger::Admin).await;
    let status = match &*outcome {
        ReloadOutcome::Applied { .. } | ReloadOutcome::Unchanged { .. } => StatusCode::OK,
        ReloadOutcome::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        ReloadOutcome::NoSource => {
            return (
                StatusCode::CONFLICT,
                Json(json!({
                    "outcome": "no_source",
                    "error": "no_config_file",
                    "message": "portico runs the embedded demo config (no --config): there is no file to reload",
                })),
            );
        }
    };
    let body = serde_json::to_value(&*outcome).unwrap_or_else(|_| json!({}));
    (status, Json(body))
}

/// The running config: generation, when and why it was loaded, its files with SHA-256, the last
/// reload attempt and the last refused one with its diagnostics.
async fn config_status(State(state): State<AdminState>) -> Json<Value> {
    Json(serde_json::to_value(state.reload.status()).unwrap_or_else(|_| json!({})))
}
