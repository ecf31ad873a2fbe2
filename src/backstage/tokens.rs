//! Backstage user tokens per portal session (or per bearer token, `SignedIn::holder`), reused until shortly before they expire: in this process,
//! or in Redis when `sessions.store` is `redis`, so every instance reuses the token one of them got.
//!
//! In Redis a token is the string `<prefix>bt:<hash of the session id>` (the key name never holds the
//! session id), sealed with [`Redis::seal`] under that name, with a TTL that ends at its renew time. A
//! Redis failure never fails a request here: a failed read is a miss (the caller signs the user in to
//! Backstage again), a failed write or delete is logged. In front of Redis, each instance keeps what it
//! read or wrote for at most [`MAX_AGE`], so a burst of Backstage calls pays one round trip, and a token
//! another instance replaced is used here for at most that long.
//!
//! A service: it outlives requests and config reloads, and knows nothing of the server state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::auth::session::MAX_AGE;
use crate::clock::unix_now;
use crate::shared::{Redis, StoreError};

/// Renew a cached Backstage token this long before Backstage says it expires.
const TOKEN_MARGIN_SECS: u64 = 120;

/// Tokens kept in this process at most (the expired go first when it is reached).
const CAPACITY: usize = 20_000;

/// A token this process holds: the token, when to renew it (unix seconds), when it was read.
struct Held {
    token: String,
    renew_at: u64,
    fetched: Instant,
}

/// Backstage user tokens per portal session, until shortly before they expire.
#[derive(Default)]
pub struct BackstageTokens {
    /// All tokens (memory), or the ones read or written lately (Redis).
    held: Mutex<HashMap<String, Held>>,
    /// Where the tokens are shared, when every instance shares them.
    redis: Option<Arc<Redis>>,
    /// Portico's own service tokens (`service_token: signed`), per tenant: each instance signs its own.
    pub(crate) service: crate::assertion::ServiceTokens,
}

impl BackstageTokens {
    /// Tokens kept in `redis` when there is one, else in this process.
    pub fn shared_through(redis: Option<Arc<Redis>>) -> Self {
        BackstageTokens {
            held: Mutex::default(),
            redis,
            service: crate::assertion::ServiceTokens::default(),
        }
    }

    fn key(redis: &Redis, session: &str) -> String {
        redis.key(&format!("bt:{}", Redis::hash(session)))
    }

    /// The token this process holds for `session`, if it is still good (and, with Redis, fresh).
    fn held(&self, session: &str) -> Option<String> {
        let held = self.held.lock().ok()?;
        let entry = held.get(session)?;
        let fresh = self.redis.is_none() || entry.fetched.elapsed() < MAX_AGE;
        (fresh && entry.renew_at > unix_now()).then(|| entry.token.clone())
    }

    fn hold(&self, session: &str, token: String, renew_at: u64) {
        if let Ok(mut held) = self.held.lock() {
            if held.len() >= CAPACITY {
                let now = unix_now();
                held.retain(|_, entry| entry.renew_at > now);
                if held.len() >= CAPACITY {
                    held.clear();
                }
            }
            let fetched = Instant::now();
            held.insert(
                session.to_owned(),
                Held {
                    token,
                    renew_at,
                    fetched,
                },
            );
        }
    }

    pub(super) async fn get(&self, session: &str) -> Option<String> {
        if let Some(token) = self.held(session) {
            return Some(token);
        }
        let redis = self.redis.as_ref()?;
        let key = Self::key(redis, session);
        let read = async {
            let mut conn = redis.conn();
            let (sealed, ttl): (Option<Vec<u8>>, i64) = redis
                .run(redis::pipe().get(&key).ttl(&key).query_async(&mut conn))
                .await?;
            let Some(sealed) = sealed else {
                return Ok(None);
            };
            let plain = redis.open_sealed(&key, &sealed)?;
            let token = String::from_utf8(plain)
                .map_err(|_| StoreError("a stored Backstage token is not text".into()))?;
            Ok::<_, StoreError>(Some((token, ttl)))
        };
        match read.await {
            Ok(Some((token, ttl))) => {
                let renew_at = unix_now() + u64::try_from(ttl).unwrap_or(0);
                self.hold(session, token.clone(), renew_at);
                Some(token)
            }
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%error, "could not read a cached Backstage token; getting a new one");
                None
            }
        }
    }

    pub(super) async fn put(&self, session: &str, token: String, expires_in: u64) {
        let renew_in = expires_in.saturating_sub(TOKEN_MARGIN_SECS.min(expires_in / 2));
        self.hold(session, token.clone(), unix_now() + renew_in);
        let Some(redis) = &self.redis else {
            return;
        };
        if renew_in == 0 {
            return;
        }
        let key = Self::key(redis, session);
        let write = async {
            let sealed = redis.seal(&key, token.as_bytes())?;
            let mut conn = redis.conn();
            redis
                .run(
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(sealed)
                        .arg("EX")
                        .arg(renew_in)
                        .query_async::<()>(&mut conn),
                )
                .await
        };
        if let Err(error) = write.await {
            tracing::warn!(%error, "could not cache a Backstage token");
        }
    }

    pub(super) async fn forget(&self, session: &str) {
        if let Ok(mut held) = self.held.lock() {
            held.remove(session);
        }
        let Some(redis) = &self.redis else {
            return;
        };
        let mut conn = redis.conn();
        let deleted = redis
            .run(
                redis::cmd("DEL")
                    .arg(Self::key(redis, session))
                    .query_async::<i64>(&mut conn),
            )
            .await;
        if let Err(error) = deleted {
            tracing::warn!(%error, "could not drop a cached Backstage token");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::testing::Server;

    /// A token one instance got is reused by another, sealed at rest under a name that is not the
    /// session id, until its renew time; `forget` drops it everywhere.
    #[tokio::test]
    async fn a_token_is_shared_sealed_and_expires_at_its_renew_time() {
        let server = Server::start();
        let a = BackstageTokens::shared_through(Some(server.connect().await));
        let redis = server.connect().await;
        let b = BackstageTokens::shared_through(Some(redis.clone()));
        a.put("session-id-secret", "backstage-token-secret".into(), 3600)
            .await;
        assert_eq!(
            b.get("session-id-secret").await.as_deref(),
            Some("backstage-token-secret")
        );
        assert_eq!(b.get("another-session").await, None);
        let mut conn = redis.conn();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(keys.len(), 1);
        assert!(!keys[0].contains("session-id-secret"), "{keys:?}");
        let raw: Vec<u8> = redis::cmd("GET")
            .arg(&keys[0])
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("backstage-token-secret"));
        // Renewed 120 s before Backstage's expiry.
        let ttl: i64 = redis::cmd("TTL")
            .arg(&keys[0])
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!((3470..=3480).contains(&ttl), "{ttl}");
        b.forget("session-id-secret").await;
        // A's own copy serves it for at most MAX_AGE; then it asks Redis, which has forgotten it.
        tokio::time::sleep(MAX_AGE).await;
        assert_eq!(a.get("session-id-secret").await, None);
    }

    /// Redis gone: a read is a miss and a write is dropped, never a panic or an error for the request.
    #[tokio::test]
    async fn a_redis_that_is_down_is_a_cache_miss() {
        let mut server = Server::start();
        let tokens = BackstageTokens::shared_through(Some(server.connect().await));
        server.stop();
        assert_eq!(tokens.get("never-seen").await, None);
        tokens.put("s", "t".into(), 3600).await;
        tokens.forget("s").await;
    }

    #[tokio::test]
    async fn in_memory_tokens_are_reused_until_their_renew_time() {
        let tokens = BackstageTokens::default();
        tokens.put("s", "t".into(), 3600).await;
        assert_eq!(tokens.get("s").await.as_deref(), Some("t"));
        tokens.put("short", "t".into(), 0).await;
        assert_eq!(tokens.get("short").await, None);
        tokens.forget("s").await;
        assert_eq!(tokens.get("s").await, None);
    }
}
