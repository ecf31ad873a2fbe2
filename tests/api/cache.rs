//! The response cache (`cache:` on an app, `proxy.cache`), as users and the upstream see it: against
//! the stock Express app (tests/support/express-app.mjs), whose `/cache/*` answers with the headers its
//! query asks for and whose `/cache-log` says how often each URL reached it and with which
//! `If-None-Match`. Two tenants: `acme` on 127.0.0.1 and `globex` on localhost (same port), both with
//! an app `assets` in front of the same Express; `plain` is the same upstream with the cache off.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::canonical_paths::Framework;
use crate::helpers::{
    Session, TestServer, app, client, compile, config, session_from, tenant, user,
};

struct Portal {
    server: TestServer,
    admin: SocketAddr,
    express: Framework,
}

impl Portal {
    async fn start() -> Portal {
        let express = Framework::express();
        let assets = || {
            app("assets", &["developer"])
                .upstream(&express.url())
                .key("cache", "on")
                .key("cookies", "scoped")
        };
        let acme = tenant("acme", &["127.0.0.1"])
            .user(user("ann", &["eng"]))
            .user(user("bob", &["eng"]))
            .user(user("eve", &["sales"]))
            .role("developer", &["eng"])
            .role("seller", &["sales"])
            .app(assets())
            .app(app("plain", &["developer"]).upstream(&express.url()))
            .app(app("other", &["seller"]).upstream(&express.url()));
        let globex = tenant("globex", &["localhost"])
            .user(user("gil", &["eng"]))
            .role("developer", &["eng"])
            .app(assets());
        let yaml = config().tenant(acme).tenant(globex).yaml();
        let dir = tempfile::tempdir().unwrap();
        let (server, admin) = TestServer::start_with_admin(compile(&yaml, dir.path())).await;
        Portal {
            server,
            admin,
            express,
        }
    }

    /// How often the upstream was asked for `url` (path and query as it received them), and the
    /// `If-None-Match` it last got.
    async fn upstream_saw(&self, url: &str) -> (u64, Option<String>) {
        let log: Value = client()
            .get(format!("{}/cache-log", self.express.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let seen = &log[url];
        (
            seen["hits"].as_u64().unwrap_or(0),
            seen["ifNoneMatch"].as_str().map(str::to_owned),
        )
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

    /// Signs in on tenant globex (Host `localhost:<port>`).
    async fn sign_in_globex(&self, user: &str) -> Session {
        let host = self.globex_host();
        let response = self
            .server
            .post("/auth/dev-login")
            .header("host", &host)
            .header("origin", format!("http://{host}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("user={user}&return_to=%2Fx"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        session_from(response.headers()).expect("a session on globex")
    }

    fn globex_host(&self) -> String {
        format!(
            "localhost:{}",
            self.server.url("").rsplit(':').next().unwrap()
        )
    }
}

/// A GET as `session`, with extra headers.
async fn get(
    server: &TestServer,
    path: &str,
    session: &Session,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = server.get(path).header("cookie", &session.cookie);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn x_cache(response: &reqwest::Response) -> Option<&str> {
    response
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap())
}

/// The sample `series` in a scrape (0 when absent).
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| {
            value.split(' ').next().unwrap().parse().unwrap()
        })
}

const PUBLIC: &str = "cc=public,max-age=60";

/// A `public, max-age` answer reaches the upstream once; later GETs (another user's too) and HEADs are
/// answered from memory with `Age` and `X-Cache: HIT`, counted in the metrics; a client's matching
/// `If-None-Match` gets 304 from the entry; another query is another entry.
#[tokio::test]
async fn public_answers_are_served_from_memory() {
    let portal = Portal::start().await;
    let server = &portal.server;
    let (ann, bob) = (server.sign_in("ann").await, server.sign_in("bob").await);
    let url = format!("/cache/app.js?{PUBLIC}");

    let first = get(server, &format!("/apps/assets{url}"), &ann, &[]).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(x_cache(&first), Some("MISS"));
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["user"], "ann");

    let second = get(server, &format!("/apps/assets{url}"), &bob, &[]).await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(x_cache(&second), Some("HIT"));
    assert!(second.headers().contains_key("age"));
    assert_eq!(second.headers()["cache-control"], "public,max-age=60");
    assert!(!second.headers().contains_key("set-cookie"));
    assert_eq!(second.json::<Value>().await.unwrap(), first);

    let head = client()
        .head(server.url(&format!("/apps/assets{url}")))
        .header("cookie", &bob.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(x_cache(&head), Some("HIT"));

    let conditional = get(
        server,
        &format!("/apps/assets{url}"),
        &bob,
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(conditional.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(x_cache(&conditional), Some("HIT"));
    assert_eq!(portal.upstream_saw(&url).await.0, 1, "one round trip");

    // The query is part of the key.
    let other = format!("/cache/app.js?{PUBLIC}&v=2");
    let answer = get(server, &format!("/apps/assets{other}"), &ann, &[]).await;
    assert_eq!(x_cache(&answer), Some("MISS"));
    assert_eq!(portal.upstream_saw(&other).await.0, 1);

    let metrics = portal.metrics().await;
    let series = |status: &str| {
        sample(
            &metrics,
            &format!(
                r#"portico_cache_responses_total{{tenant="acme",app="assets",status="{status}"}}"#
            ),
        )
    };
    assert_eq!(series("miss"), 2.0);
    assert_eq!(series("hit"), 3.0);
    assert!(sample(&metrics, "portico_cache_entries") >= 2.0);
    assert!(sample(&metrics, "portico_cache_stored_bytes") > 0.0);
}

/// What a shared cache may not keep reaches the upstream every time, and each user gets their own
/// answer: `private`, `no-store`, `no-cache`, a `Set-Cookie`, `Vary: Cookie`, `Vary: *`, and a
/// `max-age` without `public` (portico sends identity, like `Authorization`).
#[tokio::test]
async fn answers_a_shared_cache_may_not_keep_are_not_kept() {
    let portal = Portal::start().await;
    let server = &portal.server;
    let (ann, bob) = (server.sign_in("ann").await, server.sign_in("bob").await);
    for query in [
        "cc=private,max-age=60",
        "cc=public,max-age=60,no-store",
        "cc=public,max-age=60,no-cache",
        "cc=max-age=60",
        "cc=max-age=60,immutable",
        "cc=public,max-age=60&cookie=ann",
        "cc=public,max-age=60&vary=Cookie",
        "cc=public,max-age=60&vary=*",
    ] {
        let url = format!("/cache/private.json?{query}");
        let mut users = Vec::new();
        for session in [&ann, &bob] {
            let answer = get(server, &format!("/apps/assets{url}"), session, &[]).await;
            assert_eq!(answer.status(), StatusCode::OK, "{query}");
            assert_eq!(x_cache(&answer), Some("MISS"), "{query}");
            let cookies: Vec<String> = answer
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect();
            if query.contains("cookie=") {
                assert!(
                    cookies.iter().any(|c| c.starts_with("flavour=ann")),
                    "{cookies:?}"
                );
            }
            users.push(answer.json::<Value>().await.unwrap()["user"].clone());
        }
        assert_eq!(users, ["ann", "bob"], "{query}: each user's own answer");
        assert_eq!(portal.upstream_saw(&url).await.0, 2, "{query}");
    }
}

/// A stale entry is revalidated with the entry's `ETag`; the upstream's 304 refreshes it (the next
/// request is a hit again) and the client gets the stored body.
#[tokio::test]
async fn stale_entries_are_revalidated_and_refreshed_by_304() {
    let portal = Portal::start().await;
    let server = &portal.server;
    let ann = server.sign_in("ann").await;
    let url = "/cache/bundle.js?cc=public,max-age=1&etag=v1";
    let path = format!("/apps/assets{url}");

    let first = get(server, &path, &ann, &[]).await;
    assert_eq!(x_cache(&first), Some("MISS"));
    let body = first.text().await.unwrap();
    assert_eq!(x_cache(&get(server, &path, &ann, &[]).await), Some("HIT"));
    assert_eq!(portal.upstream_saw(url).await, (1, None));

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let revalidated = get(server, &path, &ann, &[]).await;
    assert_eq!(revalidated.status(), StatusCode::OK);
    assert_eq!(x_cache(&revalidated), Some("REVALIDATED"));
    assert_eq!(revalidated.text().await.unwrap(), body);
    assert_eq!(
        portal.upstream_saw(url).await,
        (2, Some("\"v1\"".to_owned())),
        "asked with the entry's ETag"
    );
    let refreshed = get(server, &path, &ann, &[]).await;
    assert_eq!(x_cache(&refreshed), Some("HIT"));
    assert_eq!(refreshed.text().await.unwrap(), body);
    assert_eq!(portal.upstream_saw(url).await.0, 2);

    let metrics = portal.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            r#"portico_cache_responses_total{tenant="acme",app="assets",status="revalidated"}"#
        ),
        1.0
    );
}

/// Two tenants with the same app id, upstream and path never share an entry.
#[tokio::test]
async fn tenants_never_share_an_entry() {
    let portal = Portal::start().await;
    let server = &portal.server;
    let ann = server.sign_in("ann").await;
    let gil = portal.sign_in_globex("gil").await;
    let url = format!("/cache/shared.js?{PUBLIC}");
    let path = format!("/apps/assets{url}");

    let acme = get(server, &path, &ann, &[]).await;
    assert_eq!(x_cache(&acme), Some("MISS"));
    assert_eq!(x_cache(&get(server, &path, &ann, &[]).await), Some("HIT"));
    let host = portal.globex_host();
    let globex = get(server, &path, &gil, &[("host", &host)]).await;
    assert_eq!(globex.status(), StatusCode::OK);
    assert_eq!(x_cache(&globex), Some("MISS"));
    assert_eq!(globex.json::<Value>().await.unwrap()["user"], "gil");
    assert_eq!(portal.upstream_saw(&url).await.0, 2);
}

/// The access decision comes before the cache: a user without the app's role gets 403 even while
/// the entry is warm.
#[tokio::test]
async fn a_warm_entry_is_no_way_around_the_access_decision() {
    let portal = Portal::start().await;
    let server = &portal.server;
    let (ann, eve) = (server.sign_in("ann").await, server.sign_in("eve").await);
    let path = format!("/apps/assets/cache/secret.js?{PUBLIC}");
    assert_eq!(x_cache(&get(server, &path, &ann, &[]).await), Some("MISS"));
    assert_eq!(x_cache(&get(server, &path, &ann, &[]).await), Some("HIT"));
    let refused = get(server, &path, &eve, &[]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(x_cache(&refused), None);
    assert!(!refused.text().await.unwrap().contains("secret.js"));
}

/// An app without `cache:` never keeps anything, however public the answer.
#[tokio::test]
async fn an_app_with_the_cache_off_always_asks_the_upstream() {
    let portal = Portal::start().await;
    let server = &portal.server;
    let ann = server.sign_in("ann").await;
    let url = format!("/cache/off.js?{PUBLIC}");
    for _ in 0..2 {
        let answer = get(server, &format!("/apps/plain{url}"), &ann, &[]).await;
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(x_cache(&answer), None);
    }
    assert_eq!(portal.upstream_saw(&url).await.0, 2);
}

/// An upstream body cut off mid-way reaches the client as a broken body and leaves no entry behind.
#[tokio::test]
async fn a_body_cut_short_is_not_stored() {
    let portal = Portal::start().await;
    let server = &portal.server;
    let ann = server.sign_in("ann").await;
    let url = format!("/cache/cut.bin?{PUBLIC}&cut=1");
    for _ in 0..2 {
        let answer = get(server, &format!("/apps/assets{url}"), &ann, &[]).await;
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(x_cache(&answer), Some("MISS"));
        assert!(
            answer.bytes().await.is_err(),
            "the client sees the body break"
        );
    }
    assert_eq!(portal.upstream_saw(&url).await.0, 2);
}
