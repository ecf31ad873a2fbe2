//! What instances of portico share when `sessions.store` is `redis`: one connection to Redis, the key
//! that seals what is written there, its health, and the invalidation channel between instances.
//!
//! The services that keep state across instances (sessions, sign-ins in flight, Backstage tokens,
//! refresh locks) each hold an `Arc<Redis>` and name their keys through [`Redis::key`](crate::shared::Redis::key), so every key
//! starts with the deployment's prefix. Anything secret goes through [`Redis::seal`](crate::shared::Redis::seal) first (AES-256-GCM,
//! the key name bound in as associated data, so a record cannot be moved to another key): a Redis dump
//! hands out neither tokens nor session ids (key names hold only hashes of ids, see [`Redis::hash`](crate::shared::Redis::hash)).
//!
//! This module must not panic or block when Redis is down: every failure is a [`StoreError`](crate::shared::StoreError), the
//! connection reconnects by itself, and [`Redis::status`](crate::shared::Redis::status) tells `/readyz` since when and why it is down.
//! It knows nothing of sessions or tenants.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use futures_util::StreamExt;
use parking_lot::Mutex;
use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::config::RedisSettings;
use crate::token::{hex, random_bytes};

/// A shared store failed (Redis down, or a record that does not open); callers answer 503 or "sign-in
/// unavailable", never "signed out".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session store unavailable: {0}")]
pub struct StoreError(pub String);

impl From<redis::RedisError> for StoreError {
    fn from(error: redis::RedisError) -> Self {
        StoreError(format!("redis: {error}"))
    }
}

/// How long one Redis command may take before it counts as failed: a request never waits long on a
/// Redis that is down.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the health probe pings Redis, so `/readyz` recovers without traffic.
const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// The connection to Redis and what goes with it. One per process.
pub struct Redis {
    conn: ConnectionManager,
    /// For the subscriber's own connection (a subscribed connection cannot send other commands).
    client: redis::Client,
    prefix: String,
    cipher: Aes256Gcm,
    /// Unix milliseconds since when Redis has been failing; 0 while it answers.
    down_since: AtomicU64,
    /// Why it is failing, for `/readyz` and the logs (written only on failure).
    reason: Mutex<String>,
}

/// What `/readyz` shows of Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisStatus {
    Up,
    Down { since: SystemTime, reason: String },
}

impl Redis {
    /// Prepares the connection; nothing is sent yet, so portico starts while Redis is down (and
    /// `/readyz` says so). Fails only on settings Redis can never accept (a CA file that is not PEM).
    pub fn open(settings: &RedisSettings) -> Result<Arc<Redis>, StoreError> {
        let mut info = redis::IntoConnectionInfo::into_connection_info(settings.url.as_str())?;
        let mut redis_info = info.redis_settings().clone();
        if let Some(username) = &settings.username {
            redis_info = redis_info.set_username(username);
        }
        if let Some(password) = &settings.password {
            redis_info = redis_info.set_password(password);
        }
        info = info.set_redis_settings(redis_info);
        let client = match &settings.ca {
            Some(ca) => {
                let pem = std::fs::read(ca)
                    .map_err(|e| StoreError(format!("cannot read `{}`: {e}", ca.display())))?;
                redis::Client::build_with_tls(
                    info,
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem),
                    },
                )?
            }
            None => redis::Client::open(info)?,
        };
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(Arc::new(Redis {
            conn,
            client,
            prefix: settings.prefix.clone(),
            cipher: Aes256Gcm::new(&settings.key.into()),
            down_since: AtomicU64::new(0),
            reason: Mutex::new(String::new()),
        }))
    }

    /// A handle on the shared multiplexed connection (cloning it is cheap).
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The full name of a key: the deployment's prefix, then `name`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// A one-way name for a secret (a session id, a sign-in's state): the key names Redis shows hold
    /// this, never the secret, so a dump or `MONITOR` does not hand out what a browser presents.
    pub fn hash(secret: &str) -> String {
        hex(&Sha256::digest(secret.as_bytes())[..16])
    }

    /// Runs a command's future, recording Redis as up or down by its outcome.
    pub async fn run<T>(
        &self,
        future: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let result = future.await;
        match &result {
            Ok(_) => self.mark_up(),
            Err(error) => self.mark_down(&error.to_string()),
        }
        result.map_err(StoreError::from)
    }

    fn mark_up(&self) {
        if self.down_since.load(Ordering::Relaxed) != 0 {
            self.down_since.store(0, Ordering::Relaxed);
            tracing::info!("redis answers again");
        }
    }

    fn mark_down(&self, reason: &str) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_millis() as u64)
            .max(1);
        if self
            .down_since
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::error!(reason, "redis cannot be reached");
        }
        *self.reason.lock() = reason.to_owned();
    }

    /// Whether Redis answered the last command or probe, and if not, since when and why.
    pub fn status(&self) -> RedisStatus {
        match self.down_since.load(Ordering::Relaxed) {
            0 => RedisStatus::Up,
            millis => RedisStatus::Down {
                since: UNIX_EPOCH + Duration::from_millis(millis),
                reason: self.reason.lock().clone(),
            },
        }
    }

    /// How long Redis has been failing (zero while it answers).
    pub fn down_for(&self) -> Duration {
        match self.status() {
            RedisStatus::Up => Duration::ZERO,
            RedisStatus::Down { since, .. } => since.elapsed().unwrap_or_default(),
        }
    }

    /// Seals `plain` for the key `name` (nonce, then ciphertext and tag).
    pub fn seal(&self, name: &str, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let nonce = random_bytes::<12>();
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| StoreError("could not seal a record".into()))?;
        let mut out = Vec::with_capacity(12 + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`Self::seal`] sealed for the same `name`; fails on another key (a record moved to
    /// another name) or another deployment's `key_file`.
    pub fn open_sealed(&self, name: &str, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let unreadable = || StoreError("a stored record does not open (another key_file?)".into());
        if sealed.len() < 12 {
            return Err(unreadable());
        }
        let (nonce, body) = sealed.split_at(12);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| unreadable())
    }

    /// Records `secret` (hashed) under the namespace `kind` for `ttl_secs`; false if it was already
    /// recorded: a one-time token seen by any instance before.
    pub async fn first_use(
        &self,
        kind: &str,
        secret: &str,
        ttl_secs: u64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let key = self.key(&format!("{kind}:{}", Self::hash(secret)));
        let set: Option<String> = self
            .run(
                redis::cmd("SET")
                    .arg(&key)
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(ttl_secs.max(1))
                    .query_async(&mut conn),
            )
            .await?;
        Ok(set.is_some())
    }

    /// Forgets what [`Self::first_use`] recorded (the work it guarded did not happen).
    pub async fn forget_use(&self, kind: &str, secret: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let key = self.key(&format!("{kind}:{}", Self::hash(secret)));
        self.run(redis::cmd("DEL").arg(&key).query_async::<i64>(&mut conn))
            .await
            .map(|_| ())
    }

    /// Tells every instance (this one included) about `message` on the channel `name`.
    pub async fn publish(&self, name: &str, message: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let channel = self.key(name);
        self.run(
            redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(message)
                .query_async::<i64>(&mut conn),
        )
        .await
        .map(|_| ())
    }

    /// Listens on the channel `name` until `shutdown`, on a connection of its own that is opened again
    /// whenever it drops. `on_event(None)` is called each time the subscription starts: messages sent
    /// while it was down are lost, so a listener must then forget whatever they could have
    /// invalidated. `on_event(Some(payload))` for every message.
    pub async fn subscribe(
        self: Arc<Self>,
        name: &str,
        shutdown: CancellationToken,
        on_event: impl Fn(Option<&str>) + Send + Sync + 'static,
    ) {
        let channel = self.key(name);
        loop {
            let listen = async {
                let mut pubsub = self.client.get_async_pubsub().await?;
                pubsub.subscribe(&channel).await?;
                on_event(None);
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    if let Ok(payload) = message.get_payload::<String>() {
                        on_event(Some(&payload));
                    }
                }
                Ok::<(), redis::RedisError>(())
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                ended = listen => if let Err(error) = ended {
                    self.mark_down(&error.to_string());
                },
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// Pings Redis every `PROBE_INTERVAL` (2 s) until `shutdown`, so its status follows it without traffic.
    pub async fn probe(self: Arc<Self>, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(PROBE_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            let mut conn = self.conn();
            let _ = self
                .run(redis::cmd("PING").query_async::<String>(&mut conn))
                .await;
        }
    }
}

/// A real redis-server for the tests of the modules that keep state in Redis.
#[cfg(test)]
pub(crate) mod testing {
    use std::net::TcpListener;
    use std::process::{Child, Command, Stdio};
    use std::sync::Arc;
    use std::time::Duration;

    use super::Redis;
    use crate::config::RedisSettings;

    /// The sealing key the tests use.
    pub(crate) const KEY: [u8; 32] = [7; 32];

    /// A redis-server of this test's own on a free loopback port, without persistence; killed on drop.
    pub(crate) struct Server {
        child: Child,
        port: u16,
    }

    impl Server {
        pub(crate) fn start() -> Server {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free loopback port");
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("redis-server did not start ({e}): run `scripts/ensure-debian-package.sh redis-server redis-server` (make test does)")
                });
            Server { child, port }
        }

        /// Kills the server (Redis down).
        pub(crate) fn stop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }

        /// Starts it again on the same port, empty (nothing persisted).
        pub(crate) fn restart(&mut self) {
            self.stop();
            self.child = Command::new("redis-server")
                .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server restarts");
        }

        pub(crate) fn url(&self) -> String {
            format!("redis://127.0.0.1:{}/0", self.port)
        }

        /// A connection with `key` and `prefix`, once the server answers (bounded: 10 s).
        pub(crate) async fn redis(&self, key: [u8; 32], prefix: &str) -> Arc<Redis> {
            let redis = Redis::open(&RedisSettings {
                url: self.url(),
                username: None,
                password: None,
                key,
                prefix: prefix.to_owned(),
                ca: None,
                outage_grace: Duration::from_secs(60),
            })
            .expect("settings accepted");
            for _ in 0..100 {
                let mut conn = redis.conn();
                let pong: Result<String, _> = redis::cmd("PING").query_async(&mut conn).await;
                if pong.is_ok() {
                    return redis;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("redis-server on port {} did not answer", self.port);
        }

        pub(crate) async fn connect(&self) -> Arc<Redis> {
            self.redis(KEY, "p:").await
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
