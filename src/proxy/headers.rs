//! Header hygiene for proxied requests and responses.
//!
//! What goes upstream: no hop-by-hop headers, no session cookie, no client-sent identity, forwarding or
//! override headers (BRIEF invariant 4), then portico's own identity headers and forwarding facts
//! (`X-Forwarded-Host`/`-Proto` from the tenant's origin, never from the client's Host). What comes
//! back: no hop-by-hop headers. Everything here is a pure function over a `HeaderMap`.
//!
//! Request headers are cleaned with a deny-list, not an allow-list. An allow-list would have to name
//! every header some app relies on (its own API headers, CSRF tokens, tracing, content negotiation)
//! and would break apps silently; what is dangerous is a known family: headers that an upstream
//! framework or auth layer believes because it thinks a trusted proxy set them. Those are removed by
//! exact name and by prefix ([`UNTRUSTED_EXACT`], [`UNTRUSTED_PREFIXES`]): identity headers of other
//! identity proxies, client-address headers, forwarding headers (`Forwarded`, all `X-Forwarded-*`),
//! URL and method overrides (`X-Original-URL`, `X-Rewrite-URL`, `X-HTTP-Method-Override`…), which would
//! let a request decided as `GET /public` run as `DELETE /admin`, and client-certificate headers.
//!
//! Identity values cannot add anything: each header value is ASCII, with every byte outside visible
//! ASCII (and an inner space), every `%`, and in list headers (`X-Portico-Groups`, `-Roles`) every `,`,
//! `;`, `"` and `\` percent-encoded (UTF-8). A group `eng, platform-admin` arrives as
//! `eng%2C platform-admin`: one item, never a second group; an upstream that percent-decodes each item
//! gets the exact name back. The signed assertion carries the same values as JSON.

use std::borrow::Cow;
use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

use crate::auth::PORTAL_COOKIES;
use crate::config::IdentityModes;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the legacy ones.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Request headers that upstream frameworks or auth layers believe because a trusted proxy would set
/// them; a client sending them could impersonate someone, fake its address or change what runs.
const UNTRUSTED_EXACT: &[&str] = &[
    // Identity set by other identity-aware proxies (oauth2-proxy, Apache, Grafana's auth proxy…).
    "x-oauth2-proxy-id-token",
    "x-remote-user",
    "remote-user",
    "x-user",
    "x-email",
    // The client's address: portico sets X-Forwarded-For alone.
    "forwarded",
    "x-real-ip",
    "true-client-ip",
    "x-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-cluster-client-ip",
    "x-proxyuser-ip",
    "x-originating-ip",
    "x-remote-ip",
    "x-remote-addr",
    "x-host",
    // URL and method overrides (IIS/Symfony/Zend, Express method-override, Rails, Spring, Jersey…):
    // the access decision saw the request line, so nothing may replace it.
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    // Client certificates as a TLS-terminating proxy reports them.
    "ssl-client-cert",
    "x-client-cert",
    "x-client-verify",
    "x-arr-clientcert",
];

/// The same, for whole families of names.
const UNTRUSTED_PREFIXES: &[&str] = &[
    // Portico's own; only portico sets them (after this cleaning).
    IDENTITY_PREFIX,
    // X-Forwarded-For/-Host/-Proto/-Port/-Server/-Prefix/-Path/-User/-Email/-Groups/-Client-Cert…
    "x-forwarded-",
    // oauth2-proxy's auth-request headers, Grafana/Jetty-style X-WEBAUTH-USER, Pomerium, AWS ALB,
    // Google IAP, Azure App Service and Cloudflare Access identity headers.
    "x-auth-request-",
    "x-webauth-",
    "x-pomerium-",
    "x-amzn-oidc-",
    "x-goog-authenticated-",
    "x-goog-iap-",
    "x-ms-client-principal",
    "cf-access-",
    // X-Original-URL, -Method, -Host, -URI, -Forwarded-For: overrides of what was decided on.
    "x-original-",
    // Envoy and Istio sidecars trust these from the hop before them.
    "x-envoy-",
    // Client-certificate details from TLS terminators.
    "x-ssl-",
    "ssl-client-",
];

/// Whether a client-sent request header must not reach an upstream (names are lower-case).
fn untrusted(name: &str) -> bool {
    UNTRUSTED_EXACT.contains(&name)
        || UNTRUSTED_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
}

// Names portico sets on every forwarded request, parsed once rather than per insert.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_PORTICO_USER: HeaderName = HeaderName::from_static("x-portico-user");
const X_PORTICO_EMAIL: HeaderName = HeaderName::from_static("x-portico-email");
const X_PORTICO_NAME: HeaderName = HeaderName::from_static("x-portico-name");
const X_PORTICO_GROUPS: HeaderName = HeaderName::from_static("x-portico-groups");
const X_PORTICO_ROLES: HeaderName = HeaderName::from_static("x-portico-roles");
const X_PORTICO_TENANT: HeaderName = HeaderName::from_static("x-portico-tenant");
const X_PORTICO_APP: HeaderName = HeaderName::from_static("x-portico-app");

/// Prefix of every header portico sets upstream; all client-sent headers with it are dropped.
pub const IDENTITY_PREFIX: &str = "x-portico-";

/// Who the user is, as portico tells an upstream, and in which forms (`identity:` of the app).
pub struct Identity<'a> {
    pub modes: IdentityModes,
    /// The signed assertion, when `modes.assertion` (a shared, ready header value).
    pub assertion: Option<HeaderValue>,
    /// The user's OIDC access token, when `modes.access_token` and the session has one.
    pub access_token: Option<&'a str>,
    pub user: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub groups: &'a [String],
    pub roles: &'a [&'a str],
    pub tenant: &'a str,
    pub app: &'a str,
}

impl<'a> Identity<'a> {
    /// The user of `session` in `tenant`, for `app`, in the given forms; assertion and token are set later.
    pub fn of(
        user: &'a crate::auth::session::User,
        roles: &'a [&'a str],
        tenant: &'a str,
        app: &'a str,
        modes: IdentityModes,
    ) -> Self {
        Identity {
            modes,
            assertion: None,
            access_token: None,
            user: &user.subject,
            email: &user.email,
            name: &user.name,
            groups: &user.groups,
            roles,
            tenant,
            app,
        }
    }
}

/// Removes hop-by-hop headers, including any the `Connection` header names.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    let hop_by_hop: Vec<HeaderName> = headers
        .keys()
        .filter(|name| HOP_BY_HOP.contains(&name.as_str()))
        .cloned()
        .collect();
    for name in hop_by_hop {
        headers.remove(name);
    }
}

/// What an upstream is told the user reached (`X-Forwarded-Proto`, `-Host`): decided by portico from
/// the tenant (`proxy::forwarded_origin`), never taken from the client's Host or X-Forwarded-Host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedOrigin<'a> {
    pub https: bool,
    /// `name` or `name:port`.
    pub host: Cow<'a, str>,
}

impl<'a> ForwardedOrigin<'a> {
    /// From an origin such as `https://portal.example`; anything but `https://` counts as plain HTTP.
    pub fn of(origin: &'a str) -> Self {
        let (scheme, host) = origin.split_once("://").unwrap_or(("http", origin));
        ForwardedOrigin {
            https: scheme == "https",
            host: Cow::Borrowed(host),
        }
    }
}

/// Makes a client's request headers safe to send upstream and adds portico's identity and forwarding
/// headers. `origin` is the host and scheme the upstream is told the user reached.
pub fn prepare_upstream_request(
    headers: &mut HeaderMap,
    identity: &Identity<'_>,
    client_ip: IpAddr,
    origin: Option<&ForwardedOrigin<'_>>,
) {
    remove_hop_by_hop(headers);
    // One pass over what the client sent (usually a dozen headers) instead of a lookup per name.
    let unwanted: Vec<HeaderName> = headers
        .keys()
        .filter(|name| untrusted(name.as_str()))
        .cloned()
        .collect();
    for name in unwanted {
        headers.remove(name);
    }
    strip_session_cookie(headers);
    headers.remove(header::HOST);
    // The browser holds no token (BFF), so a client-sent Authorization is someone else's credential.
    headers.remove(header::AUTHORIZATION);

    headers.insert(X_FORWARDED_FOR, header_value(&client_ip.to_string()));
    let https = origin.is_some_and(|origin| origin.https);
    headers.insert(
        X_FORWARDED_PROTO,
        HeaderValue::from_static(if https { "https" } else { "http" }),
    );
    if let Some(host) = origin.and_then(|origin| HeaderValue::from_str(&origin.host).ok()) {
        headers.insert(X_FORWARDED_HOST, host);
    }
    if let Some(assertion) = identity
        .assertion
        .clone()
        .filter(|_| identity.modes.assertion)
    {
        headers.insert(X_PORTICO_ASSERTION, assertion);
    }
    if let Some(token) = identity
        .access_token
        .filter(|_| identity.modes.access_token)
    {
        headers.insert(
            header::AUTHORIZATION,
            header_value(&format!("Bearer {token}")),
        );
    }
    if identity.modes.headers {
        headers.insert(X_PORTICO_USER, header_value(identity.user));
        headers.insert(X_PORTICO_EMAIL, header_value(identity.email));
        headers.insert(X_PORTICO_NAME, header_value(identity.name));
        headers.insert(X_PORTICO_GROUPS, list_value(identity.groups));
        headers.insert(X_PORTICO_ROLES, list_value(identity.roles));
        headers.insert(X_PORTICO_TENANT, header_value(identity.tenant));
        headers.insert(X_PORTICO_APP, header_value(identity.app));
    }
}

/// The header that carries the signed identity assertion.
const X_PORTICO_ASSERTION: HeaderName = HeaderName::from_static("x-portico-assertion");

/// Every name in `PORTAL_COOKIES` contains this, so a `Cookie` header without it needs no rebuild.
const PORTAL_COOKIE_MARK: &[u8] = b"portico_";

/// Removes portico's own cookies (the session and the login binding) from `Cookie`, keeping the app's.
pub fn strip_session_cookie(headers: &mut HeaderMap) {
    let marked = headers.get_all(header::COOKIE).iter().any(|value| {
        value
            .as_bytes()
            .windows(PORTAL_COOKIE_MARK.len())
            .any(|window| window == PORTAL_COOKIE_MARK)
    });
    if !marked {
        return;
    }
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(name, _)| name).trim();
            !PORTAL_COOKIES.contains(&name)
        })
        .map(str::to_owned)
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty() {
        if let Ok(value) = HeaderValue::from_str(&kept.join("; ")) {
            headers.insert(header::COOKIE, value);
        }
    }
}

/// Drops upstream `Set-Cookie` headers that would set or overwrite portico's own cookies: an app on the
/// shared origin must not be able to plant a session (session fixation), sign the user out, or plant a
/// login binding (login CSRF).
pub fn remove_session_cookie_overrides(headers: &mut HeaderMap) {
    let kept: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|value| {
            let text = String::from_utf8_lossy(value.as_bytes());
            let name = text.split(['=', ';']).next().unwrap_or("").trim();
            !PORTAL_COOKIES.contains(&name)
        })
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for value in kept {
        headers.append(header::SET_COOKIE, value);
    }
}

/// Keeps an upstream's cookies inside its app: `Path` is put below `/apps/<id>/` and `Domain` dropped
/// (host-only), so an app can neither read nor overwrite another app's or the portal's cookies by path.
/// A `Path` speaks of the upstream's own paths, which start with its `base_path`: that part becomes
/// the app prefix (an upstream at `/c` setting `Path=/c/settings` gets `/apps/<id>/settings`), and a
/// path above the base (`Path=/`) covers the whole app. With `drop`, the app sets no cookies at all.
pub fn scope_set_cookies(headers: &mut HeaderMap, app_prefix: &str, base_path: &str, drop: bool) {
    let values: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    if drop {
        return;
    }
    for value in values {
        let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let mut parts = text.split(';').map(str::trim);
        let Some(pair) = parts.next() else { continue };
        let mut scoped = vec![pair.to_owned()];
        let mut path = None;
        for attribute in parts {
            let name = attribute
                .split('=')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            match name.as_str() {
                "path" => path = attribute.split_once('=').map(|(_, p)| p.trim().to_owned()),
                "domain" => {}
                _ => scoped.push(attribute.to_owned()),
            }
        }
        let path = path.unwrap_or_default();
        let base = base_path.trim_end_matches('/');
        let inner = match path.strip_prefix(base) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
            _ if base.is_empty() => path.as_str(),
            _ => "",
        };
        let inner = inner.trim_start_matches('/');
        scoped.insert(1, format!("Path={app_prefix}{inner}"));
        if let Ok(value) = HeaderValue::from_str(&scoped.join("; ")) {
            headers.append(header::SET_COOKIE, value);
        }
    }
}

/// Rewrites a `Location` that points at the upstream (absolute, or root-relative on the upstream) so the
/// browser stays on the portal below `app_prefix`. Other origins are left alone.
pub fn rewrite_location(
    headers: &mut HeaderMap,
    upstream_authority: &str,
    base_path: &str,
    app_prefix: &str,
) {
    let Some(location) = headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return;
    };
    let upstream_path = if let Some(rest) = location.strip_prefix("http://") {
        match rest.split_once('/') {
            Some((authority, path)) if same_authority(authority, upstream_authority) => {
                format!("/{path}")
            }
            None if same_authority(rest, upstream_authority) => "/".to_owned(),
            _ => return,
        }
    } else if location.starts_with('/') && !location.starts_with("//") {
        location
    } else {
        return;
    };
    let inside = upstream_path
        .strip_prefix(base_path)
        .filter(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
        .unwrap_or(&upstream_path);
    let rewritten = format!(
        "{}{}",
        app_prefix.trim_end_matches('/'),
        if inside.is_empty() { "/" } else { inside }
    );
    if let Ok(value) = HeaderValue::from_str(&rewritten) {
        headers.insert(header::LOCATION, value);
    }
}

fn same_authority(a: &str, b: &str) -> bool {
    let with_port = |authority: &str| {
        if authority.contains(':') {
            authority.to_ascii_lowercase()
        } else {
            format!("{}:80", authority.to_ascii_lowercase())
        }
    };
    with_port(a) == with_port(b)
}

/// An app may be framed by the shell on this origin and by nothing else, whatever the upstream said:
/// `X-Frame-Options: SAMEORIGIN` and CSP `frame-ancestors 'self'` (replacing the upstream's directive).
pub fn frame_only_by_shell(headers: &mut HeaderMap) {
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    let policies: Vec<String> = headers
        .get_all(header::CONTENT_SECURITY_POLICY)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect();
    headers.remove(header::CONTENT_SECURITY_POLICY);
    if policies.is_empty() {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'self'"),
        );
        return;
    }
    for policy in policies {
        let mut directives: Vec<&str> = policy
            .split(';')
            .map(str::trim)
            .filter(|d| !d.is_empty() && !d.to_ascii_lowercase().starts_with("frame-ancestors"))
            .collect();
        directives.push("frame-ancestors 'self'");
        if let Ok(value) = HeaderValue::from_str(&directives.join("; ")) {
            headers.append(header::CONTENT_SECURITY_POLICY, value);
        }
    }
}

/// One identity value as an ASCII header value (see the module docs): clean values as they are,
/// anything else percent-encoded, so no value can end a header, start another or read differently.
fn header_value(text: &str) -> HeaderValue {
    encoded_value(text, false)
}

/// A list of identity values, comma-separated; no item can contain the separator.
fn list_value<S: AsRef<str>>(items: &[S]) -> HeaderValue {
    let mut joined = String::new();
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            joined.push(',');
        }
        encode_into(&mut joined, item.as_ref(), true);
    }
    // Only visible ASCII and spaces are left, which is always a valid header value.
    HeaderValue::from_str(&joined).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn encoded_value(text: &str, list_item: bool) -> HeaderValue {
    // The usual case, a clean value, costs one copy; only a value that needs encoding is rebuilt.
    if !needs_encoding(text, list_item) {
        if let Ok(value) = HeaderValue::from_str(text) {
            return value;
        }
    }
    let mut encoded = String::with_capacity(text.len() + 8);
    encode_into(&mut encoded, text, list_item);
    HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn needs_encoding(text: &str, list_item: bool) -> bool {
    let bytes = text.as_bytes();
    bytes.first() == Some(&b' ')
        || bytes.last() == Some(&b' ')
        || bytes.iter().any(|&byte| must_encode(byte, list_item))
}

fn must_encode(byte: u8, list_item: bool) -> bool {
    match byte {
        b'%' => true,
        b',' | b';' | b'"' | b'\\' => list_item,
        b' ' => false,
        byte => !byte.is_ascii_graphic(),
    }
}

fn encode_into(out: &mut String, text: &str, list_item: bool) {
    use std::fmt::Write;
    let bytes = text.as_bytes();
    let last = bytes.len().saturating_sub(1);
    for (index, &byte) in bytes.iter().enumerate() {
        // A leading or trailing space would vanish when an upstream trims the item.
        let edge_space = byte == b' ' && (index == 0 || index == last);
        if edge_space || must_encode(byte, list_item) {
            let _ = write!(out, "%{byte:02X}");
        } else {
            out.push(char::from(byte));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity<'static> {
        Identity {
            modes: IdentityModes::default(),
            assertion: Some(HeaderValue::from_static("signed")),
            access_token: Some("at"),
            user: "dave",
            email: "dave@x",
            name: "Dave Developer",
            groups: &[],
            roles: &["developer"],
            tenant: "demo",
            app: "status",
        }
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
        prepare_upstream_request(
            &mut headers,
            &identity(),
            "127.0.0.1".parse().unwrap(),
            None,
        );
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
        prepare_upstream_request(
            &mut headers,
            &identity(),
            "127.0.0.1".parse().unwrap(),
            Some(&ForwardedOrigin::of("https://portal.acme.example")),
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
        remove_session_cookie_overrides(&mut headers);
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
        strip_session_cookie(&mut headers);
        assert!(headers.get(header::COOKIE).is_none());
    }

    #[test]
    fn every_portal_cookie_carries_the_mark_the_fast_path_looks_for() {
        for name in PORTAL_COOKIES {
            assert!(
                name.as_bytes()
                    .windows(PORTAL_COOKIE_MARK.len())
                    .any(|window| window == PORTAL_COOKIE_MARK),
                "{name}"
            );
        }
    }

    #[test]
    fn the_login_binding_cookie_never_goes_upstream_nor_comes_back() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("__Host-portico_login=b1; app=1; portico_login=b2"),
        );
        strip_session_cookie(&mut headers);
        assert_eq!(headers[header::COOKIE], "app=1");

        let mut response = HeaderMap::new();
        for value in ["__Host-portico_login=planted; Path=/", "app=2"] {
            response.append(header::SET_COOKIE, HeaderValue::from_static(value));
        }
        remove_session_cookie_overrides(&mut response);
        let left: Vec<_> = response.get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(left, ["app=2"]);
    }
}
