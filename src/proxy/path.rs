//! Normalising the path inside an app before the access decision.
//!
//! The decision and the upstream must see the same path, or a rule on `/reports` could be bypassed with
//! `/x/../reports`, `//reports` or `/rep%6frts`. So: repeated slashes collapse, dot segments and encoded
//! slashes or backslashes are refused, and the decision runs on the percent-decoded path (decoded once,
//! never twice) while the upstream receives the collapsed, still-encoded form.

/// A path inside an app, checked and in two forms.
#[derive(Debug, PartialEq, Eq)]
pub struct AppPath {
    /// What the upstream receives: starts with `/`, percent-encoding kept.
    pub raw: String,
    /// What the access decision reads: decoded once.
    pub decoded: String,
}

/// Why a path was refused (400).
#[derive(Debug, PartialEq, Eq)]
pub struct BadPath(pub &'static str);

pub fn normalise(raw_rest: &str) -> Result<AppPath, BadPath> {
    let lower = raw_rest.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") {
        return Err(BadPath("encoded slashes are not allowed in paths"));
    }
    if raw_rest.contains('\\') {
        return Err(BadPath("backslashes are not allowed in paths"));
    }
    let mut raw = String::with_capacity(raw_rest.len() + 1);
    for segment in raw_rest.split('/').filter(|segment| !segment.is_empty()) {
        raw.push('/');
        raw.push_str(segment);
    }
    if raw_rest.ends_with('/') || raw.is_empty() {
        raw.push('/');
    }
    let decoded = percent_encoding::percent_decode_str(&raw)
        .decode_utf8()
        .map_err(|_| BadPath("the path is not valid UTF-8"))?
        .into_owned();
    if decoded.contains('\0') || decoded.chars().any(char::is_control) {
        return Err(BadPath("control characters are not allowed in paths"));
    }
    if decoded
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(BadPath("`.` and `..` segments are not allowed in paths"));
    }
    Ok(AppPath { raw, decoded })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_slashes_and_keeps_encoding_for_upstream() {
        let path = normalise("//reports//2024/").unwrap();
        assert_eq!(path.raw, "/reports/2024/");
        let path = normalise("rep%6frts/a%20b").unwrap();
        assert_eq!(path.raw, "/rep%6frts/a%20b");
        assert_eq!(path.decoded, "/reports/a b");
        assert_eq!(normalise("").unwrap().raw, "/");
    }

    #[test]
    fn refuses_traversal_and_encoded_separators() {
        assert!(normalise("x/../reports").is_err());
        assert!(normalise("x/%2e%2e/reports").is_err());
        assert!(normalise("./reports").is_err());
        assert!(normalise("x%2freports").is_err());
        assert!(normalise("x%5Creports").is_err());
        assert!(normalise("x\\reports").is_err());
        assert!(normalise("a%00b").is_err());
        // Decoded once only: `%252e` is the literal text `%2e`, not a dot.
        assert_eq!(normalise("%252e%252e/x").unwrap().decoded, "/%2e%2e/x");
    }
}
