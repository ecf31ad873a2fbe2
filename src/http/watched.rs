//! A body passed on untouched while something watches it: each frame as it goes out, and how the body
//! ended. The one wrapper behind the access log's byte count (`telemetry::access`), the response
//! cache's copy (`proxy::cache`) and the upstream connection lent to a response (`proxy::pool`), so
//! "how did this body end" is decided in one place.
//!
//! Must not change, hold back or reorder a frame: the watcher only sees them.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};

/// How a watched body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Its last frame went out (or it was empty).
    Complete,
    /// It failed (an upstream reset or stall mid-body, a file that could not be read).
    Error,
    /// It was dropped before its end: the client went away, or the connection was closed under it.
    Dropped,
}

/// What watches a body.
pub(crate) trait Watch {
    /// A data frame goes out. `false` ends the watch at once (the watcher is dropped, `end` is not
    /// called), as when a copy grows past its limit.
    fn data(&mut self, chunk: &Bytes) -> bool;

    /// A trailers frame goes out; `false` ends the watch as for [`Watch::data`].
    fn trailers(&mut self) -> bool {
        true
    }

    /// The body ended; called once, unless the watch ended before.
    fn end(self, ending: Ending);
}

/// `inner`, watched by `W`.
pub(crate) struct WatchedBody<W: Watch> {
    inner: Body,
    watch: Option<W>,
}

impl<W: Watch> WatchedBody<W> {
    pub(crate) fn new(inner: Body, watch: W) -> Self {
        WatchedBody {
            inner,
            watch: Some(watch),
        }
    }

    fn end(&mut self, ending: Ending) {
        if let Some(watch) = self.watch.take() {
            watch.end(ending);
        }
    }
}

impl<W: Watch + Unpin> http_body::Body for WatchedBody<W> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(watch) = this.watch.as_mut() {
                    let watching = match frame.data_ref() {
                        Some(chunk) => watch.data(chunk),
                        None => watch.trailers(),
                    };
                    if !watching {
                        this.watch = None;
                    }
                }
                // hyper stops polling a body that says it has ended, so the end is seen here too.
                if this.inner.is_end_stream() {
                    this.end(Ending::Complete);
                }
            }
            Poll::Ready(Some(Err(_))) => this.end(Ending::Error),
            Poll::Ready(None) => this.end(Ending::Complete),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<W: Watch> Drop for WatchedBody<W> {
    fn drop(&mut self) {
        // A body that was empty from the start is never polled: it ended all the same.
        let ending = if http_body::Body::is_end_stream(&self.inner) {
            Ending::Complete
        } else {
            Ending::Dropped
        };
        self.end(ending);
    }
}
