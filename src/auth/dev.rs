//! Development sign-in: pick a demo user from a list, no password.
//!
//! It exists so a newcomer can try the portal with one command. It must never be reachable in
//! production: `app::App::build` refuses to start a config that uses it on a non-loopback listener, the
//! handlers here check again on every request, and both the log and the page say loudly what it is.
//!
//! A loopback listener is still reachable from any web page the user visits through DNS rebinding
//! (`evil.example` re-resolved to 127.0.0.1 makes the attacker's page same-origin with portico, so
//! even the `Origin` check passes). Such a request carries the attacker's host name, so dev sign-in
//! answers only when every name the request gives is one the tenant lists, never for a host that
//! reached the tenant as `default_tenant`.

use askama::Template;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::cookies::session_set_cookie;
use super::error::AuthError;
use super::return_path::safe_return_path;
use super::routes::{form_fields, start_session};
use super::session::{Session, User};
use crate::audit::{self, AuditEvent, SignInMethod};
use crate::config::{DevUser, SignIn, Tenant};
use crate::http::csrf;
use crate::http::{AppError, RequestContext};
use crate::i18n::{LanguageLink, Locale, Texts};
use crate::state::AppState;
use crate::telemetry::Labels;

struct DevUserRow<'a> {
    user: &'a DevUser,
    roles: String,
}

#[derive(Template)]
#[template(path = "dev_login.html")]
struct DevLoginView<'a> {
    t: Texts,
    languages: Vec<LanguageLink>,
    title: &'a str,
    logo: String,
    favicon: String,
    tenant: &'a str,
    listen: String,
    users: Vec<DevUserRow<'a>>,
    return_to: &'a str,
}

/// The dev sign-in page (what `GET /auth/login` shows for a dev tenant): the user picker.
pub(crate) fn login_page(
    state: &AppState,
    context: &RequestContext,
    users: &[DevUser],
    return_to: &str,
    locale: Locale,
) -> Result<Response, AppError> {
    let tenant: &Tenant = &context.tenant;
    if !state.dev_sign_in_allowed() {
        return Err(AuthError::DevSignInRefused.into());
    }
    if !context.host_listed {
        audit::emit(AuditEvent::SignInRefused {
            tenant: tenant.id.as_str(),
            reason: "dev sign-in asked for on a host the tenant does not list",
        });
        return Err(AuthError::DevSignInUnlistedHost.into());
    }
    let texts = locale.texts();
    let view = DevLoginView {
        t: texts,
        languages: LanguageLink::all(
            locale,
            &format!(
                "/auth/login?return_to={}",
                percent_encoding::utf8_percent_encode(
                    return_to,
                    percent_encoding::NON_ALPHANUMERIC
                )
            ),
        ),
        title: &tenant.branding.title,
        logo: tenant.branding.logo_href(),
        favicon: tenant.branding.page_favicon(),
        tenant: tenant.id.as_str(),
        listen: state.listen.to_string(),
        users: users
            .iter()
            .map(|user| DevUserRow {
                user,
                roles: {
                    let roles = tenant.roles.roles_for(&user.groups);
                    if roles.0.is_empty() {
                        texts.get("page.signIn.none").into()
                    } else {
                        roles.names().join(", ")
                    }
                },
            })
            .collect(),
        return_to,
    };
    let page = view.render()?;
    // `Cache-Control: no-store` comes from the `/auth` router's layer.
    Ok((
        [(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
        )],
        Html(page),
    )
        .into_response())
}

/// The picker's form: which demo user, and where to go afterwards.
#[derive(Default, Deserialize)]
pub struct DevLoginForm {
    user: Option<String>,
    return_to: Option<String>,
}

/// `POST /auth/dev-login`: signs in as the chosen demo user with a fresh session id.
pub async fn dev_login_post(
    State(state): State<AppState>,
    Extension(context): Extension<RequestContext>,
    Extension(labels): Extension<Labels>,
    headers: HeaderMap,
    form: Result<Form<DevLoginForm>, FormRejection>,
) -> Result<Response, AppError> {
    let tenant = &context.tenant;
    if !state.dev_sign_in_allowed() {
        audit::emit(AuditEvent::SignInRefused {
            tenant: tenant.id.as_str(),
            reason: "dev sign-in on non-loopback listener",
        });
        return Err(AuthError::DevSignInRefused.into());
    }
    if !context.host_listed {
        audit::emit(AuditEvent::SignInRefused {
            tenant: tenant.id.as_str(),
            reason: "dev sign-in asked for on a host the tenant does not list",
        });
        return Err(AuthError::DevSignInUnlistedHost.into());
    }
    // Login CSRF: another site must not be able to sign a visitor in as someone else.
    if !csrf::is_same_origin(&headers, context.is_https()) {
        audit::emit(AuditEvent::CsrfRejected {
            tenant: tenant.id.as_str(),
            path: "/auth/dev-login",
        });
        return Err(AuthError::CsrfRejected.into());
    }
    let SignIn::Dev { users } = &tenant.sign_in else {
        return Err(AuthError::DevSignInRefused.into());
    };
    let form = form_fields(form);
    let wanted = form.user.unwrap_or_default();
    let Some(user) = users.iter().find(|user| user.id == wanted) else {
        audit::emit(AuditEvent::SignInRefused {
            tenant: tenant.id.as_str(),
            reason: "unknown dev user",
        });
        return Err(AuthError::UnknownDevUser(wanted).into());
    };
    let session = Session::new(
        &tenant.id,
        User {
            subject: user.id.clone(),
            name: user.name.clone(),
            email: user.email.clone(),
            groups: user.groups.clone(),
        },
    );
    let id = start_session(
        &state.sessions,
        &context.config.sessions,
        session,
        SignInMethod::Dev,
        &labels,
    )
    .await?;
    let return_to = safe_return_path(form.return_to.as_deref());
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, return_to)],
        [(
            header::SET_COOKIE,
            session_set_cookie(&id, context.is_https()),
        )],
    )
        .into_response())
}
