//! WebSocket echo round-trips through a proxy: the upstream and the load generator of bench/run.sh's
//! WebSocket rows (wrk speaks no WebSocket).
//!
//! - `ws_echo serve <addr>`: an echo server; every text or binary message comes back as sent.
//! - `ws_echo load <ws url> <connections> <seconds> [cookie]`: opens that many connections (with the
//!   cookie and an `Origin` of the URL's own host, as a browser on the portal would), then on each sends
//!   a 64-byte text message and waits for its echo, again and again until the time is up. Prints one
//!   line, `round_trips=N p50_us=… p99_us=… errors=…`, and exits non-zero on any error.
//!
//! Both run on one single-threaded runtime: bench/run.sh pins them to the load core.

use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["serve", addr] => runtime.block_on(serve(addr)),
        ["load", url, connections, seconds, rest @ ..] => runtime.block_on(load(
            url,
            connections.parse()?,
            Duration::from_secs(seconds.parse()?),
            rest.first().copied(),
        )),
        _ => Err(
            "usage: ws_echo serve <addr> | ws_echo load <ws url> <connections> <seconds> [cookie]"
                .into(),
        ),
    }
}

async fn serve(addr: &str) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening {}", listener.local_addr()?);
    let router = axum::Router::new().fallback(|upgrade: WebSocketUpgrade| async move {
        let response: Response = upgrade.on_upgrade(echo);
        response
    });
    axum::serve(listener, router).await?;
    Ok(())
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let reply = match message {
            Message::Text(_) | Message::Binary(_) => message,
            Message::Close(_) => break,
            _ => continue,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

async fn load(
    url: &str,
    connections: usize,
    duration: Duration,
    cookie: Option<&str>,
) -> Result<(), Error> {
    let mut sockets = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut request = url.into_client_request()?;
        let host = request
            .uri()
            .authority()
            .ok_or("the URL has no host")?
            .to_string();
        let headers = request.headers_mut();
        headers.insert("origin", format!("http://{host}").parse()?);
        if let Some(cookie) = cookie {
            headers.insert("cookie", cookie.parse()?);
        }
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        sockets.push(socket);
    }
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|socket| tokio::spawn(round_trips(socket, deadline)))
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0_usize;
    for task in tasks {
        match task.await {
            Ok(Ok(mut own)) => latencies.append(&mut own),
            Ok(Err(_)) | Err(_) => errors += 1,
        }
    }
    latencies.sort_unstable();
    let percentile = |p: usize| {
        latencies
            .get(latencies.len().saturating_sub(1) * p / 100)
            .map_or(0, |latency| latency.as_micros())
    };
    println!(
        "round_trips={} p50_us={} p99_us={} errors={errors}",
        latencies.len(),
        percentile(50),
        percentile(99)
    );
    if errors > 0 {
        return Err(format!("{errors} connection(s) failed").into());
    }
    Ok(())
}

/// Sends a message and waits for its echo until `deadline`; the time of each round trip.
async fn round_trips<S>(
    mut socket: tokio_tungstenite::WebSocketStream<S>,
    deadline: Instant,
) -> Result<Vec<Duration>, tungstenite::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let payload = "x".repeat(64);
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        let sent = Instant::now();
        socket
            .send(tungstenite::Message::text(payload.clone()))
            .await?;
        loop {
            match socket.next().await {
                Some(Ok(tungstenite::Message::Text(text))) if text.as_str() == payload => break,
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(error),
                None => return Err(tungstenite::Error::ConnectionClosed),
            }
        }
        latencies.push(sent.elapsed());
    }
    let _ = socket.close(None).await;
    Ok(latencies)
}
