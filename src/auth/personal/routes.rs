//! The JSON API of personal access tokens, for the shell's tokens page and for people who script it:
//!
//! - `GET /auth/tokens`: the user's live tokens (never a secret), the apps a token may be narrowed to
//!   (those the user may open) and the longest lifetime the tenant allows;
//! - `POST /auth/tokens` `{ name, expires_in_days?, scope?: { apps?, backstage?, read_only? } }`: mints
//!   one; the answer holds the token, the only time it is ever shown;
//! - `DELETE /auth/tokens/<id>`: revokes one of the user's own.
//!
//! Behind the session cookie only: a bearer token never reaches these paths (`auth::extract`), so a
//! token cannot mint or revoke tokens. Changes need a same-origin request carrying the session's CSRF
//! token (`X-Portico-CSRF`), like sign-out. Each mint and revocation is audited.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use tower_http::set_header::SetResponseHeaderLayer;

use super::{NewToken, PersonalError, PersonalToken};
use crate::audit::{self, AuditEvent};
use crate::auth::{AuthError, SignedIn};
use crate::http::{AppError, RequestContext, csrf};
use crate::i18n::Locale;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/tokens", get(list).post(create))
        .route("/auth/tokens/{id}", delete(revoke))
        // A minted token is in an answer: no cache may keep it.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// A token as lists show it: everything but the secret, which portico does not have.
pub(crate) fn listed(token: &PersonalToken) -> Value {
    json!({
        "id": token.id,
        "name": token.name,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "scope": token.scope,
    })
}

async fn list(
    State(state): State<AppState>,
    Extension(context): Extension<RequestContext>,
    locale: Locale,
    signed_in: SignedIn,
) -> Result<Response, AppError> {
    let tenant = &context.tenant;
    let max = tenant.tokens.personal.ok_or(PersonalError::Disabled)?;
    let tokens = state
        .personal_tokens
        .list(&tenant.id, &signed_in.session.user.subject)
        .await?;
    let apps: Vec<Value> = tenant
        .apps
        .iter()
        .filter(|app| app.access.allows(signed_in.roles()))
        .map(|app| json!({ "id": app.id.as_str(), "label": app.label.get(locale) }))
        .collect();
    Ok(Json(json!({
        "tokens": tokens.iter().map(listed).collect::<Vec<_>>(),
        "apps": apps,
        "backstage": tenant.backstage.is_some(),
        "max_days": (max.as_secs() / 86_400).max(1),
        "prefix": super::PREFIX,
    }))
    .into_response())
}

async fn create(
    State(state): State<AppState>,
    Extension(context): Extension<RequestContext>,
    signed_in: SignedIn,
    headers: HeaderMap,
    body: Result<Json<NewToken>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, AppError> {
    check_csrf(&context, &signed_in, &headers, "/auth/tokens")?;
    let Json(request) = body.map_err(|rejection| {
        PersonalError::BadRequest(format!(
            "send JSON like {{\"name\": \"release script\", \"expires_in_days\": 30}}: {}",
            rejection.body_text()
        ))
    })?;
    let tenant = &context.tenant;
    let user = &signed_in.session.user;
    let (secret, token) = state.personal_tokens.mint(tenant, user, request).await?;
    audit::emit(AuditEvent::TokenCreated {
        tenant: tenant.id.as_str(),
        user: &user.subject,
        token: &token.id,
        until: token.expires_at,
    });
    let mut shown = listed(&token);
    if let Some(fields) = shown.as_object_mut() {
        fields.insert("token".into(), Value::String(secret));
    }
    Ok((StatusCode::CREATED, Json(shown)).into_response())
}

async fn revoke(
    State(state): State<AppState>,
    Extension(context): Extension<RequestContext>,
    signed_in: SignedIn,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    check_csrf(&context, &signed_in, &headers, "/auth/tokens")?;
    let tenant = &context.tenant;
    let user = &signed_in.session.user;
    let token = state
        .personal_tokens
        .revoke_own(&tenant.id, &user.subject, &id)
        .await?;
    audit::emit(AuditEvent::TokenRevoked {
        tenant: tenant.id.as_str(),
        user: &user.subject,
        token: &token.id,
        trigger: "user",
    });
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A change needs a same-origin request with the session's CSRF token, as sign-out does.
fn check_csrf(
    context: &RequestContext,
    signed_in: &SignedIn,
    headers: &HeaderMap,
    path: &str,
) -> Result<(), AuthError> {
    let proven = csrf::is_same_origin(headers, context.is_https())
        && csrf::token_matches(headers, None, &signed_in.session.csrf_token);
    if proven {
        return Ok(());
    }
    audit::emit(AuditEvent::CsrfRejected {
        tenant: context.tenant.id.as_str(),
        path,
    });
    Err(AuthError::CsrfRejected)
}
