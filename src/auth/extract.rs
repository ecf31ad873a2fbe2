//! `SignedIn`: the extractor every protected handler uses to learn who is asking.
//!
//! It reads the session cookie (refusing a duplicate), looks the session up through `Sessions` (tenant
//! binding and timeouts, with cross-tenant use audited), refreshes OIDC tokens near expiry, and takes the
//! session's `Principal` in the request's tenant: the roles from the *current* role map (derived again
//! after a reload), kept with the session between requests. It says who the user is, never what they
//! may reach: that is `rbac`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::Method;
use axum::http::request::Parts;

use super::cookies::{CookieError, session_cookie};
use super::error::AuthError;
use super::personal::{self, TokenScope};
use super::principal::Principal;
use super::session::{LookupMiss, Session, SessionId};
use crate::audit::{self, AuditEvent};
use crate::auth::oidc::Refreshed;
use crate::config::{SessionSettings, Tenant};
use crate::http::{AppError, RequestContext};
use crate::rbac::Roles;
use crate::state::AppState;
use crate::telemetry::Labels;

/// A request made with a valid session of the current tenant, with who its user is in the tenant's
/// current config (the roles its groups grant now, among others: `auth::principal`).
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session: Arc<Session>,
    pub(crate) principal: Arc<Principal>,
    /// Set when the request authenticated with a bearer token instead of the session cookie: then
    /// `session` is a record made for this request alone (never stored) from the token's claims.
    pub(crate) bearer: Option<Arc<Bearer>>,
}

/// How a bearer request authenticated, for the guard (no CSRF proof), the assertion and the audit.
#[derive(Debug)]
pub(crate) struct Bearer {
    /// What the assertion's `via` says: `idp_token` (an access token of the tenant's IdP) or
    /// `personal_token` (one portico minted, `auth::personal`).
    pub kind: &'static str,
    /// The token's `jti` (or a hash of it), never the token.
    pub token_id: String,
    /// What per-token state (the Backstage token of `identity: user`, the rate limit's bucket) is kept
    /// under, in place of a session id: `<kind>:<tenant>:<token id>`, which no session id can equal
    /// (they hold no `:`), so state of one token is never another's or a session's.
    pub holder: String,
    /// A personal token's narrowing; `None`: the token reaches what its user may.
    pub scope: Option<TokenScope>,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let context = parts
            .extensions
            .get::<RequestContext>()
            .ok_or_else(|| AppError::internal("request context missing: tenant not resolved"))?;
        SignedIn::of(parts, context, state).await
    }
}

impl SignedIn {
    /// Who asks: the request's session of `context`'s tenant, refreshed if due, with its roles now.
    /// The extractor's body, for callers that already hold the context (`apps::serve`).
    pub(crate) async fn of(
        parts: &Parts,
        context: &RequestContext,
        state: &AppState,
    ) -> Result<Self, AppError> {
        let tenant = &context.tenant;
        if let Some(token) = bearer_token(parts, tenant)? {
            return bearer(parts, context, state, token).await;
        }
        let id = presented_id(parts, tenant, context.is_https())?;
        let session = match state
            .sessions
            .lookup(&id, &tenant.id, &context.config.sessions)
            .await
        {
            Ok(session) => session,
            Err(LookupMiss::OtherTenant(session_tenant)) => {
                audit::emit(AuditEvent::CrossTenantSession {
                    tenant: tenant.id.as_str(),
                    session_tenant: session_tenant.as_str(),
                    session: &id.log_hash(),
                });
                return Err(AuthError::NotSignedIn.into());
            }
            Err(LookupMiss::StoreDown(error)) => {
                return Err(AuthError::StoreUnavailable(error).into());
            }
            Err(LookupMiss::Unknown | LookupMiss::Expired) => {
                return Err(AuthError::NotSignedIn.into());
            }
        };
        let session = refreshed(state, tenant, &context.config.sessions, &id, session).await?;
        if let Some(labels) = parts.extensions.get::<Labels>() {
            labels.user(&session.user.subject);
        }
        // Roles come from the current role map (derived again when a reload built a new tenant), so
        // a config change applies at once.
        let principal = session.principal(tenant);
        Ok(SignedIn {
            session,
            principal,
            bearer: None,
        })
    }

    /// A user no request presented: what a command (`portico preview`) shows on the user's behalf,
    /// with the roles `tenant`'s current role map gives their groups, as for a request.
    pub(crate) fn unpresented(tenant: &Arc<Tenant>, session: Session) -> SignedIn {
        let session = Arc::new(session);
        let principal = session.principal(tenant);
        SignedIn {
            session,
            principal,
            bearer: None,
        }
    }

    /// The roles the user's groups grant in the tenant's current config.
    pub fn roles(&self) -> &Roles {
        &self.principal.roles
    }

    /// What per-user state is kept under: the session id, or for a bearer request its token (a record
    /// made per request has an id nobody sees again, and state kept under it would only pile up).
    pub(crate) fn holder(&self) -> &str {
        match &self.bearer {
            Some(bearer) => &bearer.holder,
            None => self.session.id.as_str(),
        }
    }

    /// Refuses a bearer request its token is narrowed away from (`app`: the app's id, `None` for the
    /// Backstage API), on top of the access decision. A session is never narrowed.
    pub(crate) fn check_token_scope(
        &self,
        app: Option<&str>,
        method: &Method,
    ) -> Result<(), AuthError> {
        match self
            .bearer
            .as_ref()
            .and_then(|bearer| bearer.scope.as_ref())
        {
            Some(scope) if !scope.allows(app, method) => Err(AuthError::OutsideTokenScope),
            _ => Ok(()),
        }
    }

    /// The CSRF token a state change must prove; `None` for a bearer request (see `proxy::Guard`).
    pub(crate) fn csrf_token(&self) -> Option<&str> {
        match self.bearer {
            Some(_) => None,
            None => Some(&self.session.csrf_token),
        }
    }
}

/// Where a bearer token may stand in for the session: the apps and the Backstage API a script calls,
/// never the shell's or `/auth/*` pages, nor the Backstage UI's sign-in (`/backstage/api/auth/…`),
/// which would hand the script a Backstage token to use around portico.
fn bearer_path(path: &str) -> bool {
    if let Some(rest) = path.strip_prefix("/backstage/api/") {
        return !rest.starts_with("auth/") && rest != "auth";
    }
    path.starts_with("/apps/") && crate::apps::is_app_request(path)
}

/// The bearer token of a request on a path they are for: a personal token (`portico_pat_…`, always
/// portico's to check), or any other when the tenant accepts its IdP's (`auth.oidc.bearer`; without
/// it, such a header is the app's business). A request that also carries the session cookie is
/// refused: which of the two speaks for it would be a guess.
fn bearer_token<'p>(parts: &'p Parts, tenant: &Tenant) -> Result<Option<&'p str>, AuthError> {
    if !bearer_path(parts.uri.path()) {
        return Ok(None);
    }
    let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    let Some(token) = token else {
        return Ok(None);
    };
    let accepts_idp = matches!(&tenant.sign_in, crate::config::SignIn::Oidc(settings) if settings.bearer_audience.is_some());
    if !accepts_idp && !token.starts_with(personal::PREFIX) {
        return Ok(None);
    }
    // Either spelling of the cookie (`__Host-` on HTTPS), also a duplicated one.
    let with_session = [true, false]
        .into_iter()
        .any(|https| !matches!(session_cookie(&parts.headers, https), Ok(None)));
    if with_session {
        return Err(AuthError::BearerWithSession);
    }
    Ok(Some(token))
}

/// A bearer request: the token's user, in a record made for this request, with roles from the
/// tenant's current role map like a session's, within the token's rate limit. Every use is audited.
async fn bearer(
    parts: &Parts,
    context: &RequestContext,
    state: &AppState,
    token: &str,
) -> Result<SignedIn, AppError> {
    let tenant = &context.tenant;
    let path = parts.uri.path();
    let personal = token.starts_with(personal::PREFIX);
    let via = if personal {
        "personal_token"
    } else {
        "idp_token"
    };
    let refused = |reason: &str| {
        audit::emit(AuditEvent::BearerRefused {
            tenant: tenant.id.as_str(),
            via,
            path,
            reason,
        });
    };
    let (user, token_id, scope) = if personal {
        if tenant.tokens.personal.is_none() {
            refused("personal tokens are off here");
            return Err(AuthError::InvalidToken("personal tokens are off here".into()).into());
        }
        match state.personal_tokens.verify(&tenant.id, token).await {
            Ok(token) => (token.user(), token.id, Some(token.scope)),
            Err(personal::Refused::Invalid(reason)) => {
                refused(reason);
                return Err(AuthError::InvalidToken(reason.into()).into());
            }
            Err(personal::Refused::Store(error)) => {
                return Err(AuthError::TokenStoreUnavailable(error).into());
            }
        }
    } else {
        match state.oidc.verify_access_token(&tenant.id, token).await {
            Ok(verified) => (verified.user, verified.token_id, None),
            Err(error) => {
                if let AuthError::InvalidToken(reason) = &error {
                    refused(reason);
                }
                return Err(error.into());
            }
        }
    };
    let holder = format!("{via}:{}:{token_id}", tenant.id);
    let subject = user.subject.clone();
    let session = match state.bearer_records.admit(
        &holder,
        &tenant.id,
        user,
        tenant.tokens.rate_limit,
        Instant::now(),
    ) {
        Ok(session) => session,
        Err(wait) => {
            refused("rate_limited");
            let retry_after = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            return Err(AuthError::TokenRateLimited { retry_after }.into());
        }
    };
    if let Some(labels) = parts.extensions.get::<Labels>() {
        labels.user(&subject);
    }
    audit::emit(AuditEvent::BearerUsed {
        tenant: tenant.id.as_str(),
        user: &subject,
        via,
        app: app_of(path),
        method: parts.method.as_str(),
        path,
        token: &token_id,
    });
    let principal = session.principal(tenant);
    Ok(SignedIn {
        session,
        principal,
        bearer: Some(Arc::new(Bearer {
            kind: via,
            holder,
            token_id,
            scope,
        })),
    })
}

/// What a bearer path is for, in the audit line: the app's id, or `backstage`.
fn app_of(path: &str) -> &str {
    match path.strip_prefix("/apps/") {
        Some(rest) => rest.split('/').next().unwrap_or(rest),
        None => "backstage",
    }
}

/// The session id the request presents; a duplicate session cookie is refused and audited.
fn presented_id(parts: &Parts, tenant: &Tenant, https: bool) -> Result<SessionId, AuthError> {
    match session_cookie(&parts.headers, https) {
        Ok(Some(id)) => Ok(id),
        Ok(None) => Err(AuthError::NotSignedIn),
        Err(CookieError::Duplicate) => {
            audit::emit(AuditEvent::DuplicateSessionCookie {
                tenant: tenant.id.as_str(),
                path: parts.uri.path(),
            });
            Err(AuthError::DuplicateSessionCookie)
        }
    }
}

/// The session after refreshing its tokens if they are near expiry, which also re-reads the groups.
/// A refused refresh ends the session; an unreachable IdP keeps it on its current roles until its
/// access token expiry plus `sessions.refresh_grace`, then ends it. Both are audited.
async fn refreshed(
    state: &AppState,
    tenant: &Tenant,
    settings: &SessionSettings,
    id: &SessionId,
    session: Arc<Session>,
) -> Result<Arc<Session>, AuthError> {
    match state
        .oidc
        .refresh_if_needed(session, &state.sessions, settings)
        .await
    {
        Ok(Refreshed::Current(session)) => Ok(session),
        Ok(Refreshed::Deferred {
            session,
            reason,
            until,
            first,
        }) => {
            if first {
                audit::emit(AuditEvent::RefreshDeferred {
                    tenant: tenant.id.as_str(),
                    session: &id.log_hash(),
                    until,
                    reason: &reason,
                });
            }
            Ok(session)
        }
        Err(AuthError::RefreshFailed(failure)) => {
            let _ = state.sessions.remove(id).await;
            audit::emit(AuditEvent::RefreshFailed {
                tenant: tenant.id.as_str(),
                session: &id.log_hash(),
                reason: &failure.chain(),
            });
            Err(AuthError::NotSignedIn)
        }
        Err(error) => Err(error),
    }
}

impl OptionalFromRequestParts<AppState> for SignedIn {
    type Rejection = AppError;

    /// `None` when nobody is signed in; other failures (a store outage) still fail the request.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        match <SignedIn as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(signed_in) => Ok(Some(signed_in)),
            Err(error)
                if matches!(
                    error.downcast_ref::<AuthError>(),
                    Some(AuthError::NotSignedIn)
                ) =>
            {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }
}
