//! The doctor's rules: one answer of one app view in, its findings out.
//!
//! Pure: no IO, no clock, no config beyond the few facts of the app it is handed ([`View`]), so the
//! same rules serve `portico doctor` now and a periodic probe in the server later. It reads what the
//! browser got from portico (status, headers, a bounded prefix of the body) and, for an upstream app,
//! the headers the upstream itself sent before portico shaped them: the framing and cookie rules are
//! about what the app sends, which portico's answer no longer shows. It must never fetch anything,
//! never decide access (the driver probes only what `rbac::decide` lets the user open) and never panic
//! on what an upstream sends: every header and byte of the body is untrusted input here.

use axum::http::{HeaderMap, StatusCode, header};
use serde::Serialize;

use crate::config::CookieMode;

/// How bad a finding is: an `error` makes `portico doctor` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The view does not work in the portal (an error answer, a URL that leaves the app).
    Error,
    /// It works behind portico today, but only because portico repairs it, or it may not work.
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// Which rule found it; stable names for programs (`--format json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The view does not answer 2xx (after redirects inside the app), or portico could not reach it.
    Status,
    /// `luigi_client` is on but the page loads no Luigi Client.
    LuigiClient,
    /// A `src`/`href`/`action` URL starting with `/` that is outside the app's prefix.
    RootAbsoluteUrl,
    /// The upstream forbids framing (`X-Frame-Options`, CSP `frame-ancestors`); portico overrides it.
    Framing,
    /// The upstream sets a cookie for the whole origin (`Path=/`, or no `Path` at the app's root).
    CookiePath,
}

/// One thing wrong with one view. `app`, `owner` and `page` are filled in by the driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub app: String,
    /// The app's `owner` in config (a team), when it names one.
    pub owner: Option<String>,
    /// The view's path on the portal (`/apps/<id>/<view>`).
    pub page: String,
    pub severity: Severity,
    pub rule: Rule,
    pub message: String,
    pub fix: String,
}

/// The facts of the app a view belongs to that the rules need.
#[derive(Debug, Clone)]
pub struct View<'a> {
    pub app: &'a str,
    pub owner: Option<&'a str>,
    /// Where the app lives on the origin, with a trailing slash (`/apps/<id>/`).
    pub prefix: &'a str,
    /// The path probed (`/apps/<id>/reports`).
    pub page: &'a str,
    /// Config's `luigi_client`: the shell waits for the page's Luigi Client handshake.
    pub luigi_client: bool,
    /// What portico does with the upstream's cookies (`cookies:`), for the cookie rule's wording.
    pub cookies: CookieMode,
    /// The upstream's URL (`None`: a static bundle), for the wording of fixes.
    pub upstream: Option<&'a str>,
}

/// What the probe got for one view.
#[derive(Debug)]
pub struct Answer<'a> {
    /// The final status the browser gets (a redirect the driver did not follow stays a 3xx).
    pub status: StatusCode,
    /// The headers the browser gets, after portico.
    pub headers: &'a HeaderMap,
    /// The headers the upstream sent, before portico shaped them (`None`: a static bundle, or the
    /// upstream never answered).
    pub upstream_headers: Option<&'a HeaderMap>,
    /// Why portico got no answer from the upstream, when it got none (unreachable, TLS, timeout).
    pub upstream_error: Option<&'a str>,
    /// At most [`super::BODY_LIMIT`] bytes of an HTML body; empty for anything else.
    pub body: &'a [u8],
    /// Whether `body` was cut at the limit (the URL scan then saw only the start of the page).
    pub truncated: bool,
}

/// Every finding for `answer` of `view`.
pub fn inspect(view: &View<'_>, answer: &Answer<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut found = |severity, rule, message: String, fix: String| {
        findings.push(Finding {
            app: view.app.to_owned(),
            owner: view.owner.map(str::to_owned),
            page: view.page.to_owned(),
            severity,
            rule,
            message,
            fix,
        });
    };
    status(view, answer, &mut found);
    if answer.status.is_success() && is_html(answer.headers) {
        let html = String::from_utf8_lossy(answer.body);
        let tags = scan(&html);
        if view.luigi_client && !answer.truncated && !tags.iter().any(Tag::loads_luigi_client) {
            found(
                Severity::Warning,
                Rule::LuigiClient,
                "`luigi_client` is on, but the page loads no Luigi Client (no <script src=…luigi-client…>; a copy bundled into the app's own scripts cannot be seen here): the shell waits for its handshake and shows the frame-timeout panel".to_owned(),
                format!(
                    "add <script src=\"/shell/luigi-client/{}/luigi-client.js\"></script> (portico serves it), or set `luigi_client: false` for this app",
                    crate::assets::LUIGI_VERSION
                ),
            );
        }
        let mut seen: Vec<&str> = Vec::new();
        for tag in &tags {
            for (attribute, url) in &tag.urls {
                if !is_root_absolute_outside(url, view.prefix) || seen.contains(url) {
                    continue;
                }
                seen.push(url);
                found(
                    Severity::Error,
                    Rule::RootAbsoluteUrl,
                    format!(
                        "<{} {attribute}=\"{url}\"> is root-absolute: in the portal it points outside the app, at {url} of the portal itself",
                        tag.name
                    ),
                    format!("make the URL relative or prefix {}", view.prefix),
                );
            }
        }
    }
    if let Some(upstream) = answer.upstream_headers {
        framing(upstream, &mut found);
        cookies(view, upstream, &mut found);
    }
    findings
}

/// The status rule: 2xx passes; a 3xx here is one the driver did not follow (outside the app, or
/// too many); anything else is an error, said with portico's reason when it got no answer.
fn status(
    view: &View<'_>,
    answer: &Answer<'_>,
    found: &mut impl FnMut(Severity, Rule, String, String),
) {
    let code = answer.status;
    if code.is_success() {
        return;
    }
    let reason = code.canonical_reason().unwrap_or("");
    let fix_upstream = || match view.upstream {
        Some(url) => format!(
            "make the upstream ({url}) answer this view with 2xx for a GET (its own logs say why it did not), or correct the page's `view`"
        ),
        None => "add the file to the app's static bundle, or correct the page's `view`".to_owned(),
    };
    if code.is_redirection() {
        let location = answer
            .headers
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("(no Location)");
        found(
            Severity::Error,
            Rule::Status,
            format!(
                "answers {} {reason} to {location}, outside {} (or after too many redirects): the frame leaves the app",
                code.as_u16(),
                view.prefix
            ),
            format!(
                "redirect within {} only (a relative Location, or one below the prefix)",
                view.prefix
            ),
        );
        return;
    }
    match answer.upstream_error {
        Some(error) => found(
            Severity::Error,
            Rule::Status,
            format!(
                "answers {} {reason}: portico got no answer from the upstream: {error}",
                code.as_u16()
            ),
            "start the upstream, or correct its URL or `tls:` in the app's config".to_owned(),
        ),
        None => found(
            Severity::Error,
            Rule::Status,
            format!("answers {} {reason}", code.as_u16()),
            fix_upstream(),
        ),
    }
}

/// The framing rule: portico always answers `X-Frame-Options: SAMEORIGIN` and `frame-ancestors
/// 'self'` for apps (`proxy::headers::frame_only_by_shell`), so an upstream's refusal never reaches
/// the browser; it is still worth saying, because the app works only behind that override.
fn framing(upstream: &HeaderMap, found: &mut impl FnMut(Severity, Rule, String, String)) {
    for value in upstream.get_all(header::X_FRAME_OPTIONS) {
        let text = String::from_utf8_lossy(value.as_bytes());
        let text = text.trim();
        if text.eq_ignore_ascii_case("sameorigin") {
            continue;
        }
        found(
            Severity::Warning,
            Rule::Framing,
            format!(
                "the upstream sends X-Frame-Options: {text}, which would keep the shell from framing it; portico must override it (it sends SAMEORIGIN), so the app works only behind portico"
            ),
            "send no X-Frame-Options (or SAMEORIGIN) on pages the shell frames".to_owned(),
        );
    }
    for value in upstream.get_all(header::CONTENT_SECURITY_POLICY) {
        let text = String::from_utf8_lossy(value.as_bytes());
        for directive in text.split(';').map(str::trim) {
            let mut words = directive.split_ascii_whitespace();
            if !words
                .next()
                .is_some_and(|name| name.eq_ignore_ascii_case("frame-ancestors"))
            {
                continue;
            }
            let sources: Vec<&str> = words.collect();
            if sources
                .iter()
                .any(|source| source.eq_ignore_ascii_case("'self'"))
            {
                continue;
            }
            found(
                Severity::Warning,
                Rule::Framing,
                format!(
                    "the upstream's Content-Security-Policy says `{directive}`, which would keep the shell from framing it; portico must override it (it sends frame-ancestors 'self'), so the app works only behind portico"
                ),
                "drop frame-ancestors from the app's CSP, or allow 'self'".to_owned(),
            );
        }
    }
}

/// The cookie rule: a cookie for `Path=/` (or without `Path` on a response at the upstream's root,
/// whose default path is then `/`) would, in a browser, be sent to every app on the portal's origin.
/// Portico never lets it get there (`cookies:` jar, scoped below the app, or dropped), so the wording
/// says what portico does instead.
fn cookies(
    view: &View<'_>,
    upstream: &HeaderMap,
    found: &mut impl FnMut(Severity, Rule, String, String),
) {
    let at_root = view.page == view.prefix;
    for value in upstream.get_all(header::SET_COOKIE) {
        let text = String::from_utf8_lossy(value.as_bytes());
        let mut parts = text.split(';').map(str::trim);
        let name = parts
            .next()
            .and_then(|pair| pair.split_once('=').map(|(name, _)| name.trim()))
            .unwrap_or("");
        let path = parts.find_map(|attribute| {
            let (key, value) = attribute.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("path")
                .then(|| value.trim())
        });
        let whole_origin = match path {
            Some(path) => path == "/" || path.is_empty(),
            None => at_root,
        };
        if !whole_origin {
            continue;
        }
        let portico_does = match view.cookies {
            CookieMode::Jar => {
                "portico keeps it in the session's cookie jar (`cookies: jar`), so no browser gets it"
            }
            CookieMode::Scoped => "portico narrows it to the app's prefix (`cookies: scoped`)",
            CookieMode::Drop => "portico drops it (`cookies: drop`)",
        };
        let spelled = if path.is_some() {
            "Path=/"
        } else {
            "no Path, at the app's root"
        };
        found(
            Severity::Warning,
            Rule::CookiePath,
            format!(
                "the upstream sets cookie `{name}` with {spelled}: in a browser it would be sent to every app on the portal's origin; {portico_does}"
            ),
            format!(
                "set the cookie's Path to the app's own path (on the upstream; portico maps it below {}), so it does not depend on portico's rewrite",
                view.prefix
            ),
        );
    }
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim().to_ascii_lowercase())
        .is_some_and(|value| {
            value.starts_with("text/html") || value.starts_with("application/xhtml+xml")
        })
}

/// Whether `url` (an attribute's value) starts with one `/` and leaves `prefix`. Portico's own files
/// under `/shell/` (Luigi Client, `view.css`, `theme.css`, `i18n.js`) are on every tenant origin by
/// design, so a page may name them root-absolute.
fn is_root_absolute_outside(url: &str, prefix: &str) -> bool {
    let url = url.trim();
    url.starts_with('/')
        && !url.starts_with("//")
        && !url.starts_with('\\')
        && !url.starts_with(prefix)
        && url != prefix.trim_end_matches('/')
        && !url.starts_with("/shell/")
}

/// One start tag and the URL attributes the rules read.
#[derive(Debug)]
struct Tag<'h> {
    /// Lower case.
    name: String,
    /// `src`, `href` or `action` (lower case) with its value.
    urls: Vec<(String, &'h str)>,
}

impl Tag<'_> {
    fn loads_luigi_client(&self) -> bool {
        self.name == "script"
            && self.urls.iter().any(|(attribute, url)| {
                attribute == "src" && url.to_ascii_lowercase().contains("luigi-client")
            })
    }
}

/// The start tags of `html` with their `src`, `href` and `action` values. A small scanner, not a
/// parser: it skips comments and the bodies of `<script>` and `<style>` (where `src=` is code, not
/// markup), reads quoted and unquoted attribute values, and never fails: junk is skipped.
fn scan(html: &str) -> Vec<Tag<'_>> {
    let bytes = html.as_bytes();
    let mut tags = Vec::new();
    let mut at = 0;
    while let Some(offset) = html.get(at..).and_then(|rest| rest.find('<')) {
        at += offset + 1;
        let rest = html.get(at..).unwrap_or("");
        if rest.starts_with("!--") {
            at += rest.find("-->").map_or(rest.len(), |end| end + 3);
            continue;
        }
        let name_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-')
            .count();
        if name_len == 0 || !rest.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) {
            continue;
        }
        let name = rest.get(..name_len).unwrap_or("").to_ascii_lowercase();
        at += name_len;
        let mut urls = Vec::new();
        // Attributes, up to the tag's `>`.
        loop {
            while bytes
                .get(at)
                .is_some_and(|b| b.is_ascii_whitespace() || *b == b'/')
            {
                at += 1;
            }
            match bytes.get(at) {
                None => break,
                Some(b'>') => {
                    at += 1;
                    break;
                }
                Some(_) => {}
            }
            let start = at;
            while bytes
                .get(at)
                .is_some_and(|b| !b.is_ascii_whitespace() && !matches!(b, b'=' | b'>' | b'/'))
            {
                at += 1;
            }
            let attribute = html.get(start..at).unwrap_or("").to_ascii_lowercase();
            while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
                at += 1;
            }
            if bytes.get(at) != Some(&b'=') {
                if at == start {
                    // A lone `/` or junk: step over it so the loop always advances.
                    at += 1;
                }
                continue;
            }
            at += 1;
            while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
                at += 1;
            }
            let value = match bytes.get(at) {
                Some(quote @ (b'"' | b'\'')) => {
                    let open = at + 1;
                    let close = html
                        .get(open..)
                        .and_then(|rest| rest.find(char::from(*quote)))
                        .map_or(html.len(), |end| open + end);
                    at = (close + 1).min(html.len());
                    html.get(open..close).unwrap_or("")
                }
                _ => {
                    let open = at;
                    while bytes
                        .get(at)
                        .is_some_and(|b| !b.is_ascii_whitespace() && *b != b'>')
                    {
                        at += 1;
                    }
                    html.get(open..at).unwrap_or("")
                }
            };
            if matches!(attribute.as_str(), "src" | "href" | "action") {
                urls.push((attribute, value));
            }
        }
        let raw_text = matches!(name.as_str(), "script" | "style");
        tags.push(Tag {
            name: name.clone(),
            urls,
        });
        if raw_text {
            // Skip to the closing tag: `src=` inside a script is code.
            let closing = format!("</{name}");
            let rest = html.get(at..).unwrap_or("");
            at += rest
                .to_ascii_lowercase()
                .find(&closing)
                .unwrap_or(rest.len());
        }
    }
    tags
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

    use super::*;

    const PAGE: &str = "/apps/cost-insights/reports";

    fn view(luigi_client: bool, cookies: CookieMode) -> View<'static> {
        View {
            app: "cost-insights",
            owner: Some("team-finops"),
            prefix: "/apps/cost-insights/",
            page: PAGE,
            luigi_client,
            cookies,
            upstream: Some("http://cost.internal:3000"),
        }
    }

    fn html_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers
    }

    const CLEAN: &str = r##"<!doctype html>
<html><head>
  <link rel="stylesheet" href="/shell/view.css">
  <link rel="stylesheet" href="app.css">
  <script src="/shell/luigi-client/2.31.0/luigi-client.js"></script>
  <script>var x = '<img src="/not-markup.png">';</script>
</head><body>
  <!-- <img src="/commented-out.png"> -->
  <a href="/apps/cost-insights/reports/2024">2024</a>
  <a href="//cdn.example/x.js">cdn</a> <a href="https://example.com/">out</a> <a href="#top">top</a>
  <form action="./save" method="post"></form>
</body></html>"##;

    fn answer<'a>(status: StatusCode, headers: &'a HeaderMap, body: &'a str) -> Answer<'a> {
        Answer {
            status,
            headers,
            upstream_headers: Some(headers),
            upstream_error: None,
            body: body.as_bytes(),
            truncated: false,
        }
    }

    #[test]
    fn a_clean_page_has_no_findings() {
        let headers = html_headers();
        let findings = inspect(
            &view(true, CookieMode::Jar),
            &answer(StatusCode::OK, &headers, CLEAN),
        );
        assert_eq!(findings, Vec::new());
    }

    #[test]
    fn an_error_status_is_an_error_with_the_upstream_in_the_fix() {
        let headers = html_headers();
        let findings = inspect(
            &view(false, CookieMode::Jar),
            &answer(StatusCode::INTERNAL_SERVER_ERROR, &headers, ""),
        );
        assert_eq!(findings.len(), 1, "{findings:?}");
        let finding = &findings[0];
        assert_eq!(
            (finding.severity, finding.rule),
            (Severity::Error, Rule::Status)
        );
        assert_eq!(finding.app, "cost-insights");
        assert_eq!(finding.owner.as_deref(), Some("team-finops"));
        assert_eq!(finding.page, PAGE);
        assert_eq!(finding.message, "answers 500 Internal Server Error");
        assert!(
            finding.fix.contains("http://cost.internal:3000"),
            "{}",
            finding.fix
        );
    }

    #[test]
    fn no_answer_from_the_upstream_says_why() {
        let headers = HeaderMap::new();
        let mut got = answer(StatusCode::BAD_GATEWAY, &headers, "");
        got.upstream_headers = None;
        got.upstream_error = Some("http://cost.internal:3000: connection refused");
        let findings = inspect(&view(false, CookieMode::Jar), &got);
        assert_eq!(findings.len(), 1);
        assert!(
            findings[0].message.contains("connection refused"),
            "{findings:?}"
        );
        assert!(findings[0].fix.starts_with("start the upstream"));
    }

    #[test]
    fn a_redirect_out_of_the_app_is_an_error() {
        let mut headers = html_headers();
        headers.insert(header::LOCATION, HeaderValue::from_static("/login"));
        let findings = inspect(
            &view(false, CookieMode::Jar),
            &answer(StatusCode::FOUND, &headers, ""),
        );
        assert_eq!(findings.len(), 1);
        assert!(
            findings[0]
                .message
                .starts_with("answers 302 Found to /login, outside /apps/cost-insights/")
        );
    }

    #[test]
    fn a_page_without_luigi_client_is_flagged_only_when_luigi_client_is_on() {
        let headers = html_headers();
        let page = "<html><head><script src=\"app.js\"></script></head></html>";
        let findings = inspect(
            &view(true, CookieMode::Jar),
            &answer(StatusCode::OK, &headers, page),
        );
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(
            (findings[0].severity, findings[0].rule),
            (Severity::Warning, Rule::LuigiClient)
        );
        assert!(
            findings[0].fix.contains("/shell/luigi-client/"),
            "{}",
            findings[0].fix
        );
        assert!(
            inspect(
                &view(false, CookieMode::Jar),
                &answer(StatusCode::OK, &headers, page)
            )
            .is_empty()
        );
        // Not HTML: nothing to look for.
        let json = HeaderMap::new();
        assert!(
            inspect(
                &view(true, CookieMode::Jar),
                &answer(StatusCode::OK, &json, page)
            )
            .is_empty()
        );
        // Cut at the limit: the script may come later, so nothing is claimed.
        let mut cut = answer(StatusCode::OK, &headers, page);
        cut.truncated = true;
        assert!(inspect(&view(true, CookieMode::Jar), &cut).is_empty());
    }

    #[test]
    fn root_absolute_urls_outside_the_app_are_errors_once_each() {
        let headers = html_headers();
        let page = r#"<html><head><script src="/static/main.js"></script><link href='/static/main.css' rel=stylesheet>
<img SRC=/logo.png><form ACTION="/save"></form><script src="/static/main.js"></script>
<a href="/apps/cost-insights">root of the app</a><a href="/apps/other/">another app</a></head></html>"#;
        let findings = inspect(
            &view(false, CookieMode::Jar),
            &answer(StatusCode::OK, &headers, page),
        );
        let urls: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(
            urls,
            [
                "<script src=\"/static/main.js\"> is root-absolute: in the portal it points outside the app, at /static/main.js of the portal itself",
                "<link href=\"/static/main.css\"> is root-absolute: in the portal it points outside the app, at /static/main.css of the portal itself",
                "<img src=\"/logo.png\"> is root-absolute: in the portal it points outside the app, at /logo.png of the portal itself",
                "<form action=\"/save\"> is root-absolute: in the portal it points outside the app, at /save of the portal itself",
                "<a href=\"/apps/other/\"> is root-absolute: in the portal it points outside the app, at /apps/other/ of the portal itself",
            ]
        );
        assert!(
            findings
                .iter()
                .all(|f| f.severity == Severity::Error && f.rule == Rule::RootAbsoluteUrl)
        );
        assert_eq!(
            findings[0].fix,
            "make the URL relative or prefix /apps/cost-insights/"
        );
    }

    #[test]
    fn framing_refusals_from_the_upstream_are_warnings() {
        let mut headers = html_headers();
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"),
        );
        let findings = inspect(
            &view(false, CookieMode::Jar),
            &answer(StatusCode::OK, &headers, ""),
        );
        assert_eq!(findings.len(), 2, "{findings:?}");
        assert!(
            findings
                .iter()
                .all(|f| f.severity == Severity::Warning && f.rule == Rule::Framing)
        );
        assert!(findings[0].message.contains("X-Frame-Options: DENY"));
        assert!(findings[0].message.contains("portico must override it"));
        assert!(findings[1].message.contains("`frame-ancestors 'none'`"));
        // What the shell may frame passes.
        let mut fine = html_headers();
        fine.insert(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("sameorigin"),
        );
        fine.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'self'"),
        );
        assert!(
            inspect(
                &view(false, CookieMode::Jar),
                &answer(StatusCode::OK, &fine, "")
            )
            .is_empty()
        );
        // Portico's own answer is not the upstream's: without upstream headers nothing is claimed.
        let mut got = answer(StatusCode::OK, &headers, "");
        got.upstream_headers = None;
        assert!(inspect(&view(false, CookieMode::Jar), &got).is_empty());
    }

    #[test]
    fn cookies_for_the_whole_origin_are_warnings_that_say_what_portico_does() {
        let mut headers = html_headers();
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_static("sid=1; Path=/; HttpOnly"),
        );
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_static("pref=2; path=/reports"),
        );
        headers.append(header::SET_COOKIE, HeaderValue::from_static("bare=3"));
        let findings = inspect(
            &view(false, CookieMode::Scoped),
            &answer(StatusCode::OK, &headers, ""),
        );
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(
            (findings[0].severity, findings[0].rule),
            (Severity::Warning, Rule::CookiePath)
        );
        assert!(findings[0].message.contains("cookie `sid` with Path=/"));
        assert!(findings[0].message.contains("`cookies: scoped`"));
        // No Path at the app's root: the default path is `/`.
        let mut root = view(false, CookieMode::Jar);
        root.page = "/apps/cost-insights/";
        let findings = inspect(&root, &answer(StatusCode::OK, &headers, ""));
        assert_eq!(findings.len(), 2, "{findings:?}");
        assert!(
            findings[1]
                .message
                .contains("cookie `bare` with no Path, at the app's root")
        );
        assert!(findings[1].message.contains("`cookies: jar`"));
    }

    #[test]
    fn the_scanner_survives_junk() {
        for junk in [
            "<",
            "<a href=",
            "<a href=\"/x",
            "<<<>>>",
            "<script src=/a.js>",
            "<!--",
            "< a href=/x>",
            "<a =/x href>",
            "é<a hreF=/ü>",
        ] {
            let headers = html_headers();
            let _ = inspect(
                &view(true, CookieMode::Jar),
                &answer(StatusCode::OK, &headers, junk),
            );
        }
        let tags = scan("é<a hreF=/ü>");
        assert_eq!(tags[0].urls, [("href".to_owned(), "/ü")]);
    }
}
