//! The floor under portico's proxy cost: the same runtime layout, server and pooled client (one
//! single-threaded tokio runtime, as portico with `server.workers: 1`; hyper; hyper-util's legacy client), forwarding every request to one upstream and doing nothing else — no
//! routing, session, access check, header hygiene, identity or log line.
//!
//! `bench/run.sh` runs it as its own row ("hyper floor"), so the gap between portico and nginx can be
//! split into what the stack costs and what portico's own work costs.
//!
//! Usage: `bare_proxy <listen addr> <upstream base URL>`, e.g. `bare_proxy 127.0.0.1:8099 http://127.0.0.1:8098`.

use std::convert::Infallible;
use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bare_proxy <listen addr> <upstream base URL>";
    let listen: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let upstream = args.next().ok_or(usage)?;
    let upstream = upstream.trim_end_matches('/').to_owned();

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> =
        Client::builder(TokioExecutor::new()).build(connector);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let client = client.clone();
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let service = service_fn(move |mut request: Request<Incoming>| {
                let client = client.clone();
                let target = format!(
                    "{upstream}{}",
                    request.uri().path_and_query().map_or("/", |pq| pq.as_str())
                );
                async move {
                    *request.uri_mut() = target.parse::<Uri>().unwrap_or_default();
                    request.headers_mut().remove(hyper::header::HOST);
                    let response = match client.request(request).await {
                        Ok(response) => response.map(axum::body::Body::new),
                        Err(_) => Response::builder()
                            .status(502)
                            .body(axum::body::Body::empty())
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
