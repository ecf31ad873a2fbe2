//! The access line's fields, and the line written by hand for the text log format.
//!
//! With `--log-format text`, the whole line (time, level, target, fields) is formatted here into a
//! reused buffer and written to the log's writer directly: the same bytes tracing-subscriber's text
//! format writes (`key=value`, strings in Rust's `Debug` quoting, absent fields left out), at a fraction
//! of the cost. The subscriber spent about 15,000 instructions on the line, an eighth of a proxied
//! request, most of it passing every character through its ANSI-escape sanitizer (bench/README.md).
//! `Debug` quoting already escapes every control character, so no line can carry a terminal escape
//! either way. `RUST_LOG` still decides whether the line is written. Every other subscriber
//! (`--log-format json`, the tests' capture) gets the fields as structured fields, as before. A test
//! below checks that both give the same text. This module must not change what a line says, only how
//! it is built.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use axum::http::Method;

use super::log_writer::LogWriter;

/// The global text subscriber's writer, when `telemetry::init` installed one: access lines go there.
static TEXT_WRITER: OnceLock<LogWriter> = OnceLock::new();

/// Says that the global subscriber writes text to `writer`, so access lines may be written by hand.
pub(super) fn use_text_format(writer: LogWriter) {
    let _ = TEXT_WRITER.set(writer);
}

/// Everything one access line says, in its order.
pub(super) struct AccessFields<'a> {
    pub request_id: &'a str,
    pub client: Option<IpAddr>,
    pub method: &'a Method,
    pub path: &'a str,
    pub query: bool,
    pub status: u16,
    pub latency_us: u64,
    pub duration_us: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub completed: bool,
    /// Only when cut short.
    pub end: Option<&'static str>,
    pub upstream_status: Option<u16>,
    pub upstream_us: Option<u64>,
    pub tenant: &'a str,
    pub user: &'a str,
    pub app: &'a str,
    pub trace_id: Option<&'a str>,
}

thread_local! {
    /// The line being written; reused, so a request allocates nothing for it.
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(256));
}

impl AccessFields<'_> {
    /// Writes the `access` event: by hand for the text format, as structured fields otherwise.
    pub(super) fn emit(&self) {
        let Some(writer) = TEXT_WRITER.get() else {
            self.emit_structured();
            return;
        };
        if !tracing::enabled!(target: "access", tracing::Level::INFO) {
            return;
        }
        LINE.with(|line| match line.try_borrow_mut() {
            Ok(mut line) => {
                line.clear();
                write_time(&mut line, SystemTime::now());
                line.push_str("  INFO access: ");
                self.write_text(&mut line);
                line.push('\n');
                writer.append(line.as_bytes());
            }
            // Only if a subscriber logged an access line from inside this one: never lose it.
            Err(_) => self.emit_structured(),
        });
    }

    fn emit_structured(&self) {
        tracing::info!(
            target: "access",
            request_id = self.request_id,
            client = self.client.map(tracing::field::display),
            method = %self.method,
            path = self.path,
            query = self.query,
            status = self.status,
            latency_us = self.latency_us,
            duration_us = self.duration_us,
            bytes_in = self.bytes_in,
            bytes_out = self.bytes_out,
            completed = self.completed,
            end = self.end,
            upstream_status = self.upstream_status,
            upstream_us = self.upstream_us,
            tenant = self.tenant,
            user = self.user,
            app = self.app,
            trace_id = self.trace_id,
        );
    }

    /// The fields as tracing-subscriber's text format writes them.
    fn write_text(&self, out: &mut String) {
        let mut numbers = itoa::Buffer::new();
        quoted(out, "request_id", self.request_id);
        if let Some(client) = self.client {
            out.push_str(" client=");
            crate::http::push_ip(out, client);
        }
        out.push_str(" method=");
        out.push_str(self.method.as_str());
        quoted(out, " path", self.path);
        out.push_str(if self.query {
            " query=true"
        } else {
            " query=false"
        });
        number(out, &mut numbers, " status", u64::from(self.status));
        number(out, &mut numbers, " latency_us", self.latency_us);
        number(out, &mut numbers, " duration_us", self.duration_us);
        number(out, &mut numbers, " bytes_in", self.bytes_in);
        number(out, &mut numbers, " bytes_out", self.bytes_out);
        out.push_str(if self.completed {
            " completed=true"
        } else {
            " completed=false"
        });
        if let Some(end) = self.end {
            quoted(out, " end", end);
        }
        if let Some(status) = self.upstream_status {
            number(out, &mut numbers, " upstream_status", u64::from(status));
        }
        if let Some(micros) = self.upstream_us {
            number(out, &mut numbers, " upstream_us", micros);
        }
        quoted(out, " tenant", self.tenant);
        quoted(out, " user", self.user);
        quoted(out, " app", self.app);
        if let Some(trace_id) = self.trace_id {
            quoted(out, " trace_id", trace_id);
        }
    }
}

/// The time as humantime's `format_rfc3339_micros` writes it (`2026-12-03T08:15:00.123456Z`), with the
/// part up to the second formatted once per second and per thread rather than on every line.
fn write_time(out: &mut String, now: SystemTime) {
    thread_local! {
        /// The last second formatted (seconds since the epoch), and its text without the `Z`.
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let Ok(since_epoch) = now.duration_since(SystemTime::UNIX_EPOCH) else {
        let _ = write!(out, "{}", humantime::format_rfc3339_micros(now));
        return;
    };
    let second = since_epoch.as_secs();
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            let text = humantime::format_rfc3339_seconds(
                SystemTime::UNIX_EPOCH + Duration::from_secs(second),
            )
            .to_string();
            cached.1 = text.trim_end_matches('Z').to_owned();
            cached.0 = second;
        }
        out.push_str(&cached.1);
    });
    let micros = since_epoch.subsec_micros();
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(micros);
    out.push('.');
    for _ in digits.len()..6 {
        out.push('0');
    }
    out.push_str(digits);
    out.push('Z');
}

fn number(out: &mut String, buffer: &mut itoa::Buffer, name: &str, value: u64) {
    out.push_str(name);
    out.push('=');
    out.push_str(buffer.format(value));
}

/// `name="value"` with `value` in `Debug` quoting: copied as is when nothing in it needs escaping
/// (the common case), else through `Debug` itself, so the two can never differ.
fn quoted(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push('=');
    let plain = value
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
    if plain {
        out.push('"');
        out.push_str(value);
        out.push('"');
    } else {
        let _ = write!(out, "{value:?}");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What the text subscriber (as `telemetry::init` sets it up) writes for `emit`, the time left out.
    fn text_of(emit: impl FnOnce()) -> String {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || Sink(writer.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        without_time(&text)
    }

    /// A line less its leading RFC 3339 time (`2026-12-02T18:44:06.077696Z`).
    fn without_time(line: &str) -> String {
        let (time, rest) = line.split_once(' ').unwrap();
        assert!(humantime::parse_rfc3339(time).is_ok(), "{line}");
        assert_eq!(time.len(), 27, "microseconds, like the subscriber: {line}");
        rest.to_owned()
    }

    /// The line written by hand is, byte for byte, what the subscriber writes from the fields: for a
    /// plain request, one cut short with every optional field, and strings that need escaping.
    #[test]
    fn the_time_is_written_as_humantime_writes_it() {
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_288_100);
        // Leading zeros in the micros, a second's edges, the same second twice (the cached part),
        // and a new second after it.
        for offset_micros in [0, 7, 999_999, 1_000_000, 1_000_001, 1_000_002, 61_234_567] {
            let at = base + Duration::from_micros(offset_micros);
            let mut line = String::new();
            write_time(&mut line, at);
            assert_eq!(line, humantime::format_rfc3339_micros(at).to_string());
        }
    }

    #[test]
    fn the_hand_written_line_is_the_subscribers_line() {
        let get = Method::GET;
        let post = Method::POST;
        let plain = AccessFields {
            request_id: "c546ec1c21be53fa",
            client: Some("127.0.0.1".parse().unwrap()),
            method: &get,
            path: "/apps/echo/file1k",
            query: false,
            status: 200,
            latency_us: 52,
            duration_us: 66,
            bytes_in: 0,
            bytes_out: 1024,
            completed: true,
            end: None,
            upstream_status: Some(200),
            upstream_us: Some(31),
            tenant: "demo",
            user: "alice",
            app: "echo",
            trace_id: None,
        };
        let odd = AccessFields {
            request_id: "id-1",
            client: Some("2001:db8::1".parse().unwrap()),
            method: &post,
            path: "/apps/a/%22x%22",
            query: true,
            status: 502,
            latency_us: u64::MAX,
            duration_us: 0,
            bytes_in: 17,
            bytes_out: 3,
            completed: false,
            end: Some("client_gone"),
            upstream_status: None,
            upstream_us: Some(9),
            tenant: "acme",
            user: "O'Brien \"the\" \\ admin\u{7}é\u{200b}",
            app: "-",
            trace_id: Some("0af7651916cd43dd8448eb211c80319c"),
        };
        let absent = AccessFields {
            client: None,
            upstream_us: None,
            user: "-",
            ..odd
        };
        for fields in [&plain, &odd, &absent] {
            let structured = text_of(|| fields.emit_structured());
            let mut line = format!(
                "{}  INFO access: ",
                humantime::format_rfc3339_micros(SystemTime::now())
            );
            fields.write_text(&mut line);
            line.push('\n');
            assert_eq!(without_time(&line), structured);
            assert!(structured.contains("access: request_id="), "{structured}");
        }
    }
}
