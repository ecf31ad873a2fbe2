//! Dispatch to an app's upstream: the user's claims, the identity the app asked for and its cookies go
//! into the kit's `prepare`, the pooled client sends it, and the answer is shaped for the portal (the
//! app's cookies kept in its jar or scoped below its prefix, `Location` kept on the portal, no
//! origin-wide headers). For an app with `cache:` on, `proxy::cache` may answer first (a fresh entry),
//! adds its validators to the request (a stale one) and keeps the shaped answer as it streams. A WebSocket handshake the upstream accepts is relayed by `websocket`, which
//! closes it with a Close frame at shutdown.

use std::borrow::Cow;
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use hyper::upgrade::OnUpgrade;

use super::{Call, PORTAL_COOKIES};
use crate::auth::AuthError;
use crate::config::{AppId, CookieMode, Upstream};
use crate::http::AppError;
use crate::jar;
use crate::proxy::cache::{CacheStatus, Plan, Scope};
use crate::proxy::headers::{self, Hop, Identity, SendCookies};
use crate::proxy::path::AppPath;
use crate::proxy::{self, Forward, Target};
use crate::telemetry::{ForwardedClient, Labels, RequestId, UpstreamCall};

mod websocket;

/// Put on a request by an in-process caller (`portico doctor`, never a client: request extensions do
/// not come over the wire) that wants to see what the upstream itself answered, before portico's
/// shaping overrides framing and moves or narrows its cookies: the answer then carries
/// [`UpstreamHeaders`]. Asked for on one request, so the proxy path of every other request pays one
/// extension lookup and no copy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShowUpstreamHeaders;

/// The upstream's own response headers, on the answer to a request that carried
/// [`ShowUpstreamHeaders`].
#[derive(Debug, Clone)]
pub(crate) struct UpstreamHeaders(pub HeaderMap);

/// Phase 4 for an upstream app: prepare, send, shape.
pub(super) async fn forward(
    call: &Call<'_>,
    upstream: &Upstream,
    path: &AppPath,
    request: Request,
) -> Result<Response, AppError> {
    // After the access decision (the caller's), so only a user who may reach the app sees an entry.
    // A preview's answers are its user's alone: never kept, never served from the cache.
    let cache = (call.app.cache && call.preview.is_none())
        .then(|| cache_plan(call, upstream, path, &request));
    let cache = cache.flatten();
    if let Some(hit) = cache.as_ref().and_then(Plan::hit) {
        count(call, CacheStatus::Hit);
        return Ok(hit);
    }
    // The path as the upstream sees it, which is what its cookies' `Path` speaks about (jar only).
    let jar_path = (call.app.cookies == CookieMode::Jar).then(|| upstream_path(upstream, path));
    let cookies = match &jar_path {
        Some(jar_path) => SendCookies::Replace(jar_cookies(call, jar_path).await?),
        // The browser's cookies below the app's prefix are the app's own build's: a preview gets none.
        None if call.preview.is_some() => SendCookies::Replace(None),
        None => SendCookies::Browser(&PORTAL_COOKIES),
    };
    let identity = identity(call);
    let labels = request.extensions().get::<Labels>().cloned();
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(RequestId::header);
    let forwarded = request.extensions().get::<ForwardedClient>().map(|c| c.0);
    let show_upstream_headers = request.extensions().get::<ShowUpstreamHeaders>().is_some();
    let hop = Hop::of(call.peer, call.context, call.state.listen)
        .behind_proxy(forwarded)
        .with_request_id(request_id);
    let mut prepared = proxy::prepare(
        request,
        Forward {
            hop,
            identity: Some(&identity),
            cookies,
            websocket: true,
        },
    );
    if let Some(plan) = &cache {
        plan.condition(&mut prepared.parts.headers);
    }
    // The client's URI, for its query; the client replaces it with the upstream's.
    let client_uri = std::mem::take(&mut prepared.parts.uri);
    // A WebSocket handshake is joined here, not by the kit, so the relay can close it at shutdown.
    let websocket = prepared.upgrade.take().map(|client| {
        let upgrade = prepared.parts.headers.get(header::UPGRADE).cloned();
        (client, upgrade)
    });
    let started = Instant::now();
    let result = call
        .state
        .upstreams
        .forward(
            upstream,
            Target {
                path: &[&path.raw],
                query: client_uri.query(),
            },
            Request::from_parts(prepared.parts, prepared.body),
            call.context.config.proxy.response_timeout,
            websocket.is_some(),
        )
        .await;
    if let Some(labels) = labels {
        labels.upstream(UpstreamCall::of(started, proxy::outcome(&result)));
    }
    let mut response = result?;
    let accepted = websocket.filter(|_| response.status() == StatusCode::SWITCHING_PROTOCOLS);
    // Judged on the upstream's own headers: shaping may move a `Set-Cookie` into the jar.
    let storable = cache.as_ref().and_then(|plan| plan.judge(&response));
    if show_upstream_headers {
        let seen = UpstreamHeaders(response.headers().clone());
        response.extensions_mut().insert(seen);
    }
    shape_response(call, upstream, jar_path.as_deref(), response.headers_mut()).await;
    if let Some((client, upgrade)) = accepted {
        return Ok(switch_protocols(call, response, client, upgrade));
    }
    if let Some(plan) = cache {
        let settings = call.context.config.proxy.cache;
        let (response, status) = plan.finish(&call.state.cache, settings, storable, response);
        count(call, status);
        return Ok(response);
    }
    Ok(response)
}

/// The cache's plan for this request (`None`: not one the cache answers, e.g. a POST).
fn cache_plan(
    call: &Call<'_>,
    upstream: &Upstream,
    path: &AppPath,
    request: &Request,
) -> Option<Plan> {
    let scope = Scope {
        tenant: &call.context.tenant.id,
        app: &call.app.id,
        upstream: &upstream.url,
        path: &path.raw,
        query: request.uri().query(),
    };
    call.state.cache.plan(&scope, request)
}

fn count(call: &Call<'_>, status: CacheStatus) {
    let tenant = &call.context.tenant.id;
    call.state
        .metrics
        .cache_response(tenant, &call.app.id, status.as_str());
}

/// The upstream accepted a WebSocket handshake: the relay joins both connections once the browser
/// has its `101` (with `Connection`/`Upgrade` put back, which the kit removes as hop-by-hop).
fn switch_protocols(
    call: &Call<'_>,
    mut response: Response,
    client: OnUpgrade,
    upgrade: Option<HeaderValue>,
) -> Response {
    let upstream = hyper::upgrade::on(&mut response);
    // `portico_open_websockets` counts the relay for as long as it runs.
    let open = crate::telemetry::metrics::GaugeGuard::new(&call.state.metrics.websockets());
    let relay = websocket::relay(client, upstream, call.state.shutdown.clone());
    call.state.websockets.spawn(async move {
        relay.await;
        drop(open);
    });
    let (mut parts, _) = response.into_parts();
    parts
        .headers
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    parts.headers.insert(
        header::UPGRADE,
        upgrade.unwrap_or_else(|| HeaderValue::from_static("websocket")),
    );
    Response::from_parts(parts, Body::empty())
}

/// `path` below the upstream's base path; built only when the upstream has one.
fn upstream_path<'a>(upstream: &Upstream, path: &'a AppPath) -> Cow<'a, str> {
    if upstream.base_path.is_empty() {
        Cow::Borrowed(&path.raw)
    } else {
        Cow::Owned(format!("{}{}", upstream.base_path, path.raw))
    }
}

/// The identity the app asked for (`identity:`), from what the user's principal keeps: the signed
/// assertion (signed once per app while it has life left), the user's access token, the identity
/// header values.
fn identity<'a>(call: &'a Call<'_>) -> Identity<'a> {
    let (app, session, tenant) = (call.app, &*call.signed_in.session, &*call.context.tenant);
    let principal = &call.signed_in.principal;
    let assertion = app.identity.assertion.then(|| {
        let lifetime = call
            .context
            .config
            .proxy
            .assertion_lifetime
            .as_secs()
            .max(1);
        let via = call
            .signed_in
            .bearer
            .as_deref()
            .map(|bearer| (bearer.kind, bearer.token_id.as_str()));
        principal.assertion(
            &call.state.signing_keys.load(),
            session,
            tenant,
            &app.id,
            lifetime,
            via,
        )
    });
    Identity {
        values: principal.identity_values(session, tenant),
        app: app.id.as_str(),
        modes: app.identity,
        assertion,
        bearer: app
            .identity
            .access_token
            .then(|| principal.bearer(session))
            .flatten(),
    }
}

/// The answer as the portal passes it on. No app may set a portal cookie, whatever its cookie mode.
async fn shape_response(
    call: &Call<'_>,
    upstream: &Upstream,
    jar_path: Option<&str>,
    headers: &mut HeaderMap,
) {
    headers::remove_portal_set_cookies(headers, &PORTAL_COOKIES);
    // The app's prefix is only spelled out when a header needs it (not on every response).
    let prefix = || format!("{}/", call.app.base());
    match (call.app.cookies, jar_path) {
        (CookieMode::Jar, Some(jar_path)) => keep_in_jar(call, jar_path, headers).await,
        // Nor may a preview write the browser's cookies of the app's own build; and a script with a
        // bearer token gets no cookie at all: it speaks with its token alone, and an app's session
        // cookie in its hands would be a second credential that no revocation ends.
        (_, None) if call.preview.is_some() || call.signed_in.bearer.is_some() => {
            headers.remove(header::SET_COOKIE);
        }
        (mode, _) if headers.contains_key(header::SET_COOKIE) => {
            let drop = mode != CookieMode::Scoped;
            headers::scope_set_cookies(headers, &prefix(), &upstream.base_path, drop);
        }
        _ => {}
    }
    if headers.contains_key(header::LOCATION) {
        headers::rewrite_location(headers, &upstream.authority, &upstream.base_path, &prefix());
    }
    headers::remove_origin_wide_headers(headers);
}

/// Whose jar the request uses: the app's, or for a preview one of its own per preview address, so that
/// a preview never sees the cookies the app's own build keeps (its sessions with its backend) and never
/// overwrites them.
fn jar_id<'a>(call: &'a Call<'_>) -> Cow<'a, AppId> {
    match call.preview {
        None => Cow::Borrowed(&call.app.id),
        Some(preview) => Cow::Owned(AppId::new(&format!("{}@{}", call.app.id, preview.url))),
    }
}

/// `cookies: jar`: the upstream gets the session's jar for this app and nothing the browser sent as
/// cookies (any app's script can write those, so none of them can be trusted as this app's).
async fn jar_cookies(call: &Call<'_>, jar_path: &str) -> Result<Option<HeaderValue>, AppError> {
    let jar = call
        .state
        .sessions
        .jar(&call.signed_in.session.id, &jar_id(call))
        .await
        .map_err(AuthError::StoreUnavailable)?;
    let now = crate::clock::unix_now();
    Ok(jar.and_then(|jar| jar.cookie_header(jar_path, now)))
}

/// `cookies: jar`: the upstream's `Set-Cookie`s go into the session's jar and never to the browser.
/// A store failure loses those cookies (logged), not the response.
async fn keep_in_jar(call: &Call<'_>, jar_path: &str, headers: &mut HeaderMap) {
    let now = crate::clock::unix_now();
    let cookies = jar::take_set_cookies(headers, jar_path, now);
    if cookies.is_empty() {
        return;
    }
    if let Err(error) = call
        .state
        .sessions
        .update_jar(&call.signed_in.session.id, &jar_id(call), cookies, now)
        .await
    {
        tracing::warn!(app = %call.app.id, %error, "cookie jar: the app's cookies could not be kept");
    }
}
