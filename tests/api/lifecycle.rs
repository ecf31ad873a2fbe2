//! Lifecycle and health against the real OpenID Provider (`oidc-provider`, tests/support/op.mjs),
//! which the tests stop, start again and make rotate its signing key: an IdP outage after start shows
//! as a `degraded` tenant in `/readyz` (the instance stays ready) and as "sign-in unavailable" at once,
//! and its end is noticed too, both within the probe interval plus the probe timeout; a refresh that
//! cannot reach the IdP keeps the session for the grace, one the IdP refuses ends it; a rotated key is
//! fetched on the refresh path; session limits end the least recently used session, audited; the idle
//! timeout counts every request. Intervals are configured short, and every wait is bounded.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    TIMEOUT, acme, app, client, config, dev, json_error, oidc_client, tenant, user,
};
use crate::logs::Logs;
use crate::op::{Browser, RealOp, reserve_port};

/// The probe interval the OIDC tests configure, and the bound the README states for noticing an
/// outage or a recovery: the interval plus the probe timeout (5 s), with slack for a loaded machine.
const PROBE: &str = "1s";
const NOTICED_WITHIN: Duration = Duration::from_secs(1 + 5 + 4);

struct Portal {
    base: String,
    nested_base: String,
    admin: SocketAddr,
    op: RealOp,
    _dir: tempfile::TempDir,
}

/// Two OIDC tenants on one real OP (clients without back-channel logout, so signing out at the OP only
/// revokes the grants): `acme` on 127.0.0.1 and `nested` on localhost, same port; an admin listener.
async fn portal(access_token_ttl: u64, probe_interval: &str, sessions: &str) -> Portal {
    let addr = reserve_port();
    let port = addr.port();
    let acme_origin = format!("http://127.0.0.1:{port}");
    let nested_origin = format!("http://localhost:{port}");
    let client = |id: &str, origin: &str| {
        json!({
            "client_id": id,
            "client_secret": format!("{id}-secret"),
            "redirect_uris": [format!("{origin}/auth/callback")],
            "post_logout_redirect_uris": [format!("{origin}/auth/signed-out")],
        })
    };
    let op = RealOp::start(json!({
        "clients": [client("portico", &acme_origin), client("nested", &nested_origin)],
        "accessTokenTtl": access_token_ttl,
    }));
    let oidc = |id: &str| {
        format!(
            "{}, probe_interval: {probe_interval}",
            oidc_client(&op.issuer, id, &format!("{id}-secret"))
        )
    };
    let tools = || app("tools", &["developer"]).files("embedded:demo");
    let yaml = config()
        .top(&format!(
            "server: {{ listen: \"{addr}\", admin_listen: \"127.0.0.1:0\" }}"
        ))
        .top(sessions)
        .tenant(
            tenant("acme", &[&format!("127.0.0.1:{port}")])
                .public_origin(&acme_origin)
                .oidc(&oidc("portico"))
                .role("developer", &["acme-eng"])
                .app(tools()),
        )
        .tenant(
            tenant("nested", &[&format!("localhost:{port}")])
                .public_origin(&nested_origin)
                .oidc(&oidc("nested"))
                .role("developer", &["acme-eng"])
                .app(tools()),
        );
    let dir = tempfile::tempdir().unwrap();
    let app = portico::app::App::build(yaml.compile(dir.path()))
        .await
        .expect("portico starts");
    let admin = app.admin_addr().expect("admin listener");
    tokio::spawn(app.run());
    let portal = Portal {
        base: acme_origin,
        nested_base: nested_origin,
        admin,
        op,
        _dir: dir,
    };
    portal
        .wait_for("both tenants ready", TIMEOUT, |body| {
            body["sign_in"]["acme"]["status"] == "ready"
                && body["sign_in"]["nested"]["status"] == "ready"
        })
        .await;
    portal
}

impl Portal {
    async fn readyz(&self) -> (StatusCode, Value) {
        let response = client()
            .get(format!("http://{}/readyz", self.admin))
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    /// Polls `/readyz` until `done` holds for its body (asserting the instance is ready all along once
    /// started); panics with the last body after `within`.
    async fn wait_for(&self, what: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (status, body) = self.readyz().await;
            if body["status"] != "starting" {
                assert_eq!(status, StatusCode::OK, "the instance stays ready: {body}");
            }
            if done(&body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {within:?}; /readyz says {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The sample of `portico_identity_provider_up` for `tenant` on `/metrics`.
    async fn idp_up(&self, tenant: &str) -> String {
        let text = client()
            .get(format!("http://{}/metrics", self.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let prefix = format!("portico_identity_provider_up{{tenant=\"{tenant}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix}in /metrics:\n{text}"))
            .to_owned()
    }

    async fn session_status(&self, browser: &mut Browser) -> u16 {
        browser
            .fetch("GET", &format!("{}/auth/session", self.base), None)
            .await
            .0
    }
}

#[tokio::test]
async fn an_idp_outage_degrades_its_tenant_not_the_instance_and_its_end_is_noticed() {
    let portal = portal(2, PROBE, "sessions: { refresh_grace: 1m }").await;
    let mut browser = Browser::default();
    browser
        .sign_in(&portal.base, &portal.op.issuer, "dev", "/")
        .await;

    portal.op.stop();
    let body = portal
        .wait_for("the outage noticed", NOTICED_WITHIN, |body| {
            body["sign_in"]["acme"]["status"] == "degraded"
        })
        .await;
    assert_eq!(body["status"], "degraded", "{body}");
    let acme = &body["sign_in"]["acme"];
    assert!(!acme["reason"].as_str().unwrap().is_empty(), "{body}");
    assert!(acme["since"].as_str().unwrap().ends_with('Z'), "{body}");
    assert!(acme["last_success"].is_string(), "{body}");
    assert_eq!(
        portal.idp_up("acme").await,
        "0",
        "the outage shows in the metrics too"
    );

    // A browser is told at once that sign-in is unavailable, rather than sent to a dead IdP; a script
    // gets JSON.
    let page = client()
        .get(format!("{}/auth/login", portal.base))
        .header("accept", "text/html")
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.headers().get("location").is_none());
    assert_eq!(page.headers()["retry-after"], "1", "the probe interval");
    let text = page.text().await.unwrap();
    assert!(text.contains("sign-in is unavailable"), "{text}");
    let api = client()
        .get(format!("{}/auth/login", portal.base))
        .send()
        .await
        .unwrap();
    json_error(api, 503, "sign_in_unavailable").await;

    // The signed-in user's access token runs out during the outage: the session goes on (grace).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(portal.session_status(&mut browser).await, 200);
    let tools = format!("{}/apps/tools/", portal.base);
    assert_eq!(browser.get(&tools).await.status, 200);

    // The IdP comes back: noticed within the same bound; sign-in and refresh work again.
    portal.op.restart();
    portal
        .wait_for("the recovery noticed", NOTICED_WITHIN, |body| {
            body["status"] == "ready" && body["sign_in"]["acme"]["status"] == "ready"
        })
        .await;
    assert_eq!(portal.idp_up("acme").await, "1");
    assert_eq!(portal.session_status(&mut browser).await, 200);
    let login = Browser::default()
        .get(&format!("{}/auth/login", portal.base))
        .await;
    assert_eq!(login.status, 303);
    assert!(login.location.unwrap().starts_with(&portal.op.issuer));
    let mut again = Browser::default();
    again
        .sign_in(&portal.base, &portal.op.issuer, "dev", "/")
        .await;
    assert_eq!(portal.session_status(&mut again).await, 200);
}

#[tokio::test]
async fn a_refresh_that_cannot_reach_the_idp_keeps_the_session_for_the_grace_then_ends_it() {
    let (logs, _guard) = Logs::capture();
    let portal = portal(2, PROBE, "sessions: { refresh_grace: 3s }").await;
    let mut browser = Browser::default();
    browser
        .sign_in(&portal.base, &portal.op.issuer, "dev", "/")
        .await;
    portal.op.stop();

    // The access token (2 s) has run out; the IdP cannot be reached: the user keeps working.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(portal.session_status(&mut browser).await, 200);
    assert_eq!(portal.session_status(&mut browser).await, 200);
    let deferred = logs.audit("refresh_deferred");
    assert_eq!(deferred.len(), 1, "audited once per session: {deferred:?}");
    assert_eq!(deferred[0]["tenant"], "acme");
    assert!(deferred[0]["until"].is_u64(), "{deferred:?}");

    // Past the token's expiry plus the grace (3 s), the session ends, audited with the reason.
    tokio::time::sleep(Duration::from_millis(4000)).await;
    assert_eq!(portal.session_status(&mut browser).await, 401);
    let failed = logs.audit("refresh");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["outcome"], "failure");
    let reason = failed[0]["reason"].as_str().unwrap();
    assert!(reason.contains("refresh grace ran out"), "{reason}");
}

#[tokio::test]
async fn a_refresh_the_idp_refuses_ends_the_session() {
    let (logs, _guard) = Logs::capture();
    let portal = portal(2, PROBE, "").await;
    let mut browser = Browser::default();
    browser
        .sign_in(&portal.base, &portal.op.issuer, "dev", "/")
        .await;
    // The user signs out at the IdP itself, which revokes the grant (this client has no back-channel
    // logout, so portico is not told): the next refresh is refused.
    browser
        .confirm_logout_at_op(
            &format!("{}/session/end", portal.op.issuer),
            &portal.op.issuer,
        )
        .await;
    assert_eq!(portal.session_status(&mut browser).await, 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(portal.session_status(&mut browser).await, 401);
    let failed = logs.audit("refresh");
    assert_eq!(failed.len(), 1, "{failed:?}");
    let reason = failed[0]["reason"].as_str().unwrap();
    assert!(reason.contains("invalid_grant"), "{reason}");
    assert!(logs.audit("refresh_deferred").is_empty());
}

#[tokio::test]
async fn a_rotated_signing_key_is_fetched_on_refresh_and_at_the_callback() {
    // The probe would fetch the new key too; an hour keeps it out of the way, so only a token naming
    // the unknown key can make portico fetch it.
    let (logs, _guard) = Logs::capture();
    let portal = portal(2, "1h", "").await;
    let mut browser = Browser::default();
    browser
        .sign_in(&portal.base, &portal.op.issuer, "dev", "/")
        .await;
    portal.op.rotate_keys();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // The refreshed ID token is signed with the new key: fetched, verified, the session goes on.
    assert_eq!(
        portal.session_status(&mut browser).await,
        200,
        "{:?}",
        logs.audit("refresh")
    );
    assert_eq!(
        browser
            .get(&format!("{}/apps/tools/", portal.base))
            .await
            .status,
        200
    );
    // The other tenant (its own keys and rate limit) signs a new user in with the new key.
    let mut other = Browser::default();
    other
        .sign_in(&portal.nested_base, &portal.op.issuer, "dev", "/")
        .await;
    let (status, _) = other
        .fetch("GET", &format!("{}/auth/session", portal.nested_base), None)
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn session_limits_end_the_least_recently_used_session_and_audit_it() {
    let (logs, _guard) = Logs::capture();
    let server = config()
        .top("sessions: { max_sessions: 3, max_sessions_per_user: 2 }")
        .tenant(
            acme()
                .user(dev())
                .user(user("ann", &["acme-eng"]))
                .user(user("bob", &["acme-eng"]))
                .role("developer", &["acme-eng"]),
        )
        .start()
        .await;
    let status = async |session: &crate::helpers::Session| {
        server
            .get_as("/auth/session", session)
            .await
            .status()
            .as_u16()
    };
    let first = server.sign_in("dev").await;
    let second = server.sign_in("dev").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(status(&second).await, 200, "used later than the first");
    let third = server.sign_in("dev").await;
    assert_eq!(status(&first).await, 401, "the user's least recently used");
    assert_eq!(status(&second).await, 200);
    assert_eq!(status(&third).await, 200);
    let evicted = logs.audit("session_evicted");
    assert_eq!(evicted.len(), 1, "{evicted:?}");
    assert_eq!(evicted[0]["user"], "dev");
    assert_eq!(evicted[0]["reason"], "max_sessions_per_user");
    assert_eq!(evicted[0]["session"], hash_of(&logs, 0));

    // dev's two and ann's fill the instance; bob's sign-in ends the least recently used: ann's.
    let ann = server.sign_in("ann").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(status(&second).await, 200);
    assert_eq!(status(&third).await, 200);
    let bob = server.sign_in("bob").await;
    assert_eq!(status(&ann).await, 401);
    for kept in [&second, &third, &bob] {
        assert_eq!(status(kept).await, 200);
    }
    let evicted = logs.audit("session_evicted");
    assert_eq!(evicted.len(), 2, "{evicted:?}");
    assert_eq!(evicted[1]["user"], "ann");
    assert_eq!(evicted[1]["reason"], "max_sessions");
}

/// The `session` hash of the `index`th sign-in audited.
fn hash_of(logs: &Logs, index: usize) -> Value {
    logs.audit("sign_in")[index]["session"].clone()
}

#[tokio::test]
async fn the_idle_timeout_counts_every_request() {
    let server = config()
        .top("sessions: { idle_timeout: 2s, absolute_timeout: 1h }")
        .tenant(acme().user(dev()).role("developer", &["acme-eng"]))
        .start()
        .await;
    let busy = server.sign_in("dev").await;
    let quiet = server.sign_in("dev").await;
    // A request every second for 6 s: never 2 s idle, so signed in throughout.
    for second in 1..=6 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let response = server.get_as("/auth/session", &busy).await;
        assert_eq!(response.status(), StatusCode::OK, "after {second} s");
        if second == 3 {
            // No request for 3 s: signed out.
            let response = server.get_as("/auth/session", &quiet).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
    }
}
