//! The `/auth/*` handlers: sign-in (dev picker or OIDC redirect), the OIDC callback, sign-out,
//! back-channel logout, the signed-out page and `/auth/session`.
//!
//! Handlers only translate between HTTP and the services: `Sessions` for records, `OidcRegistry` for
//! the IdP, `cookies` for what the browser holds. Every answer here is `Cache-Control: no-store` (one
//! layer on the router, not a header per handler): none of it may be cached by a browser or a proxy.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use serde::Deserialize;
use tower_http::set_header::SetResponseHeaderLayer;

use super::cookies::{
    login_binding, login_binding_clear_cookie, login_binding_set_cookie, session_clear_cookie,
    session_set_cookie,
};
use super::error::AuthError;
use super::extract::SignedIn;
use super::return_path::safe_return_path;
use super::session::{EvictionReason, Session, SessionId, Sessions};
use super::{dev, oidc};
use crate::audit::{self, AuditEvent, SignInMethod};
use crate::config::{SessionSettings, SignIn};
use crate::http::csrf;
use crate::http::{AppError, Problem, RequestContext};
use crate::i18n::{LanguageLink, Locale, Texts};
use crate::state::AppState;
use crate::telemetry::{ForwardedClient, Labels};

/// The `/auth/*` routes, all answered `Cache-Control: no-store` unless a handler says otherwise.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", get(login_get))
        .route("/auth/callback", get(callback_get))
        .route("/auth/dev-login", post(dev::dev_login_post))
        .route("/auth/logout", post(logout_post))
        .route("/auth/signed-out", get(signed_out_get))
        .route("/auth/backchannel-logout", post(backchannel_logout_post))
        .route("/auth/session", get(session_get))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// A form body's fields, or none when the body is not a readable form (no or another content type,
/// a field given twice): each handler then answers exactly as for a missing field.
pub(crate) fn form_fields<T: Default>(form: Result<Form<T>, FormRejection>) -> T {
    form.map(|Form(fields)| fields).unwrap_or_default()
}

/// Stores a new session (always a fresh id: no session fixation) and audits the sign-in, and every
/// older session it ended because a limit (`max_sessions_per_user`, `max_sessions`) was reached.
pub(crate) async fn start_session(
    sessions: &Sessions,
    settings: &SessionSettings,
    session: Session,
    method: SignInMethod,
    labels: &Labels,
) -> Result<SessionId, AuthError> {
    let id = session.id.clone();
    let (tenant, user) = (session.tenant.clone(), session.user.subject.clone());
    labels.user(&user);
    let evicted = sessions
        .start(session, settings)
        .await
        .map_err(AuthError::StoreUnavailable)?;
    audit::emit(AuditEvent::SignIn {
        tenant: tenant.as_str(),
        user: &user,
        method,
        session: &id.log_hash(),
    });
    for eviction in evicted {
        let ended = &eviction.session;
        if eviction.reason == EvictionReason::Total {
            // Not one user's business: the instance is full, and whoever was idle longest lost out.
            tracing::warn!(
                max_sessions = settings.max_sessions,
                "session limit reached: the least recently used session was ended; raise sessions.max_sessions"
            );
        }
        audit::emit(AuditEvent::SessionEvicted {
            tenant: ended.tenant.as_str(),
            user: &ended.user.subject,
            session: &ended.id.log_hash(),
            reason: eviction.reason.as_str(),
        });
    }
    Ok(id)
}

#[derive(Deserialize)]
struct LoginQuery {
    return_to: Option<String>,
}

/// `GET /auth/login`: dev sign-in shows its picker; OIDC sends the browser to the IdP.
///
/// The client whose pending logins are counted is the connection's peer address, or behind a
/// `server.trusted_proxies` entry the address that proxy named (the access layer's `ForwardedClient`):
/// otherwise everybody behind one load balancer would share one client's share.
async fn login_get(
    State(state): State<AppState>,
    Extension(context): Extension<RequestContext>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    forwarded: Option<Extension<ForwardedClient>>,
    Query(query): Query<LoginQuery>,
    signed_in: Option<SignedIn>,
    locale: Locale,
) -> Result<Response, AppError> {
    let return_to = safe_return_path(query.return_to.as_deref());
    if signed_in.is_some() {
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, return_to)]).into_response());
    }
    match &context.tenant.sign_in {
        SignIn::Dev { users } => dev::login_page(&state, &context, users, &return_to, locale),
        SignIn::Oidc(_) => {
            let client = forwarded.map_or(peer.ip(), |Extension(ForwardedClient(ip))| ip);
            oidc_login_redirect(&state, &context, client, return_to, locale).await
        }
    }
}

/// Starts an OIDC login and sends the browser to the IdP with a fresh binding cookie.
async fn oidc_login_redirect(
    state: &AppState,
    context: &RequestContext,
    client: IpAddr,
    return_to: String,
    locale: Locale,
) -> Result<Response, AppError> {
    let tenant = &context.tenant;
    let sessions = &context.config.sessions;
    let limits = oidc::PendingLimits {
        per_client: sessions.pending_sign_ins_per_client,
        per_tenant: sessions.pending_sign_ins_per_tenant,
    };
    let start = match state
        .oidc
        .begin_login(&tenant.id, client, limits, return_to, locale.tag())
        .await
    {
        Ok(start) => start,
        Err(error @ AuthError::TooManySignIns { .. }) => {
            // Debug only: a flood must not become a flood of log lines too (the access log has the 429).
            tracing::debug!(tenant = %tenant.id, %client, "too many pending sign-ins from one client");
            return Err(error.into());
        }
        Err(AuthError::SignInUnavailable(reason)) => {
            // The IdP is checked again within its probe interval: a good time to come back.
            let retry_after = match &tenant.sign_in {
                SignIn::Oidc(settings) => settings.probe_interval.as_secs().max(1),
                SignIn::Dev { .. } => 1,
            };
            let mut response = AppError::from(AuthError::SignInUnavailable(reason)).into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            return Ok(response);
        }
        Err(error) => return Err(error.into()),
    };
    let binding = login_binding_set_cookie(&start.browser_binding, context.is_https());
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, start.authorize_url)],
        [(header::SET_COOKIE, binding)],
    )
        .into_response())
}

/// `GET /auth/callback`: the IdP sends the browser back here with a code; a fresh session starts.
async fn callback_get(
    State(state): State<AppState>,
    Extension(context): Extension<RequestContext>,
    Extension(labels): Extension<Labels>,
    Query(params): Query<oidc::CallbackParams>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let tenant = &context.tenant;
    let https = context.is_https();
    let binding = login_binding(&headers, https);
    let done = match state
        .oidc
        .finish_login(&tenant.id, &params, binding.as_deref())
        .await
    {
        Ok(done) => done,
        Err(error) => {
            let reason = error.log_detail().unwrap_or_else(|| error.to_string());
            audit::emit(AuditEvent::SignInRefused {
                tenant: tenant.id.as_str(),
                reason: &reason,
            });
            return Err(error.into());
        }
    };
    let id = start_session(
        &state.sessions,
        &context.config.sessions,
        done.session,
        SignInMethod::Oidc,
        &labels,
    )
    .await?;
    let mut response =
        (StatusCode::SEE_OTHER, [(header::LOCATION, done.return_to)]).into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, session_set_cookie(&id, https));
    headers.append(header::SET_COOKIE, login_binding_clear_cookie(https));
    Ok(response)
}

#[derive(askama::Template)]
#[template(path = "signed_out.html")]
struct SignedOutView<'a> {
    t: Texts,
    languages: Vec<LanguageLink>,
    title: &'a str,
    logo: String,
    favicon: String,
}

/// `GET /auth/signed-out`: the page after signing out, in the tenant's branding; where the IdP
/// returns the browser after ending its session, and where dev sign-in goes straight away.
async fn signed_out_get(
    Extension(context): Extension<RequestContext>,
    locale: Locale,
) -> Result<Response, AppError> {
    let tenant = &context.tenant;
    let view = SignedOutView {
        t: locale.texts(),
        languages: LanguageLink::all(locale, "/auth/signed-out"),
        title: &tenant.branding.title,
        logo: tenant.branding.logo_href(),
        favicon: tenant.branding.page_favicon(),
    };
    let page = askama::Template::render(&view)?;
    Ok((
        [(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
        )],
        Html(page),
    )
        .into_response())
}

#[derive(Default, Deserialize)]
struct BackchannelLogoutForm {
    logout_token: Option<String>,
}

/// The namespace of back-channel logout tokens' `jti`s in Redis.
const LOGOUT_JTI: &str = "jti";

/// `POST /auth/backchannel-logout`: the IdP ends sessions server-to-server (OIDC Back-Channel Logout 1.0).
async fn backchannel_logout_post(
    State(state): State<AppState>,
    Extension(context): Extension<RequestContext>,
    form: Result<Form<BackchannelLogoutForm>, FormRejection>,
) -> Result<Response, AppError> {
    let tenant = &context.tenant;
    let token = form_fields(form)
        .logout_token
        .ok_or_else(|| AuthError::InvalidLogoutToken("no logout_token".into()))?;
    let target = match state.oidc.verify_logout_token(&tenant.id, &token).await {
        Ok(target) => target,
        Err(error) => {
            let reason = error.log_detail().unwrap_or_default();
            audit::emit(AuditEvent::BackchannelLogoutRefused {
                tenant: tenant.id.as_str(),
                reason: &reason,
            });
            return Err(error.into());
        }
    };
    // Every instance remembers the token's `jti` in memory; with Redis, so do they all together: a
    // token replayed to another instance is refused there too.
    let replay_key = target.replay_key(&tenant.id);
    if let Some(redis) = &state.redis {
        let remember_for = target.remember_for(crate::clock::unix_now());
        match redis.first_use(LOGOUT_JTI, &replay_key, remember_for).await {
            Ok(true) => {}
            Ok(false) => {
                let error = AuthError::InvalidLogoutToken(
                    "replayed: a logout token with this jti was already used".into(),
                );
                audit::emit(AuditEvent::BackchannelLogoutRefused {
                    tenant: tenant.id.as_str(),
                    reason: &error.log_detail().unwrap_or_default(),
                });
                return Err(error.into());
            }
            Err(error) => {
                state.oidc.forget_logout_token(&tenant.id, &target);
                return Err(AuthError::StoreUnavailable(error).into());
            }
        }
    }
    let ended = match state
        .sessions
        .remove_for_logout(&tenant.id, target.subject.as_deref(), target.sid.as_deref())
        .await
    {
        Ok(ended) => ended,
        Err(error) => {
            // Nothing ended: the IdP may deliver the same token again.
            state.oidc.forget_logout_token(&tenant.id, &target);
            if let Some(redis) = &state.redis {
                let _ = redis.forget_use(LOGOUT_JTI, &replay_key).await;
            }
            return Err(AuthError::StoreUnavailable(error).into());
        }
    };
    audit::emit(AuditEvent::BackchannelLogout {
        tenant: tenant.id.as_str(),
        user: target.subject.as_deref().unwrap_or("-"),
        sid: target.sid.as_deref().unwrap_or("-"),
        sessions: ended,
    });
    // A logout of the subject itself (no `sid`: what an IdP sends when a user is disabled or removed,
    // not when one of their sessions ends) also ends their personal tokens: a token must not outlive
    // the person it speaks for.
    if let (Some(subject), None) = (&target.subject, &target.sid) {
        match state
            .personal_tokens
            .revoke_subject(&tenant.id, subject)
            .await
        {
            Ok(0) => {}
            Ok(_) => audit::emit(AuditEvent::TokenRevoked {
                tenant: tenant.id.as_str(),
                user: subject,
                token: "*",
                trigger: "backchannel_logout",
            }),
            Err(error) => {
                // The sessions are gone; the IdP delivers the token again on an error.
                state.oidc.forget_logout_token(&tenant.id, &target);
                if let Some(redis) = &state.redis {
                    let _ = redis.forget_use(LOGOUT_JTI, &replay_key).await;
                }
                return Err(AuthError::StoreUnavailable(error).into());
            }
        }
    }
    Ok(StatusCode::OK.into_response())
}

#[derive(Default, Deserialize)]
struct LogoutForm {
    csrf_token: Option<String>,
}

/// `POST /auth/logout`: ends the session. Needs the CSRF token and a same-origin request.
async fn logout_post(
    State(state): State<AppState>,
    Extension(context): Extension<RequestContext>,
    signed_in: Result<SignedIn, AppError>,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Result<Response, AppError> {
    let tenant = context.tenant.id.as_str();
    let Ok(signed_in) = signed_in else {
        // Already signed out: say so, and clear whatever cookie the browser still has.
        return Ok(logged_out_response(
            &headers,
            "/auth/login",
            context.is_https(),
        ));
    };
    let form_token = form_fields(form).csrf_token;
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
    state
        .sessions
        .remove(&session.id)
        .await
        .map_err(AuthError::StoreUnavailable)?;
    audit::emit(AuditEvent::SignOut {
        tenant,
        user: &session.user.subject,
        session: &session.id.log_hash(),
    });
    // Ending portico's session is not enough: the IdP's session would sign the user straight back in.
    let end_session = state.oidc.end_session_url(session);
    Ok(logged_out_response(
        &headers,
        end_session.as_deref().unwrap_or("/auth/signed-out"),
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
        "roles": signed_in.roles().names(),
        "created_at": session.created_at,
    });
    Json(body).into_response()
}
