//! Issue 12's scale-out, against real parts only: two `portico serve` processes (the real binary, each
//! on its own loopback port) sharing sessions in a real `redis-server`, Debian's nginx in front of them
//! balancing round-robin as a deployment would (`Host`, `X-Forwarded-*`, a keep-alive pool), the real
//! OpenID Provider (tests/support/op.mjs) and a real Express app as the proxied upstream. nginx logs
//! which instance served each request, so a test can tell that a sign-in's callback landed on the other
//! instance than its start, and what each instance answered.
//!
//! Each scenario is one test and fails with the in-memory store, where every instance has sessions and
//! sign-ins of its own: `SCALE_OUT_STORE=memory cargo test --test api scale_out` runs them that way
//! (they must fail; the sign-in through the balancer is refused at its callback). Nothing here waits
//! for speed: the only deadline that is a promise is [`PROPAGATION`], the bound within which a logout on
//! one instance must be seen by the other.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::canonical_paths::Framework;
use crate::helpers::{TIMEOUT, app, config, oidc_client, tenant};
use crate::op::{Browser, RealOp};
use crate::redis_server::RedisServer;

const BIN: &str = env!("CARGO_BIN_EXE_portico");

/// How long a logout or a back-channel logout on one instance may take to reach every other one (the
/// per-instance session cache's invalidation bound, with slack for a loaded test machine).
const PROPAGATION: Duration = Duration::from_secs(3);

/// One `portico serve` process on a fixed loopback port; killed when dropped.
struct Instance {
    child: Option<Child>,
    port: u16,
    config: PathBuf,
    /// Everything it wrote to stderr, for failure messages.
    log: Arc<Mutex<Vec<String>>>,
}

impl Instance {
    fn start(config: &Path, port: u16) -> Instance {
        let mut instance = Instance {
            child: None,
            port,
            config: config.to_owned(),
            log: Arc::default(),
        };
        instance.start_again();
        instance
    }

    /// Starts the process (again) on its port and waits (bounded) until it serves.
    fn start_again(&mut self) {
        assert!(self.child.is_none(), "instance :{} still runs", self.port);
        let from = self.log.lock().unwrap().len();
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(["--log-format", "json"])
            .env("RUST_LOG", "info")
            .env_remove("PORTICO_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the portico binary starts");
        let stderr = child.stderr.take().unwrap();
        let sink = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        self.child = Some(child);
        let deadline = Instant::now() + TIMEOUT;
        while !self.logged_since(from, "portico is serving") {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("portico :{} exited ({status}):\n{}", self.port, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "portico :{} did not serve within {TIMEOUT:?}:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether a line after the first `from` contains `text`.
    fn logged_since(&self, from: usize, text: &str) -> bool {
        let log = self.log.lock().unwrap();
        log.iter().skip(from).any(|line| line.contains(text))
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// SIGTERM, as a deploy or an orchestrator stops it, and waits (bounded) until it has exited.
    fn terminate(&mut self) {
        let mut child = self.child.take().expect("a running instance");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + TIMEOUT;
        while child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "portico :{} did not exit within {TIMEOUT:?} of SIGTERM",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.log.lock().unwrap().push("(terminated)".to_owned());
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Debian's nginx as the load balancer: one process (no master, so killing it stops it: a master's
/// workers would outlive a SIGKILL), everything it writes inside `dir`; killed when dropped.
struct Nginx {
    child: Child,
    port: u16,
    access_log: PathBuf,
}

/// One request as nginx logged it.
#[derive(Clone, Debug)]
struct Served {
    /// The instance's port (`$upstream_addr`; several when nginx tried more than one).
    upstream: String,
    status: u16,
    method: String,
    path: String,
}

pub(crate) fn nginx_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file());
    let binary = on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"));
    assert!(
        binary.is_file(),
        "nginx is missing: run scripts/ensure-debian-package.sh nginx nginx"
    );
    binary
}

impl Nginx {
    fn start(dir: &Path, port: u16, instances: &[u16]) -> Nginx {
        std::fs::create_dir_all(dir).unwrap();
        let servers: String = instances
            .iter()
            .map(|port| format!("        server 127.0.0.1:{port};\n"))
            .collect();
        let d = dir.display();
        // As in front of a real deployment: round-robin over the instances with a keep-alive pool, the
        // Host the browser asked for and the X-Forwarded-* headers (portico trusts them from
        // 127.0.0.1, its `trusted_proxies`). `$http_host`, not `$host`: `$host` drops the port, and on
        // a port other than 80/443 portico's same-origin check compares Origin with Host.
        let conf = format!(
            r#"worker_processes 1;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 512; }}
http {{
    log_format scale '$upstream_addr $status $request_method $uri';
    access_log {d}/access.log scale;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream portico {{
{servers}        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://portico;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Request-Id $request_id;
        }}
        # What nginx is busy with, for `settle`; not in the access log.
        location = /__nginx {{
            stub_status;
            access_log off;
        }}
    }}
}}
"#
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut child = Command::new(nginx_binary())
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.join("error.log"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx starts");
        let deadline = Instant::now() + TIMEOUT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                let mut error = String::new();
                let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut error);
                let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                panic!("nginx exited ({status}): {error}\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen within {TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx {
            child,
            port,
            access_log: dir.join("access.log"),
        }
    }

    /// Waits (bounded) until nginx is done with every request it has received, so each is in the
    /// access log: nginx writes a request's line after the client has its response. One process, so
    /// when its status page says that it reads none and writes one (the status request itself), every
    /// other request has been finished and logged.
    fn settle(&self) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let status = self.status();
            let count = |name: &str| {
                status
                    .split(name)
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|n| n.parse::<u32>().ok())
            };
            if count("Reading:") == Some(0) && count("Writing:") == Some(1) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nginx still busy after {TIMEOUT:?}: {status}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// nginx's status page (`stub_status`).
    fn status(&self) -> String {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream
            .write_all(b"GET /__nginx HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    }

    /// Every request nginx has received so far, oldest first, once it has logged them all.
    fn served(&self) -> Vec<Served> {
        self.settle();
        let text = std::fs::read_to_string(&self.access_log).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut fields = line.split(' ');
                Some(Served {
                    upstream: fields.next()?.to_owned(),
                    status: fields.next()?.parse().ok()?,
                    method: fields.next()?.to_owned(),
                    path: fields.next()?.to_owned(),
                })
            })
            .collect()
    }

    /// The last request nginx logged for `method path`.
    fn last(&self, method: &str, path: &str) -> Served {
        self.served()
            .into_iter()
            .rev()
            .find(|served| served.method == method && served.path == path)
            .unwrap_or_else(|| panic!("nginx logged no {method} {path}: {:?}", self.served()))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The whole deployment. Fields drop in order: the balancer first, the OP and Redis last.
struct Cluster {
    nginx: Nginx,
    instances: Vec<Instance>,
    /// The balancer's origin, the portal's `public_origin`: `http://127.0.0.1:<nginx port>`.
    base: String,
    _express: Framework,
    op: RealOp,
    _redis: Option<RedisServer>,
    _dir: tempfile::TempDir,
}

/// `SCALE_OUT_STORE=memory` runs the scenarios with the in-memory store, to see them fail.
fn redis_store() -> bool {
    match std::env::var("SCALE_OUT_STORE").as_deref() {
        Err(_) | Ok("redis") => true,
        Ok("memory") => false,
        Ok(other) => panic!("SCALE_OUT_STORE is redis or memory, not {other:?}"),
    }
}

impl Cluster {
    /// Redis, the OP, an Express upstream, two instances with one config file and nginx in front.
    async fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        // Three distinct free ports: held together, so the system cannot hand out one twice.
        let held: Vec<std::net::TcpListener> = (0..3)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let free: Vec<u16> = held
            .iter()
            .map(|listener| listener.local_addr().unwrap().port())
            .collect();
        drop(held);
        let (lb_port, ports) = (free[0], [free[1], free[2]]);
        let base = format!("http://127.0.0.1:{lb_port}");
        // The OP knows the portal by its public origin only: redirects and back-channel logout
        // go through the balancer, as they would to a real deployment.
        let op = RealOp::start(json!({
            "clients": [{
                "client_id": "portico",
                "client_secret": "portico-secret",
                "redirect_uris": [format!("{base}/auth/callback")],
                "post_logout_redirect_uris": [format!("{base}/auth/signed-out")],
                "backchannel_logout_uri": format!("{base}/auth/backchannel-logout"),
            }],
            "accessTokenTtl": 3600,
        }));
        let express = Framework::express();
        let redis = if redis_store() {
            Some(RedisServer::start().await)
        } else {
            None
        };
        let sessions = match &redis {
            Some(redis) => redis.sessions_yaml(dir.path()),
            None => "sessions: { store: memory }".to_owned(),
        };
        let signing_key = write_signing_key(dir.path());
        let yaml = config()
            .top(&format!(
                "server: {{ trusted_proxies: [127.0.0.1], signing_keys: [\"{}\"], shutdown_timeout: 5s }}",
                signing_key.display()
            ))
            .top(&sessions)
            .tenant(
                // A bare host name matches on any port: the balancer's and each instance's own.
                tenant("acme", &["127.0.0.1"])
                    .public_origin(&base)
                    .oidc(&format!(
                        "{}, probe_interval: 1s",
                        oidc_client(&op.issuer, "portico", "portico-secret")
                    ))
                    .role("developer", &["acme-eng"])
                    .app(app("tools", &["developer"]).upstream(&express.url()))
                    .key("tokens", "{ personal: 30d }"),
            )
            .yaml();
        let config_path = dir.path().join("portico.yaml");
        std::fs::write(&config_path, yaml).unwrap();
        let instances: Vec<Instance> = ports
            .iter()
            .map(|port| Instance::start(&config_path, *port))
            .collect();
        for instance in &instances {
            wait_until_sign_in_is_ready(instance).await;
        }
        let nginx = Nginx::start(&dir.path().join("nginx"), lb_port, &ports);
        Cluster {
            nginx,
            instances,
            base,
            _express: express,
            op,
            _redis: redis,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Signs `account` in through the balancer; returns the index of the instance that served the
    /// callback (where the session was created) and asserts that it is not the one that started the
    /// sign-in.
    async fn sign_in(&self, browser: &mut Browser, account: &str) -> usize {
        let landed = browser
            .sign_in(&self.base, &self.op.issuer, account, "/home/tools")
            .await;
        assert_eq!(landed, "/home/tools");
        let login = self.nginx.last("GET", "/auth/login");
        let callback = self.nginx.last("GET", "/auth/callback");
        assert_eq!(callback.status, 303, "{callback:?}");
        let start = self.instance_of(&login);
        let end = self.instance_of(&callback);
        assert_ne!(
            start, end,
            "round-robin sends the callback to the other instance than the sign-in's start"
        );
        end
    }

    /// Which instance nginx sent `served` to (the first one it tried).
    fn instance_of(&self, served: &Served) -> usize {
        let first = served.upstream.split(',').next().unwrap_or_default().trim();
        self.instances
            .iter()
            .position(|instance| first == format!("127.0.0.1:{}", instance.port))
            .unwrap_or_else(|| panic!("{served:?} names no instance"))
    }

    /// `GET path` on instance `index` directly (not through the balancer), as the browser holding
    /// `session` would send it; returns the status and the JSON body.
    async fn direct(&self, index: usize, path: &str, session: &str) -> (u16, Value) {
        let response = direct_client()
            .get(self.instances[index].url(path))
            .header("cookie", format!("portico_session={session}"))
            .header("accept", "application/json")
            .header("sec-fetch-site", "same-origin")
            .header("sec-fetch-mode", "cors")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Asserts that instance `index` refuses `session` within [`PROPAGATION`].
    async fn assert_refused(&self, index: usize, session: &str, what: &str) {
        let deadline = Instant::now() + PROPAGATION;
        loop {
            let (status, body) = self.direct(index, "/auth/session", session).await;
            if status == 401 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: instance {index} still answers {status} after {PROPAGATION:?}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Discovery runs in the background: wait (bounded) until sign-in at `instance` redirects to the IdP.
async fn wait_until_sign_in_is_ready(instance: &Instance) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let page = Browser::default().get(&instance.url("/auth/login")).await;
        if page.status == 303 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "sign-in at :{} never became available ({}):\n{}",
            instance.port,
            page.status,
            instance.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn direct_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(TIMEOUT)
        .build()
        .unwrap()
}

/// A P-256 key in PEM, as `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` writes it:
/// every instance signs assertions with it.
pub(crate) fn write_signing_key(dir: &Path) -> PathBuf {
    use p256::pkcs8::EncodePrivateKey;
    let key = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let pem = key.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).unwrap();
    let path = dir.join("signing.pem");
    std::fs::write(&path, pem.as_bytes()).unwrap();
    path
}

/// The session id the browser holds for the portal.
fn session_of(cluster: &Cluster, browser: &Browser) -> String {
    browser
        .session(&cluster.base)
        .expect("the browser holds a session cookie for the portal")
}

/// Verifies an identity assertion the way an upstream team would: a JWT library and the JWKS one
/// instance publishes.
fn verify(token: &str, jwks: &jsonwebtoken::jwk::JwkSet, issuer: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().expect("a kid"))
        .expect("the assertion's key is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["tools"]);
    validation.set_issuer(&[issuer]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|error| panic!("assertion does not verify: {error}"))
        .claims
}

#[tokio::test]
async fn a_sign_in_started_on_one_instance_completes_on_the_other() {
    let cluster = Cluster::start().await;
    // Two users: round-robin puts each sign-in's start and callback on different instances.
    for account in ["dev", "admin"] {
        let mut browser = Browser::default();
        let home = cluster.sign_in(&mut browser, account).await;
        let (status, body) = browser
            .fetch("GET", &cluster.url("/auth/session"), None)
            .await;
        assert_eq!(status, 200, "{account}: {body}");
        assert_eq!(body["user"]["id"], account);
        // The instance that did not create the session knows it too.
        let other = 1 - home;
        let (status, body) = cluster
            .direct(other, "/auth/session", &session_of(&cluster, &browser))
            .await;
        assert_eq!(status, 200, "{account} on instance {other}: {body}");
        assert_eq!(body["user"]["id"], account);
    }
}

#[tokio::test]
async fn the_portal_works_across_both_instances() {
    let cluster = Cluster::start().await;
    let mut browser = Browser::default();
    cluster.sign_in(&mut browser, "dev").await;
    let before = cluster.nginx.served().len();
    // The shell, its config, the session and a proxied app, several times: round-robin spreads them.
    for _ in 0..4 {
        let page = browser.get(&cluster.url("/home/tools")).await;
        assert_eq!(page.status, 200, "the shell: {}", page.body);
        for path in ["/shell/config.json", "/auth/session", "/apps/tools/headers"] {
            let (status, body) = browser.fetch("GET", &cluster.url(path), None).await;
            assert_eq!(status, 200, "{path}: {body}");
        }
    }
    let served = cluster.nginx.served()[before..].to_vec();
    assert_eq!(served.len(), 16, "{served:?}");
    assert!(
        served.iter().all(|request| request.status == 200),
        "every request answered 200 (none 401): {served:?}"
    );
    for index in 0..2 {
        let count = served
            .iter()
            .filter(|request| cluster.instance_of(request) == index)
            .count();
        assert_eq!(count, 8, "instance {index} served half: {served:?}");
    }

    // Each instance proxies for the session, and the assertion either one signs verifies with the
    // keys the other publishes: the signing keys are shared.
    let session = session_of(&cluster, &browser);
    let mut assertions = Vec::new();
    for index in 0..2 {
        let (status, echoed) = cluster.direct(index, "/apps/tools/headers", &session).await;
        assert_eq!(status, 200, "instance {index}: {echoed}");
        let token = echoed["headers"]["x-portico-assertion"]
            .as_str()
            .expect("the upstream receives an assertion")
            .to_owned();
        assertions.push(token);
    }
    for (signer, token) in assertions.iter().enumerate() {
        let verifier = 1 - signer;
        let (status, jwks) = cluster
            .direct(verifier, "/.well-known/jwks.json", &session)
            .await;
        assert_eq!(status, 200);
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).unwrap();
        let claims = verify(token, &jwks, &cluster.base);
        assert_eq!(claims["sub"], "dev", "signed by {signer}");
        assert_eq!(claims["roles"], json!(["developer"]));
    }
}

#[tokio::test]
async fn a_restarted_instance_still_knows_the_sessions() {
    let mut cluster = Cluster::start().await;
    let mut browser = Browser::default();
    let home = cluster.sign_in(&mut browser, "dev").await;
    let session = session_of(&cluster, &browser);
    // Round-robin: this goes to the other instance, so the next sign-in starts at `home`.
    let (status, _) = browser
        .fetch("GET", &cluster.url("/auth/session"), None)
        .await;
    assert_eq!(status, 200);
    let mut late = Browser::default();
    let callback = late
        .sign_in_at_op(&cluster.base, &cluster.op.issuer, "admin", "/home/tools")
        .await;
    let started = cluster.instance_of(&cluster.nginx.last("GET", "/auth/login"));
    assert_eq!(
        started, home,
        "round-robin started the second sign-in at `home`"
    );

    // Restart the instance that created the session and started the sign-in still in flight: its
    // memory is gone, Redis is not.
    cluster.instances[home].terminate();
    // While it is down, the balancer sends everything to the other instance: nobody notices, and the
    // sign-in in flight completes there.
    for _ in 0..3 {
        let (status, body) = browser
            .fetch("GET", &cluster.url("/apps/tools/headers"), None)
            .await;
        assert_eq!(status, 200, "during the restart: {body}");
    }
    assert_eq!(late.land(&cluster.base, &callback).await, "/home/tools");
    let late_session = session_of(&cluster, &late);

    cluster.instances[home].start_again();
    wait_until_sign_in_is_ready(&cluster.instances[home]).await;
    for (session, user) in [(&session, "dev"), (&late_session, "admin")] {
        let (status, body) = cluster.direct(home, "/auth/session", session).await;
        assert_eq!(
            status, 200,
            "the restarted instance knows {user}'s session: {body}"
        );
        assert_eq!(body["user"]["id"], user);
        let (status, body) = cluster.direct(home, "/apps/tools/headers", session).await;
        assert_eq!(status, 200, "and proxies for it: {body}");
    }
    assert_eq!(
        session_of(&cluster, &browser),
        session,
        "the same session, not a new sign-in"
    );
}

#[tokio::test]
async fn a_logout_on_one_instance_ends_the_session_on_both() {
    let cluster = Cluster::start().await;
    let mut browser = Browser::default();
    let home = cluster.sign_in(&mut browser, "dev").await;
    let session = session_of(&cluster, &browser);
    let mut bystander = Browser::default();
    cluster.sign_in(&mut bystander, "dev").await;
    let bystander_session = session_of(&cluster, &bystander);

    // Log out on the instance that did not create the session, directly.
    let away = 1 - home;
    let (status, shell) = cluster.direct(away, "/shell/config.json", &session).await;
    assert_eq!(status, 200, "{shell}");
    let csrf = shell["portico"]["csrfToken"].as_str().unwrap().to_owned();
    let response = direct_client()
        .post(cluster.instances[away].url("/auth/logout"))
        .header("cookie", format!("portico_session={session}"))
        .header("accept", "application/json")
        .header("sec-fetch-site", "same-origin")
        .header("x-portico-csrf", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // Both instances refuse the session, asked directly and through the balancer.
    cluster
        .assert_refused(away, &session, "where it logged out")
        .await;
    cluster
        .assert_refused(home, &session, "the other instance")
        .await;
    for _ in 0..2 {
        let (status, _) = browser
            .fetch("GET", &cluster.url("/auth/session"), None)
            .await;
        assert_eq!(status, 401, "through the balancer");
    }
    // The same user's other session is untouched on both.
    for index in 0..2 {
        let (status, _) = cluster
            .direct(index, "/auth/session", &bystander_session)
            .await;
        assert_eq!(status, 200, "the other session on instance {index}");
    }
}

#[tokio::test]
async fn a_back_channel_logout_reaches_both_instances() {
    let cluster = Cluster::start().await;
    // The same user in two browsers (two IdP sessions), and another user.
    let mut first = Browser::default();
    cluster.sign_in(&mut first, "dev").await;
    let mut second = Browser::default();
    cluster.sign_in(&mut second, "dev").await;
    let mut other = Browser::default();
    cluster.sign_in(&mut other, "admin").await;
    let [first_session, second_session, other_session] =
        [&first, &second, &other].map(|browser| session_of(&cluster, browser));

    // The first browser signs out at the IdP itself: the OP posts a logout token to the portal's
    // back-channel URL, which the balancer hands to one instance.
    first
        .confirm_logout_at_op(
            &format!("{}/session/end", cluster.op.issuer),
            &cluster.op.issuer,
        )
        .await;
    let delivered = cluster.nginx.last("POST", "/auth/backchannel-logout");
    assert_eq!(delivered.status, 200, "{delivered:?}");
    let receiver = cluster.instance_of(&delivered);

    cluster
        .assert_refused(receiver, &first_session, "the receiving instance")
        .await;
    cluster
        .assert_refused(1 - receiver, &first_session, "the other instance")
        .await;
    for index in 0..2 {
        for (session, whose) in [
            (&second_session, "the user's other"),
            (&other_session, "another user's"),
        ] {
            let (status, _) = cluster.direct(index, "/auth/session", session).await;
            assert_eq!(status, 200, "{whose} session on instance {index}");
        }
    }
}

/// A personal token minted on one instance works on the other, and revoking it on the other ends it
/// on the first at once: tokens live in the shared store, only as a hash, never in one instance alone.
#[tokio::test]
async fn a_personal_token_minted_on_one_instance_works_and_dies_on_both() {
    let cluster = Cluster::start().await;
    let mut browser = Browser::default();
    cluster.sign_in(&mut browser, "dev").await;
    let session = session_of(&cluster, &browser);
    let (status, shell) = cluster.direct(0, "/shell/config.json", &session).await;
    assert_eq!(status, 200, "{shell}");
    let csrf = shell["portico"]["csrfToken"].as_str().unwrap().to_owned();
    let change = |index: usize, method: &str, path: &str| {
        direct_client()
            .request(method.parse().unwrap(), cluster.instances[index].url(path))
            .header("cookie", format!("portico_session={session}"))
            .header("sec-fetch-site", "same-origin")
            .header("x-portico-csrf", &csrf)
    };
    let response = change(0, "POST", "/auth/tokens")
        .json(&json!({ "name": "deploy job" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let made: Value = response.json().await.unwrap();
    let token = made["token"].as_str().unwrap().to_owned();
    let id = made["id"].as_str().unwrap().to_owned();
    let use_on = |index: usize| {
        direct_client()
            .get(cluster.instances[index].url("/apps/tools/headers"))
            .bearer_auth(&token)
            .send()
    };
    for index in [1, 0] {
        let response = use_on(index).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "instance {index}");
        let echoed: Value = response.json().await.unwrap();
        assert_eq!(echoed["headers"]["x-portico-user"], "dev");
    }
    let (status, listed) = cluster.direct(1, "/auth/tokens", &session).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["tokens"][0]["id"], id.as_str(), "{listed}");

    let response = change(1, "DELETE", &format!("/auth/tokens/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for index in [0, 1] {
        let response = use_on(index).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "instance {index}"
        );
    }
}
