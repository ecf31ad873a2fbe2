//! The credential portico sends to Backstage for a user: the static service token (`identity: service`),
//! one portico signs, or the user's own Backstage token (`identity: user`), cached per session in
//! [`BackstageTokens`]. A user is signed in through portico's own `portico` provider
//! (integrations/backstage) with a signed assertion that Backstage verifies, carrying the grants the
//! user's roles earn under `backstage.permissions`; or, for a backend without that provider, through
//! `oauth2Proxy` with headers.
//!
//! Either way the user is named `<user_namespace>/<subject>` with at most a verified email, and any
//! answer naming a user or an owner outside the tenant's namespaces is refused ([`check_identity`]).
//! This file takes the client, the cache and the user as plain values; it never sees the server state.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{BackstageError, BackstageTokens};
use crate::assertion::SigningKeys;
use crate::auth::session::User;
use crate::clock::unix_now;
use crate::config::{
    BACKSTAGE_AUDIENCE, BACKSTAGE_SIGN_IN_AUDIENCE, BackstageGrantRule, BackstageIdentity,
    BackstageSettings, BackstageSignIn,
};
use crate::http::AppError;
use crate::proxy::{Target, UpstreamClient};
use crate::rbac::Roles;

/// The header the `portico` provider reads the sign-in assertion from.
const ASSERTION_HEADER: &str = "x-portico-assertion";
/// How long a sign-in assertion is valid: it is used once, right away.
const SIGN_IN_LIFETIME: u64 = 60;

/// Everything needed to get the credential of one user's request.
#[derive(Clone, Copy)]
pub(super) struct Credentials<'a> {
    pub client: &'a UpstreamClient,
    pub tokens: &'a BackstageTokens,
    pub settings: &'a BackstageSettings,
    /// What the user's Backstage token is cached under: the portal session's id, or a bearer
    /// request's token (`SignedIn::holder`).
    pub holder: &'a str,
    pub user: &'a User,
    /// What signs portico's own service tokens (`service_token: signed`), and their issuer: the
    /// tenant's assertion issuer.
    pub keys: &'a SigningKeys,
    pub issuer: &'a str,
    /// The tenant's id and the user's roles, for the sign-in assertion and its grants.
    pub tenant: &'a str,
    pub roles: &'a Roles,
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

/// `Authorization: Bearer <token>`.
pub(super) fn bearer(token: &str) -> Result<HeaderValue, AppError> {
    HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| AppError::internal("Backstage token is not a header value"))
}

/// The credential for this request: the static service token, a service token portico signs, or the
/// user's Backstage token (signed in again when `renew`: Backstage no longer accepted the cached one).
pub(super) async fn credential(
    credentials: Credentials<'_>,
    renew: bool,
) -> Result<String, AppError> {
    match &credentials.settings.identity {
        BackstageIdentity::Service(token) => Ok(token.0.clone()),
        BackstageIdentity::SignedService => Ok(credentials.tokens.service.token(
            credentials.keys,
            credentials.issuer,
            BACKSTAGE_AUDIENCE,
        )),
        BackstageIdentity::User => user_token(credentials, renew).await,
    }
}

async fn user_token(credentials: Credentials<'_>, renew: bool) -> Result<String, AppError> {
    // The token is kept per session and per what the sign-in said: a reload that changes the user's
    // roles or the rules signs the user in again, so Backstage hears the new grants. Hashed from the
    // rules themselves: the grants' JSON is built only for a sign-in, not for every request.
    let kept_as = format!(
        "{}.{:016x}",
        credentials.holder,
        fingerprint(credentials.settings, credentials.roles)
    );
    let tokens = credentials.tokens;
    if renew {
        tokens.forget(&kept_as).await;
    } else if let Some(token) = tokens.get(&kept_as).await {
        return Ok(token);
    }
    let answer = sign_in(credentials).await?;
    // Whatever resolvers Backstage runs, portico only uses an identity inside the tenant's namespaces.
    check_identity(credentials.settings, &answer.identity)?;
    let token = answer.token;
    tokens
        .put(
            &kept_as,
            token.clone(),
            answer.expires_in_seconds.unwrap_or(3600),
        )
        .await;
    Ok(token)
}

/// Signs the user in: through the `portico` provider, or `oauth2Proxy` (`sign_in`; `auto` takes
/// `oauth2Proxy` only when the backend answers that it has no `portico` provider).
async fn sign_in(credentials: Credentials<'_>) -> Result<BackstageIdentityAnswer, AppError> {
    let settings = credentials.settings;
    if settings.sign_in != BackstageSignIn::Oauth2Proxy {
        let request = assertion_request(credentials)?;
        match refresh(credentials, "/api/auth/portico/refresh", request).await? {
            Refreshed::Answer(answer) => return Ok(answer),
            Refreshed::NoProvider(_) if settings.sign_in == BackstageSignIn::Auto => {}
            Refreshed::NoProvider(detail) => {
                return Err(BackstageError::SignInRefused(format!(
                    "{detail} (the backend lacks portico's provider; see docs/backstage-identity.md)"
                ))
                .into());
            }
        }
    }
    let request = sign_in_request(settings, credentials.user)?;
    match refresh(credentials, "/api/auth/oauth2Proxy/refresh", request).await? {
        Refreshed::Answer(answer) => Ok(answer),
        Refreshed::NoProvider(detail) => Err(BackstageError::SignInRefused(detail).into()),
    }
}

/// What a provider's refresh endpoint answered.
enum Refreshed {
    Answer(BackstageIdentityAnswer),
    /// 404: the backend has no such provider (or it is not configured).
    NoProvider(String),
}

async fn refresh(
    credentials: Credentials<'_>,
    path: &'static str,
    request: Request,
) -> Result<Refreshed, AppError> {
    let (status, body) = credentials
        .client
        .fetch_small(
            &credentials.settings.backend,
            Target {
                path: &[path],
                query: None,
            },
            request,
            Duration::from_secs(10),
        )
        .await?;
    if !status.is_success() {
        let detail = format!(
            "{path}: {status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        );
        if status == axum::http::StatusCode::NOT_FOUND {
            return Ok(Refreshed::NoProvider(detail));
        }
        return Err(BackstageError::SignInRefused(detail).into());
    }
    let answer: RefreshAnswer = serde_json::from_slice(&body)
        .map_err(|error| BackstageError::SignInRefused(format!("unexpected answer: {error}")))?;
    Ok(Refreshed::Answer(answer.backstage_identity))
}

/// The rules of `backstage.permissions` that name one of `roles`.
fn granting<'s>(
    settings: &'s BackstageSettings,
    roles: &'s Roles,
) -> impl Iterator<Item = &'s BackstageGrantRule> {
    settings
        .permissions
        .iter()
        .filter(|rule| rule.roles.iter().any(|role| roles.0.contains(role)))
}

/// What the user's roles earn in Backstage under `backstage.permissions`, as the assertion carries
/// it: `[{ "allow": [...], "namespaces": [...] }]`, one entry per rule that names one of the roles.
fn grants(settings: &BackstageSettings, roles: &Roles) -> Value {
    granting(settings, roles)
        .map(|rule| json!({ "allow": rule.allow, "namespaces": rule.namespaces }))
        .collect()
}

/// What a kept token was signed in with, as a number: the granting rules and the roles.
fn fingerprint(settings: &BackstageSettings, roles: &Roles) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for rule in granting(settings, roles) {
        rule.allow.hash(&mut hasher);
        rule.namespaces.hash(&mut hasher);
    }
    for role in &roles.0 {
        role.0.hash(&mut hasher);
    }
    hasher.finish()
}

/// The sign-in request to the `portico` provider: a one-minute assertion, signed with portico's
/// keys, for the audience [`BACKSTAGE_SIGN_IN_AUDIENCE`]. Besides who the user is it names the
/// namespace to look the user up in and the grants; Backstage takes both only from an issuer its
/// config gives those namespaces (integrations/backstage/src/settings.js).
fn assertion_request(credentials: Credentials<'_>) -> Result<Request, AppError> {
    let Credentials {
        settings,
        user,
        keys,
        issuer,
        tenant,
        roles,
        ..
    } = credentials;
    let now = unix_now();
    let mut claims = json!({
        "iss": issuer,
        "aud": BACKSTAGE_SIGN_IN_AUDIENCE,
        "sub": user.subject,
        "name": user.name,
        "tenant": tenant,
        "roles": roles.names(),
        "iat": now,
        "nbf": now.saturating_sub(5),
        "exp": now + SIGN_IN_LIFETIME,
        "backstage": { "namespace": settings.user_namespace, "grants": grants(settings, roles) },
    });
    // Only ever a verified address (`User::email`).
    if !user.email.is_empty() {
        claims["email"] = Value::from(user.email.as_str());
    }
    let mut request = Request::new(Body::empty());
    request
        .headers_mut()
        .insert(ASSERTION_HEADER, header_text(&keys.sign(&claims))?);
    request
        .headers_mut()
        .insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    Ok(request)
}

/// The sign-in request to Backstage's `oauth2Proxy` provider for `user`.
fn sign_in_request(settings: &BackstageSettings, user: &User) -> Result<Request, AppError> {
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
    Ok(request)
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
            .readable_namespaces()
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
            sign_in: crate::config::BackstageSignIn::Auto,
            permissions: Vec::new(),
            catalog_app: true,
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

    #[test]
    fn the_kept_token_follows_the_granting_rules_and_the_roles() {
        let role = |name: &str| crate::rbac::RoleName(name.into());
        let roles = |names: &[&str]| Roles(names.iter().map(|n| role(n)).collect());
        let rule = |roles: &[&str], allow: &str| BackstageGrantRule {
            roles: roles.iter().map(|r| role(r)).collect(),
            allow: vec![allow.into()],
            namespaces: vec!["acme".into()],
        };
        let mut acme = settings(&["acme"], &[], "acme");
        acme.permissions = vec![
            rule(&["developer"], "catalog.entity.read"),
            rule(&["admin"], "*"),
        ];
        let developer = roles(&["developer"]);
        let before = fingerprint(&acme, &developer);
        assert_eq!(fingerprint(&acme, &developer), before, "stable");
        assert_eq!(
            grants(&acme, &developer),
            serde_json::json!([{ "allow": ["catalog.entity.read"], "namespaces": ["acme"] }])
        );
        // Another role, or a changed rule that grants it, signs in again; a rule for others does not.
        assert_ne!(fingerprint(&acme, &roles(&["developer", "admin"])), before);
        let mut changed = acme.clone();
        changed.permissions[0].allow = vec!["catalog.*".into()];
        assert_ne!(fingerprint(&changed, &developer), before);
        changed = acme.clone();
        changed.permissions[1].allow = vec!["catalog.entity.delete".into()];
        assert_eq!(fingerprint(&changed, &developer), before);
    }
}
