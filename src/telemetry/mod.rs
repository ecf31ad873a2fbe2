//! Logging and metrics: the subscriber setup, request ids, the access line (`access`) and the
//! Prometheus metrics (`metrics`).
//!
//! Every request gets an id (echoed as `x-request-id`, sent upstream, shown on error pages) and, when
//! its response body ends, one `access` line and its metrics. Handlers fill in who and what through
//! `Labels`. Nothing here may log a session id, a token or a cookie value, and no metric label may
//! come from a request alone (see `metrics`).

pub mod access;
mod access_line;
mod log_writer;
pub mod metrics;
pub mod otlp;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderValue;
use tracing_subscriber::EnvFilter;

pub use access::{Access, access_log};
pub use log_writer::{LogGuard, write_now as write_log_now};
pub use metrics::{LabelText, Metrics};
pub use otlp::SpanSink;

use crate::config::{AppId, TenantId};

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
/// Lines are written to stderr by a background thread in batches (`log_writer`), so a request never
/// waits on a `write(2)`; keep the returned guard alive until exit, it flushes what is left.
pub fn init(format: LogFormat) -> LogGuard {
    let (writer, guard) = log_writer::start(std::io::stderr());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Access lines are written to the same writer by hand in the text format (`access_line`).
    let access_writer = writer.clone();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        // No colours, and tracing-subscriber is built without its `ansi` feature: with it, every
        // field name goes through nu-ansi-term's styling even when colours are off, which was about
        // 1,000 instructions per field, a tenth of a proxied request's cost with the access line's
        // fields (bench/README.md).
        .with_ansi(false);
    let result = match format {
        LogFormat::Text => {
            let installed = builder.try_init();
            if installed.is_ok() {
                access_line::use_text_format(access_writer);
            }
            installed
        }
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

/// The `X-Request-Id` header: on every response, and on every request portico forwards.
pub(crate) const X_REQUEST_ID: axum::http::HeaderName =
    axum::http::HeaderName::from_static("x-request-id");

/// The id of one request (a header value, so sending it on costs a reference count, not a copy).
#[derive(Debug, Clone)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// The id as text (always visible ASCII: generated here, or checked when a trusted proxy sent it).
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or("-")
    }

    /// The id as a header value.
    pub fn header(&self) -> &HeaderValue {
        &self.0
    }
}

/// The client's address as a trusted proxy named it (`server.trusted_proxies`), when that is not the
/// connection's peer: the gateways tell upstreams this address in `X-Forwarded-For`, as the access line
/// does. Absent for a request that came straight from its client.
#[derive(Debug, Clone, Copy)]
pub struct ForwardedClient(pub std::net::IpAddr);

/// What the access line and the metrics say about who did what; filled in by handlers as they learn it.
#[derive(Debug, Clone, Default)]
pub struct Labels(Arc<LabelsInner>);

#[derive(Debug, Default)]
struct LabelsInner {
    values: Mutex<LabelValues>,
    bytes_in: AtomicU64,
}

#[derive(Debug, Default)]
struct LabelValues {
    tenant: Option<TenantId>,
    user: Option<String>,
    app: Option<LabelText>,
    upstream: Option<UpstreamCall>,
}

/// What the upstream did with the request (the last exchange, when there were several).
#[derive(Debug, Clone, Copy)]
pub struct UpstreamCall {
    /// Its response status; `None` when there was no response.
    pub status: Option<u16>,
    /// How long until its response headers (or the failure).
    pub elapsed: Duration,
    /// Why there was no response: `ProxyError::kind`.
    pub error: Option<&'static str>,
}

impl UpstreamCall {
    /// An exchange that started at `started` and ended now with `(status, error kind)`.
    pub fn of(
        started: std::time::Instant,
        (status, error): (Option<u16>, Option<&'static str>),
    ) -> Self {
        UpstreamCall {
            status,
            elapsed: started.elapsed(),
            error,
        }
    }
}

/// The labels of a finished request.
pub(crate) struct Taken {
    pub tenant: Option<TenantId>,
    pub user: Option<String>,
    pub app: Option<LabelText>,
    pub upstream: Option<UpstreamCall>,
    pub bytes_in: u64,
}

impl Labels {
    fn with(&self, f: impl FnOnce(&mut LabelValues)) {
        if let Ok(mut values) = self.0.values.lock() {
            f(&mut values);
        }
    }
    pub fn tenant(&self, tenant: &TenantId) {
        self.with(|values| values.tenant = Some(tenant.clone()));
    }
    pub fn user(&self, user: &str) {
        self.with(|values| values.user = Some(user.to_owned()));
    }
    /// The app: a config id, so it is also a bounded metric label.
    pub fn app(&self, app: &AppId) {
        self.with(|values| values.app = Some(LabelText::App(app.clone())));
    }
    /// An app-like name that is not an app id (e.g. `backstage:<plugin>`); only ever a name built
    /// from config, since it becomes a metric label.
    pub fn app_name(&self, name: Arc<str>) {
        self.with(|values| values.app = Some(LabelText::Shared(name)));
    }
    /// What the upstream answered, and how long it took.
    pub fn upstream(&self, call: UpstreamCall) {
        self.with(|values| values.upstream = Some(call));
    }
    fn add_bytes_in(&self, bytes: usize) {
        self.0.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }
    /// The request is over: the labels are taken, not copied, and the lock is released at once.
    fn take(&self) -> Taken {
        let values = self.0.values.lock().map(|mut v| {
            (
                v.tenant.take(),
                v.user.take(),
                v.app.take(),
                v.upstream.take(),
            )
        });
        let (tenant, user, app, upstream) = values.unwrap_or_default();
        Taken {
            tenant,
            user,
            app,
            upstream,
            bytes_in: self.0.bytes_in.load(Ordering::Relaxed),
        }
    }
}

/// A fresh id: 16 hex digits of randomness.
fn new_request_id() -> HeaderValue {
    // Written into a stack buffer and copied once into the value (not a `String` built per digit).
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 16];
    for (pair, byte) in text
        .chunks_exact_mut(2)
        .zip(crate::token::random_bytes::<8>())
    {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
    HeaderValue::from_bytes(&text).unwrap_or(HeaderValue::from_static("-"))
}
