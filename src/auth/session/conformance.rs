//! The `SessionStore` conformance suite: what every store must do, written once. `MemoryStore` runs it
//! (see `store.rs`); `RedisStore` runs the same functions against a live server (see `redis.rs`).
//!
//! Each check takes a fresh store from `make`, so stores that share a backend must give each call its
//! own namespace. Tenant binding and timeouts are checked through [`Sessions`], the way the server uses
//! a store.

use std::sync::Arc;
use std::time::Duration;

use super::{
    EvictionReason, LookupMiss, OidcTokens, PreviewOverride, Session, SessionId, SessionLimits,
    SessionStore, Sessions, User,
};
use crate::clock::unix_now;
use crate::config::{AppId, SessionSettings, TenantId};
use crate::jar::SetCookie;

/// Runs every check against stores from `make`.
pub(crate) async fn run<S: SessionStore>(make: impl Fn() -> S) {
    insert_get_and_remove(&make()).await;
    insert_replaces_a_record_with_the_same_id(&make()).await;
    update_never_brings_an_ended_session_back(&make()).await;
    previews_are_kept_with_the_record(&make()).await;
    touch_records_activity(&make()).await;
    purge_drops_only_expired_sessions(&make()).await;
    logout_by_subject_and_sid_ends_only_the_named_sessions(&make()).await;
    jars_end_with_their_session(&make()).await;
    new_sign_ins_end_the_least_recently_active_beyond_the_limits(&make()).await;
    lookup_binds_sessions_to_their_tenant_and_timeouts(make()).await;
    activity_between_writes_counts_for_the_idle_timeout(make()).await;
}

pub(crate) fn settings() -> SessionSettings {
    SessionSettings {
        idle_timeout: Duration::from_secs(60),
        absolute_timeout: Duration::from_secs(600),
        pending_sign_ins_per_client: 10,
        pending_sign_ins_per_tenant: 100,
        ..SessionSettings::default()
    }
}

/// A user with `subject` (for every store's tests).
pub(crate) fn user(subject: &str) -> User {
    User {
        subject: subject.into(),
        name: subject.to_uppercase(),
        email: format!("{subject}@x"),
        groups: vec!["g".into()],
    }
}

/// A tenant id as config compilation would make it.
fn tenant(id: &str) -> TenantId {
    TenantId::new(id)
}

fn app(id: &str) -> AppId {
    AppId::new(id)
}

fn with_sid(tenant_id: &str, subject: &str, sid: &str) -> Session {
    let now = unix_now();
    Session::new(&tenant(tenant_id), user(subject)).with_oidc(OidcTokens {
        access_token: "at".into(),
        expires_at: now + 600,
        refresh_at: now + 500,
        refresh_token: None,
        id_token: "id".into(),
        sid: Some(sid.into()),
        refresh_deferred_since: None,
    })
}

async fn present(store: &impl SessionStore, id: &SessionId) -> bool {
    store.get(id).await.unwrap().is_some()
}

async fn insert_get_and_remove(store: &impl SessionStore) {
    let session = with_sid("acme", "alice", "sid-1");
    let id = session.id.clone();
    assert!(!present(store, &id).await, "unknown before insert");
    store.insert(session).await.unwrap();
    let stored = store.get(&id).await.unwrap().unwrap();
    assert_eq!(stored.id, id);
    assert_eq!(stored.tenant, "acme");
    assert_eq!(stored.user, user("alice"));
    assert_eq!(
        stored.oidc.as_ref().and_then(|t| t.sid.as_deref()),
        Some("sid-1")
    );
    store.remove(&id).await.unwrap();
    assert!(!present(store, &id).await, "gone after remove");
    store.remove(&id).await.unwrap();
    store.touch(&id, unix_now()).await.unwrap();
    assert!(!present(store, &id).await, "touch does not bring it back");
}

async fn insert_replaces_a_record_with_the_same_id(store: &impl SessionStore) {
    let mut session = Session::new(&tenant("acme"), user("alice"));
    let id = session.id.clone();
    store.insert(session.clone()).await.unwrap();
    session.user.groups = vec!["new".into()];
    store.insert(session).await.unwrap();
    let stored = store.get(&id).await.unwrap().unwrap();
    assert_eq!(stored.user.groups, ["new"]);
}

/// A session's preview overrides come back as they were written, and an update can end one.
async fn previews_are_kept_with_the_record(store: &impl SessionStore) {
    let mut session = Session::new(&tenant("acme"), user("alice"));
    let id = session.id.clone();
    let now = unix_now();
    let preview = PreviewOverride {
        app: app("wiki"),
        upstream: "http://pr-7.preview.internal/base".into(),
        since: now,
        until: now + 3600,
    };
    session.previews = session.previews.with(preview.clone(), now);
    store.insert(session.clone()).await.unwrap();
    let stored = store.get(&id).await.unwrap().unwrap();
    assert_eq!(stored.previews.all(), std::slice::from_ref(&preview));
    assert_eq!(stored.previews.active(&app("wiki"), now), Some(&preview));
    assert_eq!(stored.previews.active(&app("wiki"), now + 3600), None);
    assert_eq!(stored.previews.active(&app("other"), now), None);
    session.previews = stored.previews.without(&app("wiki"), now);
    assert!(store.update(session).await.unwrap());
    let stored = store.get_current(&id).await.unwrap().unwrap();
    assert!(stored.previews.all().is_empty());
}

/// A refresh that finishes after the session ended (sign-out, logout, eviction) writes nothing.
async fn update_never_brings_an_ended_session_back(store: &impl SessionStore) {
    let mut session = Session::new(&tenant("acme"), user("alice"));
    let id = session.id.clone();
    store.insert(session.clone()).await.unwrap();
    session.user.groups = vec!["refreshed".into()];
    assert!(store.update(session.clone()).await.unwrap());
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().user.groups,
        ["refreshed"]
    );
    store.remove(&id).await.unwrap();
    assert!(!store.update(session).await.unwrap());
    assert!(!present(store, &id).await, "an ended session stays ended");
}

async fn touch_records_activity(store: &impl SessionStore) {
    let session = Session::new(&tenant("acme"), user("alice"));
    let id = session.id.clone();
    let later = session.last_seen + 45;
    store.insert(session).await.unwrap();
    store.touch(&id, later).await.unwrap();
    assert_eq!(store.get(&id).await.unwrap().unwrap().last_seen, later);
}

async fn purge_drops_only_expired_sessions(store: &impl SessionStore) {
    let fresh = Session::new(&tenant("acme"), user("a"));
    let mut idle = Session::new(&tenant("acme"), user("b"));
    idle.last_seen -= 61;
    let mut old = Session::new(&tenant("globex"), user("c"));
    old.created_at -= 601;
    let ids = [fresh.id.clone(), idle.id.clone(), old.id.clone()];
    for session in [fresh, idle, old] {
        store.insert(session).await.unwrap();
    }
    assert_eq!(
        store.purge_expired(unix_now(), &settings()).await.unwrap(),
        2
    );
    assert!(present(store, &ids[0]).await);
    assert!(!present(store, &ids[1]).await && !present(store, &ids[2]).await);
    assert_eq!(
        store.purge_expired(unix_now(), &settings()).await.unwrap(),
        0
    );
}

async fn logout_by_subject_and_sid_ends_only_the_named_sessions(store: &impl SessionStore) {
    let alice_1 = with_sid("acme", "alice", "sid-1");
    let alice_2 = with_sid("acme", "alice", "sid-2");
    let bob = with_sid("acme", "bob", "sid-3");
    let alice_elsewhere = with_sid("globex", "alice", "sid-1");
    let ids: Vec<SessionId> = [&alice_1, &alice_2, &bob, &alice_elsewhere]
        .iter()
        .map(|s| s.id.clone())
        .collect();
    for session in [alice_1, alice_2, bob, alice_elsewhere] {
        store.insert(session).await.unwrap();
    }
    let acme = tenant("acme");
    let ended = |subject, sid| store.remove_for_logout(&acme, subject, sid);
    assert_eq!(ended(None, None).await.unwrap(), 0, "names nobody");
    assert_eq!(ended(Some("bob"), Some("sid-1")).await.unwrap(), 0);
    assert_eq!(ended(None, Some("sid-1")).await.unwrap(), 1);
    assert!(!present(store, &ids[0]).await);
    assert!(
        present(store, &ids[3]).await,
        "another tenant's session stays"
    );
    assert_eq!(ended(Some("alice"), None).await.unwrap(), 1);
    assert!(!present(store, &ids[1]).await);
    assert!(present(store, &ids[2]).await && present(store, &ids[3]).await);
}

/// Jars live and die with their session, however it ends; a late response keeps nothing.
pub(crate) async fn jars_end_with_their_session(store: &impl SessionStore) {
    let now = unix_now();
    let cookie = || vec![SetCookie::parse("sid=1; Path=/", "/", now).unwrap()];
    let logged_out = with_sid("acme", "alice", "idp-sid");
    let mut idle = Session::new(&tenant("acme"), user("b"));
    idle.last_seen -= 61;
    let signed_out = Session::new(&tenant("acme"), user("c"));
    let ids: Vec<SessionId> = [&logged_out, &idle, &signed_out]
        .iter()
        .map(|s| s.id.clone())
        .collect();
    for session in [logged_out, idle, signed_out] {
        store.insert(session).await.unwrap();
    }
    for id in &ids {
        store
            .update_jar(id, &app("app"), cookie(), now)
            .await
            .unwrap();
        assert!(store.jar(id, &app("app")).await.unwrap().is_some());
        assert!(store.jar(id, &app("other")).await.unwrap().is_none());
    }
    store.remove(&ids[2]).await.unwrap();
    store.purge_expired(now, &settings()).await.unwrap();
    store
        .remove_for_logout(&tenant("acme"), None, Some("idp-sid"))
        .await
        .unwrap();
    for id in &ids {
        assert!(store.jar(id, &app("app")).await.unwrap().is_none());
        store
            .update_jar(id, &app("app"), cookie(), now)
            .await
            .unwrap();
        assert!(store.jar(id, &app("app")).await.unwrap().is_none());
    }
}

/// A new sign-in ends the user's least recently active sessions beyond the per-user limit, then anyone's
/// beyond the total, never itself; the ended sessions are returned (for the audit) and gone, jars too.
async fn new_sign_ins_end_the_least_recently_active_beyond_the_limits(store: &impl SessionStore) {
    let limits = SessionLimits {
        total: 4,
        per_user: 2,
    };
    let aged = |subject: &str, tenant_id: &str, idle: u64| {
        let mut session = Session::new(&tenant(tenant_id), user(subject));
        session.last_seen -= idle;
        session
    };
    let alice_old = aged("alice", "acme", 30);
    let alice_recent = aged("alice", "acme", 10);
    let alice_elsewhere = aged("alice", "globex", 50);
    let ids: Vec<SessionId> = [&alice_old, &alice_recent, &alice_elsewhere]
        .iter()
        .map(|s| s.id.clone())
        .collect();
    for session in [alice_old, alice_recent, alice_elsewhere] {
        assert!(store.insert_new(session, limits).await.unwrap().is_empty());
    }
    let now = unix_now();
    let cookie = vec![SetCookie::parse("sid=1; Path=/", "/", now).unwrap()];
    store
        .update_jar(&ids[0], &app("app"), cookie, now)
        .await
        .unwrap();
    assert!(store.jar(&ids[0], &app("app")).await.unwrap().is_some());
    // A third alice session of acme: her least recently active one of acme goes, not globex's.
    let third = Session::new(&tenant("acme"), user("alice"));
    let third_id = third.id.clone();
    let ended = store.insert_new(third, limits).await.unwrap();
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].session.id, ids[0]);
    assert_eq!(ended[0].reason, EvictionReason::PerUser);
    assert!(!present(store, &ids[0]).await);
    assert!(store.jar(&ids[0], &app("app")).await.unwrap().is_none());
    assert!(present(store, &ids[1]).await && present(store, &ids[2]).await);
    // The store holds 3; bob's makes 4; carol's makes 5, over the total: the least recently active
    // of all (alice at globex, idle 50 s) goes.
    assert!(
        store
            .insert_new(aged("bob", "acme", 5), limits)
            .await
            .unwrap()
            .is_empty()
    );
    let ended = store
        .insert_new(Session::new(&tenant("acme"), user("carol")), limits)
        .await
        .unwrap();
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].session.id, ids[2]);
    assert_eq!(ended[0].reason, EvictionReason::Total);
    assert!(present(store, &third_id).await && present(store, &ids[1]).await);
}

/// The idle timeout counts activity to the second although the store is written only now and then:
/// a session used a moment ago is alive even when its stored `last_seen` is older than the timeout.
async fn activity_between_writes_counts_for_the_idle_timeout(store: impl SessionStore) {
    let sessions = Sessions::new(Arc::new(store));
    // Seen 10 s ago by the store: too recent to write again (every 15 s with a 60 s idle timeout).
    let mut session = Session::new(&tenant("acme"), user("a"));
    session.last_seen -= 10;
    let id = session.id.clone();
    sessions.insert(session).await.unwrap();
    let used = sessions
        .lookup(&id, &tenant("acme"), &settings())
        .await
        .unwrap();
    let now = unix_now();
    assert!(used.last_active() >= now, "the lookup is the last activity");
    // 55 s from now is 65 s after the stored activity, but only 55 s after the real one.
    assert!(!used.expired(now + 55, &settings()));
    assert!(used.expired(now + 62, &settings()));
}

async fn lookup_binds_sessions_to_their_tenant_and_timeouts(store: impl SessionStore) {
    let sessions = Sessions::new(Arc::new(store));
    let session = Session::new(&tenant("acme"), user("a"));
    let id = session.id.clone();
    sessions.insert(session).await.unwrap();
    assert!(
        sessions
            .lookup(&id, &tenant("acme"), &settings())
            .await
            .is_ok()
    );
    let miss = sessions
        .lookup(&id, &tenant("globex"), &settings())
        .await
        .unwrap_err();
    assert_eq!(miss, LookupMiss::OtherTenant(tenant("acme")));
    assert!(
        sessions.current(&id).await.unwrap().is_some(),
        "refused, not removed"
    );

    let mut idle = Session::new(&tenant("acme"), user("b"));
    idle.last_seen -= 61;
    let idle_id = idle.id.clone();
    sessions.insert(idle).await.unwrap();
    let miss = sessions
        .lookup(&idle_id, &tenant("acme"), &settings())
        .await;
    assert_eq!(miss.unwrap_err(), LookupMiss::Expired);
    let miss = sessions
        .lookup(&idle_id, &tenant("acme"), &settings())
        .await;
    assert_eq!(
        miss.unwrap_err(),
        LookupMiss::Unknown,
        "an expired session is removed"
    );

    let mut old = Session::new(&tenant("acme"), user("c"));
    old.created_at -= 601;
    let old_id = old.id.clone();
    sessions.insert(old).await.unwrap();
    let miss = sessions.lookup(&old_id, &tenant("acme"), &settings()).await;
    assert_eq!(miss.unwrap_err(), LookupMiss::Expired);

    let mut quiet = Session::new(&tenant("acme"), user("d"));
    quiet.last_seen -= 40;
    let (quiet_id, seen) = (quiet.id.clone(), quiet.last_seen);
    sessions.insert(quiet).await.unwrap();
    sessions
        .lookup(&quiet_id, &tenant("acme"), &settings())
        .await
        .unwrap();
    let touched = sessions.current(&quiet_id).await.unwrap().unwrap();
    assert!(touched.last_seen > seen, "a lookup records activity");
}
