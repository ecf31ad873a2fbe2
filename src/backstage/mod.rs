//! `/backstage/api/…`: the tenant's Backstage backend under the portal's origin, called as the user.
//!
//! In `user` mode portico signs the user in to Backstage's `oauth2Proxy` provider itself (that provider
//! trusts `X-Forwarded-*` headers blindly, so only portico may ever send them) and sends the returned
//! Backstage user token; in `service` mode it sends a static external-access token. Client-sent
//! `Authorization` and oauth2-proxy headers are always removed first, only allow-listed plugins are
//! reachable, and the `auth` plugin never is. This module must not decide app access (`rbac`) and
//! talks to Backstage only through the proxy's pooled client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::any;
use axum::{Extension, Router};
use serde::Deserialize;

use crate::auth::SignedIn;
use crate::auth::session::unix_now;
use crate::config::{BackstageIdentity, BackstageSettings, IdentityModes};
use crate::error::AppError;
use crate::proxy::headers::{self, Identity};
use crate::proxy::{ProxyError, guard_forwarded_request, path};
use crate::state::{AppState, RequestContext};
use crate::telemetry::Labels;

/// Why a Backstage request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum BackstageError {
    /// 404: this tenant has no Backstage backend.
    #[error("this portal has no Backstage backend")]
    NotConfigured,
    /// 403: the plugin is not in the tenant's allow-list (or is `auth`, which never is).
    #[error("the Backstage plugin `{0}` is not available through the portal")]
    PluginNotAllowed(String),
    /// 502: Backstage would not sign the user in (for example, no catalog user matches).
    #[error("Backstage did not accept your identity")]
    SignInRefused(String),
}

impl BackstageError {
    pub fn status(&self) -> StatusCode {
        match self {
            BackstageError::NotConfigured => StatusCode::NOT_FOUND,
            BackstageError::PluginNotAllowed(_) => StatusCode::FORBIDDEN,
            BackstageError::SignInRefused(_) => StatusCode::BAD_GATEWAY,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            BackstageError::NotConfigured => "backstage_not_configured",
            BackstageError::PluginNotAllowed(_) => "backstage_plugin_not_allowed",
            BackstageError::SignInRefused(_) => "backstage_sign_in_refused",
        }
    }

    pub fn detail(&self) -> Option<String> {
        match self {
            BackstageError::SignInRefused(detail) => Some(detail.clone()),
            _ => None,
        }
    }
}

/// Renew a cached Backstage token this long before Backstage says it expires.
const TOKEN_MARGIN_SECS: u64 = 120;

/// Backstage user tokens per portal session, until shortly before they expire.
#[derive(Default)]
pub struct BackstageTokens {
    tokens: Mutex<HashMap<String, (String, u64)>>,
}

impl BackstageTokens {
    fn get(&self, session: &str) -> Option<String> {
        let tokens = self.tokens.lock().ok()?;
        let (token, renew_at) = tokens.get(session)?;
        (*renew_at > unix_now()).then(|| token.clone())
    }

    fn put(&self, session: &str, token: String, expires_in: u64) {
        if let Ok(mut tokens) = self.tokens.lock() {
            let now = unix_now();
            if tokens.len() > 20_000 {
                tokens.retain(|_, (_, renew_at)| *renew_at > now);
            }
            let renew_at = now + expires_in.saturating_sub(TOKEN_MARGIN_SECS.min(expires_in / 2));
            tokens.insert(session.to_owned(), (token, renew_at));
        }
    }

    fn forget(&self, session: &str) {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.remove(session);
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/backstage/api/{plugin}", any(backstage_request))
        .route("/backstage/api/{plugin}/{*rest}", any(backstage_request))
}

#[derive(Deserialize)]
struct RefreshAnswer {
    #[serde(rename = "backstageIdentity")]
    backstage_identity: BackstageIdentityAnswer,
}

#[derive(Deserialize)]
struct BackstageIdentityAnswer {
    token: String,
    #[serde(rename = "expiresInSeconds")]
    expires_in_seconds: Option<u64>,
}

async fn backstage_request(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(context): Extension<RequestContext>,
    signed_in: SignedIn,
    request: Request,
) -> Result<Response, AppError> {
    let tenant = &context.tenant;
    let settings = tenant
        .backstage
        .as_ref()
        .ok_or(BackstageError::NotConfigured)?;
    let raw_path = request.uri().path().to_owned();
    let after = raw_path.strip_prefix("/backstage/api/").unwrap_or("");
    let (plugin, rest) = after.split_once('/').unwrap_or((after, ""));
    if let Some(labels) = request.extensions().get::<Labels>() {
        labels.app(&format!("backstage:{plugin}"));
    }
    if plugin == "auth" || !settings.plugins.iter().any(|allowed| allowed == plugin) {
        return Err(BackstageError::PluginNotAllowed(plugin.to_owned()).into());
    }
    let inside = path::normalise(rest).map_err(|bad| ProxyError::BadPath(bad.0))?;
    let request = guard_forwarded_request(request, &context, &signed_in)?;
    let path_and_query = match request.uri().query() {
        Some(query) => format!("/api/{plugin}{}?{query}", inside.raw),
        None => format!("/api/{plugin}{}", inside.raw),
    };
    let timeout = context.config.proxy.response_timeout;
    let (mut parts, body) = request.into_parts();
    let original_host = parts.headers.get(header::HOST).cloned();
    let user = &signed_in.session.user;
    let roles = signed_in.roles.names();
    // Backstage gets its own credential below; no portico identity headers.
    let identity = Identity::of(user, &roles, &tenant.id, "backstage", IdentityModes::NONE);
    headers::prepare_upstream_request(
        &mut parts.headers,
        &identity,
        peer.ip(),
        original_host,
        "http",
    );
    parts.extensions = Default::default();
    let retry_headers = parts.headers.clone();
    let bodyless = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::DELETE
    ) && parts
        .headers
        .get(header::CONTENT_LENGTH)
        .is_none_or(|length| length == "0");
    let method = parts.method.clone();

    let first = credential(&state, settings, &signed_in, false).await?;
    parts.headers.insert(header::AUTHORIZATION, bearer(&first)?);
    let response = state
        .upstreams
        .forward(
            &settings.backend,
            &path_and_query,
            Request::from_parts(parts, body),
            timeout,
            None,
        )
        .await?;
    // A user token Backstage no longer accepts (it restarted with new keys): sign in again, once.
    if response.status() == StatusCode::UNAUTHORIZED
        && bodyless
        && matches!(settings.identity, BackstageIdentity::User)
    {
        let renewed = credential(&state, settings, &signed_in, true).await?;
        let mut retry = Request::new(Body::empty());
        *retry.method_mut() = method;
        *retry.headers_mut() = retry_headers;
        retry
            .headers_mut()
            .insert(header::AUTHORIZATION, bearer(&renewed)?);
        return Ok(state
            .upstreams
            .forward(&settings.backend, &path_and_query, retry, timeout, None)
            .await?);
    }
    Ok(response)
}

fn bearer(token: &str) -> Result<HeaderValue, AppError> {
    HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| AppError::Internal("Backstage token is not a header value".into()))
}

/// The credential for this request: the static service token, or the user's Backstage token.
async fn credential(
    state: &AppState,
    settings: &BackstageSettings,
    signed_in: &SignedIn,
    renew: bool,
) -> Result<String, AppError> {
    let BackstageIdentity::Service(token) = &settings.identity else {
        return user_token(state, settings, signed_in, renew).await;
    };
    Ok(token.0.clone())
}

async fn user_token(
    state: &AppState,
    settings: &BackstageSettings,
    signed_in: &SignedIn,
    renew: bool,
) -> Result<String, AppError> {
    let session = signed_in.session.id.as_str();
    if renew {
        state.backstage_tokens.forget(session);
    } else if let Some(token) = state.backstage_tokens.get(session) {
        return Ok(token);
    }
    let user = &signed_in.session.user;
    let mut request = Request::new(Body::empty());
    let headers: &mut HeaderMap = request.headers_mut();
    // The headers Backstage's oauth2Proxy provider reads; only portico ever sends them.
    headers.insert("x-forwarded-user", header_text(&user.subject)?);
    headers.insert(
        "x-forwarded-preferred-username",
        header_text(&user.subject)?,
    );
    if !user.email.is_empty() {
        headers.insert("x-forwarded-email", header_text(&user.email)?);
    }
    if let Some(tokens) = &signed_in.session.oidc {
        headers.insert(
            "x-oauth2-proxy-id-token",
            header_text(&format!("Bearer {}", tokens.id_token))?,
        );
    }
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let (status, body) = state
        .upstreams
        .fetch_small(
            &settings.backend,
            "/api/auth/oauth2Proxy/refresh",
            request,
            Duration::from_secs(10),
        )
        .await?;
    if !status.is_success() {
        let detail = format!(
            "{status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        );
        return Err(BackstageError::SignInRefused(detail).into());
    }
    let answer: RefreshAnswer = serde_json::from_slice(&body)
        .map_err(|error| BackstageError::SignInRefused(format!("unexpected answer: {error}")))?;
    let token = answer.backstage_identity.token;
    state.backstage_tokens.put(
        session,
        token.clone(),
        answer.backstage_identity.expires_in_seconds.unwrap_or(3600),
    );
    Ok(token)
}

fn header_text(text: &str) -> Result<HeaderValue, AppError> {
    HeaderValue::from_str(text)
        .map_err(|_| AppError::Internal("identity is not a valid header value".into()))
}
