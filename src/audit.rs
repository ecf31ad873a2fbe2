//! Security-relevant events, on their own log target (`audit`) so they can be shipped and kept apart
//! from access logs.
//!
//! Events are a typed enum so that what is audited is reviewed in one place. They carry a hash of the
//! session id, never the id itself, and never a token.

/// How a user signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInMethod {
    /// Through the tenant's OpenID Provider.
    Oidc,
    /// Development sign-in (a demo user picked from a list).
    Dev,
}

impl SignInMethod {
    /// The value of the `method` field.
    pub fn as_str(self) -> &'static str {
        match self {
            SignInMethod::Oidc => "oidc",
            SignInMethod::Dev => "dev",
        }
    }
}

/// One auditable event.
#[derive(Debug)]
pub enum AuditEvent<'a> {
    SignIn {
        tenant: &'a str,
        user: &'a str,
        method: SignInMethod,
        session: &'a str,
    },
    SignInRefused {
        tenant: &'a str,
        reason: &'a str,
    },
    SignOut {
        tenant: &'a str,
        user: &'a str,
        session: &'a str,
    },
    /// A session cookie of one tenant was presented on another tenant's host.
    CrossTenantSession {
        tenant: &'a str,
        session_tenant: &'a str,
        session: &'a str,
    },
    AccessDenied {
        tenant: &'a str,
        user: &'a str,
        app: &'a str,
        path: &'a str,
    },
    CsrfRejected {
        tenant: &'a str,
        path: &'a str,
    },
    /// A request carried the session cookie more than once (one was planted) and was refused.
    DuplicateSessionCookie {
        tenant: &'a str,
        path: &'a str,
    },
    /// Refreshing a session's tokens failed; the session was ended.
    RefreshFailed {
        tenant: &'a str,
        session: &'a str,
        reason: &'a str,
    },
    /// The IdP ended sessions server-to-server.
    BackchannelLogout {
        tenant: &'a str,
        user: &'a str,
        sid: &'a str,
        sessions: usize,
    },
    BackchannelLogoutRefused {
        tenant: &'a str,
        reason: &'a str,
    },
}

/// Writes the event as one structured line on the `audit` target.
pub fn emit(event: AuditEvent<'_>) {
    match event {
        AuditEvent::SignIn {
            tenant,
            user,
            method,
            session,
        } => {
            let method = method.as_str();
            tracing::info!(target: "audit", event = "sign_in", outcome = "success", tenant, user, method, session);
        }
        AuditEvent::SignInRefused { tenant, reason } => {
            tracing::warn!(target: "audit", event = "sign_in", outcome = "failure", tenant, reason);
        }
        AuditEvent::SignOut {
            tenant,
            user,
            session,
        } => {
            tracing::info!(target: "audit", event = "sign_out", outcome = "success", tenant, user, session);
        }
        AuditEvent::CrossTenantSession {
            tenant,
            session_tenant,
            session,
        } => {
            tracing::warn!(target: "audit", event = "cross_tenant_session", outcome = "refused", tenant, session_tenant, session);
        }
        AuditEvent::AccessDenied {
            tenant,
            user,
            app,
            path,
        } => {
            tracing::info!(target: "audit", event = "access_denied", outcome = "refused", tenant, user, app, path);
        }
        AuditEvent::RefreshFailed {
            tenant,
            session,
            reason,
        } => {
            tracing::warn!(target: "audit", event = "refresh", outcome = "failure", tenant, session, reason);
        }
        AuditEvent::BackchannelLogout {
            tenant,
            user,
            sid,
            sessions,
        } => {
            tracing::info!(target: "audit", event = "backchannel_logout", outcome = "success", tenant, user, sid, sessions);
        }
        AuditEvent::BackchannelLogoutRefused { tenant, reason } => {
            tracing::warn!(target: "audit", event = "backchannel_logout", outcome = "failure", tenant, reason);
        }
        AuditEvent::CsrfRejected { tenant, path } => {
            tracing::warn!(target: "audit", event = "csrf_rejected", outcome = "refused", tenant, path);
        }
        AuditEvent::DuplicateSessionCookie { tenant, path } => {
            tracing::warn!(target: "audit", event = "duplicate_session_cookie", outcome = "refused", tenant, path);
        }
    }
}
