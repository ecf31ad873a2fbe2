//! Redis stopped and started under two running instances (issue 12): signed-in users this instance has
//! cached keep working for `outage_grace`; everyone else gets a clear 503 (a page for a browser, JSON
//! for an API call); new sign-ins are refused with 503; `/readyz` and `/metrics` say why; and it all
//! recovers by itself when Redis returns.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::canonical_paths::Framework;
use crate::helpers::{TIMEOUT, TestServer, app, client, compile, config, tenant, user};
use crate::redis_server::RedisServer;

/// One portico instance on the shared Redis, with its admin listener.
struct Instance {
    server: TestServer,
    admin: SocketAddr,
}

impl Instance {
    async fn start(yaml: &str, dir: &std::path::Path) -> Instance {
        let (server, admin) = TestServer::start_with_admin(compile(yaml, dir)).await;
        Instance { server, admin }
    }

    async fn readyz(&self) -> Value {
        let response = client()
            .get(format!("http://{}/readyz", self.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "degraded is still in rotation"
        );
        response.json().await.unwrap()
    }

    async fn metrics(&self) -> String {
        client()
            .get(format!("http://{}/metrics", self.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Polls `/readyz` (bounded by [`TIMEOUT`]) until the session store shows `status`.
    async fn wait_for_store(&self, status: &str) -> Value {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let ready = self.readyz().await;
            if ready["sessions"]["status"] == status {
                return ready;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the session store never showed {status}: {ready}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test]
async fn a_redis_outage_degrades_and_recovers_by_itself() {
    let express = Framework::express();
    let mut redis = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let acme = tenant("acme", &["127.0.0.1"])
        .user(user("ann", &["eng"]))
        .role("developer", &["eng"])
        .app(app("reports", &["developer"]).upstream(&express.url()));
    let yaml = config()
        .top(&redis.sessions_yaml(dir.path()))
        .tenant(acme)
        .yaml();
    let a = Instance::start(&yaml, dir.path()).await;
    let b = Instance::start(&yaml, dir.path()).await;
    assert_eq!(a.readyz().await["sessions"]["status"], "ready");

    // Two sessions, both in Redis; A has used (and cached) the first, B the second.
    let cached = a.server.sign_in("ann").await;
    let uncached = a.server.sign_in("ann").await;
    let overview = "/apps/reports/overview";
    // A user browsing: a few requests (a copy read while another session's change was being
    // announced is not kept, so one request alone may leave none).
    for _ in 0..3 {
        let answer = a.server.get_as(overview, &cached).await;
        assert_eq!(answer.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        b.server.get_as(overview, &uncached).await.status(),
        StatusCode::OK,
        "shared"
    );

    redis.stop();
    let ready = b.wait_for_store("degraded").await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    let reason = ready["sessions"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("redis cannot be reached"), "{reason}");
    assert!(ready["sessions"]["since"].is_string(), "{ready}");
    a.wait_for_store("degraded").await;
    assert!(a.metrics().await.contains("portico_session_store_up 0"));

    // The user A has cached keeps working, past the copies' own age limit.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let kept = a.server.get_as(overview, &cached).await;
    let status = kept.status();
    let body = kept.text().await.unwrap();
    assert_eq!(
        status,
        StatusCode::OK,
        "cached session within the grace: {body}"
    );

    // Anyone else: a clear 503, JSON for an API call, a page for a browser; never "signed out".
    let refused = b.server.get_as(overview, &cached).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["error"], "session_store_unavailable", "{problem}");
    assert!(
        problem["message"].as_str().unwrap().contains("try again"),
        "{problem}"
    );
    let page = b
        .server
        .get(overview)
        .header("cookie", &cached.cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<html") && html.contains("try again"),
        "{html}"
    );

    // A new sign-in is refused, and nothing is half-written.
    let sign_in = a
        .server
        .post("/auth/dev-login")
        .header("origin", a.server.origin())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=ann&return_to=%2F")
        .send()
        .await
        .unwrap();
    assert_eq!(sign_in.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        crate::helpers::session_from(sign_in.headers()).is_none(),
        "no session cookie for a sign-in that was not stored"
    );

    // Redis returns (with its data): both instances recover without a restart.
    redis.restart().await;
    a.wait_for_store("ready").await;
    b.wait_for_store("ready").await;
    assert!(a.metrics().await.contains("portico_session_store_up 1"));
    assert_eq!(
        b.server.get_as(overview, &uncached).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        b.server.get_as(overview, &cached).await.status(),
        StatusCode::OK
    );
    let fresh = b.server.sign_in("ann").await;
    assert_eq!(
        a.server.get_as(overview, &fresh).await.status(),
        StatusCode::OK
    );
}
