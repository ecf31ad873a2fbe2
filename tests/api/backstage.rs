//! portico's `/backstage/api/…` mount against a real Backstage backend: catalog, auth with the
//! `oauth2Proxy` provider, proxy, and a `whoami` test plugin that echoes who Backstage thinks the caller is
//! and which headers reached it (tests/backstage/index.js). One backend serves every test in this file; it
//! is started on first use by tests/backstage/start.mjs (about 4–8 s) and stops when this test binary exits.
//! Install it first with `scripts/install-backstage.sh` (about 2–3 minutes the first time).

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};

use crate::helpers::{
    ConfigYaml, Session, TestServer, client, config, json_error, json_error_of, oidc_client,
    raw_get, tenant, user,
};

/// The full-access static token in tests/backstage/app-config.yaml (subject `portico`).
const SERVICE_TOKEN: &str = "portico-service-token-for-tests";
/// How long start.mjs may take to print its ready line (it gives up itself after 120 s).
const START_TIMEOUT: Duration = Duration::from_secs(150);

/// The running test backend; its process lives as long as this test binary.
pub(crate) struct Backstage {
    pub(crate) url: String,
    token: String,
    /// Where Backstage fetches the JWKS of portico's signed service tokens (tests/backstage/app-config.yaml).
    jwks_port: u16,
    /// A key the `portico` auth provider trusts (a PEM file), and the directory of every key it trusts.
    pub(crate) sign_in_key: std::path::PathBuf,
    pub(crate) keys_dir: std::path::PathBuf,
    /// Never dropped: when the test binary exits, the pipe closes and start.mjs stops the backend.
    _process: Child,
    _stdin: ChildStdin,
}

static BACKSTAGE: OnceLock<Result<Backstage, String>> = OnceLock::new();

/// The shared backend, started on first use. A failed start fails every test here with the same reason.
pub(crate) fn backstage() -> &'static Backstage {
    match BACKSTAGE.get_or_init(start_backstage) {
        Ok(backstage) => backstage,
        Err(reason) => panic!("{reason}"),
    }
}

fn start_backstage() -> Result<Backstage, String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let fixture = format!("{root}/tests/backstage");
    if !std::path::Path::new(&format!(
        "{fixture}/node_modules/@backstage/backend-defaults"
    ))
    .exists()
    {
        return Err(format!(
            "the test Backstage backend is not installed: run scripts/install-backstage.sh \
             (it fills {fixture}/node_modules)"
        ));
    }
    let mut process = Command::new("node")
        .arg(format!("{fixture}/start.mjs"))
        .current_dir(root)
        // Backstage logs every request at `info`; keep test output readable unless asked otherwise.
        .env(
            "LOG_LEVEL",
            std::env::var("LOG_LEVEL").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|error| format!("node must be installed to run the test Backstage: {error}"))?;
    let stdin = process.stdin.take().ok_or("no stdin pipe")?;
    let stdout = process.stdout.take().ok_or("no stdout pipe")?;
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = sender.send(line);
    });
    let line = receiver.recv_timeout(START_TIMEOUT).map_err(|_| {
        format!(
            "the test Backstage did not start within {} s",
            START_TIMEOUT.as_secs()
        )
    })?;
    let started: Value = serde_json::from_str(&line).map_err(|_| {
        format!("start.mjs did not start Backstage (its stderr is above); it said: {line:?}")
    })?;
    Ok(Backstage {
        url: started["url"].as_str().ok_or("no url")?.to_owned(),
        token: started["token"].as_str().ok_or("no token")?.to_owned(),
        jwks_port: started["jwks_port"]
            .as_u64()
            .and_then(|port| u16::try_from(port).ok())
            .ok_or("no jwks_port")?,
        sign_in_key: started["sign_in_key"]
            .as_str()
            .ok_or("no sign_in_key")?
            .into(),
        keys_dir: started["keys_dir"].as_str().ok_or("no keys_dir")?.into(),
        _process: process,
        _stdin: stdin,
    })
}

/// A portal (tenant `acme` on 127.0.0.1) whose users are also Backstage catalog users, with `backstage`
/// as the tenant's `backstage:` block (a YAML flow mapping). The tests here are about the `oauth2Proxy`
/// sign-in (and service identities): a block that does not say `sign_in` gets `sign_in: oauth2_proxy`,
/// since the test backend has portico's own provider too (tests/api/backstage_rbac.rs tests that one).
fn portal_config(backstage: &str) -> ConfigYaml {
    let backstage = match backstage.strip_suffix('}') {
        Some(open) if !backstage.contains("sign_in") => format!("{open}, sign_in: oauth2_proxy }}"),
        _ => backstage.to_owned(),
    };
    let backstage = backstage.as_str();
    let mut acme = tenant("acme", &["127.0.0.1"]);
    for (id, email) in [
        ("alice", "alice@acme.example"),
        ("bob", "bob@acme.example"),
        ("hank", "hank@globex.example"),
        ("zed", "zed@nowhere.example"),
        // One portal user per test that counts sign-ins to Backstage (the backend is shared by tests
        // running in parallel). Backstage finds them by email, as it finds alice and bob.
        ("cache-alice", "alice@acme.example"),
        ("retry-alice", "alice@acme.example"),
        ("spoof-bob", "bob@acme.example"),
        ("svc-bob", "bob@acme.example"),
        ("cookie-bob", "bob@acme.example"),
    ] {
        acme = acme.user(user(id, &["acme-eng"]).email(email));
    }
    config().tenant(
        acme.role("developer", &["acme-eng"])
            .app(docs())
            .backstage(backstage),
    )
}

/// The app every Backstage portal has (a tenant needs one); the tests here never open it.
fn docs() -> crate::helpers::AppYaml {
    crate::helpers::app("docs", &["developer"]).files("embedded:demo")
}

fn portal_yaml(backstage: &str) -> String {
    portal_config(backstage).yaml()
}

async fn portal(backstage: &str) -> TestServer {
    portal_config(backstage).start().await
}

/// A portal that calls the shared backend as the signed-in user, with `plugins` allow-listed. Its
/// catalog is not scoped; its users are signed in to Backstage in namespace `acme`.
pub(crate) async fn user_portal(plugins: &str) -> TestServer {
    let url = &backstage().url;
    portal(&format!(
        "{{ url: \"{url}\", identity: user, plugins: {plugins}, user_namespace: acme }}"
    ))
    .await
}

/// A portal that calls the shared backend with the static service token.
async fn service_portal(plugins: &str) -> TestServer {
    let backstage = backstage();
    let (url, token) = (&backstage.url, &backstage.token);
    portal(&format!(
        "{{ url: \"{url}\", identity: service, service_token: \"{token}\", plugins: {plugins} }}"
    ))
    .await
}

/// `GET <path>` as an API client holding `session`, with extra headers.
async fn api_get(
    server: &TestServer,
    session: &Session,
    path: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = server
        .get(path)
        .header("accept", "application/json")
        .header("cookie", &session.cookie);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// `GET <path>` as `session` must be refused with portico's JSON error `status`/`code`; its body.
async fn get_refused(
    server: &TestServer,
    session: &Session,
    path: &str,
    status: u16,
    code: &str,
) -> Value {
    let response = api_get(server, session, path, &[]).await;
    json_error_of(&format!("GET {path}"), response, status, code).await
}

/// The JSON body of a response that must be 200.
async fn ok_json(response: reqwest::Response) -> Value {
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "body: {body}");
    serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

/// The JSON body of `GET <path>` as an API client holding `session`, which must be 200.
async fn get_ok(server: &TestServer, session: &Session, path: &str) -> Value {
    ok_json(api_get(server, session, path, &[]).await).await
}

/// What Backstage's `whoami` test plugin saw for `GET /backstage/api/whoami<rest>`.
async fn whoami(server: &TestServer, session: &Session, rest: &str) -> Value {
    get_ok(server, session, &format!("/backstage/api/whoami{rest}")).await
}

/// The Backstage entity ref of the user token the backend received (its `sub` claim).
fn user_of(seen: &Value) -> &str {
    assert_eq!(
        seen["principal"]["type"], "user",
        "a user principal: {seen}"
    );
    let user = seen["principal"]["userEntityRef"].as_str().unwrap();
    assert_eq!(
        seen["token"]["sub"], user,
        "the token's sub is the principal"
    );
    user
}

fn fingerprint(seen: &Value) -> String {
    seen["token"]["fingerprint"].as_str().unwrap().to_owned()
}

/// No credential or identity header the client sent may reach Backstage.
fn assert_no_client_identity(seen: &Value) {
    let headers = seen["headers"].as_object().unwrap();
    for name in [
        "x-forwarded-user",
        "x-forwarded-email",
        "x-forwarded-preferred-username",
        "x-oauth2-proxy-id-token",
    ] {
        assert!(
            !headers.contains_key(name),
            "{name} reached Backstage: {seen}"
        );
    }
    let cookies = headers.get("cookie").and_then(Value::as_str).unwrap_or("");
    assert!(
        !cookies.contains("portico_session"),
        "portico's session cookie reached Backstage: {cookies}"
    );
}

/// The calls of Backstage's oauth2Proxy sign-in endpoint made for portal user `id` (recorded by the
/// fixture before Backstage handled them), oldest first.
pub(crate) async fn sign_ins_of(id: &str) -> Vec<Value> {
    let response = client()
        .get(format!("{}/api/whoami/sign-ins", backstage().url))
        .bearer_auth(SERVICE_TOKEN)
        .send()
        .await
        .unwrap();
    let all = ok_json(response).await;
    all.as_array()
        .unwrap()
        .iter()
        .filter(|call| call["headers"]["x-forwarded-user"] == format!("acme/{id}").as_str())
        .cloned()
        .collect()
}

/// A sign-in call carries exactly the portal user's identity, as the contract says, and nothing else:
/// the user named inside the tenant's user namespace `acme`, and the (verified) email.
fn assert_sign_in_headers(call: &Value, id: &str, email: &str) {
    let headers = &call["headers"];
    assert_eq!(headers["x-forwarded-user"], format!("acme/{id}"), "{call}");
    assert_eq!(headers["x-forwarded-email"], email, "{call}");
    for name in [
        "authorization",
        "x-oauth2-proxy-id-token",
        "x-forwarded-preferred-username",
    ] {
        assert!(headers.get(name).is_none(), "{name} in {call}");
    }
    let cookies = headers.get("cookie").and_then(Value::as_str).unwrap_or("");
    assert!(!cookies.contains("portico_session"), "{call}");
}

/// A Backstage user token for `user`, obtained from the backend directly (as an attacker who can reach it
/// would); the bearer token a client might try to smuggle through portico.
async fn token_from_backend(user: &str, email: &str) -> String {
    let response = client()
        .get(format!("{}/api/auth/oauth2Proxy/refresh", backstage().url))
        .header("x-forwarded-user", user)
        .header("x-forwarded-email", email)
        .send()
        .await
        .unwrap();
    let body = ok_json(response).await;
    body["backstageIdentity"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// An unsigned (`alg: none`) JWT claiming `email`: the oauth2Proxy provider only decodes this header.
fn unsigned_id_token(email: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "typ": "JWT" }).to_string());
    let claims = URL_SAFE_NO_PAD
        .encode(json!({ "sub": email, "email": email, "preferred_username": "alice" }).to_string());
    format!("{header}.{claims}.")
}

#[tokio::test]
async fn backstage_user_mode_reads_the_catalog_as_the_signed_in_user() {
    let server = user_portal("[catalog, whoami]").await;
    let alice = server.sign_in("alice").await;

    let entity = get_ok(
        &server,
        &alice,
        "/backstage/api/catalog/entities/by-name/user/acme/alice",
    )
    .await;
    assert_eq!(entity["kind"], "User");
    assert_eq!(entity["metadata"]["namespace"], "acme");
    assert_eq!(entity["spec"]["profile"]["email"], "alice@acme.example");

    // The query string reaches the catalog unchanged.
    let components = get_ok(&server, &alice, "/backstage/api/catalog/entities?filter=kind=component,metadata.namespace=acme&fields=metadata.name").await;
    let mut names: Vec<&str> = components
        .as_array()
        .unwrap()
        .iter()
        .map(|entity| entity["metadata"]["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["billing-ui", "payments-api"]);
    let missing = api_get(
        &server,
        &alice,
        "/backstage/api/catalog/entities/by-name/component/acme/no-such-thing",
        &[],
    )
    .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND, "Backstage's 404");

    // Backstage sees alice's own user token, issued by this backend, and nothing of portico's.
    let seen = whoami(&server, &alice, "/deep/path?x=1&y=two").await;
    assert_eq!(user_of(&seen), "user:acme/alice");
    assert_eq!(
        seen["token"]["iss"],
        format!("{}/api/auth", backstage().url)
    );
    assert_eq!(seen["path"], "/deep/path");
    assert_eq!(seen["query"], json!({ "x": "1", "y": "two" }));
    assert_no_client_identity(&seen);

    // Every user is themselves, inside the tenant's user namespace only: hank's address is a globex
    // catalog user's, which this tenant cannot sign anyone in as.
    let bob = server.sign_in("bob").await;
    assert_eq!(user_of(&whoami(&server, &bob, "").await), "user:acme/bob");
    let hank = server.sign_in("hank").await;
    get_refused(
        &server,
        &hank,
        "/backstage/api/whoami",
        502,
        "backstage_sign_in_refused",
    )
    .await;
}

#[tokio::test]
async fn backstage_user_tokens_are_cached_per_session() {
    let server = user_portal("[catalog, whoami]").await;
    let first = server.sign_in("cache-alice").await;
    assert!(
        sign_ins_of("cache-alice").await.is_empty(),
        "no sign-in yet"
    );
    let seen = whoami(&server, &first, "").await;
    assert_eq!(user_of(&seen), "user:acme/alice");
    let token = fingerprint(&seen);
    // ES256 signatures are randomised, so a fresh sign-in to Backstage always gives a different token.
    assert_eq!(fingerprint(&whoami(&server, &first, "").await), token);
    assert_eq!(fingerprint(&whoami(&server, &first, "/again").await), token);
    get_ok(
        &server,
        &first,
        "/backstage/api/catalog/entities/by-name/user/acme/alice",
    )
    .await;
    let calls = sign_ins_of("cache-alice").await;
    assert_eq!(calls.len(), 1, "one sign-in for four requests: {calls:?}");
    assert_sign_in_headers(&calls[0], "cache-alice", "alice@acme.example");

    let second = server.sign_in("cache-alice").await;
    let other = whoami(&server, &second, "").await;
    assert_eq!(user_of(&other), "user:acme/alice");
    assert_ne!(fingerprint(&other), token, "another session, another token");
    assert_eq!(sign_ins_of("cache-alice").await.len(), 2);
    assert_eq!(fingerprint(&whoami(&server, &first, "").await), token);
}

#[tokio::test]
async fn backstage_service_mode_sends_the_static_token() {
    let server = service_portal("[catalog, whoami]").await;
    let bob = server.sign_in("svc-bob").await;
    assert_service_reads_the_catalog(&server, &bob, "portico").await;

    // A client-sent user token does not replace the service token.
    let alice_token = token_from_backend("acme/alice", "alice@acme.example").await;
    let bearer = format!("Bearer {alice_token}");
    let smuggled = ok_json(
        api_get(
            &server,
            &bob,
            "/backstage/api/whoami",
            &[("authorization", bearer.as_str())],
        )
        .await,
    )
    .await;
    assert_eq!(smuggled["principal"]["type"], "service", "{smuggled}");
    assert!(
        sign_ins_of("svc-bob").await.is_empty(),
        "no user sign-in in service mode"
    );
}

/// Backstage sees the service `subject` (and nothing of the client's identity), which reads the catalog.
async fn assert_service_reads_the_catalog(server: &TestServer, session: &Session, subject: &str) {
    let seen = whoami(server, session, "").await;
    assert_eq!(
        seen["principal"],
        json!({ "type": "service", "subject": subject }),
        "{seen}"
    );
    assert_no_client_identity(&seen);
    let entity = get_ok(
        server,
        session,
        "/backstage/api/catalog/entities/by-name/component/globex/inventory-api",
    )
    .await;
    assert_eq!(entity["spec"]["owner"], "group:ops");
}

/// `service_token: signed`: portico signs its own one-minute token, and Backstage verifies it against
/// portico's JWKS (`externalAccess` of type `jwks`): no secret is shared. A token signed with a key that
/// portico does not publish where Backstage looks is refused by Backstage itself, though it says the
/// same issuer, audience and subject.
#[tokio::test]
async fn backstage_accepts_the_service_tokens_portico_signs_and_no_others() {
    let url = &backstage().url;
    let block = format!(
        "{{ url: \"{url}\", identity: service, service_token: signed, plugins: [catalog, whoami] }}"
    );
    // The portico whose JWKS Backstage trusts listens where Backstage fetches it, with a key of its own.
    let dir = tempfile::tempdir().unwrap();
    let key = crate::scale_out::write_signing_key(dir.path());
    let yaml = portal_config(&block)
        .top(&format!(
            "server: {{ listen: \"127.0.0.1:{}\", signing_keys: [\"{}\"] }}",
            backstage().jwks_port,
            key.display()
        ))
        .yaml();
    let mut config = crate::helpers::compile(&yaml, dir.path());
    config.server.admin_listen = None;
    let app = portico::app::App::build(config)
        .await
        .expect("portico starts on the JWKS port");
    let server = TestServer {
        addr: app.local_addr(),
        client: client(),
    };
    tokio::spawn(app.run());
    let bob = server.sign_in("svc-bob").await;
    // Backstage verified portico's token: it names the caller as its `jwks` entries do.
    assert_service_reads_the_catalog(&server, &bob, "external:portico").await;

    // Another portico, with a generated key: the same claims, a signature Backstage cannot verify.
    let impostor = portal(&block).await;
    let bob = impostor.sign_in("svc-bob").await;
    let refused = api_get(&impostor, &bob, "/backstage/api/whoami", &[]).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn backstage_plugins_default_to_the_catalog_only() {
    let url = &backstage().url;
    let server = portal(&format!("{{ url: \"{url}\", user_namespace: acme }}")).await;
    let alice = server.sign_in("alice").await;
    let entity = get_ok(
        &server,
        &alice,
        "/backstage/api/catalog/entities/by-name/group/acme/platform",
    )
    .await;
    assert_eq!(entity["kind"], "Group");
    get_refused(
        &server,
        &alice,
        "/backstage/api/whoami",
        403,
        "backstage_plugin_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn backstage_ignores_identity_headers_and_tokens_the_client_sends() {
    let server = user_portal("[catalog, whoami]").await;
    let alice_token = token_from_backend("acme/alice", "alice@acme.example").await;
    let bearer = format!("Bearer {alice_token}");
    let id_token = format!("Bearer {}", unsigned_id_token("alice@acme.example"));
    let spoofed: [(&str, &str); 5] = [
        ("authorization", &bearer),
        ("x-forwarded-user", "alice"),
        ("x-forwarded-email", "alice@acme.example"),
        ("x-forwarded-preferred-username", "alice"),
        ("x-oauth2-proxy-id-token", &id_token),
    ];

    // The first request of bob's session is the one that signs him in to Backstage: the spoofed headers
    // must not reach that sign-in either.
    let bob = server.sign_in("spoof-bob").await;
    let seen = ok_json(api_get(&server, &bob, "/backstage/api/whoami", &spoofed).await).await;
    assert_eq!(user_of(&seen), "user:acme/bob");
    assert_ne!(
        seen["token"]["fingerprint"],
        whoami_fingerprint_of(&alice_token).await,
        "alice's token reached Backstage"
    );
    assert_no_client_identity(&seen);

    // Also once bob's Backstage token is cached, and on the catalog.
    let again = ok_json(api_get(&server, &bob, "/backstage/api/whoami", &spoofed).await).await;
    assert_eq!(user_of(&again), "user:acme/bob");
    assert_no_client_identity(&again);
    let entity = ok_json(
        api_get(
            &server,
            &bob,
            "/backstage/api/catalog/entities/by-name/user/acme/bob",
            &spoofed,
        )
        .await,
    )
    .await;
    assert_eq!(entity["metadata"]["name"], "bob");
    let calls = sign_ins_of("spoof-bob").await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_sign_in_headers(&calls[0], "spoof-bob", "bob@acme.example");
}

/// The Backstage mount is an API, not an app: the browser's cookies (other apps' cookies, on the shared
/// origin) never reach Backstage, and neither a cookie a Backstage plugin sets nor Backstage's
/// origin-wide headers (HSTS) reach the browser.
#[tokio::test]
async fn backstage_neither_receives_nor_sets_browser_cookies() {
    let server = user_portal("[catalog, whoami]").await;
    let bob = server.sign_in("cookie-bob").await;
    let app_cookies = format!("{}; app_sid=secret-of-another-app", bob.cookie);
    let response = server
        .get("/backstage/api/whoami?set-cookie=plugin_sid%3Dx")
        .header("accept", "application/json")
        .header("cookie", &app_cookies)
        .send()
        .await
        .unwrap();
    assert!(
        response.headers().get("set-cookie").is_none(),
        "a Backstage cookie reached the browser: {:?}",
        response.headers().get_all("set-cookie")
    );
    // Backstage's helmet defaults send HSTS with includeSubDomains: how browsers reach the portal's
    // host is the platform's decision, not a mounted backend's.
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none(),
        "Backstage's HSTS reached the browser"
    );
    let seen = ok_json(response).await;
    assert_eq!(user_of(&seen), "user:acme/bob");
    assert_eq!(
        seen["headers"].get("cookie"),
        None,
        "browser cookies reached Backstage: {seen}"
    );
}

/// The whoami plugin's fingerprint of a token, computed by the plugin itself (so the test needs no
/// hashing crate): the token sent straight to the backend.
async fn whoami_fingerprint_of(token: &str) -> Value {
    let url = format!("{}/api/whoami", backstage().url);
    let seen = ok_json(client().get(url).bearer_auth(token).send().await.unwrap()).await;
    seen["token"]["fingerprint"].clone()
}

#[tokio::test]
async fn backstage_plugins_outside_the_allow_list_and_auth_are_refused() {
    let server = user_portal("[catalog, whoami]").await;
    let alice = server.sign_in("alice").await;
    for path in [
        // Real plugins of this backend, not listed: Backstage would answer them.
        "/backstage/api/proxy/self-catalog/entities",
        "/backstage/api/auth/oauth2Proxy/refresh",
        "/backstage/api/auth/v1/userinfo",
        "/backstage/api/auth",
        "/backstage/api/search/query?term=x",
        // Express matches routes case-insensitively; portico must not.
        "/backstage/api/AUTH/oauth2Proxy/refresh",
        "/backstage/api/Catalog/entities",
    ] {
        let body = get_refused(&server, &alice, path, 403, "backstage_plugin_not_allowed").await;
        assert!(body.get("backstageIdentity").is_none(), "{path}: {body}");
    }
    // A POST to the sign-in endpoint, with a valid same-origin proof, is refused too.
    let refresh = server
        .post("/backstage/api/auth/oauth2Proxy/refresh")
        .header("accept", "application/json")
        .header("cookie", &alice.cookie)
        .header("origin", server.origin())
        .header("x-forwarded-user", "guest")
        .send()
        .await
        .unwrap();
    json_error(refresh, 403, "backstage_plugin_not_allowed").await;

    // Path tricks from an allowed plugin into auth never reach the sign-in endpoint.
    for target in [
        "/backstage/api/whoami/../auth/oauth2Proxy/refresh",
        "/backstage/api/whoami/%2e%2e/auth/oauth2Proxy/refresh",
        "/backstage/api/whoami/..%2fauth/oauth2Proxy/refresh",
        "/backstage/api/catalog/%2e%2e%2fauth/oauth2Proxy/refresh",
        "/backstage/api/whoami%2f..%2fauth/oauth2Proxy/refresh",
        "/backstage/api/%61uth/oauth2Proxy/refresh",
    ] {
        let response = raw_get(server.addr, target, Some(&alice.cookie)).await;
        let body = String::from_utf8_lossy(&response.body);
        assert!(
            !body.contains("backstageIdentity") && !body.contains("\"principal\""),
            "{target} reached Backstage: {} {body}",
            response.status
        );
        assert!(
            matches!(response.status, 400 | 403 | 404),
            "{target}: {} {body}",
            response.status
        );
    }
}

#[tokio::test]
async fn backstage_auth_plugin_cannot_be_allow_listed() {
    let url = &backstage().url;
    let yaml = portal_yaml(&format!(
        "{{ url: \"{url}\", identity: user, plugins: [catalog, auth] }}"
    ));
    let dir = tempfile::tempdir().unwrap();
    match portico::config::load_str(&portico::config::OsSource, "test.yaml", &yaml, dir.path()) {
        // Rejected when the config is checked...
        Err(error) => assert!(error.to_string().contains("auth"), "{error}"),
        // ... or accepted and still never reachable.
        Ok(loaded) => {
            let server = TestServer::start(loaded.config).await;
            let alice = server.sign_in("alice").await;
            get_refused(
                &server,
                &alice,
                "/backstage/api/auth/oauth2Proxy/refresh",
                403,
                "backstage_plugin_not_allowed",
            )
            .await;
        }
    }
}

#[tokio::test]
async fn backstage_without_a_session_is_401_for_api_clients_and_sign_in_for_browsers() {
    let server = user_portal("[catalog, whoami]").await;
    let api = server
        .get("/backstage/api/catalog/entities")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    json_error(api, 401, "not_signed_in").await;

    // Client-made identity headers do not sign anyone in.
    let spoofed = server
        .get("/backstage/api/whoami")
        .header("accept", "application/json")
        .header("x-forwarded-user", "alice")
        .header("x-forwarded-email", "alice@acme.example")
        .header("authorization", format!("Bearer {SERVICE_TOKEN}"))
        .send()
        .await
        .unwrap();
    json_error(spoofed, 401, "not_signed_in").await;

    let forged = server
        .get("/backstage/api/whoami")
        .header("accept", "application/json")
        .header("cookie", "portico_session=forged-session-id")
        .send()
        .await
        .unwrap();
    json_error(forged, 401, "not_signed_in").await;

    let browser = server
        .get("/backstage/api/catalog/entities")
        .header("sec-fetch-mode", "navigate")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(browser.status(), StatusCode::SEE_OTHER);
    let location = browser.headers()[LOCATION].to_str().unwrap();
    assert!(location.starts_with("/auth/login"), "{location}");
}

#[tokio::test]
async fn backstage_down_is_502_upstream_unreachable() {
    // A loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    for block in [
        format!("{{ url: \"{url}\", identity: user, plugins: [catalog] }}"),
        format!(
            "{{ url: \"{url}\", identity: service, service_token: \"{SERVICE_TOKEN}\", plugins: [catalog] }}"
        ),
    ] {
        let server = portal(&block).await;
        let alice = server.sign_in("alice").await;
        get_refused(
            &server,
            &alice,
            "/backstage/api/catalog/entities",
            502,
            "upstream_unreachable",
        )
        .await;
    }
}

#[tokio::test]
async fn backstage_user_unknown_to_the_catalog_gets_a_json_502() {
    let server = user_portal("[catalog, whoami]").await;
    let zed = server.sign_in("zed").await;
    let body = get_refused(
        &server,
        &zed,
        "/backstage/api/whoami",
        502,
        "backstage_sign_in_refused",
    )
    .await;
    assert!(
        !body.to_string().contains("backstageIdentity"),
        "no Backstage identity leaks: {body}"
    );
}

#[tokio::test]
async fn backstage_token_rejected_by_backstage_is_renewed_once_for_bodyless_requests() {
    let server = user_portal("[catalog, whoami]").await;
    let alice = server.sign_in("retry-alice").await;
    let first = fingerprint(&whoami(&server, &alice, "").await);
    assert_eq!(sign_ins_of("retry-alice").await.len(), 1);

    // The fixture's whoami plugin now answers 401 to that token, as Backstage does to a token signed
    // with keys it no longer has (after a restart).
    let revoked = whoami(&server, &alice, "/revoke").await;
    assert_eq!(revoked["revoked"], first.as_str());
    let renewed = whoami(&server, &alice, "").await;
    assert_eq!(user_of(&renewed), "user:acme/alice");
    let second = fingerprint(&renewed);
    assert_ne!(second, first, "a new token after the 401");
    assert_eq!(
        fingerprint(&whoami(&server, &alice, "").await),
        second,
        "the renewed token is cached"
    );
    let calls = sign_ins_of("retry-alice").await;
    assert_eq!(calls.len(), 2, "one sign-in more for the 401: {calls:?}");
    assert_sign_in_headers(&calls[1], "retry-alice", "alice@acme.example");

    // A request with a body is not replayed: the client sees Backstage's 401.
    let csrf = server.shell_config(&alice).await["portico"]["csrfToken"]
        .as_str()
        .unwrap()
        .to_owned();
    whoami(&server, &alice, "/revoke").await;
    let with_body = server
        .post("/backstage/api/whoami")
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .header("cookie", &alice.cookie)
        .header("x-portico-csrf", &csrf)
        .body(r#"{"hello":"backstage"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(with_body.status(), StatusCode::UNAUTHORIZED);
    // The next bodyless request signs in again and works.
    let after = whoami(&server, &alice, "").await;
    assert_eq!(user_of(&after), "user:acme/alice");
    assert_ne!(fingerprint(&after), second);
    assert_eq!(sign_ins_of("retry-alice").await.len(), 3);
}

// ---------------------------------------------------------------------------------------------------------
// Catalog scoping (docs/backstage-scoping.md): a tenant with `namespaces: [acme]` and
// `shared_namespaces: [common]` reads only those, in user and in service mode.

/// Everything in the fixture catalog (tests/backstage/catalog.yaml) that the acme tenant may read.
const ACME_SCOPE: [&str; 11] = [
    "api:acme/billing-events",
    "api:acme/ledger-grpc",
    "api:acme/payments-rest",
    "api:common/audit-events",
    "component:acme/billing-ui",
    "component:acme/payments-api",
    "component:common/design-system",
    "group:acme/platform",
    "system:acme/payments",
    "user:acme/alice",
    "user:acme/bob",
];
const ACME_APIS: [&str; 4] = [
    "api:acme/billing-events",
    "api:acme/ledger-grpc",
    "api:acme/payments-rest",
    "api:common/audit-events",
];

/// An acme-scoped portal in each identity mode, with alice signed in; `extra` adds keys to the
/// `backstage:` block (e.g. `allow_unscoped: [...]`).
async fn scoped_portals(extra: &str) -> Vec<(&'static str, TestServer, Session)> {
    let backstage = backstage();
    let (url, token) = (&backstage.url, &backstage.token);
    let scope = format!("namespaces: [acme], shared_namespaces: [common]{extra}");
    let mut portals = Vec::new();
    for (mode, identity) in [
        ("user", "identity: user".to_owned()),
        (
            "service",
            format!("identity: service, service_token: \"{token}\""),
        ),
    ] {
        let server = portal(&format!(
            "{{ url: \"{url}\", {identity}, plugins: [catalog], {scope} }}"
        ))
        .await;
        let alice = server.sign_in("alice").await;
        portals.push((mode, server, alice));
    }
    portals
}

/// `POST <path>` with a JSON body as a same-origin API client holding `session`.
async fn api_post(
    server: &TestServer,
    session: &Session,
    path: &str,
    body: &Value,
) -> reqwest::Response {
    server
        .post(path)
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .header("cookie", &session.cookie)
        .header("origin", server.origin())
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// `GET` or `POST` (with an empty JSON object) as an API client holding `session`.
async fn call(
    server: &TestServer,
    session: &Session,
    method: &str,
    path: &str,
) -> reqwest::Response {
    match method {
        "GET" => api_get(server, session, path, &[]).await,
        "POST" => api_post(server, session, path, &json!({})).await,
        other => panic!("no {other} in these tables"),
    }
}

/// `kind:namespace/name` of an entity, lower-case, as Backstage writes refs.
fn entity_ref(entity: &Value) -> String {
    let namespace = entity["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    format!(
        "{}:{namespace}/{}",
        entity["kind"].as_str().unwrap(),
        entity["metadata"]["name"].as_str().unwrap()
    )
    .to_lowercase()
}

/// The sorted refs of a list of entities.
fn refs_of(entities: &Value) -> Vec<String> {
    let mut refs: Vec<String> = entities
        .as_array()
        .unwrap_or_else(|| panic!("a list of entities: {entities}"))
        .iter()
        .map(entity_ref)
        .collect();
    refs.sort_unstable();
    refs
}

/// A catalog path with query parameters, encoded.
fn with_query(path: &str, params: &[(&str, &str)]) -> String {
    let query: Vec<String> = params
        .iter()
        .map(|(name, value)| {
            format!(
                "{name}={}",
                percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

/// Base64 JSON, the form of Backstage's by-query cursors.
fn cursor_of(value: &Value) -> String {
    base64::engine::general_purpose::STANDARD.encode(value.to_string())
}

fn decode_cursor(cursor: &str) -> Value {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// An entity's uid, read from the backend directly.
async fn uid_of(kind: &str, namespace: &str, name: &str) -> String {
    let url = format!(
        "{}/api/catalog/entities/by-name/{kind}/{namespace}/{name}",
        backstage().url
    );
    let response = client()
        .get(url)
        .bearer_auth(SERVICE_TOKEN)
        .send()
        .await
        .unwrap();
    ok_json(response).await["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn backstage_scoped_by_name_is_404_outside_the_tenants_namespaces() {
    for (mode, server, alice) in scoped_portals("").await {
        for inside in [
            "/backstage/api/catalog/entities/by-name/component/acme/payments-api",
            "/backstage/api/catalog/entities/by-name/Component/ACME/payments-api",
            "/backstage/api/catalog/entities/by-name/component/common/design-system",
            "/backstage/api/catalog/entities/by-name/user/acme/alice/",
        ] {
            let entity = get_ok(&server, &alice, inside).await;
            assert!(
                ACME_SCOPE.contains(&entity_ref(&entity).as_str()),
                "{mode} {inside}: {entity}"
            );
        }
        for outside in [
            "/backstage/api/catalog/entities/by-name/component/globex/inventory-api",
            "/backstage/api/catalog/entities/by-name/component/GLOBEX/inventory-api",
            "/backstage/api/catalog/entities/by-name/component/glob%65x/inventory-api",
            "/backstage/api/catalog/Entities/By-Name/component/globex/inventory-api/",
            "/backstage/api/catalog/entities/by-name/user/default/guest",
            "/backstage/api/catalog/entities/by-name/user/globex/hank/ancestry",
            "/backstage/api/catalog/locations/by-entity/component/globex/inventory-api",
        ] {
            let body =
                get_refused(&server, &alice, outside, 404, "backstage_entity_not_found").await;
            assert!(
                !body.to_string().contains("inventory"),
                "{mode} {outside}: {body}"
            );
        }
        // Backstage's own 404 inside the scope is untouched.
        let missing = api_get(
            &server,
            &alice,
            "/backstage/api/catalog/entities/by-name/component/acme/no-such-thing",
            &[],
        )
        .await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND, "{mode}");

        // Ancestry inside the scope leaves out the `default` namespace's Location entities.
        let ancestry = get_ok(
            &server,
            &alice,
            "/backstage/api/catalog/entities/by-name/component/acme/payments-api/ancestry",
        )
        .await;
        assert_eq!(ancestry["rootEntityRef"], "component:acme/payments-api");
        let items = ancestry["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{mode}: {ancestry}");
        assert_eq!(items[0]["parentEntityRefs"], json!([]), "{mode}");
        // Inside the scope the location lookup reaches Backstage (which has no API-registered location
        // for a file-provided entity: its own 404, not portico's).
        let location = api_get(
            &server,
            &alice,
            "/backstage/api/catalog/locations/by-entity/component/acme/payments-api",
            &[],
        )
        .await;
        assert_eq!(location.status(), StatusCode::NOT_FOUND, "{mode}");
        let location: Value = location.json().await.unwrap();
        assert_eq!(
            location["error"]["name"], "NotFoundError",
            "{mode}: {location}"
        );
    }
    // Without portico, the same ancestry names the generated Location in `default`.
    let direct = client()
        .get(format!(
            "{}/api/catalog/entities/by-name/component/acme/payments-api/ancestry",
            backstage().url
        ))
        .bearer_auth(SERVICE_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(ok_json(direct).await["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn backstage_scoped_entity_lists_hold_only_the_tenants_namespaces() {
    for (mode, server, alice) in scoped_portals("").await {
        let list = |query: &[(&str, &str)]| {
            let path = with_query("/backstage/api/catalog/entities", query);
            let (server, alice) = (&server, &alice);
            async move { refs_of(&get_ok(server, alice, &path).await) }
        };
        assert_eq!(list(&[]).await, ACME_SCOPE, "{mode}: no filter");
        assert_eq!(
            list(&[("filter", "kind=component")]).await,
            [
                "component:acme/billing-ui",
                "component:acme/payments-api",
                "component:common/design-system"
            ],
            "{mode}"
        );
        // Several filters are OR-ed, each narrowed.
        let mut either = list(&[("filter", "kind=api"), ("filter", "kind=group")]).await;
        either.retain(|r| !r.starts_with("api:"));
        assert_eq!(either, ["group:acme/platform"], "{mode}");
        // Asking for another tenant's namespace, however it is spelled, finds nothing of it.
        for filter in [
            "metadata.namespace=globex",
            "kind=component,metadata.namespace=globex",
            "kind=component,metadata.namespace=acme,metadata.namespace=globex",
            "Metadata.Namespace=globex",
            "\u{feff}metadata.namespace=globex",
            "metadata.namespace=default",
        ] {
            let refs = list(&[("filter", filter)]).await;
            assert!(
                refs.iter().all(|r| ACME_SCOPE.contains(&r.as_str())),
                "{mode} {filter:?}: {refs:?}"
            );
        }
        assert_eq!(
            list(&[(
                "filter",
                "kind=component,metadata.namespace=acme,metadata.namespace=globex"
            )])
            .await,
            ["component:acme/billing-ui", "component:acme/payments-api"],
            "{mode}"
        );
        // Offset pagination (`limit`, `offset`, `after`) stays in scope.
        let mut paged = Vec::new();
        for offset in 0..6 {
            let offset = (offset * 2).to_string();
            paged.extend(list(&[("limit", "2"), ("offset", &offset)]).await);
        }
        paged.sort_unstable();
        assert_eq!(paged, ACME_SCOPE, "{mode}: pages of two");
        // Express reads `filter[]` as `filter`: refused rather than passed on unchecked.
        get_refused(
            &server,
            &alice,
            "/backstage/api/catalog/entities?filter%5B%5D=metadata.namespace%3Dglobex",
            400,
            "backstage_bad_catalog_request",
        )
        .await;
    }
}

#[tokio::test]
async fn backstage_scoped_by_query_pages_through_exactly_the_scoped_set() {
    for (mode, server, alice) in scoped_portals("").await {
        // GET, following nextCursor to the end.
        let mut seen = Vec::new();
        let mut path = with_query(
            "/backstage/api/catalog/entities/by-query",
            &[("filter", "kind=api"), ("limit", "1")],
        );
        for page in 0.. {
            assert!(page < 10, "{mode}: paging does not end");
            let answer = get_ok(&server, &alice, &path).await;
            assert_eq!(answer["totalItems"], 4, "{mode}: {answer}");
            seen.extend(refs_of(&answer["items"]));
            let Some(next) = answer["pageInfo"]["nextCursor"].as_str() else {
                break;
            };
            path = with_query(
                "/backstage/api/catalog/entities/by-query",
                &[("cursor", next), ("limit", "1")],
            );
        }
        assert_eq!(seen.len(), 4, "{mode}: GET pages: {seen:?}");
        seen.sort_unstable();
        assert_eq!(seen, ACME_APIS, "{mode}: GET pages, no duplicates");

        // POST, following nextCursor in the body.
        let mut seen = Vec::new();
        let mut body = json!({ "query": { "kind": "api" }, "limit": 1 });
        for page in 0.. {
            assert!(page < 10, "{mode}: paging does not end");
            let answer = ok_json(
                api_post(
                    &server,
                    &alice,
                    "/backstage/api/catalog/entities/by-query",
                    &body,
                )
                .await,
            )
            .await;
            assert_eq!(answer["totalItems"], 4, "{mode}: {answer}");
            seen.extend(refs_of(&answer["items"]));
            let Some(next) = answer["pageInfo"]["nextCursor"].as_str() else {
                break;
            };
            body = json!({ "cursor": next, "limit": 1 });
        }
        assert_eq!(seen.len(), 4, "{mode}: POST pages: {seen:?}");
        seen.sort_unstable();
        assert_eq!(seen, ACME_APIS, "{mode}: POST pages, no duplicates");

        // No query at all, larger pages: the whole scope.
        let mut seen = Vec::new();
        let mut body = json!({ "limit": 4 });
        loop {
            let answer = ok_json(
                api_post(
                    &server,
                    &alice,
                    "/backstage/api/catalog/entities/by-query",
                    &body,
                )
                .await,
            )
            .await;
            seen.extend(refs_of(&answer["items"]));
            let Some(next) = answer["pageInfo"]["nextCursor"].as_str() else {
                break;
            };
            body = json!({ "cursor": next, "limit": 4 });
        }
        assert_eq!(seen.len(), ACME_SCOPE.len(), "{mode}: {seen:?}");
        seen.sort_unstable();
        assert_eq!(seen, ACME_SCOPE, "{mode}: everything, in pages of four");
    }
}

#[tokio::test]
async fn backstage_scoped_forged_cursors_cannot_read_other_namespaces() {
    // A cursor written by the client: every API in the catalog, from the start.
    let forged = cursor_of(&json!({
        "orderFields": [], "orderFieldValues": [], "isPrevious": false, "query": { "kind": "api" },
    }));
    // The forgery works against Backstage directly, so the checks below can fail.
    let direct = client()
        .get(with_query(
            &format!("{}/api/catalog/entities/by-query", backstage().url),
            &[("cursor", &forged)],
        ))
        .bearer_auth(SERVICE_TOKEN)
        .send()
        .await
        .unwrap();
    let direct = refs_of(&ok_json(direct).await["items"]);
    assert!(
        direct.contains(&"api:globex/inventory-rest".to_owned()),
        "{direct:?}"
    );

    for (mode, server, alice) in scoped_portals("").await {
        let by_query = "/backstage/api/catalog/entities/by-query";
        let answer = get_ok(
            &server,
            &alice,
            &with_query(by_query, &[("cursor", &forged)]),
        )
        .await;
        assert_eq!(
            refs_of(&answer["items"]),
            ACME_APIS,
            "{mode}: forged GET cursor"
        );
        let answer =
            ok_json(api_post(&server, &alice, by_query, &json!({ "cursor": forged })).await).await;
        assert_eq!(
            refs_of(&answer["items"]),
            ACME_APIS,
            "{mode}: forged POST cursor"
        );

        // A real cursor of a scoped query, modified to read globex (in both the predicate and the older
        // `filter` form), in URL-safe base64.
        let first = get_ok(
            &server,
            &alice,
            &with_query(by_query, &[("filter", "kind=api"), ("limit", "1")]),
        )
        .await;
        let mut cursor = decode_cursor(first["pageInfo"]["nextCursor"].as_str().unwrap());
        cursor["query"] = json!({ "metadata.namespace": "globex" });
        cursor["filter"] = json!({ "key": "metadata.namespace", "values": ["globex"] });
        cursor["orderFieldValues"] = json!([]);
        let modified = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(cursor.to_string());
        for answer in [
            get_ok(
                &server,
                &alice,
                &with_query(by_query, &[("cursor", &modified)]),
            )
            .await,
            ok_json(api_post(&server, &alice, by_query, &json!({ "cursor": modified })).await)
                .await,
        ] {
            let refs = refs_of(&answer["items"]);
            assert!(
                refs.iter().all(|r| ACME_SCOPE.contains(&r.as_str())),
                "{mode}: modified cursor read {refs:?}"
            );
        }
        // Not a cursor at all, or two of them: refused.
        for path in [
            with_query(by_query, &[("cursor", "not a cursor!")]),
            format!("{by_query}?cursor={forged}&cursor={forged}"),
        ] {
            get_refused(&server, &alice, &path, 400, "backstage_bad_catalog_request").await;
        }
    }
}

#[tokio::test]
async fn backstage_scoped_by_refs_answers_null_outside_the_tenants_namespaces() {
    let refs = json!({ "entityRefs": [
        "component:acme/payments-api",
        "component:globex/inventory-api",
        "component:common/design-system",
        "user:default/guest",
        "component:acme/no-such-thing",
        "user:globex/hank",
    ] });
    for (mode, server, alice) in scoped_portals("").await {
        let path = "/backstage/api/catalog/entities/by-refs";
        let answer = ok_json(api_post(&server, &alice, path, &refs).await).await;
        let items = answer["items"].as_array().unwrap();
        let found: Vec<Option<String>> = items
            .iter()
            .map(|item| (!item.is_null()).then(|| entity_ref(item)))
            .collect();
        assert_eq!(
            found,
            [
                Some("component:acme/payments-api".to_owned()),
                None,
                Some("component:common/design-system".to_owned()),
                None,
                None,
                None
            ],
            "{mode}: {answer}"
        );
        // A client filter for another namespace narrows further, never wider.
        let filtered = ok_json(
            api_post(
                &server,
                &alice,
                &with_query(path, &[("filter", "metadata.namespace=globex")]),
                &refs,
            )
            .await,
        )
        .await;
        assert!(
            filtered["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(Value::is_null),
            "{mode}: {filtered}"
        );
    }
}

#[tokio::test]
async fn backstage_scoped_by_uid_and_refresh_stay_inside_the_tenants_namespaces() {
    let acme_uid = uid_of("component", "acme", "payments-api").await;
    let globex_uid = uid_of("component", "globex", "inventory-api").await;
    for (mode, server, alice) in scoped_portals("").await {
        let by_uid = |uid: &str| format!("/backstage/api/catalog/entities/by-uid/{uid}");
        let entity = get_ok(&server, &alice, &by_uid(&acme_uid)).await;
        assert_eq!(entity_ref(&entity), "component:acme/payments-api", "{mode}");
        for uid in [globex_uid.as_str(), "no-such-uid"] {
            get_refused(
                &server,
                &alice,
                &by_uid(uid),
                404,
                "backstage_entity_not_found",
            )
            .await;
        }
        // Deleting another tenant's entity by uid is refused before Backstage deletes anything.
        let delete = server
            .client
            .delete(server.url(&by_uid(&globex_uid)))
            .header("accept", "application/json")
            .header("cookie", &alice.cookie)
            .header("origin", server.origin())
            .send()
            .await
            .unwrap();
        json_error(delete, 404, "backstage_entity_not_found").await;
        assert_eq!(
            uid_of("component", "globex", "inventory-api").await,
            globex_uid,
            "{mode}: still there"
        );

        let refresh = "/backstage/api/catalog/refresh";
        let inside = api_post(
            &server,
            &alice,
            refresh,
            &json!({ "entityRef": "component:acme/payments-api" }),
        )
        .await;
        assert_eq!(inside.status(), StatusCode::OK, "{mode}");
        for entity_ref in ["component:globex/inventory-api", "user:default/guest"] {
            let outside = api_post(
                &server,
                &alice,
                refresh,
                &json!({ "entityRef": entity_ref }),
            )
            .await;
            json_error(outside, 404, "backstage_entity_not_found").await;
        }
    }
}

#[tokio::test]
async fn backstage_scoped_entity_facets_count_only_the_tenants_namespaces() {
    for (mode, server, alice) in scoped_portals("").await {
        let facets = "/backstage/api/catalog/entity-facets";
        let values = |answer: &Value, facet: &str| -> Vec<(String, u64)> {
            answer["facets"][facet]
                .as_array()
                .unwrap_or_else(|| panic!("{answer}"))
                .iter()
                .map(|v| {
                    (
                        v["value"].as_str().unwrap().to_owned(),
                        v["count"].as_u64().unwrap(),
                    )
                })
                .collect()
        };
        let get = get_ok(
            &server,
            &alice,
            &format!("{facets}?facet=metadata.namespace"),
        )
        .await;
        assert_eq!(
            values(&get, "metadata.namespace"),
            [("acme".to_owned(), 9), ("common".to_owned(), 2)],
            "{mode}: {get}"
        );
        let globex = get_ok(
            &server,
            &alice,
            &with_query(
                facets,
                &[("facet", "kind"), ("filter", "metadata.namespace=globex")],
            ),
        )
        .await;
        assert_eq!(values(&globex, "kind"), [], "{mode}: {globex}");
        let post = ok_json(
            api_post(
                &server,
                &alice,
                facets,
                &json!({ "facets": ["metadata.namespace"], "query": { "kind": "api" } }),
            )
            .await,
        )
        .await;
        assert_eq!(
            values(&post, "metadata.namespace"),
            [("acme".to_owned(), 3), ("common".to_owned(), 1)],
            "{mode}: {post}"
        );
    }
}

#[tokio::test]
async fn backstage_scoped_unscopable_endpoints_are_refused_unless_allowed() {
    for (mode, server, alice) in scoped_portals("").await {
        for (method, path) in [
            ("GET", "/backstage/api/catalog/locations"),
            ("GET", "/backstage/api/catalog/locations/by-query"),
            (
                "GET",
                "/backstage/api/catalog/.backstage/actions/v1/actions",
            ),
            ("GET", "/backstage/api/catalog/openapi.json"),
            ("GET", "/backstage/api/catalog"),
            ("POST", "/backstage/api/catalog/analyze-location"),
            ("POST", "/backstage/api/catalog/validate-entity"),
            ("POST", "/backstage/api/catalog/locations"),
        ] {
            let response = call(&server, &alice, method, path).await;
            let row = format!("{mode} {method} {path}");
            json_error_of(&row, response, 403, "backstage_catalog_unscoped").await;
        }
        // A browser gets the HTML error page.
        let page = server
            .get("/backstage/api/catalog/locations")
            .header("accept", "text/html")
            .header("sec-fetch-mode", "navigate")
            .header("cookie", &alice.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::FORBIDDEN, "{mode}");
        let html = page.text().await.unwrap();
        assert!(html.contains("cannot be limited"), "{mode}: {html}");
    }
    for (mode, server, alice) in
        scoped_portals(", allow_unscoped: [/locations, \"/.backstage/actions/**\"]").await
    {
        let locations = get_ok(&server, &alice, "/backstage/api/catalog/locations").await;
        // The fixture registers no locations through the API, so the list is empty but answered.
        assert!(locations.is_array(), "{mode}: {locations}");
        let actions = get_ok(
            &server,
            &alice,
            "/backstage/api/catalog/.backstage/actions/v1/actions",
        )
        .await;
        assert!(actions["actions"].is_array(), "{mode}: {actions}");
        // Only what the globs name: the rest stays refused, and scoped endpoints stay scoped.
        for (method, path, status, code) in [
            (
                "POST",
                "/backstage/api/catalog/analyze-location",
                403,
                "backstage_catalog_unscoped",
            ),
            (
                "GET",
                "/backstage/api/catalog/entities/by-name/component/globex/inventory-api",
                404,
                "backstage_entity_not_found",
            ),
        ] {
            let response = call(&server, &alice, method, path).await;
            let row = format!("{mode} {method} {path}");
            json_error_of(&row, response, status, code).await;
        }
    }
}

#[tokio::test]
async fn backstage_without_namespaces_the_catalog_is_not_scoped() {
    let server = service_portal("[catalog]").await;
    let alice = server.sign_in("alice").await;
    let all = refs_of(&get_ok(&server, &alice, "/backstage/api/catalog/entities").await);
    assert!(
        all.contains(&"component:globex/inventory-api".to_owned()),
        "{all:?}"
    );
    assert!(all.contains(&"user:default/guest".to_owned()), "{all:?}");
    let locations = get_ok(&server, &alice, "/backstage/api/catalog/locations").await;
    assert!(locations.is_array());
}

// ---------------------------------------------------------------------------------------------------------
// Identity bound to the tenant (docs/backstage-identity.md): portico names the user as
// `<user namespace>/<subject>` plus a verified email, and Backstage's resolver (tests/backstage/index.js)
// looks only inside that namespace.

/// Two tenants on one portico share the Backstage: acme (namespace `acme`, on acme.localhost) and globex
/// (namespace `globex`, on 127.0.0.1, where the tests sign in). globex's users stand in for what
/// globex's IdP says about them: one has a subject and email that belong to acme's catalog users.
async fn shared_backstage_portal() -> TestServer {
    let url = &backstage().url;
    let block = |namespace: &str| {
        format!(
            "{{ url: \"{url}\", identity: user, sign_in: oauth2_proxy, plugins: [catalog, whoami], namespaces: [{namespace}] }}"
        )
    };
    let acme = tenant("acme", &["acme.localhost"])
        .user(user("alice", &["eng"]).email("alice@acme.example"))
        .role("developer", &["eng"])
        .app(docs())
        .backstage(&block("acme"));
    let globex = tenant("globex", &["127.0.0.1"])
        .user(user("hank", &["eng"]).email("hank@globex.example"))
        // globex's IdP vouches for an address that is an acme catalog user's.
        .user(user("impostor", &["eng"]).email("alice@acme.example"))
        // ... or names a subject that is a catalog user in the `default` namespace, or in acme.
        .user(user("guest", &["eng"]).email("guest@example.test"))
        .user(user("bob", &["eng"]))
        .role("developer", &["eng"])
        .app(docs())
        .backstage(&block("globex"));
    config().tenant(acme).tenant(globex).start().await
}

#[tokio::test]
async fn backstage_users_of_one_tenant_never_become_entities_of_another_tenant() {
    let server = shared_backstage_portal().await;
    let hank = server.sign_in("hank").await;
    assert_eq!(
        user_of(&whoami(&server, &hank, "").await),
        "user:globex/hank"
    );

    for id in ["impostor", "guest", "bob"] {
        let session = server.sign_in(id).await;
        let response = api_get(&server, &session, "/backstage/api/whoami", &[]).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(
            status,
            StatusCode::BAD_GATEWAY,
            "globex's `{id}` must not be signed in to Backstage as anyone outside globex: {body}"
        );
        assert!(body.contains("backstage_sign_in_refused"), "{body}");
        assert!(!body.contains("user:"), "no entity ref leaks: {body}");
        // Nor through the catalog plugin.
        let catalog = api_get(
            &server,
            &session,
            "/backstage/api/catalog/entities/by-name/user/globex/hank",
            &[],
        )
        .await;
        assert_eq!(catalog.status(), StatusCode::BAD_GATEWAY, "{id}");
    }
}

/// `GET /api/auth/oauth2Proxy/refresh` straight at the backend with these headers: the user entity ref
/// Backstage signs in, or the error status.
async fn backend_sign_in(headers: &[(&str, &str)]) -> Result<String, u16> {
    let mut request = client().get(format!("{}/api/auth/oauth2Proxy/refresh", backstage().url));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or_default();
    match body["backstageIdentity"]["identity"]["userEntityRef"].as_str() {
        Some(user) if status == 200 => Ok(user.to_owned()),
        _ => Err(status),
    }
}

#[tokio::test]
async fn backstage_resolver_finds_users_only_inside_the_namespace_portico_names() {
    let user = "x-forwarded-user";
    let email = "x-forwarded-email";
    // The exact entity, by name in the named namespace ...
    assert_eq!(
        backend_sign_in(&[(user, "acme/alice")]).await,
        Ok("user:acme/alice".to_owned())
    );
    assert_eq!(
        backend_sign_in(&[(user, "globex/hank")]).await,
        Ok("user:globex/hank".to_owned())
    );
    // ... or by email, but only among that namespace's users.
    assert_eq!(
        backend_sign_in(&[(user, "acme/0f3a-subject"), (email, "bob@acme.example")]).await,
        Ok("user:acme/bob".to_owned())
    );
    for refused in [
        // Another namespace's user by email.
        [(user, "globex/0f3a-subject"), (email, "alice@acme.example")],
        // A name that exists only in another namespace.
        [(user, "globex/alice"), (email, "nobody@globex.example")],
        // No namespace: never the `default` namespace by omission.
        [(user, "guest"), (email, "guest@example.test")],
        // A name that tries to carry its own namespace or kind.
        [(user, "globex/acme/alice"), (email, "")],
        [(user, "globex/user:acme/alice"), (email, "")],
    ] {
        let headers: Vec<(&str, &str)> = refused
            .iter()
            .copied()
            .filter(|(_, value)| !value.is_empty())
            .collect();
        let result = backend_sign_in(&headers).await;
        assert!(result.is_err(), "{headers:?} signed in as {result:?}");
    }
}

/// An upstream app that answers every request with the request's headers as JSON.
async fn header_echo() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|request: axum::extract::Request| async move {
        let headers: serde_json::Map<String, Value> = request
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = value.to_str().unwrap_or("<not text>").to_owned();
                (name.as_str().to_owned(), Value::String(value))
            })
            .collect();
        axum::Json(Value::Object(headers))
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// The claims of a JWT, unverified (the signature is the proxy tests' business).
fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn backstage_and_apps_never_get_an_email_the_idp_did_not_verify() {
    use crate::op::{Browser, RealOp, reserve_port};
    let addr = reserve_port();
    let base = format!("http://{addr}");
    // A real OP whose `mallory` has alice's address, unverified; `carol` has bob's, verified.
    let op = RealOp::start(json!({
        "clients": [{
            "client_id": "portico",
            "client_secret": "portico-secret",
            "redirect_uris": [format!("{base}/auth/callback")],
        }],
        "accounts": {
            "mallory": { "name": "Mallory", "email": "alice@acme.example", "email_verified": false, "groups": ["acme-eng"] },
            "carol": { "name": "Carol", "email": "bob@acme.example", "groups": ["acme-eng"] },
        },
    }));
    let upstream = header_echo().await;
    let backstage_url = &backstage().url;
    let acme = tenant("acme", &[&addr.to_string()])
        .public_origin(&base)
        .oidc(&oidc_client(&op.issuer, "portico", "portico-secret"))
        .role("developer", &["acme-eng"])
        .app(crate::helpers::app("echo", &["developer"]).upstream(&upstream))
        .backstage(&format!(
            "{{ url: \"{backstage_url}\", identity: user, sign_in: oauth2_proxy, plugins: [catalog, whoami], namespaces: [acme] }}"
        ));
    let yaml = config()
        .top(&format!("server: {{ listen: \"{addr}\" }}"))
        .tenant(acme);
    let dir = tempfile::tempdir().unwrap();
    let mut config = yaml.compile(dir.path());
    config.server.admin_listen = None;
    let app = portico::app::App::build(config)
        .await
        .expect("portico starts");
    tokio::spawn(app.run());
    // Discovery runs in the background: wait (bounded) until sign-in redirects to the IdP.
    for attempt in 0.. {
        if Browser::default()
            .get(&format!("{base}/auth/login"))
            .await
            .status
            == 303
        {
            break;
        }
        assert!(attempt < 300, "sign-in never became available");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut mallory = Browser::default();
    mallory.sign_in(&base, &op.issuer, "mallory", "/").await;
    // The app learns nothing of the unverified address, in headers or in the signed assertion.
    let (status, seen) = mallory
        .fetch("GET", &format!("{base}/apps/echo/x"), None)
        .await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["x-portico-user"], "mallory");
    let email = seen["x-portico-email"].as_str().unwrap_or("");
    assert!(!email.contains('@'), "unverified email in headers: {seen}");
    let assertion = jwt_claims(seen["x-portico-assertion"].as_str().unwrap());
    assert_eq!(assertion["sub"], "mallory");
    assert!(
        !assertion.to_string().contains("alice@acme.example"),
        "unverified email in the assertion: {assertion}"
    );
    // Backstage is not told the address, so it cannot sign mallory in as alice.
    let (status, answer) = mallory
        .fetch("GET", &format!("{base}/backstage/api/whoami"), None)
        .await;
    assert_eq!(status, 502, "mallory must not become alice: {answer}");
    assert_eq!(answer["error"], "backstage_sign_in_refused", "{answer}");

    // A verified address is passed on, and Backstage finds its owner in the tenant's namespace.
    let mut carol = Browser::default();
    carol.sign_in(&base, &op.issuer, "carol", "/").await;
    let (status, seen) = carol
        .fetch("GET", &format!("{base}/apps/echo/x"), None)
        .await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["x-portico-email"], "bob@acme.example");
    let assertion = jwt_claims(seen["x-portico-assertion"].as_str().unwrap());
    assert_eq!(assertion["email"], "bob@acme.example");
    let (status, answer) = carol
        .fetch("GET", &format!("{base}/backstage/api/whoami"), None)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(user_of(&answer), "user:acme/bob");
}

#[test]
fn backstage_user_namespace_must_be_one_the_tenant_owns() {
    let dir = tempfile::tempdir().unwrap();
    let load = |block: &str| {
        portico::config::load_str(
            &portico::config::OsSource,
            "test.yaml",
            &portal_yaml(block),
            dir.path(),
        )
    };
    for (block, expected) in [
        // Shared with other tenants, or another tenant's: its users are not this tenant's to name.
        (
            "{ url: \"http://127.0.0.1:7007\", namespaces: [acme], shared_namespaces: [common], user_namespace: common }",
            "`common` is not one of this tenant's own `namespaces`",
        ),
        (
            "{ url: \"http://127.0.0.1:7007\", namespaces: [acme], user_namespace: default }",
            "`default` is not one of this tenant's own `namespaces`",
        ),
        (
            "{ url: \"http://127.0.0.1:7007\", user_namespace: \"acme/alice\" }",
            "`acme/alice` is not a Backstage namespace",
        ),
    ] {
        let Err(error) = load(block) else {
            panic!("{block} was accepted");
        };
        let error = error.to_string();
        assert!(error.contains(expected), "{block}: {error}");
        assert!(
            error.contains("test.yaml:") && error.contains("user_namespace"),
            "file:line and key path: {error}"
        );
    }
    // The first of the tenant's own namespaces by default; `default` when it lists none.
    for (block, expected) in [
        (
            "{ url: \"http://127.0.0.1:7007\", namespaces: [acme, acme-labs] }",
            "acme",
        ),
        (
            "{ url: \"http://127.0.0.1:7007\", namespaces: [acme, acme-labs], user_namespace: ACME-labs }",
            "acme-labs",
        ),
        ("{ url: \"http://127.0.0.1:7007\" }", "default"),
    ] {
        let config = load(block)
            .unwrap_or_else(|error| panic!("{block}: {error}"))
            .config;
        let settings = config.tenants[0].backstage.as_ref().unwrap();
        assert_eq!(settings.user_namespace, expected, "{block}");
    }
}

#[tokio::test]
async fn backstage_user_owning_through_another_tenants_group_is_refused() {
    // initech's catalog entry for `mole` says it is a member of globex's `ops`: Backstage would let
    // mole own everything globex's ops team owns.
    let url = &backstage().url;
    let initech = tenant("initech", &["127.0.0.1"])
        .user(user("mole", &["eng"]).email("mole@initech.example"))
        .role("developer", &["eng"])
        .app(docs())
        .backstage(&format!(
            "{{ url: \"{url}\", identity: user, sign_in: oauth2_proxy, plugins: [catalog, whoami], namespaces: [initech] }}"
        ));
    let server = config().tenant(initech).start().await;
    let mole = server.sign_in("mole").await;
    let body = get_refused(
        &server,
        &mole,
        "/backstage/api/whoami",
        502,
        "backstage_sign_in_refused",
    )
    .await;
    assert!(!body.to_string().contains("globex"), "{body}");
    // Backstage itself does sign mole in, owning through globex's group: only portico stops it.
    let direct = client()
        .get(format!("{url}/api/auth/oauth2Proxy/refresh"))
        .header("x-forwarded-user", "initech/mole")
        .send()
        .await
        .unwrap();
    let direct = ok_json(direct).await;
    let owns = &direct["backstageIdentity"]["identity"]["ownershipEntityRefs"];
    assert!(
        owns.as_array()
            .unwrap()
            .contains(&json!("group:globex/ops")),
        "{direct}"
    );
}
