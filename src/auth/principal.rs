//! `Principal`: who a signed-in user is in one tenant's current config, derived once and kept with the
//! session record: the roles the tenant's role map grants the user's groups, the identity header values
//! an app is told (`proxy::headers::identity`), the user's `Authorization` for apps that take the access
//! token, and the signed assertions per app (`assertion`).
//!
//! Why: all of these were built on every proxied request from the session's strings, a role set
//! collected into a fresh `BTreeSet`, five header values copied and two lists encoded, and the
//! assertion looked up by session id in a shared map and compared claim by claim: about 4,000 of a
//! proxied request's 70,000 instructions (bench/README.md). Now a request pays one uncontended lock
//! and a pointer comparison.
//!
//! What it must not do: outlive what it was derived from. A principal is derived from one session
//! record and one tenant (`Arc<Tenant>` of one config snapshot), and is handed out only for that very
//! tenant: a reload builds new tenants, so a changed role map derives a new principal on the next
//! request, as it derived new roles on every request before. A changed session (a refresh with new
//! groups) is a new record, and a record's copy starts without a principal (`PrincipalSlot::clone`).
//! The tenant is compared by address, held by a `Weak` so that no other tenant can be allocated at that
//! address while the principal lives.

use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use axum::http::HeaderValue;

use super::session::Session;
use crate::assertion::{Assertions, SigningKeys, Subject, UserClaims};
use crate::config::{AppId, Tenant};
use crate::proxy::headers::{IdentityValues, bearer_value};
use crate::rbac::Roles;

/// One user in one tenant config (see the module docs).
pub(crate) struct Principal {
    /// The tenant this was derived for; see the module docs for why a `Weak`.
    tenant: Weak<Tenant>,
    /// The roles the tenant's role map grants the session's groups.
    pub roles: Roles,
    /// The identity header values, built on the first proxied request that sends them.
    identity: OnceLock<IdentityValues>,
    /// `Authorization: Bearer <access token>`, built on the first request of an app that takes it.
    bearer: OnceLock<Option<HeaderValue>>,
    /// The assertions signed for this user, per app, while they have life left.
    assertions: Assertions,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl Principal {
    fn derive(tenant: &Arc<Tenant>, session: &Session) -> Self {
        Principal {
            tenant: Arc::downgrade(tenant),
            roles: tenant.roles.roles_for(&session.user.groups),
            identity: OnceLock::new(),
            bearer: OnceLock::new(),
            assertions: Assertions::default(),
        }
    }

    /// The role names in a stable order, for the assertion and the identity headers.
    pub(crate) fn role_names(&self) -> Vec<&str> {
        self.roles.names()
    }

    /// Who the user is, as the identity headers and the assertion say it. `session` is the record this
    /// principal was derived from (the caller's `SignedIn::session`).
    pub(crate) fn claims<'a>(
        &self,
        session: &'a Session,
        tenant: &'a Tenant,
        roles: &'a [&'a str],
    ) -> UserClaims<'a> {
        let user = &session.user;
        UserClaims {
            user: &user.subject,
            email: &user.email,
            name: &user.name,
            groups: &user.groups,
            roles,
            tenant: tenant.id.as_str(),
        }
    }

    /// The identity header values, built once (see `claims` for `session` and `tenant`).
    pub(crate) fn identity_values(&self, session: &Session, tenant: &Tenant) -> &IdentityValues {
        self.identity.get_or_init(|| {
            let roles = self.role_names();
            IdentityValues::of(&self.claims(session, tenant, &roles))
        })
    }

    /// The signed assertion for `app`, valid `lifetime` seconds: the kept one while it may be reused;
    /// what it says (`claims`) is only built when a new one is signed.
    pub(crate) fn assertion(
        &self,
        keys: &SigningKeys,
        session: &Session,
        tenant: &Tenant,
        app: &AppId,
        lifetime: u64,
        via: Option<(&str, &str)>,
    ) -> HeaderValue {
        self.assertions
            .assertion(keys, app, lifetime, |now, expires_at| {
                let roles = self.role_names();
                let subject = Subject {
                    via,
                    claims: &self.claims(session, tenant, &roles),
                    issuer: &tenant.assertion_issuer,
                    audience: app,
                };
                keys.assertion(&subject, now, expires_at)
            })
    }

    /// `Authorization: Bearer <the session's access token>`, if the session has one.
    pub(crate) fn bearer(&self, session: &Session) -> Option<&HeaderValue> {
        self.bearer
            .get_or_init(|| {
                session
                    .oidc
                    .as_ref()
                    .map(|tokens| bearer_value(&tokens.access_token))
            })
            .as_ref()
    }
}

/// Where a session record keeps its principal. A copy of the record starts empty: a copy is made to
/// be changed (a refresh, new groups), and must derive its own.
#[derive(Default)]
pub(crate) struct PrincipalSlot(Mutex<Option<Arc<Principal>>>);

impl Clone for PrincipalSlot {
    fn clone(&self) -> Self {
        PrincipalSlot::default()
    }
}

impl std::fmt::Debug for PrincipalSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrincipalSlot")
    }
}

impl PrincipalSlot {
    /// The principal of `session` (whose slot this is) in `tenant`: the kept one if it was derived
    /// for this very tenant, else a new one, kept in its place.
    pub(crate) fn get(&self, tenant: &Arc<Tenant>, session: &Session) -> Arc<Principal> {
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(principal) = kept.as_ref() {
            if std::ptr::eq(principal.tenant.as_ptr(), Arc::as_ptr(tenant)) {
                return principal.clone();
            }
        }
        let principal = Arc::new(Principal::derive(tenant, session));
        *kept = Some(principal.clone());
        principal
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::auth::session::User;
    use crate::config::{Config, MemorySource, load_str};

    /// `acme` with roles granted by groups; `extra` is appended to the `developer` role's groups.
    fn config(extra: &str) -> Config {
        let text = format!(
            "\
tenants:
  acme:
    hosts: [portal.acme.example]
    auth: {{ dev_sign_in: {{ users: [{{ id: ann, groups: [eng] }}] }} }}
    roles:
      developer: {{ groups: [eng{extra}] }}
      admin: {{ groups: [ops] }}
"
        );
        match load_str(
            &MemorySource::default(),
            "portico.yaml",
            &text,
            Path::new("/etc"),
        ) {
            Ok(loaded) => loaded.config,
            Err(error) => panic!("{error}"),
        }
    }

    fn session(tenant: &Tenant, groups: &[&str]) -> Arc<Session> {
        Arc::new(Session::new(
            &tenant.id,
            User {
                subject: "ann".into(),
                name: "Ann".into(),
                email: "ann@acme.example".into(),
                groups: groups.iter().map(|group| (*group).to_owned()).collect(),
            },
        ))
    }

    fn roles_header(principal: &Principal, session: &Session, tenant: &Tenant) -> String {
        let values = principal.identity_values(session, tenant);
        let mut headers = axum::http::HeaderMap::new();
        crate::proxy::headers::identity::insert_identity(
            &mut headers,
            &crate::proxy::headers::Identity {
                values,
                app: "x",
                modes: crate::config::IdentityModes::default(),
                assertion: None,
                bearer: None,
            },
        );
        headers["x-portico-roles"].to_str().unwrap().to_owned()
    }

    #[test]
    fn one_record_in_one_config_derives_once() {
        let config = config("");
        let tenant = config.tenant("acme").unwrap();
        let ann = session(tenant, &["eng"]);
        let first = ann.principal(tenant);
        assert!(Arc::ptr_eq(&first, &ann.principal(tenant)));
        assert_eq!(first.role_names(), ["developer"]);
    }

    /// A reload builds new tenants: the next request derives the roles from the new role map, as the
    /// identity headers then say, though the session record is the same.
    #[test]
    fn a_new_role_map_derives_again() {
        let before = config("");
        let after = config(", ops-oncall");
        let ann = session(before.tenant("acme").unwrap(), &["ops-oncall"]);
        let old = ann.principal(before.tenant("acme").unwrap());
        assert!(old.role_names().is_empty());
        let tenant = after.tenant("acme").unwrap();
        let new = ann.principal(tenant);
        assert_eq!(new.role_names(), ["developer"]);
        assert_eq!(roles_header(&new, &ann, tenant), "developer");
        let moved = config("");
        // The same role map in a config of its own is still another tenant: derived again.
        assert!(!Arc::ptr_eq(
            &new,
            &ann.principal(moved.tenant("acme").unwrap())
        ));
        let promoted = session(tenant, &["ops"]);
        assert_eq!(
            roles_header(&promoted.principal(tenant), &promoted, tenant),
            "admin"
        );
    }

    /// A refresh changes a copy of the record (new groups): the copy derives its own principal and
    /// never sees the roles of the record it was copied from.
    #[test]
    fn a_changed_copy_of_the_record_derives_its_own() {
        let config = config("");
        let tenant = config.tenant("acme").unwrap();
        let ann = session(tenant, &["eng"]);
        assert_eq!(
            roles_header(&ann.principal(tenant), &ann, tenant),
            "developer"
        );
        let mut refreshed = (*ann).clone();
        refreshed.user.groups = vec!["ops".into()];
        let refreshed = Arc::new(refreshed);
        let principal = refreshed.principal(tenant);
        assert_eq!(principal.role_names(), ["admin"]);
        assert_eq!(roles_header(&principal, &refreshed, tenant), "admin");
    }
}
