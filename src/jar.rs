//! Server-side cookie jars: one per session and app, for apps in `cookies: jar` mode (the default).
//!
//! Every app is served from the portal's one origin, so the browser's cookie rules draw no line
//! between apps: `Path` is not a security boundary, and any app's script can read another app's
//! script-readable cookies (by framing `/apps/other/` same-origin) and write cookies that the browser
//! then sends to another app (cookie tossing with `Path=/apps/other/`, or a more specific path). In
//! jar mode an app's cookies never reach the browser: portico takes the upstream's `Set-Cookie`
//! headers out of the response and keeps them here, and builds the `Cookie` header the upstream
//! receives from the jar alone, ignoring whatever cookies the browser sent for that app (a browser
//! cookie is writable by every app, so it can never be trusted as this app's). The jar lives in the
//! session store next to its session, so whatever ends the session (sign-out, back-channel logout,
//! expiry, a failed refresh) ends the app's cookies too, and signing out of the portal signs out of
//! the apps' own cookie sessions.
//!
//! Why `jar` is the default: most apps use cookies only for their own server-side session or a CSRF
//! token, which need no script access; for them the jar costs nothing and closes reading, tossing and
//! cookies that outlive the portal session. An app whose script must read its cookies (a
//! double-submit XSRF cookie read by Angular, a client-side preference) opts out with
//! `cookies: scoped` (today's behaviour: `Path` moved below `/apps/<id>/`, `Domain` dropped) and
//! accepts that every other app can read and overwrite those cookies. `cookies: drop` keeps none.
//!
//! What the jar does not do: it does not separate apps' scripts. Any app's script may still send
//! requests to `/apps/<other>/` and portico attaches that app's jar cookies, as it attaches the
//! user's identity; apps on one origin trust each other like scripts on one page (README, "Trust
//! model"). This module is pure (no IO); the session store holds the jars and `proxy` wires them in.
//! It must never log a cookie value, and never let one app's cookies push out another app's.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, header};

use crate::config::AppId;

/// A single cookie larger than this (name, value and path) is refused, as browsers do at 4 KiB.
pub(crate) const MAX_COOKIE_BYTES: usize = 4096;
/// One app's jar keeps at most this many cookies; the oldest goes first when a new one arrives.
pub(crate) const MAX_APP_COOKIES: usize = 50;
/// One app's jar holds at most this many bytes; the app's own oldest cookies are evicted to fit.
pub(crate) const MAX_APP_BYTES: usize = 8 * 1024;
/// All of one session's jars together: memory grows with sessions, and is bounded per session. A
/// cookie that would exceed it is refused; one app never evicts another app's cookies.
pub(crate) const MAX_SESSION_BYTES: usize = 32 * 1024;

/// One `Set-Cookie` of an upstream response, parsed, with its expiry made absolute. `Debug` leaves
/// the value out: it is often the app's session credential.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// The path on the upstream the cookie applies to (the attribute, or the default path).
    pub path: String,
    /// Unix seconds after which the cookie is gone; `None` keeps it as long as the session.
    pub expires: Option<u64>,
}

impl std::fmt::Debug for SetCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetCookie")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl SetCookie {
    /// Parses one `Set-Cookie` value as RFC 6265 §5.2 does; `None` for what a browser would ignore.
    /// `request_path` is the path the upstream was asked for (for the default path).
    pub fn parse(text: &str, request_path: &str, now: u64) -> Option<SetCookie> {
        let mut parts = text.split(';');
        let (name, value) = parts.next()?.split_once('=')?;
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return None;
        }
        let mut path = None;
        let mut max_age = None;
        let mut expires = None;
        for attribute in parts {
            let (key, argument) = attribute.split_once('=').unwrap_or((attribute, ""));
            let argument = argument.trim();
            match key.trim().to_ascii_lowercase().as_str() {
                "path" if argument.starts_with('/') => path = Some(argument.to_owned()),
                "path" => path = None,
                "max-age" => {
                    // §5.2.2: a non-number is ignored; zero or less means "already expired".
                    if let Ok(seconds) = argument.parse::<i64>() {
                        max_age = Some(seconds);
                    }
                }
                "expires" => {
                    if let Some(at) = parse_cookie_date(argument) {
                        expires = Some(at);
                    }
                }
                // Domain, Secure, HttpOnly, SameSite: the jar is this app's only, on the server side.
                _ => {}
            }
        }
        let expires = match max_age {
            Some(seconds) if seconds <= 0 => Some(0),
            Some(seconds) => Some(now.saturating_add(seconds.unsigned_abs())),
            None => expires,
        };
        Some(SetCookie {
            name: name.to_owned(),
            value: value.to_owned(),
            path: path.unwrap_or_else(|| default_path(request_path)),
            expires,
        })
    }

    fn size(&self) -> usize {
        self.name.len() + self.value.len() + self.path.len()
    }

    fn expired(&self, now: u64) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }
}

/// The cookies portico keeps for one app in one session.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppJar {
    /// In the order they were first set (RFC 6265's creation time), oldest first.
    cookies: Vec<SetCookie>,
}

impl AppJar {
    /// The `Cookie` header for a request to `path` on the upstream: the live cookies whose path
    /// matches, longer paths first, then older first (RFC 6265 §5.4). `None` when nothing matches.
    pub fn cookie_header(&self, path: &str, now: u64) -> Option<HeaderValue> {
        let mut matching: Vec<&SetCookie> = self
            .cookies
            .iter()
            .filter(|cookie| !cookie.expired(now) && path_matches(&cookie.path, path))
            .collect();
        if matching.is_empty() {
            return None;
        }
        // A stable sort keeps creation order among cookies of equally long paths.
        matching.sort_by_key(|cookie| std::cmp::Reverse(cookie.path.len()));
        let pairs: Vec<String> = matching
            .iter()
            .map(|cookie| format!("{}={}", cookie.name, cookie.value))
            .collect();
        HeaderValue::from_str(&pairs.join("; ")).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    fn bytes(&self) -> usize {
        self.cookies.iter().map(SetCookie::size).sum()
    }
}

/// Every app's jar of one session.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionJars {
    apps: HashMap<AppId, Arc<AppJar>>,
}

impl SessionJars {
    pub(crate) fn app(&self, app: &AppId) -> Option<Arc<AppJar>> {
        self.apps.get(app).cloned()
    }

    /// Applies an app's `Set-Cookie`s in order: a new cookie replaces the one with the same name and
    /// path, an expired one deletes it, and the bounds above are kept, each refusal or eviction logged
    /// (with the cookie's name, never its value).
    pub(crate) fn apply(&mut self, app: &AppId, cookies: Vec<SetCookie>, now: u64) {
        for cookie in cookies {
            let others: usize = self
                .apps
                .iter()
                .filter(|(id, _)| *id != app)
                .map(|(_, jar)| jar.bytes())
                .sum();
            let budget = MAX_APP_BYTES.min(MAX_SESSION_BYTES.saturating_sub(others));
            let jar = Arc::make_mut(self.apps.entry(app.clone()).or_default());
            jar.cookies.retain(|kept| !kept.expired(now));
            let same = |kept: &SetCookie| kept.name == cookie.name && kept.path == cookie.path;
            if cookie.expired(now) {
                jar.cookies.retain(|kept| !same(kept));
                continue;
            }
            let size = cookie.size();
            if size > MAX_COOKIE_BYTES || size > budget {
                tracing::warn!(
                    app = app.as_str(),
                    cookie = %cookie.name,
                    size,
                    budget,
                    "cookie jar: refused a cookie larger than the app's room in this session's jar"
                );
                continue;
            }
            // Replacing keeps the original creation order, as RFC 6265 §5.3 step 11 does.
            if let Some(kept) = jar.cookies.iter_mut().find(|kept| same(kept)) {
                *kept = cookie;
            } else {
                jar.cookies.push(cookie);
            }
            while jar.cookies.len() > MAX_APP_COOKIES || jar.bytes() > budget {
                // The newest cookie fits on its own (checked above), so the loop ends before it.
                let evicted = jar.cookies.remove(0);
                tracing::warn!(
                    app = app.as_str(),
                    cookie = %evicted.name,
                    "cookie jar: evicted the app's oldest cookie to make room"
                );
            }
        }
        self.apps.retain(|_, jar| !jar.is_empty());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    /// Every app's jar, for a store that keeps jars outside this process (serialised).
    pub(crate) fn to_parts(&self) -> Vec<(&str, &AppJar)> {
        self.apps
            .iter()
            .map(|(app, jar)| (app.as_str(), jar.as_ref()))
            .collect()
    }

    /// The jars [`Self::to_parts`] gave, back (app ids were established when the jar was filled).
    pub(crate) fn from_parts(parts: Vec<(String, AppJar)>) -> Self {
        SessionJars {
            apps: parts
                .into_iter()
                .filter(|(_, jar)| !jar.is_empty())
                .map(|(app, jar)| (AppId::new(&app), Arc::new(jar)))
                .collect(),
        }
    }
}

/// Takes every `Set-Cookie` out of an upstream response and parses it, so the browser never sees one.
/// `request_path` is the path the upstream answered (for cookies without a `Path`).
pub(crate) fn take_set_cookies(
    headers: &mut HeaderMap,
    request_path: &str,
    now: u64,
) -> Vec<SetCookie> {
    let cookies = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|text| SetCookie::parse(text, request_path, now))
        .collect();
    headers.remove(header::SET_COOKIE);
    cookies
}

/// RFC 6265 §5.1.4 path-match: the same path, or a prefix ending at a `/`.
fn path_matches(cookie_path: &str, request_path: &str) -> bool {
    match request_path.strip_prefix(cookie_path) {
        Some(rest) => rest.is_empty() || cookie_path.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

/// RFC 6265 §5.1.4 default path: the request path up to, not including, its last `/`.
fn default_path(request_path: &str) -> String {
    let path = request_path.split('?').next().unwrap_or("");
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(last) => path[..last].to_owned(),
    }
}

/// `Expires` as Unix seconds: the HTTP date formats, and the Netscape form with dashes
/// (`Thu, 01-Jan-1970 00:00:10 GMT`) that servlet containers still send.
fn parse_cookie_date(text: &str) -> Option<u64> {
    let parsed = httpdate::parse_http_date(text)
        .or_else(|_| httpdate::parse_http_date(&text.replace('-', " ")))
        .ok()?;
    Some(
        parsed
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs()),
    )
}

/// RFC 7230 `tchar`: what a cookie name may consist of.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn cookie(text: &str) -> SetCookie {
        SetCookie::parse(text, "/reports/2024", NOW).unwrap()
    }

    fn header(jars: &SessionJars, app: &str, path: &str) -> Option<String> {
        jars.app(&AppId::new(app))?
            .cookie_header(path, NOW)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn parses_what_browsers_accept_and_ignores_the_rest() {
        let c = cookie("sid=abc; Path=/; HttpOnly; Secure; SameSite=Lax; Domain=x.example");
        assert_eq!((c.name.as_str(), c.value.as_str()), ("sid", "abc"));
        assert_eq!((c.path.as_str(), c.expires), ("/", None));
        assert_eq!(cookie("a=1").path, "/reports", "default path");
        assert_eq!(cookie("a=1; Path=relative").path, "/reports");
        assert_eq!(cookie("a=1; Max-Age=60").expires, Some(NOW + 60));
        assert_eq!(cookie("a=1; Max-Age=0").expires, Some(0));
        assert_eq!(cookie("a=1; Max-Age=-5").expires, Some(0));
        assert_eq!(cookie("a=1; Max-Age=soon").expires, None);
        // Max-Age wins over Expires.
        let both = cookie("a=1; Expires=Thu, 01 Jan 1970 00:00:10 GMT; Max-Age=60");
        assert_eq!(both.expires, Some(NOW + 60));
        assert_eq!(
            cookie("a=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT").expires,
            Some(1_445_412_480)
        );
        assert_eq!(
            cookie("a=1; Expires=Thu, 01-Jan-1970 00:00:10 GMT").expires,
            Some(10)
        );
        assert_eq!(cookie("a=1; Expires=someday").expires, None);
        assert_eq!(SetCookie::parse("novalue", "/", NOW), None);
        assert_eq!(SetCookie::parse("=1", "/", NOW), None);
        assert_eq!(SetCookie::parse("a b=1", "/", NOW), None);
        assert!(!format!("{:?}", cookie("sid=the-secret")).contains("the-secret"));
    }

    #[test]
    fn a_jar_sends_matching_cookies_and_replaces_deletes_and_expires_them() {
        let mut jars = SessionJars::default();
        jars.apply(
            &AppId::new("a"),
            vec![
                cookie("sid=1; Path=/"),
                cookie("deep=2; Path=/reports"),
                cookie("short=3; Path=/; Max-Age=10"),
            ],
            NOW,
        );
        assert_eq!(
            header(&jars, "a", "/reports/x").as_deref(),
            Some("deep=2; sid=1; short=3")
        );
        assert_eq!(
            header(&jars, "a", "/reportsx").as_deref(),
            Some("sid=1; short=3")
        );
        assert_eq!(header(&jars, "b", "/"), None, "another app has no jar");
        let later = jars
            .app(&AppId::new("a"))
            .unwrap()
            .cookie_header("/", NOW + 11);
        assert_eq!(later.unwrap(), "sid=1", "short expired");

        jars.apply(&AppId::new("a"), vec![cookie("sid=new; Path=/")], NOW);
        assert_eq!(header(&jars, "a", "/").as_deref(), Some("sid=new; short=3"));
        jars.apply(
            &AppId::new("a"),
            vec![
                cookie("sid=; Path=/; Max-Age=0"),
                cookie("short=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
            ],
            NOW,
        );
        assert_eq!(header(&jars, "a", "/"), None);
        jars.apply(
            &AppId::new("a"),
            vec![cookie("deep=; Path=/reports; Max-Age=0")],
            NOW,
        );
        assert!(jars.is_empty());
    }

    #[test]
    fn jars_are_bounded_per_app_and_per_session_without_one_app_evicting_another() {
        let mut jars = SessionJars::default();
        let big = "v".repeat(3000);
        // A cookie over the per-cookie limit is refused; the kept one with that name stays.
        jars.apply(&AppId::new("a"), vec![cookie("sid=1; Path=/")], NOW);
        jars.apply(
            &AppId::new("a"),
            vec![cookie(&format!("sid={}; Path=/", "x".repeat(5000)))],
            NOW,
        );
        assert_eq!(header(&jars, "a", "/").as_deref(), Some("sid=1"));
        // Past the app's byte budget the app's own oldest cookies go.
        let many: Vec<SetCookie> = (0..4)
            .map(|i| cookie(&format!("c{i}={big}; Path=/")))
            .collect();
        jars.apply(&AppId::new("a"), many, NOW);
        let sent = header(&jars, "a", "/").unwrap();
        assert!(!sent.contains("sid=1") && !sent.contains("c0=") && !sent.contains("c1="));
        assert!(sent.contains("c2=") && sent.contains("c3="));
        // Past the count limit too.
        let small: Vec<SetCookie> = (0..MAX_APP_COOKIES + 5)
            .map(|i| cookie(&format!("s{i}=1; Path=/")))
            .collect();
        jars.apply(&AppId::new("b"), small, NOW);
        let sent = header(&jars, "b", "/").unwrap();
        assert_eq!(sent.split("; ").count(), MAX_APP_COOKIES);
        assert!(!sent.contains("s0=") && sent.contains("s54="));
        // Fill the session: the app that does not fit is refused, nobody else loses a cookie.
        for app in ["c", "d", "e", "f"] {
            let fill = (0..2)
                .map(|i| cookie(&format!("f{i}={big}; Path=/")))
                .collect();
            jars.apply(&AppId::new(app), fill, NOW);
        }
        let apps = ["a", "b", "c", "d", "e", "f"];
        let before: Vec<_> = apps.iter().map(|app| header(&jars, app, "/")).collect();
        let total: usize = jars.apps.values().map(|jar| jar.bytes()).sum();
        assert!(total <= MAX_SESSION_BYTES);
        let room = MAX_SESSION_BYTES - total;
        assert!(room < MAX_COOKIE_BYTES - 10, "{room}");
        jars.apply(
            &AppId::new("late"),
            vec![cookie(&format!("late={}; Path=/", "z".repeat(room)))],
            NOW,
        );
        assert_eq!(header(&jars, "late", "/"), None, "refused");
        let after: Vec<_> = apps.iter().map(|app| header(&jars, app, "/")).collect();
        assert_eq!(before, after);
        jars.apply(&AppId::new("late"), vec![cookie("fits=1; Path=/")], NOW);
        assert_eq!(header(&jars, "late", "/").as_deref(), Some("fits=1"));
    }

    #[test]
    fn set_cookies_are_taken_out_of_the_response() {
        let mut headers = HeaderMap::new();
        headers.append(header::SET_COOKIE, HeaderValue::from_static("a=1; Path=/"));
        headers.append(header::SET_COOKIE, HeaderValue::from_static("broken"));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        let taken = take_set_cookies(&mut headers, "/x", NOW);
        assert_eq!(taken.len(), 1);
        assert!(headers.get(header::SET_COOKIE).is_none());
        assert_eq!(headers.len(), 1);
    }
}
