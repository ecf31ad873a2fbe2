//! Metrics and the access line, as an operator sees them: `GET /metrics` on the admin listener after
//! known requests (deltas, so nothing depends on what ran before), the access line's fields (read from
//! the log: the server runs on the test's single-threaded runtime, so a thread-local subscriber sees
//! its lines), and the request id an upstream receives. Upstreams are the stock Express app
//! (tests/support/express-app.mjs) and a closed port; sign-in is dev sign-in.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::canonical_paths::Framework;
use crate::helpers::{TIMEOUT, TestServer, app, client, compile, config, tenant, user};
use crate::logs::Logs;

/// A user id that must never appear in the metrics.
const USER: &str = "zed-4711";

/// A running portico with its admin listener.
struct Portal {
    server: TestServer,
    admin: SocketAddr,
}

impl Portal {
    /// Tenant `acme` on host `127.0.0.1` (any port; no default tenant, so other hosts get 404), the
    /// dev user [`USER`], app `reports` in front of `express` and app `down` in front of a closed port.
    async fn start(express: &Framework, server_section: &str) -> Portal {
        Portal::start_with(express, server_section, None).await
    }

    /// [`Portal::start`], plus app `ws` in front of `ws_upstream` when given.
    async fn start_with(
        express: &Framework,
        server_section: &str,
        ws_upstream: Option<&str>,
    ) -> Portal {
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let acme = tenant("acme", &["127.0.0.1"])
            .user(user(USER, &["eng"]))
            .role("developer", &["eng"])
            .app(app("reports", &["developer"]).upstream(&express.url()))
            .app(app("down", &["developer"]).upstream(&format!("http://{closed}")));
        let acme = match ws_upstream {
            Some(url) => acme.app(app("ws", &["developer"]).upstream(url)),
            None => acme,
        };
        let yaml = config().top(server_section).tenant(acme).yaml();
        let dir = tempfile::tempdir().unwrap();
        let (server, admin) = TestServer::start_with_admin(compile(&yaml, dir.path())).await;
        Portal { server, admin }
    }

    async fn metrics(&self) -> Metrics {
        let response = client()
            .get(format!("http://{}/metrics", self.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        let text = response.text().await.unwrap();
        assert_valid_exposition(&text);
        Metrics(text)
    }
}

/// The text of one scrape.
struct Metrics(String);

impl Metrics {
    /// The value of the sample spelled exactly `series` (name and labels), 0 when absent.
    fn get(&self, series: &str) -> f64 {
        self.0
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |value| {
                value.split(' ').next().unwrap().parse().unwrap()
            })
    }

    fn has(&self, series: &str) -> bool {
        self.0.lines().any(|line| {
            line.strip_prefix(series)
                .is_some_and(|rest| rest.starts_with(' '))
        })
    }
}

/// How much `series` grew between two scrapes.
fn delta(before: &Metrics, after: &Metrics, series: &str) -> f64 {
    after.get(series) - before.get(series)
}

/// Every line is a `# HELP`/`# TYPE`/`# UNIT` line, a sample of a family declared before it, or the
/// final `# EOF`; names are `portico_…`; counter samples end in `_total` (or `_created`), histogram
/// samples in `_bucket`, `_sum` or `_count`; label values are quoted with escapes.
fn assert_valid_exposition(text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "ends with # EOF");
    let mut types: BTreeMap<&str, &str> = BTreeMap::new();
    let mut helped: HashSet<&str> = HashSet::new();
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap(), parts.next().unwrap());
            let value = parts.next().unwrap_or("");
            assert!(name.starts_with("portico_"), "{line}");
            assert!(is_metric_name(name), "{line}");
            match kind {
                "HELP" => assert!(helped.insert(name), "one HELP per family: {line}"),
                "TYPE" => {
                    assert!(["counter", "gauge", "histogram"].contains(&value), "{line}");
                    assert!(types.insert(name, value).is_none(), "{line}");
                }
                "UNIT" => assert_eq!(value, "seconds", "{line}"),
                _ => panic!("unknown comment line: {line}"),
            }
            continue;
        }
        let (name, rest) = line.split_at(
            line.find(['{', ' '])
                .unwrap_or_else(|| panic!("a sample without a value: {line}")),
        );
        assert!(is_metric_name(name), "{line}");
        let value = match rest.strip_prefix('{') {
            Some(labels) => parse_labels(labels, line),
            None => rest,
        };
        let value = value.strip_prefix(' ').unwrap_or_else(|| panic!("{line}"));
        let number = value.split(' ').next().unwrap();
        assert!(
            number.parse::<f64>().is_ok() || number == "+Inf",
            "not a number: {line}"
        );
        let (family, kind) = types
            .iter()
            .filter(|(family, _)| name.starts_with(**family))
            .max_by_key(|(family, _)| family.len())
            .unwrap_or_else(|| panic!("a sample before its TYPE: {line}"));
        assert!(helped.contains(family), "a family without HELP: {family}");
        let suffix = &name[family.len()..];
        let allowed: &[&str] = match *kind {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            _ => &[""],
        };
        assert!(allowed.contains(&suffix), "{kind} sample {name}: {line}");
    }
}

fn is_metric_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
        && !name.as_bytes()[0].is_ascii_digit()
}

/// Reads `name="value",…}` and returns what follows the `}`.
fn parse_labels<'a>(mut rest: &'a str, line: &str) -> &'a str {
    loop {
        let equals = rest.find('=').unwrap_or_else(|| panic!("{line}"));
        assert!(is_metric_name(&rest[..equals]), "label name in {line}");
        rest = rest[equals + 1..]
            .strip_prefix('"')
            .unwrap_or_else(|| panic!("unquoted label value: {line}"));
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => {
                    let escaped = chars.next().map(|(_, c)| c);
                    assert!(
                        matches!(escaped, Some('\\' | '"' | 'n')),
                        "bad escape: {line}"
                    );
                }
                Some((at, '"')) => break at,
                Some((_, '\n')) | None => panic!("unterminated label value: {line}"),
                Some(_) => {}
            }
        };
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else {
            return rest
                .strip_prefix('}')
                .unwrap_or_else(|| panic!("labels not closed: {line}"));
        }
    }
}

/// After known requests, `/metrics` shows them with the right labels: requests by tenant, app,
/// method and status class, both latency histograms, a closed upstream as `connect` errors, sign-ins
/// and their failures by reason, audit events, sessions and open connections; and nothing that names
/// a user, a session or a path.
#[tokio::test]
async fn metrics_count_what_happened_with_bounded_labels() {
    let express = Framework::express();
    let portal = Portal::start(&express, "").await;
    let server = &portal.server;
    let before = portal.metrics().await;

    let session = server.sign_in(USER).await;
    let refused = server
        .post("/auth/dev-login")
        .header("origin", server.origin())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=nobody&return_to=%2F")
        .send()
        .await
        .unwrap();
    assert!(refused.status().is_client_error(), "{}", refused.status());
    for _ in 0..3 {
        let answer = server.get_as("/apps/reports/overview", &session).await;
        assert_eq!(answer.status(), StatusCode::OK);
    }
    let posted = server
        .post("/apps/reports/reports")
        .header("cookie", &session.cookie)
        .header("origin", server.origin())
        .body("x".repeat(100))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::OK);
    let down = server.get_as("/apps/down/anything", &session).await;
    assert_eq!(down.status(), StatusCode::BAD_GATEWAY);
    let unknown = server
        .get("/")
        .header("host", "unknown.example")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let after = portal.metrics().await;
    let grew = |series: &str| delta(&before, &after, series);
    assert_eq!(
        grew(r#"portico_requests_total{tenant="acme",app="reports",method="GET",status="2xx"}"#),
        3.0
    );
    assert_eq!(
        grew(r#"portico_requests_total{tenant="acme",app="reports",method="POST",status="2xx"}"#),
        1.0
    );
    assert_eq!(
        grew(r#"portico_requests_total{tenant="acme",app="down",method="GET",status="5xx"}"#),
        1.0
    );
    assert_eq!(
        grew(r#"portico_requests_total{tenant="-",app="-",method="GET",status="4xx"}"#),
        1.0,
        "an unknown host is counted without a tenant"
    );
    assert_eq!(
        grew(r#"portico_upstream_errors_total{tenant="acme",app="down",kind="connect"}"#),
        1.0
    );
    assert_eq!(
        grew(r#"portico_upstream_duration_seconds_count{tenant="acme",app="reports"}"#),
        4.0
    );
    assert_eq!(
        grew(r#"portico_processing_duration_seconds_count{tenant="acme",app="reports"}"#),
        4.0
    );
    assert!(
        after.has(
            r#"portico_upstream_duration_seconds_bucket{le="+Inf",tenant="acme",app="reports"}"#
        )
    );
    assert!(after.has(
        r#"portico_upstream_duration_seconds_bucket{le="0.005",tenant="acme",app="reports"}"#
    ));
    assert_eq!(
        grew(r#"portico_sign_ins_total{tenant="acme",method="dev"}"#),
        1.0
    );
    assert_eq!(
        grew(r#"portico_sign_in_failures_total{tenant="acme",reason="unknown_user"}"#),
        1.0
    );
    assert_eq!(
        grew(r#"portico_audit_events_total{event="sign_in",outcome="success"}"#),
        1.0
    );
    assert_eq!(
        grew(r#"portico_audit_events_total{event="sign_in",outcome="failure"}"#),
        1.0
    );
    assert!(after.get("portico_sessions") >= 1.0);
    assert!(
        after.get("portico_open_connections") >= 1.0,
        "the client's kept-alive connection is open"
    );
    for secret in [USER, "nobody", session.id.as_str(), "overview", "anything"] {
        assert!(!after.0.contains(secret), "`{secret}` is in the metrics");
    }
}

fn request_id(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The access line says who (client address), what (query presence, never the query), how much (bytes
/// in and out), what the upstream said and how long it took, and whether the body completed: a body
/// the upstream cut mid-way and a body the client walked away from are logged as such, and counted.
#[tokio::test]
async fn the_access_line_tells_bytes_upstream_and_how_the_body_ended() {
    let express = Framework::express();
    let (logs, _guard) = Logs::capture();
    let portal = Portal::start(&express, "").await;
    let server = &portal.server;
    let session = server.sign_in(USER).await;
    let before = portal.metrics().await;

    let answer = server
        .get("/apps/reports/overview?token=s3cret")
        .header("cookie", &session.cookie)
        .send()
        .await
        .unwrap();
    let id = request_id(&answer);
    let body = answer.bytes().await.unwrap();
    let line = logs.access(&id).await;
    assert_eq!(line["client"], "127.0.0.1");
    assert_eq!(line["query"], true);
    assert!(!line.to_string().contains("s3cret"), "{line}");
    assert_eq!(line["status"], 200);
    assert_eq!(line["upstream_status"], 200);
    assert!(line["upstream_us"].as_u64().is_some(), "{line}");
    assert_eq!(line["bytes_out"], body.len());
    assert_eq!(line["bytes_in"], 0);
    assert_eq!(line["completed"], true);
    assert!(line.get("end").is_none(), "{line}");
    assert_eq!(line["tenant"], "acme");
    assert_eq!(line["app"], "reports");

    let posted = server
        .post("/apps/reports/reports")
        .header("cookie", &session.cookie)
        .header("origin", server.origin())
        .body(vec![b'x'; 3000])
        .send()
        .await
        .unwrap();
    let line = logs.access(&request_id(&posted)).await;
    assert_eq!(line["bytes_in"], 3000);
    assert_eq!(line["query"], false);

    // The upstream sends 1000 of its announced 1 000 000 bytes, then destroys the connection.
    let cut = server.get_as("/apps/reports/cut", &session).await;
    assert_eq!(cut.status(), StatusCode::OK);
    let id = request_id(&cut);
    assert!(cut.bytes().await.is_err(), "the client sees a broken body");
    let line = logs.access(&id).await;
    assert_eq!(line["completed"], false, "{line}");
    assert_eq!(line["end"], "error");
    assert_eq!(line["bytes_out"], 1000);

    // The client reads one chunk of a slow body and goes away.
    let mut drip = server.get_as("/apps/reports/drip", &session).await;
    let id = request_id(&drip);
    assert!(drip.chunk().await.unwrap().is_some());
    drop(drip);
    let line = logs.access(&id).await;
    assert_eq!(line["completed"], false, "{line}");
    assert_eq!(line["end"], "client_gone");

    let after = portal.metrics().await;
    assert_eq!(
        delta(
            &before,
            &after,
            r#"portico_upstream_errors_total{tenant="acme",app="reports",kind="reset"}"#
        ),
        1.0
    );
    assert_eq!(
        delta(
            &before,
            &after,
            r#"portico_responses_cut_short_total{tenant="acme",app="reports"}"#
        ),
        2.0
    );
}

/// A request hyper refuses before the router (too many header lines) is logged with the client.
#[tokio::test]
async fn a_request_refused_before_routing_is_logged() {
    let express = Framework::express();
    let (logs, _guard) = Logs::capture();
    let portal = Portal::start(&express, "").await;
    let mut stream = tokio::net::TcpStream::connect(portal.server.addr)
        .await
        .unwrap();
    // More header lines than hyper accepts (100): refused with 431, and small enough to be read
    // whole, so the answer is not lost to a reset.
    let many: String = (0..150).map(|i| format!("X-H{i}: {i}\r\n")).collect();
    let huge = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n{many}\r\n");
    let _ = stream.write_all(huge.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let line = tokio::time::timeout(TIMEOUT, async {
        loop {
            if let Some(line) = logs.access_lines().into_iter().find(|l| l["status"] == 431) {
                return line;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("an access line for the refused request");
    assert_eq!(line["client"], "127.0.0.1");
}

/// The upstream gets portico's request id (the one on the response and in the log), never the id a
/// client made up; from a trusted proxy, its id is kept and its `X-Forwarded-For` names the client.
#[tokio::test]
async fn the_upstream_gets_portico_s_request_id_unless_a_trusted_proxy_sent_one() {
    let express = Framework::express();
    let (logs, _guard) = Logs::capture();
    let untrusted = Portal::start(&express, "").await;
    let trusted = Portal::start(&express, "server: { trusted_proxies: [127.0.0.0/8] }").await;
    for (portal, is_trusted) in [(&untrusted, false), (&trusted, true)] {
        let server = &portal.server;
        let session = server.sign_in(USER).await;
        let answer = server
            .get("/apps/reports/headers")
            .header("cookie", &session.cookie)
            .header("x-request-id", "client-chosen-1")
            .header("x-forwarded-for", "203.0.113.7")
            .send()
            .await
            .unwrap();
        let id = request_id(&answer);
        let seen: Value = answer.json().await.unwrap();
        assert_eq!(seen["headers"]["x-request-id"], id.as_str());
        let line = logs.access(&id).await;
        // The upstream is told the same client as the access line: behind a trusted proxy the
        // address it named, else the connection's (a client-written X-Forwarded-For is replaced).
        let forwarded_for = &seen["headers"]["x-forwarded-for"];
        if is_trusted {
            assert_eq!(id, "client-chosen-1");
            assert_eq!(line["client"], "203.0.113.7");
            assert_eq!(forwarded_for, "203.0.113.7");
        } else {
            assert_ne!(id, "client-chosen-1");
            assert_eq!(line["client"], "127.0.0.1");
            assert_eq!(forwarded_for, "127.0.0.1");
        }
    }
}

/// With `telemetry.otlp.endpoint`, each request becomes a server span posted as OTLP/HTTP JSON: trace
/// and span ids in hex, the method and app as its name, method, path, status, tenant, app and request
/// id as attributes, an error status for a 5xx; the query is not in it.
#[tokio::test]
async fn request_spans_are_exported_as_otlp_json() {
    let express = Framework::express();
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let collector = {
        let received = received.clone();
        axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let received = received.clone();
                async move {
                    assert_eq!(headers["content-type"], "application/json");
                    received
                        .lock()
                        .unwrap()
                        .push(serde_json::from_str(&body).unwrap());
                    "{}"
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, collector).await });
    let portal = Portal::start(
        &express,
        &format!("telemetry: {{ otlp: {{ endpoint: \"http://{collector_addr}/v1/traces\" }} }}"),
    )
    .await;
    let server = &portal.server;
    let session = server.sign_in(USER).await;
    let ok = server
        .get("/apps/reports/overview?token=s3cret")
        .header("cookie", &session.cookie)
        .send()
        .await
        .unwrap();
    let ok_id = request_id(&ok);
    ok.bytes().await.unwrap();
    let down = server.get_as("/apps/down/x", &session).await;
    let down_id = request_id(&down);
    down.bytes().await.unwrap();

    let spans = tokio::time::timeout(TIMEOUT, async {
        loop {
            let spans: Vec<Value> = received
                .lock()
                .unwrap()
                .iter()
                .flat_map(|body| {
                    let resource = &body["resourceSpans"][0];
                    assert_eq!(
                        resource["resource"]["attributes"][0]["value"]["stringValue"],
                        "portico"
                    );
                    resource["scopeSpans"][0]["spans"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                })
                .collect();
            let ids: Vec<String> = spans
                .iter()
                .map(|s| attribute(s, "portico.request_id"))
                .collect();
            if ids.contains(&ok_id) && ids.contains(&down_id) {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the spans reach the collector");
    let span = |id: &str| {
        spans
            .iter()
            .find(|s| attribute(s, "portico.request_id") == id)
            .unwrap()
            .clone()
    };
    let ok = span(&ok_id);
    let hex = |v: &Value, len: usize| {
        let text = v.as_str().unwrap();
        text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit()) && text != "0".repeat(len)
    };
    assert!(hex(&ok["traceId"], 32), "{ok}");
    assert!(hex(&ok["spanId"], 16), "{ok}");
    assert_eq!(ok["name"], "GET reports");
    assert_eq!(ok["kind"], 2);
    assert_eq!(attribute(&ok, "http.request.method"), "GET");
    assert_eq!(attribute(&ok, "url.path"), "/apps/reports/overview");
    assert_eq!(attribute(&ok, "http.response.status_code"), "200");
    assert_eq!(attribute(&ok, "portico.tenant"), "acme");
    assert_eq!(ok["status"]["code"], 0);
    let start: u128 = ok["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let end: u128 = ok["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(start > 0 && end >= start);
    assert!(!ok.to_string().contains("s3cret"));
    assert!(!ok.to_string().contains(USER));
    let down = span(&down_id);
    assert_eq!(attribute(&down, "http.response.status_code"), "502");
    assert_eq!(down["status"]["code"], 2);
    assert_ne!(down["traceId"], ok["traceId"]);
}

/// A span attribute's value as text (strings as they are, integers as their decimal string).
fn attribute(span: &Value, key: &str) -> String {
    let found = span["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == key)
        .unwrap_or_else(|| panic!("no attribute {key} in {span}"));
    let value = &found["value"];
    value["stringValue"]
        .as_str()
        .or(value["intValue"].as_str())
        .unwrap_or_else(|| panic!("{value}"))
        .to_owned()
}

/// An open WebSocket is counted while it is open, and no longer once it is closed.
#[tokio::test]
async fn open_websockets_are_counted() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let echo = axum::Router::new().route(
        "/ws",
        axum::routing::get(|upgrade: axum::extract::ws::WebSocketUpgrade| async move {
            upgrade.on_upgrade(|mut socket| async move {
                while let Some(Ok(message)) = socket.recv().await {
                    if socket.send(message).await.is_err() {
                        break;
                    }
                }
            })
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, echo).await });
    let express = Framework::express();
    let portal = Portal::start_with(&express, "", Some(&format!("http://{upstream}"))).await;
    let session = portal.server.sign_in(USER).await;
    assert_eq!(portal.metrics().await.get("portico_open_websockets"), 0.0);

    let mut request = format!("ws://{}/apps/ws/ws", portal.server.addr)
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert("origin", portal.server.origin().parse().unwrap());
    headers.insert("cookie", session.cookie.parse().unwrap());
    let (mut socket, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(request))
        .await
        .unwrap()
        .unwrap();
    socket.send(Message::Text("hello".into())).await.unwrap();
    let echoed = tokio::time::timeout(TIMEOUT, socket.next()).await.unwrap();
    assert_eq!(echoed.unwrap().unwrap(), Message::Text("hello".into()));
    assert_eq!(portal.metrics().await.get("portico_open_websockets"), 1.0);

    socket.close(None).await.unwrap();
    drop(socket);
    tokio::time::timeout(TIMEOUT, async {
        while portal.metrics().await.get("portico_open_websockets") != 0.0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a closed WebSocket is no longer counted");
}
