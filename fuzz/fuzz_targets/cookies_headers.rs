//! Cookie and header handling on the way to and from an app.
//!
//! Properties: a request naming the session cookie twice is refused by `auth::session_cookie`; after
//! `strip_session_cookie` no `Cookie` header carries any of portico's own cookies (`PORTAL_COOKIES`)
//! and `session_cookie` finds none; after `remove_session_cookie_overrides` no `Set-Cookie`
//! sets it; after `scope_set_cookies` every `Set-Cookie` has exactly one `Path`, below the app's prefix,
//! and no `Domain`; a `Location` that is rewritten lands below `/apps/<id>` (path or query next).
#![no_main]

use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use portico::auth::session_cookie;
use portico::fuzzing::{
    remove_session_cookie_overrides, rewrite_location, scope_set_cookies, strip_session_cookie,
};

use portico::auth::PORTAL_COOKIES;
const PREFIX: &str = "/apps/wiki/";

/// Cookie pairs of all `Cookie` headers, names trimmed as a server would.
fn cookie_names(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .into_owned()
                .split(';')
                .map(|p| p.split('=').next().unwrap_or("").trim().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    // Input: header values separated by 0xff; the first byte picks which function to try.
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let values: Vec<HeaderValue> = rest
        .split(|b| *b == 0xff)
        .filter_map(|v| HeaderValue::from_bytes(v).ok())
        .collect();
    let mut headers = HeaderMap::new();
    match which % 4 {
        0 => {
            for value in values {
                headers.append(header::COOKIE, value);
            }
            // Two session cookies are refused, never resolved to one of them.
            // Counted as RFC 6265 servers read a `Cookie` header: `name=value` pairs split on `;`.
            let sent: Vec<&str> = headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(';'))
                .filter_map(|pair| pair.trim().split_once('=').map(|(name, _)| name))
                .collect();
            for (https, name) in [(false, PORTAL_COOKIES[0]), (true, PORTAL_COOKIES[1])] {
                if sent.iter().filter(|sent| **sent == name).count() > 1 {
                    assert!(session_cookie(&headers, https).is_err(), "{headers:?}");
                }
            }
            strip_session_cookie(&mut headers);
            for name in cookie_names(&headers) {
                assert!(!PORTAL_COOKIES.contains(&name.as_str()), "{headers:?}");
            }
            assert!(matches!(session_cookie(&headers, false), Ok(None)));
            assert!(matches!(session_cookie(&headers, true), Ok(None)));
        }
        1 => {
            for value in values {
                headers.append(header::SET_COOKIE, value);
            }
            remove_session_cookie_overrides(&mut headers);
            for value in headers.get_all(header::SET_COOKIE) {
                let text = String::from_utf8_lossy(value.as_bytes());
                let name = text.split(['=', ';']).next().unwrap_or("").trim();
                assert!(!PORTAL_COOKIES.contains(&name), "{text}");
            }
        }
        2 => {
            for value in values {
                headers.append(header::SET_COOKIE, value);
            }
            scope_set_cookies(&mut headers, PREFIX, "/base", false);
            for value in headers.get_all(header::SET_COOKIE) {
                let text = String::from_utf8_lossy(value.as_bytes());
                let attributes: Vec<(String, String)> = text
                    .split(';')
                    .skip(1)
                    .map(|a| {
                        let (name, value) = a.split_once('=').unwrap_or((a, ""));
                        (name.trim().to_ascii_lowercase(), value.trim().to_owned())
                    })
                    .collect();
                let paths: Vec<&String> = attributes
                    .iter()
                    .filter(|(n, _)| n == "path")
                    .map(|(_, v)| v)
                    .collect();
                assert_eq!(paths.len(), 1, "{text}");
                assert!(paths[0].starts_with(PREFIX), "{text}");
                assert!(!attributes.iter().any(|(n, _)| n == "domain"), "{text}");
            }
        }
        _ => {
            let Some(location) = values.into_iter().next() else {
                return;
            };
            let before = location.clone();
            headers.insert(header::LOCATION, location);
            rewrite_location(&mut headers, "wiki.internal:8080", "/base", PREFIX);
            let after = headers.get(header::LOCATION).expect("Location stays");
            if after != before {
                let text = after.to_str().expect("portico writes ASCII");
                let inside = text.strip_prefix("/apps/wiki");
                assert!(
                    inside.is_some_and(|rest| rest.starts_with(['/', '?'])),
                    "{before:?} -> {text}"
                );
            }
        }
    }
});
