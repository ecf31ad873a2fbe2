//! Sign-in against a real, certified OpenID Provider (`oidc-provider` from npm): the full authorization
//! code flow with PKCE, roles from groups (also from a nested claim path), refresh after access-token
//! expiry with group changes taking effect, RP-initiated logout with end_session, back-channel logout
//! ending the right sessions only, and 401 JSON for API calls.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{app, compile, config, oidc_client, tenant};
use crate::op::{Browser, RealOp, reserve_port, urlencode};

struct Portal {
    base: String,
    nested_base: String,
    op: RealOp,
    _dir: tempfile::TempDir,
}

/// A portal with two OIDC tenants on one real OP: `acme` (groups claim `groups`) on 127.0.0.1 and
/// `nested` (claim path `realm_access.roles`) on localhost, same port.
async fn portal(access_token_ttl: u64) -> Portal {
    portal_with(access_token_ttl, "").await
}

/// The same with `extra` top-level config (e.g. a `sessions:` section).
async fn portal_with(access_token_ttl: u64, extra: &str) -> Portal {
    portal_with_server(access_token_ttl, "", extra).await
}

/// [`portal_with`], with `server_extra` added inside `server: { listen: …<server_extra> }`.
async fn portal_with_server(access_token_ttl: u64, server_extra: &str, extra: &str) -> Portal {
    let addr: SocketAddr = reserve_port();
    let port = addr.port();
    let acme = format!("http://127.0.0.1:{port}");
    let nested = format!("http://localhost:{port}");
    let client = |id: &str, secret: &str, origin: &str| {
        json!({
            "client_id": id,
            "client_secret": secret,
            "redirect_uris": [format!("{origin}/auth/callback")],
            "post_logout_redirect_uris": [format!("{origin}/auth/signed-out")],
            "backchannel_logout_uri": format!("{origin}/auth/backchannel-logout"),
        })
    };
    let op = RealOp::start(json!({
        "clients": [client("portico", "portico-secret", &acme), client("nested", "nested-secret", &nested)],
        "accessTokenTtl": access_token_ttl,
    }));
    let tools = || app("tools", &["developer"]).files("embedded:demo");
    let acme_tenant = tenant("acme", &[&format!("127.0.0.1:{port}")])
        .public_origin(&acme)
        .oidc(&oidc_client(&op.issuer, "portico", "portico-secret"))
        .role("platform-admin", &["acme-platform-admins"])
        .role("developer", &["acme-eng"])
        .app(tools())
        .app(app("admin-console", &["platform-admin"]).files("embedded:demo"));
    let nested_tenant = tenant("nested", &[&format!("localhost:{port}")])
        .public_origin(&nested)
        .oidc(&format!(
            "{}, groups_claim: realm_access.roles",
            oidc_client(&op.issuer, "nested", "nested-secret")
        ))
        .role("developer", &["acme-eng"])
        .app(tools());
    let yaml = config()
        .top(&format!("server: {{ listen: \"{addr}\"{server_extra} }}"))
        .top(extra)
        .tenant(acme_tenant)
        .tenant(nested_tenant);
    let dir = tempfile::tempdir().unwrap();
    let mut config = yaml.compile(dir.path());
    config.server.admin_listen = None;
    let app = portico::app::App::build(config)
        .await
        .expect("portico starts");
    tokio::spawn(app.run());
    let portal = Portal {
        base: acme,
        nested_base: nested,
        op,
        _dir: dir,
    };
    wait_until_ready(&portal.base).await;
    wait_until_ready(&portal.nested_base).await;
    portal
}

/// Discovery runs in the background; wait (bounded) until sign-in redirects to the IdP.
pub(crate) async fn wait_until_ready(base: &str) {
    // Generous: under a loaded CI machine several OPs and portals start at once.
    for _ in 0..300 {
        let page = Browser::default().get(&format!("{base}/auth/login")).await;
        if page.status == 303 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("sign-in at {base} never became available");
}

async fn session_json(browser: &mut Browser, base: &str) -> (u16, Value) {
    browser
        .fetch("GET", &format!("{base}/auth/session"), None)
        .await
}

#[tokio::test]
async fn full_login_lands_on_the_deep_link_with_roles_from_groups() {
    let portal = portal(3600).await;
    let mut browser = Browser::default();
    let landed = browser
        .sign_in(&portal.base, &portal.op.issuer, "dev", "/home/tools?tab=2")
        .await;
    assert_eq!(
        landed, "/home/tools?tab=2",
        "the return path survives the round trip"
    );

    let (status, session) = session_json(&mut browser, &portal.base).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["user"]["id"], "dev");
    assert_eq!(session["user"]["name"], "Dev Eloper");
    assert_eq!(session["user"]["email"], "dev@acme.test");
    assert_eq!(session["roles"], json!(["developer"]));

    // The browser holds only the opaque session cookie: no token anywhere it can read.
    let (_, shell) = browser
        .fetch("GET", &format!("{}/shell/config.json", portal.base), None)
        .await;
    let text = shell.to_string();
    assert!(!text.contains("eyJ"), "no JWT in the shell config");
    assert_eq!(
        browser
            .get(&format!("{}/apps/tools/", portal.base))
            .await
            .status,
        200
    );
    assert_eq!(
        browser
            .get(&format!("{}/apps/admin-console/", portal.base))
            .await
            .status,
        403
    );

    let mut admin = Browser::default();
    admin
        .sign_in(&portal.base, &portal.op.issuer, "admin", "/")
        .await;
    let (_, session) = session_json(&mut admin, &portal.base).await;
    assert_eq!(session["roles"], json!(["developer", "platform-admin"]));
    assert_eq!(
        admin
            .get(&format!("{}/apps/admin-console/", portal.base))
            .await
            .status,
        200
    );

    let mut nobody = Browser::default();
    nobody
        .sign_in(&portal.base, &portal.op.issuer, "nogroups", "/")
        .await;
    let (_, session) = session_json(&mut nobody, &portal.base).await;
    assert_eq!(session["roles"], json!([]));
    assert_eq!(
        nobody
            .get(&format!("{}/apps/tools/", portal.base))
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn groups_can_come_from_a_nested_claim_path() {
    let portal = portal(3600).await;
    let mut browser = Browser::default();
    browser
        .sign_in(&portal.nested_base, &portal.op.issuer, "nested", "/")
        .await;
    let (status, session) = session_json(&mut browser, &portal.nested_base).await;
    assert_eq!(status, 200);
    assert_eq!(session["tenant"], "nested");
    assert_eq!(session["user"]["groups"], json!(["acme-eng"]));
    assert_eq!(session["roles"], json!(["developer"]));
}

#[tokio::test]
async fn api_calls_without_a_session_get_401_json_never_an_idp_redirect() {
    let portal = portal(3600).await;
    let mut browser = Browser::default();
    let (status, body) = browser
        .fetch("GET", &format!("{}/shell/config.json", portal.base), None)
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "not_signed_in");
    let (status, _) = browser
        .fetch("GET", &format!("{}/apps/tools/data", portal.base), None)
        .await;
    assert_eq!(status, 401);
    // A browser navigation is sent to sign in, which goes to the IdP with PKCE, state and nonce.
    let page = browser.get(&format!("{}/home/tools", portal.base)).await;
    assert_eq!(page.status, 303);
    let login = browser.get(&page.location.unwrap()).await;
    let authorize = login.location.unwrap();
    for parameter in [
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "nonce=",
        "response_type=code",
        // The portal's language for this browser (English here), a hint for the IdP's own pages.
        "ui_locales=en",
    ] {
        assert!(authorize.contains(parameter), "{parameter} in {authorize}");
    }
    // A German browser's sign-in asks the IdP for German.
    let german = crate::helpers::client()
        .get(format!("{}/auth/login?return_to=%2Fhome", portal.base))
        .header("accept-language", "de-DE,de;q=0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(german.status(), 303);
    let authorize = german.headers()["location"].to_str().unwrap();
    assert!(authorize.contains("ui_locales=de"), "{authorize}");
}

#[tokio::test]
async fn refresh_after_expiry_rereads_groups_so_removed_users_lose_access() {
    let portal = portal(2).await;
    let mut browser = Browser::default();
    browser
        .sign_in(&portal.base, &portal.op.issuer, "dev", "/")
        .await;
    let tools = format!("{}/apps/tools/", portal.base);
    assert_eq!(browser.get(&tools).await.status, 200);
    let first_cookie = browser.session(&portal.base).unwrap();

    // The IdP admin removes the user from the group; the access token runs out.
    portal.op.set_groups("dev", &[]).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // The next request refreshes, reads the groups again and recomputes the roles.
    let (status, session) = session_json(&mut browser, &portal.base).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(
        session["roles"],
        json!([]),
        "the role is gone after the refresh"
    );
    assert_eq!(browser.get(&tools).await.status, 403);
    assert_eq!(
        browser.session(&portal.base).unwrap(),
        first_cookie,
        "same session, refreshed tokens"
    );

    // Put back in the group: access returns at the next refresh.
    portal.op.set_groups("dev", &["acme-eng"]).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(browser.get(&tools).await.status, 200);
}

#[tokio::test]
async fn logout_ends_the_session_and_sends_the_browser_to_end_session() {
    let portal = portal(3600).await;
    let mut browser = Browser::default();
    browser
        .sign_in(&portal.base, &portal.op.issuer, "dev", "/")
        .await;
    let (_, shell) = browser
        .fetch("GET", &format!("{}/shell/config.json", portal.base), None)
        .await;
    let csrf = shell["portico"]["csrfToken"].as_str().unwrap().to_owned();

    let (status, body) = browser
        .fetch("POST", &format!("{}/auth/logout", portal.base), Some(&csrf))
        .await;
    assert_eq!(status, 200, "{body}");
    let redirect = body["redirect"].as_str().unwrap().to_owned();
    assert!(
        redirect.starts_with(&format!("{}/session/end", portal.op.issuer)),
        "{redirect}"
    );
    assert!(redirect.contains("id_token_hint="), "{redirect}");
    let signed_out = format!("{}/auth/signed-out", portal.base);
    assert!(
        redirect.contains(&format!(
            "post_logout_redirect_uri={}",
            urlencode(&signed_out)
        )),
        "{redirect}"
    );

    // portico's session is over at once.
    let (status, _) = session_json(&mut browser, &portal.base).await;
    assert_eq!(status, 401);

    // The OP asks to confirm, ends its own session and returns the browser to portico.
    let done = browser
        .confirm_logout_at_op(&redirect, &portal.op.issuer)
        .await;
    let back = done.location.expect("the OP returns the browser");
    assert!(back.starts_with(&signed_out), "{back}");
    let page = browser.get(&back).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("signed out"));

    // Signing in again needs the OP's login form: its session is gone too.
    let login = browser.get(&format!("{}/auth/login", portal.base)).await;
    let (_, form) = browser
        .follow(&login.location.unwrap(), Some(&portal.base))
        .await;
    assert_eq!(form.status, 200, "the OP shows its login form again");
}

#[tokio::test]
async fn back_channel_logout_ends_the_sessions_of_that_idp_session_only() {
    let portal = portal(3600).await;
    // The same user in two browsers (two IdP sessions), and another user.
    let mut first = Browser::default();
    first
        .sign_in(&portal.base, &portal.op.issuer, "dev", "/")
        .await;
    let mut second = Browser::default();
    second
        .sign_in(&portal.base, &portal.op.issuer, "dev", "/")
        .await;
    let mut other = Browser::default();
    other
        .sign_in(&portal.base, &portal.op.issuer, "admin", "/")
        .await;

    // The first browser signs out at the IdP itself (not through portico): the OP tells portico
    // server-to-server with a logout token for that IdP session.
    first
        .confirm_logout_at_op(
            &format!("{}/session/end", portal.op.issuer),
            &portal.op.issuer,
        )
        .await;

    assert_eq!(
        session_json(&mut first, &portal.base).await.0,
        401,
        "that IdP session's portal session ended"
    );
    assert_eq!(
        session_json(&mut second, &portal.base).await.0,
        200,
        "the user's other session lives on"
    );
    assert_eq!(
        session_json(&mut other, &portal.base).await.0,
        200,
        "other users are untouched"
    );
}

/// An HTTP client whose connections come from `local` (another loopback address, so portico sees
/// another client than the test's browsers on 127.0.0.1).
fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .local_address(Some(local.parse().unwrap()))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Starts `count` sign-ins from `client` and returns their statuses, in order.
async fn start_sign_ins(client: &reqwest::Client, base: &str, count: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..count {
        let response = client
            .get(format!("{base}/auth/login"))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    statuses
}

#[tokio::test]
async fn a_flood_of_sign_ins_from_one_client_gets_429_and_does_not_stop_anyone_else() {
    let portal = portal(3600).await;
    let flooder = client_from("127.0.0.2");
    // The victim signs in at the real OP while the flood runs (one thread: the two interleave).
    let mut victim = Browser::default();
    let (callback, flood) = tokio::join!(
        victim.sign_in_at_op(&portal.base, &portal.op.issuer, "dev", "/home/tools"),
        start_sign_ins(&flooder, &portal.base, 150),
    );
    // The default share of one client is 100 sign-ins in flight; then 429, never an eviction.
    assert!(
        flood[..100].iter().all(|status| *status == 303),
        "{flood:?}"
    );
    assert!(
        flood[100..].iter().all(|status| *status == 429),
        "{flood:?}"
    );

    // An API client is told in JSON and when to come back; a browser gets a readable page.
    let response = flooder
        .get(format!("{}/auth/login", portal.base))
        .send()
        .await
        .unwrap();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&retry_after), "{retry_after}");
    crate::helpers::json_error(response, 429, "too_many_sign_ins").await;
    let page = flooder
        .get(format!("{}/auth/login", portal.base))
        .header("accept", "text/html")
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 429);
    assert!(page.headers().contains_key("retry-after"));
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("too many sign-ins were started from your network")
    );

    // Someone else starts a sign-in during the flood, and the victim's finishes.
    let other = start_sign_ins(&client_from("127.0.0.3"), &portal.base, 1).await;
    assert_eq!(other, [303]);
    assert_eq!(victim.land(&portal.base, &callback).await, "/home/tools");
    let (status, session) = session_json(&mut victim, &portal.base).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["user"]["id"], "dev");
}

/// Starts `count` sign-ins from `client`, each with `X-Forwarded-For: forwarded_for`.
async fn start_sign_ins_for(
    client: &reqwest::Client,
    base: &str,
    forwarded_for: &str,
    count: usize,
) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..count {
        let response = client
            .get(format!("{base}/auth/login"))
            .header("x-forwarded-for", forwarded_for)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    statuses
}

/// Behind a `server.trusted_proxies` entry, every client the proxy names has its own share of pending
/// sign-ins (not one share for everybody behind the proxy); a client that connects directly still
/// cannot choose whose share it uses by writing `X-Forwarded-For`.
#[tokio::test]
async fn behind_a_trusted_proxy_each_client_it_names_has_its_own_share_of_sign_ins() {
    let portal = portal_with_server(
        3600,
        ", trusted_proxies: [127.0.0.9]",
        "sessions: { pending_sign_ins_per_client: 2 }",
    )
    .await;
    let proxy = client_from("127.0.0.9");
    let first = start_sign_ins_for(&proxy, &portal.base, "203.0.113.1", 3).await;
    assert_eq!(first, [303, 303, 429], "one client's share is 2");
    let second = start_sign_ins_for(&proxy, &portal.base, "203.0.113.2", 2).await;
    assert_eq!(
        second,
        [303, 303],
        "another client behind the same proxy has its own"
    );
    // Not through the proxy: the header is not believed, the connection's address is the client.
    let direct = client_from("127.0.0.2");
    let spoofed = start_sign_ins_for(&direct, &portal.base, "203.0.113.3", 3).await;
    assert_eq!(spoofed, [303, 303, 429]);
    let after = start_sign_ins_for(&proxy, &portal.base, "203.0.113.3", 1).await;
    assert_eq!(after, [303], "the spoofed address's share was not used");
}

#[tokio::test]
async fn when_sign_ins_fill_the_tenant_the_biggest_holder_gives_way_not_a_waiting_user() {
    let portal = portal_with(
        3600,
        "sessions: { pending_sign_ins_per_client: 4, pending_sign_ins_per_tenant: 8 }",
    )
    .await;
    // 127.0.0.1 holds the readiness probe's sign-in and the victim's: 2 of 8.
    let mut victim = Browser::default();
    let callback = victim
        .sign_in_at_op(&portal.base, &portal.op.issuer, "dev", "/")
        .await;
    let first = start_sign_ins(&client_from("127.0.0.2"), &portal.base, 5).await;
    assert_eq!(first, [303, 303, 303, 303, 429], "one client's share is 4");
    // The tenant is full after two more; a third makes the biggest holder (127.0.0.2) give up its
    // oldest, and a fourth would take this client above everyone else: 429.
    let second = start_sign_ins(&client_from("127.0.0.3"), &portal.base, 4).await;
    assert_eq!(second, [303, 303, 303, 429]);
    assert_eq!(victim.land(&portal.base, &callback).await, "/");
}

#[tokio::test]
async fn the_real_op_sends_iss_so_a_callback_without_it_or_with_another_is_refused() {
    let portal = portal(3600).await;
    let discovery: Value = reqwest::get(format!(
        "{}/.well-known/openid-configuration",
        portal.op.issuer
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        discovery["authorization_response_iss_parameter_supported"],
        true
    );
    let mut browser = Browser::default();
    for tamper in ["drop", "slash"] {
        let callback = browser
            .sign_in_at_op(&portal.base, &portal.op.issuer, "dev", "/")
            .await;
        let mut url = reqwest::Url::parse(&callback).unwrap();
        let iss = crate::helpers::query_of(&callback)["iss"].clone();
        assert_eq!(iss, portal.op.issuer);
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(key, _)| key != "iss")
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        if tamper == "slash" {
            url.query_pairs_mut().append_pair("iss", &format!("{iss}/"));
        }
        let page = browser.get(url.as_str()).await;
        assert_eq!(page.status, 401, "{tamper}: {}", page.body);
        assert!(page.body.contains("sign-in failed"), "{}", page.body);
        assert_eq!(browser.session(&portal.base), None, "{tamper}");
    }
    // Untouched, the same OP's callback signs in.
    assert_eq!(
        browser
            .sign_in(&portal.base, &portal.op.issuer, "dev", "/x")
            .await,
        "/x"
    );
}

#[tokio::test]
async fn return_paths_are_judged_after_removing_dot_segments_in_the_real_login_flow() {
    let portal = portal(3600).await;
    for evil in [
        "/..//evil.example",
        "/%2e%2e//evil.example",
        "/a/../../\\evil",
        "/./\\/evil.example",
        "/x/../auth/logout",
    ] {
        let mut browser = Browser::default();
        let landed = browser
            .sign_in(&portal.base, &portal.op.issuer, "dev", evil)
            .await;
        assert_eq!(landed, "/", "return_to={evil:?}");
        // Signed in already, the login page redirects at once: the same rule applies.
        let again = browser
            .get(&format!(
                "{}/auth/login?return_to={}",
                portal.base,
                urlencode(evil)
            ))
            .await;
        assert_eq!(again.status, 303);
        assert_eq!(
            again.location.as_deref(),
            Some(format!("{}/", portal.base).as_str())
        );
    }
    let mut browser = Browser::default();
    let landed = browser
        .sign_in(
            &portal.base,
            &portal.op.issuer,
            "dev",
            "/home/./tools/../status?q=../x",
        )
        .await;
    assert_eq!(landed, "/home/status?q=../x");
}

/// What the OP posted to portico's back-channel endpoint, through a relay that keeps a copy.
#[derive(Clone, Default)]
struct Relayed(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

/// Starts a relay that forwards each POST body to `target` and answers with portico's status.
async fn start_relay(target: String) -> (String, Relayed) {
    use axum::extract::State;
    let relayed = Relayed::default();
    let forward = async |State((target, relayed)): State<(String, Relayed)>, body: String| {
        relayed.0.lock().unwrap().push(body.clone());
        let response = reqwest::Client::new()
            .post(&target)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        axum::http::StatusCode::from_u16(response.status().as_u16()).unwrap()
    };
    let app = axum::Router::new()
        .route("/", axum::routing::post(forward))
        .with_state((target, relayed.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, relayed)
}

#[tokio::test]
async fn a_logout_token_from_the_real_op_works_once_and_is_refused_when_replayed() {
    let addr: SocketAddr = reserve_port();
    let base = format!("http://127.0.0.1:{}", addr.port());
    let (relay, relayed) = start_relay(format!("{base}/auth/backchannel-logout")).await;
    let op = RealOp::start(json!({
        "clients": [{
            "client_id": "portico",
            "client_secret": "portico-secret",
            "redirect_uris": [format!("{base}/auth/callback")],
            "post_logout_redirect_uris": [format!("{base}/auth/signed-out")],
            "backchannel_logout_uri": relay,
        }],
        "accessTokenTtl": 3600,
    }));
    let yaml = format!(
        r#"
server: {{ listen: "{addr}" }}
tenants:
  acme:
    hosts: ["127.0.0.1:{port}"]
    public_origin: {base}
    auth:
      oidc: {{ issuer: "{issuer}", client_id: portico, client_secret: portico-secret, scopes: [profile, email, groups] }}
    roles:
      developer: {{ groups: [acme-eng] }}
    apps:
      - {{ id: tools, access: {{ roles: [developer] }}, static: embedded:demo }}
"#,
        port = addr.port(),
        issuer = op.issuer,
    );
    let dir = tempfile::tempdir().unwrap();
    let mut config = compile(&yaml, dir.path());
    config.server.admin_listen = None;
    let app = portico::app::App::build(config)
        .await
        .expect("portico starts");
    tokio::spawn(app.run());
    wait_until_ready(&base).await;

    let mut first = Browser::default();
    first.sign_in(&base, &op.issuer, "dev", "/").await;
    let mut second = Browser::default();
    second.sign_in(&base, &op.issuer, "dev", "/").await;
    first
        .confirm_logout_at_op(&format!("{}/session/end", op.issuer), &op.issuer)
        .await;
    assert_eq!(session_json(&mut first, &base).await.0, 401, "logged out");
    assert_eq!(session_json(&mut second, &base).await.0, 200);

    let bodies = relayed.0.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "the OP sent one logout token: {bodies:?}");
    let token = bodies[0].strip_prefix("logout_token=").unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    assert!(
        claims["exp"].is_u64() && claims["jti"].is_string(),
        "a real OP's logout token has exp and jti: {claims}"
    );

    // Someone who kept a copy of the token sends it again: refused, and nothing else ends.
    let replay = reqwest::Client::new()
        .post(format!("{base}/auth/backchannel-logout"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(bodies[0].clone())
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400, "a replayed logout token is refused");
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["error"], "invalid_logout_token", "{body}");
    assert_eq!(session_json(&mut second, &base).await.0, 200);
}
