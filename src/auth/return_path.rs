//! Where the browser may be sent back to after sign-in: only a same-origin, relative path, judged the
//! way the browser will resolve it. Everything else becomes `/` (no open redirect). Pure: no request,
//! no state.

/// Only a same-origin, relative path may be a return target: anything else becomes `/` (no open redirect).
///
/// The path is judged the way a browser will resolve it as a `Location`: `\\` counts as `/`, and `.`,
/// `..` and their percent-encoded spellings (`%2e`, `.%2E`, …) are removed first (WHATWG URL). Only the
/// result is checked and returned, so `/..//evil.example` or `/%2e%2e/\\evil.example` cannot come out as
/// the protocol-relative `//evil.example`, and `/x/../auth/logout` is an auth path like any other.
pub fn safe_return_path(candidate: Option<&str>) -> String {
    candidate
        .and_then(normalised_return_path)
        .unwrap_or_else(|| "/".into())
}

fn normalised_return_path(candidate: &str) -> Option<String> {
    // Browsers drop tabs and newlines from URLs, so `/\t/evil` would become `//evil`: refuse them all.
    if !candidate.starts_with('/') || candidate.chars().any(char::is_control) {
        return None;
    }
    let split = candidate.find(['?', '#']).unwrap_or(candidate.len());
    let (path, rest) = candidate.split_at(split);
    let is_dot = |segment: &str| segment == "." || segment.eq_ignore_ascii_case("%2e");
    let is_dot_dot = |segment: &str| {
        matches!(
            segment.to_ascii_lowercase().as_str(),
            ".." | ".%2e" | "%2e." | "%2e%2e"
        )
    };
    let mut segments: Vec<&str> = Vec::new();
    let mut parts = path[1..].split(['/', '\\']).peekable();
    while let Some(segment) = parts.next() {
        let last = parts.peek().is_none();
        if is_dot_dot(segment) {
            segments.pop();
            if last {
                segments.push("");
            }
        } else if is_dot(segment) {
            if last {
                segments.push("");
            }
        } else {
            segments.push(segment);
        }
    }
    let path = format!("/{}", segments.join("/"));
    // A path that starts with an empty segment is protocol-relative (`//host`), also once a later hop
    // decodes `%2F` or `%5C`.
    let decoded = percent_encoding::percent_decode_str(&path).decode_utf8_lossy();
    let off_site = |text: &str| text.starts_with("//") || text.starts_with("/\\");
    if off_site(&path) || off_site(&decoded) {
        return None;
    }
    let lower = decoded.to_ascii_lowercase();
    if lower == "/auth" || lower.starts_with("/auth/") {
        return None;
    }
    Some(format!("{path}{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_on_this_origin() {
        assert_eq!(
            safe_return_path(Some("/service-status/overview?x=1")),
            "/service-status/overview?x=1"
        );
        assert_eq!(safe_return_path(Some("https://evil.example/")), "/");
        assert_eq!(safe_return_path(Some("//evil.example/")), "/");
        assert_eq!(safe_return_path(Some("/\\evil.example")), "/");
        assert_eq!(safe_return_path(Some("/a\r\nLocation: x")), "/");
        assert_eq!(safe_return_path(Some("/auth/logout")), "/");
        assert_eq!(safe_return_path(None), "/");
    }

    #[test]
    fn return_paths_are_judged_after_removing_dot_segments() {
        for evil in [
            "/a/../../\\evil",
            "/./\\/evil.example",
            "/..//evil.example",
            "/%2e%2e//evil.example",
            "/.%2E/%2E./\\evil.example",
            "/a/..//evil.example?x=1",
            "/%2F%2Fevil.example",
            "/%5Cevil.example",
            "/x/../auth/logout",
            "/%2e/AUTH/callback",
        ] {
            assert_eq!(safe_return_path(Some(evil)), "/", "{evil}");
        }
        assert_eq!(safe_return_path(Some("/%2e%2e/")), "/");
        assert_eq!(safe_return_path(Some("/a/./b/../c?d=../e")), "/a/c?d=../e");
        assert_eq!(safe_return_path(Some("/a/b/..")), "/a/");
        assert_eq!(safe_return_path(Some("/home/tools#x")), "/home/tools#x");
        assert_eq!(safe_return_path(Some("/authors")), "/authors");
    }
}
