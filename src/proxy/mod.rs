//! `/apps/<id>/…`: the role-checked gateway to every micro-app.
//!
//! Each request is authenticated, its path normalised, and then `rbac::decide` — the same function that
//! built the user's navigation — says whether it may pass. Only then is it forwarded to the app's
//! upstream, or answered from its static bundle. This module is the only one that talks to upstream apps;
//! it must never forward the session cookie or a client-sent identity header.

pub(crate) mod headers;
pub(crate) mod path;
mod upstream;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Redirect, Response};
use axum::routing::any;
use axum::{Extension, Router};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

pub use headers::IDENTITY_PREFIX;
pub use upstream::UpstreamClient;
pub(crate) use upstream::over_body_limit;

use crate::assets::{self, CachePolicy, DemoApps};
use crate::audit::{self, AuditEvent};
use crate::auth::{AuthError, SignedIn, csrf};
use crate::config::{App, AppTarget, CookieMode};
use crate::error::AppError;
use crate::jar;
use crate::rbac::{self, Decision};
use crate::state::{AppState, RequestContext};
use crate::telemetry::Labels;
use headers::{ForwardedOrigin, Identity};

/// Why a proxied request did not reach its app, or the app did not answer.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// 404: the tenant has no app with this id.
    #[error("there is no app `{0}` in this portal")]
    UnknownApp(String),
    /// 403: the user's roles do not allow this app or this part of it.
    #[error("you do not have access to this app; it needs one of the roles: {needed}")]
    Forbidden { app: String, needed: String },
    /// 400: a path that could mean different things to portico and to the app.
    #[error("bad request path: {0}")]
    BadPath(&'static str),
    /// 400: a WebSocket upgrade on another method than GET (RFC 6455 §4.1), which an upstream might
    /// still switch protocols on after an access decision taken for that method.
    #[error("a WebSocket upgrade must be a GET request")]
    UpgradeNotGet,
    /// 413: the request body is larger than `proxy.max_request_body`.
    #[error("the request body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: u64 },
    /// 404: a static bundle has no such file.
    #[error("this app has no file at that path")]
    FileNotFound,
    /// 502: the upstream refused or did not accept the connection.
    #[error("the app is not reachable right now")]
    UpstreamUnreachable { upstream: String, detail: String },
    /// 502: the upstream broke the exchange.
    #[error("the app failed to answer")]
    UpstreamFailed { upstream: String, detail: String },
    /// 504: no response headers within the response timeout.
    #[error("the app took too long to answer")]
    UpstreamTimeout { upstream: String, after: Duration },
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::UnknownApp(_) | ProxyError::FileNotFound => StatusCode::NOT_FOUND,
            ProxyError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ProxyError::BadPath(_) | ProxyError::UpgradeNotGet => StatusCode::BAD_REQUEST,
            ProxyError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::UpstreamUnreachable { .. } | ProxyError::UpstreamFailed { .. } => {
                StatusCode::BAD_GATEWAY
            }
            ProxyError::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::UnknownApp(_) => "unknown_app",
            ProxyError::Forbidden { .. } => "forbidden",
            ProxyError::BadPath(_) => "bad_path",
            ProxyError::UpgradeNotGet => "bad_upgrade",
            ProxyError::BodyTooLarge { .. } => "body_too_large",
            ProxyError::FileNotFound => "not_found",
            ProxyError::UpstreamUnreachable { .. } => "upstream_unreachable",
            ProxyError::UpstreamFailed { .. } => "upstream_failed",
            ProxyError::UpstreamTimeout { .. } => "upstream_timeout",
        }
    }

    /// What the log should say beyond the public message.
    pub fn detail(&self) -> Option<String> {
        match self {
            ProxyError::UpstreamUnreachable { upstream, detail }
            | ProxyError::UpstreamFailed { upstream, detail } => {
                Some(format!("{upstream}: {detail}"))
            }
            ProxyError::UpstreamTimeout { upstream, after } => {
                Some(format!("{upstream}: no response within {after:?}"))
            }
            _ => None,
        }
    }
}

/// The `/apps/*` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/apps/{app}", any(app_root_redirect))
        .route("/apps/{app}/", any(app_request))
        .route("/apps/{app}/{*rest}", any(app_request))
}

/// `/apps/<id>` → `/apps/<id>/`, so relative URLs inside the app resolve below its prefix.
async fn app_root_redirect(uri: Uri) -> Result<Redirect, AppError> {
    // Built from the raw path, and only for ids that could exist: a junk id is a 404, not a bad header.
    let app = uri.path().trim_start_matches("/apps/");
    let plausible = !app.is_empty()
        && app
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !plausible {
        return Err(ProxyError::UnknownApp(app.to_owned()).into());
    }
    let target = match uri.query() {
        Some(query) => format!("/apps/{app}/?{query}"),
        None => format!("/apps/{app}/"),
    };
    Ok(Redirect::permanent(&target))
}

async fn app_request(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(context): Extension<RequestContext>,
    signed_in: SignedIn,
    request: Request,
) -> Result<Response, AppError> {
    // Split `/apps/<id>/<rest>` from the raw (still percent-encoded) path.
    let raw_path = request.uri().path().to_owned();
    let after_prefix = raw_path.strip_prefix("/apps/").unwrap_or("");
    let (app_id, rest) = after_prefix.split_once('/').unwrap_or((after_prefix, ""));
    let tenant = &context.tenant;
    let app = tenant
        .app(app_id)
        .ok_or_else(|| ProxyError::UnknownApp(app_id.to_owned()))?;
    if let Some(labels) = request.extensions().get::<Labels>() {
        labels.app(&app.id);
    }
    let app_path = path::normalise(rest).map_err(|bad| ProxyError::BadPath(bad.0))?;

    if let Decision::Deny { needed } = rbac::decide(
        &signed_in.roles,
        &app.policy,
        request.method(),
        &app_path.decoded,
    ) {
        audit::emit(AuditEvent::AccessDenied {
            tenant: &tenant.id,
            user: &signed_in.session.user.subject,
            app: &app.id,
            path: &app_path.decoded,
        });
        let needed = needed
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ProxyError::Forbidden {
            app: app.id.clone(),
            needed,
        }
        .into());
    }

    // After the access decision, so a user without access learns nothing more than 403.
    let request = guard_forwarded_request(request, &context, &signed_in)?;

    let response = match &app.target {
        AppTarget::Upstream(upstream) => {
            let path_and_query = match request.uri().query() {
                Some(query) => format!("{}?{query}", app_path.raw),
                None => app_path.raw.clone(),
            };
            let mut request = request;
            // A WebSocket handshake: keep its Upgrade through the header cleaning, and take the
            // browser's side of the upgrade before the request is handed on.
            // (`guard_forwarded_request` refused an upgrade on any other method than GET.)
            let websocket = asks_for_websocket(request.headers()).then(|| {
                let upgrade = request.headers().get(header::UPGRADE).cloned();
                (upgrade, hyper::upgrade::on(&mut request))
            });
            let (mut parts, body) = request.into_parts();
            let user = &signed_in.session.user;
            let roles = signed_in.roles.names();
            let mut identity = Identity::of(user, &roles, &tenant.id, &app.id, app.identity);
            let assertion = app.identity.assertion.then(|| {
                state.assertions.assertion(
                    &state.signing_keys,
                    &crate::assertion::Subject {
                        issuer: &tenant.assertion_issuer,
                        audience: &app.id,
                        session: signed_in.session.id.as_str(),
                        user: &user.subject,
                        email: &user.email,
                        name: &user.name,
                        groups: &user.groups,
                        roles: &roles,
                        tenant: &tenant.id,
                        lifetime: context.config.proxy.assertion_lifetime.as_secs().max(1),
                    },
                )
            });
            identity.assertion = assertion;
            identity.access_token = signed_in
                .session
                .oidc
                .as_ref()
                .map(|tokens| tokens.access_token.as_str());
            // The path as the upstream sees it, which is what its cookies' `Path` speaks about.
            let upstream_path = format!("{}{}", upstream.base_path, app_path.raw);
            // Before the header cleaning, so it never rebuilds a browser `Cookie` that goes anyway.
            if app.cookies == CookieMode::Jar {
                send_jar_cookies(&state, &signed_in, app, &upstream_path, &mut parts.headers)
                    .await?;
            }
            headers::prepare_upstream_request(
                &mut parts.headers,
                &identity,
                peer.ip(),
                forwarded_origin(&context, state.listen).as_ref(),
            );
            parts.extensions = Default::default();
            let client_upgrade = websocket.map(|(upgrade, on_upgrade)| {
                parts
                    .headers
                    .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                if let Some(upgrade) = upgrade {
                    parts.headers.insert(header::UPGRADE, upgrade);
                }
                on_upgrade
            });
            let outgoing = Request::from_parts(parts, body);
            let mut response = state
                .upstreams
                .forward(
                    upstream,
                    &path_and_query,
                    outgoing,
                    context.config.proxy.response_timeout,
                    client_upgrade,
                )
                .await?;
            let prefix = format!("/apps/{}/", app.id);
            let headers = response.headers_mut();
            match app.cookies {
                CookieMode::Jar => {
                    keep_in_jar(&state, &signed_in, app, &upstream_path, headers).await;
                }
                CookieMode::Scoped => {
                    headers::scope_set_cookies(headers, &prefix, &upstream.base_path, false)
                }
                CookieMode::Drop => {
                    headers::scope_set_cookies(headers, &prefix, &upstream.base_path, true)
                }
            }
            headers::rewrite_location(headers, &upstream.authority, &upstream.base_path, &prefix);
            remove_origin_wide_headers(headers);
            response
        }
        AppTarget::StaticDir(dir) => serve_static_dir(dir, &app_path, request).await?,
        AppTarget::Embedded(bundle) => serve_embedded(bundle, &app_path.decoded, &request)?,
    };
    Ok(frame_for_shell(app, response))
}

/// `cookies: jar`: the upstream gets the session's jar for this app and nothing the browser sent as
/// cookies (any app's script can write those, so none of them can be trusted as this app's).
async fn send_jar_cookies(
    state: &AppState,
    signed_in: &SignedIn,
    app: &App,
    upstream_path: &str,
    headers: &mut HeaderMap,
) -> Result<(), AppError> {
    headers.remove(header::COOKIE);
    let jar = state
        .sessions
        .store
        .jar(&signed_in.session.id, &app.id)
        .await
        .map_err(|_| AuthError::StoreUnavailable)?;
    let now = crate::auth::session::unix_now();
    if let Some(cookies) = jar.and_then(|jar| jar.cookie_header(upstream_path, now)) {
        headers.insert(header::COOKIE, cookies);
    }
    Ok(())
}

/// `cookies: jar`: the upstream's `Set-Cookie`s go into the session's jar and never to the browser.
/// A store failure loses those cookies (logged), not the response.
async fn keep_in_jar(
    state: &AppState,
    signed_in: &SignedIn,
    app: &App,
    upstream_path: &str,
    headers: &mut HeaderMap,
) {
    let now = crate::auth::session::unix_now();
    let cookies = jar::take_set_cookies(headers, upstream_path, now);
    if cookies.is_empty() {
        return;
    }
    if let Err(error) = state
        .sessions
        .store
        .update_jar(&signed_in.session.id, &app.id, cookies, now)
        .await
    {
        tracing::warn!(app = %app.id, %error, "cookie jar: the app's cookies could not be kept");
    }
}

/// Response headers whose effect browsers apply to the whole origin, which every app shares: an app
/// that could send them would act beyond its own page and outlive it. `Service-Worker-Allowed: /`
/// would let its service worker control the shell, `/auth/*` and every other app, across sign-outs
/// (without it a worker's scope stays below the app's own path). `Clear-Site-Data` has no path: its
/// `"cookies"` signs the user out of the portal, its `"storage"` wipes every app's storage.
/// `Strict-Transport-Security` and `Alt-Svc` decide how browsers reach the whole host (HSTS with
/// `includeSubDomains` also its siblings, `preload` for good): the platform's decision, not an app's
/// (Backstage's own helmet defaults send HSTS with `includeSubDomains`).
const ORIGIN_WIDE: [&str; 4] = [
    "service-worker-allowed",
    "clear-site-data",
    "strict-transport-security",
    "alt-svc",
];

pub(crate) fn remove_origin_wide_headers(headers: &mut HeaderMap) {
    for name in ORIGIN_WIDE {
        headers.remove(name);
    }
}

/// What every request forwarded to an upstream (an app or Backstage) must pass, after the access decision:
/// a WebSocket upgrade only on GET, proof that a state change or WebSocket handshake comes from this
/// origin (CSRF; a handshake is a GET but opens a two-way channel, hence cross-site WebSocket
/// hijacking), and the request body limit (a
/// body announced too large is refused before anything is forwarded; one without a length fails at the
/// limit as it streams, which breaks the upstream exchange and answers 413, never a shortened body).
pub(crate) fn guard_forwarded_request(
    request: Request,
    context: &RequestContext,
    signed_in: &SignedIn,
) -> Result<Request, AppError> {
    let websocket = asks_for_websocket(request.headers());
    if websocket && request.method() != axum::http::Method::GET {
        return Err(ProxyError::UpgradeNotGet.into());
    }
    let needs_proof = !request.method().is_safe() || websocket;
    if needs_proof
        && !csrf::proves_same_origin(
            request.headers(),
            &signed_in.session.csrf_token,
            crate::auth::is_https(context),
        )
    {
        audit::emit(AuditEvent::CsrfRejected {
            tenant: &context.tenant.id,
            path: request.uri().path(),
        });
        return Err(AuthError::CsrfRejected.into());
    }
    let max_body = context.config.proxy.max_request_body;
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > max_body) {
        return Err(ProxyError::BodyTooLarge { limit: max_body }.into());
    }
    Ok(request.map(|body| Body::new(upstream::LimitedBody::new(body, max_body))))
}

/// The origin upstreams are told the user reached (`X-Forwarded-Host`/`-Proto`): the tenant's public
/// origin when it has one; else the name the client used when the tenant lists it (with its port, so a
/// demo on `127.0.0.1:<port>` gets working absolute links); else the tenant's first host, or for a
/// tenant without hosts (reached through `default_tenant`) the listener's own address when it names
/// one. Never a Host the tenant does not list, which is whatever the client chose. Borrowed from the
/// request's context: nothing is built per request but for the hostless fallback.
pub(crate) fn forwarded_origin(
    context: &RequestContext,
    listen: SocketAddr,
) -> Option<ForwardedOrigin<'_>> {
    let tenant = &context.tenant;
    if tenant.public_origin.is_none() {
        if let Some(authority) = &context.listed_authority {
            return Some(ForwardedOrigin {
                https: false,
                host: std::borrow::Cow::Borrowed(authority),
            });
        }
    }
    match &tenant.origin {
        Some(origin) => Some(ForwardedOrigin::of(origin)),
        None if !listen.ip().is_unspecified() => Some(ForwardedOrigin {
            https: false,
            host: std::borrow::Cow::Owned(listen.to_string()),
        }),
        None => None,
    }
}

/// `Connection: upgrade` with `Upgrade: websocket`: the start of a WebSocket (only valid on a GET).
fn asks_for_websocket(headers: &axum::http::HeaderMap) -> bool {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    let websocket = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    connection_upgrade && websocket
}

/// Files from a directory: existing files as they are, anything else without an extension falls back to
/// `index.html` so single-page apps can route client-side.
async fn serve_static_dir(
    dir: &std::path::Path,
    path: &path::AppPath,
    request: Request,
) -> Result<Response, ProxyError> {
    let (mut parts, _body) = request.into_parts();
    // ServeDir decodes the path itself, so it gets the still-encoded form: decoded exactly once, like the
    // access decision saw it. Handing it the decoded path would decode twice (`%256f` → `o`).
    parts.uri = path
        .raw
        .parse()
        .map_err(|_| ProxyError::BadPath("the path cannot be served"))?;
    let index = dir.join("index.html");
    let wants_fallback = !path.decoded.rsplit('/').next().unwrap_or("").contains('.');
    let service = ServeDir::new(dir).append_index_html_on_directories(true);
    let request = Request::from_parts(parts, Body::empty());
    let response = if wants_fallback {
        service
            .fallback(ServeFile::new(index))
            .oneshot(request)
            .await
    } else {
        service.oneshot(request).await
    };
    let response = match response {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    };
    if response.status() == StatusCode::NOT_FOUND {
        return Err(ProxyError::FileNotFound);
    }
    Ok(response)
}

/// The same, from a bundle compiled into the binary.
fn serve_embedded(bundle: &str, path: &str, request: &Request) -> Result<Response, ProxyError> {
    let file = path.trim_start_matches('/');
    let file = if file.is_empty() || file.ends_with('/') {
        format!("{file}index.html")
    } else {
        file.to_owned()
    };
    let headers = request.headers();
    let last = file.rsplit('/').next().unwrap_or("");
    let mut response = assets::serve::<DemoApps>(
        &format!("{bundle}/{file}"),
        headers,
        CachePolicy::Revalidate,
    )
    .or_else(|| {
        (!last.contains('.'))
            .then(|| {
                assets::serve::<DemoApps>(
                    &format!("{bundle}/index.html"),
                    headers,
                    CachePolicy::Revalidate,
                )
            })
            .flatten()
    })
    .ok_or(ProxyError::FileNotFound)?;
    // The embedded bundles are ours, so they get a strict policy of their own.
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'self'",
        ),
    );
    Ok(response)
}

/// Apps may be framed by the shell on this origin and by nothing else.
fn frame_for_shell(_app: &App, mut response: Response) -> Response {
    headers::frame_only_by_shell(response.headers_mut());
    response
}
