//! The per-token rate limit of bearer requests (tenant `tokens.rate_limit`): a token bucket. A token
//! may burst to its whole allowance, then gets one request back every `per / requests`; beyond it
//! the caller learns when to come back (`Retry-After`). Each token's bucket is kept with the rest of
//! what this instance keeps per token (`bearer_records`).
//!
//! Per instance on purpose: a limit shared through Redis would put a round trip on every bearer
//! request, and the limit is a guard against a runaway script, not a quota (N instances allow up to N
//! times the rate).

use std::time::{Duration, Instant};

use crate::config::RateLimit;

/// One token's allowance.
pub(super) struct Bucket {
    /// Requests left, fractional while refilling.
    left: f64,
    /// When `left` was last brought up to date.
    at: Instant,
}

impl Bucket {
    /// A full bucket under `limit`.
    pub(super) fn full(limit: RateLimit, now: Instant) -> Bucket {
        Bucket {
            left: f64::from(limit.requests),
            at: now,
        }
    }

    /// Takes one request under `limit`; when the bucket is empty, how long until it holds one again.
    pub(super) fn take(&mut self, limit: RateLimit, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(limit.requests);
        let per_request = limit.per.as_secs_f64() / capacity;
        let refilled = now.saturating_duration_since(self.at).as_secs_f64() / per_request;
        self.left = (self.left + refilled).min(capacity);
        self.at = now;
        if self.left >= 1.0 {
            self.left -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.left) * per_request))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_bursts_to_its_limit_then_refills_evenly() {
        let limit = RateLimit {
            requests: 3,
            per: Duration::from_secs(3),
        };
        let start = Instant::now();
        let mut bucket = Bucket::full(limit, start);
        for _ in 0..3 {
            assert!(bucket.take(limit, start).is_ok());
        }
        let wait = bucket.take(limit, start).unwrap_err();
        assert!(
            (Duration::from_millis(900)..=Duration::from_secs(1)).contains(&wait),
            "{wait:?}"
        );
        let later = start + Duration::from_secs(1);
        assert!(bucket.take(limit, later).is_ok());
        assert!(bucket.take(limit, later).is_err());
    }
}
