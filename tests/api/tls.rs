//! TLS and the edge: certificates generated here (rcgen: a test CA signing leaf certificates), real TLS
//! clients (reqwest with rustls, the test CA as its only extra root), SNI selection between two tenant
//! hosts, HTTP/2 by ALPN, reload of a renewed certificate (and a broken renewal that changes nothing),
//! the https redirect listener, HSTS on https tenants only; the client timeouts (a stalled request body,
//! an idle keep-alive connection); and graceful shutdown of the real binary (SIGTERM with a streaming
//! request and a WebSocket in flight, the deadline, a second signal).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{TIMEOUT, acme, app, compile, config, dev, tenant, user};

// Certificates ----------------------------------------------------------------------------------------

/// A certificate authority made for one test.
struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

/// A leaf certificate chain and its key, as PEM.
struct Leaf {
    chain: String,
    key: String,
}

impl TestCa {
    fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "portico test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let issuer =
            rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
                .unwrap();
        TestCa { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` with serial number `serial`, valid until 1 January of `year`.
    fn leaf(&self, names: &[&str], serial: u64, year: i32) -> Leaf {
        let mut params = rcgen::CertificateParams::new(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .unwrap();
        params.serial_number = Some(serial.into());
        params.not_after = rcgen::date_time_ymd(year, 1, 1);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            chain: format!("{}{}", cert.pem(), self.pem()),
            key: key.serialize_pem(),
        }
    }
}

impl Leaf {
    fn write(&self, dir: &Path, name: &str) {
        std::fs::write(dir.join(format!("{name}.pem")), &self.chain).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), &self.key).unwrap();
    }
}

/// What a client learnt of the certificate it was served.
#[derive(Debug, PartialEq, Eq)]
struct Served {
    serial: String,
    names: Vec<String>,
    not_after_year: i32,
}

fn served(response: &reqwest::Response) -> Served {
    let info = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .expect("tls_info is on");
    let der = info.peer_certificate().expect("a peer certificate");
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    let names = cert
        .subject_alternative_name()
        .unwrap()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .map(|name| name.to_string())
                .collect()
        })
        .unwrap_or_default();
    Served {
        serial: cert.raw_serial_as_string(),
        names,
        not_after_year: cert.validity().not_after.to_datetime().year(),
    }
}

// Servers ---------------------------------------------------------------------------------------------

const ACME: &str = "portal.acme.test";
const GLOBEX: &str = "portal.globex.test";

/// A TLS portico with two tenants: acme (https public origin, first certificate) and globex.
struct TlsServer {
    addr: SocketAddr,
    redirect: Option<SocketAddr>,
    admin: SocketAddr,
    dir: tempfile::TempDir,
    ca: TestCa,
}

impl TlsServer {
    async fn start(server_keys: &str) -> TlsServer {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().unwrap();
        ca.leaf(&[ACME], 1, 2030).write(dir.path(), "acme");
        ca.leaf(&[GLOBEX, "*.globex.test"], 2, 2030)
            .write(dir.path(), "globex");
        let yaml = config()
            .top(&format!(
                "server: {{ tls: {{ cert: acme.pem, key: acme.key, certificates: [{{ cert: globex.pem, key: globex.key }}], reload_interval: 1s }}{server_keys} }}"
            ))
            .tenant(
                tenant("acme", &[ACME])
                    .public_origin(&format!("https://{ACME}"))
                    .user(dev())
                    .role("developer", &["acme-eng"]),
            )
            .tenant(
                tenant("globex", &[GLOBEX])
                    .user(user("gus", &["globex-eng"]))
                    .role("developer", &["globex-eng"]),
            )
            .yaml();
        let mut config = compile(&yaml, dir.path());
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        config.server.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        if config.server.redirect_listen.is_some() {
            config.server.redirect_listen = Some("127.0.0.1:0".parse().unwrap());
        }
        let app = portico::app::App::build(config)
            .await
            .expect("portico starts");
        let addr = app.local_addr();
        let redirect = app.redirect_addr();
        let admin = app.admin_addr().expect("an admin listener");
        tokio::spawn(app.run());
        TlsServer {
            addr,
            redirect,
            admin,
            dir,
            ca,
        }
    }

    /// The year in which `portico_certificate_expiry_timestamp_seconds{name}` says the certificate
    /// named `name` expires.
    async fn expiry_year_in_metrics(&self, name: &str) -> i32 {
        let text = crate::helpers::client()
            .get(format!("http://{}/metrics", self.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let prefix = format!("portico_certificate_expiry_timestamp_seconds{{name=\"{name}\"}} ");
        let seconds: i64 = text
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix}in /metrics:\n{text}"))
            .parse()
            .unwrap();
        // Days since 1970 to a year, good enough between 1970 and 2100.
        let days = seconds / 86_400;
        let mut year = 1970;
        let mut left = days;
        loop {
            let length = if year % 4 == 0 { 366 } else { 365 };
            if left < length {
                return year;
            }
            left -= length;
            year += 1;
        }
    }

    /// A fresh client (its own connections) that trusts the test CA and finds both hosts here.
    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca.pem().as_bytes()).unwrap())
            .resolve(ACME, self.addr)
            .resolve(GLOBEX, self.addr)
            .resolve("shop.globex.test", self.addr)
            .tls_info(true)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(TIMEOUT)
            .build()
            .unwrap()
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.addr.port())
    }
}

// SNI, ALPN, HSTS -------------------------------------------------------------------------------------

/// Each tenant host gets its own certificate by SNI (a wildcard too), a client without SNI gets the
/// first one, both protocols are offered by ALPN, and HSTS goes with the https tenant only.
#[tokio::test]
async fn sni_chooses_the_certificate_and_alpn_offers_h2() {
    let server = TlsServer::start("").await;
    let client = server.client();

    let acme = client
        .get(server.url(ACME, "/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(served(&acme).names, vec![format!("DNSName({ACME})")]);
    assert_eq!(acme.version(), reqwest::Version::HTTP_2, "h2 by ALPN");
    assert_eq!(
        acme.headers()
            .get("strict-transport-security")
            .map(|v| v.to_str().unwrap()),
        Some("max-age=31536000"),
        "the https tenant gets HSTS"
    );

    for host in [GLOBEX, "shop.globex.test"] {
        let globex = client
            .get(server.url(host, "/auth/login"))
            .send()
            .await
            .unwrap();
        assert_eq!(served(&globex).serial, "02", "{host}");
        assert!(
            globex.headers().get("strict-transport-security").is_none(),
            "a tenant without an https origin gets no HSTS"
        );
    }

    // An error page of the https tenant keeps its HSTS.
    let missing = client
        .get(server.url(ACME, "/apps/nope/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(missing.status().is_client_error() || missing.status().is_redirection());
    assert!(missing.headers().get("strict-transport-security").is_some());

    // HTTP/1.1 when the client offers only that.
    let http1 = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(server.ca.pem().as_bytes()).unwrap())
        .resolve(ACME, server.addr)
        .http1_only()
        .no_proxy()
        .build()
        .unwrap()
        .get(server.url(ACME, "/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(http1.version(), reqwest::Version::HTTP_11);

    // No SNI (an IP address): the first certificate, which does not name the address.
    let by_ip = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .tls_info(true)
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("https://{}/", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(served(&by_ip).serial, "01", "the default certificate");
}

/// A renewed certificate on disk serves the next handshakes without a restart, while an open
/// connection keeps working; a broken renewal is refused and the old certificate keeps serving.
#[tokio::test]
async fn renewed_certificates_are_picked_up_and_broken_ones_refused() {
    let server = TlsServer::start("").await;
    let kept = server.client();
    let first = kept
        .get(server.url(ACME, "/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        served(&first),
        Served {
            serial: "01".into(),
            names: vec![format!("DNSName({ACME})")],
            not_after_year: 2030
        }
    );
    drop(first);
    assert_eq!(server.expiry_year_in_metrics(ACME).await, 2030);
    assert_eq!(server.expiry_year_in_metrics(GLOBEX).await, 2030);

    // A broken renewal: the new chain with the key of another certificate, then garbage.
    let renewed = server.ca.leaf(&[ACME], 3, 2031);
    let other = server.ca.leaf(&[ACME], 4, 2031);
    std::fs::write(server.dir.path().join("acme.pem"), &renewed.chain).unwrap();
    std::fs::write(server.dir.path().join("acme.key"), &other.key).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await; // two looks at the files
    let during = server
        .client()
        .get(server.url(ACME, "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(served(&during).serial, "01", "a mismatched pair is refused");
    std::fs::write(server.dir.path().join("acme.pem"), "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let during = server
        .client()
        .get(server.url(ACME, "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        served(&during).serial,
        "01",
        "an unparseable file is refused"
    );

    // The good renewal.
    renewed.write(server.dir.path(), "acme");
    let mut now = served(
        &server
            .client()
            .get(server.url(ACME, "/"))
            .send()
            .await
            .unwrap(),
    );
    for _ in 0..100 {
        if now.serial != "01" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = served(
            &server
                .client()
                .get(server.url(ACME, "/"))
                .send()
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        now.serial, "03",
        "a new connection gets the renewed certificate"
    );
    assert_eq!(now.not_after_year, 2031);
    assert_eq!(
        server.expiry_year_in_metrics(ACME).await,
        2031,
        "the metrics show the renewed certificate's expiry"
    );

    // The connection opened before still works, and is still the old handshake.
    let again = kept
        .get(server.url(ACME, "/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(served(&again).serial, "01", "the same connection as before");
}

/// The plain listener redirects hosts a tenant lists to https and nothing else; it never serves.
#[tokio::test]
async fn the_redirect_listener_sends_listed_hosts_to_https() {
    let server = TlsServer::start(", redirect_listen: 127.0.0.1:0").await;
    let redirect = server.redirect.expect("a redirect listener");
    let plain = crate::helpers::client();
    let get = |host: &str, path: &str| {
        plain
            .get(format!("http://{redirect}{path}"))
            .header("host", host)
    };

    // acme's public origin is https://portal.acme.test: its port (none) is used.
    let response = get(ACME, "/home/x?y=1").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        response.headers()["location"],
        format!("https://{ACME}/home/x?y=1").as_str()
    );
    assert!(response.headers().get("set-cookie").is_none());

    // globex has no https origin: the TLS listener's port.
    let response = get(&format!("{GLOBEX}:80"), "/").send().await.unwrap();
    assert_eq!(
        response.headers()["location"],
        format!("https://{GLOBEX}:{}/", server.addr.port()).as_str()
    );

    // Other methods keep their method and body: 308.
    let response = plain
        .post(format!("http://{redirect}/auth/dev-login"))
        .header("host", ACME)
        .body("user=dev")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);

    // A host no tenant lists is not redirected anywhere, nor is a request without a host.
    let response = get("evil.example", "/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.headers().get("location").is_none());
    let no_host = crate::helpers::raw_exchange(redirect, b"GET / HTTP/1.0\r\n\r\n").await;
    assert_eq!(no_host.status, 400);
    assert!(no_host.header("location").is_none());
}

// Client timeouts ------------------------------------------------------------------------------------

/// Reads one HTTP/1.1 response with a `content-length` off `stream`; `None` when the server closed.
async fn read_response(stream: &mut TcpStream) -> Option<String> {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while !bytes.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        bytes.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&bytes).into_owned();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(head)
}

/// A body that stalls is cut after `body_read_timeout` with 408, and the connection closed.
#[tokio::test]
async fn a_stalled_request_body_gets_408_and_the_connection_closes() {
    let server = config()
        .top("server: { body_read_timeout: 1s, header_read_timeout: 10s }")
        .tenant(acme().user(dev()).role("developer", &["acme-eng"]))
        .start()
        .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /auth/dev-login HTTP/1.1\r\nHost: {}\r\nOrigin: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nuser=dev&return",
                server.addr,
                server.origin()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let head = tokio::time::timeout(TIMEOUT, read_response(&mut stream))
        .await
        .expect("an answer, not a hang")
        .expect("a response before the close");
    assert!(head.starts_with("HTTP/1.1 408"), "got {head}");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection is closed after the 408");
}

/// A keep-alive connection may rest longer than `header_read_timeout` between requests, and is closed
/// once it rested `keepalive_timeout`.
#[tokio::test]
async fn idle_keep_alive_connections_are_closed_after_the_keepalive_timeout() {
    let server = config()
        .top("server: { keepalive_timeout: 3s, header_read_timeout: 1s }")
        .tenant(acme().user(dev()).role("developer", &["acme-eng"]))
        .start()
        .await;
    let request = format!(
        "GET /.well-known/jwks.json HTTP/1.1\r\nHost: {}\r\n\r\n",
        server.addr
    );
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_response(&mut stream).await.expect("a first answer");
    assert!(head.starts_with("HTTP/1.1 200"), "got {head}");

    // Longer than the header-read timeout, shorter than keep-alive: still open.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_response(&mut stream)
        .await
        .expect("the connection is still open after 1.5 s");
    assert!(head.starts_with("HTTP/1.1 200"), "got {head}");

    // Then silence: the server hangs up.
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "an idle connection stays open");
    assert!(rest.is_empty(), "nothing is sent on close");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "closed by the keep-alive timeout, not the header-read one ({:?})",
        started.elapsed()
    );
}

/// hyper's limit on a request head (its default `max_buf_size`, which portico keeps): 8 KiB + 100 ×
/// 4 KiB. A head that has not ended within this many bytes is refused with 431.
const MAX_HEAD: usize = 8192 + 4096 * 100;

/// A keep-alive connection that rested past the listener's parking delay (1 s: hyper's connection
/// and its buffers are dropped, the socket is only watched) serves its next request as before, and
/// the head limits still hold there: a head just under hyper's limit is answered, one at the limit
/// that has not ended gets 431.
#[tokio::test]
async fn a_rested_connection_keeps_the_head_limits() {
    let server = config()
        .top("server: { keepalive_timeout: 60s }")
        .tenant(acme().user(dev()).role("developer", &["acme-eng"]))
        .start()
        .await;
    let request = |extra: &str| {
        format!(
            "GET /.well-known/jwks.json HTTP/1.1\r\nHost: {}\r\n{extra}\r\n",
            server.addr
        )
    };
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(request("").as_bytes()).await.unwrap();
    let head = read_response(&mut stream).await.expect("a first answer");
    assert!(head.starts_with("HTTP/1.1 200"), "got {head}");

    // Rested (parked), then a head of nearly the limit, on the same connection.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let near = request(&format!("X-Padding: {}\r\n", "p".repeat(MAX_HEAD - 1000)));
    assert!(near.len() > MAX_HEAD - 1000 && near.len() < MAX_HEAD);
    stream.write_all(near.as_bytes()).await.unwrap();
    let head = tokio::time::timeout(TIMEOUT, read_response(&mut stream))
        .await
        .expect("an answer, not a hang")
        .expect("the rested connection answers a head near the limit");
    assert!(head.starts_with("HTTP/1.1 200"), "got {head}");

    // Rested again, then a head that reaches the limit without ending: refused as on a fresh
    // connection, and closed. (Exactly the limit, so the server reads all of it and the 431 is not
    // lost to a reset.)
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut over = request("").into_bytes();
    over.truncate(over.len() - 2); // no blank line: the head goes on
    over.extend(std::iter::repeat_n(b'x', MAX_HEAD - over.len()));
    stream.write_all(&over).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "got {answer:?}");

    // The same on a fresh connection, for comparison: the limit is hyper's, parked or not.
    let mut fresh = TcpStream::connect(server.addr).await.unwrap();
    fresh.write_all(&over).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, fresh.read_to_end(&mut answer)).await;
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 431"),
        "a fresh connection got {:?}",
        String::from_utf8_lossy(&answer)
    );
}

/// Many keep-alive connections that rested past the parking delay are all served again, each with
/// its own answer (parking and waking does not mix connections up).
#[tokio::test]
async fn rested_connections_each_serve_their_next_request() {
    let server = config()
        .top("server: { keepalive_timeout: 60s }")
        .tenant(acme().user(dev()).role("developer", &["acme-eng"]))
        .start()
        .await;
    let mut streams = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let first = format!(
            "GET /.well-known/jwks.json HTTP/1.1\r\nHost: {}\r\n\r\n",
            server.addr
        );
        stream.write_all(first.as_bytes()).await.unwrap();
        let head = read_response(&mut stream).await.expect("a first answer");
        assert!(head.starts_with("HTTP/1.1 200"), "got {head}");
        streams.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Every other connection asks for a path that is not there: its answer must be its own.
    for (index, stream) in streams.iter_mut().enumerate() {
        let path = if index % 2 == 0 {
            "/.well-known/jwks.json"
        } else {
            "/.well-known/nothing-here"
        };
        let next = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n\r\n",
            server.addr
        );
        stream.write_all(next.as_bytes()).await.unwrap();
    }
    for (index, stream) in streams.iter_mut().enumerate() {
        let head = tokio::time::timeout(TIMEOUT, read_response(stream))
            .await
            .expect("an answer, not a hang")
            .expect("a rested connection answers");
        if index % 2 == 0 {
            assert!(head.starts_with("HTTP/1.1 200"), "#{index} got {head}");
        } else {
            assert!(!head.starts_with("HTTP/1.1 200"), "#{index} got {head}");
        }
    }
}

// Shutdown --------------------------------------------------------------------------------------------

/// An upstream with a slow stream, a stream that never ends, and a WebSocket echo that records the
/// Close frames it receives.
struct Upstream {
    addr: SocketAddr,
    closes: Arc<Mutex<Vec<u16>>>,
}

impl Upstream {
    async fn start() -> Upstream {
        let closes = Arc::new(Mutex::new(Vec::new()));
        let router = Router::new()
            .route("/slow", axum::routing::get(slow))
            .route("/hang", axum::routing::get(hang))
            .route("/ws", axum::routing::get(websocket_echo))
            .with_state(closes.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Upstream { addr, closes }
    }
}

/// 20 chunks, 100 ms apart.
async fn slow() -> Response {
    let chunks = futures_util::stream::iter(0..20).then(|index| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, std::io::Error>(format!("chunk {index}\n"))
    });
    Response::new(axum::body::Body::from_stream(chunks))
}

/// One chunk, then nothing, ever.
async fn hang() -> Response {
    let chunks = futures_util::stream::once(async { Ok::<_, std::io::Error>("started\n") })
        .chain(futures_util::stream::pending());
    Response::new(axum::body::Body::from_stream(chunks))
}

async fn websocket_echo(
    State(closes): State<Arc<Mutex<Vec<u16>>>>,
    upgrade: axum::extract::ws::WebSocketUpgrade,
) -> Response {
    use axum::extract::ws::Message;
    upgrade.on_upgrade(move |mut socket| async move {
        while let Some(Ok(message)) = socket.recv().await {
            let echo = match message {
                Message::Text(text) => Message::Text(text),
                Message::Close(frame) => {
                    closes
                        .lock()
                        .unwrap()
                        .push(frame.map_or(0, |frame| frame.code));
                    break;
                }
                _ => continue,
            };
            if socket.send(echo).await.is_err() {
                break;
            }
        }
    })
}

/// The `portico` binary, started on a config file; stopped (killed) when dropped.
struct Portico {
    child: tokio::process::Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    /// The tasks copying stdout and stderr into `log`; done once the process has closed both.
    readers: Vec<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Portico {
    async fn start(upstream: &Upstream, shutdown_timeout: &str) -> Portico {
        let dir = tempfile::tempdir().unwrap();
        let yaml =
            config()
                .top(&format!(
                    // Three workers: the requests and the WebSocket of a shutdown test may be on any.
                    "server: {{ shutdown_timeout: {shutdown_timeout}, workers: 3 }}"
                ))
                .tenant(acme().user(dev()).role("developer", &["acme-eng"]).app(
                    app("echo", &["developer"]).upstream(&format!("http://{}", upstream.addr)),
                ))
                .yaml();
        let file = dir.path().join("portico.yaml");
        std::fs::write(&file, yaml).unwrap();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_portico"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&file)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (sender, mut serving) = tokio::sync::mpsc::unbounded_channel();
        let mut readers = Vec::new();
        for output in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let (log, sender) = (log.clone(), sender.clone());
            readers.push(tokio::spawn(async move {
                let mut lines = BufReader::new(output).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some((_, addr)) = line.split_once("serving on http://") {
                        let addr = addr.split_whitespace().next().unwrap_or(addr);
                        let _ = sender.send(addr.parse::<SocketAddr>().unwrap());
                    }
                    log.lock().unwrap().push_str(&line);
                    log.lock().unwrap().push('\n');
                }
            }));
        }
        let addr = tokio::time::timeout(TIMEOUT, serving.recv())
            .await
            .unwrap_or_else(|_| panic!("portico did not start:\n{}", log.lock().unwrap()))
            .unwrap();
        Portico {
            child,
            addr,
            log,
            readers,
            _dir: dir,
        }
    }

    fn signal(&self, name: &str) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits for the process to exit, at most `limit`, and then for its last log lines.
    async fn exit_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let status = tokio::time::timeout(limit, self.child.wait())
            .await
            .ok()
            .map(Result::unwrap)?;
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(TIMEOUT, reader).await;
        }
        Some(status)
    }

    async fn sign_in(&self) -> String {
        let response = crate::helpers::client()
            .post(format!("http://{}/auth/dev-login", self.addr))
            .header("origin", format!("http://{}", self.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("user=dev&return_to=%2F")
            .send()
            .await
            .unwrap();
        crate::helpers::session_from(response.headers())
            .expect("signed in")
            .cookie
    }

    async fn websocket(
        &self,
        cookie: &str,
    ) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{}/apps/echo/ws", self.addr)
            .into_client_request()
            .unwrap();
        let headers = request.headers_mut();
        headers.insert("origin", format!("http://{}", self.addr).parse().unwrap());
        headers.insert("cookie", cookie.parse().unwrap());
        let (socket, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(request))
            .await
            .unwrap()
            .unwrap();
        socket
    }
}

/// SIGTERM: no new connections, the streaming request in flight completes, the WebSocket gets a Close
/// frame (1001) on both sides, and the process exits well before its deadline.
#[tokio::test]
async fn sigterm_drains_requests_and_closes_websockets() {
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    let upstream = Upstream::start().await;
    let mut portico = Portico::start(&upstream, "20s").await;
    let cookie = portico.sign_in().await;

    let mut socket = portico.websocket(&cookie).await;
    socket.send(Message::text("before")).await.unwrap();
    let echoed = tokio::time::timeout(TIMEOUT, socket.next()).await.unwrap();
    assert_eq!(echoed.unwrap().unwrap(), Message::text("before"));

    let streaming = crate::helpers::client()
        .get(format!("http://{}/apps/echo/slow", portico.addr))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(streaming.status(), StatusCode::OK);
    let mut body = streaming.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"chunk 0"));

    portico.signal("TERM");

    // The WebSocket is told the server is going away.
    let close = tokio::time::timeout(TIMEOUT, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("no Close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("a Close frame");
    assert_eq!(close.map(|frame| frame.code), Some(CloseCode::Away));

    // New connections are refused once the listener is gone.
    let mut refused = false;
    for _ in 0..100 {
        if TcpStream::connect(portico.addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "new connections are still accepted");

    // The request in flight completes.
    let mut text = String::from_utf8_lossy(&first).into_owned();
    while let Some(chunk) = tokio::time::timeout(TIMEOUT, body.next()).await.unwrap() {
        text.push_str(&String::from_utf8_lossy(
            &chunk.expect("the stream is not cut"),
        ));
    }
    assert_eq!(text.lines().count(), 20, "{text}");
    assert!(text.ends_with("chunk 19\n"));

    let status = portico
        .exit_within(Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("portico did not exit:\n{}", portico.log()));
    assert!(status.success(), "{status:?}\n{}", portico.log());
    assert_eq!(
        upstream.closes.lock().unwrap().as_slice(),
        &[1001],
        "the upstream was sent the Close frame too"
    );
}

/// A request that never ends is cut at `shutdown_timeout`, and the log says so.
#[tokio::test]
async fn the_shutdown_deadline_cuts_what_is_still_running() {
    let upstream = Upstream::start().await;
    let mut portico = Portico::start(&upstream, "2s").await;
    let cookie = portico.sign_in().await;
    let hanging = crate::helpers::client()
        .get(format!("http://{}/apps/echo/hang", portico.addr))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let mut body = hanging.bytes_stream();
    assert_eq!(&body.next().await.unwrap().unwrap()[..], b"started\n");

    portico.signal("TERM");
    let status = portico
        .exit_within(TIMEOUT)
        .await
        .unwrap_or_else(|| panic!("portico did not exit at its deadline:\n{}", portico.log()));
    assert!(status.success());
    assert!(
        portico.log().contains("shutdown deadline"),
        "{}",
        portico.log()
    );
    let rest = tokio::time::timeout(TIMEOUT, body.next()).await.unwrap();
    assert!(rest.is_some(), "the cut response must not look complete");
}

/// A second signal exits at once, whatever is still in flight.
#[tokio::test]
async fn a_second_signal_exits_at_once() {
    let upstream = Upstream::start().await;
    let mut portico = Portico::start(&upstream, "10m").await;
    let cookie = portico.sign_in().await;
    let hanging = crate::helpers::client()
        .get(format!("http://{}/apps/echo/hang", portico.addr))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let mut body = hanging.bytes_stream();
    body.next().await.unwrap().unwrap();

    portico.signal("TERM");
    // The first signal is being handled (the listener closes) before the second is sent.
    for _ in 0..100 {
        if portico.log().contains("shutting down") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        portico
            .exit_within(Duration::from_millis(500))
            .await
            .is_none(),
        "the first signal waits for the request in flight"
    );
    portico.signal("TERM");
    let status = portico
        .exit_within(TIMEOUT)
        .await
        .expect("the second signal ends the process (the deadline is 10 minutes)");
    assert!(!status.success());
    assert!(
        portico.log().contains("second signal: exiting now"),
        "{}",
        portico.log()
    );
}
