//! The HTTP edge: what any client can do to the listener and to what portico forwards, whatever it
//! sends. HTTP/2 clients, half-sent requests and connection caps, override and forwarding headers,
//! identity values that try to add a group, over-limit chunked bodies, upgrades on the wrong method,
//! and the safety headers on portico's own JSON and error pages. Against a real upstream (an axum app
//! started here that echoes what it received) and the real Backstage test backend.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::helpers::{
    Session, TIMEOUT, TenantYaml, TestServer, acme, app, config, dev, json_error, user,
};

/// What the upstream made of one request body: `Ok(bytes)` when it ended properly, `Err` when the
/// message broke off.
type BodyRecord = Result<usize, String>;

/// An upstream app that echoes each request as JSON and records every body it read.
struct Upstream {
    addr: SocketAddr,
    bodies: Arc<Mutex<Vec<BodyRecord>>>,
}

impl Upstream {
    async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let router = Router::new()
            .fallback(echo_handler)
            .with_state(bodies.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Upstream { addr, bodies }
    }

    fn url(&self) -> String {
        format!("http://{}/base", self.addr)
    }

    fn bodies(&self) -> Vec<BodyRecord> {
        self.bodies.lock().unwrap().clone()
    }
}

async fn echo_handler(
    State(bodies): State<Arc<Mutex<Vec<BodyRecord>>>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    if parts.uri.path() == "/base/slow" {
        // Slower than the test listeners' header-read timeout: a request in flight is not idle.
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &parts.headers {
        headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let mut stream = body.into_data_stream();
    let mut received: BodyRecord = Ok(0);
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                if let Ok(total) = &mut received {
                    *total += chunk.len();
                }
            }
            Err(error) => {
                received = Err(error.to_string());
                break;
            }
        }
    }
    bodies.lock().unwrap().push(received.clone());
    axum::Json(json!({
        "method": parts.method.as_str(),
        "version": format!("{:?}", parts.version),
        "path": parts.uri.path(),
        "headers": headers,
        "body": received.ok(),
    }))
    .into_response()
}

/// Tenant `acme` with an `echo` app in front of `upstream`; mallory's groups try to smuggle a second
/// group (and a control character) into the identity headers.
fn acme_with_echo(upstream: &str) -> TenantYaml {
    acme()
        .user(dev())
        .user(
            user(
                "mallory",
                &[
                    "acme-eng",
                    "eng, platform-admin",
                    "x\u{1},platform-admin",
                    "50%",
                ],
            )
            .name("Doe, Mallory")
            .email("mallory@acme.example"),
        )
        .role("developer", &["acme-eng"])
        .role("platform-admin", &["platform-admin"])
        .app(app("echo", &["developer"]).upstream(upstream))
}

/// [`acme_with_echo`] as the default tenant, with `extra` top-level config.
async fn start(upstream: &Upstream, extra: &str) -> TestServer {
    start_tenant(acme_with_echo(&upstream.url()), extra).await
}

async fn start_tenant(acme: TenantYaml, extra: &str) -> TestServer {
    config()
        .default_tenant("acme")
        .top(extra)
        .tenant(acme)
        .start()
        .await
}

/// A client that speaks HTTP/2 from the first byte (prior knowledge, no TLS), as gRPC-web gateways
/// and some API clients do.
fn h2_client() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(TIMEOUT)
        .build()
        .unwrap()
}

fn upstream_header<'v>(echoed: &'v Value, name: &str) -> Vec<&'v str> {
    echoed["headers"][name]
        .as_array()
        .map(|values| values.iter().map(|v| v.as_str().unwrap()).collect())
        .unwrap_or_default()
}

async fn ok_json(response: reqwest::Response) -> Value {
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "body: {body}");
    serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

/// HTTP/2 clients reach apps: reads and writes, identity attached, in HTTP/1.1 to the upstream.
#[tokio::test]
async fn http2_clients_reach_apps() {
    let upstream = Upstream::start().await;
    let server = start(&upstream, "").await;
    let dev = server.sign_in("dev").await;
    let h2 = h2_client();

    let response = h2
        .get(server.url("/apps/echo/items?x=1"))
        .header("cookie", &dev.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let echoed = ok_json(response).await;
    assert_eq!(echoed["path"], "/base/items");
    assert_eq!(echoed["version"], "HTTP/1.1");
    assert_eq!(upstream_header(&echoed, "x-portico-user"), ["dev"]);
    assert_eq!(upstream_header(&echoed, "cookie"), Vec::<&str>::new());

    let posted = h2
        .post(server.url("/apps/echo/items"))
        .header("cookie", &dev.cookie)
        .header("sec-fetch-site", "same-origin")
        .body(vec![b'x'; 3000])
        .send()
        .await
        .unwrap();
    let posted = ok_json(posted).await;
    assert_eq!(posted["method"], "POST");
    assert_eq!(posted["body"], 3000);
    assert!(
        upstream.bodies().contains(&Ok(3000)),
        "the whole body arrived"
    );
}

/// HTTP/2 clients reach the real Backstage backend through `/backstage/api/*`.
#[tokio::test]
async fn http2_clients_reach_backstage() {
    let server = crate::backstage::user_portal("[catalog, whoami]").await;
    let alice = server.sign_in("alice").await;
    let response = h2_client()
        .get(server.url("/backstage/api/catalog/entities/by-name/user/acme/alice"))
        .header("accept", "application/json")
        .header("cookie", &alice.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let entity = ok_json(response).await;
    assert_eq!(entity["kind"], "User");
    assert_eq!(entity["metadata"]["name"], "alice");
}

/// A TCP connection to `server` from the loopback address `from` (127.0.0.2 is another client).
async fn connect_from(from: [u8; 4], server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(server).await.unwrap()
}

/// A request whose head never ends: the client stops before the blank line (slowloris).
async fn half_sent(server: SocketAddr) -> TcpStream {
    let mut stream = connect_from([127, 0, 0, 1], server).await;
    stream
        .write_all(b"GET /apps/echo/ HTTP/1.1\r\nHost: portal.acme.test\r\nX-Still-Typing: 1\r\n")
        .await
        .unwrap();
    stream
}

/// The first answer other than 200 to complete requests from `from`, asked again while the answer is
/// 200. A connection counts against the caps once a worker has accepted it, and with several workers
/// (one per core by default) a newer connection may be accepted before an older one: until the held
/// connections are all accepted, a probe may still be served.
async fn first_refusal(from: [u8; 4], server: SocketAddr) -> String {
    let mut status = String::new();
    for _ in 0..100 {
        status = status_of_complete_request(connect_from(from, server).await).await;
        if !status.starts_with("HTTP/1.1 200") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    status
}

/// Sends a complete `GET /.well-known/jwks.json` (public) on `stream` and returns the status line.
async fn status_of_complete_request(mut stream: TcpStream) -> String {
    let request = b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: portal.acme.test\r\nConnection: close\r\n\r\n";
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut answer))
        .await
        .expect("an answer, not a hang");
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().unwrap_or("").to_owned()
}

/// Half-sent requests from one address neither starve other clients nor stay open: the address's
/// connection cap refuses its excess with 429, and the header-read timeout closes what it holds.
#[tokio::test]
async fn half_sent_requests_cannot_starve_other_clients() {
    let upstream = Upstream::start().await;
    let server = start(
        &upstream,
        "server: { header_read_timeout: 2s, max_connections_per_client: 6 }",
    )
    .await;
    let mut slow = Vec::new();
    for _ in 0..6 {
        slow.push(half_sent(server.addr).await);
    }

    // The same address again, with a complete request: over its cap, refused before anything is read.
    let refused = first_refusal([127, 0, 0, 1], server.addr).await;
    assert!(refused.starts_with("HTTP/1.1 429"), "got {refused:?}");

    // Another client is served while the half-sent requests are open.
    let other = status_of_complete_request(connect_from([127, 0, 0, 2], server.addr).await).await;
    assert!(other.starts_with("HTTP/1.1 200"), "got {other:?}");

    // The half-sent requests are closed by the server (after the header-read timeout), never answered.
    for mut stream in slow {
        let mut answer = Vec::new();
        let ended = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut answer)).await;
        assert!(ended.is_ok(), "a half-sent request stays open");
        assert!(
            !String::from_utf8_lossy(&answer).contains(" 200 "),
            "a half-sent request was answered"
        );
    }

    // Their places are free again: the address is served once more.
    let mut again = String::new();
    for _ in 0..100 {
        again = status_of_complete_request(connect_from([127, 0, 0, 1], server.addr).await).await;
        if again.starts_with("HTTP/1.1 200") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.starts_with("HTTP/1.1 200"), "got {again:?}");
}

/// The listener's own cap: once `max_connections` are open, the next connection gets 503 at once
/// instead of waiting unanswered.
#[tokio::test]
async fn a_full_listener_refuses_new_connections_with_503() {
    let upstream = Upstream::start().await;
    let server = start(&upstream, "server: { max_connections: 3 }").await;
    let mut slow = Vec::new();
    for _ in 0..3 {
        slow.push(half_sent(server.addr).await);
    }
    let refused = first_refusal([127, 0, 0, 2], server.addr).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "got {refused:?}");
    drop(slow);
}

/// With several workers accepting on one listener, `max_connections` and `max_connections_per_client`
/// still count the process's connections: caps kept per worker would let each worker take its own
/// share, four times the configured number here.
#[tokio::test]
async fn the_connection_caps_hold_for_all_workers_together() {
    let upstream = Upstream::start().await;
    let server = start(
        &upstream,
        "server: { workers: 4, max_connections: 5, max_connections_per_client: 3 }",
    )
    .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(half_sent(server.addr).await);
    }
    for _ in 0..4 {
        let refused = first_refusal([127, 0, 0, 1], server.addr).await;
        assert!(refused.starts_with("HTTP/1.1 429"), "got {refused:?}");
    }
    for from in [2, 3] {
        open.push(connect_from([127, 0, 0, from], server.addr).await);
    }
    for from in 4..8 {
        let refused = first_refusal([127, 0, 0, from], server.addr).await;
        assert!(refused.starts_with("HTTP/1.1 503"), "got {refused:?}");
    }
    drop(open);
    let mut again = String::new();
    for _ in 0..100 {
        again = status_of_complete_request(connect_from([127, 0, 0, 9], server.addr).await).await;
        if again.starts_with("HTTP/1.1 200") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.starts_with("HTTP/1.1 200"), "got {again:?}");
}

/// A server whose runtime ends without a shutdown (as an embedding program's, or a test's, may) takes
/// its worker threads along: the port stops accepting instead of being served by threads of a server
/// that is gone.
#[test]
fn a_dropped_server_leaves_no_worker_serving() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = runtime.block_on(async {
        let upstream = Upstream::start().await;
        let server = start(&upstream, "server: { workers: 3 }").await;
        for from in 1..=6 {
            let status =
                status_of_complete_request(connect_from([127, 0, 0, from], server.addr).await)
                    .await;
            assert!(status.starts_with("HTTP/1.1 200"), "got {status:?}");
        }
        server.addr
    });
    drop(runtime);
    let refused = (0..100).any(|_| {
        let refused = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err();
        if !refused {
            std::thread::sleep(Duration::from_millis(20));
        }
        refused
    });
    assert!(
        refused,
        "{addr} still accepts connections after its server was dropped"
    );
}

/// GET through the proxy as `session` with extra request headers; the upstream's echo of the request.
async fn echo_with(
    server: &TestServer,
    session: &Session,
    path: &str,
    extra: &[(&str, &str)],
) -> Value {
    let mut request = server.get(path).header("cookie", &session.cookie);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    ok_json(request.send().await.unwrap()).await
}

/// Headers that upstream frameworks believe because a proxy would have set them (URL and method
/// overrides, other proxies' identity, client addresses, forwarding facts) never reach the app.
#[tokio::test]
async fn override_and_foreign_identity_headers_never_reach_the_upstream() {
    let upstream = Upstream::start().await;
    let server = start(&upstream, "").await;
    let dev = server.sign_in("dev").await;
    let forged = [
        ("x-original-url", "/admin/delete-all"),
        ("x-rewrite-url", "/admin/delete-all"),
        ("x-http-method-override", "DELETE"),
        ("x-http-method", "DELETE"),
        ("x-method-override", "DELETE"),
        ("x-original-method", "DELETE"),
        ("x-webauth-user", "admin"),
        ("x-webauth-groups", "platform-admin"),
        ("x-auth-request-groups", "platform-admin"),
        ("true-client-ip", "10.66.0.1"),
        ("x-client-ip", "10.66.0.1"),
        ("cf-connecting-ip", "10.66.0.1"),
        ("x-cluster-client-ip", "10.66.0.1"),
        ("x-proxyuser-ip", "10.66.0.1"),
        ("x-real-ip", "10.66.0.1"),
        ("forwarded", "for=10.66.0.1;host=evil.example;proto=https"),
        ("x-forwarded-prefix", "/admin"),
        ("x-forwarded-path", "/admin"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-server", "evil.example"),
        ("x-remote-user", "admin"),
        ("remote-user", "admin"),
        ("x-amzn-oidc-identity", "admin"),
        ("x-ms-client-principal-name", "admin"),
        (
            "x-goog-authenticated-user-email",
            "accounts.google.com:admin@acme.example",
        ),
    ];
    let mut extra = forged.to_vec();
    extra.push(("x-requested-with", "XMLHttpRequest"));
    extra.push(("x-app-specific", "kept"));
    let echoed = echo_with(&server, &dev, "/apps/echo/items", &extra).await;
    for (name, _) in forged {
        assert!(
            upstream_header(&echoed, name).is_empty(),
            "{name} reached the upstream: {echoed}"
        );
    }
    let seen = echoed.to_string();
    for value in [
        "/admin",
        "DELETE",
        "10.66.0.1",
        "evil.example",
        "platform-admin",
    ] {
        assert!(
            !seen.contains(value),
            "{value} reached the upstream: {seen}"
        );
    }
    assert_eq!(echoed["method"], "GET");
    assert_eq!(echoed["path"], "/base/items");
    // Ordinary application headers still pass.
    assert_eq!(
        upstream_header(&echoed, "x-requested-with"),
        ["XMLHttpRequest"]
    );
    assert_eq!(upstream_header(&echoed, "x-app-specific"), ["kept"]);
}

/// A group name holding the list separator (or control characters) cannot add a group upstream: it
/// arrives as one percent-encoded item, and the roles are what the role map says.
#[tokio::test]
async fn identity_header_values_cannot_add_a_group() {
    let upstream = Upstream::start().await;
    let server = start(&upstream, "").await;
    let mallory = server.sign_in("mallory").await;
    let echoed = echo_with(&server, &mallory, "/apps/echo/whoami", &[]).await;
    let groups = upstream_header(&echoed, "x-portico-groups");
    assert_eq!(groups.len(), 1, "one header: {echoed}");
    // What an upstream that splits on commas and trims (as most do) makes of it.
    let items: Vec<&str> = groups[0].split(',').map(str::trim).collect();
    assert!(
        !items.contains(&"platform-admin"),
        "a group was added: {items:?}"
    );
    assert_eq!(
        items,
        [
            "acme-eng",
            "eng%2C platform-admin",
            "x%01%2Cplatform-admin",
            "50%25"
        ]
    );
    assert_eq!(upstream_header(&echoed, "x-portico-roles"), ["developer"]);
    assert_eq!(upstream_header(&echoed, "x-portico-name"), ["Doe, Mallory"]);
}

/// X-Forwarded-Host and -Proto name the tenant's origin, whatever Host or X-Forwarded-Host the client
/// sent: an upstream that builds absolute links or redirects from them cannot be steered elsewhere.
/// Without a `public_origin`, a name the tenant lists is passed on as the client gave it (with its
/// port, so links work on a demo's `127.0.0.1:<port>`), but only with a numeric port; any other name is
/// replaced by the tenant's first host.
#[tokio::test]
async fn forwarded_host_and_proto_come_from_the_tenant_origin() {
    let upstream = Upstream::start().await;
    let server = start(&upstream, "").await;
    let dev = server.sign_in("dev").await;
    let port = server.addr.port();
    let forwarded = |host: String| {
        let (server, dev) = (&server, &dev);
        async move {
            let echoed = echo_with(
                server,
                dev,
                "/apps/echo/links",
                &[
                    ("host", &host),
                    ("x-forwarded-host", "evil.example"),
                    ("x-forwarded-proto", "https"),
                ],
            )
            .await;
            assert_eq!(upstream_header(&echoed, "x-forwarded-proto"), ["http"]);
            upstream_header(&echoed, "x-forwarded-host")
                .iter()
                .map(|value| value.to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        forwarded(format!("evil.example:{port}")).await,
        ["portal.acme.test"]
    );
    assert_eq!(
        forwarded(format!("PORTAL.ACME.TEST:{port}")).await,
        [format!("portal.acme.test:{port}")]
    );
    assert_eq!(
        forwarded(format!("127.0.0.1:{port}")).await,
        [format!("127.0.0.1:{port}")]
    );
    assert_eq!(
        forwarded("portal.acme.test:80@evil.example".to_owned()).await,
        ["portal.acme.test"]
    );

    // With a public origin, that is what upstreams are told, whatever name the client used.
    let public = start_tenant(
        acme_with_echo(&upstream.url()).public_origin("http://portal.acme.test:8443"),
        "",
    )
    .await;
    let dev = public.sign_in("dev").await;
    for host in [format!("127.0.0.1:{port}"), format!("evil.example:{port}")] {
        let echoed = echo_with(
            &public,
            &dev,
            "/apps/echo/links",
            &[("host", &host), ("x-forwarded-host", "evil.example")],
        )
        .await;
        assert_eq!(
            upstream_header(&echoed, "x-forwarded-host"),
            ["portal.acme.test:8443"],
            "Host {host}"
        );
    }
}

/// A chunked upload (no Content-Length, so it cannot be refused up front) that goes over
/// `proxy.max_request_body` is answered 413, and the upstream never takes the cut body as complete.
#[tokio::test]
async fn an_over_limit_chunked_body_is_413_and_never_complete_upstream() {
    let upstream = Upstream::start().await;
    let server = start(&upstream, "proxy: { max_request_body: 4KiB }").await;
    let dev = server.sign_in("dev").await;
    let chunks = (0..16).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; 1024])));
    let response = server
        .post("/apps/echo/upload")
        .header("cookie", &dev.cookie)
        .header("sec-fetch-site", "same-origin")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    json_error(response, 413, "body_too_large").await;
    for body in upstream.bodies() {
        assert!(
            body.is_err(),
            "the upstream took a cut body as complete: {body:?}"
        );
    }

    // Under the limit, a chunked upload goes through whole.
    let chunks = (0..3).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; 1024])));
    let response = server
        .post("/apps/echo/upload")
        .header("cookie", &dev.cookie)
        .header("sec-fetch-site", "same-origin")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(ok_json(response).await["body"], 3072);
}

/// A WebSocket upgrade must be a GET: on POST (or any other method) it is refused before the upstream,
/// which could otherwise switch protocols on a request whose access was decided as a POST.
#[tokio::test]
async fn a_websocket_upgrade_needs_get() {
    let upstream = Upstream::start().await;
    let server = start(&upstream, "").await;
    let dev = server.sign_in("dev").await;
    for method in ["POST", "PUT", "DELETE"] {
        let response = server
            .client
            .request(method.parse().unwrap(), server.url("/apps/echo/ws"))
            .header("cookie", &dev.cookie)
            .header("origin", server.origin())
            .header("sec-fetch-site", "same-origin")
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .send()
            .await
            .unwrap();
        json_error(response, 400, "bad_upgrade").await;
    }
    assert!(upstream.bodies().is_empty(), "refused before the upstream");
}

/// Error pages (also inside an app's iframe) and JSON answers carry `nosniff`; error pages carry a CSP
/// that allows nothing but their own style and script, and may be framed by the portal only.
#[tokio::test]
async fn errors_and_json_carry_nosniff_and_error_pages_a_policy() {
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/base", dead.local_addr().unwrap());
    drop(dead);
    let server = start_tenant(acme_with_echo(&dead_url), "").await;
    let dev = server.sign_in("dev").await;

    // An app's 502 as the shell's iframe loads it, and a 404 as a top-level navigation.
    for (path, dest, status) in [
        ("/apps/echo/", "iframe", 502),
        ("/apps/nothing-here/", "document", 404),
    ] {
        let page = server
            .get(path)
            .header("cookie", &dev.cookie)
            .header("accept", "text/html")
            .header("sec-fetch-mode", "navigate")
            .header("sec-fetch-dest", dest)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status().as_u16(), status, "{path}");
        let headers = page.headers();
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "SAMEORIGIN", "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "frame-ancestors 'self'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
    }

    // JSON errors and portico's own JSON.
    let error = server
        .get("/apps/nothing-here/")
        .header("cookie", &dev.cookie)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(error.headers()["x-content-type-options"], "nosniff");
    json_error(error, 404, "unknown_app").await;
    for path in ["/shell/config.json", "/.well-known/jwks.json"] {
        let json = server.get_as(path, &dev).await;
        assert_eq!(json.status(), StatusCode::OK, "{path}");
        assert_eq!(
            json.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
    }
}

/// HTTP/2 has no header-read timeout of its own: a connection that sent its preface and then nothing is
/// closed after `header_read_timeout`, but a request that takes longer than that is not cut off.
#[tokio::test]
async fn idle_http2_connections_are_closed_but_slow_requests_finish() {
    let upstream = Upstream::start().await;
    let server = start(&upstream, "server: { header_read_timeout: 1s }").await;
    let dev = server.sign_in("dev").await;

    let mut idle = connect_from([127, 0, 0, 1], server.addr).await;
    idle.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    // An empty SETTINGS frame: a valid start, then silence.
    idle.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let mut answer = Vec::new();
    let ended = tokio::time::timeout(TIMEOUT, idle.read_to_end(&mut answer)).await;
    assert!(ended.is_ok(), "an idle HTTP/2 connection stays open");

    let response = h2_client()
        .get(server.url("/apps/echo/slow"))
        .header("cookie", &dev.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(ok_json(response).await["path"], "/base/slow");
}
