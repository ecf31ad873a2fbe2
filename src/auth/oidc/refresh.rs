//! Refreshing a session's tokens shortly before the access token expires: one refresh per session at a
//! time (concurrent requests wait for it and read the result), the refreshed ID token verified like the
//! first one and required to name the same user, and the groups read again so a removed group loses its
//! role at once. A refused refresh is `RefreshFailed`, which ends the session.

use std::sync::Arc;

use openidconnect::{OAuth2TokenResponse, RefreshToken, TokenResponse};

use super::login::verified_user;
use super::{OidcRegistry, OidcTokenResponse};
use crate::auth::error::{AuthError, Failure};
use crate::auth::session::{OidcTokens, Session, Sessions};
use crate::clock::unix_now;

/// Refresh this long before the access token expires (at most a quarter of its lifetime).
const REFRESH_MARGIN_SECS: u64 = 30;

impl OidcRegistry {
    /// Refreshes the session's tokens if the access token is close to expiry. Concurrent requests of one
    /// session share one refresh. A failed refresh is an error: the caller ends the session.
    pub async fn refresh_if_needed(
        &self,
        session: Arc<Session>,
        sessions: &Sessions,
    ) -> Result<Arc<Session>, AuthError> {
        let needs_refresh = |session: &Session| {
            session.oidc.as_ref().is_some_and(|tokens| {
                tokens.refresh_token.is_some() && tokens.refresh_at <= unix_now()
            })
        };
        if !needs_refresh(&session) {
            return Ok(session);
        }
        let lock = self
            .refresh_locks
            .lock()
            .entry(session.id.as_str().to_owned())
            .or_default()
            .clone();
        let _guard = lock.lock().await;
        // Another request may have refreshed while this one waited: read the session again.
        let current = sessions
            .current(&session.id)
            .await
            .map_err(AuthError::StoreUnavailable)?
            .ok_or(AuthError::NotSignedIn)?;
        let result = if needs_refresh(&current) {
            self.refresh(current, sessions).await
        } else {
            Ok(current)
        };
        {
            let mut locks = self.refresh_locks.lock();
            if Arc::strong_count(&lock) <= 2 {
                locks.remove(session.id.as_str());
            }
        }
        result
    }

    async fn refresh(
        &self,
        current: Arc<Session>,
        sessions: &Sessions,
    ) -> Result<Arc<Session>, AuthError> {
        let (idp, discovered) = self.idp(&current.tenant)?;
        let mut session = Arc::unwrap_or_clone(current);
        let Some(tokens) = session.oidc.clone() else {
            return Ok(Arc::new(session));
        };
        let Some(refresh_token) = tokens.refresh_token.clone() else {
            return Ok(Arc::new(session));
        };
        let refresh_token = RefreshToken::new(refresh_token);
        let response = discovered
            .client
            .exchange_refresh_token(&refresh_token)
            .map_err(|error| {
                AuthError::RefreshFailed(Failure::caused_by("the refresh cannot be sent", error))
            })?
            .request_async(&self.http)
            .await
            .map_err(|error| {
                AuthError::RefreshFailed(Failure::caused_by("the refresh was refused", error))
            })?;
        let mut sid = tokens.sid.clone();
        if response.id_token().is_some() {
            // Groups are read again, so a user removed from a group loses the role now.
            let (user, new_sid) = verified_user(
                idp,
                &discovered,
                &response,
                None,
                Some(&session.user.subject),
            )
            .map_err(|error| match error {
                AuthError::LoginFailed(failure) => AuthError::RefreshFailed(failure),
                other => AuthError::RefreshFailed(Failure::caused_by("refreshed ID token", other)),
            })?;
            session.user = user;
            sid = new_sid.or(sid);
        }
        session.oidc = Some(tokens_from(&response, Some(&tokens), sid)?);
        sessions
            .insert(session.clone())
            .await
            .map_err(AuthError::StoreUnavailable)?;
        crate::telemetry::metrics::refresh_event(&session.tenant, "success");
        Ok(Arc::new(session))
    }
}

/// The session's tokens from a token response; what the response leaves out is kept from `previous`.
pub(super) fn tokens_from(
    response: &OidcTokenResponse,
    previous: Option<&OidcTokens>,
    sid: Option<String>,
) -> Result<OidcTokens, AuthError> {
    let id_token = response
        .id_token()
        .map(ToString::to_string)
        .or_else(|| previous.map(|tokens| tokens.id_token.clone()))
        .ok_or_else(|| AuthError::LoginFailed(Failure::new("no ID token")))?;
    let lifetime = response
        .expires_in()
        .map_or(300, |duration| duration.as_secs());
    let now = unix_now();
    Ok(OidcTokens {
        access_token: response.access_token().secret().clone(),
        expires_at: now + lifetime,
        refresh_at: now + lifetime - REFRESH_MARGIN_SECS.min(lifetime / 4),
        // Without a rotated refresh token, the old one stays valid (RFC 6749 §6).
        refresh_token: response
            .refresh_token()
            .map(|token| token.secret().clone())
            .or_else(|| previous.and_then(|tokens| tokens.refresh_token.clone())),
        id_token,
        sid,
    })
}
