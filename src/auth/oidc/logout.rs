//! Ending sessions with the IdP: the RP-initiated logout URL, and OpenID Back-Channel Logout 1.0
//! logout tokens verified with `jsonwebtoken`.
//!
//! A logout token is accepted only if it is signed with an algorithm on the tenant's allow-list by a key
//! the IdP publishes (a `kid` nobody publishes triggers one rate-limited re-discovery), names this
//! IdP as `iss` and this client in `aud`, was issued no later than a minute from now (`iat`), has not
//! expired (`exp`, required), carries the back-channel logout event, no `nonce`, a `sub` or a `sid`,
//! and a `jti` not seen before from this IdP (a replayed token is refused). `typ` is not checked: the
//! spec recommends `logout+jwt` but does not require it, and IdPs differ.

use std::collections::HashMap;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use openidconnect::core::CoreJsonWebKeySet;
use openidconnect::{ClientId, LogoutRequest, PostLogoutRedirectUrl};
use serde_json::Value;

use super::{Algorithms, OidcRegistry, TenantIdp};
use crate::auth::error::AuthError;
use crate::auth::session::Session;
use crate::clock::unix_now;
use crate::config::{OidcSettings, TenantId};

/// The event a back-channel logout token must carry.
const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Clock skew tolerated on `iat` and `exp`, as for ID tokens.
const CLOCK_SKEW_SECS: u64 = 60;
/// At most this many `jti`s are remembered per IdP; when full, the expired go first, then the one
/// closest to expiry. A real IdP sends one token per sign-out, so this bounds memory, not honest use.
const MAX_SEEN_TOKENS: usize = 10_000;

/// What a back-channel logout token asks to end.
#[derive(Debug)]
pub struct LogoutSubject {
    pub subject: Option<String>,
    pub sid: Option<String>,
    /// The token's id, remembered against replay (see [`OidcRegistry::forget_logout_token`]).
    jti: String,
    /// Unix seconds until which the token could pass the `exp` check: how long to remember `jti`.
    remember_until: u64,
}

impl LogoutSubject {
    /// A name for this token among all tenants' tokens, for a replay memory shared by instances.
    pub fn replay_key(&self, tenant: &TenantId) -> String {
        format!("{tenant}\0{}", self.jti)
    }

    /// Seconds from `now` for which the token must stay remembered (at least one).
    pub fn remember_for(&self, now: u64) -> u64 {
        self.remember_until.saturating_sub(now).max(1)
    }
}

/// One IdP's published signing keys, ready for `jsonwebtoken`.
pub(super) struct IdpKeys(Vec<IdpKey>);

struct IdpKey {
    kid: Option<String>,
    /// The `alg` the JWK is restricted to, if it names one.
    alg: Option<Value>,
    key: DecodingKey,
}

impl IdpKeys {
    /// The keys of a discovered JWKS that can verify signatures; encryption keys and key types
    /// `jsonwebtoken` cannot use are left out (a token naming one is then signed by an unknown key).
    pub(super) fn from_jwks(jwks: &CoreJsonWebKeySet) -> Self {
        let keys = jwks
            .keys()
            .iter()
            .filter_map(|key| {
                let jwk: Jwk = serde_json::from_value(serde_json::to_value(key).ok()?).ok()?;
                let for_signing = jwk
                    .common
                    .public_key_use
                    .as_ref()
                    .is_none_or(|usage| *usage == PublicKeyUse::Signature);
                Some(IdpKey {
                    kid: jwk.common.key_id.clone(),
                    alg: jwk
                        .common
                        .key_algorithm
                        .and_then(|alg| serde_json::to_value(alg).ok()),
                    key: for_signing.then(|| DecodingKey::from_jwk(&jwk).ok())??,
                })
            })
            .collect();
        IdpKeys(keys)
    }

    /// The keys a token's header names by `kid` (every key when it names none).
    fn named(&self, kid: Option<&str>) -> Vec<&IdpKey> {
        self.0
            .iter()
            .filter(|key| kid.is_none_or(|kid| key.kid.as_deref() == Some(kid)))
            .collect()
    }
}

impl IdpKey {
    /// A key restricted to one algorithm verifies only that one.
    fn may_verify(&self, alg: Algorithm) -> bool {
        self.alg
            .as_ref()
            .is_none_or(|own| serde_json::to_value(alg).ok().as_ref() == Some(own))
    }
}

/// The `jti`s of logout tokens one IdP has sent, each until its token expires.
#[derive(Default)]
pub(super) struct SeenTokens {
    until: HashMap<String, u64>,
}

impl SeenTokens {
    /// Remembers `jti` until `until`; false if it is already remembered (the token is a replay).
    fn first_use(&mut self, jti: &str, until: u64, now: u64) -> bool {
        if self
            .until
            .get(jti)
            .is_some_and(|&seen_until| seen_until >= now)
        {
            return false;
        }
        if self.until.len() >= MAX_SEEN_TOKENS {
            self.until.retain(|_, seen_until| *seen_until >= now);
        }
        if self.until.len() >= MAX_SEEN_TOKENS {
            let soonest = self
                .until
                .iter()
                .min_by_key(|(_, seen_until)| **seen_until)
                .map(|(jti, _)| jti.clone());
            if let Some(soonest) = soonest {
                self.until.remove(&soonest);
            }
        }
        self.until.insert(jti.to_owned(), until);
        true
    }
}

/// Why a JWT of the IdP (a logout or an access token) failed [`verified_claims`]: a key it does not
/// publish (fetch its keys again, once), or anything else.
pub(super) enum JwtError {
    UnknownKey,
    Invalid(String),
}

fn invalid(reason: &str) -> JwtError {
    JwtError::Invalid(reason.to_owned())
}

impl JwtError {
    fn into_auth(self) -> AuthError {
        match self {
            JwtError::UnknownKey => {
                AuthError::InvalidLogoutToken("signed with an unknown key".into())
            }
            JwtError::Invalid(reason) => AuthError::InvalidLogoutToken(reason),
        }
    }
}

impl OidcRegistry {
    /// Where to send the browser after the session ended: the IdP's end-session endpoint when it has one.
    pub fn end_session_url(&self, session: &Session) -> Option<String> {
        let tokens = session.oidc.as_ref()?;
        let (idp, discovered) = self.idp(&session.tenant).ok()?;
        let endpoint = discovered.end_session.clone()?;
        let mut request = LogoutRequest::from(endpoint)
            .set_client_id(ClientId::new(idp.settings.client_id.clone()));
        if let Ok(redirect) = PostLogoutRedirectUrl::new(idp.post_logout_uri.clone()) {
            request = request.set_post_logout_redirect_uri(redirect);
        }
        let mut url = request.http_get_url();
        url.query_pairs_mut()
            .append_pair("id_token_hint", &tokens.id_token);
        Some(url.to_string())
    }

    /// Validates an OIDC Back-Channel Logout 1.0 logout token for `tenant` and says whose sessions to
    /// end. A token that passes is remembered: the same `jti` is refused from then on.
    pub async fn verify_logout_token(
        &self,
        tenant: &TenantId,
        token: &str,
    ) -> Result<LogoutSubject, AuthError> {
        match self.check_logout_token(tenant, token) {
            Err(JwtError::UnknownKey) => {
                // The IdP may have rotated its keys since the last discovery: look once more.
                let (idp, _) = self.idp(tenant)?;
                if !self.refetch_keys(&idp, super::KeyTrigger::Logout).await {
                    return Err(JwtError::UnknownKey.into_auth());
                }
                self.check_logout_token(tenant, token)
                    .map_err(JwtError::into_auth)
            }
            other => other.map_err(JwtError::into_auth),
        }
    }

    /// Forgets a verified token whose sessions could not be ended (the store failed), so the IdP's
    /// retry of the same token is not refused as a replay.
    pub fn forget_logout_token(&self, tenant: &TenantId, subject: &LogoutSubject) {
        if let Some(idp) = self.idps.load().get(tenant) {
            idp.seen_logout_tokens.lock().until.remove(&subject.jti);
        }
    }

    fn check_logout_token(
        &self,
        tenant: &TenantId,
        token: &str,
    ) -> Result<LogoutSubject, JwtError> {
        let (idp, discovered) = self
            .idp(tenant)
            .map_err(|_| invalid("sign-in is not available"))?;
        let claims = verified_claims(
            &idp.settings,
            &discovered.idp_keys,
            token,
            &idp.settings.client_id,
        )?;
        let now = unix_now();
        let (subject, exp) = logout_subject(&claims, &discovered.issuer, now)?;
        remember(&idp, &subject, exp, now)?;
        Ok(subject)
    }
}

/// The token's claims, once its signature, algorithm (the IdP's allow-list), `aud` (`audience`) and
/// `exp` check out: for logout tokens (the client id) and access tokens (`bearer.audience`).
pub(super) fn verified_claims(
    settings: &OidcSettings,
    keys: &IdpKeys,
    token: &str,
    audience: &str,
) -> Result<Value, JwtError> {
    // `alg: none` and algorithms `jsonwebtoken` does not know fail here already.
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| invalid("not a signed JWT with a known algorithm"))?;
    if !Algorithms::allows_for_logout(settings, header.alg) {
        return Err(invalid("signing algorithm not allowed"));
    }
    let named = keys.named(header.kid.as_deref());
    if named.is_empty() {
        return Err(JwtError::UnknownKey);
    }
    let mut validation = Validation::new(header.alg);
    validation.leeway = CLOCK_SKEW_SECS;
    validation.set_required_spec_claims(&["exp", "aud"]);
    validation.set_audience(&[audience]);
    for key in named.into_iter().filter(|key| key.may_verify(header.alg)) {
        let error = match jsonwebtoken::decode::<Value>(token, &key.key, &validation) {
            Ok(data) => return Ok(data.claims),
            Err(error) => error,
        };
        // Only a signature this key does not make sends us to the next key; anything else was
        // found after the signature checked out.
        return Err(match error.kind() {
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidKeyFormat => continue,
            ErrorKind::ExpiredSignature => invalid("expired"),
            ErrorKind::MissingRequiredClaim(claim) => JwtError::Invalid(format!("no {claim}")),
            ErrorKind::InvalidAudience => invalid("wrong audience"),
            _ => invalid("unreadable claims"),
        });
    }
    Err(invalid("bad signature"))
}

/// Whose sessions the verified claims name, and the token's expiry; the claims `jsonwebtoken` does not
/// know are checked here.
fn logout_subject(
    claims: &Value,
    issuer: &str,
    now: u64,
) -> Result<(LogoutSubject, u64), JwtError> {
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    if iss.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(invalid("wrong issuer"));
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("no iat"))?;
    if iat > now + CLOCK_SKEW_SECS {
        return Err(invalid("issued in the future"));
    }
    let has_event = claims
        .get("events")
        .and_then(Value::as_object)
        .is_some_and(|events| events.contains_key(BACKCHANNEL_LOGOUT_EVENT));
    if !has_event {
        return Err(invalid("not a back-channel logout event"));
    }
    if claims.get("nonce").is_some() {
        return Err(invalid("a logout token must not carry a nonce"));
    }
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    let (subject, sid) = (text("sub"), text("sid"));
    if subject.is_none() && sid.is_none() {
        return Err(invalid("neither sub nor sid"));
    }
    let jti = text("jti")
        .filter(|jti| !jti.is_empty())
        .ok_or_else(|| invalid("no jti"))?;
    // `jsonwebtoken` accepted `exp`, so it is a number; a fractional one counts from its whole second.
    let exp = claims
        .get("exp")
        .and_then(Value::as_f64)
        .map_or(now, |exp| exp as u64);
    Ok((
        LogoutSubject {
            subject,
            sid,
            jti,
            remember_until: exp.saturating_add(CLOCK_SKEW_SECS),
        },
        exp,
    ))
}

/// Remembers the token's `jti` until it could no longer pass the `exp` check; refuses a replay.
fn remember(idp: &TenantIdp, subject: &LogoutSubject, exp: u64, now: u64) -> Result<(), JwtError> {
    let until = exp.saturating_add(CLOCK_SKEW_SECS);
    if idp
        .seen_logout_tokens
        .lock()
        .first_use(&subject.jti, until, now)
    {
        Ok(())
    } else {
        Err(invalid(
            "replayed: a logout token with this jti was already used",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_refused_until_its_token_expires() {
        let mut seen = SeenTokens::default();
        assert!(seen.first_use("a", 100, 50));
        assert!(!seen.first_use("a", 100, 60), "a replay");
        assert!(!seen.first_use("a", 100, 100), "still within its lifetime");
        assert!(
            seen.first_use("a", 200, 101),
            "expired tokens are refused by exp anyway"
        );
        assert!(seen.first_use("b", 100, 60));
    }

    #[test]
    fn the_memory_of_seen_tokens_is_bounded() {
        let mut seen = SeenTokens::default();
        for n in 0..MAX_SEEN_TOKENS as u64 {
            assert!(seen.first_use(&format!("t{n}"), 1_000 + n, 10));
        }
        assert!(seen.first_use("late", 5_000, 10));
        assert_eq!(seen.until.len(), MAX_SEEN_TOKENS);
        assert!(
            !seen.until.contains_key("t0"),
            "the one closest to expiry went first"
        );
        assert!(
            !seen.first_use("t1", 1_001, 10),
            "the others are still remembered"
        );
        // Once some have expired, they make room before anything still valid is dropped.
        assert!(seen.first_use("later", 9_000, 1_100));
        assert!(!seen.first_use("late", 5_000, 1_100));
    }
}
