//! [`RedisStore`]: sessions in Redis, shared by every instance of portico, so instances are disposable.
//!
//! Each session is one hash, `<prefix>s:<tag>`, where the tag is a one-way hash of the session id
//! ([`Redis::hash`]): key names, index members and invalidation messages never hold the id a browser
//! presents, so a Redis dump or `MONITOR` hands out no session. The hash has `rec` (the record, id
//! included, JSON sealed with AES-256-GCM with the key name bound in, so a record cannot be moved to
//! another key), `seen` and `created` (plain unix seconds: not secret, and Lua reads them for TTLs and
//! eviction) and `jar` (the cookie jars, sealed too). Jars are fields of the session's hash, so
//! whatever ends a session ends its jars. Indexes: `<prefix>active` (a sorted set of tags, last
//! activity as score: the total limit and the purge), `<prefix>u:<hash>` (a tenant's subject's
//! sessions: the per-user limit, logout by subject) and `<prefix>sid:<hash>` (logout by the IdP's
//! `sid`). Index names hash the tenant, subject and sid, so key names leak no user. Index entries may
//! outlive their session (Redis TTLs end sessions on their own); every reader checks the session still
//! exists and drops stale entries.
//!
//! Redis TTLs follow the idle and absolute timeouts plus [`TTL_GRACE_SECS`]: [`super::Sessions`]
//! enforces the exact timeouts on every lookup; the TTL is the backstop that frees what nobody looks up
//! again. Steps that must not interleave with another instance's (update only if present, a new
//! sign-in with its limits, a touch) are Lua scripts, which Redis runs atomically. Every write that
//! ends or changes a session publishes its tag on [`INVALIDATE_CHANNEL`], so the other instances'
//! caches ([`super::cache`]) drop it.
//!
//! This module must not panic when Redis is down or answers nonsense: every failure is a
//! [`StoreError`], and the caller decides (503, sign-in unavailable). It knows nothing about
//! timeouts' meaning or tenants beyond what the trait's operations are told.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use redis::Script;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    Activity, Eviction, EvictionReason, OidcTokens, PreviewOverride, Previews, PrincipalSlot,
    Session, SessionId, SessionLimits, SessionStore, StoreError, User,
};
use crate::clock::unix_now;
use crate::config::{AppId, SessionSettings, TenantId};
use crate::jar::{AppJar, SessionJars, SetCookie};
use crate::shared::Redis;
use crate::token::hex;

/// How long Redis keeps a session beyond its idle or absolute timeout. Lookups enforce the exact
/// timeouts (and remove what has expired); the grace lets them tell "expired" from "unknown" and lets
/// the purge count what it ends, like the memory store.
pub const TTL_GRACE_SECS: u64 = 120;

/// The channel on which a session's tag is published when it ends or changes.
pub const INVALIDATE_CHANNEL: &str = "invalidate";

/// Sessions in Redis, on the process's one multiplexed connection (`redis::aio::ConnectionManager`,
/// which reconnects by itself).
pub struct RedisStore {
    redis: Arc<Redis>,
    /// The timeouts the TTLs follow; a reload changes them ([`SessionStore::apply`]).
    idle_secs: AtomicU64,
    absolute_secs: AtomicU64,
    /// The number of sessions as of the last purge (-1: not counted yet), for the metrics.
    counted: AtomicI64,
}

/// The sealed part of a session: everything but the plain `seen`/`created` fields.
#[derive(Serialize, Deserialize)]
struct Record {
    id: String,
    tenant: String,
    subject: String,
    name: String,
    email: String,
    groups: Vec<String>,
    csrf_token: String,
    oidc: Option<Tokens>,
    /// Absent in records written before previews existed, and when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    previews: Vec<StoredPreview>,
}

#[derive(Serialize, Deserialize)]
struct StoredPreview {
    app: String,
    upstream: String,
    since: u64,
    until: u64,
}

#[derive(Serialize, Deserialize)]
struct Tokens {
    access_token: String,
    expires_at: u64,
    refresh_at: u64,
    refresh_token: Option<String>,
    id_token: String,
    sid: Option<String>,
    refresh_deferred_since: Option<u64>,
}

/// Stores or replaces a session's fields and indexes. KEYS: session, active, user index[, sid index].
/// ARGV: id, rec, seen, created, ttl, index ttl, only-if-present (1/0). Returns 1 if written.
static WRITE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if ARGV[7] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'rec', ARGV[2], 'seen', ARGV[3], 'created', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
for i = 3, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[1])
  redis.call('EXPIRE', KEYS[i], ARGV[6])
end
return 1
",
    )
});

/// A new sign-in: [`WRITE`], then ends sessions beyond the limits, least recently active first, never
/// the new one. KEYS as [`WRITE`]; ARGV as [`WRITE`] then per-user limit, total limit, key prefix.
/// Returns a flat list: reason (`u` or `t`), id, sealed record, seen, created, for each ended session.
static INSERT_NEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local id, prefix = ARGV[1], ARGV[10]
redis.call('HSET', KEYS[1], 'rec', ARGV[2], 'seen', ARGV[3], 'created', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[3], id)
for i = 3, #KEYS do
  redis.call('SADD', KEYS[i], id)
  redis.call('EXPIRE', KEYS[i], ARGV[6])
end
local ended = {}
local function finish(victim, reason)
  local key = prefix .. 's:' .. victim
  local fields = redis.call('HMGET', key, 'rec', 'seen', 'created')
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[2], victim)
  redis.call('SREM', KEYS[3], victim)
  if fields[1] then
    table.insert(ended, reason)
    table.insert(ended, victim)
    table.insert(ended, fields[1])
    table.insert(ended, fields[2] or '0')
    table.insert(ended, fields[3] or '0')
  end
end
local own = {}
for _, other in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if other ~= id then
    local fields = redis.call('HMGET', prefix .. 's:' .. other, 'seen', 'created')
    if fields[1] then
      table.insert(own, {other, tonumber(fields[1]), tonumber(fields[2])})
    else
      redis.call('SREM', KEYS[3], other)
      redis.call('ZREM', KEYS[2], other)
    end
  end
end
local per_user = tonumber(ARGV[8])
if #own >= per_user then
  table.sort(own, function(a, b)
    if a[2] == b[2] then return a[3] < b[3] end
    return a[2] < b[2]
  end)
  for i = 1, math.min(#own, #own + 1 - per_user) do finish(own[i][1], 'u') end
end
local total = math.max(tonumber(ARGV[9]), 1)
while redis.call('ZCARD', KEYS[2]) > total do
  local lowest = redis.call('ZRANGE', KEYS[2], 0, 1)
  local victim = lowest[1]
  if victim == id then victim = lowest[2] end
  if not victim then break end
  if redis.call('EXISTS', prefix .. 's:' .. victim) == 1 then
    finish(victim, 't')
  else
    redis.call('ZREM', KEYS[2], victim)
  end
end
return ended
",
    )
});

/// Records activity if the session still exists, its TTL following. KEYS: session, active.
/// ARGV: id, now, idle, absolute, grace.
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local created = redis.call('HGET', KEYS[1], 'created')
if not created then return 0 end
local now = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'seen', now)
local until_end = math.min(now + tonumber(ARGV[3]), tonumber(created) + tonumber(ARGV[4]))
local ttl = math.max(until_end + tonumber(ARGV[5]) - now, 1)
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], now, ARGV[1])
return 1
",
    )
});

/// Replaces (or drops, when ARGV[1] is empty) the jar field of a session that still exists.
static SET_JAR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '' then redis.call('HDEL', KEYS[1], 'jar') else redis.call('HSET', KEYS[1], 'jar', ARGV[1]) end
return 1
",
    )
});

impl RedisStore {
    /// A store on `redis`; Redis TTLs follow `settings`' idle and absolute timeouts (fixed at start).
    pub fn new(redis: Arc<Redis>, settings: &SessionSettings) -> Self {
        RedisStore {
            redis,
            idle_secs: AtomicU64::new(settings.idle_timeout.as_secs()),
            absolute_secs: AtomicU64::new(settings.absolute_timeout.as_secs()),
            counted: AtomicI64::new(-1),
        }
    }

    fn idle_secs(&self) -> u64 {
        self.idle_secs.load(Ordering::Relaxed)
    }

    fn absolute_secs(&self) -> u64 {
        self.absolute_secs.load(Ordering::Relaxed)
    }

    /// The tag that stands for a session id in Redis.
    pub fn tag(id: &SessionId) -> String {
        Redis::hash(id.as_str())
    }

    fn session_key(&self, tag: &str) -> String {
        self.redis.key(&format!("s:{tag}"))
    }

    fn active_key(&self) -> String {
        self.redis.key("active")
    }

    /// The index of one tenant's subject (or sid): hashed, so key names name nobody.
    fn index_key(&self, kind: &str, tenant: &str, value: &str) -> String {
        let digest = Sha256::new()
            .chain_update(tenant.as_bytes())
            .chain_update([0])
            .chain_update(value.as_bytes())
            .finalize();
        self.redis.key(&format!("{kind}:{}", hex(&digest[..16])))
    }

    /// The keys [`WRITE`] and [`INSERT_NEW`] take for `session`.
    fn write_keys(&self, session: &Session, tag: &str) -> Vec<String> {
        let tenant = session.tenant.as_str();
        let mut keys = vec![
            self.session_key(tag),
            self.active_key(),
            self.index_key("u", tenant, &session.user.subject),
        ];
        if let Some(sid) = session.oidc.as_ref().and_then(|t| t.sid.as_deref()) {
            keys.push(self.index_key("sid", tenant, sid));
        }
        keys
    }

    /// Seconds Redis keeps a session: to the earlier of its timeouts, plus the grace.
    fn ttl(&self, created_at: u64, last_seen: u64, now: u64) -> u64 {
        let until = last_seen
            .saturating_add(self.idle_secs())
            .min(created_at.saturating_add(self.absolute_secs()));
        until
            .saturating_add(TTL_GRACE_SECS)
            .saturating_sub(now)
            .max(1)
    }

    fn seal_record(&self, session: &Session, tag: &str) -> Result<Vec<u8>, StoreError> {
        let record = Record {
            id: session.id.as_str().to_owned(),
            tenant: session.tenant.as_str().to_owned(),
            subject: session.user.subject.clone(),
            name: session.user.name.clone(),
            email: session.user.email.clone(),
            groups: session.user.groups.clone(),
            csrf_token: session.csrf_token.clone(),
            oidc: session.oidc.as_ref().map(|t| Tokens {
                access_token: t.access_token.clone(),
                expires_at: t.expires_at,
                refresh_at: t.refresh_at,
                refresh_token: t.refresh_token.clone(),
                id_token: t.id_token.clone(),
                sid: t.sid.clone(),
                refresh_deferred_since: t.refresh_deferred_since,
            }),
            previews: session
                .previews
                .all()
                .iter()
                .map(|preview| StoredPreview {
                    app: preview.app.as_str().to_owned(),
                    upstream: preview.upstream.clone(),
                    since: preview.since,
                    until: preview.until,
                })
                .collect(),
        };
        let plain = serde_json::to_vec(&record)
            .map_err(|e| StoreError(format!("could not serialise a session: {e}")))?;
        self.redis.seal(&self.session_key(tag), &plain)
    }

    /// Opens the record stored under `tag`; a record whose id does not hash to its tag is refused.
    fn open_record(
        &self,
        tag: &str,
        sealed: &[u8],
        seen: u64,
        created: u64,
    ) -> Result<Session, StoreError> {
        let plain = self.redis.open_sealed(&self.session_key(tag), sealed)?;
        let record: Record = serde_json::from_slice(&plain)
            .map_err(|e| StoreError(format!("a stored session record is malformed: {e}")))?;
        let id = SessionId::parse(&record.id)
            .filter(|id| Self::tag(id) == tag)
            .ok_or_else(|| StoreError("a stored session record names another id".into()))?;
        Ok(Session {
            id,
            tenant: TenantId::new(&record.tenant),
            user: User {
                subject: record.subject,
                name: record.name,
                email: record.email,
                groups: record.groups,
            },
            csrf_token: record.csrf_token,
            created_at: created,
            last_seen: seen,
            oidc: record.oidc.map(|t| {
                Box::new(OidcTokens {
                    access_token: t.access_token,
                    expires_at: t.expires_at,
                    refresh_at: t.refresh_at,
                    refresh_token: t.refresh_token,
                    id_token: t.id_token,
                    sid: t.sid,
                    refresh_deferred_since: t.refresh_deferred_since,
                })
            }),
            previews: Previews::from(
                record
                    .previews
                    .into_iter()
                    .map(|preview| PreviewOverride {
                        app: AppId::new(&preview.app),
                        upstream: preview.upstream,
                        since: preview.since,
                        until: preview.until,
                    })
                    .collect::<Vec<_>>(),
            ),
            activity: Activity::default(),
            principal: PrincipalSlot::default(),
        })
    }

    /// Tells every instance's cache that these sessions ended or changed. A lost message is bounded by
    /// the caches' own age limit, so a failure here is logged, not returned.
    async fn invalidate(&self, tags: &[String]) {
        for tag in tags {
            if let Err(error) = self.redis.publish(INVALIDATE_CHANNEL, tag).await {
                tracing::warn!(%error, "could not publish a session invalidation");
            }
        }
    }

    /// The session stored under `tag`, if any.
    async fn get_tag(&self, tag: &str) -> Result<Option<Session>, StoreError> {
        let mut conn = self.redis.conn();
        let (sealed, seen, created): (Option<Vec<u8>>, Option<u64>, Option<u64>) = self
            .redis
            .run(
                redis::cmd("HMGET")
                    .arg(self.session_key(tag))
                    .arg("rec")
                    .arg("seen")
                    .arg("created")
                    .query_async(&mut conn),
            )
            .await?;
        let (Some(sealed), Some(seen), Some(created)) = (sealed, seen, created) else {
            return Ok(None);
        };
        self.open_record(tag, &sealed, seen, created).map(Some)
    }

    /// `script` ([`WRITE`] or [`INSERT_NEW`]) with the keys and arguments they share: the session's
    /// keys, then its tag, sealed record, times, TTL and index TTL.
    fn write_invocation<'s>(
        &self,
        script: &'s Script,
        session: &Session,
        tag: &str,
    ) -> Result<redis::ScriptInvocation<'s>, StoreError> {
        let sealed = self.seal_record(session, tag)?;
        let ttl = self.ttl(session.created_at, session.last_seen, unix_now());
        let mut invocation = script.prepare_invoke();
        for key in self.write_keys(session, tag) {
            invocation.key(key);
        }
        invocation
            .arg(tag)
            .arg(sealed)
            .arg(session.last_seen)
            .arg(session.created_at)
            .arg(ttl)
            .arg(self.absolute_secs().saturating_add(TTL_GRACE_SECS));
        Ok(invocation)
    }

    async fn write(&self, session: &Session, only_if_present: bool) -> Result<bool, StoreError> {
        let tag = Self::tag(&session.id);
        let mut invocation = self.write_invocation(&WRITE, session, &tag)?;
        invocation.arg(if only_if_present { "1" } else { "0" });
        let mut conn = self.redis.conn();
        let written: i64 = self.redis.run(invocation.invoke_async(&mut conn)).await?;
        self.invalidate(&[tag]).await;
        Ok(written == 1)
    }

    /// Ends sessions by tag (the hash with its jars, and the activity index); stale index entries of
    /// the per-user and sid sets are dropped by their readers.
    async fn remove_tags(&self, tags: &[String]) -> Result<(), StoreError> {
        if tags.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for tag in tags {
            pipe.del(self.session_key(tag)).ignore();
            pipe.zrem(self.active_key(), tag).ignore();
        }
        let mut conn = self.redis.conn();
        self.redis.run(pipe.query_async::<()>(&mut conn)).await?;
        self.invalidate(tags).await;
        Ok(())
    }

    /// All of a session's cookie jars (`None`: it has none).
    pub(super) async fn jars(&self, id: &SessionId) -> Result<Option<SessionJars>, StoreError> {
        let key = self.session_key(&Self::tag(id));
        let mut conn = self.redis.conn();
        let sealed: Option<Vec<u8>> = self
            .redis
            .run(
                redis::cmd("HGET")
                    .arg(&key)
                    .arg("jar")
                    .query_async(&mut conn),
            )
            .await?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let plain = self.redis.open_sealed(&format!("{key}#jar"), &sealed)?;
        let parts: Vec<(String, AppJar)> = serde_json::from_slice(&plain)
            .map_err(|e| StoreError(format!("a stored cookie jar is malformed: {e}")))?;
        Ok(Some(SessionJars::from_parts(parts)))
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn insert(&self, session: Session) -> Result<(), StoreError> {
        self.write(&session, false).await.map(|_| ())
    }

    async fn insert_new(
        &self,
        session: Session,
        limits: SessionLimits,
    ) -> Result<Vec<Eviction>, StoreError> {
        let tag = Self::tag(&session.id);
        let mut invocation = self.write_invocation(&INSERT_NEW, &session, &tag)?;
        invocation
            .arg("0")
            .arg(limits.per_user)
            .arg(limits.total)
            .arg(self.redis.key(""));
        let mut conn = self.redis.conn();
        let ended: Vec<Vec<u8>> = self.redis.run(invocation.invoke_async(&mut conn)).await?;
        let mut evictions = Vec::new();
        let mut tags = Vec::new();
        let number = |bytes: &[u8]| {
            std::str::from_utf8(bytes)
                .ok()
                .and_then(|text| text.parse::<u64>().ok())
                .unwrap_or(0)
        };
        for entry in ended.chunks(5) {
            let [reason, victim, sealed, seen, created] = entry else {
                return Err(StoreError("redis: a malformed eviction list".into()));
            };
            let victim = String::from_utf8_lossy(victim).into_owned();
            let reason = if reason.as_slice() == b"u" {
                EvictionReason::PerUser
            } else {
                EvictionReason::Total
            };
            // An ended session whose record does not open is still ended; it just goes unaudited.
            if let Ok(session) = self.open_record(&victim, sealed, number(seen), number(created)) {
                evictions.push(Eviction {
                    session: Arc::new(session),
                    reason,
                });
            }
            tags.push(victim);
        }
        self.invalidate(&tags).await;
        Ok(evictions)
    }

    async fn update(&self, session: Session) -> Result<bool, StoreError> {
        self.write(&session, true).await
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        Ok(self.get_tag(&Self::tag(id)).await?.map(Arc::new))
    }

    async fn touch(&self, id: &SessionId, now: u64) -> Result<(), StoreError> {
        let tag = Self::tag(id);
        let mut conn = self.redis.conn();
        self.redis
            .run(
                TOUCH
                    .key(self.session_key(&tag))
                    .key(self.active_key())
                    .arg(&tag)
                    .arg(now)
                    .arg(self.idle_secs())
                    .arg(self.absolute_secs())
                    .arg(TTL_GRACE_SECS)
                    .invoke_async::<i64>(&mut conn),
            )
            .await
            .map(|_| ())
    }

    async fn remove(&self, id: &SessionId) -> Result<(), StoreError> {
        self.remove_tags(&[Self::tag(id)]).await
    }

    async fn purge_expired(
        &self,
        now: u64,
        settings: &SessionSettings,
    ) -> Result<usize, StoreError> {
        let mut conn = self.redis.conn();
        let tags: Vec<String> = self
            .redis
            .run(
                redis::cmd("ZRANGE")
                    .arg(self.active_key())
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut conn),
            )
            .await?;
        if tags.is_empty() {
            // The client refuses an empty pipeline; nothing to purge is not a failure.
            self.counted.store(0, Ordering::Relaxed);
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        for tag in &tags {
            pipe.cmd("HMGET")
                .arg(self.session_key(tag))
                .arg("seen")
                .arg("created");
        }
        let times: Vec<(Option<u64>, Option<u64>)> =
            self.redis.run(pipe.query_async(&mut conn)).await?;
        let (mut expired, mut stale) = (Vec::new(), Vec::new());
        for (tag, (seen, created)) in tags.iter().zip(times) {
            match (seen, created) {
                (Some(seen), Some(created)) => {
                    if now.saturating_sub(seen) > settings.idle_timeout.as_secs()
                        || now.saturating_sub(created) > settings.absolute_timeout.as_secs()
                    {
                        expired.push(tag.clone());
                    }
                }
                // Ended by its Redis TTL: only the index entry is left.
                _ => stale.push(tag.clone()),
            }
        }
        self.remove_tags(&expired).await?;
        self.remove_tags(&stale).await?;
        let left = tags.len() - expired.len() - stale.len();
        self.counted
            .store(i64::try_from(left).unwrap_or(i64::MAX), Ordering::Relaxed);
        Ok(expired.len())
    }

    async fn remove_for_logout(
        &self,
        tenant: &TenantId,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> Result<usize, StoreError> {
        let index = match (subject, sid) {
            (_, Some(sid)) => self.index_key("sid", tenant.as_str(), sid),
            (Some(subject), None) => self.index_key("u", tenant.as_str(), subject),
            (None, None) => return Ok(0),
        };
        let mut conn = self.redis.conn();
        let tags: Vec<String> = self
            .redis
            .run(redis::cmd("SMEMBERS").arg(&index).query_async(&mut conn))
            .await?;
        let (mut ended, mut stale) = (Vec::new(), Vec::new());
        for tag in tags {
            match self.get_tag(&tag).await {
                Ok(Some(session)) if session.matches_logout(tenant, subject, sid) => {
                    ended.push(tag);
                }
                Ok(Some(_)) => {}
                Ok(None) => stale.push(tag),
                // A record that does not open cannot be checked; it ends with its TTL.
                Err(StoreError(_)) if self.redis.down_for().is_zero() => stale.push(tag),
                Err(error) => return Err(error),
            }
        }
        self.remove_tags(&ended).await?;
        // The index forgets what has ended, so it does not grow with past sign-ins.
        if !ended.is_empty() || !stale.is_empty() {
            self.redis
                .run(
                    redis::cmd("SREM")
                        .arg(&index)
                        .arg(&ended)
                        .arg(&stale)
                        .query_async::<i64>(&mut conn),
                )
                .await?;
        }
        Ok(ended.len())
    }

    async fn jar(&self, id: &SessionId, app: &AppId) -> Result<Option<Arc<AppJar>>, StoreError> {
        Ok(self.jars(id).await?.and_then(|jars| jars.app(app)))
    }

    /// Read, apply, write back if the session still exists. Two responses of one session applying
    /// cookies at once may lose one's update (last writer wins); the session itself is never revived.
    async fn update_jar(
        &self,
        id: &SessionId,
        app: &AppId,
        cookies: Vec<SetCookie>,
        now: u64,
    ) -> Result<(), StoreError> {
        let mut jars = self.jars(id).await?.unwrap_or_default();
        jars.apply(app, cookies, now);
        let key = self.session_key(&Self::tag(id));
        let sealed = if jars.is_empty() {
            Vec::new()
        } else {
            let plain = serde_json::to_vec(&jars.to_parts())
                .map_err(|e| StoreError(format!("could not serialise a cookie jar: {e}")))?;
            self.redis.seal(&format!("{key}#jar"), &plain)?
        };
        let mut conn = self.redis.conn();
        self.redis
            .run(SET_JAR.key(key).arg(sealed).invoke_async::<i64>(&mut conn))
            .await?;
        self.invalidate(&[Self::tag(id)]).await;
        Ok(())
    }

    fn count(&self) -> Option<usize> {
        usize::try_from(self.counted.load(Ordering::Relaxed)).ok()
    }

    fn apply(&self, settings: &SessionSettings) {
        self.idle_secs
            .store(settings.idle_timeout.as_secs(), Ordering::Relaxed);
        self.absolute_secs
            .store(settings.absolute_timeout.as_secs(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use std::time::Duration;

    use super::*;
    use crate::auth::session::conformance;
    use crate::shared::testing::{KEY, Server};

    fn store(redis: &Arc<Redis>) -> RedisStore {
        RedisStore::new(redis.clone(), &conformance::settings())
    }

    /// The key a session is stored under, as another client of Redis sees it.
    fn stored_key(id: &SessionId) -> String {
        format!("p:s:{}", RedisStore::tag(id))
    }

    #[tokio::test]
    async fn the_redis_store_passes_the_conformance_suite() {
        let server = Server::start();
        // Each check gets its own prefix: one server, separate namespaces.
        let mut connections = Vec::new();
        for n in 0..40 {
            connections.push(server.redis(KEY, &format!("t{n}:")).await);
        }
        let n = AtomicUsize::new(0);
        conformance::run(|| store(&connections[n.fetch_add(1, Ordering::Relaxed)])).await;
    }

    #[tokio::test]
    async fn records_are_sealed_at_rest_and_bound_to_their_key() {
        let server = Server::start();
        let redis = server.connect().await;
        let mut conn = redis.conn();
        let store = store(&redis);
        let mut session = Session::new(&TenantId::new("acme"), conformance::user("alice"));
        session.oidc = Some(Box::new(OidcTokens {
            access_token: "secret-access".into(),
            expires_at: 1,
            refresh_at: 1,
            refresh_token: Some("secret-refresh".into()),
            id_token: "secret-id".into(),
            sid: None,
            refresh_deferred_since: None,
        }));
        let id = session.id.clone();
        store.insert(session).await.unwrap();
        let raw: Vec<u8> = redis::cmd("HGET")
            .arg(stored_key(&id))
            .arg("rec")
            .query_async(&mut conn)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&raw);
        for secret in [
            "secret-access",
            "secret-refresh",
            "secret-id",
            "alice",
            id.as_str(),
        ] {
            assert!(!text.contains(secret), "{secret} in the clear");
        }
        // No key name holds the session id (a dump must not hand out sessions).
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(!keys.is_empty());
        assert!(
            keys.iter().all(|key| !key.contains(id.as_str())),
            "{keys:?}"
        );
        // Another key cannot open it: an error, not a panic and not a session.
        let other = RedisStore::new(server.redis([8; 32], "p:").await, &conformance::settings());
        assert!(other.get(&id).await.is_err());
        // Moved to another id, it does not open either.
        let moved = SessionId::generate();
        let _: () = redis::cmd("COPY")
            .arg(stored_key(&id))
            .arg(stored_key(&moved))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(store.get(&moved).await.is_err());
        assert!(store.get(&id).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn redis_ttls_follow_the_timeouts() {
        let server = Server::start();
        let redis = server.connect().await;
        let mut conn = redis.conn();
        let store = store(&redis);
        let session = Session::new(&TenantId::new("acme"), conformance::user("alice"));
        let id = session.id.clone();
        store.insert(session).await.unwrap();
        let ttl = |mut conn: redis::aio::ConnectionManager| {
            let key = stored_key(&id);
            async move {
                let ttl: i64 = redis::cmd("TTL")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                ttl
            }
        };
        // Idle timeout 60 s, plus the grace.
        let fresh = ttl(conn.clone()).await;
        assert!((170..=180).contains(&fresh), "{fresh}");
        // Near the absolute timeout (600 s), that one bounds it.
        let mut old = Session::new(&TenantId::new("acme"), conformance::user("alice"));
        old.created_at -= 590;
        let old_id = old.id.clone();
        store.insert(old).await.unwrap();
        let old_ttl: i64 = redis::cmd("TTL")
            .arg(stored_key(&old_id))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!((120..=130).contains(&old_ttl), "{old_ttl}");
        // A reload lengthens the idle timeout to 300 s: the next write follows it.
        let mut reloaded = conformance::settings();
        reloaded.idle_timeout = Duration::from_secs(300);
        store.apply(&reloaded);
        store.touch(&id, unix_now()).await.unwrap();
        let touched = ttl(conn.clone()).await;
        assert!((410..=420).contains(&touched), "{touched}");
    }

    /// A new deployment has no sessions yet: purging it is nothing, not an error that marks Redis as
    /// down (an empty pipeline is refused by the client).
    #[tokio::test]
    async fn purging_an_empty_store_is_not_an_outage() {
        let server = Server::start();
        let redis = server.connect().await;
        let store = store(&redis);
        let purged = store
            .purge_expired(unix_now(), &conformance::settings())
            .await;
        assert_eq!(purged, Ok(0));
        assert_eq!(redis.status(), crate::shared::RedisStatus::Up);
        assert_eq!(store.count(), Some(0));
    }

    #[tokio::test]
    async fn a_redis_that_is_down_is_an_error_not_a_panic() {
        let mut server = Server::start();
        let store = store(&server.connect().await);
        let session = Session::new(&TenantId::new("acme"), conformance::user("alice"));
        let id = session.id.clone();
        store.insert(session.clone()).await.unwrap();
        server.stop();
        assert!(store.get(&id).await.is_err());
        assert!(store.insert(session.clone()).await.is_err());
        assert!(
            store
                .insert_new(
                    session,
                    SessionLimits {
                        total: 10,
                        per_user: 10
                    }
                )
                .await
                .is_err()
        );
        assert!(store.touch(&id, unix_now()).await.is_err());
    }

    /// Sign-ins of one user racing on two "instances" (two stores, two connections) never leave more
    /// sessions than the per-user limit: the limit is applied in the same atomic step as the insert.
    #[tokio::test]
    async fn concurrent_sign_ins_do_not_slip_under_the_limit() {
        let server = Server::start();
        let stores: Vec<Arc<RedisStore>> = vec![
            Arc::new(store(&server.connect().await)),
            Arc::new(store(&server.connect().await)),
        ];
        let limits = SessionLimits {
            total: 1000,
            per_user: 3,
        };
        let mut tasks = Vec::new();
        for i in 0..40 {
            let store = Arc::clone(&stores[i % 2]);
            tasks.push(tokio::spawn(async move {
                let session = Session::new(&TenantId::new("acme"), conformance::user("alice"));
                store.insert_new(session, limits).await.unwrap().len()
            }));
        }
        let mut ended = 0;
        for task in tasks {
            ended += task.await.unwrap();
        }
        assert_eq!(ended, 37, "each sign-in past the third ended one");
        stores[0]
            .purge_expired(unix_now(), &conformance::settings())
            .await
            .unwrap();
        assert_eq!(stores[0].count(), Some(3));
    }

    /// Redis stopped and started again on the same port: the store errs meanwhile and then works
    /// again by itself, with the same connection.
    #[tokio::test]
    async fn the_store_recovers_when_redis_returns() {
        let mut server = Server::start();
        let store = store(&server.connect().await);
        let session = Session::new(&TenantId::new("acme"), conformance::user("alice"));
        let id = session.id.clone();
        store.insert(session.clone()).await.unwrap();
        server.stop();
        assert!(store.get(&id).await.is_err());
        server.restart();
        // Bounded: 10 s. Nothing persisted, so the session is gone, but the store answers.
        let mut answered = false;
        for _ in 0..100 {
            if store.insert(session.clone()).await.is_ok() {
                answered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(answered, "the store did not reconnect");
        assert!(store.get(&id).await.unwrap().is_some());
    }

    /// A back-channel logout leaves no entry behind in the index it read.
    #[tokio::test]
    async fn logout_indexes_forget_ended_sessions() {
        let server = Server::start();
        let redis = server.connect().await;
        let mut conn = redis.conn();
        let store = store(&redis);
        let acme = TenantId::new("acme");
        let mut session = Session::new(&acme, conformance::user("alice"));
        session.oidc = Some(Box::new(OidcTokens {
            access_token: "a".into(),
            expires_at: 1,
            refresh_at: 1,
            refresh_token: None,
            id_token: "i".into(),
            sid: Some("idp-sid".into()),
            refresh_deferred_since: None,
        }));
        let gone = Session::new(&acme, conformance::user("alice"));
        let gone_id = gone.id.clone();
        store.insert(session).await.unwrap();
        store.insert(gone).await.unwrap();
        // One of alice's sessions ends by itself (its Redis TTL, here a plain delete).
        let _: i64 = redis::cmd("DEL")
            .arg(stored_key(&gone_id))
            .query_async(&mut conn)
            .await
            .unwrap();
        let members = |key: String| {
            let mut conn = conn.clone();
            async move {
                let members: Vec<String> = redis::cmd("SMEMBERS")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                members
            }
        };
        let by_user = store.index_key("u", "acme", "alice");
        let by_sid = store.index_key("sid", "acme", "idp-sid");
        assert_eq!(members(by_user.clone()).await.len(), 2);
        assert_eq!(
            store
                .remove_for_logout(&acme, None, Some("idp-sid"))
                .await
                .unwrap(),
            1
        );
        assert!(members(by_sid).await.is_empty());
        assert_eq!(
            store
                .remove_for_logout(&acme, Some("alice"), None)
                .await
                .unwrap(),
            0
        );
        assert!(members(by_user).await.is_empty(), "stale entries dropped");
    }
}
