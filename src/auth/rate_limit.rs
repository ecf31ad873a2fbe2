//! The per-token rate limit of bearer requests (tenant `tokens.rate_limit`): a token bucket per bearer
//! token, in this instance. A token may burst to its whole allowance, then gets one request back every
//! `per / requests`; beyond it the caller learns when to come back (`Retry-After`).
//!
//! Per instance on purpose: a limit shared through Redis would put a round trip on every bearer
//! request, and the limit is a guard against a runaway script, not a quota (N instances allow up to N
//! times the rate). It never keeps more than [`CAPACITY`] buckets: full ones, which hold nothing a
//! fresh bucket would not, go first.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::RateLimit;

/// Buckets kept at most.
const CAPACITY: usize = 100_000;

struct Bucket {
    /// Requests left, fractional while refilling.
    left: f64,
    /// When `left` was last brought up to date.
    at: Instant,
}

/// The buckets of every bearer token seen lately, by `SignedIn::holder`.
#[derive(Default)]
pub struct TokenBuckets {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl TokenBuckets {
    /// Takes one request from `holder`'s bucket under `limit`; when it is empty, how long until it
    /// holds one again.
    pub fn take(&self, holder: &str, limit: RateLimit, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(limit.requests);
        let per_request = limit.per.as_secs_f64() / capacity;
        let mut buckets = self.buckets.lock();
        if buckets.len() >= CAPACITY && !buckets.contains_key(holder) {
            buckets.retain(|_, bucket| {
                bucket.left + now.saturating_duration_since(bucket.at).as_secs_f64() / per_request
                    < capacity
            });
            if buckets.len() >= CAPACITY {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(holder.to_owned()).or_insert(Bucket {
            left: capacity,
            at: now,
        });
        let refilled = now.saturating_duration_since(bucket.at).as_secs_f64() / per_request;
        bucket.left = (bucket.left + refilled).min(capacity);
        bucket.at = now;
        if bucket.left >= 1.0 {
            bucket.left -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.left) * per_request))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_bursts_to_its_limit_then_refills_evenly() {
        let buckets = TokenBuckets::default();
        let limit = RateLimit {
            requests: 3,
            per: Duration::from_secs(3),
        };
        let start = Instant::now();
        for _ in 0..3 {
            assert!(buckets.take("a", limit, start).is_ok());
        }
        let wait = buckets.take("a", limit, start).unwrap_err();
        assert!(
            (Duration::from_millis(900)..=Duration::from_secs(1)).contains(&wait),
            "{wait:?}"
        );
        // Another token has its own bucket.
        assert!(buckets.take("b", limit, start).is_ok());
        let later = start + Duration::from_secs(1);
        assert!(buckets.take("a", limit, later).is_ok());
        assert!(buckets.take("a", limit, later).is_err());
    }
}
