//! Preview overrides: a signed-in developer sends one app's requests to a preview upstream (the app's
//! pull request, deployed somewhere the tenant's `previews.upstreams` allows), for their own session.
//!
//! A pull request carries a link, `/shell/preview/<app>?upstream=<url>`. Opening it changes nothing:
//! it shows what would happen and asks; only the page's own form (a same-origin POST with the session's
//! CSRF token) starts the override, so a link sent by someone else can never redirect a user's app
//! traffic. The override lives in the session record (both stores), ends with the session, after
//! `previews.lifetime`, or from the banner the shell shows while it lasts; each start, end and refused
//! attempt is audited.
//!
//! The proxy asks [`active`] on every request for an upstream app: it answers only while the override
//! still passes every check it passed when it started, against the *current* config (the pattern, the
//! role, the app's target), so a reload that narrows `previews` ends the override at once. The access
//! decision and the identity sent are the app's own: a preview is the same app at another address.
//! This module never chooses an upstream that is not allowed now, and never starts an override on GET.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use serde::Deserialize;

use super::AppsError;
use crate::audit::{self, AuditEvent};
use crate::auth::session::{PreviewOverride, Session};
use crate::auth::{AuthError, SignedIn};
use crate::clock::unix_now;
use crate::config::{App, AppMount, AppTarget, PreviewSettings, Tenant, Upstream, parse_upstream};
use crate::http::{AppError, Class, Problem, RequestContext, csrf};
use crate::i18n::{Locale, Texts};
use crate::rbac;
use crate::state::AppState;

/// The response header on every answer a preview gave: its URL.
pub(crate) const PREVIEW_HEADER: &str = "x-portico-preview";

/// Why a preview could not be started (or its page not shown).
#[derive(Debug, thiserror::Error)]
pub(crate) enum PreviewError {
    /// 404: the tenant has no `previews:`.
    #[error("previews are not enabled in this portal")]
    Off,
    /// 400: the link names no `upstream`.
    #[error("say where the preview lives: `/shell/preview/<app>?upstream=<url>`")]
    NoUpstream,
    /// 400: `upstream` is not a URL portico could forward to.
    #[error("the preview address is not usable: {0}")]
    BadUpstream(String),
    /// 400: `upstream` matches none of `previews.upstreams`.
    #[error("`{upstream}` is not an address previews may use here; allowed: {allowed}")]
    NotAllowed { upstream: String, allowed: String },
    /// 400: the app is served by portico itself (static files, an embedded bundle, Backstage's UI).
    #[error("`{0}` is served by the portal itself, so it has no upstream to replace")]
    NotAnUpstream(String),
    /// 400: the app receives the user's IdP access token, which no preview may receive.
    #[error("`{0}` receives your sign-in's access token, which is never sent to a preview")]
    PassesAccessToken(String),
    /// 403: the user may open the app, but previews are for other roles.
    #[error("previews in this portal are for the roles: {0}")]
    NotPermitted(String),
    /// 403: a preview may not install a service worker, which would outlive it.
    #[error(
        "a preview may not install a service worker: it would keep answering after the preview ends"
    )]
    ServiceWorker,
}

impl Problem for PreviewError {
    fn classify(&self) -> Class {
        match self {
            PreviewError::Off => Class::new(StatusCode::NOT_FOUND, "previews_off"),
            PreviewError::NoUpstream
            | PreviewError::BadUpstream(_)
            | PreviewError::NotAllowed { .. }
            | PreviewError::NotAnUpstream(_)
            | PreviewError::PassesAccessToken(_) => {
                Class::new(StatusCode::BAD_REQUEST, "preview_refused")
            }
            PreviewError::NotPermitted(_) => Class::new(StatusCode::FORBIDDEN, "forbidden"),
            PreviewError::ServiceWorker => Class::new(StatusCode::FORBIDDEN, "preview_refused"),
        }
    }
}

/// `GET /shell/preview/{app}?upstream=…` (the confirmation page), `POST` there (start), and
/// `POST /shell/preview/{app}/end`. None of it may be cached.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/shell/preview/{app}", get(confirm_get).post(start_post))
        .route("/shell/preview/{app}/end", post(end_post))
        .layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        ))
}

/// The upstream this session's requests for `app` go to instead of its own, if it has an override
/// that has not ended and that the tenant's current config still allows; `None` otherwise (the app's
/// own upstream). Costs one empty-slice check for a session without overrides.
pub(crate) fn active(tenant: &Tenant, signed_in: &SignedIn, app: &App) -> Option<Upstream> {
    let session = &signed_in.session;
    if session.previews.all().is_empty() {
        return None;
    }
    let preview = session.previews.active(&app.id, unix_now())?;
    checked(tenant, signed_in, app, &preview.upstream)
        .ok()
        .map(|(upstream, _)| upstream)
}

/// What a preview must not leave behind in the browser once it ends: a service worker (the browser
/// fetches its script with `Service-Worker: script`) would keep answering the app's requests from the
/// preview's code. Refused before anything is sent to the preview.
pub(super) fn refuse_lasting_effects(request: &axum::extract::Request) -> Result<(), AppError> {
    if request.headers().contains_key("service-worker") {
        return Err(PreviewError::ServiceWorker.into());
    }
    Ok(())
}

/// An answer a preview gave: it says so (`x-portico-preview`), and the browser keeps none of it, so the
/// app's own build never runs the preview's cached scripts once the preview ends.
pub(super) fn mark_answer(preview: &Upstream, headers: &mut HeaderMap) {
    if let Ok(value) = HeaderValue::from_str(&preview.url) {
        headers.insert(PREVIEW_HEADER, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.remove(header::ETAG);
    headers.remove(header::LAST_MODIFIED);
}

/// One preview in use, as the shell's banner names it.
pub(crate) struct InUse {
    pub app: String,
    pub label: String,
    pub upstream: String,
}

/// The previews this session uses now (those [`active`] would route), for the shell's banner.
pub(crate) fn in_use(tenant: &Tenant, signed_in: &SignedIn, locale: Locale) -> Vec<InUse> {
    signed_in
        .session
        .previews
        .all()
        .iter()
        .filter_map(|preview| {
            let app = tenant.app(preview.app.as_str())?;
            let upstream = active(tenant, signed_in, app)?;
            Some(InUse {
                app: app.id.to_string(),
                label: app.label.get(locale).to_owned(),
                upstream: upstream.url,
            })
        })
        .collect()
}

/// Everything a preview of `app` at `url` must pass, now: previews on, the user may open the app and
/// holds a preview role, the app has an upstream and no access token, the URL is allowed. The
/// preview's upstream, with TLS settings for `https://`, and the tenant's preview settings.
fn checked<'t>(
    tenant: &'t Tenant,
    signed_in: &SignedIn,
    app: &App,
    url: &str,
) -> Result<(Upstream, &'t PreviewSettings), AppError> {
    let settings = tenant.previews.as_ref().ok_or(PreviewError::Off)?;
    may_preview(settings, signed_in, app)?;
    let mut upstream = parse_upstream(url).map_err(PreviewError::BadUpstream)?;
    if !settings.allows(&upstream) {
        return Err(PreviewError::NotAllowed {
            upstream: url.to_owned(),
            allowed: allowed(settings),
        }
        .into());
    }
    if upstream.url.starts_with("https://") {
        upstream.tls = Some(settings.tls.clone());
    }
    Ok((upstream, settings))
}

/// The user may open `app` (the same decision as the navigation's), holds a preview role if the
/// tenant names some, and `app` is one whose upstream a preview can stand in for.
fn may_preview(
    settings: &PreviewSettings,
    signed_in: &SignedIn,
    app: &App,
) -> Result<(), AppError> {
    let roles = signed_in.roles();
    if !rbac::decide(roles, &app.policy, &Method::GET, "/").is_allowed() {
        return Err(AppsError::Forbidden {
            app: app.id.clone(),
            needed: app
                .access
                .roles
                .iter()
                .map(|r| r.0.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
        .into());
    }
    if let Some(rule) = &settings.roles {
        if !rule.allows(roles) {
            let names: Vec<&str> = rule.roles.iter().map(|role| role.0.as_str()).collect();
            return Err(PreviewError::NotPermitted(names.join(", ")).into());
        }
    }
    if app.mount != AppMount::Apps || !matches!(app.target, AppTarget::Upstream(_)) {
        return Err(PreviewError::NotAnUpstream(app.id.to_string()).into());
    }
    if app.identity.access_token {
        return Err(PreviewError::PassesAccessToken(app.id.to_string()).into());
    }
    Ok(())
}

/// The allowed patterns, for a message.
fn allowed(settings: &PreviewSettings) -> String {
    settings
        .upstreams
        .iter()
        .map(|pattern| pattern.written.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The app `id` names in `tenant` (an `/apps/` app), or 404.
fn app_named<'t>(tenant: &'t Tenant, id: &str) -> Result<&'t App, AppError> {
    tenant
        .app(id)
        .map(AsRef::as_ref)
        .ok_or_else(|| AppsError::UnknownApp(id.to_owned()).into())
}

/// Where the shell shows `app`.
fn shell_path(app: &App) -> String {
    format!("/home/{}", app.id)
}

#[derive(Default, Deserialize)]
struct ConfirmQuery {
    upstream: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "preview.html")]
struct ConfirmView<'a> {
    t: Texts,
    title: &'a str,
    favicon: String,
    app_id: &'a str,
    app_label: &'a str,
    owner: Option<&'a str>,
    upstream: &'a str,
    /// The preview this one replaces, if the session has one for the app already.
    replaces: Option<&'a str>,
    lifetime: String,
    csrf_token: &'a str,
    cancel: String,
}

/// `GET /shell/preview/{app}?upstream=<url>`: what starting the preview would do, and a button that
/// does it. Changes nothing; a user who is not signed in is sent to sign in and comes back here.
async fn confirm_get(
    Extension(context): Extension<RequestContext>,
    signed_in: SignedIn,
    Path(app_id): Path<String>,
    query: Result<Query<ConfirmQuery>, axum::extract::rejection::QueryRejection>,
    locale: Locale,
) -> Result<Response, AppError> {
    let tenant = &context.tenant;
    let app = app_named(tenant, &app_id)?;
    let url = query
        .ok()
        .and_then(|Query(query)| query.upstream)
        .ok_or(PreviewError::NoUpstream)?;
    let (upstream, settings) = checked(tenant, &signed_in, app, &url)
        .inspect_err(|error| audit_refused(tenant, &signed_in.session, app, &url, error))?;
    let session = &signed_in.session;
    let replaces = session
        .previews
        .active(&app.id, unix_now())
        .filter(|current| current.upstream != upstream.url)
        .map(|current| current.upstream.as_str());
    let view = ConfirmView {
        t: locale.texts(),
        title: &tenant.branding.title,
        favicon: tenant.branding.page_favicon(),
        app_id: app.id.as_str(),
        app_label: app.label.get(locale),
        owner: app.owner.as_deref(),
        upstream: &upstream.url,
        replaces,
        lifetime: humantime::format_duration(settings.lifetime).to_string(),
        csrf_token: &session.csrf_token,
        cancel: shell_path(app),
    };
    let page = askama::Template::render(&view)?;
    Ok((
        [
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
            ),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(page),
    )
        .into_response())
}

/// The fields of both forms (the confirmation page's; the banner's, without `upstream`).
#[derive(Default, Deserialize)]
struct PreviewForm {
    upstream: Option<String>,
    csrf_token: Option<String>,
}

/// `POST /shell/preview/{app}`: starts the override the confirmation page showed. Same-origin and the
/// session's CSRF token, like every state change; then every check again.
async fn start_post(
    State(state): State<AppState>,
    Extension(context): Extension<RequestContext>,
    signed_in: SignedIn,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<PreviewForm>, FormRejection>,
) -> Result<Response, AppError> {
    let tenant = &context.tenant;
    let (app, form) = from_own_page(&context, &signed_in, &headers, form, &app_id)?;
    let url = form.upstream.ok_or(PreviewError::NoUpstream)?;
    let (upstream, settings) = checked(tenant, &signed_in, app, &url)
        .inspect_err(|error| audit_refused(tenant, &signed_in.session, app, &url, error))?;
    let now = unix_now();
    let preview = PreviewOverride {
        app: app.id.clone(),
        upstream: upstream.url.clone(),
        since: now,
        until: now.saturating_add(settings.lifetime.as_secs()),
    };
    let until = preview.until;
    change_previews(&state, &signed_in, |session| {
        session.previews = session.previews.with(preview, now);
    })
    .await?;
    let session = &signed_in.session;
    audit::emit(AuditEvent::PreviewStarted {
        tenant: tenant.id.as_str(),
        user: &session.user.subject,
        app: app.id.as_str(),
        upstream: &upstream.url,
        session: &session.id.log_hash(),
        until,
    });
    let body = serde_json::json!({
        "app": app.id,
        "upstream": upstream.url,
        "until": until,
        "redirect": shell_path(app),
    });
    Ok(done(&headers, &shell_path(app), body))
}

/// `POST /shell/preview/{app}/end`: the app's own upstream again, for this session.
async fn end_post(
    State(state): State<AppState>,
    Extension(context): Extension<RequestContext>,
    signed_in: SignedIn,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<PreviewForm>, FormRejection>,
) -> Result<Response, AppError> {
    let tenant = &context.tenant;
    let (app, _) = from_own_page(&context, &signed_in, &headers, form, &app_id)?;
    let now = unix_now();
    let ended = signed_in
        .session
        .previews
        .all()
        .iter()
        .find(|preview| preview.app == app.id)
        .cloned();
    if let Some(ended) = &ended {
        change_previews(&state, &signed_in, |session| {
            session.previews = session.previews.without(&app.id, now);
        })
        .await?;
        let session = &signed_in.session;
        audit::emit(AuditEvent::PreviewEnded {
            tenant: tenant.id.as_str(),
            user: &session.user.subject,
            app: app.id.as_str(),
            upstream: &ended.upstream,
            session: &session.id.log_hash(),
        });
    }
    let body = serde_json::json!({
        "app": app.id,
        "ended": ended.is_some(),
        "redirect": shell_path(app),
    });
    Ok(done(&headers, &shell_path(app), body))
}

/// A state change must come from the portal's own page: same-origin, and the session's token in the
/// form (or header); a refusal is audited. Then the tenant's app it names, and the form's fields.
fn from_own_page<'t>(
    context: &'t RequestContext,
    signed_in: &SignedIn,
    headers: &HeaderMap,
    form: Result<Form<PreviewForm>, FormRejection>,
    app_id: &str,
) -> Result<(&'t App, PreviewForm), AppError> {
    let form = crate::auth::form_fields(form);
    let https = context.is_https();
    let token = form.csrf_token.as_deref();
    if csrf::is_same_origin(headers, https)
        && csrf::token_matches(headers, token, &signed_in.session.csrf_token)
    {
        return Ok((app_named(&context.tenant, app_id)?, form));
    }
    let path = format!("/shell/preview/{app_id}");
    audit::emit(AuditEvent::CsrfRejected {
        tenant: context.tenant.id.as_str(),
        path: &path,
    });
    Err(AuthError::CsrfRejected.into())
}

/// Writes the session's record with `change` applied to its current copy (re-read, so a refresh that
/// happened since this request's lookup is not undone).
async fn change_previews(
    state: &AppState,
    signed_in: &SignedIn,
    change: impl FnOnce(&mut Session),
) -> Result<(), AppError> {
    let id = &signed_in.session.id;
    let current = state
        .sessions
        .current(id)
        .await
        .map_err(AuthError::StoreUnavailable)?
        .ok_or(AuthError::NotSignedIn)?;
    let mut session = Session::clone(&current);
    change(&mut session);
    let written = state
        .sessions
        .update(session)
        .await
        .map_err(AuthError::StoreUnavailable)?;
    if !written {
        return Err(AuthError::NotSignedIn.into());
    }
    Ok(())
}

/// A browser goes back to the app in the shell; a script gets `body`. Either way the browser drops its
/// HTTP cache for the origin: what it cached of the app's own build must not answer inside the preview,
/// nor the preview's files after it (`mark_answer` keeps new ones from being cached).
fn done(headers: &HeaderMap, target: &str, body: serde_json::Value) -> Response {
    let mut response = if crate::http::error::wants_html(headers) {
        (StatusCode::SEE_OTHER, [(header::LOCATION, target)]).into_response()
    } else {
        Json(body).into_response()
    };
    response.headers_mut().insert(
        HeaderName::from_static("clear-site-data"),
        HeaderValue::from_static("\"cache\""),
    );
    response
}

/// A preview that was asked for and refused: a link to a preview the tenant does not allow may be
/// someone's attempt to route a colleague's traffic, so it is kept.
fn audit_refused(tenant: &Tenant, session: &Session, app: &App, url: &str, error: &AppError) {
    let Some(reason) = error.downcast_ref::<PreviewError>() else {
        return;
    };
    audit::emit(AuditEvent::PreviewRefused {
        tenant: tenant.id.as_str(),
        user: &session.user.subject,
        app: app.id.as_str(),
        upstream: url,
        reason: &reason.to_string(),
    });
}
