//! Sign-in, sessions and sign-out on a tenant origin: the `/auth/*` endpoints and the [`SignedIn`]
//! extractor every protected handler uses.
//!
//! The browser only ever holds an opaque, HttpOnly, SameSite session cookie (BRIEF invariant 3); who the
//! user is lives in the server-side store. A session is bound to the tenant that created it and is
//! refused, and audited, on any other tenant's host (invariant 5). This module decides who the user is,
//! never what they may reach: that is `rbac`.

pub mod csrf;
pub mod dev;
pub mod session;

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
}

impl AuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::NotSignedIn => StatusCode::UNAUTHORIZED,
            AuthError::CsrfRejected | AuthError::DevSignInRefused => StatusCode::FORBIDDEN,
            AuthError::UnknownDevUser(_) => StatusCode::BAD_REQUEST,
            AuthError::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AuthError::NotSignedIn => "not_signed_in",
            AuthError::CsrfRejected => "csrf_rejected",
            AuthError::DevSignInRefused => "dev_sign_in_refused",
            AuthError::UnknownDevUser(_) => "unknown_user",
            AuthError::StoreUnavailable => "session_store_unavailable",
        }
    }
}

/// The `/auth/*` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", get(dev::login_page_get))
        .route("/auth/dev-login", post(dev::dev_login_post))
        .route("/auth/logout", post(logout_post))
        .route("/auth/session", get(session_get))
}

/// A request made with a valid session of the current tenant, with the roles its groups grant now.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session: Session,
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
        let Some(id) = session_cookie(&parts.headers) else {
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

/// The session id from the request's cookies, if one is well-formed.
pub fn session_cookie(headers: &HeaderMap) -> Option<SessionId> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE_NAME || *name == SECURE_COOKIE_NAME)
        .find_map(|(_, value)| SessionId::parse(value.trim()))
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
        return Ok(logged_out_response(&headers));
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
    Ok(logged_out_response(&headers))
}

fn logged_out_response(headers: &HeaderMap) -> Response {
    let target = "/auth/login";
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
        assert_eq!(session_cookie(&headers), Some(id));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("portico_session=forged"),
        );
        assert_eq!(session_cookie(&headers), None);
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
