//! BRIEF invariant 7: the access decision covers every spelling that a real upstream framework treats as
//! the same path, and the upstream gets the spelling that was decided on.
//!
//! The upstreams are stock frameworks, not fakes: an Express 4 app from npm (routes case-insensitively
//! and ignores a trailing slash by default; tests/support/express-app.mjs) and an embedded Jetty 9
//! servlet app from Debian's libjetty9-java (decodes the path and strips `;` path parameters before it
//! picks a servlet; tests/support/jetty/PathsApp.java, compiled once into target/). Each answers with
//! the route it matched, so a test sees which handler a spelling reached.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::helpers::{
    AppYaml, ConfigYaml, RawResponse, Session, TIMEOUT, TestServer, acme, app, config,
    raw_exchange, raw_get, user,
};

/// A running framework app; stopped when dropped (stdin closes and it is killed).
pub(crate) struct Framework {
    addr: SocketAddr,
    child: Child,
    _stdin: ChildStdin,
}

impl Drop for Framework {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Framework {
    /// Spawns `command`, which prints `listening <port>` once it accepts connections; stopped on drop.
    pub(crate) fn spawn(mut command: Command, what: &str) -> Framework {
        let mut child = command
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {what}: {error}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = receiver
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|_| panic!("{what} did not start within {TIMEOUT:?}"));
        let port: u16 = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("{what} said: {line:?}"));
        Framework {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
            _stdin: stdin,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The stock Express 4 app.
    pub(crate) fn express() -> Framework {
        let mut command = Command::new("node");
        command.arg("tests/support/express-app.mjs");
        Framework::spawn(command, "the Express test app (run `npm ci`)")
    }

    /// The embedded Jetty 9 servlet app.
    fn jetty() -> Framework {
        let mut command = Command::new("java");
        command
            .arg("-Xshare:auto")
            .arg("-XX:TieredStopAtLevel=1")
            .arg("-cp")
            .arg(format!(
                "{}:{}",
                jetty_classes().display(),
                jetty_classpath()
            ))
            .arg("PathsApp");
        Framework::spawn(command, "the Jetty test app")
    }
}

const JETTY_JARS: &[&str] = &[
    "jetty9-server",
    "jetty9-servlet",
    "jetty9-security",
    "jetty9-http",
    "jetty9-io",
    "jetty9-util",
    "servlet-api",
];

fn jetty_classpath() -> String {
    let jars: Vec<String> = JETTY_JARS
        .iter()
        .map(|jar| format!("/usr/share/java/{jar}.jar"))
        .collect();
    if let Some(missing) = jars.iter().find(|jar| !std::path::Path::new(jar).exists()) {
        panic!("{missing} is missing: run scripts/ensure-jetty.sh (Debian's libjetty9-java)");
    }
    jars.join(":")
}

/// `PathsApp.class`, compiled with javac once per source change into target/test-support/jetty.
fn jetty_classes() -> &'static PathBuf {
    static CLASSES: OnceLock<PathBuf> = OnceLock::new();
    CLASSES.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let source = root.join("tests/support/jetty/PathsApp.java");
        let out = root.join("target/test-support/jetty");
        let class = out.join("PathsApp.class");
        let modified = |path: &PathBuf| std::fs::metadata(path).and_then(|m| m.modified()).ok();
        if modified(&class).is_some() && modified(&class) >= modified(&source) {
            return out;
        }
        // Compile beside the cache and rename, so a concurrent test run never loads half a class.
        let staging = root.join(format!("target/test-support/jetty.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).unwrap();
        let status = Command::new("javac")
            .arg("-d")
            .arg(&staging)
            .arg("-cp")
            .arg(jetty_classpath())
            .arg(&source)
            .status()
            .expect("javac must be installed (a JDK, 17 or later)");
        assert!(status.success(), "javac failed on {}", source.display());
        let _ = std::fs::remove_dir_all(&out);
        std::fs::rename(&staging, &out).unwrap();
        out
    })
}

/// The admin-only `reports` node.
const REPORTS_NODE: &str =
    "{ path: reports, label: Reports, view: /reports, access: { roles: [platform-admin] } }";

/// A tenant with the same two apps in front of each framework: the `reports` node and `DELETE /admin/**`
/// are for platform-admin only; the rest is open to developers. `extra_app` is a third app, if any.
fn config_of(express: &Framework, jetty: &Framework, extra_app: Option<AppYaml>) -> ConfigYaml {
    let app_at = |id: &str, upstream: &str| {
        app(id, &["developer", "platform-admin"])
            .upstream(upstream)
            .rule("{ methods: [DELETE], path: /admin/**, roles: [platform-admin] }")
            .node("{ path: overview, label: Overview, view: /overview }")
            .node(REPORTS_NODE)
    };
    let mut acme = acme()
        .user(user("ann", &["acme-platform", "acme-eng"]).name("Ann Admin"))
        .user(user("dev", &["acme-eng"]).name("Dev Eloper"))
        .role("platform-admin", &["acme-platform"])
        .role("developer", &["acme-eng"])
        .app(app_at("express", &express.url()))
        .app(app_at("jetty", &jetty.url()));
    if let Some(extra) = extra_app {
        acme = acme.app(extra);
    }
    config().default_tenant("acme").tenant(acme)
}

struct Setup {
    server: TestServer,
    dev: Session,
    ann: Session,
    _frameworks: (Framework, Framework),
}

async fn setup(extra_app: impl Fn(&Framework, &Framework) -> Option<AppYaml>) -> Setup {
    let (express, jetty) = (Framework::express(), Framework::jetty());
    let server = config_of(&express, &jetty, extra_app(&express, &jetty))
        .start()
        .await;
    let dev = server.sign_in("dev").await;
    let ann = server.sign_in("ann").await;
    Setup {
        server,
        dev,
        ann,
        _frameworks: (express, jetty),
    }
}

/// `method target` exactly as written, from the portal's own pages (so CSRF checks pass).
async fn send(server: &TestServer, method: &str, target: &str, session: &Session) -> RawResponse {
    let addr = server.addr;
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: {}\r\n\
         Sec-Fetch-Site: same-origin\r\nOrigin: http://{addr}\r\nContent-Length: 0\r\n\r\n",
        session.cookie
    );
    tokio::time::timeout(TIMEOUT, raw_exchange(addr, head.as_bytes()))
        .await
        .expect("raw request timed out")
}

/// The framework's answer: which route it matched and what it saw.
fn reached(response: &RawResponse, what: &str) -> Value {
    assert_eq!(
        response.status,
        200,
        "{what}: {}",
        String::from_utf8_lossy(&response.body)
    );
    response.json()
}

/// Refused by portico itself (403 or 400 with its own JSON error), never answered by the framework.
fn refused(response: &RawResponse, what: &str) {
    let body = String::from_utf8_lossy(&response.body);
    assert!(
        response.status == 403 || response.status == 400,
        "{what} was not refused: {} {body}",
        response.status
    );
    assert!(
        !body.contains("\"route\""),
        "{what} reached the framework: {body}"
    );
}

/// Each of these is, to Express or to Jetty (or to Spring, IIS or a file system), the admin-only
/// `/reports` node or something under it.
const REPORTS_SPELLINGS: &[&str] = &[
    "/REPORTS",
    "/Reports/2024",
    "/rEpOrTs/",
    "/reports;x=y",
    "/reports;x=y/2024",
    "/reports;/2024",
    "/Reports;jsessionid=0123",
    "/reports%3bx=y",
    "/reports%3B/2024",
    "/rep%6frts",
    "/REP%6Frts/2024",
    "/%52eports",
    "//reports",
    "/reports/",
    "/reports.",
    "/reports./2024",
    "/reports.json",
    "/REPORTS.csv",
    "/reports%2e",
    "/rep%c0%aerts/../reports",
    "/reports%c0%ae%c0%ae/x",
    "/reports%00",
    "/reports%",
    "/reports%zz",
];

/// A developer reads the platform-admin node by changing letter case (Express) or appending a `;`
/// parameter (Jetty): every spelling is refused, on both frameworks.
#[tokio::test]
async fn every_spelling_of_an_admin_node_is_refused_to_a_developer() {
    let setup = setup(|_, _| None).await;
    for app in ["express", "jetty"] {
        for spelling in REPORTS_SPELLINGS {
            let target = format!("/apps/{app}{spelling}");
            let response = send(&setup.server, "GET", &target, &setup.dev).await;
            refused(&response, &format!("GET {target} as a developer"));
        }
    }
    // The navigation says the same: no reports entry for the developer.
    let nav = setup.server.shell_config(&setup.dev).await;
    assert!(!nav.to_string().contains("/apps/express/reports"), "{nav}");
}

/// A `DELETE` rule on `/admin/**` holds for every spelling of `/admin` as well.
#[tokio::test]
async fn a_method_rule_holds_for_every_spelling_of_its_path() {
    let setup = setup(|_, _| None).await;
    for app in ["express", "jetty"] {
        for spelling in [
            "/ADMIN/users",
            "/Admin/users/",
            "/admin;x=y/users",
            "/admin;/users",
            "/admin/users;x=y",
            "/%61dmin/users",
            "/%41DMIN/users",
            "//admin//users",
            "/admin./users",
            "/admin.json/users",
        ] {
            let target = format!("/apps/{app}{spelling}");
            let response = send(&setup.server, "DELETE", &target, &setup.dev).await;
            refused(&response, &format!("DELETE {target} as a developer"));
        }
        // Reads stay open (in any case Express accepts; Jetty is case-sensitive), and the admin passes.
        let read_path = if app == "express" {
            "/Admin/users"
        } else {
            "/admin/users"
        };
        let read = send(
            &setup.server,
            "GET",
            &format!("/apps/{app}{read_path}"),
            &setup.dev,
        )
        .await;
        assert_eq!(reached(&read, read_path)["route"], "/admin/*");
        let delete = send(
            &setup.server,
            "DELETE",
            &format!("/apps/{app}/admin/users"),
            &setup.ann,
        )
        .await;
        let delete = reached(&delete, "DELETE as platform-admin");
        assert_eq!(delete["route"], "/admin/*");
        assert_eq!(delete["method"], "DELETE");
    }
}

/// What passes reaches the framework spelled as it was decided on: encoded unreserved characters
/// decoded, `//` collapsed; letter case is kept (the decision covered every case).
#[tokio::test]
async fn allowed_paths_reach_the_framework_in_the_canonical_spelling() {
    let setup = setup(|_, _| None).await;
    let (server, dev, ann) = (&setup.server, &setup.dev, &setup.ann);

    let overview = send(server, "GET", "/apps/express/%6Fverview", dev).await;
    let overview = reached(&overview, "encoded overview on Express");
    assert_eq!(overview["route"], "/overview");
    assert_eq!(overview["url"], "/overview");
    let overview = send(server, "GET", "/apps/jetty//%6fverview", dev).await;
    let overview = reached(&overview, "encoded overview on Jetty");
    assert_eq!(overview["route"], "/overview");
    assert_eq!(overview["uri"], "/overview");

    let reports = send(server, "GET", "/apps/express/rep%6Frts/2024", ann).await;
    let reports = reached(&reports, "reports as platform-admin on Express");
    assert_eq!(reports["route"], "/reports/*");
    assert_eq!(reports["url"], "/reports/2024");
    let reports = send(server, "GET", "/apps/jetty/Reports", ann).await;
    assert_eq!(
        reports.status, 404,
        "Jetty is case-sensitive; the case is kept"
    );
    let reports = send(server, "GET", "/apps/jetty/reports/a%20b", ann).await;
    let reports = reached(&reports, "reports as platform-admin on Jetty");
    assert_eq!(reports["uri"], "/reports/a%20b", "reserved escapes stay");
    assert_eq!(reports["pathInfo"], "/a b");

    // Parameters are refused for everyone, not silently dropped.
    let parameter = send(server, "GET", "/apps/jetty/reports;x=y", ann).await;
    assert_eq!(parameter.status, 400);
    assert_eq!(parameter.json()["error"], "bad_path");

    // A developer still reaches everything that is not the admin node.
    for target in ["/apps/express/reportsx", "/apps/express/Overview/"] {
        let response = raw_get(server.addr, target, Some(&dev.cookie)).await;
        assert_ne!(response.status, 403, "{target}");
        assert_ne!(response.status, 400, "{target}");
    }
}

/// An app that routes case-sensitively may say so (`paths: case_sensitive`): then `/REPORTS` is another
/// path, as it is to Jetty, and is not refused.
#[tokio::test]
async fn an_app_may_declare_case_sensitive_paths() {
    let setup = setup(|_, jetty| {
        Some(
            app("strict", &["developer", "platform-admin"])
                .upstream(&jetty.url())
                .key("paths", "case_sensitive")
                .node(REPORTS_NODE),
        )
    })
    .await;
    let (server, dev) = (&setup.server, &setup.dev);
    let upper = send(server, "GET", "/apps/strict/REPORTS", dev).await;
    assert_eq!(upper.status, 404, "forwarded; Jetty has no /REPORTS");
    assert_eq!(upper.json()["servletPath"], "/REPORTS");
    refused(
        &send(server, "GET", "/apps/strict/reports", dev).await,
        "strict /reports",
    );
    refused(
        &send(server, "GET", "/apps/strict/reports;x=y", dev).await,
        "strict /reports;x=y",
    );
}

/// The two frameworks really route these spellings to the admin handlers (so the tests above guard real
/// bypasses); if an upgrade changes that, this says so before the tests above turn meaningless.
#[tokio::test]
async fn the_frameworks_route_the_spellings_as_assumed() {
    let (express, jetty) = (Framework::express(), Framework::jetty());
    let direct = |addr: SocketAddr, method: &'static str, target: &'static str| async move {
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        let response = tokio::time::timeout(TIMEOUT, raw_exchange(addr, head.as_bytes()))
            .await
            .expect("raw request timed out");
        response.json()["route"].clone()
    };
    for (method, target, route) in [
        ("GET", "/REPORTS", "/reports"),
        ("GET", "/Reports/2024", "/reports/*"),
        ("GET", "/rEpOrTs/", "/reports"),
        ("DELETE", "/ADMIN/users", "/admin/*"),
    ] {
        let seen = direct(express.addr, method, target).await;
        assert_eq!(
            seen, route,
            "Express routes {method} {target} case-insensitively"
        );
    }
    for (method, target, route) in [
        ("GET", "/reports;x=y", "/reports/*"),
        ("GET", "/reports;x=y/2024", "/reports/*"),
        ("GET", "/rep%6frts", "/reports/*"),
        ("DELETE", "/admin;x=y/users", "/admin/*"),
    ] {
        let seen = direct(jetty.addr, method, target).await;
        assert_eq!(
            seen, route,
            "Jetty strips ;parameters and decodes: {method} {target}"
        );
    }
}
