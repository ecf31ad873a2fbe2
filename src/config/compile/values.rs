//! Pure parsers for single config values: URLs, origins, issuers, views, durations, sizes, counts,
//! addresses, colours, identifiers. Each returns what is wrong as a [`Bad`] (message and hint) and
//! knows nothing of where the value was written; the section rules report it. The URL, origin, issuer
//! and view parsers are security-relevant: they decide what portico connects to, what it redirects to
//! and which paths a rule covers, so each is strict and has its own tests below.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::diagnose::Cx;
use crate::config::model::{PublicOrigin, Text, Upstream};
use crate::config::raw::{Env, Named, Shown, Translated, Val};
use crate::i18n::Locale;

/// What is wrong with a value, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bad {
    pub message: String,
    pub hint: Option<String>,
}

impl Bad {
    pub(crate) fn new(message: impl Into<String>, hint: &str) -> Self {
        Bad {
            message: message.into(),
            hint: Some(hint.to_owned()),
        }
    }
}

/// The value of an optional key: `default` when it is absent, `None` when it is broken (reported).
pub(crate) fn optional<T>(
    cx: &mut Cx<'_>,
    key: &str,
    field: Option<&Val<Env>>,
    default: T,
    parse: impl FnOnce(&str) -> Result<T, Bad>,
) -> Option<T> {
    match field {
        None => Some(default),
        Some(val) => parsed(cx, key, val, parse),
    }
}

/// A text shown to people, written once or per language (`key: { en: …, de: … }`); `None` when it is
/// broken (reported at `key`). The languages are those portico speaks: a text in another would never
/// be shown, so it is an error rather than a silent no-op.
pub(crate) fn translated(cx: &mut Cx<'_>, key: &str, val: &Val<Translated>) -> Option<Text> {
    match val.get()? {
        Translated::One(Shown(text)) => Some(Text::new(text.clone())),
        Translated::PerLanguage(Named(entries)) => {
            let spoken: Vec<&str> = Locale::ALL.iter().map(|locale| locale.tag()).collect();
            let mut texts = Vec::new();
            let mut ok = true;
            for (language, text) in entries {
                let Some(tag) = language.get() else {
                    ok = false;
                    continue;
                };
                let locale = Locale::ALL.into_iter().find(|locale| locale.tag() == tag);
                match (locale, text.get()) {
                    (Some(locale), Some(Shown(text))) => texts.push((locale, text.clone())),
                    (Some(_), None) => ok = false,
                    (None, _) => {
                        ok = false;
                        cx.error_at(
                            language.mark,
                            &format!("{key}.{tag}"),
                            format!("portico has no texts in the language `{tag}`"),
                            Some(format!(
                                "write the text per language portico speaks ({}), e.g. `{key}: {{ en: Costs, de: Kosten }}`",
                                spoken.join(", ")
                            )),
                        );
                    }
                }
            }
            if !ok {
                return None;
            }
            let text = Text::per_language(texts);
            if text.is_none() {
                cx.error_at(
                    val.mark,
                    key,
                    "a text per language needs at least one language",
                    Some(format!(
                        "e.g. `{key}: {{ en: Costs, de: Kosten }}`, or one text: `{key}: Costs`"
                    )),
                );
            }
            text
        }
    }
}

/// An optional [`translated`] text: `Some(None)` when absent, `None` when broken (reported).
pub(crate) fn text_field(
    cx: &mut Cx<'_>,
    key: &str,
    value: &Option<Val<Translated>>,
) -> Option<Option<Text>> {
    match value {
        None => Some(None),
        Some(val) => translated(cx, key, val).map(Some),
    }
}

/// A written value parsed by `parse`; `None` when it is broken (reported at `key`).
pub(crate) fn parsed<T>(
    cx: &mut Cx<'_>,
    key: &str,
    val: &Val<Env>,
    parse: impl FnOnce(&str) -> Result<T, Bad>,
) -> Option<T> {
    let Env(text) = val.get()?;
    match parse(text) {
        Ok(value) => Some(value),
        Err(bad) => {
            cx.error_at(val.mark, key, bad.message, bad.hint);
            None
        }
    }
}

const DURATION_HINT: &str = "e.g. 30s, 5m, 8h";

pub(crate) fn duration(text: &str) -> Result<Duration, Bad> {
    match humantime::parse_duration(text) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => Err(Bad::new("a duration of zero is not allowed", DURATION_HINT)),
        Err(error) => Err(Bad::new(
            format!("`{text}` is not a duration: {error}"),
            DURATION_HINT,
        )),
    }
}

/// A byte size: `512`, `64KiB`, `10MiB`, `1GiB` (also KB/MB/GB as powers of 1000).
pub(crate) fn size(text: &str) -> Result<u64, Bad> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let factor = match unit.trim() {
        "" | "B" => Some(1),
        "KiB" => Some(1 << 10),
        "MiB" => Some(1 << 20),
        "GiB" => Some(1 << 30),
        "KB" => Some(1_000),
        "MB" => Some(1_000_000),
        "GB" => Some(1_000_000_000),
        _ => None,
    };
    match (digits.parse::<u64>(), factor) {
        (Ok(number), Some(factor)) if number > 0 => Ok(number.saturating_mul(factor)),
        _ => Err(Bad::new(
            format!("`{text}` is not a size"),
            "e.g. 512KiB, 10MiB, 1GiB",
        )),
    }
}

/// A positive whole number, e.g. a limit.
pub(crate) fn count(text: &str) -> Result<usize, Bad> {
    match text.trim().parse::<usize>() {
        Ok(number) if number > 0 => Ok(number),
        _ => Err(Bad::new(
            format!("`{text}` is not a positive whole number"),
            "e.g. 100",
        )),
    }
}

/// `auto` (`None`: one per core) or a worker count up to 1024.
pub(crate) fn workers(text: &str) -> Result<Option<std::num::NonZeroUsize>, Bad> {
    let text = text.trim();
    if text == "auto" {
        return Ok(None);
    }
    match text.parse::<usize>() {
        Ok(number @ 1..=1024) => Ok(std::num::NonZeroUsize::new(number)),
        _ => Err(Bad::new(
            format!("`{text}` is neither `auto` nor a number of workers from 1 to 1024"),
            "`auto` (one per CPU core) or e.g. 4",
        )),
    }
}

pub(crate) fn socket_addr(text: &str) -> Result<SocketAddr, Bad> {
    text.parse().map_err(|_| {
        Bad::new(
            format!("`{text}` is not an IP address with a port"),
            "e.g. 127.0.0.1:8080 or [::1]:8080 (host names are not resolved here)",
        )
    })
}

/// A CSS hex colour, lower-cased; it is written into a stylesheet, so nothing else is accepted.
pub(crate) fn colour(text: &str) -> Result<String, Bad> {
    let hex = text.strip_prefix('#').unwrap_or("");
    if matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(text.to_ascii_lowercase());
    }
    Err(Bad::new(
        format!("`{text}` is not a hex colour"),
        "`#rgb` or `#rrggbb`, e.g. `#0a6ed1`; quote it in YAML: \"#0a6ed1\"",
    ))
}

/// An identifier users type in URLs: lower-case letters, digits and `-`, starting with a letter.
pub(crate) fn identifier_ok(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && text.len() <= 63
}

/// Checks an identifier, reporting it at the current key as a `what` (e.g. "app id").
pub(crate) fn identifier(
    cx: &mut Cx<'_>,
    text: &str,
    mark: crate::config::Mark,
    what: &str,
) -> bool {
    let valid = identifier_ok(text);
    if !valid {
        cx.error(
            mark,
            format!("{what} `{text}` is not valid"),
            Some(
                "use lower-case letters, digits and `-`, starting with a letter (at most 63)"
                    .into(),
            ),
        );
    }
    valid
}

/// A Backstage namespace name: letters, digits, `-`, `_` and `.`, at most 63.
pub(crate) fn namespace_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// The name part of `host[:port]` (`[v6]:port` included), which is what cookies are scoped to.
pub(crate) fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// An OIDC issuer: https, or plain http on loopback only (tests); no query or fragment.
pub(crate) fn check_issuer(issuer: &str) -> Result<(), String> {
    let origin = issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"))
        .ok_or_else(|| format!("issuer `{issuer}` is not an http(s) URL"))?;
    let host = origin.split('/').next().unwrap_or("");
    if issuer.starts_with("http://") {
        let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
        let loopback = name == "localhost"
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
            || name == "[::1]";
        if !loopback {
            return Err(format!(
                "issuer `{issuer}` must use https (plain http is only accepted on loopback, for tests)"
            ));
        }
    }
    if host.is_empty() || issuer.contains(['?', '#']) {
        return Err(format!("issuer `{issuer}` is not a valid issuer URL"));
    }
    Ok(())
}

/// Parses `scheme://host[:port]` with nothing after it.
pub(crate) fn parse_origin(text: &str) -> Result<PublicOrigin, String> {
    let (https, rest) = if let Some(rest) = text.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(format!("`{text}` is not an http(s) origin"));
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return Err(format!(
            "`{text}` must be an origin only: scheme, host and optional port"
        ));
    }
    let authority = rest
        .parse::<http::uri::Authority>()
        .map_err(|_| format!("`{text}` has an invalid host or port"))?;
    check_port(&authority, text)?;
    Ok(PublicOrigin {
        https,
        origin: format!(
            "{}://{}",
            if https { "https" } else { "http" },
            rest.to_ascii_lowercase()
        ),
    })
}

/// A port, when one is written, is a number from 1 to 65535. The `http` crate parses `host:99999` or
/// `host:x` as an authority without a port, which would silently mean port 80 (or 443).
fn check_port(authority: &http::uri::Authority, text: &str) -> Result<(), String> {
    let after_host = &authority.as_str()[authority.host().len()..];
    let Some(port) = after_host.strip_prefix(':') else {
        return Ok(());
    };
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(()),
        _ => Err(format!(
            "`{text}` has an invalid port `{port}`: write a number from 1 to 65535"
        )),
    }
}

/// A node's view: a path inside the app, as canonical paths (see `proxy::path`) can be.
pub(crate) fn check_view(view: &str) -> Result<(), String> {
    if !view.starts_with('/') {
        return Err(format!("view `{view}` must start with `/`"));
    }
    // Views are matched against canonical paths (see `proxy::path`), which never hold these.
    if view.contains(['?', '#', '\\', '%', ';']) {
        return Err(format!(
            "view `{view}` may not contain `?`, `#`, `%`, `;` or `\\`"
        ));
    }
    if view
        .split('/')
        .any(|segment| segment == ".." || segment == ".")
    {
        return Err(format!(
            "view `{view}` may not contain `.` or `..` segments"
        ));
    }
    if view.split('/').any(|segment| segment.ends_with('.')) {
        return Err(format!(
            "view `{view}` may not have a segment ending in `.`"
        ));
    }
    Ok(())
}

/// Parses `http://host:port[/base]` or `https://…` (the port defaults to 80 or 443). An https upstream
/// comes back without TLS settings; `compile::upstream` adds them.
pub fn parse_upstream(url: &str) -> Result<Upstream, String> {
    let (rest, default_port) = if let Some(rest) = url.strip_prefix("http://") {
        (rest, 80)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (rest, 443)
    } else {
        return Err(format!("`{url}` is not an http:// or https:// URL"));
    };
    let (authority, base) = match rest.find('/') {
        Some(index) => (&rest[..index], &rest[index..]),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("`{url}` has no usable host"));
    }
    if base.contains(['?', '#']) {
        return Err(format!("`{url}` may not carry a query or fragment"));
    }
    let authority: http::uri::Authority = authority
        .parse()
        .map_err(|_| format!("`{url}` has an invalid host or port"))?;
    check_port(&authority, url)?;
    let authority = if authority.port().is_some() {
        authority.to_string()
    } else {
        format!("{}:{default_port}", authority.host())
    };
    Ok(Upstream {
        authority,
        base_path: base.trim_end_matches('/').to_owned(),
        url: url.to_owned(),
        tls: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_port_must_be_a_port_number() {
        for bad in [
            "http://h:99999",
            "http://h:x",
            "http://h:0",
            "http://h:",
            "http://[::1]:70000",
        ] {
            let error = parse_upstream(bad).err().unwrap_or_default();
            assert!(error.contains("invalid"), "{bad}: {error}");
        }
        for bad in ["https://a:port", "http://a:65536", "https://a:"] {
            let error = parse_origin(bad).err().unwrap_or_default();
            assert!(error.contains("invalid"), "{bad}: {error}");
        }
        assert_eq!(
            parse_upstream("http://h:8080/x").map(|u| u.authority),
            Ok("h:8080".to_owned())
        );
        assert_eq!(
            parse_upstream("http://[::1]:81").map(|u| u.authority),
            Ok("[::1]:81".to_owned())
        );
        assert_eq!(
            parse_upstream("http://h").map(|u| u.authority),
            Ok("h:80".to_owned())
        );
        assert!(parse_origin("https://portal.acme.example:8443").is_ok());
    }

    #[test]
    fn issuers_are_https_except_on_loopback() {
        assert!(check_issuer("https://idp.acme.example/realms/acme").is_ok());
        assert!(check_issuer("http://127.0.0.1:8081/realms/x").is_ok());
        assert!(check_issuer("http://localhost:8081").is_ok());
        assert!(check_issuer("http://[::1]:8081").is_ok());
        assert!(
            check_issuer("http://idp.acme.example")
                .unwrap_err()
                .contains("must use https")
        );
        assert!(
            check_issuer("ftp://idp")
                .unwrap_err()
                .contains("not an http(s) URL")
        );
        assert!(
            check_issuer("https://")
                .unwrap_err()
                .contains("not a valid issuer URL")
        );
        assert!(check_issuer("https://idp/?x=1").is_err());
        assert!(check_issuer("https://idp/#f").is_err());
    }

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        let origin = parse_origin("https://Portal.Acme.Example/").unwrap();
        assert_eq!(origin.origin, "https://portal.acme.example");
        assert!(origin.https);
        assert!(!parse_origin("http://localhost:8080").unwrap().https);
        for bad in [
            "ftp://x",
            "https://",
            "https://a/b",
            "https://a?x",
            "https://a#x",
            "https://user@a",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn upstreams_are_http_or_https_with_an_optional_base() {
        let upstream = parse_upstream("http://app.internal/base/").unwrap();
        assert_eq!(upstream.authority, "app.internal:80");
        assert_eq!(upstream.base_path, "/base");
        assert_eq!(
            parse_upstream("http://127.0.0.1:9000").unwrap().base_path,
            ""
        );
        assert_eq!(
            parse_upstream("https://a/x").map(|u| (u.authority, u.base_path)),
            Ok(("a:443".to_owned(), "/x".to_owned()))
        );
        assert!(
            parse_upstream("ftp://nope")
                .unwrap_err()
                .contains("not an http:// or https:// URL")
        );
        assert!(
            parse_upstream("http://")
                .unwrap_err()
                .contains("no usable host")
        );
        assert!(
            parse_upstream("http://u@h")
                .unwrap_err()
                .contains("no usable host")
        );
        assert!(
            parse_upstream("http://h/a?b")
                .unwrap_err()
                .contains("query or fragment")
        );
    }

    #[test]
    fn views_are_canonical_paths() {
        assert!(check_view("/reports/2024").is_ok());
        assert!(
            check_view("reports")
                .unwrap_err()
                .contains("must start with")
        );
        for bad in ["/a?b", "/a#b", "/a%2e", "/a;b", "/a\\b"] {
            assert!(
                check_view(bad).unwrap_err().contains("may not contain"),
                "{bad}"
            );
        }
        assert!(check_view("/a/../b").unwrap_err().contains("segments"));
        assert!(check_view("/a/./b").unwrap_err().contains("segments"));
        assert!(check_view("/a./b").unwrap_err().contains("ending in"));
    }

    #[test]
    fn scalars_parse_with_their_hints() {
        assert_eq!(duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(
            duration("0s").unwrap_err().message,
            "a duration of zero is not allowed"
        );
        assert_eq!(size("10MiB").unwrap(), 10 << 20);
        assert_eq!(size("2 KB").unwrap(), 2_000);
        assert!(size("0").is_err() && size("10 parsecs").is_err());
        assert_eq!(count("7").unwrap(), 7);
        assert_eq!(
            count("0").unwrap_err().message,
            "`0` is not a positive whole number"
        );
        assert!(socket_addr("[::1]:8080").is_ok());
        assert!(socket_addr("localhost:8080").is_err());
        assert_eq!(colour("#0A6ED1").unwrap(), "#0a6ed1");
        assert!(colour("blue").is_err() && colour("#12345").is_err());
        assert!(identifier_ok("cost-insights") && !identifier_ok("Cost") && !identifier_ok("1x"));
        assert!(namespace_ok("team_a.b-c") && !namespace_ok("no/slash") && !namespace_ok(""));
        assert_eq!(host_name("[::1]:8080"), "::1");
        assert_eq!(host_name("portal.acme:9090"), "portal.acme");
        assert_eq!(host_name("portal.acme"), "portal.acme");
    }
}
