//! Cookie jars (`cookies: jar`, the default) against a real upstream HTTP server: an app's cookies are
//! kept by portico per session and app, never reach the browser, reach only their app, cannot be
//! overridden by anything the browser sends, and end with the portal session. `cookies: scoped` keeps
//! them in the browser, with what that costs.
//!
//! The test plays a browser with a small cookie store of its own (`Browser`): it keeps what responses
//! set and sends back what matches the path, so what a real browser would do with each mode shows.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::helpers::{ConfigYaml, TestServer, acme, app, config, dev};

/// One upstream for every app: `/<app>/login` sets that app's cookies, `/<app>/logout` deletes its
/// `sid`, `/<app>/toss` sets a cookie aimed at another app's path, and anything else echoes the
/// `Cookie` header it received.
async fn upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(|request: Request| async move { answer(request) });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn answer(request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let (app, rest) = path[1..].split_once('/').unwrap_or((&path[1..], ""));
    let set = |cookies: Vec<String>| {
        let mut response = json!({ "set": true }).to_string().into_response();
        for cookie in cookies {
            response
                .headers_mut()
                .append("set-cookie", cookie.parse().unwrap());
        }
        response
    };
    match rest {
        "login" => set(vec![
            format!("sid={app}-secret; Path=/; HttpOnly; Max-Age=3600"),
            // Below the app's own base path on the upstream: sent only there.
            format!("pref=compact; Path=/{app}/settings"),
        ]),
        "logout" => set(vec!["sid=; Path=/; Max-Age=0".into()]),
        "toss" => set(vec![format!("sid={app}-tossed; Path=/apps/a/")]),
        "origin-wide" => {
            let mut response = set(vec![]);
            let headers = response.headers_mut();
            headers.insert("service-worker-allowed", "/".parse().unwrap());
            headers.insert(
                "clear-site-data",
                "\"cookies\", \"storage\"".parse().unwrap(),
            );
            headers.insert(
                "strict-transport-security",
                "max-age=31536000; includeSubDomains; preload"
                    .parse()
                    .unwrap(),
            );
            headers.insert("alt-svc", "h3=\":443\"; ma=86400".parse().unwrap());
            response
        }
        _ => {
            let cookies: Vec<String> = request
                .headers()
                .get_all("cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect();
            axum::Json(json!({ "app": app, "cookie": cookies })).into_response()
        }
    }
}

/// Apps `a` and `b` with the default mode (a jar), and `c` with `cookies: <c_mode>`.
fn apps_config(upstream: &str, c_mode: &str) -> ConfigYaml {
    let app_at = |id: &str| app(id, &["developer"]).upstream(&format!("{upstream}/{id}"));
    config().default_tenant("acme").tenant(
        acme()
            .user(dev())
            .role("developer", &["acme-eng"])
            .app(app_at("a"))
            .app(app_at("b"))
            .app(app_at("c").key("cookies", c_mode)),
    )
}

async fn start() -> TestServer {
    apps_config(&upstream().await, "scoped").start().await
}

/// A browser's cookie store, as much of one as these tests need: name, path → value.
struct Browser {
    cookies: BTreeMap<(String, String), String>,
}

impl Browser {
    async fn signed_in(server: &TestServer) -> Browser {
        let mut browser = Browser {
            cookies: BTreeMap::new(),
        };
        let session = server.sign_in("dev").await;
        browser.set(&format!("{}; Path=/", session.cookie));
        browser
    }

    /// What a page's script does with `document.cookie = text` (or a response's `Set-Cookie`).
    fn set(&mut self, text: &str) {
        let mut parts = text.split(';').map(str::trim);
        let (name, value) = parts.next().unwrap().split_once('=').unwrap();
        let mut path = "/".to_owned();
        let mut deleted = false;
        for attribute in parts {
            let lower = attribute.to_ascii_lowercase();
            if let Some(p) = lower.strip_prefix("path=") {
                path = attribute[attribute.len() - p.len()..].to_owned();
            }
            deleted |= lower == "max-age=0";
        }
        let key = (name.to_owned(), path);
        if deleted {
            self.cookies.remove(&key);
        } else {
            self.cookies.insert(key, value.to_owned());
        }
    }

    /// The `Cookie` header for `path`: matching cookies, longer paths first.
    fn cookie_header(&self, path: &str) -> String {
        let mut matching: Vec<_> = self
            .cookies
            .iter()
            .filter(|((_, cookie_path), _)| path.starts_with(cookie_path.as_str()))
            .collect();
        matching.sort_by_key(|((_, cookie_path), _)| std::cmp::Reverse(cookie_path.len()));
        let pairs: Vec<String> = matching
            .iter()
            .map(|((name, _), value)| format!("{name}={value}"))
            .collect();
        pairs.join("; ")
    }

    /// GET `path` like a browser: sends the matching cookies, keeps what the response sets.
    async fn get(&mut self, server: &TestServer, path: &str) -> reqwest::Response {
        let response = server
            .get(path)
            .header("cookie", self.cookie_header(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        for value in response.headers().get_all("set-cookie") {
            self.set(value.to_str().unwrap());
        }
        response
    }

    /// The `Cookie` header the upstream received for `path`.
    async fn upstream_cookie(&mut self, server: &TestServer, path: &str) -> String {
        let echoed: Value = self.get(server, path).await.json().await.unwrap();
        echoed["cookie"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn app_cookies(&self) -> Vec<String> {
        self.cookies
            .iter()
            .filter(|((name, _), _)| name != "portico_session")
            .map(|((name, path), value)| format!("{name}={value}; Path={path}"))
            .collect()
    }
}

/// BRIEF invariant 10: an app's cookies are no business of the browser or of another app.
#[tokio::test]
async fn an_apps_cookies_stay_in_its_jar_and_reach_only_that_app() {
    let server = start().await;
    let mut browser = Browser::signed_in(&server).await;
    let login = browser.get(&server, "/apps/a/login").await;
    assert!(
        login.headers().get("set-cookie").is_none(),
        "the browser never sees a jar cookie"
    );
    assert!(browser.app_cookies().is_empty());

    assert_eq!(
        browser.upstream_cookie(&server, "/apps/a/home").await,
        "sid=a-secret"
    );
    // `Path` is honoured inside the app: the longer path first, as browsers order them.
    assert_eq!(
        browser.upstream_cookie(&server, "/apps/a/settings/x").await,
        "pref=compact; sid=a-secret"
    );
    assert_eq!(browser.upstream_cookie(&server, "/apps/b/home").await, "");
    // Another session of the same user has a jar of its own.
    let mut other = Browser::signed_in(&server).await;
    assert_eq!(other.upstream_cookie(&server, "/apps/a/home").await, "");
}

/// Cookie tossing: any app's script can write a cookie the browser then sends to app `a`
/// (`document.cookie = "sid=evil; path=/apps/a/"`). In jar mode nothing the browser sends as a
/// cookie reaches `a`, so it can neither override `a`'s session nor plant one.
#[tokio::test]
async fn a_cookie_from_the_browser_never_overrides_or_adds_to_the_jar() {
    let server = start().await;
    let mut browser = Browser::signed_in(&server).await;
    browser.get(&server, "/apps/a/login").await;
    browser.set("sid=planted-by-b; Path=/apps/a/");
    browser.set("extra=1; Path=/");
    assert_eq!(
        browser.upstream_cookie(&server, "/apps/a/home").await,
        "sid=a-secret"
    );
    // Before the app set anything, a planted session (fixation) does not reach it either.
    let mut fresh = Browser::signed_in(&server).await;
    fresh.set("sid=attacker-session; Path=/apps/a/");
    assert_eq!(fresh.upstream_cookie(&server, "/apps/a/home").await, "");
}

#[tokio::test]
async fn an_app_deletes_its_cookie_with_max_age_zero() {
    let server = start().await;
    let mut browser = Browser::signed_in(&server).await;
    browser.get(&server, "/apps/a/login").await;
    browser.get(&server, "/apps/a/logout").await;
    assert_eq!(browser.upstream_cookie(&server, "/apps/a/home").await, "");
    assert_eq!(
        browser.upstream_cookie(&server, "/apps/a/settings/x").await,
        "pref=compact"
    );
}

/// Signing out of the portal signs out of the apps' cookie sessions too: the next sign-in in the same
/// browser starts with empty jars (with browser-held cookies, the app's `sid` would outlive sign-out).
#[tokio::test]
async fn signing_out_drops_the_sessions_jars() {
    let server = start().await;
    let mut browser = Browser::signed_in(&server).await;
    browser.get(&server, "/apps/a/login").await;
    let session = browser.cookie_header("/");
    let config: Value = server
        .get("/shell/config.json")
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = config["portico"]["csrfToken"].as_str().unwrap();
    let logout = server
        .post("/auth/logout")
        .header("cookie", browser.cookie_header("/auth/logout"))
        .header("origin", server.origin())
        .header("x-portico-csrf", token)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);

    let again = server.sign_in("dev").await;
    browser
        .cookies
        .retain(|(name, _), _| name != "portico_session");
    browser.set(&format!("{}; Path=/", again.cookie));
    assert_eq!(browser.upstream_cookie(&server, "/apps/a/home").await, "");
}

/// Headers whose effect a browser applies to the whole origin are an app's to send no more than the
/// portal session is: `Service-Worker-Allowed: /` would let the app's service worker control the shell
/// and every other app, `Clear-Site-Data: "cookies"` would sign the user out of the portal, HSTS and
/// `Alt-Svc` would decide for the whole host (and with `includeSubDomains`, its siblings).
#[tokio::test]
async fn an_app_cannot_send_headers_that_act_on_the_whole_origin() {
    let server = start().await;
    let mut browser = Browser::signed_in(&server).await;
    for app in ["a", "c"] {
        let response = browser
            .get(&server, &format!("/apps/{app}/origin-wide"))
            .await;
        let headers = response.headers();
        assert!(headers.get("service-worker-allowed").is_none(), "{app}");
        assert!(headers.get("clear-site-data").is_none(), "{app}");
        assert!(headers.get("strict-transport-security").is_none(), "{app}");
        assert!(headers.get("alt-svc").is_none(), "{app}");
    }
}

/// `cookies: scoped` (the opt-out) keeps today's behaviour: the browser holds the app's cookies below
/// `/apps/<id>/` and sends them to the app, which is what a script that reads its cookies needs, and
/// is also why any other app's script can read and overwrite them. An upstream's own `Set-Cookie`
/// cannot reach another app's path even so (its `Path` is put below its own prefix).
#[tokio::test]
async fn scoped_mode_keeps_cookies_in_the_browser_with_what_that_costs() {
    let server = start().await;
    let mut browser = Browser::signed_in(&server).await;
    let login = browser.get(&server, "/apps/c/login").await;
    let set: Vec<&str> = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        set[0],
        "sid=c-secret; Path=/apps/c/; HttpOnly; Max-Age=3600"
    );
    assert_eq!(
        browser.upstream_cookie(&server, "/apps/c/home").await,
        "sid=c-secret"
    );
    // The cost: a cookie written by another app's script reaches `c` first (the longer path wins
    // in most frameworks).
    browser.set("sid=planted-by-b; Path=/apps/c/home");
    assert_eq!(
        browser.upstream_cookie(&server, "/apps/c/home").await,
        "sid=planted-by-b; sid=c-secret"
    );
    // What scoping does stop: an upstream aiming a cookie at another app's path. `/apps/a/` is not
    // below this upstream's own base (`/c`), so the cookie covers app `c` as a whole, never `a`.
    let toss = browser.get(&server, "/apps/c/toss").await;
    assert_eq!(toss.headers()["set-cookie"], "sid=c-tossed; Path=/apps/c/");
}

/// A mistyped mode is an error at its line with a hint, not a silent fallback to some mode.
#[test]
fn an_unknown_cookie_mode_is_reported_with_its_line_and_a_hint() {
    let yaml = apps_config("http://127.0.0.1:9", "jars").yaml();
    let dir = tempfile::tempdir().unwrap();
    let error =
        match portico::config::load_str(&portico::config::OsSource, "test.yaml", &yaml, dir.path())
        {
            Ok(_) => panic!("`cookies: jars` compiled"),
            Err(error) => error,
        };
    let errors: Vec<_> = error.errors().collect();
    assert_eq!(errors.len(), 1, "{error}");
    let line = yaml
        .lines()
        .position(|l| l.contains("cookies: jars"))
        .unwrap()
        + 1;
    assert_eq!(
        (errors[0].file.as_str(), errors[0].mark.line),
        ("test.yaml", line)
    );
    assert_eq!(errors[0].message, "unknown cookie mode `jars`");
    assert!(
        errors[0]
            .hint
            .as_deref()
            .unwrap()
            .starts_with("did you mean `jar`?"),
        "{error}"
    );
    assert!(errors[0].key_path.ends_with(".cookies"), "{error}");
}
