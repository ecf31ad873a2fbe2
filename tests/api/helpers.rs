//! Starting a real server, signing in by hand, and speaking raw HTTP when a client library would tidy
//! the request up (reqwest resolves `..` and `%2e%2e` before sending, so path tricks need raw bytes).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use portico::config::{self, Config};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The upper bound for any single wait in these tests; nothing may hang a test run.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(20);

/// A reqwest client that shows redirects instead of following them and ignores proxy settings.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(TIMEOUT)
        .build()
        .expect("reqwest client")
}

/// Compiles config text as if it were a file named `test.yaml` in `dir`; panics with the full report.
pub(crate) fn compile(yaml: &str, dir: &Path) -> Config {
    match config::load_str(&config::OsSource, "test.yaml", yaml, dir) {
        Ok(loaded) => loaded.config,
        Err(error) => panic!("test config does not compile:\n{error}"),
    }
}

/// A running portico on 127.0.0.1:<ephemeral>.
pub(crate) struct TestServer {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
}

/// A signed-in browser's session cookie.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    /// `portico_session=<id>`, ready for a `Cookie` header.
    pub cookie: String,
    /// The opaque id alone.
    pub id: String,
}

impl TestServer {
    /// Starts `config` on a loopback ephemeral port with no admin listener.
    pub(crate) async fn start(mut config: Config) -> TestServer {
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        config.server.admin_listen = None;
        let app = portico::app::App::build(config)
            .await
            .expect("portico starts");
        let addr = app.local_addr();
        assert_ne!(addr.port(), 0, "local_addr reports the bound port");
        tokio::spawn(app.run());
        TestServer {
            addr,
            client: client(),
        }
    }

    /// Starts `config` on a loopback ephemeral port with its admin listener on another; returns both.
    pub(crate) async fn start_with_admin(mut config: Config) -> (TestServer, SocketAddr) {
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        config.server.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        let app = portico::app::App::build(config)
            .await
            .expect("portico starts");
        let addr = app.local_addr();
        let admin = app.admin_addr().expect("the admin listener");
        tokio::spawn(app.run());
        let server = TestServer {
            addr,
            client: client(),
        };
        (server, admin)
    }

    /// The embedded demo config (tenant `demo`, users alice, dave, nora).
    pub(crate) async fn embedded() -> TestServer {
        let loaded = config::load_embedded().expect("embedded config is valid");
        TestServer::start(loaded.config).await
    }

    /// Config text whose relative paths resolve against `dir`.
    pub(crate) async fn from_yaml(yaml: &str, dir: &Path) -> TestServer {
        TestServer::start(compile(yaml, dir)).await
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// What a browser on this server's own pages sends as `Origin`.
    pub(crate) fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    pub(crate) fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path))
    }

    /// `GET <path>` as the holder of `session`.
    pub(crate) async fn get_as(&self, path: &str, session: &Session) -> reqwest::Response {
        self.get(path)
            .header("cookie", &session.cookie)
            .send()
            .await
            .unwrap()
    }

    /// Signs in through dev sign-in like the picker page's form does, and returns the session cookie.
    pub(crate) async fn sign_in(&self, user: &str) -> Session {
        let response = self
            .post("/auth/dev-login")
            .header("origin", self.origin())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("user={user}&return_to=%2Fx"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "dev sign-in as {user}"
        );
        assert_eq!(response.headers()[LOCATION], "/x");
        session_from(response.headers()).expect("dev sign-in sets the session cookie")
    }

    /// `GET /shell/config.json` as the holder of `session`; asserts 200.
    pub(crate) async fn shell_config(&self, session: &Session) -> Value {
        let response = self.get_as("/shell/config.json", session).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

/// The session cookie a response sets, if any (a cleared cookie counts as none).
pub(crate) fn session_from(headers: &HeaderMap) -> Option<Session> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == "portico_session" && !value.is_empty())
        .map(|(name, value)| Session {
            cookie: format!("{name}={value}"),
            id: value.to_owned(),
        })
}

/// An HTTP/1.1 response read off a raw socket.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "body is not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Sends `GET <target>` exactly as written (no normalisation of `..`, `%2e` or `//`).
/// The `kid`s of the JWKS portico publishes at `origin`, the signing key's first.
pub(crate) async fn published_kids(origin: &str) -> Vec<String> {
    let jwks: Value = client()
        .get(format!("{origin}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_owned())
        .collect()
}

pub(crate) async fn raw_get(addr: SocketAddr, target: &str, cookie: Option<&str>) -> RawResponse {
    let mut head = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(cookie) = cookie {
        head.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    head.push_str("\r\n");
    tokio::time::timeout(TIMEOUT, raw_exchange(addr, head.as_bytes()))
        .await
        .expect("raw request timed out")
}

pub(crate) async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.unwrap();
    let split = bytes
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let mut body = bytes[split + 4..].to_vec();
    let chunked = headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("transfer-encoding") && value.contains("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    RawResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).expect("chunk size");
        if size == 0 {
            return out;
        }
        let start = line_end + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
}

/// The app entries below the home node of a `/shell/config.json` document.
pub(crate) fn app_nodes(shell_config: &Value) -> Vec<Value> {
    let home = &shell_config["luigi"]["navigation"]["nodes"][0];
    assert_eq!(home["pathSegment"], "home", "first node is home");
    // Not the shortcuts to an app's pages (`link`), nor the hidden page that explains unknown routes.
    home["children"]
        .as_array()
        .expect("home has a children array")
        .iter()
        .filter(|node| node.get("link").is_none() && node.get("hideFromNav").is_none())
        .cloned()
        .collect()
}

/// The `pathSegment`s of a list of Luigi nodes, in order.
pub(crate) fn segments(nodes: &[Value]) -> Vec<String> {
    nodes
        .iter()
        .map(|node| node["pathSegment"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The children of the node with `segment`, or an empty list when it has none.
pub(crate) fn children_of(nodes: &[Value], segment: &str) -> Vec<Value> {
    let node = nodes
        .iter()
        .find(|node| node["pathSegment"] == segment)
        .unwrap_or_else(|| panic!("no node `{segment}`"));
    node["children"].as_array().cloned().unwrap_or_default()
}

/// Asserts a JSON error body of the documented shape and returns it.
pub(crate) async fn json_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    json_error_of("", response, status, code).await
}

/// The same, for one row of a table: `what` names the row in every failure message.
pub(crate) async fn json_error_of(
    what: &str,
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> Value {
    let what = if what.is_empty() {
        String::new()
    } else {
        format!("{what}: ")
    };
    assert_eq!(response.status().as_u16(), status, "{what}status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{what}JSON error, got content-type {content_type:?}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{what}error code in {body}");
    assert_eq!(body["status"], status, "{what}status in body {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}a message in {body}"
    );
    assert!(
        body["request_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{what}a request id in {body}"
    );
    body
}

/// The query parameters of `url`.
pub(crate) fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

/// `url` with one query parameter replaced (or added).
pub(crate) fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(key, _)| key != name)
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    parsed
        .query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair(name, value);
    parsed.to_string()
}

// Config text ------------------------------------------------------------------------------------------

/// Config text for a test, written by one builder instead of the same tenant YAML in every file. It is
/// only text: each test still goes through the real config loader (`compile`, `TestServer::from_yaml`).
/// Names, hosts, URLs and groups are written as JSON strings, which are also YAML double-quoted strings,
/// so ports, colons and odd group names need no care; the other values (`key`, `rule`, `node`, `top`)
/// are YAML text as given. A test whose point is unusual YAML writes its config out by hand.
#[derive(Clone, Debug, Default)]
pub(crate) struct ConfigYaml {
    /// Top-level sections other than `tenants`, as YAML text (`proxy: { idle_timeout: 1s }`).
    top: Vec<String>,
    tenants: Vec<TenantYaml>,
}

/// A config with no tenants yet.
pub(crate) fn config() -> ConfigYaml {
    ConfigYaml::default()
}

impl ConfigYaml {
    pub(crate) fn default_tenant(self, id: &str) -> Self {
        self.top(&format!("default_tenant: {}", q(id)))
    }

    /// A top-level section as YAML text, e.g. `server: { max_connections: 3 }`; empty text adds nothing.
    pub(crate) fn top(mut self, yaml: &str) -> Self {
        if !yaml.is_empty() {
            self.top.push(yaml.to_owned());
        }
        self
    }

    pub(crate) fn tenant(mut self, tenant: TenantYaml) -> Self {
        self.tenants.push(tenant);
        self
    }

    pub(crate) fn yaml(&self) -> String {
        let mut out = String::from("version: 1\n");
        for section in &self.top {
            out.push_str(section);
            out.push('\n');
        }
        out.push_str("tenants:\n");
        for tenant in &self.tenants {
            tenant.write(&mut out);
        }
        out
    }

    /// Compiled with relative paths resolved against `dir`.
    pub(crate) fn compile(&self, dir: &Path) -> Config {
        compile(&self.yaml(), dir)
    }

    /// Started on a loopback port, for a config with no relative paths.
    pub(crate) async fn start(&self) -> TestServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        TestServer::from_yaml(&self.yaml(), dir.path()).await
    }
}

/// One tenant of a [`ConfigYaml`].
#[derive(Clone, Debug)]
pub(crate) struct TenantYaml {
    id: String,
    /// Keys other than `auth`, `roles` and `apps`, as YAML text (`hosts: [...]`).
    keys: Vec<String>,
    /// `auth.dev_sign_in.users`, each a flow mapping.
    users: Vec<String>,
    /// The fields of `auth.oidc`, as YAML flow text.
    oidc: Option<String>,
    roles: Vec<String>,
    apps: Vec<AppYaml>,
}

/// A tenant named `id`, listening on `hosts`.
pub(crate) fn tenant(id: &str, hosts: &[&str]) -> TenantYaml {
    TenantYaml {
        id: id.to_owned(),
        keys: vec![format!("hosts: {}", list(hosts))],
        users: Vec::new(),
        oidc: None,
        roles: Vec::new(),
        apps: Vec::new(),
    }
}

impl TenantYaml {
    pub(crate) fn public_origin(self, origin: &str) -> Self {
        self.key("public_origin", &q(origin))
    }

    pub(crate) fn title(self, title: &str) -> Self {
        self.key("branding", &format!("{{ title: {} }}", q(title)))
    }

    /// The tenant's `backstage:` block, as a YAML flow mapping.
    pub(crate) fn backstage(self, block: &str) -> Self {
        self.key("backstage", block)
    }

    /// Any other tenant key, its value as YAML text (`previews`, `{ upstreams: [...] }`).
    pub(crate) fn key(mut self, key: &str, value: &str) -> Self {
        self.keys.push(format!("{key}: {value}"));
        self
    }

    /// A dev sign-in user; the first one turns dev sign-in on.
    pub(crate) fn user(mut self, user: UserYaml) -> Self {
        self.users.push(format!("{{ {} }}", user.0.join(", ")));
        self
    }

    /// OIDC sign-in, the fields of `oidc:` as YAML flow text (see [`oidc_client`]).
    pub(crate) fn oidc(mut self, fields: &str) -> Self {
        self.oidc = Some(fields.to_owned());
        self
    }

    /// Role `name` for members of any of `groups`.
    pub(crate) fn role(mut self, name: &str, groups: &[&str]) -> Self {
        self.roles
            .push(format!("{name}: {{ groups: {} }}", list(groups)));
        self
    }

    pub(crate) fn app(mut self, app: AppYaml) -> Self {
        self.apps.push(app);
        self
    }

    fn write(&self, out: &mut String) {
        let mut line = |indent: usize, text: &str| {
            out.push_str(&" ".repeat(indent));
            out.push_str(text);
            out.push('\n');
        };
        line(2, &format!("{}:", self.id));
        for key in &self.keys {
            line(4, key);
        }
        if !self.users.is_empty() || self.oidc.is_some() {
            line(4, "auth:");
        }
        if !self.users.is_empty() {
            line(6, "dev_sign_in:");
            line(8, "users:");
            for user in &self.users {
                line(10, &format!("- {user}"));
            }
        }
        if let Some(oidc) = &self.oidc {
            line(6, &format!("oidc: {{ {oidc} }}"));
        }
        if !self.roles.is_empty() {
            line(4, "roles:");
            for role in &self.roles {
                line(6, role);
            }
        }
        if !self.apps.is_empty() {
            line(4, "apps:");
            for app in &self.apps {
                line(6, &format!("- id: {}", q(&app.id)));
                for key in &app.keys {
                    line(8, key);
                }
                for (name, items) in [("rules", &app.rules), ("nodes", &app.nodes)] {
                    if !items.is_empty() {
                        line(8, &format!("{name}:"));
                        for item in items {
                            line(10, &format!("- {item}"));
                        }
                    }
                }
            }
        }
    }
}

/// The fields of an `oidc:` block for a client asking for the usual scopes (for [`TenantYaml::oidc`]).
pub(crate) fn oidc_client(issuer: &str, client_id: &str, client_secret: &str) -> String {
    format!(
        "issuer: {}, client_id: {}, client_secret: {}, scopes: [profile, email, groups]",
        q(issuer),
        q(client_id),
        q(client_secret)
    )
}

/// A dev sign-in user: the fields of one flow mapping.
#[derive(Clone, Debug)]
pub(crate) struct UserYaml(Vec<String>);

/// Dev sign-in user `id`, member of `groups`.
pub(crate) fn user(id: &str, groups: &[&str]) -> UserYaml {
    UserYaml(vec![
        format!("id: {}", q(id)),
        format!("groups: {}", list(groups)),
    ])
}

impl UserYaml {
    pub(crate) fn name(mut self, name: &str) -> Self {
        self.0.push(format!("name: {}", q(name)));
        self
    }

    pub(crate) fn email(mut self, email: &str) -> Self {
        self.0.push(format!("email: {}", q(email)));
        self
    }
}

/// One app of a tenant, written as a block mapping.
#[derive(Clone, Debug)]
pub(crate) struct AppYaml {
    id: String,
    keys: Vec<String>,
    rules: Vec<String>,
    nodes: Vec<String>,
}

/// App `id`, open to `roles`; give it an [`AppYaml::upstream`] or [`AppYaml::files`].
pub(crate) fn app(id: &str, roles: &[&str]) -> AppYaml {
    AppYaml {
        id: id.to_owned(),
        keys: vec![format!("access: {{ roles: {} }}", list(roles))],
        rules: Vec::new(),
        nodes: Vec::new(),
    }
}

impl AppYaml {
    pub(crate) fn upstream(self, url: &str) -> Self {
        self.key("upstream", &q(url))
    }

    /// `static:` content: a directory relative to the config, or `embedded:demo`.
    pub(crate) fn files(self, source: &str) -> Self {
        self.key("static", &q(source))
    }

    /// Any other key, its value as YAML text (`cookies`, `scoped`; `identity`, `[headers]`).
    pub(crate) fn key(mut self, key: &str, value: &str) -> Self {
        self.keys.push(format!("{key}: {value}"));
        self
    }

    /// A request rule, as YAML flow text.
    pub(crate) fn rule(mut self, rule: &str) -> Self {
        self.rules.push(rule.to_owned());
        self
    }

    /// A navigation node, as YAML flow text.
    pub(crate) fn node(mut self, node: &str) -> Self {
        self.nodes.push(node.to_owned());
        self
    }
}

/// `text` as a YAML double-quoted scalar (a JSON string is one).
fn q(text: &str) -> String {
    Value::from(text).to_string()
}

/// `items` as a YAML flow sequence of double-quoted scalars.
fn list(items: &[&str]) -> String {
    Value::from(items.to_vec()).to_string()
}

/// Tenant `acme` at `portal.acme.test` and at 127.0.0.1, where the tests reach it: dev sign-in answers
/// only on a host the tenant lists, never as the default tenant.
pub(crate) fn acme() -> TenantYaml {
    tenant("acme", &["portal.acme.test", "127.0.0.1"])
}

/// The developer most tests sign in as.
pub(crate) fn dev() -> UserYaml {
    user("dev", &["acme-eng"])
        .name("Dev Eloper")
        .email("dev@acme.example")
}

/// What the builder writes, in full: the text a reader of a failing test's config would see.
#[test]
fn the_config_builder_writes_plain_yaml() {
    let yaml = config()
        .default_tenant("acme")
        .top("proxy: { idle_timeout: 1s }")
        .tenant(
            acme().user(dev()).role("developer", &["acme-eng"]).app(
                app("echo", &["developer"])
                    .upstream("http://127.0.0.1:1/base")
                    .key("cookies", "scoped")
                    .node("{ path: overview, label: Overview, view: /overview }"),
            ),
        )
        .yaml();
    assert_eq!(
        yaml,
        r#"version: 1
default_tenant: "acme"
proxy: { idle_timeout: 1s }
tenants:
  acme:
    hosts: ["portal.acme.test","127.0.0.1"]
    auth:
      dev_sign_in:
        users:
          - { id: "dev", groups: ["acme-eng"], name: "Dev Eloper", email: "dev@acme.example" }
    roles:
      developer: { groups: ["acme-eng"] }
    apps:
      - id: "echo"
        access: { roles: ["developer"] }
        upstream: "http://127.0.0.1:1/base"
        cookies: scoped
        nodes:
          - { path: overview, label: Overview, view: /overview }
"#
    );
}
