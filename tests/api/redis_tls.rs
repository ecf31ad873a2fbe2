//! `rediss://` to a real redis-server that serves TLS only and wants a password: portico trusts the
//! CA named in `sessions.redis.ca`, sends the password from `password_file`, and sessions work across
//! two instances over it. With a CA that did not sign Redis's certificate, nothing is sent in the clear
//! and nothing half-works: `/readyz` says why and sign-in answers 503.

use std::time::Duration;

use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyPair};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TIMEOUT, TestServer, client, compile, config, tenant, user};
use crate::redis_server::{RedisServer, sessions_yaml};
use crate::upstream_tls::ca;

async fn portal(yaml: &str, dir: &std::path::Path) -> (TestServer, std::net::SocketAddr) {
    TestServer::start_with_admin(compile(yaml, dir)).await
}

#[tokio::test]
async fn sessions_travel_over_tls_with_a_password_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, issuer) = ca("redis test CA");
    let (other_ca_pem, _) = ca("some other CA");
    let server_key = KeyPair::generate().unwrap();
    let mut server = CertificateParams::new(vec!["127.0.0.1".into()]).unwrap();
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = server.signed_by(&server_key, &issuer).unwrap();
    for (name, text) in [
        ("ca.pem", ca_pem),
        ("other-ca.pem", other_ca_pem),
        ("redis.pem", server.pem()),
        ("redis.key", server_key.serialize_pem()),
        ("redis.pass", "correct horse battery\n".to_owned()),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let path = |name: &str| dir.path().join(name).display().to_string();
    let (cert, key, ca_file) = (path("redis.pem"), path("redis.key"), path("ca.pem"));
    let redis = RedisServer::start_with(|port| {
        [
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca_file,
            "--tls-auth-clients",
            "no",
            "--requirepass",
            "correct horse battery",
        ]
        .map(str::to_owned)
        .to_vec()
    })
    .await;
    let url = format!("rediss://127.0.0.1:{}/0", redis.port());
    let acme = tenant("acme", &["127.0.0.1"])
        .user(user("ann", &["eng"]))
        .role("developer", &["eng"]);
    let yaml = |ca: &str| {
        let more = format!(", ca: {ca}, password_file: redis.pass");
        config()
            .top(&sessions_yaml(&url, &more, dir.path()))
            .tenant(acme.clone())
            .yaml()
    };

    let (a, _) = portal(&yaml("ca.pem"), dir.path()).await;
    let (b, _) = portal(&yaml("ca.pem"), dir.path()).await;
    let session = a.sign_in("ann").await;
    let shell = b.shell_config(&session).await;
    assert!(shell.is_object(), "the session signed in on A works on B");

    // Another CA: the handshake fails, so neither the password nor a session goes out.
    let (c, admin) = portal(&yaml("other-ca.pem"), dir.path()).await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let ready: Value = loop {
        let ready: Value = client()
            .get(format!("http://{admin}/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ready["sessions"]["status"] == "degraded" {
            break ready;
        }
        assert!(tokio::time::Instant::now() < deadline, "{ready}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let reason = ready["sessions"]["reason"].as_str().unwrap();
    assert!(reason.contains("redis cannot be reached"), "{reason}");
    assert_eq!(
        c.get_as("/shell/config.json", &session).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let refused = c
        .post("/auth/dev-login")
        .header("origin", c.origin())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=ann&return_to=%2F")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
}
