//! The listeners' accept loop: connection caps, TLS, client timeouts, HTTP/1.1 and HTTP/2, draining.
//!
//! `axum::serve` keeps every accepted connection for as long as the client likes, so a few hundred
//! half-sent requests (slowloris) stopped all service. Here every connection holds one of
//! `server.max_connections` slots and one of its client address's `max_connections_per_client`;
//! a connection over either cap gets a one-line 503 or 429 and is closed before any request is read.
//! With `server.tls` the TLS handshake comes next (within `header_read_timeout`), and ALPN picks HTTP/2
//! or HTTP/1.1; without it, the first bytes do (the HTTP/2 preface, or anything else for HTTP/1).
//!
//! Client timeouts, after nginx: a request head must arrive within `header_read_timeout` of its first
//! byte (of the accept, for the first request); a connection with no request in flight is closed
//! `keepalive_timeout` after its last response; a request body that sends nothing for
//! `body_read_timeout` while it is read fails (HTTP/1: 408 and the connection closed). Each connection
//! has one [`Conn`] record (requests started and in flight) that the IO wrapper ([`Watched`]) reads
//! to know which of the first two applies; the HTTP/1 hot path pays a few atomic operations for it per
//! request, no allocation and no lock. Upgraded (WebSocket) connections are never timed out here.
//!
//! An HTTP/1 connection that has rested [`PARK_AFTER`] between requests is parked: hyper's connection
//! and its buffers are dropped, and the socket is only watched until the client sends again (or
//! `keepalive_timeout` ends it); then a new hyper connection picks up the same socket. What the client
//! sees does not change; an idle connection costs about 3 KiB instead of about 36 KiB.
//!
//! On shutdown the loop stops accepting, every open connection is asked to finish (HTTP/1: after the
//! request in flight; HTTP/2: GOAWAY), and what is still open at `shutdown_timeout` is logged and cut.
//! This module must not look at requests: routing, tenants and errors stay in the router.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::{Service, ServiceExt};

use crate::telemetry::Metrics;
use crate::telemetry::metrics::GaugeGuard;

/// The limits of one listener, from `server:`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub header_read_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub body_read_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
}

impl Limits {
    pub(super) fn of(server: &crate::config::ServerSettings) -> Self {
        Limits {
            header_read_timeout: server.header_read_timeout,
            keepalive_timeout: server.keepalive_timeout,
            body_read_timeout: server.body_read_timeout,
            shutdown_timeout: server.shutdown_timeout,
            max_connections: server.max_connections,
            max_connections_per_client: server.max_connections_per_client,
        }
    }
}

/// The first bytes of every HTTP/2 connection with prior knowledge (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A listener's limits and its connection caps, shared by all the workers that accept on it, so
/// `max_connections` and `max_connections_per_client` hold for the process, not per worker.
#[derive(Clone)]
pub(super) struct Caps {
    limits: Limits,
    slots: Arc<Semaphore>,
    clients: Clients,
}

impl Caps {
    pub(super) fn new(limits: Limits) -> Self {
        Caps {
            limits,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            clients: Clients::default(),
        }
    }
}

/// What answers a listener's requests: an axum `Router`, or the tenant origin's one pass
/// (`router::Portal`) without a router around it.
pub(super) trait Handler:
    Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<H> Handler for H where
    H: Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// Serves `router` on `listener` (over TLS with `tls`) within `caps` until `shutdown` is cancelled,
/// then lets this worker's open connections finish for at most `shutdown_timeout`. `name` names the
/// listener in the log.
pub(super) async fn serve<H: Handler>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: H,
    caps: Caps,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    name: &'static str,
) -> io::Result<()> {
    let Caps {
        limits,
        slots,
        clients,
    } = caps;
    let mut refusals = Refusals::default();
    let graceful = GracefulShutdown::new();
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
            () = shutdown.cancelled() => break,
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
        let connection = Connection {
            peer,
            router: router.clone(),
            limits,
            watcher: graceful.watcher(),
            shutdown: shutdown.clone(),
        };
        let tls = tls.clone();
        let open = metrics.connection();
        tokio::spawn(async move {
            let _held: (OwnedSemaphorePermit, ClientSlot, GaugeGuard) = (slot, client, open);
            connection.run(stream, tls).await;
        });
    }
    drop(listener);
    drain(graceful, limits, name).await;
    Ok(())
}

/// Waits for this worker's open connections to finish, at most `shutdown_timeout`; says what was cut.
async fn drain(graceful: GracefulShutdown, limits: Limits, name: &str) {
    let open_at_start = graceful.count();
    if open_at_start > 0 {
        tracing::info!(
            listener = name,
            connections = open_at_start,
            "waiting up to {:?} for open connections to finish",
            limits.shutdown_timeout
        );
    }
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            open_at_start,
            "shutdown deadline ({:?}) reached: cutting the connections still open",
            limits.shutdown_timeout
        );
    }
}

/// One accepted connection, before its protocol is known.
struct Connection<H> {
    peer: SocketAddr,
    router: H,
    limits: Limits,
    watcher: Watcher,
    /// Cancelled when the listener drains: an HTTP/1 connection then finishes its request and closes.
    shutdown: CancellationToken,
}

impl<H: Handler> Connection<H> {
    async fn run(self, stream: TcpStream, tls: Option<TlsAcceptor>) {
        let header_read = self.limits.header_read_timeout;
        let Some(acceptor) = tls else {
            let head_deadline = Instant::now() + header_read;
            // Boxed: a connection waits here once, not for as long as it is open.
            let Some((http2, io)) = Box::pin(sniff(stream, header_read)).await else {
                return;
            };
            return self.serve(io, http2, head_deadline).await;
        };
        // Boxed: the handshake's state is large and short-lived; inline, every connection's task
        // (plain HTTP too) would be that large for as long as it is open.
        let accept = Box::pin(tokio::time::timeout(header_read, acceptor.accept(stream)));
        let stream = match accept.await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(peer = %self.peer, %error, "TLS handshake failed");
                return;
            }
            Err(_) => return,
        };
        let http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
        let io = Replay {
            head: [0; 24],
            at: 0,
            len: 0,
            stream,
        };
        // Boxed: rustls's connection state is large, and the task of every plain connection would be
        // as large if this future were inline in it.
        Box::pin(self.serve(io, http2, Instant::now() + header_read)).await;
    }

    /// Serves HTTP on `io` until the connection ends (or is upgraded).
    async fn serve<S>(self, io: Replay<S>, http2: bool, head_deadline: Instant)
    where
        S: Park + AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            peer,
            router,
            limits,
            watcher,
            shutdown,
        } = self;
        let conn = Arc::new(Conn::default());
        let io = Watched {
            io,
            watch: Watch::new(conn.clone(), !http2, head_deadline, &limits),
        };
        let body_timeout = limits.body_read_timeout;
        let service = hyper::service::service_fn(move |request: axum::http::Request<Incoming>| {
            let guard = InFlight::start(&conn);
            let mut request =
                request.map(|body| Body::new(TimedBody::new(body, body_timeout, guard.0.clone())));
            request.extensions_mut().insert(ConnectInfo(peer));
            let response = router.clone().oneshot(request);
            async move {
                let response = response.await?;
                Ok::<_, Infallible>(guard.finish(response, http2))
            }
        });
        if http2 {
            // Boxed, so that HTTP/2's state does not make every connection's task as large.
            return Box::pin(serve_http2(
                TokioIo::new(io),
                service,
                limits,
                watcher,
                peer,
            ))
            .await;
        }
        // Held until the connection ends, so the drain waits for it; the drain's signal is `shutdown`.
        let _counted = watcher;
        let mut builder = hyper::server::conn::http1::Builder::new();
        // The head timeout is `Watch`'s (from the head's first byte, not from the end of the last
        // response, so keep-alive can be longer than it); hyper's own would close idle connections early.
        builder.timer(TokioTimer::new()).header_read_timeout(None);
        let mut io = TokioIo::new(io);
        let mut draining = false;
        loop {
            // Boxed: hyper's connection (with its 8 KiB read and 8 KiB write buffers) exists only
            // while the connection is not parked, and the task stays small while it is.
            let mut connection = Box::pin(
                builder
                    .serve_connection(io, service.clone())
                    .with_upgrades(),
            );
            let result = tokio::select! {
                biased;
                result = connection.as_mut() => result,
                () = shutdown.cancelled(), if !draining => {
                    draining = true;
                    connection.as_mut().graceful_shutdown();
                    connection.as_mut().await
                }
            };
            if let Err(error) = result {
                log_refused_request(peer, &error);
                return;
            }
            // `None`: upgraded, the tunnel has the IO now. Parked (see `Watch`): hyper ended the
            // connection as if the client had closed it, and nothing of a next request had arrived
            // (a non-empty `read_buf` would mean it had). hyper's buffers and the service's copy are
            // dropped here, before the wait.
            let Some(hyper::server::conn::http1::Parts {
                io: kept, read_buf, ..
            }) = Pin::into_inner(connection).into_parts()
            else {
                return;
            };
            io = kept;
            if draining || !io.inner().watch.parked || !read_buf.is_empty() {
                return;
            }
            drop(read_buf);
            if !io.inner_mut().unpark(&shutdown).await {
                return;
            }
        }
    }
}

/// Serves an HTTP/2 connection until it ends.
async fn serve_http2<I, S, B>(io: I, service: S, limits: Limits, watcher: Watcher, peer: SocketAddr)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<axum::http::Request<Incoming>, Response = Response<B>> + Send,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Pings find peers that are gone while a request is in flight.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_read_timeout)
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = builder.http2_only();
    let connection = builder.serve_connection_with_upgrades(io, service);
    if let Err(error) = watcher.watch(connection).await {
        log_refused_request(peer, &*error);
    }
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
async fn sniff(mut stream: TcpStream, timeout: Duration) -> Option<(bool, Replay<TcpStream>)> {
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

/// What the IO wrapper and the requests of one connection share.
#[derive(Default)]
struct Conn {
    /// Requests started on this connection.
    started: AtomicUsize,
    /// Requests whose response body is not yet dropped; an upgraded connection counts one forever.
    in_flight: AtomicUsize,
    /// HTTP/1: the request in flight had its body time out, so it is answered 408 and closed.
    body_timed_out: AtomicBool,
}

/// One request of a connection, from its start until its response body is dropped (sent or abandoned).
struct InFlight(Arc<Conn>);

impl InFlight {
    fn start(conn: &Arc<Conn>) -> Self {
        conn.started.fetch_add(1, Ordering::Relaxed);
        conn.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(conn.clone())
    }

    /// The response as the connection sends it: counted in flight until its body is dropped.
    fn finish(self, response: Response<Body>, http2: bool) -> Response<Tracked> {
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            // The connection becomes a tunnel, which no timeout of this module may cut.
            self.0.in_flight.fetch_add(1, Ordering::Relaxed);
        }
        // HTTP/1 serves one request at a time, so the flag is this request's. (A load first: the
        // common case is one plain read, not a read-modify-write.)
        if !http2 && self.0.body_timed_out.load(Ordering::Relaxed) {
            self.0.body_timed_out.store(false, Ordering::Relaxed);
            let mut timed_out = Response::new(Body::from("request body timed out\n"));
            *timed_out.status_mut() = StatusCode::REQUEST_TIMEOUT;
            timed_out.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            return timed_out.map(|inner| Tracked {
                inner,
                _guard: self,
            });
        }
        response.map(|inner| Tracked {
            inner,
            _guard: self,
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request counted as in flight until it is dropped. The connection's
/// response body type itself (not boxed into a `Body`), so it costs no allocation.
struct Tracked {
    inner: Body,
    _guard: InFlight,
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

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
enum RequestBodyError {
    #[error(transparent)]
    Read(hyper::Error),
    #[error("the request body sent nothing for {0:?} (server.body_read_timeout)")]
    Stalled(Duration),
}

/// A request body that fails when, while it is read, nothing arrives for `limit`. The timer exists
/// only once the body has had to wait (a request without a body never makes one).
struct TimedBody {
    inner: Incoming,
    limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    waiting: bool,
    conn: Arc<Conn>,
}

impl TimedBody {
    fn new(inner: Incoming, limit: Duration, conn: Arc<Conn>) -> Self {
        TimedBody {
            inner,
            limit,
            timer: None,
            waiting: false,
            conn,
        }
    }
}

impl http_body::Body for TimedBody {
    type Data = bytes::Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.waiting = false;
            return Poll::Ready(frame.map(|frame| frame.map_err(RequestBodyError::Read)));
        }
        let deadline = Instant::now() + this.limit;
        let timer = match &mut this.timer {
            Some(timer) => {
                if !this.waiting {
                    timer.as_mut().reset(deadline);
                }
                timer
            }
            None => this
                .timer
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        this.waiting = true;
        if timer.as_mut().poll(cx).is_ready() {
            this.conn.body_timed_out.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(RequestBodyError::Stalled(this.limit))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The stream with the bytes `sniff` read put back in front (none for TLS).
struct Replay<S> {
    head: [u8; 24],
    at: usize,
    len: usize,
    stream: S,
}

/// Where a connection is, for its timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A request head is arriving (or the first is awaited): `header_read_timeout`.
    Head,
    /// A request is in flight: no timeout here (its body has its own).
    Busy,
    /// Between requests: `keepalive_timeout`.
    Idle,
}

/// How long an HTTP/1 connection rests between requests before it is parked: hyper's connection (its
/// 8 KiB read buffer, its 8 KiB write buffer, the dispatcher) is dropped and the socket is watched
/// for readability alone until the next request's first bytes (or `keepalive_timeout`), as nginx does
/// with its keep-alive connections. With the task kept small (the TLS, HTTP/2 and sniffing futures
/// boxed), an idle connection went from about 36 KiB to about 3 KiB of RSS (bench/README.md,
/// "Memory"). Not at once: a client that sends its next request right after the answer (a page's
/// burst of requests, a benchmark) would rebuild hyper's connection for each one.
const PARK_AFTER: Duration = Duration::from_secs(1);

/// The connection's timeouts, kept by its reads: ends the connection (as if the client had closed it)
/// when the deadline of its phase passes, and parks an idle HTTP/1 connection after [`PARK_AFTER`].
struct Watch {
    conn: Arc<Conn>,
    /// HTTP/1: bytes read between requests start a head, and an idle connection can be parked.
    /// (HTTP/2 reads pings and settings then.)
    http1: bool,
    phase: Phase,
    /// `conn.started` when last looked at.
    seen: usize,
    deadline: Pin<Box<Sleep>>,
    /// When the request head being read must be complete (`header_read_timeout`).
    head_until: Instant,
    header_read: Duration,
    keepalive: Duration,
    /// When the connection last became idle; `keepalive_timeout` counts from here.
    idle_since: Instant,
    /// The read that ended hyper's connection was a parking, not the client leaving or a timeout.
    parked: bool,
    /// The last write would have blocked: hyper may still hold unsent bytes, so it is not parked.
    write_blocked: bool,
}

impl Watch {
    fn new(conn: Arc<Conn>, http1: bool, head_deadline: Instant, limits: &Limits) -> Self {
        Watch {
            conn,
            http1,
            phase: Phase::Head,
            seen: 0,
            deadline: Box::pin(tokio::time::sleep_until(if http1 {
                (Instant::now() + PARK_AFTER).min(head_deadline)
            } else {
                head_deadline
            })),
            head_until: head_deadline,
            header_read: limits.header_read_timeout,
            keepalive: limits.keepalive_timeout,
            idle_since: head_deadline,
            parked: false,
            write_blocked: false,
        }
    }

    /// Updates the phase from what the requests did since the last read, and from `read_bytes`.
    fn observe(&mut self, read_bytes: bool) {
        let started = self.conn.started.load(Ordering::Relaxed);
        if self.conn.in_flight.load(Ordering::Relaxed) > 0 {
            self.phase = Phase::Busy;
            self.seen = started;
            return;
        }
        if self.phase == Phase::Busy || started != self.seen {
            // A request came and went since: idle from now.
            self.seen = started;
            self.phase = Phase::Idle;
            self.idle_since = Instant::now();
            let rest = if self.http1 {
                PARK_AFTER.min(self.keepalive)
            } else {
                self.keepalive
            };
            self.deadline.as_mut().reset(self.idle_since + rest);
        }
        if read_bytes && self.http1 && self.phase == Phase::Idle {
            self.phase = Phase::Head;
            let now = Instant::now();
            self.head_until = now + self.header_read;
            // Woken early (not only at the head's deadline) so that the end of this request is seen
            // soon after it happens: the end of a response does not always come with a read, and
            // parking needs to know when the connection went idle.
            self.deadline
                .as_mut()
                .reset((now + PARK_AFTER).min(self.head_until));
        }
    }

    /// Whether the connection is to end here (its phase's deadline has passed, or it is parked);
    /// registers the wake-up otherwise.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        while self.deadline.as_mut().poll(cx).is_ready() {
            let before = (self.phase, self.seen);
            self.observe(false);
            let now = Instant::now();
            match self.phase {
                // Look again later (a request that ends without a read after it is seen then).
                Phase::Busy => {
                    let again = if self.http1 {
                        PARK_AFTER
                    } else {
                        self.keepalive
                    };
                    self.deadline.as_mut().reset(now + again);
                }
                // Just became idle: `observe` set the deadline.
                _ if (self.phase, self.seen) != before => {}
                Phase::Head => {
                    if now >= self.head_until {
                        return true;
                    }
                    let next = if self.http1 {
                        (now + PARK_AFTER).min(self.head_until)
                    } else {
                        self.head_until
                    };
                    self.deadline.as_mut().reset(next);
                }
                Phase::Idle => {
                    let closes_at = self.idle_since + self.keepalive;
                    if now >= closes_at {
                        return true;
                    }
                    if self.http1 && !self.write_blocked {
                        self.parked = true;
                        return true;
                    }
                    // Its answer is still being sent: stays with hyper until keep-alive ends.
                    self.deadline.as_mut().reset(closes_at);
                }
            }
        }
        false
    }
}

/// A stream whose readability can be awaited without reading: what a parked connection waits on.
pub(super) trait Park {
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send;
}

impl Park for TcpStream {
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        TcpStream::readable(self)
    }
}

impl Park for tokio_rustls::server::TlsStream<TcpStream> {
    /// When hyper's last read found nothing, rustls holds no decrypted bytes, so the next ones
    /// arrive on the socket.
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        self.get_ref().0.readable()
    }
}

/// The connection's IO: the replayed head, then the stream, with the timeouts of [`Watch`].
struct Watched<S> {
    io: Replay<S>,
    watch: Watch,
}

impl<S: Park> Watched<S> {
    /// A parked connection: waits for the client's next bytes; false when the connection is to
    /// close instead (`keepalive_timeout` since it became idle, or the listener drains).
    async fn unpark(&mut self, shutdown: &CancellationToken) -> bool {
        self.watch.parked = false;
        let closes_at = self.watch.idle_since + self.watch.keepalive;
        self.watch.deadline.as_mut().reset(closes_at);
        tokio::select! {
            readable = self.io.stream.readable() => readable.is_ok(),
            () = self.watch.deadline.as_mut() => false,
            () = shutdown.cancelled() => false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let io = &mut this.io;
        if io.at < io.len {
            let n = (io.len - io.at).min(buf.remaining());
            buf.put_slice(&io.head[io.at..io.at + n]);
            io.at += n;
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut io.stream).poll_read(cx, buf) {
            Poll::Pending => {
                this.watch.observe(false);
                if this.watch.expired(cx) {
                    return Poll::Ready(Ok(())); // nothing read: the connection ends
                }
                Poll::Pending
            }
            ready => {
                this.watch.observe(buf.filled().len() > before);
                ready
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io.stream).poll_write(cx, buf);
        self.watch.write_blocked = written.is_pending();
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io.stream).poll_write_vectored(cx, bufs);
        self.watch.write_blocked = written.is_pending();
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.io.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.io.stream).poll_flush(cx);
        self.watch.write_blocked = flushed.is_pending();
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.watch.parked {
            // hyper closes what it took for the client's close; the connection lives on, parked.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io.stream).poll_shutdown(cx)
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
