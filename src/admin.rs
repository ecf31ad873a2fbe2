//! The admin listener: liveness, readiness and metrics for orchestrators, config reload and its
//! status for operators, and `/explain` (what a user with given groups sees, from config), kept off
//! tenant origins.
//!
//! It must never expose anything about users or sessions (the metrics hold counts, never a user), and
//! never be reachable through a tenant host.

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::audit::{self, AuditEvent};
use crate::auth::oidc::{IdpStatus, OidcRegistry};
use crate::auth::personal::PersonalTokens;
use crate::config::Config;
use crate::reload::{ReloadOutcome, Reloader, Trigger};
use crate::shared::{Redis, RedisStatus};
use crate::telemetry::Metrics;
use crate::telemetry::metrics;

/// What the admin listener reads: the config snapshot and the identity providers' status. Nothing that
/// reaches a session or a user.
#[derive(Clone)]
pub struct AdminState {
    pub config: Arc<ArcSwap<Config>>,
    pub oidc: Arc<OidcRegistry>,
    /// Config reload (`POST /reload`) and its status (`GET /config/status`).
    pub reload: Arc<Reloader>,
    /// The server's metrics, for `GET /metrics`.
    pub metrics: Arc<Metrics>,
    /// The shared session store's connection, for its health (`None`: sessions in memory).
    pub redis: Option<Arc<Redis>>,
    /// Personal access tokens, for `POST /tokens/revoke` (it answers a count, never a user).
    pub personal_tokens: PersonalTokens,
}

/// The admin listener's routes.
pub fn router(state: AdminState) -> Router {
    let metrics = state.metrics.clone();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/reload", post(reload))
        .route("/config/status", get(config_status))
        .route("/explain", get(explain))
        .route("/tokens/revoke", post(revoke_tokens))
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

/// Ready: the instance can serve (the config is loaded and the listeners are up), and every IdP has been
/// tried once since start. One tenant's IdP being down is not the instance being unready: that tenant is
/// `degraded` in the body (with the reason, since when and the last success), and the instance stays in
/// rotation, also when no tenant can sign in at all. An IdP outage hits every instance alike, so taking
/// them all out of a load balancer would turn "new sign-ins fail" into "nothing works", signed-in users
/// included. 503 only while `starting`: an IdP of the config portico started with not yet tried (at
/// most the first probe, 5 s); one that a reload added shows `starting` without holding readiness.
///
/// Redis down is `degraded` too, for the same reason (it is shared: every instance loses it at once),
/// with `sessions` saying why and since when: signed-in users this instance has cached keep working
/// for `sessions.redis.outage_grace`, new sign-ins answer "sign-in unavailable".
async fn readyz(State(state): State<AdminState>) -> (StatusCode, Json<Value>) {
    let config = state.config.load();
    let (mut starting, mut degraded) = (false, false);
    let sessions = match state.redis.as_ref().map(|redis| redis.status()) {
        None => json!({ "store": "memory", "status": "ready" }),
        Some(RedisStatus::Up) => json!({ "store": "redis", "status": "ready" }),
        Some(RedisStatus::Down { since, reason }) => {
            degraded = true;
            json!({
                "store": "redis",
                "status": "degraded",
                "reason": format!("redis cannot be reached: {reason}"),
                "since": rfc3339(since),
            })
        }
    };
    let sign_in: serde_json::Map<String, Value> = state
        .oidc
        .health()
        .into_iter()
        .map(|(tenant, health)| {
            let (status, reason) = match &health.status {
                IdpStatus::Ready => ("ready", None),
                IdpStatus::Starting => {
                    starting |= health.holds_readiness;
                    (
                        "starting",
                        Some("the identity provider has not been tried yet"),
                    )
                }
                IdpStatus::Unavailable(reason) => {
                    degraded = true;
                    ("degraded", Some(reason.as_str()))
                }
            };
            let value = json!({
                "status": status,
                "reason": reason,
                "since": rfc3339(health.since),
                "last_success": health.last_success.map(rfc3339),
            });
            (tenant.as_str().to_owned(), value)
        })
        .collect();
    let (code, status) = if starting {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    } else if degraded {
        (StatusCode::OK, "degraded")
    } else {
        (StatusCode::OK, "ready")
    };
    (
        code,
        Json(json!({
            "status": status,
            "config": config.source,
            "tenants": config.tenants.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            "sign_in": sign_in,
            "sessions": sessions,
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

/// What `POST /tokens/revoke` revokes: one token by its id, or every token of one user.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeTokens {
    tenant: String,
    token: Option<String>,
    user: Option<String>,
}

/// `POST /tokens/revoke` `{"tenant", "token": <id>}` or `{"tenant", "user": <subject>}`: an operator
/// revokes a leaked token, or every token of someone who left (`portico revoke-token`). Answers how
/// many went, and nothing about whose they were.
async fn revoke_tokens(
    State(state): State<AdminState>,
    body: Result<Json<RevokeTokens>, axum::extract::rejection::JsonRejection>,
) -> (StatusCode, Json<Value>) {
    let refused = |status: StatusCode, error: &str, message: String| {
        (status, Json(json!({ "error": error, "message": message })))
    };
    let Ok(Json(request)) = body else {
        return refused(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "send {\"tenant\": \"acme\", \"token\": \"<id>\"} or {\"tenant\": \"acme\", \"user\": \"<subject>\"}".into(),
        );
    };
    let config = state.config.load();
    let Some(tenant) = config
        .tenants
        .iter()
        .find(|tenant| tenant.id.as_str() == request.tenant)
    else {
        return refused(
            StatusCode::NOT_FOUND,
            "unknown_tenant",
            format!("there is no tenant `{}`", request.tenant),
        );
    };
    let revoked = match (&request.token, &request.user) {
        (Some(id), None) => match state.personal_tokens.revoke(&tenant.id, id).await {
            Ok(Some(token)) => {
                audit::emit(AuditEvent::TokenRevoked {
                    tenant: tenant.id.as_str(),
                    user: &token.subject,
                    token: &token.id,
                    trigger: "admin",
                });
                Ok(1)
            }
            Ok(None) => Ok(0),
            Err(error) => Err(error),
        },
        (None, Some(user)) => {
            let revoked = state.personal_tokens.revoke_subject(&tenant.id, user).await;
            if let Ok(count) = revoked
                && count > 0
            {
                audit::emit(AuditEvent::TokenRevoked {
                    tenant: tenant.id.as_str(),
                    user,
                    token: "*",
                    trigger: "admin",
                });
            }
            revoked
        }
        _ => {
            return refused(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "name either `token` (its id) or `user` (a subject), not both".into(),
            );
        }
    };
    match revoked {
        Ok(0) => refused(
            StatusCode::NOT_FOUND,
            "token_not_found",
            "no such token in this tenant (it may have expired or been revoked)".into(),
        ),
        Ok(count) => (StatusCode::OK, Json(json!({ "revoked": count }))),
        Err(error) => refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "token_store_unavailable",
            error.to_string(),
        ),
    }
}

/// The running config: generation, when and why it was loaded, its files with SHA-256, the last
/// reload attempt and the last refused one with its diagnostics.
async fn config_status(State(state): State<AdminState>) -> Json<Value> {
    Json(serde_json::to_value(state.reload.status()).unwrap_or_else(|_| json!({})))
}

/// The query of `GET /explain`: what `portico explain` takes.
#[derive(serde::Deserialize)]
struct ExplainQuery {
    tenant: String,
    /// Comma-separated IdP groups.
    #[serde(default)]
    groups: String,
    user: Option<String>,
    path: Option<String>,
    method: Option<String>,
}

/// `GET /explain?tenant=acme&groups=acme-eng,acme-finops[&path=/apps/x/…&method=POST]`: what a user
/// with those groups sees on the tenant and why, as `portico explain --format json` prints it, from
/// the config this instance serves. It describes config, not anybody's session.
async fn explain(
    State(state): State<AdminState>,
    query: Result<axum::extract::Query<ExplainQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let bad = |message: String| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "bad_request", "message": message })),
        )
            .into_response()
    };
    let Ok(axum::extract::Query(query)) = query else {
        return bad(
            "say which tenant and groups: /explain?tenant=<id>&groups=<a,b>[&path=/apps/<id>/…]"
                .into(),
        );
    };
    let config = state.config.load();
    let Some(tenant) = config.tenant(&query.tenant) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "unknown_tenant", "message": format!("there is no tenant `{}`", query.tenant) })),
        )
            .into_response();
    };
    let groups: Vec<String> = query
        .groups
        .split(',')
        .map(str::trim)
        .filter(|group| !group.is_empty())
        .map(str::to_owned)
        .collect();
    let method = match query
        .method
        .as_deref()
        .unwrap_or("GET")
        .to_ascii_uppercase()
        .parse::<http::Method>()
    {
        Ok(method) => method,
        Err(_) => return bad("`method` is not an HTTP method".into()),
    };
    let path = query.path.as_deref().map(|path| (&method, path));
    let explanation = crate::explain::explain(tenant, query.user.as_deref(), &groups, path);
    Json(serde_json::to_value(&explanation).unwrap_or_else(|_| json!({}))).into_response()
}

fn rfc3339(time: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}
