//! The Luigi shell on the embedded demo config: per-user navigation, sign-in and sign-out, the shell page
//! and its headers, Luigi assets, and tenant resolution by Host.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::helpers::{
    ConfigYaml, Session, TestServer, app, app_nodes, children_of, config, json_error,
    json_error_of, segments, session_from, tenant, user,
};

fn header<'r>(response: &'r reqwest::Response, name: &str) -> &'r str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn roles(config: &Value) -> Vec<String> {
    config["luigi"]["navigation"]["globalContext"]["roles"]
        .as_array()
        .expect("roles array")
        .iter()
        .map(|role| role.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn admin_sees_every_app_and_the_admin_only_node() {
    let server = TestServer::embedded().await;
    let alice = server.sign_in("alice").await;
    let config = server.shell_config(&alice).await;
    let apps = app_nodes(&config);
    assert_eq!(
        segments(&apps),
        ["service-status", "admin-console", "team-directory"],
        "config order: the tenant's own apps, then the shared ones it enables"
    );
    assert_eq!(
        segments(&children_of(&apps, "service-status")),
        ["overview", "incidents"]
    );
    let incidents = &children_of(&apps, "service-status")[1];
    assert_eq!(incidents["viewUrl"], "/apps/service-status/incidents");
    assert_eq!(roles(&config), ["developer", "platform-admin"]);
    assert_eq!(
        config["luigi"]["navigation"]["globalContext"]["user"]["id"],
        "alice"
    );
    assert_eq!(config["portico"]["user"]["initials"], "AA");
}

#[tokio::test]
async fn developer_does_not_learn_of_admin_apps_or_nodes() {
    let server = TestServer::embedded().await;
    let dave = server.sign_in("dave").await;
    let config = server.shell_config(&dave).await;
    let apps = app_nodes(&config);
    assert_eq!(segments(&apps), ["service-status", "team-directory"]);
    assert_eq!(
        segments(&children_of(&apps, "service-status")),
        ["overview"]
    );
    assert_eq!(roles(&config), ["developer"]);
    // Left out, not hidden: the words never reach the browser.
    let text = config.to_string();
    assert!(!text.contains("admin-console"), "{text}");
    assert!(!text.contains("incidents"), "{text}");
    let home_apps = config["luigi"]["navigation"]["nodes"][0]["context"]["apps"]
        .as_array()
        .unwrap();
    assert_eq!(home_apps.len(), 2, "home view lists only reachable apps");
}

#[tokio::test]
async fn user_without_groups_gets_no_apps() {
    let server = TestServer::embedded().await;
    let nora = server.sign_in("nora").await;
    let config = server.shell_config(&nora).await;
    assert!(app_nodes(&config).is_empty(), "{config}");
    assert!(roles(&config).is_empty());
    assert_eq!(
        config["luigi"]["navigation"]["nodes"][0]["context"]["apps"],
        Value::Array(vec![])
    );
}

#[tokio::test]
async fn shell_config_is_never_cached_and_carries_a_csrf_token() {
    let server = TestServer::embedded().await;
    let dave = server.sign_in("dave").await;
    let response = server.get_as("/shell/config.json", &dave).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, "cache-control").contains("no-store"));
    assert!(header(&response, "content-type").starts_with("application/json"));
    let config: Value = response.json().await.unwrap();
    let token = config["portico"]["csrfToken"].as_str().unwrap();
    assert!(token.len() >= 16, "a real token: {token}");
    assert_eq!(config["portico"]["luigiVersion"], "2.31.0");

    // Each session has its own token.
    let other = server.sign_in("dave").await;
    let other_config = server.shell_config(&other).await;
    assert_ne!(other_config["portico"]["csrfToken"], token);
}

#[tokio::test]
async fn sign_in_sets_an_opaque_http_only_cookie() {
    let server = TestServer::embedded().await;
    let response = server
        .post("/auth/dev-login")
        .header("origin", server.origin())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=dave&return_to=%2Fhome%2Fteam-directory")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/home/team-directory");
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/"), "{set_cookie}");
    let session = session_from(response.headers()).unwrap();
    assert!(!session.id.contains("dave"), "the cookie is opaque");
    assert_eq!(session.id.len(), 43);

    let who = server.get_as("/auth/session", &session).await;
    assert_eq!(who.status(), StatusCode::OK);
    let who: Value = who.json().await.unwrap();
    assert_eq!(who["user"]["id"], "dave");
    assert_eq!(who["tenant"], "demo");
    assert_eq!(who["roles"], serde_json::json!(["developer"]));
}

#[tokio::test]
async fn sign_in_refuses_cross_site_posts_unknown_users_and_foreign_return_targets() {
    let server = TestServer::embedded().await;
    let form = |body: &'static str| {
        server
            .post("/auth/dev-login")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    };
    let cross_site = form("user=alice&return_to=%2F")
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert!(session_from(cross_site.headers()).is_none());
    json_error(cross_site, 403, "csrf_rejected").await;

    let unknown = form("user=mallory&return_to=%2F")
        .header("origin", server.origin())
        .send()
        .await
        .unwrap();
    assert!(session_from(unknown.headers()).is_none());
    json_error(unknown, 400, "unknown_user").await;

    for target in ["https%3A%2F%2Fevil.example%2F", "%2F%2Fevil.example%2F"] {
        let open_redirect = server
            .post("/auth/dev-login")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", server.origin())
            .body(format!("user=dave&return_to={target}"))
            .send()
            .await
            .unwrap();
        assert_eq!(open_redirect.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            open_redirect.headers()[LOCATION],
            "/",
            "return_to={target} stays on this origin"
        );
    }
}

#[tokio::test]
async fn sign_in_page_lists_the_demo_users_and_warns() {
    let server = TestServer::embedded().await;
    let response = server
        .get("/auth/login?return_to=%2Fhome%2Fservice-status")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.unwrap();
    assert!(body.contains("DEVELOPMENT SIGN-IN"), "{body}");
    for user in ["alice", "dave", "nora"] {
        assert!(body.contains(&format!("sign-in-{user}")), "{user} listed");
    }
    assert!(body.contains(r#"value="/home/service-status""#), "{body}");
}

#[tokio::test]
async fn without_a_session_api_calls_get_401_and_browsers_go_to_sign_in() {
    let server = TestServer::embedded().await;
    let api = server.get("/shell/config.json").send().await.unwrap();
    assert!(
        header(&api, "www-authenticate").contains("portico"),
        "401 names the auth scheme"
    );
    assert!(header(&api, "cache-control").contains("no-store"));
    json_error(api, 401, "not_signed_in").await;

    let browser = server
        .get("/")
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(browser.status(), StatusCode::SEE_OTHER);
    assert_eq!(browser.headers()[LOCATION], "/auth/login?return_to=%2F");

    // A deep link comes back to where the user was going after sign-in.
    let deep = server
        .get("/home/service-status/overview?tab=2")
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    assert_eq!(deep.status(), StatusCode::SEE_OTHER);
    let location = deep.headers()[LOCATION].to_str().unwrap();
    let encoded = location
        .strip_prefix("/auth/login?return_to=")
        .unwrap_or_else(|| panic!("redirect to sign-in, got {location}"));
    let return_to = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .unwrap();
    assert_eq!(return_to, "/home/service-status/overview?tab=2");

    // The same navigation without a browser's headers is an API call: 401, not a redirect.
    let script = server.get("/home/service-status").send().await.unwrap();
    json_error(script, 401, "not_signed_in").await;
}

#[tokio::test]
async fn deep_link_reload_returns_the_shell_page_with_a_strict_csp() {
    let server = TestServer::embedded().await;
    let dave = server.sign_in("dave").await;
    let response = server
        .get("/home/service-status/overview")
        .header("cookie", &dave.cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, "content-type").starts_with("text/html"));
    let csp = response.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let script_src = csp
        .split(';')
        .map(str::trim)
        .find(|directive| directive.starts_with("script-src"))
        .unwrap();
    assert_eq!(script_src, "script-src 'self'", "no inline or eval script");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(header(&response, "x-frame-options"), "DENY");
    assert!(header(&response, "cache-control").contains("no-store"));
    let page = response.text().await.unwrap();
    assert!(
        page.contains(r#"<script src="/shell/luigi/2.31.0/luigi.js"></script>"#),
        "{page}"
    );
    assert!(page.contains("/shell/bootstrap.js"));
    assert!(page.contains("<title>Portico Demo Portal</title>"));
    // CSP forbids inline script, so the page must not contain any.
    assert_eq!(
        page.matches("<script").count(),
        page.matches("<script src=").count(),
        "only external scripts: {page}"
    );
}

#[tokio::test]
async fn reserved_prefixes_never_fall_through_to_the_shell() {
    let server = TestServer::embedded().await;
    let dave = server.sign_in("dave").await;
    for path in ["/auth/nope", "/shell/nope.js", "/.well-known/nope"] {
        let response = server.get_as(path, &dave).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn luigi_assets_are_versioned_and_cached_forever() {
    let server = TestServer::embedded().await;
    let response = server
        .get("/shell/luigi/2.31.0/luigi.js")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cache = header(&response, "cache-control").to_owned();
    assert!(cache.contains("immutable"), "{cache}");
    assert!(cache.contains("max-age=31536000"), "{cache}");
    assert!(header(&response, "content-type").contains("javascript"));
    let etag = header(&response, "etag").to_owned();
    assert!(!etag.is_empty());
    let body = response.bytes().await.unwrap();
    assert!(
        body.len() > 10_000,
        "the real luigi.js, {} bytes",
        body.len()
    );

    let revalidated = server
        .get("/shell/luigi/2.31.0/luigi.js")
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);

    let css = server
        .get("/shell/luigi/2.31.0/luigi.css")
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert!(header(&css, "content-type").starts_with("text/css"));

    let client = server
        .get("/shell/luigi-client/2.31.0/luigi-client.js")
        .send()
        .await
        .unwrap();
    assert_eq!(client.status(), StatusCode::OK);
    assert!(header(&client, "cache-control").contains("immutable"));

    for path in [
        "/shell/luigi/2.30.0/luigi.js",
        "/shell/luigi-client/1.0.0/luigi-client.js",
        "/shell/luigi/2.31.0/not-there.js",
    ] {
        let missing = server.get(path).send().await.unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(
            !header(&missing, "cache-control").contains("immutable"),
            "a 404 must not be cached forever"
        );
    }
}

#[tokio::test]
async fn logout_needs_the_csrf_token_and_then_ends_the_session() {
    let server = TestServer::embedded().await;
    let dave = server.sign_in("dave").await;
    let config = server.shell_config(&dave).await;
    let token = config["portico"]["csrfToken"].as_str().unwrap().to_owned();

    let wrong_token = format!("{token}x");
    for (what, origin, csrf) in [
        ("no token", server.origin(), None),
        ("wrong token", server.origin(), Some(wrong_token.as_str())),
        (
            "cross-site",
            "http://evil.example".to_owned(),
            Some(token.as_str()),
        ),
    ] {
        let mut request = server
            .post("/auth/logout")
            .header("cookie", &dave.cookie)
            .header("origin", origin);
        if let Some(csrf) = csrf {
            request = request.header("x-portico-csrf", csrf);
        }
        json_error_of(what, request.send().await.unwrap(), 403, "csrf_rejected").await;
    }

    // The refused attempts did not sign dave out.
    server.shell_config(&dave).await;

    let response = server
        .post("/auth/logout")
        .header("cookie", &dave.cookie)
        .header("origin", server.origin())
        .header("x-portico-csrf", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cleared = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        cleared.starts_with("portico_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert!(header(&response, "cache-control").contains("no-store"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["signed_out"], true);

    let after = server.get_as("/shell/config.json", &dave).await;
    json_error(after, 401, "not_signed_in").await;
}

#[tokio::test]
async fn forged_session_cookies_are_not_signed_in() {
    let server = TestServer::embedded().await;
    // Signing someone in first makes sure the store is not simply empty.
    let real = server.sign_in("alice").await;
    let mut tampered = real.id.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for value in [
        "forged".to_owned(),
        "alice".to_owned(),
        "A".repeat(43),
        tampered,
        format!("{}x", real.id),
    ] {
        let response = server
            .get("/shell/config.json")
            .header("cookie", format!("portico_session={value}"))
            .send()
            .await
            .unwrap();
        json_error(response, 401, "not_signed_in").await;
    }
}

/// Tenants `acme` (user ann, app docs) and `globex` (user gus, app wiki), each on its own host name.
fn two_tenants() -> ConfigYaml {
    let tenant_of = |id: &str, host: &str, title: &str, user_id: &str, app_id: &str| {
        tenant(id, &[host])
            .title(title)
            .user(user(user_id, &["eng"]))
            .role("developer", &["eng"])
            .app(app(app_id, &["developer"]).files("embedded:demo"))
    };
    config()
        .tenant(tenant_of(
            "acme",
            "portal.acme.test",
            "Acme Portal",
            "ann",
            "docs",
        ))
        .tenant(tenant_of(
            "globex",
            "portal.globex.test",
            "Globex Portal",
            "gus",
            "wiki",
        ))
}

async fn sign_in_on_host(server: &TestServer, host: &str, user: &str) -> Session {
    let response = server
        .post("/auth/dev-login")
        .header("host", host)
        .header("origin", format!("http://{host}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("user={user}&return_to=%2F"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    session_from(response.headers()).unwrap()
}

#[tokio::test]
async fn unknown_host_without_default_tenant_is_404() {
    let server = two_tenants().start().await;

    // 127.0.0.1:<port> is no tenant's host and there is no default tenant.
    let api = server.get("/shell/config.json").send().await.unwrap();
    json_error(api, 404, "unknown_host").await;
    let browser = server
        .get("/auth/login")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(browser.status(), StatusCode::NOT_FOUND);
    let page = browser.text().await.unwrap();
    assert!(page.contains("no portal is configured"), "{page}");
    assert!(
        !page.contains("Acme") && !page.contains("Globex"),
        "no tenant is revealed"
    );

    // The same request with a listed Host reaches that tenant, in any letter case.
    let known = server
        .get("/auth/login")
        .header("host", "Portal.Acme.Test")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(known.status(), StatusCode::OK);
    assert!(known.text().await.unwrap().contains("Acme Portal"));
}

#[tokio::test]
async fn a_session_works_only_on_the_tenant_that_issued_it() {
    let server = two_tenants().start().await;
    let ann = sign_in_on_host(&server, "portal.acme.test", "ann").await;

    let own = server
        .get("/shell/config.json")
        .header("host", "portal.acme.test")
        .header("cookie", &ann.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    let own: Value = own.json().await.unwrap();
    assert_eq!(segments(&app_nodes(&own)), ["docs"]);

    let other = server
        .get("/shell/config.json")
        .header("host", "portal.globex.test")
        .header("cookie", &ann.cookie)
        .send()
        .await
        .unwrap();
    json_error(other, 401, "not_signed_in").await;

    // gus is a globex user: acme's sign-in does not know him.
    let response = server
        .post("/auth/dev-login")
        .header("host", "portal.acme.test")
        .header("origin", "http://portal.acme.test")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=gus&return_to=%2F")
        .send()
        .await
        .unwrap();
    json_error(response, 400, "unknown_user").await;
}

#[tokio::test]
async fn navigation_and_the_app_gateway_agree() {
    let server = TestServer::embedded().await;
    let dave = server.sign_in("dave").await;
    let alice = server.sign_in("alice").await;
    let get = |path: &'static str, session: &Session| {
        server
            .get(path)
            .header("cookie", session.cookie.clone())
            .send()
    };

    let page = get("/apps/service-status/", &dave).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(header(&page, "content-type").starts_with("text/html"));
    assert_eq!(header(&page, "x-frame-options"), "SAMEORIGIN");
    assert!(header(&page, "cache-control").contains("no-cache"));

    // 403 rows are JSON `forbidden` errors.
    for (path, who, status) in [
        ("/apps/service-status/incidents", "dave", 403),
        ("/apps/admin-console/", "dave", 403),
        ("/apps/service-status/incidents", "alice", 200),
        ("/apps/admin-console/", "alice", 200),
    ] {
        let session = if who == "alice" { &alice } else { &dave };
        let response = get(path, session).await.unwrap();
        let row = format!("{path} as {who}");
        if status == 403 {
            json_error_of(&row, response, 403, "forbidden").await;
        } else {
            assert_eq!(response.status(), status, "{row}");
        }
    }

    // `/apps/<id>` gets a trailing slash so relative URLs inside the app resolve below it.
    let bare = get("/apps/team-directory", &dave).await.unwrap();
    assert_eq!(bare.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(bare.headers()[LOCATION], "/apps/team-directory/");
}

/// The embedded demo's second tenant, as a browser reaches it.
const GLOBEX: &str = "globex.localhost:8080";

async fn config_on(server: &TestServer, host: &str, session: &Session) -> reqwest::Response {
    server
        .get("/shell/config.json")
        .header("host", host)
        .header("cookie", &session.cookie)
        .send()
        .await
        .unwrap()
}

fn labels(apps: &[Value]) -> Vec<String> {
    apps.iter()
        .map(|app| app["label"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn the_embedded_demo_has_a_second_tenant_with_its_own_navigation_and_branding() {
    let server = TestServer::embedded().await;
    let gina = sign_in_on_host(&server, GLOBEX, "gina").await;
    let response = config_on(&server, GLOBEX, &gina).await;
    assert_eq!(response.status(), StatusCode::OK);
    let config: Value = response.json().await.unwrap();
    let apps = app_nodes(&config);
    // Her own tenant's app, and the shared app under globex's label and role.
    assert_eq!(segments(&apps), ["ledger", "team-directory"]);
    assert_eq!(labels(&apps), ["Ledger", "Globex People"]);
    assert_eq!(
        config["luigi"]["settings"]["header"]["title"],
        "Globex Portal"
    );
    assert_eq!(
        config["luigi"]["navigation"]["globalContext"]["tenant"]["id"],
        "globex"
    );
    // Its own Luigi settings.
    assert_eq!(
        config["luigi"]["settings"]["responsiveNavigation"],
        "simple"
    );
    assert_eq!(
        config["luigi"]["settings"]["sideNavFooterText"],
        "Globex internal portal"
    );
    let text = config.to_string();
    for demo_only in ["service-status", "admin-console", "Portico Demo Portal"] {
        assert!(
            !text.contains(demo_only),
            "globex config mentions {demo_only}: {text}"
        );
    }

    // The demo tenant's copy of the shared app keeps its own label.
    let dave = server.sign_in("dave").await;
    let demo = server.shell_config(&dave).await;
    let demo_apps = app_nodes(&demo);
    assert_eq!(labels(&demo_apps), ["Service Status", "Team Directory"]);

    // A globex user is unknown to the demo tenant's sign-in, and the reverse.
    for (host, user) in [("localhost:8080", "gina"), (GLOBEX, "dave")] {
        let response = server
            .post("/auth/dev-login")
            .header("host", host)
            .header("origin", format!("http://{host}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("user={user}&return_to=%2F"))
            .send()
            .await
            .unwrap();
        json_error(response, 400, "unknown_user").await;
    }
}

#[tokio::test]
async fn each_tenant_serves_its_own_theme() {
    let server = TestServer::embedded().await;
    let mut themes = Vec::new();
    for host in ["localhost:8080", GLOBEX] {
        let response = server
            .get("/shell/theme.css")
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(header(&response, "content-type").starts_with("text/css"));
        themes.push(response.text().await.unwrap());
    }
    assert!(
        themes[0].contains("--sapShellColor: #354a5f;"),
        "{}",
        themes[0]
    );
    assert!(
        themes[1].contains("--sapShellColor: #2f3d1f;"),
        "{}",
        themes[1]
    );
    assert!(
        themes[1].contains("--sapBrandColor: #2b7d2b;"),
        "{}",
        themes[1]
    );

    // The shell page links it, on every tenant.
    let gina = sign_in_on_host(&server, GLOBEX, "gina").await;
    let page = server
        .get("/home")
        .header("host", GLOBEX)
        .header("cookie", &gina.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"<link rel="stylesheet" href="/shell/theme.css">"#),
        "{page}"
    );
    assert!(page.contains("<title>Globex Portal</title>"), "{page}");
}

#[tokio::test]
async fn the_product_switcher_links_only_the_users_other_portals() {
    let server = TestServer::embedded().await;
    // alice is listed by both tenants and has roles in both.
    let alice = server.sign_in("alice").await;
    let config = server.shell_config(&alice).await;
    let switcher = &config["luigi"]["navigation"]["productSwitcher"];
    let items = switcher["items"]
        .as_array()
        .expect("product switcher items");
    assert_eq!(items.len(), 2, "{switcher}");
    assert_eq!(items[0]["label"], "Portico Demo Portal");
    assert_eq!(items[0]["selected"], true);
    assert_eq!(items[1]["label"], "Globex Portal");
    assert_eq!(
        items[1]["externalLink"]["url"],
        "http://globex.localhost:8080/"
    );

    // The link is only a link: alice's demo session means nothing on globex.
    let response = config_on(&server, GLOBEX, &alice).await;
    json_error(response, 401, "not_signed_in").await;

    // And from globex, back to the demo portal.
    let alice_globex = sign_in_on_host(&server, GLOBEX, "alice").await;
    let config: Value = config_on(&server, GLOBEX, &alice_globex)
        .await
        .json()
        .await
        .unwrap();
    let items = config["luigi"]["navigation"]["productSwitcher"]["items"]
        .as_array()
        .expect("product switcher items")
        .clone();
    assert_eq!(labels(&items), ["Globex Portal", "Portico Demo Portal"]);
    assert_eq!(items[1]["externalLink"]["url"], "http://localhost:8080/");

    // dave and gina each belong to one tenant only: no switcher at all.
    let dave = server.sign_in("dave").await;
    let config = server.shell_config(&dave).await;
    assert!(
        config["luigi"]["navigation"]["productSwitcher"].is_null(),
        "{config}"
    );
    let gina = sign_in_on_host(&server, GLOBEX, "gina").await;
    let config: Value = config_on(&server, GLOBEX, &gina)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        config["luigi"]["navigation"]["productSwitcher"].is_null(),
        "{config}"
    );
}

#[tokio::test]
async fn another_tenants_app_is_not_found_whatever_the_role_names() {
    let server = TestServer::embedded().await;
    // alice is platform-admin on demo; `ledger` exists only on globex.
    let alice = server.sign_in("alice").await;
    let response = server.get_as("/apps/ledger/", &alice).await;
    json_error(response, 404, "unknown_app").await;
    // gina on globex cannot reach demo's apps by editing the URL.
    let gina = sign_in_on_host(&server, GLOBEX, "gina").await;
    for path in ["/apps/service-status/", "/apps/admin-console/"] {
        let response = server
            .get(path)
            .header("host", GLOBEX)
            .header("cookie", &gina.cookie)
            .send()
            .await
            .unwrap();
        json_error(response, 404, "unknown_app").await;
    }
    // Her own app works.
    let response = server
        .get("/apps/ledger/")
        .header("host", GLOBEX)
        .header("cookie", &gina.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_dev_sign_in_page_and_form_are_never_cached() {
    let server = TestServer::embedded().await;
    let page = server
        .get("/auth/login")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(header(&page, "cache-control"), "no-store");
    let signed_in = server
        .post("/auth/dev-login")
        .header("origin", server.origin())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=dave&return_to=%2Fhome")
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&signed_in, "cache-control"), "no-store");
    // A form without its content type reads as empty: no user, so no sign-in (as before).
    let unreadable = server
        .post("/auth/dev-login")
        .header("origin", server.origin())
        .body("user=dave")
        .send()
        .await
        .unwrap();
    json_error(unreadable, 400, "unknown_user").await;
}

/// A link to a page the navigation leaves out gets an answer that says why: the app and page, the
/// role that would open it and the groups that grant that role; an unknown path says only that.
/// Nothing of it is cached, and it needs a session like every other shell answer.
#[tokio::test]
async fn a_route_the_shell_cannot_open_is_explained_to_the_user_who_holds_it() {
    let server = TestServer::embedded().await;
    let dave = server.sign_in("dave").await;
    let explain = |path: &str| {
        let url = format!("/shell/route.json?path={}", urlencode(path));
        let server = &server;
        let dave = &dave;
        async move {
            let response = server.get_as(&url, dave).await;
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()["cache-control"], "no-store");
            response.json::<Value>().await.unwrap()
        }
    };
    let app = explain("/home/admin-console").await;
    assert_eq!(app["kind"], "forbidden", "{app}");
    assert_eq!(app["app"]["label"], "Admin Console");
    assert_eq!(app["app"]["owner"], "team-platform");
    assert_eq!(app["needs"][0]["role"], "platform-admin");
    assert_eq!(app["needs"][0]["groups"], json!(["demo-platform-admins"]));
    assert_eq!(app["roles"], json!(["developer"]));

    let page = explain("/home/service-status/incidents").await;
    assert_eq!(page["kind"], "forbidden", "{page}");
    assert_eq!(page["page"], "Incident Review");

    let missing_page = explain("/home/service-status/nothing-here").await;
    assert_eq!(missing_page["kind"], "no-page", "{missing_page}");
    // Another tenant's app is no more than an unknown path here.
    for path in ["/home/no-such-app", "/home/ledger"] {
        assert_eq!(
            explain(path).await,
            json!({ "kind": "unknown", "path": path })
        );
    }

    let anonymous = server
        .get("/shell/route.json?path=/home/admin-console")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let no_path = server.get_as("/shell/route.json", &dave).await;
    assert_eq!(no_path.status(), StatusCode::BAD_REQUEST);
    let body: Value = no_path.json().await.unwrap();
    assert_eq!(body["error"], "bad_request", "{body}");
    assert!(body["message"].to_string().contains("path="), "{body}");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A route with a path parameter (`/home/service-status/incidents/:incident`) is in the config of a
/// user who may open its parent, hidden from the navigation, and keeps the parent's rule: the proxy
/// refuses every value of it to everybody else.
#[tokio::test]
async fn a_route_with_a_path_parameter_keeps_its_parents_rule() {
    let server = TestServer::embedded().await;
    let alice = server.sign_in("alice").await;
    let dave = server.sign_in("dave").await;

    let config = server.shell_config(&alice).await;
    let status = app_nodes(&config)
        .into_iter()
        .find(|node| node["pathSegment"] == "service-status")
        .unwrap();
    let incidents = children_of(&[status], "service-status")
        .into_iter()
        .find(|node| node["pathSegment"] == "incidents")
        .unwrap();
    let route = &incidents["children"][0];
    assert_eq!(route["pathSegment"], ":incident");
    assert_eq!(route["hideFromNav"], true);
    assert_eq!(route["viewUrl"], "/apps/service-status/incidents/:incident");
    // No shortcut lists it: a parameter needs a value.
    let home = &config["luigi"]["navigation"]["nodes"][0]["children"];
    let links: Vec<&str> = home
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|node| node["link"].as_str())
        .collect();
    assert_eq!(
        links,
        [
            "/home/service-status/overview",
            "/home/service-status/incidents"
        ]
    );

    assert_eq!(
        server
            .get_as("/apps/service-status/incidents/INC-7", &alice)
            .await
            .status(),
        StatusCode::OK
    );
    for path in [
        "/apps/service-status/incidents/INC-7",
        "/apps/service-status/Incidents/INC-7",
        "/apps/service-status/incidents/INC-7/",
    ] {
        assert_eq!(
            server.get_as(path, &dave).await.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let dave_config = server.shell_config(&dave).await;
    assert!(!dave_config.to_string().contains(":incident"));
}
