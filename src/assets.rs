//! Files compiled into the binary: Luigi core and client (pinned npm packages), the shell's bootstrap
//! script and home view, and the demo micro-app bundle.
//!
//! Serving sets content type, ETag and cache policy: versioned Luigi paths are immutable, everything else
//! revalidates. This module must not decide access; callers do that before asking for a file.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

/// The Luigi version embedded; part of every Luigi asset URL so a new version never meets a stale cache.
pub(crate) const LUIGI_VERSION: &str = "2.31.0";

/// `@luigi-project/core`: luigi.js, the CSS and the fonts it references relatively.
#[derive(RustEmbed)]
#[folder = "node_modules/@luigi-project/core/"]
#[exclude = "*.map"]
#[exclude = "package.json"]
#[exclude = "README.md"]
pub(crate) struct LuigiCore;

/// `@luigi-project/client`: the UMD build micro-apps load from portico.
#[derive(RustEmbed)]
#[folder = "node_modules/@luigi-project/client/"]
#[include = "luigi-client.js"]
pub(crate) struct LuigiClient;

/// The shell's own static files: bootstrap script, stylesheet, home view.
#[derive(RustEmbed)]
#[folder = "web/shell/"]
pub(crate) struct ShellFiles;

/// Demo micro-app bundles, one folder each, usable as `static: embedded:<folder>`.
#[derive(RustEmbed)]
#[folder = "web/demo-apps/"]
pub(crate) struct DemoApps;

impl DemoApps {
    /// Names of the embedded bundles (top-level folders).
    pub(crate) fn bundles() -> Vec<String> {
        let mut names: Vec<String> = Self::iter()
            .filter_map(|path| path.split_once('/').map(|(dir, _)| dir.to_owned()))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    pub(crate) fn has_bundle(name: &str) -> bool {
        Self::get(&format!("{name}/index.html")).is_some()
    }
}

/// How long a browser may keep a file.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CachePolicy {
    /// The URL carries a version: cache for a year, never revalidate.
    Immutable,
    /// Cache, but ask with the ETag every time (bootstrap, demo apps).
    Revalidate,
}

/// Serves one embedded file, or `None` if it does not exist.
pub(crate) fn serve<E: RustEmbed>(
    path: &str,
    request_headers: &HeaderMap,
    cache: CachePolicy,
) -> Option<Response> {
    let file = E::get(path)?;
    let etag = format!(
        "\"{}\"",
        crate::token::hex(&file.metadata.sha256_hash()[..16])
    );
    let cache_control = match cache {
        CachePolicy::Immutable => "public, max-age=31536000, immutable",
        CachePolicy::Revalidate => "no-cache",
    };
    let not_modified = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(file.data))
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(file.metadata.mimetype()) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luigi_core_files_are_embedded() {
        assert!(LuigiCore::get("luigi.js").is_some());
        assert!(LuigiCore::get("luigi.css").is_some());
        assert!(LuigiCore::iter().any(|path| path.starts_with("baseTheme/fonts/")));
        assert!(LuigiCore::get("luigi.js.map").is_none());
        assert!(LuigiClient::get("luigi-client.js").is_some());
    }

    #[test]
    fn demo_bundle_is_listed() {
        assert!(DemoApps::has_bundle("demo"));
        assert_eq!(DemoApps::bundles(), ["demo"]);
    }
}
