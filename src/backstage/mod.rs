//! `/backstage/api/…`: the tenant's Backstage backend under the portal's origin, called as the user.
//!
//! In `user` mode portico signs the user in to Backstage's `oauth2Proxy` provider itself (that provider
//! trusts `X-Forwarded-*` headers blindly, so only portico may ever send them) and sends the returned
//! Backstage user token; in `service` mode it sends a static external-access token (`credential`).
//! The user is named `<user_namespace>/<subject>` with at most a verified email, for a resolver that
//! looks only in that namespace (docs/backstage-identity.md), and portico refuses any answer naming a
//! user outside it: a user of one tenant never becomes an entity of another tenant's namespace, whatever
//! Backstage runs. Client-sent `Authorization` and oauth2-proxy headers are always removed first, only
//! allow-listed plugins are reachable, and the `auth` plugin never is. A tenant with catalog
//! `namespaces` only reads those (and its shared ones) through the `catalog` plugin: `scope` narrows
//! or refuses each catalog request.
//!
//! A request goes through named phases on top of the forwarding kit (`proxy`): `route` (plugin
//! allowed?), the canonical path and `proxy::guard`, `plan` (how the catalog scope applies),
//! `prepare` (the kit's, then `rewrite_body`), `send` with the credential, and `check_answer`. This
//! module must not decide app access (`rbac`) and talks to Backstage only through the kit's pooled
//! client.

mod credential;
mod error;
pub mod scope;
pub(crate) mod tokens;
mod ui;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::any;
use http_body_util::BodyExt;

use crate::auth::SignedIn;
use crate::config::{BackstageIdentity, BackstageSettings};
use crate::http::{AppError, RequestContext};
use crate::proxy::headers::{self, Hop, SendCookies};
use crate::proxy::{self, Forward, Guard, ProxyError, Target, over_body_limit, path};
use crate::state::AppState;
use crate::telemetry::{ForwardedClient, Labels, RequestId, UpstreamCall};
use credential::{Credentials, bearer};
pub use error::BackstageError;
use scope::{AnswerRule, BodyRule, Plan, Scope};
pub use tokens::BackstageTokens;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/backstage/api/{plugin}", any(backstage_request))
        .route("/backstage/api/{plugin}/{*rest}", any(backstage_request))
}

async fn backstage_request(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    context: RequestContext,
    signed_in: SignedIn,
    request: Request,
) -> Result<Response, AppError> {
    // Kept apart from the request (a cheap clone of shared bytes), which the guard takes over.
    let uri = request.uri().clone();
    if let Some(ui) = ui_sign_in(&context, &uri) {
        let keys = state.signing_keys.load_full();
        let settings = context
            .tenant
            .backstage
            .as_ref()
            .ok_or(BackstageError::NotConfigured)?;
        let credentials = credentials(&state, &context, &signed_in, settings, &keys);
        return ui::sign_in(credentials, ui, request.method()).await;
    }
    let (settings, plugin, rest) = route(&context, &uri, &request)?;
    signed_in.check_token_scope(None, request.method())?;
    let inside = path::normalise(rest).map_err(ProxyError::from)?;
    let request = proxy::guard(request, &Guard::of(&context, signed_in.csrf_token()))?;
    // Only the catalog holds namespaced data; other plugins are governed by the allow-list alone.
    let scope = (plugin == "catalog").then(|| Scope::of(settings)).flatten();
    let plan = plan(scope.as_ref(), settings, &request, &inside.decoded)?;
    let query = plan
        .query
        .as_deref()
        .or(uri.query())
        .filter(|query| !query.is_empty());
    let labels = request.extensions().get::<Labels>().cloned();
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(RequestId::header);
    let forwarded = request.extensions().get::<ForwardedClient>().map(|c| c.0);
    let hop = Hop::of(peer, &context, state.listen)
        .behind_proxy(forwarded)
        .with_request_id(request_id);
    let (parts, body) = prepare(request, hop, scope.as_ref(), &plan, &context).await?;
    // The keys of this moment, held for the call (a reload may rotate them meanwhile).
    let keys = state.signing_keys.load_full();
    let call = Call {
        credentials: credentials(&state, &context, &signed_in, settings, &keys),
        target: Target {
            path: &["/api/", plugin, &inside.raw],
            query,
        },
        timeout: context.config.proxy.response_timeout,
        labels,
    };
    send(&call, scope.as_ref(), &plan, parts, body).await
}

/// The UI's sign-in call (`ui::SIGN_IN`), when the tenant mounts Backstage's web UI: the UI app.
fn ui_sign_in<'a>(context: &'a RequestContext, uri: &Uri) -> Option<&'a crate::config::App> {
    let rest = uri.path().strip_prefix("/backstage/api/")?;
    (rest == ui::SIGN_IN)
        .then(|| context.tenant.backstage_ui())?
        .map(|app| &**app)
}

/// What getting the user's credential needs, from the request's parts; `keys` are the signing keys of
/// this moment, held for the call (a reload may rotate them meanwhile).
fn credentials<'a>(
    state: &'a AppState,
    context: &'a RequestContext,
    signed_in: &'a SignedIn,
    settings: &'a BackstageSettings,
    keys: &'a crate::assertion::SigningKeys,
) -> Credentials<'a> {
    Credentials {
        client: &state.upstreams,
        tokens: &state.backstage_tokens,
        settings,
        holder: signed_in.holder(),
        user: &signed_in.session.user,
        keys,
        issuer: &context.tenant.assertion_issuer,
        tenant: context.tenant.id.as_str(),
        roles: signed_in.roles(),
    }
}

/// Phase 1: the tenant's Backstage settings, the plugin named by `/backstage/api/<plugin>/<rest>` if
/// it is allowed (never `auth`), and the rest of the raw path; the plugin goes on the access log line.
fn route<'a, 'u>(
    context: &'a RequestContext,
    uri: &'u Uri,
    request: &Request,
) -> Result<(&'a BackstageSettings, &'u str, &'u str), BackstageError> {
    let settings = context
        .tenant
        .backstage
        .as_ref()
        .ok_or(BackstageError::NotConfigured)?;
    let after = uri.path().strip_prefix("/backstage/api/").unwrap_or("");
    let (plugin, rest) = after.split_once('/').unwrap_or((after, ""));
    if plugin == "auth" || !settings.plugins.iter().any(|allowed| allowed == plugin) {
        return Err(BackstageError::PluginNotAllowed(plugin.to_owned()));
    }
    // Only an allowed plugin names the app: the name is a metric label, so it must come from config.
    if let Some(labels) = request.extensions().get::<Labels>() {
        labels.app_name(format!("backstage:{plugin}").into());
    }
    Ok((settings, plugin, rest))
}

/// Phase 2: how the catalog scope applies to this request (nothing to do outside the catalog).
fn plan(
    scope: Option<&Scope>,
    settings: &BackstageSettings,
    request: &Request,
    inside: &str,
) -> Result<Plan, BackstageError> {
    match scope {
        Some(scope) => scope::plan(
            scope,
            &settings.allow_unscoped,
            request.method(),
            inside,
            request.uri().query(),
        ),
        None => Ok(Plan::pass()),
    }
}

/// Phase 3: the upstream request: the kit's preparation, then the body as the plan wants it.
async fn prepare(
    request: Request,
    hop: Hop<'_>,
    scope: Option<&Scope>,
    plan: &Plan,
    context: &RequestContext,
) -> Result<(Parts, Body), AppError> {
    let prepared = proxy::prepare(
        request,
        Forward {
            hop,
            // Backstage gets its own credential (`send`); no portico identity headers.
            identity: None,
            // Backstage authenticates by the token portico attaches. The browser's cookies on this
            // origin are the apps' (or, in jar mode, none at all), and none of them is Backstage's.
            cookies: SendCookies::Replace(None),
            websocket: false,
        },
    );
    rewrite_body(scope, plan, prepared.parts, prepared.body, context).await
}

/// The request body as the plan wants it (read whole and rewritten, or streamed as sent), and an
/// uncompressed answer asked for when portico will read it.
async fn rewrite_body(
    scope: Option<&Scope>,
    plan: &Plan,
    mut parts: Parts,
    body: Body,
    context: &RequestContext,
) -> Result<(Parts, Body), AppError> {
    let body = match (scope, plan.body) {
        (Some(scope), rule) if rule != BodyRule::Keep => {
            let max_body = context.config.proxy.max_request_body;
            let sent = read_request_body(&parts.headers, body, max_body).await?;
            let rewritten = scope::scope_body(scope, rule, &sent)?;
            let headers = &mut parts.headers;
            headers.remove(header::CONTENT_ENCODING);
            headers.remove(header::TRANSFER_ENCODING);
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(rewritten.len()));
            Body::from(rewritten)
        }
        _ => body,
    };
    if plan.answer != AnswerRule::Stream {
        // Portico reads these answers, so it asks for them uncompressed.
        parts.headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
    }
    Ok((parts, body))
}

/// Phase 4: sends the request with the credential (after reading the entity first when the plan says
/// so), then checks the answer.
async fn send(
    call: &Call<'_>,
    scope: Option<&Scope>,
    plan: &Plan,
    parts: Parts,
    body: Body,
) -> Result<Response, AppError> {
    let bodyless = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::DELETE
    ) && parts
        .headers
        .get(header::CONTENT_LENGTH)
        .is_none_or(|length| length == "0");
    if let (Some(scope), true) = (scope, plan.check_first) {
        // by-uid DELETE: the uid says nothing of the namespace, so read the entity first.
        let mut probe = Request::new(Body::empty());
        let probe_headers = probe.headers_mut();
        probe_headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        probe_headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        let (probe_parts, probe_body) = probe.into_parts();
        let answer = call.send(probe_parts, probe_body, true).await?;
        let checked = scope::checked_entity(scope, answer).await?;
        if !checked.status().is_success() {
            return Ok(checked);
        }
    }
    let response = call.send(parts, body, bodyless).await?;
    check_answer(scope, plan, response).await
}

/// Phase 5: the answer as the portal passes it on.
async fn check_answer(
    scope: Option<&Scope>,
    plan: &Plan,
    mut response: Response,
) -> Result<Response, AppError> {
    // A plugin's cookie would land on the portal's origin beside every app's (and with `Path=/`, be
    // sent to all of them): the Backstage mount is an API behind portico's session, so it sets none.
    response.headers_mut().remove(header::SET_COOKIE);
    headers::remove_origin_wide_headers(response.headers_mut());
    Ok(match (scope, plan.answer) {
        (Some(scope), AnswerRule::Entity) => scope::checked_entity(scope, response).await?,
        (Some(scope), AnswerRule::Ancestry) => scope::checked_ancestry(scope, response).await?,
        _ => response,
    })
}

/// One request to the tenant's Backstage, with the right credential.
struct Call<'a> {
    credentials: Credentials<'a>,
    target: Target<'a>,
    timeout: Duration,
    /// Where the upstream's status and time go (the access line and the metrics).
    labels: Option<Labels>,
}

impl Call<'_> {
    /// Sends the request; `replayable` (no body) lets a rejected user token be renewed once.
    async fn send(
        &self,
        mut parts: Parts,
        body: Body,
        replayable: bool,
    ) -> Result<Response, AppError> {
        let settings = self.credentials.settings;
        let retry = replayable.then(|| (parts.method.clone(), parts.headers.clone()));
        let first = credential::credential(self.credentials, false).await?;
        parts.headers.insert(header::AUTHORIZATION, bearer(&first)?);
        let response = self.forward(Request::from_parts(parts, body)).await?;
        // A user token Backstage no longer accepts (it restarted with new keys): sign in again, once.
        let user_mode = matches!(settings.identity, BackstageIdentity::User);
        let (StatusCode::UNAUTHORIZED, true, Some((method, headers))) =
            (response.status(), user_mode, retry)
        else {
            return Ok(response);
        };
        let renewed = credential::credential(self.credentials, true).await?;
        let mut again = Request::new(Body::empty());
        *again.method_mut() = method;
        *again.headers_mut() = headers;
        again
            .headers_mut()
            .insert(header::AUTHORIZATION, bearer(&renewed)?);
        Ok(self.forward(again).await?)
    }

    /// One exchange with Backstage, its status and time recorded for the access line.
    async fn forward(&self, request: Request) -> Result<Response, ProxyError> {
        let started = std::time::Instant::now();
        let result = self
            .credentials
            .client
            .forward(
                &self.credentials.settings.backend,
                self.target,
                request,
                self.timeout,
                false,
            )
            .await;
        if let Some(labels) = &self.labels {
            labels.upstream(UpstreamCall::of(started, proxy::outcome(&result)));
        }
        result
    }
}

/// A request body portico rewrites, read whole (at most `scope::MAX_REWRITTEN_BODY`).
async fn read_request_body(
    headers: &HeaderMap,
    body: Body,
    max_body: u64,
) -> Result<bytes::Bytes, AppError> {
    // Backstage would inflate a compressed body; portico would be checking the compressed bytes.
    if headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|encoding| encoding != "identity")
    {
        return Err(BackstageError::BadCatalogRequest("compressed bodies are not accepted").into());
    }
    let limit = usize::try_from(max_body)
        .unwrap_or(usize::MAX)
        .min(scope::MAX_REWRITTEN_BODY);
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        // Over this limit, or over `proxy.max_request_body` as the body streamed in.
        Err(error)
            if error.is::<http_body_util::LengthLimitError>() || over_body_limit(&*error) =>
        {
            Err(ProxyError::BodyTooLarge {
                limit: limit as u64,
            }
            .into())
        }
        Err(_) => {
            Err(BackstageError::BadCatalogRequest("the request body could not be read").into())
        }
    }
}
