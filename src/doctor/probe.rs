//! One probe of one app view through portico's real router, in-process: what `portico doctor` and
//! the server's health watch (`doctor::watch`) both send and read.
//!
//! A probe is a GET navigation as the shell's frame would make it (the frame's `Sec-Fetch-*`
//! headers, the session cookie of a synthetic user whose session the caller put into its own private
//! store), sent with `tower::ServiceExt::oneshot` to a router the caller built; it follows redirects
//! only while they stay below the app's prefix, at most [`MAX_REDIRECTS`], and reads at most
//! [`BODY_LIMIT`] of an HTML answer. It asks for the upstream's own headers with
//! `apps::ShowUpstreamHeaders`, which only an in-process caller can set (request extensions do not
//! come over the wire), and reads why an upstream gave no answer from the error report portico's
//! error page was made from.
//!
//! What it must not do: reach anything but the router it is handed (no socket, no listener), send
//! anything but GETs, or buffer a body whole.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::apps::{ShowUpstreamHeaders, UpstreamHeaders};
use crate::auth::cookies::session_set_cookie;
use crate::auth::session::{Session, SessionId, User};
use crate::config::{App, TenantId};
use crate::http::error::ErrorReport;

/// How much of an HTML body the rules read (1 MiB); the rest of a larger page is not scanned.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// How many redirects below the app's own prefix a probe follows.
pub const MAX_REDIRECTS: usize = 5;

/// A session for a synthetic `user` of `tenant`, for the caller's own private store (never a shared
/// one: whoever could read it there could present it).
pub(crate) fn synthetic_session(tenant: &TenantId, user: User) -> (Session, SessionId) {
    let session = Session::new(tenant, user);
    let id = session.id.clone();
    (session, id)
}

/// What one probe got, after following redirects inside the app.
pub(crate) struct Got {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub truncated: bool,
    /// The upstream's own headers (an upstream app that answered).
    pub upstream_headers: Option<HeaderMap>,
    /// Why there was no answer (portico's report, with the upstream's address: for logs, never for
    /// browsers), or why the probe itself failed (a body that never ended), if either.
    pub error: Option<String>,
    /// The stable code of portico's error when the upstream gave no answer (`upstream_unreachable`,
    /// `upstream_tls`, `upstream_timeout`, `upstream_failed`), or the probe's own (`probe_timeout`,
    /// `bad_path`).
    pub error_code: Option<&'static str>,
}

impl Got {
    fn failed(status: StatusCode, error: String, code: &'static str) -> Got {
        Got {
            status,
            headers: HeaderMap::new(),
            body: Vec::new(),
            truncated: false,
            upstream_headers: None,
            error: Some(error),
            error_code: Some(code),
        }
    }
}

/// Sends probes as one synthetic user to one tenant's router.
pub(crate) struct Probe {
    router: axum::Router,
    host: HeaderValue,
    cookie: HeaderValue,
    /// Bounds each exchange and each body read (portico's own timeouts usually answer first).
    deadline: Duration,
    user_agent: HeaderValue,
}

impl Probe {
    /// Probes through `router` to the tenant at `host` as the holder of `session` (in the router's
    /// own store); `https`: the tenant's cookies are `__Host-` ones.
    pub(crate) fn new(
        router: axum::Router,
        host: &str,
        https: bool,
        session: &SessionId,
        deadline: Duration,
        user_agent: &'static str,
    ) -> Probe {
        Probe {
            router,
            host: HeaderValue::from_str(host).unwrap_or_else(|_| HeaderValue::from_static("")),
            cookie: cookie_pair(&session_set_cookie(session, https)),
            deadline,
            user_agent: HeaderValue::from_static(user_agent),
        }
    }

    /// The app's prefix on the origin (`/apps/<id>/`), which is also its entry view.
    pub(crate) fn prefix(app: &App) -> String {
        format!("{}/", app.base())
    }

    /// GETs `page` as the shell's frame would, following redirects while they stay below `prefix`.
    pub(crate) async fn probe(&self, page: &str, prefix: &str) -> Got {
        let mut target = page.to_owned();
        let mut hops = 0;
        loop {
            let Some(request) = self.request(&target) else {
                return Got::failed(
                    StatusCode::BAD_REQUEST,
                    format!("`{target}` is not a path a request can carry"),
                    "bad_path",
                );
            };
            let response =
                match tokio::time::timeout(self.deadline, self.router.clone().oneshot(request))
                    .await
                {
                    Ok(Ok(response)) => response,
                    Ok(Err(never)) => match never {},
                    Err(_) => {
                        return Got::failed(
                            StatusCode::GATEWAY_TIMEOUT,
                            format!("no answer within {:?}", self.deadline),
                            "probe_timeout",
                        );
                    }
                };
            let upstream_headers = response
                .extensions()
                .get::<UpstreamHeaders>()
                .map(|seen| seen.0.clone());
            // No answer from the upstream: the error page's report says why (refused, TLS, timeout).
            let upstream_error = upstream_failure(&response);
            let status = response.status();
            if status.is_redirection() && hops < MAX_REDIRECTS {
                let next = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|location| resolve(&target, location))
                    .filter(|next| next.starts_with(prefix));
                if let Some(next) = next {
                    target = next;
                    hops += 1;
                    continue;
                }
            }
            let (parts, body) = response.into_parts();
            let html =
                is_html(&parts.headers) && !parts.headers.contains_key(header::CONTENT_ENCODING);
            let (body, truncated, error) = if html && status.is_success() {
                match tokio::time::timeout(self.deadline, read_prefix(body)).await {
                    Ok(Ok((body, truncated))) => (body, truncated, None),
                    Ok(Err(error)) => (
                        Vec::new(),
                        true,
                        Some(format!("the body broke off: {error}")),
                    ),
                    Err(_) => (
                        Vec::new(),
                        true,
                        Some("the body did not end in time".to_owned()),
                    ),
                }
            } else {
                // Dropped unread: nothing of it is needed.
                (Vec::new(), false, None)
            };
            let (upstream_error, error_code) = match upstream_error {
                Some((detail, code)) => (Some(detail), Some(code)),
                None => (None, None),
            };
            return Got {
                status: parts.status,
                headers: parts.headers,
                body,
                truncated,
                upstream_headers,
                error: error.or(upstream_error),
                error_code,
            };
        }
    }

    fn request(&self, path: &str) -> Option<Request<Body>> {
        let mut request = Request::builder()
            .method(Method::GET)
            .uri(path)
            .body(Body::empty())
            .ok()?;
        let headers = request.headers_mut();
        headers.insert(header::HOST, self.host.clone());
        headers.insert(header::COOKIE, self.cookie.clone());
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
        );
        // What a browser sends for the shell's frame of an app.
        headers.insert("sec-fetch-dest", HeaderValue::from_static("iframe"));
        headers.insert("sec-fetch-mode", HeaderValue::from_static("navigate"));
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        headers.insert(header::USER_AGENT, self.user_agent.clone());
        let extensions = request.extensions_mut();
        extensions.insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 0))));
        extensions.insert(ShowUpstreamHeaders);
        Some(request)
    }
}

/// `name=value` of a `Set-Cookie`, as a `Cookie` header sends it.
fn cookie_pair(set_cookie: &HeaderValue) -> HeaderValue {
    let text = String::from_utf8_lossy(set_cookie.as_bytes());
    let pair = text.split(';').next().unwrap_or("").trim().to_owned();
    HeaderValue::from_str(&pair).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Why portico got no answer from an app's upstream, and the error's code, from the report its error
/// page was made from (502, 503, 504 only: another error is the app's own answer or portico's
/// decision).
fn upstream_failure(response: &axum::response::Response) -> Option<(String, &'static str)> {
    let report = response.extensions().get::<ErrorReport>()?;
    let no_answer = matches!(report.status.as_u16(), 502..=504);
    no_answer.then(|| {
        let detail = report
            .detail
            .clone()
            .unwrap_or_else(|| report.message.clone());
        (detail, report.code)
    })
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim().to_ascii_lowercase().starts_with("text/html"))
}

/// At most [`BODY_LIMIT`] bytes of `body`, and whether there was more.
async fn read_prefix(mut body: Body) -> Result<(Vec<u8>, bool), axum::Error> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        let room = BODY_LIMIT - out.len();
        if data.len() > room {
            out.extend_from_slice(&data[..room]);
            return Ok((out, true));
        }
        out.extend_from_slice(&data);
    }
    Ok((out, false))
}

/// `location` resolved against the path `from` (both on the portal's origin), as a path with its
/// query; `None` for another origin.
fn resolve(from: &str, location: &str) -> Option<String> {
    if location.starts_with("//") || location.contains("://") {
        return None;
    }
    let joined = if location.starts_with('/') {
        location.to_owned()
    } else {
        let dir = from.split('?').next().unwrap_or(from);
        let dir = dir
            .get(..dir.rfind('/').map_or(0, |i| i + 1))
            .unwrap_or("/");
        format!("{dir}{location}")
    };
    // Dot segments, as a browser removes them.
    let (path, query) = match joined.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (joined, None),
    };
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {
                if i == segments.len() - 1 {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if i == segments.len() - 1 {
                    out.push("");
                }
            }
            other => out.push(other),
        }
    }
    let mut resolved = out.join("/");
    if !resolved.starts_with('/') {
        resolved.insert(0, '/');
    }
    if let Some(query) = query {
        resolved.push('?');
        resolved.push_str(&query);
    }
    Some(resolved)
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn redirects_resolve_like_a_browser() {
        assert_eq!(resolve("/apps/a/x/y", "z").as_deref(), Some("/apps/a/x/z"));
        assert_eq!(
            resolve("/apps/a/x/y", "../z?q=1").as_deref(),
            Some("/apps/a/z?q=1")
        );
        assert_eq!(resolve("/apps/a/", "./").as_deref(), Some("/apps/a/"));
        assert_eq!(resolve("/apps/a/x", "/login").as_deref(), Some("/login"));
        assert_eq!(
            resolve("/apps/a/x", "/apps/a/../b/").as_deref(),
            Some("/apps/b/")
        );
        assert_eq!(resolve("/apps/a/x", "https://idp.example/"), None);
        assert_eq!(resolve("/apps/a/x", "//evil.example/"), None);
    }
}
