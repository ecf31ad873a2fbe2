//! https upstreams: portico speaks TLS to a stock Express 4 app served by node's own `https` server
//! (`tests/support/express-https-app.mjs`), with certificates this test makes (rcgen): a CA, the
//! upstream's certificate for `localhost`, and a client certificate for mTLS. What an operator sees:
//! the app answers over TLS and streams, WebSockets pass, a certificate portico cannot trust and a
//! client certificate the upstream refuses are each a 502 `upstream_tls`, h2 is used where the upstream
//! offers it, and a Backstage backend reached over mTLS gets both portico's sign-in call and the
//! proxied request with the client certificate (a stand-in: the real Backstage of
//! `tests/api/backstage.rs` runs over plain http).

use std::path::Path;
use std::process::{Command, Stdio};

use futures_util::StreamExt;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use serde_json::Value;

use crate::canonical_paths::Framework;
use crate::helpers::{Session, TIMEOUT, TestServer, acme, app, config, dev, json_error};

/// The certificates of one test, as PEM files in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// `ca.pem`, `server.pem`/`server.key` (for `localhost` and 127.0.0.1, issued by the CA),
    /// `client.pem`/`client.key` (CN `portico-client`, issued by the CA), and `other-ca.pem`, a CA
    /// that issued nothing here.
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let (ca_pem, issuer) = ca("portico test CA");
        let (other_ca_pem, _) = ca("some other CA");
        let server_key = KeyPair::generate().unwrap();
        let mut server =
            CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = server.signed_by(&server_key, &issuer).unwrap();
        let client_key = KeyPair::generate().unwrap();
        let mut client = CertificateParams::new(Vec::new()).unwrap();
        client
            .distinguished_name
            .push(DnType::CommonName, "portico-client");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client = client.signed_by(&client_key, &issuer).unwrap();
        for (name, text) in [
            ("ca.pem", ca_pem),
            ("other-ca.pem", other_ca_pem),
            ("server.pem", server.pem()),
            ("server.key", server_key.serialize_pem()),
            ("client.pem", client.pem()),
            ("client.key", client_key.serialize_pem()),
        ] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        Pki { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A CA's PEM and its issuer.
pub(crate) fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let pem = params.self_signed(&key).unwrap().pem();
    (pem, Issuer::new(params, key))
}

/// The Express app of `tests/support/express-https-app.mjs` over node's https, stopped on drop.
struct HttpsApp(Framework);

impl HttpsApp {
    fn start(pki: &Pki, flags: &[&str]) -> HttpsApp {
        let mut command = Command::new("node");
        command
            .arg("tests/support/express-https-app.mjs")
            .arg(pki.path())
            .args(flags);
        HttpsApp(Framework::spawn(
            command,
            "the https test app (run `npm ci`)",
        ))
    }

    fn port(&self) -> u16 {
        self.0.port()
    }

    /// The URL by the name in its certificate.
    fn url(&self) -> String {
        format!("https://localhost:{}", self.port())
    }
}

/// An app entry `id` whose `upstream:` is `upstream` (YAML flow text).
fn tls_app(id: &str, upstream: &str) -> crate::helpers::AppYaml {
    app(id, &["developer"]).key("upstream", upstream)
}

/// `{ url: <url>, tls: { <tls> } }` with file names under `pki`.
fn full(url: &str, tls: &str) -> String {
    format!("{{ url: \"{url}\", tls: {{ {tls} }} }}")
}

async fn start(pki: &Pki, apps: Vec<crate::helpers::AppYaml>, backstage: &str) -> TestServer {
    let mut tenant = acme().user(dev()).role("developer", &["acme-eng"]);
    for app in apps {
        tenant = tenant.app(app);
    }
    if !backstage.is_empty() {
        tenant = tenant.backstage(backstage);
    }
    TestServer::from_yaml(&config().tenant(tenant).yaml(), pki.path()).await
}

async fn json_ok(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// An app behind https, its CA named in `ca`, answers through portico over TLS and streams: the first
/// chunk arrives while the upstream is still holding back the rest.
#[tokio::test]
async fn an_https_upstream_with_its_ca_answers_and_streams() {
    let pki = Pki::new();
    let upstream = HttpsApp::start(&pki, &[]);
    let server = start(
        &pki,
        vec![tls_app("secure", &full(&upstream.url(), "ca: ca.pem"))],
        "",
    )
    .await;
    let dev = server.sign_in("dev").await;

    let hello = json_ok(server.get_as("/apps/secure/hello", &dev).await).await;
    assert_eq!(hello["alpn"], "http/1.1", "{hello}");
    assert_eq!(
        hello["host"],
        format!("localhost:{}", upstream.port()),
        "{hello}"
    );

    let response = server.get_as("/apps/secure/stream", &dev).await;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let first = tokio::time::timeout(TIMEOUT, body.next())
        .await
        .expect("the first chunk before the upstream finishes")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"first chunk\n");
    json_ok(server.get_as("/apps/secure/release", &dev).await).await;
    let mut rest = Vec::new();
    while let Some(chunk) = tokio::time::timeout(TIMEOUT, body.next()).await.unwrap() {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(rest, b"second chunk\n");
}

/// A certificate portico cannot trust, or one for another name, is a 502 `upstream_tls`, not a hang,
/// not "unreachable", and nothing of the upstream's answer passes. Verification cannot be turned off.
#[tokio::test]
async fn an_untrusted_upstream_certificate_is_a_502_upstream_tls() {
    let pki = Pki::new();
    let upstream = HttpsApp::start(&pki, &[]);
    let url = upstream.url();
    let server = start(
        &pki,
        vec![
            // The test CA is in no system store.
            tls_app("system", &format!("\"{url}\"")),
            tls_app("other", &full(&url, "ca: other-ca.pem")),
            tls_app("extra", &full(&url, "extra_ca: other-ca.pem")),
            tls_app("name", &full(&url, "ca: ca.pem, server_name: app.internal")),
            tls_app("right", &full(&url, "extra_ca: ca.pem")),
        ],
        "",
    )
    .await;
    let dev = server.sign_in("dev").await;
    for id in ["system", "other", "extra", "name"] {
        let response = server.get_as(&format!("/apps/{id}/hello"), &dev).await;
        let body = json_error(response, 502, "upstream_tls").await;
        assert!(!body.to_string().contains("httpVersion"), "{id}: {body}");
    }
    // `extra_ca` adds to the system's roots: with the right CA the same upstream answers.
    let hello = json_ok(server.get_as("/apps/right/hello", &dev).await).await;
    assert_eq!(hello["client"], Value::Null);
}

/// An upstream that requires client certificates answers portico when `tls` names one (and sees who),
/// over plain requests and WebSockets alike, and refuses it otherwise: 502 `upstream_tls`.
#[tokio::test]
async fn an_mtls_upstream_gets_the_client_certificate_and_refuses_without_it() {
    let pki = Pki::new();
    let upstream = HttpsApp::start(&pki, &["--mtls"]);
    let url = upstream.url();
    let server = start(
        &pki,
        vec![
            tls_app(
                "mtls",
                &full(
                    &url,
                    "ca: ca.pem, client_cert: client.pem, client_key: client.key",
                ),
            ),
            tls_app("nocert", &full(&url, "ca: ca.pem")),
        ],
        "",
    )
    .await;
    let dev = server.sign_in("dev").await;

    let hello = json_ok(server.get_as("/apps/mtls/hello", &dev).await).await;
    assert_eq!(hello["client"], "portico-client", "{hello}");
    for _ in 0..2 {
        // Twice: the second request may ride on a pooled connection, and is refused all the same.
        let response = server.get_as("/apps/nocert/hello", &dev).await;
        json_error(response, 502, "upstream_tls").await;
    }

    // A WebSocket to the mTLS upstream: handshake and frames over the same TLS setting.
    assert_eq!(
        websocket_echo(&server, &dev, "mtls").await,
        "echo hello (portico-client)"
    );
}

/// Sends `hello` over a WebSocket to app `id` and returns the answer.
async fn websocket_echo(server: &TestServer, session: &Session, id: &str) -> String {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let mut request = format!("ws://{}/apps/{id}/ws", server.addr)
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert("origin", server.origin().parse().unwrap());
    headers.insert("cookie", session.cookie.parse().unwrap());
    let (mut socket, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake in time")
        .expect("the WebSocket handshake passes to the https upstream");
    socket.send(Message::text("hello")).await.unwrap();
    let reply = tokio::time::timeout(TIMEOUT, socket.next())
        .await
        .expect("an echo in time")
        .unwrap()
        .unwrap();
    socket.close(None).await.unwrap();
    reply.into_text().unwrap().as_str().to_owned()
}

/// An upstream that offers h2 by ALPN is spoken to in h2; one that offers only http/1.1 (the tests
/// above) in HTTP/1.1.
#[tokio::test]
async fn an_upstream_offering_h2_is_spoken_to_in_h2() {
    let pki = Pki::new();
    let upstream = HttpsApp::start(&pki, &["--h2"]);
    let server = start(
        &pki,
        vec![tls_app("h2", &full(&upstream.url(), "ca: ca.pem"))],
        "",
    )
    .await;
    let dev = server.sign_in("dev").await;
    for _ in 0..2 {
        let hello = json_ok(server.get_as("/apps/h2/hello", &dev).await).await;
        assert_eq!(hello["httpVersion"], "2.0", "{hello}");
    }
    // A WebSocket handshake cannot ride on h2: it goes over an HTTP/1.1 connection of its own.
    assert_eq!(
        websocket_echo(&server, &dev, "h2").await,
        "echo hello (no client certificate)"
    );
}

/// A Backstage backend over mTLS: portico's own sign-in call and the proxied catalog request both
/// carry the client certificate (a stand-in backend with Backstage's two endpoints; see the module
/// comment), and without the certificate the user gets a 502 `upstream_tls`.
#[tokio::test]
async fn a_backstage_backend_over_mtls_gets_the_client_certificate_on_both_paths() {
    let pki = Pki::new();
    let upstream = HttpsApp::start(&pki, &["--mtls"]);
    let url = upstream.url();
    let with_cert = start(
        &pki,
        Vec::new(),
        &full(
            &url,
            "ca: ca.pem, client_cert: client.pem, client_key: client.key",
        )
        .replace("{ url:", "{ identity: user, url:"),
    )
    .await;
    let dev = with_cert.sign_in("dev").await;
    let answer = json_ok(
        with_cert
            .get_as("/backstage/api/catalog/entities", &dev)
            .await,
    )
    .await;
    assert_eq!(answer["client"], "portico-client", "{answer}");
    assert_eq!(
        answer["authorization"], "Bearer token-for-portico-client",
        "the sign-in call went over mTLS too: {answer}"
    );

    let without = start(&pki, Vec::new(), &full(&url, "ca: ca.pem")).await;
    let dev = without.sign_in("dev").await;
    let response = without
        .get_as("/backstage/api/catalog/entities", &dev)
        .await;
    json_error(response, 502, "upstream_tls").await;
}

/// `portico check` (and so `serve`) refuses TLS settings that could only fail later, each with
/// file:line, key path and hint, all at once: a `tls` on an http:// URL, an unreadable CA file, a key
/// that is not the client certificate's; and `insecure_skip_verify` is not a key.
#[test]
fn portico_check_refuses_broken_upstream_tls_at_load() {
    let pki = Pki::new();
    std::fs::write(
        pki.path().join("other.key"),
        KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
    let file = pki.path().join("portico.yaml");
    std::fs::write(
        &file,
        "\
version: 1
tenants:
  acme:
    hosts: [portal.acme.test]
    auth: { dev_sign_in: { users: [{ id: ann, groups: [eng] }] } }
    roles: { developer: { groups: [eng] } }
    backstage: { url: \"http://127.0.0.1:7007\", tls: { ca: ca.pem } }
    apps:
      - id: a
        access: { roles: [developer] }
        upstream: { url: \"https://a.internal\", tls: { ca: missing.pem } }
      - id: b
        access: { roles: [developer] }
        upstream:
          url: https://b.internal
          tls: { client_cert: client.pem, client_key: other.key, insecure_skip_verify: true }
",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_portico"))
        .arg("check")
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1), "{text}");
    let name = file.display();
    for (line, key, words) in [
        (
            7,
            "tenants.acme.backstage.tls",
            "`tls` is for https upstreams",
        ),
        (11, "tenants.acme.apps[a].upstream.tls.ca", "cannot read"),
        (
            16,
            "tenants.acme.apps[b].upstream.tls.client_key",
            "does not fit `client_cert`",
        ),
        (
            16,
            "tenants.acme.apps[b].upstream.tls.insecure_skip_verify",
            "unknown key",
        ),
    ] {
        let head = format!("{name}:{line}:");
        let found = text.lines().collect::<Vec<_>>().windows(2).any(|pair| {
            pair[0].starts_with(&head)
                && pair[0].contains(words)
                && pair[1].trim() == format!("key: {key}")
        });
        assert!(found, "{head} {key}: {words}\n{text}");
    }
    assert!(text.contains("hint:"), "{text}");
}

/// An upstream that accepts the connection and never speaks TLS is given `proxy.connect_timeout` for
/// the handshake, like a TCP connect: a 502 `upstream_unreachable` then, not a request held until the
/// response timeout (504) with one of the connection slots.
#[tokio::test]
async fn a_tls_handshake_that_never_finishes_is_bounded_by_the_connect_timeout() {
    let pki = Pki::new();
    // Accepted by the kernel, never read: no ServerHello ever comes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://localhost:{}", silent.local_addr().unwrap().port());
    let yaml = config()
        .top("proxy: { connect_timeout: 1s, response_timeout: 60s }")
        .tenant(
            acme()
                .user(dev())
                .role("developer", &["acme-eng"])
                .app(tls_app("silent", &full(&url, "ca: ca.pem"))),
        )
        .yaml();
    let server = TestServer::from_yaml(&yaml, pki.path()).await;
    let dev = server.sign_in("dev").await;
    let response = tokio::time::timeout(TIMEOUT, server.get_as("/apps/silent/hello", &dev))
        .await
        .expect("an answer well before the response timeout");
    json_error(response, 502, "upstream_unreachable").await;
}
