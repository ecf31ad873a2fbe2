//! Backstage user tokens per portal session, reused until shortly before they expire: in this process,
//! or in Redis when `sessions.store` is `redis`, so every instance reuses the token one of them got.
//!
//! In Redis a token is the string `<prefix>bt:<hash of the session id>` (the key name never holds the
//! session id), sealed with [`Redis::seal`] under that name, with a TTL that ends at its renew time. A
//! Redis failure never fails a request here: a failed read is a miss (the caller signs the user in to
//! Backstage again), a failed write or delete is logged.
//!
//! A service: it outlives requests and config reloads, and knows nothing of the server state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::clock::unix_now;
use crate::shared::{Redis, StoreError};

/// Renew a cached Backstage token this long before Backstage says it expires.
const TOKEN_MARGIN_SECS: u64 = 120;

/// Backstage user tokens per portal session, until shortly before they expire.
#[derive(Default)]
pub struct BackstageTokens {
    tokens: Mutex<HashMap<String, (String, u64)>>,
    /// Where the tokens are kept instead of `tokens`, when every instance shares them.
    redis: Option<Arc<Redis>>,
}

impl BackstageTokens {
    /// Tokens kept in `redis` when there is one, else in this process.
    pub fn shared_through(redis: Option<Arc<Redis>>) -> Self {
        BackstageTokens {
            tokens: Mutex::default(),
            redis,
        }
    }

    fn key(redis: &Redis, session: &str) -> String {
        redis.key(&format!("bt:{}", Redis::hash(session)))
    }

    pub(super) async fn get(&self, session: &str) -> Option<String> {
        let Some(redis) = &self.redis else {
            let tokens = self.tokens.lock().ok()?;
            let (token, renew_at) = tokens.get(session)?;
            return (*renew_at > unix_now()).then(|| token.clone());
        };
        let key = Self::key(redis, session);
        let read = async {
            let mut conn = redis.conn();
            let sealed: Option<Vec<u8>> = redis
                .run(redis::cmd("GET").arg(&key).query_async(&mut conn))
                .await?;
            sealed
                .map(|sealed| {
                    let plain = redis.open_sealed(&key, &sealed)?;
                    String::from_utf8(plain)
                        .map_err(|_| StoreError("a stored Backstage token is not text".into()))
                })
                .transpose()
        };
        match read.await {
            Ok(token) => token,
            Err(error) => {
                tracing::warn!(%error, "could not read a cached Backstage token; getting a new one");
                None
            }
        }
    }

    pub(super) async fn put(&self, session: &str, token: String, expires_in: u64) {
        let renew_in = expires_in.saturating_sub(TOKEN_MARGIN_SECS.min(expires_in / 2));
        let Some(redis) = &self.redis else {
            if let Ok(mut tokens) = self.tokens.lock() {
                let now = unix_now();
                if tokens.len() > 20_000 {
                    tokens.retain(|_, (_, renew_at)| *renew_at > now);
                }
                tokens.insert(session.to_owned(), (token, now + renew_in));
            }
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
        let Some(redis) = &self.redis else {
            if let Ok(mut tokens) = self.tokens.lock() {
                tokens.remove(session);
            }
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
    use std::net::TcpListener;
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use super::*;
    use crate::config::RedisSettings;

    /// A redis-server of this test's own on a free loopback port, without persistence; killed on drop.
    struct Server(Child, u16);

    impl Server {
        fn start() -> Server {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free loopback port");
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server starts (scripts/ensure-redis.sh)");
            Server(child, port)
        }

        /// One "instance": its own connection, once the server answers (bounded: 10 s).
        async fn instance(&self) -> Arc<Redis> {
            let redis = Redis::open(&RedisSettings {
                url: format!("redis://127.0.0.1:{}/0", self.1),
                username: None,
                password: None,
                key: [7; 32],
                prefix: "p:".to_owned(),
                ca: None,
                outage_grace: Duration::from_secs(60),
            })
            .expect("settings accepted");
            for _ in 0..100 {
                let mut conn = redis.conn();
                if redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
                {
                    return redis;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("redis-server did not answer");
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// A token one instance got is reused by another, sealed at rest under a name that is not the
    /// session id, until its renew time; `forget` drops it everywhere.
    #[tokio::test]
    async fn a_token_is_shared_sealed_and_expires_at_its_renew_time() {
        let server = Server::start();
        let a = BackstageTokens::shared_through(Some(server.instance().await));
        let redis = server.instance().await;
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
        assert_eq!(a.get("session-id-secret").await, None);
    }

    /// Redis gone: a read is a miss and a write is dropped, never a panic or an error for the request.
    #[tokio::test]
    async fn a_redis_that_is_down_is_a_cache_miss() {
        let mut server = Server::start();
        let tokens = BackstageTokens::shared_through(Some(server.instance().await));
        tokens.put("s", "t".into(), 3600).await;
        let _ = server.0.kill();
        let _ = server.0.wait();
        assert_eq!(tokens.get("s").await, None);
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
