//! One worker's keep-alive connections to `http://` upstreams: HTTP/1.1 senders kept per upstream
//! authority, taken for a request and given back when its response body has ended.
//!
//! Why not hyper-util's legacy client, used before for these (it still serves `https://` upstreams,
//! `proxy::tls`): per request it hashed its pool key (scheme and authority, byte by byte through
//! SipHash) three times, spawned a task that waited for the connection to be ready again, and went
//! through its checkout and pooled-handle machinery: about 7,000 instructions of a proxied request's
//! 84,000 (bench/README.md). Here a request costs one lookup of its authority under an uncontended
//! lock (the pool is the worker's own), and the connection goes back to the pool from the response
//! body's end, without a task.
//!
//! What it must keep (the legacy client's behaviour, which tests check): connections are reused; an
//! idle connection the upstream closed is never used, and a request that a reused connection
//! refused before sending anything is sent again on another one (the upstream closed it as the
//! request left, e.g. at its keep-alive timeout); a fresh connection's failure is final. Beyond the
//! legacy client, as nginx's `proxy_next_upstream` does: a bodiless request with an idempotent method
//! that was sent on a connection which had rested at least `REPLAY_AFTER_REST` and then closed
//! without any answer (the upstream's keep-alive timeout struck as it arrived) is sent again on a
//! fresh connection; the request
//! goes in origin form with `Host` set to the upstream's authority when absent; `101 Switching
//! Protocols` hands the connection over (`hyper::upgrade::on`) and it is never pooled; a body dropped
//! before its end takes its connection with it (its state is unknown). Idle connections are dropped
//! after `IDLE_TIMEOUT`, and at most `MAX_IDLE_PER_AUTHORITY` are kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::ServiceExt;

use crate::http::watched::{Ending, Watch, WatchedBody};

/// How long an unused connection is kept (as the legacy client's `pool_idle_timeout`).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a connection must have rested before a request on it is kept for sending again: no
/// upstream's keep-alive timeout is shorter (nginx's default is 75 s, Node's 5 s).
const REPLAY_AFTER_REST: Duration = Duration::from_millis(100);

/// The most idle connections kept per upstream authority (as its `pool_max_idle_per_host`).
const MAX_IDLE_PER_AUTHORITY: usize = 64;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request could not be sent.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be opened (refused, unresolvable, timed out).
    Connect(BoxError),
    /// The exchange on a connection failed (closed mid-request, a malformed answer, the request
    /// body's own error).
    Exchange(hyper::Error),
}

/// The plain-http connections of one worker.
pub struct PlainPool {
    connector: HttpConnector,
    /// Idle senders per authority, the most recently used last.
    idle: Mutex<HashMap<Arc<str>, Vec<Idle>, foldhash::fast::RandomState>>,
}

struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

impl PlainPool {
    pub fn new(connector: HttpConnector) -> Arc<Self> {
        Arc::new(PlainPool {
            connector,
            idle: Mutex::default(),
        })
    }

    /// Sends `request` to `authority` (`host:port`), its URI in origin form (path and query).
    pub async fn send(
        self: &Arc<Self>,
        authority: &str,
        mut request: Request<Body>,
    ) -> Result<Response<Body>, SendError> {
        if !request.headers().contains_key(header::HOST) {
            let host = HeaderValue::from_str(authority)
                .map_err(|error| SendError::Connect(Box::new(error)))?;
            request.headers_mut().insert(header::HOST, host);
        }
        // After a reused connection failed in a way that may have used it up, only fresh ones.
        let mut fresh_only = false;
        loop {
            let (key, pooled) = self.checkout(authority, fresh_only).await;
            let reused = pooled.is_some();
            let (mut sender, rested) = match pooled {
                Some(pooled) => pooled,
                None => (self.connect(authority).await?, Duration::ZERO),
            };
            // A copy to send again if the upstream's keep-alive timeout strikes as the request
            // arrives (see below); taken before sending, as sending consumes the request. Only on a
            // connection that rested long enough for such a timeout: a copy of every request cost
            // about 2,700 instructions, and under load connections rest for microseconds.
            let replay = if rested >= REPLAY_AFTER_REST {
                replayable(&request)
            } else {
                None
            };
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.lease(key, sender, response)),
                Err(mut error) => {
                    request = match (error.take_message(), replay) {
                        // Nothing was sent: the connection closed as the request left. The
                        // legacy client sent such a request again on another connection; so does
                        // this pool. A fresh connection's failure is final.
                        (Some(unsent), _) if reused => unsent,
                        // Sent, and the connection closed before any answer: the upstream closed it
                        // at its keep-alive timeout as the request arrived (nginx does, at exactly
                        // `keepalive_timeout`). Safe to repeat only for a request without a body
                        // whose method is idempotent, as nginx's `proxy_next_upstream` does.
                        (_, Some(copy)) if error.error().is_incomplete_message() => {
                            fresh_only = true;
                            copy
                        }
                        _ => return Err(SendError::Exchange(error.into_error())),
                    };
                }
            }
        }
    }

    /// The pool's key for `authority`, and (unless `fresh_only`) an idle sender ready for a
    /// request with how long it rested, if one is left.
    async fn checkout(
        &self,
        authority: &str,
        fresh_only: bool,
    ) -> (Arc<str>, Option<(SendRequest<Body>, Duration)>) {
        loop {
            let (key, idle) = {
                let mut map = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
                match map.get_key_value(authority) {
                    Some((key, _)) => {
                        let key = key.clone();
                        let idle = if fresh_only {
                            None
                        } else {
                            map.get_mut(authority).and_then(Vec::pop)
                        };
                        (key, idle)
                    }
                    None => {
                        let key: Arc<str> = Arc::from(authority);
                        map.insert(key.clone(), Vec::new());
                        (key, None)
                    }
                }
            };
            let Some(Idle { mut sender, since }) = idle else {
                return (key, None);
            };
            let rested = since.elapsed();
            if sender.is_closed() || rested > IDLE_TIMEOUT {
                continue;
            }
            // Given back at its response's end, a connection is almost always ready by now; if its
            // task has not yet taken that end in, this waits for it (or for its close).
            if sender.is_ready() || sender.ready().await.is_ok() {
                return (key, Some((sender, rested)));
            }
        }
    }

    /// A new connection to `authority`, driven by a task on this worker's runtime.
    async fn connect(&self, authority: &str) -> Result<SendRequest<Body>, SendError> {
        let uri = Uri::builder()
            .scheme("http")
            .authority(authority)
            .path_and_query("/")
            .build()
            .map_err(|error| SendError::Connect(Box::new(error)))?;
        let io = self
            .connector
            .clone()
            .oneshot(uri)
            .await
            .map_err(|error| SendError::Connect(Box::new(error)))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|error| SendError::Connect(Box::new(error)))?;
        tokio::spawn(async move {
            // The connection's own failures reach the request that was on it; nothing to add here.
            let _ = connection.with_upgrades().await;
        });
        Ok(sender)
    }

    /// `response` with its body holding the connection until it ends (see the module docs).
    fn lease(
        self: &Arc<Self>,
        key: Arc<str>,
        sender: SendRequest<Body>,
        response: Response<Incoming>,
    ) -> Response<Body> {
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            // The connection now belongs to the upgrade.
            return response.map(Body::new);
        }
        let lease = Lease {
            pool: self.clone(),
            key,
            sender,
        };
        // How the body ended is `WatchedBody`'s to judge (an empty one that is never polled
        // included, at its drop).
        response.map(|body| Body::new(WatchedBody::new(Body::new(body), lease)))
    }

    fn put(&self, key: Arc<str>, sender: SendRequest<Body>) {
        let mut map = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let idle = map.entry(key).or_default();
        // Oldest first: drop those past their time, and the oldest beyond the cap.
        if idle
            .first()
            .is_some_and(|oldest| oldest.since.elapsed() > IDLE_TIMEOUT)
        {
            idle.retain(|entry| entry.since.elapsed() <= IDLE_TIMEOUT && !entry.sender.is_closed());
        }
        if idle.len() >= MAX_IDLE_PER_AUTHORITY {
            idle.remove(0);
        }
        idle.push(Idle {
            sender,
            since: Instant::now(),
        });
    }
}

/// A copy of `request` to send again, when repeating it cannot do what sending it once would not:
/// an idempotent method (RFC 9110 §9.2.2), no body, not a WebSocket handshake.
fn replayable(request: &Request<Body>) -> Option<Request<Body>> {
    let idempotent = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    if !idempotent
        || !http_body::Body::is_end_stream(request.body())
        || request.headers().contains_key(header::UPGRADE)
    {
        return None;
    }
    let mut copy = Request::new(Body::empty());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    Some(copy)
}

/// A connection lent to one response.
struct Lease {
    pool: Arc<PlainPool>,
    key: Arc<str>,
    sender: SendRequest<Body>,
}

impl Watch for Lease {
    fn data(&mut self, _: &Bytes) -> bool {
        true
    }

    /// The response has ended: the connection may serve the next request, unless it closed. Cut
    /// short or failed, its state is unknown: it is dropped with the lease.
    fn end(self, ending: Ending) {
        if ending == Ending::Complete && !self.sender.is_closed() {
            self.pool.put(self.key, self.sender);
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(error) => write!(f, "cannot connect: {error}"),
            SendError::Exchange(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Connect(error) => Some(&**error),
            SendError::Exchange(error) => Some(error),
        }
    }
}
