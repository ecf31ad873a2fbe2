//! A real `redis-server` (Debian's, installed by `make test` through `scripts/ensure-debian-package.sh`) for the tests of the Redis
//! session store: its own free loopback port and data directory, stopped and restarted at will, killed
//! on drop.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;

use crate::helpers::TIMEOUT;

pub(crate) struct RedisServer {
    child: Option<Child>,
    port: u16,
    /// Extra arguments (TLS, a password), kept for restarts.
    args: Vec<String>,
    /// The append-only file lives here, so a restart keeps what was written (as a production Redis
    /// with persistence would).
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one and waits until it listens (bounded by [`TIMEOUT`]).
    pub(crate) async fn start() -> RedisServer {
        Self::start_with(|_| Vec::new()).await
    }

    /// Starts one with extra arguments, made from its free port (for `--tls-port`).
    pub(crate) async fn start_with(args: impl FnOnce(u16) -> Vec<String>) -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .expect("a free loopback port");
        let mut server = RedisServer {
            child: None,
            port,
            args: args(port),
            dir: tempfile::tempdir().unwrap(),
        };
        server.restart().await;
        server
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills it (Redis down, as after a crash).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same data (its append-only file).
    pub(crate) async fn restart(&mut self) {
        self.stop();
        let plain_port = if self.args.is_empty() {
            self.port.to_string()
        } else {
            "0".to_owned() // TLS only: `--tls-port` is among the arguments
        };
        let child = Command::new("redis-server")
            .args(["--port", &plain_port, "--bind", "127.0.0.1"])
            .args(&self.args)
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server did not start ({e}): run `scripts/ensure-debian-package.sh redis-server redis-server` (make test does)")
            });
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server did not listen"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `sessions:` for a config, with a session key file written into `dir`.
    pub(crate) fn sessions_yaml(&self, dir: &Path) -> String {
        sessions_yaml(&self.url(), "", dir)
    }
}

/// `sessions:` on the Redis at `url` with further `redis:` settings (`, key: value` each), and a
/// session key file written into `dir`.
pub(crate) fn sessions_yaml(url: &str, more: &str, dir: &Path) -> String {
    let key = dir.join("session.key");
    std::fs::write(
        &key,
        base64::engine::general_purpose::STANDARD.encode([42u8; 32]),
    )
    .unwrap();
    format!(
        "sessions: {{ store: redis, redis: {{ url: \"{url}\", key_file: \"{}\"{more} }} }}\n",
        key.display()
    )
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
