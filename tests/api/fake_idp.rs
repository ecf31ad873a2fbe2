//! An in-process FAKE OpenID Provider for negative tests: an axum app on 127.0.0.1:<ephemeral> that
//! serves discovery, JWKS, `/authorize` and `/token` like a real OP, records every request it gets, and
//! lets each test decide what the token endpoint answers (a per-test "scenario"), so a test can hand
//! portico ID tokens that no real OP would produce: badly signed, unsigned, for someone else, expired.
//!
//! What it checks like a real OP (so a portico that stopped doing these would fail sign-in here too):
//! `/authorize` insists on `response_type=code`, the registered client, a state, a nonce and a PKCE
//! S256 challenge; `/token` insists on client authentication (HTTP Basic or client_secret_post), a code
//! used at most once, the same `redirect_uri` and a `code_verifier` whose S256 hash is the challenge.
//!
//! Signing keys: tests/fixtures/idp-rsa.pem (served at `/jwks` as tests/fixtures/idp-rsa.jwk.json)
//! and tests/fixtures/other-rsa.pem (a key the IdP does not publish).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Url;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The client portico is registered as at the fake IdP.
pub(crate) const CLIENT_ID: &str = "portico";
pub(crate) const CLIENT_SECRET: &str = "s3cret";
/// The `kid` of the published key (and of tokens signed with the unpublished one, to fake a forgery).
pub(crate) const KID: &str = "test-key-1";
/// The event a back-channel logout token must carry.
pub(crate) const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

const IDP_KEY_PEM: &str = include_str!("../fixtures/idp-rsa.pem");
const IDP_JWK: &str = include_str!("../fixtures/idp-rsa.jwk.json");
const OTHER_KEY_PEM: &str = include_str!("../fixtures/other-rsa.pem");
const OTHER_JWK: &str = include_str!("../fixtures/other-rsa.jwk.json");
/// The `kid` of the second key, which the IdP publishes only after [`FakeIdp::rotate_keys`].
pub(crate) const ROTATED_KID: &str = "test-key-2";

/// What the token endpoint knows when it answers; a scenario builds its answer from this.
#[derive(Clone, Debug)]
pub(crate) struct TokenContext {
    /// `authorization_code` or `refresh_token`.
    pub grant_type: String,
    pub issuer: String,
    /// The nonce of the authorization request (code grant only).
    pub nonce: Option<String>,
    pub subject: String,
    /// The user's groups as the IdP knows them now (see [`FakeIdp::set_groups`]).
    pub groups: Vec<String>,
    /// The `expires_in` the IdP currently issues (see [`FakeIdp::set_expires_in`]).
    pub expires_in: u64,
    /// 1 for the first token request this IdP answers, 2 for the next…
    pub call: usize,
}

impl TokenContext {
    /// The claims of a correct ID token for this request.
    pub(crate) fn claims(&self) -> Value {
        let now = now();
        let mut claims = json!({
            "iss": self.issuer,
            "sub": self.subject,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 600,
            "auth_time": now,
            "name": format!("User {}", self.subject),
            "email": format!("{}@idp.test", self.subject),
            "email_verified": true,
            "groups": self.groups,
            "sid": format!("sid-{}", self.subject),
        });
        if let Some(nonce) = &self.nonce {
            claims["nonce"] = json!(nonce);
        }
        claims
    }

    /// A correct token response around `id_token`.
    pub(crate) fn tokens(&self, id_token: String) -> TokenReply {
        TokenReply {
            status: 200,
            body: json!({
                "access_token": format!("at-{}", self.call),
                "token_type": "Bearer",
                "expires_in": self.expires_in,
                "refresh_token": format!("rt-{}", self.call),
                "id_token": id_token,
                "scope": "openid profile email",
            }),
        }
    }

    /// What an honest IdP answers: a correctly signed ID token in a correct token response.
    pub(crate) fn honest(&self) -> TokenReply {
        self.tokens(sign_rs256(&self.claims()))
    }
}

/// The token endpoint's answer.
#[derive(Clone, Debug)]
pub(crate) struct TokenReply {
    pub status: u16,
    pub body: Value,
}

impl TokenReply {
    /// An OAuth error answer, e.g. `invalid_grant` with 400.
    pub(crate) fn error(status: u16, code: &str) -> TokenReply {
        TokenReply {
            status,
            body: json!({ "error": code, "error_description": format!("fake IdP says {code}") }),
        }
    }
}

type Scenario = Arc<dyn Fn(&TokenContext) -> TokenReply + Send + Sync>;

/// One request the token endpoint received.
#[derive(Clone, Debug)]
pub(crate) struct TokenRequest {
    pub form: HashMap<String, String>,
    pub authorization: Option<String>,
}

struct CodeGrant {
    subject: String,
    nonce: String,
    challenge: String,
    redirect_uri: String,
    used: bool,
}

struct IdpState {
    issuer: String,
    authorize_requests: Mutex<Vec<HashMap<String, String>>>,
    token_requests: Mutex<Vec<TokenRequest>>,
    codes: Mutex<HashMap<String, CodeGrant>>,
    refresh_tokens: Mutex<HashMap<String, String>>,
    groups: Mutex<HashMap<String, Vec<String>>>,
    next_user: Mutex<String>,
    expires_in: Mutex<u64>,
    token_delay: Mutex<Duration>,
    scenario: Mutex<Scenario>,
    /// The JWKs `/jwks` serves.
    keys: Mutex<Vec<Value>>,
    /// How often discovery and the JWKS were fetched.
    discovery_fetches: Mutex<usize>,
    jwks_fetches: Mutex<usize>,
    /// Discovery says `authorization_response_iss_parameter_supported: true` (RFC 9207).
    advertises_iss: Mutex<bool>,
}

/// A running fake IdP; it stops with the test's runtime.
#[derive(Clone)]
pub(crate) struct FakeIdp {
    /// `http://127.0.0.1:<port>`: the issuer, and the base of every endpoint.
    pub issuer: String,
    state: Arc<IdpState>,
}

impl FakeIdp {
    /// Starts on an ephemeral loopback port. Users: `alice` (acme-eng), `bob` (acme-eng); `alice` signs in
    /// next.
    pub(crate) async fn start() -> FakeIdp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        FakeIdp::serve(listener)
    }

    /// Starts on a listener the test made (for an IdP that comes up after portico).
    pub(crate) fn serve(listener: tokio::net::TcpListener) -> FakeIdp {
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let groups = HashMap::from([
            ("alice".to_owned(), vec!["acme-eng".to_owned()]),
            ("bob".to_owned(), vec!["acme-eng".to_owned()]),
        ]);
        let state = Arc::new(IdpState {
            issuer: issuer.clone(),
            authorize_requests: Mutex::default(),
            token_requests: Mutex::default(),
            codes: Mutex::default(),
            refresh_tokens: Mutex::default(),
            groups: Mutex::new(groups),
            next_user: Mutex::new("alice".to_owned()),
            expires_in: Mutex::new(3600),
            token_delay: Mutex::new(Duration::ZERO),
            scenario: Mutex::new(Arc::new(TokenContext::honest)),
            keys: Mutex::new(vec![serde_json::from_str(IDP_JWK).unwrap()]),
            discovery_fetches: Mutex::default(),
            jwks_fetches: Mutex::default(),
            advertises_iss: Mutex::default(),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/end_session", get(end_session))
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeIdp { issuer, state }
    }

    /// Makes discovery advertise `authorization_response_iss_parameter_supported: true`, as a real OP
    /// that sends `iss` does; call before portico discovers this IdP.
    pub(crate) fn advertise_iss_parameter(&self) {
        *self.state.advertises_iss.lock().unwrap() = true;
    }

    /// The user the next `/authorize` signs in (the fake has no login form).
    pub(crate) fn sign_in_next_as(&self, subject: &str) {
        *self.state.next_user.lock().unwrap() = subject.to_owned();
    }

    /// Changes a user's groups at the IdP; the next ID token (also a refreshed one) carries them.
    pub(crate) fn set_groups(&self, subject: &str, groups: &[&str]) {
        self.state.groups.lock().unwrap().insert(
            subject.to_owned(),
            groups.iter().map(|g| (*g).to_owned()).collect(),
        );
    }

    /// The `expires_in` of the access tokens issued from now on.
    pub(crate) fn set_expires_in(&self, seconds: u64) {
        *self.state.expires_in.lock().unwrap() = seconds;
    }

    /// How long the token endpoint takes to answer (to make concurrent refreshes overlap).
    pub(crate) fn set_token_delay(&self, delay: Duration) {
        *self.state.token_delay.lock().unwrap() = delay;
    }

    /// What the token endpoint answers from now on (after its own checks of code, PKCE and client).
    pub(crate) fn set_scenario(
        &self,
        scenario: impl Fn(&TokenContext) -> TokenReply + Send + Sync + 'static,
    ) {
        *self.state.scenario.lock().unwrap() = Arc::new(scenario);
    }

    /// Shorthand: a correct token response whose ID token `id_token` builds.
    pub(crate) fn set_id_token(
        &self,
        id_token: impl Fn(&TokenContext) -> String + Send + Sync + 'static,
    ) {
        self.set_scenario(move |ctx| ctx.tokens(id_token(ctx)));
    }

    /// Every `/authorize` query received, oldest first.
    pub(crate) fn authorize_requests(&self) -> Vec<HashMap<String, String>> {
        self.state.authorize_requests.lock().unwrap().clone()
    }

    /// Every `/token` request received, oldest first.
    pub(crate) fn token_requests(&self) -> Vec<TokenRequest> {
        self.state.token_requests.lock().unwrap().clone()
    }

    /// How many `/token` requests had this grant type.
    pub(crate) fn token_calls(&self, grant_type: &str) -> usize {
        self.token_requests()
            .iter()
            .filter(|request| {
                request.form.get("grant_type").map(String::as_str) == Some(grant_type)
            })
            .count()
    }

    /// Publishes the second key (`kid` [`ROTATED_KID`]) instead of the first, as an IdP does when it
    /// rotates its signing key; tokens signed with [`sign_with_rotated_key`] verify from now on.
    pub(crate) fn rotate_keys(&self) {
        *self.state.keys.lock().unwrap() = vec![serde_json::from_str(OTHER_JWK).unwrap()];
    }

    /// How often portico fetched the discovery document and the JWKS.
    pub(crate) fn discovery_fetches(&self) -> (usize, usize) {
        (
            *self.state.discovery_fetches.lock().unwrap(),
            *self.state.jwks_fetches.lock().unwrap(),
        )
    }

    pub(crate) fn end_session_endpoint(&self) -> String {
        format!("{}/end_session", self.issuer)
    }

    /// Correct back-channel logout token claims for `subject`.
    pub(crate) fn logout_claims(&self, subject: &str) -> Value {
        let now = now();
        json!({
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 120,
            "jti": format!("jti-{}", rand::random::<u64>()),
            "sub": subject,
            "events": { BACKCHANNEL_EVENT: {} },
        })
    }
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn header(alg: Algorithm, typ: &str) -> Header {
    Header {
        typ: Some(typ.to_owned()),
        alg,
        kid: Some(KID.to_owned()),
        ..Header::default()
    }
}

/// Signed with the second key under its own `kid`: valid once the IdP has rotated to it.
pub(crate) fn sign_with_rotated_key(claims: &Value, typ: &str) -> String {
    let key = EncodingKey::from_rsa_pem(OTHER_KEY_PEM.as_bytes()).unwrap();
    let mut header = header(Algorithm::RS256, typ);
    header.kid = Some(ROTATED_KID.to_owned());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// Signed with the IdP's published key: what an honest IdP sends.
pub(crate) fn sign_rs256(claims: &Value) -> String {
    sign_rs256_typ(claims, "JWT")
}

/// The same with another `typ` header (`logout+jwt` for logout tokens).
pub(crate) fn sign_rs256_typ(claims: &Value, typ: &str) -> String {
    let key = EncodingKey::from_rsa_pem(IDP_KEY_PEM.as_bytes()).unwrap();
    jsonwebtoken::encode(&header(Algorithm::RS256, typ), claims, &key).unwrap()
}

/// Signed with a key the IdP never published, but naming the published key's `kid`: a forgery.
pub(crate) fn sign_with_other_key(claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(OTHER_KEY_PEM.as_bytes()).unwrap();
    jsonwebtoken::encode(&header(Algorithm::RS256, "JWT"), claims, &key).unwrap()
}

/// HS256 with `secret` as the HMAC key: what anyone holding the client secret could mint.
pub(crate) fn sign_hs256(claims: &Value, secret: &str) -> String {
    let key = EncodingKey::from_secret(secret.as_bytes());
    let mut header = header(Algorithm::HS256, "JWT");
    header.kid = None;
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// `alg: none`, no signature: `header.payload.` exactly as RFC 7519 §6 writes an unsecured JWT.
pub(crate) fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "typ": "JWT" }).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

/// A correctly signed token whose payload was then replaced by `claims` (the signature no longer fits).
pub(crate) fn tampered(signed: &str, claims: &Value) -> String {
    let mut parts = signed.split('.');
    let header = parts.next().unwrap();
    let _payload = parts.next().unwrap();
    let signature = parts.next().unwrap();
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.{signature}")
}

/// The S256 PKCE challenge of a verifier (RFC 7636 §4.2).
pub(crate) fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

async fn discovery(State(state): State<Arc<IdpState>>) -> Response {
    *state.discovery_fetches.lock().unwrap() += 1;
    let issuer = &state.issuer;
    let advertises_iss = *state.advertises_iss.lock().unwrap();
    axum::Json(json!({
        "authorization_response_iss_parameter_supported": advertises_iss,
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "end_session_endpoint": format!("{issuer}/end_session"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": ["openid", "profile", "email"],
        "backchannel_logout_supported": true,
    }))
    .into_response()
}

async fn jwks(State(state): State<Arc<IdpState>>) -> Response {
    *state.jwks_fetches.lock().unwrap() += 1;
    let keys = state.keys.lock().unwrap().clone();
    axum::Json(json!({ "keys": keys })).into_response()
}

fn bad_request(what: &str) -> Response {
    (StatusCode::BAD_REQUEST, format!("fake IdP refuses: {what}")).into_response()
}

/// Signs `next_user` in at once and sends the browser back with a code, state and `iss` (RFC 9207).
async fn authorize(
    State(state): State<Arc<IdpState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    state.authorize_requests.lock().unwrap().push(query.clone());
    let field = |name: &str| query.get(name).filter(|value| !value.is_empty());
    if query.get("response_type").map(String::as_str) != Some("code") {
        return bad_request("response_type must be code");
    }
    if query.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return bad_request("unknown client");
    }
    let (Some(redirect_uri), Some(state_param), Some(nonce), Some(challenge)) = (
        field("redirect_uri"),
        field("state"),
        field("nonce"),
        field("code_challenge"),
    ) else {
        return bad_request("redirect_uri, state, nonce and code_challenge are required");
    };
    if query.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return bad_request("code_challenge_method must be S256");
    }
    let code = format!("code-{}", rand::random::<u64>());
    let subject = state.next_user.lock().unwrap().clone();
    state.codes.lock().unwrap().insert(
        code.clone(),
        CodeGrant {
            subject,
            nonce: nonce.clone(),
            challenge: challenge.clone(),
            redirect_uri: redirect_uri.clone(),
            used: false,
        },
    );
    let Ok(mut target) = Url::parse(redirect_uri) else {
        return bad_request("redirect_uri is not a URL");
    };
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", state_param)
        .append_pair("iss", &state.issuer);
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, target.to_string())],
    )
        .into_response()
}

fn oauth_error(status: u16, code: &str) -> Response {
    let reply = TokenReply::error(status, code);
    (
        StatusCode::from_u16(reply.status).unwrap(),
        axum::Json(reply.body),
    )
        .into_response()
}

async fn token(
    State(state): State<Arc<IdpState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let call = {
        let mut requests = state.token_requests.lock().unwrap();
        requests.push(TokenRequest {
            form: form.clone(),
            authorization: authorization.clone(),
        });
        requests.len()
    };
    let delay = *state.token_delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let basic_ok = authorization.as_deref() == Some(basic.as_str());
    let post_ok = form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET);
    if !(basic_ok || post_ok) {
        return oauth_error(401, "invalid_client");
    }
    let grant_type = form.get("grant_type").cloned().unwrap_or_default();
    let (subject, nonce) = match grant_type.as_str() {
        "authorization_code" => {
            let mut codes = state.codes.lock().unwrap();
            let Some(grant) = form.get("code").and_then(|code| codes.get_mut(code)) else {
                return oauth_error(400, "invalid_grant");
            };
            // A code is good once (RFC 6749 §4.1.2); a second use is refused.
            if grant.used {
                return oauth_error(400, "invalid_grant");
            }
            grant.used = true;
            if form.get("redirect_uri") != Some(&grant.redirect_uri) {
                return oauth_error(400, "invalid_grant");
            }
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            if verifier.len() < 43 || s256(&verifier) != grant.challenge {
                return oauth_error(400, "invalid_grant");
            }
            (grant.subject.clone(), Some(grant.nonce.clone()))
        }
        "refresh_token" => {
            let refresh_tokens = state.refresh_tokens.lock().unwrap();
            let Some(subject) = form
                .get("refresh_token")
                .and_then(|token| refresh_tokens.get(token))
            else {
                return oauth_error(400, "invalid_grant");
            };
            (subject.clone(), None)
        }
        _ => return oauth_error(400, "unsupported_grant_type"),
    };
    let context = TokenContext {
        grant_type,
        issuer: state.issuer.clone(),
        nonce,
        groups: state
            .groups
            .lock()
            .unwrap()
            .get(&subject)
            .cloned()
            .unwrap_or_default(),
        subject: subject.clone(),
        expires_in: *state.expires_in.lock().unwrap(),
        call,
    };
    let scenario = state.scenario.lock().unwrap().clone();
    let reply = scenario(&context);
    if let Some(refresh_token) = reply.body.get("refresh_token").and_then(Value::as_str) {
        state
            .refresh_tokens
            .lock()
            .unwrap()
            .insert(refresh_token.to_owned(), subject);
    }
    (
        StatusCode::from_u16(reply.status).unwrap(),
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(reply.body),
    )
        .into_response()
}

async fn end_session() -> Response {
    "signed out at the fake IdP".into_response()
}
