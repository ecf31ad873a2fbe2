//! `/apps/<id>/…`: the role-checked gateway to every micro-app, on top of the forwarding kit (`proxy`).
//!
//! A request goes through named phases: `resolve` finds the app, `decide` normalises the path and
//! asks `rbac::decide` — the same function that built the user's navigation — whether it may pass,
//! `proxy::guard` refuses cross-site state changes and oversized bodies, and the app's target answers:
//! its upstream (`upstream`: prepare, send, shape the response) or its static files (`files`).
//! Every answer may be framed by the shell and nothing else, and is compressed on the fly when the
//! app's `compress:` mode allows its type and the app did not compress it itself. This module must never forward the session
//! cookie or a client-sent identity header (the kit's `prepare` sees to it) and decides access only
//! through `rbac::decide`, before anything is forwarded or served.
//!
//! A refusal (403) says what the shell's not-found view says for the same app (`shell::route`): the
//! app's label and owner, the page whose rule refused, each role that would open this path with the
//! groups that grant it, and the tenant's `request_access` links for those groups (`ErrorAccess`).
//! Nothing beyond: the user named the app by its address, and learns no other app, role or group.

mod files;
mod preview;
mod upstream;
pub(crate) use preview::{InUse as PreviewInUse, in_use as previews_in_use};
pub(crate) use upstream::{ShowUpstreamHeaders, UpstreamHeaders};

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::any;

use crate::audit::{self, AuditEvent};
use crate::auth::{self, SignedIn};
use crate::config::{AccessAsk, App, AppId, AppMount, AppTarget, NavNode, Upstream};
use crate::http::error::{ErrorAccess, ErrorApp, Refusal};
use crate::http::{AppError, Class, Problem, RequestContext, compress};
use crate::proxy::headers::{self, PortalCookies};
use crate::proxy::path::{self, AppPath};
use crate::proxy::{self, Guard, ProxyError};
use crate::rbac::{self, DecidedBy, Decision};
use crate::state::AppState;
use crate::telemetry::Labels;

/// Why a request for an app was refused, or its static files had no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppsError {
    /// 404: the tenant has no app with this id.
    #[error("there is no app `{0}` in this portal")]
    UnknownApp(String),
    /// 403: the user's roles do not allow this app or this part of it.
    #[error("you do not have access to this app; it needs one of the roles: {needed}")]
    Forbidden { app: AppId, needed: String },
    /// 404: a static bundle has no such file.
    #[error("this app has no file at that path")]
    FileNotFound,
}

impl Problem for AppsError {
    fn classify(&self) -> Class {
        match self {
            AppsError::UnknownApp(_) => Class::new(StatusCode::NOT_FOUND, "unknown_app"),
            AppsError::FileNotFound => Class::new(StatusCode::NOT_FOUND, "not_found"),
            AppsError::Forbidden { .. } => Class::new(StatusCode::FORBIDDEN, "forbidden"),
        }
    }
}

/// Portico's own cookies, as the kit needs them: never sent to an app, never set by one. Every name
/// contains `portico_`; the build stops here if one ever does not.
pub(crate) const PORTAL_COOKIES: PortalCookies =
    PortalCookies::new(&auth::PORTAL_COOKIES, "portico_");

/// The `/apps/<id>` route (a redirect to `/apps/<id>/`); what is below an app's prefix is not routed
/// but passed straight to [`serve`] by the tenant origin's one pass (`app::router`), see
/// [`is_app_request`].
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .merge(preview::router())
        .route("/apps/{app}", any(app_root_redirect))
        .route(
            "/backstage",
            any(|| async { Redirect::permanent("/backstage/") }),
        )
}

/// Whether `path` is below an app's prefix, `/apps/<id>/…` with a non-empty id, or below `/backstage/`
/// but not `/backstage/api/` (Backstage's web UI, `backstage.ui`): what [`serve`] answers.
/// (`/apps/<id>` is the redirect route; `/apps/` alone is nobody's.)
pub(crate) fn is_app_request(path: &str) -> bool {
    if let Some(rest) = path.strip_prefix("/backstage/") {
        return !rest.starts_with("api/") && rest != "api";
    }
    path.strip_prefix("/apps/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(id, _)| !id.is_empty())
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
        return Err(AppsError::UnknownApp(app.to_owned()).into());
    }
    let target = match uri.query() {
        Some(query) => format!("/apps/{app}/?{query}"),
        None => format!("/apps/{app}/"),
    };
    Ok(Redirect::permanent(&target))
}

/// One signed-in request for one app, after the decision: what the dispatch phases share.
struct Call<'a> {
    state: &'a AppState,
    context: &'a RequestContext,
    signed_in: &'a SignedIn,
    peer: SocketAddr,
    app: &'a App,
    /// The preview upstream this session sent the app to (`preview::active`), which then stands in
    /// for the app's own and is never cached.
    preview: Option<&'a Upstream>,
}

/// One request below an app's prefix (see [`is_app_request`]), after tenant resolution: who asks, the
/// decision, then the app's target. Called directly rather than through the router, with what axum's
/// extractors would have given it taken from the request once.
pub(crate) async fn serve(
    state: &AppState,
    context: RequestContext,
    request: Request,
) -> Result<Response, AppError> {
    let (parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer)
        .ok_or_else(|| AppError::internal("connection info missing"))?;
    let signed_in = SignedIn::of(&parts, &context, state).await?;
    let request = Request::from_parts(parts, body);
    let (app, rest) = resolve(&context, &request)?;
    let accepts = compress::Accepts::of(request.method(), request.headers());
    let path = match decide(&context, &signed_in, app, request.method(), rest) {
        Ok(path) => path,
        Err(mut refused) => {
            // A script's token that does not reach this: RFC 6750's answer for too little scope.
            if signed_in.bearer.is_some() && refused.status() == StatusCode::FORBIDDEN {
                refused.headers_mut().insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static(
                        "Bearer realm=\"portico\", error=\"insufficient_scope\"",
                    ),
                );
            }
            return Ok(*refused);
        }
    };
    // A personal token narrowed to other apps or to reading stops here, after the decision: a user
    // without access learns nothing more than 403.
    signed_in.check_token_scope(Some(app.id.as_str()), request.method())?;
    // Below the UI, `api` in any spelling (`%61pi`, `API`, `./api`) is Backstage's API, which only
    // portico's `/backstage/api/` mount reaches, with the catalog scope and the user's credential.
    if app.mount == AppMount::BackstageUi && is_backstage_api(&path.decoded) {
        return Err(AppsError::UnknownApp("backstage".to_owned()).into());
    }
    // After the access decision, so a user without access learns nothing more than 403.
    let request = proxy::guard(request, &Guard::of(&context, signed_in.csrf_token()))?;
    let preview = match &app.target {
        AppTarget::Upstream(_) => preview::active(&context.tenant, &signed_in, app),
        _ => None,
    };
    if preview.is_some() {
        preview::refuse_lasting_effects(&request)?;
    }
    let call = Call {
        state,
        context: &context,
        signed_in: &signed_in,
        peer,
        app,
        preview: preview.as_ref(),
    };
    let served = match &app.target {
        AppTarget::Upstream(target) => {
            let upstream = call.preview.unwrap_or(target);
            upstream::forward(&call, upstream, &path, request).await
        }
        AppTarget::StaticDir(dir) => files::serve_dir(dir, &path, request).await,
        AppTarget::Embedded(bundle) => {
            files::serve_embedded(bundle, &path.decoded, &request).map_err(AppError::from)
        }
    };
    let mut response = match served {
        Ok(response) => response,
        // The user may open the app: its error page may say whose it is (never before the decision).
        Err(error) => {
            return Ok(ErrorApp::of(app).attach(error.into_response()));
        }
    };
    // Backstage's UI names its built files by their content hash: they never change under one name.
    if app.mount == AppMount::BackstageUi
        && response.status() == StatusCode::OK
        && is_hashed_asset(&path.decoded)
    {
        response.headers_mut().insert(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
    }
    // Apps may be framed by the shell on this origin and by nothing else.
    headers::frame_only_by_shell(response.headers_mut());
    // Said on every answer a preview gave, so neither the user nor a support case mistakes it for
    // the app's own (the shell shows a banner too).
    if let Some(preview) = &preview {
        preview::mark_answer(preview, response.headers_mut());
    }
    // What the app sent uncompressed, compressed as its `compress:` mode allows (BREACH: see README).
    Ok(compress::compress(accepts, app.compress, response))
}

/// Whether a decoded path below Backstage's UI is one of its built files, named by content hash:
/// `/static/<name>.<8 or more hex digits>.<ext>` (what Backstage's build writes, e.g.
/// `/static/main.3f2a9c1b.js`).
fn is_hashed_asset(decoded: &str) -> bool {
    let Some(file) = decoded.strip_prefix("/static/") else {
        return false;
    };
    let parts: Vec<&str> = file.split('.').collect();
    parts.len() >= 3
        && !file.contains('/')
        && parts[1..parts.len() - 1]
            .iter()
            .any(|part| part.len() >= 8 && part.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether a decoded path below Backstage's UI names its API (`/api`, `/api/…`, any case).
fn is_backstage_api(decoded: &str) -> bool {
    let first = decoded
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    first.eq_ignore_ascii_case("api")
}

/// Phase 1: the app named by `/apps/<id>/<rest>` (split from the raw, still percent-encoded path) and
/// the rest of that path; the app's id goes on the access log line.
fn resolve<'a, 'r>(
    context: &'a RequestContext,
    request: &'r Request,
) -> Result<(&'a App, &'r str), AppsError> {
    let path = request.uri().path();
    let (app, rest) = match path.strip_prefix("/backstage/") {
        // Backstage's web UI (`is_app_request` sent no `/backstage/api/` here).
        Some(rest) => {
            let app = context
                .tenant
                .backstage_ui()
                .ok_or_else(|| AppsError::UnknownApp("backstage".to_owned()))?;
            (app, rest)
        }
        None => {
            let after_prefix = path.strip_prefix("/apps/").unwrap_or("");
            let (app_id, rest) = after_prefix.split_once('/').unwrap_or((after_prefix, ""));
            let app = context
                .tenant
                .app(app_id)
                .ok_or_else(|| AppsError::UnknownApp(app_id.to_owned()))?;
            (app, rest)
        }
    };
    if let Some(labels) = request.extensions().get::<Labels>() {
        labels.app(&app.id);
    }
    Ok((app, rest))
}

/// Phase 2: the path inside the app in its canonical forms, if `rbac::decide` lets the user's roles
/// reach it with this method; else the error response. A refusal is audited, and its page says what
/// would open the path and whom to ask (`ErrorAccess`).
fn decide(
    context: &RequestContext,
    signed_in: &SignedIn,
    app: &App,
    method: &Method,
    rest: &str,
) -> Result<AppPath, Box<Response>> {
    let app_path = path::normalise(rest)
        .map_err(|error| Box::new(AppError::from(ProxyError::from(error)).into_response()))?;
    // `decide_by` is `rbac::decide` with the rule that decided, which names the refused page.
    let (Decision::Deny { needed }, decided_by) =
        rbac::decide_by(signed_in.roles(), &app.policy, method, &app_path.decoded)
    else {
        return Ok(app_path);
    };
    audit::emit(AuditEvent::AccessDenied {
        tenant: context.tenant.id.as_str(),
        user: &signed_in.session.user.subject,
        app: app.id.as_str(),
        path: &app_path.decoded,
    });
    let user = &signed_in.session.user;
    // The address the user asked for, in its canonical form.
    let asked = match app.mount {
        AppMount::Apps => format!("/apps/{}{}", app.id, app_path.decoded),
        AppMount::BackstageUi => format!("/backstage{}", app_path.decoded),
    };
    let access = ErrorAccess::new(Refusal {
        tenant: &context.tenant,
        app,
        page: match decided_by {
            DecidedBy::Node(view) => page_with_view(&app.nodes, view),
            DecidedBy::App | DecidedBy::Request(_) => None,
        },
        needs: context
            .tenant
            .roles
            .needs(&needed)
            .iter()
            .map(|need| (need.role, need.groups))
            .collect(),
        user: AccessAsk::requester(&user.email, &user.subject),
        path: &asked,
    });
    let needed = needed
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let error = AppError::from(AppsError::Forbidden {
        app: app.id.clone(),
        needed,
    });
    Err(Box::new(access.attach(error.into_response())))
}

/// The page whose rule covers `view` (a node rule's prefix is its node's view); a path parameter's
/// route is named by the page it belongs to, as the shell names it.
fn page_with_view<'a>(nodes: &'a [NavNode], view: &str) -> Option<&'a NavNode> {
    nodes.iter().find_map(|node| {
        if node.view == view {
            return Some(node);
        }
        page_with_view(&node.children, view).map(
            |found| {
                if found.is_parameter() { node } else { found }
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::{is_backstage_api, is_hashed_asset};

    #[test]
    fn backstages_hashed_files_and_its_api_are_told_apart() {
        assert!(is_hashed_asset("/static/main.3f2a9c1b.js"));
        assert!(is_hashed_asset(
            "/static/module-catalog.0123abcdef.chunk.js"
        ));
        assert!(!is_hashed_asset("/static/main.js"));
        assert!(!is_hashed_asset("/static/logo.png"));
        assert!(!is_hashed_asset("/index.html"));
        assert!(!is_hashed_asset("/static/sub/main.3f2a9c1b.js"));
        assert!(!is_hashed_asset("/other/main.3f2a9c1b.js"));
        for api in ["/api", "/api/", "/API/catalog", "/Api/auth/x"] {
            assert!(is_backstage_api(api), "{api}");
        }
        for ui in ["/", "/catalog", "/apis", "/static/api.3f2a9c1b.js"] {
            assert!(!is_backstage_api(ui), "{ui}");
        }
    }
}
