//! The floor under portico's proxy cost: the same runtime layout, server and pooled client (one
//! single-threaded tokio runtime, as portico with `server.workers: 1`; hyper's HTTP/1 server; portico's
//! own upstream pool, `proxy::pool`, through `portico::floor`), forwarding every request to one
//! upstream and doing nothing else — no
//! routing, session, access check, header hygiene, identity or log line.
//!
//! `bench/run.sh` runs it as its own row ("hyper floor"), so the gap between portico and nginx can be
//! split into what the stack costs and what portico's own work costs.
//!
//! Usage: `bare_proxy <listen addr> <upstream base URL>`, e.g. `bare_proxy 127.0.0.1:8099 http://127.0.0.1:8098`.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use portico::floor::PlainPool;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bare_proxy <listen addr> <upstream base URL>";
    let listen: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let upstream: Uri = args.next().ok_or(usage)?.parse()?;
    let authority = upstream
        .authority()
        .filter(|_| upstream.scheme_str() == Some("http"))
        .ok_or("the upstream must be an http:// URL")?
        .as_str()
        .to_owned();
    let base = upstream.path().trim_end_matches('/').to_owned();

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let pool = PlainPool::new(connector);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let pool = pool.clone();
        let authority = authority.clone();
        let base = base.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let pool = pool.clone();
                let authority = authority.clone();
                let (mut parts, body) = request.into_parts();
                // Origin form below the upstream's base path; `Host` becomes the upstream's.
                let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
                parts.uri = if base.is_empty() {
                    Uri::try_from(target).unwrap_or_default()
                } else {
                    Uri::try_from(format!("{base}{target}")).unwrap_or_default()
                };
                parts.headers.remove(hyper::header::HOST);
                let request = Request::from_parts(parts, Body::new(body));
                async move {
                    let response = match pool.send(&authority, request).await {
                        Ok(response) => response,
                        Err(_) => Response::builder()
                            .status(502)
                            .body(Body::empty())
                            .unwrap_or_default(),
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
