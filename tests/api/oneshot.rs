//! Status and header contracts, checked in-process: the tenant router is built from a config without
//! binding a socket and driven with `tower::ServiceExt::oneshot`, one request at a time.
//!
//! Each test pins what a browser or an API client notices about an answer (whether a page may be framed
//! or stored, whether a script gets JSON or a page, whether a navigation is sent to sign in, which Host
//! names are served). Some repeat socket tests on purpose: these are cheap and say the contract in one
//! place. Streaming, WebSockets, real IdPs and Backstage stay with the socket tests.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use portico::config::{self, Config, RESERVED_SEGMENTS};
use serde_json::Value;
use tower::ServiceExt;

/// The host the embedded demo tenant answers (it lists `127.0.0.1` on any port).
const DEMO_HOST: &str = "127.0.0.1:8080";
const DEMO_ORIGIN: &str = "http://127.0.0.1:8080";

/// The tenant router of `config`, as the server would run it, but with no socket.
struct Portal {
    router: Router,
}

/// An answer with its body read.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(&name)
            .map_or("", |value| value.to_str().unwrap())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.body))
    }

    /// Whether this is the shell page (the Luigi host page), rather than an error page.
    fn is_shell_page(&self) -> bool {
        self.body.contains("/shell/bootstrap.js")
    }
}

impl Portal {
    fn new(config: Config) -> Portal {
        let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let state = portico::app::shared_state(config, listen).expect("state");
        Portal {
            router: portico::app::router(state),
        }
    }

    /// The embedded demo config (tenants `demo` and `globex`, `demo` the default).
    fn demo() -> Portal {
        Portal::new(config::load_embedded().expect("embedded config").config)
    }

    async fn send(&self, mut request: Request<Body>) -> Answer {
        let peer: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        let response: Response<Body> = self.router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Signs `user` in on the demo tenant as the picker's form does; returns the `Cookie` header value.
    async fn sign_in(&self, user: &str) -> String {
        let request = Request::post("/auth/dev-login")
            .header(header::HOST, DEMO_HOST)
            .header(header::ORIGIN, DEMO_ORIGIN)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("user={user}&return_to=%2Fhome")))
            .unwrap();
        let answer = self.send(request).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let set_cookie = answer.header(header::SET_COOKIE);
        set_cookie.split(';').next().unwrap().to_owned()
    }
}

/// A GET on the demo tenant.
fn get(path: &str) -> axum::http::request::Builder {
    Request::get(path).header(header::HOST, DEMO_HOST)
}

/// What a browser sends when the user opens `path` in the address bar.
fn navigate(path: &str) -> axum::http::request::Builder {
    get(path)
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-dest", "document")
        .header(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
}

/// What a script's `fetch` sends.
fn fetch(path: &str) -> axum::http::request::Builder {
    get(path)
        .header("sec-fetch-mode", "cors")
        .header(header::ACCEPT, "application/json")
}

fn empty(builder: axum::http::request::Builder) -> Request<Body> {
    builder.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn the_shell_page_may_not_be_framed_and_runs_only_its_own_scripts() {
    let portal = Portal::demo();
    let cookie = portal.sign_in("alice").await;
    let page = portal
        .send(empty(
            navigate("/home/service-status").header(header::COOKIE, &cookie),
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.is_shell_page(), "{}", page.body);
    assert!(page.header(header::CONTENT_TYPE).starts_with("text/html"));
    let csp = page.header(header::CONTENT_SECURITY_POLICY);
    for directive in [
        "script-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "CSP lacks {directive}: {csp}");
    }
    assert!(!csp.contains("unsafe-eval") && !csp.contains("script-src 'self' 'unsafe-inline'"));
    assert_eq!(page.header(header::X_FRAME_OPTIONS), "DENY");
    assert_eq!(page.header(header::CACHE_CONTROL), "no-store");
    assert_eq!(page.header(header::REFERRER_POLICY), "same-origin");
    assert!(!page.header("x-request-id".parse().unwrap()).is_empty());
}

#[tokio::test]
async fn the_shell_config_is_per_user_json_that_is_never_stored_or_sniffed() {
    let portal = Portal::demo();
    let cookie = portal.sign_in("dave").await;
    let config = portal
        .send(empty(
            fetch("/shell/config.json").header(header::COOKIE, &cookie),
        ))
        .await;
    assert_eq!(config.status, StatusCode::OK);
    assert_eq!(config.header(header::CACHE_CONTROL), "no-store");
    assert_eq!(config.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert!(
        config
            .header(header::CONTENT_TYPE)
            .starts_with("application/json")
    );
    assert_eq!(
        config.json()["luigi"]["navigation"]["globalContext"]["user"]["id"],
        "dave"
    );
}

#[tokio::test]
async fn auth_answers_are_never_stored() {
    let portal = Portal::demo();
    let cookie = portal.sign_in("alice").await;
    let answers = [
        ("sign-in picker", empty(navigate("/auth/login"))),
        (
            "session probe",
            empty(fetch("/auth/session").header(header::COOKIE, &cookie)),
        ),
        ("session probe, signed out", empty(fetch("/auth/session"))),
        ("signed-out page", empty(navigate("/auth/signed-out"))),
        (
            "sign-out",
            Request::post("/auth/logout")
                .header(header::HOST, DEMO_HOST)
                .header(header::ORIGIN, DEMO_ORIGIN)
                .header(header::ACCEPT, "application/json")
                .header("x-portico-csrf", "not-the-token")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        ),
        (
            "dev sign-in of an unknown user",
            Request::post("/auth/dev-login")
                .header(header::HOST, DEMO_HOST)
                .header(header::ORIGIN, DEMO_ORIGIN)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("user=mallory"))
                .unwrap(),
        ),
    ];
    for (what, request) in answers {
        let answer = portal.send(request).await;
        assert_eq!(
            answer.header(header::CACHE_CONTROL),
            "no-store",
            "{what}: {} {}",
            answer.status,
            answer.body
        );
    }
    // The dev sign-in that set the cookie above was not stored either.
    let request = Request::post("/auth/dev-login")
        .header(header::HOST, DEMO_HOST)
        .header(header::ORIGIN, DEMO_ORIGIN)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("user=dave"))
        .unwrap();
    let signed_in = portal.send(request).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.header(header::CACHE_CONTROL), "no-store");
}

#[tokio::test]
async fn a_script_without_a_session_gets_401_json_that_names_the_cookie_scheme() {
    let portal = Portal::demo();
    for path in ["/shell/config.json", "/auth/session", "/home"] {
        let answer = portal.send(empty(fetch(path))).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            answer.header(header::WWW_AUTHENTICATE),
            "Cookie realm=\"portico\"",
            "{path}"
        );
        assert_eq!(answer.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert_eq!(answer.header(header::CACHE_CONTROL), "no-store");
        let body = answer.json();
        assert_eq!(body["error"], "not_signed_in", "{path}");
        assert_eq!(body["status"], 401);
        assert!(!body["request_id"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_browser_navigation_without_a_session_is_sent_to_sign_in_and_back() {
    let portal = Portal::demo();
    let answer = portal
        .send(empty(navigate("/home/service-status?tab=2")))
        .await;
    assert!(answer.status.is_redirection(), "{}", answer.status);
    let location = answer.header(header::LOCATION);
    let return_to = location
        .strip_prefix("/auth/login?return_to=")
        .unwrap_or_else(|| panic!("not a sign-in redirect: {location}"));
    let return_to = percent_encoding::percent_decode_str(return_to).decode_utf8_lossy();
    assert_eq!(return_to, "/home/service-status?tab=2");
    assert!(answer.headers.get(header::WWW_AUTHENTICATE).is_none());

    // Inside an app's iframe the sign-in page could not show (it may not be framed): a page that signs
    // in again in the top window instead.
    let in_frame = portal
        .send(empty(
            get("/apps/service-status/")
                .header("sec-fetch-mode", "navigate")
                .header("sec-fetch-dest", "iframe")
                .header(header::ACCEPT, "text/html"),
        ))
        .await;
    assert_eq!(in_frame.status, StatusCode::UNAUTHORIZED);
    assert!(
        in_frame
            .header(header::CONTENT_TYPE)
            .starts_with("text/html")
    );
    assert!(in_frame.body.contains("/auth/login"), "{}", in_frame.body);
    assert_eq!(in_frame.header(header::X_FRAME_OPTIONS), "SAMEORIGIN");
}

#[tokio::test]
async fn errors_are_pages_for_browsers_and_json_for_scripts() {
    let portal = Portal::demo();
    let cookie = portal.sign_in("alice").await;
    let path = "/apps/no-such-app/";

    let page = portal
        .send(empty(navigate(path).header(header::COOKIE, &cookie)))
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.header(header::CONTENT_TYPE).starts_with("text/html"));
    assert!(!page.is_shell_page());
    // Shown inside the shell's iframe for the app, so framed by this origin only, and running nothing
    // but its own script.
    assert_eq!(page.header(header::X_FRAME_OPTIONS), "SAMEORIGIN");
    let csp = page.header(header::CONTENT_SECURITY_POLICY);
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'self'"),
        "{csp}"
    );
    assert_eq!(page.header(header::CACHE_CONTROL), "no-store");
    // The page names the request id that the log line carries.
    let request_id = page.header("x-request-id".parse().unwrap());
    assert!(page.body.contains(request_id), "{}", page.body);

    // A script: by Sec-Fetch-Mode, which wins over an Accept that would take HTML…
    let script = get(path)
        .header(header::COOKIE, &cookie)
        .header("sec-fetch-mode", "cors")
        .header(header::ACCEPT, "text/html,*/*");
    // …or, from clients that send no Sec-Fetch-Mode, by X-Requested-With or by Accept.
    let ajax = get(path)
        .header(header::COOKIE, &cookie)
        .header("x-requested-with", "XMLHttpRequest")
        .header(header::ACCEPT, "text/html,*/*");
    let curl = get(path)
        .header(header::COOKIE, &cookie)
        .header(header::ACCEPT, "*/*");
    for (what, request) in [("fetch", script), ("xhr", ajax), ("curl", curl)] {
        let answer = portal.send(empty(request)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{what}");
        assert_eq!(answer.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        let body = answer.json();
        assert_eq!(body["error"], "unknown_app", "{what}");
        assert_eq!(body["status"], 404, "{what}");
    }
}

#[tokio::test]
async fn a_reserved_prefix_without_such_a_route_is_a_404_never_the_shell() {
    let portal = Portal::demo();
    let cookie = portal.sign_in("alice").await;
    for segment in RESERVED_SEGMENTS {
        let path = format!("/{segment}/no/such/route");
        let answer = portal
            .send(empty(navigate(&path).header(header::COOKIE, &cookie)))
            .await;
        if *segment == "home" {
            // The shell's own navigation root: every deep link is the shell page (Luigi routes it).
            assert_eq!(answer.status, StatusCode::OK, "{path}");
            assert!(answer.is_shell_page(), "{path}");
        } else {
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
            assert!(!answer.is_shell_page(), "{path}");
        }
    }
}

#[tokio::test]
async fn public_json_is_never_sniffed() {
    let portal = Portal::demo();
    let keys = portal.send(empty(get("/.well-known/jwks.json"))).await;
    assert_eq!(keys.status, StatusCode::OK);
    assert_eq!(keys.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert!(keys.json()["keys"].is_array());
}

/// Two tenants that list their own hosts, and no default tenant.
fn two_tenants() -> Portal {
    let yaml = r#"
version: 1
server: { listen: "127.0.0.1:8080" }
tenants:
  acme:
    hosts: [acme.example]
    branding: { title: Acme Portal }
    auth: { dev_sign_in: { users: [{ id: ann, groups: [eng] }] } }
    roles:
      developer: { groups: [eng] }
    apps:
      - { id: tools, access: { roles: [developer] }, static: "embedded:demo" }
  globex:
    hosts: [globex.example]
    branding: { title: Globex Portal }
    auth: { dev_sign_in: { users: [{ id: gil, groups: [staff] }] } }
    roles:
      employee: { groups: [staff] }
    apps:
      - { id: ledger, access: { roles: [employee] }, static: "embedded:demo" }
"#;
    let dir = tempfile::tempdir().unwrap();
    Portal::new(crate::helpers::compile(yaml, dir.path()))
}

#[tokio::test]
async fn a_host_no_tenant_lists_is_404_unknown_host_without_a_default_tenant() {
    let portal = two_tenants();
    let script = Request::get("/auth/session")
        .header(header::HOST, "intranet.example")
        .header(header::ACCEPT, "application/json")
        .body(Body::empty())
        .unwrap();
    let answer = portal.send(script).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json()["error"], "unknown_host");
    assert_eq!(answer.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");

    // A browser gets the error page, never some tenant's shell or sign-in.
    let page = Request::get("/")
        .header(header::HOST, "intranet.example")
        .header("sec-fetch-mode", "navigate")
        .body(Body::empty())
        .unwrap();
    let answer = portal.send(page).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(answer.header(header::CONTENT_TYPE).starts_with("text/html"));
    assert!(answer.headers.get(header::LOCATION).is_none());
    assert!(!answer.is_shell_page());

    // Each listed host is its own tenant (the sign-in page says which).
    for (host, title) in [
        ("acme.example", "Acme Portal"),
        ("GLOBEX.example:8443", "Globex Portal"),
    ] {
        let request = Request::get("/auth/login")
            .header(header::HOST, host)
            .body(Body::empty())
            .unwrap();
        let answer = portal.send(request).await;
        assert_eq!(answer.status, StatusCode::OK, "{host}");
        assert!(answer.body.contains(title), "{host}: {}", answer.body);
    }
}

#[tokio::test]
async fn a_request_naming_two_tenants_is_refused() {
    let portal = two_tenants();
    let refused = |request: Request<Body>| async {
        let answer = portal.send(request).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
        assert_eq!(answer.json()["error"], "unknown_host");
    };
    // Two Host lines…
    let two_hosts = Request::get("/auth/session")
        .header(header::HOST, "acme.example")
        .header(header::HOST, "globex.example")
        .header(header::ACCEPT, "application/json")
        .body(Body::empty())
        .unwrap();
    refused(two_hosts).await;
    let answer = portal
        .send(
            Request::get("/")
                .header(header::HOST, "acme.example")
                .header(header::HOST, "intranet.example")
                .header(header::ACCEPT, "application/json")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        answer.json()["message"],
        "no portal is configured for host `acme.example` and `intranet.example`"
    );
    // …or a Host that differs from the request target's authority (HTTP/2 `:authority`, or an
    // absolute-form target).
    let authority_and_host = Request::builder()
        .method(Method::GET)
        .uri("http://globex.example/auth/session")
        .header(header::HOST, "acme.example")
        .header(header::ACCEPT, "application/json")
        .body(Body::empty())
        .unwrap();
    refused(authority_and_host).await;

    // Two spellings of one tenant's host are one tenant.
    let one_tenant = Request::builder()
        .method(Method::GET)
        .uri("http://ACME.example:8443/auth/session")
        .header(header::HOST, "acme.example")
        .header(header::ACCEPT, "application/json")
        .body(Body::empty())
        .unwrap();
    let answer = portal.send(one_tenant).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    assert_eq!(answer.json()["error"], "not_signed_in");
}

#[tokio::test]
async fn the_admin_listener_says_alive_and_ready_without_naming_users() {
    let config = config::load_embedded().expect("embedded config").config;
    let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let state = portico::app::shared_state(config, listen).expect("state");
    let admin = portico::admin::router(portico::admin::AdminState {
        config: state.config.clone(),
        oidc: state.oidc.clone(),
        reload: std::sync::Arc::new(portico::reload::Reloader::new(
            state.config.clone(),
            state.oidc.clone(),
            listen,
            None,
        )),
        metrics: state.metrics.clone(),
        redis: None,
        personal_tokens: state.personal_tokens.clone(),
    });
    let alive = admin
        .clone()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(alive.status(), StatusCode::OK);
    // Dev sign-in reaches no identity provider, so the demo is ready at once.
    let ready = admin
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let body = ready.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["tenants"], serde_json::json!(["demo", "globex"]));
    assert!(!String::from_utf8_lossy(&serde_json::to_vec(&body).unwrap()).contains("alice"));
}
