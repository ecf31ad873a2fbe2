//! Response compression (issue 13): what a browser that sends `Accept-Encoding` gets from a real Express
//! upstream through `/apps/<id>/…` and from the shell's own files, decoded and compared byte for byte
//! with what the upstream or the embedded file holds.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;

use crate::canonical_paths::Framework;
use crate::helpers::{Session, TestServer, acme, app, config, dev};

/// Tenant `acme` with apps in front of `express`: `assets` (the default mode), `texts` (`compress:
/// text`) and `plain` (`compress: off`).
async fn portal(express: &Framework) -> TestServer {
    config()
        .default_tenant("acme")
        .tenant(
            acme()
                .user(dev())
                .role("developer", &["acme-eng"])
                .app(app("assets", &["developer"]).upstream(&express.url()))
                .app(
                    app("texts", &["developer"])
                        .upstream(&express.url())
                        .key("compress", "text"),
                )
                .app(
                    app("plain", &["developer"])
                        .upstream(&express.url())
                        .key("compress", "off"),
                ),
        )
        .start()
        .await
}

async fn get(
    server: &TestServer,
    session: &Session,
    path: &str,
    accept_encoding: Option<&str>,
) -> reqwest::Response {
    let mut request = server.get(path).header("cookie", &session.cookie);
    if let Some(value) = accept_encoding {
        request = request.header("accept-encoding", value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response
}

/// The body, decoded by its `Content-Encoding`.
fn decode(coding: Option<&str>, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        Some("br") => {
            brotli::Decompressor::new(bytes, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        Some("gzip") => {
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .unwrap();
        }
        None => out.extend_from_slice(bytes),
        Some(other) => panic!("unexpected Content-Encoding {other}"),
    }
    out
}

fn header<'r>(response: &'r reqwest::Response, name: &str) -> Option<&'r str> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap())
}

/// What Express sends for `path` when asked directly, uncompressed.
async fn direct(express: &Framework, path: &str) -> Vec<u8> {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", express.url()))
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("content-encoding").is_none());
    response.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn proxied_scripts_and_styles_are_compressed_as_the_client_asks() {
    let express = Framework::express();
    let server = portal(&express).await;
    let session = server.sign_in("dev").await;
    for file in ["app.js", "app.css"] {
        let original = direct(&express, &format!("/static/{file}")).await;
        let path = format!("/apps/assets/static/{file}");
        // What a browser sends, a gzip-only client, preferences by q-value, refusals and no header.
        let cases = [
            (Some("gzip, deflate, br, zstd"), Some("br")),
            (Some("gzip"), Some("gzip")),
            (Some("br;q=0.5, gzip"), Some("gzip")),
            (Some("gzip;q=0.8, br;q=0.8"), Some("br")),
            (Some("br;q=0, gzip;q=0"), None),
            (Some("identity"), None),
            (None, None),
        ];
        for (asked, expected) in cases {
            let response = get(&server, &session, &path, asked).await;
            let coding = header(&response, "content-encoding").map(str::to_owned);
            assert_eq!(coding.as_deref(), expected, "{file} with {asked:?}");
            assert_eq!(
                header(&response, "vary"),
                Some("accept-encoding"),
                "{file} {asked:?}"
            );
            if coding.is_some() {
                assert!(header(&response, "content-length").is_none());
            }
            let bytes = response.bytes().await.unwrap();
            if coding.is_some() {
                assert!(
                    bytes.len() * 3 < original.len(),
                    "{file}: {} bytes",
                    bytes.len()
                );
            }
            assert_eq!(
                decode(coding.as_deref(), &bytes),
                original,
                "{file} {asked:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_compressed_answer_has_a_weak_etag_that_still_revalidates() {
    let express = Framework::express();
    let server = portal(&express).await;
    let session = server.sign_in("dev").await;
    let path = "/apps/assets/static/app.js";
    let plain = get(&server, &session, path, None).await;
    assert_eq!(header(&plain, "etag"), Some("\"app-js-v1\""));
    let compressed = get(&server, &session, path, Some("br")).await;
    // The strong tag names the identity bytes; the compressed bytes are other bytes.
    assert_eq!(header(&compressed, "etag"), Some("W/\"app-js-v1\""));
    let revalidated = server
        .get(path)
        .header("cookie", &session.cookie)
        .header("accept-encoding", "br")
        .header("if-none-match", "W/\"app-js-v1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&revalidated, "etag"), Some("W/\"app-js-v1\""));
}

#[tokio::test]
async fn an_answer_the_upstream_compressed_itself_passes_untouched() {
    let express = Framework::express();
    let server = portal(&express).await;
    let session = server.sign_in("dev").await;
    let upstream = reqwest::Client::builder()
        .build()
        .unwrap()
        .get(format!("{}/static/gzipped.js", express.url()))
        .header("accept-encoding", "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&upstream, "content-encoding"), Some("gzip"));
    let upstream_bytes = upstream.bytes().await.unwrap();
    let response = get(
        &server,
        &session,
        "/apps/assets/static/gzipped.js",
        Some("br, gzip"),
    )
    .await;
    assert_eq!(header(&response, "content-encoding"), Some("gzip"));
    let bytes = response.bytes().await.unwrap();
    assert_eq!(
        bytes, upstream_bytes,
        "the upstream's own gzip bytes, not re-encoded"
    );
    assert_eq!(
        decode(Some("gzip"), &bytes),
        direct(&express, "/static/app.js").await
    );
    // The same request for what the app sent uncompressed is compressed: the pass-through is a choice.
    let response = get(
        &server,
        &session,
        "/apps/assets/static/app.js",
        Some("br, gzip"),
    )
    .await;
    assert_eq!(header(&response, "content-encoding"), Some("br"));
}

#[tokio::test]
async fn a_slow_stream_is_still_a_stream_when_compressed() {
    let express = Framework::express();
    let server = portal(&express).await;
    let session = server.sign_in("dev").await;
    let started = Instant::now();
    let response = get(&server, &session, "/apps/assets/static/slow.js", Some("br")).await;
    assert_eq!(header(&response, "content-encoding"), Some("br"));
    let mut stream = response.bytes_stream();
    let mut decoder = brotli::DecompressorWriter::new(Vec::new(), 4096);
    let mut first_line_at = None;
    while let Some(chunk) = stream.next().await {
        decoder.write_all(&chunk.unwrap()).unwrap();
        decoder.flush().unwrap();
        if first_line_at.is_none() && decoder.get_ref().contains(&b'\n') {
            first_line_at = Some(started.elapsed());
        }
    }
    let finished = started.elapsed();
    let text = String::from_utf8(decoder.into_inner().unwrap()).unwrap();
    assert_eq!(text.lines().count(), 10);
    assert!(text.starts_with("console.log('line 0:"));
    // The upstream writes a line every 300 ms: the first decodes long before the last is written.
    let first = first_line_at.expect("decoded a line");
    assert!(
        first + Duration::from_millis(1500) < finished,
        "first line after {first:?}, stream finished after {finished:?}: buffered, not streamed"
    );
}

#[tokio::test]
async fn event_streams_are_never_compressed() {
    let express = Framework::express();
    let server = portal(&express).await;
    let session = server.sign_in("dev").await;
    let response = get(
        &server,
        &session,
        "/apps/texts/static/events",
        Some("br, gzip"),
    )
    .await;
    assert!(header(&response, "content-encoding").is_none());
    let bytes = response.bytes().await.unwrap();
    assert_eq!(bytes.to_vec(), direct(&express, "/static/events").await);
    // While this app's other text is compressed for the same client.
    let response = get(
        &server,
        &session,
        "/apps/texts/static/page.html",
        Some("br, gzip"),
    )
    .await;
    assert_eq!(header(&response, "content-encoding"), Some("br"));
}

#[tokio::test]
async fn each_app_chooses_what_is_compressed() {
    let express = Framework::express();
    let server = portal(&express).await;
    let session = server.sign_in("dev").await;
    let page = direct(&express, "/static/page.html").await;
    // `assets` (the default): HTML is left alone (BREACH), scripts are compressed.
    let html = get(
        &server,
        &session,
        "/apps/assets/static/page.html",
        Some("br"),
    )
    .await;
    assert!(header(&html, "content-encoding").is_none());
    assert_eq!(html.bytes().await.unwrap().to_vec(), page);
    // `text`: HTML too.
    let html = get(
        &server,
        &session,
        "/apps/texts/static/page.html",
        Some("br"),
    )
    .await;
    assert_eq!(header(&html, "content-encoding"), Some("br"));
    assert_eq!(decode(Some("br"), &html.bytes().await.unwrap()), page);
    // `off`: nothing, not even scripts.
    let script = get(
        &server,
        &session,
        "/apps/plain/static/app.js",
        Some("br, gzip"),
    )
    .await;
    assert!(header(&script, "content-encoding").is_none());
    assert!(header(&script, "vary").is_none());
    assert_eq!(
        script.bytes().await.unwrap().to_vec(),
        direct(&express, "/static/app.js").await
    );
}

/// The embedded Luigi core file on disk, as `npm ci` installed it.
fn luigi_file(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/node_modules/@luigi-project/core/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(path).unwrap()
}

#[tokio::test]
async fn luigi_core_comes_from_its_precompressed_copy() {
    let server = TestServer::embedded().await;
    let original = luigi_file("luigi.js");
    let path = "/shell/luigi/2.31.0/luigi.js";
    for (asked, coding) in [("gzip, deflate, br", "br"), ("gzip", "gzip")] {
        let response = server
            .get(path)
            .header("accept-encoding", asked)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "content-encoding"), Some(coding));
        assert_eq!(header(&response, "vary"), Some("accept-encoding"));
        // Stored bytes have a length (on the fly has none) and an entity tag of their own.
        let length: usize = header(&response, "content-length")
            .unwrap()
            .parse()
            .unwrap();
        let etag = header(&response, "etag").unwrap().to_owned();
        assert!(etag.ends_with(&format!("-{coding}\"")), "{etag}");
        let bytes = response.bytes().await.unwrap();
        assert_eq!(bytes.len(), length);
        assert!(bytes.len() * 3 < original.len());
        assert_eq!(decode(Some(coding), &bytes), original, "{coding}");
        let revalidated = server
            .get(path)
            .header("accept-encoding", asked)
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED, "{coding}");
    }
    let plain = server.get(path).send().await.unwrap();
    assert!(header(&plain, "content-encoding").is_none());
    assert_eq!(plain.bytes().await.unwrap().to_vec(), original);
}

#[tokio::test]
async fn the_shell_config_and_bootstrap_are_compressed() {
    let server = TestServer::embedded().await;
    let session = server.sign_in("alice").await;
    let plain = server.shell_config(&session).await;
    let response = get(&server, &session, "/shell/config.json", Some("gzip")).await;
    assert_eq!(header(&response, "content-encoding"), Some("gzip"));
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    let config: serde_json::Value =
        serde_json::from_slice(&decode(Some("gzip"), &response.bytes().await.unwrap())).unwrap();
    // The CSRF token is per session, so the two documents are equal.
    assert_eq!(config, plain);

    let bootstrap = std::fs::read(format!(
        "{}/web/shell/bootstrap.js",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let response = server
        .get("/shell/bootstrap.js")
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&response, "content-encoding"), Some("br"));
    let etag = header(&response, "etag").unwrap().to_owned();
    assert!(etag.starts_with("W/\""), "{etag}");
    assert_eq!(
        decode(Some("br"), &response.bytes().await.unwrap()),
        bootstrap
    );
    // The weak tag the browser now holds still revalidates.
    let revalidated = server
        .get("/shell/bootstrap.js")
        .header("accept-encoding", "br")
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
}
