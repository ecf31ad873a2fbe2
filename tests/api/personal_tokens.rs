//! Issue 17: personal access tokens. A signed-in user mints a token through the JSON API (behind the
//! session and CSRF), and a script uses it with `Authorization: Bearer` against a stock Express app:
//! the same decision as the browser with the token's narrowing on top, the assertion marked
//! `via: personal_token`, revocation by the user and by an operator, tenant binding, the per-token
//! rate limit, and audit lines and metrics for every use. The Chromium side (minting on the shell's
//! page) is e2e/tokens.test.mjs; two instances on Redis are tests/api/scale_out.rs.

use std::net::SocketAddr;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::canonical_paths::Framework;
use crate::helpers::{Session, TestServer, app, client, config, tenant, user};
use crate::logs::Logs;

struct Portal {
    server: TestServer,
    admin: SocketAddr,
    _upstream: Framework,
}

impl Portal {
    /// The same port under another tenant's host (`globex` answers `localhost`).
    fn globex_url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.server.addr.port())
    }
}

/// Tenant acme (127.0.0.1) with personal tokens of at most 30 days and `rate_limit`, apps `costs`
/// (developers) and `admin` (platform admins) on an Express upstream; tenant globex (localhost) with
/// personal tokens too, for the same user id.
async fn portal(rate_limit: &str) -> Portal {
    let upstream = Framework::express();
    let acme = tenant("acme", &["127.0.0.1"])
        .user(user("dev", &["acme-eng"]).email("dev@acme.example"))
        .user(user("boss", &["acme-admins", "acme-eng"]))
        .role("developer", &["acme-eng"])
        .role("platform-admin", &["acme-admins"])
        // Its cookies reach the browser, scoped to the app.
        .app(
            app("costs", &["developer"])
                .upstream(&upstream.url())
                .key("cookies", "scoped"),
        )
        .app(app("admin", &["platform-admin"]).upstream(&upstream.url()))
        .key(
            "tokens",
            &format!("{{ personal: 30d, rate_limit: \"{rate_limit}\" }}"),
        );
    let globex = tenant("globex", &["localhost"])
        .user(user("dev", &["acme-eng"]))
        .role("developer", &["acme-eng"])
        .app(app("costs", &["developer"]).upstream(&upstream.url()))
        .key("tokens", "{ personal: 30d }");
    let dir = tempfile::tempdir().unwrap();
    let config = config().tenant(acme).tenant(globex).compile(dir.path());
    let (server, admin) = TestServer::start_with_admin(config).await;
    Portal {
        server,
        admin,
        _upstream: upstream,
    }
}

async fn csrf_of(server: &TestServer, session: &Session) -> String {
    server.shell_config(session).await["portico"]["csrfToken"]
        .as_str()
        .expect("the shell config carries the CSRF token")
        .to_owned()
}

/// `POST /auth/tokens` as the shell's page sends it: same origin, with the session's CSRF token.
async fn mint(server: &TestServer, session: &Session, request: Value) -> (StatusCode, Value) {
    let csrf = csrf_of(server, session).await;
    let response = server
        .post("/auth/tokens")
        .header("cookie", &session.cookie)
        .header("origin", server.origin())
        .header("x-portico-csrf", csrf)
        .json(&request)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A token's text, minted for `session`'s user; panics unless it is made.
async fn minted(server: &TestServer, session: &Session, request: Value) -> (String, Value) {
    let (status, body) = mint(server, session, request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (body["token"].as_str().unwrap().to_owned(), body)
}

/// `method url` as a script: the token, no cookie.
async fn call(
    method: &str,
    url: &str,
    token: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = client()
        .request(method.parse().unwrap(), url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn list(server: &TestServer, session: &Session) -> Value {
    let response = server.get_as("/auth/tokens", session).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_script_acts_for_the_user_with_a_personal_token() {
    let (logs, _guard) = Logs::capture();
    let portal = portal("600/min").await;
    let server = &portal.server;
    let dev = server.sign_in("dev").await;
    let csrf = csrf_of(server, &dev).await;
    let response = server
        .post("/auth/tokens")
        .header("cookie", &dev.cookie)
        .header("origin", server.origin())
        .header("x-portico-csrf", csrf)
        .json(&json!({ "name": "release script" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.headers()["cache-control"],
        "no-store",
        "no cache keeps the token"
    );
    let made: Value = response.json().await.unwrap();
    let token = made["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("portico_pat_"), "{token}");
    let id = made["id"].as_str().unwrap().to_owned();
    let days =
        (made["expires_at"].as_u64().unwrap() - made["created_at"].as_u64().unwrap()) / 86_400;
    assert_eq!(days, 30, "the tenant's longest lifetime by default");

    let (status, headers, body) = call("GET", &server.url("/apps/costs/headers"), &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
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
    assert_eq!(assertion["via"], "personal_token");
    assert_eq!(assertion["token_id"], id.as_str());
    // An app's cookie is not handed to a script (the browser gets it, scoped to the app).
    let (status, headers, _) = call(
        "GET",
        &server.url("/apps/costs/cache/flavoured?cookie=vanilla"),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get("set-cookie").is_none(), "{headers:?}");
    let browser = server
        .get_as("/apps/costs/cache/flavoured?cookie=vanilla", &dev)
        .await;
    assert!(
        browser.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("flavour=vanilla")
    );
    // No CSRF proof for a script; the user's roles decide as in the browser.
    let (status, _, _) = call("POST", &server.url("/apps/costs/reports"), &token).await;
    assert_eq!(status, StatusCode::OK);
    let (status, headers, _) = call("GET", &server.url("/apps/admin/headers"), &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );

    // Listed with its last use, never with its secret.
    let listed = list(server, &dev).await;
    let tokens = listed["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1, "{listed}");
    assert_eq!(tokens[0]["id"], id.as_str());
    assert_eq!(tokens[0]["name"], "release script");
    assert!(tokens[0]["last_used_at"].as_u64().is_some(), "{listed}");
    let secret = token.rsplit('_').next().unwrap();
    assert!(
        !listed.to_string().contains(secret),
        "the secret is shown once only"
    );

    // A token cannot mint tokens or open the shell's endpoints: those are for the session.
    let (status, _, body) = call("GET", &server.url("/auth/tokens"), &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let created = logs.audit("token_created");
    assert!(
        created
            .iter()
            .any(|line| line["user"] == "dev" && line["token"] == id.as_str()),
        "{created:?}"
    );
    let used = logs.audit("bearer");
    assert!(
        used.iter().any(|line| line["outcome"] == "success"
            && line["method"] == "personal_token"
            && line["app"] == "costs"
            && line["token"] == id.as_str()
            && line["http_method"] == "POST"),
        "{used:?}"
    );
}

#[tokio::test]
async fn only_its_user_revokes_a_token_and_then_it_is_refused() {
    let (logs, _guard) = Logs::capture();
    let portal = portal("600/min").await;
    let server = &portal.server;
    let dev = server.sign_in("dev").await;
    let (token, made) = minted(server, &dev, json!({ "name": "release script" })).await;
    let id = made["id"].as_str().unwrap().to_owned();
    // Another user cannot revoke it; its user can, and the next call is refused.
    let boss = server.sign_in("boss").await;
    let csrf = csrf_of(server, &boss).await;
    let response = server
        .client
        .delete(server.url(&format!("/auth/tokens/{id}")))
        .header("cookie", &boss.cookie)
        .header("origin", server.origin())
        .header("x-portico-csrf", csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (status, _, _) = call("GET", &server.url("/apps/costs/headers"), &token).await;
    assert_eq!(status, StatusCode::OK, "still alive");
    let csrf = csrf_of(server, &dev).await;
    let response = server
        .client
        .delete(server.url(&format!("/auth/tokens/{id}")))
        .header("cookie", &dev.cookie)
        .header("origin", server.origin())
        .header("x-portico-csrf", csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, headers, body) = call("GET", &server.url("/apps/costs/headers"), &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(
        headers["www-authenticate"],
        "Bearer realm=\"portico\", error=\"invalid_token\""
    );
    assert!(
        list(server, &dev).await["tokens"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let revoked = logs.audit("token_revoked");
    assert!(
        revoked
            .iter()
            .any(|line| line["token"] == id.as_str() && line["trigger"] == "user"),
        "{revoked:?}"
    );
    let used = logs.audit("bearer");
    assert!(
        used.iter()
            .any(|line| line["outcome"] == "refused"
                && line["reason"] == "unknown, revoked or expired"),
        "{used:?}"
    );
}

#[tokio::test]
async fn a_narrowed_token_reaches_only_its_apps_and_only_reads() {
    let portal = portal("600/min").await;
    let server = &portal.server;
    let boss = server.sign_in("boss").await;
    let (token, _) = minted(
        server,
        &boss,
        json!({ "name": "dashboards", "expires_in_days": 7, "scope": { "apps": ["costs"], "read_only": true } }),
    )
    .await;
    let (status, _, body) = call("GET", &server.url("/apps/costs/headers"), &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (method, path) in [
        ("POST", "/apps/costs/reports"),
        ("DELETE", "/apps/costs/reports/1"),
        ("GET", "/apps/admin/headers"),
    ] {
        let (status, headers, body) = call(method, &server.url(path), &token).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        assert_eq!(
            body["error"], "insufficient_scope",
            "{method} {path}: {body}"
        );
        assert_eq!(
            headers["www-authenticate"],
            "Bearer realm=\"portico\", error=\"insufficient_scope\""
        );
    }
    // The same user's session still reaches the admin app: the narrowing is the token's alone.
    let response = server.get_as("/apps/admin/headers", &boss).await;
    assert_eq!(response.status(), StatusCode::OK);

    // What cannot be made is said plainly; nothing is stored.
    for (request, words) in [
        (json!({ "name": "" }), "name the token"),
        (
            json!({ "name": "x", "expires_in_days": 31 }),
            "at most 30 days",
        ),
        (
            json!({ "name": "x", "scope": { "apps": ["nope"] } }),
            "no app `nope`",
        ),
    ] {
        let (status, body) = mint(server, &boss, request.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{request}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(words),
            "{request}: {body}"
        );
    }
    assert_eq!(
        list(server, &boss).await["tokens"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn tokens_are_minted_only_with_the_session_and_its_csrf_proof() {
    let portal = portal("600/min").await;
    let server = &portal.server;
    let dev = server.sign_in("dev").await;
    // A cross-site page posting with the cookie; a script with the cookie but no CSRF token.
    for (origin, csrf) in [("http://evil.example", true), ("", false)] {
        let mut request = server
            .post("/auth/tokens")
            .header("cookie", &dev.cookie)
            .json(&json!({ "name": "stolen" }));
        if !origin.is_empty() {
            request = request.header("origin", origin);
        }
        if csrf {
            request = request.header("x-portico-csrf", csrf_of(server, &dev).await);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "origin {origin:?}"
        );
    }
    assert!(
        list(server, &dev).await["tokens"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Without a session there is nothing to mint for.
    let response = server
        .post("/auth/tokens")
        .header("origin", server.origin())
        .json(&json!({ "name": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_is_worthless_on_another_tenant_and_never_rides_with_a_cookie() {
    let portal = portal("600/min").await;
    let server = &portal.server;
    let dev = server.sign_in("dev").await;
    let (token, _) = minted(server, &dev, json!({ "name": "ci" })).await;
    // The same user id exists on globex; the token is acme's.
    let (status, _, body) = call("GET", &portal.globex_url("/apps/costs/headers"), &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_token");
    let response = client()
        .get(server.url("/apps/costs/headers"))
        .bearer_auth(&token)
        .header("cookie", &dev.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // A forged secret for a real id is refused like garbage.
    let (prefix, _) = token.rsplit_once('_').unwrap();
    let forged = format!("{prefix}_{}", "A".repeat(43));
    let (status, _, _) = call("GET", &server.url("/apps/costs/headers"), &forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_operator_revokes_a_token_or_every_token_of_a_user_with_a_command() {
    let (logs, _guard) = Logs::capture();
    let portal = portal("600/min").await;
    let server = &portal.server;
    let dev = server.sign_in("dev").await;
    let (first, made) = minted(server, &dev, json!({ "name": "one" })).await;
    let (second, _) = minted(server, &dev, json!({ "name": "two" })).await;
    let (third, _) = minted(server, &dev, json!({ "name": "three" })).await;
    let admin = |body: Value| {
        let url = format!("http://{}/tokens/revoke", portal.admin);
        async move {
            let response = client().post(url).json(&body).send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    // Not through another tenant's name.
    let (status, _) = admin(json!({ "tenant": "globex", "token": made["id"] })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = admin(json!({ "tenant": "acme", "token": made["id"] })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({ "revoked": 1 }), "a count, never whose");
    let (status, _, _) = call("GET", &server.url("/apps/costs/headers"), &first).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = call("GET", &server.url("/apps/costs/headers"), &second).await;
    assert_eq!(status, StatusCode::OK);
    // The command an operator runs: the leaked token's text is enough to name it.
    let (ok, said) = revoke_token(portal.admin, &["--token", &second]).await;
    assert!(ok, "{said}");
    assert_eq!(said.trim(), "revoked 1 token of tenant acme");
    let (ok, said) = revoke_token(portal.admin, &["--token", &second]).await;
    assert!(!ok, "gone already: {said}");
    assert!(said.contains("no such token"), "{said}");
    let (ok, said) = revoke_token(portal.admin, &["--user", "dev"]).await;
    assert!(ok, "{said}");
    assert_eq!(said.trim(), "revoked 1 token of tenant acme");
    for token in [&second, &third] {
        let (status, _, _) = call("GET", &server.url("/apps/costs/headers"), token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = admin(json!({ "tenant": "acme" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let revoked = logs.audit("token_revoked");
    assert!(
        revoked.iter().any(|line| line["trigger"] == "admin"
            && line["token"] == "*"
            && line["user"] == "dev"),
        "{revoked:?}"
    );
}

/// `portico revoke-token --admin <admin> --tenant acme <args>`: whether it succeeded, and what it said.
async fn revoke_token(admin: SocketAddr, args: &[&str]) -> (bool, String) {
    let admin = admin.to_string();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_portico"));
    command
        .args(["revoke-token", "--admin", &admin, "--tenant", "acme"])
        .args(args);
    let output = command.output().await.expect("portico runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

#[tokio::test]
async fn a_token_over_its_rate_limit_is_told_when_to_come_back() {
    let portal = portal("3/min").await;
    let server = &portal.server;
    let dev = server.sign_in("dev").await;
    let (token, _) = minted(server, &dev, json!({ "name": "loop" })).await;
    let (other, _) = minted(server, &dev, json!({ "name": "another" })).await;
    for _ in 0..3 {
        let (status, _, _) = call("GET", &server.url("/apps/costs/headers"), &token).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, headers, body) = call("GET", &server.url("/apps/costs/headers"), &token).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "rate_limited");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (1..=20).contains(&retry_after),
        "one request back in 20 s: {retry_after}"
    );
    // The limit is the token's: another token of the same user, and the user's session, go on.
    let (status, _, _) = call("GET", &server.url("/apps/costs/headers"), &other).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        server.get_as("/apps/costs/headers", &dev).await.status(),
        StatusCode::OK
    );

    let metrics = client()
        .get(format!("http://{}/metrics", portal.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "portico_bearer_requests_total{tenant=\"acme\",via=\"personal_token\",outcome=\"success\"} 4",
        "portico_bearer_requests_total{tenant=\"acme\",via=\"personal_token\",outcome=\"limited\"} 1",
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }
}

/// A script lists the Backstage catalog as its user with a personal token, signed in to the real
/// Backstage once per token; a token narrowed away from the Backstage API does not reach it.
#[tokio::test]
async fn a_personal_token_reads_the_backstage_catalog_as_its_user() {
    let backstage = crate::backstage::backstage();
    let server = config()
        .tenant(
            tenant("acme", &["127.0.0.1"])
                // Backstage's catalog knows alice by her email; the portal user is this test's own.
                .user(user("pat-alice", &["acme-eng"]).email("alice@acme.example"))
                .role("developer", &["acme-eng"])
                .app(app("docs", &["developer"]).files("embedded:demo"))
                .backstage(&format!(
                    "{{ url: \"{}\", identity: user, plugins: [catalog, whoami], \
                     user_namespace: acme, sign_in: oauth2_proxy }}",
                    backstage.url
                ))
                .key("tokens", "{ personal: 30d }"),
        )
        .start()
        .await;
    let alice = server.sign_in("pat-alice").await;
    let (docs_only, _) = minted(
        &server,
        &alice,
        json!({ "name": "docs", "scope": { "apps": ["docs"] } }),
    )
    .await;
    let (catalog, _) = minted(
        &server,
        &alice,
        json!({ "name": "catalog", "scope": { "apps": [], "backstage": true, "read_only": true } }),
    )
    .await;
    let entity = "/backstage/api/catalog/entities/by-name/user/acme/alice";
    let (status, _, body) = call("GET", &server.url(entity), &docs_only).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "insufficient_scope");
    let (status, _, body) = call("GET", &server.url(entity), &catalog).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["spec"]["profile"]["email"], "alice@acme.example");
    let (status, _, seen) = call("GET", &server.url("/backstage/api/whoami"), &catalog).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["principal"]["userEntityRef"], "user:acme/alice");
    let (status, _, _) = call("GET", &server.url("/apps/docs/"), &catalog).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "narrowed to the Backstage API"
    );
    assert_eq!(
        crate::backstage::sign_ins_of("pat-alice").await.len(),
        1,
        "one Backstage sign-in for the token's calls"
    );
}

/// A tenant that mints no personal tokens has neither the page nor the API, and answers a personal
/// token with 401 itself rather than passing it to the app as the app's own business.
#[tokio::test]
async fn a_tenant_without_personal_tokens_offers_and_takes_none() {
    let portal = portal("600/min").await;
    let acme = &portal.server;
    let dev = acme.sign_in("dev").await;
    let (token, _) = minted(acme, &dev, json!({ "name": "acme's" })).await;
    let server = config()
        .tenant(
            tenant("plain", &["127.0.0.1"])
                .user(user("dev", &["eng"]))
                .role("developer", &["eng"])
                .app(app("docs", &["developer"]).files("embedded:demo")),
        )
        .start()
        .await;
    let session = server.sign_in("dev").await;
    for path in ["/shell/tokens", "/auth/tokens"] {
        let response = server
            .get(path)
            .header("cookie", &session.cookie)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "tokens_disabled", "{path}: {body}");
    }
    let menu = server.shell_config(&session).await.to_string();
    assert!(!menu.contains("/shell/tokens"), "no menu entry: {menu}");
    let (status, _, body) = call("GET", &server.url("/apps/docs/"), &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_token");
}
