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

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};

use crate::audit::{self, AuditEvent};
use crate::http::{AppError, Class, Problem, RequestContext};
use crate::rbac::Roles;
use crate::state::AppState;
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
    /// 403: dev sign-in asked for on a host name the tenant does not list (DNS rebinding).
    #[error(
        "development sign-in answers only on this portal's own host names; open the portal at the address it was configured with"
    )]
    DevSignInUnlistedHost,
    /// 400: a dev sign-in form named a user that does not exist.
    #[error("there is no demo user `{0}`")]
    UnknownDevUser(String),
    /// 400: the request carried the session cookie twice; one of them was planted.
    #[error(
        "your browser sent more than one portal session cookie, so this request was refused; clear this site's cookies and sign in again"
    )]
    DuplicateSessionCookie,
    /// 429: this client has started too many sign-ins that have not finished yet.
    #[error(
        "too many sign-ins were started from your network and have not finished yet; try again in a few minutes"
    )]
    TooManySignIns {
        /// Seconds until one of this client's pending sign-ins expires (for `Retry-After`).
        retry_after: u64,
    },
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

impl Problem for AuthError {
    fn classify(&self) -> Class {
        let class = |status, code| Class::new(status, code);
        match self {
            AuthError::NotSignedIn => class(StatusCode::UNAUTHORIZED, "not_signed_in").sign_in(),
            AuthError::CsrfRejected => class(StatusCode::FORBIDDEN, "csrf_rejected"),
            AuthError::DevSignInRefused | AuthError::DevSignInUnlistedHost => {
                class(StatusCode::FORBIDDEN, "dev_sign_in_refused")
            }
            AuthError::UnknownDevUser(_) => class(StatusCode::BAD_REQUEST, "unknown_user"),
            AuthError::DuplicateSessionCookie => {
                class(StatusCode::BAD_REQUEST, "duplicate_session_cookie")
            }
            AuthError::TooManySignIns { .. } => {
                class(StatusCode::TOO_MANY_REQUESTS, "too_many_sign_ins")
            }
            AuthError::StoreUnavailable => {
                class(StatusCode::SERVICE_UNAVAILABLE, "session_store_unavailable")
            }
            AuthError::SignInUnavailable(reason) => {
                class(StatusCode::SERVICE_UNAVAILABLE, "sign_in_unavailable")
                    .detail(reason.as_str())
            }
            AuthError::LoginFailed(reason) => {
                class(StatusCode::UNAUTHORIZED, "sign_in_failed").detail(reason.as_str())
            }
            AuthError::RefreshFailed(reason) => {
                class(StatusCode::UNAUTHORIZED, "session_ended").detail(reason.as_str())
            }
            AuthError::InvalidLogoutToken(reason) => {
                class(StatusCode::BAD_REQUEST, "invalid_logout_token").detail(reason.as_str())
            }
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
        let context = RequestContext::from_request_parts(parts, state).await?;
        let tenant = &context.tenant;
        let id = match session_cookie(&parts.headers, context.is_https()) {
            Ok(Some(id)) => id,
            Ok(None) => return Err(AuthError::NotSignedIn.into()),
            Err(CookieError::Duplicate) => {
                audit::emit(AuditEvent::DuplicateSessionCookie {
                    tenant: &tenant.id,
                    path: parts.uri.path(),
                });
                return Err(AuthError::DuplicateSessionCookie.into());
            }
        };
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
            Err(error)
                if matches!(
                    error.downcast_ref::<AuthError>(),
                    Some(AuthError::NotSignedIn)
                ) =>
            {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }
}

/// Why a request's session cookie could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum CookieError {
    /// The session cookie's name appeared more than once (in one `Cookie` header or across several).
    Duplicate,
}

/// The session id from the request's cookies, if one is well-formed. On an HTTPS origin only the
/// `__Host-` cookie counts: a plain-named one could have been planted over HTTP (cookie tossing).
/// Two cookies of that name are refused rather than resolved: one of them was planted (by a sibling
/// domain, or by a script on this origin for a narrower path), and picking either would let the
/// planter choose which session a request runs in.
pub fn session_cookie(headers: &HeaderMap, https: bool) -> Result<Option<SessionId>, CookieError> {
    let mut values = cookie_values(headers, cookie_name(COOKIE_NAME, https));
    let first = values.next();
    if values.next().is_some() {
        return Err(CookieError::Duplicate);
    }
    Ok(first.and_then(SessionId::parse))
}

/// The name a portico cookie has on an origin: on HTTPS the `__Host-` prefix, with which browsers accept
/// it only with `Secure`, `Path=/` and no `Domain`, so neither a sibling subdomain nor a plain-HTTP page
/// can plant or overwrite it.
fn cookie_name(base: &'static str, https: bool) -> &'static str {
    match (base, https) {
        (COOKIE_NAME, true) => SECURE_COOKIE_NAME,
        (LOGIN_BINDING_COOKIE, true) => SECURE_LOGIN_BINDING_COOKIE,
        (name, _) => name,
    }
}

/// `Set-Cookie` for one of portico's own cookies: HttpOnly, SameSite=Lax, host-only, and on HTTPS
/// `__Host-`, `Secure` and `Path=/`. `path` is used on plain HTTP only (the prefix demands `/`);
/// `max_age` `Some(0)` removes the cookie.
fn own_set_cookie(
    base: &'static str,
    value: &str,
    https: bool,
    path: &str,
    max_age: Option<u64>,
) -> HeaderValue {
    let name = cookie_name(base, https);
    let path = if https { "/" } else { path };
    let secure = if https { "; Secure" } else { "" };
    let max_age = max_age.map_or_else(String::new, |age| format!("; Max-Age={age}"));
    let text = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax{secure}{max_age}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` for a new session. `secure` on HTTPS origins switches to the `__Host-` name.
pub fn session_set_cookie(id: &SessionId, secure: bool) -> HeaderValue {
    own_set_cookie(COOKIE_NAME, id.as_str(), secure, "/", None)
}

/// `Set-Cookie` that removes the session cookie.
pub fn session_clear_cookie(secure: bool) -> HeaderValue {
    own_set_cookie(COOKIE_NAME, "", secure, "/", Some(0))
}

/// Only a same-origin, relative path may be a return target: anything else becomes `/` (no open redirect).
///
/// The path is judged the way a browser will resolve it as a `Location`: `\\` counts as `/`, and `.`,
/// `..` and their percent-encoded spellings (`%2e`, `.%2E`, …) are removed first (WHATWG URL). Only the
/// result is checked and returned, so `/..//evil.example` or `/%2e%2e/\\evil.example` cannot come out as
/// the protocol-relative `//evil.example`, and `/x/../auth/logout` is an auth path like any other.
pub fn safe_return_path(candidate: Option<&str>) -> String {
    candidate
        .and_then(normalised_return_path)
        .unwrap_or_else(|| "/".into())
}

fn normalised_return_path(candidate: &str) -> Option<String> {
    // Browsers drop tabs and newlines from URLs, so `/\t/evil` would become `//evil`: refuse them all.
    if !candidate.starts_with('/') || candidate.chars().any(char::is_control) {
        return None;
    }
    let split = candidate.find(['?', '#']).unwrap_or(candidate.len());
    let (path, rest) = candidate.split_at(split);
    let is_dot = |segment: &str| segment == "." || segment.eq_ignore_ascii_case("%2e");
    let is_dot_dot = |segment: &str| {
        matches!(
            segment.to_ascii_lowercase().as_str(),
            ".." | ".%2e" | "%2e." | "%2e%2e"
        )
    };
    let mut segments: Vec<&str> = Vec::new();
    let mut parts = path[1..].split(['/', '\\']).peekable();
    while let Some(segment) = parts.next() {
        let last = parts.peek().is_none();
        if is_dot_dot(segment) {
            segments.pop();
            if last {
                segments.push("");
            }
        } else if is_dot(segment) {
            if last {
                segments.push("");
            }
        } else {
            segments.push(segment);
        }
    }
    let path = format!("/{}", segments.join("/"));
    // A path that starts with an empty segment is protocol-relative (`//host`), also once a later hop
    // decodes `%2F` or `%5C`.
    let decoded = percent_encoding::percent_decode_str(&path).decode_utf8_lossy();
    let off_site = |text: &str| text.starts_with("//") || text.starts_with("/\\");
    if off_site(&path) || off_site(&decoded) {
        return None;
    }
    let lower = decoded.to_ascii_lowercase();
    if lower == "/auth" || lower.starts_with("/auth/") {
        return None;
    }
    Some(format!("{path}{rest}"))
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

/// Name of the cookie that ties a login in flight to the browser that started it (plain HTTP; it is
/// only sent to the callback).
pub(crate) const LOGIN_BINDING_COOKIE: &str = "portico_login";
/// Its name on HTTPS origins. A sibling subdomain that could plant the binding cookie could make a
/// victim's browser finish the planter's own login (login CSRF); `__Host-` makes browsers refuse that.
pub(crate) const SECURE_LOGIN_BINDING_COOKIE: &str = "__Host-portico_login";

/// Every cookie portico itself sets. None of them is ever forwarded upstream, and no upstream may set
/// one: the proxy and the Backstage mount both filter on this list.
pub const PORTAL_COOKIES: [&str; 4] = [
    COOKIE_NAME,
    SECURE_COOKIE_NAME,
    LOGIN_BINDING_COOKIE,
    SECURE_LOGIN_BINDING_COOKIE,
];
/// How long a login may take; the binding cookie lasts as long (see `oidc::LOGIN_TIMEOUT`).
const LOGIN_BINDING_MAX_AGE: u64 = 600;

#[derive(serde::Deserialize)]
struct LoginQuery {
    return_to: Option<String>,
}

/// `GET /auth/login`: dev sign-in shows its picker; OIDC sends the browser to the IdP.
///
/// The client whose pending logins are counted is the connection's peer address: portico trusts no
/// `X-Forwarded-For` anywhere (the proxy overwrites it with the same peer address).
async fn login_get(
    State(state): State<AppState>,
    Extension(context): Extension<RequestContext>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    axum::extract::Query(query): axum::extract::Query<LoginQuery>,
    signed_in: Option<SignedIn>,
) -> Result<Response, AppError> {
    let return_to = safe_return_path(query.return_to.as_deref());
    if signed_in.is_some() {
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, return_to)]).into_response());
    }
    let tenant = &context.tenant;
    match &tenant.sign_in {
        crate::config::SignIn::Dev { users } => {
            dev::login_page(&state, &context, users, &return_to)
        }
        crate::config::SignIn::Oidc(_) => {
            let sessions = &context.config.sessions;
            let limits = oidc::PendingLimits {
                per_client: sessions.pending_sign_ins_per_client,
                per_tenant: sessions.pending_sign_ins_per_tenant,
            };
            let start = match state
                .oidc
                .begin_login(&tenant.id, peer.ip(), limits, return_to)
            {
                Ok(start) => start,
                Err(AuthError::TooManySignIns { retry_after }) => {
                    // Debug only: a flood must not become a flood of log lines too (the access log has the 429).
                    tracing::debug!(tenant = %tenant.id, client = %peer.ip(), "too many pending sign-ins from one client");
                    let mut response =
                        AppError::from(AuthError::TooManySignIns { retry_after }).into_response();
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                    return Ok(response);
                }
                Err(error) => return Err(error.into()),
            };
            let binding = own_set_cookie(
                LOGIN_BINDING_COOKIE,
                &start.browser_binding,
                context.is_https(),
                "/auth/callback",
                Some(LOGIN_BINDING_MAX_AGE),
            );
            let mut response = (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, start.authorize_url)],
            )
                .into_response();
            response.headers_mut().insert(header::SET_COOKIE, binding);
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
    let https = context.is_https();
    // Exactly one binding cookie: with two, one was planted, and either could be the planter's.
    let mut bindings = cookie_values(&headers, cookie_name(LOGIN_BINDING_COOKIE, https));
    let binding = match (bindings.next(), bindings.next()) {
        (Some(binding), None) => Some(binding.to_owned()),
        _ => None,
    };
    let done = match state
        .oidc
        .finish_login(&tenant.id, &params, binding.as_deref())
        .await
    {
        Ok(done) => done,
        Err(error) => {
            let reason = error.log_detail().unwrap_or_else(|| error.to_string());
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
    headers.append(header::SET_COOKIE, session_set_cookie(&id, https));
    headers.append(
        header::SET_COOKIE,
        own_set_cookie(LOGIN_BINDING_COOKIE, "", https, "/auth/callback", Some(0)),
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
            let reason = error.log_detail().unwrap_or_default();
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
        return Ok(logged_out_response(
            &headers,
            "/auth/login",
            context.is_https(),
        ));
    };
    let form_token = form_field(&body, "csrf_token");
    if !csrf::is_same_origin(&headers, context.is_https())
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
    Ok(logged_out_response(
        &headers,
        end_session.as_deref().unwrap_or("/auth/login"),
        context.is_https(),
    ))
}

fn logged_out_response(headers: &HeaderMap, target: &str, https: bool) -> Response {
    let mut response = if crate::http::error::wants_html(headers) {
        (StatusCode::SEE_OTHER, [(header::LOCATION, target)]).into_response()
    } else {
        Json(serde_json::json!({ "signed_out": true, "redirect": target })).into_response()
    };
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_clear_cookie(https));
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
    fn return_paths_are_judged_after_removing_dot_segments() {
        for evil in [
            "/a/../../\\evil",
            "/./\\/evil.example",
            "/..//evil.example",
            "/%2e%2e//evil.example",
            "/.%2E/%2E./\\evil.example",
            "/a/..//evil.example?x=1",
            "/%2F%2Fevil.example",
            "/%5Cevil.example",
            "/x/../auth/logout",
            "/%2e/AUTH/callback",
        ] {
            assert_eq!(safe_return_path(Some(evil)), "/", "{evil}");
        }
        assert_eq!(safe_return_path(Some("/%2e%2e/")), "/");
        assert_eq!(safe_return_path(Some("/a/./b/../c?d=../e")), "/a/c?d=../e");
        assert_eq!(safe_return_path(Some("/a/b/..")), "/a/");
        assert_eq!(safe_return_path(Some("/home/tools#x")), "/home/tools#x");
        assert_eq!(safe_return_path(Some("/authors")), "/authors");
    }

    #[test]
    fn reads_the_session_cookie_among_others() {
        let id = SessionId::generate();
        let mut headers = HeaderMap::new();
        let cookie = format!("theme=dark; portico_session={}; other=1", id.as_str());
        headers.insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
        assert_eq!(session_cookie(&headers, false), Ok(Some(id.clone())));
        assert_eq!(
            session_cookie(&headers, true),
            Ok(None),
            "an https origin wants the __Host- cookie"
        );
        let secure = format!("__Host-portico_session={}", id.as_str());
        headers.insert(header::COOKIE, HeaderValue::from_str(&secure).unwrap());
        assert_eq!(session_cookie(&headers, true), Ok(Some(id)));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("portico_session=forged"),
        );
        assert_eq!(session_cookie(&headers, false), Ok(None));
    }

    #[test]
    fn a_duplicate_session_cookie_is_refused_not_resolved() {
        let (a, b) = (SessionId::generate(), SessionId::generate());
        let mut headers = HeaderMap::new();
        let both = format!(
            "portico_session={}; x=1; portico_session={}",
            a.as_str(),
            b.as_str()
        );
        headers.insert(header::COOKIE, HeaderValue::from_str(&both).unwrap());
        assert_eq!(session_cookie(&headers, false), Err(CookieError::Duplicate));
        let mut split = HeaderMap::new();
        for id in [&a, &b] {
            let one = format!("__Host-portico_session={}", id.as_str());
            split.append(header::COOKIE, HeaderValue::from_str(&one).unwrap());
        }
        assert_eq!(session_cookie(&split, true), Err(CookieError::Duplicate));
        // A plain-named cookie next to the `__Host-` one on HTTPS is ignored, not a duplicate.
        let mixed = format!(
            "portico_session={}; __Host-portico_session={}",
            a.as_str(),
            b.as_str()
        );
        headers.insert(header::COOKIE, HeaderValue::from_str(&mixed).unwrap());
        assert_eq!(session_cookie(&headers, true), Ok(Some(b)));
    }

    #[test]
    fn portico_cookies_get_the_host_prefix_on_https() {
        let binding = own_set_cookie(LOGIN_BINDING_COOKIE, "v", true, "/auth/callback", Some(600));
        assert_eq!(
            binding,
            "__Host-portico_login=v; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=600"
        );
        let binding = own_set_cookie(
            LOGIN_BINDING_COOKIE,
            "v",
            false,
            "/auth/callback",
            Some(600),
        );
        assert_eq!(
            binding,
            "portico_login=v; Path=/auth/callback; HttpOnly; SameSite=Lax; Max-Age=600"
        );
        assert_eq!(
            session_clear_cookie(true),
            "__Host-portico_session=; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=0"
        );
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
