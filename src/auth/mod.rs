//! Sign-in, sessions and sign-out on a tenant origin: the `/auth/*` endpoints and the [`SignedIn`]
//! extractor every protected handler uses.
//!
//! The browser only ever holds an opaque, HttpOnly, SameSite session cookie (BRIEF invariant 3); who the
//! user is lives in the server-side store. A session is bound to the tenant that created it and is
//! refused, and audited, on any other tenant's host (invariant 5). This module decides who the user is,
//! never what they may reach: that is `rbac`.

pub mod csrf;
pub mod dev;
pub mod oidc;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, OptionalFromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};

use crate::audit::{self, AuditEvent};
use crate::error::AppError;
use crate::rbac::Roles;
use crate::state::{AppState, RequestContext};
use crate::telemetry::Labels;
use session::{COOKIE_NAME, LookupMiss, SECURE_COOKIE_NAME, Session, SessionId};

/// Why a request could not be authenticated, or an auth endpoint refused it.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// 401 for API calls; a redirect to sign-in for browser navigations.
    #[error("you are not signed in")]
    NotSignedIn,
    /// 403: a state-changing request that did not prove it came from this origin.
    #[error("this request did not come from the portal itself and was refused")]
    CsrfRejected,
    /// 403: dev sign-in asked for where it is not allowed.
    #[error("development sign-in is disabled: portico is not listening on a loopback address")]
    DevSignInRefused,
    /// 400: a dev sign-in form named a user that does not exist.
    #[error("there is no demo user `{0}`")]
    UnknownDevUser(String),
    /// 503: the session store did not answer.
    #[error("sessions are unavailable right now; try again shortly")]
    StoreUnavailable,
    /// 503: the tenant's identity provider cannot be reached (or was never reached).
    #[error(
        "sign-in is unavailable right now: the identity provider cannot be reached; try again shortly"
    )]
    SignInUnavailable(String),
    /// 401: the IdP's answer failed a check (state, issuer, ID token); the reason is logged and audited.
    #[error("sign-in failed; please try again")]
    LoginFailed(String),
    /// 401: refreshing the tokens failed, so the session ended.
    #[error("your session has ended; please sign in again")]
    RefreshFailed(String),
    /// 400: a back-channel logout token failed validation.
    #[error("invalid logout token")]
    InvalidLogoutToken(String),
}

impl AuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::NotSignedIn => StatusCode::UNAUTHORIZED,
            AuthError::CsrfRejected | AuthError::DevSignInRefused => StatusCode::FORBIDDEN,
            AuthError::UnknownDevUser(_) | AuthError::InvalidLogoutToken(_) => {
                StatusCode::BAD_REQUEST
            }
            AuthError::StoreUnavailable | AuthError::SignInUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AuthError::LoginFailed(_) | AuthError::RefreshFailed(_) => StatusCode::UNAUTHORIZED,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AuthError::NotSignedIn => "not_signed_in",
            AuthError::CsrfRejected => "csrf_rejected",
            AuthError::DevSignInRefused => "dev_sign_in_refused",
            AuthError::UnknownDevUser(_) => "unknown_user",
            AuthError::StoreUnavailable => "session_store_unavailable",
            AuthError::SignInUnavailable(_) => "sign_in_unavailable",
            AuthError::LoginFailed(_) => "sign_in_failed",
            AuthError::RefreshFailed(_) => "session_ended",
            AuthError::InvalidLogoutToken(_) => "invalid_logout_token",
        }
    }

    /// What the log should say beyond the public message.
    pub fn detail(&self) -> Option<String> {
        match self {
            AuthError::SignInUnavailable(reason)
            | AuthError::LoginFailed(reason)
            | AuthError::RefreshFailed(reason)
            | AuthError::InvalidLogoutToken(reason) => Some(reason.clone()),
            _ => None,
        }
    }
}

/// The `/auth/*` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", get(login_get))
        .route("/auth/callback", get(callback_get))
        .route("/auth/dev-login", post(dev::dev_login_post))
        .route("/auth/logout", post(logout_post))
        .route("/auth/signed-out", get(signed_out_get))
        .route("/auth/backchannel-logout", post(backchannel_logout_post))
        .route("/auth/session", get(session_get))
}

/// A request made with a valid session of the current tenant, with the roles its groups grant now.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session: Arc<Session>,
    pub roles: Roles,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let context = parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .ok_or_else(|| AppError::Internal("request context missing".into()))?;
        let Some(id) = session_cookie(&parts.headers, is_https(&context)) else {
            return Err(AuthError::NotSignedIn.into());
        };
        let tenant = &context.tenant;
        let session = match state
            .sessions
            .lookup(&id, &tenant.id, &context.config.sessions)
            .await
        {
            Ok(session) => session,
            Err(LookupMiss::OtherTenant(session_tenant)) => {
                audit::emit(AuditEvent::CrossTenantSession {
                    tenant: &tenant.id,
                    session_tenant: &session_tenant,
                    session: &id.log_hash(),
                });
                return Err(AuthError::NotSignedIn.into());
            }
            Err(LookupMiss::StoreDown) => return Err(AuthError::StoreUnavailable.into()),
            Err(LookupMiss::Unknown | LookupMiss::Expired) => {
                return Err(AuthError::NotSignedIn.into());
            }
        };
        // Tokens near expiry are refreshed first, which also re-reads the user's groups.
        let session = match state
            .oidc
            .refresh_if_needed(session, state.sessions.store.as_ref())
            .await
        {
            Ok(session) => session,
            Err(AuthError::RefreshFailed(reason)) => {
                let _ = state.sessions.store.remove(&id).await;
                audit::emit(AuditEvent::RefreshFailed {
                    tenant: &tenant.id,
                    session: &id.log_hash(),
                    reason: &reason,
                });
                return Err(AuthError::NotSignedIn.into());
            }
            Err(AuthError::SignInUnavailable(_)) => {
                // The IdP is briefly unreachable: keep the session on its current roles rather than
                // signing everyone out; the next request tries again.
                state
                    .sessions
                    .store
                    .get(&id)
                    .await
                    .ok()
                    .flatten()
                    .ok_or(AuthError::NotSignedIn)?
            }
            Err(error) => return Err(error.into()),
        };
        if let Some(labels) = parts.extensions.get::<Labels>() {
            labels.user(&session.user.subject);
        }
        // Roles come from the current role map on every request, so a config change applies at once.
        let roles = tenant.roles.roles_for(&session.user.groups);
        Ok(SignedIn { session, roles })
    }
}

impl OptionalFromRequestParts<AppState> for SignedIn {
    type Rejection = AppError;

    /// `None` when nobody is signed in; other failures (a store outage) still fail the request.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        match <SignedIn as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(signed_in) => Ok(Some(signed_in)),
            Err(AppError::Auth(AuthError::NotSignedIn)) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// The session id from the request's cookies, if one is well-formed. On an HTTPS origin only the
/// `__Host-` cookie counts: a plain-named one could have been planted over HTTP (cookie tossing).
pub fn session_cookie(headers: &HeaderMap, https: bool) -> Option<SessionId> {
    let name = if https {
        SECURE_COOKIE_NAME
    } else {
        COOKIE_NAME
    };
    cookie_values(headers, name).find_map(SessionId::parse)
}

/// `Set-Cookie` for a new session. `secure` on HTTPS origins switches to the `__Host-` name.
pub fn session_set_cookie(id: &SessionId, secure: bool) -> HeaderValue {
    let name = if secure {
        SECURE_COOKIE_NAME
    } else {
        COOKIE_NAME
    };
    let flags = if secure { "; Secure" } else { "" };
    let value = format!(
        "{name}={}; Path=/; HttpOnly; SameSite=Lax{flags}",
        id.as_str()
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` that removes the session cookie.
pub fn session_clear_cookie() -> HeaderValue {
    HeaderValue::from_static("portico_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// The same for the `__Host-` cookie of HTTPS origins.
fn session_clear_cookie_secure() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-portico_session=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0",
    )
}

/// Only a same-origin, relative path may be a return target: anything else becomes `/` (no open redirect).
pub fn safe_return_path(candidate: Option<&str>) -> String {
    let Some(path) = candidate else {
        return "/".into();
    };
    let acceptable = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.chars().any(|c| c.is_control() || c == '\\')
        && !path.starts_with("/auth/");
    if acceptable {
        path.to_owned()
    } else {
        "/".into()
    }
}

/// Stores a new session (always a fresh id: no session fixation) and audits the sign-in.
pub(crate) async fn start_session(
    state: &AppState,
    session: Session,
    method: &str,
    labels: &Labels,
) -> Result<SessionId, AuthError> {
    let id = session.id.clone();
    let (tenant, user) = (session.tenant.clone(), session.user.subject.clone());
    labels.user(&user);
    state
        .sessions
        .store
        .insert(session)
        .await
        .map_err(|_| AuthError::StoreUnavailable)?;
    audit::emit(AuditEvent::SignIn {
        tenant: &tenant,
        user: &user,
        method,
        session: &id.log_hash(),
    });
    Ok(id)
}

/// Name of the cookie that ties a login in flight to the browser that started it.
const LOGIN_BINDING_COOKIE: &str = "portico_login";

#[derive(serde::Deserialize)]
struct LoginQuery {
    return_to: Option<String>,
}

/// `GET /auth/login`: dev sign-in shows its picker; OIDC sends the browser to the IdP.
async fn login_get(
    State(state): State<AppState>,
    Extension(context): Extension<RequestContext>,
    axum::extract::Query(query): axum::extract::Query<LoginQuery>,
    signed_in: Option<SignedIn>,
) -> Result<Response, AppError> {
    let return_to = safe_return_path(query.return_to.as_deref());
    if signed_in.is_some() {
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, return_to)]).into_response());
    }
    let tenant = &context.tenant;
    match &tenant.sign_in {
        crate::config::SignIn::Dev { users } => dev::login_page(&state, tenant, users, &return_to),
        crate::config::SignIn::Oidc(_) => {
            let start = state.oidc.begin_login(&tenant.id, return_to)?;
            let secure = is_https(&context);
            let binding = format!(
                "{LOGIN_BINDING_COOKIE}={}; Path=/auth/callback; HttpOnly; SameSite=Lax; Max-Age=600{}",
                start.browser_binding,
                if secure { "; Secure" } else { "" }
            );
            let mut response = (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, start.authorize_url)],
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&binding) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(response)
        }
    }
}

/// `GET /auth/callback`: the IdP sends the browser back here with a code; a fresh session starts.
async fn callback_get(
    State(state): State<AppState>,
    Extension(context): Extension<RequestContext>,
    Extension(labels): Extension<Labels>,
    axum::extract::Query(params): axum::extract::Query<oidc::CallbackParams>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let tenant = &context.tenant;
    let binding = cookie_value(&headers, LOGIN_BINDING_COOKIE);
    let done = match state
        .oidc
        .finish_login(&tenant.id, &params, binding.as_deref())
        .await
    {
        Ok(done) => done,
        Err(error) => {
            let reason = error.detail().unwrap_or_else(|| error.to_string());
            audit::emit(AuditEvent::SignInRefused {
                tenant: &tenant.id,
                reason: &reason,
            });
            return Err(error.into());
        }
    };
    let id = start_session(&state, done.session, "oidc", &labels).await?;
    let mut response =
        (StatusCode::SEE_OTHER, [(header::LOCATION, done.return_to)]).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        session_set_cookie(&id, is_https(&context)),
    );
    headers.append(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "portico_login=; Path=/auth/callback; HttpOnly; SameSite=Lax; Max-Age=0",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /auth/signed-out`: where the IdP returns the browser after ending its session.
async fn signed_out_get(Extension(context): Extension<RequestContext>) -> Response {
    let title = askama::filters::escape(&context.tenant.branding.title, askama::filters::Html)
        .map(|escaped| escaped.to_string())
        .unwrap_or_default();
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Signed out · {title}</title></head>\
         <body style=\"font-family:system-ui,sans-serif;margin:12vh auto;max-width:32rem\">\
         <h1 data-testid=\"signed-out\">You are signed out of {title}</h1>\
         <p><a href=\"/auth/login\">Sign in again</a></p></body></html>"
    );
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
            ),
        ],
        axum::response::Html(page),
    )
        .into_response()
}

/// `POST /auth/backchannel-logout`: the IdP ends sessions server-to-server (OIDC Back-Channel Logout 1.0).
async fn backchannel_logout_post(
    State(state): State<AppState>,
    Extension(context): Extension<RequestContext>,
    body: String,
) -> Result<Response, AppError> {
    let tenant = &context.tenant;
    let token = form_field(&body, "logout_token")
        .ok_or_else(|| AuthError::InvalidLogoutToken("no logout_token".into()))?;
    let target = match state.oidc.verify_logout_token(&tenant.id, &token).await {
        Ok(target) => target,
        Err(error) => {
            let reason = error.detail().unwrap_or_default();
            audit::emit(AuditEvent::BackchannelLogoutRefused {
                tenant: &tenant.id,
                reason: &reason,
            });
            return Err(error.into());
        }
    };
    let ended = state
        .sessions
        .store
        .remove_for_logout(&tenant.id, target.subject.as_deref(), target.sid.as_deref())
        .await
        .map_err(|_| AuthError::StoreUnavailable)?;
    audit::emit(AuditEvent::BackchannelLogout {
        tenant: &tenant.id,
        user: target.subject.as_deref().unwrap_or("-"),
        sid: target.sid.as_deref().unwrap_or("-"),
        sessions: ended,
    });
    Ok(([(header::CACHE_CONTROL, "no-store")], StatusCode::OK).into_response())
}

fn is_https(context: &RequestContext) -> bool {
    context
        .tenant
        .public_origin
        .as_ref()
        .is_some_and(|origin| origin.https)
}

/// A cookie's value by name (the first, if the browser sent several).
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    cookie_values(headers, name).next().map(str::to_owned)
}

/// Every value the request's `Cookie` headers give for `name`.
fn cookie_values<'h>(headers: &'h HeaderMap, name: &'h str) -> impl Iterator<Item = &'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(cookie, _)| *cookie == name)
        .map(|(_, value)| value.trim())
}

/// `POST /auth/logout`: ends the session. Needs the CSRF token and a same-origin request.
async fn logout_post(
    State(state): State<AppState>,
    Extension(context): Extension<RequestContext>,
    signed_in: Result<SignedIn, AppError>,
    headers: HeaderMap,
    body: String,
) -> Result<Response, AppError> {
    let tenant = &context.tenant.id;
    let Ok(signed_in) = signed_in else {
        // Already signed out: say so, and clear whatever cookie the browser still has.
        return Ok(logged_out_response(&headers, "/auth/login"));
    };
    let form_token = form_field(&body, "csrf_token");
    if !csrf::is_same_origin(&headers)
        || !csrf::token_matches(
            &headers,
            form_token.as_deref(),
            &signed_in.session.csrf_token,
        )
    {
        audit::emit(AuditEvent::CsrfRejected {
            tenant,
            path: "/auth/logout",
        });
        return Err(AuthError::CsrfRejected.into());
    }
    let session = &signed_in.session;
    if state.sessions.store.remove(&session.id).await.is_err() {
        return Err(AuthError::StoreUnavailable.into());
    }
    audit::emit(AuditEvent::SignOut {
        tenant,
        user: &session.user.subject,
        session: &session.id.log_hash(),
    });
    // Ending portico's session is not enough: the IdP's session would sign the user straight back in.
    let end_session = state.oidc.end_session_url(session);
    let mut response =
        logged_out_response(&headers, end_session.as_deref().unwrap_or("/auth/login"));
    if is_https(&context) {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, session_clear_cookie_secure());
    }
    Ok(response)
}

fn logged_out_response(headers: &HeaderMap, target: &str) -> Response {
    let mut response = if crate::error::wants_html(headers) {
        (StatusCode::SEE_OTHER, [(header::LOCATION, target)]).into_response()
    } else {
        Json(serde_json::json!({ "signed_out": true, "redirect": target })).into_response()
    };
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_clear_cookie());
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /auth/session`: who is signed in, for scripts. 401 JSON when nobody is.
async fn session_get(
    Extension(context): Extension<RequestContext>,
    signed_in: SignedIn,
) -> Response {
    let session = &signed_in.session;
    let body = serde_json::json!({
        "tenant": context.tenant.id,
        "user": {
            "id": session.user.subject,
            "name": session.user.name,
            "email": session.user.email,
            "groups": session.user.groups,
        },
        "roles": signed_in.roles.names(),
        "created_at": session.created_at,
    });
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// One field of an `application/x-www-form-urlencoded` body.
pub fn form_field(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        if decode_form(key) == name {
            Some(decode_form(value))
        } else {
            None
        }
    })
}

fn decode_form(value: &str) -> String {
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_on_this_origin() {
        assert_eq!(
            safe_return_path(Some("/service-status/overview?x=1")),
            "/service-status/overview?x=1"
        );
        assert_eq!(safe_return_path(Some("https://evil.example/")), "/");
        assert_eq!(safe_return_path(Some("//evil.example/")), "/");
        assert_eq!(safe_return_path(Some("/\\evil.example")), "/");
        assert_eq!(safe_return_path(Some("/a\r\nLocation: x")), "/");
        assert_eq!(safe_return_path(Some("/auth/logout")), "/");
        assert_eq!(safe_return_path(None), "/");
    }

    #[test]
    fn reads_the_session_cookie_among_others() {
        let id = SessionId::generate();
        let mut headers = HeaderMap::new();
        let cookie = format!("theme=dark; portico_session={}; other=1", id.as_str());
        headers.insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
        assert_eq!(session_cookie(&headers, false), Some(id.clone()));
        assert_eq!(
            session_cookie(&headers, true),
            None,
            "an https origin wants the __Host- cookie"
        );
        let secure = format!("__Host-portico_session={}", id.as_str());
        headers.insert(header::COOKIE, HeaderValue::from_str(&secure).unwrap());
        assert_eq!(session_cookie(&headers, true), Some(id));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("portico_session=forged"),
        );
        assert_eq!(session_cookie(&headers, false), None);
    }

    #[test]
    fn form_fields_are_decoded() {
        assert_eq!(
            form_field("user=dave&return_to=%2Fa%3Fb%3D1", "return_to").as_deref(),
            Some("/a?b=1")
        );
        assert_eq!(form_field("user=dave", "missing"), None);
    }
}
