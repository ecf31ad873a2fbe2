//! The one place where errors become HTTP responses.
//!
//! Each module keeps its own error enum and implements [`Problem`] for it once: one `match` that says,
//! per variant, the status, a stable machine-readable code, whether a browser should be sent to sign in,
//! and what the log should say beyond the public message. Handlers return `Result<_, AppError>`;
//! `AppError` boxes any `Problem`, and `AppError::into_response` only records an [`ErrorReport`] in the
//! response extensions. [`render`], called by the tenant origin's one pass with what it kept of the request, then writes it as a
//! readable HTML page for a browser navigation or as JSON for an API call, with the request id that is
//! also in the log line. A browser navigation without a session becomes a redirect to sign-in instead.
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
}

impl Class {
    /// An error answered with `status` and the stable `code` (e.g. `forbidden`, `upstream_unreachable`).
    pub fn new(status: StatusCode, code: &'static str) -> Self {
        Class {
            status,
            code,
            sign_in: false,
            detail: None,
        }
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

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let report = self.report();
        let mut response = report.status.into_response();
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
/// for); in another language, the translation of its code (`page.errors.<code>`) when there is one.
fn public_message(report: &ErrorReport, locale: Locale) -> &str {
    if locale == Locale::En {
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
            message: public_message(&report, locale),
            request_id,
            sign_in_href: report.sign_in.then(|| "/auth/login".to_owned()),
            app: response
                .extensions()
                .get::<ErrorApp>()
                .map(|app| (app.label.get(locale), app)),
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
        let body = serde_json::json!({
            "error": report.code,
            "message": report.message,
            "status": report.status.as_u16(),
            "request_id": request_id,
        });
        let mut json = (report.status, Json(body)).into_response();
        if report.status == StatusCode::UNAUTHORIZED {
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
