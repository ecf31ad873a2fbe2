//! Files compiled into the binary: Luigi core and client (pinned npm packages), the shell's bootstrap
//! script and home view, and the demo micro-app bundle.
//!
//! Serving sets content type, ETag and cache policy: versioned Luigi paths are immutable, everything else
//! revalidates. Luigi's compressible files also exist compressed (brotli 11 and gzip 9, made once by
//! `build.rs`, see [`Precompressed`]) and are sent that way to clients that accept it, with an ETag per
//! coding; the other files are compressed on the fly by the routes that serve them (`http::compress`).
//! This module must not decide access; callers do that before asking for a file.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::http::compress::{self, Coding};

/// The table `build.rs` writes: `(path, brotli bytes, gzip bytes)` per compressible Luigi file, by path.
mod generated {
    include!(concat!(env!("OUT_DIR"), "/precompressed.rs"));
}

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

/// Embedded files that may have copies compressed in advance.
pub(crate) trait Precompressed {
    /// The brotli and gzip bytes of `path`, if `build.rs` made them.
    fn encoded(_path: &str) -> Option<(&'static [u8], &'static [u8])> {
        None
    }
}

fn lookup(
    table: &'static [(&'static str, &'static [u8], &'static [u8])],
    path: &str,
) -> Option<(&'static [u8], &'static [u8])> {
    let index = table
        .binary_search_by(|(name, _, _)| (*name).cmp(path))
        .ok()?;
    table.get(index).map(|(_, br, gz)| (*br, *gz))
}

impl Precompressed for LuigiCore {
    fn encoded(path: &str) -> Option<(&'static [u8], &'static [u8])> {
        lookup(generated::LUIGI_CORE, path)
    }
}

impl Precompressed for LuigiClient {
    fn encoded(path: &str) -> Option<(&'static [u8], &'static [u8])> {
        lookup(generated::LUIGI_CLIENT, path)
    }
}

impl Precompressed for ShellFiles {}
impl Precompressed for DemoApps {}

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

/// Serves one embedded file, or `None` if it does not exist: compressed in advance when the client
/// accepts a coding it exists in, else as it is.
pub(crate) fn serve<E: RustEmbed + Precompressed>(
    path: &str,
    request_headers: &HeaderMap,
    cache: CachePolicy,
) -> Option<Response> {
    let file = E::get(path)?;
    let tag = crate::token::hex(&file.metadata.sha256_hash()[..16]);
    let encoded = E::encoded(path);
    // HEAD too: it answers the headers GET would.
    let chosen = encoded.and_then(|(br, gz)| match compress::negotiate(request_headers)? {
        Coding::Brotli => Some((Coding::Brotli, br)),
        Coding::Gzip => Some((Coding::Gzip, gz)),
    });
    // One entity tag per representation: the compressed bytes are other bytes.
    let etag = match chosen {
        Some((coding, _)) => format!("\"{tag}-{}\"", coding.token()),
        None => format!("\"{tag}\""),
    };
    let cache_control = match cache {
        CachePolicy::Immutable => "public, max-age=31536000, immutable",
        CachePolicy::Revalidate => "no-cache",
    };
    let mut response = if none_match(request_headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match chosen {
            Some((_, bytes)) => Response::new(Body::from(bytes)),
            None => Response::new(Body::from(file.data)),
        }
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(file.metadata.mimetype()) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if let Some((coding, _)) = chosen {
        headers.insert(header::CONTENT_ENCODING, coding.header_value());
    }
    if encoded.is_some() {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
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

/// `If-None-Match` lists `etag` (or is `*`), compared weakly as RFC 9110 §13.1.2 asks: a client that
/// got the file compressed on the fly holds `W/"…"` of the same tag.
fn none_match(request_headers: &HeaderMap, etag: &str) -> bool {
    request_headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
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
    fn luigi_files_are_precompressed_and_decode_to_the_embedded_bytes() {
        use std::io::Read;
        for (path, br, gz) in generated::LUIGI_CORE.iter().chain(generated::LUIGI_CLIENT) {
            let original = LuigiCore::get(path)
                .or_else(|| LuigiClient::get(path))
                .expect("only embedded files are precompressed")
                .data;
            let mut out = Vec::new();
            brotli::Decompressor::new(*br, 4096)
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, original.as_ref(), "{path} br");
            out.clear();
            flate2::read::GzDecoder::new(*gz)
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, original.as_ref(), "{path} gzip");
        }
        assert!(LuigiCore::encoded("luigi.js").is_some());
        assert!(LuigiCore::encoded("luigi.css").is_some());
        assert!(LuigiClient::encoded("luigi-client.js").is_some());
        assert!(LuigiCore::encoded("nope.js").is_none());
    }

    #[test]
    fn embedded_bundles_are_listed() {
        assert!(DemoApps::has_bundle("demo"));
        assert!(DemoApps::has_bundle("catalog"));
        assert_eq!(DemoApps::bundles(), ["catalog", "demo"]);
    }
}
