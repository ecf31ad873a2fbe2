//! The tenant listener's accept loop: connection caps, the header-read timeout, HTTP/1.1 and HTTP/2.
//!
//! `axum::serve` keeps every accepted connection for as long as the client likes, so a few hundred
//! half-sent requests (slowloris) stopped all service. Here every connection holds one of
//! `server.max_connections` slots and one of its client address's `max_connections_per_client`;
//! a connection over either cap gets a one-line 503 or 429 and is closed before any request is read.
//! A connection must show its protocol (the HTTP/2 preface or an HTTP/1 request line) within
//! `header_read_timeout`, and for HTTP/1 each request head (and each keep-alive pause) must arrive within
//! it too; an HTTP/2 connection with no request in flight that sends nothing for that long is closed.
//! This module must not look at requests: routing, tenants and errors stay in the router.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use crate::telemetry::Metrics;
use crate::telemetry::metrics::GaugeGuard;

/// The limits of one listener, from `server:`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
}

/// The first bytes of every HTTP/2 connection with prior knowledge (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Serves `router` on `listener` until `shutdown` completes, then lets open connections finish.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let clients = Clients::default();
    let mut refusals = Refusals::default();
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Without TCP_NODELAY a response written in two segments waits for the client's delayed ACK
        // (about 40 ms on Linux): invisible in the median, dominant in the p99 (see bench/README.md).
        let _ = stream.set_nodelay(true);
        let Some(client) = clients.take(peer.ip(), limits.max_connections_per_client) else {
            refusals.note(peer.ip(), "too many connections from this client address");
            tokio::spawn(refuse(stream, "429 Too Many Requests"));
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refusals.note(peer.ip(), "the listener is full (server.max_connections)");
            tokio::spawn(refuse(stream, "503 Service Unavailable"));
            continue;
        };
        let router = router.clone();
        let watcher = graceful.watcher();
        let open = metrics.connection();
        tokio::spawn(async move {
            let _held: (OwnedSemaphorePermit, ClientSlot, GaugeGuard) = (slot, client, open);
            let Some((http2, io)) = sniff(stream, limits.header_read_timeout).await else {
                return;
            };
            let in_flight = Arc::new(AtomicUsize::new(0));
            // HTTP/2 has no header-read timeout of its own: an HTTP/2 connection with no request in
            // flight that sends nothing for `header_read_timeout` is closed instead.
            let mut io = io;
            if http2 {
                io.idle = Some(IdleWatch {
                    limit: limits.header_read_timeout,
                    in_flight: in_flight.clone(),
                    deadline: Box::pin(tokio::time::sleep(limits.header_read_timeout)),
                });
            }
            let service =
                hyper::service::service_fn(move |mut request: axum::http::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    // Only HTTP/2 needs the count (for the idle watch); HTTP/1 keeps its hot path.
                    let guard = http2.then(|| InFlightGuard::start(&in_flight));
                    let response = router.clone().oneshot(request);
                    async move {
                        let response = response.await?;
                        Ok::<_, Infallible>(match guard {
                            Some(guard) => response.map(|body| {
                                Body::new(Tracked {
                                    inner: body,
                                    _guard: guard,
                                })
                            }),
                            None => response,
                        })
                    }
                });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            // Pings find peers that are gone while a request is in flight.
            builder
                .http2()
                .timer(TokioTimer::new())
                .keep_alive_interval(limits.header_read_timeout)
                .keep_alive_timeout(Duration::from_secs(20));
            let builder = if http2 {
                builder.http2_only()
            } else {
                builder.http1_only()
            };
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
            if let Err(error) = watcher.watch(connection).await {
                log_refused_request(peer, &*error);
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// A request hyper refused before the router saw it (a bad request line, a head over the limit) was
/// answered 400, 414 or 431 by hyper: it gets an access line too, with the client's address.
fn log_refused_request(peer: std::net::SocketAddr, error: &(dyn std::error::Error + 'static)) {
    let Some(hyper) = error
        .downcast_ref::<hyper::Error>()
        .filter(|e| e.is_parse())
    else {
        tracing::debug!(%error, "connection ended with an error");
        return;
    };
    // The status hyper answered with (its `on_parse_error`): 414 and 431 are both "too large", told
    // apart by hyper's message only ("URI too long", "message head is too large").
    let status: u16 = if !hyper.is_parse_too_large() {
        400
    } else if hyper.to_string().contains("URI") {
        414
    } else {
        431
    };
    tracing::info!(
        target: "access",
        client = %peer.ip(),
        status,
        refused = %hyper,
        "malformed request refused"
    );
}

/// Reads until the protocol is known, within `timeout`: HTTP/2 (the whole preface) or HTTP/1 (the first
/// byte that is not the preface's). `None` for a client that sends nothing useful in time.
async fn sniff(mut stream: TcpStream, timeout: Duration) -> Option<(bool, Replay)> {
    let mut seen = [0u8; 24];
    let mut filled = 0;
    let read = async {
        loop {
            let n = stream.read(&mut seen[filled..]).await.ok()?;
            if n == 0 {
                return None;
            }
            filled += n;
            if seen[..filled] != H2_PREFACE[..filled] {
                return Some(false);
            }
            if filled == seen.len() {
                return Some(true);
            }
        }
    };
    let http2 = tokio::time::timeout(timeout, read).await.ok()??;
    Some((
        http2,
        Replay {
            head: seen,
            at: 0,
            len: filled,
            stream,
            idle: None,
        },
    ))
}

/// Refused connections are logged at most every few seconds, with a count: a flood must not become
/// a flood of log lines too.
#[derive(Default)]
struct Refusals {
    since_last_line: u64,
    last_line: Option<tokio::time::Instant>,
}

impl Refusals {
    const EVERY: Duration = Duration::from_secs(10);

    fn note(&mut self, client: IpAddr, why: &'static str) {
        self.since_last_line += 1;
        let now = tokio::time::Instant::now();
        if self
            .last_line
            .is_some_and(|last| now.duration_since(last) < Self::EVERY)
        {
            return;
        }
        tracing::warn!(
            %client,
            refused = self.since_last_line,
            "connections refused: {why}"
        );
        self.since_last_line = 0;
        self.last_line = Some(now);
    }
}

/// A refusal before any request is read: one short response, then the connection is closed.
async fn refuse(mut stream: TcpStream, status: &'static str) {
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\nretry-after: 5\r\n\r\n"
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client already sent, briefly: closing with unread data resets the connection,
        // and the client would see a reset instead of the answer.
        let mut sink = [0u8; 4096];
        let mut left: usize = 64 * 1024;
        while left > 0 {
            let n = stream.read(&mut sink).await?;
            if n == 0 {
                break;
            }
            left = left.saturating_sub(n);
        }
        io::Result::Ok(())
    })
    .await;
}

/// Open connections per client address. An IPv6 client is counted by its /64, which one host
/// usually has whole; an IPv4-mapped IPv6 address counts as the IPv4 address.
#[derive(Clone, Default)]
struct Clients(Arc<Mutex<HashMap<IpAddr, usize>>>);

impl Clients {
    fn take(&self, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let key = client_key(ip);
        let mut open = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(key).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            clients: self.clone(),
            key,
        })
    }
}

fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// One open connection of a client; gives its place back when dropped.
struct ClientSlot {
    clients: Clients,
    key: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self
            .clients
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The connection with the bytes `sniff` read put back in front, and for HTTP/2 the idle watch.
struct Replay {
    head: [u8; 24],
    at: usize,
    len: usize,
    stream: TcpStream,
    idle: Option<IdleWatch>,
}

/// Ends (as if the client had closed) a connection that has had no request in flight and sent
/// nothing for `limit`.
struct IdleWatch {
    limit: Duration,
    in_flight: Arc<AtomicUsize>,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

/// One request of a connection, from its start until its response body is dropped (sent or abandoned).
struct InFlightGuard(Arc<AtomicUsize>);

impl InFlightGuard {
    fn start(in_flight: &Arc<AtomicUsize>) -> Self {
        in_flight.fetch_add(1, Ordering::Relaxed);
        InFlightGuard(in_flight.clone())
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request counted as in flight until it is dropped.
struct Tracked {
    inner: Body,
    _guard: InFlightGuard,
}

impl http_body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl AsyncRead for Replay {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.len {
            let n = (this.len - this.at).min(buf.remaining());
            buf.put_slice(&this.head[this.at..this.at + n]);
            this.at += n;
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Pending => {}
            ready => {
                if let Some(watch) = &mut this.idle {
                    if buf.filled().len() > before {
                        let next = tokio::time::Instant::now() + watch.limit;
                        watch.deadline.as_mut().reset(next);
                    }
                }
                return ready;
            }
        }
        let Some(watch) = &mut this.idle else {
            return Poll::Pending;
        };
        while watch.deadline.as_mut().poll(cx).is_ready() {
            if watch.in_flight.load(Ordering::Relaxed) == 0 {
                return Poll::Ready(Ok(())); // nothing read: the connection ends
            }
            // Busy: look again later (polling the new deadline registers the wake-up).
            let next = tokio::time::Instant::now() + watch.limit;
            watch.deadline.as_mut().reset(next);
        }
        Poll::Pending
    }
}

impl AsyncWrite for Replay {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_counted_by_address_and_ipv6_by_prefix() {
        let clients = Clients::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap_or(IpAddr::from([0; 4]));
        let first = clients.take(a, 2);
        let second = clients.take(a, 2);
        assert!(first.is_some() && second.is_some());
        assert!(clients.take(a, 2).is_none(), "the third is over the cap");
        assert!(
            clients.take(IpAddr::from([10, 0, 0, 2]), 2).is_some(),
            "another address has its own count"
        );
        drop(first);
        assert!(
            clients.take(a, 2).is_some(),
            "a closed connection frees its place"
        );

        let mapped: IpAddr = "::ffff:10.0.0.9".parse().unwrap_or(a);
        assert_eq!(client_key(mapped), IpAddr::from([10, 0, 0, 9]));
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap_or(a);
        let other: IpAddr = "2001:db8:1:2:ffff::7".parse().unwrap_or(a);
        assert_eq!(client_key(one), client_key(other), "one /64, one client");
    }
}
