//! [`CachedStore`]: this instance's short-lived copies of sessions in front of a shared store, so a
//! proxied request does not pay a Redis round trip (and a decryption) each time.
//!
//! How stale a copy may be is bounded twice. Every write that ends or changes a session publishes its
//! tag, and every instance drops its copy when the message arrives (milliseconds): a sign-out, a
//! back-channel logout, an eviction or a refresh that changes roles takes effect everywhere at once.
//! And no copy is used for longer than [`MAX_AGE`] without asking Redis again, so a message lost while
//! the subscription was down delays it by at most that. When the subscription (re)starts, every copy is
//! dropped.
//!
//! While Redis cannot be reached, a copy this instance already holds keeps serving its user for
//! `sessions.redis.outage_grace` from the start of the outage; everything else fails with the store's
//! error (503), and nothing is written. It must never serve a session Redis has said is gone, and
//! never outlive the grace.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::RwLock;

use super::{Eviction, RedisStore, Session, SessionId, SessionLimits, SessionStore, StoreError};
use crate::config::{AppId, SessionSettings, TenantId};
use crate::jar::{AppJar, SessionJars, SetCookie};
use crate::shared::Redis;

/// The longest a copy is used without asking Redis again: the bound on staleness when an invalidation
/// message is lost. One round trip per session per second is nothing next to one per request.
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// Copies kept at most; beyond it, the old ones are dropped (a burst of sign-ins must not grow memory).
const CAPACITY: usize = 50_000;

/// Copies of one kind of record, by session id, each used for at most [`MAX_AGE`]. Keyed by the id,
/// not its tag, so a request that finds its copy computes no hash; the tags are indexed only for the
/// invalidation messages, which name sessions by tag.
struct Copies<T> {
    entries: RwLock<Entries<T>>,
    /// Counts invalidations: a read that started before one must not keep what it read.
    generation: AtomicU64,
}

struct Entries<T> {
    by_id: HashMap<SessionId, (T, Instant, String)>,
    /// Tag → id, for [`Copies::drop_tag`].
    ids: HashMap<String, SessionId>,
}

impl<T> Entries<T> {
    fn remove(&mut self, id: &SessionId) {
        if let Some((_, _, tag)) = self.by_id.remove(id) {
            self.ids.remove(&tag);
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(&T, Instant) -> bool) {
        let ids = &mut self.ids;
        self.by_id.retain(|_, (value, fetched, tag)| {
            let kept = keep(value, *fetched);
            if !kept {
                ids.remove(tag.as_str());
            }
            kept
        });
    }
}

impl<T: Clone> Copies<T> {
    fn new() -> Self {
        Copies {
            entries: RwLock::new(Entries {
                by_id: HashMap::new(),
                ids: HashMap::new(),
            }),
            generation: AtomicU64::new(0),
        }
    }

    /// The copy of `id` and whether it is young enough to use without asking Redis.
    fn get(&self, id: &SessionId) -> Option<(T, bool)> {
        let entries = self.entries.read();
        let (value, fetched, _) = entries.by_id.get(id)?;
        Some((value.clone(), fetched.elapsed() < MAX_AGE))
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Keeps what a read that started at `generation` returned, unless an invalidation came since.
    fn keep(&self, id: &SessionId, value: T, generation: u64) {
        let tag = RedisStore::tag(id);
        let mut entries = self.entries.write();
        if self.generation.load(Ordering::Relaxed) != generation {
            return;
        }
        if entries.by_id.len() >= CAPACITY {
            let now = Instant::now();
            entries.retain(|_, fetched| now.duration_since(fetched) < MAX_AGE);
            if entries.by_id.len() >= CAPACITY {
                entries.by_id.clear();
                entries.ids.clear();
            }
        }
        entries.ids.insert(tag.clone(), id.clone());
        entries
            .by_id
            .insert(id.clone(), (value, Instant::now(), tag));
    }

    /// Changes a copy in place, keeping its age (a write this instance made itself).
    fn amend(&self, id: &SessionId, change: impl FnOnce(&mut T)) {
        if let Some((value, _, _)) = self.entries.write().by_id.get_mut(id) {
            change(value);
        }
    }

    fn drop_id(&self, id: &SessionId) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.entries.write().remove(id);
    }

    /// Drops the copy of the session an invalidation message names.
    fn drop_tag(&self, tag: &str) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.entries.write();
        if let Some(id) = entries.ids.get(tag).cloned() {
            entries.remove(&id);
        }
    }

    fn drop_where(&self, matches: impl Fn(&T) -> bool) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.entries.write().retain(|value, _| !matches(value));
    }

    fn clear(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.entries.write();
        entries.by_id.clear();
        entries.ids.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.read().by_id.len()
    }
}

/// A [`RedisStore`] with this instance's copies of sessions and their cookie jars in front.
pub struct CachedStore {
    inner: RedisStore,
    redis: Arc<Redis>,
    sessions: Copies<Arc<Session>>,
    /// Each session's jars (`None`: it has none), read on every request to a `cookies: jar` app.
    jars: Copies<Option<Arc<SessionJars>>>,
    outage_grace: Duration,
}

impl CachedStore {
    pub fn new(inner: RedisStore, redis: Arc<Redis>, outage_grace: Duration) -> Self {
        CachedStore {
            inner,
            redis,
            sessions: Copies::new(),
            jars: Copies::new(),
            outage_grace,
        }
    }

    fn drop_copy(&self, id: &SessionId) {
        self.sessions.drop_id(id);
        self.jars.drop_id(id);
    }

    /// Whether a copy may stand in for Redis now: Redis is down, and not for longer than the grace.
    fn riding_out_outage(&self) -> bool {
        self.redis.down_for() <= self.outage_grace
    }

    /// How many session copies this instance holds (for tests).
    #[cfg(test)]
    fn copies(&self) -> usize {
        self.sessions.len()
    }
}

#[async_trait]
impl SessionStore for CachedStore {
    async fn insert(&self, session: Session) -> Result<(), StoreError> {
        let id = session.id.clone();
        let result = self.inner.insert(session).await;
        self.drop_copy(&id);
        result
    }

    async fn insert_new(
        &self,
        session: Session,
        limits: SessionLimits,
    ) -> Result<Vec<Eviction>, StoreError> {
        let evictions = self.inner.insert_new(session, limits).await?;
        for eviction in &evictions {
            self.drop_copy(&eviction.session.id);
        }
        Ok(evictions)
    }

    async fn update(&self, session: Session) -> Result<bool, StoreError> {
        let id = session.id.clone();
        let result = self.inner.update(session).await;
        self.drop_copy(&id);
        result
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        let held = self.sessions.get(id);
        if let Some((session, true)) = &held {
            return Ok(Some(session.clone()));
        }
        let generation = self.sessions.generation();
        match self.inner.get(id).await {
            Ok(Some(session)) => {
                self.sessions.keep(id, session.clone(), generation);
                Ok(Some(session))
            }
            Ok(None) => {
                self.drop_copy(id);
                Ok(None)
            }
            Err(error) => match held {
                // Redis is down, not the session: its user keeps working for the grace.
                Some((session, _)) if self.riding_out_outage() => {
                    tracing::debug!(%error, "redis unreachable: serving a cached session");
                    Ok(Some(session))
                }
                _ => Err(error),
            },
        }
    }

    async fn get_current(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        let generation = self.sessions.generation();
        let session = self.inner.get(id).await?;
        match &session {
            Some(session) => self.sessions.keep(id, session.clone(), generation),
            None => self.drop_copy(id),
        }
        Ok(session)
    }

    async fn touch(&self, id: &SessionId, now: u64) -> Result<(), StoreError> {
        self.inner.touch(id, now).await?;
        // The copy learns the write too, so the next request does not write again.
        self.sessions.amend(id, |session| {
            let mut touched = Session::clone(session);
            touched.last_seen = touched.last_seen.max(now);
            *session = Arc::new(touched);
        });
        Ok(())
    }

    async fn remove(&self, id: &SessionId) -> Result<(), StoreError> {
        let result = self.inner.remove(id).await;
        self.drop_copy(id);
        result
    }

    async fn purge_expired(
        &self,
        now: u64,
        settings: &SessionSettings,
    ) -> Result<usize, StoreError> {
        // Purged sessions are published one by one and copies of them dropped as the messages come;
        // the jars go at once (this instance cannot tell whose they were).
        let purged = self.inner.purge_expired(now, settings).await;
        self.jars.clear();
        purged
    }

    async fn remove_for_logout(
        &self,
        tenant: &TenantId,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> Result<usize, StoreError> {
        let ended = self.inner.remove_for_logout(tenant, subject, sid).await?;
        // This instance's copies of them go at once, not only when the messages come back.
        self.sessions
            .drop_where(|session| session.matches_logout(tenant, subject, sid));
        self.jars.clear();
        Ok(ended)
    }

    async fn jar(&self, id: &SessionId, app: &AppId) -> Result<Option<Arc<AppJar>>, StoreError> {
        let held = self.jars.get(id);
        if let Some((jars, true)) = &held {
            return Ok(jars.as_ref().and_then(|jars| jars.app(app)));
        }
        let generation = self.jars.generation();
        match self.inner.jars(id).await {
            Ok(jars) => {
                let jars = jars.map(Arc::new);
                self.jars.keep(id, jars.clone(), generation);
                Ok(jars.and_then(|jars| jars.app(app)))
            }
            Err(error) => match held {
                Some((jars, _)) if self.riding_out_outage() => {
                    Ok(jars.and_then(|jars| jars.app(app)))
                }
                _ => Err(error),
            },
        }
    }

    async fn update_jar(
        &self,
        id: &SessionId,
        app: &AppId,
        cookies: Vec<SetCookie>,
        now: u64,
    ) -> Result<(), StoreError> {
        let result = self.inner.update_jar(id, app, cookies, now).await;
        self.jars.drop_id(id);
        result
    }

    fn count(&self) -> Option<usize> {
        self.inner.count()
    }

    fn apply(&self, settings: &SessionSettings) {
        self.inner.apply(settings);
    }

    fn invalidated(&self, tag: Option<&str>) {
        match tag {
            Some(tag) => {
                self.sessions.drop_tag(tag);
                self.jars.drop_tag(tag);
            }
            None => {
                self.sessions.clear();
                self.jars.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::auth::session::conformance;
    use crate::auth::session::{INVALIDATE_CHANNEL, LookupMiss, Sessions};
    use crate::shared::testing::{KEY, Server};

    /// One "instance": its own connection, cache and subscription, on the shared server.
    struct Instance {
        store: Arc<CachedStore>,
        sessions: Sessions,
    }

    async fn instance(server: &Server, grace: Duration, stop: &CancellationToken) -> Instance {
        let redis = server.redis(KEY, "p:").await;
        let store = Arc::new(CachedStore::new(
            RedisStore::new(redis.clone(), &conformance::settings()),
            redis.clone(),
            grace,
        ));
        let sessions = Sessions::new(store.clone());
        let (subscribed, mut ready) = tokio::sync::watch::channel(false);
        let listener = sessions.clone();
        tokio::spawn(
            redis.subscribe(INVALIDATE_CHANNEL, stop.clone(), move |tag| {
                listener.invalidated(tag);
                if tag.is_none() {
                    let _ = subscribed.send(true);
                }
            }),
        );
        tokio::time::timeout(Duration::from_secs(10), ready.wait_for(|up| *up))
            .await
            .expect("subscribed within 10 s")
            .unwrap();
        Instance { store, sessions }
    }

    /// Polls (bounded: 5 s) until `done`.
    async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..500 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{what}: not within 5 s");
    }

    #[tokio::test]
    async fn the_cached_store_passes_the_conformance_suite() {
        let server = Server::start();
        let mut connections = Vec::new();
        for n in 0..40 {
            connections.push(server.redis(KEY, &format!("c{n}:")).await);
        }
        let n = AtomicUsize::new(0);
        conformance::run(|| {
            let redis = connections[n.fetch_add(1, Ordering::Relaxed)].clone();
            CachedStore::new(
                RedisStore::new(redis.clone(), &conformance::settings()),
                redis,
                Duration::from_secs(60),
            )
        })
        .await;
    }

    /// A sign-out, a back-channel logout or a refresh on one instance reaches the other's copy by
    /// message, before the copy's own age limit would have.
    #[tokio::test]
    async fn a_change_on_one_instance_drops_the_copies_of_the_other() {
        let server = Server::start();
        let stop = CancellationToken::new();
        let a = instance(&server, Duration::from_secs(60), &stop).await;
        let b = instance(&server, Duration::from_secs(60), &stop).await;
        let acme = TenantId::new("acme");
        let settings = conformance::settings();

        // Signed out on B: A's copy goes.
        let session = Session::new(&acme, conformance::user("alice"));
        let id = session.id.clone();
        a.sessions.start(session, &settings).await.unwrap();
        a.sessions.lookup(&id, &acme, &settings).await.unwrap();
        assert_eq!(a.store.copies(), 1, "A keeps a copy");
        b.sessions.remove(&id).await.unwrap();
        eventually("A drops its copy", || a.store.copies() == 0).await;
        assert_eq!(
            a.sessions.lookup(&id, &acme, &settings).await.unwrap_err(),
            LookupMiss::Unknown
        );

        // Roles changed by a refresh on B: A sees the new groups.
        let session = Session::new(&acme, conformance::user("alice"));
        let id = session.id.clone();
        a.sessions.start(session, &settings).await.unwrap();
        let seen = a.sessions.lookup(&id, &acme, &settings).await.unwrap();
        let mut refreshed = Session::clone(&seen);
        refreshed.user.groups = vec!["finance".into()];
        assert!(b.sessions.update(refreshed).await.unwrap());
        eventually("A drops its copy", || a.store.copies() == 0).await;
        let seen = a.sessions.lookup(&id, &acme, &settings).await.unwrap();
        assert_eq!(seen.user.groups, ["finance"]);

        // A back-channel logout by subject on B.
        b.sessions
            .remove_for_logout(&acme, Some("alice"), None)
            .await
            .unwrap();
        eventually("A drops its copy", || a.store.copies() == 0).await;
        assert!(a.sessions.lookup(&id, &acme, &settings).await.is_err());
        stop.cancel();
    }

    /// Redis down: a user whose session this instance holds keeps working for the grace; anyone else
    /// gets the store's error; and with no grace, nobody is served.
    #[tokio::test]
    async fn cached_sessions_outlive_a_redis_outage_for_the_grace_only() {
        let mut server = Server::start();
        let stop = CancellationToken::new();
        let graced = instance(&server, Duration::from_secs(60), &stop).await;
        let strict = instance(&server, Duration::ZERO, &stop).await;
        let acme = TenantId::new("acme");
        let settings = conformance::settings();
        let session = Session::new(&acme, conformance::user("alice"));
        let id = session.id.clone();
        let other = Session::new(&acme, conformance::user("alice"));
        let other_id = other.id.clone();
        graced.sessions.insert(session).await.unwrap();
        graced.sessions.insert(other).await.unwrap();
        // Each insert's invalidation comes back to both instances through Redis, and one that arrives
        // after a lookup drops the copy that lookup took (under load it can take a while): look up
        // until both copies stay, twice in a row, before Redis goes.
        let mut stable = 0;
        for _ in 0..100 {
            graced.sessions.lookup(&id, &acme, &settings).await.unwrap();
            strict.sessions.lookup(&id, &acme, &settings).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            let held = graced.store.copies() == 1 && strict.store.copies() == 1;
            stable = if held { stable + 1 } else { 0 };
            if stable == 2 {
                break;
            }
        }
        assert_eq!(stable, 2, "the copies stay once the invalidations are in");

        server.stop();
        tokio::time::sleep(MAX_AGE).await;
        let served = graced.sessions.lookup(&id, &acme, &settings).await;
        assert_eq!(served.unwrap().id, id, "the cached session keeps working");
        assert!(matches!(
            graced.sessions.lookup(&other_id, &acme, &settings).await,
            Err(LookupMiss::StoreDown(_))
        ));
        assert!(matches!(
            strict.sessions.lookup(&id, &acme, &settings).await,
            Err(LookupMiss::StoreDown(_))
        ));
        stop.cancel();
    }
}
