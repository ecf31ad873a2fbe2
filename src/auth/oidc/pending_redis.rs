//! [`RedisPending`]: logins in flight in Redis, shared by every instance, so the IdP's callback may land
//! on any instance and a replayed state fails on all of them.
//!
//! One login is the hash `<prefix>pl:<tag>`, where the tag is [`Redis::hash`] of the state: the key
//! names Redis shows never hold a state (or the client's address: clients are hashed with their
//! tenant). Fields: `rec`, the login (PKCE verifier, nonce, binding, return path, start time) as JSON
//! sealed with [`Redis::seal`] under the key's name; `t` and `m`, the plain tenant tag and index member,
//! so the take script can clean the indexes without opening the record. Its TTL is the login timeout.
//!
//! The bounds of [`super::pending::PendingLogins`] hold here too, per tenant (tag `T`) and client (tag
//! `C`), in three sorted sets that expire with the tenant's last login: `plt:T` (every login of the
//! tenant, member `C:tag`, scored by start time in ms, so timed-out entries are trimmed by score),
//! `plc:T:C` (the client's logins, member `tag`, scored by start time made strictly increasing, so
//! "oldest" is well defined even for logins started in one millisecond) and `pln:T` (how many logins
//! each client holds, for the fair-share eviction: the client with the most gives up its oldest).
//! Starting a login ([`INSERT`]) and taking one ([`TAKE`]) are Lua scripts, which Redis runs
//! atomically: two instances cannot both take one state, nor slip past a bound together.
//!
//! Must not panic or half-write when Redis fails: every failure is an error the caller turns into 503.

use std::net::IpAddr;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Script;
use serde::{Deserialize, Serialize};

use super::AuthError;
use super::pending::{ClientKey, LOGIN_TIMEOUT, PendingLimits, PendingLogin};
use crate::config::TenantId;
use crate::shared::{Redis, StoreError};

/// Starts a login within the bounds.
/// KEYS: 1 the login, 2 the tenant's logins, 3 this client's logins, 4 the tenant's per-client counts.
/// ARGV: 1 state tag, 2 sealed record, 3 now (ms), 4 timeout (ms), 5 per-client bound, 6 per-tenant
/// bound, 7 client tag, 8 key prefix, 9 tenant tag.
/// Returns `{'ok'}`, `{'client', <start of the client's oldest login, ms>}` or `{'tenant'}`.
static INSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local stag, now, timeout = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
local ctag, prefix, ttag = ARGV[7], ARGV[8], ARGV[9]
local function drop(member)
  if redis.call('ZREM', KEYS[2], member) == 0 then return end
  local sep = string.find(member, ':', 1, true)
  if not sep then return end
  local client, state = string.sub(member, 1, sep - 1), string.sub(member, sep + 1)
  redis.call('ZREM', prefix .. 'plc:' .. ttag .. ':' .. client, state)
  redis.call('DEL', prefix .. 'pl:' .. state)
  if tonumber(redis.call('ZINCRBY', KEYS[4], -1, client)) <= 0 then
    redis.call('ZREM', KEYS[4], client)
  end
end
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - timeout)) do
  drop(member)
end
local own = redis.call('ZCARD', KEYS[3])
if own >= tonumber(ARGV[5]) then
  local oldest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  return {'client', tostring(oldest[2] or now)}
end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[6]) then
  local top = redis.call('ZREVRANGE', KEYS[4], 0, 0, 'WITHSCORES')
  if not top[1] or tonumber(top[2]) <= own then return {'tenant'} end
  local oldest = redis.call('ZRANGE', prefix .. 'plc:' .. ttag .. ':' .. top[1], 0, 0)
  if not oldest[1] then return {'tenant'} end
  drop(top[1] .. ':' .. oldest[1])
end
local member = ctag .. ':' .. stag
redis.call('HSET', KEYS[1], 'rec', ARGV[2], 't', ttag, 'm', member)
redis.call('PEXPIRE', KEYS[1], timeout)
redis.call('ZADD', KEYS[2], now, member)
-- A client's logins are ordered by start, and two started in the same millisecond must still have
-- an order (or the fair-share eviction would pick by hash): each gets at least the previous one's + 1 ms.
local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
local score = now
if last[2] and tonumber(last[2]) >= score then score = tonumber(last[2]) + 1 end
redis.call('ZADD', KEYS[3], score, stag)
redis.call('ZINCRBY', KEYS[4], 1, ctag)
for i = 2, 4 do redis.call('PEXPIRE', KEYS[i], timeout) end
return {'ok'}
",
    )
});

/// Takes a login out for good. KEYS: 1 the login. ARGV: 1 key prefix.
/// Returns the sealed record, or nil when there is no such login (unknown, used or timed out).
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local fields = redis.call('HMGET', KEYS[1], 'rec', 't', 'm')
if not fields[1] then return false end
redis.call('DEL', KEYS[1])
local prefix, ttag, member = ARGV[1], fields[2], fields[3]
if ttag and member and redis.call('ZREM', prefix .. 'plt:' .. ttag, member) == 1 then
  local sep = string.find(member, ':', 1, true)
  if sep then
    local client, state = string.sub(member, 1, sep - 1), string.sub(member, sep + 1)
    redis.call('ZREM', prefix .. 'plc:' .. ttag .. ':' .. client, state)
    local counts = prefix .. 'pln:' .. ttag
    if tonumber(redis.call('ZINCRBY', counts, -1, client)) <= 0 then
      redis.call('ZREM', counts, client)
    end
  end
end
return fields[1]
",
    )
});

/// The sealed part of a login.
#[derive(Serialize, Deserialize)]
struct Record {
    tenant: String,
    client: IpAddr,
    pkce_verifier: String,
    nonce: String,
    return_to: String,
    browser_binding: String,
    /// Unix milliseconds.
    started: u64,
}

/// Logins in flight in Redis (see the module documentation).
pub(crate) struct RedisPending {
    redis: Arc<Redis>,
}

fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |elapsed| {
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
    })
}

impl RedisPending {
    pub(crate) fn new(redis: Arc<Redis>) -> Self {
        RedisPending { redis }
    }

    /// The key of the login with `state`: a hash of it, never the state.
    fn login_key(&self, state: &str) -> String {
        self.redis.key(&format!("pl:{}", Redis::hash(state)))
    }

    pub(super) async fn insert(
        &self,
        state: &str,
        login: PendingLogin,
        limits: PendingLimits,
    ) -> Result<(), AuthError> {
        let unavailable = AuthError::SignInStoreUnavailable;
        let tenant_tag = Redis::hash(login.tenant.as_str());
        let client_tag = Redis::hash(&format!("{}\0{}", login.tenant, login.client.address()));
        let key = self.login_key(state);
        let started = unix_millis(login.started);
        let record = Record {
            tenant: login.tenant.as_str().to_owned(),
            client: login.client.address(),
            pkce_verifier: login.pkce_verifier,
            nonce: login.nonce,
            return_to: login.return_to,
            browser_binding: login.browser_binding,
            started,
        };
        let plain = serde_json::to_vec(&record)
            .map_err(|e| unavailable(StoreError(format!("could not serialise a login: {e}"))))?;
        let sealed = self.redis.seal(&key, &plain).map_err(unavailable)?;
        let timeout = u64::try_from(LOGIN_TIMEOUT.as_millis()).unwrap_or(u64::MAX);
        let mut invocation = INSERT.prepare_invoke();
        invocation
            .key(&key)
            .key(self.redis.key(&format!("plt:{tenant_tag}")))
            .key(self.redis.key(&format!("plc:{tenant_tag}:{client_tag}")))
            .key(self.redis.key(&format!("pln:{tenant_tag}")))
            .arg(Redis::hash(state))
            .arg(sealed)
            .arg(started)
            .arg(timeout)
            .arg(limits.per_client)
            .arg(limits.per_tenant)
            .arg(&client_tag)
            .arg(self.redis.key(""))
            .arg(&tenant_tag);
        let mut conn = self.redis.conn();
        let answer: Vec<String> = self
            .redis
            .run(invocation.invoke_async(&mut conn))
            .await
            .map_err(unavailable)?;
        match answer.first().map(String::as_str) {
            Some("ok") => Ok(()),
            Some("client") => {
                // Retry when this client's oldest login times out (at most the login timeout).
                let oldest = answer
                    .get(1)
                    .and_then(|ms| ms.parse::<f64>().ok())
                    .map_or(started, |ms| ms as u64);
                let age = Duration::from_millis(started.saturating_sub(oldest));
                Err(AuthError::TooManySignIns {
                    retry_after: LOGIN_TIMEOUT.saturating_sub(age).as_secs().max(1),
                })
            }
            Some("tenant") => Err(AuthError::TooManySignIns {
                retry_after: LOGIN_TIMEOUT.as_secs(),
            }),
            _ => Err(unavailable(StoreError(format!(
                "unexpected answer to a sign-in: {answer:?}"
            )))),
        }
    }

    pub(super) async fn take(&self, state: &str) -> Result<Option<PendingLogin>, StoreError> {
        let key = self.login_key(state);
        let mut invocation = TAKE.prepare_invoke();
        invocation.key(&key).arg(self.redis.key(""));
        let mut conn = self.redis.conn();
        let sealed: Option<Vec<u8>> = self.redis.run(invocation.invoke_async(&mut conn)).await?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let plain = self.redis.open_sealed(&key, &sealed)?;
        let record: Record = serde_json::from_slice(&plain)
            .map_err(|e| StoreError(format!("a stored login is malformed: {e}")))?;
        Ok(Some(PendingLogin {
            tenant: TenantId::new(&record.tenant),
            client: ClientKey::of(record.client),
            pkce_verifier: record.pkce_verifier,
            nonce: record.nonce,
            return_to: record.return_to,
            browser_binding: record.browser_binding,
            started: UNIX_EPOCH + Duration::from_millis(record.started),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::testing::Server;

    fn login(tenant: &str, client: &str) -> PendingLogin {
        PendingLogin {
            tenant: TenantId::new(tenant),
            client: ClientKey::of(client.parse().unwrap()),
            pkce_verifier: "verifier-secret".into(),
            nonce: "nonce-secret".into(),
            return_to: "/return-secret".into(),
            browser_binding: "binding-secret".into(),
            started: SystemTime::now(),
        }
    }

    async fn keys(redis: &Redis) -> Vec<String> {
        let mut conn = redis.conn();
        redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut conn)
            .await
            .unwrap()
    }

    const WIDE: PendingLimits = PendingLimits {
        per_client: 100,
        per_tenant: 1000,
    };

    /// A login started on one instance finishes on another, once: a replay fails on both.
    #[tokio::test]
    async fn a_state_is_taken_once_across_instances() {
        let server = Server::start();
        let a = RedisPending::new(server.connect().await);
        let b = RedisPending::new(server.connect().await);
        a.insert("state-1", login("acme", "10.0.0.1"), WIDE)
            .await
            .unwrap();
        let taken = b.take("state-1").await.unwrap().expect("found on B");
        assert_eq!(taken.tenant, TenantId::new("acme"));
        assert_eq!(taken.client, ClientKey::of("10.0.0.1".parse().unwrap()));
        assert_eq!(taken.pkce_verifier, "verifier-secret");
        assert_eq!(taken.nonce, "nonce-secret");
        assert_eq!(taken.return_to, "/return-secret");
        assert_eq!(taken.browser_binding, "binding-secret");
        assert!(taken.age() < Duration::from_secs(5));
        assert!(a.take("state-1").await.unwrap().is_none(), "replay on A");
        assert!(b.take("state-1").await.unwrap().is_none(), "replay on B");
        assert!(a.take("never-issued").await.unwrap().is_none());
        // Nothing is left behind: the indexes forget a taken login.
        assert!(
            keys(&a.redis).await.is_empty(),
            "{:?}",
            keys(&a.redis).await
        );
    }

    /// Two instances racing to take one state: exactly one gets it.
    #[tokio::test]
    async fn racing_callbacks_take_a_state_once() {
        let server = Server::start();
        let a = Arc::new(RedisPending::new(server.connect().await));
        let b = Arc::new(RedisPending::new(server.connect().await));
        for n in 0..20 {
            a.insert(&format!("s{n}"), login("acme", "10.0.0.1"), WIDE)
                .await
                .unwrap();
        }
        let mut tasks = Vec::new();
        for n in 0..20 {
            for store in [&a, &b] {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    store.take(&format!("s{n}")).await.unwrap().is_some()
                }));
            }
        }
        let mut taken = 0;
        for task in tasks {
            taken += usize::from(task.await.unwrap());
        }
        assert_eq!(taken, 20);
    }

    /// A Redis dump holds neither the state nor what the callback needs (PKCE verifier, nonce,
    /// binding), nor the client's address; a record does not open under another state's key.
    #[tokio::test]
    async fn logins_are_sealed_at_rest_and_keys_hold_no_state() {
        let server = Server::start();
        let redis = server.connect().await;
        let pending = RedisPending::new(redis.clone());
        pending
            .insert("the-state-value", login("acme", "192.0.2.77"), WIDE)
            .await
            .unwrap();
        let mut conn = redis.conn();
        let names = keys(&redis).await;
        assert_eq!(names.len(), 4, "{names:?}");
        let mut dump = names.join(" ");
        for name in &names {
            let kind: String = redis::cmd("TYPE")
                .arg(name)
                .query_async(&mut conn)
                .await
                .unwrap();
            let values: Vec<Vec<u8>> = match kind.as_str() {
                "hash" => redis::cmd("HVALS").arg(name).query_async(&mut conn).await,
                _ => {
                    redis::cmd("ZRANGE")
                        .arg(name)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES")
                        .query_async(&mut conn)
                        .await
                }
            }
            .unwrap();
            for value in values {
                dump.push(' ');
                dump.push_str(&String::from_utf8_lossy(&value));
            }
        }
        for secret in [
            "the-state-value",
            "verifier-secret",
            "nonce-secret",
            "binding-secret",
            "return-secret",
            "192.0.2.77",
        ] {
            assert!(!dump.contains(secret), "{secret} in the clear: {dump}");
        }
        // Moved to another state's key, the record does not open: an error, not a login.
        let _: () = redis::cmd("COPY")
            .arg(pending.login_key("the-state-value"))
            .arg(pending.login_key("other-state"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(pending.take("other-state").await.is_err());
        assert!(pending.take("the-state-value").await.unwrap().is_some());
    }

    /// Everything a login writes expires with the login timeout.
    #[tokio::test]
    async fn every_key_expires_with_the_login_timeout() {
        let server = Server::start();
        let redis = server.connect().await;
        let pending = RedisPending::new(redis.clone());
        pending
            .insert("s", login("acme", "10.0.0.1"), WIDE)
            .await
            .unwrap();
        let mut conn = redis.conn();
        for name in keys(&redis).await {
            let ttl: i64 = redis::cmd("PTTL")
                .arg(&name)
                .query_async(&mut conn)
                .await
                .unwrap();
            assert!((590_000..=600_000).contains(&ttl), "{name}: {ttl} ms");
        }
    }

    /// The memory store's rules, on Redis: a flooding client gets 429 with a Retry-After, another
    /// tenant counts apart, a full tenant takes from the biggest holder, never from someone with fewer.
    #[tokio::test]
    async fn a_flood_from_one_client_neither_evicts_others_nor_grows() {
        let server = Server::start();
        let pending = RedisPending::new(server.connect().await);
        let limits = PendingLimits {
            per_client: 3,
            per_tenant: 5,
        };
        pending
            .insert("victim", login("acme", "10.0.0.9"), limits)
            .await
            .unwrap();
        for n in 0..3 {
            pending
                .insert(&format!("flood-{n}"), login("acme", "10.0.0.1"), limits)
                .await
                .unwrap();
        }
        let refused = pending
            .insert("flood-3", login("acme", "10.0.0.1"), limits)
            .await;
        assert!(
            matches!(refused, Err(AuthError::TooManySignIns { retry_after }) if (590..=600).contains(&retry_after)),
            "{refused:?}"
        );
        pending
            .insert("other", login("globex", "10.0.0.1"), limits)
            .await
            .unwrap();
        pending
            .insert("late", login("acme", "10.0.0.7"), limits)
            .await
            .unwrap();
        pending
            .insert("later", login("acme", "10.0.0.8"), limits)
            .await
            .unwrap();
        assert!(
            pending.take("flood-0").await.unwrap().is_none(),
            "the biggest holder gave way"
        );
        assert!(pending.take("victim").await.unwrap().is_some());
        for state in ["flood-1", "flood-2", "late", "later", "other"] {
            assert!(pending.take(state).await.unwrap().is_some(), "{state}");
        }
        assert!(keys(&pending.redis).await.is_empty());
    }

    #[tokio::test]
    async fn a_full_tenant_refuses_the_client_that_already_holds_the_most() {
        let server = Server::start();
        let pending = RedisPending::new(server.connect().await);
        let limits = PendingLimits {
            per_client: 10,
            per_tenant: 2,
        };
        pending
            .insert("a", login("acme", "10.0.0.1"), limits)
            .await
            .unwrap();
        pending
            .insert("b", login("acme", "10.0.0.2"), limits)
            .await
            .unwrap();
        assert!(matches!(
            pending.insert("c", login("acme", "10.0.0.1"), limits).await,
            Err(AuthError::TooManySignIns { .. })
        ));
        assert!(pending.take("a").await.unwrap().is_some());
        // A taken login frees its place at once.
        pending
            .insert("c", login("acme", "10.0.0.1"), limits)
            .await
            .unwrap();
        assert!(pending.take("b").await.unwrap().is_some());
        assert!(pending.take("c").await.unwrap().is_some());
    }

    /// Timed-out logins are trimmed from the bounds (by their start time) and cannot be taken.
    #[tokio::test]
    async fn timed_out_logins_free_their_place() {
        let server = Server::start();
        let pending = RedisPending::new(server.connect().await);
        let limits = PendingLimits {
            per_client: 1,
            per_tenant: 10,
        };
        let mut old = login("acme", "10.0.0.1");
        old.started = SystemTime::now() - LOGIN_TIMEOUT - Duration::from_secs(1);
        pending.insert("old", old, limits).await.unwrap();
        pending
            .insert("new", login("acme", "10.0.0.1"), limits)
            .await
            .unwrap();
        assert!(pending.take("old").await.unwrap().is_none());
        assert!(pending.take("new").await.unwrap().is_some());
    }

    /// Sign-ins of one client racing on two instances never slip past its bound.
    #[tokio::test]
    async fn concurrent_sign_ins_do_not_slip_past_the_bounds() {
        let server = Server::start();
        let instances = [
            Arc::new(RedisPending::new(server.connect().await)),
            Arc::new(RedisPending::new(server.connect().await)),
        ];
        let limits = PendingLimits {
            per_client: 3,
            per_tenant: 100,
        };
        let mut tasks = Vec::new();
        for n in 0..30 {
            let pending = instances[n % 2].clone();
            tasks.push(tokio::spawn(async move {
                pending
                    .insert(&format!("s{n}"), login("acme", "10.0.0.1"), limits)
                    .await
                    .is_ok()
            }));
        }
        let mut accepted = 0;
        for task in tasks {
            accepted += usize::from(task.await.unwrap());
        }
        assert_eq!(accepted, 3);
    }

    /// Redis gone: starting a sign-in is "sign-in unavailable", a callback an error; nothing panics.
    #[tokio::test]
    async fn a_redis_that_is_down_is_an_error_not_a_panic() {
        let mut server = Server::start();
        let pending = RedisPending::new(server.connect().await);
        pending
            .insert("s", login("acme", "10.0.0.1"), WIDE)
            .await
            .unwrap();
        server.stop();
        assert!(matches!(
            pending.insert("t", login("acme", "10.0.0.1"), WIDE).await,
            Err(AuthError::SignInStoreUnavailable(_))
        ));
        assert!(pending.take("s").await.is_err());
    }
}
