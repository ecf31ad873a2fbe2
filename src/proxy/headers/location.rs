//! `Location` headers that point at the upstream, rewritten so the browser stays on the portal.

use axum::http::{HeaderMap, HeaderValue, header};

/// Rewrites a `Location` that points at the upstream (absolute, or root-relative on the upstream) so the
/// browser stays on the portal below `app_prefix`. Other origins are left alone.
pub fn rewrite_location(
    headers: &mut HeaderMap,
    upstream_authority: &str,
    base_path: &str,
    app_prefix: &str,
) {
    let Some(location) = headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return;
    };
    let upstream_path = if let Some(rest) = location.strip_prefix("http://") {
        match rest.split_once('/') {
            Some((authority, path)) if same_authority(authority, upstream_authority) => {
                format!("/{path}")
            }
            None if same_authority(rest, upstream_authority) => "/".to_owned(),
            _ => return,
        }
    } else if location.starts_with('/') && !location.starts_with("//") {
        location
    } else {
        return;
    };
    let inside = upstream_path
        .strip_prefix(base_path)
        .filter(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
        .unwrap_or(&upstream_path);
    let rewritten = format!(
        "{}{}",
        app_prefix.trim_end_matches('/'),
        if inside.is_empty() { "/" } else { inside }
    );
    if let Ok(value) = HeaderValue::from_str(&rewritten) {
        headers.insert(header::LOCATION, value);
    }
}

fn same_authority(a: &str, b: &str) -> bool {
    let with_port = |authority: &str| {
        if authority.contains(':') {
            authority.to_ascii_lowercase()
        } else {
            format!("{}:80", authority.to_ascii_lowercase())
        }
    };
    with_port(a) == with_port(b)
}
