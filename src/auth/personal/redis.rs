//! [`RedisTokens`]: personal access tokens in Redis (`sessions.store: redis`), shared by every
//! instance, so a token minted on one is verified, listed and revoked on all of them.
//!
//! Key layout (every name through [`Redis::key`], so it starts with the deployment's prefix):
//! - `<prefix>pat:<id>`: one string per token, the JSON of [`PersonalToken`] sealed with
//!   [`Redis::seal`] under that key name (a record copied to another id does not open), with a TTL that
//!   ends at the token's `expires_at`: Redis drops an expired token by itself. The id is public (it is
//!   in lists and audit lines); the secret's hash, the user and the token's name are only inside the seal.
//! - `<prefix>patu:<Redis::hash(tenant "\0" subject)>`: the user's index, a sorted set of token ids
//!   scored by expiry, so listing, the per-user limit and revoking a subject read one key instead of
//!   scanning the keyspace. The name is a hash, so key names name nobody. Its TTL ends with its
//!   longest-lived member. Members may outlive their record (its TTL ran out, the clocks of Redis and
//!   an instance differ); every reader drops expired and stale members as it goes.
//!
//! Steps that must not interleave with another instance's are Lua scripts, which Redis runs
//! atomically: an insert under the limit, a removal, a touch, revoking a subject. `WATCH`/`MULTI` is
//! not an option: the connection is one multiplexed connection shared by the whole process, so a
//! `WATCH` would cover other tasks' commands too. A script cannot open a seal, so a touch and a
//! removal read and open the record here and hand the script the sealed bytes they read: the script
//! writes only if the record is still exactly those bytes (compare and set), so a token revoked
//! meanwhile is never written back.
//!
//! This module must not panic when Redis is down or holds a record that does not open: every failure
//! is a [`StoreError`] and the caller decides (503, a refused token). It keeps tokens; it never decides
//! whether one is good for a request (expiry, tenant, secret: [`super::PersonalTokens::verify`]).

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use redis::Script;

use super::{PersonalToken, TokenStore};
use crate::clock::unix_now;
use crate::shared::{Redis, StoreError};

/// How often a removal reads the record again when a touch changed it between the read and the
/// delete. Touches come at most once a minute per token, so a second attempt practically always wins.
const REMOVE_ATTEMPTS: usize = 5;

/// Stores a token unless its user holds `limit` live ones. KEYS: record, user index.
/// ARGV: id, sealed record, expires_at, now, limit, the records' key prefix (`<prefix>pat:`).
/// Returns 1 if written, 0 at the limit, -1 if the id is taken (nothing written either way).
static INSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
local live = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if redis.call('EXISTS', ARGV[6] .. member) == 1 then
    live = live + 1
  else
    redis.call('ZREM', KEYS[2], member)
  end
end
if live >= tonumber(ARGV[5]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EXAT', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('EXPIREAT', KEYS[2], last[2])
return 1
",
    )
});

/// Removes a token if its record is still the one read. KEYS: record, user index.
/// ARGV: the sealed record read, id. Returns 1 if removed, 0 if the record changed or went.
static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
",
    )
});

/// Replaces a record, keeping its TTL, if it is still the one read (a removed token stays removed).
/// KEYS: record. ARGV: the sealed record read, the new sealed record. Returns 1 if written.
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
",
    )
});

/// Removes every record a user index names, and the index. KEYS: user index.
/// ARGV: the records' key prefix. Returns how many records existed.
static REMOVE_ALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local removed = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  removed = removed + redis.call('DEL', ARGV[1] .. member)
end
redis.call('DEL', KEYS[1])
return removed
",
    )
});

/// Tokens in the Redis every instance shares.
pub struct RedisTokens {
    redis: Arc<Redis>,
}

impl RedisTokens {
    pub fn new(redis: Arc<Redis>) -> Self {
        RedisTokens { redis }
    }

    /// What every record's key starts with; the scripts append ids to it.
    fn record_prefix(&self) -> String {
        self.redis.key("pat:")
    }

    fn record_key(&self, id: &str) -> String {
        self.redis.key(&format!("pat:{id}"))
    }

    /// The index of one user in one tenant: hashed, so the key name holds neither.
    fn index_key(&self, tenant: &str, subject: &str) -> String {
        let user = Redis::hash(&format!("{tenant}\0{subject}"));
        self.redis.key(&format!("patu:{user}"))
    }

    fn seal(&self, token: &PersonalToken) -> Result<Vec<u8>, StoreError> {
        let plain = serde_json::to_vec(token)
            .map_err(|e| StoreError(format!("could not serialise a personal token: {e}")))?;
        self.redis.seal(&self.record_key(&token.id), &plain)
    }

    /// Opens the record stored for `id`; one that names another id is refused too (the seal binds
    /// the key name already; this keeps a bug elsewhere from handing out the wrong token).
    fn open(&self, id: &str, sealed: &[u8]) -> Result<PersonalToken, StoreError> {
        let plain = self.redis.open_sealed(&self.record_key(id), sealed)?;
        let token: PersonalToken = serde_json::from_slice(&plain)
            .map_err(|e| StoreError(format!("a stored personal token is malformed: {e}")))?;
        if token.id != id {
            return Err(StoreError(
                "a stored personal token names another id".into(),
            ));
        }
        Ok(token)
    }

    /// The sealed record of `id` as stored, and the token in it.
    async fn read(&self, id: &str) -> Result<Option<(Vec<u8>, PersonalToken)>, StoreError> {
        let mut conn = self.redis.conn();
        let sealed: Option<Vec<u8>> = self
            .redis
            .run(
                redis::cmd("GET")
                    .arg(self.record_key(id))
                    .query_async(&mut conn),
            )
            .await?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let token = self.open(id, &sealed)?;
        Ok(Some((sealed, token)))
    }
}

#[async_trait]
impl TokenStore for RedisTokens {
    async fn insert(&self, token: PersonalToken, limit: usize) -> Result<bool, StoreError> {
        let sealed = self.seal(&token)?;
        let mut invocation = INSERT.prepare_invoke();
        invocation
            .key(self.record_key(&token.id))
            .key(self.index_key(&token.tenant, &token.subject))
            .arg(&token.id)
            .arg(sealed)
            // EXAT refuses 0; any time in the past makes Redis drop the record at once, as it should.
            .arg(token.expires_at.max(1))
            .arg(unix_now())
            .arg(limit)
            .arg(self.record_prefix());
        let mut conn = self.redis.conn();
        let written: i64 = self.redis.run(invocation.invoke_async(&mut conn)).await?;
        match written {
            1 => Ok(true),
            0 => Ok(false),
            _ => Err(StoreError(
                "a personal token with this id exists already".into(),
            )),
        }
    }

    async fn get(&self, id: &str) -> Result<Option<PersonalToken>, StoreError> {
        Ok(self.read(id).await?.map(|(_, token)| token))
    }

    async fn list(&self, tenant: &str, subject: &str) -> Result<Vec<PersonalToken>, StoreError> {
        let index = self.index_key(tenant, subject);
        let now = unix_now();
        let mut conn = self.redis.conn();
        let (ids,): (Vec<String>,) = self
            .redis
            .run(
                redis::pipe()
                    .atomic()
                    .cmd("ZREMRANGEBYSCORE")
                    .arg(&index)
                    .arg("-inf")
                    .arg(now)
                    .ignore()
                    .cmd("ZRANGE")
                    .arg(&index)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut conn),
            )
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.record_key(id)).collect();
        let sealed: Vec<Option<Vec<u8>>> = self
            .redis
            .run(redis::cmd("MGET").arg(&keys).query_async(&mut conn))
            .await?;
        let mut tokens = Vec::with_capacity(ids.len());
        let mut stale = Vec::new();
        for (id, sealed) in ids.iter().zip(sealed) {
            match sealed {
                Some(sealed) => tokens.push(self.open(id, &sealed)?),
                // Removed since, or its TTL ran out before the index's score said so. Ids are never
                // reused, so a member whose record is gone stays gone and dropping it races nothing.
                None => stale.push(id),
            }
        }
        if !stale.is_empty() {
            self.redis
                .run(
                    redis::cmd("ZREM")
                        .arg(&index)
                        .arg(stale)
                        .query_async::<i64>(&mut conn),
                )
                .await?;
        }
        tokens.retain(|token| {
            token.is_live(now) && token.tenant == tenant && token.subject == subject
        });
        Ok(tokens)
    }

    async fn remove(&self, id: &str) -> Result<Option<PersonalToken>, StoreError> {
        for _ in 0..REMOVE_ATTEMPTS {
            // The index's name is in the sealed record, so the record is read and opened first; a
            // record that does not open is an error and stays where it is.
            let Some((sealed, token)) = self.read(id).await? else {
                return Ok(None);
            };
            let mut invocation = REMOVE.prepare_invoke();
            invocation
                .key(self.record_key(id))
                .key(self.index_key(&token.tenant, &token.subject))
                .arg(sealed)
                .arg(id);
            let mut conn = self.redis.conn();
            let removed: i64 = self.redis.run(invocation.invoke_async(&mut conn)).await?;
            if removed == 1 {
                return Ok(Some(token));
            }
            // A touch rewrote the record (or someone removed it) in between: read it again.
        }
        Err(StoreError(format!(
            "personal token {id} kept changing while it was being removed"
        )))
    }

    async fn remove_for_subject(&self, tenant: &str, subject: &str) -> Result<usize, StoreError> {
        let mut invocation = REMOVE_ALL.prepare_invoke();
        invocation
            .key(self.index_key(tenant, subject))
            .arg(self.record_prefix());
        let mut conn = self.redis.conn();
        let removed: u64 = self.redis.run(invocation.invoke_async(&mut conn)).await?;
        usize::try_from(removed).map_err(|_| StoreError("an impossible count of tokens".into()))
    }

    async fn touch(&self, id: &str, now: u64) -> Result<(), StoreError> {
        let Some((sealed, mut token)) = self.read(id).await? else {
            return Ok(());
        };
        token.last_used_at = Some(now);
        let mut invocation = TOUCH.prepare_invoke();
        invocation
            .key(self.record_key(id))
            .arg(sealed)
            .arg(self.seal(&token)?);
        let mut conn = self.redis.conn();
        // 0: removed meanwhile (it stays removed) or touched by another instance at about the same
        // time (its use is recorded): nothing left to do either way.
        let _written: i64 = self.redis.run(invocation.invoke_async(&mut conn)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::personal::conformance::{self, token};
    use crate::shared::testing::Server;

    async fn keys(redis: &Redis) -> Vec<String> {
        let mut conn = redis.conn();
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut conn)
            .await
            .unwrap();
        keys.sort();
        keys
    }

    async fn ttl(redis: &Redis, key: &str) -> i64 {
        let mut conn = redis.conn();
        redis::cmd("TTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_redis_store_conforms() {
        let server = Server::start();
        conformance::check(&RedisTokens::new(server.connect().await)).await;
    }

    /// Key names hold the public id and hashes only; the record is sealed, so a dump shows neither
    /// the user, nor the secret's hash, nor what the token was called.
    #[tokio::test]
    async fn keys_name_nobody_and_records_are_sealed() {
        let server = Server::start();
        let redis = server.connect().await;
        let store = RedisTokens::new(redis.clone());
        let mut minted = token(
            "0123456789abcdef",
            "acme",
            "alice@example.com",
            unix_now() + 3600,
        );
        minted.name = "release script".into();
        minted.secret_hash = "5ec2e7".repeat(10);
        assert!(store.insert(minted.clone(), 5).await.unwrap());

        let keys = keys(&redis).await;
        let user = Redis::hash("acme\0alice@example.com");
        assert_eq!(
            keys,
            [
                "p:pat:0123456789abcdef".to_owned(),
                format!("p:patu:{user}")
            ]
        );
        for key in &keys {
            assert!(!key.contains("alice"), "{key}");
            assert!(!key.contains("acme"), "{key}");
            assert!(!key.contains("5ec2e7"), "{key}");
        }
        let mut conn = redis.conn();
        let raw: Vec<u8> = redis::cmd("GET")
            .arg(&keys[0])
            .query_async(&mut conn)
            .await
            .unwrap();
        let raw = String::from_utf8_lossy(&raw);
        for clear in ["release script", "alice", "5ec2e7", "acme"] {
            assert!(!raw.contains(clear), "`{clear}` in the stored record");
        }
        assert_eq!(store.get(&minted.id).await.unwrap(), Some(minted));
    }

    /// A record lives until its token's expiry and no longer, a touch keeps that, and the user's
    /// index lives as long as its longest-lived token.
    #[tokio::test]
    async fn records_expire_with_their_token_and_the_index_outlives_them() {
        let server = Server::start();
        let redis = server.connect().await;
        let store = RedisTokens::new(redis.clone());
        let now = unix_now();
        assert!(
            store
                .insert(token("long", "acme", "dev", now + 7200), 5)
                .await
                .unwrap()
        );
        assert!(
            store
                .insert(token("short", "acme", "dev", now + 600), 5)
                .await
                .unwrap()
        );
        let record = ttl(&redis, "p:pat:short").await;
        assert!((595..=600).contains(&record), "{record}");
        store.touch("short", now).await.unwrap();
        let touched = ttl(&redis, "p:pat:short").await;
        assert!(
            (595..=600).contains(&touched),
            "a touch keeps the TTL: {touched}"
        );
        let index = ttl(&redis, &store.index_key("acme", "dev")).await;
        assert!((7195..=7200).contains(&index), "{index}");
        let long = ttl(&redis, "p:pat:long").await;
        assert!(index >= long, "{index} < {long}");

        // An already expired token is never there to be read.
        assert!(
            store
                .insert(token("gone", "acme", "dev", 5), 5)
                .await
                .unwrap()
        );
        assert_eq!(store.get("gone").await.unwrap(), None);
        assert_eq!(store.list("acme", "dev").await.unwrap().len(), 2);
    }

    /// Two instances (two connections) share tokens, their removals and the limit.
    #[tokio::test]
    async fn two_instances_share_tokens() {
        let server = Server::start();
        let a = RedisTokens::new(server.connect().await);
        let b = RedisTokens::new(server.connect().await);
        let far = unix_now() + 3600;
        assert!(a.insert(token("t1", "acme", "dev", far), 2).await.unwrap());
        assert!(b.insert(token("t2", "acme", "dev", far), 2).await.unwrap());
        assert!(!a.insert(token("t3", "acme", "dev", far), 2).await.unwrap());
        assert_eq!(b.get("t1").await.unwrap().unwrap().id, "t1");
        assert_eq!(a.list("acme", "dev").await.unwrap().len(), 2);

        b.touch("t1", 99).await.unwrap();
        assert_eq!(a.get("t1").await.unwrap().unwrap().last_used_at, Some(99));
        assert_eq!(b.remove("t1").await.unwrap().unwrap().id, "t1");
        assert_eq!(a.get("t1").await.unwrap(), None);
        assert_eq!(a.remove("t1").await.unwrap(), None);
        assert_eq!(a.list("acme", "dev").await.unwrap().len(), 1);
        assert!(a.insert(token("t3", "acme", "dev", far), 2).await.unwrap());

        assert_eq!(a.remove_for_subject("acme", "dev").await.unwrap(), 2);
        assert!(b.list("acme", "dev").await.unwrap().is_empty());
        assert_eq!(b.get("t3").await.unwrap(), None);
        assert!(
            keys(&*server.connect().await).await.is_empty(),
            "index dropped"
        );
    }

    /// Creations racing on two instances never leave a user more than the limit.
    #[tokio::test]
    async fn concurrent_inserts_do_not_slip_under_the_limit() {
        let server = Server::start();
        let stores = [
            Arc::new(RedisTokens::new(server.connect().await)),
            Arc::new(RedisTokens::new(server.connect().await)),
        ];
        let far = unix_now() + 3600;
        let mut tasks = Vec::new();
        for i in 0..20 {
            let store = Arc::clone(&stores[i % 2]);
            tasks.push(tokio::spawn(async move {
                store
                    .insert(token(&format!("c{i:02}"), "acme", "dev", far), 5)
                    .await
                    .unwrap()
            }));
        }
        let mut stored = 0;
        for task in tasks {
            stored += usize::from(task.await.unwrap());
        }
        assert_eq!(stored, 5);
        assert_eq!(stores[0].list("acme", "dev").await.unwrap().len(), 5);
    }

    /// A record that does not open (tampered, or moved to another id) is an error, not a token, and
    /// a removal leaves it where it is.
    #[tokio::test]
    async fn a_record_that_does_not_open_is_an_error() {
        let server = Server::start();
        let redis = server.connect().await;
        let store = RedisTokens::new(redis.clone());
        let far = unix_now() + 3600;
        assert!(
            store
                .insert(token("a", "acme", "dev", far), 5)
                .await
                .unwrap()
        );
        let mut conn = redis.conn();
        let copied: i64 = redis::cmd("COPY")
            .arg("p:pat:a")
            .arg("p:pat:b")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(copied, 1);
        assert!(store.get("b").await.is_err(), "moved to another id");
        let () = redis::cmd("SET")
            .arg("p:pat:a")
            .arg("not a sealed record")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(store.get("a").await.is_err());
        assert!(store.list("acme", "dev").await.is_err());
        assert!(store.touch("a", 1).await.is_err());
        assert!(store.remove("a").await.is_err());
        assert!(store.get("a").await.is_err(), "still there");
    }

    /// Redis gone: every operation is a `StoreError`, never a panic.
    #[tokio::test]
    async fn a_redis_that_is_down_is_an_error_not_a_panic() {
        let mut server = Server::start();
        let store = RedisTokens::new(server.connect().await);
        let far = unix_now() + 3600;
        assert!(
            store
                .insert(token("a", "acme", "dev", far), 5)
                .await
                .unwrap()
        );
        server.stop();
        assert!(
            store
                .insert(token("b", "acme", "dev", far), 5)
                .await
                .is_err()
        );
        assert!(store.get("a").await.is_err());
        assert!(store.list("acme", "dev").await.is_err());
        assert!(store.touch("a", 1).await.is_err());
        assert!(store.remove("a").await.is_err());
        assert!(store.remove_for_subject("acme", "dev").await.is_err());
    }
}
