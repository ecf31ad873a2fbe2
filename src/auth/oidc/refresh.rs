//! Refreshing a session's tokens shortly before the access token expires: one refresh per session at a
//! time (concurrent requests wait for it and read the result), the refreshed ID token verified like the
//! first one (its keys fetched again, rate-limited, when it names one we do not know: the IdP rotated)
//! and required to name the same user, and the groups read again so a removed group loses its role at
//! once.
//!
//! Two ways a refresh fails, told apart: the IdP *refused* it (`invalid_grant` and the other OAuth
//! errors: the grant was revoked, the user disabled) is `RefreshFailed`, which ends the session; the
//! IdP *could not be reached* (no connection, a timeout, an HTTP 5xx answer, `server_error`,
//! `temporarily_unavailable`, or the IdP already known to be down) keeps the session on its current
//! roles until its access token expiry plus `sessions.refresh_grace`, then ends it. It never decides
//! anything else and never audits: the caller does, from what this returns.
//!
//! With a shared store (Redis) the one-refresh-per-session rule holds across instances too: besides the
//! in-process mutex, the refreshing instance holds a short Redis lock (`<prefix>rl:<hash of the session
//! id>`, `SET NX PX`), and an instance that does not get it waits for the other's result instead of
//! spending the same refresh token (many IdPs rotate refresh tokens and treat a reused one as theft,
//! revoking the whole grant).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use openidconnect::core::CoreErrorResponseType;
use openidconnect::{
    HttpClientError, OAuth2TokenResponse, RefreshToken, RequestTokenError, StandardErrorResponse,
    TokenResponse,
};

use super::login::{is_unknown_key, verified_user};
use super::{IdpStatus, KeyTrigger, OidcRegistry, OidcTokenResponse};
use crate::auth::error::{AuthError, Failure};
use crate::auth::session::{OidcTokens, Session, Sessions};
use crate::clock::unix_now;
use crate::config::SessionSettings;
use crate::http::Problem;
use crate::shared::{Redis, StoreError};
use crate::token::random_token;

/// Refresh this long before the access token expires (at most a quarter of its lifetime).
const REFRESH_MARGIN_SECS: u64 = 30;

/// How long the cross-instance refresh lock lives if its holder never releases it (it crashed): the
/// IdP client's whole-request timeout (10 s) plus room for storing the result, so a refresh still under
/// way keeps its lock. The holder releases it as soon as the refresh is stored.
const REFRESH_LOCK_MS: u64 = 15_000;
/// How long an instance waits for another instance's refresh before going on with the tokens it has.
const REFRESH_WAIT: Duration = Duration::from_secs(5);
/// How often a waiting instance reads the session again.
const REFRESH_POLL: Duration = Duration::from_millis(100);

/// Deletes the lock only if it still holds this holder's token (compare-and-delete): a lock that
/// expired and was taken by another instance is not released by the first.
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
",
    )
});

/// What a request gets from [`OidcRegistry::refresh_if_needed`].
#[derive(Debug)]
pub enum Refreshed {
    /// The session, refreshed if that was due.
    Current(Arc<Session>),
    /// The refresh was due but the IdP could not be reached: the session goes on, on its current roles,
    /// until `until` (unix seconds). `first` is set the first time for this session (to audit once).
    Deferred {
        session: Arc<Session>,
        reason: String,
        until: u64,
        first: bool,
    },
}

/// Why a token call failed: the IdP said no, or it could not be asked.
pub(super) enum TokenCallError {
    /// The IdP answered with an OAuth error (other than `server_error`/`temporarily_unavailable`).
    Refused(Failure),
    /// No usable answer. `transport` is set when no connection or no complete answer was had: the
    /// IdP is then marked unavailable at once.
    Unreachable { reason: String, transport: bool },
    /// The session ended (sign-out, logout, eviction) while its refresh was under way.
    Ended,
}

type TokenRequestError = RequestTokenError<
    HttpClientError<openidconnect::reqwest::Error>,
    StandardErrorResponse<CoreErrorResponseType>,
>;

/// Tells a refused token call from one that did not reach the IdP. HTTP 5xx answers arrive here as
/// request errors (see `TokenHttp`); a 2xx or 4xx answer that is not a valid OAuth
/// answer is the IdP's (wrong) answer, so refused.
pub(super) fn classify(error: TokenRequestError, what: &str) -> TokenCallError {
    let reason = |error: &TokenRequestError| format!("{what}: {}", error_chain(error));
    match &error {
        RequestTokenError::ServerResponse(answer)
            if !matches!(
                answer.error().as_ref(),
                "server_error" | "temporarily_unavailable"
            ) =>
        {
            TokenCallError::Refused(Failure::caused_by(what.to_owned(), error))
        }
        RequestTokenError::ServerResponse(_) => TokenCallError::Unreachable {
            reason: reason(&error),
            transport: false,
        },
        RequestTokenError::Request(cause) => TokenCallError::Unreachable {
            reason: reason(&error),
            transport: matches!(cause, HttpClientError::Reqwest(_)),
        },
        RequestTokenError::Parse(..) | RequestTokenError::Other(_) => {
            TokenCallError::Refused(Failure::caused_by(what.to_owned(), error))
        }
    }
}

fn error_chain(error: &TokenRequestError) -> String {
    crate::http::error::error_chain(error)
}

impl OidcRegistry {
    /// Refreshes the session's tokens if the access token is close to expiry. Concurrent requests of one
    /// session share one refresh. A refused refresh, or an unreachable IdP past the grace, is
    /// `RefreshFailed`: the caller ends the session.
    pub async fn refresh_if_needed(
        &self,
        session: Arc<Session>,
        sessions: &Sessions,
        settings: &SessionSettings,
    ) -> Result<Refreshed, AuthError> {
        let needs_refresh = |session: &Session| {
            session.oidc.as_ref().is_some_and(|tokens| {
                tokens.refresh_token.is_some() && tokens.refresh_at <= unix_now()
            })
        };
        if !needs_refresh(&session) {
            return Ok(Refreshed::Current(session));
        }
        let lock = self
            .refresh_locks
            .lock()
            .entry(session.id.as_str().to_owned())
            .or_default()
            .clone();
        let guard = lock.lock().await;
        // Another request may have refreshed while this one waited: read the session again.
        let result = match sessions.current(&session.id).await {
            // The shared store is down, yet the caller has the session (from its cache, within the
            // outage grace): the refresh waits, as below, rather than fail the request.
            Err(error) => store_down(session.clone(), settings, error),
            Ok(None) => Err(AuthError::NotSignedIn),
            Ok(Some(current)) if needs_refresh(&current) => match &self.redis {
                None => self.refresh_or_defer(current, sessions, settings).await,
                Some(redis) => {
                    self.refresh_across_instances(redis, current, sessions, settings)
                        .await
                }
            },
            Ok(Some(current)) => Ok(Refreshed::Current(current)),
        };
        drop(guard);
        {
            let mut locks = self.refresh_locks.lock();
            if Arc::strong_count(&lock) <= 2 {
                locks.remove(session.id.as_str());
            }
        }
        result
    }

    /// Refreshes under the session's Redis lock. While another instance holds it, reads the session
    /// until that instance stored its refresh, or the lock is free again (then takes it), or
    /// [`REFRESH_WAIT`] passed: that instance died or its IdP is slow, and this request goes on with
    /// the current tokens (still valid for the refresh margin; a later request refreshes).
    async fn refresh_across_instances(
        &self,
        redis: &Redis,
        current: Arc<Session>,
        sessions: &Sessions,
        settings: &SessionSettings,
    ) -> Result<Refreshed, AuthError> {
        let key = redis.key(&format!("rl:{}", Redis::hash(current.id.as_str())));
        let holder = random_token::<16>();
        let refresh_at = |session: &Session| session.oidc.as_ref().map(|t| t.refresh_at);
        let deadline = tokio::time::Instant::now() + REFRESH_WAIT;
        let mut conn = redis.conn();
        loop {
            let taken: Result<Option<String>, StoreError> = redis
                .run(
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(&holder)
                        .arg("NX")
                        .arg("PX")
                        .arg(REFRESH_LOCK_MS)
                        .query_async(&mut conn),
                )
                .await;
            match taken {
                Ok(Some(_)) => break,
                Ok(None) if tokio::time::Instant::now() < deadline => {}
                Ok(None) => {
                    tracing::debug!(
                        "another instance's refresh did not finish in time; going on with the current tokens"
                    );
                    return Ok(Refreshed::Current(current));
                }
                Err(error) => return store_down(current, settings, error),
            }
            tokio::time::sleep(REFRESH_POLL).await;
            match sessions.current(&current.id).await {
                Ok(None) => return Err(AuthError::NotSignedIn),
                Ok(Some(latest)) if refresh_at(&latest) != refresh_at(&current) => {
                    return Ok(Refreshed::Current(latest));
                }
                Ok(Some(_)) | Err(_) => {}
            }
        }
        // Another instance may have stored a refresh between this one's read and its lock.
        let result = match sessions.current(&current.id).await {
            Err(error) => Err(AuthError::StoreUnavailable(error)),
            Ok(None) => Err(AuthError::NotSignedIn),
            Ok(Some(latest)) if refresh_at(&latest) != refresh_at(&current) => {
                Ok(Refreshed::Current(latest))
            }
            Ok(Some(latest)) => self.refresh_or_defer(latest, sessions, settings).await,
        };
        let mut release = RELEASE.prepare_invoke();
        release.key(&key).arg(&holder);
        if let Err(error) = redis.run(release.invoke_async::<i64>(&mut conn)).await {
            // It expires by itself within REFRESH_LOCK_MS.
            tracing::warn!(%error, "could not release a refresh lock");
        }
        result
    }

    /// Refreshes; when the IdP cannot be reached, keeps the session within its grace.
    async fn refresh_or_defer(
        &self,
        current: Arc<Session>,
        sessions: &Sessions,
        settings: &SessionSettings,
    ) -> Result<Refreshed, AuthError> {
        let reason = match self.refresh(current.clone(), sessions).await {
            Ok(session) => return Ok(Refreshed::Current(session)),
            Err(TokenCallError::Refused(failure)) => return Err(AuthError::RefreshFailed(failure)),
            Err(TokenCallError::Unreachable { reason, .. }) => reason,
            Err(TokenCallError::Ended) => return Err(AuthError::NotSignedIn),
        };
        let Some(tokens) = current.oidc.as_ref() else {
            return Ok(Refreshed::Current(current));
        };
        let until = tokens
            .expires_at
            .saturating_add(settings.refresh_grace.as_secs());
        if unix_now() > until {
            return Err(AuthError::RefreshFailed(Failure::new(format!(
                "the identity provider could not be reached until the refresh grace ran out: {reason}"
            ))));
        }
        if tokens.refresh_deferred_since.is_some() {
            return Ok(Refreshed::Deferred {
                session: current,
                reason,
                until,
                first: false,
            });
        }
        // Written once per outage and session, so the deferral is audited once, on any instance.
        let mut session = Arc::unwrap_or_clone(current);
        if let Some(tokens) = session.oidc.as_mut() {
            tokens.refresh_deferred_since = Some(unix_now());
        }
        if !sessions
            .update(session.clone())
            .await
            .map_err(AuthError::StoreUnavailable)?
        {
            return Err(AuthError::NotSignedIn);
        }
        Ok(Refreshed::Deferred {
            session: Arc::new(session),
            reason,
            until,
            first: true,
        })
    }

    /// One refresh at the IdP; the new tokens and user are stored.
    async fn refresh(
        &self,
        current: Arc<Session>,
        sessions: &Sessions,
    ) -> Result<Arc<Session>, TokenCallError> {
        let unreachable = |reason: String| TokenCallError::Unreachable {
            reason,
            transport: false,
        };
        let (idp, discovered) = self.idp(&current.tenant).map_err(|error| {
            unreachable(error.log_detail().unwrap_or_else(|| error.to_string()))
        })?;
        // Known to be down: do not make the user wait for a connection that will not come.
        if let IdpStatus::Unavailable(reason) = idp.status() {
            return Err(unreachable(format!(
                "the identity provider is unavailable: {reason}"
            )));
        }
        let mut session = Arc::unwrap_or_clone(current);
        let Some(tokens) = session.oidc.clone() else {
            return Ok(Arc::new(session));
        };
        let Some(refresh_token) = tokens.refresh_token.clone() else {
            return Ok(Arc::new(session));
        };
        let refresh_token = RefreshToken::new(refresh_token);
        let request = discovered
            .client
            .exchange_refresh_token(&refresh_token)
            .map_err(|error| {
                TokenCallError::Refused(Failure::caused_by("the refresh cannot be sent", error))
            })?;
        let http = super::TokenHttp(&self.http);
        let response = match request.request_async(&http).await {
            Ok(response) => response,
            Err(error) => {
                let error = classify(error, "the refresh failed");
                if let TokenCallError::Unreachable {
                    reason,
                    transport: true,
                } = &error
                {
                    idp.mark_unreachable(reason.clone());
                }
                return Err(error);
            }
        };
        let mut sid = tokens.sid.clone();
        if response.id_token().is_some() {
            // Groups are read again, so a user removed from a group loses the role now.
            let subject = session.user.subject.clone();
            let verify = |discovered: &super::Discovered| {
                verified_user(&idp, discovered, &response, None, Some(&subject))
            };
            let verified = match verify(&discovered) {
                // Signed with a key we have not seen: the IdP rotated its keys since the last probe.
                Err(error) if is_unknown_key(&error) => {
                    if self.refetch_keys(&idp, KeyTrigger::SignIn).await {
                        match self.idp(&session.tenant) {
                            Ok((_, rediscovered)) => verify(&rediscovered),
                            Err(_) => Err(error),
                        }
                    } else {
                        Err(error)
                    }
                }
                other => other,
            };
            let (user, new_sid) = verified.map_err(|error| {
                TokenCallError::Refused(match error {
                    AuthError::LoginFailed(failure) => failure,
                    other => Failure::caused_by("refreshed ID token", other),
                })
            })?;
            session.user = user;
            sid = new_sid.or(sid);
        }
        session.oidc = Some(Box::new(
            tokens_from(&response, Some(&tokens), sid).map_err(|error| {
                TokenCallError::Refused(Failure::caused_by("token response", error))
            })?,
        ));
        // Only if it still exists: a sign-out or logout during the refresh must not be undone.
        match sessions.update(session.clone()).await {
            Ok(true) => {
                crate::telemetry::metrics::refresh_event(&session.tenant, "success");
                Ok(Arc::new(session))
            }
            Ok(false) => Err(TokenCallError::Ended),
            Err(error) => Err(unreachable(error.to_string())),
        }
    }
}

/// A due refresh when Redis (the refresh lock, and the session store) does not answer. Refreshing now
/// would spend the refresh token while the new one cannot be stored: at an IdP that rotates refresh
/// tokens the session would be lost. So the refresh is deferred, as for an IdP outage and within the
/// same grace; nothing is written (so nothing is audited). Past the grace: 503, not a sign-out.
fn store_down(
    current: Arc<Session>,
    settings: &SessionSettings,
    error: StoreError,
) -> Result<Refreshed, AuthError> {
    let Some(tokens) = current.oidc.as_ref() else {
        return Ok(Refreshed::Current(current));
    };
    let until = tokens
        .expires_at
        .saturating_add(settings.refresh_grace.as_secs());
    if unix_now() > until {
        return Err(AuthError::StoreUnavailable(error));
    }
    Ok(Refreshed::Deferred {
        session: current,
        reason: format!("the session store is unavailable: {error}"),
        until,
        first: false,
    })
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
        refresh_deferred_since: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: CoreErrorResponseType) -> TokenRequestError {
        RequestTokenError::ServerResponse(StandardErrorResponse::new(code, None, None))
    }

    fn unreachable(error: TokenRequestError) -> Option<bool> {
        match classify(error, "refresh") {
            TokenCallError::Unreachable { transport, .. } => Some(transport),
            TokenCallError::Refused(_) | TokenCallError::Ended => None,
        }
    }

    fn due_session(expires_in: i64) -> Arc<Session> {
        let user = crate::auth::session::User {
            subject: "alice".into(),
            name: "Alice".into(),
            email: String::new(),
            groups: vec![],
        };
        let expires_at = unix_now().saturating_add_signed(expires_in);
        Arc::new(
            Session::new(&crate::config::TenantId::new("acme"), user).with_oidc(OidcTokens {
                access_token: "a".into(),
                expires_at,
                refresh_at: expires_at.saturating_sub(30),
                refresh_token: Some("r".into()),
                id_token: "i".into(),
                sid: None,
                refresh_deferred_since: None,
            }),
        )
    }

    /// A due refresh while Redis is down waits within `refresh_grace` (no refresh token spent whose
    /// successor could not be stored), then is a 503, never a sign-out.
    #[test]
    fn a_refresh_due_while_the_store_is_down_waits_within_the_grace() {
        let settings = SessionSettings {
            refresh_grace: std::time::Duration::from_secs(300),
            ..SessionSettings::default()
        };
        let down = || StoreError("redis: connection refused".into());
        let within = store_down(due_session(-60), &settings, down());
        assert!(
            matches!(&within, Ok(Refreshed::Deferred { first: false, reason, .. }) if reason.contains("session store")),
            "{within:?}"
        );
        let past = store_down(due_session(-301), &settings, down());
        assert!(
            matches!(past, Err(AuthError::StoreUnavailable(_))),
            "{past:?}"
        );
    }

    /// Only the IdP's own "no" ends a session; an IdP that is down or failing keeps it for the grace.
    #[test]
    fn a_refusal_is_told_from_an_idp_that_cannot_answer() {
        assert_eq!(
            unreachable(answer(CoreErrorResponseType::InvalidGrant)),
            None
        );
        assert_eq!(
            unreachable(answer(CoreErrorResponseType::InvalidClient)),
            None
        );
        let extension = |code: &str| answer(CoreErrorResponseType::Extension(code.into()));
        assert_eq!(unreachable(extension("server_error")), Some(false));
        assert_eq!(
            unreachable(extension("temporarily_unavailable")),
            Some(false)
        );
        // An HTTP 5xx answer (see `TokenHttp`): not a connection failure, so the IdP is not marked down.
        let status = RequestTokenError::Request(HttpClientError::Other("HTTP 503".into()));
        assert_eq!(unreachable(status), Some(false));
        // A 2xx or 4xx answer that is not OAuth is the IdP's (wrong) answer.
        assert_eq!(unreachable(RequestTokenError::Other("odd".into())), None);
    }
}
