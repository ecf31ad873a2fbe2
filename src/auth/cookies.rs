//! portico's own cookies: their names, the `Set-Cookie` values that create and clear them, and reading
//! them back from a request's `Cookie` headers (parsed with the `cookie` crate).
//!
//! The rules every portico cookie follows: HttpOnly, SameSite=Lax, host-only (no `Domain`), and on an
//! HTTPS origin the `__Host-` name with `Secure` and `Path=/`, so neither a sibling subdomain nor a
//! plain-HTTP page can plant or overwrite one. A request that carries the session cookie twice is
//! refused, never resolved. This module knows no session store and no route; it must not decide who
//! the user is.

use axum::http::{HeaderMap, HeaderValue, header};

use super::session::SessionId;

/// Name of the session cookie on plain-HTTP origins.
pub const COOKIE_NAME: &str = "portico_session";
/// Name on HTTPS origins: the `__Host-` prefix makes browsers insist on Secure, Path=/ and no Domain.
pub const SECURE_COOKIE_NAME: &str = "__Host-portico_session";
/// Name of the cookie that ties a login in flight to the browser that started it (plain HTTP; it is
/// only sent to the callback).
pub const LOGIN_BINDING_COOKIE: &str = "portico_login";
/// Its name on HTTPS origins. A sibling subdomain that could plant the binding cookie could make a
/// victim's browser finish the planter's own login (login CSRF); `__Host-` makes browsers refuse that.
pub const SECURE_LOGIN_BINDING_COOKIE: &str = "__Host-portico_login";

/// Every cookie portico itself sets. None of them is ever forwarded upstream, and no upstream may set
/// one: the proxy and the Backstage mount both filter on this list.
pub const PORTAL_COOKIES: [&str; 4] = [
    COOKIE_NAME,
    SECURE_COOKIE_NAME,
    LOGIN_BINDING_COOKIE,
    SECURE_LOGIN_BINDING_COOKIE,
];

/// How long a login may take; the binding cookie lasts as long (see `oidc::LOGIN_TIMEOUT`).
pub const LOGIN_BINDING_MAX_AGE: u64 = 600;
/// The only path the login binding cookie is sent to (on plain HTTP; `__Host-` demands `/`).
const LOGIN_BINDING_PATH: &str = "/auth/callback";

/// Why a request's session cookie could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum CookieError {
    /// The session cookie's name appeared more than once (in one `Cookie` header or across several).
    Duplicate,
}

/// The session id from the request's cookies, if one is well-formed. On an HTTPS origin only the
/// `__Host-` cookie counts: a plain-named one could have been planted over HTTP (cookie tossing).
/// Two cookies of that name are refused rather than resolved: one of them was planted (by a sibling
/// domain, or by a script on this origin for a narrower path), and picking either would let the
/// planter choose which session a request runs in.
pub fn session_cookie(headers: &HeaderMap, https: bool) -> Result<Option<SessionId>, CookieError> {
    let mut values = cookie_values(headers, cookie_name(COOKIE_NAME, https));
    let first = values.next();
    if values.next().is_some() {
        return Err(CookieError::Duplicate);
    }
    Ok(first.and_then(SessionId::parse))
}

/// The login binding cookie's value, if the request carries exactly one: with two, one was planted,
/// and either could be the planter's.
pub fn login_binding(headers: &HeaderMap, https: bool) -> Option<String> {
    let mut bindings = cookie_values(headers, cookie_name(LOGIN_BINDING_COOKIE, https));
    match (bindings.next(), bindings.next()) {
        (Some(binding), None) => Some(binding.to_owned()),
        _ => None,
    }
}

/// `Set-Cookie` for a new session. `https` switches to the `__Host-` name.
pub fn session_set_cookie(id: &SessionId, https: bool) -> HeaderValue {
    own_set_cookie(COOKIE_NAME, id.as_str(), https, "/", None)
}

/// `Set-Cookie` that removes the session cookie.
pub fn session_clear_cookie(https: bool) -> HeaderValue {
    own_set_cookie(COOKIE_NAME, "", https, "/", Some(0))
}

/// `Set-Cookie` for the login binding of a sign-in that has just started.
pub fn login_binding_set_cookie(value: &str, https: bool) -> HeaderValue {
    own_set_cookie(
        LOGIN_BINDING_COOKIE,
        value,
        https,
        LOGIN_BINDING_PATH,
        Some(LOGIN_BINDING_MAX_AGE),
    )
}

/// `Set-Cookie` that removes the login binding once the callback has used it.
pub fn login_binding_clear_cookie(https: bool) -> HeaderValue {
    own_set_cookie(LOGIN_BINDING_COOKIE, "", https, LOGIN_BINDING_PATH, Some(0))
}

/// The name a portico cookie has on an origin: on HTTPS the `__Host-` prefix, with which browsers accept
/// it only with `Secure`, `Path=/` and no `Domain`, so neither a sibling subdomain nor a plain-HTTP page
/// can plant or overwrite it.
fn cookie_name(base: &'static str, https: bool) -> &'static str {
    match (base, https) {
        (COOKIE_NAME, true) => SECURE_COOKIE_NAME,
        (LOGIN_BINDING_COOKIE, true) => SECURE_LOGIN_BINDING_COOKIE,
        (name, _) => name,
    }
}

/// `Set-Cookie` for one of portico's own cookies: HttpOnly, SameSite=Lax, host-only, and on HTTPS
/// `__Host-`, `Secure` and `Path=/`. `path` is used on plain HTTP only (the prefix demands `/`);
/// `max_age` `Some(0)` removes the cookie.
///
/// Written out rather than rendered by `cookie::Cookie`'s `Display`, which orders the attributes
/// differently: the exact text (`name=value; Path=…; HttpOnly; SameSite=Lax[; Secure][; Max-Age=…]`)
/// is what browsers and the tests have always seen. Values are session ids and base64url tokens, so
/// the header is always representable (the empty fallback is unreachable).
fn own_set_cookie(
    base: &'static str,
    value: &str,
    https: bool,
    path: &str,
    max_age: Option<u64>,
) -> HeaderValue {
    let name = cookie_name(base, https);
    let path = if https { "/" } else { path };
    let secure = if https { "; Secure" } else { "" };
    let max_age = max_age.map_or_else(String::new, |age| format!("; Max-Age={age}"));
    let text = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax{secure}{max_age}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Every value the request's `Cookie` headers give for `name`, in order.
fn cookie_values<'h>(headers: &'h HeaderMap, name: &'h str) -> impl Iterator<Item = &'h str> {
    CookieValues {
        lines: headers.get_all(header::COOKIE).iter(),
        rest: "",
        name,
    }
}

/// `name=value` pairs split by `;` (RFC 6265 §5.4), read in place: this runs on every request, and
/// building a `cookie::Cookie` per pair cost more than the rest of the session lookup (and a chain
/// of iterator adapters over `str::split` some 1,500 instructions). A pair without `=` is no cookie;
/// names and values are trimmed of the spaces around them. A header line with anything but visible
/// ASCII, spaces and tabs is not read at all (`to_str`).
struct CookieValues<'h> {
    lines: axum::http::header::ValueIter<'h, HeaderValue>,
    /// What is left of the current line.
    rest: &'h str,
    name: &'h str,
}

impl<'h> Iterator for CookieValues<'h> {
    type Item = &'h str;

    fn next(&mut self) -> Option<&'h str> {
        loop {
            if self.rest.is_empty() {
                self.rest = self.lines.next()?.to_str().unwrap_or("");
                continue;
            }
            // Split at ASCII bytes by position: `str::split_once` with a `char` pattern went
            // through the general searcher, a few hundred instructions per request.
            let (pair, rest) = match self.rest.bytes().position(|byte| byte == b';') {
                Some(at) => (&self.rest[..at], &self.rest[at + 1..]),
                None => (self.rest, ""),
            };
            self.rest = rest;
            if let Some(at) = pair.bytes().position(|byte| byte == b'=') {
                if pair[..at].trim_ascii() == self.name {
                    return Some(pair[at + 1..].trim_ascii());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a pair named exactly `portico_session` counts: not a name that ends or starts with it, not a
    /// pair without `=`, whatever the spacing between pairs.
    #[test]
    fn only_the_exact_name_is_the_session_cookie() {
        let id = SessionId::generate();
        let with = |line: String| {
            let mut headers = HeaderMap::new();
            headers.insert(header::COOKIE, HeaderValue::from_str(&line).unwrap());
            session_cookie(&headers, false)
        };
        let id_text = id.as_str();
        assert_eq!(
            with(format!("theme;;  portico_session={id_text}  ;x=1")),
            Ok(Some(id.clone()))
        );
        for line in [
            format!("xportico_session={id_text}"),
            format!("portico_session_old={id_text}"),
            "portico_session".to_owned(),
            format!("portico_session=\"{id_text}\""),
        ] {
            assert_eq!(with(line.clone()), Ok(None), "{line}");
        }
    }

    #[test]
    fn reads_the_session_cookie_among_others() {
        let id = SessionId::generate();
        let mut headers = HeaderMap::new();
        let cookie = format!("theme=dark; portico_session={}; other=1", id.as_str());
        headers.insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
        assert_eq!(session_cookie(&headers, false), Ok(Some(id.clone())));
        assert_eq!(
            session_cookie(&headers, true),
            Ok(None),
            "an https origin wants the __Host- cookie"
        );
        let secure = format!("__Host-portico_session={}", id.as_str());
        headers.insert(header::COOKIE, HeaderValue::from_str(&secure).unwrap());
        assert_eq!(session_cookie(&headers, true), Ok(Some(id.clone())));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("portico_session=forged"),
        );
        assert_eq!(session_cookie(&headers, false), Ok(None));
        // Quotes are part of the value, so a quoted id is not an id; pairs without `=` are skipped.
        let odd = format!("junk; portico_session=\"{}\"", id.as_str());
        headers.insert(header::COOKIE, HeaderValue::from_str(&odd).unwrap());
        assert_eq!(session_cookie(&headers, false), Ok(None));
        let spaced = format!(" ;;  portico_session = {} ; x", id.as_str());
        headers.insert(header::COOKIE, HeaderValue::from_str(&spaced).unwrap());
        assert_eq!(session_cookie(&headers, false), Ok(Some(id)));
    }

    #[test]
    fn a_duplicate_session_cookie_is_refused_not_resolved() {
        let (a, b) = (SessionId::generate(), SessionId::generate());
        let mut headers = HeaderMap::new();
        let both = format!(
            "portico_session={}; x=1; portico_session={}",
            a.as_str(),
            b.as_str()
        );
        headers.insert(header::COOKIE, HeaderValue::from_str(&both).unwrap());
        assert_eq!(session_cookie(&headers, false), Err(CookieError::Duplicate));
        let mut split = HeaderMap::new();
        for id in [&a, &b] {
            let one = format!("__Host-portico_session={}", id.as_str());
            split.append(header::COOKIE, HeaderValue::from_str(&one).unwrap());
        }
        assert_eq!(session_cookie(&split, true), Err(CookieError::Duplicate));
        // A plain-named cookie next to the `__Host-` one on HTTPS is ignored, not a duplicate.
        let mixed = format!(
            "portico_session={}; __Host-portico_session={}",
            a.as_str(),
            b.as_str()
        );
        headers.insert(header::COOKIE, HeaderValue::from_str(&mixed).unwrap());
        assert_eq!(session_cookie(&headers, true), Ok(Some(b)));
        // Even a malformed duplicate counts: the name appeared twice.
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!(
                "portico_session=x; portico_session={}",
                a.as_str()
            ))
            .unwrap(),
        );
        assert_eq!(session_cookie(&headers, false), Err(CookieError::Duplicate));
    }

    #[test]
    fn the_login_binding_counts_only_when_there_is_exactly_one() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("portico_login=v"));
        assert_eq!(login_binding(&headers, false).as_deref(), Some("v"));
        assert_eq!(login_binding(&headers, true), None);
        headers.append(header::COOKIE, HeaderValue::from_static("portico_login=w"));
        assert_eq!(login_binding(&headers, false), None);
    }

    #[test]
    fn portico_cookies_get_the_host_prefix_on_https() {
        assert_eq!(
            login_binding_set_cookie("v", true),
            "__Host-portico_login=v; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=600"
        );
        assert_eq!(
            login_binding_set_cookie("v", false),
            "portico_login=v; Path=/auth/callback; HttpOnly; SameSite=Lax; Max-Age=600"
        );
        assert_eq!(
            login_binding_clear_cookie(false),
            "portico_login=; Path=/auth/callback; HttpOnly; SameSite=Lax; Max-Age=0"
        );
        assert_eq!(
            session_clear_cookie(true),
            "__Host-portico_session=; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=0"
        );
        let id = SessionId::generate();
        assert_eq!(
            session_set_cookie(&id, false),
            format!(
                "portico_session={}; Path=/; HttpOnly; SameSite=Lax",
                id.as_str()
            )
            .as_str()
        );
    }
}
