//! The response cache: upstream answers that the upstream declared shareable, kept in memory for the
//! apps that turn on `cache:`, so a hashed bundle costs one memory copy instead of a round trip.
//!
//! **What may be stored** (the same rule is in the README): the answer to a `GET` (a `HEAD` is answered
//! from a `GET`'s entry, never stored) without `Range` or a body, with status `200`, whose
//! `Cache-Control` lets a *shared* cache keep it. Portico always sends the user's identity upstream
//! (identity headers, a signed assertion, the app's cookies), which RFC 9111 §3.5 treats like a request
//! with `Authorization`: so the response must say `public` or `s-maxage`, and it must give a lifetime
//! (`s-maxage`, else `max-age`; no heuristics, `Expires` is not read). Never stored: `private`,
//! `no-store`, `no-cache` (in any form), a `Set-Cookie`, a `Vary` naming anything but
//! `Accept-Encoding` (`Vary: *`, `Cookie`, `Authorization`, …), a `Content-Encoding` other than the
//! common codings. Every key holds the tenant, the app, the upstream, the path and query as forwarded
//! and the request's `Accept-Encoding` normalised (the set of codings it accepts), so two tenants, two
//! apps, two queries or two encodings never share an entry; keying on the encoding even when the
//! response does not vary on it costs a little sharing and is never wrong.
//!
//! **Freshness** is `s-maxage` (else `max-age`) minus the response's `Age`. A fresh entry answers
//! without the upstream (`X-Cache: HIT`, with `Age`), and answers a client's `If-None-Match` or
//! `If-Modified-Since` with `304`. A stale entry with an `ETag` or `Last-Modified` is revalidated: the
//! upstream gets `If-None-Match`/`If-Modified-Since` in place of the client's, a `304` refreshes the
//! entry's headers and the client gets the entry (`X-Cache: REVALIDATED`); any other answer replaces
//! or drops it (`X-Cache: MISS`). A stale entry without a validator is a miss. Without an entry, a
//! client's conditional request goes upstream as it is and a `304` is not stored (filling the entry
//! would mean reading a body nobody asked for); concurrent misses are not collapsed. The request's own
//! `Cache-Control` is not read (as nginx's `proxy_cache` does not): a reload in a browser does not
//! reach the upstream while an entry is fresh.
//!
//! **Bounds:** `proxy.cache.max_bytes` for all entries together (the least recently used go first),
//! `proxy.cache.max_entry_bytes` for one. A response is never buffered before the client gets it:
//! the body is passed on in a `WatchedBody` whose watcher, a `Sink`, copies it into the entry while it
//! streams, stops copying when it passes the entry limit, and stores only a body that ended cleanly
//! (an aborted upstream or client stores nothing).
//!
//! This module does not decide access: the gateway calls it only after `rbac::decide` let the user
//! through, so a user without the app's role never reaches an entry. It never stores a response that
//! sets a cookie, and stores headers after the gateway shaped them (no portal cookie, `Location` on the
//! portal), so an entry holds nothing of the user who filled it beyond what the upstream declared public.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header,
};
use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

use crate::config::{AppId, CacheSettings, TenantId};
use crate::http::watched::{Ending, Watch, WatchedBody};
use crate::telemetry::metrics::CacheStoreMetrics;

/// The response header that says what the cache did: `HIT`, `MISS` or `REVALIDATED`.
pub(crate) const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// Bytes an entry costs beyond its body and headers (the map, the order index, the allocations), so
/// many tiny entries cannot exceed `max_bytes` by much.
const ENTRY_OVERHEAD: u64 = 256;

/// Codings an entry may be stored with; a key spells the request's accepted ones from this list only,
/// so a client cannot make the number of keys per path grow with made-up codings.
const CODINGS: [&str; 6] = ["br", "compress", "deflate", "gzip", "identity", "zstd"];

/// What the cache did for one request, for `X-Cache` and `portico_cache_responses_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheStatus {
    /// Answered from a fresh entry; the upstream was not asked.
    Hit,
    /// Answered by the upstream (stored or not).
    Miss,
    /// A stale entry the upstream confirmed with `304`, answered from the entry.
    Revalidated,
}

impl CacheStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Revalidated => "revalidated",
        }
    }

    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Revalidated => "REVALIDATED",
        })
    }
}

/// Which stored response a request may be answered with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    tenant: TenantId,
    app: AppId,
    /// The upstream's URL: a reload that points the app elsewhere starts from an empty cache.
    upstream: Box<str>,
    /// The path and query as forwarded (the query exactly as the client sent it).
    target: Box<str>,
    /// The accepted codings, normalised (see [`accepted_codings`]).
    codings: Box<str>,
}

impl Key {
    fn size(&self) -> u64 {
        (self.upstream.len() + self.target.len() + self.codings.len()) as u64
    }
}

/// Where a request goes: the facts a key is made of, given by the gateway after its access decision.
pub(crate) struct Scope<'a> {
    pub tenant: &'a TenantId,
    pub app: &'a AppId,
    pub upstream: &'a str,
    /// The path as forwarded (below the app's prefix, canonical).
    pub path: &'a str,
    pub query: Option<&'a str>,
}

/// One stored response.
#[derive(Debug)]
pub(crate) struct Entry {
    /// As the gateway shaped them, without `Age`.
    headers: HeaderMap,
    body: Bytes,
    /// When the response was as old as zero seconds (arrival minus its `Age`).
    born: Instant,
    lifetime: Duration,
    size: u64,
}

impl Entry {
    fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.born)
    }

    fn fresh(&self, now: Instant) -> bool {
        self.age(now) < self.lifetime
    }

    fn validated(&self) -> bool {
        self.headers.contains_key(header::ETAG) || self.headers.contains_key(header::LAST_MODIFIED)
    }

    /// The entry as an answer to a client: `304` when the client's conditions hold, the body unless
    /// the request was `HEAD`.
    fn answer(&self, request: &Conditions, status: CacheStatus, now: Instant) -> Response<Body> {
        let not_modified = request.not_modified_by(&self.headers);
        let mut headers = if not_modified {
            not_modified_headers(&self.headers)
        } else {
            self.headers.clone()
        };
        let age = self.age(now).as_secs();
        headers.insert(header::AGE, HeaderValue::from(age));
        headers.insert(X_CACHE, status.header());
        let (status, body) = match (not_modified, request.head) {
            (true, _) => (StatusCode::NOT_MODIFIED, Body::empty()),
            (false, true) => (StatusCode::OK, Body::empty()),
            (false, false) => (StatusCode::OK, Body::from(self.body.clone())),
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }
}

/// The headers a `304` carries from the entry (RFC 9110 §15.4.5).
fn not_modified_headers(stored: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for name in [
        header::CACHE_CONTROL,
        header::CONTENT_LOCATION,
        header::DATE,
        header::ETAG,
        header::EXPIRES,
        header::LAST_MODIFIED,
        header::VARY,
    ] {
        for value in stored.get_all(&name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers
}

/// The client's conditional headers and method, kept before the request is prepared for the upstream.
#[derive(Debug, Default)]
struct Conditions {
    head: bool,
    if_none_match: Option<HeaderValue>,
    if_modified_since: Option<HeaderValue>,
}

impl Conditions {
    /// Whether the client already holds what `headers` describe (RFC 9110 §13.1.1, §13.1.3: a
    /// weak comparison; `If-Modified-Since` only without `If-None-Match`).
    fn not_modified_by(&self, headers: &HeaderMap) -> bool {
        if let Some(condition) = &self.if_none_match {
            let (Ok(condition), Some(etag)) = (
                condition.to_str(),
                headers.get(header::ETAG).and_then(|v| v.to_str().ok()),
            ) else {
                return false;
            };
            let weak = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
            return condition
                .split(',')
                .any(|tag| tag.trim() == "*" || weak(tag) == weak(etag));
        }
        let since = self.if_modified_since.as_ref().and_then(http_date);
        let modified = headers.get(header::LAST_MODIFIED).and_then(http_date);
        matches!((since, modified), (Some(since), Some(modified)) if modified <= since)
    }
}

fn http_date(value: &HeaderValue) -> Option<SystemTime> {
    httpdate::parse_http_date(value.to_str().ok()?).ok()
}

/// The normalised `Accept-Encoding` of a request: the known codings it accepts (q > 0), sorted.
fn accepted_codings(headers: &HeaderMap) -> String {
    let mut accepted: Vec<&str> = Vec::new();
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let refused = parts.any(|param| {
                let param = param.trim();
                let q = param
                    .strip_prefix("q=")
                    .or_else(|| param.strip_prefix("Q="));
                q.is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            let known = CODINGS
                .iter()
                .find(|known| known.eq_ignore_ascii_case(coding));
            if let (Some(known), false) = (known, refused) {
                accepted.push(known);
            }
        }
    }
    accepted.sort_unstable();
    accepted.dedup();
    accepted.join(",")
}

/// How long a response may be used, if it may be stored at all; the caching rule of this module's
/// documentation, read from the upstream's headers before the gateway shapes them.
pub(crate) fn freshness(status: StatusCode, headers: &HeaderMap) -> Option<Freshness> {
    if status != StatusCode::OK || headers.contains_key(header::SET_COOKIE) {
        return None;
    }
    let mut public = false;
    let mut max_age = None;
    let mut s_maxage = None;
    for value in headers.get_all(header::CACHE_CONTROL) {
        for directive in value.to_str().ok()?.split(',') {
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            let seconds = || argument.and_then(|a| a.parse::<u64>().ok());
            match name.to_ascii_lowercase().as_str() {
                "private" | "no-store" | "no-cache" => return None,
                "public" => public = true,
                // A malformed lifetime is a reason not to store, not a guess.
                "max-age" => max_age = Some(seconds()?),
                "s-maxage" => s_maxage = Some(seconds()?),
                _ => {}
            }
        }
    }
    for value in headers.get_all(header::VARY) {
        let only_encoding = value.to_str().ok()?.split(',').all(|field| {
            let field = field.trim();
            field.is_empty() || field.eq_ignore_ascii_case("accept-encoding")
        });
        if !only_encoding {
            return None;
        }
    }
    if let Some(coding) = headers.get(header::CONTENT_ENCODING) {
        let coding = coding.to_str().ok()?.trim();
        if !CODINGS
            .iter()
            .any(|known| known.eq_ignore_ascii_case(coding))
        {
            return None;
        }
    }
    if !public && s_maxage.is_none() {
        return None;
    }
    let lifetime = Duration::from_secs(s_maxage.or(max_age)?);
    let age = headers
        .get(header::AGE)
        .and_then(|age| age.to_str().ok()?.trim().parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_secs);
    let validated =
        headers.contains_key(header::ETAG) || headers.contains_key(header::LAST_MODIFIED);
    // Already stale on arrival and nothing to revalidate with: nothing to gain from storing it.
    if age >= lifetime && !validated {
        return None;
    }
    Some(Freshness { lifetime, age })
}

/// What [`freshness`] found in a storable response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Freshness {
    lifetime: Duration,
    age: Duration,
}

/// The cache, one per server; it outlives config reloads (its bounds are read at every store).
pub(crate) struct ResponseCache {
    inner: Mutex<Inner>,
    metrics: CacheStoreMetrics,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Arc<Key>, Slot>,
    /// Least recently used first: each entry's last use, a number that only grows.
    order: BTreeMap<u64, Arc<Key>>,
    clock: u64,
    bytes: u64,
}

struct Slot {
    entry: Arc<Entry>,
    used: u64,
}

impl Inner {
    fn touch(&mut self, key: &Arc<Key>) -> Option<Arc<Entry>> {
        self.clock += 1;
        let clock = self.clock;
        let slot = self.entries.get_mut(key)?;
        let stored = self.order.remove(&slot.used);
        slot.used = clock;
        if let Some(stored) = stored {
            self.order.insert(clock, stored);
        }
        Some(slot.entry.clone())
    }

    fn remove(&mut self, key: &Key) -> Option<Arc<Entry>> {
        let slot = self.entries.remove(key)?;
        self.order.remove(&slot.used);
        self.bytes -= slot.entry.size;
        Some(slot.entry)
    }
}

impl ResponseCache {
    pub(crate) fn new(metrics: CacheStoreMetrics) -> Self {
        ResponseCache {
            inner: Mutex::new(Inner::default()),
            metrics,
        }
    }

    /// What the cache may do for `request` to `scope`: `None` when it is not a request the cache
    /// answers (another method, a `Range`, a body, a WebSocket handshake).
    pub(crate) fn plan(&self, scope: &Scope<'_>, request: &Request<Body>) -> Option<Plan> {
        let head = match *request.method() {
            Method::GET => false,
            Method::HEAD => true,
            _ => return None,
        };
        let headers = request.headers();
        let has_body = headers.contains_key(header::TRANSFER_ENCODING)
            || headers
                .get(header::CONTENT_LENGTH)
                .is_some_and(|length| length != "0");
        if has_body || headers.contains_key(header::RANGE) || headers.contains_key(header::UPGRADE)
        {
            return None;
        }
        let target = match scope.query {
            Some(query) => format!("{}?{query}", scope.path),
            None => scope.path.to_owned(),
        };
        let key = Arc::new(Key {
            tenant: scope.tenant.clone(),
            app: scope.app.clone(),
            upstream: scope.upstream.into(),
            target: target.into(),
            codings: accepted_codings(headers).into(),
        });
        let found = self.inner.lock().touch(&key);
        Some(Plan {
            key,
            found,
            conditions: Conditions {
                head,
                if_none_match: headers.get(header::IF_NONE_MATCH).cloned(),
                if_modified_since: headers.get(header::IF_MODIFIED_SINCE).cloned(),
            },
        })
    }

    /// Stores `entry` under `key` (replacing what was there), then lets go of the least recently used
    /// entries until all fit in `settings.max_bytes`.
    fn insert(&self, key: Arc<Key>, entry: Entry, settings: CacheSettings) {
        if entry.size > settings.max_entry_bytes {
            return;
        }
        let entry = Arc::new(entry);
        let mut evicted = 0;
        let (bytes, count) = {
            let mut inner = self.inner.lock();
            inner.remove(&key);
            inner.clock += 1;
            let used = inner.clock;
            inner.bytes += entry.size;
            inner.order.insert(used, key.clone());
            inner.entries.insert(key, Slot { entry, used });
            while inner.bytes > settings.max_bytes {
                let Some((_, oldest)) = inner.order.pop_first() else {
                    break;
                };
                if let Some(slot) = inner.entries.remove(&oldest) {
                    inner.bytes -= slot.entry.size;
                    evicted += 1;
                }
            }
            (inner.bytes, inner.entries.len())
        };
        self.metrics.evictions.inc_by(evicted);
        self.publish(bytes, count);
    }

    fn remove(&self, key: &Key) {
        let (bytes, count) = {
            let mut inner = self.inner.lock();
            if inner.remove(key).is_none() {
                return;
            }
            (inner.bytes, inner.entries.len())
        };
        self.publish(bytes, count);
    }

    fn publish(&self, bytes: u64, count: usize) {
        self.metrics
            .stored_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.metrics
            .entries
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// The bytes all entries take now (bodies, headers, keys, overhead).
    #[cfg(test)]
    fn bytes(&self) -> u64 {
        self.inner.lock().bytes
    }
}

/// The cache's part in one request, from before it is forwarded until its response is on its way.
#[derive(Debug)]
pub(crate) struct Plan {
    key: Arc<Key>,
    /// The entry under the key when the request arrived, fresh or not.
    found: Option<Arc<Entry>>,
    conditions: Conditions,
}

impl Plan {
    /// The answer from a fresh entry (`X-Cache: HIT`); `None` when the upstream must be asked.
    pub(crate) fn hit(&self) -> Option<Response<Body>> {
        let now = Instant::now();
        let entry = self.found.as_ref().filter(|entry| entry.fresh(now))?;
        Some(entry.answer(&self.conditions, CacheStatus::Hit, now))
    }

    /// The entry to revalidate: a stale one with a validator, for a `GET`.
    fn stale(&self) -> Option<&Arc<Entry>> {
        self.found
            .as_ref()
            .filter(|entry| !self.conditions.head && entry.validated())
    }

    /// Puts the entry's validators on the upstream request in place of the client's conditions, so
    /// a `304` speaks about the entry; the client's are answered from the entry afterwards.
    pub(crate) fn condition(&self, headers: &mut HeaderMap) {
        let Some(entry) = self.stale() else {
            return;
        };
        headers.remove(header::IF_NONE_MATCH);
        headers.remove(header::IF_MODIFIED_SINCE);
        headers.remove(header::IF_MATCH);
        headers.remove(header::IF_UNMODIFIED_SINCE);
        if let Some(etag) = entry.headers.get(header::ETAG) {
            headers.insert(header::IF_NONE_MATCH, etag.clone());
        }
        if let Some(modified) = entry.headers.get(header::LAST_MODIFIED) {
            headers.insert(header::IF_MODIFIED_SINCE, modified.clone());
        }
    }

    /// Whether the upstream's answer may be kept, judged on its headers as the upstream sent them
    /// (before the gateway moves a `Set-Cookie` into a jar). A `304` to a revalidation is judged with
    /// the entry's headers it updates.
    pub(crate) fn judge(&self, response: &Response<Body>) -> Option<Freshness> {
        match (response.status(), self.stale()) {
            (StatusCode::NOT_MODIFIED, Some(entry)) => {
                freshness(StatusCode::OK, &updated(&entry.headers, response.headers()))
            }
            (_, _) if self.conditions.head => None,
            (status, _) => freshness(status, response.headers()),
        }
    }

    /// The response for the client, with `X-Cache`: a `304` to a revalidation answered from the
    /// refreshed entry, a storable `200` teed into the cache while it streams; anything else passed
    /// on (and a stale entry it does not confirm dropped). `response` is shaped by the gateway.
    pub(crate) fn finish(
        self,
        cache: &Arc<ResponseCache>,
        settings: CacheSettings,
        judged: Option<Freshness>,
        mut response: Response<Body>,
    ) -> (Response<Body>, CacheStatus) {
        let now = Instant::now();
        if response.status() == StatusCode::NOT_MODIFIED
            && let Some(entry) = self.stale()
        {
            let headers = updated(&entry.headers, response.headers());
            let refreshed = Entry {
                size: entry.size - header_size(&entry.headers) + header_size(&headers),
                headers,
                body: entry.body.clone(),
                born: judged.map_or(entry.born, |fresh| born(now, fresh.age)),
                lifetime: judged.map_or(Duration::ZERO, |fresh| fresh.lifetime),
            };
            let answer = refreshed.answer(&self.conditions, CacheStatus::Revalidated, now);
            match judged {
                Some(_) => cache.insert(self.key, refreshed, settings),
                None => cache.remove(&self.key),
            }
            return (answer, CacheStatus::Revalidated);
        }
        if self.found.is_some() && !self.conditions.head {
            // Not confirmed: a storable answer replaces the entry when it ends; until then, and for
            // any other answer, it is gone. (A HEAD speaks for no body: the entry stays for a GET.)
            cache.remove(&self.key);
        }
        response
            .headers_mut()
            .insert(X_CACHE, CacheStatus::Miss.header());
        let Some(fresh) = judged else {
            return (response, CacheStatus::Miss);
        };
        let declared = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|length| length.to_str().ok()?.parse::<u64>().ok());
        let headers_size = header_size(response.headers()) + self.key.size() + ENTRY_OVERHEAD;
        let limit = settings.max_entry_bytes.saturating_sub(headers_size);
        if declared.is_some_and(|length| length > limit) {
            return (response, CacheStatus::Miss);
        }
        let mut headers = response.headers().clone();
        headers.remove(header::AGE);
        headers.remove(X_CACHE);
        let sink = Sink {
            cache: cache.clone(),
            key: self.key,
            headers,
            settings,
            freshness: fresh,
            declared,
            limit,
            body: BytesMut::with_capacity(declared.unwrap_or(0).min(limit) as usize),
            headers_size,
        };
        let (parts, body) = response.into_parts();
        (
            Response::from_parts(parts, Body::new(WatchedBody::new(body, sink))),
            CacheStatus::Miss,
        )
    }
}

/// When a response of age `age` arriving `now` was zero seconds old.
fn born(now: Instant, age: Duration) -> Instant {
    now.checked_sub(age).unwrap_or(now)
}

/// `stored` with the headers of a `304` put in place (RFC 9111 §3.2), but never its framing.
fn updated(stored: &HeaderMap, not_modified: &HeaderMap) -> HeaderMap {
    let mut headers = stored.clone();
    let mut replaced: Vec<&HeaderName> = Vec::new();
    for (name, value) in not_modified {
        if matches!(
            *name,
            header::CONTENT_LENGTH | header::CONTENT_ENCODING | header::TRANSFER_ENCODING
        ) || *name == X_CACHE
        {
            continue;
        }
        if !replaced.contains(&name) {
            headers.remove(name);
            replaced.push(name);
        }
        headers.append(name.clone(), value.clone());
    }
    headers
}

fn header_size(headers: &HeaderMap) -> u64 {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().len() + value.len() + 4) as u64)
        .sum()
}

/// Where a streaming body's copy goes once it ended cleanly.
struct Sink {
    cache: Arc<ResponseCache>,
    key: Arc<Key>,
    headers: HeaderMap,
    settings: CacheSettings,
    freshness: Freshness,
    declared: Option<u64>,
    /// Body bytes the entry may hold.
    limit: u64,
    body: BytesMut,
    headers_size: u64,
}

impl Sink {
    /// Takes a chunk; `false` when the entry would pass its limit (and is given up).
    fn take(&mut self, chunk: &[u8]) -> bool {
        if (self.body.len() + chunk.len()) as u64 > self.limit {
            return false;
        }
        self.body.extend_from_slice(chunk);
        true
    }

    fn store(self) {
        let length = self.body.len() as u64;
        if self.declared.is_some_and(|declared| declared != length) {
            return;
        }
        let now = Instant::now();
        let entry = Entry {
            size: length + self.headers_size,
            headers: self.headers,
            body: self.body.freeze(),
            born: born(now, self.freshness.age),
            lifetime: self.freshness.lifetime,
        };
        self.cache.insert(self.key, entry, self.settings);
    }
}

/// The copy of a response body going to the cache as the body is passed on: stored only when the
/// body ends cleanly; given up on an error, on trailers, past the entry limit, or when the client
/// goes away first.
impl Watch for Sink {
    fn data(&mut self, chunk: &Bytes) -> bool {
        self.take(chunk)
    }

    fn trailers(&mut self) -> bool {
        false
    }

    fn end(self, ending: Ending) {
        if ending == Ending::Complete {
            self.store();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn judge(pairs: &[(&str, &str)]) -> Option<Duration> {
        freshness(StatusCode::OK, &headers(pairs)).map(|fresh| fresh.lifetime)
    }

    #[test]
    fn only_what_a_shared_cache_may_keep_is_stored() {
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(judge(&[("cache-control", "public, max-age=60")]), secs(60));
        assert_eq!(
            judge(&[("cache-control", "s-maxage=30, max-age=5")]),
            secs(30)
        );
        assert_eq!(
            judge(&[("cache-control", "public, max-age=31536000, immutable")]),
            secs(31_536_000)
        );
        assert_eq!(
            judge(&[("cache-control", "public"), ("cache-control", "max-age=9")]),
            secs(9)
        );
        assert_eq!(
            judge(&[
                ("cache-control", "public, max-age=60"),
                ("vary", "Accept-Encoding")
            ]),
            secs(60)
        );
        // Authenticated requests need an explicit shared permission (RFC 9111 §3.5).
        assert_eq!(judge(&[("cache-control", "max-age=60")]), None);
        assert_eq!(judge(&[("cache-control", "max-age=60, immutable")]), None);
        // No lifetime, no storing (no heuristics).
        assert_eq!(judge(&[("cache-control", "public")]), None);
        assert_eq!(
            judge(&[
                ("cache-control", "public"),
                ("expires", "Wed, 21 Oct 2099 07:28:00 GMT")
            ]),
            None
        );
        assert_eq!(judge(&[]), None);
        for refused in [
            "public, max-age=60, private",
            "public, max-age=60, no-store",
            "public, max-age=60, no-cache",
            "public, max-age=60, no-cache=\"set-cookie\"",
            "PUBLIC, MAX-AGE=60, PRIVATE",
            "public, max-age=soon",
        ] {
            assert_eq!(judge(&[("cache-control", refused)]), None, "{refused}");
        }
        let public = ("cache-control", "public, max-age=60");
        assert_eq!(judge(&[public, ("set-cookie", "a=b")]), None);
        for vary in ["*", "Cookie", "Accept-Encoding, Cookie", "authorization"] {
            assert_eq!(judge(&[public, ("vary", vary)]), None, "{vary}");
        }
        assert_eq!(judge(&[public, ("content-encoding", "x-secret")]), None);
        assert_eq!(freshness(StatusCode::NOT_FOUND, &headers(&[public])), None);
        // Stale on arrival: kept only with a validator to revalidate.
        assert_eq!(judge(&[public, ("age", "60")]), None);
        assert_eq!(judge(&[public, ("age", "60"), ("etag", "\"x\"")]), secs(60));
    }

    #[test]
    fn accept_encoding_is_normalised_to_known_codings() {
        let codings = |value: &str| accepted_codings(&headers(&[("accept-encoding", value)]));
        assert_eq!(codings("gzip, deflate, br"), "br,deflate,gzip");
        assert_eq!(codings("br;q=1.0, GZIP, deflate;q=0"), "br,gzip");
        assert_eq!(codings("made-up, gzip"), "gzip");
        assert_eq!(accepted_codings(&HeaderMap::new()), "");
    }

    #[test]
    fn conditions_compare_weakly_and_by_date() {
        let stored = headers(&[
            ("etag", "W/\"v1\""),
            ("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ]);
        let with = |name: &str, value: &str| {
            let mut conditions = Conditions::default();
            let value = Some(HeaderValue::from_str(value).unwrap());
            match name {
                "if-none-match" => conditions.if_none_match = value,
                _ => conditions.if_modified_since = value,
            }
            conditions.not_modified_by(&stored)
        };
        assert!(with("if-none-match", "\"v1\""));
        assert!(with("if-none-match", "\"v0\", W/\"v1\""));
        assert!(with("if-none-match", "*"));
        assert!(!with("if-none-match", "\"v2\""));
        assert!(with("if-modified-since", "Wed, 21 Oct 2015 07:28:00 GMT"));
        assert!(with("if-modified-since", "Thu, 22 Oct 2015 07:28:00 GMT"));
        assert!(!with("if-modified-since", "Tue, 20 Oct 2015 07:28:00 GMT"));
    }

    fn cache() -> Arc<ResponseCache> {
        Arc::new(ResponseCache::new(CacheStoreMetrics::default()))
    }

    fn scope<'a>(tenant: &'a TenantId, path: &'a str) -> Scope<'a> {
        static APP: std::sync::OnceLock<AppId> = std::sync::OnceLock::new();
        Scope {
            tenant,
            app: APP.get_or_init(|| AppId::new("app")),
            upstream: "http://127.0.0.1:1",
            path,
            query: None,
        }
    }

    fn get() -> Request<Body> {
        Request::new(Body::empty())
    }

    fn upstream_answer(body: &'static str) -> Response<Body> {
        let mut response = Response::new(Body::from(body));
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=60"),
        );
        response
    }

    /// Runs a miss through `finish` and reads its body as a client would, storing it.
    async fn fill(
        cache: &Arc<ResponseCache>,
        settings: CacheSettings,
        scope: &Scope<'_>,
        body: &'static str,
    ) {
        let plan = cache.plan(scope, &get()).unwrap();
        let response = upstream_answer(body);
        let judged = plan.judge(&response);
        let (response, status) = plan.finish(cache, settings, judged, response);
        assert_eq!(status, CacheStatus::Miss);
        let read = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(read, body.as_bytes());
    }

    #[tokio::test]
    async fn the_least_recently_used_entries_go_first() {
        let cache = cache();
        let tenant = TenantId::new("acme");
        let settings = CacheSettings {
            max_bytes: 3 * 1024,
            max_entry_bytes: 1024,
        };
        let body: &'static str = "x".repeat(500).leak();
        for path in ["/a", "/b", "/c"] {
            fill(&cache, settings, &scope(&tenant, path), body).await;
        }
        assert!(cache.bytes() <= settings.max_bytes);
        // `/a` is used, so `/b` is the least recently used when `/d` needs room.
        assert!(
            cache
                .plan(&scope(&tenant, "/a"), &get())
                .unwrap()
                .hit()
                .is_some()
        );
        fill(&cache, settings, &scope(&tenant, "/d"), body).await;
        let hit = |path| {
            cache
                .plan(&scope(&tenant, path), &get())
                .unwrap()
                .hit()
                .is_some()
        };
        // About 800 bytes each (body, headers, key, overhead): three fit, the fourth evicts one.
        assert!(hit("/a") && hit("/c") && hit("/d"));
        assert!(!hit("/b"));
        assert!(cache.bytes() <= settings.max_bytes);
        assert_eq!(cache.metrics.evictions.get(), 1);
    }

    #[tokio::test]
    async fn an_entry_past_its_limit_or_cut_short_is_not_stored() {
        let cache = cache();
        let tenant = TenantId::new("acme");
        let settings = CacheSettings {
            max_bytes: 1 << 20,
            max_entry_bytes: 1024,
        };
        let big: &'static str = "x".repeat(2000).leak();
        fill(&cache, settings, &scope(&tenant, "/big"), big).await;
        assert!(
            cache
                .plan(&scope(&tenant, "/big"), &get())
                .unwrap()
                .hit()
                .is_none()
        );

        // A client that goes away before the end leaves nothing behind.
        let plan = cache.plan(&scope(&tenant, "/gone"), &get()).unwrap();
        let response = upstream_answer("partial");
        let judged = plan.judge(&response);
        drop(plan.finish(&cache, settings, judged, response));
        assert!(
            cache
                .plan(&scope(&tenant, "/gone"), &get())
                .unwrap()
                .hit()
                .is_none()
        );
        assert_eq!(cache.bytes(), 0);
    }
}
