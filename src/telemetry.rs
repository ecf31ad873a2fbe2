//! Logging: the subscriber setup, request ids, and one access-log line per request.
//!
//! Every request gets a random id (echoed as `x-request-id` and shown on error pages) and, when it ends,
//! one `access` line with method, path, status, latency, tenant, user and app. Handlers fill in who and
//! what through [`Labels`]. Nothing here may log a session id, a token or a cookie value.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing_subscriber::EnvFilter;

use crate::config::TenantId;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Installs the global subscriber. `RUST_LOG` overrides the default level (`info`).
///
/// Lines are written by a background thread through a buffer, so a request never waits on a `write(2)`
/// to stderr; keep the returned guard alive until exit, it flushes what is left.
pub fn init(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let (writer, guard) =
        tracing_appender::non_blocking(std::io::BufWriter::new(std::io::stderr()));
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        // Colours only for a person at a terminal, never in files or log shippers.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    // A second init (tests start several servers in one process) keeps the first subscriber.
    drop(result);
    guard
}

const X_REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");

/// The id of one request.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// What the access-log line says about who did what; filled in by handlers as they learn it.
#[derive(Debug, Clone, Default)]
pub struct Labels(Arc<Mutex<LabelValues>>);

#[derive(Debug, Default)]
struct LabelValues {
    tenant: Option<TenantId>,
    user: Option<String>,
    app: Option<String>,
}

impl Labels {
    pub fn tenant(&self, tenant: &TenantId) {
        if let Ok(mut values) = self.0.lock() {
            values.tenant = Some(tenant.clone());
        }
    }
    pub fn user(&self, user: &str) {
        if let Ok(mut values) = self.0.lock() {
            values.user = Some(user.to_owned());
        }
    }
    pub fn app(&self, app: &str) {
        if let Ok(mut values) = self.0.lock() {
            values.app = Some(app.to_owned());
        }
    }
}

fn new_request_id() -> String {
    crate::token::hex(&crate::token::random_bytes::<8>())
}

/// Middleware (outermost): assigns the request id and writes the access line when the response is ready.
///
/// The line is written when headers are sent; a streamed body may still be flowing. That is what nginx's
/// `$upstream_header_time` measures too, and it keeps the log from waiting on slow clients.
pub async fn access_log(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = new_request_id();
    let labels = Labels::default();
    request
        .extensions_mut()
        .insert(RequestId(request_id.clone()));
    request.extensions_mut().insert(labels.clone());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    // The request is over: the labels are taken, not copied, and the lock is released at once.
    let values = labels
        .0
        .lock()
        .map(|mut v| (v.tenant.take(), v.user.take(), v.app.take()));
    let (tenant, user, app) = values.unwrap_or_default();
    tracing::info!(
        target: "access",
        request_id,
        method = %method,
        path,
        status = response.status().as_u16(),
        latency_us,
        tenant = tenant.as_ref().map_or("-", TenantId::as_str),
        user = user.as_deref().unwrap_or("-"),
        app = app.as_deref().unwrap_or("-"),
    );
    response
}
