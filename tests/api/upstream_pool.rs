//! The keep-alive pool to plain-http upstreams (`proxy::pool`): connections are reused whatever the
//! answer's body (full, empty, HEAD), and a connection the upstream closed while it sat idle is never
//! used: the next request still gets its answer, against Debian's nginx closing at its
//! `keepalive_timeout` and against an upstream that closes every connection without saying so.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::{TestServer, acme, app, config, dev};

/// Tenant `acme` with app `up` (role `developer`, which `dev` has) at `upstream`.
async fn portal(upstream: &str) -> TestServer {
    config()
        .default_tenant("acme")
        .tenant(
            acme()
                .user(dev())
                .role("developer", &["acme-eng"])
                .app(app("up", &["developer"]).upstream(upstream)),
        )
        .start()
        .await
}

/// A hyper upstream that counts the connections it accepted: `/text` answers `hello`, `/empty` 204.
async fn counting_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    use hyper::service::service_fn;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = service_fn(
                    |request: hyper::Request<hyper::body::Incoming>| async move {
                        let response = match request.uri().path() {
                            "/empty" => hyper::Response::builder().status(204).body(String::new()),
                            _ => hyper::Response::builder().body("hello".to_owned()),
                        };
                        Ok::<_, std::convert::Infallible>(response.unwrap())
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn one_connection_serves_full_empty_and_head_answers_in_turn() {
    let (upstream, accepted) = counting_upstream().await;
    let server = portal(&format!("http://{upstream}")).await;
    let dev = server.sign_in("dev").await;
    for round in 0..5 {
        let text = server.get_as("/apps/up/text", &dev).await;
        assert_eq!(text.status(), StatusCode::OK, "round {round}");
        assert_eq!(text.text().await.unwrap(), "hello");
        let empty = server.get_as("/apps/up/empty", &dev).await;
        assert_eq!(empty.status(), StatusCode::NO_CONTENT, "round {round}");
        let head = server
            .client
            .head(server.url("/apps/up/text"))
            .header("cookie", &dev.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), StatusCode::OK, "round {round}");
    }
    // Fifteen answers one after the other: one connection, given back after each (an empty body
    // that nobody polls included).
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

/// One request's head (these tests send no bodies), or `None` when the connection ended first.
async fn read_head(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    Some(head)
}

/// An upstream that answers one request per connection and then closes it, without
/// `Connection: close`: as a server does whose keep-alive timeout struck right after its answer.
async fn closing_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if read_head(&mut stream).await.is_none() {
                    return;
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn a_connection_the_upstream_closed_is_never_used_again() {
    let (upstream, accepted) = closing_upstream().await;
    let server = portal(&format!("http://{upstream}")).await;
    let dev = server.sign_in("dev").await;
    for round in 0..10 {
        let response = server.get_as("/apps/up/x", &dev).await;
        assert_eq!(response.status(), StatusCode::OK, "round {round}");
        assert_eq!(response.text().await.unwrap(), "ok");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 10);
}

/// An upstream whose keep-alive timeout strikes as the second request on a connection arrives: it
/// answers the first request on each connection, reads the second and closes without a word. It
/// counts the requests it read, by method.
async fn timing_out_upstream() -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                for answered in [true, false] {
                    let Some(head) = read_head(&mut stream).await else {
                        return;
                    };
                    let method = String::from_utf8_lossy(&head)
                        .split(' ')
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    log.lock().unwrap().push(method);
                    if answered {
                        let _ = stream
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                            .await;
                    }
                }
                // The second request is dropped with the connection.
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn a_get_that_met_a_closing_connection_is_sent_again_and_a_post_is_not() {
    let (upstream, seen) = timing_out_upstream().await;
    let server = portal(&format!("http://{upstream}")).await;
    let dev = server.sign_in("dev").await;
    // The first GET opens a connection; the second goes out on it after a rest longer than the
    // pool's `REPLAY_AFTER_REST` (100 ms) and meets the close: it is sent again on a fresh
    // connection, and answered.
    for round in 0..2 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let response = server.get_as("/apps/up/x", &dev).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {round}");
        assert_eq!(response.text().await.unwrap(), "ok");
    }
    assert_eq!(*seen.lock().unwrap(), ["GET", "GET", "GET"]);
    // A POST meets the close too (on the fresh connection's second request): the upstream may have
    // acted on it, so it is not sent again; the client learns the exchange failed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let post = server
        .client
        .post(server.url("/apps/up/x"))
        .header("cookie", &dev.cookie)
        .header("origin", server.origin())
        .body("once")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(*seen.lock().unwrap(), ["GET", "GET", "GET", "POST"]);
}

/// Debian's nginx serving one file, closing idle keep-alive connections after 1 s; killed on drop.
struct Nginx {
    child: Child,
    port: u16,
}

impl Nginx {
    fn start(dir: &Path) -> Nginx {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::create_dir_all(dir.join("www")).unwrap();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        std::fs::write(dir.join("www/file"), "from nginx").unwrap();
        let d = dir.display();
        std::fs::write(
            dir.join("nginx.conf"),
            format!(
                "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;
                 error_log {d}/error.log;
                 events {{ worker_connections 64; }}
                 http {{
                   access_log off; client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp;
                   fastcgi_temp_path {d}/tmp; uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
                   keepalive_timeout 1s;
                   server {{ listen 127.0.0.1:{port}; root {d}/www; }}
                 }}"
            ),
        )
        .unwrap();
        let child = Command::new(crate::scale_out::nginx_binary())
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        Nginx { child, port }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn requests_after_nginx_closed_an_idle_connection_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(dir.path());
    let server = portal(&format!("http://127.0.0.1:{}", nginx.port)).await;
    let dev = server.sign_in("dev").await;
    let mut ready = false;
    for _ in 0..100 {
        if server.get_as("/apps/up/file", &dev).await.status() == StatusCode::OK {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "nginx never answered");
    // Around nginx's 1 s timeout: some pooled connections are gone before the next request, some
    // close as it leaves; every request must still be answered.
    for wait_ms in [1100, 950, 1000, 1050, 1000] {
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        let response = server.get_as("/apps/up/file", &dev).await;
        assert_eq!(response.status(), StatusCode::OK, "after {wait_ms} ms idle");
        assert_eq!(response.text().await.unwrap(), "from nginx");
    }
}
