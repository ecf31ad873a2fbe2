//! Header hygiene, case by case: what reaches an upstream and what comes back.

use axum::http::{HeaderValue, header};

use super::forwarded::ForwardedOrigin;
use super::identity::{header_value, list_value};
use super::*;
use crate::assertion::UserClaims;
use crate::config::IdentityModes;

/// The names `auth` gives the kit, spelled out: the kit's tests must not depend on auth.
const PORTAL: PortalCookies = PortalCookies::new(
    &[
        "portico_session",
        "__Host-portico_session",
        "portico_login",
        "__Host-portico_login",
    ],
    "portico_",
);

const DAVE: UserClaims<'static> = UserClaims {
    user: "dave",
    email: "dave@x",
    name: "Dave Developer",
    groups: &[],
    roles: &["developer"],
    tenant: "demo",
};

static DAVE_VALUES: std::sync::LazyLock<IdentityValues> =
    std::sync::LazyLock::new(|| IdentityValues::of(&DAVE));
static BEARER: std::sync::LazyLock<HeaderValue> =
    std::sync::LazyLock::new(|| identity::bearer_value("at"));

fn identity() -> Identity<'static> {
    Identity {
        values: &DAVE_VALUES,
        app: "status",
        modes: IdentityModes::default(),
        assertion: Some(HeaderValue::from_static("signed")),
        bearer: Some(&BEARER),
    }
}

fn prepare(headers: &mut HeaderMap, origin: Option<ForwardedOrigin<'static>>) {
    let hop = Hop {
        client_ip: "127.0.0.1".parse().unwrap(),
        origin,
        request_id: Some(HeaderValue::from_static("portico-id")),
    };
    prepare_request_headers(
        headers,
        &hop,
        Some(&identity()),
        SendCookies::Browser(&PORTAL),
    );
}

#[test]
fn spoofed_identity_and_session_cookie_never_go_upstream() {
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-user", HeaderValue::from_static("admin"));
    headers.insert(
        "x-oauth2-proxy-id-token",
        HeaderValue::from_static("Bearer x"),
    );
    headers.insert(
        "x-portico-roles",
        HeaderValue::from_static("platform-admin"),
    );
    headers.insert("x-portico-anything", HeaderValue::from_static("1"));
    headers.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
    headers.insert(
        header::COOKIE,
        HeaderValue::from_static("a=1; portico_session=secret; b=2"),
    );
    headers.insert(
        header::CONNECTION,
        HeaderValue::from_static("keep-alive, x-custom-hop"),
    );
    headers.insert("x-custom-hop", HeaderValue::from_static("1"));
    headers.insert("accept", HeaderValue::from_static("text/html"));
    prepare(&mut headers, None);
    assert_eq!(headers["x-portico-roles"], "developer");
    assert_eq!(headers["x-portico-user"], "dave");
    assert!(headers.get("x-forwarded-user").is_none());
    assert!(headers.get("x-oauth2-proxy-id-token").is_none());
    assert!(headers.get("x-portico-anything").is_none());
    assert!(headers.get("x-custom-hop").is_none());
    assert!(headers.get(header::CONNECTION).is_none());
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers[header::COOKIE], "a=1; b=2");
    assert_eq!(headers["accept"], "text/html");
}

#[test]
fn override_and_foreign_identity_headers_never_go_upstream() {
    let mut headers = HeaderMap::new();
    for name in [
        "x-original-url",
        "x-rewrite-url",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "x-original-method",
        "x-webauth-user",
        "true-client-ip",
        "x-forwarded-prefix",
        "x-forwarded-port",
        "x-forwarded-server",
        "cf-connecting-ip",
        "x-amzn-oidc-identity",
        "x-ms-client-principal-name",
    ] {
        headers.insert(name, HeaderValue::from_static("forged"));
    }
    headers.insert(
        "x-requested-with",
        HeaderValue::from_static("XMLHttpRequest"),
    );
    headers.insert("traceparent", HeaderValue::from_static("00-ab-cd-01"));
    prepare(
        &mut headers,
        Some(ForwardedOrigin::of("https://portal.acme.example")),
    );
    assert!(
        headers.iter().all(|(_, value)| value != "forged"),
        "{headers:?}"
    );
    assert_eq!(headers["x-requested-with"], "XMLHttpRequest");
    assert_eq!(headers["traceparent"], "00-ab-cd-01");
    assert_eq!(headers["x-forwarded-host"], "portal.acme.example");
    assert_eq!(headers["x-forwarded-proto"], "https");
}

#[test]
fn identity_values_cannot_add_items_or_headers() {
    let groups = [
        "acme-eng".to_owned(),
        "eng, platform-admin".to_owned(),
        "x\r\nX-Portico-Roles: admin".to_owned(),
        " admin ".to_owned(),
        "50%".to_owned(),
        "Entwickler Jürgen".to_owned(),
    ];
    let value = list_value(&groups);
    let items: Vec<&str> = value.to_str().unwrap().split(',').map(str::trim).collect();
    assert_eq!(
        items,
        [
            "acme-eng",
            "eng%2C platform-admin",
            "x%0D%0AX-Portico-Roles: admin",
            "%20admin%20",
            "50%25",
            "Entwickler J%C3%BCrgen"
        ]
    );
    assert_eq!(header_value("Doe, Jane"), "Doe, Jane");
    assert_eq!(header_value("a\u{1}b"), "a%01b", "not `ab`, another user");
    assert_eq!(header_value("Dev Eloper"), "Dev Eloper");
}

#[test]
fn upstreams_cannot_set_the_session_cookie() {
    let mut headers = HeaderMap::new();
    headers.append(
        header::SET_COOKIE,
        HeaderValue::from_static("portico_session=planted; Path=/"),
    );
    headers.append(
        header::SET_COOKIE,
        HeaderValue::from_static("__Host-portico_session=x; Secure; Path=/"),
    );
    headers.append(
        header::SET_COOKIE,
        HeaderValue::from_static("app_pref=1; Path=/apps/x/"),
    );
    remove_portal_set_cookies(&mut headers, &PORTAL);
    let left: Vec<_> = headers.get_all(header::SET_COOKIE).iter().collect();
    assert_eq!(left, ["app_pref=1; Path=/apps/x/"]);
}

#[test]
fn upstream_cookies_stay_inside_their_app() {
    let mut headers = HeaderMap::new();
    headers.append(
        header::SET_COOKIE,
        HeaderValue::from_static("a=1; Path=/; Domain=example.com; HttpOnly"),
    );
    headers.append(
        header::SET_COOKIE,
        HeaderValue::from_static("b=2; Path=/reports"),
    );
    headers.append(header::SET_COOKIE, HeaderValue::from_static("c=3"));
    scope_set_cookies(&mut headers, "/apps/cost/", "", false);
    let cookies: Vec<_> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        cookies,
        [
            "a=1; Path=/apps/cost/; HttpOnly",
            "b=2; Path=/apps/cost/reports",
            "c=3; Path=/apps/cost/"
        ]
    );
    scope_set_cookies(&mut headers, "/apps/cost/", "", true);
    assert!(headers.get(header::SET_COOKIE).is_none());
}

#[test]
fn scoped_cookie_paths_speak_of_the_upstreams_own_paths() {
    let scoped = |path: &str| {
        let mut headers = HeaderMap::new();
        let value = format!("sid=1; Path={path}");
        headers.insert(header::SET_COOKIE, HeaderValue::from_str(&value).unwrap());
        scope_set_cookies(&mut headers, "/apps/c/", "/c", false);
        headers[header::SET_COOKIE].to_str().unwrap().to_owned()
    };
    assert_eq!(scoped("/c/settings"), "sid=1; Path=/apps/c/settings");
    assert_eq!(scoped("/c"), "sid=1; Path=/apps/c/");
    assert_eq!(scoped("/"), "sid=1; Path=/apps/c/");
    assert_eq!(scoped("/cx"), "sid=1; Path=/apps/c/");
    assert_eq!(scoped("/elsewhere/x"), "sid=1; Path=/apps/c/");
}

#[test]
fn locations_to_the_upstream_stay_on_the_portal() {
    let check = |location: &'static str, expected: &str| {
        let mut headers = HeaderMap::new();
        headers.insert(header::LOCATION, HeaderValue::from_static(location));
        rewrite_location(&mut headers, "10.0.0.5:3000", "/base", "/apps/cost/");
        assert_eq!(headers[header::LOCATION], expected, "{location}");
    };
    check(
        "http://10.0.0.5:3000/base/reports?x=1",
        "/apps/cost/reports?x=1",
    );
    check("/base/login", "/apps/cost/login");
    check("/login", "/apps/cost/login");
    check("http://10.0.0.5:3000", "/apps/cost/");
    check(
        "https://idp.example/authorize",
        "https://idp.example/authorize",
    );
    check("//evil.example/x", "//evil.example/x");
    check("reports", "reports");
}

#[test]
fn only_the_shell_may_frame_an_app() {
    let mut headers = HeaderMap::new();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"),
    );
    frame_only_by_shell(&mut headers);
    assert_eq!(headers[header::X_FRAME_OPTIONS], "SAMEORIGIN");
    assert_eq!(
        headers[header::CONTENT_SECURITY_POLICY],
        "default-src 'self'; frame-ancestors 'self'"
    );
}

#[test]
fn a_lone_session_cookie_removes_the_header() {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::COOKIE,
        HeaderValue::from_static("portico_session=secret"),
    );
    strip_portal_cookies(&mut headers, &PORTAL);
    assert!(headers.get(header::COOKIE).is_none());
}

#[test]
fn the_login_binding_cookie_never_goes_upstream_nor_comes_back() {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::COOKIE,
        HeaderValue::from_static("__Host-portico_login=b1; app=1; portico_login=b2"),
    );
    strip_portal_cookies(&mut headers, &PORTAL);
    assert_eq!(headers[header::COOKIE], "app=1");

    let mut response = HeaderMap::new();
    for value in ["__Host-portico_login=planted; Path=/", "app=2"] {
        response.append(header::SET_COOKIE, HeaderValue::from_static(value));
    }
    remove_portal_set_cookies(&mut response, &PORTAL);
    let left: Vec<_> = response.get_all(header::SET_COOKIE).iter().collect();
    assert_eq!(left, ["app=2"]);
}

#[test]
fn the_client_request_id_is_replaced_by_portico_s() {
    let mut headers = HeaderMap::new();
    headers.insert("x-request-id", HeaderValue::from_static("client-chosen"));
    prepare(&mut headers, None);
    assert_eq!(headers.get_all("x-request-id").iter().count(), 1);
    assert_eq!(headers["x-request-id"], "portico-id");
}
