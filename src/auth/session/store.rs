//! Where sessions live: the [`SessionStore`] trait a shared store ([`super::RedisStore`]) implements for
//! scale-out, and [`MemoryStore`], the in-process one.
//!
//! A store keeps records and their cookie jars, nothing more: it knows nothing about timeouts or
//! tenants beyond what its operations are told (`purge_expired` gets the limits, `remove_for_logout`
//! the tenant). The rules live in [`super::Sessions`]; every implementation must pass
//! [`super::conformance`].

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::RwLock;

use super::{Eviction, EvictionReason, Session, SessionId, SessionLimits};
use crate::config::{AppId, SessionSettings, TenantId};
use crate::jar::{AppJar, SessionJars, SetCookie};

pub use crate::shared::StoreError;

/// Where sessions live. Implementations must be safe to share between instances of portico.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores the session, replacing one with the same id (a refresh writes the whole record again).
    async fn insert(&self, session: Session) -> Result<(), StoreError>;
    /// Stores a new sign-in's session, then ends sessions beyond `limits`, least recently active first
    /// and never `session` itself: first the user's own (same tenant and subject) beyond
    /// `limits.per_user`, then any beyond `limits.total`. Returns what it ended (jars included), in
    /// one step, so concurrent sign-ins cannot both slip under a limit.
    async fn insert_new(
        &self,
        session: Session,
        limits: SessionLimits,
    ) -> Result<Vec<Eviction>, StoreError>;
    /// Replaces the record of a session that still exists (a refresh); writes nothing and returns
    /// false when it has ended meanwhile, so a refresh that finishes after a sign-out, a back-channel
    /// logout or an eviction cannot bring the session back.
    async fn update(&self, session: Session) -> Result<bool, StoreError>;
    /// The session, shared: a lookup on every request must not copy its user and tokens.
    async fn get(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError>;
    /// Records activity; may be skipped by the caller when the last touch is recent.
    async fn touch(&self, id: &SessionId, now: u64) -> Result<(), StoreError>;
    async fn remove(&self, id: &SessionId) -> Result<(), StoreError>;
    /// Drops every session idle or older than the limits; returns how many went.
    async fn purge_expired(
        &self,
        now: u64,
        settings: &SessionSettings,
    ) -> Result<usize, StoreError>;
    /// Ends the sessions a back-channel logout names (see [`Session::matches_logout`]); returns how many.
    async fn remove_for_logout(
        &self,
        tenant: &TenantId,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> Result<usize, StoreError>;
    /// The cookies the session's jar holds for `app` (`cookies: jar`), if any. Jars live and die with
    /// their session: every way a session ends above must drop its jars too.
    async fn jar(&self, id: &SessionId, app: &AppId) -> Result<Option<Arc<AppJar>>, StoreError>;
    /// Applies an app's `Set-Cookie`s to the session's jar (see `jar::SessionJars::apply`). A session
    /// that has ended gets no jar back: a late response cannot outlive a sign-out.
    async fn update_jar(
        &self,
        id: &SessionId,
        app: &AppId,
        cookies: Vec<SetCookie>,
        now: u64,
    ) -> Result<(), StoreError>;

    /// How many sessions the store holds, if it can tell cheaply and at once (for the metrics; a
    /// shared store may answer `None`).
    fn count(&self) -> Option<usize> {
        None
    }

    /// The session as the shared store holds it now, past any copy this instance keeps (after
    /// waiting on another instance's refresh, or before ending a session that looks idle here but
    /// may have been used on another instance).
    async fn get_current(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        self.get(id).await
    }

    /// A reload changed the session settings (a store that sets expiry times of its own, like Redis
    /// TTLs, follows the new timeouts from each session's next write).
    fn apply(&self, _settings: &SessionSettings) {}

    /// Another instance changed or ended the session of this tag (`None`: this instance may have
    /// missed such messages); a store that keeps copies drops them.
    fn invalidated(&self, _tag: Option<&str>) {}
}

/// Sessions in this process's memory. Lost on restart; not shared between instances.
///
/// `parking_lot` locks: no poisoning, so no operation can fail, and no lock is held across an await.
///
/// Keyed with foldhash rather than SipHash (about 300 instructions per lookup of a 43-byte id, on every
/// request): every key is an id this process generated at random, so a client's cookies can look
/// keys up but never choose the ones stored, which is what a collision attack on the hash needs.
#[derive(Default)]
pub struct MemoryStore {
    sessions: RwLock<SessionMap<Arc<Session>>>,
    /// Each session's cookie jars, beside the session and removed with it (lock order: sessions first).
    jars: RwLock<SessionMap<SessionJars>>,
}

type SessionMap<T> = HashMap<SessionId, T, foldhash::fast::RandomState>;

impl MemoryStore {
    /// Drops the jars of sessions that are gone; called with the sessions' write lock held.
    fn drop_ended_jars(&self, sessions: &SessionMap<Arc<Session>>) {
        self.jars.write().retain(|id, _| sessions.contains_key(id));
    }

    /// How many sessions hold a jar (for the tests of this file).
    #[cfg(test)]
    fn jar_count(&self) -> usize {
        self.jars.read().len()
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn insert(&self, session: Session) -> Result<(), StoreError> {
        self.sessions
            .write()
            .insert(session.id.clone(), Arc::new(session));
        Ok(())
    }

    async fn insert_new(
        &self,
        session: Session,
        limits: SessionLimits,
    ) -> Result<Vec<Eviction>, StoreError> {
        let mut sessions = self.sessions.write();
        let (new_id, tenant, subject) = (
            session.id.clone(),
            session.tenant.clone(),
            session.user.subject.clone(),
        );
        sessions.insert(new_id.clone(), Arc::new(session));
        let mut evicted = Vec::new();
        // One pass over every session per sign-in (a sign-in is rare next to requests), counting; the
        // user's sessions are collected, and the least recently active looked for, only when a limit
        // is exceeded (collecting them on every sign-in cloned an `Arc` per session of the user and
        // allocated a list as long).
        let is_own =
            |s: &Arc<Session>| s.id != new_id && s.tenant == tenant && s.user.subject == subject;
        let own_count = sessions.values().filter(|s| is_own(s)).count();
        if own_count >= limits.per_user {
            let mut own: Vec<Arc<Session>> =
                sessions.values().filter(|s| is_own(s)).cloned().collect();
            own.sort_by_key(|s| (s.last_active(), s.created_at));
            let excess = own.len() + 1 - limits.per_user;
            for session in own.into_iter().take(excess) {
                sessions.remove(&session.id);
                evicted.push(Eviction {
                    session,
                    reason: EvictionReason::PerUser,
                });
            }
        }
        while sessions.len() > limits.total.max(1) {
            let Some(oldest) = sessions
                .values()
                .filter(|s| s.id != new_id)
                .min_by_key(|s| (s.last_active(), s.created_at))
                .cloned()
            else {
                break;
            };
            sessions.remove(&oldest.id);
            evicted.push(Eviction {
                session: oldest,
                reason: EvictionReason::Total,
            });
        }
        if !evicted.is_empty() {
            self.drop_ended_jars(&sessions);
        }
        Ok(evicted)
    }

    async fn update(&self, session: Session) -> Result<bool, StoreError> {
        Ok(match self.sessions.write().get_mut(&session.id) {
            Some(stored) => {
                *stored = Arc::new(session);
                true
            }
            None => false,
        })
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        Ok(self.sessions.read().get(id).cloned())
    }

    fn count(&self) -> Option<usize> {
        Some(self.sessions.read().len())
    }

    async fn touch(&self, id: &SessionId, now: u64) -> Result<(), StoreError> {
        if let Some(session) = self.sessions.write().get_mut(id) {
            // Copies the session only while a request still holds the old one (once per interval).
            Arc::make_mut(session).last_seen = now;
        }
        Ok(())
    }

    async fn remove(&self, id: &SessionId) -> Result<(), StoreError> {
        let mut sessions = self.sessions.write();
        sessions.remove(id);
        self.jars.write().remove(id);
        Ok(())
    }

    async fn purge_expired(
        &self,
        now: u64,
        settings: &SessionSettings,
    ) -> Result<usize, StoreError> {
        let mut sessions = self.sessions.write();
        let before = sessions.len();
        sessions.retain(|_, session| !session.expired(now, settings));
        self.drop_ended_jars(&sessions);
        Ok(before - sessions.len())
    }

    async fn remove_for_logout(
        &self,
        tenant: &TenantId,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> Result<usize, StoreError> {
        let mut sessions = self.sessions.write();
        let before = sessions.len();
        sessions.retain(|_, session| !session.matches_logout(tenant, subject, sid));
        self.drop_ended_jars(&sessions);
        Ok(before - sessions.len())
    }

    async fn jar(&self, id: &SessionId, app: &AppId) -> Result<Option<Arc<AppJar>>, StoreError> {
        Ok(self.jars.read().get(id).and_then(|jars| jars.app(app)))
    }

    async fn update_jar(
        &self,
        id: &SessionId,
        app: &AppId,
        cookies: Vec<SetCookie>,
        now: u64,
    ) -> Result<(), StoreError> {
        let sessions = self.sessions.read();
        if !sessions.contains_key(id) {
            return Ok(());
        }
        let mut jars = self.jars.write();
        let session_jars = jars.entry(id.clone()).or_default();
        session_jars.apply(app, cookies, now);
        if session_jars.is_empty() {
            jars.remove(id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::session::conformance;

    #[tokio::test]
    async fn the_memory_store_passes_the_conformance_suite() {
        conformance::run(MemoryStore::default).await;
    }

    #[tokio::test]
    async fn no_jar_outlives_its_session_in_memory() {
        let store = MemoryStore::default();
        conformance::jars_end_with_their_session(&store).await;
        assert_eq!(store.jar_count(), 0);
    }
}
