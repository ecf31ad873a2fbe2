//! Security-relevant events, on their own log target (`audit`) so they can be shipped and kept apart
//! from access logs.
//!
//! Events are a typed enum so that what is audited is reviewed in one place. Each event says its name,
//! its outcome and its fields once (`AuditEvent::name`, `outcome`, `fields`), and one call writes every
//! line, so a field is spelled the same in every event. They carry a hash of the session id, never the
//! id itself, and never a token. Log shippers and tests select lines by `target`, `event` and `outcome`:
//! those names are an interface.

/// How a user signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignInMethod {
    /// Through the tenant's OpenID Provider.
    Oidc,
    /// Development sign-in (a demo user picked from a list).
    Dev,
}

impl SignInMethod {
    /// The value of the `method` field.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SignInMethod::Oidc => "oidc",
            SignInMethod::Dev => "dev",
        }
    }
}

/// One auditable event.
#[derive(Debug)]
pub(crate) enum AuditEvent<'a> {
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
    /// A due refresh could not reach the IdP; the session goes on on its current roles until `until`
    /// (its access token expiry plus `sessions.refresh_grace`). Written once per session and outage.
    RefreshDeferred {
        tenant: &'a str,
        session: &'a str,
        until: u64,
        reason: &'a str,
    },
    /// A new sign-in ended an older session because a limit was reached (`reason` names the limit:
    /// `max_sessions_per_user` or `max_sessions`).
    SessionEvicted {
        tenant: &'a str,
        user: &'a str,
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
    /// A user sent an app's requests to a preview upstream for their session (`apps::preview`).
    PreviewStarted {
        tenant: &'a str,
        user: &'a str,
        app: &'a str,
        upstream: &'a str,
        session: &'a str,
        until: u64,
    },
    /// A user ended a preview override; the app's own upstream answers again.
    PreviewEnded {
        tenant: &'a str,
        user: &'a str,
        app: &'a str,
        upstream: &'a str,
        session: &'a str,
    },
    /// A preview was asked for (its page or its start) and refused, e.g. an address the tenant does
    /// not allow: possibly a link meant to route someone's traffic elsewhere.
    PreviewRefused {
        tenant: &'a str,
        user: &'a str,
        app: &'a str,
        upstream: &'a str,
        reason: &'a str,
    },
    /// A request authenticated with a bearer token (`token` is its id, never the token; `via` its
    /// kind: `idp_token` or `personal_token`; `app` the app id or `backstage`).
    BearerUsed {
        tenant: &'a str,
        user: &'a str,
        via: &'a str,
        app: &'a str,
        method: &'a str,
        path: &'a str,
        token: &'a str,
    },
    /// A bearer token failed verification, or was over its rate limit; `reason` says which.
    BearerRefused {
        tenant: &'a str,
        via: &'a str,
        path: &'a str,
        reason: &'a str,
    },
    /// A user minted a personal access token (`token` is its id) that lives `until`.
    TokenCreated {
        tenant: &'a str,
        user: &'a str,
        token: &'a str,
        until: u64,
    },
    /// A personal access token was revoked; `trigger` says by whom: `user`, `admin` or
    /// `backchannel_logout` (then `token` is `*`, every token of the user).
    TokenRevoked {
        tenant: &'a str,
        user: &'a str,
        token: &'a str,
        trigger: &'a str,
    },
    /// A new config was compiled and swapped in (instance-wide: no tenant field). Each list is
    /// comma-separated; apps are `tenant/app`; an empty list is left out of the line.
    ConfigReloaded {
        trigger: &'a str,
        generation: u64,
        changes: ConfigChanges<'a>,
    },
    /// A reload found errors and kept the running config; `reason` is the first error.
    ConfigReloadRefused {
        trigger: &'a str,
        generation: u64,
        errors: usize,
        reason: &'a str,
    },
}

/// What a reload changed, as the comma-separated lists an audit line carries.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ConfigChanges<'a> {
    pub(crate) tenants_added: &'a str,
    pub(crate) tenants_removed: &'a str,
    pub(crate) tenants_changed: &'a str,
    pub(crate) apps_added: &'a str,
    pub(crate) apps_removed: &'a str,
    pub(crate) apps_changed: &'a str,
    /// Sections outside tenants that changed (`server`, `sessions`, `proxy`, `default_tenant`).
    pub(crate) settings_changed: &'a str,
    /// Start-only keys that changed and wait for a restart.
    pub(crate) restart_needed: &'a str,
}

/// The fields an event carries, each recorded under its own name; an event leaves out what it lacks.
/// The order here is the order in a text log line.
#[derive(Debug, Default)]
struct Fields<'a> {
    tenant: Option<&'a str>,
    user: Option<&'a str>,
    method: Option<&'a str>,
    app: Option<&'a str>,
    upstream: Option<&'a str>,
    token: Option<&'a str>,
    http_method: Option<&'a str>,
    path: Option<&'a str>,
    sid: Option<&'a str>,
    sessions: Option<usize>,
    until: Option<u64>,
    session_tenant: Option<&'a str>,
    session: Option<&'a str>,
    trigger: Option<&'a str>,
    generation: Option<u64>,
    errors: Option<usize>,
    changes: ConfigChanges<'a>,
    reason: Option<&'a str>,
}

/// How an event ended: `success`, `failure` (something went wrong) or `refused` (portico said no).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Failure,
    Refused,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Refused => "refused",
        }
    }
}

impl AuditEvent<'_> {
    /// The `event` field: what happened. Several variants share a name and differ in outcome.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            AuditEvent::SignIn { .. } | AuditEvent::SignInRefused { .. } => "sign_in",
            AuditEvent::SignOut { .. } => "sign_out",
            AuditEvent::CrossTenantSession { .. } => "cross_tenant_session",
            AuditEvent::AccessDenied { .. } => "access_denied",
            AuditEvent::CsrfRejected { .. } => "csrf_rejected",
            AuditEvent::DuplicateSessionCookie { .. } => "duplicate_session_cookie",
            AuditEvent::RefreshFailed { .. } => "refresh",
            AuditEvent::RefreshDeferred { .. } => "refresh_deferred",
            AuditEvent::SessionEvicted { .. } => "session_evicted",
            AuditEvent::BackchannelLogout { .. } | AuditEvent::BackchannelLogoutRefused { .. } => {
                "backchannel_logout"
            }
            AuditEvent::ConfigReloaded { .. } | AuditEvent::ConfigReloadRefused { .. } => {
                "config_reload"
            }
            AuditEvent::PreviewStarted { .. } | AuditEvent::PreviewRefused { .. } => {
                "preview_start"
            }
            AuditEvent::PreviewEnded { .. } => "preview_end",
            AuditEvent::BearerUsed { .. } | AuditEvent::BearerRefused { .. } => "bearer",
            AuditEvent::TokenCreated { .. } => "token_created",
            AuditEvent::TokenRevoked { .. } => "token_revoked",
        }
    }

    /// The `outcome` field.
    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            AuditEvent::SignIn { .. }
            | AuditEvent::SignOut { .. }
            | AuditEvent::BackchannelLogout { .. }
            | AuditEvent::ConfigReloaded { .. }
            | AuditEvent::SessionEvicted { .. }
            | AuditEvent::PreviewStarted { .. }
            | AuditEvent::PreviewEnded { .. }
            | AuditEvent::BearerUsed { .. }
            | AuditEvent::TokenCreated { .. }
            | AuditEvent::TokenRevoked { .. } => Outcome::Success,
            AuditEvent::SignInRefused { .. }
            | AuditEvent::ConfigReloadRefused { .. }
            | AuditEvent::RefreshFailed { .. }
            | AuditEvent::RefreshDeferred { .. }
            | AuditEvent::BackchannelLogoutRefused { .. } => Outcome::Failure,
            AuditEvent::CrossTenantSession { .. }
            | AuditEvent::AccessDenied { .. }
            | AuditEvent::CsrfRejected { .. }
            | AuditEvent::DuplicateSessionCookie { .. }
            | AuditEvent::PreviewRefused { .. }
            | AuditEvent::BearerRefused { .. } => Outcome::Refused,
        }
    }

    /// Whether the line is a warning: failures, and refusals that point at an attack or a bug. A denied
    /// access is an ordinary answer to an ordinary user, so it stays informational.
    fn is_warning(&self) -> bool {
        match self.outcome() {
            Outcome::Success => false,
            Outcome::Failure => true,
            Outcome::Refused => !matches!(self, AuditEvent::AccessDenied { .. }),
        }
    }

    /// The fields of the events about how long a session lives (refresh grace, session limits).
    fn session_limit_fields(&self) -> Fields<'_> {
        match *self {
            AuditEvent::RefreshDeferred {
                tenant,
                session,
                until,
                reason,
            } => Fields {
                tenant: Some(tenant),
                until: Some(until),
                session: Some(session),
                reason: Some(reason),
                ..Fields::default()
            },
            AuditEvent::SessionEvicted {
                tenant,
                user,
                session,
                reason,
            } => Fields {
                tenant: Some(tenant),
                user: Some(user),
                session: Some(session),
                reason: Some(reason),
                ..Fields::default()
            },
            _ => Fields::default(),
        }
    }

    fn fields(&self) -> Fields<'_> {
        match *self {
            AuditEvent::SignIn {
                tenant,
                user,
                method,
                session,
            } => Fields {
                tenant: Some(tenant),
                user: Some(user),
                method: Some(method.as_str()),
                session: Some(session),
                ..Fields::default()
            },
            AuditEvent::SignInRefused { tenant, reason }
            | AuditEvent::BackchannelLogoutRefused { tenant, reason } => Fields {
                tenant: Some(tenant),
                reason: Some(reason),
                ..Fields::default()
            },
            AuditEvent::SignOut {
                tenant,
                user,
                session,
            } => Fields {
                tenant: Some(tenant),
                user: Some(user),
                session: Some(session),
                ..Fields::default()
            },
            AuditEvent::CrossTenantSession {
                tenant,
                session_tenant,
                session,
            } => Fields {
                tenant: Some(tenant),
                session_tenant: Some(session_tenant),
                session: Some(session),
                ..Fields::default()
            },
            AuditEvent::AccessDenied {
                tenant,
                user,
                app,
                path,
            } => Fields {
                tenant: Some(tenant),
                user: Some(user),
                app: Some(app),
                path: Some(path),
                ..Fields::default()
            },
            AuditEvent::CsrfRejected { tenant, path }
            | AuditEvent::DuplicateSessionCookie { tenant, path } => Fields {
                tenant: Some(tenant),
                path: Some(path),
                ..Fields::default()
            },
            AuditEvent::RefreshFailed {
                tenant,
                session,
                reason,
            } => Fields {
                tenant: Some(tenant),
                session: Some(session),
                reason: Some(reason),
                ..Fields::default()
            },
            AuditEvent::RefreshDeferred { .. } | AuditEvent::SessionEvicted { .. } => {
                self.session_limit_fields()
            }
            AuditEvent::BackchannelLogout {
                tenant,
                user,
                sid,
                sessions,
            } => Fields {
                tenant: Some(tenant),
                user: Some(user),
                sid: Some(sid),
                sessions: Some(sessions),
                ..Fields::default()
            },
            AuditEvent::ConfigReloaded { .. } | AuditEvent::ConfigReloadRefused { .. } => {
                self.reload_fields()
            }
            AuditEvent::PreviewStarted { .. }
            | AuditEvent::PreviewEnded { .. }
            | AuditEvent::PreviewRefused { .. } => self.preview_fields(),
            AuditEvent::BearerUsed { .. }
            | AuditEvent::BearerRefused { .. }
            | AuditEvent::TokenCreated { .. }
            | AuditEvent::TokenRevoked { .. } => self.bearer_fields(),
        }
    }

    /// The fields of the bearer token events.
    fn bearer_fields(&self) -> Fields<'_> {
        match *self {
            AuditEvent::BearerUsed {
                tenant,
                user,
                via,
                app,
                method,
                path,
                token,
            } => Fields {
                tenant: Some(tenant),
                user: Some(user),
                method: Some(via),
                app: Some(app),
                http_method: Some(method),
                path: Some(path),
                token: Some(token),
                ..Fields::default()
            },
            AuditEvent::BearerRefused {
                tenant,
                via,
                path,
                reason,
            } => Fields {
                tenant: Some(tenant),
                method: Some(via),
                path: Some(path),
                reason: Some(reason),
                ..Fields::default()
            },
            AuditEvent::TokenCreated {
                tenant,
                user,
                token,
                until,
            } => Fields {
                tenant: Some(tenant),
                user: Some(user),
                token: Some(token),
                until: Some(until),
                ..Fields::default()
            },
            AuditEvent::TokenRevoked {
                tenant,
                user,
                token,
                trigger,
            } => Fields {
                tenant: Some(tenant),
                user: Some(user),
                token: Some(token),
                trigger: Some(trigger),
                ..Fields::default()
            },
            _ => Fields::default(),
        }
    }

    /// The fields of the preview override events.
    fn preview_fields(&self) -> Fields<'_> {
        match *self {
            AuditEvent::PreviewStarted {
                tenant,
                user,
                app,
                upstream,
                session,
                until,
            } => Fields {
                tenant: Some(tenant),
                user: Some(user),
                app: Some(app),
                upstream: Some(upstream),
                session: Some(session),
                until: Some(until),
                ..Fields::default()
            },
            AuditEvent::PreviewEnded {
                tenant,
                user,
                app,
                upstream,
                session,
            } => Fields {
                tenant: Some(tenant),
                user: Some(user),
                app: Some(app),
                upstream: Some(upstream),
                session: Some(session),
                ..Fields::default()
            },
            AuditEvent::PreviewRefused {
                tenant,
                user,
                app,
                upstream,
                reason,
            } => Fields {
                tenant: Some(tenant),
                user: Some(user),
                app: Some(app),
                upstream: Some(upstream),
                reason: Some(reason),
                ..Fields::default()
            },
            _ => Fields::default(),
        }
    }

    /// The fields of the two reload events (instance-wide: no tenant).
    fn reload_fields(&self) -> Fields<'_> {
        match *self {
            AuditEvent::ConfigReloaded {
                trigger,
                generation,
                changes,
            } => Fields {
                trigger: Some(trigger),
                generation: Some(generation),
                changes,
                ..Fields::default()
            },
            AuditEvent::ConfigReloadRefused {
                trigger,
                generation,
                errors,
                reason,
            } => Fields {
                trigger: Some(trigger),
                generation: Some(generation),
                errors: Some(errors),
                reason: Some(reason),
                ..Fields::default()
            },
            _ => Fields::default(),
        }
    }
}

/// Writes the event as one structured line on the `audit` target: `event`, `outcome`, then the fields
/// the event carries (an absent field is left out of the line, not written empty).
pub(crate) fn emit(event: AuditEvent<'_>) {
    let Fields {
        tenant,
        user,
        method,
        app,
        upstream,
        token,
        http_method,
        path,
        sid,
        sessions,
        until,
        session_tenant,
        session,
        trigger,
        generation,
        errors,
        changes,
        reason,
    } = event.fields();
    // An empty list is left out of the line, like an absent field.
    fn list(text: &str) -> Option<&str> {
        (!text.is_empty()).then_some(text)
    }
    let ConfigChanges {
        tenants_added,
        tenants_removed,
        tenants_changed,
        apps_added,
        apps_removed,
        apps_changed,
        settings_changed,
        restart_needed,
    } = changes;
    let (tenants_added, tenants_removed, tenants_changed) = (
        list(tenants_added),
        list(tenants_removed),
        list(tenants_changed),
    );
    let (apps_added, apps_removed, apps_changed) =
        (list(apps_added), list(apps_removed), list(apps_changed));
    let (settings_changed, restart_needed) = (list(settings_changed), list(restart_needed));
    // Every event is counted too (`portico_audit_events_total` and the family it belongs to).
    crate::telemetry::metrics::audit_event(&crate::telemetry::metrics::AuditRecord {
        event: event.name(),
        outcome: event.outcome().as_str(),
        tenant: tenant.unwrap_or("-"),
        method,
        reason,
    });
    // The level of a tracing call is fixed per call site, so the one field list is written for both.
    macro_rules! audit_line {
        ($level:expr) => {
            tracing::event!(
                target: "audit",
                $level,
                event = event.name(),
                outcome = event.outcome().as_str(),
                tenant,
                user,
                method,
                app,
                upstream,
                token,
                http_method,
                path,
                sid,
                sessions,
                until,
                session_tenant,
                session,
                trigger,
                generation,
                errors,
                tenants_added,
                tenants_removed,
                tenants_changed,
                apps_added,
                apps_removed,
                apps_changed,
                settings_changed,
                restart_needed,
                reason
            )
        };
    }
    if event.is_warning() {
        audit_line!(tracing::Level::WARN);
    } else {
        audit_line!(tracing::Level::INFO);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The text line an event writes, without the timestamp.
    fn line(event: AuditEvent<'_>) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .finish();
        tracing::subscriber::with_default(subscriber, || emit(event));
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.trim().to_owned()
    }

    /// Each event's line as it was when every event had its own `tracing` call: level, target, and
    /// fields in the same order, none added.
    #[test]
    fn every_event_writes_the_line_it_always_wrote() {
        let cases = [
            (
                AuditEvent::SignIn {
                    tenant: "t",
                    user: "u",
                    method: SignInMethod::Dev,
                    session: "h",
                },
                r#"INFO audit: event="sign_in" outcome="success" tenant="t" user="u" method="dev" session="h""#,
            ),
            (
                AuditEvent::SignInRefused {
                    tenant: "t",
                    reason: "r",
                },
                r#"WARN audit: event="sign_in" outcome="failure" tenant="t" reason="r""#,
            ),
            (
                AuditEvent::SignOut {
                    tenant: "t",
                    user: "u",
                    session: "h",
                },
                r#"INFO audit: event="sign_out" outcome="success" tenant="t" user="u" session="h""#,
            ),
            (
                AuditEvent::CrossTenantSession {
                    tenant: "t",
                    session_tenant: "o",
                    session: "h",
                },
                r#"WARN audit: event="cross_tenant_session" outcome="refused" tenant="t" session_tenant="o" session="h""#,
            ),
            (
                AuditEvent::AccessDenied {
                    tenant: "t",
                    user: "u",
                    app: "a",
                    path: "/p",
                },
                r#"INFO audit: event="access_denied" outcome="refused" tenant="t" user="u" app="a" path="/p""#,
            ),
            (
                AuditEvent::RefreshFailed {
                    tenant: "t",
                    session: "h",
                    reason: "r",
                },
                r#"WARN audit: event="refresh" outcome="failure" tenant="t" session="h" reason="r""#,
            ),
            (
                AuditEvent::BackchannelLogout {
                    tenant: "t",
                    user: "u",
                    sid: "s",
                    sessions: 2,
                },
                r#"INFO audit: event="backchannel_logout" outcome="success" tenant="t" user="u" sid="s" sessions=2"#,
            ),
            (
                AuditEvent::BackchannelLogoutRefused {
                    tenant: "t",
                    reason: "r",
                },
                r#"WARN audit: event="backchannel_logout" outcome="failure" tenant="t" reason="r""#,
            ),
            (
                AuditEvent::CsrfRejected {
                    tenant: "t",
                    path: "/p",
                },
                r#"WARN audit: event="csrf_rejected" outcome="refused" tenant="t" path="/p""#,
            ),
            (
                AuditEvent::DuplicateSessionCookie {
                    tenant: "t",
                    path: "/p",
                },
                r#"WARN audit: event="duplicate_session_cookie" outcome="refused" tenant="t" path="/p""#,
            ),
        ];
        for (event, expected) in cases {
            assert_eq!(line(event), expected);
        }
    }

    /// Reload events name no tenant: they are about the whole instance.
    #[test]
    fn reload_events_list_what_changed() {
        let cases = [
            (
                AuditEvent::ConfigReloaded {
                    trigger: "signal",
                    generation: 2,
                    changes: ConfigChanges {
                        apps_added: "t/a,t/b",
                        apps_changed: "t/c",
                        ..ConfigChanges::default()
                    },
                },
                r#"INFO audit: event="config_reload" outcome="success" trigger="signal" generation=2 apps_added="t/a,t/b" apps_changed="t/c""#,
            ),
            (
                AuditEvent::ConfigReloadRefused {
                    trigger: "file",
                    generation: 1,
                    errors: 2,
                    reason: "r",
                },
                r#"WARN audit: event="config_reload" outcome="failure" trigger="file" generation=1 errors=2 reason="r""#,
            ),
        ];
        for (event, expected) in cases {
            assert_eq!(line(event), expected);
        }
    }

    /// The events of session lifetimes: a refresh deferred while the IdP is unreachable, and a session
    /// ended by a limit.
    #[test]
    fn session_lifetime_events_write_their_lines() {
        let cases = [
            (
                AuditEvent::RefreshDeferred {
                    tenant: "t",
                    session: "h",
                    until: 42,
                    reason: "r",
                },
                r#"WARN audit: event="refresh_deferred" outcome="failure" tenant="t" until=42 session="h" reason="r""#,
            ),
            (
                AuditEvent::SessionEvicted {
                    tenant: "t",
                    user: "u",
                    session: "h",
                    reason: "max_sessions_per_user",
                },
                r#"INFO audit: event="session_evicted" outcome="success" tenant="t" user="u" session="h" reason="max_sessions_per_user""#,
            ),
        ];
        for (event, expected) in cases {
            assert_eq!(line(event), expected);
        }
    }
}
