//! `/apps/<id>/…` against a real upstream HTTP server started by the test: what the upstream sees,
//! what it never sees, access decisions, path tricks, streaming both ways, and upstream failures.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::helpers::{
    AppYaml, ConfigYaml, Session, TIMEOUT, TestServer, acme, app, config, dev, json_error,
    json_error_of, raw_get, tenant, user,
};

const BLOCK: usize = 64 * 1024;
const BIG_DOWNLOAD: usize = 32 * 1024 * 1024;
const BIG_UPLOAD: usize = 16 * 1024 * 1024;
const FIRST_CHUNK: &[u8] = b"first chunk, sent before the upstream is released\n";
const REST: &[u8] = b"the rest, sent after the gate opened\n";

/// Byte `i` of a test body: blocks of 64 KiB, each filled with its own value, so a lost, repeated or
/// reordered block shows.
fn block(index: usize) -> Vec<u8> {
    vec![(index % 251) as u8; BLOCK]
}

fn is_pattern(data: &[u8]) -> bool {
    data.chunks(BLOCK)
        .enumerate()
        .all(|(index, chunk)| chunk == &block(index)[..chunk.len()])
}

/// The test's upstream app: echoes requests as JSON, and has a few special paths below `/base`.
struct Upstream {
    addr: SocketAddr,
    /// Requests that reached it.
    hits: Arc<AtomicUsize>,
    /// Opens the gate of `/base/gate`.
    gate: Arc<Notify>,
}

#[derive(Clone)]
struct UpstreamState {
    hits: Arc<AtomicUsize>,
    gate: Arc<Notify>,
}

impl Upstream {
    async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = UpstreamState {
            hits: Arc::new(AtomicUsize::new(0)),
            gate: Arc::new(Notify::new()),
        };
        let router = Router::new()
            .route("/base/ws", axum::routing::get(websocket_echo))
            .fallback(upstream_handler)
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Upstream {
            addr,
            hits: state.hits,
            gate: state.gate,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/base", self.addr)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn upstream_handler(State(state): State<UpstreamState>, request: Request) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    match request.uri().path() {
        "/base/big" => {
            let blocks =
                (0..BIG_DOWNLOAD / BLOCK).map(|i| Ok::<_, Infallible>(Bytes::from(block(i))));
            Body::from_stream(futures_util::stream::iter(blocks)).into_response()
        }
        "/base/gate" => {
            let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(2);
            let gate = state.gate.clone();
            tokio::spawn(async move {
                let _ = sender.send(Bytes::from_static(FIRST_CHUNK)).await;
                gate.notified().await;
                let _ = sender.send(Bytes::from_static(REST)).await;
            });
            let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
                let chunk = receiver.recv().await?;
                Some((Ok::<_, Infallible>(chunk), receiver))
            });
            Body::from_stream(stream).into_response()
        }
        "/base/hygiene" => {
            // An app that sets a site-wide cookie, redirects to its own absolute URL and forbids framing.
            let host = request.headers()["host"].to_str().unwrap().to_owned();
            let mut response = StatusCode::FOUND.into_response();
            let headers = response.headers_mut();
            headers.insert(
                "location",
                format!("http://{host}/base/next?step=2").parse().unwrap(),
            );
            headers.append(
                "set-cookie",
                "pref=dark; Path=/; Domain=portal.acme.test; HttpOnly"
                    .parse()
                    .unwrap(),
            );
            headers.append(
                "set-cookie",
                "portico_session=planted; Path=/".parse().unwrap(),
            );
            headers.insert("x-frame-options", "DENY".parse().unwrap());
            headers.insert(
                "content-security-policy",
                "default-src 'self'; frame-ancestors 'none'"
                    .parse()
                    .unwrap(),
            );
            response
        }
        "/base/upload" => {
            let mut stream = request.into_body().into_data_stream();
            let mut received = Vec::new();
            let mut chunks = 0usize;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(chunk) => {
                        chunks += 1;
                        received.extend_from_slice(&chunk);
                    }
                    Err(error) => {
                        return (StatusCode::BAD_REQUEST, error.to_string()).into_response();
                    }
                }
            }
            axum::Json(json!({
                "bytes": received.len(),
                "intact": is_pattern(&received),
                "chunks": chunks,
            }))
            .into_response()
        }
        _ => {
            let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (name, value) in request.headers() {
                headers
                    .entry(name.as_str().to_owned())
                    .or_default()
                    .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
            }
            let mut response = axum::Json(json!({
                "method": request.method().as_str(),
                "path": request.uri().path(),
                "query": request.uri().query(),
                "headers": headers,
            }))
            .into_response();
            response
                .headers_mut()
                .insert("x-upstream", "echo".parse().unwrap());
            response
        }
    }
}

/// The `echo` app in front of `upstream`, with an admin-only `reports` node.
fn echo_app(upstream: &str) -> AppYaml {
    app("echo", &["developer", "admin"])
        .upstream(upstream)
        .node("{ path: overview, label: Overview, view: /overview }")
        .node("{ path: reports, label: Reports, view: /reports, access: { roles: [admin] } }")
}

/// Tenant `acme` (the default) with `echo`, and users ann (admin), dev (developer) and sam (neither).
fn acme_with(echo: AppYaml) -> ConfigYaml {
    config().default_tenant("acme").tenant(
        acme()
            .user(
                user("ann", &["acme-admins", "acme-eng"])
                    .name("Ann Admin")
                    .email("ann@acme.example"),
            )
            .user(dev())
            .user(
                user("sam", &["acme-sales"])
                    .name("Sam Sales")
                    .email("sam@acme.example"),
            )
            .role("admin", &["acme-admins"])
            .role("developer", &["acme-eng"])
            .app(echo),
    )
}

/// [`acme_with`] the plain `echo` app, and `extra` top-level config.
async fn start(upstream: &str, extra: &str) -> TestServer {
    acme_with(echo_app(upstream)).top(extra).start().await
}

/// The same with `cookies: scoped`: the app's cookies live in the browser (the default is a jar, see
/// `cookie_jar.rs`).
async fn start_scoped(upstream: &str) -> TestServer {
    acme_with(echo_app(upstream).key("cookies", "scoped"))
        .start()
        .await
}

/// GET through the proxy as `session`, returning the upstream's echo of the request.
async fn echo(server: &TestServer, session: &Session, path: &str) -> Value {
    let response = server.get_as(path, session).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    assert_eq!(response.headers()["x-upstream"], "echo");
    response.json().await.unwrap()
}

fn upstream_header<'v>(echoed: &'v Value, name: &str) -> Vec<&'v str> {
    echoed["headers"][name]
        .as_array()
        .map(|values| values.iter().map(|v| v.as_str().unwrap()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn upstream_receives_the_path_below_its_base_and_the_query() {
    let upstream = Upstream::start().await;
    let server = start(&upstream.url(), "").await;
    let dev = server.sign_in("dev").await;

    let echoed = echo(&server, &dev, "/apps/echo/api/items/42?sort=name&q=a%20b").await;
    assert_eq!(echoed["method"], "GET");
    assert_eq!(echoed["path"], "/base/api/items/42");
    assert_eq!(echoed["query"], "sort=name&q=a%20b");

    let root = echo(&server, &dev, "/apps/echo/").await;
    assert_eq!(root["path"], "/base/");
    assert_eq!(root["query"], Value::Null);

    // Repeated slashes collapse; the upstream sees the path the access decision saw.
    let collapsed = raw_get(server.addr, "/apps/echo//api///items", Some(&dev.cookie)).await;
    assert_eq!(collapsed.status, 200);
    assert_eq!(collapsed.json()["path"], "/base/api/items");

    // Other methods and bodies go through as well.
    let posted = server
        .post("/apps/echo/api/items")
        .header("cookie", &dev.cookie)
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/json")
        .body(r#"{"name":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::OK);
    let posted: Value = posted.json().await.unwrap();
    assert_eq!(posted["method"], "POST");
    assert_eq!(upstream_header(&posted, "content-length"), ["12"]);
    assert_eq!(upstream.hits(), 4);
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_upstream() {
    let upstream = Upstream::start().await;
    let server = start(&upstream.url(), "").await;
    let dev = server.sign_in("dev").await;

    let response = server
        .get("/apps/echo/whoami")
        .header("cookie", &dev.cookie)
        .header("x-forwarded-user", "ann")
        .header("x-forwarded-email", "ann@acme.example")
        .header("x-forwarded-groups", "acme-admins")
        .header("x-oauth2-proxy-id-token", "eyJhbGciOi.forged.token")
        .header("x-auth-request-user", "ann")
        .header("x-remote-user", "ann")
        .header("x-portico-roles", "admin")
        .header("x-portico-user", "ann")
        .header("x-portico-tenant", "globex")
        .header("x-portico-extra", "1")
        .header("x-forwarded-for", "10.9.8.7")
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-proto", "https")
        .header("forwarded", "for=10.9.8.7;proto=https")
        .header("x-real-ip", "10.9.8.7")
        .header("x-app-specific", "kept")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let echoed: Value = response.json().await.unwrap();

    for name in [
        "x-forwarded-user",
        "x-forwarded-email",
        "x-forwarded-groups",
        "x-oauth2-proxy-id-token",
        "x-auth-request-user",
        "x-remote-user",
        "x-portico-extra",
        "forwarded",
        "x-real-ip",
    ] {
        assert!(
            upstream_header(&echoed, name).is_empty(),
            "{name} reached the upstream: {echoed}"
        );
    }
    assert!(!echoed.to_string().contains("forged.token"));
    assert!(!echoed.to_string().contains("10.9.8.7"));
    assert!(!echoed.to_string().contains("evil.example"));

    // portico's own identity headers, exactly once each, with the signed-in user's values.
    assert_eq!(upstream_header(&echoed, "x-portico-user"), ["dev"]);
    assert_eq!(
        upstream_header(&echoed, "x-portico-email"),
        ["dev@acme.example"]
    );
    assert_eq!(upstream_header(&echoed, "x-portico-name"), ["Dev Eloper"]);
    assert_eq!(upstream_header(&echoed, "x-portico-groups"), ["acme-eng"]);
    assert_eq!(upstream_header(&echoed, "x-portico-roles"), ["developer"]);
    assert_eq!(upstream_header(&echoed, "x-portico-tenant"), ["acme"]);
    assert_eq!(upstream_header(&echoed, "x-portico-app"), ["echo"]);

    // Fresh forwarding facts, set by portico alone.
    assert_eq!(upstream_header(&echoed, "x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(upstream_header(&echoed, "x-forwarded-proto"), ["http"]);
    // The name the client reached, which the tenant lists (127.0.0.1, no public origin), never the
    // client's X-Forwarded-Host.
    assert_eq!(
        upstream_header(&echoed, "x-forwarded-host"),
        [server.addr.to_string()]
    );
    assert_eq!(
        upstream_header(&echoed, "host"),
        [upstream.addr.to_string()],
        "Host names the upstream"
    );
    assert_eq!(upstream_header(&echoed, "x-app-specific"), ["kept"]);
}

#[tokio::test]
async fn identity_headers_follow_the_user() {
    let upstream = Upstream::start().await;
    let server = start(&upstream.url(), "").await;
    let ann = server.sign_in("ann").await;
    let echoed = echo(&server, &ann, "/apps/echo/whoami").await;
    assert_eq!(upstream_header(&echoed, "x-portico-user"), ["ann"]);
    assert_eq!(
        upstream_header(&echoed, "x-portico-groups"),
        ["acme-admins,acme-eng"]
    );
    assert_eq!(
        upstream_header(&echoed, "x-portico-roles"),
        ["admin,developer"]
    );
}

#[tokio::test]
async fn the_session_cookie_never_reaches_the_upstream_but_app_cookies_do() {
    let upstream = Upstream::start().await;
    let server = start_scoped(&upstream.url()).await;
    let dev = server.sign_in("dev").await;

    let send = |cookie: String| {
        server
            .get("/apps/echo/cookies")
            .header("cookie", cookie)
            .send()
    };
    let mixed: Value = send(format!("theme=dark; {}; app_pref=compact", dev.cookie))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        upstream_header(&mixed, "cookie"),
        ["theme=dark; app_pref=compact"]
    );
    assert!(!mixed.to_string().contains(&dev.id), "{mixed}");

    let alone: Value = send(dev.cookie.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(upstream_header(&alone, "cookie").is_empty(), "{alone}");
    assert!(!alone.to_string().contains(&dev.id), "{alone}");

    // The HTTPS name is stripped too (on this HTTP origin it does not sign anyone in).
    let secure_name: Value = send(format!(
        "a=1; __Host-portico_session={}; {}",
        dev.id, dev.cookie
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(upstream_header(&secure_name, "cookie"), ["a=1"]);
    assert!(!secure_name.to_string().contains(&dev.id));
}

#[tokio::test]
async fn users_without_the_role_are_refused_before_the_upstream() {
    let upstream = Upstream::start().await;
    let server = start(&upstream.url(), "").await;
    let sam = server.sign_in("sam").await;

    let api = server.get_as("/apps/echo/data", &sam).await;
    let body = json_error(api, 403, "forbidden").await;
    assert!(
        body["message"].as_str().unwrap().contains("developer"),
        "names the roles needed: {body}"
    );

    let browser = server
        .get("/apps/echo/")
        .header("cookie", &sam.cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(browser.status(), StatusCode::FORBIDDEN);
    assert!(
        browser.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = browser.text().await.unwrap();
    assert!(page.contains("Error 403"), "{page}");
    assert!(page.contains("You do not have access to this."), "{page}");

    // Writes are refused just the same.
    let post = server
        .post("/apps/echo/data")
        .header("cookie", &sam.cookie)
        .body("x")
        .send()
        .await
        .unwrap();
    json_error(post, 403, "forbidden").await;

    // Not signed in at all: 401, and also nothing upstream.
    let anonymous = server.get("/apps/echo/data").send().await.unwrap();
    json_error(anonymous, 401, "not_signed_in").await;

    assert_eq!(
        upstream.hits(),
        0,
        "the upstream never saw a refused request"
    );
}

#[tokio::test]
async fn unknown_app_is_404() {
    let upstream = Upstream::start().await;
    let server = start(&upstream.url(), "").await;
    let ann = server.sign_in("ann").await;
    let response = server.get_as("/apps/nope/anything", &ann).await;
    json_error(response, 404, "unknown_app").await;
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test]
async fn path_tricks_are_refused() {
    let upstream = Upstream::start().await;
    let server = start(&upstream.url(), "").await;
    let ann = server.sign_in("ann").await;
    for target in [
        "/apps/echo/public/../admin",
        "/apps/echo/public/..",
        "/apps/echo/./admin",
        "/apps/echo/public/%2e%2e/admin",
        "/apps/echo/public/%2E%2E/admin",
        "/apps/echo/public/.%2e/admin",
        "/apps/echo/public%2fadmin",
        "/apps/echo/public%2F..%2Fadmin",
        "/apps/echo/public%5cadmin",
        "/apps/echo/public\\admin",
        "/apps/echo/a%00b",
    ] {
        let response = raw_get(server.addr, target, Some(&ann.cookie)).await;
        assert_eq!(response.status, 400, "{target}");
        assert!(
            response
                .header("content-type")
                .is_some_and(|value| value.starts_with("application/json")),
            "{target}: {response:?}"
        );
        assert_eq!(response.json()["error"], "bad_path", "{target}");
    }
    assert_eq!(upstream.hits(), 0, "no trick reached the upstream");
}

#[tokio::test]
async fn node_rules_cannot_be_bypassed_by_spelling_the_path_differently() {
    let upstream = Upstream::start().await;
    let server = start(&upstream.url(), "").await;
    let dev = server.sign_in("dev").await;
    let ann = server.sign_in("ann").await;
    for target in [
        "/apps/echo/reports",
        "/apps/echo/reports/",
        "/apps/echo/reports/2024?format=csv",
        "/apps/echo//reports",
        "/apps/echo///reports//2024",
        "/apps/echo/rep%6frts",
        "/apps/echo/rep%6Frts/2024",
        "/apps/echo/%72%65%70%6f%72%74%73",
    ] {
        let response = raw_get(server.addr, target, Some(&dev.cookie)).await;
        assert_eq!(response.status, 403, "{target} as dev");
        assert_eq!(response.json()["error"], "forbidden", "{target}");
    }
    assert_eq!(upstream.hits(), 0, "no bypass reached the upstream");

    // The rule is about /reports only: siblings are fine, and admins pass.
    assert_eq!(
        raw_get(server.addr, "/apps/echo/reportsx", Some(&dev.cookie))
            .await
            .status,
        200
    );
    assert_eq!(
        raw_get(server.addr, "/apps/echo/overview", Some(&dev.cookie))
            .await
            .status,
        200
    );
    let admin = raw_get(server.addr, "/apps/echo//reports//2024", Some(&ann.cookie)).await;
    assert_eq!(admin.status, 200);
    assert_eq!(admin.json()["path"], "/base/reports/2024");
    let encoded = raw_get(server.addr, "/apps/echo/rep%6frts", Some(&ann.cookie)).await;
    assert_eq!(encoded.status, 200);
    assert_eq!(
        encoded.json()["path"],
        "/base/reports",
        "the upstream gets the spelling that was decided on (unreserved escapes decoded)"
    );
    assert_eq!(upstream.hits(), 4);

    // The navigation says the same as the gateway.
    let nav = server.shell_config(&dev).await;
    let echo_children = &nav["luigi"]["navigation"]["nodes"][0]["children"][0]["children"];
    assert_eq!(echo_children.as_array().unwrap().len(), 1, "{nav}");
    assert_eq!(echo_children[0]["pathSegment"], "overview");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_responses_stream_through_completely() {
    let upstream = Upstream::start().await;
    let server = start(&upstream.url(), "").await;
    let dev = server.sign_in("dev").await;
    let response = server.get_as("/apps/echo/big", &dev).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.bytes_stream();
    let mut received = Vec::with_capacity(BIG_DOWNLOAD);
    while let Some(chunk) = stream.next().await {
        received.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(received.len(), BIG_DOWNLOAD);
    assert!(
        is_pattern(&received),
        "the body arrived intact and in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_are_not_buffered() {
    let upstream = Upstream::start().await;
    let server = start(&upstream.url(), "").await;
    let dev = server.sign_in("dev").await;
    let request = server
        .get("/apps/echo/gate")
        .header("cookie", &dev.cookie)
        .send();
    let mut response = tokio::time::timeout(Duration::from_secs(5), request)
        .await
        .expect("response headers arrive while the upstream still waits (no buffering)")
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // The upstream is still holding back the rest: the first chunk must arrive anyway.
    let mut received = Vec::new();
    while received.len() < FIRST_CHUNK.len() {
        let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .expect("the first chunk arrives while the upstream still waits (no buffering)")
            .unwrap()
            .expect("the body does not end before the gate opens");
        received.extend_from_slice(&chunk);
    }
    assert_eq!(received, FIRST_CHUNK);

    upstream.gate.notify_one();
    let rest = tokio::time::timeout(TIMEOUT, response.bytes())
        .await
        .expect("the rest arrives after the gate opens")
        .unwrap();
    assert_eq!(&rest[..], REST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_uploads_stream_through_intact() {
    let upstream = Upstream::start().await;
    let server = start(&upstream.url(), "").await;
    let dev = server.sign_in("dev").await;
    let blocks = futures_util::stream::iter(
        (0..BIG_UPLOAD / BLOCK).map(|i| Ok::<_, std::io::Error>(Bytes::from(block(i)))),
    );
    let response = server
        .post("/apps/echo/upload")
        .header("cookie", &dev.cookie)
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(blocks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["bytes"], BIG_UPLOAD, "{report}");
    assert_eq!(report["intact"], true, "{report}");
}

#[tokio::test]
async fn a_dead_upstream_is_502() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let server = start(&format!("http://127.0.0.1:{port}/base"), "").await;
    let dev = server.sign_in("dev").await;
    let response = server.get_as("/apps/echo/anything", &dev).await;
    let body = json_error(response, 502, "upstream_unreachable").await;
    assert!(
        !body.to_string().contains(&port.to_string()),
        "internal addresses stay in the log: {body}"
    );

    let page = server
        .get("/apps/echo/anything")
        .header("cookie", &dev.cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::BAD_GATEWAY);
    assert!(page.text().await.unwrap().contains("not reachable"));
}

#[tokio::test]
async fn an_upstream_that_never_answers_is_504_after_the_response_timeout() {
    // Accepts connections, reads nothing, answers nothing.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let server = start(
        &format!("http://{addr}/base"),
        "proxy: { response_timeout: 1s }",
    )
    .await;
    let dev = server.sign_in("dev").await;
    let started = Instant::now();
    let response = server.get_as("/apps/echo/slow", &dev).await;
    let elapsed = started.elapsed();
    json_error(response, 504, "upstream_timeout").await;
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

/// Tenant `acme` on 127.0.0.1 with the `files` app serving `./site`.
fn files_tenant() -> crate::helpers::TenantYaml {
    tenant("acme", &["127.0.0.1"])
}

fn files_app() -> AppYaml {
    app("files", &["developer"]).files("./site")
}

#[tokio::test]
async fn static_directory_apps_serve_files_and_fall_back_to_index_html() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("assets")).unwrap();
    std::fs::write(site.join("index.html"), "<h1>files app index</h1>").unwrap();
    std::fs::write(site.join("assets/app.js"), "console.log('files app');").unwrap();
    std::fs::write(site.join("notes.txt"), "plain notes").unwrap();
    let config_path = dir.path().join("portico.yaml");
    let yaml = config().tenant(
        files_tenant()
            .user(user("dev", &["acme-eng"]))
            .user(user("sam", &["acme-sales"]))
            .role("developer", &["acme-eng"])
            .app(files_app()),
    );
    std::fs::write(&config_path, yaml.yaml()).unwrap();
    let loaded = portico::config::load_file(&config_path).unwrap();
    let server = TestServer::start(loaded.config).await;
    let dev = server.sign_in("dev").await;

    let get = |path: &'static str| server.get(path).header("cookie", dev.cookie.clone()).send();
    let index = get("/apps/files/").await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    assert_eq!(index.headers()["x-frame-options"], "SAMEORIGIN");
    assert_eq!(index.text().await.unwrap(), "<h1>files app index</h1>");

    let script = get("/apps/files/assets/app.js").await.unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    assert_eq!(script.text().await.unwrap(), "console.log('files app');");

    let notes = get("/apps/files/notes.txt").await.unwrap();
    assert_eq!(notes.text().await.unwrap(), "plain notes");

    // Client-side routes (no extension) get the app's index.html.
    for route in ["/apps/files/settings", "/apps/files/projects/42/edit"] {
        let response = server.get_as(route, &dev).await;
        assert_eq!(response.status(), StatusCode::OK, "{route}");
        assert_eq!(
            response.text().await.unwrap(),
            "<h1>files app index</h1>",
            "{route}"
        );
    }

    // A missing file with an extension is a 404, not the index.
    let missing = get("/apps/files/assets/missing.js").await.unwrap();
    json_error(missing, 404, "not_found").await;

    // Nothing outside the directory, and nothing for users without the role.
    let outside = raw_get(
        server.addr,
        "/apps/files/../portico.yaml",
        Some(&dev.cookie),
    )
    .await;
    assert_eq!(outside.status, 400);
    let sam = server.sign_in("sam").await;
    let refused = server.get_as("/apps/files/notes.txt", &sam).await;
    json_error(refused, 403, "forbidden").await;
}

async fn static_site_with_reports() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("reports")).unwrap();
    std::fs::write(site.join("index.html"), "index").unwrap();
    std::fs::write(site.join("reports/secret.txt"), "admin only").unwrap();
    std::fs::write(site.join("my notes.txt"), "spaced name").unwrap();
    let yaml = config().tenant(
        files_tenant()
            .user(user("ann", &["acme-admins", "acme-eng"]))
            .user(user("dev", &["acme-eng"]))
            .role("admin", &["acme-admins"])
            .role("developer", &["acme-eng"])
            .app(files_app().node(
                "{ path: reports, label: Reports, view: /reports, access: { roles: [admin] } }",
            )),
    );
    let server = TestServer::start(yaml.compile(dir.path())).await;
    (dir, server)
}

#[tokio::test]
async fn static_directory_apps_enforce_node_rules() {
    let (_dir, server) = static_site_with_reports().await;
    let dev = server.sign_in("dev").await;
    let ann = server.sign_in("ann").await;
    for target in [
        "/apps/files/reports/secret.txt",
        "/apps/files//reports/secret.txt",
        "/apps/files/rep%6frts/secret.txt",
        "/apps/files/REPORTS/secret.txt",
        "/apps/files/reports.d/../reports/secret.txt",
        "/apps/files/reports;x=y/secret.txt",
        "/apps/files/reports%3b/secret.txt",
        "/apps/files/reports./secret.txt",
    ] {
        let response = raw_get(server.addr, target, Some(&dev.cookie)).await;
        assert!(
            response.status == 403 || response.status == 400,
            "{target} as dev: {}",
            response.status
        );
        assert_ne!(response.body, b"admin only", "{target}");
    }
    // What passes is served from the path that was decided on.
    let encoded = raw_get(
        server.addr,
        "/apps/files/rep%6frts/secret%2etxt",
        Some(&ann.cookie),
    )
    .await;
    assert_eq!(encoded.body, b"admin only");
    let admin = raw_get(
        server.addr,
        "/apps/files/reports/secret.txt",
        Some(&ann.cookie),
    )
    .await;
    assert_eq!(admin.status, 200);
    assert_eq!(admin.body, b"admin only");
}

/// A path is decoded exactly once: `%256f` is the text `%6f` for the decision and for the file lookup,
/// never `o` (which would serve the admin-only `/reports/secret.txt`).
#[tokio::test]
async fn static_directory_node_rules_cannot_be_bypassed_with_double_encoding() {
    let (_dir, server) = static_site_with_reports().await;
    let dev = server.sign_in("dev").await;
    let response = raw_get(
        server.addr,
        "/apps/files/rep%256frts/secret.txt",
        Some(&dev.cookie),
    )
    .await;
    assert_ne!(response.body, b"admin only", "admin-only file leaked");
    assert_ne!(response.status, 200);
}

/// File names that need percent-encoding are served.
#[tokio::test]
async fn static_directory_apps_serve_files_with_encoded_names() {
    let (_dir, server) = static_site_with_reports().await;
    let dev = server.sign_in("dev").await;
    let response = raw_get(server.addr, "/apps/files/my%20notes.txt", Some(&dev.cookie)).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"spaced name");
}

/// A state-changing call through the proxy must prove it comes from the portal's origin (CSRF); a
/// cross-site form or script cannot ride on the session cookie into an app.
#[tokio::test]
async fn state_changing_requests_must_prove_same_origin() {
    let upstream = Upstream::start().await;
    let server = start(&upstream.url(), "").await;
    let dev = server.sign_in("dev").await;
    let token = server.shell_config(&dev).await["portico"]["csrfToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let post = |headers: &[(&str, &str)]| {
        let mut request = server
            .post("/apps/echo/api/items")
            .header("cookie", &dev.cookie)
            .body("{}");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };

    let refused: [(&str, &[(&str, &str)]); 4] = [
        (
            "cross-site",
            &[("sec-fetch-site", "cross-site"), ("x-portico-csrf", &token)],
        ),
        ("other origin", &[("origin", "http://evil.example")]),
        ("no proof", &[]),
        ("wrong token", &[("x-portico-csrf", "not-the-token")]),
    ];
    for (what, headers) in refused {
        let response = post(headers).await.unwrap();
        json_error_of(what, response, 403, "csrf_rejected").await;
    }
    assert_eq!(upstream.hits(), 0, "no refused request reached the app");

    let same_origin = post(&[("origin", &server.origin())]).await.unwrap();
    assert_eq!(same_origin.status(), StatusCode::OK);
    let with_token = post(&[("x-portico-csrf", &token)]).await.unwrap();
    assert_eq!(with_token.status(), StatusCode::OK);
    // Reads need no proof.
    let read = server.get_as("/apps/echo/api/items", &dev).await;
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(upstream.hits(), 3);
}

/// A P-256 private key in PKCS#8 PEM, written to `dir/name`, as an operator would provide it.
fn write_signing_key(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    use p256::pkcs8::EncodePrivateKey;
    let key = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let pem = key.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, pem.as_bytes()).unwrap();
    path
}

async fn jwks_of(server: &TestServer) -> jsonwebtoken::jwk::JwkSet {
    let response = server.get("/.well-known/jwks.json").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    response.json().await.unwrap()
}

/// Verifies `token` the way an upstream team would: a JWT library and the published JWKS, nothing of portico.
fn verify(token: &str, jwks: &jsonwebtoken::jwk::JwkSet) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks.find(&kid).ok_or("kid not published")?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["echo"]);
    validation.set_issuer(&["http://portal.acme.test"]);
    validation.leeway = 0;
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

async fn assertion_for(server: &TestServer, session: &Session) -> String {
    let echoed = echo(server, session, "/apps/echo/whoami").await;
    upstream_header(&echoed, "x-portico-assertion")
        .first()
        .expect("the upstream receives an assertion")
        .to_string()
}

#[tokio::test]
async fn upstreams_verify_the_signed_assertion_with_the_published_jwks() {
    let upstream = Upstream::start().await;
    let server = start(&upstream.url(), "proxy: { assertion_lifetime: 2s }").await;
    let dev = server.sign_in("dev").await;
    let jwks = jwks_of(&server).await;

    let token = assertion_for(&server, &dev).await;
    let claims = verify(&token, &jwks).unwrap();
    assert_eq!(claims["sub"], "dev");
    assert_eq!(claims["email"], "dev@acme.example");
    assert_eq!(claims["roles"], serde_json::json!(["developer"]));
    assert_eq!(claims["groups"], serde_json::json!(["acme-eng"]));
    assert_eq!(claims["tenant"], "acme");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        2
    );

    // A client cannot bring its own: a spoofed assertion header is replaced.
    let spoofed = server
        .get("/apps/echo/whoami")
        .header("cookie", &dev.cookie)
        .header("x-portico-assertion", "eyJhbGciOiJub25lIn0.e30.")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        upstream_header(&spoofed, "x-portico-assertion"),
        [token.as_str()],
        "reused, and not the client's"
    );

    // Tampering with any claim breaks the signature.
    let parts: Vec<&str> = token.split('.').collect();
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut forged_claims = claims.clone();
    forged_claims["roles"] = serde_json::json!(["admin"]);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        engine.encode(forged_claims.to_string()),
        parts[2]
    );
    assert!(
        verify(&forged, &jwks)
            .unwrap_err()
            .contains("InvalidSignature"),
        "tampered token refused"
    );

    // It expires: after its lifetime the same token no longer verifies, and upstreams get a new one.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert!(
        verify(&token, &jwks)
            .unwrap_err()
            .contains("ExpiredSignature")
    );
    let fresh = assertion_for(&server, &dev).await;
    assert_ne!(fresh, token);
    verify(&fresh, &jwks).unwrap();
}

#[tokio::test]
async fn assertions_survive_a_key_rotation() {
    let keys = tempfile::tempdir().unwrap();
    let old = write_signing_key(keys.path(), "old.pem");
    let new = write_signing_key(keys.path(), "new.pem");
    let keys_config = |paths: &[&std::path::Path]| {
        let list: Vec<String> = paths
            .iter()
            .map(|p| format!("\"{}\"", p.display()))
            .collect();
        format!("server: {{ signing_keys: [{}] }}", list.join(", "))
    };
    let upstream = Upstream::start().await;

    // Before: every instance signs with the old key.
    let before = start(&upstream.url(), &keys_config(&[&old])).await;
    let dev = before.sign_in("dev").await;
    let old_token = assertion_for(&before, &dev).await;
    assert_eq!(jwks_of(&before).await.keys.len(), 1);

    // Step 1: the new key is published next to the old one, which still signs.
    let step1 = start(&upstream.url(), &keys_config(&[&old, &new])).await;
    let step1_jwks = jwks_of(&step1).await;
    assert_eq!(step1_jwks.keys.len(), 2);
    verify(&old_token, &step1_jwks).unwrap();
    let dev1 = step1.sign_in("dev").await;
    let step1_token = assertion_for(&step1, &dev1).await;
    assert_eq!(
        jsonwebtoken::decode_header(&step1_token).unwrap().kid,
        jsonwebtoken::decode_header(&old_token).unwrap().kid,
        "the new key is not used before it is published everywhere"
    );

    // Step 2: the new key signs; the old one stays published until its tokens expire.
    let step2 = start(&upstream.url(), &keys_config(&[&new, &old])).await;
    let step2_jwks = jwks_of(&step2).await;
    let dev2 = step2.sign_in("dev").await;
    let new_token = assertion_for(&step2, &dev2).await;
    assert_ne!(
        jsonwebtoken::decode_header(&new_token).unwrap().kid,
        jsonwebtoken::decode_header(&old_token).unwrap().kid
    );
    verify(&new_token, &step2_jwks).unwrap();
    verify(&old_token, &step2_jwks).unwrap();
    // An upstream that fetched the JWKS in step 1 already knows the new key.
    verify(&new_token, &step1_jwks).unwrap();

    // Step 3: the old key is gone; its tokens no longer verify.
    let step3 = start(&upstream.url(), &keys_config(&[&new])).await;
    let step3_jwks = jwks_of(&step3).await;
    verify(&new_token, &step3_jwks).unwrap();
    assert!(
        verify(&old_token, &step3_jwks)
            .unwrap_err()
            .contains("kid not published")
    );
}

#[tokio::test]
async fn each_app_chooses_what_identity_goes_upstream() {
    let upstream = Upstream::start().await;
    let url = upstream.url();
    let server = acme_with(echo_app(&url).key("identity", "none"))
        .start()
        .await;
    let dev = server.sign_in("dev").await;
    let echoed = server
        .get("/apps/echo/x")
        .header("cookie", &dev.cookie)
        .header("x-portico-user", "spoofed")
        .header("authorization", "Bearer stolen")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let headers = echoed["headers"].as_object().unwrap();
    assert!(
        !headers
            .keys()
            .any(|name| name.starts_with("x-portico-") || name == "authorization"),
        "identity: none sends nothing about the user, and drops what the client sent: {echoed}"
    );

    let server = acme_with(echo_app(&url).key("identity", "[headers]"))
        .start()
        .await;
    let dev = server.sign_in("dev").await;
    let echoed = echo(&server, &dev, "/apps/echo/x").await;
    assert_eq!(upstream_header(&echoed, "x-portico-user"), ["dev"]);
    assert!(upstream_header(&echoed, "x-portico-assertion").is_empty());
}

/// What an upstream answers is made safe for the shared origin: its cookies stay below its prefix and
/// cannot touch the session, its redirects stay on the portal, and only the shell may frame it.
#[tokio::test]
async fn upstream_responses_are_scoped_to_their_app() {
    let upstream = Upstream::start().await;
    let server = start_scoped(&upstream.url()).await;
    let dev = server.sign_in("dev").await;
    let response = server.get_as("/apps/echo/hygiene", &dev).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let headers = response.headers();
    assert_eq!(headers["location"], "/apps/echo/next?step=2");
    let cookies: Vec<&str> = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cookies, ["pref=dark; Path=/apps/echo/; HttpOnly"]);
    assert_eq!(headers["x-frame-options"], "SAMEORIGIN");
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'self'; frame-ancestors 'self'"
    );
    // The planted cookie did not replace the session.
    assert_eq!(echo(&server, &dev, "/apps/echo/x").await["method"], "GET");

    let server = acme_with(echo_app(&upstream.url()).key("cookies", "drop"))
        .start()
        .await;
    let dev = server.sign_in("dev").await;
    let response = server.get_as("/apps/echo/hygiene", &dev).await;
    assert!(
        response.headers().get("set-cookie").is_none(),
        "cookies: drop"
    );
}

/// The upstream's WebSocket endpoint: echoes text frames, prefixed with the user portico named.
async fn websocket_echo(
    State(state): State<UpstreamState>,
    headers: axum::http::HeaderMap,
    upgrade: axum::extract::ws::WebSocketUpgrade,
) -> Response {
    use axum::extract::ws::Message;
    state.hits.fetch_add(1, Ordering::SeqCst);
    let user = headers
        .get("x-portico-user")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("nobody")
        .to_owned();
    upgrade.on_upgrade(move |mut socket| async move {
        while let Some(Ok(message)) = socket.recv().await {
            if let Message::Text(text) = message {
                let reply = format!("{user}: {}", text.as_str());
                if socket.send(Message::Text(reply.into())).await.is_err() {
                    break;
                }
            }
        }
    })
}

async fn websocket(
    server: &TestServer,
    cookie: Option<&str>,
    origin: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    u16,
> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/apps/echo/ws", server.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", origin.parse().unwrap());
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("cookie", cookie.parse().unwrap());
    }
    match tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(request),
    )
    .await
    {
        Ok(Ok((stream, _))) => Ok(stream),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
            Err(response.status().as_u16())
        }
        Ok(Err(error)) => panic!("websocket: {error}"),
        Err(_) => panic!("websocket handshake timed out"),
    }
}

/// WebSockets proxy through after the same access check, with identity, and only from the portal's origin.
#[tokio::test]
async fn websockets_proxy_through_after_the_access_check() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let upstream = Upstream::start().await;
    let server = start(&upstream.url(), "").await;
    let dev = server.sign_in("dev").await;

    let mut socket = websocket(&server, Some(&dev.cookie), &server.origin())
        .await
        .unwrap();
    for text in ["hello", "second frame"] {
        socket.send(Message::text(text)).await.unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("echo within 5 s")
            .unwrap()
            .unwrap();
        assert_eq!(reply.into_text().unwrap().as_str(), format!("dev: {text}"));
    }
    socket.close(None).await.unwrap();

    // Refused before the upstream: no session, no role, another origin.
    let hits = upstream.hits();
    assert_eq!(
        websocket(&server, None, &server.origin())
            .await
            .unwrap_err(),
        401
    );
    let sam = server.sign_in("sam").await;
    assert_eq!(
        websocket(&server, Some(&sam.cookie), &server.origin())
            .await
            .unwrap_err(),
        403
    );
    assert_eq!(
        websocket(&server, Some(&dev.cookie), "http://evil.example")
            .await
            .unwrap_err(),
        403,
        "cross-site WebSocket hijacking is refused"
    );
    assert_eq!(upstream.hits(), hits);
}

/// Access rules inside an app narrow by method and path glob, on the normalised path.
#[tokio::test]
async fn request_rules_inside_an_app_narrow_access_by_method_and_path() {
    let upstream = Upstream::start().await;
    let echo = echo_app(&upstream.url())
        .rule("{ methods: [POST, DELETE], path: /admin/**, roles: [admin] }")
        .rule("{ path: /exports/*.csv, roles: [admin] }");
    let server = acme_with(echo).start().await;
    let dev = server.sign_in("dev").await;
    let ann = server.sign_in("ann").await;
    let send = |method: &str, path: &str, session: &Session| {
        server
            .client
            .request(method.parse().unwrap(), server.url(path))
            .header("cookie", &session.cookie)
            .header("sec-fetch-site", "same-origin")
            .send()
    };

    // 403 rows are JSON `forbidden` errors; 200 rows reached the app.
    for (method, path, who, status) in [
        ("GET", "/apps/echo/admin/users", "dev", 200), // reads stay open
        ("POST", "/apps/echo/admin/users", "dev", 403),
        ("DELETE", "/apps/echo/admin/a/b", "dev", 403),
        ("POST", "/apps/echo//admin//users", "dev", 403),
        ("GET", "/apps/echo/exports/q3.csv", "dev", 403),
        ("GET", "/apps/echo/exports/q3.pdf", "dev", 200),
        ("POST", "/apps/echo/admin/users", "ann", 200),
        ("GET", "/apps/echo/exports/q3.csv", "ann", 200),
    ] {
        let session = if who == "ann" { &ann } else { &dev };
        let response = send(method, path, session).await.unwrap();
        let row = format!("{method} {path} as {who}");
        if status == 403 {
            json_error_of(&row, response, 403, "forbidden").await;
        } else {
            assert_eq!(response.status(), status, "{row}");
        }
    }
    // Encoded spellings are decoded once before the rule is applied.
    let raw = raw_get(
        server.addr,
        "/apps/echo/exports/q3%2ecsv",
        Some(&dev.cookie),
    )
    .await;
    assert_eq!(raw.status, 403);
}

/// A stalled upstream cannot hold a response open forever, and oversized uploads are refused up front.
#[tokio::test]
async fn idle_upstreams_are_cut_off_and_big_bodies_refused() {
    let upstream = Upstream::start().await;
    let server = start(
        &upstream.url(),
        "proxy: { idle_timeout: 1s, max_request_body: 1KiB }",
    )
    .await;
    let dev = server.sign_in("dev").await;

    // The gate never opens: after the first chunk the upstream goes silent.
    let response = server.get_as("/apps/echo/gate", &dev).await;
    assert_eq!(response.status(), StatusCode::OK);
    let started = std::time::Instant::now();
    let body = tokio::time::timeout(Duration::from_secs(10), response.bytes())
        .await
        .expect("the response ends by itself, it does not hang");
    assert!(body.is_err(), "the cut-off response is not a complete body");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cut off after about the idle timeout"
    );

    let hits = upstream.hits();
    let big = server
        .post("/apps/echo/upload")
        .header("cookie", &dev.cookie)
        .header("sec-fetch-site", "same-origin")
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    json_error(big, 413, "body_too_large").await;
    assert_eq!(upstream.hits(), hits, "refused before the upstream");
    let small = server
        .post("/apps/echo/upload")
        .header("cookie", &dev.cookie)
        .header("sec-fetch-site", "same-origin")
        .body(vec![b'x'; 512])
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), StatusCode::OK);
}
