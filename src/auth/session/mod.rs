//! Server-side sessions: the opaque id the browser holds, the record the server keeps, and
//! [`Sessions`], the only door to the store behind it.
//!
//! The cookie carries only a random id; user data and tokens stay in the store. A store knows nothing
//! about timeouts or tenants: [`Sessions`] enforces both on every lookup, and nothing else in the server
//! holds the store, so no caller can read or write a session around those rules. It is a service: it
//! never sees the app state or a request.

mod cache;
#[cfg(test)]
pub(crate) mod conformance;
mod redis;
mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::auth::principal::{Principal, PrincipalSlot};
use crate::clock::unix_now;
use crate::config::{AppId, SessionSettings, Tenant, TenantId};
use crate::jar::{AppJar, SetCookie};
use crate::token::{hex, random_token};

pub use cache::{CachedStore, MAX_AGE};
pub use redis::{INVALIDATE_CHANNEL, RedisStore, TTL_GRACE_SECS};
pub use store::{MemoryStore, SessionStore, StoreError};

/// An opaque session id: 256 random bits, base64url. Never logged; see [`SessionId::log_hash`].
///
/// An `Arc<str>`: the memory store keys its map by the id the record holds too, and a clone shares
/// the one allocation (64 bytes) instead of copying the text (two 48-byte allocations and a 24-byte
/// `String` per key before: bench/README.md, "Memory").
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(Arc<str>);

impl SessionId {
    pub fn generate() -> Self {
        SessionId(Arc::from(random_token::<32>()))
    }

    /// Accepts only values of the shape [`generate`](Self::generate) makes, so junk never reaches a store.
    pub fn parse(value: &str) -> Option<Self> {
        let well_formed = value.len() == 43
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| SessionId(Arc::from(value)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short, one-way tag for logs and audit events that correlates without revealing the id.
    pub fn log_hash(&self) -> String {
        hex(&Sha256::digest(self.0.as_bytes())[..8])
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionId({})", self.log_hash())
    }
}

/// The signed-in user, as the IdP (or dev sign-in) described them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub subject: String,
    pub name: String,
    /// A verified email address, or empty: OIDC sign-in drops an `email` whose `email_verified` is not
    /// true, so everything that passes this on (headers, assertion, Backstage) passes only verified ones.
    pub email: String,
    /// Groups as the IdP sent them; roles are derived from them on every request.
    pub groups: Vec<String>,
}

impl User {
    /// The user a command acts as when no one signed in (`portico doctor`, `portico preview`): `id`
    /// with exactly `groups`, and a demo user's name and email when the tenant's dev sign-in has one by
    /// that id; `tool` (the command's name) stands in for a missing id.
    pub fn stand_in(tenant: &Tenant, id: Option<&str>, groups: Vec<String>, tool: &str) -> User {
        let demo = match &tenant.sign_in {
            crate::config::SignIn::Dev { users } => {
                id.and_then(|id| users.iter().find(|user| user.id == id))
            }
            crate::config::SignIn::Oidc(_) => None,
        };
        let subject = id.unwrap_or(tool).to_owned();
        User {
            name: demo.map_or_else(|| subject.clone(), |user| user.name.clone()),
            email: demo.map(|user| user.email.clone()).unwrap_or_default(),
            subject,
            groups,
        }
    }
}

/// The IdP's tokens for one session. They stay on the server; `Debug` never prints them.
#[derive(Clone)]
pub struct OidcTokens {
    pub access_token: String,
    /// Unix seconds when the access token expires.
    pub expires_at: u64,
    /// Unix seconds from when a request refreshes the tokens: shortly before expiry.
    pub refresh_at: u64,
    pub refresh_token: Option<String>,
    /// Sent back as `id_token_hint` at logout.
    pub id_token: String,
    /// The IdP's session id, for back-channel logout by `sid`.
    pub sid: Option<String>,
    /// Unix seconds when a due refresh first found the IdP unreachable; cleared by a refresh. The
    /// session lives on until `expires_at` plus `sessions.refresh_grace`.
    pub refresh_deferred_since: Option<u64>,
}

impl std::fmt::Debug for OidcTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcTokens")
            .field("expires_at", &self.expires_at)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("sid", &self.sid)
            .field("refresh_deferred_since", &self.refresh_deferred_since)
            .finish_non_exhaustive()
    }
}

/// One app sent to a preview upstream for one session: the user confirmed it on portico's page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewOverride {
    pub app: AppId,
    /// The preview's URL, as the user confirmed it (it matched the tenant's `previews.upstreams` then,
    /// and must still match when a request uses it).
    pub upstream: String,
    /// Unix seconds when it was started and when it ends (its `previews.lifetime`).
    pub since: u64,
    pub until: u64,
}

/// A session's preview overrides, at most one per app. Empty for nearly every session, so it costs a
/// record one pointer's width (a thin box: a boxed slice would be two, and the record would leave its
/// mimalloc size class, see `a_session_record_stays_small`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(clippy::box_collection)]
pub struct Previews(Option<Box<Vec<PreviewOverride>>>);

impl Previews {
    /// Every override, ended or not.
    pub fn all(&self) -> &[PreviewOverride] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }

    /// The override of `app` that has not ended at `now`.
    pub fn active(&self, app: &AppId, now: u64) -> Option<&PreviewOverride> {
        self.all()
            .iter()
            .find(|preview| preview.app == *app && preview.until > now)
    }

    /// These overrides with `preview` in place of any other for its app, and without ended ones.
    #[must_use]
    pub fn with(&self, preview: PreviewOverride, now: u64) -> Previews {
        let mut kept: Vec<PreviewOverride> = self
            .all()
            .iter()
            .filter(|other| other.app != preview.app && other.until > now)
            .cloned()
            .collect();
        kept.push(preview);
        Previews(Some(Box::new(kept)))
    }

    /// These overrides without the one of `app` (and without ended ones).
    #[must_use]
    pub fn without(&self, app: &AppId, now: u64) -> Previews {
        let kept: Vec<PreviewOverride> = self
            .all()
            .iter()
            .filter(|other| other.app != *app && other.until > now)
            .cloned()
            .collect();
        Previews::from(kept)
    }
}

impl From<Vec<PreviewOverride>> for Previews {
    fn from(list: Vec<PreviewOverride>) -> Self {
        Previews((!list.is_empty()).then(|| Box::new(list)))
    }
}

/// One server-side session.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: SessionId,
    /// The tenant that signed this user in; the session is worthless on any other tenant.
    pub tenant: TenantId,
    pub user: User,
    /// Sent by the shell with state-changing requests; see `http::csrf`.
    pub csrf_token: String,
    pub created_at: u64,
    /// The last activity the store has recorded (written at most every `TOUCH_INTERVAL_SECS`, or a
    /// quarter of the idle timeout if shorter); [`Session::last_active`] is exact.
    pub last_seen: u64,
    /// Present for OIDC sign-ins; dev sign-in has no tokens. Boxed: the tokens' record is 128 bytes,
    /// which every session paid inline before, with or without tokens (bench/README.md, "Memory").
    pub oidc: Option<Box<OidcTokens>>,
    /// Apps this user sent to a preview upstream for this session only (`apps::preview`); they end
    /// with it.
    pub previews: Previews,
    /// Activity recorded in memory on every request, between writes of `last_seen`.
    activity: Activity,
    /// What requests derive from this record in one tenant config (roles, identity values,
    /// assertions), kept for the next request; see `auth::principal`.
    principal: PrincipalSlot,
}

/// The last activity of a session in this process, in unix seconds (0: none beyond `last_seen`). Shared
/// by every copy of the record (a clone points at the same counter), so a request that holds an older
/// copy still records on the current one. A store that hands out fresh copies (a network store) starts
/// each at 0 and relies on `last_seen`, which [`Sessions::lookup`] writes often enough for that.
#[derive(Clone, Default)]
struct Activity(Arc<AtomicU64>);

impl Activity {
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn record(&self, now: u64) {
        self.0.fetch_max(now, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Activity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.get())
    }
}

impl Session {
    pub fn new(tenant: &TenantId, user: User) -> Self {
        let now = unix_now();
        Session {
            id: SessionId::generate(),
            tenant: tenant.clone(),
            user,
            csrf_token: random_token::<16>(),
            created_at: now,
            last_seen: now,
            oidc: None,
            previews: Previews::default(),
            activity: Activity::default(),
            principal: PrincipalSlot::default(),
        }
    }

    pub fn with_oidc(mut self, tokens: OidcTokens) -> Self {
        self.oidc = Some(Box::new(tokens));
        self
    }

    /// Whether a back-channel logout for `subject`/`sid` of `tenant` covers this session: by `sid` when
    /// the token names one (and then the subject too, if named), else every session of the subject.
    pub fn matches_logout(
        &self,
        tenant: &TenantId,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> bool {
        if self.tenant != *tenant {
            return false;
        }
        let subject_ok = subject.is_none_or(|subject| subject == self.user.subject);
        match sid {
            Some(sid) => {
                subject_ok && self.oidc.as_ref().and_then(|t| t.sid.as_deref()) == Some(sid)
            }
            None => subject.is_some() && subject_ok,
        }
    }

    /// Who this record's user is in `tenant` (roles, identity values, assertions): derived on the
    /// first request in that tenant config and kept with the record (see `auth::principal`).
    pub(crate) fn principal(&self, tenant: &Arc<Tenant>) -> Arc<Principal> {
        self.principal.get(tenant, self)
    }

    /// The last activity, exact in this process: the later of the stored and the in-memory record.
    pub fn last_active(&self) -> u64 {
        self.last_seen.max(self.activity.get())
    }

    pub(crate) fn expired(&self, now: u64, settings: &SessionSettings) -> bool {
        now.saturating_sub(self.last_active()) > settings.idle_timeout.as_secs()
            || now.saturating_sub(self.created_at) > settings.absolute_timeout.as_secs()
    }
}

/// Write activity to the store at most this often per session (or every quarter of the idle timeout, if
/// that is shorter), so a busy page does not write on every request. Between writes the activity is
/// kept in memory, so the idle timeout counts it exactly.
const TOUCH_INTERVAL_SECS: u64 = 30;

/// The session rules on top of a store: tenant binding and timeouts. The store is private: every read
/// and write goes through a method here.
#[derive(Clone)]
pub struct Sessions {
    store: Arc<dyn SessionStore>,
}

/// How many sessions a store keeps (`sessions.max_sessions`, `sessions.max_sessions_per_user`).
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub total: usize,
    pub per_user: usize,
}

impl SessionLimits {
    pub fn of(settings: &SessionSettings) -> Self {
        SessionLimits {
            total: settings.max_sessions,
            per_user: settings.max_sessions_per_user,
        }
    }
}

/// Which limit made a new sign-in end an older session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictionReason {
    /// The user had `max_sessions_per_user` already.
    PerUser,
    /// The store had `max_sessions` already.
    Total,
}

impl EvictionReason {
    /// The config key that was reached, for the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            EvictionReason::PerUser => "max_sessions_per_user",
            EvictionReason::Total => "max_sessions",
        }
    }
}

/// A session a new sign-in ended, and why.
#[derive(Debug)]
pub struct Eviction {
    pub session: Arc<Session>,
    pub reason: EvictionReason,
}

/// Why a presented session id did not yield a session.
#[derive(Debug, PartialEq, Eq)]
pub enum LookupMiss {
    Unknown,
    Expired,
    /// Valid, but issued by another tenant: refused and audited (BRIEF invariant 5).
    OtherTenant(TenantId),
    /// The store failed; the request fails (503) rather than being treated as signed out.
    StoreDown(StoreError),
}

impl Sessions {
    pub fn new(store: Arc<dyn SessionStore>) -> Self {
        Sessions { store }
    }

    /// Sessions in this process's memory (see [`MemoryStore`]).
    pub fn in_memory() -> Self {
        Self::new(Arc::new(MemoryStore::default()))
    }

    /// How many sessions there are (expired ones not yet purged included), if the store can tell.
    pub fn count(&self) -> Option<usize> {
        self.store.count()
    }

    /// The session of `id` if it belongs to `tenant` and has not timed out; records activity.
    pub async fn lookup(
        &self,
        id: &SessionId,
        tenant: &TenantId,
        settings: &SessionSettings,
    ) -> Result<Arc<Session>, LookupMiss> {
        let session = match self.store.get(id).await {
            Ok(Some(session)) => session,
            Ok(None) => return Err(LookupMiss::Unknown),
            Err(error) => {
                tracing::error!(%error, "session lookup failed");
                return Err(LookupMiss::StoreDown(error));
            }
        };
        if session.tenant != *tenant {
            return Err(LookupMiss::OtherTenant(session.tenant.clone()));
        }
        let now = unix_now();
        let session = if session.expired(now, settings) {
            // It may look idle here only: another instance may have recorded use since this copy.
            match self.store.get_current(id).await {
                Ok(Some(current)) if !current.expired(now, settings) => current,
                Ok(None) => return Err(LookupMiss::Expired),
                Ok(Some(_)) => {
                    let _ = self.store.remove(id).await;
                    return Err(LookupMiss::Expired);
                }
                Err(error) => return Err(LookupMiss::StoreDown(error)),
            }
        } else {
            session
        };
        session.activity.record(now);
        let write_every = TOUCH_INTERVAL_SECS
            .min(settings.idle_timeout.as_secs() / 4)
            .max(1);
        if now.saturating_sub(session.last_seen) >= write_every {
            if let Err(error) = self.store.touch(id, now).await {
                tracing::warn!(%error, "session touch failed");
            }
        }
        Ok(session)
    }

    /// Stores a new sign-in's session, ending the least recently active sessions beyond the limits
    /// (the user's own first); returns the ended ones, for the audit trail.
    pub async fn start(
        &self,
        session: Session,
        settings: &SessionSettings,
    ) -> Result<Vec<Eviction>, StoreError> {
        self.store
            .insert_new(session, SessionLimits::of(settings))
            .await
    }

    /// Replaces the record of a session that still exists (a refresh); false if it has ended
    /// meanwhile, and then nothing is written.
    pub async fn update(&self, session: Session) -> Result<bool, StoreError> {
        self.store.update(session).await
    }

    /// Stores a record as it is, new or not (a new sign-in goes through [`Self::start`], a refresh
    /// through [`Self::update`]).
    pub async fn insert(&self, session: Session) -> Result<(), StoreError> {
        self.store.insert(session).await
    }

    /// The record as stored now, without the tenant and timeout checks of [`Self::lookup`]: for a caller
    /// that already passed them in this request (re-reading after waiting for a refresh).
    pub async fn current(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        self.store.get_current(id).await
    }

    /// Follows a reload's session settings (Redis TTLs follow the new timeouts).
    pub fn apply(&self, settings: &SessionSettings) {
        self.store.apply(settings);
    }

    /// Another instance changed or ended the session of `tag` (`None`: messages may have been
    /// missed); copies this instance keeps are dropped. Fed by the Redis subscription.
    pub fn invalidated(&self, tag: Option<&str>) {
        self.store.invalidated(tag);
    }

    /// Ends one session (sign-out, a failed refresh), with its cookie jars.
    pub async fn remove(&self, id: &SessionId) -> Result<(), StoreError> {
        self.store.remove(id).await
    }

    /// Ends the sessions of `tenant` a back-channel logout names; returns how many.
    pub async fn remove_for_logout(
        &self,
        tenant: &TenantId,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> Result<usize, StoreError> {
        self.store.remove_for_logout(tenant, subject, sid).await
    }

    /// The session's cookie jar for `app` (`cookies: jar`).
    pub async fn jar(
        &self,
        id: &SessionId,
        app: &AppId,
    ) -> Result<Option<Arc<AppJar>>, StoreError> {
        self.store.jar(id, app).await
    }

    /// Keeps an app's `Set-Cookie`s in the session's jar; nothing for a session that has ended.
    pub async fn update_jar(
        &self,
        id: &SessionId,
        app: &AppId,
        cookies: Vec<SetCookie>,
        now: u64,
    ) -> Result<(), StoreError> {
        self.store.update_jar(id, app, cookies, now).await
    }

    /// Runs forever, dropping expired sessions so memory follows live sessions, not past traffic.
    pub async fn purge_periodically(self, settings: impl Fn() -> SessionSettings + Send + 'static) {
        let mut interval = tokio::time::interval(Duration::from_secs(60));
        loop {
            interval.tick().await;
            match self.store.purge_expired(unix_now(), &settings()).await {
                Ok(0) => {}
                Ok(count) => tracing::debug!(count, "purged expired sessions"),
                Err(error) => tracing::warn!(%error, "session purge failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_parse_back() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.as_str()), Some(a.clone()));
        assert_eq!(SessionId::parse("short"), None);
        assert_eq!(SessionId::parse(&format!("{}!", &a.as_str()[..42])), None);
        assert!(!format!("{a:?}").contains(a.as_str()));
        assert_eq!(a.log_hash().len(), 16);
    }

    /// A session's record (with its `Arc`'s two counters) stays within mimalloc's 224-byte size class:
    /// the OIDC tokens are boxed, the id is an `Arc<str>` shared with the store's key (bench/README.md,
    /// "Memory"). It was 312 bytes, in the 384-byte class.
    #[test]
    fn a_session_record_stays_small() {
        let size = std::mem::size_of::<Session>();
        assert!(size + 16 <= 224, "Session is {size} bytes");
        assert_eq!(std::mem::size_of::<SessionId>(), 16);
        assert_eq!(std::mem::size_of::<OidcTokens>(), 128);
    }
}
