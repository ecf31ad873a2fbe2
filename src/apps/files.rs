//! Dispatch to an app's static files: a directory on disk, or a bundle compiled into the binary.
//!
//! Both serve existing files as they are and fall back to `index.html` for anything without an
//! extension, so single-page apps can route client-side. A path is decoded exactly once, like the access
//! decision saw it.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use super::AppsError;
use crate::assets::{self, CachePolicy, DemoApps};
use crate::http::AppError;
use crate::proxy::ProxyError;
use crate::proxy::path::AppPath;

/// The embedded bundles are ours, so they get a strict policy of their own.
const EMBEDDED_CSP: HeaderValue = HeaderValue::from_static(
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'self'",
);

/// Files from a directory.
pub(super) async fn serve_dir(
    dir: &std::path::Path,
    path: &AppPath,
    request: Request,
) -> Result<Response, AppError> {
    let (mut parts, _body) = request.into_parts();
    // ServeDir decodes the path itself, so it gets the still-encoded form: decoded exactly once, like the
    // access decision saw it. Handing it the decoded path would decode twice (`%256f` → `o`).
    parts.uri = path
        .raw
        .parse()
        .map_err(|_| ProxyError::BadPath("the path cannot be served"))?;
    let index = dir.join("index.html");
    let wants_fallback = !path.decoded.rsplit('/').next().unwrap_or("").contains('.');
    let service = ServeDir::new(dir).append_index_html_on_directories(true);
    let request = Request::from_parts(parts, Body::empty());
    let response = if wants_fallback {
        service
            .fallback(ServeFile::new(index))
            .oneshot(request)
            .await
    } else {
        service.oneshot(request).await
    };
    let response = match response {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    };
    if response.status() == StatusCode::NOT_FOUND {
        return Err(AppsError::FileNotFound.into());
    }
    Ok(response)
}

/// The same, from a bundle compiled into the binary.
pub(super) fn serve_embedded(
    bundle: &str,
    path: &str,
    request: &Request,
) -> Result<Response, AppsError> {
    let file = path.trim_start_matches('/');
    let file = if file.is_empty() || file.ends_with('/') {
        format!("{file}index.html")
    } else {
        file.to_owned()
    };
    let headers = request.headers();
    let last = file.rsplit('/').next().unwrap_or("");
    let mut response = assets::serve::<DemoApps>(
        &format!("{bundle}/{file}"),
        headers,
        CachePolicy::Revalidate,
    )
    .or_else(|| {
        // portico's bundles are flat: the page a deep route gets (`/people/42`, an app's virtual
        // tree) asks for its files relative to that route (`/people/app.js`); they are found by name.
        (last.contains('.') && file.contains('/'))
            .then(|| {
                assets::serve::<DemoApps>(
                    &format!("{bundle}/{last}"),
                    headers,
                    CachePolicy::Revalidate,
                )
            })
            .flatten()
    })
    .or_else(|| {
        (!last.contains('.'))
            .then(|| {
                assets::serve::<DemoApps>(
                    &format!("{bundle}/index.html"),
                    headers,
                    CachePolicy::Revalidate,
                )
            })
            .flatten()
    })
    .ok_or(AppsError::FileNotFound)?;
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, EMBEDDED_CSP);
    Ok(response)
}
