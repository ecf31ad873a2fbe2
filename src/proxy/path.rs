//! The canonical form of a path inside an app: what the access decision reads and what the upstream gets.
//!
//! The decision must cover every spelling an upstream framework treats as the same resource (BRIEF
//! invariant 7), or a rule on `/reports` is stepped around with `/x/../reports`, `//reports`,
//! `/rep%6frts` or `/reports;x=y`. [`normalise`] is the one place that turns a raw request path into
//! both forms, so the decision and the upstream can never disagree: repeated slashes collapse,
//! percent-escapes of unreserved characters are decoded in what is forwarded (so Express, which routes on
//! the raw path, gets the spelling that was decided on), and everything that frameworks resolve in
//! different ways is refused with 400 rather than guessed at: dot segments, `;` path parameters, encoded
//! separators, backslashes, malformed or overlong UTF-8, control characters and segments ending in a dot
//! or space. Letter case and suffixes are not changed here: `rbac::decide` compares them widely (see
//! ARCHITECTURE.md, "Canonical paths"). This module must not decode twice, and must not forward
//! anything but [`AppPath::raw`].

/// A path inside an app, checked, in its two forms. Both come from one pass over the request path.
#[derive(Debug, PartialEq, Eq)]
pub struct AppPath {
    /// What the upstream receives, the canonical spelling: starts with `/`, no empty segments, escapes of
    /// unreserved characters decoded, every other escape kept (hex in upper case).
    pub raw: String,
    /// What the access decision reads: `raw` percent-decoded, once.
    pub decoded: String,
}

/// Why a path was refused (400).
#[derive(Debug, PartialEq, Eq)]
pub struct BadPath(pub &'static str);

/// RFC 3986 unreserved characters: an escape of one of these means the character itself to every
/// framework, so it is decoded before forwarding.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|digit| u8::try_from(digit).ok())
}

/// Checks `raw_rest` (the part of the raw request path after `/apps/<id>/`) and returns its canonical
/// spelling and its decoded form.
pub fn normalise(raw_rest: &str) -> Result<AppPath, BadPath> {
    let mut raw = String::with_capacity(raw_rest.len() + 1);
    let mut decoded = String::with_capacity(raw_rest.len() + 1);
    for segment in raw_rest.split('/').filter(|segment| !segment.is_empty()) {
        // Written straight into the forwarded path, then decoded from there: no buffer per segment.
        raw.push('/');
        let start = raw.len();
        push_canonical_segment(&mut raw, segment)?;
        let text = percent_encoding::percent_decode_str(&raw[start..])
            .decode_utf8()
            // Includes overlong forms such as `%c0%ae` (a dot to a lenient decoder).
            .map_err(|_| BadPath("the path is not valid UTF-8"))?;
        if text == "." || text == ".." {
            return Err(BadPath("`.` and `..` segments are not allowed in paths"));
        }
        if text.chars().any(char::is_control) {
            return Err(BadPath("control characters are not allowed in paths"));
        }
        // Windows file systems (IIS, any static server on Windows) drop them: `/reports.` is `/reports`.
        if text.ends_with(['.', ' ']) {
            return Err(BadPath("path segments may not end with a dot or a space"));
        }
        decoded.push('/');
        decoded.push_str(&text);
    }
    if raw_rest.ends_with('/') || raw.is_empty() {
        raw.push('/');
        decoded.push('/');
    }
    Ok(AppPath { raw, decoded })
}

/// Appends one segment in its forwarded spelling to `out`, or says why the whole path is refused.
fn push_canonical_segment(out: &mut String, segment: &str) -> Result<(), BadPath> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = segment.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        match byte {
            b'%' => {
                let value = bytes
                    .get(index + 1)
                    .and_then(|&high| hex_value(high))
                    .zip(bytes.get(index + 2).and_then(|&low| hex_value(low)))
                    .map(|(high, low)| high * 16 + low)
                    .ok_or(BadPath("malformed percent-encoding in the path"))?;
                match value {
                    b'/' | b'\\' => {
                        return Err(BadPath(
                            "encoded slashes or backslashes are not allowed in paths",
                        ));
                    }
                    // Decoded, it would be a path parameter to some containers and text to others.
                    b';' => return Err(BadPath("`;` is not allowed in paths")),
                    value if is_unreserved(value) => out.push(char::from(value)),
                    value => {
                        out.push('%');
                        out.push(char::from(HEX[usize::from(value >> 4)]));
                        out.push(char::from(HEX[usize::from(value & 0xf)]));
                    }
                }
                index += 2; // the two hex digits
            }
            b'\\' => return Err(BadPath("backslashes are not allowed in paths")),
            // Servlet containers and Spring strip `;…` path parameters before they route, Express does
            // not: refused rather than stripped, because containers disagree on where a parameter ends
            // (and on `%3B`), and an app that really used matrix parameters would get a different path
            // from the one it was sent without noticing.
            b';' => {
                return Err(BadPath("`;` path parameters are not allowed in paths"));
            }
            byte if byte.is_ascii_control() || !byte.is_ascii() => {
                return Err(BadPath("the path holds characters that must be encoded"));
            }
            byte => out.push(char::from(byte)),
        }
        index += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_slashes_and_decodes_unreserved_escapes_for_upstream() {
        let path = normalise("//reports//2024/").unwrap();
        assert_eq!(path.raw, "/reports/2024/");
        let path = normalise("rep%6frts/a%20b/%7e%2D%2e%5F").unwrap();
        assert_eq!(path.raw, "/reports/a%20b/~-._");
        assert_eq!(path.decoded, "/reports/a b/~-._");
        let path = normalise("caf%c3%a9/%3f%23%25%2b").unwrap();
        assert_eq!(
            path.raw, "/caf%C3%A9/%3F%23%25%2B",
            "reserved and non-ASCII stay escaped"
        );
        assert_eq!(path.decoded, "/café/?#%+");
        assert_eq!(normalise("").unwrap().raw, "/");
        assert_eq!(
            normalise("Reports").unwrap().raw,
            "/Reports",
            "case is kept"
        );
    }

    #[test]
    fn the_forwarded_spelling_is_its_own_canonical_form() {
        for spelling in ["rep%6frts//a%20b/", "%41%2e%42", "x/caf%c3%a9/%25", "a/b/c"] {
            let once = normalise(spelling).unwrap();
            let twice = normalise(once.raw.trim_start_matches('/')).unwrap();
            assert_eq!(once, twice, "{spelling}");
        }
    }

    #[test]
    fn refuses_traversal_and_encoded_separators() {
        for bad in [
            "x/../reports",
            "x/%2e%2e/reports",
            "x/.%2E/reports",
            "./reports",
            "x%2freports",
            "x%5Creports",
            "x\\reports",
            "a%00b",
            "a%0ab",
        ] {
            assert!(normalise(bad).is_err(), "{bad}");
        }
        // Decoded once only: `%252e` is the literal text `%2e`, not a dot, and stays so upstream.
        let path = normalise("%252e%252e/x").unwrap();
        assert_eq!(path.decoded, "/%2e%2e/x");
        assert_eq!(path.raw, "/%252e%252e/x");
    }

    #[test]
    fn refuses_what_frameworks_resolve_differently() {
        for bad in [
            "reports;x=y",
            "reports;/2024",
            "admin;jsessionid=1/users",
            "reports%3bx",
            "reports%3B",
            "reports.",
            "reports%2e",
            "reports./2024",
            "reports%20",
            "rep%c0%aerts",
            "%c0%ae%c0%ae/x",
            "%e0%80%ae",
            "reports%",
            "reports%4",
            "reports%zz",
            "caf\u{e9}",
        ] {
            assert!(normalise(bad).is_err(), "{bad}");
        }
    }
}

/// The property of BRIEF invariant 7: for any path and any policy, every equivalent spelling of the path
/// (letter case, `;` parameters, `//`, escapes of unreserved characters, a trailing slash) is either
/// refused as a whole or normalises to a path that gets the same decision as the canonical one.
#[cfg(test)]
mod equivalent_spellings {
    use proptest::prelude::*;

    use super::normalise;
    use crate::rbac::{
        AccessPolicy, AccessRule, PathCase, PathGlob, RequestRule, RoleName, Roles, decide,
    };

    const WORDS: &[&str] = &["reports", "admin", "Users", "a", "x.json", "b-c", "~t_"];

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => prop::sample::select(WORDS).prop_map(str::to_owned),
            1 => "[a-zA-Z0-9_~-]{1,5}(\\.[a-z]{1,3})?",
        ]
    }

    fn rule(roles: &[&str]) -> AccessRule {
        AccessRule {
            roles: roles.iter().map(|r| RoleName((*r).to_owned())).collect(),
        }
    }

    fn policy() -> impl Strategy<Value = AccessPolicy> {
        let prefix = prop::collection::vec(word(), 1..3).prop_map(|w| format!("/{}", w.join("/")));
        let glob_atom = prop_oneof![
            3 => word(),
            1 => Just("*".to_owned()),
            1 => Just("**".to_owned()),
        ];
        let glob = prop::collection::vec(glob_atom, 1..4).prop_map(|a| format!("/{}", a.join("/")));
        let methods = prop::sample::subsequence(vec!["GET", "DELETE"], 0..=2);
        let request = (methods, glob).prop_map(|(methods, glob)| RequestRule {
            methods: methods
                .into_iter()
                .map(|m| http::Method::from_bytes(m.as_bytes()).unwrap())
                .collect(),
            path: PathGlob::new(&glob),
            rule: rule(&["admin"]),
        });
        (
            prop::collection::vec(prefix, 0..3),
            prop::collection::vec(request, 0..3),
            any::<bool>(),
        )
            .prop_map(|(prefixes, requests, sensitive)| AccessPolicy {
                app: rule(&["developer", "admin"]),
                paths: prefixes
                    .into_iter()
                    .map(|p| (p, rule(&["admin"])))
                    .collect(),
                requests,
                case: if sensitive {
                    PathCase::Sensitive
                } else {
                    PathCase::Insensitive
                },
            })
    }

    /// How one character, one segment and one separator are respelled.
    #[derive(Debug, Clone)]
    struct Respelling {
        /// Per character: 0 keep, 1 flip case, 2 `%xx`, 3 `%XX`.
        chars: Vec<u8>,
        /// Per segment: whether `;x=y` is appended.
        params: Vec<bool>,
        /// Per separator: how many slashes.
        slashes: Vec<usize>,
        trailing_slash: bool,
    }

    fn respelling() -> impl Strategy<Value = Respelling> {
        (
            prop::collection::vec(0u8..4, 64),
            prop::collection::vec(prop::bool::weighted(0.1), 8),
            prop::collection::vec(1usize..4, 8),
            any::<bool>(),
        )
            .prop_map(|(chars, params, slashes, trailing_slash)| Respelling {
                chars,
                params,
                slashes,
                trailing_slash,
            })
    }

    /// `segments` spelled as `how` says; also whether the spelling holds a `;` parameter.
    fn spell(segments: &[String], how: &Respelling, case: PathCase) -> (String, bool) {
        let mut out = String::new();
        let mut params = false;
        let mut index = 0;
        for (number, segment) in segments.iter().enumerate() {
            out.push_str(&"/".repeat(how.slashes[number % how.slashes.len()]));
            for c in segment.chars() {
                let choice = how.chars[index % how.chars.len()];
                index += 1;
                match choice {
                    1 if case == PathCase::Insensitive && c.is_ascii_lowercase() => {
                        out.push(c.to_ascii_uppercase())
                    }
                    1 if case == PathCase::Insensitive => out.push(c.to_ascii_lowercase()),
                    2 => out.push_str(&format!("%{:02x}", u32::from(c))),
                    3 => out.push_str(&format!("%{:02X}", u32::from(c))),
                    _ => out.push(c),
                }
            }
            if how.params[number % how.params.len()] {
                out.push_str(";x=y");
                params = true;
            }
        }
        if how.trailing_slash {
            out.push('/');
        }
        (out, params)
    }

    proptest! {
        #[test]
        fn every_spelling_gets_the_decision_of_the_canonical_path(
            segments in prop::collection::vec(word(), 0..5),
            policy in policy(),
            how in respelling(),
            admin in any::<bool>(),
            method in prop::sample::select(vec!["GET", "DELETE", "POST"]),
        ) {
            let roles = Roles(
                [if admin { "admin" } else { "developer" }]
                    .iter()
                    .map(|r| RoleName((*r).to_owned()))
                    .collect(),
            );
            let canonical = normalise(&segments.join("/")).unwrap();
            let method = http::Method::from_bytes(method.as_bytes()).unwrap();
            let expected = decide(&roles, &policy, &method, &canonical.decoded);
            let (spelling, has_params) = spell(&segments, &how, policy.case);
            match normalise(spelling.trim_start_matches('/')) {
                Err(_) => prop_assert!(has_params, "{spelling} refused without a parameter"),
                Ok(path) => {
                    prop_assert!(!has_params, "{spelling} passed with a parameter");
                    prop_assert_eq!(
                        &decide(&roles, &policy, &method, &path.decoded),
                        &expected,
                        "{} vs {}", spelling, canonical.decoded
                    );
                    // The forwarded spelling is canonical: it normalises to itself.
                    let again = normalise(path.raw.trim_start_matches('/')).unwrap();
                    prop_assert_eq!(&again, &path);
                    // And it differs from the canonical path at most in letter case and a final slash.
                    let fold = |p: &str| policy.case.fold(p.trim_end_matches('/')).into_owned();
                    prop_assert_eq!(fold(&path.raw), fold(&canonical.raw));
                }
            }
        }
    }
}
