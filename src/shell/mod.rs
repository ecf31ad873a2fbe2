//! The Luigi shell: the page, its per-user config, the bootstrap script and the embedded Luigi files,
//! and the pages of portico's own that its profile menu opens outside Luigi (`tokens`).
//!
//! Every path that no other module claims is a shell route (Luigi path routing), so a reload of any deep
//! link returns the shell page for a signed-in user and a sign-in redirect otherwise. The page's CSP is
//! `script-src 'self'`: no inline script, so the config arrives as JSON. Every answer may be compressed
//! (`http::compress`): none reflects what a request sends. This module builds navigation;
//! it must not decide access itself, only ask `rbac` through `luigi::visible_apps`.

mod access;
pub(crate) mod luigi;
mod route;
mod tokens;

use askama::Template;
use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::assets::{self, CachePolicy, LUIGI_VERSION, LuigiClient, LuigiCore, ShellFiles};
use crate::auth::SignedIn;
use crate::config::BrandImage;
use crate::config::RESERVED_SEGMENTS;
use crate::http::{AppError, Class, Problem, RequestContext};
use crate::i18n::{Locale, Texts};
use crate::state::AppState;

/// The shell page's content security policy (see reference/luigi-contract.md §1.2 for why each part),
/// but `img-src`, which also lists the origins of the user's other portals' logos (`shell_csp`).
const SHELL_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
font-src 'self' data:; frame-src 'self'; connect-src 'self'; \
frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

/// [`SHELL_CSP`] with `img-src` for this origin, data URLs and `image_origins`.
fn shell_csp(image_origins: &[String]) -> String {
    let mut csp = format!("{SHELL_CSP}; img-src 'self' data:");
    for origin in image_origins {
        // Origins come from config (checked scheme, host and port), never from the request.
        csp.push(' ');
        csp.push_str(origin);
    }
    csp
}

/// The policy of the shell's own views (the home view): framed by the shell on this origin only.
const SHELL_VIEW_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'self'";

/// The `/shell/*` routes and the catch-all shell page.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        // Per user and carrying the CSRF token: no cache may keep it, whatever the handler answers.
        .route(
            "/shell/config.json",
            get(config_get).layer(SetResponseHeaderLayer::overriding(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            )),
        )
        .route(
            "/shell/route.json",
            get(route_get).layer(SetResponseHeaderLayer::overriding(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            )),
        )
        .route(
            "/shell/access.json",
            get(access_get).layer(SetResponseHeaderLayer::overriding(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            )),
        )
        // Carries the CSRF token; the handler sets `no-store` and its own policy.
        .route(tokens::PATH, get(tokens::page_get))
        .route("/shell/theme.css", get(theme_get))
        .route("/shell/language", get(language_get))
        .route("/shell/brand/{which}", get(brand_get))
        .route(
            "/shell/luigi/{version}/{*file}",
            get(luigi_file_get::<LuigiCore>),
        )
        .route(
            "/shell/luigi-client/{version}/{*file}",
            get(luigi_file_get::<LuigiClient>),
        )
        .route("/shell/{*file}", get(shell_file_get))
        .fallback(shell_page)
        // Text answers compressed for clients that accept it (Luigi's files come compressed already).
        .layer(axum::middleware::from_fn(
            crate::http::compress::compress_text,
        ))
}

#[derive(Template)]
#[template(path = "shell.html")]
struct ShellView<'a> {
    t: Texts,
    title: &'a str,
    favicon: Option<String>,
    luigi_version: &'a str,
    /// Whose navigation a `portico preview --serve` shows; `None` in a real portal.
    preview: Option<&'a str>,
    /// The apps this session sent to a preview upstream, each with a button that ends it.
    overrides: Vec<crate::apps::PreviewInUse>,
    csrf_token: &'a str,
}

/// Any other path: the shell page for a signed-in user (Luigi routes on the client).
async fn shell_page(
    context: RequestContext,
    method: Method,
    uri: Uri,
    signed_in: Result<SignedIn, AppError>,
    locale: Locale,
) -> Result<Response, AppError> {
    if method != Method::GET && method != Method::HEAD {
        return Err(AppError::not_found());
    }
    // Reserved prefixes that reached the fallback have no such route: a 404, never the shell.
    if under_other_route(uri.path()) {
        return Err(AppError::not_found());
    }
    let signed_in = signed_in?;
    let tenant = &context.tenant;
    let csp = shell_csp(&luigi::switcher_image_origins(
        &context.config,
        tenant,
        &signed_in,
    ));
    let view = ShellView {
        t: locale.texts(),
        title: &tenant.branding.title,
        favicon: tenant.branding.favicon_href(),
        luigi_version: LUIGI_VERSION,
        preview: context.config.server.preview_banner.as_deref(),
        overrides: crate::apps::previews_in_use(tenant, &signed_in, locale),
        csrf_token: &signed_in.session.csrf_token,
    };
    let page = view.render()?;
    Ok((
        [
            (header::CONTENT_SECURITY_POLICY, csp.as_str()),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "same-origin"),
        ],
        Html(page),
    )
        .into_response())
}

/// Whether `path` lies below a prefix that portico routes elsewhere (`/auth/…`, `/apps/…`, …): every
/// reserved segment but `home`, which is the shell's own navigation root.
fn under_other_route(path: &str) -> bool {
    RESERVED_SEGMENTS
        .iter()
        .filter(|segment| **segment != luigi::HOME_SEGMENT)
        .any(|segment| {
            path.strip_prefix('/')
                .and_then(|rest| rest.strip_prefix(segment))
                .is_some_and(|rest| rest.starts_with('/'))
        })
}

/// `GET /shell/config.json`: the signed-in user's Luigi config (`no-store` comes from its route's layer).
async fn config_get(
    State(state): State<AppState>,
    context: RequestContext,
    signed_in: SignedIn,
    locale: Locale,
) -> Response {
    let mut document = luigi::shell_config(&context.config, &context.tenant, &signed_in, locale);
    // One lock-free load; nothing when the tenant's apps are not watched.
    if let Some(health) = state.health.tenant(&context.tenant.id) {
        luigi::mark_health(&mut document, &health, locale);
    }
    let previews = crate::apps::previews_in_use(&context.tenant, &signed_in, locale);
    let previewed: Vec<&str> = previews
        .iter()
        .map(|preview| preview.app.as_str())
        .collect();
    luigi::mark_previews(&mut document, &previewed, locale);
    Json(document).into_response()
}

/// What the shell's own endpoints refuse.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ShellError {
    /// 400: `/shell/route.json` without its `path`.
    #[error("say which route to explain: `/shell/route.json?path=/home/<app>/…`")]
    RouteWithoutPath,
    /// 400: `/shell/language` without a language portico speaks.
    #[error("portico speaks these languages: `/shell/language?set=en` or `?set=de`")]
    UnknownLanguage,
}

impl Problem for ShellError {
    fn classify(&self) -> Class {
        match self {
            ShellError::RouteWithoutPath | ShellError::UnknownLanguage => {
                Class::new(StatusCode::BAD_REQUEST, "bad_request")
            }
        }
    }
}

/// The query of `/shell/route.json`.
#[derive(serde::Deserialize)]
struct RouteQuery {
    path: String,
}

/// `GET /shell/route.json?path=…`: why the signed-in user's shell cannot open `path` (see `route`).
async fn route_get(
    context: RequestContext,
    signed_in: SignedIn,
    query: Result<Query<RouteQuery>, QueryRejection>,
    locale: Locale,
) -> Result<Response, AppError> {
    let Query(RouteQuery { path }) = query.map_err(|_| ShellError::RouteWithoutPath)?;
    let user = &signed_in.session.user;
    let requester = crate::config::AccessAsk::requester(&user.email, &user.subject);
    let answer = route::explain(&context.tenant, signed_in.roles(), requester, &path, locale);
    Ok(Json(answer).into_response())
}

/// `GET /shell/access.json`: the signed-in user's roles, the groups that grant them and what each
/// opens (see `access`).
async fn access_get(context: RequestContext, signed_in: SignedIn, locale: Locale) -> Response {
    Json(access::of(&context.tenant, &signed_in, locale)).into_response()
}

/// The query of `/shell/language`.
#[derive(serde::Deserialize)]
struct LanguageQuery {
    set: Option<String>,
    return_to: Option<String>,
}

/// `GET /shell/language?set=de&return_to=/home`: the user's pick of language, kept in a cookie for a
/// year (it beats the browser's `Accept-Language`), then back to where they were (`return_to`, else
/// the same-host `Referer`, else home). Open without a
/// session: the sign-in page offers it too. A plain link, so a cross-site page could switch someone's
/// language, and nothing more: the cookie decides texts only.
async fn language_get(
    context: RequestContext,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<LanguageQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let query = query.map_err(|_| ShellError::UnknownLanguage)?.0;
    let locale = query
        .set
        .as_deref()
        .and_then(Locale::from_tag)
        .ok_or(ShellError::UnknownLanguage)?;
    let asked = query
        .return_to
        .as_deref()
        .or_else(|| same_origin_referer(&headers, &uri));
    let back = match asked {
        // The pages shown before and after a session offer the switch too; `safe_return_path` refuses
        // every `/auth` path (no sign-in loop), so these two come back by name.
        Some(page) if is_sign_in_page(page) => page.to_owned(),
        other => crate::auth::safe_return_path(other),
    };
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, back)]).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        crate::i18n::language_cookie(locale, context.is_https()),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The sign-in picker (with its own `return_to`) and the signed-out page: pages of this origin that
/// `/shell/language` may return to although they live under `/auth`.
fn is_sign_in_page(path: &str) -> bool {
    path == "/auth/signed-out"
        || path == "/auth/login"
        || path.strip_prefix("/auth/login?").is_some_and(|query| {
            query
                .bytes()
                .all(|byte| byte.is_ascii_graphic() && byte != b'#')
        })
}

/// The path and query of the `Referer` when it is a page of this very host (the shell page the user
/// switched language on); anything else is ignored.
fn same_origin_referer<'h>(headers: &'h HeaderMap, uri: &'h Uri) -> Option<&'h str> {
    // HTTP/2 names the host in the request's authority rather than in `Host`.
    let host = match headers.get(header::HOST) {
        Some(host) => host.to_str().ok()?,
        None => uri.authority()?.as_str(),
    };
    let referer = headers.get(header::REFERER)?.to_str().ok()?;
    let rest = referer
        .strip_prefix("https://")
        .or_else(|| referer.strip_prefix("http://"))?;
    let path = rest.strip_prefix(host)?;
    path.starts_with('/').then_some(path)
}

/// `GET /shell/brand/logo` and `/shell/brand/favicon`: the tenant's branding image when config names
/// a file (`branding.logo: acme-logo.svg`). Public like the rest of the branding: the sign-in page
/// shows it. Its URL carries the content's hash (`?v=`), so that URL is cached for good.
async fn brand_get(
    context: RequestContext,
    Path(which): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let branding = &context.tenant.branding;
    let image = match which.as_str() {
        "logo" => branding.logo.as_ref(),
        "favicon" => branding.favicon.as_ref(),
        _ => None,
    };
    let Some(BrandImage::File(file)) = image else {
        return Err(AppError::not_found());
    };
    let etag = format!("\"{}\"", file.version);
    let current = uri.query() == Some(&format!("v={}", file.version));
    let cache = if current {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let common = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, cache.to_owned()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        // An SVG opened on its own runs no script and loads nothing.
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; sandbox".to_owned(),
        ),
    ];
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|value| value.as_bytes() == etag.as_bytes())
    {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    Ok((
        common,
        [(header::CONTENT_TYPE, file.content_type)],
        file.bytes.clone(),
    )
        .into_response())
}

/// `GET /shell/theme.css`: the tenant's colours as CSS custom properties over Luigi's stylesheet.
/// Public like the other shell files (branding is not secret), and per tenant, so revalidated.
async fn theme_get(context: RequestContext) -> Response {
    let theme = &context.tenant.branding.theme;
    let mut css = String::from("/* portico: this tenant's theme (branding.theme) */\n:root {\n");
    // Values are hex colours, checked by config; nothing else can reach this stylesheet.
    if let Some(shell) = &theme.shell_color {
        for property in [
            "--sapShellColor",
            "--sapShell_Background",
            "--portico-shell-color",
        ] {
            css.push_str(&format!("  {property}: {shell};\n"));
        }
    }
    if let Some(accent) = &theme.accent_color {
        for property in [
            "--sapBrandColor",
            "--sapHighlightColor",
            "--sapShell_Navigation_SelectedColor",
            "--sapList_SelectionBorderColor",
            "--sapLinkColor",
            "--portico-accent-color",
        ] {
            css.push_str(&format!("  {property}: {accent};\n"));
        }
    }
    css.push_str("}\n");
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        css,
    )
        .into_response()
}

/// Luigi's core files (for the shell) or its client (for micro-apps), under a versioned path, cached
/// forever: a new Luigi version is a new path.
async fn luigi_file_get<Files: RustEmbed + assets::Precompressed>(
    Path((version, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if version != LUIGI_VERSION {
        return Err(AppError::not_found());
    }
    assets::serve::<Files>(&file, &headers, CachePolicy::Immutable).ok_or_else(AppError::not_found)
}

/// The shell's own files (bootstrap script, stylesheet, home view): public, revalidated.
async fn shell_file_get(
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let mut response = assets::serve::<ShellFiles>(&file, &headers, CachePolicy::Revalidate)
        .ok_or_else(AppError::not_found)?;
    if file.ends_with(".html") {
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(SHELL_VIEW_CSP),
        );
    }
    Ok(response)
}
