//! Issue 17, first part: scripts, CI jobs and agents call `/apps/<id>/…` and `/backstage/api/…` with
//! `Authorization: Bearer <access token>` from the tenant's own IdP. Against real parts: the real
//! OpenID Provider (`oidc-provider`, issuing RFC 9068 JWT access tokens for portico's audience, with
//! the account's groups) and a stock Express app as the upstream. A "script" gets its token the way a
//! CLI does, through the authorization code flow of its own client at the OP.

use std::net::SocketAddr;

use base64::Engine;
use serde_json::{Value, json};

use crate::canonical_paths::Framework;
use crate::helpers::{app, config, oidc_client, tenant};
use crate::logs::Logs;
use crate::oidc_real::wait_until_ready;
use crate::op::{Browser, RealOp, reserve_port, urlencode};

/// Where the CLI client's authorization codes are sent: never fetched (the script reads the code from
/// the redirect).
const CLI_REDIRECT: &str = "http://127.0.0.1:9/callback";

struct Portal {
    /// Tenant `acme` (bearer audience `urn:portico:acme`).
    acme: String,
    /// Tenant `globex` on the same port and IdP (bearer audience `urn:portico:globex`).
    globex: String,
    op: RealOp,
    _upstream: Framework,
    _dir: tempfile::TempDir,
}

async fn portal() -> Portal {
    portal_with_ttl(3600).await
}

/// [`portal`] with the OP's access tokens valid for `access_token_ttl` seconds.
async fn portal_with_ttl(access_token_ttl: u64) -> Portal {
    portal_with(Setup {
        access_token_ttl,
        ..Setup::default()
    })
    .await
}

/// How [`portal_with`] sets up the OP and the tenants.
struct Setup {
    /// How long the OP's access tokens are valid, in seconds.
    access_token_ttl: u64,
    /// The OP issues opaque access tokens (`accessTokenFormat: 'opaque'`) instead of JWTs.
    opaque: bool,
    /// The OP publishes an introspection endpoint.
    op_introspects: bool,
    /// `bearer.introspect` of tenant acme, and of tenant globex.
    acme_introspects: bool,
    globex_introspects: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            access_token_ttl: 3600,
            opaque: false,
            op_introspects: true,
            acme_introspects: false,
            globex_introspects: false,
        }
    }
}

/// The OP issues opaque access tokens, and acme (only) introspects them.
fn opaque_setup() -> Setup {
    Setup {
        opaque: true,
        acme_introspects: true,
        ..Setup::default()
    }
}

async fn portal_with(setup: Setup) -> Portal {
    let access_token_ttl = setup.access_token_ttl;
    let addr: SocketAddr = reserve_port();
    let port = addr.port();
    let acme = format!("http://127.0.0.1:{port}");
    let globex = format!("http://localhost:{port}");
    let client = |id: &str, origin: &str| {
        json!({
            "client_id": id,
            "client_secret": format!("{id}-secret"),
            "redirect_uris": [format!("{origin}/auth/callback")],
        })
    };
    let op = RealOp::start(json!({
        "clients": [
            client("portico", &acme),
            client("globex", &globex),
            { "client_id": "cli", "client_secret": "cli-secret", "redirect_uris": [CLI_REDIRECT] },
        ],
        "accessTokenAudience": "urn:portico:acme",
        "accessTokenTtl": access_token_ttl,
        "accessTokenFormat": if setup.opaque { "opaque" } else { "jwt" },
        "introspection": setup.op_introspects,
    }));
    let upstream = Framework::express();
    let bearer = |client: &str, audience: &str, introspect: bool| {
        // Only written when on, so the JWT tests read the config as it was before introspection.
        let introspect = if introspect { ", introspect: true" } else { "" };
        format!(
            "{}, bearer: {{ audience: {audience}{introspect} }}",
            oidc_client(&op.issuer, client, &format!("{client}-secret"))
        )
    };
    let acme_tenant = tenant("acme", &[&format!("127.0.0.1:{port}")])
        .public_origin(&acme)
        .oidc(&bearer(
            "portico",
            "urn:portico:acme",
            setup.acme_introspects,
        ))
        .role("platform-admin", &["acme-platform-admins"])
        .role("developer", &["acme-eng"])
        .app(app("costs", &["developer"]).upstream(&upstream.url()))
        .app(app("admin", &["platform-admin"]).upstream(&upstream.url()));
    let globex_tenant = tenant("globex", &[&format!("localhost:{port}")])
        .public_origin(&globex)
        .oidc(&bearer(
            "globex",
            "urn:portico:globex",
            setup.globex_introspects,
        ))
        .role("developer", &["acme-eng"])
        .app(app("costs", &["developer"]).upstream(&upstream.url()));
    let yaml = config()
        .top(&format!("server: {{ listen: \"{addr}\" }}"))
        .tenant(acme_tenant)
        .tenant(globex_tenant);
    let dir = tempfile::tempdir().unwrap();
    let mut config = yaml.compile(dir.path());
    config.server.admin_listen = None;
    let app = portico::app::App::build(config)
        .await
        .expect("portico starts");
    tokio::spawn(app.run());
    let portal = Portal {
        acme,
        globex,
        op,
        _upstream: upstream,
        _dir: dir,
    };
    wait_until_ready(&portal.acme).await;
    portal
}

/// A JWT access token for `account`, as a CLI gets one (see [`any_access_token`]).
async fn access_token(op: &RealOp, account: &str) -> String {
    let token = any_access_token(op, account).await;
    assert_eq!(token.split('.').count(), 3, "a JWT access token: {token}");
    token
}

/// An opaque access token for `account` (an OP with `accessTokenFormat: 'opaque'`).
async fn opaque_access_token(op: &RealOp, account: &str) -> String {
    let token = any_access_token(op, account).await;
    assert_ne!(
        token.split('.').count(),
        3,
        "an opaque access token: {token}"
    );
    token
}

/// An access token for `account`, as a CLI gets one: the code flow of client `cli` at the OP (the
/// user signs in at the OP's form), then the code exchanged at the token endpoint.
async fn any_access_token(op: &RealOp, account: &str) -> String {
    let mut browser = Browser::default();
    let verifier = "a-code-verifier-of-enough-length-for-pkce-0123456789";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
    let authorize = format!(
        "{}/auth?response_type=code&client_id=cli&redirect_uri={}&scope={}&state=s&nonce=n&code_challenge={challenge}&code_challenge_method=S256",
        op.issuer,
        urlencode(CLI_REDIRECT),
        urlencode("openid profile email groups"),
    );
    let (interaction, form) = browser.follow(&authorize, Some(CLI_REDIRECT)).await;
    assert_eq!(form.status, 200, "the OP's login form: {}", form.body);
    let after = browser
        .post_form(
            &interaction,
            &[("prompt", "login"), ("login", account), ("password", "any")],
            &op.issuer,
        )
        .await;
    assert_eq!(after.status, 303, "login accepted: {}", after.body);
    let (_, last) = browser
        .follow(&after.location.unwrap(), Some(CLI_REDIRECT))
        .await;
    let back = last.location.unwrap_or_else(|| {
        panic!(
            "the OP sends the code to the CLI: {} {}",
            last.status,
            &last.body[last.body.len().saturating_sub(1500)..]
        )
    });
    let code = reqwest::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, code)| code.into_owned())
        .expect("a code");
    let tokens: Value = reqwest::Client::new()
        .post(format!("{}/token", op.issuer))
        .basic_auth("cli", Some("cli-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CLI_REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access token: {tokens}"))
        .to_owned()
}

/// The claims of a JWT, unverified (what a test reads).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// `method path` on `base` with `Authorization: Bearer token` (and more headers).
async fn call(
    method: &str,
    url: &str,
    token: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = reqwest::Client::new()
        .request(method.parse().unwrap(), url)
        .bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_script_calls_an_app_as_the_user_with_the_idps_access_token() {
    let (logs, _guard) = Logs::capture();
    let portal = portal().await;
    let token = access_token(&portal.op, "dev").await;
    assert_eq!(claims_of(&token)["aud"], "urn:portico:acme");

    let (status, headers, body) = call(
        "GET",
        &format!("{}/apps/costs/headers", portal.acme),
        &token,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        headers.get("set-cookie").is_none(),
        "a bearer call gets no cookie"
    );
    let seen = &body["headers"];
    assert!(
        seen.get("authorization").is_none(),
        "the token stays at portico: {seen}"
    );
    assert_eq!(seen["x-portico-user"], "dev");
    let assertion = claims_of(seen["x-portico-assertion"].as_str().unwrap());
    assert_eq!(assertion["sub"], "dev");
    assert_eq!(assertion["aud"], "costs");
    assert_eq!(assertion["via"], "idp_token");
    assert_eq!(assertion["token_id"], claims_of(&token)["jti"]);

    // No CSRF proof for a script's state change; the same decision as in the browser.
    let (status, _, _) = call(
        "POST",
        &format!("{}/apps/costs/reports", portal.acme),
        &token,
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let (status, headers, body) = call(
        "GET",
        &format!("{}/apps/admin/headers", portal.acme),
        &token,
        &[],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        headers["www-authenticate"],
        "Bearer realm=\"portico\", error=\"insufficient_scope\""
    );

    let used = logs.audit("bearer");
    assert!(
        used.iter().any(|line| line["outcome"] == "success"
            && line["user"] == "dev"
            && line["token"] == claims_of(&token)["jti"]
            && line["http_method"] == "GET"
            && line["path"] == "/apps/costs/headers"),
        "{used:?}"
    );
}

#[tokio::test]
async fn forged_foreign_and_confused_tokens_are_refused() {
    let (logs, _guard) = Logs::capture();
    let portal = portal().await;
    let token = access_token(&portal.op, "dev").await;
    let costs = format!("{}/apps/costs/headers", portal.acme);
    let invalid = |headers: &reqwest::header::HeaderMap| {
        assert_eq!(
            headers["www-authenticate"],
            "Bearer realm=\"portico\", error=\"invalid_token\""
        );
    };

    // `alg: none` with the same claims; a signature that does not match; garbage.
    let parts: Vec<&str> = token.split('.').collect();
    let none_header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"{"alg":"none","typ":"at+jwt"}"#);
    let unsigned = format!("{none_header}.{}.", parts[1]);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        &parts[2][..parts[2].len() - 4]
    );
    for forged in [unsigned.as_str(), tampered.as_str(), "not-a-jwt"] {
        let (status, headers, body) = call("GET", &costs, forged, &[]).await;
        assert_eq!(status, 401, "{forged}: {body}");
        assert_eq!(body["error"], "invalid_token");
        invalid(&headers);
    }

    // A token for tenant acme is worthless on globex (another audience), though the IdP is the same.
    let (status, headers, _) = call(
        "GET",
        &format!("{}/apps/costs/headers", portal.globex),
        &token,
        &[],
    )
    .await;
    assert_eq!(status, 401);
    invalid(&headers);

    // A token with the session cookie: which of them speaks is not guessed.
    let (status, headers, body) = call(
        "GET",
        &costs,
        &token,
        &[(
            "cookie",
            "portico_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        headers["www-authenticate"],
        "Bearer realm=\"portico\", error=\"invalid_request\""
    );

    // Only the apps take a token: the shell's own endpoints are for browsers.
    let (status, _, body) = call(
        "GET",
        &format!("{}/shell/config.json", portal.acme),
        &token,
        &[],
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "not_signed_in");

    let refused = logs.audit("bearer");
    assert!(
        refused
            .iter()
            .filter(|line| line["outcome"] == "refused")
            .count()
            >= 4,
        "{refused:?}"
    );
}

#[tokio::test]
async fn expired_tokens_and_tokens_of_another_issuer_are_refused() {
    let portal = portal_with_ttl(1).await;
    let costs = format!("{}/apps/costs/headers", portal.acme);
    // Another OP that issues tokens for the same audience: its key is not the tenant's IdP's.
    let stranger = RealOp::start(json!({
        "clients": [{ "client_id": "cli", "client_secret": "cli-secret", "redirect_uris": [CLI_REDIRECT] }],
        "accessTokenAudience": "urn:portico:acme",
    }));
    let foreign = access_token(&stranger, "dev").await;
    let (status, _, body) = call("GET", &costs, &foreign, &[]).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_token");

    let token = access_token(&portal.op, "dev").await;
    let (status, _, _) = call("GET", &costs, &token, &[]).await;
    assert_eq!(status, 200, "fresh, it opens the app");
    let expires = claims_of(&token)["exp"].as_u64().unwrap();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    while now() <= expires {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (status, _, body) = call("GET", &costs, &token, &[]).await;
    assert_eq!(status, 401, "expired: {body}");
}

/// A script lists the Backstage catalog as its user with the IdP's access token, as the README shows:
/// Backstage sees the user (signed in once per token, not once per call), never the token, and the
/// Backstage UI's sign-in stays closed to tokens.
#[tokio::test]
async fn a_script_reads_the_backstage_catalog_as_the_user() {
    let backstage = crate::backstage::backstage();
    let addr: SocketAddr = reserve_port();
    let origin = format!("http://127.0.0.1:{}", addr.port());
    // Backstage's catalog knows alice by her email; `script-alice` is this test's own portal user,
    // so the sign-ins counted are this test's alone (the backend is shared).
    let op = RealOp::start(json!({
        "clients": [
            { "client_id": "portico", "client_secret": "portico-secret",
              "redirect_uris": [format!("{origin}/auth/callback")] },
            { "client_id": "cli", "client_secret": "cli-secret", "redirect_uris": [CLI_REDIRECT] },
        ],
        "accounts": {
            "script-alice": { "name": "Alice", "email": "alice@acme.example", "groups": ["acme-eng"] },
        },
        "accessTokenAudience": "urn:portico:acme",
    }));
    let yaml = config()
        .top(&format!("server: {{ listen: \"{addr}\" }}"))
        .tenant(
            tenant("acme", &[&format!("127.0.0.1:{}", addr.port())])
                .public_origin(&origin)
                .oidc(&format!(
                    "{}, bearer: {{ audience: urn:portico:acme }}",
                    oidc_client(&op.issuer, "portico", "portico-secret")
                ))
                .role("developer", &["acme-eng"])
                .app(app("docs", &["developer"]).files("embedded:demo"))
                .backstage(&format!(
                    "{{ url: \"{}\", identity: user, plugins: [catalog, whoami], \
                     user_namespace: acme, sign_in: oauth2_proxy }}",
                    backstage.url
                )),
        );
    let dir = tempfile::tempdir().unwrap();
    let mut config = yaml.compile(dir.path());
    config.server.admin_listen = None;
    let app = portico::app::App::build(config)
        .await
        .expect("portico starts");
    tokio::spawn(app.run());
    wait_until_ready(&origin).await;

    let token = access_token(&op, "script-alice").await;
    let (status, _, entity) = call(
        "GET",
        &format!("{origin}/backstage/api/catalog/entities/by-name/user/acme/alice"),
        &token,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{entity}");
    assert_eq!(entity["spec"]["profile"]["email"], "alice@acme.example");
    let (status, _, list) = call(
        "GET",
        &format!("{origin}/backstage/api/catalog/entities?filter=kind=user"),
        &token,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert!(list.as_array().is_some_and(|users| !users.is_empty()));

    let (status, _, seen) = call(
        "GET",
        &format!("{origin}/backstage/api/whoami"),
        &token,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["principal"]["userEntityRef"], "user:acme/alice");
    assert!(
        !seen["headers"]["authorization"]
            .as_str()
            .unwrap_or("")
            .contains(&token),
        "the IdP's token stays at portico: {seen}"
    );
    let calls = crate::backstage::sign_ins_of("script-alice").await;
    assert_eq!(calls.len(), 1, "one sign-in for three calls: {calls:?}");

    // The Backstage UI's sign-in would hand the script a Backstage token to use around portico.
    let (status, _, body) = call(
        "POST",
        &format!("{origin}/backstage/api/auth/portico/refresh"),
        &token,
        &[],
    )
    .await;
    assert_eq!(status, 401, "{body}");
}

/// The token id an opaque token without a `jti` is named by: a hash prefix, never the token.
fn hashed_id(token: &str) -> String {
    <sha2::Sha256 as sha2::Digest>::digest(token.as_bytes())[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The CLI revokes its token at the OP (RFC 7009), which ends the token's grant.
async fn revoke(op: &RealOp, token: &str) {
    let response = reqwest::Client::new()
        .post(format!("{}/token/revocation", op.issuer))
        .basic_auth("cli", Some("cli-secret"))
        .form(&[("token", token), ("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "revoked at the OP");
}

/// The `reason` of the refused `bearer` audit lines.
fn refusals(logs: &Logs) -> Vec<String> {
    logs.audit("bearer")
        .iter()
        .filter(|line| line["outcome"] == "refused")
        .map(|line| line["reason"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Issue 17, introspection: an IdP that hands out opaque access tokens. With `bearer.introspect`,
/// portico asks the IdP's introspection endpoint who the token is for; the user, the groups and so
/// the decision are as for a JWT, and the token stays at portico and out of the logs.
#[tokio::test]
async fn a_script_calls_an_app_with_an_opaque_token_the_idp_introspects() {
    let (logs, _guard) = Logs::capture();
    let portal = portal_with(opaque_setup()).await;
    let token = opaque_access_token(&portal.op, "dev").await;

    let (status, headers, body) = call(
        "GET",
        &format!("{}/apps/costs/headers", portal.acme),
        &token,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(headers.get("set-cookie").is_none());
    let seen = &body["headers"];
    assert!(seen.get("authorization").is_none(), "{seen}");
    assert_eq!(seen["x-portico-user"], "dev");
    assert_eq!(seen["x-portico-email"], "dev@acme.test", "{seen}");
    let assertion = claims_of(seen["x-portico-assertion"].as_str().unwrap());
    assert_eq!(assertion["sub"], "dev");
    assert_eq!(assertion["via"], "idp_token");
    assert_eq!(
        assertion["token_id"],
        hashed_id(&token),
        "the OP gives no jti for an opaque token: a hash prefix names it"
    );

    // The groups the IdP told decide: dev is no platform admin, admin is.
    let (status, headers, body) = call(
        "GET",
        &format!("{}/apps/admin/headers", portal.acme),
        &token,
        &[],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        headers["www-authenticate"],
        "Bearer realm=\"portico\", error=\"insufficient_scope\""
    );
    let admin = opaque_access_token(&portal.op, "admin").await;
    let (status, _, body) = call(
        "GET",
        &format!("{}/apps/admin/headers", portal.acme),
        &admin,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["headers"]["x-portico-user"], "admin");

    let used = logs.audit("bearer");
    assert!(
        used.iter().any(|line| line["outcome"] == "success"
            && line["user"] == "dev"
            && line["token"] == hashed_id(&token)
            && line["path"] == "/apps/costs/headers"),
        "{used:?}"
    );
    let text = logs.text();
    assert!(
        !text.contains(&token) && !text.contains(&admin),
        "a token in the logs"
    );
}

/// Without `bearer.introspect` an opaque token is refused, though the same token opens the app on a
/// tenant that introspects: the IdP is asked only where config says so.
#[tokio::test]
async fn an_opaque_token_is_refused_where_introspection_is_off() {
    let (logs, _guard) = Logs::capture();
    let portal = portal_with(opaque_setup()).await;
    wait_until_ready(&portal.globex).await;
    let token = opaque_access_token(&portal.op, "dev").await;

    opens_acme_not_globex(&portal, &token).await;
    let reasons = refusals(&logs);
    assert!(
        reasons
            .iter()
            .any(|reason| reason.contains("bearer.introspect")),
        "{reasons:?}"
    );
}

/// `token` opens acme's app and gets globex's RFC 6750 `invalid_token`.
async fn opens_acme_not_globex(portal: &Portal, token: &str) {
    let (status, _, body) = call(
        "GET",
        &format!("{}/apps/costs/headers", portal.acme),
        token,
        &[],
    )
    .await;
    assert_eq!(status, 200, "acme: {body}");
    let (status, headers, body) = call(
        "GET",
        &format!("{}/apps/costs/headers", portal.globex),
        token,
        &[],
    )
    .await;
    assert_eq!(status, 401, "globex: {body}");
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(
        headers["www-authenticate"],
        "Bearer realm=\"portico\", error=\"invalid_token\""
    );
}

/// A token the IdP introspects as active, but for another audience (acme's, presented on globex,
/// which introspects too, through its own client), is refused like a JWT for another audience.
#[tokio::test]
async fn an_opaque_token_introspected_for_another_audience_is_refused() {
    let (logs, _guard) = Logs::capture();
    let portal = portal_with(Setup {
        globex_introspects: true,
        ..opaque_setup()
    })
    .await;
    wait_until_ready(&portal.globex).await;
    let token = opaque_access_token(&portal.op, "dev").await;

    opens_acme_not_globex(&portal, &token).await;
    let reasons = refusals(&logs);
    assert!(
        reasons.iter().any(|reason| reason == "wrong audience"),
        "{reasons:?}"
    );
}

/// A token the IdP revoked is refused: at once when portico has not seen it yet; one it saw passes
/// from the cache of active answers until that runs out (at most 30 s: README), a window this test
/// shows but does not wait out.
#[tokio::test]
async fn an_opaque_token_the_idp_revoked_is_refused() {
    let (logs, _guard) = Logs::capture();
    let portal = portal_with(opaque_setup()).await;
    let costs = format!("{}/apps/costs/headers", portal.acme);

    let revoked = opaque_access_token(&portal.op, "dev").await;
    revoke(&portal.op, &revoked).await;
    let (status, _, body) = call("GET", &costs, &revoked, &[]).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_token");
    let reasons = refusals(&logs);
    assert!(
        reasons.iter().any(|reason| reason.contains("not active")),
        "{reasons:?}"
    );

    let used = opaque_access_token(&portal.op, "dev").await;
    let (status, _, _) = call("GET", &costs, &used, &[]).await;
    assert_eq!(status, 200);
    revoke(&portal.op, &used).await;
    let (status, _, _) = call("GET", &costs, &used, &[]).await;
    assert_eq!(status, 200, "the answer portico keeps for up to 30 s");
}

/// `bearer.introspect` with an IdP whose discovery document names no introspection endpoint: said
/// at discovery, and every opaque token is refused with a reason that names it.
#[tokio::test]
async fn an_idp_without_an_introspection_endpoint_refuses_opaque_tokens_and_says_so() {
    let (logs, _guard) = Logs::capture();
    let portal = portal_with(Setup {
        op_introspects: false,
        ..opaque_setup()
    })
    .await;
    let token = opaque_access_token(&portal.op, "dev").await;

    let (status, _, body) = call(
        "GET",
        &format!("{}/apps/costs/headers", portal.acme),
        &token,
        &[],
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_token");
    let reasons = refusals(&logs);
    assert!(
        reasons
            .iter()
            .any(|reason| reason.contains("no usable introspection_endpoint")),
        "{reasons:?}"
    );
    assert!(
        logs.text()
            .contains("the identity provider publishes no usable introspection endpoint"),
        "said at discovery"
    );
}
