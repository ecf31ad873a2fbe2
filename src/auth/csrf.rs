//! Proof that a state-changing request came from the portal's own pages.
//!
//! Two independent checks: the browser's own `Sec-Fetch-Site` / `Origin` headers must say same-origin, and
//! the request must carry the session's CSRF token (header `x-portico-csrf` for fetch calls, or a form
//! field). SameSite=Lax on the cookie is a third line, not the only one.

use axum::http::{HeaderMap, header};

/// The header the shell's bootstrap and the demo apps send with state-changing fetch calls.
pub const CSRF_HEADER: &str = "x-portico-csrf";

/// True unless the browser says the request is cross-site. Requests without either header (non-browser
/// clients) pass this check; they still need the token.
pub fn is_same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin";
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    origin_host.eq_ignore_ascii_case(host)
}

/// For a state-changing request authenticated by the cookie: the browser says same-origin
/// (`Sec-Fetch-Site`, else `Origin`), or, from a client that sends neither, the CSRF token header matches.
pub fn proves_same_origin(headers: &HeaderMap, expected_token: &str) -> bool {
    let browser_said =
        headers.contains_key("sec-fetch-site") || headers.contains_key(header::ORIGIN);
    if browser_said {
        is_same_origin(headers)
    } else {
        token_matches(headers, None, expected_token)
    }
}

/// The header or form token equals the session's, compared in constant time.
pub fn token_matches(headers: &HeaderMap, form_token: Option<&str>, expected: &str) -> bool {
    let presented = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .or(form_token);
    presented.is_some_and(|token| constant_time_eq(token.as_bytes(), expected.as_bytes()))
}

/// Compares secrets without an early exit, so timing does not reveal how much matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
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
        assert!(is_same_origin(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(!is_same_origin(&headers(&[(
            "sec-fetch-site",
            "cross-site"
        )])));
        assert!(!is_same_origin(&headers(&[(
            "sec-fetch-site",
            "same-site"
        )])));
        assert!(is_same_origin(&headers(&[
            ("origin", "http://portal:8080"),
            ("host", "portal:8080")
        ])));
        assert!(!is_same_origin(&headers(&[
            ("origin", "http://evil.example"),
            ("host", "portal:8080")
        ])));
        assert!(!is_same_origin(&headers(&[
            ("origin", "null"),
            ("host", "portal:8080")
        ])));
    }

    #[test]
    fn state_changes_need_a_same_origin_browser_or_the_token() {
        assert!(proves_same_origin(
            &headers(&[("sec-fetch-site", "same-origin")]),
            "t"
        ));
        assert!(!proves_same_origin(
            &headers(&[("sec-fetch-site", "cross-site"), ("x-portico-csrf", "t")]),
            "t"
        ));
        assert!(proves_same_origin(
            &headers(&[("x-portico-csrf", "t")]),
            "t"
        ));
        assert!(!proves_same_origin(&HeaderMap::new(), "t"));
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
