//! Optional trace export: one server span per request, posted in batches as OTLP/HTTP JSON to
//! `telemetry.otlp.endpoint` (e.g. an OpenTelemetry Collector's `http://127.0.0.1:4318/v1/traces`).
//!
//! Off unless configured. The request path only builds a small `Span` and hands it to a bounded
//! queue with `try_send`: a slow or absent collector costs dropped spans (counted in the log), never a
//! waiting request. A background task batches (up to `BATCH` spans or `FLUSH_EVERY`) and posts
//! with hyper over plain HTTP. The trace id is fresh, or a trusted proxy's (`traceparent`); the span
//! carries no query string, cookie, token or user id (the access line already names the user; a trace
//! backend is often more widely readable).

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, Uri, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// At most this many spans per POST.
const BATCH: usize = 256;
/// A batch that is not full is sent after this long.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Spans waiting for the exporter; more are dropped.
const QUEUE: usize = 4096;

/// One finished request, as the exporter sends it.
#[derive(Debug)]
pub(crate) struct Span {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    pub start: SystemTime,
    pub duration: Duration,
    pub method: Method,
    pub path: Uri,
    pub status: u16,
    pub tenant: Option<String>,
    pub app: Option<String>,
    pub request_id: String,
    pub upstream_status: Option<u16>,
    pub completed: bool,
}

/// Where request spans go: a handle to the exporter's queue.
#[derive(Debug, Clone)]
pub struct SpanSink(mpsc::Sender<Span>);

impl SpanSink {
    /// Starts the exporter for `endpoint` (an `http://` URL) on the current runtime; `None` (and a
    /// warning) outside one.
    pub fn start(endpoint: Uri) -> Option<SpanSink> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("trace export needs the async runtime; it is off");
            return None;
        };
        let (sender, receiver) = mpsc::channel(QUEUE);
        tracing::info!(%endpoint, "exporting request spans (OTLP/HTTP JSON)");
        runtime.spawn(export(endpoint, receiver));
        Some(SpanSink(sender))
    }

    /// Queues a span; a full queue drops it.
    pub(crate) fn send(&self, span: Span) {
        if self.0.try_send(span).is_err() {
            tracing::debug!("trace export queue full: a span was dropped");
        }
    }
}

/// The ids of a request's span: the trace of a trusted proxy's `traceparent`, else a fresh one.
pub(crate) fn ids(trusted_headers: Option<&HeaderMap>) -> ([u8; 16], [u8; 8], Option<[u8; 8]>) {
    let span_id = crate::token::random_bytes::<8>();
    if let Some((trace, parent)) = trusted_headers.and_then(parse_traceparent) {
        return (trace, span_id, Some(parent));
    }
    (crate::token::random_bytes::<16>(), span_id, None)
}

/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>` (W3C Trace Context), ids not all zero.
fn parse_traceparent(headers: &HeaderMap) -> Option<([u8; 16], [u8; 8])> {
    let text = headers.get("traceparent")?.to_str().ok()?;
    let mut parts = text.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || flags.len() != 2 || parts.next().is_some() {
        return None;
    }
    let trace: [u8; 16] = unhex(trace)?;
    let parent: [u8; 8] = unhex(parent)?;
    (trace != [0; 16] && parent != [0; 8]).then_some((trace, parent))
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The exporter task: batches spans and posts them until every sender is gone.
async fn export(endpoint: Uri, mut receiver: mpsc::Receiver<Span>) {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    let client: Client<HttpConnector, Body> =
        Client::builder(TokioExecutor::new()).build(connector);
    let mut failures: u64 = 0;
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(span)) => batch.push(span),
                Ok(None) | Err(_) => break,
            }
        }
        let body = encode(&batch).to_string();
        let request = Request::post(endpoint.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body));
        let Ok(request) = request else {
            continue;
        };
        let sent = tokio::time::timeout(Duration::from_secs(10), client.request(request)).await;
        let ok = matches!(&sent, Ok(Ok(response)) if response.status().is_success());
        if ok {
            failures = 0;
        } else {
            failures += 1;
            // The first failure and then every hundredth: a collector that is down is one line, not a flood.
            if failures % 100 == 1 {
                let why = match sent {
                    Err(_) => "timed out".to_owned(),
                    Ok(Err(error)) => error.to_string(),
                    Ok(Ok(response)) => format!("answered {}", response.status()),
                };
                tracing::warn!(%endpoint, spans = batch.len(), failures, "trace export failed: {why}");
            }
        }
    }
}

fn nanos(time: SystemTime) -> String {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        .to_string()
}

fn text(key: &str, value: &str) -> Value {
    json!({ "key": key, "value": { "stringValue": value } })
}

fn int(key: &str, value: u16) -> Value {
    json!({ "key": key, "value": { "intValue": value.to_string() } })
}

/// The OTLP/HTTP JSON body for `spans` (`ExportTraceServiceRequest`; ids in hex, 64-bit integers as
/// strings, as the OTLP JSON mapping says).
pub(crate) fn encode(spans: &[Span]) -> Value {
    let spans: Vec<Value> = spans
        .iter()
        .map(|span| {
            let mut attributes = vec![
                text("http.request.method", span.method.as_str()),
                text("url.path", span.path.path()),
                int("http.response.status_code", span.status),
                text("portico.request_id", &span.request_id),
                text("portico.tenant", span.tenant.as_deref().unwrap_or("-")),
                text("portico.app", span.app.as_deref().unwrap_or("-")),
                json!({ "key": "portico.completed", "value": { "boolValue": span.completed } }),
            ];
            if let Some(status) = span.upstream_status {
                attributes.push(int("portico.upstream.status_code", status));
            }
            let name = match &span.app {
                Some(app) => format!("{} {app}", span.method),
                None => span.method.to_string(),
            };
            // ERROR for server errors and bodies cut short; UNSET otherwise (OTel HTTP conventions:
            // a 4xx is the client's error, not the server span's).
            let status = if span.status >= 500 || !span.completed {
                json!({ "code": 2 })
            } else {
                json!({ "code": 0 })
            };
            json!({
                "traceId": hex(&span.trace_id),
                "spanId": hex(&span.span_id),
                "parentSpanId": span.parent_span_id.map(|id| hex(&id)).unwrap_or_default(),
                "name": name,
                "kind": 2,
                "startTimeUnixNano": nanos(span.start),
                "endTimeUnixNano": nanos(span.start + span.duration),
                "attributes": attributes,
                "status": status,
            })
        })
        .collect();
    json!({
        "resourceSpans": [{
            "resource": { "attributes": [text("service.name", "portico")] },
            "scopeSpans": [{
                "scope": { "name": "portico", "version": env!("CARGO_PKG_VERSION") },
                "spans": spans,
            }],
        }],
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_trusted_traceparent_continues_its_trace_and_a_bad_one_is_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let (trace, _, parent) = ids(Some(&headers));
        assert_eq!(hex(&trace), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parent.map(|p| hex(&p)).as_deref(), Some("00f067aa0ba902b7"));
        let (untrusted, _, none) = ids(None);
        assert_ne!(untrusted, trace);
        assert!(none.is_none());
        headers.insert(
            "traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        assert!(parse_traceparent(&headers).is_none());
        headers.insert("traceparent", "00-zz-00f067aa0ba902b7-01".parse().unwrap());
        assert!(parse_traceparent(&headers).is_none());
    }
}
