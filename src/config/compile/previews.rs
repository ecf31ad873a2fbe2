//! Rules for a tenant's `previews:` (preview overrides): the origins a developer may point one app at
//! for their own session, how long an override lasts, and who may start one.
//!
//! The patterns are the security boundary of the feature: a preview receives the user's requests and
//! identity for that app, so a pattern may only widen a host by whole labels in front of a fixed
//! suffix of at least two labels (`*.preview.internal`, never `*.internal` or `*`), and nothing else in
//! it is a wildcard. A pattern with a path, query, credentials or a half-wild label is refused, not
//! read loosely.

use std::sync::Arc;

use super::access::rule_roles;
use super::{TenantScope, upstream, values};
use crate::config::diagnose::Cx;
use crate::config::model::{PreviewHost, PreviewPattern, PreviewSettings};
use crate::config::raw::{Env, RawPreviews, Val};

const PATTERN_HINT: &str = "an origin a preview lives at, e.g. `http://*.preview.internal`, `https://pr-7.acme.example` or `http://127.0.0.1:*`";

/// `previews:`: `Some(None)` when absent, `None` when broken (every problem reported).
pub(super) fn previews(
    raw: Option<&Val<RawPreviews>>,
    cx: &mut Cx<'_>,
    scope: &TenantScope<'_>,
) -> Option<Option<PreviewSettings>> {
    let Some(val) = raw else {
        return Some(None);
    };
    let raw = val.get()?;
    let upstreams = match &raw.upstreams {
        None => {
            cx.missing(
                val.mark,
                "upstreams",
                "the origins previews may live at, e.g. `upstreams: [\"http://*.preview.internal\"]`",
            );
            None
        }
        Some(list) => patterns(list, cx),
    };
    let lifetime = values::optional(
        cx,
        "lifetime",
        raw.lifetime.as_ref(),
        PreviewSettings::DEFAULT_LIFETIME,
        values::duration,
    );
    let roles = match &raw.roles {
        None => Some(None),
        Some(_) => rule_roles(&raw.roles, val.mark, cx, scope).map(Some),
    };
    Some(Some(PreviewSettings {
        upstreams: upstreams?,
        lifetime: lifetime?,
        roles: roles?,
        tls: Arc::new(upstream::system_tls()),
    }))
}

/// `upstreams:`, each entry checked; `None` if any is broken or the list is empty (reported).
fn patterns(list: &Val<crate::config::raw::Texts>, cx: &mut Cx<'_>) -> Option<Vec<PreviewPattern>> {
    let items = list.get()?;
    let mut patterns = Vec::new();
    let mut ok = true;
    for (index, item) in items.0.iter().enumerate() {
        let Some(Env(text)) = item.get() else {
            ok = false;
            continue;
        };
        match preview_pattern(text) {
            Ok(pattern) => patterns.push(pattern),
            Err(bad) => {
                cx.error_at(
                    item.mark,
                    &format!("upstreams[{index}]"),
                    bad.message,
                    bad.hint,
                );
                ok = false;
            }
        }
    }
    if ok && patterns.is_empty() {
        cx.error_at(
            list.mark,
            "upstreams",
            "previews need at least one allowed origin",
            Some(PATTERN_HINT.to_owned()),
        );
        return None;
    }
    ok.then_some(patterns)
}

/// One written pattern: `scheme://host[:port|:*]`, the host exact or `*.` and a suffix of two or more
/// labels.
pub(crate) fn preview_pattern(text: &str) -> Result<PreviewPattern, values::Bad> {
    let bad = |message: String| values::Bad::new(message, PATTERN_HINT);
    let (https, rest) = if let Some(rest) = text.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(bad(format!(
            "`{text}` is not an http:// or https:// origin"
        )));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#']) {
        return Err(bad(format!(
            "`{text}` has a path, query or fragment; a pattern names an origin only (the preview's own URL may carry a path)"
        )));
    }
    if rest.contains('@') {
        return Err(bad(format!("`{text}` carries credentials")));
    }
    // An IPv6 literal keeps its colons inside brackets; the port follows the last `:` outside.
    let (host, port) = match rest.rfind(':') {
        Some(at) if !rest[at..].contains(']') => (&rest[..at], Some(&rest[at + 1..])),
        _ => (rest, None),
    };
    let port = match port {
        None => Some(if https { 443 } else { 80 }),
        Some("*") => None,
        Some(digits) => match digits.parse::<u16>() {
            Ok(port) if port != 0 => Some(port),
            _ => {
                return Err(bad(format!(
                    "`{text}` has no valid port (a number, or `*`)"
                )));
            }
        },
    };
    let host = host.to_ascii_lowercase();
    let host = if let Some(suffix) = host.strip_prefix("*.") {
        let labels: Vec<&str> = suffix.split('.').collect();
        if labels.len() < 2 || labels.iter().any(|label| !valid_label(label)) {
            return Err(bad(format!(
                "`{text}` is too wide: `*.` must stand before a suffix of at least two labels, e.g. `*.preview.internal`"
            )));
        }
        PreviewHost::Below(suffix.to_owned())
    } else if host.contains('*') {
        return Err(bad(format!(
            "`{text}`: `*` may only stand for whole labels at the front (`*.preview.internal`) or for the port (`:*`)"
        )));
    } else {
        let authority = format!("{host}:1");
        match authority.parse::<http::uri::Authority>() {
            Ok(parsed) if !host.is_empty() && parsed.host() == host => {}
            _ => return Err(bad(format!("`{text}` has no valid host"))),
        }
        PreviewHost::Exact(host)
    };
    Ok(PreviewPattern {
        https,
        host,
        port,
        written: text.to_owned(),
    })
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::super::testing::{BASE, table};
    use super::preview_pattern;
    use crate::config::MemorySource;
    use crate::config::compile::values::parse_upstream;

    fn allows(pattern: &str, url: &str) -> bool {
        preview_pattern(pattern)
            .unwrap()
            .matches(&parse_upstream(url).unwrap())
    }

    #[test]
    fn patterns_cover_whole_labels_and_nothing_else() {
        let wild = "http://*.preview.internal";
        assert!(allows(wild, "http://pr-12.preview.internal"));
        assert!(allows(wild, "http://pr-12.cost.preview.internal/base"));
        assert!(allows(wild, "http://PR-12.Preview.Internal"));
        assert!(!allows(wild, "http://preview.internal"));
        assert!(!allows(wild, "http://evilpreview.internal"));
        assert!(!allows(wild, "http://pr-12.preview.internal.evil.example"));
        assert!(!allows(wild, "https://pr-12.preview.internal"));
        assert!(!allows(wild, "http://pr-12.preview.internal:8080"));
        assert!(allows(
            "http://*.preview.internal:*",
            "http://pr-1.preview.internal:8080"
        ));
        assert!(allows("http://127.0.0.1:*", "http://127.0.0.1:4000/x"));
        assert!(!allows("http://127.0.0.1:*", "http://127.0.0.2:4000"));
        assert!(!allows("http://127.0.0.1:*", "https://127.0.0.1:4000"));
        assert!(allows(
            "https://pr-7.acme.example",
            "https://pr-7.acme.example:443/"
        ));
        assert!(!allows(
            "https://pr-7.acme.example",
            "https://pr-7.acme.example:8443"
        ));
        assert!(allows("http://[::1]:*", "http://[::1]:9000"));
        for refused in [
            "http://*",
            "http://*.internal",
            "http://pr-*.preview.internal",
            "http://*.*.internal",
            "http://*.preview.internal/path",
            "http://user@*.preview.internal",
            "ftp://*.preview.internal",
            "http://host:0",
            "http://host:port",
            "http://",
            "http://exa mple.internal",
        ] {
            assert!(preview_pattern(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn preview_rules() {
        let tenant = |extra: &str| format!("{BASE}{extra}");
        let cases = [
            (
                "previews for developers",
                tenant(
                    "    previews: { upstreams: [\"http://*.preview.internal\", \"http://127.0.0.1:*\"], lifetime: 2h, roles: [developer] }\n",
                ),
            ),
            ("no upstreams", tenant("    previews: { lifetime: 2h }\n")),
            ("an empty list", tenant("    previews: { upstreams: [] }\n")),
            (
                "too wide a pattern, and one with a path",
                tenant(
                    "    previews: { upstreams: [\"http://*.internal\", \"http://pr.preview.internal/x\"] }\n",
                ),
            ),
            (
                "an unknown role and a bad lifetime",
                tenant(
                    "    previews: { upstreams: [\"http://*.preview.internal\"], lifetime: long, roles: [develper] }\n",
                ),
            ),
        ];
        insta::assert_snapshot!(table(&MemorySource::default(), &cases));
    }
}
