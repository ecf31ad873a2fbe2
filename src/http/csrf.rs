//! Proof that a state-changing request came from the portal's own pages.
//!
//! Two independent checks: the browser's own `Sec-Fetch-Site` / `Origin` headers must say same-origin, and
//! the request must carry the session's CSRF token (header `x-portico-csrf` for fetch calls, or a form
//! field). SameSite=Lax on the cookie is a third line, not the only one.

use axum::http::{HeaderMap, header};

/// The header the shell's bootstrap and the demo apps send with state-changing fetch calls.
pub(crate) const CSRF_HEADER: &str = "x-portico-csrf";

/// True unless the browser says the request is cross-site. Requests without either header (non-browser
/// clients) pass this check; they still need the token.
///
/// `https` is whether the tenant is served over HTTPS: the `Origin` must then be `https://<Host>`, since a
/// page served over plain HTTP on the same host name is another origin (and anyone on the network path
/// can write it). A `Sec-Fetch-Site` that cannot be read (not visible ASCII) or that appears with
/// differing values counts as cross-site: a browser never sends such a thing, so the request is forged.
pub(crate) fn is_same_origin(headers: &HeaderMap, https: bool) -> bool {
    let mut sites = headers.get_all("sec-fetch-site").iter().peekable();
    if sites.peek().is_some() {
        return sites.all(|site| site.to_str().is_ok_and(|site| site == "same-origin"));
    }
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let Some(origin) = origins.next() else {
        return true;
    };
    if origins.next().is_some() {
        return false;
    }
    let (Ok(origin), Some(Ok(host))) = (
        origin.to_str(),
        headers.get(header::HOST).map(|host| host.to_str()),
    ) else {
        return false;
    };
    let scheme = if https { "https://" } else { "http://" };
    let origin_host = match origin.get(..scheme.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(scheme) => &origin[scheme.len()..],
        _ => return false,
    };
    let default_port = if https { ":443" } else { ":80" };
    let without_default_port = |authority: &'_ str| -> String {
        let lower = authority.to_ascii_lowercase();
        match lower.strip_suffix(default_port) {
            Some(stripped) => stripped.to_owned(),
            None => lower,
        }
    };
    !origin_host.is_empty() && without_default_port(origin_host) == without_default_port(host)
}

/// For a state-changing request authenticated by the cookie: the browser says same-origin
/// (`Sec-Fetch-Site`, else `Origin`, see [`is_same_origin`]), or, from a client that sends neither, the
/// CSRF token header matches.
pub(crate) fn proves_same_origin(headers: &HeaderMap, expected_token: &str, https: bool) -> bool {
    let browser_said =
        headers.contains_key("sec-fetch-site") || headers.contains_key(header::ORIGIN);
    if browser_said {
        is_same_origin(headers, https)
    } else {
        token_matches(headers, None, expected_token)
    }
}

/// The header or form token equals the session's, compared in constant time.
pub(crate) fn token_matches(headers: &HeaderMap, form_token: Option<&str>, expected: &str) -> bool {
    let presented = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .or(form_token);
    presented.is_some_and(|token| constant_time_eq(token.as_bytes(), expected.as_bytes()))
}

/// Compares secrets without an early exit, so timing does not reveal how much matched.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn cross_site_requests_are_refused() {
        assert!(is_same_origin(
            &headers(&[("sec-fetch-site", "same-origin")]),
            false
        ));
        assert!(!is_same_origin(
            &headers(&[("sec-fetch-site", "cross-site")]),
            false
        ));
        assert!(!is_same_origin(
            &headers(&[("sec-fetch-site", "same-site")]),
            false
        ));
        assert!(is_same_origin(
            &headers(&[("origin", "http://portal:8080"), ("host", "portal:8080")]),
            false
        ));
        assert!(!is_same_origin(
            &headers(&[("origin", "http://evil.example"), ("host", "portal:8080")]),
            false
        ));
        assert!(!is_same_origin(
            &headers(&[("origin", "null"), ("host", "portal:8080")]),
            false
        ));
    }

    #[test]
    fn an_unreadable_sec_fetch_site_is_cross_site() {
        // Not visible ASCII: no browser sends this, so it must not fall back to a matching Origin.
        let mut map = headers(&[("origin", "http://portal:8080"), ("host", "portal:8080")]);
        map.insert(
            "sec-fetch-site",
            HeaderValue::from_bytes(b"same-origin\xff").unwrap(),
        );
        assert!(!is_same_origin(&map, false));
        assert!(!proves_same_origin(&map, "t", false));
        // Without an Origin to fall back on, it used to pass outright.
        let mut map = headers(&[("x-portico-csrf", "t")]);
        map.insert(
            "sec-fetch-site",
            HeaderValue::from_bytes(b"\xe9t\xe9").unwrap(),
        );
        assert!(!proves_same_origin(&map, "t", false));
        // Two values that disagree are not a browser's either.
        let mut map = headers(&[("sec-fetch-site", "same-origin")]);
        map.append("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!is_same_origin(&map, false));
    }

    #[test]
    fn the_origin_scheme_must_be_the_tenants() {
        let https = |origin: &'static str, host: &'static str| {
            is_same_origin(&headers(&[("origin", origin), ("host", host)]), true)
        };
        assert!(https("https://portal.example", "portal.example"));
        assert!(https("HTTPS://Portal.Example", "portal.example"));
        assert!(https("https://portal.example", "portal.example:443"));
        assert!(
            !https("http://portal.example", "portal.example"),
            "a plain-HTTP page on the same name is another origin"
        );
        assert!(!https("http://portal.example:443", "portal.example:443"));
        assert!(!https("https://portal.example:8443", "portal.example"));
        assert!(!https("https://", ""));
        assert!(!is_same_origin(
            &headers(&[("origin", "https://portal:8080"), ("host", "portal:8080")]),
            false
        ));
    }

    #[test]
    fn state_changes_need_a_same_origin_browser_or_the_token() {
        assert!(proves_same_origin(
            &headers(&[("sec-fetch-site", "same-origin")]),
            "t",
            false
        ));
        assert!(!proves_same_origin(
            &headers(&[("sec-fetch-site", "cross-site"), ("x-portico-csrf", "t")]),
            "t",
            false
        ));
        assert!(proves_same_origin(
            &headers(&[("x-portico-csrf", "t")]),
            "t",
            false
        ));
        assert!(!proves_same_origin(&HeaderMap::new(), "t", false));
    }

    #[test]
    fn tokens_must_match_exactly() {
        assert!(token_matches(
            &headers(&[("x-portico-csrf", "abc")]),
            None,
            "abc"
        ));
        assert!(token_matches(&HeaderMap::new(), Some("abc"), "abc"));
        assert!(!token_matches(
            &headers(&[("x-portico-csrf", "abd")]),
            None,
            "abc"
        ));
        assert!(!token_matches(&HeaderMap::new(), None, "abc"));
    }
}
