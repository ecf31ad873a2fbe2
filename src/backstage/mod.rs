//! `/backstage/api/…`: the tenant's Backstage backend under the portal's origin, called as the user.
//!
//! In `user` mode portico signs the user in to Backstage's `oauth2Proxy` provider itself (that provider
//! trusts `X-Forwarded-*` headers blindly, so only portico may ever send them) and sends the returned
//! Backstage user token; in `service` mode it sends a static external-access token. The user is named
//! `<user_namespace>/<subject>` with at most a verified email, for a resolver that looks only in that
//! namespace (docs/backstage-identity.md), and portico refuses any answer naming a user outside it: a
//! user of one tenant never becomes an entity of another tenant's namespace, whatever Backstage runs. Client-sent
//! `Authorization` and oauth2-proxy headers are always removed first, only allow-listed plugins are
//! reachable, and the `auth` plugin never is. A tenant with catalog `namespaces` only reads those
//! (and its shared ones) through the `catalog` plugin: `scope` narrows or refuses each catalog request.
//! This module must not decide app access (`rbac`) and talks to Backstage only through the proxy's
//! pooled client.

pub mod scope;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::any;
use axum::{Extension, Router};
use http_body_util::BodyExt;
use serde::Deserialize;

use crate::auth::SignedIn;
use crate::clock::unix_now;
use crate::config::{BackstageIdentity, BackstageSettings, IdentityModes};
use crate::http::{AppError, Class, Problem, RequestContext};
use crate::proxy::headers::{self, Identity};
use crate::proxy::{
    ProxyError, forwarded_origin, guard_forwarded_request, over_body_limit, path,
    remove_origin_wide_headers,
};
use crate::state::AppState;
use crate::telemetry::Labels;
use scope::{AnswerRule, BodyRule, Plan, Scope};

/// Why a Backstage request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum BackstageError {
    /// 404: this tenant has no Backstage backend.
    #[error("this portal has no Backstage backend")]
    NotConfigured,
    /// 403: the plugin is not in the tenant's allow-list (or is `auth`, which never is).
    #[error("the Backstage plugin `{0}` is not available through the portal")]
    PluginNotAllowed(String),
    /// 502: Backstage would not sign the user in (for example, no catalog user matches).
    #[error("Backstage did not accept your identity")]
    SignInRefused(String),
    /// 403: a catalog endpoint that cannot be narrowed to the tenant's namespaces and is not in
    /// `allow_unscoped` (the path below `/api/catalog`, for the log).
    #[error("this catalog endpoint cannot be limited to this portal's namespaces")]
    CatalogUnscoped(String),
    /// 404: the entity is outside the tenant's namespaces (or does not exist: the two look the same).
    #[error("there is no such entity in this portal's catalog")]
    EntityNotFound,
    /// 400: a catalog request portico cannot scope safely as written (what is wrong is shown).
    #[error("bad catalog request: {0}")]
    BadCatalogRequest(&'static str),
    /// 502: a catalog answer portico must check was not what Backstage sends (or too large).
    #[error("Backstage gave an answer that could not be checked")]
    UnexpectedAnswer(String),
}

impl Problem for BackstageError {
    fn classify(&self) -> Class {
        match self {
            BackstageError::NotConfigured => {
                Class::new(StatusCode::NOT_FOUND, "backstage_not_configured")
            }
            BackstageError::EntityNotFound => {
                Class::new(StatusCode::NOT_FOUND, "backstage_entity_not_found")
            }
            BackstageError::PluginNotAllowed(_) => {
                Class::new(StatusCode::FORBIDDEN, "backstage_plugin_not_allowed")
            }
            BackstageError::CatalogUnscoped(path) => {
                Class::new(StatusCode::FORBIDDEN, "backstage_catalog_unscoped")
                    .detail(format!("refused catalog path {path}"))
            }
            BackstageError::BadCatalogRequest(_) => {
                Class::new(StatusCode::BAD_REQUEST, "backstage_bad_catalog_request")
            }
            BackstageError::SignInRefused(detail) => {
                Class::new(StatusCode::BAD_GATEWAY, "backstage_sign_in_refused")
                    .detail(detail.as_str())
            }
            BackstageError::UnexpectedAnswer(detail) => {
                Class::new(StatusCode::BAD_GATEWAY, "backstage_unexpected_answer")
                    .detail(detail.as_str())
            }
        }
    }
}

/// Renew a cached Backstage token this long before Backstage says it expires.
const TOKEN_MARGIN_SECS: u64 = 120;

/// Backstage user tokens per portal session, until shortly before they expire.
#[derive(Default)]
pub struct BackstageTokens {
    tokens: Mutex<HashMap<String, (String, u64)>>,
}

impl BackstageTokens {
    fn get(&self, session: &str) -> Option<String> {
        let tokens = self.tokens.lock().ok()?;
        let (token, renew_at) = tokens.get(session)?;
        (*renew_at > unix_now()).then(|| token.clone())
    }

    fn put(&self, session: &str, token: String, expires_in: u64) {
        if let Ok(mut tokens) = self.tokens.lock() {
            let now = unix_now();
            if tokens.len() > 20_000 {
                tokens.retain(|_, (_, renew_at)| *renew_at > now);
            }
            let renew_at = now + expires_in.saturating_sub(TOKEN_MARGIN_SECS.min(expires_in / 2));
            tokens.insert(session.to_owned(), (token, renew_at));
        }
    }

    fn forget(&self, session: &str) {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.remove(session);
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/backstage/api/{plugin}", any(backstage_request))
        .route("/backstage/api/{plugin}/{*rest}", any(backstage_request))
}

#[derive(Deserialize)]
struct RefreshAnswer {
    #[serde(rename = "backstageIdentity")]
    backstage_identity: BackstageIdentityAnswer,
}

#[derive(Deserialize)]
struct BackstageIdentityAnswer {
    token: String,
    #[serde(rename = "expiresInSeconds")]
    expires_in_seconds: Option<u64>,
    identity: SignedInIdentity,
}

/// Who Backstage signed the user in as (`backstageIdentity.identity` of the refresh answer).
#[derive(Deserialize)]
struct SignedInIdentity {
    #[serde(rename = "userEntityRef")]
    user_entity_ref: String,
    #[serde(rename = "ownershipEntityRefs", default)]
    ownership_entity_refs: Vec<String>,
}

async fn backstage_request(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(context): Extension<RequestContext>,
    signed_in: SignedIn,
    request: Request,
) -> Result<Response, AppError> {
    let tenant = &context.tenant;
    let settings = tenant
        .backstage
        .as_ref()
        .ok_or(BackstageError::NotConfigured)?;
    let raw_path = request.uri().path().to_owned();
    let after = raw_path.strip_prefix("/backstage/api/").unwrap_or("");
    let (plugin, rest) = after.split_once('/').unwrap_or((after, ""));
    if let Some(labels) = request.extensions().get::<Labels>() {
        labels.app(&format!("backstage:{plugin}"));
    }
    if plugin == "auth" || !settings.plugins.iter().any(|allowed| allowed == plugin) {
        return Err(BackstageError::PluginNotAllowed(plugin.to_owned()).into());
    }
    let inside = path::normalise(rest).map_err(|bad| ProxyError::BadPath(bad.0))?;
    let request = guard_forwarded_request(request, &context, &signed_in)?;
    // Only the catalog holds namespaced data; other plugins are governed by the allow-list alone.
    let scope = if plugin == "catalog" {
        Scope::of(settings)
    } else {
        None
    };
    let plan = match &scope {
        Some(scope) => scope::plan(
            scope,
            &settings.allow_unscoped,
            request.method(),
            &inside.decoded,
            request.uri().query(),
        )?,
        None => Plan::pass(),
    };
    let query = plan
        .query
        .as_deref()
        .or(request.uri().query())
        .filter(|query| !query.is_empty());
    let path_and_query = match query {
        Some(query) => format!("/api/{plugin}{}?{query}", inside.raw),
        None => format!("/api/{plugin}{}", inside.raw),
    };
    let max_body = context.config.proxy.max_request_body;
    let (mut parts, body) = request.into_parts();
    let user = &signed_in.session.user;
    let roles = signed_in.roles.names();
    // Backstage gets its own credential below; no portico identity headers.
    let identity = Identity::of(user, &roles, &tenant.id, "backstage", IdentityModes::NONE);
    // Backstage authenticates by the token portico attaches. The browser's cookies on this origin are
    // the apps' (or, in jar mode, none at all), and none of them is Backstage's business.
    parts.headers.remove(header::COOKIE);
    headers::prepare_upstream_request(
        &mut parts.headers,
        &identity,
        peer.ip(),
        forwarded_origin(&context, state.listen).as_ref(),
    );
    parts.extensions = Default::default();
    let body = match (&scope, plan.body) {
        (Some(scope), rule) if rule != BodyRule::Keep => {
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
    let bodyless = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::DELETE
    ) && parts
        .headers
        .get(header::CONTENT_LENGTH)
        .is_none_or(|length| length == "0");
    let call = Call {
        state: &state,
        settings,
        signed_in: &signed_in,
        path_and_query: &path_and_query,
        timeout: context.config.proxy.response_timeout,
    };

    if let (Some(scope), true) = (&scope, plan.check_first) {
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
    let mut response = call.send(parts, body, bodyless).await?;
    // A plugin's cookie would land on the portal's origin beside every app's (and with `Path=/`, be
    // sent to all of them): the Backstage mount is an API behind portico's session, so it sets none.
    response.headers_mut().remove(header::SET_COOKIE);
    remove_origin_wide_headers(response.headers_mut());
    Ok(match (&scope, plan.answer) {
        (Some(scope), AnswerRule::Entity) => scope::checked_entity(scope, response).await?,
        (Some(scope), AnswerRule::Ancestry) => scope::checked_ancestry(scope, response).await?,
        _ => response,
    })
}

/// One request to the tenant's Backstage, with the right credential.
struct Call<'a> {
    state: &'a AppState,
    settings: &'a BackstageSettings,
    signed_in: &'a SignedIn,
    path_and_query: &'a str,
    timeout: Duration,
}

impl Call<'_> {
    /// Sends the request; `replayable` (no body) lets a rejected user token be renewed once.
    async fn send(
        &self,
        mut parts: Parts,
        body: Body,
        replayable: bool,
    ) -> Result<Response, AppError> {
        let retry = replayable.then(|| (parts.method.clone(), parts.headers.clone()));
        let first = credential(self.state, self.settings, self.signed_in, false).await?;
        parts.headers.insert(header::AUTHORIZATION, bearer(&first)?);
        let response = self
            .state
            .upstreams
            .forward(
                &self.settings.backend,
                self.path_and_query,
                Request::from_parts(parts, body),
                self.timeout,
                None,
            )
            .await?;
        // A user token Backstage no longer accepts (it restarted with new keys): sign in again, once.
        let user_mode = matches!(self.settings.identity, BackstageIdentity::User);
        let (StatusCode::UNAUTHORIZED, true, Some((method, headers))) =
            (response.status(), user_mode, retry)
        else {
            return Ok(response);
        };
        let renewed = credential(self.state, self.settings, self.signed_in, true).await?;
        let mut again = Request::new(Body::empty());
        *again.method_mut() = method;
        *again.headers_mut() = headers;
        again
            .headers_mut()
            .insert(header::AUTHORIZATION, bearer(&renewed)?);
        Ok(self
            .state
            .upstreams
            .forward(
                &self.settings.backend,
                self.path_and_query,
                again,
                self.timeout,
                None,
            )
            .await?)
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

fn bearer(token: &str) -> Result<HeaderValue, AppError> {
    HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| AppError::internal("Backstage token is not a header value"))
}

/// The credential for this request: the static service token, or the user's Backstage token.
async fn credential(
    state: &AppState,
    settings: &BackstageSettings,
    signed_in: &SignedIn,
    renew: bool,
) -> Result<String, AppError> {
    let BackstageIdentity::Service(token) = &settings.identity else {
        return user_token(state, settings, signed_in, renew).await;
    };
    Ok(token.0.clone())
}

async fn user_token(
    state: &AppState,
    settings: &BackstageSettings,
    signed_in: &SignedIn,
    renew: bool,
) -> Result<String, AppError> {
    let session = signed_in.session.id.as_str();
    if renew {
        state.backstage_tokens.forget(session);
    } else if let Some(token) = state.backstage_tokens.get(session) {
        return Ok(token);
    }
    let user = &signed_in.session.user;
    let mut request = Request::new(Body::empty());
    let headers: &mut HeaderMap = request.headers_mut();
    // The headers Backstage's oauth2Proxy provider reads; only portico ever sends them. The user is
    // named inside the tenant's own namespace, and the resolver (docs/backstage-identity.md) looks
    // only there. No preferred username: a stock resolver would look it up in `default`. No ID token:
    // Backstage never checks its signature, and its claims (an unverified email, say) are the IdP's
    // raw word, not what portico verified.
    let forwarded_user = format!("{}/{}", settings.user_namespace, user.subject);
    headers.insert("x-forwarded-user", header_text(&forwarded_user)?);
    // Only ever a verified address (`User::email`), and only one the IdP sent.
    if !user.email.is_empty() {
        headers.insert("x-forwarded-email", header_text(&user.email)?);
    }
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let (status, body) = state
        .upstreams
        .fetch_small(
            &settings.backend,
            "/api/auth/oauth2Proxy/refresh",
            request,
            Duration::from_secs(10),
        )
        .await?;
    if !status.is_success() {
        let detail = format!(
            "{status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        );
        return Err(BackstageError::SignInRefused(detail).into());
    }
    let answer: RefreshAnswer = serde_json::from_slice(&body)
        .map_err(|error| BackstageError::SignInRefused(format!("unexpected answer: {error}")))?;
    // Whatever resolvers Backstage runs, portico only uses an identity inside the tenant's namespaces.
    check_identity(settings, &answer.backstage_identity.identity)?;
    let token = answer.backstage_identity.token;
    state.backstage_tokens.put(
        session,
        token.clone(),
        answer.backstage_identity.expires_in_seconds.unwrap_or(3600),
    );
    Ok(token)
}

fn header_text(text: &str) -> Result<HeaderValue, AppError> {
    HeaderValue::from_str(text).map_err(|_| {
        BackstageError::SignInRefused("the user's identity is not a valid header value".into())
            .into()
    })
}

/// Refuses a Backstage identity that is not bound to the tenant: the user entity must be in the
/// tenant's `user_namespace`, and (for a scoped tenant) everything it owns through must be in the
/// tenant's own or shared namespaces. A stock resolver that matches by email across namespaces, or a
/// catalog user that claims membership of another tenant's group, is stopped here.
fn check_identity(
    settings: &BackstageSettings,
    identity: &SignedInIdentity,
) -> Result<(), BackstageError> {
    let outside = |detail: String| Err(BackstageError::SignInRefused(detail));
    let user = identity.user_entity_ref.as_str();
    match ref_namespace(user) {
        Some(("user", namespace)) if namespace == settings.user_namespace => {}
        _ => {
            return outside(format!(
                "Backstage signed the user in as `{user}`, outside the user namespace `{}`",
                settings.user_namespace
            ));
        }
    }
    if !settings.scoped() {
        return Ok(());
    }
    let readable = |namespace: &str| {
        settings
            .namespaces
            .iter()
            .chain(&settings.shared_namespaces)
            .any(|owned| owned == namespace)
    };
    for owner in &identity.ownership_entity_refs {
        if !ref_namespace(owner).is_some_and(|(_, namespace)| readable(&namespace)) {
            return outside(format!(
                "`{user}` owns through `{owner}`, outside this tenant's namespaces"
            ));
        }
    }
    Ok(())
}

/// The kind and namespace of a full entity ref `kind:namespace/name`, lower-cased (Backstage compares
/// refs case-insensitively); `None` for anything else.
fn ref_namespace(entity_ref: &str) -> Option<(&str, String)> {
    let (kind, rest) = entity_ref.split_once(':')?;
    let (namespace, name) = rest.split_once('/')?;
    if name.is_empty() || name.contains('/') || namespace.is_empty() {
        return None;
    }
    let kind = if kind.eq_ignore_ascii_case("user") {
        "user"
    } else {
        kind
    };
    Some((kind, namespace.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(namespaces: &[&str], shared: &[&str], user_namespace: &str) -> BackstageSettings {
        BackstageSettings {
            backend: crate::config::parse_upstream("http://127.0.0.1:7007").unwrap(),
            identity: BackstageIdentity::User,
            plugins: vec!["catalog".into()],
            namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
            shared_namespaces: shared.iter().map(|n| n.to_string()).collect(),
            user_namespace: user_namespace.into(),
            allow_unscoped: Vec::new(),
        }
    }

    fn identity(user: &str, owns: &[&str]) -> SignedInIdentity {
        SignedInIdentity {
            user_entity_ref: user.into(),
            ownership_entity_refs: owns.iter().map(|o| o.to_string()).collect(),
        }
    }

    #[test]
    fn an_identity_in_the_user_namespace_owning_inside_the_tenant_is_accepted() {
        let acme = settings(&["acme"], &["common"], "acme");
        let alice = [
            "user:acme/alice",
            "group:acme/platform",
            "group:common/guild",
        ];
        assert!(check_identity(&acme, &identity("user:acme/alice", &alice)).is_ok());
        // Backstage spells refs in lower case, but an upper-case kind or namespace is the same ref.
        assert!(check_identity(&acme, &identity("User:ACME/alice", &[])).is_ok());
        // A tenant without namespaces owns its Backstage: only the user namespace is checked.
        let single = settings(&[], &[], "default");
        let guest = ["user:default/guest", "group:ops/x"];
        assert!(check_identity(&single, &identity("user:default/guest", &guest)).is_ok());
    }

    #[test]
    fn an_identity_outside_the_tenant_is_refused() {
        let globex = settings(&["globex", "globex-labs"], &["common"], "globex");
        for (user, owns) in [
            // What Backstage's stock email resolver does across namespaces.
            ("user:acme/alice", vec!["user:acme/alice"]),
            ("user:default/guest", vec![]),
            // Another namespace of the tenant, but not the one users sign in to.
            ("user:globex-labs/hank", vec![]),
            // Not a user, or not a full ref.
            ("group:globex/ops", vec![]),
            ("user:hank", vec![]),
            ("globex/hank", vec![]),
            ("user:globex/a/b", vec![]),
            ("", vec![]),
            // A globex user whose catalog entry claims another tenant's group.
            (
                "user:globex/hank",
                vec!["user:globex/hank", "group:acme/platform"],
            ),
            ("user:globex/hank", vec!["group:ops"]),
        ] {
            let result = check_identity(&globex, &identity(user, &owns));
            assert!(
                matches!(result, Err(BackstageError::SignInRefused(_))),
                "{user} {owns:?}"
            );
        }
    }
}
