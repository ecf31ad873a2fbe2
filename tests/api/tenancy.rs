//! Tenant isolation: two tenants, `acme` and `globex`, on ONE portico, told apart by Host only
//! (`acme.test:<port>` and `globex.test:<port>`, resolved to loopback like `/etc/hosts` entries would).
//! Each has its own OIDC client at one real OpenID Provider (tests/support/op.mjs), its own role map
//! (both name a role `developer`, granted by different groups) and its own app in front of its own
//! upstream server. What is checked is what a user, an attacker with a stolen URL, or the audit log
//! would notice: which apps the shell offers, where a request lands, which sign-in happens, what the
//! IdP is told to redirect to, and which cookies the browser is asked to keep.
//!
//! Accounts at the OP: `ann` (acme-eng), `gus` (globex-eng) and `pat` (acme-eng and globex-eng: a
//! contractor who works for both, so pat's groups would grant `developer` in either tenant). Both
//! tenants also enable the shared app `wiki`, globex with its own label and upstream.
//!
//! The IdP mix-up test gives globex an OP of its own (a second issuer); the fake IdP is not needed,
//! as the real OPs produce every response used here. Audit events are read from the log: the server
//! runs on the test's single-threaded runtime, so a thread-local subscriber sees its events.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, Uri};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::helpers::{
    TenantYaml, app, app_nodes, compile, config, json_error, oidc_client, query_of, segments,
    session_from, tenant, user, with_param,
};
use crate::logs::Logs;
use crate::op::{Browser, RealOp, reserve_port};

const ACME: &str = "acme.test";
/// A second host of acme's; its `public_origin` stays on [`ACME`].
const ACME_ALIAS: &str = "tools.acme.test";
const GLOBEX: &str = "globex.test";
/// A host no tenant lists.
const UNKNOWN: &str = "unknown.test";
/// What an attacker (or a misconfigured proxy) puts into forwarding headers.
const EVIL: &str = "evil.example";

/// Which portal a test needs.
#[derive(Clone, Copy, Default)]
struct Setup {
    /// `default_tenant:` in the config (none by default).
    default_tenant: Option<&'static str>,
    /// Globex signs in at an OP of its own (another issuer) instead of sharing acme's.
    globex_has_its_own_op: bool,
}

/// One portico with both tenants, its OP(s) and the two upstream apps.
struct Portal {
    port: u16,
    /// `http://acme.test:<port>`: acme's `public_origin`.
    acme: String,
    /// `http://globex.test:<port>`: globex's `public_origin`.
    globex: String,
    /// Acme's OP (globex's too unless it has its own).
    op: RealOp,
    globex_op: Option<RealOp>,
    acme_app: Upstream,
    globex_app: Upstream,
    /// Resolves all test host names to portico; shows redirects instead of following them.
    http: reqwest::Client,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

fn accounts() -> Value {
    json!({
        "ann": { "name": "Ann Acme", "email": "ann@acme.test", "groups": ["acme-eng"] },
        "gus": { "name": "Gus Globex", "email": "gus@globex.test", "groups": ["globex-eng"] },
        "pat": { "name": "Pat Both", "email": "pat@contractor.test", "groups": ["acme-eng", "globex-eng"] },
    })
}

/// The OP's registration of one tenant's client: redirect URIs on that tenant's public origin only.
fn op_client(id: &str, secret: &str, origin: &str) -> Value {
    json!({
        "client_id": id,
        "client_secret": secret,
        "redirect_uris": [format!("{origin}/auth/callback")],
        "post_logout_redirect_uris": [format!("{origin}/auth/signed-out")],
    })
}

fn config_yaml(
    port: u16,
    acme_issuer: &str,
    globex_issuer: &str,
    setup: Setup,
    acme_app: &Upstream,
    globex_app: &Upstream,
) -> String {
    // Each tenant's app keeps its cookies in the browser, so the host-only test sees them.
    let own_app = |id: &str, label: &str, category: &str, upstream: &Upstream| {
        app(id, &["developer"])
            .key("label", label)
            .key("category", category)
            .key("cookies", "scoped")
            .upstream(&format!("http://{}", upstream.addr))
    };
    let acme = tenant(
        "acme",
        &[&format!("{ACME}:{port}"), &format!("{ACME_ALIAS}:{port}")],
    )
    .public_origin(&format!("http://{ACME}:{port}"))
    .title("Acme Portal")
    .oidc(&oidc_client(acme_issuer, "acme-portal", "acme-secret"))
    .role("developer", &["acme-eng"])
    .app(own_app("acme-tools", "Acme Tools", "Build", acme_app));
    let globex = tenant("globex", &[&format!("{GLOBEX}:{port}")])
        .public_origin(&format!("http://{GLOBEX}:{port}"))
        .title("Globex Portal")
        .oidc(&oidc_client(
            globex_issuer,
            "globex-portal",
            "globex-secret",
        ))
        .role("developer", &["globex-eng"])
        .app(own_app(
            "globex-ledger",
            "Globex Ledger",
            "Finance",
            globex_app,
        ));
    let shared_apps = format!(
        r#"
shared_apps:
  - id: wiki
    label: Wiki
    tenants: [acme, globex]
    access: {{ roles: [developer] }}
    upstream: http://{acme_upstream}
    overrides:
      globex: {{ label: Globex Wiki, upstream: "http://{globex_upstream}" }}"#,
        acme_upstream = acme_app.addr,
        globex_upstream = globex_app.addr,
    );
    let mut config = config()
        .top(&format!("server: {{ listen: \"127.0.0.1:{port}\" }}"))
        .top(&shared_apps)
        .tenant(acme)
        .tenant(globex);
    if let Some(id) = setup.default_tenant {
        config = config.default_tenant(id);
    }
    config.yaml()
}

impl Portal {
    async fn start(setup: Setup) -> Portal {
        let acme_app = Upstream::start("acme").await;
        let globex_app = Upstream::start("globex").await;
        for attempt in 0..5 {
            // The OP must know the redirect URIs, so the port is chosen before portico binds it.
            let addr = reserve_port();
            let port = addr.port();
            let acme = format!("http://{ACME}:{port}");
            let globex = format!("http://{GLOBEX}:{port}");
            let acme_client = op_client("acme-portal", "acme-secret", &acme);
            let globex_client = op_client("globex-portal", "globex-secret", &globex);
            let (op, globex_op) = if setup.globex_has_its_own_op {
                (
                    RealOp::start(json!({ "clients": [acme_client], "accounts": accounts() })),
                    Some(RealOp::start(
                        json!({ "clients": [globex_client], "accounts": accounts() }),
                    )),
                )
            } else {
                let clients = json!([acme_client, globex_client]);
                (
                    RealOp::start(json!({ "clients": clients, "accounts": accounts() })),
                    None,
                )
            };
            let globex_issuer = globex_op.as_ref().unwrap_or(&op).issuer.clone();
            let yaml = config_yaml(
                port,
                &op.issuer,
                &globex_issuer,
                setup,
                &acme_app,
                &globex_app,
            );
            let dir = tempfile::tempdir().unwrap();
            let mut config = compile(&yaml, dir.path());
            config.server.admin_listen = None;
            match portico::app::App::build(config).await {
                Ok(app) => {
                    assert_eq!(app.local_addr(), addr);
                    tokio::spawn(app.run());
                    let mut http = reqwest::Client::builder()
                        .redirect(reqwest::redirect::Policy::none())
                        .no_proxy()
                        .timeout(Duration::from_secs(30));
                    for host in [ACME, ACME_ALIAS, GLOBEX, UNKNOWN] {
                        http = http.resolve(host, addr);
                    }
                    let portal = Portal {
                        port,
                        acme,
                        globex,
                        op,
                        globex_op,
                        acme_app,
                        globex_app,
                        http: http.build().unwrap(),
                        addr,
                        _dir: dir,
                    };
                    portal.wait_until_ready().await;
                    return portal;
                }
                // Another test took the reserved port in between: start over on another.
                Err(portico::app::StartError::Bind { .. }) if attempt < 4 => continue,
                Err(error) => panic!("portico does not start: {error}"),
            }
        }
        unreachable!()
    }

    /// Discovery runs in the background: wait (bounded) until both tenants send sign-in to their IdP.
    async fn wait_until_ready(&self) {
        for base in [&self.acme, &self.globex] {
            let mut ready = false;
            for _ in 0..300 {
                let response = self
                    .http
                    .get(format!("{base}/auth/login"))
                    .send()
                    .await
                    .unwrap();
                if response.status() == StatusCode::SEE_OTHER {
                    ready = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(ready, "sign-in at {base} never became available");
        }
    }

    fn globex_issuer(&self) -> &str {
        &self.globex_op.as_ref().unwrap_or(&self.op).issuer
    }

    /// A browser that knows the test host names.
    fn browser(&self) -> Browser {
        Browser::resolving(&[ACME, ACME_ALIAS, GLOBEX, UNKNOWN], self.addr)
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.port)
    }

    /// A top-level browser navigation to `host` (a page is wanted, not JSON).
    fn navigate(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(self.url(host, path))
            .header("accept", "text/html,application/xhtml+xml")
            .header("sec-fetch-mode", "navigate")
    }

    /// A script's call (fetch) to `host`.
    fn api(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(self.url(host, path))
            .header("accept", "application/json")
            .header("sec-fetch-mode", "cors")
            .header("sec-fetch-site", "same-origin")
    }

    /// A request to portico's listener with exactly this Host header.
    fn with_host(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("http://{}{path}", self.addr))
            .header("host", host)
    }
}

/// A tenant's upstream: answers every request with its own name and what portico told it about the
/// user (identity headers, and the signed assertion's claims), and tries to set a cookie for the whole
/// `.test` domain (portico must keep it host-only and below the app's path).
struct Upstream {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Upstream {
    async fn start(name: &'static str) -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let router = Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let assertion = header("x-portico-assertion");
                let claims: Value = assertion
                    .split('.')
                    .nth(1)
                    .and_then(|payload| URL_SAFE_NO_PAD.decode(payload).ok())
                    .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                    .unwrap_or(Value::Null);
                (
                    [(SET_COOKIE, format!("{name}-pref=1; Path=/; Domain=test"))],
                    axum::Json(json!({
                        "upstream": name,
                        "path": uri.path(),
                        "app": header("x-portico-app"),
                        "tenant": header("x-portico-tenant"),
                        "roles": header("x-portico-roles"),
                        "assertion": {
                            "iss": claims["iss"],
                            "aud": claims["aud"],
                            "tenant": claims["tenant"],
                        },
                    })),
                )
            }
        });
        tokio::spawn(async move { axum::serve(listener, router).await });
        Upstream { addr, hits }
    }

    /// Requests that reached this upstream so far.
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// The shell config as text without its random CSRF tokens (which could spell anything).
fn config_text(config: &Value) -> String {
    let mut config = config.clone();
    config["portico"]["csrfToken"] = json!("");
    config["luigi"]["navigation"]["globalContext"]["csrfToken"] = json!("");
    config.to_string()
}

/// The ids in the home page's app list.
fn listed_apps(config: &Value) -> Vec<String> {
    config["luigi"]["navigation"]["nodes"][0]["context"]["apps"]
        .as_array()
        .expect("home context lists apps")
        .iter()
        .map(|app| app["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The callback refused sign-in as a browser sees it: a 401 page saying so, and no session cookie.
async fn assert_sign_in_failed_page(response: reqwest::Response) -> String {
    assert!(
        session_from(response.headers()).is_none(),
        "a refused sign-in sets no session cookie"
    );
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = response.text().await.unwrap();
    assert!(page.contains("sign-in failed"), "{page}");
    page
}

// 1 ------------------------------------------------------------------------------------------------

/// Every string in `value` that contains `needle`.
fn strings_containing(value: &Value, needle: &str) -> Vec<String> {
    match value {
        Value::String(text) if text.contains(needle) => vec![text.clone()],
        Value::Array(items) => items
            .iter()
            .flat_map(|item| strings_containing(item, needle))
            .collect(),
        Value::Object(fields) => fields
            .values()
            .flat_map(|item| strings_containing(item, needle))
            .collect(),
        _ => Vec::new(),
    }
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

#[tokio::test]
async fn the_shell_config_lists_only_the_tenants_own_apps() {
    let portal = Portal::start(Setup::default()).await;
    let acme_upstream = portal.acme_app.addr.to_string();
    let globex_upstream = portal.globex_app.addr.to_string();

    // ann belongs to acme only; pat's groups would also grant globex's `developer` role.
    for account in ["ann", "pat"] {
        let mut browser = portal.browser();
        browser
            .sign_in(&portal.acme, &portal.op.issuer, account, "/")
            .await;
        let (status, config) = browser
            .fetch("GET", &format!("{}/shell/config.json", portal.acme), None)
            .await;
        assert_eq!(status, 200, "{config}");
        assert_eq!(
            sorted(segments(&app_nodes(&config))),
            ["acme-tools", "wiki"],
            "{account}"
        );
        assert_eq!(sorted(listed_apps(&config)), ["acme-tools", "wiki"]);
        assert_eq!(
            config["luigi"]["navigation"]["globalContext"]["tenant"],
            json!({ "id": "acme", "title": "Acme Portal" })
        );
        let text = config_text(&config);
        for globex_only in [
            "globex-ledger",
            "Globex Ledger",
            "Globex Wiki",
            "Finance",
            "globex-portal",
            globex_upstream.as_str(),
        ] {
            assert!(
                !text.contains(globex_only),
                "{account} on acme is shown `{globex_only}`: {text}"
            );
        }
        // At most a link to globex's own front door (the product switcher, for users with a role
        // there), built from its public origin: never a way into it.
        for link in strings_containing(&config, &format!("//{GLOBEX}")) {
            assert_eq!(link, format!("{}/", portal.globex), "{text}");
        }
        if account == "ann" {
            assert!(
                !text.to_ascii_lowercase().contains("globex"),
                "nothing of globex for an acme-only user: {text}"
            );
        }
    }

    // The same person on globex's host sees globex's apps (its copy of the shared wiki) only.
    let mut browser = portal.browser();
    browser
        .sign_in(&portal.globex, portal.globex_issuer(), "pat", "/")
        .await;
    let (status, config) = browser
        .fetch("GET", &format!("{}/shell/config.json", portal.globex), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        sorted(segments(&app_nodes(&config))),
        ["globex-ledger", "wiki"]
    );
    assert_eq!(
        config["luigi"]["navigation"]["globalContext"]["tenant"]["id"],
        "globex"
    );
    let text = config_text(&config);
    assert!(text.contains("Globex Wiki"), "globex's own label: {text}");
    for acme_only in [
        "acme-tools",
        "Acme Tools",
        "Build",
        "acme-portal",
        "\"Wiki\"",
        acme_upstream.as_str(),
    ] {
        assert!(!text.contains(acme_only), "`{acme_only}` on globex: {text}");
    }
    for link in strings_containing(&config, &format!("//{ACME}")) {
        assert_eq!(link, format!("{}/", portal.acme), "{text}");
    }
}

/// Each of `count` refusals on globex is audited as a cross-tenant use of acme's one session, named by
/// its hash only: the session id itself is never logged.
fn assert_crossings_audited(logs: &Logs, acme_id: &str, count: usize) {
    let signed_in = logs.audit("sign_in");
    assert_eq!(signed_in.len(), 1, "{signed_in:?}");
    assert_eq!(signed_in[0]["tenant"], "acme");
    let hash = signed_in[0]["session"].as_str().unwrap().to_owned();
    let crossings = logs.audit("cross_tenant_session");
    assert_eq!(crossings.len(), count, "one per request: {crossings:?}");
    for crossing in &crossings {
        assert_eq!(crossing["tenant"], "globex");
        assert_eq!(crossing["session_tenant"], "acme");
        assert_eq!(crossing["outcome"], "refused");
        assert_eq!(crossing["session"], hash.as_str());
    }
    assert!(
        !logs.text().contains(acme_id),
        "the session id itself is never logged"
    );
}

// 2 ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_session_replayed_on_the_other_tenants_host_is_not_signed_in_there() {
    let (logs, _guard) = Logs::capture();
    let portal = Portal::start(Setup::default()).await;
    let mut browser = portal.browser();
    browser
        .sign_in(&portal.acme, &portal.op.issuer, "pat", "/")
        .await;
    let acme_id = browser.session(&portal.acme).unwrap();
    let acme_cookie = format!("portico_session={acme_id}");

    // A browser navigation on globex with acme's cookie is sent to sign in at globex ...
    let page = portal
        .navigate(GLOBEX, "/home/globex-ledger")
        .header("cookie", &acme_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    let to_login = page.headers()[LOCATION].to_str().unwrap().to_owned();
    assert_eq!(to_login, "/auth/login?return_to=%2Fhome%2Fglobex%2Dledger");
    assert!(session_from(page.headers()).is_none());
    let body = page.text().await.unwrap();
    assert!(!body.contains("Globex Portal"), "not the shell: {body}");

    // ... and globex's sign-in really starts: to the IdP as globex's client, not "already signed in".
    let login = portal
        .navigate(GLOBEX, &to_login)
        .header("cookie", &acme_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let authorize = login.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(authorize.starts_with(portal.globex_issuer()), "{authorize}");
    let query = query_of(&authorize);
    assert_eq!(query["client_id"], "globex-portal");
    assert_eq!(
        query["redirect_uri"],
        format!("{}/auth/callback", portal.globex)
    );

    // API calls get 401 JSON; the app and the shell are not reached.
    for path in [
        "/shell/config.json",
        "/auth/session",
        "/apps/globex-ledger/",
        "/apps/globex-ledger/api/entries",
    ] {
        let response = portal
            .api(GLOBEX, path)
            .header("cookie", &acme_cookie)
            .send()
            .await
            .unwrap();
        json_error(response, 401, "not_signed_in").await;
    }
    let app_page = portal
        .navigate(GLOBEX, "/apps/globex-ledger/")
        .header("cookie", &acme_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(app_page.status(), StatusCode::SEE_OTHER);
    assert!(
        app_page.headers()[LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/auth/login?")
    );
    assert_eq!(
        portal.globex_app.hits(),
        0,
        "globex's app never saw the request"
    );

    // Each refusal is audited as a cross-tenant session, naming the session by its hash only.
    assert_crossings_audited(&logs, &acme_id, 7);

    // Nothing of this harmed the session at home.
    let (status, me) = browser
        .fetch("GET", &format!("{}/auth/session", portal.acme), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(me["tenant"], "acme");

    // The other way round: pat's globex session (single sign-on at the OP) is nothing on acme.
    browser
        .sign_in(&portal.globex, portal.globex_issuer(), "pat", "/")
        .await;
    let globex_id = browser.session(&portal.globex).unwrap();
    assert_ne!(globex_id, acme_id, "one session per tenant");
    let response = portal
        .api(ACME, "/shell/config.json")
        .header("cookie", format!("portico_session={globex_id}"))
        .send()
        .await
        .unwrap();
    json_error(response, 401, "not_signed_in").await;
    let last = logs.audit("cross_tenant_session").pop().unwrap();
    assert_eq!(last["tenant"], "acme");
    assert_eq!(last["session_tenant"], "globex");
}

// 3 ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_login_started_on_acme_cannot_be_finished_on_globex() {
    let (logs, _guard) = Logs::capture();
    let portal = Portal::start(Setup::default()).await;
    let mut browser = portal.browser();
    let callback = browser
        .sign_in_at_op(&portal.acme, &portal.op.issuer, "ann", "/")
        .await;
    // Both tenants trust this OP, so `iss` cannot tell them apart: the login's tenant binding must.
    assert_eq!(query_of(&callback)["iss"], portal.op.issuer);
    let binding = browser.cookie(&portal.acme, "portico_login").unwrap();

    // The authorization response, with the browser binding even, presented on globex's host.
    let query = callback.split_once('?').unwrap().1;
    let response = portal
        .navigate(GLOBEX, &format!("/auth/callback?{query}"))
        .header("cookie", format!("portico_login={binding}"))
        .send()
        .await
        .unwrap();
    assert_sign_in_failed_page(response).await;
    // The OP would refuse the code at globex's client too (it was issued to acme's client for acme's
    // redirect URI); the audit reason shows portico refused first, without sending the code anywhere.
    let refused = logs.audit("sign_in");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["outcome"], "failure");
    assert_eq!(refused[0]["tenant"], "globex");
    assert_eq!(
        refused[0]["reason"],
        "the login was started for another tenant"
    );

    // The login is spent: its state is single-use, so it cannot be finished at acme either.
    let page = browser.get(&callback).await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(page.body.contains("sign-in failed"));
    assert!(browser.session(&portal.acme).is_none());
    assert!(browser.session(&portal.globex).is_none());
    assert!(
        logs.audit("sign_in")
            .iter()
            .all(|event| event["outcome"] == "failure"),
        "no session was created anywhere"
    );
    let (status, _) = browser
        .fetch("GET", &format!("{}/auth/session", portal.acme), None)
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_code_issued_to_globex_client_does_not_sign_in_at_acme() {
    let (logs, _guard) = Logs::capture();
    let portal = Portal::start(Setup::default()).await;
    let mut browser = portal.browser();
    let acme_callback = browser
        .sign_in_at_op(&portal.acme, &portal.op.issuer, "pat", "/")
        .await;
    let globex_callback = browser
        .sign_in_at_op(&portal.globex, portal.globex_issuer(), "pat", "/")
        .await;
    // Acme's own login (its state, its browser binding, the shared issuer), but carrying the code the
    // OP issued to globex's client: portico redeems it as acme's client, which the OP refuses.
    let globex_code = &query_of(&globex_callback)["code"];
    let injected = with_param(&acme_callback, "code", globex_code);
    let page = browser.get(&injected).await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(page.body.contains("sign-in failed"), "{}", page.body);
    assert!(browser.session(&portal.acme).is_none());
    let refused = logs.audit("sign_in");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["tenant"], "acme");
    assert!(
        refused[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("code exchange failed"),
        "the OP refused to redeem another client's code: {}",
        refused[0]
    );
}

#[tokio::test]
async fn an_authorization_response_from_globex_issuer_does_not_sign_in_at_acme() {
    let (logs, _guard) = Logs::capture();
    let portal = Portal::start(Setup {
        globex_has_its_own_op: true,
        ..Setup::default()
    })
    .await;
    assert_ne!(portal.op.issuer, portal.globex_issuer());
    let mut browser = portal.browser();

    // A login at acme (acme's IdP) and one at globex (globex's IdP), both up to the callback.
    let acme_callback = browser
        .sign_in_at_op(&portal.acme, &portal.op.issuer, "pat", "/")
        .await;
    let globex_callback = browser
        .sign_in_at_op(&portal.globex, portal.globex_issuer(), "pat", "/")
        .await;
    let globex_response = query_of(&globex_callback);
    assert_eq!(globex_response["iss"], portal.globex_issuer());

    // Mix-up: globex's IdP's authorization response (code and iss) arrives for acme's login.
    let mixed_up = with_param(
        &with_param(&acme_callback, "code", &globex_response["code"]),
        "iss",
        &globex_response["iss"],
    );
    let page = browser.get(&mixed_up).await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(page.body.contains("sign-in failed"), "{}", page.body);
    assert!(browser.session(&portal.acme).is_none());

    // The same with acme's genuine code but globex's issuer named.
    let acme_again = browser
        .sign_in_at_op(&portal.acme, &portal.op.issuer, "pat", "/")
        .await;
    let relabelled = with_param(&acme_again, "iss", portal.globex_issuer());
    let page = browser.get(&relabelled).await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(browser.session(&portal.acme).is_none());
    let (status, _) = browser
        .fetch("GET", &format!("{}/auth/session", portal.acme), None)
        .await;
    assert_eq!(status, 401);

    let refused = logs.audit("sign_in");
    assert_eq!(refused.len(), 2, "{refused:?}");
    for event in &refused {
        assert_eq!(event["outcome"], "failure");
        assert_eq!(event["tenant"], "acme");
        assert_eq!(event["reason"], "the callback came from another issuer");
    }

    // Globex's own login was not disturbed: its callback still signs in, at globex.
    let landed = browser.land(&portal.globex, &globex_callback).await;
    assert_eq!(landed, "/");
    let (status, me) = browser
        .fetch("GET", &format!("{}/auth/session", portal.globex), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(me["tenant"], "globex");
}

// 4 ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn another_tenants_app_is_404_even_for_a_role_of_the_same_name() {
    let portal = Portal::start(Setup::default()).await;
    let mut pat = portal.browser();
    pat.sign_in(&portal.acme, &portal.op.issuer, "pat", "/")
        .await;
    pat.sign_in(&portal.globex, portal.globex_issuer(), "pat", "/")
        .await;
    // pat holds `developer` on both hosts, the role each tenant's apps ask for.
    for base in [&portal.acme, &portal.globex] {
        let (_, me) = pat
            .fetch("GET", &format!("{base}/auth/session"), None)
            .await;
        assert_eq!(me["roles"], json!(["developer"]), "{base}");
    }

    // Each app opens on its own tenant, from that tenant's upstream, for that tenant's user; the
    // shared wiki from each tenant's own copy.
    for (base, tenant, app) in [
        (&portal.acme, "acme", "acme-tools"),
        (&portal.acme, "acme", "wiki"),
        (&portal.globex, "globex", "globex-ledger"),
        (&portal.globex, "globex", "wiki"),
    ] {
        let (status, seen) = pat.fetch("GET", &format!("{base}/apps/{app}/"), None).await;
        assert_eq!(status, 200, "{base}/apps/{app}/: {seen}");
        assert_eq!(seen["upstream"], tenant, "{seen}");
        assert_eq!(seen["app"], app, "{seen}");
        assert_eq!(seen["tenant"], tenant, "{seen}");
        assert_eq!(seen["assertion"]["tenant"], tenant, "{seen}");
        assert_eq!(seen["assertion"]["iss"], base.as_str(), "{seen}");
    }
    let hits = (portal.acme_app.hits(), portal.globex_app.hits());

    // On the other tenant's host the app does not exist: 404 like an id no tenant has, never 403.
    for (base, app) in [
        (&portal.acme, "globex-ledger"),
        (&portal.globex, "acme-tools"),
    ] {
        for path in [format!("/apps/{app}/"), format!("/apps/{app}/api/entries")] {
            let (status, body) = pat.fetch("GET", &format!("{base}{path}"), None).await;
            assert_eq!(status, 404, "{base}{path}: {body}");
            assert_eq!(body["error"], "unknown_app", "{body}");
            let page = pat.get(&format!("{base}{path}")).await;
            assert_eq!(page.status, 404, "{base}{path}");
        }
        let (status, nowhere) = pat
            .fetch("GET", &format!("{base}/apps/no-such-app/"), None)
            .await;
        assert_eq!(status, 404);
        assert_eq!(nowhere["error"], "unknown_app");
    }

    // gus's groups grant `developer` in globex only: on acme, globex's app is still 404, and acme's
    // apps (the shared wiki too) are 403.
    let mut gus = portal.browser();
    gus.sign_in(&portal.acme, &portal.op.issuer, "gus", "/")
        .await;
    let (_, me) = gus
        .fetch("GET", &format!("{}/auth/session", portal.acme), None)
        .await;
    assert_eq!(me["roles"], json!([]));
    for (app, status, code) in [
        ("globex-ledger", 404, "unknown_app"),
        ("acme-tools", 403, "forbidden"),
        ("wiki", 403, "forbidden"),
    ] {
        let (got, body) = gus
            .fetch("GET", &format!("{}/apps/{app}/", portal.acme), None)
            .await;
        assert_eq!((got, body["error"].clone()), (status, json!(code)), "{app}");
    }

    assert_eq!(
        (portal.acme_app.hits(), portal.globex_app.hits()),
        hits,
        "no upstream saw a request it was not allowed"
    );
}

// 5 ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_unknown_host_gets_404_never_a_tenant() {
    let portal = Portal::start(Setup::default()).await;
    let mut browser = portal.browser();
    browser
        .sign_in(&portal.acme, &portal.op.issuer, "ann", "/")
        .await;
    let cookie = format!("portico_session={}", browser.session(&portal.acme).unwrap());
    let port = portal.port;

    for host in [
        format!("{UNKNOWN}:{port}"),
        format!("127.0.0.1:{port}"),
        // Listed with a port, so the bare name or another port is not acme.
        ACME.to_owned(),
        format!("{ACME}:1"),
        format!("evil-{ACME}:{port}"),
        format!("{ACME}.{EVIL}:{port}"),
        String::new(),
    ] {
        let page = portal
            .with_host(&host, "/")
            .header("cookie", &cookie)
            .header("accept", "text/html")
            .header("sec-fetch-mode", "navigate")
            // Forwarding headers never choose a tenant.
            .header("x-forwarded-host", format!("{ACME}:{port}"))
            .header("forwarded", format!("host=\"{ACME}:{port}\""))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::NOT_FOUND, "Host {host:?}");
        assert!(page.headers().get(LOCATION).is_none());
        let body = page.text().await.unwrap();
        assert!(body.contains("no portal is configured"), "{body}");
        for tenant in ["Acme Portal", "Globex Portal", "luigi", "acme-tools"] {
            assert!(!body.contains(tenant), "Host {host:?} shows `{tenant}`");
        }

        let config = portal
            .with_host(&host, "/shell/config.json")
            .header("cookie", &cookie)
            .header("x-forwarded-host", format!("{ACME}:{port}"))
            .send()
            .await
            .unwrap();
        json_error(config, 404, "unknown_host").await;

        let login = portal
            .with_host(&host, "/auth/login")
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(
            login.status(),
            StatusCode::NOT_FOUND,
            "no sign-in at {host:?}"
        );
    }
}

#[tokio::test]
async fn with_a_default_tenant_unknown_hosts_get_that_tenant_only() {
    let portal = Portal::start(Setup {
        default_tenant: Some("globex"),
        ..Setup::default()
    })
    .await;
    let port = portal.port;
    let unknown_hosts = [format!("{UNKNOWN}:{port}"), format!("127.0.0.1:{port}")];

    for host in &unknown_hosts {
        // Globex's door: a navigation is sent to sign in ...
        let page = portal
            .with_host(host, "/home")
            .header("accept", "text/html")
            .header("sec-fetch-mode", "navigate")
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::SEE_OTHER, "{host}");
        assert_eq!(page.headers()[LOCATION], "/auth/login?return_to=%2Fhome");
        // ... at globex's IdP client, returning to globex's public origin (not to this Host).
        let login = portal
            .with_host(host, "/auth/login")
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), StatusCode::SEE_OTHER);
        let query = query_of(login.headers()[LOCATION].to_str().unwrap());
        assert_eq!(query["client_id"], "globex-portal");
        assert_eq!(
            query["redirect_uri"],
            format!("{}/auth/callback", portal.globex)
        );
    }
    // Acme's own host is still acme.
    let login = portal.navigate(ACME, "/auth/login").send().await.unwrap();
    let query = query_of(login.headers()[LOCATION].to_str().unwrap());
    assert_eq!(query["client_id"], "acme-portal");

    // A globex session works through the default; an acme session does not become globex's.
    let mut browser = portal.browser();
    browser
        .sign_in(&portal.globex, portal.globex_issuer(), "gus", "/")
        .await;
    browser
        .sign_in(&portal.acme, &portal.op.issuer, "ann", "/")
        .await;
    let globex_cookie = format!(
        "portico_session={}",
        browser.session(&portal.globex).unwrap()
    );
    let acme_cookie = format!("portico_session={}", browser.session(&portal.acme).unwrap());
    for host in &unknown_hosts {
        let response = portal
            .with_host(host, "/shell/config.json")
            .header("cookie", &globex_cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let config: Value = response.json().await.unwrap();
        assert_eq!(
            sorted(segments(&app_nodes(&config))),
            ["globex-ledger", "wiki"]
        );
        assert!(config_text(&config).contains("Globex Wiki"));

        let response = portal
            .with_host(host, "/shell/config.json")
            .header("cookie", &acme_cookie)
            .send()
            .await
            .unwrap();
        json_error(response, 401, "not_signed_in").await;
        let response = portal
            .with_host(host, "/apps/acme-tools/")
            .header("cookie", &globex_cookie)
            .send()
            .await
            .unwrap();
        json_error(response, 404, "unknown_app").await;
    }
}

/// Sends raw HTTP/1.x bytes (reqwest would tidy the head up); returns the status and `Location`.
async fn raw_request(addr: SocketAddr, head: String) -> (u16, Option<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await.unwrap();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let response = tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .expect("raw request timed out");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    let location = response
        .lines()
        .take_while(|line| !line.is_empty())
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("location")
                .then(|| value.trim().to_owned())
        });
    (status, location)
}

/// The OAuth client a sign-in redirect is for, or `None` when there was no redirect.
fn client_of(location: Option<&str>) -> Option<String> {
    location.map(|location| query_of(location)["client_id"].clone())
}

#[tokio::test]
async fn a_request_naming_two_tenants_hosts_is_refused_not_guessed() {
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let portal = Portal::start(Setup {
        default_tenant: Some("globex"),
        ..Setup::default()
    })
    .await;
    let port = portal.port;
    let acme = format!("{ACME}:{port}");
    let globex = format!("{GLOBEX}:{port}");
    let unknown = format!("{UNKNOWN}:{port}");
    let h1 = |target: &str, hosts: &[&str]| {
        let mut head = format!("GET {target} HTTP/1.1\r\n");
        for host in hosts {
            head.push_str(&format!("Host: {host}\r\n"));
        }
        head.push_str("Accept: text/html\r\nConnection: close\r\n\r\n");
        raw_request(portal.addr, head)
    };

    // One name, or the same tenant twice: served as usual.
    let (status, location) = h1("/auth/login", &[&acme]).await;
    assert_eq!(status, 303);
    assert_eq!(client_of(location.as_deref()).unwrap(), "acme-portal");
    let (status, location) = h1(&format!("http://{acme}/auth/login"), &[&acme]).await;
    assert_eq!(status, 303, "absolute-form naming its own Host");
    assert_eq!(client_of(location.as_deref()).unwrap(), "acme-portal");
    let (status, location) = h1("/auth/login", &[&acme, &format!("{ACME_ALIAS}:{port}")]).await;
    assert_eq!(status, 303, "two names of acme");
    assert_eq!(client_of(location.as_deref()).unwrap(), "acme-portal");

    // Names of different tenants (the default tenant counts as one): 404, no tenant's sign-in.
    for (target, hosts) in [
        (
            "/auth/login".to_owned(),
            vec![acme.as_str(), globex.as_str()],
        ),
        (
            "/auth/login".to_owned(),
            vec![globex.as_str(), acme.as_str()],
        ),
        (
            "/auth/login".to_owned(),
            vec![acme.as_str(), unknown.as_str()],
        ),
        (format!("http://{globex}/auth/login"), vec![acme.as_str()]),
        (format!("http://{acme}/auth/login"), vec![unknown.as_str()]),
    ] {
        let (status, location) = h1(&target, &hosts).await;
        assert_eq!(status, 404, "GET {target} with Host {hosts:?}");
        assert_eq!(location, None, "GET {target} with Host {hosts:?}");
    }

    // HTTP/2: `:authority` names the tenant; a `host` header naming another one is refused.
    let stream = tokio::net::TcpStream::connect(portal.addr).await.unwrap();
    let (mut h2, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    for (host, expected) in [
        (None, Some("acme-portal")),
        (Some(acme.as_str()), Some("acme-portal")),
        (Some(globex.as_str()), None),
        (Some(unknown.as_str()), None),
    ] {
        let mut request = hyper::Request::get(format!("http://{acme}/auth/login"));
        if let Some(host) = host {
            request = request.header("host", host);
        }
        let request = request
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = tokio::time::timeout(Duration::from_secs(20), h2.send_request(request))
            .await
            .expect("HTTP/2 request timed out")
            .unwrap();
        let location = response
            .headers()
            .get(LOCATION)
            .map(|value| value.to_str().unwrap().to_owned());
        assert_eq!(
            client_of(location.as_deref()).as_deref(),
            expected,
            ":authority {acme}, host {host:?}"
        );
        let status = if expected.is_some() { 303 } else { 404 };
        assert_eq!(response.status().as_u16(), status, "host {host:?}");
    }
}

// 6 ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn absolute_urls_come_from_the_public_origin_never_from_host_or_forwarded_headers() {
    let portal = Portal::start(Setup::default()).await;
    let spoof = |request: reqwest::RequestBuilder| {
        request
            .header("x-forwarded-host", EVIL)
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-port", "443")
            .header("forwarded", format!("host={EVIL};proto=https"))
    };

    // The redirect_uri of the authorization request, from each host of each tenant.
    for (host, client_id, origin, issuer) in [
        (ACME, "acme-portal", &portal.acme, portal.op.issuer.as_str()),
        (ACME_ALIAS, "acme-portal", &portal.acme, &portal.op.issuer),
        (
            GLOBEX,
            "globex-portal",
            &portal.globex,
            portal.globex_issuer(),
        ),
    ] {
        let login = spoof(portal.navigate(host, "/auth/login?return_to=%2Fhome"))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), StatusCode::SEE_OTHER, "{host}");
        let authorize = login.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(authorize.starts_with(issuer), "{authorize}");
        assert!(!authorize.contains(EVIL), "{authorize}");
        let query = query_of(&authorize);
        assert_eq!(query["client_id"], client_id);
        assert_eq!(
            query["redirect_uri"],
            format!("{origin}/auth/callback"),
            "from {host}"
        );
        // The real OP agrees it is a registered redirect URI: it shows its login, not an error.
        let at_op = portal.http.get(&authorize).send().await.unwrap();
        assert_eq!(at_op.status(), StatusCode::SEE_OTHER, "{authorize}");
        let next = at_op.headers()[LOCATION].to_str().unwrap();
        assert!(next.starts_with("/interaction/"), "{next}");
    }

    let mut browser = portal.browser();
    browser
        .sign_in(&portal.acme, &portal.op.issuer, "ann", "/")
        .await;
    let session = browser.session(&portal.acme).unwrap();

    // The issuer of the identity assertion an app receives.
    let app = spoof(portal.api(ACME_ALIAS, "/apps/acme-tools/"))
        .header("cookie", format!("portico_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(app.status(), StatusCode::OK);
    let seen: Value = app.json().await.unwrap();
    assert_eq!(seen["assertion"]["iss"], portal.acme.as_str(), "{seen}");
    assert_eq!(seen["assertion"]["aud"], "acme-tools", "{seen}");

    // The post-logout redirect: signing out through the alias host with forged forwarding headers.
    let (_, config) = browser
        .fetch("GET", &format!("{}/shell/config.json", portal.acme), None)
        .await;
    let csrf = config["portico"]["csrfToken"].as_str().unwrap();
    let logout = spoof(
        portal
            .http
            .post(portal.url(ACME_ALIAS, "/auth/logout"))
            .header("cookie", format!("portico_session={session}"))
            .header("accept", "application/json")
            .header("sec-fetch-site", "same-origin")
            .header("x-portico-csrf", csrf),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    let body: Value = logout.json().await.unwrap();
    let redirect = body["redirect"].as_str().unwrap().to_owned();
    assert!(
        redirect.starts_with(&format!("{}/session/end", portal.op.issuer)),
        "{redirect}"
    );
    let query = query_of(&redirect);
    assert_eq!(
        query["post_logout_redirect_uri"],
        format!("{}/auth/signed-out", portal.acme)
    );
    assert_eq!(query["client_id"], "acme-portal");
    assert!(!redirect.contains(EVIL) && !redirect.contains(ACME_ALIAS));

    // The OP accepts it and sends the browser back to acme's public origin.
    let done = browser
        .confirm_logout_at_op(&redirect, &portal.op.issuer)
        .await;
    let back = done.location.expect("the OP returns the browser");
    assert!(
        back.starts_with(&format!("{}/auth/signed-out", portal.acme)),
        "{back}"
    );
    let page = browser.get(&back).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("signed out of Acme Portal"),
        "{}",
        page.body
    );
}

// 7 ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_cookie_portico_sets_is_host_only_on_both_tenants() {
    let portal = Portal::start(Setup::default()).await;
    let mut browser = portal.browser();
    for (base, issuer, app) in [
        (&portal.acme, portal.op.issuer.clone(), "acme-tools"),
        (
            &portal.globex,
            portal.globex_issuer().to_owned(),
            "globex-ledger",
        ),
    ] {
        browser.sign_in(base, &issuer, "pat", "/").await;
        // The app tries to set a cookie for all of `.test`.
        let page = browser.get(&format!("{base}/apps/{app}/")).await;
        assert_eq!(page.status, 200);
        let (_, config) = browser
            .fetch("GET", &format!("{base}/shell/config.json"), None)
            .await;
        let csrf = config["portico"]["csrfToken"].as_str().unwrap().to_owned();
        let (status, _) = browser
            .fetch("POST", &format!("{base}/auth/logout"), Some(&csrf))
            .await;
        assert_eq!(status, 200);
    }

    for (base, app, upstream) in [
        (&portal.acme, "acme-tools", "acme"),
        (&portal.globex, "globex-ledger", "globex"),
    ] {
        let set: Vec<&str> = browser
            .set_cookies
            .iter()
            .filter(|(url, _)| url.starts_with(base.as_str()))
            .map(|(_, cookie)| cookie.as_str())
            .collect();
        let named = |name: &str| -> Vec<&str> {
            set.iter()
                .copied()
                .filter(|cookie| cookie.starts_with(&format!("{name}=")))
                .collect()
        };
        // Not vacuous: the login binding, the session, their removals and the app's cookie were all set.
        assert!(named("portico_login").len() >= 2, "{base}: {set:?}");
        assert!(named("portico_session").len() >= 2, "{base}: {set:?}");
        assert_eq!(
            named(&format!("{upstream}-pref")).len(),
            1,
            "{base}: {set:?}"
        );
        for cookie in &set {
            let attributes: Vec<String> = cookie
                .split(';')
                .skip(1)
                .map(|attribute| attribute.trim().to_ascii_lowercase())
                .collect();
            assert!(
                !attributes.iter().any(|a| a.starts_with("domain")),
                "{base} set a cookie with a Domain: {cookie}"
            );
        }
        for cookie in named("portico_session") {
            assert!(
                cookie.contains("; Path=/;") && cookie.contains("HttpOnly"),
                "{cookie}"
            );
        }
        for cookie in named("portico_login") {
            assert!(cookie.contains("Path=/auth/callback"), "{cookie}");
        }
        let app_cookie = named(&format!("{upstream}-pref"))[0];
        assert!(
            app_cookie.contains(&format!("Path=/apps/{app}/")),
            "{app_cookie}"
        );
    }
}

// Dev sign-in, host names and cookies on a loopback portal ---------------------------------------

/// A loopback portal with dev sign-in: `acme` on `portal.acme.test` (also the default tenant) and
/// `secure` on `secure.acme.test`, whose `public_origin` is HTTPS (TLS ends in front of portico).
async fn dev_portal() -> crate::helpers::TestServer {
    let with_ann = |tenant: TenantYaml| {
        tenant
            .user(
                user("ann", &["acme-eng"])
                    .name("Ann")
                    .email("ann@acme.test"),
            )
            .role("developer", &["acme-eng"])
            .app(app("tools", &["developer"]).files("embedded:demo"))
    };
    config()
        .default_tenant("acme")
        .tenant(with_ann(tenant("acme", &["portal.acme.test"])))
        .tenant(with_ann(
            tenant("secure", &["secure.acme.test"]).public_origin("https://secure.acme.test"),
        ))
        .start()
        .await
}

/// `POST /auth/dev-login` as the picker's form would send it, with the given Host and Origin.
async fn dev_login(
    server: &crate::helpers::TestServer,
    host: &str,
    origin: &str,
) -> reqwest::Response {
    server
        .post("/auth/dev-login")
        .header("host", host)
        .header("origin", origin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=ann&return_to=%2Fhome")
        .send()
        .await
        .unwrap()
}

/// The `name=value` of the cookie `name` a response sets, if any.
fn set_cookie_named(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(|value| value.split(';').next().unwrap_or_default().to_owned())
        .find(|pair| pair.starts_with(&format!("{name}=")) && pair.len() > name.len() + 1)
}

#[tokio::test]
async fn dev_sign_in_answers_only_on_host_names_the_tenant_lists() {
    let server = dev_portal().await;
    let (logs, _guard) = Logs::capture();
    // DNS rebinding: a page on evil.example re-resolves its name to 127.0.0.1, so the browser sends
    // that name as Host and Origin, which agree with each other; the default tenant would answer.
    let rebound = format!("{EVIL}:{}", server.addr.port());
    let response = dev_login(&server, &rebound, &format!("http://{rebound}")).await;
    assert!(set_cookie_named(&response, "portico_session").is_none());
    json_error(response, 403, "dev_sign_in_refused").await;
    let picker = server
        .get("/auth/login")
        .header("host", &rebound)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(picker.status(), StatusCode::FORBIDDEN);
    assert!(
        !picker.text().await.unwrap().contains("ann"),
        "no user picker"
    );
    let refused = logs.audit("sign_in");
    assert!(
        refused
            .iter()
            .any(|event| event["outcome"] == "failure" && event["tenant"] == "acme"),
        "{refused:?}"
    );
    // What the default tenant still answers a foreign name with is only the way to sign in, which
    // then refuses: no session, nothing of the tenant's apps.
    let shell = server
        .get("/shell/config.json")
        .header("host", &rebound)
        .send()
        .await
        .unwrap();
    json_error(shell, 401, "not_signed_in").await;

    // On its own name, with or without the port, dev sign-in works.
    let own = format!("portal.acme.test:{}", server.addr.port());
    let response = dev_login(&server, &own, &format!("http://{own}")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie_named(&response, "portico_session").is_some());
    let picker = server
        .get("/auth/login")
        .header("host", "portal.acme.test")
        .send()
        .await
        .unwrap();
    assert_eq!(picker.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_https_tenant_refuses_state_changes_from_its_plain_http_origin() {
    let server = dev_portal().await;
    let host = "secure.acme.test";
    // A plain-HTTP page on the same name (anyone on the network path can write one) is another origin.
    let response = dev_login(&server, host, "http://secure.acme.test").await;
    json_error(response, 403, "csrf_rejected").await;

    let response = dev_login(&server, host, "https://secure.acme.test").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie_named(&response, "portico_session").is_none());
    let cookie = set_cookie_named(&response, "__Host-portico_session")
        .expect("an https tenant's session cookie has the __Host- prefix");
    let config: Value = server
        .get("/shell/config.json")
        .header("host", host)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = config["portico"]["csrfToken"].as_str().unwrap().to_owned();
    let logout = |origin: &'static str| {
        server
            .post("/auth/logout")
            .header("host", host)
            .header("origin", origin)
            .header("cookie", &cookie)
            .header("x-portico-csrf", &token)
            .send()
    };
    json_error(
        logout("http://secure.acme.test").await.unwrap(),
        403,
        "csrf_rejected",
    )
    .await;
    let still = server
        .get("/auth/session")
        .header("host", host)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), StatusCode::OK, "the session survived");
    // A Sec-Fetch-Site no browser would send (not ASCII) is cross-site, whatever the Origin says.
    let garbled = server
        .post("/auth/logout")
        .header("host", host)
        .header("origin", "https://secure.acme.test")
        .header(
            "sec-fetch-site",
            reqwest::header::HeaderValue::from_bytes(b"same-origin\xff").unwrap(),
        )
        .header("cookie", &cookie)
        .header("x-portico-csrf", &token)
        .send()
        .await
        .unwrap();
    json_error(garbled, 403, "csrf_rejected").await;
    let out = logout("https://secure.acme.test").await.unwrap();
    assert_eq!(out.status(), StatusCode::OK);
    assert!(
        out.headers().get_all(SET_COOKIE).iter().any(|value| value
            .to_str()
            .unwrap()
            .starts_with("__Host-portico_session=;")),
        "the __Host- cookie is cleared"
    );
}

#[tokio::test]
async fn a_duplicate_session_cookie_is_refused_and_audited_not_resolved() {
    let server = dev_portal().await;
    let (logs, _guard) = Logs::capture();
    let host = "portal.acme.test";
    let sign_in = || async {
        let response = dev_login(&server, host, "http://portal.acme.test").await;
        set_cookie_named(&response, "portico_session").expect("a session")
    };
    let (mine, planted) = (sign_in().await, sign_in().await);
    let session = |cookies: &[&str]| {
        let mut request = server.get("/auth/session").header("host", host);
        for cookie in cookies {
            request = request.header("cookie", *cookie);
        }
        request.send()
    };
    assert_eq!(session(&[&mine]).await.unwrap().status(), StatusCode::OK);
    // Both in one header, either order, and split over two Cookie headers: refused every time.
    let both = format!("{mine}; theme=dark; {planted}");
    let reversed = format!("{planted}; {mine}");
    for cookies in [
        vec![both.as_str()],
        vec![reversed.as_str()],
        vec![&mine, &planted],
    ] {
        let response = session(&cookies).await.unwrap();
        let body = json_error(response, 400, "duplicate_session_cookie").await;
        assert!(
            body["message"].as_str().unwrap().contains("more than one"),
            "{body}"
        );
    }
    // A browser navigation gets a readable page, not a sign-in loop.
    let page = server
        .get("/")
        .header("host", host)
        .header("accept", "text/html")
        .header("sec-fetch-mode", "navigate")
        .header("cookie", &both)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("more than one portal session cookie")
    );
    let audited = logs.audit("duplicate_session_cookie");
    assert_eq!(audited.len(), 4, "{audited:?}");
    assert_eq!(audited[0]["tenant"], "acme");
    assert_eq!(audited[0]["outcome"], "refused");
    assert!(
        !logs.text().contains(mine.split('=').nth(1).unwrap()),
        "no session id in the log"
    );
}
