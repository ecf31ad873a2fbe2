//! Server-side sessions: the opaque id the browser holds, the record the server keeps, and the store
//! behind a trait so a shared store (Redis) can replace the in-memory one for scale-out.
//!
//! The cookie carries only a random id; user data and (later) tokens stay in the store. A store knows
//! nothing about timeouts or tenants: [`Sessions`] enforces both on every lookup.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::clock::unix_now;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::config::SessionSettings;
use crate::jar::{AppJar, SessionJars, SetCookie};

/// Name of the session cookie on plain-HTTP origins.
pub const COOKIE_NAME: &str = "portico_session";
/// Name on HTTPS origins: the `__Host-` prefix makes browsers insist on Secure, Path=/ and no Domain.
pub const SECURE_COOKIE_NAME: &str = "__Host-portico_session";

/// An opaque session id: 256 random bits, base64url. Never logged; see [`SessionId::log_hash`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        SessionId(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts only values of the shape [`generate`](Self::generate) makes, so junk never reaches a store.
    pub fn parse(value: &str) -> Option<Self> {
        let well_formed = value.len() == 43
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| SessionId(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short, one-way tag for logs and audit events that correlates without revealing the id.
    pub fn log_hash(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
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
}

impl std::fmt::Debug for OidcTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcTokens")
            .field("expires_at", &self.expires_at)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("sid", &self.sid)
            .finish_non_exhaustive()
    }
}

/// One server-side session.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: SessionId,
    /// The tenant that signed this user in; the session is worthless on any other tenant.
    pub tenant: String,
    pub user: User,
    /// Sent by the shell with state-changing requests; see `auth::csrf`.
    pub csrf_token: String,
    pub created_at: u64,
    pub last_seen: u64,
    /// Present for OIDC sign-ins; dev sign-in has no tokens.
    pub oidc: Option<OidcTokens>,
}

impl Session {
    pub fn new(tenant: &str, user: User) -> Self {
        let now = unix_now();
        let mut csrf = [0u8; 16];
        rand::rng().fill_bytes(&mut csrf);
        Session {
            id: SessionId::generate(),
            tenant: tenant.to_owned(),
            user,
            csrf_token: URL_SAFE_NO_PAD.encode(csrf),
            created_at: now,
            last_seen: now,
            oidc: None,
        }
    }

    pub fn with_oidc(mut self, tokens: OidcTokens) -> Self {
        self.oidc = Some(tokens);
        self
    }

    /// Whether a back-channel logout for `subject`/`sid` of `tenant` covers this session: by `sid` when
    /// the token names one (and then the subject too, if named), else every session of the subject.
    pub fn matches_logout(&self, tenant: &str, subject: Option<&str>, sid: Option<&str>) -> bool {
        if self.tenant != tenant {
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

    fn expired(&self, now: u64, settings: &SessionSettings) -> bool {
        now.saturating_sub(self.last_seen) > settings.idle_timeout.as_secs()
            || now.saturating_sub(self.created_at) > settings.absolute_timeout.as_secs()
    }
}

/// A session store failed (a network store being down); callers treat the user as signed out.
#[derive(Debug, thiserror::Error)]
#[error("session store unavailable: {0}")]
pub struct StoreError(pub String);

/// Where sessions live. Implementations must be safe to share between instances of portico.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    async fn insert(&self, session: Session) -> Result<(), StoreError>;
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
        tenant: &str,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> Result<usize, StoreError>;
    /// The cookies the session's jar holds for `app` (`cookies: jar`), if any. Jars live and die with
    /// their session: every way a session ends above must drop its jars too.
    async fn jar(&self, id: &SessionId, app: &str) -> Result<Option<Arc<AppJar>>, StoreError>;
    /// Applies an app's `Set-Cookie`s to the session's jar (see `jar::SessionJars::apply`). A session
    /// that has ended gets no jar back: a late response cannot outlive a sign-out.
    async fn update_jar(
        &self,
        id: &SessionId,
        app: &str,
        cookies: Vec<SetCookie>,
        now: u64,
    ) -> Result<(), StoreError>;
}

/// Sessions in this process's memory. Lost on restart; not shared between instances.
#[derive(Default)]
pub struct MemoryStore {
    sessions: RwLock<HashMap<SessionId, Arc<Session>>>,
    /// Each session's cookie jars, beside the session and removed with it (lock order: sessions first).
    jars: RwLock<HashMap<SessionId, SessionJars>>,
}

impl MemoryStore {
    /// Drops the jars of sessions that are gone; called with the sessions' write lock held.
    fn drop_ended_jars(&self, sessions: &HashMap<SessionId, Arc<Session>>) {
        if let Ok(mut jars) = self.jars.write() {
            jars.retain(|id, _| sessions.contains_key(id));
        }
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn insert(&self, session: Session) -> Result<(), StoreError> {
        let mut sessions = self
            .sessions
            .write()
            .map_err(|_| StoreError("lock poisoned".into()))?;
        sessions.insert(session.id.clone(), Arc::new(session));
        Ok(())
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        let sessions = self
            .sessions
            .read()
            .map_err(|_| StoreError("lock poisoned".into()))?;
        Ok(sessions.get(id).cloned())
    }

    async fn touch(&self, id: &SessionId, now: u64) -> Result<(), StoreError> {
        let mut sessions = self
            .sessions
            .write()
            .map_err(|_| StoreError("lock poisoned".into()))?;
        if let Some(session) = sessions.get_mut(id) {
            // Copies the session only while a request still holds the old one (once per interval).
            Arc::make_mut(session).last_seen = now;
        }
        Ok(())
    }

    async fn remove(&self, id: &SessionId) -> Result<(), StoreError> {
        let mut sessions = self
            .sessions
            .write()
            .map_err(|_| StoreError("lock poisoned".into()))?;
        sessions.remove(id);
        if let Ok(mut jars) = self.jars.write() {
            jars.remove(id);
        }
        Ok(())
    }

    async fn purge_expired(
        &self,
        now: u64,
        settings: &SessionSettings,
    ) -> Result<usize, StoreError> {
        let mut sessions = self
            .sessions
            .write()
            .map_err(|_| StoreError("lock poisoned".into()))?;
        let before = sessions.len();
        sessions.retain(|_, session| !session.expired(now, settings));
        self.drop_ended_jars(&sessions);
        Ok(before - sessions.len())
    }

    async fn remove_for_logout(
        &self,
        tenant: &str,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> Result<usize, StoreError> {
        let mut sessions = self
            .sessions
            .write()
            .map_err(|_| StoreError("lock poisoned".into()))?;
        let before = sessions.len();
        sessions.retain(|_, session| !session.matches_logout(tenant, subject, sid));
        self.drop_ended_jars(&sessions);
        Ok(before - sessions.len())
    }

    async fn jar(&self, id: &SessionId, app: &str) -> Result<Option<Arc<AppJar>>, StoreError> {
        let jars = self
            .jars
            .read()
            .map_err(|_| StoreError("lock poisoned".into()))?;
        Ok(jars.get(id).and_then(|jars| jars.app(app)))
    }

    async fn update_jar(
        &self,
        id: &SessionId,
        app: &str,
        cookies: Vec<SetCookie>,
        now: u64,
    ) -> Result<(), StoreError> {
        let sessions = self
            .sessions
            .read()
            .map_err(|_| StoreError("lock poisoned".into()))?;
        if !sessions.contains_key(id) {
            return Ok(());
        }
        let mut jars = self
            .jars
            .write()
            .map_err(|_| StoreError("lock poisoned".into()))?;
        let session_jars = jars.entry(id.clone()).or_default();
        session_jars.apply(app, cookies, now);
        if session_jars.is_empty() {
            jars.remove(id);
        }
        Ok(())
    }
}

/// Touch the store at most this often per session, so a busy page does not write on every request.
const TOUCH_INTERVAL_SECS: u64 = 30;

/// The session rules on top of a store: tenant binding and timeouts.
#[derive(Clone)]
pub struct Sessions {
    pub store: Arc<dyn SessionStore>,
}

/// Why a presented session id did not yield a session.
#[derive(Debug, PartialEq, Eq)]
pub enum LookupMiss {
    Unknown,
    Expired,
    /// Valid, but issued by another tenant: refused and audited (BRIEF invariant 5).
    OtherTenant(String),
    StoreDown,
}

impl Sessions {
    pub async fn lookup(
        &self,
        id: &SessionId,
        tenant: &str,
        settings: &SessionSettings,
    ) -> Result<Arc<Session>, LookupMiss> {
        let session = match self.store.get(id).await {
            Ok(Some(session)) => session,
            Ok(None) => return Err(LookupMiss::Unknown),
            Err(error) => {
                tracing::error!(%error, "session lookup failed");
                return Err(LookupMiss::StoreDown);
            }
        };
        if session.tenant != tenant {
            return Err(LookupMiss::OtherTenant(session.tenant.clone()));
        }
        let now = unix_now();
        if session.expired(now, settings) {
            let _ = self.store.remove(id).await;
            return Err(LookupMiss::Expired);
        }
        if now.saturating_sub(session.last_seen) >= TOUCH_INTERVAL_SECS {
            if let Err(error) = self.store.touch(id, now).await {
                tracing::warn!(%error, "session touch failed");
            }
        }
        Ok(session)
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

    fn settings() -> SessionSettings {
        SessionSettings {
            idle_timeout: Duration::from_secs(60),
            absolute_timeout: Duration::from_secs(600),
            pending_sign_ins_per_client: 10,
            pending_sign_ins_per_tenant: 100,
        }
    }

    fn user() -> User {
        User {
            subject: "u".into(),
            name: "U".into(),
            email: "u@x".into(),
            groups: vec![],
        }
    }

    #[test]
    fn ids_are_unique_and_parse_back() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.as_str()), Some(a.clone()));
        assert_eq!(SessionId::parse("short"), None);
        assert_eq!(SessionId::parse(&format!("{}!", &a.as_str()[..42])), None);
        assert!(!format!("{a:?}").contains(a.as_str()));
    }

    #[tokio::test]
    async fn lookup_enforces_tenant_and_timeouts() {
        let sessions = Sessions {
            store: Arc::new(MemoryStore::default()),
        };
        let session = Session::new("acme", user());
        let id = session.id.clone();
        sessions.store.insert(session).await.unwrap();
        assert!(sessions.lookup(&id, "acme", &settings()).await.is_ok());
        assert_eq!(
            sessions
                .lookup(&id, "globex", &settings())
                .await
                .unwrap_err(),
            LookupMiss::OtherTenant("acme".into())
        );

        let mut idle = Session::new("acme", user());
        idle.last_seen -= 61;
        let idle_id = idle.id.clone();
        sessions.store.insert(idle).await.unwrap();
        assert_eq!(
            sessions
                .lookup(&idle_id, "acme", &settings())
                .await
                .unwrap_err(),
            LookupMiss::Expired
        );
        assert_eq!(
            sessions
                .lookup(&idle_id, "acme", &settings())
                .await
                .unwrap_err(),
            LookupMiss::Unknown
        );

        let mut old = Session::new("acme", user());
        old.created_at -= 601;
        sessions.store.insert(old).await.unwrap();
        assert_eq!(
            sessions
                .store
                .purge_expired(unix_now(), &settings())
                .await
                .unwrap(),
            1
        );
    }

    #[tokio::test]
    async fn cookie_jars_end_with_their_session_however_it_ends() {
        let store = MemoryStore::default();
        let now = unix_now();
        let cookie = || vec![SetCookie::parse("sid=1; Path=/", "/", now).unwrap()];
        let mut with_sid = Session::new("acme", user());
        with_sid.oidc = Some(OidcTokens {
            access_token: "at".into(),
            expires_at: now + 600,
            refresh_at: now + 500,
            refresh_token: None,
            id_token: "id".into(),
            sid: Some("idp-sid".into()),
        });
        let mut idle = Session::new("acme", user());
        idle.last_seen -= 61;
        let signed_out = Session::new("acme", user());
        let ids: Vec<SessionId> = [&with_sid, &idle, &signed_out]
            .iter()
            .map(|s| s.id.clone())
            .collect();
        for session in [with_sid, idle, signed_out] {
            store.insert(session).await.unwrap();
        }
        for id in &ids {
            store.update_jar(id, "app", cookie(), now).await.unwrap();
            assert!(store.jar(id, "app").await.unwrap().is_some());
            assert!(store.jar(id, "other").await.unwrap().is_none());
        }
        store.remove(&ids[2]).await.unwrap();
        store.purge_expired(now, &settings()).await.unwrap();
        store
            .remove_for_logout("acme", None, Some("idp-sid"))
            .await
            .unwrap();
        for id in &ids {
            assert!(store.jar(id, "app").await.unwrap().is_none());
            // A response that arrives after the session ended keeps nothing.
            store.update_jar(id, "app", cookie(), now).await.unwrap();
            assert!(store.jar(id, "app").await.unwrap().is_none());
        }
        assert!(store.jars.read().unwrap().is_empty());
    }
}
