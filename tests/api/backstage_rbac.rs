//! One role model across the portal and Backstage, against the real Backstage backend with its
//! permission framework on and portico's modules installed (integrations/backstage: the `portico` auth
//! provider and permission policy; tests/backstage/index.js adds them). portico signs users in with a
//! signed assertion carrying the grants that `backstage.permissions` gives their roles; Backstage
//! verifies it against the JWKS start.mjs serves (its `sign_in_key` is trusted) and decides every
//! permission from the grants. What Backstage refuses here, Backstage itself refuses: portico's catalog
//! scope would have let each request through.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backstage::backstage;
use crate::helpers::{Session, TestServer, app, config, tenant, user};

/// The rules of the tests' acme tenant: developers read acme and acme-labs (not the shared common),
/// platform admins read everything of the tenant and manage entities and locations in acme and
/// acme-labs.
const PERMISSIONS: &str = "[\
    { roles: [developer], allow: [catalog.entity.read], namespaces: [acme, acme-labs] }, \
    { roles: [platform-admin], allow: [catalog.entity.read] }, \
    { roles: [platform-admin], allow: [catalog.entity.*, catalog.location.*], namespaces: [acme, acme-labs] }\
]";

/// Tenant acme on 127.0.0.1 (assertion issuer `http://127.0.0.1`, which the test backend gives the
/// namespaces acme and acme-labs, and common to read), signing with `key`. Its users sign in to
/// Backstage in acme-labs, where only these tests' users live (Backstage keeps the claims of a user's
/// latest sign-in, so a user other tests sign in would interfere): dora is a platform admin and a
/// developer, eve a developer, carol has no role in Backstage.
async fn acme_portal(key: &std::path::Path, backstage_keys: &str) -> TestServer {
    let url = &backstage().url;
    config()
        .top(&format!(
            "server: {{ signing_keys: [\"{}\"] }}",
            key.display()
        ))
        .tenant(
            tenant("acme", &["127.0.0.1"])
                .user(user("dora", &["acme-admins", "acme-eng"]).email("dora@acme.example"))
                .user(user("eve", &["acme-eng"]).email("eve@acme.example"))
                .user(user("carol", &["acme-staff"]).email("carol@acme.example"))
                .role("staff", &["acme-staff"])
                .role("developer", &["acme-eng"])
                .role("platform-admin", &["acme-admins"])
                .app(app("docs", &["developer", "staff"]).files("embedded:demo"))
                .backstage(&format!(
                    "{{ url: \"{url}\", identity: user, namespaces: [acme, acme-labs], \
                     shared_namespaces: [common], user_namespace: acme-labs, {backstage_keys} }}"
                )),
        )
        .start()
        .await
}

async fn csrf_of(server: &TestServer, session: &Session) -> String {
    server.shell_config(session).await["portico"]["csrfToken"]
        .as_str()
        .expect("the shell config carries the CSRF token")
        .to_owned()
}

async fn catalog(server: &TestServer, session: &Session, path: &str) -> reqwest::Response {
    server
        .get(&format!("/backstage/api/catalog{path}"))
        .header("accept", "application/json")
        .header("cookie", &session.cookie)
        .send()
        .await
        .unwrap()
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

async fn uid_of(server: &TestServer, session: &Session, name: &str) -> String {
    let (status, entity) = json_of(
        catalog(
            server,
            session,
            &format!("/entities/by-name/component/acme-labs/{name}"),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{entity}");
    entity["metadata"]["uid"].as_str().unwrap().to_owned()
}

async fn delete(server: &TestServer, session: &Session, uid: &str) -> (StatusCode, Value) {
    let csrf = csrf_of(server, session).await;
    json_of(
        server
            .client
            .delete(server.url(&format!("/backstage/api/catalog/entities/by-uid/{uid}")))
            .header("accept", "application/json")
            .header("cookie", &session.cookie)
            .header("x-portico-csrf", csrf)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// `namespace/name` of every Component the session lists through portico.
async fn components(server: &TestServer, session: &Session) -> Vec<String> {
    let (status, list) =
        json_of(catalog(server, session, "/entities?filter=kind=component").await).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let mut names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e["metadata"]["namespace"].as_str().unwrap(),
                e["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn backstage_decides_from_portico_roles_a_developer_cannot_delete_an_admin_can() {
    let fixture = backstage();
    // `sign_in` left at `auto`: the backend has portico's provider, so it is used.
    let server = acme_portal(&fixture.sign_in_key, &format!("permissions: {PERMISSIONS}")).await;
    let dora = server.sign_in("dora").await;
    let eve = server.sign_in("eve").await;

    // Reads: portico's scope lets acme, acme-labs and common through; Backstage's policy narrows the
    // developer to acme and acme-labs, as the rules say.
    let eve_sees = components(&server, &eve).await;
    assert!(
        eve_sees.contains(&"acme/payments-api".to_owned()),
        "{eve_sees:?}"
    );
    assert!(
        eve_sees.contains(&"acme-labs/sturdy-widget".to_owned()),
        "{eve_sees:?}"
    );
    assert!(
        !eve_sees.iter().any(|c| c.starts_with("common/")),
        "{eve_sees:?}"
    );
    let dora_sees = components(&server, &dora).await;
    assert!(
        dora_sees.contains(&"common/design-system".to_owned()),
        "{dora_sees:?}"
    );
    assert!(
        !dora_sees.iter().any(|c| c.starts_with("globex")),
        "{dora_sees:?}"
    );
    let (status, _) = json_of(
        catalog(
            &server,
            &eve,
            "/entities/by-name/component/common/design-system",
        )
        .await,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "Backstage hides what eve may not read"
    );

    // A developer's delete: portico's scope lets it through (the entity is the tenant's, and eve may
    // read it), Backstage's permission framework refuses it.
    let sturdy = uid_of(&server, &eve, "sturdy-widget").await;
    let (status, body) = delete(&server, &eve, &sturdy).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["error"]["name"], "NotAllowedError",
        "Backstage's own refusal: {body}"
    );
    assert_eq!(
        uid_of(&server, &dora, "sturdy-widget").await,
        sturdy,
        "still there"
    );

    // The platform admin's delete succeeds.
    let doomed = uid_of(&server, &dora, "doomed-widget").await;
    let (status, body) = delete(&server, &dora, &doomed).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = json_of(
        catalog(
            &server,
            &dora,
            "/entities/by-name/component/acme-labs/doomed-widget",
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "deleted");
}

#[tokio::test]
async fn without_rules_backstage_grants_nothing() {
    // No `permissions`: the sign-in carries no grants, and Backstage's policy allows nothing.
    let server = acme_portal(&backstage().sign_in_key, "sign_in: assertion").await;
    let carol = server.sign_in("carol").await;
    assert_eq!(components(&server, &carol).await, Vec::<String>::new());
}

/// Signs `claims` with the PEM key at `key` (kid: the key's thumbprint, as `kid`).
fn sign(key: &std::path::Path, kid: &str, claims: &Value) -> String {
    let pem = std::fs::read(key).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_pem(&pem).unwrap()).unwrap()
}

/// The `kid` portico publishes for its first signing key.
async fn kid_of(server: &TestServer) -> String {
    crate::helpers::published_kids(&server.origin())
        .await
        .remove(0)
}

/// What Backstage's `portico` provider answers an assertion sent straight to it.
async fn refresh(assertion: &str) -> (StatusCode, Value) {
    json_of(
        reqwest::Client::new()
            .get(format!("{}/api/auth/portico/refresh", backstage().url))
            .header("x-portico-assertion", assertion)
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn claims(issuer: &str, subject: &str, namespace: &str, grants: Value) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json!({
        "iss": issuer, "aud": "backstage-sign-in", "sub": subject, "iat": now, "exp": now + 60,
        "roles": ["developer"], "backstage": { "namespace": namespace, "grants": grants },
    })
}

#[tokio::test]
async fn backstage_refuses_forged_expired_and_cross_tenant_assertions() {
    let fixture = backstage();
    let trusted = acme_portal(&fixture.sign_in_key, "sign_in: assertion").await;
    let kid = kid_of(&trusted).await;
    let key = &fixture.sign_in_key;
    let read = json!([{ "allow": ["catalog.entity.read"], "namespaces": ["globex-rbac"] }]);

    // The control: a well-formed assertion of the globex tenant (issuer http://localhost) signs hank
    // in (in globex-rbac, a namespace only these tests sign users in to).
    let good = claims("http://localhost", "hank", "globex-rbac", read.clone());
    let (status, body) = refresh(&sign(key, &kid, &good)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["backstageIdentity"]["identity"]["userEntityRef"],
        "user:globex-rbac/hank"
    );

    let mut refused = Vec::new();
    // Expired.
    let mut expired = good.clone();
    expired["iat"] = json!(good["iat"].as_u64().unwrap() - 600);
    expired["exp"] = json!(good["iat"].as_u64().unwrap() - 60);
    refused.push(("expired", sign(key, &kid, &expired)));
    // Another audience (e.g. an assertion meant for an app, replayed).
    let mut audience = good.clone();
    audience["aud"] = json!("cost-insights");
    refused.push(("another audience", sign(key, &kid, &audience)));
    // An issuer Backstage does not know.
    refused.push((
        "unknown issuer",
        sign(
            key,
            &kid,
            &claims("http://evil.example", "hank", "globex-rbac", read.clone()),
        ),
    ));
    // Tenant acme (issuer http://127.0.0.1) naming a globex user, or granting in globex.
    refused.push((
        "acme names globex",
        sign(
            key,
            &kid,
            &claims("http://127.0.0.1", "hank", "globex-rbac", json!([])),
        ),
    ));
    refused.push((
        "acme grants in globex",
        sign(
            key,
            &kid,
            &claims("http://127.0.0.1", "eve", "acme-labs", read.clone()),
        ),
    ));
    // Tenant globex naming an acme user.
    refused.push((
        "globex names acme",
        sign(
            key,
            &kid,
            &claims("http://localhost", "eve", "acme-labs", json!([])),
        ),
    ));
    // Signed with a key Backstage does not trust (same kid, other key).
    let dir = tempfile::tempdir().unwrap();
    let other = crate::scale_out::write_signing_key(dir.path());
    refused.push(("forged signature", sign(&other, &kid, &good)));
    // Unsigned.
    let unsigned = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(good.to_string())
        )
    };
    refused.push(("alg none", unsigned));
    for (case, assertion) in refused {
        let (status, body) = refresh(&assertion).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {body}");
        assert_eq!(
            body["error"]["name"], "AuthenticationError",
            "{case}: {body}"
        );
    }

    // Through portico: a portico whose key Backstage was not given cannot sign anyone in.
    let impostor = acme_portal(&other, "sign_in: assertion").await;
    let eve = impostor.sign_in("eve").await;
    let (status, body) =
        json_of(catalog(&impostor, &eve, "/entities?filter=kind=component").await).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"], "backstage_sign_in_refused", "{body}");
}

#[tokio::test]
async fn a_tenant_misconfigured_to_name_another_tenants_namespace_signs_no_one_in() {
    // acme's portico config claims a namespace of globex (a mistake, or an attacker's pull request):
    // Backstage gives issuer http://127.0.0.1 only acme's namespaces, so hank never becomes
    // user:globex-rbac/hank through it.
    let url = &backstage().url;
    let server = config()
        .top(&format!(
            "server: {{ signing_keys: [\"{}\"] }}",
            backstage().sign_in_key.display()
        ))
        .tenant(
            tenant("acme", &["127.0.0.1"])
                .user(user("hank", &["acme-eng"]).email("hank@globex.example"))
                .role("developer", &["acme-eng"])
                .app(app("docs", &["developer"]).files("embedded:demo"))
                .backstage(&format!(
                    "{{ url: \"{url}\", identity: user, sign_in: assertion, namespaces: [globex-rbac] }}"
                )),
        )
        .start()
        .await;
    let hank = server.sign_in("hank").await;
    let (status, body) =
        json_of(catalog(&server, &hank, "/entities?filter=kind=component").await).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"], "backstage_sign_in_refused", "{body}");
}

#[tokio::test]
async fn backstage_trusts_a_new_portico_key_without_a_restart() {
    // A key published after Backstage started (an operator's rotation): Backstage's provider fetches
    // the key set again when an assertion names a key it has not seen. It does so at most every 30 s,
    // so the first sign-ins may still be refused while another test's fetch is recent.
    let fixture = backstage();
    let dir = tempfile::tempdir().unwrap();
    let fresh = crate::scale_out::write_signing_key(dir.path());
    let published = fixture.keys_dir.join(format!(
        "rotated-{}.pem",
        std::process::id() ^ std::time::UNIX_EPOCH.elapsed().unwrap().subsec_nanos()
    ));
    std::fs::copy(&fresh, &published).unwrap();
    let server = acme_portal(&published, "sign_in: assertion").await;
    let carol = server.sign_in("carol").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(45);
    loop {
        let (status, body) =
            json_of(catalog(&server, &carol, "/entities?filter=kind=component").await).await;
        if status == StatusCode::OK {
            assert_eq!(body, json!([]), "carol has no grants");
            break;
        }
        assert_eq!(body["error"], "backstage_sign_in_refused", "{body}");
        assert!(
            std::time::Instant::now() < deadline,
            "Backstage never took the new key: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
    std::fs::remove_file(&published).unwrap();
}

/// A stand-in for Backstage's frontend build as its app-backend serves it (a real frontend build is
/// too heavy for CI): `index.html` for every route (the UI routes in the browser), its hashed bundle
/// under `/static/`. Every path it was asked for is recorded.
async fn backstage_frontend() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::http::{Uri, header};
    use axum::response::IntoResponse;
    let seen: std::sync::Arc<std::sync::Mutex<Vec<String>>> = std::sync::Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let record = record.clone();
        async move {
            record.lock().unwrap().push(uri.path().to_owned());
            if uri.path() == "/static/main.0123abcd.js" {
                return (
                    [(header::CONTENT_TYPE, "text/javascript"), (header::CACHE_CONTROL, "public, max-age=1209600")],
                    "document.title = 'Backstage';",
                )
                    .into_response();
            }
            (
                [(header::CONTENT_TYPE, "text/html"), (header::CACHE_CONTROL, "no-store")],
                "<!doctype html><title>Backstage</title><script src=\"/backstage/static/main.0123abcd.js\"></script>",
            )
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// `GET <path>` as the holder of `session`, ready to send.
fn get_as(server: &TestServer, path: &str, session: &Session) -> reqwest::RequestBuilder {
    server.get(path).header("cookie", session.cookie.clone())
}

/// The acme portal with Backstage's UI mounted for developers, its files from [`backstage_frontend`]
/// (whose record of the paths it was asked for comes along).
async fn ui_portal() -> (TestServer, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let (frontend, seen) = backstage_frontend().await;
    let server = acme_portal(
        &backstage().sign_in_key,
        &format!(
            "permissions: {PERMISSIONS}, ui: {{ url: \"{frontend}\", access: {{ roles: [developer] }} }}"
        ),
    )
    .await;
    (server, seen)
}

#[tokio::test]
async fn backstages_web_ui_is_an_app_at_backstage_with_the_same_decision() {
    let (server, seen) = ui_portal().await;
    let (eve, carol) = (server.sign_in("eve").await, server.sign_in("carol").await);
    let get = |path: &str, session: &Session| get_as(&server, path, session).send();

    // In the navigation of those who may open it, at /backstage/.
    let nav = |shell: &Value| {
        crate::helpers::app_nodes(shell)
            .iter()
            .map(|node| (node["pathSegment"].clone(), node["viewUrl"].clone()))
            .collect::<Vec<_>>()
    };
    let eve_nav = nav(&server.shell_config(&eve).await);
    assert!(
        eve_nav.contains(&(json!("backstage"), json!("/backstage"))),
        "{eve_nav:?}"
    );
    assert!(
        !nav(&server.shell_config(&carol).await)
            .iter()
            .any(|(id, _)| id == "backstage")
    );

    // The UI's files, its routes (index.html), its hashed bundle kept for a year.
    let root = get("/backstage", &eve).await.unwrap();
    assert_eq!(root.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(root.headers()["location"], "/backstage/");
    for path in ["/backstage/", "/backstage/catalog/default/component/x"] {
        let page = get(path, &eve).await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{path}");
        assert!(
            page.headers().contains_key("content-security-policy")
                || page.headers().contains_key("x-frame-options"),
            "framed by the shell only"
        );
        assert!(page.text().await.unwrap().contains("main.0123abcd.js"));
    }
    let bundle = get("/backstage/static/main.0123abcd.js", &eve)
        .await
        .unwrap();
    assert_eq!(bundle.status(), StatusCode::OK);
    assert_eq!(
        bundle.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );

    // Backstage's API is never reached through the UI's mount, however it is spelled.
    for path in [
        "/backstage/%61pi/catalog/entities",
        "/backstage/API/catalog/entities",
    ] {
        let refused = get(path, &eve).await.unwrap();
        assert_eq!(refused.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let asked = seen.lock().unwrap().clone();
    assert!(
        !asked.iter().any(|p| p.to_ascii_lowercase().contains("api")),
        "{asked:?}"
    );
    assert_eq!(
        get("/backstage/", &carol).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn backstages_web_ui_signs_in_from_the_session_with_a_token_that_is_no_credential() {
    let fixture = backstage();
    let (server, _) = ui_portal().await;
    let (eve, carol) = (server.sign_in("eve").await, server.sign_in("carol").await);
    let get = |path: &str, session: &Session| get_as(&server, path, session).send();
    // The UI's sign-in is answered from the session: who eve is in Backstage, and a token that is
    // no credential (Backstage refuses it; portico sends the session's own on every API call).
    let (status, answer) = json_of(
        get("/backstage/api/auth/portico/refresh", &eve)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let identity = &answer["backstageIdentity"]["identity"];
    assert_eq!(identity["userEntityRef"], "user:acme-labs/eve", "{answer}");
    // Backstage leaves ownership out of its tokens by default; the UI's sign-in page requires the list
    // (a real frontend refused `null`: scripts/check-backstage-ui.sh).
    assert_eq!(
        identity["ownershipEntityRefs"],
        json!(["user:acme-labs/eve"]),
        "{answer}"
    );
    let placeholder = answer["backstageIdentity"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let straight = reqwest::Client::new()
        .get(format!("{}/api/catalog/entities?limit=1", fixture.url))
        .bearer_auth(&placeholder)
        .send()
        .await
        .unwrap();
    assert_eq!(
        straight.status(),
        StatusCode::UNAUTHORIZED,
        "Backstage refuses the placeholder"
    );
    let through = server
        .get("/backstage/api/catalog/entities?filter=kind=component")
        .header("cookie", &eve.cookie)
        .bearer_auth(&placeholder)
        .send()
        .await
        .unwrap();
    assert_eq!(
        through.status(),
        StatusCode::OK,
        "the UI's calls work through portico"
    );

    // carol may not open the UI: neither its files nor its sign-in.
    assert_eq!(
        get("/backstage/", &carol).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let (status, _) = json_of(
        get("/backstage/api/auth/portico/refresh", &carol)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
