//! Cookies across the proxy: which `Cookie` an upstream gets, and which `Set-Cookie`s reach the browser.
//!
//! Portico's own cookies (the session, the login binding) never go upstream, and no upstream may set
//! one. Their names are the caller's to give ([`PortalCookies`]): this kit does not know who signs users
//! in. An app's own cookies either stay in its jar (the caller replaces `Cookie` with the jar's,
//! [`SendCookies::Replace`]) or live in the browser, scoped below the app's prefix
//! ([`scope_set_cookies`]).

use axum::http::{HeaderMap, HeaderValue, header};

/// The names of portico's own cookies, and a text every one of them contains, so that a `Cookie`
/// header without it is passed on without being parsed (the usual case).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PortalCookies {
    names: &'static [&'static str],
    mark: &'static str,
}

impl PortalCookies {
    /// The cookies `names`, all of which contain `mark`. Meant for a `const`: a name without the mark
    /// stops the build there, so the fast path can never let a portal cookie through.
    pub(crate) const fn new(names: &'static [&'static str], mark: &'static str) -> Self {
        let mut index = 0;
        while index < names.len() {
            assert!(
                contains(names[index].as_bytes(), mark.as_bytes()),
                "every portal cookie name must contain the mark"
            );
            index += 1;
        }
        PortalCookies { names, mark }
    }

    /// Whether `name` is one of portico's own cookies.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.names.contains(&name)
    }

    fn marked(&self, text: &[u8]) -> bool {
        contains(text, self.mark.as_bytes())
    }
}

const fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let mut start = 0;
    while start + needle.len() <= haystack.len() {
        let mut matched = 0;
        while matched < needle.len() && haystack[start + matched] == needle[matched] {
            matched += 1;
        }
        if matched == needle.len() {
            return true;
        }
        start += 1;
    }
    false
}

/// Which `Cookie` header an upstream gets.
#[derive(Debug)]
pub(crate) enum SendCookies<'a> {
    /// The browser's, without portico's own.
    Browser(&'a PortalCookies),
    /// This one instead of the browser's (an app's jar, which never holds a portal cookie since the
    /// jar only takes what [`remove_portal_set_cookies`] left), or none at all.
    Replace(Option<HeaderValue>),
}

/// Applies `cookies` to a request's headers.
pub(crate) fn send_cookies(headers: &mut HeaderMap, cookies: SendCookies<'_>) {
    match cookies {
        SendCookies::Browser(portal) => strip_portal_cookies(headers, portal),
        SendCookies::Replace(replacement) => {
            headers.remove(header::COOKIE);
            if let Some(value) = replacement {
                headers.insert(header::COOKIE, value);
            }
        }
    }
}

/// Removes portico's own cookies (the session and the login binding) from `Cookie`, keeping the app's.
pub(crate) fn strip_portal_cookies(headers: &mut HeaderMap, portal: &PortalCookies) {
    let marked = headers
        .get_all(header::COOKIE)
        .iter()
        .any(|value| portal.marked(value.as_bytes()));
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
            !portal.contains(name)
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
pub(crate) fn remove_portal_set_cookies(headers: &mut HeaderMap, portal: &PortalCookies) {
    let planted = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|value| portal.contains(set_cookie_name(value)));
    if !planted {
        return;
    }
    let kept: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|value| !portal.contains(set_cookie_name(value)))
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for value in kept {
        headers.append(header::SET_COOKIE, value);
    }
}

/// The cookie name a `Set-Cookie` value sets, trimmed ("" when it is not text).
fn set_cookie_name(value: &HeaderValue) -> &str {
    let bytes = value.as_bytes();
    let end = bytes
        .iter()
        .position(|&byte| byte == b'=' || byte == b';')
        .unwrap_or(bytes.len());
    std::str::from_utf8(bytes.get(..end).unwrap_or_default()).map_or("", str::trim)
}

/// Keeps an upstream's cookies inside its app: `Path` is put below `/apps/<id>/` and `Domain` dropped
/// (host-only), so an app can neither read nor overwrite another app's or the portal's cookies by path.
/// A `Path` speaks of the upstream's own paths, which start with its `base_path`: that part becomes
/// the app prefix (an upstream at `/c` setting `Path=/c/settings` gets `/apps/<id>/settings`), and a
/// path above the base (`Path=/`) covers the whole app. With `drop`, the app sets no cookies at all.
pub fn scope_set_cookies(headers: &mut HeaderMap, app_prefix: &str, base_path: &str, drop: bool) {
    if !headers.contains_key(header::SET_COOKIE) {
        return;
    }
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
        if let Some(scoped) = scoped_set_cookie(&value, app_prefix, base_path) {
            headers.append(header::SET_COOKIE, scoped);
        }
    }
}

/// One `Set-Cookie` with its `Path` moved below `app_prefix` and no `Domain`.
fn scoped_set_cookie(
    value: &HeaderValue,
    app_prefix: &str,
    base_path: &str,
) -> Option<HeaderValue> {
    let text = String::from_utf8_lossy(value.as_bytes());
    let mut parts = text.split(';').map(str::trim);
    let pair = parts.next()?;
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
    HeaderValue::from_str(&scoped.join("; ")).ok()
}
