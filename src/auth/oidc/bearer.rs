//! `Authorization: Bearer` with an access token of the tenant's own IdP (`auth.oidc.bearer`).
//!
//! A JWT (three dot-separated parts) is verified here: against the IdP's published keys (the ones
//! logout tokens are checked with, fetched again once when a token names an unknown key), its
//! algorithm on the tenant's allow-list (never `none` or HMAC), `iss` the IdP's, `aud` the tenant's
//! `bearer.audience`, and `exp` in the future. Who the token speaks for comes from its claims the way
//! a sign-in's ID token does: `sub`, the groups at `groups_claim`, and an email only when
//! `email_verified` is true.
//!
//! Any other token is opaque: refused unless the tenant has `bearer.introspect`, and then asked about
//! at the IdP's introspection endpoint (RFC 7662, from its discovery document; an IdP that publishes
//! none refuses every opaque token, saying so). The call is `token=…&token_type_hint=access_token`,
//! as portico's own client (`client_secret_basic`), through the IdP client of token calls (no
//! redirects; 5 s to connect, 10 s in all; an HTTP 5xx counts as no answer). The answer must say
//! `active: true`, `iss` (when given) the IdP's, an `aud` (text or list) that holds the tenant's
//! audience, `exp` in the future, a non-empty `sub`, a `token_type` (when given) of `Bearer`, and no
//! `cnf` (a sender-constrained token, whose key portico cannot check); the user comes from the answer
//! as from a JWT's claims. A call that fails or does not reach the IdP refuses the token.
//!
//! Active answers are kept in this process, per tenant, for at most [`INTROSPECTION_CACHE_SECS`] and
//! never past the token's `exp`, under a SHA-256 of the token, at most [`MAX_INTROSPECTED`] at a time
//! (the expired go first, then the one closest to its end): so a token revoked at the IdP may still
//! pass here for up to 30 s, while a script's calls do not each cost an IdP round trip. Refusals are
//! not kept: anyone can send tokens that fail, and they must not fill the cache.
//!
//! This module only says who a token's user is; it never decides what they may reach (`rbac`), and it
//! never keeps or logs the token itself (the cache holds its hash; the token id is its `jti`, else a
//! hash prefix).

use std::collections::HashMap;

use openidconnect::core::CoreTokenType;
use openidconnect::{
    AccessToken, ExtraTokenFields, HttpClientError, RequestTokenError,
    StandardTokenIntrospectionResponse, TokenIntrospectionResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::logout::{JwtError, verified_claims};
use super::{IdpStatus, KeyTrigger, OidcRegistry, TenantIdp, TokenHttp};
use crate::auth::error::AuthError;
use crate::auth::session::User;
use crate::clock::unix_now;
use crate::config::TenantId;
use crate::http::error::error_chain;
use crate::token::hex;

/// The longest an active introspection answer is used without asking the IdP again: how long a
/// token revoked at the IdP may still pass here.
const INTROSPECTION_CACHE_SECS: u64 = 30;
/// At most this many introspection answers are kept per tenant.
const MAX_INTROSPECTED: usize = 10_000;

/// The introspection endpoint's answer (RFC 7662 section 2.2): the standard members typed, the rest
/// (the groups, `email`, `name`, `cnf`) as they came.
pub(super) type Introspected =
    StandardTokenIntrospectionResponse<IntrospectedClaims, CoreTokenType>;

/// The members of an introspection answer RFC 7662 does not name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct IntrospectedClaims {
    #[serde(flatten)]
    claims: HashMap<String, Value>,
}
impl ExtraTokenFields for IntrospectedClaims {}

/// The IdP's active answers about opaque tokens, under the SHA-256 of each token, each until
/// the earlier of [`INTROSPECTION_CACHE_SECS`] after it came and the token's expiry.
#[derive(Default)]
pub(super) struct IntrospectionCache {
    answers: HashMap<[u8; 32], Cached>,
}

struct Cached {
    user: BearerUser,
    /// Unix seconds from which the answer is no longer used.
    until: u64,
}

impl IntrospectionCache {
    /// The user of the token with this hash, while its answer is fresh.
    fn get(&mut self, key: &[u8; 32], now: u64) -> Option<BearerUser> {
        match self.answers.get(key) {
            Some(cached) if now < cached.until => Some(cached.user.clone()),
            Some(_) => {
                self.answers.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps an active answer; when full, the stale go first, then the one closest to its end.
    fn put(&mut self, key: [u8; 32], user: BearerUser, now: u64) {
        let until = now
            .saturating_add(INTROSPECTION_CACHE_SECS)
            .min(user.expires_at);
        if until <= now {
            return;
        }
        if !self.answers.contains_key(&key) && self.answers.len() >= MAX_INTROSPECTED {
            self.answers.retain(|_, cached| now < cached.until);
            if self.answers.len() >= MAX_INTROSPECTED {
                let soonest = self
                    .answers
                    .iter()
                    .min_by_key(|(_, cached)| cached.until)
                    .map(|(key, _)| *key);
                if let Some(soonest) = soonest {
                    self.answers.remove(&soonest);
                }
            }
        }
        self.answers.insert(key, Cached { user, until });
    }
}

/// The user a verified access token speaks for.
#[derive(Debug, Clone)]
pub struct BearerUser {
    pub user: User,
    /// The token's `jti`, or a hash of the token when it has none: what the audit trail and the
    /// assertion name, never the token itself.
    pub token_id: String,
    /// Unix seconds when the token expires.
    pub expires_at: u64,
}

/// Introspection calls one IdP may have in flight from this instance.
pub(crate) const INTROSPECTIONS_IN_FLIGHT: usize = 16;

impl OidcRegistry {
    /// Verifies `token` as an access token for `tenant`'s `bearer.audience`: a JWT here, an opaque
    /// token at the IdP's introspection endpoint (only with `bearer.introspect`).
    pub async fn verify_access_token(
        &self,
        tenant: &TenantId,
        token: &str,
    ) -> Result<BearerUser, AuthError> {
        if token.split('.').count() != 3 {
            return self.introspect(tenant, token).await;
        }
        match self.check_access_token(tenant, token) {
            Err(JwtError::UnknownKey) => {
                let (idp, _) = self.idp(tenant)?;
                if !self.refetch_keys(&idp, KeyTrigger::Bearer).await {
                    return Err(AuthError::InvalidToken("signed with an unknown key".into()));
                }
                self.check_access_token(tenant, token)
                    .map_err(into_invalid_token)
            }
            other => other.map_err(into_invalid_token),
        }
    }

    fn check_access_token(&self, tenant: &TenantId, token: &str) -> Result<BearerUser, JwtError> {
        let unavailable = || JwtError::Invalid("bearer tokens are not accepted here".into());
        let (idp, discovered) = self.idp(tenant).map_err(|_| unavailable())?;
        let audience = idp
            .settings
            .bearer_audience
            .as_deref()
            .ok_or_else(unavailable)?;
        let claims = verified_claims(&idp.settings, &discovered.idp_keys, token, audience)?;
        let claims: HashMap<String, Value> = serde_json::from_value(claims)
            .map_err(|_| JwtError::Invalid("unreadable claims".into()))?;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        let issuer = text("iss").unwrap_or_default();
        if issuer.trim_end_matches('/') != discovered.issuer.trim_end_matches('/') {
            return Err(JwtError::Invalid("wrong issuer".into()));
        }
        let subject = text("sub")
            .filter(|sub| !sub.is_empty())
            .ok_or_else(|| JwtError::Invalid("no sub".into()))?;
        let expires_at = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        if expires_at <= unix_now() {
            return Err(JwtError::Invalid("expired".into()));
        }
        Ok(BearerUser {
            user: user_of(&claims, subject, &idp.settings.groups_claim),
            token_id: token_id(token, text("jti")),
            expires_at,
        })
    }

    /// An opaque token, by the IdP's introspection endpoint (or its recent answer).
    async fn introspect(&self, tenant: &TenantId, token: &str) -> Result<BearerUser, AuthError> {
        let refused = |reason: &str| AuthError::InvalidToken(reason.to_owned());
        let (idp, discovered) = self
            .idp(tenant)
            .map_err(|_| refused("bearer tokens are not accepted here"))?;
        let Some(audience) = idp.settings.bearer_audience.as_deref() else {
            return Err(refused("bearer tokens are not accepted here"));
        };
        if !idp.settings.bearer_introspect {
            return Err(refused(
                "not a JWT, and opaque tokens are not introspected here (`bearer.introspect` is off)",
            ));
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(user) = idp.introspected.lock().get(&key, unix_now()) {
            return Ok(user);
        }
        let Some(client) = discovered.introspection.as_ref() else {
            return Err(refused(
                "not a JWT, and the identity provider publishes no usable introspection_endpoint for `bearer.introspect`",
            ));
        };
        // Known to be down: refuse at once rather than wait for a connection that will not come.
        if let IdpStatus::Unavailable(reason) = idp.status() {
            return Err(AuthError::InvalidToken(format!(
                "introspection: the identity provider is unavailable: {reason}"
            )));
        }
        // Past the bound, a caller is told to come back rather than queued behind a flood.
        let Ok(_permit) = idp.introspecting.try_acquire() else {
            return Err(AuthError::TokenCheckBusy);
        };
        let access_token = AccessToken::new(token.to_owned());
        let answer = client
            .introspect(&access_token)
            .set_token_type_hint("access_token")
            .request_async(&TokenHttp(&self.http))
            .await
            .map_err(|error| introspection_failed(&idp, &error))?;
        let now = unix_now();
        let user = introspected_user(
            &answer,
            token,
            audience,
            &discovered.issuer,
            &idp.settings.groups_claim,
            now,
        )
        .map_err(AuthError::InvalidToken)?;
        idp.introspected.lock().put(key, user.clone(), now);
        Ok(user)
    }
}

/// Why the introspection call failed, for the log (the token is in no part of it). One that did not
/// reach the IdP also wakes its probe, as a failed token call does.
fn introspection_failed(
    idp: &TenantIdp,
    error: &RequestTokenError<
        HttpClientError<openidconnect::reqwest::Error>,
        openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    >,
) -> AuthError {
    let reason = format!("introspection failed: {}", error_chain(error));
    if matches!(
        error,
        RequestTokenError::Request(HttpClientError::Reqwest(_))
    ) {
        idp.mark_unreachable(reason.clone());
    }
    AuthError::InvalidToken(reason)
}

/// The user an introspection answer speaks for, once it passes the checks the module doc lists; the
/// refusal's reason otherwise.
fn introspected_user(
    answer: &Introspected,
    token: &str,
    audience: &str,
    issuer: &str,
    groups_claim: &[String],
    now: u64,
) -> Result<BearerUser, String> {
    if !answer.active() {
        return Err("the identity provider says the token is not active".into());
    }
    if answer
        .iss()
        .is_some_and(|iss| iss.trim_end_matches('/') != issuer.trim_end_matches('/'))
    {
        return Err("wrong issuer".into());
    }
    let audiences = answer.aud().map(Vec::as_slice).unwrap_or_default();
    if audiences.is_empty() {
        return Err("no aud".into());
    }
    if !audiences.iter().any(|aud| aud == audience) {
        return Err("wrong audience".into());
    }
    let expires_at = answer
        .exp()
        .map(|exp| u64::try_from(exp.timestamp()).unwrap_or(0))
        .ok_or("no exp")?;
    if expires_at <= now {
        return Err("expired".into());
    }
    let subject = answer.sub().filter(|sub| !sub.is_empty()).ok_or("no sub")?;
    if answer
        .token_type()
        .is_some_and(|kind| *kind != CoreTokenType::Bearer)
    {
        return Err("not a bearer access token (token_type)".into());
    }
    let claims = &answer.extra_fields().claims;
    if claims.contains_key("cnf") {
        return Err("sender-constrained (cnf): portico cannot check the key it is bound to".into());
    }
    // Some IdPs name an opaque token by itself; such a `jti` must not reach the audit trail.
    let jti = answer.jti().filter(|jti| *jti != token);
    Ok(BearerUser {
        user: user_of(claims, subject, groups_claim),
        token_id: token_id(token, jti),
        expires_at,
    })
}

/// Who the claims of a verified JWT or of an active introspection answer name: `sub`, `name` (else
/// the subject), the groups at `groups_claim`, and `email` only when `email_verified` is true.
fn user_of(claims: &HashMap<String, Value>, subject: &str, groups_claim: &[String]) -> User {
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let verified_email = claims.get("email_verified").and_then(Value::as_bool) == Some(true);
    User {
        subject: subject.to_owned(),
        name: text("name").unwrap_or(subject).to_owned(),
        email: if verified_email {
            text("email").unwrap_or_default().to_owned()
        } else {
            String::new()
        },
        groups: super::groups_at(claims, groups_claim),
    }
}

/// What names a token in the audit trail and the assertion: its `jti`, else a hash prefix of it.
fn token_id(token: &str, jti: Option<&str>) -> String {
    jti.filter(|jti| !jti.is_empty()).map_or_else(
        || hex(&Sha256::digest(token.as_bytes())[..8]),
        str::to_owned,
    )
}

fn into_invalid_token(error: JwtError) -> AuthError {
    match error {
        JwtError::UnknownKey => AuthError::InvalidToken("signed with an unknown key".into()),
        JwtError::Invalid(reason) => AuthError::InvalidToken(reason),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ISSUER: &str = "https://idp.acme.example";
    const AUDIENCE: &str = "urn:portico:acme";
    const NOW: u64 = 1_800_000_000;

    fn answer(fields: Value) -> Introspected {
        serde_json::from_value(fields).expect("an RFC 7662 answer")
    }

    /// An active answer for `dev`, with `changes` merged in (a `null` removes a member).
    fn active(changes: Value) -> Introspected {
        let mut fields = json!({
            "active": true,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "exp": NOW + 600,
            "sub": "dev",
            "token_type": "Bearer",
            "jti": "token-1",
            "groups": ["acme-eng"],
            "email": "dev@acme.test",
            "email_verified": true,
        });
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                fields.as_object_mut().unwrap().remove(name);
            } else {
                fields[name] = value.clone();
            }
        }
        answer(fields)
    }

    fn check(answer: &Introspected) -> Result<BearerUser, String> {
        introspected_user(
            answer,
            "opaque-token",
            AUDIENCE,
            ISSUER,
            &["groups".to_owned()],
            NOW,
        )
    }

    #[test]
    fn an_active_answer_for_the_audience_names_the_user() {
        let user = check(&active(json!({}))).unwrap();
        assert_eq!(user.user.subject, "dev");
        assert_eq!(user.user.groups, ["acme-eng"]);
        assert_eq!(user.user.email, "dev@acme.test");
        assert_eq!(user.token_id, "token-1");
        assert_eq!(user.expires_at, NOW + 600);

        // `aud` may be a list; `iss` and `token_type` may be left out; a trailing slash is the same issuer.
        let listed = active(json!({ "aud": ["other", AUDIENCE], "iss": null, "token_type": null }));
        assert_eq!(check(&listed).unwrap().user.subject, "dev");
        assert!(check(&active(json!({ "iss": format!("{ISSUER}/") }))).is_ok());
    }

    #[test]
    fn unverified_emails_and_self_naming_ids_are_left_out() {
        let user = check(&active(json!({ "email_verified": null }))).unwrap();
        assert_eq!(user.user.email, "", "an email the IdP did not verify");
        // An IdP that names an opaque token by itself would put the token into the audit trail.
        for jti in [json!("opaque-token"), Value::Null] {
            let user = check(&active(json!({ "jti": jti }))).unwrap();
            assert_eq!(user.token_id, hex(&Sha256::digest(b"opaque-token")[..8]));
        }
    }

    #[test]
    fn answers_that_fail_a_check_are_refused_with_the_reason() {
        let cases = [
            (answer(json!({ "active": false })), "not active"),
            (active(json!({ "active": false })), "not active"),
            (
                active(json!({ "iss": "https://idp.evil.example" })),
                "wrong issuer",
            ),
            (active(json!({ "aud": null })), "no aud"),
            (active(json!({ "aud": [] })), "no aud"),
            (
                active(json!({ "aud": "urn:portico:globex" })),
                "wrong audience",
            ),
            (active(json!({ "exp": null })), "no exp"),
            (active(json!({ "exp": NOW })), "expired"),
            (active(json!({ "sub": "" })), "no sub"),
            (active(json!({ "sub": null })), "no sub"),
            (
                active(json!({ "token_type": "refresh_token" })),
                "token_type",
            ),
            (
                active(json!({ "cnf": { "jkt": "abc" } })),
                "sender-constrained",
            ),
        ];
        for (answer, reason) in cases {
            let refused = check(&answer)
                .err()
                .unwrap_or_else(|| panic!("{answer:?} passed"));
            assert!(refused.contains(reason), "{refused} should say {reason}");
        }
    }

    fn user_until(expires_at: u64) -> BearerUser {
        BearerUser {
            user: User {
                subject: "dev".into(),
                name: "dev".into(),
                email: String::new(),
                groups: Vec::new(),
            },
            token_id: "t".into(),
            expires_at,
        }
    }

    #[test]
    fn an_answer_is_kept_for_30_s_and_never_past_the_tokens_expiry() {
        let mut cache = IntrospectionCache::default();
        cache.put([1; 32], user_until(NOW + 3600), NOW);
        assert!(
            cache
                .get(&[1; 32], NOW + INTROSPECTION_CACHE_SECS - 1)
                .is_some()
        );
        assert!(
            cache
                .get(&[1; 32], NOW + INTROSPECTION_CACHE_SECS)
                .is_none()
        );
        assert!(
            cache.answers.is_empty(),
            "a stale answer is dropped when met"
        );

        cache.put([2; 32], user_until(NOW + 5), NOW);
        assert!(cache.get(&[2; 32], NOW + 4).is_some());
        assert!(cache.get(&[2; 32], NOW + 5).is_none(), "the token expired");
        cache.put([3; 32], user_until(NOW), NOW);
        assert!(
            cache.answers.is_empty(),
            "an expired token is not kept at all"
        );
    }

    #[test]
    fn the_cache_is_bounded_and_drops_the_stale_first() {
        let mut cache = IntrospectionCache::default();
        let key = |n: usize| {
            let mut key = [0; 32];
            key[..8].copy_from_slice(&(n as u64).to_le_bytes());
            key
        };
        // Half of them end within 10 s (their tokens expire), half are good for the full 30 s.
        for n in 0..MAX_INTROSPECTED {
            let expires = if n % 2 == 0 { NOW + 10 } else { NOW + 3600 };
            cache.put(key(n), user_until(expires), NOW);
        }
        cache.put(key(MAX_INTROSPECTED), user_until(NOW + 3600), NOW + 10);
        assert_eq!(
            cache.answers.len(),
            MAX_INTROSPECTED / 2 + 1,
            "the stale went"
        );
        assert!(cache.get(&key(1), NOW + 10).is_some());

        // Full of fresh answers: the one closest to its end goes (token 0 expires first).
        let mut cache = IntrospectionCache::default();
        for n in 0..MAX_INTROSPECTED {
            let expires = if n == 0 { NOW + 5 } else { NOW + 3600 };
            cache.put(key(n), user_until(expires), NOW);
        }
        cache.put(key(MAX_INTROSPECTED), user_until(NOW + 3600), NOW);
        assert_eq!(cache.answers.len(), MAX_INTROSPECTED);
        assert!(cache.get(&key(0), NOW).is_none(), "the soonest to end went");
        assert!(cache.get(&key(1), NOW).is_some());
        assert!(cache.get(&key(MAX_INTROSPECTED), NOW).is_some());
    }
}
