//! Reload without restart, through the real `portico` binary (a subprocess with its config in a
//! temporary directory): SIGHUP, the file watch (a changed app file, a new one, a removed one),
//! `POST /reload` with a broken file (refused whole, last-known-good keeps serving) and its fix, and the
//! issue's key check: an app file changes while a response streams from a real Express upstream, and
//! nobody is signed out and nothing in flight is cut. Every wait is bounded by `TIMEOUT`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;

use crate::canonical_paths::Framework;
use crate::helpers::{Session, TIMEOUT, app_nodes, client, segments, session_from};

const BIN: &str = env!("CARGO_BIN_EXE_portico");

/// The stock Express app of `tests/support/express-stream.mjs`, stopped on drop.
struct Express;

impl Express {
    fn start() -> Framework {
        let mut command = Command::new("node");
        command.arg("tests/support/express-stream.mjs");
        Framework::spawn(command, "the Express test app (run `npm ci`)")
    }
}

/// `portico serve` on loopback ports chosen by the system, its JSON log lines collected.
struct Portico {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
    logs: Arc<Mutex<Vec<Value>>>,
    client: reqwest::Client,
}

impl Portico {
    /// Starts with `config` (None: the embedded demo).
    fn start(config: Option<&Path>) -> Portico {
        let mut command = Command::new(BIN);
        command.arg("serve");
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(["--log-format", "json"])
            .env("RUST_LOG", "info")
            .env_remove("PORTICO_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the portico binary starts");
        let stderr = child.stderr.take().unwrap();
        let logs: Arc<Mutex<Vec<Value>>> = Arc::default();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                sink.lock().unwrap().push(value);
            }
        });
        let mut portico = Portico {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            admin: SocketAddr::from(([0, 0, 0, 0], 0)),
            logs,
            client: client(),
        };
        let addr_of = |line: &Value, message: &str| {
            line["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message))
                .then(|| line["addr"].as_str().and_then(|addr| addr.parse().ok()))
                .flatten()
        };
        portico.admin = portico.wait_for_log(|line| addr_of(line, "admin listener"));
        portico.addr = portico.wait_for_log(|line| addr_of(line, "portico is serving"));
        portico
    }

    /// The first log line for which `find` says something, waiting for it (bounded).
    fn wait_for_log<T>(&mut self, find: impl Fn(&Value) -> Option<T>) -> T {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(found) = self.logs.lock().unwrap().iter().find_map(&find) {
                return found;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("portico exited ({status}); it logged:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "no such log line within {TIMEOUT:?}; portico logged:\n{}",
                self.log_text()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn log_text(&self) -> String {
        let logs = self.logs.lock().unwrap();
        logs.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    async fn status(&self) -> Value {
        let response = self
            .client
            .get(self.admin_url("/config/status"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// Waits (bounded) until `/config/status` satisfies `done`, and returns it.
    async fn status_when(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let status = self.status().await;
            if done(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {TIMEOUT:?}; status {status:#}\nportico logged:\n{}",
                self.log_text()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    async fn post_reload(&self) -> (StatusCode, Value) {
        let response = self
            .client
            .post(self.admin_url("/reload"))
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    fn sighup(&self) {
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    async fn sign_in(&self, user: &str) -> Session {
        let response = self
            .client
            .post(self.url("/auth/dev-login"))
            .header("origin", format!("http://{}", self.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("user={user}&return_to=%2F"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        session_from(response.headers()).expect("dev sign-in sets the session cookie")
    }

    async fn get_as(&self, path: &str, session: &Session) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header("cookie", &session.cookie)
            .send()
            .await
            .unwrap()
    }

    /// The app ids in `session`'s navigation (asserts the session is still signed in).
    async fn nav(&self, session: &Session) -> Vec<String> {
        let response = self.get_as("/shell/config.json", session).await;
        assert_eq!(response.status(), StatusCode::OK, "still signed in");
        segments(&app_nodes(&response.json().await.unwrap()))
    }

    /// The audit lines of config reloads so far.
    fn reload_audits(&self) -> Vec<Value> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line["target"] == "audit" && line["event"] == "config_reload")
            .cloned()
            .collect()
    }
}

impl Portico {
    /// `POST /reload`, asserting it applied, and what changed since generation `*seen` according to
    /// the audit lines: the file watcher may have applied the same edit first (then the POST applies
    /// nothing new), so the lines of every generation since are merged. Moves `*seen` on.
    async fn reload_changes(&mut self, seen: &mut u64) -> Value {
        let (status, body) = self.post_reload().await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        let generation = body["generation"].as_u64().unwrap();
        self.wait_for_log(|line| {
            (line["event"] == "config_reload" && line["generation"] == generation).then_some(())
        });
        let mut changes = serde_json::Map::new();
        for line in self.reload_audits() {
            let at = line["generation"].as_u64().unwrap();
            if line["outcome"] != "success" || at <= *seen || at > generation {
                continue;
            }
            for field in [
                "tenants_added",
                "tenants_removed",
                "tenants_changed",
                "apps_added",
                "apps_removed",
                "apps_changed",
            ] {
                let entry = changes
                    .entry(field)
                    .or_insert_with(|| Value::Array(Vec::new()));
                for item in line[field]
                    .as_str()
                    .unwrap_or_default()
                    .split(',')
                    .filter(|i| !i.is_empty())
                {
                    entry.as_array_mut().unwrap().push(Value::from(item));
                }
            }
        }
        *seen = generation;
        Value::Object(changes)
    }
}

impl Drop for Portico {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The main file: tenant `t` on 127.0.0.1 with dev sign-in (ann: developer; olga: developer and ops),
/// its apps from `apps.d/*.yaml`, plus `inline` apps as YAML list items.
fn main_file(inline: &str) -> String {
    format!(
        "tenants:
  t:
    hosts: [\"127.0.0.1\"]
    auth:
      dev_sign_in:
        users: [{{ id: ann, groups: [eng] }}, {{ id: olga, groups: [eng, ops] }}]
    roles:
      developer: {{ groups: [eng] }}
      ops: {{ groups: [ops] }}
    apps_from: apps.d/*.yaml
    apps: [{inline}]
"
    )
}

fn app_file(id: &str, label: &str, role: &str, upstream: &str) -> String {
    format!("id: {id}\nlabel: {label}\nupstream: \"{upstream}\"\naccess: {{ roles: [{role}] }}\n")
}

/// A temporary config directory with the main file and app files.
struct ConfigDir {
    dir: tempfile::TempDir,
}

impl ConfigDir {
    fn new(main: &str, apps: &[(&str, String)]) -> ConfigDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("apps.d")).unwrap();
        let config = ConfigDir { dir };
        config.write("portico.yaml", main);
        for (name, text) in apps {
            config.write(&format!("apps.d/{name}"), text);
        }
        config
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn main(&self) -> PathBuf {
        self.path("portico.yaml")
    }

    /// Writes as editors do: a temporary file in the same directory, renamed over the target.
    fn write(&self, name: &str, text: &str) {
        let target = self.path(name);
        let temporary = target.with_file_name(format!(
            ".{}.tmp",
            target.file_name().unwrap().to_string_lossy()
        ));
        std::fs::write(&temporary, text).unwrap();
        std::fs::rename(&temporary, &target).unwrap();
    }
}

/// SIGHUP reloads (it used to end the process): an app added appears in the navigation and is
/// proxied; an app removed answers 404 afterwards.
#[tokio::test]
async fn sighup_reloads_the_config() {
    let express = Express::start();
    let hello = |id: &str| {
        format!(
            "{{ id: {id}, upstream: \"{}\", access: {{ roles: [developer] }} }}",
            express.url()
        )
    };
    let config = ConfigDir::new(&main_file(&hello("one")), &[]);
    let portico = Portico::start(Some(&config.main()));
    let ann = portico.sign_in("ann").await;
    assert_eq!(portico.nav(&ann).await, ["one"]);
    assert_eq!(portico.status().await["generation"], 1);

    config.write("portico.yaml", &main_file(&hello("two")));
    portico.sighup();
    let status = portico
        .status_when("SIGHUP reloads", |s| s["loaded_by"] == "signal")
        .await;
    assert!(status["generation"].as_u64().unwrap() >= 2, "{status:#}");
    assert_eq!(
        portico.nav(&ann).await,
        ["two"],
        "the same session, the new apps"
    );
    let two = portico.get_as("/apps/two/hello", &ann).await;
    assert_eq!(two.status(), StatusCode::OK);
    assert_eq!(two.json::<Value>().await.unwrap()["path"], "/hello");
    let one = portico.get_as("/apps/one/hello", &ann).await;
    assert_eq!(one.status(), StatusCode::NOT_FOUND, "a removed app is gone");
}

/// The file watch: a changed app file under an `apps_from` glob reloads by itself, so does a new file
/// matching the glob, and a removed one.
#[tokio::test]
async fn app_files_written_created_and_removed_reload_by_themselves() {
    let express = Express::start();
    let upstream = express.url();
    let config = ConfigDir::new(
        &main_file(""),
        &[("one.yaml", app_file("one", "One", "developer", &upstream))],
    );
    let portico = Portico::start(Some(&config.main()));
    let ann = portico.sign_in("ann").await;
    let status = portico.status().await;
    let files: Vec<&str> = status["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 2, "{status:#}");
    assert!(files[0].ends_with("portico.yaml") && files[1].ends_with("apps.d/one.yaml"));
    let hash_before = status["files"][1]["sha256"].clone();

    config.write(
        "apps.d/one.yaml",
        &app_file("one", "Renamed", "developer", &upstream),
    );
    let status = portico
        .status_when("a changed app file reloads", |s| s["generation"] == 2)
        .await;
    assert_eq!(status["loaded_by"], "file");
    assert_ne!(status["files"][1]["sha256"], hash_before);
    let config_json: Value = portico
        .get_as("/shell/config.json", &ann)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(app_nodes(&config_json)[0]["label"], "Renamed");

    config.write(
        "apps.d/two.yaml",
        &app_file("two", "Two", "developer", &upstream),
    );
    portico
        .status_when("a new app file reloads", |s| s["generation"] == 3)
        .await;
    assert_eq!(portico.nav(&ann).await, ["one", "two"]);
    assert_eq!(
        portico.get_as("/apps/two/x", &ann).await.status(),
        StatusCode::OK
    );

    std::fs::remove_file(config.path("apps.d/one.yaml")).unwrap();
    portico
        .status_when("a removed app file reloads", |s| s["generation"] == 4)
        .await;
    assert_eq!(portico.nav(&ann).await, ["two"]);
    assert_eq!(
        portico.get_as("/apps/one/x", &ann).await.status(),
        StatusCode::NOT_FOUND
    );
}

/// A broken file is refused whole: 422 with file:line:key diagnostics, the running config keeps
/// serving, `/config/status` shows the error; the fixed file is applied as the next generation.
#[tokio::test]
async fn a_broken_config_is_refused_and_the_last_good_one_keeps_serving() {
    let express = Express::start();
    let upstream = express.url();
    let config = ConfigDir::new(
        &main_file(""),
        &[("one.yaml", app_file("one", "One", "developer", &upstream))],
    );
    let mut portico = Portico::start(Some(&config.main()));
    let ann = portico.sign_in("ann").await;

    // An unknown role, on line 4 of the app file.
    config.write(
        "apps.d/one.yaml",
        &app_file("one", "One", "finance", &upstream),
    );
    let (status, body) = portico.post_reload().await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:#}");
    assert_eq!(body["outcome"], "refused");
    assert_eq!(body["generation"], 1);
    let diagnostic = &body["diagnostics"][0];
    assert!(
        diagnostic["file"]
            .as_str()
            .unwrap()
            .ends_with("apps.d/one.yaml"),
        "{body:#}"
    );
    assert_eq!(diagnostic["line"], 4, "{body:#}");
    assert!(
        diagnostic["message"]
            .as_str()
            .unwrap()
            .contains("unknown role `finance`"),
        "{body:#}"
    );
    assert!(!diagnostic["key"].as_str().unwrap().is_empty(), "{body:#}");

    // The last good config keeps serving, the session with it.
    assert_eq!(portico.nav(&ann).await, ["one"]);
    assert_eq!(
        portico.get_as("/apps/one/x", &ann).await.status(),
        StatusCode::OK
    );
    let status = portico.status().await;
    assert_eq!(status["generation"], 1);
    assert_eq!(status["last_attempt"]["outcome"], "refused", "{status:#}");
    let shown = &status["last_error"]["diagnostics"][0];
    assert!(
        shown["message"]
            .as_str()
            .unwrap()
            .contains("unknown role `finance`"),
        "{status:#}"
    );
    assert!(status["last_error"]["at"].is_string());
    let refusal = portico.wait_for_log(|line| {
        (line["event"] == "config_reload" && line["outcome"] == "failure").then(|| line.clone())
    });
    assert!(
        refusal["reason"]
            .as_str()
            .unwrap()
            .contains("unknown role `finance`")
    );

    config.write(
        "apps.d/one.yaml",
        &app_file("one", "Fixed", "developer", &upstream),
    );
    let (status, body) = portico.post_reload().await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(body["outcome"], "applied");
    // The watcher may have applied the fix first; either way it is a newer generation.
    let generation = body["generation"].as_u64().unwrap();
    assert!(generation >= 2, "{body:#}");
    let status = portico.status().await;
    assert!(status["generation"].as_u64().unwrap() >= generation);
    assert_eq!(status["last_attempt"]["outcome"], "applied", "{status:#}");
    assert_eq!(portico.nav(&ann).await, ["one"]);
}

/// A start-only setting changed by a reload keeps its running value and is named as waiting for a
/// restart; the rest of the reload applies. `--listen`/`--admin-listen` (given to every test server)
/// keep overriding the file, so they are not reported as changed.
#[tokio::test]
async fn start_only_settings_wait_for_a_restart_and_the_rest_applies() {
    let express = Express::start();
    let upstream = express.url();
    let config = ConfigDir::new(
        &main_file(""),
        &[("one.yaml", app_file("one", "One", "developer", &upstream))],
    );
    let mut portico = Portico::start(Some(&config.main()));
    let ann = portico.sign_in("ann").await;
    config.write(
        "portico.yaml",
        &format!(
            "server: {{ max_connections: 7 }}\nsessions: {{ idle_timeout: 2h }}\n{}",
            main_file("")
        ),
    );
    config.write(
        "apps.d/two.yaml",
        &app_file("two", "Two", "developer", &upstream),
    );
    let (status, body) = portico.post_reload().await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let status = portico
        .status_when("the reload applied", |s| {
            s["last_attempt"]["outcome"] == "applied"
        })
        .await;
    assert_eq!(
        status["restart_needed"],
        serde_json::json!(["server.max_connections"]),
        "{status:#}"
    );
    assert_eq!(portico.nav(&ann).await, ["one", "two"], "the rest applied");
    // Log lines reach the collector a moment after the fact: wait for it (bounded).
    portico.wait_for_log(|line| {
        (line["event"] == "config_reload" && line["restart_needed"] == "server.max_connections")
            .then_some(())
    });
}

/// The embedded demo has no file: POST /reload says so, and SIGHUP does not end the process.
#[tokio::test]
async fn the_embedded_demo_has_nothing_to_reload() {
    let mut portico = Portico::start(None);
    let (status, body) = portico.post_reload().await;
    assert_eq!(status, StatusCode::CONFLICT, "{body:#}");
    assert_eq!(body["error"], "no_config_file");
    assert!(body["message"].as_str().unwrap().contains("embedded"));
    portico.sighup();
    portico.wait_for_log(|line| {
        line["message"]
            .as_str()
            .is_some_and(|m| m.contains("no file to read again"))
            .then_some(())
    });
    let status = portico.status().await;
    assert_eq!(status["reloadable"], false);
    assert_eq!(status["generation"], 1);
}

/// The key check: an app file changes while a response streams. The stream started on the
/// old config and completes byte for byte, though the change takes its app away from the user; the
/// user stays signed in; new requests see the new config (the changed app refused, a removed one 404).
/// The audit line of the reload names what changed.
#[tokio::test]
async fn changing_app_files_while_a_response_streams_cuts_nothing_and_signs_nobody_out() {
    let express = Express::start();
    let upstream = express.url();
    let config = ConfigDir::new(
        &main_file(""),
        &[
            (
                "stream.yaml",
                app_file("stream", "Stream", "developer", &upstream),
            ),
            (
                "gone.yaml",
                app_file("gone", "Gone", "developer", &upstream),
            ),
            (
                "stay.yaml",
                app_file("stay", "Stay", "developer", &upstream),
            ),
        ],
    );
    let mut portico = Portico::start(Some(&config.main()));
    let ann = portico.sign_in("ann").await;
    assert_eq!(portico.nav(&ann).await, ["gone", "stay", "stream"]);

    const CHUNKS: usize = 40; // one every 100 ms: four seconds in flight
    let response = portico
        .get_as(&format!("/apps/stream/stream?chunks={CHUNKS}&ms=100"), &ann)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (first_chunk, first_received) = tokio::sync::oneshot::channel();
    let stream = tokio::spawn(async move {
        let mut body = Vec::new();
        let mut first = Some(first_chunk);
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            body.extend_from_slice(&chunk.expect("the stream is not cut"));
            if let Some(first) = first.take() {
                let _ = first.send(());
            }
        }
        body
    });
    tokio::time::timeout(TIMEOUT, first_received)
        .await
        .expect("the stream starts")
        .unwrap();

    // The stream's own app is retitled and now needs `ops`, which ann lacks; another app goes.
    config.write(
        "apps.d/stream.yaml",
        &app_file("stream", "Stream (ops only)", "ops", &upstream),
    );
    std::fs::remove_file(config.path("apps.d/gone.yaml")).unwrap();
    portico
        .status_when("the change is applied", |s| s["generation"] == 2)
        .await;
    assert!(
        !stream.is_finished(),
        "the reload must land while the response is still streaming"
    );

    // New requests see the new config; the session is the same one.
    assert_eq!(portico.nav(&ann).await, ["stay"]);
    assert_eq!(
        portico.get_as("/apps/gone/hello", &ann).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        portico.get_as("/apps/stream/hello", &ann).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        portico.get_as("/apps/stay/hello", &ann).await.status(),
        StatusCode::OK
    );
    let olga = portico.sign_in("olga").await;
    assert_eq!(
        portico.get_as("/apps/stream/hello", &olga).await.status(),
        StatusCode::OK,
        "the new rule lets ops in"
    );

    // The stream that began before finishes complete and in order.
    let body = tokio::time::timeout(TIMEOUT, stream)
        .await
        .expect("the stream ends")
        .unwrap();
    assert_eq!(body.len(), CHUNKS * 1000, "every byte arrived");
    for (index, chunk) in body.chunks(1000).enumerate() {
        let letter = b'a' + u8::try_from(index % 26).unwrap();
        assert!(chunk.iter().all(|&b| b == letter), "chunk {index} intact");
    }
    assert_eq!(portico.nav(&ann).await, ["stay"], "still signed in after");

    let applied = portico.wait_for_log(|line| {
        (line["event"] == "config_reload" && line["outcome"] == "success").then(|| line.clone())
    });
    assert_eq!(applied["trigger"], "file");
    assert_eq!(applied["generation"], 2);
    assert_eq!(applied["apps_changed"], "t/stream", "{applied:#}");
    assert_eq!(applied["apps_removed"], "t/gone", "{applied:#}");
    assert!(applied.get("apps_added").is_none(), "{applied:#}");
}

/// The main file plus tenant `acme` on `localhost` signing in at `issuer` as `client_id` (secret
/// `<client_id>-secret`), with one app labelled `label`.
fn with_acme(base: &str, issuer: &str, client_id: &str, label: &str) -> String {
    format!(
        "{}  acme:
    hosts: [localhost]
    public_origin: \"{base}\"
    auth:
      oidc: {{ issuer: \"{issuer}\", client_id: {client_id}, client_secret: {client_id}-secret, scopes: [groups] }}
    roles:
      developer: {{ groups: [acme-eng] }}
    apps:
      - {{ id: tools, label: {label}, static: \"embedded:demo\", access: {{ roles: [developer] }} }}
",
        main_file("")
    )
}

/// `GET /auth/login` on tenant `acme` (`localhost`, resolved to portico).
struct LoginProbe {
    base: String,
    issuer: String,
    client: reqwest::Client,
}

impl LoginProbe {
    fn new(base: &str, issuer: &str, portico: SocketAddr) -> LoginProbe {
        LoginProbe {
            base: base.to_owned(),
            issuer: issuer.to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .resolve("localhost", portico)
                .timeout(TIMEOUT)
                .build()
                .unwrap(),
        }
    }

    async fn login(&self) -> (StatusCode, Option<String>) {
        let response = self
            .client
            .get(format!("{}/auth/login", self.base))
            .send()
            .await
            .unwrap();
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        (response.status(), location)
    }

    /// Waits (bounded) until sign-in sends browsers to the IdP as `client_id`.
    async fn redirects_as(&self, client_id: &str) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let (status, location) = self.login().await;
            if status == StatusCode::SEE_OTHER {
                let location = location.unwrap();
                assert!(location.starts_with(&self.issuer), "{location}");
                assert!(
                    location.contains(&format!("client_id={client_id}&")),
                    "{location}"
                );
                return;
            }
            assert!(Instant::now() < deadline, "sign-in never became available");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// A reload that adds an OIDC tenant makes its sign-in work (discovery starts at the reload), one that
/// changes only an app keeps the discovered IdP as it is, one that changes the tenant's client makes
/// sign-in use the new client while existing sessions stay, and one that removes the tenant drops it.
/// Against the real OP.
#[tokio::test]
async fn the_oidc_registry_follows_reloaded_tenants() {
    use crate::op::{Browser, RealOp};
    use serde_json::json;

    let config = ConfigDir::new(&main_file(""), &[]);
    let mut portico = Portico::start(Some(&config.main()));
    let mut seen = 1;
    let base = format!("http://localhost:{}", portico.addr.port());
    let client = |id: &str| {
        json!({
            "client_id": id,
            "client_secret": format!("{id}-secret"),
            "redirect_uris": [format!("{base}/auth/callback")],
            "post_logout_redirect_uris": [format!("{base}/auth/signed-out")],
        })
    };
    let op = RealOp::start(json!({ "clients": [client("portico"), client("portico2")] }));
    let probe = LoginProbe::new(&base, &op.issuer, portico.addr);
    // Added: discovered after the reload, and a user signs in through it.
    config.write(
        "portico.yaml",
        &with_acme(&base, &op.issuer, "portico", "Tools"),
    );
    let changes = portico.reload_changes(&mut seen).await;
    assert_eq!(changes["tenants_added"], json!(["acme"]), "{changes:#}");
    assert_eq!(changes["apps_added"], json!(["acme/tools"]), "{changes:#}");
    probe.redirects_as("portico").await;
    let mut first = Browser::resolving(&["localhost"], portico.addr);
    assert_eq!(first.sign_in(&base, &op.issuer, "dev", "/").await, "/");
    let shell_config = format!("{base}/shell/config.json");
    assert_eq!(first.get(&shell_config).await.status, 200);

    // Only an app changed: the relying party is kept, discovered, so sign-in is available at once.
    config.write(
        "portico.yaml",
        &with_acme(&base, &op.issuer, "portico", "Tools 2"),
    );
    let changes = portico.reload_changes(&mut seen).await;
    assert_eq!(
        changes["apps_changed"],
        json!(["acme/tools"]),
        "{changes:#}"
    );
    assert_eq!(changes["tenants_changed"], json!([]), "{changes:#}");
    assert_eq!(
        probe.login().await.0,
        StatusCode::SEE_OTHER,
        "sign-in stays available"
    );

    // Another client: new sign-ins use it; the session made with the old one stays.
    config.write(
        "portico.yaml",
        &with_acme(&base, &op.issuer, "portico2", "Tools 2"),
    );
    let changes = portico.reload_changes(&mut seen).await;
    assert_eq!(changes["tenants_changed"], json!(["acme"]), "{changes:#}");
    probe.redirects_as("portico2").await;
    let mut second = Browser::resolving(&["localhost"], portico.addr);
    second.sign_in(&base, &op.issuer, "dev", "/").await;
    assert_eq!(second.get(&shell_config).await.status, 200);
    assert_eq!(
        first.get(&shell_config).await.status,
        200,
        "still signed in"
    );

    // Removed: its host is unknown now.
    config.write("portico.yaml", &main_file(""));
    let changes = portico.reload_changes(&mut seen).await;
    assert_eq!(changes["tenants_removed"], json!(["acme"]), "{changes:#}");
    assert_eq!(probe.login().await.0, StatusCode::NOT_FOUND);
}

/// A tenant that a reload adds is reported `starting` until its IdP's first probe, without taking the
/// instance out of rotation: every instance reloads at once, and all of them leaving the load balancer
/// for a probe's length would be an outage of every tenant.
#[tokio::test]
async fn a_tenant_added_by_a_reload_does_not_take_the_instance_out_of_rotation() {
    // An IdP that accepts connections and never answers: its first probe runs to the probe timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://127.0.0.1:{}", silent.local_addr().unwrap().port());
    let config = ConfigDir::new(&main_file(""), &[]);
    let mut portico = Portico::start(Some(&config.main()));
    let mut seen = 1;
    let base = format!("http://localhost:{}", portico.addr.port());
    let readyz = |portico: &Portico| {
        let url = portico.admin_url("/readyz");
        let client = portico.client.clone();
        async move {
            let response = client.get(url).send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(readyz(&portico).await.0, StatusCode::OK);

    config.write(
        "portico.yaml",
        &with_acme(&base, &issuer, "portico", "Tools"),
    );
    let changes = portico.reload_changes(&mut seen).await;
    assert_eq!(changes["tenants_added"], serde_json::json!(["acme"]));
    let (status, body) = readyz(&portico).await;
    assert_eq!(
        body["sign_in"]["acme"]["status"], "starting",
        "the new IdP has not answered yet: {body}"
    );
    assert_eq!(status, StatusCode::OK, "the instance stays ready: {body}");
}

/// Key rotation without a restart: `server.signing_keys` and the files it names are read at every
/// reload; the new first key signs and every key is published at once. A file that is no key is
/// refused with its place in the config, and the running keys stay.
#[tokio::test]
async fn a_reload_rotates_the_signing_keys() {
    let config = ConfigDir::new(&main_file(""), &[]);
    let new_key = |name: &str| {
        std::fs::create_dir_all(config.path(name)).unwrap();
        crate::scale_out::write_signing_key(&config.path(name))
    };
    let (key_a, key_b) = (new_key("a"), new_key("b"));
    let with_keys = |keys: &[&std::path::Path]| {
        let list: Vec<String> = keys
            .iter()
            .map(|k| format!("\"{}\"", k.display()))
            .collect();
        format!(
            "server: {{ signing_keys: [{}] }}\n{}",
            list.join(", "),
            main_file("")
        )
    };
    config.write("portico.yaml", &with_keys(&[&key_a]));
    let portico = Portico::start(Some(&config.main()));
    let origin = format!("http://{}", portico.addr);
    let kids = || crate::helpers::published_kids(&origin);
    let first = kids().await;
    assert_eq!(first.len(), 1);

    // Step 2 of the README's rotation: the new key first, the old one still published.
    config.write("portico.yaml", &with_keys(&[&key_b, &key_a]));
    let (status, body) = portico.post_reload().await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let rotated = kids().await;
    assert_eq!(rotated.len(), 2, "{rotated:?}");
    assert_ne!(rotated[0], first[0], "the new key signs");
    assert_eq!(rotated[1], first[0], "the old key is still published");

    // The file itself replaced (same config): read again.
    let key_c = new_key("c");
    std::fs::copy(&key_c, &key_b).unwrap();
    let (status, body) = portico.post_reload().await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let replaced = kids().await;
    assert_ne!(replaced[0], rotated[0], "{replaced:?}");
    assert_eq!(replaced[1], first[0]);

    // Not a key: refused at its place, the running keys stay.
    std::fs::write(&key_b, "not a key").unwrap();
    let (status, body) = portico.post_reload().await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:#}");
    let text = body.to_string();
    assert!(
        text.contains("server.signing_keys[0]") && text.contains("not a P-256 private key"),
        "{text}"
    );
    assert_eq!(kids().await, replaced);
}

/// A static Backstage token from `service_token_file` is read again at every reload: rotating it
/// needs no restart. Against the real Backstage, whose config knows both tokens (the second one only
/// for the proxy plugin).
#[tokio::test]
async fn a_reload_reads_the_backstage_token_file_again() {
    let backstage = &crate::backstage::backstage().url;
    let main = |extra: &str| {
        format!(
            "{}    backstage: {{ url: \"{backstage}\", identity: service, service_token_file: token, plugins: [whoami] {extra}}}\n",
            main_file("")
        )
    };
    let config = ConfigDir::new(&main(""), &[]);
    config.write("token", "portico-service-token-for-tests\n");
    config.write("portico.yaml", &main(""));
    let portico = Portico::start(Some(&config.main()));
    let ann = portico.sign_in("ann").await;
    let whoami = || async {
        let response = portico.get_as("/backstage/api/whoami", &ann).await;
        let status = response.status();
        (status, response.json::<Value>().await.unwrap_or_default())
    };
    let (status, body) = whoami().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["principal"]["subject"], "portico", "{body}");

    // The file rotated: the next request carries the new token, which Backstage restricts to `proxy`.
    config.write("token", "portico-proxy-only-token-for-tests\n");
    let (status, body) = portico.post_reload().await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    let (status, body) = whoami().await;
    assert_ne!(
        status,
        StatusCode::OK,
        "Backstage got the rotated token: {body}"
    );

    // An empty file is refused; the token in use stays.
    config.write("token", "\n");
    let (status, body) = portico.post_reload().await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:#}");
    assert!(body.to_string().contains("service_token_file"), "{body}");
}
