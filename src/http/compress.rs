//! Response compression on the fly: `Accept-Encoding` negotiation, which answers may be compressed,
//! and a streaming gzip / brotli body.
//!
//! The shell's own answers (page, config, theme, bootstrap) and the apps' answers (`apps`, with the
//! app's `compress:` mode) pass through [`compress`]. An answer is compressed only when the client asked
//! for it, it is not compressed already, nothing forbids it (`no-transform`, `HEAD`, a range, a tunnel, an
//! event stream) and it is text worth compressing; it then gets `Content-Encoding`, `Vary:
//! Accept-Encoding`, no `Content-Length` and a weak ETag (the bytes differ from the identity answer's,
//! and `If-None-Match` compares weakly, so a revalidation still gets its 304). The body is compressed
//! as it streams: nothing is buffered beyond what the encoder holds, and whatever has been read is
//! flushed whenever the source has nothing more to give yet, so a slow stream stays a stream.
//!
//! Files compressed once in advance (Luigi's, see `assets`) are served with their `Content-Encoding`
//! and pass through here untouched. This module must not decide *whether* an app's HTML or JSON may be
//! compressed (BREACH): that is the app's `compress:` mode, read by the caller.

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};

use crate::config::CompressMode;

/// Below this many bytes (when the length is known) compression saves too little to pay for the
/// encoder's setup and the extra headers; nginx's `gzip_min_length` advice is of this order.
pub(crate) const MIN_LENGTH: u64 = 1024;

/// Brotli quality on the fly. On Luigi's script (466 KB, `cargo run --release --example
/// compress_levels`): quality 4 takes 9.6 ms for 127.6 KB, less CPU than gzip 6 (21.6 ms, 128.7 KB)
/// for fewer bytes; 5 costs 1.7x the CPU for 7% fewer bytes, 9 six times, 11 a hundred times. A proxied
/// answer is compressed once per request on the request's CPU, so the cheap end wins. Pre-compressed
/// files use 11 (107.2 KB).
pub(crate) const BROTLI_QUALITY: u32 = 4;
/// Brotli window, log2 bytes: 512 KiB bounds the encoder's memory per response in flight (brotli's
/// default, 4 MiB, would cost that much per concurrent compressed answer) and loses little on text.
pub(crate) const BROTLI_WINDOW: u32 = 19;
/// gzip level on the fly (for clients without brotli): level 6 costs twice the CPU of 5 for 1-2% fewer
/// bytes (21.6 vs 11.9 ms, 128.7 vs 130.2 KB on Luigi's script); 1 is 36% larger.
pub(crate) const GZIP_LEVEL: u32 = 5;

/// Encoded output is handed on once this much has gathered, even while the source keeps giving.
const OUTPUT_CHUNK: usize = 16 * 1024;

/// A content coding portico produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    Brotli,
    Gzip,
}

impl Coding {
    pub(crate) fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(self.token())
    }

    /// The `Content-Encoding` token.
    pub(crate) fn token(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
        }
    }
}

/// The coding the client prefers among those portico produces, by `Accept-Encoding` (RFC 9110
/// §12.5.3): q-values are honoured, `q=0` refuses, `*` stands for codings not named, a tie goes to
/// brotli (smaller), and an `identity` the client ranks above both means no coding. `None`: send
/// the answer as it is.
pub(crate) fn negotiate(headers: &HeaderMap) -> Option<Coding> {
    // q-values in thousandths; `None` = not named.
    let (mut br, mut gzip, mut identity, mut any) = (None, None, None, None);
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(text) = value.to_str() else { continue };
        for element in text.split(',') {
            let mut parts = element.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let Some(q) = qvalue(parts) else { continue };
            let slot = if coding.eq_ignore_ascii_case("br") {
                &mut br
            } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                &mut gzip
            } else if coding.eq_ignore_ascii_case("identity") {
                &mut identity
            } else if coding == "*" {
                &mut any
            } else {
                continue;
            };
            // Named twice: the more favourable reading; a client that lists a coding twice is confused.
            *slot = Some(slot.map_or(q, |old: u16| old.max(q)));
        }
    }
    let br = br.or(any).unwrap_or(0);
    let gzip = gzip.or(any).unwrap_or(0);
    let (best, q) = if br >= gzip {
        (Coding::Brotli, br)
    } else {
        (Coding::Gzip, gzip)
    };
    // Identity is acceptable unless refused; it wins only when ranked strictly above the best coding.
    let identity = identity.unwrap_or(0);
    (q > 0 && q >= identity).then_some(best)
}

/// The q-value among an element's parameters (1 when absent), in thousandths; `None` when malformed,
/// so the element is ignored rather than guessed at.
fn qvalue<'a>(parameters: impl Iterator<Item = &'a str>) -> Option<u16> {
    let mut q = 1000;
    for parameter in parameters {
        let Some((name, value)) = parameter.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("q") {
            continue;
        }
        let value = value.trim();
        let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
        if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
        q = match whole {
            "0" => thousandths,
            "1" if thousandths == 0 => 1000,
            _ => return None,
        };
    }
    Some(q)
}

/// What the request allows, read before it is handed on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Accepts {
    /// `None` when the answer may not be compressed at all (HEAD, a protocol upgrade), else the
    /// negotiated coding (`Some(None)`: compressible, but this client wants identity).
    coding: Option<Option<Coding>>,
    /// `If-None-Match` holds a weak tag: the client may be revalidating a copy compressed here.
    revalidates_weak: bool,
}

impl Accepts {
    pub(crate) fn of(method: &Method, headers: &HeaderMap) -> Accepts {
        // HEAD answers no body; an upgrade becomes a tunnel whose bytes are not the answer's.
        let coding = (method != Method::HEAD && !headers.contains_key(header::UPGRADE))
            .then(|| negotiate(headers));
        let revalidates_weak = headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .any(|value| value.as_bytes().windows(2).any(|pair| pair == b"W/"));
        Accepts {
            coding,
            revalidates_weak,
        }
    }
}

/// Middleware for the shell's routes: every text answer may be compressed (the shell reflects nothing
/// a request sends into its answers, see README "Compression").
pub(crate) async fn compress_text(request: Request, next: Next) -> Response {
    let accepts = Accepts::of(request.method(), request.headers());
    compress(accepts, CompressMode::Text, next.run(request).await)
}

/// `response`, compressed if `accepts` and `mode` allow it and it is worth it; with `Vary:
/// Accept-Encoding` whenever its representation depends on the request's `Accept-Encoding`.
pub(crate) fn compress(accepts: Accepts, mode: CompressMode, response: Response) -> Response {
    let Some(coding) = accepts.coding else {
        return response;
    };
    if mode == CompressMode::Off {
        return response;
    }
    if response.status() == StatusCode::NOT_MODIFIED {
        return not_modified(accepts, coding, mode, response);
    }
    if !eligible(mode, &response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    add_vary(&mut parts.headers);
    let Some(coding) = coding else {
        return Response::from_parts(parts, body);
    };
    let headers = &mut parts.headers;
    headers.remove(header::CONTENT_LENGTH);
    // Byte ranges would count the compressed bytes, which no cache or client expects of this URL.
    headers.remove(header::ACCEPT_RANGES);
    headers.insert(header::CONTENT_ENCODING, coding.header_value());
    weaken_etag(headers);
    Response::from_parts(parts, Body::new(Compressed::new(body, coding)))
}

/// A 304 confirms the copy the client holds. When that copy was compressed here (the client asked for
/// a coding and revalidates a weak tag), the 304 says so too: the weak tag (a strong one would replace
/// the client's) and `Vary`. A 304 rarely names its type, so only a type that says "never compressed"
/// rules it out.
fn not_modified(
    accepts: Accepts,
    coding: Option<Coding>,
    mode: CompressMode,
    mut response: Response,
) -> Response {
    let headers = response.headers_mut();
    let type_allows = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_none_or(|content_type| compressible(mode, content_type));
    if coding.is_some() && accepts.revalidates_weak && type_allows {
        add_vary(headers);
        weaken_etag(headers);
    }
    response
}

/// Whether this answer may and should be compressed.
fn eligible(mode: CompressMode, response: &Response) -> bool {
    let status = response.status();
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::PARTIAL_CONTENT
    {
        return false;
    }
    let headers = response.headers();
    if headers.contains_key(header::CONTENT_ENCODING) || headers.contains_key(header::CONTENT_RANGE)
    {
        return false;
    }
    if has_token(headers, &header::CACHE_CONTROL, "no-transform") {
        return false;
    }
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    if !compressible(mode, content_type) {
        return false;
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
        .or_else(|| http_body::Body::size_hint(response.body()).exact());
    length.is_none_or(|length| length >= MIN_LENGTH)
}

/// Whether a media type is text worth compressing under `mode`. Images other than SVG, woff/woff2
/// fonts, archives and `application/octet-stream` are compressed already or opaque; an event
/// stream must reach the browser event by event.
pub(crate) fn compressible(mode: CompressMode, content_type: &str) -> bool {
    // Compared case-insensitively in place: lower-casing a copy allocated on every response.
    let essence = super::media_essence(content_type);
    const ASSETS: [&str; 13] = [
        "text/css",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "text/ecmascript",
        "image/svg+xml",
        "application/wasm",
        "font/ttf",
        "font/otf",
        "application/x-font-ttf",
        "application/vnd.ms-fontobject",
        "application/manifest+json",
    ];
    if ASSETS
        .iter()
        .any(|asset| asset.eq_ignore_ascii_case(essence))
    {
        return mode != CompressMode::Off;
    }
    if mode != CompressMode::Text || essence.eq_ignore_ascii_case("text/event-stream") {
        return false;
    }
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("text")
        || (kind.eq_ignore_ascii_case("application")
            && (["json", "xml", "xhtml+xml", "x-ndjson", "graphql"]
                .iter()
                .any(|known| known.eq_ignore_ascii_case(subtype))
                || super::ends_with_ignore_case(subtype, "+json")
                || super::ends_with_ignore_case(subtype, "+xml")))
}

/// Whether a comma-separated header lists `token` (case-insensitively, parameters ignored).
fn has_token(headers: &HeaderMap, name: &header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|text| text.split(','))
        .any(|item| {
            let item = item.split(['=', ';']).next().unwrap_or("").trim();
            item.eq_ignore_ascii_case(token) || item == "*"
        })
}

fn add_vary(headers: &mut HeaderMap) {
    if !has_token(headers, &header::VARY, "accept-encoding") {
        headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
}

/// A strong ETag names these exact bytes; the compressed ones differ, so it becomes weak.
fn weaken_etag(headers: &mut HeaderMap) {
    let Some(etag) = headers.get(header::ETAG) else {
        return;
    };
    if etag.as_bytes().starts_with(b"\"") {
        let mut weak = b"W/".to_vec();
        weak.extend_from_slice(etag.as_bytes());
        match HeaderValue::from_bytes(&weak) {
            Ok(value) => {
                headers.insert(header::ETAG, value);
            }
            Err(_) => {
                headers.remove(header::ETAG);
            }
        }
    }
}

/// An encoder writing into its own buffer, drained as the body goes out.
enum Encoder {
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
}

impl Encoder {
    fn new(coding: Coding) -> Encoder {
        match coding {
            Coding::Brotli => Encoder::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                4096,
                BROTLI_QUALITY,
                BROTLI_WINDOW,
            ))),
            Coding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(GZIP_LEVEL),
            )),
        }
    }

    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Encoder::Brotli(writer) => writer.write_all(data),
            Encoder::Gzip(writer) => writer.write_all(data),
        }
    }

    /// Emits everything written so far (a sync flush: the stream goes on afterwards).
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Encoder::Brotli(writer) => writer.flush(),
            Encoder::Gzip(writer) => writer.flush(),
        }
    }

    fn output_len(&self) -> usize {
        match self {
            Encoder::Brotli(writer) => writer.get_ref().len(),
            Encoder::Gzip(writer) => writer.get_ref().len(),
        }
    }

    fn take_output(&mut self) -> Bytes {
        let buffer = match self {
            Encoder::Brotli(writer) => writer.get_mut(),
            Encoder::Gzip(writer) => writer.get_mut(),
        };
        Bytes::from(std::mem::take(buffer))
    }

    /// Ends the stream; the last bytes.
    fn finish(self) -> std::io::Result<Bytes> {
        let buffer = match self {
            Encoder::Brotli(writer) => writer.into_inner(),
            Encoder::Gzip(writer) => writer.finish()?,
        };
        Ok(Bytes::from(buffer))
    }
}

/// A body compressed as it streams.
struct Compressed {
    inner: Body,
    /// `None` once finished.
    encoder: Option<Encoder>,
    /// Input written since the last flush.
    unflushed: bool,
    /// Trailers that arrived after the data, sent after the last compressed bytes.
    trailers: Option<HeaderMap>,
}

impl Compressed {
    fn new(inner: Body, coding: Coding) -> Compressed {
        Compressed {
            inner,
            encoder: Some(Encoder::new(coding)),
            unflushed: false,
            trailers: None,
        }
    }

    fn data(bytes: Bytes) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }

    /// The source ended (maybe with trailers): the encoder's last bytes, if any.
    fn finish(&mut self) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match self.encoder.take().map(Encoder::finish) {
            Some(Ok(last)) if !last.is_empty() => Self::data(last),
            Some(Err(error)) => Poll::Ready(Some(Err(axum::Error::new(error)))),
            _ => Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t)))),
        }
    }
}

impl http_body::Body for Compressed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        loop {
            let Some(encoder) = this.encoder.as_mut() else {
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            };
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        if data.is_empty() {
                            continue;
                        }
                        if let Err(error) = encoder.write(&data) {
                            return Poll::Ready(Some(Err(axum::Error::new(error))));
                        }
                        this.unflushed = true;
                        if encoder.output_len() >= OUTPUT_CHUNK {
                            return Self::data(encoder.take_output());
                        }
                    }
                    Err(frame) => {
                        this.trailers = frame.into_trailers().ok();
                        return this.finish();
                    }
                },
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(None) => return this.finish(),
                Poll::Pending => {
                    // The source has nothing more for now: what it gave goes out, so a slow
                    // stream reaches the browser as it comes instead of when the encoder fills up.
                    if this.unflushed {
                        this.unflushed = false;
                        if let Err(error) = encoder.flush() {
                            return Poll::Ready(Some(Err(axum::Error::new(error))));
                        }
                    }
                    if encoder.output_len() > 0 {
                        return Self::data(encoder.take_output());
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.encoder.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests;
