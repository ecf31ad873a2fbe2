//! Portico as an OIDC relying party against a FAKE OpenID Provider (tests/api/fake_idp.rs) that hands it
//! what a real OP never would: forged, unsigned, expired or misaddressed ID tokens, replayed callbacks,
//! reused codes, mixed-up issuers, bad logout tokens, failing refreshes. Every test asserts what the
//! user or the IdP sees: the callback's 401 `sign_in_failed` (JSON for API clients, an HTML page for a
//! browser) and no `portico_session` cookie; a 401 on the next request once a session must have ended.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use sha2::Digest;

use crate::fake_idp::{
    self, CLIENT_ID, CLIENT_SECRET, FakeIdp, TokenContext, TokenReply, s256, sign_hs256,
    sign_rs256, sign_rs256_typ, sign_with_other_key, sign_with_rotated_key, tampered, unsigned,
};
use crate::helpers::{
    Session, TIMEOUT, app, client, compile, config, json_error, query_of, session_from, tenant,
    user, with_param,
};
use crate::logs::Logs;
use crate::redis_server::RedisServer;

/// Reserves a loopback port portico can then listen on (its public origin must be known up front).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Tenant `acme` signs in at `issuer`, on 127.0.0.1:`port` or (`https`) behind TLS at [`HTTPS_HOST`];
/// tenant `globex` uses dev sign-in, with a user whose groups would be admin on acme.
fn config_yaml(port: u16, issuer: &str, https: bool, sessions: &str) -> String {
    let (host, origin) = if https {
        (HTTPS_HOST.to_owned(), format!("https://{HTTPS_HOST}"))
    } else {
        (
            format!("127.0.0.1:{port}"),
            format!("http://127.0.0.1:{port}"),
        )
    };
    let status = |roles: &[&str]| {
        app("status", roles)
            .key("label", "Status")
            .files("embedded:demo")
    };
    let acme = tenant("acme", &[&host])
        .public_origin(&origin)
        .title("Acme Portal")
        .oidc(&format!(
            "issuer: \"{issuer}\", client_id: {CLIENT_ID}, client_secret: {CLIENT_SECRET}, groups_claim: groups"
        ))
        .role("admin", &["acme-admins"])
        .role("developer", &["acme-eng"])
        .app(status(&["developer", "admin"]))
        .key("tokens", "{ personal: 30d }");
    let globex = tenant("globex", &["globex.test"])
        .user(
            user("alice", &["acme-admins", "acme-eng"])
                .name("Alice Globex")
                .email("alice@globex.test"),
        )
        .role("admin", &["acme-admins"])
        .app(status(&["admin"]));
    config()
        .top(&format!(
            "server: {{ listen: \"127.0.0.1:{port}\", admin_listen: \"127.0.0.1:0\" }}\n{sessions}"
        ))
        .tenant(acme)
        .tenant(globex)
        .yaml()
}

/// Acme's host when its public origin is HTTPS ([`Portal::start_https`]).
const HTTPS_HOST: &str = "portal.acme.test";

/// A running portico whose tenant `acme` signs in at the fake IdP (or at whatever `issuer` names).
struct Portal {
    addr: SocketAddr,
    admin: SocketAddr,
    client: reqwest::Client,
    issuer: String,
    _dir: tempfile::TempDir,
}

/// A login that portico started: where it sends the browser, and the binding cookie it set.
struct LoginStart {
    authorize_url: String,
    /// `portico_login=<value>`, ready for a `Cookie` header.
    binding: String,
}

impl Portal {
    /// Starts portico for `idp` and waits (bounded) until discovery has reached it.
    async fn start(idp: &FakeIdp) -> Portal {
        let portal = Portal::start_for(&idp.issuer).await;
        portal.wait_until_ready().await;
        portal
    }

    /// Starts portico for any issuer URL, without waiting for it.
    async fn start_for(issuer: &str) -> Portal {
        Portal::start_with(issuer, false).await
    }

    /// The same, with acme at `https://portal.acme.test` (TLS ending in front of portico): requests
    /// must then name that host (see [`HTTPS_HOST`]).
    async fn start_https(idp: &FakeIdp) -> Portal {
        let portal = Portal::start_with(&idp.issuer, true).await;
        portal.wait_until_ready().await;
        portal
    }

    /// Starts portico for `idp` with its sessions in `redis`, and waits until discovery reached it.
    async fn start_on_redis(idp: &FakeIdp, redis: &RedisServer) -> Portal {
        let dir = tempfile::tempdir().unwrap();
        let sessions = redis.sessions_yaml(dir.path());
        let portal = Portal::start_with_sessions(&idp.issuer, false, &sessions, dir).await;
        portal.wait_until_ready().await;
        portal
    }

    async fn start_with(issuer: &str, https: bool) -> Portal {
        Portal::start_with_sessions(issuer, https, "", tempfile::tempdir().unwrap()).await
    }

    async fn start_with_sessions(
        issuer: &str,
        https: bool,
        sessions: &str,
        dir: tempfile::TempDir,
    ) -> Portal {
        for attempt in 0..5 {
            let port = free_port();
            let yaml = config_yaml(port, issuer, https, sessions);
            let config = compile(&yaml, dir.path());
            match portico::app::App::build(config).await {
                Ok(app) => {
                    let addr = app.local_addr();
                    assert_eq!(addr.port(), port);
                    let admin = app.admin_addr().expect("admin listener");
                    tokio::spawn(app.run());
                    return Portal {
                        addr,
                        admin,
                        client: client(),
                        issuer: issuer.to_owned(),
                        _dir: dir,
                    };
                }
                // Another test took the reserved port in between: take another.
                Err(portico::app::StartError::Bind { .. }) if attempt < 4 => continue,
                Err(error) => panic!("portico does not start: {error}"),
            }
        }
        unreachable!()
    }

    async fn readyz(&self) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("http://{}/readyz", self.admin))
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    async fn wait_until_ready(&self) {
        let ready = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let (status, body) = self.readyz().await;
                if status == StatusCode::OK && body["sign_in"]["acme"]["status"] == "ready" {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        if ready.is_err() {
            let (status, body) = self.readyz().await;
            panic!("portico never reached the IdP: /readyz is {status} {body}");
        }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path))
    }

    /// `GET /auth/login?return_to=…` (raw query text): a 303 to the IdP with the binding cookie.
    async fn start_login_raw(&self, query: &str) -> LoginStart {
        let response = self
            .get(&format!("/auth/login?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "login starts");
        let authorize_url = response.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(
            authorize_url.starts_with(&format!("{}/authorize?", self.issuer)),
            "login goes to the IdP: {authorize_url}"
        );
        let binding = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with("portico_login="))
            .expect("the login binding cookie")
            .to_owned();
        assert!(
            binding.contains("Path=/auth/callback") && binding.contains("HttpOnly"),
            "{binding}"
        );
        LoginStart {
            authorize_url,
            binding: binding.split(';').next().unwrap().to_owned(),
        }
    }

    async fn start_login(&self, return_to: &str) -> LoginStart {
        let query = format!(
            "return_to={}",
            percent_encoding::utf8_percent_encode(return_to, percent_encoding::NON_ALPHANUMERIC)
        );
        self.start_login_raw(&query).await
    }

    /// Follows the redirect to the fake IdP, which signs the user in at once: the callback URL.
    async fn at_idp(&self, start: &LoginStart) -> String {
        let response = self.client.get(&start.authorize_url).send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "the fake IdP accepted the authorization request: {}",
            response.text().await.unwrap_or_default()
        );
        let callback = response.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(
            callback.starts_with(&format!("{}/auth/callback?", self.origin())),
            "{callback}"
        );
        callback
    }

    /// `GET <callback>` as an API client, with the binding cookie if given.
    async fn callback(&self, url: &str, binding: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(url);
        if let Some(binding) = binding {
            request = request.header("cookie", binding);
        }
        request.send().await.unwrap()
    }

    /// The same as a browser navigation.
    async fn callback_html(&self, url: &str, binding: Option<&str>) -> reqwest::Response {
        let mut request = self
            .client
            .get(url)
            .header("accept", "text/html,application/xhtml+xml")
            .header("sec-fetch-mode", "navigate");
        if let Some(binding) = binding {
            request = request.header("cookie", binding);
        }
        request.send().await.unwrap()
    }

    /// A whole login; returns the session and where portico sent the browser afterwards.
    async fn sign_in_to(&self, return_to: &str) -> (Session, String) {
        let start = self.start_login(return_to).await;
        let callback = self.at_idp(&start).await;
        let response = self.callback(&callback, Some(&start.binding)).await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "sign-in succeeds: {}",
            response.text().await.unwrap_or_default()
        );
        let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
        let session = session_from(response.headers()).expect("a session cookie");
        (session, location)
    }

    async fn sign_in(&self) -> Session {
        self.sign_in_to("/x").await.0
    }

    /// `GET /auth/session` as the holder of `session`.
    async fn session_info(&self, session: &Session) -> reqwest::Response {
        self.get("/auth/session")
            .header("cookie", &session.cookie)
            .send()
            .await
            .unwrap()
    }

    /// Asserts the session works and returns `/auth/session`'s body.
    async fn whoami(&self, session: &Session) -> Value {
        let response = self.session_info(session).await;
        assert_eq!(response.status(), StatusCode::OK, "the session works");
        response.json().await.unwrap()
    }

    /// Asserts the session no longer works (401 JSON).
    async fn assert_signed_out(&self, session: &Session) {
        json_error(self.session_info(session).await, 401, "not_signed_in").await;
    }

    async fn backchannel_logout(&self, token: &str) -> reqwest::Response {
        self.post("/auth/backchannel-logout")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("logout_token={token}"))
            .send()
            .await
            .unwrap()
    }
}

/// The callback refused sign-in the way an API client sees it, and no session was handed out.
async fn assert_refused(response: reqwest::Response) -> Value {
    assert!(
        session_from(response.headers()).is_none(),
        "a refused sign-in sets no session cookie"
    );
    json_error(response, 401, "sign_in_failed").await
}

/// The same for a browser: an HTML page saying sign-in failed, and no session.
async fn assert_refused_page(response: reqwest::Response) -> String {
    assert!(session_from(response.headers()).is_none());
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = response.text().await.unwrap();
    assert!(
        page.contains("sign-in failed") && page.contains("error-page"),
        "{page}"
    );
    page
}

/// One full login whose token response the current scenario built; asserts it is refused.
async fn assert_login_refused(portal: &Portal) {
    let start = portal.start_login("/x").await;
    let callback = portal.at_idp(&start).await;
    assert_refused(portal.callback(&callback, Some(&start.binding)).await).await;
}

/// The same, seen by a browser.
async fn assert_login_refused_page(portal: &Portal) {
    let start = portal.start_login("/x").await;
    let callback = portal.at_idp(&start).await;
    assert_refused_page(portal.callback_html(&callback, Some(&start.binding)).await).await;
}

/// A fake IdP and a portal that signs in at it (discovery done).
async fn started() -> (FakeIdp, Portal) {
    let idp = FakeIdp::start().await;
    let portal = Portal::start(&idp).await;
    (idp, portal)
}

/// The IdP answers every login with the ID token `id_token` makes; the login must be refused.
async fn refuses_token(
    idp: &FakeIdp,
    portal: &Portal,
    id_token: impl Fn(&TokenContext) -> String + Send + Sync + 'static,
) {
    idp.set_id_token(id_token);
    assert_login_refused(portal).await;
}

/// The IdP correctly signs ID tokens whose claims `change` altered; the login must be refused.
async fn refuses(
    idp: &FakeIdp,
    portal: &Portal,
    change: impl Fn(&mut Value) + Send + Sync + 'static,
) {
    refuses_token(idp, portal, move |ctx| {
        let mut claims = ctx.claims();
        change(&mut claims);
        sign_rs256(&claims)
    })
    .await;
}

fn roles(whoami: &Value) -> Vec<String> {
    whoami["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|role| role.as_str().unwrap().to_owned())
        .collect()
}

/// The token request authenticates the client with its secret, by exactly one method
/// (`client_secret_basic` or `client_secret_post`).
fn assert_client_authenticated_once(token: &fake_idp::TokenRequest) {
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let client_secret_post = token.form.get("client_secret").map(String::as_str)
        == Some(CLIENT_SECRET)
        && token.form.get("client_id").map(String::as_str) == Some(CLIENT_ID);
    assert!(
        token.authorization.as_deref() == Some(basic.as_str()) || client_secret_post,
        "client authentication: {token:?}"
    );
    assert!(
        !(token.authorization.is_some() && token.form.contains_key("client_secret")),
        "one client authentication method, not two"
    );
}

// 1 ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn sign_in_uses_pkce_state_nonce_and_client_authentication() {
    let idp = FakeIdp::start().await;
    idp.set_groups("alice", &["acme-eng", "acme-admins"]);
    let portal = Portal::start(&idp).await;

    let start = portal.start_login("/x").await;
    let callback = portal.at_idp(&start).await;
    let response = portal.callback(&callback, Some(&start.binding)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/x");
    let cookies: Vec<&str> = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("portico_login=;") && c.contains("Max-Age=0")),
        "the binding cookie is cleared: {cookies:?}"
    );
    let session_cookie = cookies
        .iter()
        .find(|c| c.starts_with("portico_session="))
        .unwrap();
    assert!(
        session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"),
        "{session_cookie}"
    );
    let session = session_from(response.headers()).unwrap();

    let me = portal.whoami(&session).await;
    assert_eq!(me["tenant"], "acme");
    assert_eq!(me["user"]["id"], "alice");
    assert_eq!(me["user"]["email"], "alice@idp.test");
    assert_eq!(me["user"]["name"], "User alice");
    assert_eq!(me["user"]["groups"], json!(["acme-eng", "acme-admins"]));
    assert_eq!(roles(&me), ["admin", "developer"]);

    // The authorization request: code flow, our client, PKCE S256, a state and a nonce.
    let authorize = &idp.authorize_requests()[0];
    assert_eq!(authorize["response_type"], "code");
    assert_eq!(authorize["client_id"], CLIENT_ID);
    assert_eq!(
        authorize["redirect_uri"],
        format!("{}/auth/callback", portal.origin())
    );
    assert!(
        authorize["scope"].split(' ').any(|s| s == "openid"),
        "{authorize:?}"
    );
    assert_eq!(authorize["code_challenge_method"], "S256");
    let challenge = &authorize["code_challenge"];
    assert_eq!(challenge.len(), 43, "a base64url SHA-256: {challenge}");
    assert!(authorize["state"].len() >= 16, "{authorize:?}");
    assert!(authorize["nonce"].len() >= 16, "{authorize:?}");
    assert_eq!(query_of(&callback)["state"], authorize["state"]);

    // The token request: the code, the same redirect URI, the verifier of that challenge, and the
    // client authenticated with its secret.
    let tokens = idp.token_requests();
    assert_eq!(tokens.len(), 1);
    let token = &tokens[0];
    assert_eq!(token.form["grant_type"], "authorization_code");
    assert_eq!(token.form["code"], query_of(&callback)["code"]);
    assert_eq!(token.form["redirect_uri"], authorize["redirect_uri"]);
    let verifier = &token.form["code_verifier"];
    assert!((43..=128).contains(&verifier.len()), "{verifier}");
    assert_eq!(
        &s256(verifier),
        challenge,
        "the verifier hashes to the challenge"
    );
    assert_client_authenticated_once(token);

    // A second login: state, nonce, challenge and verifier are all fresh.
    let second = portal.start_login("/y").await;
    let second_callback = portal.at_idp(&second).await;
    assert_ne!(second.binding, start.binding, "a fresh binding cookie");
    let response = portal
        .callback(&second_callback, Some(&second.binding))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/y");
    let second_session = session_from(response.headers()).unwrap();
    assert_ne!(second_session.id, session.id, "a fresh session id");
    let authorize_again = &idp.authorize_requests()[1];
    for field in ["state", "nonce", "code_challenge"] {
        assert_ne!(
            authorize_again[field], authorize[field],
            "{field} is fresh per login"
        );
    }
    assert_eq!(authorize_again["code_challenge_method"], "S256");
    let second_verifier = &idp.token_requests()[1].form["code_verifier"];
    assert_ne!(second_verifier, verifier);
    assert_eq!(s256(second_verifier), authorize_again["code_challenge"]);
}

// 2 ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn id_token_signed_with_another_key_is_refused() {
    let (idp, portal) = started().await;
    refuses_token(&idp, &portal, |ctx| sign_with_other_key(&ctx.claims())).await;
    assert_login_refused_page(&portal).await;
}

#[tokio::test]
async fn id_token_whose_claims_were_changed_after_signing_is_refused() {
    let (idp, portal) = started().await;
    refuses_token(&idp, &portal, |ctx| {
        let signed = sign_rs256(&ctx.claims());
        let mut claims = ctx.claims();
        claims["groups"] = json!(["acme-admins"]);
        tampered(&signed, &claims)
    })
    .await;
}

// 3 ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn id_token_from_another_issuer_is_refused() {
    let (idp, portal) = started().await;
    refuses(&idp, &portal, |claims| {
        claims["iss"] = json!("https://evil.example");
    })
    .await;
    refuses(&idp, &portal, |claims| {
        claims.as_object_mut().unwrap().remove("iss");
    })
    .await;
}

// 4 ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn id_token_for_another_audience_is_refused() {
    let (idp, portal) = started().await;
    refuses(&idp, &portal, |claims| {
        claims["aud"] = json!("someone-else")
    })
    .await;
    // Issued to another client as well as to us: that client could replay it here.
    refuses(&idp, &portal, |claims| {
        claims["aud"] = json!([CLIENT_ID, "someone-else"]);
    })
    .await;
}

// 5 ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn expired_id_token_is_refused() {
    let (idp, portal) = started().await;
    refuses(&idp, &portal, |claims| {
        let now = fake_idp::now();
        claims["iat"] = json!(now - 3600);
        claims["exp"] = json!(now - 600);
    })
    .await;
}

// 6 ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn id_token_with_a_wrong_or_missing_nonce_is_refused() {
    let (idp, portal) = started().await;
    refuses(&idp, &portal, |claims| {
        claims["nonce"] = json!("not-the-nonce-portico-sent");
    })
    .await;
    refuses(&idp, &portal, |claims| {
        claims.as_object_mut().unwrap().remove("nonce");
    })
    .await;
}

// 7 ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn unsigned_and_client_secret_signed_id_tokens_are_refused() {
    let (idp, portal) = started().await;
    refuses_token(&idp, &portal, |ctx| unsigned(&ctx.claims())).await;
    // `alg: none` with the old signature left on.
    refuses_token(&idp, &portal, |ctx| {
        let signed = sign_rs256(&ctx.claims());
        let signature = signed.rsplit('.').next().unwrap().to_owned();
        format!("{}{signature}", unsigned(&ctx.claims()))
    })
    .await;
    // HS256 keyed with the client secret: anyone holding the secret could mint this.
    refuses_token(&idp, &portal, |ctx| {
        sign_hs256(&ctx.claims(), CLIENT_SECRET)
    })
    .await;
    // The honest IdP still works on the same portal: the refusals above were about the tokens.
    idp.set_scenario(|ctx| ctx.honest());
    portal.sign_in().await;
}

// 8 ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_replayed_callback_is_refused_and_creates_no_session() {
    let (idp, portal) = started().await;
    let start = portal.start_login("/x").await;
    let callback = portal.at_idp(&start).await;
    let first = portal.callback(&callback, Some(&start.binding)).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    assert!(session_from(first.headers()).is_some());
    assert_eq!(idp.token_calls("authorization_code"), 1);

    assert_refused(portal.callback(&callback, Some(&start.binding)).await).await;
    assert_refused_page(portal.callback_html(&callback, Some(&start.binding)).await).await;
    assert_eq!(
        idp.token_calls("authorization_code"),
        1,
        "a replayed state never reaches the token endpoint"
    );
}

// 9 ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_code_the_idp_refuses_as_already_used_fails_sign_in_without_retrying() {
    let (idp, portal) = started().await;
    let first = portal.start_login("/x").await;
    let first_callback = portal.at_idp(&first).await;
    let response = portal.callback(&first_callback, Some(&first.binding)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // A second, genuine login in flight, whose callback carries the first login's (spent) code.
    let second = portal.start_login("/x").await;
    let second_callback = portal.at_idp(&second).await;
    let code = query_of(&first_callback)["code"].clone();
    let replayed = with_param(&second_callback, "code", &code);
    assert_refused(portal.callback(&replayed, Some(&second.binding)).await).await;

    let presented: Vec<_> = idp
        .token_requests()
        .into_iter()
        .filter(|request| request.form.get("code") == Some(&code))
        .collect();
    assert_eq!(
        presented.len(),
        2,
        "the spent code went to the IdP once more, and portico did not retry"
    );
    assert_eq!(idp.token_calls("authorization_code"), 2);
}

// 10 -----------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_callback_with_a_state_portico_never_issued_is_refused() {
    let (idp, portal) = started().await;
    // PKCE is always sent: the fake refuses authorization requests without an S256 challenge, and
    // the first test checks the verifier; here, states portico never issued.
    let start = portal.start_login("/x").await;
    let callback = portal.at_idp(&start).await;
    let forged = with_param(&callback, "state", "a-state-portico-never-issued");
    assert_refused(portal.callback(&forged, Some(&start.binding)).await).await;
    let stateless = format!(
        "{}/auth/callback?code={}&iss={}",
        portal.origin(),
        query_of(&callback)["code"],
        idp.issuer
    );
    assert_refused(portal.callback(&stateless, Some(&start.binding)).await).await;
    assert_eq!(
        idp.token_calls("authorization_code"),
        0,
        "no code is redeemed for an unknown state"
    );
    // The genuine callback still works.
    let response = portal.callback(&callback, Some(&start.binding)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(session_from(response.headers()).is_some());
}

// 11 -----------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_callback_naming_another_issuer_is_refused_before_the_code_is_redeemed() {
    let (idp, portal) = started().await;
    let start = portal.start_login("/x").await;
    let callback = portal.at_idp(&start).await;
    let mixed_up = with_param(&callback, "iss", "https://evil.example");
    assert_refused(portal.callback(&mixed_up, Some(&start.binding)).await).await;
    assert_eq!(
        idp.token_calls("authorization_code"),
        0,
        "the code was not sent anywhere"
    );
}

#[tokio::test]
async fn a_callback_with_an_idp_error_shows_a_sign_in_failed_page() {
    let (idp, portal) = started().await;
    let start = portal.start_login("/x").await;
    let callback = portal.at_idp(&start).await;
    let state = &query_of(&callback)["state"];
    let denied = format!(
        "{}/auth/callback?error=access_denied&error_description=The+user+said+no&state={state}&iss={}",
        portal.origin(),
        idp.issuer
    );
    let page = assert_refused_page(portal.callback_html(&denied, Some(&start.binding)).await).await;
    assert!(page.contains("href=\"/\""), "a way back: {page}");
    assert_eq!(idp.token_calls("authorization_code"), 0);

    let start = portal.start_login("/x").await;
    let callback = portal.at_idp(&start).await;
    let state = &query_of(&callback)["state"];
    let denied = format!(
        "{}/auth/callback?error=access_denied&state={state}",
        portal.origin()
    );
    assert_refused(portal.callback(&denied, Some(&start.binding)).await).await;
}

// 12 -----------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_callback_without_the_browsers_binding_cookie_is_refused() {
    let (idp, portal) = started().await;
    // An attacker starts a login, and gets the victim's browser to open the callback link.
    let start = portal.start_login("/x").await;
    let callback = portal.at_idp(&start).await;
    assert_refused(portal.callback(&callback, None).await).await;

    let start = portal.start_login("/x").await;
    let callback = portal.at_idp(&start).await;
    let other_browser = portal.start_login("/x").await;
    assert_refused(
        portal
            .callback(&callback, Some(&other_browser.binding))
            .await,
    )
    .await;

    let start = portal.start_login("/x").await;
    let callback = portal.at_idp(&start).await;
    assert_refused_page(portal.callback_html(&callback, None).await).await;
    assert_eq!(
        idp.token_calls("authorization_code"),
        0,
        "no code is redeemed for another browser"
    );
}

// 13 -----------------------------------------------------------------------------------------------

#[tokio::test]
async fn return_paths_never_leave_the_portal() {
    let (_idp, portal) = started().await;
    for evil in [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "/\\/evil.example",
        "///evil.example",
        "http:evil.example",
        "/\t/evil.example",
        "/auth/logout",
    ] {
        let (session, location) = portal.sign_in_to(evil).await;
        assert_eq!(location, "/", "return_to={evil:?}");
        portal.whoami(&session).await;
    }
    // Encoded in the query as a browser would send it.
    for raw in [
        "return_to=https%3A%2F%2Fevil.example%2F",
        "return_to=%2F%2Fevil.example",
        "return_to=%2F%5Cevil.example",
        "return_to=//evil.example",
    ] {
        let start = portal.start_login_raw(raw).await;
        let callback = portal.at_idp(&start).await;
        let response = portal.callback(&callback, Some(&start.binding)).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()[LOCATION], "/", "{raw}");
    }
    let (_, location) = portal.sign_in_to("/home/status?x=1&y=%2F").await;
    assert_eq!(location, "/home/status?x=1&y=%2F");
}

// 14 -----------------------------------------------------------------------------------------------

#[tokio::test]
async fn forged_or_tampered_session_cookies_are_refused() {
    let (_idp, portal) = started().await;
    let session = portal.sign_in().await;
    let shell_config = |cookie: String| {
        portal
            .get("/shell/config.json")
            .header("cookie", cookie)
            .send()
    };
    assert_eq!(
        shell_config(session.cookie.clone()).await.unwrap().status(),
        StatusCode::OK
    );

    let mut flipped = session.id.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    // Well-formed (43 base64url characters, like a real id) but never issued.
    let random = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    assert_eq!(random.len(), 43);
    // A real session of the other tenant on this host (same user id, even).
    let globex = portal
        .post("/auth/dev-login")
        .header("host", "globex.test")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=alice&return_to=%2F")
        .send()
        .await
        .unwrap();
    assert_eq!(globex.status(), StatusCode::SEE_OTHER);
    let globex = session_from(globex.headers()).unwrap();
    let globex_works = portal
        .get("/auth/session")
        .header("host", "globex.test")
        .header("cookie", &globex.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(globex_works.status(), StatusCode::OK);

    for (what, value) in [
        ("one character flipped", flipped),
        ("random", random),
        ("another tenant's session", globex.id.clone()),
        ("too short", session.id[..42].to_owned()),
        ("too long", format!("{}A", session.id)),
        ("empty", String::new()),
    ] {
        let response = shell_config(format!("portico_session={value}"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        json_error(response, 401, "not_signed_in").await;
    }
    // None of this harmed the real session.
    assert_eq!(
        shell_config(session.cookie.clone()).await.unwrap().status(),
        StatusCode::OK
    );
}

// 15 -----------------------------------------------------------------------------------------------

#[tokio::test]
async fn logout_needs_this_origin_and_then_ends_the_idp_session_too() {
    let (idp, portal) = started().await;
    let session = portal.sign_in().await;
    let config: Value = portal
        .get("/shell/config.json")
        .header("cookie", &session.cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = config["portico"]["csrfToken"].as_str().unwrap().to_owned();

    for (name, value) in [
        ("origin", "http://evil.example"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "null"),
    ] {
        let response = portal
            .post("/auth/logout")
            .header("cookie", &session.cookie)
            .header("x-portico-csrf", &csrf)
            .header(name, value)
            .send()
            .await
            .unwrap();
        json_error(response, 403, "csrf_rejected").await;
        portal.whoami(&session).await;
    }

    let response = portal
        .post("/auth/logout")
        .header("cookie", &session.cookie)
        .header("origin", portal.origin())
        .header("x-portico-csrf", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("portico_session=;")),
        "the cookie is cleared"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["signed_out"], true);
    let redirect = body["redirect"].as_str().unwrap();
    assert!(
        redirect.starts_with(&format!("{}?", idp.end_session_endpoint())),
        "{redirect}"
    );
    let query = query_of(redirect);
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(
        query["post_logout_redirect_uri"],
        format!("{}/auth/signed-out", portal.origin())
    );
    let issued = idp.token_requests().len();
    assert_eq!(issued, 1);
    // The ID token that the token endpoint issued for this login.
    let hint = &query["id_token_hint"];
    let payload = hint.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["iss"], idp.issuer);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(
        claims["nonce"],
        idp.authorize_requests()[0]["nonce"],
        "the hint is the ID token of this login"
    );

    portal.assert_signed_out(&session).await;
    let signed_out = portal
        .get("/auth/signed-out")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), StatusCode::OK);
    assert!(signed_out.text().await.unwrap().contains("signed out"));
}

// 16 -----------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_idp_that_is_down_at_start_makes_sign_in_unavailable_not_the_portal() {
    // The IdP's port is reserved but nothing listens yet: connections are refused, as for a host
    // whose IdP process is down.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    let issuer = format!("http://127.0.0.1:{port}");
    let portal = Portal::start_for(&issuer).await;
    // Readiness says which tenant cannot sign users in, and why, but the instance is ready: it serves
    // (503 only while the IdP has not been tried yet).
    let reported = tokio::time::timeout(TIMEOUT, async {
        loop {
            let (status, body) = portal.readyz().await;
            if body["sign_in"]["acme"]["status"] == "degraded" {
                assert_eq!(status, StatusCode::OK, "{body}");
                return body;
            }
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            assert_eq!(body["status"], "starting", "{body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("readiness reports the IdP unavailable");
    assert_eq!(reported["status"], "degraded");
    assert!(
        reported["tenants"]
            .as_array()
            .unwrap()
            .contains(&json!("acme"))
    );
    let reason = reported["sign_in"]["acme"]["reason"].as_str().unwrap();
    assert!(!reason.is_empty(), "{reported}");
    assert!(
        reported["sign_in"].get("globex").is_none(),
        "dev sign-in has no IdP"
    );

    // The portal is up: a browser gets a page saying sign-in is unavailable, a script gets JSON.
    let page = portal
        .get("/auth/login?return_to=%2Fx")
        .header("accept", "text/html")
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.headers().get(LOCATION).is_none());
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let text = page.text().await.unwrap();
    assert!(text.contains("sign-in is unavailable"), "{text}");
    let api = portal.get("/auth/login").send().await.unwrap();
    json_error(api, 503, "sign_in_unavailable").await;
    // Other pages still answer.
    let health = portal
        .client
        .get(format!("http://{}/healthz", portal.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    json_error(
        portal.get("/shell/config.json").send().await.unwrap(),
        401,
        "not_signed_in",
    )
    .await;

    // When the IdP comes up, sign-in starts working without a restart.
    let idp = FakeIdp::serve(socket.listen(64).unwrap());
    assert_eq!(idp.issuer, issuer);
    portal.wait_until_ready().await;
    let session = portal.sign_in().await;
    assert_eq!(portal.whoami(&session).await["user"]["id"], "alice");
}

// 17 -----------------------------------------------------------------------------------------------

#[tokio::test]
async fn backchannel_logout_ends_only_the_named_users_sessions() {
    let (idp, portal) = started().await;
    idp.sign_in_next_as("alice");
    let alice = portal.sign_in().await;
    let alice_again = portal.sign_in().await;
    idp.sign_in_next_as("bob");
    let bob = portal.sign_in().await;

    let token = sign_rs256_typ(&idp.logout_claims("alice"), "logout+jwt");
    let response = portal.backchannel_logout(&token).await;
    assert_eq!(response.status(), StatusCode::OK);
    portal.assert_signed_out(&alice).await;
    portal.assert_signed_out(&alice_again).await;
    assert_eq!(portal.whoami(&bob).await["user"]["id"], "bob");

    // By IdP session id alone.
    let mut by_sid = idp.logout_claims("bob");
    by_sid.as_object_mut().unwrap().remove("sub");
    by_sid["sid"] = json!("sid-bob");
    let response = portal
        .backchannel_logout(&sign_rs256_typ(&by_sid, "logout+jwt"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    portal.assert_signed_out(&bob).await;
}

/// A personal token dies with its user when the IdP logs the subject out as a whole (a logout token
/// without `sid`, what an IdP sends when it disables or removes a user), not when one session ends.
/// The fake IdP signs both kinds: the real one cannot be made to send a subject-only logout token.
#[tokio::test]
async fn a_subject_logout_ends_the_users_personal_tokens_and_a_session_logout_does_not() {
    let (logs, _guard) = Logs::capture();
    let (idp, portal) = started().await;
    idp.sign_in_next_as("alice");
    let alice = portal.sign_in().await;
    let config: Value = portal
        .get("/shell/config.json")
        .header("cookie", &alice.cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = portal
        .post("/auth/tokens")
        .header("cookie", &alice.cookie)
        .header("origin", portal.origin())
        .header(
            "x-portico-csrf",
            config["portico"]["csrfToken"].as_str().unwrap(),
        )
        .json(&json!({ "name": "nightly" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let token = response.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let status_of = |token: String| {
        let request = portal.get("/apps/status/").bearer_auth(token);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(status_of(token.clone()).await, StatusCode::OK);

    // One of alice's IdP sessions ends: her token lives on.
    let mut by_sid = idp.logout_claims("alice");
    by_sid["sid"] = json!("sid-alice");
    let response = portal
        .backchannel_logout(&sign_rs256_typ(&by_sid, "logout+jwt"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(status_of(token.clone()).await, StatusCode::OK);

    // The IdP ends alice herself.
    let response = portal
        .backchannel_logout(&sign_rs256_typ(&idp.logout_claims("alice"), "logout+jwt"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    portal.assert_signed_out(&alice).await;
    assert_eq!(status_of(token).await, StatusCode::UNAUTHORIZED);
    let revoked = logs.audit("token_revoked");
    assert!(
        revoked
            .iter()
            .any(|line| line["user"] == "alice" && line["trigger"] == "backchannel_logout"),
        "{revoked:?}"
    );
}

#[tokio::test]
async fn invalid_logout_tokens_are_refused_and_sessions_survive() {
    let (idp, portal) = started().await;
    let alice = portal.sign_in().await;
    let good = idp.logout_claims("alice");
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = good.clone();
        change(&mut claims);
        claims
    };
    let cases: Vec<(&str, String)> = vec![
        ("bad signature", sign_with_other_key(&good)),
        ("tampered", {
            let mut other = good.clone();
            other["sub"] = json!("bob");
            tampered(&sign_rs256(&other), &good)
        }),
        (
            "wrong issuer",
            sign_rs256(&with(&|c| c["iss"] = json!("https://evil.example"))),
        ),
        (
            "wrong audience",
            sign_rs256(&with(&|c| c["aud"] = json!("someone-else"))),
        ),
        (
            "no events",
            sign_rs256(&with(&|c| {
                c.as_object_mut().unwrap().remove("events");
            })),
        ),
        (
            "another event",
            sign_rs256(&with(&|c| {
                c["events"] = json!({ "http://schemas.openid.net/event/other": {} });
            })),
        ),
        (
            "a nonce",
            sign_rs256(&with(&|c| c["nonce"] = json!("n-0S6_WzA2Mj"))),
        ),
        (
            "neither sub nor sid",
            sign_rs256(&with(&|c| {
                c.as_object_mut().unwrap().remove("sub");
            })),
        ),
        ("alg none", unsigned(&good)),
        (
            "HS256 with the client secret",
            sign_hs256(&good, CLIENT_SECRET),
        ),
        (
            "expired",
            sign_rs256(&with(&|c| {
                c["iat"] = json!(fake_idp::now() - 3600);
                c["exp"] = json!(fake_idp::now() - 1800);
            })),
        ),
        ("not a JWT", "not-a-jwt".to_owned()),
    ];
    for (what, token) in cases {
        let response = portal.backchannel_logout(&token).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_logout_token", "{what}: {body}");
        portal.whoami(&alice).await;
    }
    let missing = portal
        .post("/auth/backchannel-logout")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("other=1")
        .send()
        .await
        .unwrap();
    json_error(missing, 400, "invalid_logout_token").await;
    portal.whoami(&alice).await;
}

// 18 -----------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_refresh_rereads_the_users_groups() {
    let (idp, portal) = started().await;
    idp.set_expires_in(1);
    let (session, _) = portal.sign_in_to("/x").await;
    assert_eq!(idp.token_calls("refresh_token"), 0);
    let login_token = &idp.token_requests()[0];
    assert_eq!(login_token.form["grant_type"], "authorization_code");

    // The user leaves acme-eng and joins acme-admins at the IdP; the access token expires.
    idp.set_groups("alice", &["acme-admins"]);
    idp.set_expires_in(3600);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let me = portal.whoami(&session).await;
    assert_eq!(idp.token_calls("refresh_token"), 1, "the request refreshed");
    assert_eq!(roles(&me), ["admin"], "{me}");
    assert_eq!(me["user"]["groups"], json!(["acme-admins"]));
    let refresh = idp
        .token_requests()
        .into_iter()
        .find(|r| r.form["grant_type"] == "refresh_token")
        .unwrap();
    assert_eq!(
        refresh.form["refresh_token"], "rt-1",
        "the login's refresh token"
    );
    assert!(
        refresh.authorization.is_some() || refresh.form.contains_key("client_secret"),
        "the refresh is client-authenticated"
    );
    // Fresh tokens: no more refreshing.
    portal.whoami(&session).await;
    assert_eq!(idp.token_calls("refresh_token"), 1);
}

#[tokio::test]
async fn a_refresh_the_idp_refuses_ends_the_session() {
    let (idp, portal) = started().await;
    idp.set_expires_in(1);
    idp.set_scenario(|ctx| {
        if ctx.grant_type == "refresh_token" {
            TokenReply::error(400, "invalid_grant")
        } else {
            ctx.honest()
        }
    });
    let session = portal.sign_in().await;
    let other = {
        idp.set_expires_in(3600);
        portal.sign_in().await
    };
    tokio::time::sleep(Duration::from_millis(2000)).await;
    portal.assert_signed_out(&session).await;
    assert_eq!(idp.token_calls("refresh_token"), 1);
    portal.assert_signed_out(&session).await;
    assert_eq!(
        idp.token_calls("refresh_token"),
        1,
        "the ended session is not refreshed again"
    );
    // A browser is sent to sign in again.
    let page = portal
        .get("/shell/config.json")
        .header("cookie", &session.cookie)
        .header("accept", "text/html")
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert!(
        page.headers()[LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/auth/login")
    );
    portal.whoami(&other).await;
}

#[tokio::test]
async fn a_refreshed_id_token_that_fails_verification_ends_the_session() {
    let (idp, portal) = started().await;
    idp.set_expires_in(1);
    let first = portal.sign_in().await;
    let second = portal.sign_in().await;
    tokio::time::sleep(Duration::from_millis(2000)).await;

    // The refreshed ID token names another user.
    idp.set_id_token(|ctx| {
        let mut claims = ctx.claims();
        if ctx.grant_type == "refresh_token" {
            claims["sub"] = json!("bob");
        }
        sign_rs256(&claims)
    });
    portal.assert_signed_out(&first).await;
    assert_eq!(idp.token_calls("refresh_token"), 1);

    // The refreshed ID token is signed with a key the IdP never published.
    idp.set_id_token(|ctx| {
        if ctx.grant_type == "refresh_token" {
            sign_with_other_key(&ctx.claims())
        } else {
            sign_rs256(&ctx.claims())
        }
    });
    portal.assert_signed_out(&second).await;
    assert_eq!(idp.token_calls("refresh_token"), 2);
}

#[tokio::test]
async fn concurrent_requests_at_refresh_time_share_one_refresh() {
    let (idp, portal) = started().await;
    idp.set_expires_in(1);
    let session = portal.sign_in().await;
    idp.set_expires_in(3600);
    idp.set_groups("alice", &["acme-admins"]);
    idp.set_token_delay(Duration::from_millis(300));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let (a, b, c) = tokio::join!(
        portal.whoami(&session),
        portal.whoami(&session),
        portal.whoami(&session)
    );
    assert_eq!(
        idp.token_calls("refresh_token"),
        1,
        "one refresh for the three requests"
    );
    for me in [a, b, c] {
        assert_eq!(roles(&me), ["admin"], "{me}");
    }
}

/// A refresh wrote the whole record back when its token call returned, so a session ended during the
/// call (here by a back-channel logout) came back to life.
#[tokio::test]
async fn a_refresh_under_way_when_the_session_ends_does_not_bring_it_back() {
    let (idp, portal) = started().await;
    idp.set_expires_in(1);
    let session = portal.sign_in().await;
    idp.set_expires_in(3600);
    idp.set_token_delay(Duration::from_millis(1500));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let token = sign_rs256_typ(&idp.logout_claims("alice"), "logout+jwt");
    let (during, logout) = tokio::join!(portal.session_info(&session), async {
        // The refresh is waiting for the IdP's answer.
        tokio::time::sleep(Duration::from_millis(500)).await;
        portal.backchannel_logout(&token).await
    });
    assert_eq!(logout.status(), StatusCode::OK);
    assert_eq!(idp.token_calls("refresh_token"), 1);
    json_error(during, 401, "not_signed_in").await;
    portal.assert_signed_out(&session).await;
}

/// With a token lifetime shorter than the refresh margin, every request was due for a refresh.
#[tokio::test]
async fn short_lived_tokens_are_not_refreshed_on_every_request() {
    let (idp, portal) = started().await;
    idp.set_expires_in(20);
    let session = portal.sign_in().await;
    for _ in 0..3 {
        portal.whoami(&session).await;
    }
    assert_eq!(
        idp.token_calls("refresh_token"),
        0,
        "a token valid for 20 s is not refreshed at once"
    );
}

// Extra: what else a real OP would not send, and key rotation -------------------------------------

#[tokio::test]
async fn id_token_bound_to_another_access_token_is_refused() {
    let (idp, portal) = started().await;
    // `at_hash` names a different access token than the one in the response (OIDC Core 3.1.3.6).
    refuses(&idp, &portal, |claims| {
        claims["at_hash"] = json!(URL_SAFE_NO_PAD.encode([0u8; 16]));
    })
    .await;
    // A correct `at_hash` is accepted (so the refusal above was about the hash).
    idp.set_id_token(|ctx| {
        let mut claims = ctx.claims();
        let access_token = format!("at-{}", ctx.call);
        let digest = sha2::Sha256::digest(access_token.as_bytes());
        claims["at_hash"] = json!(URL_SAFE_NO_PAD.encode(&digest[..16]));
        sign_rs256(&claims)
    });
    portal.sign_in().await;
}

/// Repeats `attempt` (bounded by [`TIMEOUT`]) until it returns true: portico re-fetches an IdP's keys
/// on an unknown `kid`, but at most every few seconds, so the first attempts may come too soon.
async fn eventually(what: &str, mut attempt: impl AsyncFnMut() -> bool) -> usize {
    let mut tries = 0;
    let done = tokio::time::timeout(TIMEOUT, async {
        loop {
            tries += 1;
            if attempt().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    assert!(done.is_ok(), "{what}: still failing after {tries} tries");
    tries
}

#[tokio::test]
async fn a_logout_token_signed_with_a_newly_rotated_key_is_accepted() {
    let (idp, portal) = started().await;
    let alice = portal.sign_in().await;
    idp.rotate_keys();
    let token = sign_with_rotated_key(&idp.logout_claims("alice"), "logout+jwt");
    eventually("logout with the rotated key", async || {
        let status = portal.backchannel_logout(&token).await.status();
        assert!(
            status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
            "{status}"
        );
        status == StatusCode::OK
    })
    .await;
    portal.assert_signed_out(&alice).await;
    let (discoveries, jwks) = idp.discovery_fetches();
    assert!(
        discoveries <= 3 && jwks <= 3,
        "rate-limited: {discoveries} discoveries, {jwks} JWKS fetches"
    );
}

#[tokio::test]
async fn an_id_token_signed_with_a_newly_rotated_key_is_accepted() {
    let (idp, portal) = started().await;
    idp.rotate_keys();
    idp.set_id_token(|ctx| sign_with_rotated_key(&ctx.claims(), "JWT"));
    let mut session = None;
    eventually("sign-in with the rotated key", async || {
        let start = portal.start_login("/x").await;
        let callback = portal.at_idp(&start).await;
        let response = portal.callback(&callback, Some(&start.binding)).await;
        session = session_from(response.headers());
        if session.is_none() {
            assert_refused(response).await;
        }
        session.is_some()
    })
    .await;
    let session = session.unwrap();
    assert_eq!(portal.whoami(&session).await["user"]["id"], "alice");
    // Keys the IdP never published are still refused after the re-fetch.
    refuses_token(&idp, &portal, |ctx| sign_with_other_key(&ctx.claims())).await;
}

#[tokio::test]
async fn logout_tokens_naming_unknown_keys_do_not_make_portico_refetch_keys_each_time() {
    let (idp, portal) = started().await;
    let before = idp.discovery_fetches();
    for _ in 0..10 {
        // Signed with a key the IdP never published, under a kid it never named.
        let token = sign_with_rotated_key(&idp.logout_claims("alice"), "logout+jwt");
        let response = portal.backchannel_logout(&token).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
    let after = idp.discovery_fetches();
    assert!(
        after.0 - before.0 <= 1 && after.1 - before.1 <= 1,
        "ten forged logout tokens caused {} discovery and {} JWKS fetches",
        after.0 - before.0,
        after.1 - before.1
    );
}

// RFC 9207 ------------------------------------------------------------------------------------------

/// `url` without the query parameter `name`.
fn without_param(url: &str, name: &str) -> String {
    let mut parsed = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(key, _)| key != name)
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

#[tokio::test]
async fn an_idp_that_advertises_iss_must_send_exactly_its_own_on_the_callback() {
    let idp = FakeIdp::start().await;
    idp.advertise_iss_parameter();
    let portal = Portal::start(&idp).await;
    // A mix-up attacker relays a code without the `iss` the real IdP always adds.
    let start = portal.start_login("/x").await;
    let callback = portal.at_idp(&start).await;
    let stripped = without_param(&callback, "iss");
    assert_refused(portal.callback(&stripped, Some(&start.binding)).await).await;
    // `iss` is compared as the exact string (RFC 9207 §2.4), not up to a trailing slash.
    let start = portal.start_login("/x").await;
    let callback = portal.at_idp(&start).await;
    let slashed = with_param(&callback, "iss", &format!("{}/", idp.issuer));
    assert_refused(portal.callback(&slashed, Some(&start.binding)).await).await;
    assert_eq!(
        idp.token_calls("authorization_code"),
        0,
        "no code was redeemed"
    );
    // The genuine callback signs in.
    let (session, location) = portal.sign_in_to("/x").await;
    assert_eq!(location, "/x");
    portal.whoami(&session).await;
}

#[tokio::test]
async fn an_idp_that_does_not_advertise_iss_may_leave_it_out() {
    let (_idp, portal) = started().await;
    let start = portal.start_login("/x").await;
    let callback = without_param(&portal.at_idp(&start).await, "iss");
    let response = portal.callback(&callback, Some(&start.binding)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(session_from(response.headers()).is_some());
}

// __Host- login binding -----------------------------------------------------------------------------

#[tokio::test]
async fn on_https_the_login_binding_cookie_is_host_prefixed_so_a_sibling_cannot_plant_it() {
    let idp = FakeIdp::start().await;
    let portal = Portal::start_https(&idp).await;
    let login = || async {
        let response = portal
            .get("/auth/login?return_to=%2Fx")
            .header("host", HTTPS_HOST)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let authorize = response.headers()[LOCATION].to_str().unwrap().to_owned();
        let binding = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|value| value.to_str().unwrap().to_owned())
            .find(|value| value.contains("portico_login="))
            .expect("a binding cookie");
        let redirect = portal.client.get(&authorize).send().await.unwrap();
        let back = redirect.headers()[LOCATION].to_str().unwrap().to_owned();
        // The IdP sends the browser to https://portal.acme.test/auth/callback?…; TLS ends in front.
        let callback = back.replace(&format!("https://{HTTPS_HOST}"), &portal.origin());
        assert_ne!(callback, back, "{back}");
        (binding, callback)
    };
    let callback_with = |url: String, cookie: String| {
        portal
            .client
            .get(url)
            .header("host", HTTPS_HOST)
            .header("cookie", cookie)
            .send()
    };

    let (binding, callback) = login().await;
    assert!(
        binding.starts_with("__Host-portico_login="),
        "a __Host- cookie: {binding}"
    );
    for attribute in ["; Path=/;", "; Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(binding.contains(attribute), "{attribute} in {binding}");
    }
    assert!(
        !binding.to_ascii_lowercase().contains("domain="),
        "{binding}"
    );
    let value = binding
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1;

    // Login CSRF: the attacker's own login, finished in the victim's browser with the binding cookie
    // planted from a sibling subdomain (which can set `portico_login` for the parent domain, but never
    // a `__Host-` cookie).
    let planted = callback_with(callback.clone(), format!("portico_login={value}"))
        .await
        .unwrap();
    assert_refused(planted).await;

    let (binding, callback) = login().await;
    let pair = binding.split(';').next().unwrap().to_owned();
    let response = callback_with(callback, pair).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookies: Vec<String> = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("__Host-portico_session=")),
        "{cookies:?}"
    );
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("__Host-portico_login=;") && c.contains("Max-Age=0")),
        "the binding cookie is cleared under its own name: {cookies:?}"
    );
}

// Back-Channel Logout 1.0 §2.4 and §2.6: `exp` and `jti` are required, and a token is good once -------

#[tokio::test]
async fn logout_tokens_without_exp_or_jti_are_refused() {
    let idp = FakeIdp::start().await;
    let portal = Portal::start(&idp).await;
    let alice = portal.sign_in().await;
    for missing in ["exp", "jti"] {
        let mut claims = idp.logout_claims("alice");
        claims.as_object_mut().unwrap().remove(missing);
        let response = portal
            .backchannel_logout(&sign_rs256_typ(&claims, "logout+jwt"))
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "no {missing}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["error"], "invalid_logout_token",
            "no {missing}: {body}"
        );
        portal.whoami(&alice).await;
    }
    // With both, the same logout ends the session.
    let token = sign_rs256_typ(&idp.logout_claims("alice"), "logout+jwt");
    assert_eq!(
        portal.backchannel_logout(&token).await.status(),
        StatusCode::OK
    );
    portal.assert_signed_out(&alice).await;
}

#[tokio::test]
async fn a_replayed_logout_token_is_refused_and_ends_no_later_session() {
    let idp = FakeIdp::start().await;
    let portal = Portal::start(&idp).await;
    idp.sign_in_next_as("alice");
    let before = portal.sign_in().await;
    let token = sign_rs256_typ(&idp.logout_claims("alice"), "logout+jwt");
    assert_eq!(
        portal.backchannel_logout(&token).await.status(),
        StatusCode::OK
    );
    portal.assert_signed_out(&before).await;

    // Alice signs in again; whoever kept a copy of the old token cannot sign her out with it.
    idp.sign_in_next_as("alice");
    let after = portal.sign_in().await;
    let replay = portal.backchannel_logout(&token).await;
    json_error(replay, 400, "invalid_logout_token").await;
    assert_eq!(portal.whoami(&after).await["user"]["id"], "alice");

    // A new token (another jti) for the same user still works.
    let fresh = sign_rs256_typ(&idp.logout_claims("alice"), "logout+jwt");
    assert_eq!(
        portal.backchannel_logout(&fresh).await.status(),
        StatusCode::OK
    );
    portal.assert_signed_out(&after).await;
}

/// With sessions in Redis, a logout token used at one instance is refused at every other: the
/// replay memory is shared, not only each instance's own.
#[tokio::test]
async fn a_logout_token_used_at_one_instance_is_refused_at_another() {
    let idp = FakeIdp::start().await;
    let redis = RedisServer::start().await;
    let a = Portal::start_on_redis(&idp, &redis).await;
    let b = Portal::start_on_redis(&idp, &redis).await;
    idp.sign_in_next_as("alice");
    let before = a.sign_in().await;
    let token = sign_rs256_typ(&idp.logout_claims("alice"), "logout+jwt");
    assert_eq!(a.backchannel_logout(&token).await.status(), StatusCode::OK);
    a.assert_signed_out(&before).await;

    idp.sign_in_next_as("alice");
    let after = a.sign_in().await;
    let replay = b.backchannel_logout(&token).await;
    json_error(replay, 400, "invalid_logout_token").await;
    assert_eq!(a.whoami(&after).await["user"]["id"], "alice");
}

#[tokio::test]
async fn every_auth_answer_is_never_cached() {
    let idp = FakeIdp::start().await;
    let portal = Portal::start(&idp).await;
    let no_store = |response: &reqwest::Response, what: &str| {
        let cache = response.headers().get("cache-control");
        assert_eq!(
            cache.and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{what}"
        );
    };
    let login = portal.get("/auth/login").send().await.unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    no_store(&login, "the redirect to the IdP");
    let start = portal.start_login("/x").await;
    let callback = portal.at_idp(&start).await;
    let landed = portal.callback(&callback, Some(&start.binding)).await;
    assert_eq!(landed.status(), StatusCode::SEE_OTHER);
    no_store(&landed, "the callback");
    let session = session_from(landed.headers()).unwrap();
    let again = portal
        .get("/auth/login")
        .header("cookie", &session.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    no_store(&again, "login while signed in");
    no_store(&portal.session_info(&session).await, "/auth/session");
    let signed_out = portal.get("/auth/signed-out").send().await.unwrap();
    no_store(&signed_out, "the signed-out page");
    let logout = sign_rs256_typ(&idp.logout_claims("alice"), "logout+jwt");
    no_store(
        &portal.backchannel_logout(&logout).await,
        "back-channel logout",
    );
    let refused = portal.backchannel_logout("not-a-jwt").await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    no_store(&refused, "a refused logout token");
}
