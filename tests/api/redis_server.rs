//! A real `redis-server` (Debian's package, `scripts/ensure-debian-package.sh redis-server
//! redis-server`) of one test's own: on a free loopback port, without persistence (no RDB snapshot, no
//! append-only file, so nothing is written outside a temporary directory), stopped and started again on
//! the same port when a test needs Redis to go away, killed when dropped. It also writes the session
//! sealing key file and the `sessions:` config text that point portico at it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::TIMEOUT;

/// A running redis-server; killed when dropped.
pub(crate) struct RedisServer {
    child: Option<Child>,
    port: u16,
    /// Its working directory: redis-server writes nothing with these options, but if it ever did, it
    /// would be here and not in the test's current directory.
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one on a free loopback port and waits (bounded) until it answers `PING`.
    pub(crate) fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let mut server = RedisServer {
            child: None,
            port,
            dir: tempfile::tempdir().expect("a temporary directory"),
        };
        server.start_again();
        server
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server: its port refuses connections and everything it held is gone (no persistence).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) on the same port, empty, and waits until it answers.
    pub(crate) fn start_again(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "redis-server did not start ({error}): run \
                     scripts/ensure-debian-package.sh redis-server redis-server"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + TIMEOUT;
        while self.command(&["PING"]).as_deref() != Some("+PONG") {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING within {TIMEOUT:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends one command and returns the first line of the reply (`+PONG`, `:3`, `$-1`, `-ERR …`), or
    /// None when the server cannot be reached. For checks like `DBSIZE`, not for reading values.
    pub(crate) fn command(&self, args: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).ok()?;
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while !reply.ends_with(b"\r\n") {
            if stream.read(&mut byte).ok()? == 0 {
                return None;
            }
            reply.push(byte[0]);
        }
        reply.truncate(reply.len() - 2);
        String::from_utf8(reply).ok()
    }

    /// The `sessions:` config section for a Redis store on this server, its sealing key in `key_file`
    /// (see [`write_session_key`]).
    pub(crate) fn sessions_yaml(&self, key_file: &Path) -> String {
        format!(
            "sessions: {{ store: redis, redis: {{ url: \"{}\", key_file: \"{}\" }} }}",
            self.url(),
            key_file.display()
        )
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes a session sealing key (32 random bytes, base64, as `openssl rand -base64 32` prints it) to
/// `dir/name` and returns its path.
pub(crate) fn write_session_key(dir: &Path, name: &str) -> PathBuf {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    p256::elliptic_curve::rand_core::RngCore::fill_bytes(
        &mut p256::elliptic_curve::rand_core::OsRng,
        &mut bytes,
    );
    let path = dir.join(name);
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    std::fs::write(&path, format!("{text}\n")).expect("the session key file is written");
    path
}
