//! Response headers that reach beyond the app's own page: who may frame it, and headers whose effect
//! browsers apply to the whole origin that every app shares.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

/// An app may be framed by the shell on this origin and by nothing else, whatever the upstream said:
/// `X-Frame-Options: SAMEORIGIN` and CSP `frame-ancestors 'self'` (replacing the upstream's directive).
pub(crate) fn frame_only_by_shell(headers: &mut HeaderMap) {
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    let policies: Vec<String> = headers
        .get_all(header::CONTENT_SECURITY_POLICY)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect();
    headers.remove(header::CONTENT_SECURITY_POLICY);
    if policies.is_empty() {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'self'"),
        );
        return;
    }
    for policy in policies {
        let mut directives: Vec<&str> = policy
            .split(';')
            .map(str::trim)
            .filter(|d| !d.is_empty() && !d.to_ascii_lowercase().starts_with("frame-ancestors"))
            .collect();
        directives.push("frame-ancestors 'self'");
        if let Ok(value) = HeaderValue::from_str(&directives.join("; ")) {
            headers.append(header::CONTENT_SECURITY_POLICY, value);
        }
    }
}

/// Response headers whose effect browsers apply to the whole origin, which every app shares: an app
/// that could send them would act beyond its own page and outlive it. `Service-Worker-Allowed: /`
/// would let its service worker control the shell, `/auth/*` and every other app, across sign-outs
/// (without it a worker's scope stays below the app's own path). `Clear-Site-Data` has no path: its
/// `"cookies"` signs the user out of the portal, its `"storage"` wipes every app's storage.
/// `Strict-Transport-Security` and `Alt-Svc` decide how browsers reach the whole host (HSTS with
/// `includeSubDomains` also its siblings, `preload` for good): the platform's decision, not an app's
/// (Backstage's own helmet defaults send HSTS with `includeSubDomains`).
const ORIGIN_WIDE: [HeaderName; 4] = [
    HeaderName::from_static("service-worker-allowed"),
    HeaderName::from_static("clear-site-data"),
    header::STRICT_TRANSPORT_SECURITY,
    header::ALT_SVC,
];

/// Removes the [`ORIGIN_WIDE`] headers from an upstream's response.
pub(crate) fn remove_origin_wide_headers(headers: &mut HeaderMap) {
    super::remove_where(headers, |name| ORIGIN_WIDE.contains(name));
}
