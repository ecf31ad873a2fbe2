//! What Backstage's web UI (`backstage.ui`, mounted at `/backstage/` as an app) needs from portico
//! besides its files: its sign-in. The UI's sign-in page (`ProxiedSignInPage` with provider `portico`)
//! asks `GET /backstage/api/auth/portico/refresh`. The `auth` plugin is never reachable through
//! portico, so portico answers that one call itself, from the session: who the user is in Backstage (the
//! identity of the user's Backstage token, obtained as for any API call) and a token that is **not** a
//! credential. Every API call the UI makes goes through `/backstage/api/`, where portico drops the
//! client's `Authorization` and sends the session's credential; the browser never holds a Backstage
//! token, as it never holds portico's session secrets.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::BackstageError;
use super::credential::{Credentials, credential};
use crate::config::{App, BackstageIdentity};
use crate::http::AppError;
use crate::rbac;

/// The path below `/backstage/api/` that portico answers for the UI.
pub(super) const SIGN_IN: &str = "auth/portico/refresh";

/// The answer to the UI's sign-in, for a user who may open the UI (`ui`). Backstage's shape:
/// `{ profile, providerInfo, backstageIdentity: { token, expiresInSeconds, identity } }`.
pub(super) async fn sign_in(
    credentials: Credentials<'_>,
    ui: &App,
    method: &Method,
) -> Result<Response, AppError> {
    if !rbac::decide(credentials.roles, &ui.policy, method, "/").is_allowed() {
        return Err(BackstageError::PluginNotAllowed("auth".into()).into());
    }
    if !matches!(credentials.settings.identity, BackstageIdentity::User) {
        // A service identity has no user for the UI to be.
        return Err(BackstageError::PluginNotAllowed("auth".into()).into());
    }
    let token = credential(credentials, false).await?;
    let claims = payload(&token)
        .ok_or_else(|| BackstageError::SignInRefused("Backstage's token has no claims".into()))?;
    let user = claims["sub"].as_str().unwrap_or_default().to_owned();
    // Backstage leaves `ent` out of its tokens by default (`auth.omitIdentityTokenOwnershipClaim`);
    // it keeps it with the sign-in, where its userinfo endpoint reads it. The UI needs a list.
    let owners = match claims["ent"].as_array() {
        Some(owners) => Value::Array(owners.clone()),
        None => ownership(&credentials, &token, &user).await,
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let expires_at = claims["exp"].as_u64().unwrap_or(now + 600);
    let placeholder = placeholder(&user, &owners, expires_at);
    let session_user = credentials.user;
    let mut profile = json!({ "displayName": session_user.name });
    if !session_user.email.is_empty() {
        profile["email"] = Value::from(session_user.email.as_str());
    }
    Ok(Json(json!({
        "profile": profile,
        "providerInfo": {},
        "backstageIdentity": {
            "token": placeholder,
            "expiresInSeconds": expires_at.saturating_sub(now),
            "identity": { "type": "user", "userEntityRef": user, "ownershipEntityRefs": owners },
        },
    }))
    .into_response())
}

/// The user's ownership refs as Backstage recorded them at sign-in (`/api/auth/v1/userinfo`, asked
/// with the user's own token); just the user when that cannot be read.
async fn ownership(credentials: &Credentials<'_>, token: &str, user: &str) -> Value {
    let fallback = || json!([user]);
    let Ok(authorization) = super::credential::bearer(token) else {
        return fallback();
    };
    let mut request = axum::extract::Request::new(axum::body::Body::empty());
    request
        .headers_mut()
        .insert(axum::http::header::AUTHORIZATION, authorization);
    let answer = credentials
        .client
        .fetch_small(
            &credentials.settings.backend,
            crate::proxy::Target {
                path: &["/api/auth/v1/userinfo"],
                query: None,
            },
            request,
            Duration::from_secs(10),
        )
        .await;
    match answer {
        Ok((status, body)) if status.is_success() => serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|info| info["claims"]["ent"].as_array().cloned())
            .map_or_else(fallback, Value::Array),
        _ => fallback(),
    }
}

/// The claims of a JWT portico got from Backstage itself (over its own connection): read, not
/// verified, since portico is not the one Backstage's signature is for.
fn payload(token: &str) -> Option<Value> {
    let body = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()
}

/// What the UI holds as its "token": shaped like a JWT so the UI can read who and until when, unsigned
/// (`alg: none`), so that no Backstage accepts it; portico replaces it on every API call anyway.
fn placeholder(user: &str, owners: &Value, expires_at: u64) -> String {
    let header = json!({ "alg": "none", "typ": "vnd.portico.placeholder" });
    let body = json!({ "sub": user, "ent": owners, "exp": expires_at });
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(body.to_string())
    )
}
