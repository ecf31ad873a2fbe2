//! The records bearer requests act through, kept per token for a while. A bearer request has no
//! session, so it gets a record made for it (never stored); made afresh per request, its `Principal`
//! (roles, identity values, and above all the signed assertions, an ES256 signature each) would be
//! derived again on every call: 7.6 times the instructions of a cookie request (bench/README.md).
//! Kept per token, a script's calls reuse them as a browser's reuse their session's.
//!
//! Only the record is kept, never the decision to accept the token: every request still verifies its
//! token first (a revoked personal token or an expired JWT is refused at once), and a record is
//! reused only for exactly the user the token speaks for now, in the same tenant.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::session::{Session, User};
use crate::config::TenantId;

/// How long a record is reused: long enough that a script's run shares one, short enough that a token
/// gone idle does not hold memory.
const KEEP: Duration = Duration::from_secs(300);

/// Records kept at most (the stale go first when it is reached).
const CAPACITY: usize = 20_000;

struct Held {
    session: Arc<Session>,
    until: Instant,
}

/// Records by `SignedIn::holder` (kind, tenant and token id).
#[derive(Default)]
pub struct BearerRecords {
    held: Mutex<HashMap<String, Held>>,
}

impl BearerRecords {
    /// The record `holder` acts through: the kept one while it is fresh and speaks for exactly `user`
    /// of `tenant`, else a new one, kept from `now`.
    pub fn record(
        &self,
        holder: &str,
        tenant: &TenantId,
        user: User,
        now: Instant,
    ) -> Arc<Session> {
        let mut held = self.held.lock();
        if let Some(kept) = held.get(holder)
            && kept.until > now
            && kept.session.user == user
            && kept.session.tenant == *tenant
        {
            return kept.session.clone();
        }
        if held.len() >= CAPACITY && !held.contains_key(holder) {
            held.retain(|_, kept| kept.until > now);
            if held.len() >= CAPACITY {
                held.clear();
            }
        }
        let session = Arc::new(Session::new(tenant, user));
        held.insert(
            holder.to_owned(),
            Held {
                session: session.clone(),
                until: now + KEEP,
            },
        );
        session
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(groups: &[&str]) -> User {
        User {
            subject: "dev".into(),
            name: "Dev".into(),
            email: String::new(),
            groups: groups.iter().map(|group| (*group).to_owned()).collect(),
        }
    }

    #[test]
    fn a_record_is_reused_for_the_same_token_and_user_only_while_fresh() {
        let records = BearerRecords::default();
        let acme = TenantId::new("acme");
        let start = Instant::now();
        let first = records.record("t:acme:1", &acme, user(&["eng"]), start);
        let again = records.record("t:acme:1", &acme, user(&["eng"]), start);
        assert!(Arc::ptr_eq(&first, &again));
        // Another token, other groups behind the same token id, another tenant, or too late: new.
        assert!(!Arc::ptr_eq(
            &first,
            &records.record("t:acme:2", &acme, user(&["eng"]), start)
        ));
        let changed = records.record("t:acme:1", &acme, user(&["ops"]), start);
        assert!(!Arc::ptr_eq(&first, &changed));
        assert_eq!(changed.user.groups, ["ops"]);
        let globex = TenantId::new("globex");
        assert_eq!(
            records
                .record("t:acme:1", &globex, user(&["ops"]), start)
                .tenant,
            globex
        );
        let later = records.record("t:acme:1", &globex, user(&["ops"]), start + KEEP);
        let kept = records.record("t:acme:1", &globex, user(&["ops"]), start + KEEP);
        assert!(Arc::ptr_eq(&later, &kept));
    }
}
