//! [`AuthError`]: every way sign-in, a session or an `/auth/*` endpoint can fail, and how each is
//! answered (one [`Problem`] match: status, stable code, sign-in redirect, log detail).
//!
//! The public message never carries the reason a check failed; the reason goes to the log and the
//! audit trail only. This module must not decide anything: it only names outcomes.

use axum::http::StatusCode;

use super::session::StoreError;
use crate::http::error::error_chain;
use crate::http::{Class, Problem};

/// The library error behind a failed check, kept as a source rather than flattened into text.
pub(super) type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why a sign-in or a refresh failed: the reason, and the error behind it when there is one.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct Failure {
    reason: String,
    #[source]
    cause: Option<Cause>,
}

impl Failure {
    /// A check that failed on its own (state, issuer, binding, …).
    pub fn new(reason: impl Into<String>) -> Self {
        Failure {
            reason: reason.into(),
            cause: None,
        }
    }

    /// A step that failed because of `cause` (the code exchange, the ID token verification, …).
    pub fn caused_by(reason: impl Into<String>, cause: impl Into<Cause>) -> Self {
        Failure {
            reason: reason.into(),
            cause: Some(cause.into()),
        }
    }

    /// The error behind the failure, if it is a `T`.
    pub(super) fn cause_as<T: std::error::Error + 'static>(&self) -> Option<&T> {
        self.cause.as_ref()?.downcast_ref::<T>()
    }

    /// The reason and every cause on one line, for the log and the audit trail.
    pub fn chain(&self) -> String {
        error_chain(self)
    }
}

/// Why a request could not be authenticated, or an auth endpoint refused it.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// 401 for API calls; a redirect to sign-in for browser navigations.
    #[error("you are not signed in")]
    NotSignedIn,
    /// 403: a state-changing request that did not prove it came from this origin.
    #[error("this request did not come from the portal itself and was refused")]
    CsrfRejected,
    /// 403: dev sign-in asked for where it is not allowed.
    #[error("development sign-in is disabled: portico is not listening on a loopback address")]
    DevSignInRefused,
    /// 403: dev sign-in asked for on a host name the tenant does not list (DNS rebinding).
    #[error(
        "development sign-in answers only on this portal's own host names; open the portal at the address it was configured with"
    )]
    DevSignInUnlistedHost,
    /// 400: a dev sign-in form named a user that does not exist.
    #[error("there is no demo user `{0}`")]
    UnknownDevUser(String),
    /// 400: the request carried the session cookie twice; one of them was planted.
    #[error(
        "your browser sent more than one portal session cookie, so this request was refused; clear this site's cookies and sign in again"
    )]
    DuplicateSessionCookie,
    /// 429: this client has started too many sign-ins that have not finished yet.
    #[error(
        "too many sign-ins were started from your network and have not finished yet; try again in a few minutes"
    )]
    TooManySignIns {
        /// Seconds until one of this client's pending sign-ins expires (for `Retry-After`).
        retry_after: u64,
    },
    /// 503: the session store did not answer.
    #[error("sessions are unavailable right now; try again shortly")]
    StoreUnavailable(#[source] StoreError),
    /// 503: the tenant's identity provider cannot be reached (or was never reached).
    #[error(
        "sign-in is unavailable right now: the identity provider cannot be reached; try again shortly"
    )]
    SignInUnavailable(String),
    /// 503: a sign-in cannot be started or finished because the store shared by the instances (Redis)
    /// does not answer; nothing was written.
    #[error(
        "sign-in is unavailable right now: the portal cannot reach its session store; try again shortly"
    )]
    SignInStoreUnavailable(#[source] StoreError),
    /// 401: the IdP's answer failed a check (state, issuer, ID token); the reason is logged and audited.
    #[error("sign-in failed; please try again")]
    LoginFailed(#[source] Failure),
    /// 401: refreshing the tokens failed, so the session ended.
    #[error("your session has ended; please sign in again")]
    RefreshFailed(#[source] Failure),
    /// 400: a back-channel logout token failed validation.
    #[error("invalid logout token")]
    InvalidLogoutToken(String),
    /// 401: a bearer token failed verification (RFC 6750 `invalid_token`); the reason is logged and
    /// audited, never shown.
    #[error("the bearer token is not valid here")]
    InvalidToken(String),
    /// 400: a request carried both the session cookie and a bearer token (RFC 6750 `invalid_request`).
    #[error("send either the session cookie or a bearer token, not both")]
    BearerWithSession,
    /// 403: the bearer token is narrowed (a personal token's apps or read-only) away from this
    /// request, whatever its user may do (RFC 6750 `insufficient_scope`).
    #[error("this token does not reach that: it is narrowed to other apps or to reading")]
    OutsideTokenScope,
    /// 429: the bearer token made more requests than `tokens.rate_limit` allows.
    #[error("this token made too many requests; try again in {retry_after} s")]
    TokenRateLimited { retry_after: u64 },
    /// 503: too many opaque tokens are being introspected at once; the caller should come back.
    #[error(
        "tokens cannot be checked right now: too many are being checked at once; try again shortly"
    )]
    TokenCheckBusy,
    /// 503: the store of personal tokens did not answer, so the token could not be checked.
    #[error(
        "tokens cannot be checked right now: the portal cannot reach its store; try again shortly"
    )]
    TokenStoreUnavailable(#[source] StoreError),
}

impl Problem for AuthError {
    fn classify(&self) -> Class {
        let class = |status, code| Class::new(status, code);
        match self {
            AuthError::NotSignedIn => class(StatusCode::UNAUTHORIZED, "not_signed_in").sign_in(),
            AuthError::CsrfRejected => class(StatusCode::FORBIDDEN, "csrf_rejected"),
            AuthError::DevSignInRefused | AuthError::DevSignInUnlistedHost => {
                class(StatusCode::FORBIDDEN, "dev_sign_in_refused")
            }
            AuthError::UnknownDevUser(_) => class(StatusCode::BAD_REQUEST, "unknown_user"),
            AuthError::DuplicateSessionCookie => {
                class(StatusCode::BAD_REQUEST, "duplicate_session_cookie")
            }
            AuthError::TooManySignIns { retry_after } => {
                class(StatusCode::TOO_MANY_REQUESTS, "too_many_sign_ins").retry_after(*retry_after)
            }
            AuthError::StoreUnavailable(error) => {
                class(StatusCode::SERVICE_UNAVAILABLE, "session_store_unavailable")
                    .detail(error.to_string())
            }
            AuthError::SignInUnavailable(reason) => {
                class(StatusCode::SERVICE_UNAVAILABLE, "sign_in_unavailable")
                    .detail(reason.as_str())
            }
            // Redis reconnects by itself; its health probe runs every few seconds.
            AuthError::SignInStoreUnavailable(error) => {
                class(StatusCode::SERVICE_UNAVAILABLE, "sign_in_unavailable")
                    .detail(error.to_string())
                    .retry_after(5)
            }
            AuthError::LoginFailed(failure) => {
                class(StatusCode::UNAUTHORIZED, "sign_in_failed").detail(failure.chain())
            }
            AuthError::RefreshFailed(failure) => {
                class(StatusCode::UNAUTHORIZED, "session_ended").detail(failure.chain())
            }
            AuthError::InvalidLogoutToken(reason) => {
                class(StatusCode::BAD_REQUEST, "invalid_logout_token").detail(reason.as_str())
            }
            AuthError::InvalidToken(reason) => class(StatusCode::UNAUTHORIZED, "invalid_token")
                .detail(reason.as_str())
                .challenge("Bearer realm=\"portico\", error=\"invalid_token\""),
            AuthError::BearerWithSession => class(StatusCode::BAD_REQUEST, "invalid_request")
                .challenge("Bearer realm=\"portico\", error=\"invalid_request\""),
            AuthError::OutsideTokenScope => class(StatusCode::FORBIDDEN, "insufficient_scope")
                .challenge("Bearer realm=\"portico\", error=\"insufficient_scope\""),
            AuthError::TokenRateLimited { retry_after } => {
                class(StatusCode::TOO_MANY_REQUESTS, "rate_limited").retry_after(*retry_after)
            }
            AuthError::TokenCheckBusy => {
                class(StatusCode::SERVICE_UNAVAILABLE, "token_check_busy").retry_after(1)
            }
            AuthError::TokenStoreUnavailable(error) => {
                class(StatusCode::SERVICE_UNAVAILABLE, "token_store_unavailable")
                    .detail(error.to_string())
                    .retry_after(5)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_keeps_its_cause_for_the_log_only() {
        let cause = std::io::Error::other("connection reset");
        let error = AuthError::LoginFailed(Failure::caused_by("code exchange failed", cause));
        assert_eq!(error.to_string(), "sign-in failed; please try again");
        assert_eq!(
            error.log_detail().as_deref(),
            Some("code exchange failed: connection reset")
        );
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("code exchange failed"));
    }
}
