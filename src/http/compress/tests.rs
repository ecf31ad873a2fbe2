use std::io::Read;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::BodyExt;

use super::{Accepts, Coding, compress, compressible, negotiate};
use crate::config::CompressMode;

fn accept(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_str(value).unwrap(),
    );
    headers
}

#[test]
fn negotiation_honours_q_values_and_prefers_brotli_on_a_tie() {
    let cases: [(&str, Option<Coding>); 17] = [
        ("", None),
        ("gzip", Some(Coding::Gzip)),
        ("x-gzip", Some(Coding::Gzip)),
        ("br", Some(Coding::Brotli)),
        ("gzip, deflate, br", Some(Coding::Brotli)),
        ("gzip, deflate, br, zstd", Some(Coding::Brotli)),
        ("br;q=0.5, gzip", Some(Coding::Gzip)),
        ("br;q=0, gzip;q=0", None),
        ("gzip;q=0", None),
        ("br;q=0, gzip", Some(Coding::Gzip)),
        ("*", Some(Coding::Brotli)),
        ("*;q=0.1, br;q=0", Some(Coding::Gzip)),
        ("*;q=0", None),
        ("identity", None),
        ("gzip;q=0.5, identity", None),
        ("GZIP;Q=1.000", Some(Coding::Gzip)),
        ("gzip;q=2, br;q=0.x", None),
    ];
    for (value, expected) in cases {
        assert_eq!(
            negotiate(&accept(value)),
            expected,
            "Accept-Encoding: {value}"
        );
    }
    assert_eq!(negotiate(&HeaderMap::new()), None);
}

#[test]
fn which_types_compress_by_mode() {
    use CompressMode::{Assets, Off, Text};
    let cases = [
        ("text/css", [false, true, true]),
        ("application/javascript; charset=utf-8", [false, true, true]),
        ("image/svg+xml", [false, true, true]),
        ("text/html; charset=utf-8", [false, false, true]),
        ("application/json", [false, false, true]),
        ("application/problem+json", [false, false, true]),
        ("text/plain", [false, false, true]),
        ("text/event-stream", [false, false, false]),
        ("image/png", [false, false, false]),
        ("font/woff2", [false, false, false]),
        ("application/octet-stream", [false, false, false]),
        ("", [false, false, false]),
        // Media types are case-insensitive (RFC 9110 §8.3.1), and spaces around them do not count.
        ("  Text/CSS ; charset=utf-8", [false, true, true]),
        ("Application/Vnd.API+JSON", [false, false, true]),
        ("TEXT/EVENT-STREAM", [false, false, false]),
    ];
    for (content_type, expected) in cases {
        let got = [Off, Assets, Text].map(|mode| compressible(mode, content_type));
        assert_eq!(got, expected, "{content_type}");
    }
}

fn text(len: usize) -> Vec<u8> {
    b"function portico() { return 'the same line again and again'; }\n"
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

fn response(content_type: &str, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap(),
    );
    headers.insert(header::ETAG, HeaderValue::from_static("\"abc\""));
    response
}

fn get(value: &str) -> Accepts {
    Accepts::of(&Method::GET, &accept(value))
}

async fn decoded(response: Response) -> Vec<u8> {
    let coding = response.headers().get(header::CONTENT_ENCODING).cloned();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let mut out = Vec::new();
    match coding.as_ref().map(|value| value.to_str().unwrap()) {
        Some("br") => {
            brotli::Decompressor::new(&bytes[..], 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        Some("gzip") => {
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_end(&mut out)
                .unwrap();
        }
        _ => out = bytes.to_vec(),
    }
    out
}

#[tokio::test]
async fn a_compressed_answer_decodes_to_the_same_bytes_with_the_right_headers() {
    let body = text(100_000);
    for (asked, token) in [("br, gzip", "br"), ("gzip", "gzip")] {
        let out = compress(
            get(asked),
            CompressMode::Assets,
            response("text/javascript", body.clone()),
        );
        let headers = out.headers();
        assert_eq!(headers[header::CONTENT_ENCODING], token);
        assert_eq!(headers[header::VARY], "accept-encoding");
        assert_eq!(headers[header::ETAG], "W/\"abc\"");
        assert!(!headers.contains_key(header::CONTENT_LENGTH));
        assert_eq!(decoded(out).await, body, "{token}");
    }
}

#[tokio::test]
async fn answers_that_must_not_be_compressed_pass_untouched() {
    let big = || text(4096);
    let mut encoded = response("text/css", big());
    encoded
        .headers_mut()
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    let mut no_transform = response("text/css", big());
    no_transform.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, no-transform"),
    );
    let mut partial = response("text/css", big());
    *partial.status_mut() = StatusCode::PARTIAL_CONTENT;
    let cases = [
        ("already encoded", get("br"), CompressMode::Text, encoded),
        ("no-transform", get("br"), CompressMode::Text, no_transform),
        ("a range", get("br"), CompressMode::Text, partial),
        (
            "tiny",
            get("br"),
            CompressMode::Text,
            response("text/css", text(1023)),
        ),
        (
            "event stream",
            get("br"),
            CompressMode::Text,
            response("text/event-stream", big()),
        ),
        (
            "image",
            get("br"),
            CompressMode::Text,
            response("image/png", big()),
        ),
        (
            "html in assets mode",
            get("br"),
            CompressMode::Assets,
            response("text/html", big()),
        ),
        (
            "off",
            get("br"),
            CompressMode::Off,
            response("text/css", big()),
        ),
        (
            "HEAD",
            Accepts::of(&Method::HEAD, &accept("br")),
            CompressMode::Text,
            response("text/css", big()),
        ),
    ];
    for (name, accepts, mode, input) in cases {
        let before = input.headers().clone();
        let out = compress(accepts, mode, input);
        assert_eq!(out.headers(), &before, "{name}: headers changed");
    }
}

#[tokio::test]
async fn identity_still_says_that_the_answer_varies() {
    let body = text(4096);
    let out = compress(
        get("gzip;q=0"),
        CompressMode::Assets,
        response("text/css", body.clone()),
    );
    assert!(!out.headers().contains_key(header::CONTENT_ENCODING));
    assert_eq!(out.headers()[header::VARY], "accept-encoding");
    assert_eq!(out.headers()[header::ETAG], "\"abc\"");
    assert_eq!(decoded(out).await, body);
}

#[tokio::test]
async fn a_slow_stream_is_compressed_as_it_comes() {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let stream = tokio_stream_from(receiver);
    let mut input = Response::new(Body::from_stream(stream));
    input.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript"),
    );
    let mut body = compress(get("br"), CompressMode::Assets, input).into_body();
    sender.send(Ok(Bytes::from(text(300)))).await.unwrap();
    // The first piece arrives while the source is still open.
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("the first compressed bytes come before the stream ends")
        .unwrap()
        .unwrap();
    assert!(!first.into_data().unwrap().is_empty());
    drop(sender);
    while body.frame().await.is_some() {}
}

fn tokio_stream_from(
    mut receiver: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}
