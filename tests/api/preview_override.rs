//! Preview overrides (issue 16, "safe previews in the real portal") against real parts: two stock
//! Express apps from npm (tests/support/express-app.mjs), one the app's own upstream and one its pull
//! request's preview; each tells which it is by the `Host` portico sent it (`/headers`). A real
//! `redis-server` carries an override from one instance to another.
//!
//! What a user would notice: a link alone changes nothing; only the portal's own confirmation form
//! sends their requests for that one app to the preview, with the same access decision and identity,
//! for their session only, until they end it, sign out or it runs out; an address the tenant does not
//! allow is refused and audited.

use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::Value;

use crate::canonical_paths::Framework;
use crate::helpers::{ConfigYaml, Session, TIMEOUT, TestServer, acme, app, config, dev, user};
use crate::logs::Logs;
use crate::redis_server::RedisServer;

/// The app's own upstream and its preview, both stock Express apps.
struct Upstreams {
    own: Framework,
    preview: Framework,
}

impl Upstreams {
    fn start() -> Upstreams {
        Upstreams {
            own: Framework::express(),
            preview: Framework::express(),
        }
    }
}

/// Tenant `acme` with previews on loopback (any port), for developers: `costs` at `own`, a static app,
/// one only admins may open, and one that passes the user's access token.
fn portal(upstreams: &Upstreams, previews: Option<&str>) -> ConfigYaml {
    let own = upstreams.own.url();
    let mut acme = acme()
        .user(dev())
        .user(user("ann", &["acme-eng"]).name("Ann"))
        .user(user("guest", &["acme-guests"]).name("Guest"))
        .role("developer", &["acme-eng"])
        .role("visitor", &["acme-guests"])
        .role("platform-admin", &["acme-platform"])
        .app(
            app("costs", &["developer", "visitor"])
                .upstream(&own)
                .key("owner", "team-finops"),
        )
        .app(app("admin", &["platform-admin"]).upstream(&own))
        .app(
            app("tokens", &["developer"])
                .upstream(&own)
                .key("identity", "[assertion, access_token]"),
        )
        .app(app("docs", &["developer"]).files("embedded:demo"))
        .app(
            app("legacy", &["developer"])
                .upstream(&own)
                .key("cookies", "scoped"),
        );
    if let Some(previews) = previews {
        acme = acme.key("previews", previews);
    }
    config().default_tenant("acme").tenant(acme)
}

const PREVIEWS: &str = "{ upstreams: [\"http://127.0.0.1:*\"], lifetime: 1h, roles: [developer] }";

/// Which upstream answered `GET /apps/costs/headers` for `session` (`own`, `preview`), with the
/// upstream's view of the request and portico's answer headers.
async fn who_answers(
    server: &TestServer,
    upstreams: &Upstreams,
    session: &Session,
) -> (&'static str, Value, reqwest::header::HeaderMap) {
    let response = server.get_as("/apps/costs/headers", session).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let body: Value = response.json().await.unwrap();
    let host = body["headers"]["host"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let which = if host == format!("127.0.0.1:{}", upstreams.own.port()) {
        "own"
    } else if host == format!("127.0.0.1:{}", upstreams.preview.port()) {
        "preview"
    } else {
        panic!("an unknown upstream answered: Host {host}")
    };
    (which, body["headers"].clone(), headers)
}

/// `path` as `session`'s browser opens it (a page navigation: HTML wanted).
async fn page_as(server: &TestServer, path: &str, session: &Session) -> reqwest::Response {
    server
        .get(path)
        .header("cookie", &session.cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
}

/// The confirmation page for `upstream`, as `session` opens it from a link.
async fn confirm_page(
    server: &TestServer,
    session: &Session,
    app: &str,
    upstream: &str,
) -> reqwest::Response {
    let link = format!("/shell/preview/{app}?upstream={}", encoded(upstream));
    page_as(server, &link, session).await
}

/// The CSRF token a page's form carries.
fn form_token(page: &str) -> String {
    let at = page
        .find("name=\"csrf_token\" value=\"")
        .expect("the page has a form with the CSRF token");
    let rest = &page[at + "name=\"csrf_token\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// Posts `form` to `path` as the portal's own page would (same origin), as a browser (HTML).
async fn post_form(
    server: &TestServer,
    session: &Session,
    path: &str,
    form: &str,
) -> reqwest::Response {
    server
        .post(path)
        .header("cookie", &session.cookie)
        .header("origin", server.origin())
        .header("accept", "text/html")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .unwrap()
}

fn encoded(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Opens the link, confirms on the page, and checks portico sent the browser back to the app.
async fn start_preview(server: &TestServer, session: &Session, upstream: &str) {
    let page = confirm_page(server, session, "costs", upstream).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    let token = form_token(&page);
    let started = post_form(
        server,
        session,
        "/shell/preview/costs",
        &format!("upstream={}&csrf_token={token}", encoded(upstream)),
    )
    .await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    assert_eq!(started.headers()[LOCATION], "/home/costs");
}

/// Starts a preview of `app` at `upstream` by posting its form with the session's token.
async fn start_preview_of(
    server: &TestServer,
    session: &Session,
    app: &str,
    upstream: &str,
) -> reqwest::Response {
    let config = server.shell_config(session).await;
    let token = config["portico"]["csrfToken"].as_str().unwrap();
    post_form(
        server,
        session,
        &format!("/shell/preview/{app}"),
        &format!("upstream={}&csrf_token={token}", encoded(upstream)),
    )
    .await
}

/// `GET path` as `session`, with more headers; the upstream's JSON answer and portico's headers.
async fn get_json(
    server: &TestServer,
    session: &Session,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = server.get(path).header("cookie", &session.cookie);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// The cookies an upstream says it received, from its `/headers` answer.
fn cookies_seen(body: &Value) -> String {
    body["headers"]["cookie"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_preview_gets_none_of_the_apps_cookies_and_leaves_nothing_in_the_browser() {
    let upstreams = Upstreams::start();
    let server = portal(&upstreams, Some(PREVIEWS)).start().await;
    let dev = server.sign_in("dev").await;
    // The app's own build keeps a cookie in the session's jar.
    let (status, _, _) =
        get_json(&server, &dev, "/apps/costs/cache/own?cookie=own-build", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, seen) = get_json(&server, &dev, "/apps/costs/headers", &[]).await;
    assert!(cookies_seen(&seen).contains("flavour=own-build"), "{seen}");

    let started = start_preview_of(&server, &dev, "costs", &upstreams.preview.url()).await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    assert_eq!(started.headers()["clear-site-data"], "\"cache\"");
    // The preview gets a jar of its own: none of the app's cookies, and its own stay apart.
    let (_, _, seen) = get_json(&server, &dev, "/apps/costs/headers", &[]).await;
    assert!(!cookies_seen(&seen).contains("own-build"), "{seen}");
    let cached = "/apps/costs/cache/preview?cookie=preview-build&cc=public%2C%20max-age%3D600";
    let (status, answer, _) = get_json(&server, &dev, cached, &[]).await;
    assert_eq!(status, StatusCode::OK);
    // Nothing of the preview stays in the browser's cache, and no cookie reaches the browser.
    assert_eq!(answer["cache-control"], "no-store");
    assert!(answer.get("set-cookie").is_none());
    let (_, _, seen) = get_json(&server, &dev, "/apps/costs/headers", &[]).await;
    assert!(
        cookies_seen(&seen).contains("flavour=preview-build"),
        "{seen}"
    );
    // A service worker would outlive the preview: its script is refused before the preview sees it.
    let (status, _, body) = get_json(
        &server,
        &dev,
        "/apps/costs/cache/sw.js",
        &[("service-worker", "script")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "preview_refused");

    // An app whose cookies live in the browser: the preview gets none and sets none.
    let legacy = start_preview_of(&server, &dev, "legacy", &upstreams.preview.url()).await;
    assert_eq!(legacy.status(), StatusCode::SEE_OTHER);
    let with_cookie = format!("{}; flavour=own-build", dev.cookie);
    let response = server
        .get("/apps/legacy/cache/x?cookie=preview-build")
        .header("cookie", &with_cookie)
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("set-cookie").is_none());
    let seen: Value = server
        .get("/apps/legacy/headers")
        .header("cookie", &with_cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!cookies_seen(&seen).contains("flavour"), "{seen}");

    // Ended: the app's own build has its cookie, and never the preview's.
    let ended = post_form(
        &server,
        &dev,
        "/shell/preview/costs/end",
        &format!(
            "csrf_token={}",
            server.shell_config(&dev).await["portico"]["csrfToken"]
                .as_str()
                .unwrap()
        ),
    )
    .await;
    assert_eq!(ended.headers()["clear-site-data"], "\"cache\"");
    let (_, answer, seen) = get_json(&server, &dev, "/apps/costs/headers", &[]).await;
    assert!(answer.get("x-portico-preview").is_none());
    let cookies = cookies_seen(&seen);
    assert!(
        cookies.contains("flavour=own-build") && !cookies.contains("preview-build"),
        "{cookies}"
    );
}

/// The claims of the signed assertion the upstream got.
fn assertion_claims(headers: &Value) -> Value {
    let token = headers["x-portico-assertion"]
        .as_str()
        .expect("the upstream gets the signed assertion");
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn a_link_changes_nothing_until_the_user_confirms_and_then_only_their_session_uses_the_preview()
 {
    let (logs, _guard) = Logs::capture();
    let upstreams = Upstreams::start();
    let server = portal(&upstreams, Some(PREVIEWS)).start().await;
    let dev = server.sign_in("dev").await;
    let ann = server.sign_in("ann").await;
    let preview_url = format!("{}/", upstreams.preview.url());

    // Someone not signed in signs in first and comes back to the page.
    let link = format!("/shell/preview/costs?upstream={}", encoded(&preview_url));
    let anonymous = server
        .get(&link)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        anonymous.headers()[LOCATION],
        format!("/auth/login?return_to={}", encoded(&link)).as_str()
    );

    // The link shows what would happen and asks; the app still answers from its own upstream.
    let page = confirm_page(&server, &dev, "costs", &preview_url).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let page = page.text().await.unwrap();
    assert!(page.contains(&preview_url), "the page names the address");
    assert!(page.contains("Use this preview"), "{page}");
    assert!(page.contains("owned by team-finops"), "{page}");
    assert_eq!(who_answers(&server, &upstreams, &dev).await.0, "own");

    // Confirmed: this session's requests for `costs` go to the preview, with the app's identity.
    let token = form_token(&page);
    let started = post_form(
        &server,
        &dev,
        "/shell/preview/costs",
        &format!("upstream={}&csrf_token={token}", encoded(&preview_url)),
    )
    .await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    assert_eq!(started.headers()[LOCATION], "/home/costs");
    let (which, seen, answer) = who_answers(&server, &upstreams, &dev).await;
    assert_eq!(which, "preview");
    assert_eq!(answer["x-portico-preview"], preview_url.as_str());
    let claims = assertion_claims(&seen);
    assert_eq!(claims["aud"], "costs");
    assert_eq!(claims["sub"], "dev");
    assert!(seen.get("cookie").is_none_or(|cookie| {
        !cookie
            .as_str()
            .unwrap_or_default()
            .contains("portico_session")
    }));

    // The navigation marks the app's entry, for this user only.
    let badge = |config: &Value| {
        config["luigi"]["navigation"]["nodes"][0]["children"]
            .as_array()
            .unwrap()
            .iter()
            .find(|node| node["pathSegment"] == "costs")
            .map(|node| node["statusBadge"].clone())
            .unwrap()
    };
    assert_eq!(
        badge(&server.shell_config(&dev).await),
        serde_json::json!({ "label": "Preview", "type": "informative", "align": "right" })
    );
    assert_eq!(badge(&server.shell_config(&ann).await), Value::Null);

    // Nobody else's: another user, and the same user's other session, keep the app's own upstream.
    assert_eq!(who_answers(&server, &upstreams, &ann).await.0, "own");
    let dev_elsewhere = server.sign_in("dev").await;
    assert_eq!(
        who_answers(&server, &upstreams, &dev_elsewhere).await.0,
        "own"
    );

    // The shell says so, with a button that ends it; ending it brings the app's own upstream back.
    let shell = page_as(&server, "/home/costs", &dev)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        shell.contains("data-testid=\"preview-override-banner\""),
        "{shell}"
    );
    assert!(shell.contains(&preview_url));
    assert!(shell.contains("action=\"/shell/preview/costs/end\""));
    let ended = post_form(
        &server,
        &dev,
        "/shell/preview/costs/end",
        &format!("csrf_token={}", form_token(&shell)),
    )
    .await;
    assert_eq!(ended.status(), StatusCode::SEE_OTHER);
    let (which, _, answer) = who_answers(&server, &upstreams, &dev).await;
    assert_eq!(which, "own");
    assert!(answer.get("x-portico-preview").is_none());

    let started = logs.audit("preview_start");
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(started[0]["outcome"], "success");
    assert_eq!(started[0]["user"], "dev");
    assert_eq!(started[0]["app"], "costs");
    assert_eq!(started[0]["upstream"], preview_url.as_str());
    assert!(started[0]["until"].as_u64().is_some());
    let ended = logs.audit("preview_end");
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0]["upstream"], preview_url.as_str());
}

#[tokio::test]
async fn only_the_portals_own_form_starts_a_preview() {
    let (logs, _guard) = Logs::capture();
    let upstreams = Upstreams::start();
    let server = portal(&upstreams, Some(PREVIEWS)).start().await;
    let dev = server.sign_in("dev").await;
    let preview_url = upstreams.preview.url();
    let token = form_token(
        &confirm_page(&server, &dev, "costs", &preview_url)
            .await
            .text()
            .await
            .unwrap(),
    );
    let form = format!("upstream={}&csrf_token={token}", encoded(&preview_url));

    // A page elsewhere that posts the same form: the browser says cross-site.
    let forged = server
        .post("/shell/preview/costs")
        .header("cookie", &dev.cookie)
        .header("origin", "http://evil.example")
        .header("sec-fetch-site", "cross-site")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // Same origin, without the token (a script that only knows the link).
    let tokenless = post_form(
        &server,
        &dev,
        "/shell/preview/costs",
        &format!("upstream={}", encoded(&preview_url)),
    )
    .await;
    assert_eq!(tokenless.status(), StatusCode::FORBIDDEN);
    // Nor does a GET with the form's fields do anything.
    let _ = server
        .get_as(&format!("/shell/preview/costs?{form}"), &dev)
        .await;
    assert_eq!(who_answers(&server, &upstreams, &dev).await.0, "own");
    assert_eq!(logs.audit("csrf_rejected").len(), 2);
    assert!(logs.audit("preview_start").is_empty());
}

/// Asks for a preview of `app` at `upstream` as `session`, by link and by posting the form with the
/// session's token, and checks both are refused with `status` and `code`.
async fn refused_both_ways(
    server: &TestServer,
    session: &Session,
    (app, upstream): (&str, &str),
    (status, code): (StatusCode, &str),
) {
    let link = format!("/shell/preview/{app}?upstream={}", encoded(upstream));
    let asked = server.get_as(&link, session).await;
    assert_eq!(asked.status(), status, "{app} at {upstream}");
    let body: Value = asked.json().await.unwrap();
    assert_eq!(body["error"], code, "{app} at {upstream}: {body}");
    let config = server.shell_config(session).await;
    let token = config["portico"]["csrfToken"].as_str().unwrap();
    let posted = server
        .post(&format!("/shell/preview/{app}"))
        .header("cookie", &session.cookie)
        .header("origin", server.origin())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("upstream={}&csrf_token={token}", encoded(upstream)))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), status, "POST {app} at {upstream}");
}

#[tokio::test]
async fn only_allowed_addresses_apps_and_roles_may_use_a_preview() {
    let (logs, _guard) = Logs::capture();
    let upstreams = Upstreams::start();
    let server = portal(&upstreams, Some(PREVIEWS)).start().await;
    let dev = server.sign_in("dev").await;
    let guest = server.sign_in("guest").await;
    let port = upstreams.preview.port();
    let allowed = format!("http://127.0.0.1:{port}");
    let bad_request = (StatusCode::BAD_REQUEST, "preview_refused");
    let forbidden = (StatusCode::FORBIDDEN, "forbidden");
    // Not on the allow-list: another name for the same machine, https, not a URL at all.
    for upstream in [
        format!("http://localhost:{port}"),
        format!("https://127.0.0.1:{port}"),
        "javascript:alert(1)".to_owned(),
    ] {
        refused_both_ways(&server, &dev, ("costs", &upstream), bad_request).await;
    }
    // Portico serves `docs` itself; `tokens` would send the user's access token along.
    refused_both_ways(&server, &dev, ("docs", &allowed), bad_request).await;
    refused_both_ways(&server, &dev, ("tokens", &allowed), bad_request).await;
    // The user may not open `admin`; there is no `nope`; the guest holds no preview role.
    refused_both_ways(&server, &dev, ("admin", &allowed), forbidden).await;
    let unknown = (StatusCode::NOT_FOUND, "unknown_app");
    refused_both_ways(&server, &dev, ("nope", &allowed), unknown).await;
    refused_both_ways(&server, &guest, ("costs", &allowed), forbidden).await;

    assert_eq!(who_answers(&server, &upstreams, &dev).await.0, "own");
    let attempts = logs.audit("preview_start");
    assert!(attempts.iter().all(|line| line["outcome"] == "refused"));
    assert!(
        attempts.iter().any(
            |line| line["upstream"] == format!("http://localhost:{port}") && line["user"] == "dev"
        ),
        "{attempts:?}"
    );
}

#[tokio::test]
async fn a_tenant_without_previews_has_none() {
    let upstreams = Upstreams::start();
    let server = portal(&upstreams, None).start().await;
    let dev = server.sign_in("dev").await;
    let link = format!(
        "/shell/preview/costs?upstream={}",
        encoded(&upstreams.preview.url())
    );
    let asked = server.get_as(&link, &dev).await;
    assert_eq!(asked.status(), StatusCode::NOT_FOUND);
    let body: Value = asked.json().await.unwrap();
    assert_eq!(body["error"], "previews_off");
}

#[tokio::test]
async fn a_preview_ends_with_the_session_and_with_its_lifetime() {
    let upstreams = Upstreams::start();
    let server = portal(&upstreams, Some(PREVIEWS)).start().await;
    let dev = server.sign_in("dev").await;
    start_preview(&server, &dev, &upstreams.preview.url()).await;
    assert_eq!(who_answers(&server, &upstreams, &dev).await.0, "preview");
    let config: Value = server.shell_config(&dev).await;
    let token = config["portico"]["csrfToken"].as_str().unwrap().to_owned();
    let signed_out = post_form(
        &server,
        &dev,
        "/auth/logout",
        &format!("csrf_token={token}"),
    )
    .await;
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    let again = server.sign_in("dev").await;
    assert_eq!(who_answers(&server, &upstreams, &again).await.0, "own");

    let short = portal(
        &upstreams,
        Some("{ upstreams: [\"http://127.0.0.1:*\"], lifetime: 1s }"),
    )
    .start()
    .await;
    let dev = short.sign_in("dev").await;
    start_preview(&short, &dev, &upstreams.preview.url()).await;
    let deadline = Instant::now() + TIMEOUT;
    while who_answers(&short, &upstreams, &dev).await.0 == "preview" {
        assert!(
            Instant::now() < deadline,
            "the preview outlived its lifetime"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_preview_follows_the_session_to_another_instance() {
    let upstreams = Upstreams::start();
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let portal = portal(&upstreams, Some(PREVIEWS)).top(&redis.sessions_yaml(dir.path()));
    let first = portal.start().await;
    let second = portal.start().await;
    let dev = first.sign_in("dev").await;
    assert_eq!(who_answers(&second, &upstreams, &dev).await.0, "own");
    start_preview(&first, &dev, &upstreams.preview.url()).await;
    // The other instance may hold a copy of the record; the change reaches it within its bound.
    let deadline = Instant::now() + Duration::from_secs(3);
    while who_answers(&second, &upstreams, &dev).await.0 != "preview" {
        assert!(
            Instant::now() < deadline,
            "the other instance never used the preview"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
