//! `Authorization: Bearer` with an access token the tenant's own IdP issued as a JWT (`auth.oidc.bearer`):
//! verified against the IdP's published keys (the ones logout tokens are checked with, fetched again
//! once when a token names an unknown key), its algorithm on the tenant's allow-list (never `none` or
//! HMAC), `iss` the IdP's, `aud` the tenant's `bearer.audience`, and `exp` in the future. Who the token
//! speaks for comes from its claims the way a sign-in's ID token does: `sub`, the groups at
//! `groups_claim`, and an email only when `email_verified` is true.
//!
//! This module only says who a token's user is; it never decides what they may reach (`rbac`) and never
//! keeps the token.

use std::collections::HashMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::logout::{JwtError, verified_claims};
use super::{KeyTrigger, OidcRegistry};
use crate::auth::error::AuthError;
use crate::auth::session::User;
use crate::clock::unix_now;
use crate::config::TenantId;
use crate::token::hex;

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

impl OidcRegistry {
    /// Verifies `token` as an access token for `tenant`'s `bearer.audience`.
    pub async fn verify_access_token(
        &self,
        tenant: &TenantId,
        token: &str,
    ) -> Result<BearerUser, AuthError> {
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
        let verified_email = claims.get("email_verified").and_then(Value::as_bool) == Some(true);
        let token_id = text("jti").map_or_else(
            || hex(&Sha256::digest(token.as_bytes())[..8]),
            str::to_owned,
        );
        Ok(BearerUser {
            user: User {
                subject: subject.to_owned(),
                name: text("name").unwrap_or(subject).to_owned(),
                email: if verified_email {
                    text("email").unwrap_or_default().to_owned()
                } else {
                    String::new()
                },
                groups: super::groups_at(&claims, &idp.settings.groups_claim),
            },
            token_id,
            expires_at,
        })
    }
}

fn into_invalid_token(error: JwtError) -> AuthError {
    match error {
        JwtError::UnknownKey => AuthError::InvalidToken("signed with an unknown key".into()),
        JwtError::Invalid(reason) => AuthError::InvalidToken(reason),
    }
}
