//! The one place where errors become HTTP responses.
//!
//! Each module keeps its own error enum and implements [`Problem`] for it once: one `match` that says,
//! per variant, the status, a stable machine-readable code, whether a browser should be sent to sign in,
//! and what the log should say beyond the public message. Handlers return `Result<_, AppError>`;
//! `AppError` boxes any `Problem`, and `AppError::into_response` only records an [`ErrorReport`] in the
//! response extensions. [`render`], called by the tenant origin's one pass with what it kept of the request, then writes it as a
//! readable HTML page for a browser navigation or as JSON for an API call, with the request id that is
//! also in the log line. A browser navigation without a session becomes a redirect to sign-in instead.
//! A refusal may carry an [`ErrorAccess`] (attached explicitly by the code that refused): the page and
//! the JSON then say what would open that very path and whom to ask, and nothing beyond it.
//! Internal details go to the log only, never into a response. Every error and every JSON response
//! carries `X-Content-Type-Options: nosniff`; error pages carry their own CSP and may be framed by this
//! origin only (they show inside the shell's app iframes).
//!
//! This module must not name any feature: features depend on it, never the other way round.

use std::error::Error as StdError;

use askama::Template;
use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::i18n::{Locale, Texts};
use crate::telemetry::RequestId;

/// An error that can end a request: how it is shown and logged. Implemented once per module error.
pub trait Problem: StdError + Send + Sync + 'static {
    /// Status, code, sign-in and log detail of this error, from one `match` over its variants.
    fn classify(&self) -> Class;

    /// What the log should say beyond the public message, if anything.
    fn log_detail(&self) -> Option<String> {
        self.classify().detail
    }
}

/// How one error is answered; its public message is the error's `Display`.
#[derive(Debug, Clone)]
pub struct Class {
    status: StatusCode,
    code: &'static str,
    sign_in: bool,
    detail: Option<String>,
    challenge: Option<&'static str>,
    retry_after: Option<u64>,
}

impl Class {
    /// An error answered with `status` and the stable `code` (e.g. `forbidden`, `upstream_unreachable`).
    pub fn new(status: StatusCode, code: &'static str) -> Self {
        Class {
            status,
            code,
            sign_in: false,
            detail: None,
            challenge: None,
            retry_after: None,
        }
    }

    /// `Retry-After` (seconds) of the answer: when asking again can succeed (a 429, a 503).
    #[must_use]
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The `WWW-Authenticate` challenge of the answer (RFC 6750 for bearer tokens), instead of the
    /// cookie challenge every other 401 carries.
    #[must_use]
    pub fn challenge(mut self, challenge: &'static str) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// What the log should say beyond the public message.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// A browser navigation should be sent to sign in rather than shown this error.
    #[must_use]
    pub fn sign_in(mut self) -> Self {
        self.sign_in = true;
        self
    }
}

/// Errors that belong to no feature: a path nothing serves, and bugs.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    /// 404: nothing lives at this path.
    #[error("there is nothing at this address")]
    NotFound,
    /// 500: a bug or an unexpected failure; the detail is logged, not shown.
    #[error("internal error")]
    Internal(String),
    /// 500: a page template failed to render.
    #[error("internal error")]
    Template(#[source] askama::Error),
}

impl Problem for HttpError {
    fn classify(&self) -> Class {
        match self {
            HttpError::NotFound => Class::new(StatusCode::NOT_FOUND, "not_found"),
            HttpError::Internal(detail) => {
                Class::new(StatusCode::INTERNAL_SERVER_ERROR, "internal").detail(detail.as_str())
            }
            HttpError::Template(error) => Class::new(StatusCode::INTERNAL_SERVER_ERROR, "internal")
                .detail(format!("template: {error}")),
        }
    }
}

/// Any module's error, on its way to becoming a response.
#[derive(Debug)]
pub struct AppError(Box<dyn Problem>);

impl AppError {
    /// 404: nothing lives at this path.
    pub fn not_found() -> Self {
        AppError::from(HttpError::NotFound)
    }

    /// 500 with a detail for the log.
    pub fn internal(detail: impl Into<String>) -> Self {
        AppError::from(HttpError::Internal(detail.into()))
    }

    /// The module error inside, when it is an `E`.
    pub fn downcast_ref<E: Problem>(&self) -> Option<&E> {
        let error: &(dyn StdError + 'static) = &*self.0;
        error.downcast_ref::<E>()
    }

    fn report(&self) -> ErrorReport {
        let class = self.0.classify();
        ErrorReport {
            status: class.status,
            code: class.code,
            message: self.0.to_string(),
            detail: class.detail,
            sign_in: class.sign_in,
            challenge: class.challenge,
            retry_after: class.retry_after,
        }
    }
}

impl<P: Problem> From<P> for AppError {
    fn from(problem: P) -> Self {
        AppError(Box::new(problem))
    }
}

impl From<askama::Error> for AppError {
    fn from(error: askama::Error) -> Self {
        AppError::from(HttpError::Template(error))
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What the renderer needs to know about a failed request.
#[derive(Debug, Clone)]
pub(crate) struct ErrorReport {
    pub status: StatusCode,
    /// A stable machine-readable code, e.g. `forbidden`, `upstream_unreachable`.
    pub code: &'static str,
    /// Safe to show to the user.
    pub message: String,
    /// For the log only.
    pub detail: Option<String>,
    /// A browser navigation should be sent to sign in rather than shown an error.
    pub sign_in: bool,
    /// `WWW-Authenticate`, when not the cookie challenge of a 401.
    pub challenge: Option<&'static str>,
    /// `Retry-After`, set on the response from the start (the renderer keeps it).
    pub retry_after: Option<u64>,
}

/// The app a failed request was for, on the error response of a user who may open it: the error page
/// names it and its owner, and shows its catalog entity's owner and links (fetched as the user).
#[derive(Debug, Clone)]
pub(crate) struct ErrorApp {
    label: crate::config::Text,
    owner: Option<String>,
    catalog_ref: Option<String>,
}

impl ErrorApp {
    pub(crate) fn of(app: &crate::config::App) -> Self {
        ErrorApp {
            label: app.label.clone(),
            owner: app.owner.clone(),
            catalog_ref: app.catalog_ref.clone(),
        }
    }

    pub(crate) fn attach(self, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }
}

/// A refusal (403) of an app the user asked for by its address: what the page and the JSON say about
/// getting in. The app's label and owner, the page when a page's rule refused, each role that would
/// open this very path with the groups that grant it, and the tenant's `request_access` links filled
/// for those groups. Never more: nothing of another app, role, group or tenant, so a refused user
/// learns what they need to ask for and nothing they could not already name.
#[derive(Debug, Clone)]
pub(crate) struct ErrorAccess {
    app: String,
    label: crate::config::Text,
    owner: Option<String>,
    page: Option<crate::config::Text>,
    /// Each role that would open the path, with the groups that grant it.
    needs: Vec<(String, Vec<String>)>,
    request_access: Option<crate::config::RequestAccess>,
    /// `{user}`, `{tenant}` and `{path}` of the links.
    user: String,
    tenant: String,
    path: String,
}

/// Who was refused what, for [`ErrorAccess::new`].
pub(crate) struct Refusal<'a> {
    pub tenant: &'a crate::config::Tenant,
    pub app: &'a crate::config::App,
    pub page: Option<&'a crate::config::NavNode>,
    /// Each role that would open the path, with the groups that grant it.
    pub needs: Vec<(&'a str, &'a [String])>,
    /// As `{user}` names them (`AccessAsk::requester`).
    pub user: &'a str,
    pub path: &'a str,
}

impl ErrorAccess {
    pub(crate) fn new(refusal: Refusal<'_>) -> Self {
        ErrorAccess {
            app: refusal.app.id.to_string(),
            label: refusal.app.label.clone(),
            owner: refusal.app.owner.clone(),
            page: refusal.page.map(|page| page.label.clone()),
            needs: refusal
                .needs
                .iter()
                .map(|(role, groups)| ((*role).to_owned(), groups.to_vec()))
                .collect(),
            request_access: refusal.tenant.request_access.clone(),
            user: refusal.user.to_owned(),
            tenant: refusal.tenant.id.to_string(),
            path: refusal.path.to_owned(),
        }
    }

    pub(crate) fn attach(self, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }

    /// The tenant's `request_access` links, with labels in `locale`; empty without a template.
    fn links(&self, locale: Locale) -> Vec<crate::config::AccessLink> {
        let Some(template) = &self.request_access else {
            return Vec::new();
        };
        let ask = crate::config::AccessAsk {
            app: &self.app,
            app_label: self.label.get(locale),
            page: self.page.as_ref().map(|page| page.get(locale)),
            user: &self.user,
            tenant: &self.tenant,
            path: &self.path,
        };
        let needs = self
            .needs
            .iter()
            .map(|(role, groups)| (role.as_str(), groups.as_slice()));
        template.links(&ask, needs)
    }

    /// What the JSON of an API call adds to the error.
    fn json(&self) -> serde_json::Value {
        let locale = Locale::En;
        serde_json::json!({
            "app": { "id": self.app, "label": self.label.get(locale), "owner": self.owner },
            "page": self.page.as_ref().map(|page| page.get(locale)),
            "needs": self.needs.iter().map(|(role, groups)| serde_json::json!({ "role": role, "groups": groups })).collect::<Vec<_>>(),
            "request_access": self.links(locale),
        })
    }

    /// What the page shows, in `texts`' language.
    fn view(&self, texts: Texts) -> AccessView<'_> {
        let locale = texts.locale();
        let links: Vec<LinkView> = self
            .links(locale)
            .into_iter()
            .map(|link| {
                let text = match (&link.group, &link.role) {
                    (Some(group), _) => {
                        texts.fill("page.error.access.requestGroup", &[("group", group)])
                    }
                    (None, Some(role)) => {
                        texts.fill("page.error.access.requestRole", &[("role", role)])
                    }
                    (None, None) => texts.get("page.error.access.request").to_owned(),
                };
                LinkView {
                    text,
                    url: link.url,
                }
            })
            .collect();
        let ask = match (&self.owner, links.is_empty()) {
            (Some(owner), true) => texts.fill("page.error.access.askOwner", &[("owner", owner)]),
            (Some(owner), false) => {
                texts.fill("page.error.access.askOwnerOrRequest", &[("owner", owner)])
            }
            (None, true) => texts.get("page.error.access.askTeam").to_owned(),
            (None, false) => texts.get("page.error.access.askTeamOrRequest").to_owned(),
        };
        AccessView {
            label: self.label.get(locale),
            owner: self.owner.as_deref(),
            page: self.page.as_ref().map(|page| page.get(locale)),
            needs: &self.needs,
            ask,
            links,
        }
    }
}

/// [`ErrorAccess`] as the page shows it.
struct AccessView<'a> {
    label: &'a str,
    owner: Option<&'a str>,
    page: Option<&'a str>,
    needs: &'a [(String, Vec<String>)],
    /// Whom to ask, and whether a link below does it.
    ask: String,
    links: Vec<LinkView>,
}

struct LinkView {
    text: String,
    url: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let report = self.report();
        let mut response = report.status.into_response();
        if let Some(seconds) = report.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(report);
        response
    }
}

/// An error and all its causes on one line, for logs and error details.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Does this request come from a browser navigating (wanting a page), rather than a script or API client?
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    Hints::of(headers).wants_html()
}

/// The request headers that tell a browser's navigation from a script, found in one pass over the
/// headers: cheaper than four hashed lookups on every request (the answer is needed before the
/// request is handed on, whether or not it ends in an error). The first value of each name counts,
/// as `HeaderMap::get` would give it.
#[derive(Default)]
struct Hints<'a> {
    fetch_mode: Option<&'a HeaderValue>,
    fetch_dest: Option<&'a HeaderValue>,
    requested_with: bool,
    accept: Option<&'a HeaderValue>,
}

impl<'a> Hints<'a> {
    fn of(headers: &'a HeaderMap) -> Self {
        let mut hints = Hints::default();
        for (name, value) in headers {
            match name.as_str() {
                "sec-fetch-mode" => _ = hints.fetch_mode.get_or_insert(value),
                "sec-fetch-dest" => _ = hints.fetch_dest.get_or_insert(value),
                "x-requested-with" => hints.requested_with = true,
                "accept" => _ = hints.accept.get_or_insert(value),
                _ => {}
            }
        }
        hints
    }

    fn wants_html(&self) -> bool {
        if let Some(mode) = self.fetch_mode {
            return mode == "navigate";
        }
        if self.requested_with {
            return false;
        }
        self.accept
            .and_then(|value| value.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorView<'a> {
    t: Texts,
    status: u16,
    reason: &'a str,
    message: &'a str,
    request_id: &'a str,
    /// Shown inside an app's iframe when the session ended: sign in again in the top window.
    sign_in_href: Option<String>,
    /// The app the request was for, when the user may open it (its label in the page's language).
    app: Option<(&'a str, &'a ErrorApp)>,
    /// A refusal: the app, the roles and groups that would open it, whom to ask.
    access: Option<AccessView<'a>>,
    /// Inside a frame (the shell's, for an app): the page loads Luigi Client, whose handshake ends
    /// the shell's loading indicator, which would otherwise cover this page for good.
    luigi_client: Option<&'static str>,
}

/// The error page's policy: its inline `<style>`, the shell's `session-ended.js` and `catalog-card.js`
/// scripts and their same-origin catalog read, nothing else. It may be framed by this origin only,
/// because an app's error shows inside the shell's iframe for that app.
const ERROR_PAGE_CSP: HeaderValue = HeaderValue::from_static(
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; connect-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'self'",
);
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

/// JSON is never sniffed into something a browser would run or render (it may echo user input).
fn mark_json_nosniff(response: &mut Response) {
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|content_type| {
            let essence = super::media_essence(content_type);
            essence.eq_ignore_ascii_case("application/json")
                || super::ends_with_ignore_case(essence, "+json")
        });
    if json {
        response
            .headers_mut()
            .insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    }
}

/// What rendering an error needs to know about the request, taken before the request is handed on.
#[derive(Clone, Copy)]
pub(crate) struct ErrorTarget {
    /// A browser navigation: an HTML page, or a sign-in redirect.
    html: bool,
    /// A sign-in redirect inside an app's iframe would be refused (the sign-in page cannot be framed),
    /// so an iframe gets a page with a link that signs in again in the top window.
    in_iframe: bool,
    /// The language of the page.
    locale: Locale,
}

impl ErrorTarget {
    pub(crate) fn of(request: &Request) -> Self {
        let hints = Hints::of(request.headers());
        let html = hints.wants_html();
        ErrorTarget {
            html,
            in_iframe: hints.fetch_dest.is_some_and(|dest| dest == "iframe"),
            // Only a page has a language (JSON errors stay English): API calls and assets, most of
            // what passes here, skip reading `Accept-Language` and the cookies.
            locale: if html {
                Locale::of(request.headers())
            } else {
                Locale::En
            },
        }
    }
}

/// What the page says went wrong: the error's own message in English (it may name what was asked
/// for); in another language, or when the page explains a refusal below it, the text of its code
/// (`page.errors.<code>`) when there is one.
fn public_message(report: &ErrorReport, locale: Locale, explained: bool) -> &str {
    // English shows the error's own message, which may be more specific; unless the page explains
    // the refusal below it (`ErrorAccess`), where the message would only repeat the roles.
    if locale == Locale::En && !explained {
        return &report.message;
    }
    locale
        .texts()
        .find(&format!("page.errors.{}", report.code))
        .unwrap_or(&report.message)
}

/// Turns an [`ErrorReport`] left by a handler into the response the client can use, and marks every
/// JSON response `nosniff`. `uri` is the request's target (the return path of a sign-in redirect) and
/// `request_id` its id, shown on the page.
pub(crate) fn render(
    target: ErrorTarget,
    uri: &Uri,
    request_id: &RequestId,
    mut response: Response,
) -> Response {
    let Some(report) = response.extensions().get::<ErrorReport>().cloned() else {
        mark_json_nosniff(&mut response);
        return response;
    };
    let ErrorTarget {
        html,
        in_iframe,
        locale,
    } = target;
    let request_id = request_id.as_str();
    if let Some(detail) = &report.detail {
        tracing::warn!(request_id, code = report.code, detail, "request failed");
    }
    let return_to = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let sign_in_href = format!(
        "/auth/login?return_to={}",
        percent_encoding::utf8_percent_encode(return_to, percent_encoding::NON_ALPHANUMERIC)
    );
    let mut rendered = if report.sign_in && html && !in_iframe {
        Redirect::to(&sign_in_href).into_response()
    } else if html {
        let texts = locale.texts();
        let view = ErrorView {
            t: texts,
            status: report.status.as_u16(),
            reason: texts
                .find(&format!("page.status.{}", report.status.as_u16()))
                .or(report.status.canonical_reason())
                .unwrap_or("Error"),
            message: public_message(
                &report,
                locale,
                response.extensions().get::<ErrorAccess>().is_some(),
            ),
            request_id,
            sign_in_href: report.sign_in.then(|| "/auth/login".to_owned()),
            app: response
                .extensions()
                .get::<ErrorApp>()
                .map(|app| (app.label.get(locale), app)),
            access: response
                .extensions()
                .get::<ErrorAccess>()
                .map(|access| access.view(texts)),
            luigi_client: in_iframe.then_some(crate::assets::LUIGI_VERSION),
        };
        let mut page = match view.render() {
            Ok(page) => (report.status, Html(page)).into_response(),
            Err(_) => (report.status, report.message.clone()).into_response(),
        };
        let headers = page.headers_mut();
        headers.insert(header::CONTENT_SECURITY_POLICY, ERROR_PAGE_CSP);
        headers.insert(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("SAMEORIGIN"),
        );
        page
    } else {
        let mut body = serde_json::json!({
            "error": report.code,
            "message": report.message,
            "status": report.status.as_u16(),
            "request_id": request_id,
        });
        if let (Some(access), Some(fields)) = (
            response.extensions().get::<ErrorAccess>(),
            body.as_object_mut(),
        ) && let serde_json::Value::Object(more) = access.json()
        {
            fields.extend(more);
        }
        let mut json = (report.status, Json(body)).into_response();
        if let Some(challenge) = report.challenge {
            json.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        } else if report.status == StatusCode::UNAUTHORIZED {
            json.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Cookie realm=\"portico\""),
            );
        }
        json
    };
    // Keep what the handler set for the log line (user, app), any cookie it cleared, when to retry and
    // the tenant's HSTS.
    for (name, value) in response.headers() {
        if name == header::SET_COOKIE
            || name == header::RETRY_AFTER
            || name == header::WWW_AUTHENTICATE
            || name == header::STRICT_TRANSPORT_SECURITY
        {
            rendered.headers_mut().append(name, value.clone());
        }
    }
    *rendered.extensions_mut() = response.extensions().clone();
    let headers = rendered.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    rendered
}
