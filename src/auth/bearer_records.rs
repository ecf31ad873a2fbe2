//! The records bearer requests act through, kept per token for a while. A bearer request has no
//! session, so it gets a record made for it (never stored); made afresh per request, its `Principal`
//! (roles, identity values, and above all the signed assertions, an ES256 signature each) would be
//! derived again on every call: 7.6 times the instructions of a cookie request (bench/README.md).
//! Kept per token, a script's calls reuse them as a browser's reuse their session's.
//!
//! Only the record is kept, never the decision to accept the token: every request still verifies its
//! token first (a revoked personal token or an expired JWT is refused at once), and a record is
//! reused only for exactly the user the token speaks for now, in the same tenant. Beside the record
//! lives the token's rate-limit bucket (`rate_limit`), so a request finds both in one lookup.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::rate_limit::Bucket;
use super::session::{Session, User};
use crate::config::{RateLimit, TenantId};

/// How long a record is reused: long enough that a script's run shares one, short enough that a token
/// gone idle does not hold memory.
const KEEP: Duration = Duration::from_secs(300);

/// Records kept at most (the stale go first when it is reached).
const CAPACITY: usize = 20_000;

struct Held {
    session: Arc<Session>,
    until: Instant,
    /// The token's allowance; it outlives a renewed record, so a renewal grants no extra burst.
    bucket: Option<Bucket>,
}

/// Records by `SignedIn::holder` (kind, tenant and token id).
#[derive(Default)]
pub struct BearerRecords {
    held: Mutex<HashMap<String, Held>>,
}

impl BearerRecords {
    /// The record `holder` acts through, if its bucket under `limit` (`None`: unlimited) still holds a
    /// request; else how long until it does. The record is the kept one while it is fresh and speaks
    /// for exactly `user` of `tenant`, else a new one, kept from `now`.
    pub fn admit(
        &self,
        holder: &str,
        tenant: &TenantId,
        user: User,
        limit: Option<RateLimit>,
        now: Instant,
    ) -> Result<Arc<Session>, Duration> {
        let mut held = self.held.lock();
        if held.len() >= CAPACITY && !held.contains_key(holder) {
            held.retain(|_, kept| kept.until > now);
            if held.len() >= CAPACITY {
                held.clear();
            }
        }
        let kept = held.entry(holder.to_owned()).or_insert_with(|| Held {
            session: Arc::new(Session::new(tenant, user.clone())),
            until: now + KEEP,
            bucket: None,
        });
        if let Some(limit) = limit {
            kept.bucket
                .get_or_insert_with(|| Bucket::full(limit, now))
                .take(limit, now)?;
        }
        let reusable =
            kept.until > now && kept.session.user == user && kept.session.tenant == *tenant;
        if !reusable {
            kept.session = Arc::new(Session::new(tenant, user));
            kept.until = now + KEEP;
        }
        Ok(kept.session.clone())
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

    fn admit(
        records: &BearerRecords,
        holder: &str,
        tenant: &TenantId,
        user: User,
        now: Instant,
    ) -> Arc<Session> {
        records.admit(holder, tenant, user, None, now).unwrap()
    }

    #[test]
    fn a_record_is_reused_for_the_same_token_and_user_only_while_fresh() {
        let records = BearerRecords::default();
        let acme = TenantId::new("acme");
        let start = Instant::now();
        let first = admit(&records, "t:acme:1", &acme, user(&["eng"]), start);
        let again = admit(&records, "t:acme:1", &acme, user(&["eng"]), start);
        assert!(Arc::ptr_eq(&first, &again));
        // Another token, other groups behind the same token id, another tenant, or too late: new.
        assert!(!Arc::ptr_eq(
            &first,
            &admit(&records, "t:acme:2", &acme, user(&["eng"]), start)
        ));
        let changed = admit(&records, "t:acme:1", &acme, user(&["ops"]), start);
        assert!(!Arc::ptr_eq(&first, &changed));
        assert_eq!(changed.user.groups, ["ops"]);
        let globex = TenantId::new("globex");
        assert_eq!(
            admit(&records, "t:acme:1", &globex, user(&["ops"]), start).tenant,
            globex
        );
        let later = admit(&records, "t:acme:1", &globex, user(&["ops"]), start + KEEP);
        let kept = admit(&records, "t:acme:1", &globex, user(&["ops"]), start + KEEP);
        assert!(Arc::ptr_eq(&later, &kept));
    }

    #[test]
    fn each_token_has_its_own_bucket_and_a_renewed_record_keeps_it() {
        let records = BearerRecords::default();
        let acme = TenantId::new("acme");
        let limit = Some(RateLimit {
            requests: 2,
            per: Duration::from_secs(3600),
        });
        let start = Instant::now();
        let take = |holder: &str, now| records.admit(holder, &acme, user(&["eng"]), limit, now);
        assert!(take("t:acme:1", start).is_ok());
        assert!(take("t:acme:2", start).is_ok());
        assert!(take("t:acme:1", start).is_ok());
        assert!(take("t:acme:1", start).is_err(), "two an hour");
        // Past the record's keep time the record is new, the allowance is not.
        assert!(take("t:acme:1", start + KEEP).is_err());
        assert!(take("t:acme:2", start + KEEP).is_ok());
    }
}
