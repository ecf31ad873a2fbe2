//! Signing in through the IdP: the authorization request (PKCE S256, state, nonce, browser binding),
//! and the callback's checks in order: single-use state of this tenant and this browser, within the
//! login timeout, RFC 9207 `iss`, the code exchange, then the ID token (signature with an allowed
//! algorithm, issuer, audience, expiry, nonce, `at_hash`). Every failure is a `LoginFailed` with the
//! reason for the log and audit; the browser only learns that sign-in failed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::SystemTime;

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AccessTokenHash, AuthorizationCode, CsrfToken, LanguageTag, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, Scope, TokenResponse,
};
use serde::Deserialize;
use serde_json::Value;

use super::pending::{ClientKey, LOGIN_TIMEOUT, PendingLimits, PendingLogin};
use super::refresh::{TokenCallError, classify, tokens_from};
use super::{Algorithms, Discovered, KeyTrigger, OidcRegistry, OidcTokenResponse, TenantIdp};
use crate::auth::error::{AuthError, Cause, Failure};
use crate::auth::session::{Session, User};
use crate::config::TenantId;
use crate::token::random_token;

/// Where the browser goes next after a successful callback.
pub struct LoginDone {
    pub session: Session,
    pub return_to: String,
}

/// The start of a login: the IdP URL to send the browser to and the binding cookie's value.
pub struct LoginStart {
    pub authorize_url: String,
    pub browser_binding: String,
}

/// The query of `/auth/callback`.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl OidcRegistry {
    /// Starts a login: PKCE S256, state and nonce, all fresh; remembers them server-side, within the
    /// `limits` per client (`client` is the connection's peer address) and per tenant, in the store
    /// every instance shares when there is one (a Redis that does not answer: sign-in unavailable).
    pub async fn begin_login(
        &self,
        tenant: &TenantId,
        client: IpAddr,
        limits: PendingLimits,
        return_to: String,
        ui_locale: &str,
    ) -> Result<LoginStart, AuthError> {
        let (idp, discovered) = self.idp_for_sign_in(tenant)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = discovered.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in idp
            .settings
            .scopes
            .iter()
            .filter(|scope| scope.as_str() != "openid")
        {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        // The language the portal speaks to this browser, so the IdP's page can match it (OIDC Core
        // §3.1.2.1 `ui_locales`: a preference the IdP may ignore).
        request = request.add_ui_locale(LanguageTag::new(ui_locale.to_owned()));
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let browser_binding = random_token::<32>();
        let login = PendingLogin {
            tenant: tenant.clone(),
            client: ClientKey::of(client),
            pkce_verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
            return_to,
            browser_binding: browser_binding.clone(),
            started: SystemTime::now(),
        };
        self.pending.insert(state.secret(), login, limits).await?;
        Ok(LoginStart {
            authorize_url: url.to_string(),
            browser_binding,
        })
    }

    /// Completes a login from the IdP's redirect. Every check failing is a `LoginFailed` with the reason.
    pub async fn finish_login(
        &self,
        tenant: &TenantId,
        callback: &CallbackParams,
        browser_binding: Option<&str>,
    ) -> Result<LoginDone, AuthError> {
        let failed = |reason: &str| AuthError::LoginFailed(Failure::new(reason));
        let state = callback
            .state
            .as_deref()
            .ok_or_else(|| failed("the callback has no state"))?;
        // Taking the pending login makes the state single-use: a replayed callback finds nothing, on
        // any instance. A store that does not answer took nothing: the same callback may work later.
        let pending = self
            .pending
            .take(state)
            .await
            .map_err(AuthError::SignInStoreUnavailable)?
            .ok_or_else(|| failed("unknown or already used state"))?;
        if pending.tenant != *tenant {
            return Err(failed("the login was started for another tenant"));
        }
        if !browser_binding.is_some_and(|binding| {
            crate::http::csrf::constant_time_eq(
                binding.as_bytes(),
                pending.browser_binding.as_bytes(),
            )
        }) {
            return Err(failed("the login was started in another browser"));
        }
        if pending.age() > LOGIN_TIMEOUT {
            return Err(failed("the login took too long"));
        }
        if let Some(error) = &callback.error {
            let description = callback.error_description.as_deref().unwrap_or("");
            return Err(AuthError::LoginFailed(Failure::new(format!(
                "the identity provider answered `{error}` {description}"
            ))));
        }
        let (idp, discovered) = self.idp(tenant)?;
        // RFC 9207 (defends against IdP mix-up): an `iss` on the callback must be exactly our IdP's
        // issuer, and an IdP that advertises the parameter always sends it, so a response without it
        // did not come from that IdP. Checked before the code goes anywhere.
        match &callback.iss {
            Some(iss) if *iss != discovered.issuer => {
                return Err(failed("the callback came from another issuer"));
            }
            None if discovered.requires_iss => {
                return Err(failed(
                    "the callback has no `iss`, which the identity provider always sends (RFC 9207)",
                ));
            }
            _ => {}
        }
        let code = callback
            .code
            .clone()
            .ok_or_else(|| failed("the callback has no code"))?;
        let request = discovered
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|error| {
                AuthError::LoginFailed(Failure::caused_by("the code cannot be exchanged", error))
            })?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier));
        let http = super::TokenHttp(&self.http);
        let response = match request.request_async(&http).await {
            Ok(response) => response,
            Err(error) => {
                return Err(match classify(error, "code exchange failed") {
                    TokenCallError::Refused(failure) => AuthError::LoginFailed(failure),
                    TokenCallError::Ended => AuthError::NotSignedIn,
                    TokenCallError::Unreachable { reason, transport } => {
                        if transport {
                            idp.mark_unreachable(reason.clone());
                        }
                        AuthError::SignInUnavailable(reason)
                    }
                });
            }
        };
        let nonce = Nonce::new(pending.nonce);
        let verified = match verified_user(&idp, &discovered, &response, Some(&nonce), None) {
            // Signed with a key we have not seen: the IdP rotated its keys since the last probe.
            Err(error) if is_unknown_key(&error) => {
                if self.refetch_keys(&idp, KeyTrigger::SignIn).await {
                    let (_, rediscovered) = self.idp(tenant)?;
                    verified_user(&idp, &rediscovered, &response, Some(&nonce), None)
                } else {
                    Err(error)
                }
            }
            other => other,
        };
        let (user, sid) = verified?;
        let tokens = tokens_from(&response, None, sid)?;
        Ok(LoginDone {
            session: Session::new(tenant, user).with_oidc(tokens),
            return_to: pending.return_to,
        })
    }
}

/// Verifies the response's ID token and reads the user from it. `expected_subject` is set on refresh.
pub(super) fn verified_user(
    idp: &TenantIdp,
    discovered: &Discovered,
    response: &OidcTokenResponse,
    nonce: Option<&Nonce>,
    expected_subject: Option<&str>,
) -> Result<(User, Option<String>), AuthError> {
    let failed = |reason: &str| AuthError::LoginFailed(Failure::new(reason));
    let failed_by =
        |reason: &str, cause: Cause| AuthError::LoginFailed(Failure::caused_by(reason, cause));
    let id_token = response
        .id_token()
        .ok_or_else(|| failed("the token response has no ID token"))?;
    let algs = Algorithms::for_id_tokens(&idp.settings);
    let verifier = discovered.client.id_token_verifier().set_allowed_algs(algs);
    let claims = match nonce {
        Some(nonce) => id_token.claims(&verifier, nonce),
        // A refreshed ID token carries no nonce of ours (OIDC Core 12.2).
        None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
    }
    .map_err(|error| failed_by("ID token rejected", error.into()))?;
    if let Some(expected_hash) = claims.access_token_hash() {
        let at_hash = |error: Cause| failed_by("the access token hash cannot be checked", error);
        let alg = id_token
            .signing_alg()
            .map_err(|error| at_hash(error.into()))?;
        let key = id_token
            .signing_key(&verifier)
            .map_err(|error| at_hash(error.into()))?;
        let actual = AccessTokenHash::from_token(response.access_token(), alg, key)
            .map_err(|error| at_hash(error.into()))?;
        if actual != *expected_hash {
            return Err(failed("the access token does not belong to the ID token"));
        }
    }
    let subject = claims.subject().as_str().to_owned();
    if expected_subject.is_some_and(|expected| expected != subject) {
        return Err(failed("the refreshed ID token names another user"));
    }
    let extra = &claims.additional_claims().0;
    let groups = groups_at(extra, &idp.settings.groups_claim);
    // An address the IdP has not verified is just text the user typed: it never becomes identity
    // (apps and Backstage match users by email), so the session keeps only a verified one.
    let email = claims
        .email()
        .filter(|_| claims.email_verified() == Some(true))
        .map(|email| email.as_str().to_owned())
        .unwrap_or_default();
    let name = claims
        .name()
        .and_then(|name| name.get(None))
        .map(|name| name.as_str().to_owned())
        .or_else(|| claims.preferred_username().map(|u| u.as_str().to_owned()))
        .unwrap_or_else(|| {
            if email.is_empty() {
                subject.clone()
            } else {
                email.clone()
            }
        });
    let sid = extra.get("sid").and_then(Value::as_str).map(str::to_owned);
    Ok((
        User {
            subject,
            name,
            email,
            groups,
        },
        sid,
    ))
}

/// Whether an ID token failed verification because of its key: one the IdP's published keys do not
/// have (by `kid`), or a signature none of them verifies (a key replaced under the same `kid`). Either
/// way the IdP may have rotated its keys since they were fetched.
pub(super) fn is_unknown_key(error: &AuthError) -> bool {
    use openidconnect::{ClaimsVerificationError, SignatureVerificationError};
    let AuthError::LoginFailed(failure) = error else {
        return false;
    };
    matches!(
        failure.cause_as::<ClaimsVerificationError>(),
        Some(ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey | SignatureVerificationError::CryptoError(_)
        ))
    )
}

/// Reads the groups at a claim path: an array of strings, or one string of space- or comma-separated names.
pub fn groups_at(claims: &HashMap<String, Value>, path: &[String]) -> Vec<String> {
    let Some((first, rest)) = path.split_first() else {
        return Vec::new();
    };
    let mut value = match claims.get(first) {
        Some(value) => value,
        None => return Vec::new(),
    };
    for key in rest {
        match value.get(key) {
            Some(inner) => value = inner,
            None => return Vec::new(),
        }
    }
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Value::String(text) => text
            .split([' ', ','])
            .filter(|group| !group.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: &str) -> HashMap<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn groups_come_from_any_claim_path_and_shape() {
        let path = |p: &str| p.split('.').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            groups_at(&claims(r#"{"groups":["a","b"]}"#), &path("groups")),
            ["a", "b"]
        );
        assert_eq!(
            groups_at(
                &claims(r#"{"realm_access":{"roles":["x"]}}"#),
                &path("realm_access.roles")
            ),
            ["x"]
        );
        assert_eq!(
            groups_at(
                &claims(r#"{"cognito:groups":"a b,c"}"#),
                &path("cognito:groups")
            ),
            ["a", "b", "c"]
        );
        assert!(groups_at(&claims(r#"{"groups":42}"#), &path("groups")).is_empty());
        assert!(groups_at(&claims(r#"{}"#), &path("realm_access.roles")).is_empty());
    }
}
