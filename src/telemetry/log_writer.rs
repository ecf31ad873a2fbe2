//! The log's writer: lines are appended to one shared buffer, and a background thread writes that
//! buffer to stderr in batches, at most `FLUSH_INTERVAL` after the first line of a batch arrived.
//!
//! Why not a channel with a line per message (tracing-appender's `non_blocking`, used before): every
//! line then woke the writer thread (a futex wake and a context switch, on the proxy's own core when
//! it is pinned) and cost a `write(2)`, several microseconds per proxied request in kernel time, about
//! a third of portico's gap to its hyper floor (bench/README.md). Here a request's line costs a copy
//! into the buffer under an uncontended lock; the thread is woken only when a batch starts, so under
//! load it wakes about `1 / FLUSH_INTERVAL` times a second and writes each batch with one call.
//!
//! What it must keep: a request never waits on stderr (only the thread writes to it); lines keep
//! their order (one buffer for every line, access lines and the rest); memory is bounded
//! (`MAX_PENDING`; beyond it lines are dropped and counted, and the count is written as a line of its
//! own once there is room); everything appended before the guard is dropped is written (the guard
//! flushes at exit). The cost is that a line can reach stderr up to `FLUSH_INTERVAL` late, and a
//! process killed with SIGKILL loses at most that much of the log, like nginx's buffered access log.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a batch collects lines before it is written.
const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

/// The most bytes waiting to be written; lines beyond it are dropped (and counted) rather than
/// growing memory without bound when stderr blocks.
const MAX_PENDING: usize = 16 << 20;

/// The capacity a flushed buffer keeps for the next batch; a burst's larger buffer is given back.
const KEEP_CAPACITY: usize = 256 << 10;

/// A handle that appends to the log (cheap to clone; `tracing_subscriber` makes one per event).
#[derive(Clone)]
pub(super) struct LogWriter {
    shared: Arc<Shared>,
}

/// Stops the writer thread when dropped, after it has written everything appended before.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    pending: Mutex<Pending>,
    /// Signalled when a batch starts (the buffer was empty) and at close.
    wake: Condvar,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    dropped: u64,
    closing: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while the lock was held cannot leave the buffer half-appended in a way that
        // matters more than losing the log: go on with what is there.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts the writer thread for `out` (stderr in the server; a pipe or a file in tests).
pub(super) fn start(out: impl Write + Send + 'static) -> (LogWriter, LogGuard) {
    let shared = Arc::new(Shared {
        pending: Mutex::new(Pending::default()),
        wake: Condvar::new(),
    });
    let thread = std::thread::Builder::new()
        .name("portico-log".into())
        .spawn({
            let shared = shared.clone();
            move || write_batches(&shared, out)
        })
        .ok();
    let _ = SERVER_LOG.set(shared.clone());
    let writer = LogWriter {
        shared: shared.clone(),
    };
    (writer, LogGuard { shared, thread })
}

/// The first log started in this process, for `write_now`.
static SERVER_LOG: std::sync::OnceLock<Arc<Shared>> = std::sync::OnceLock::new();

/// Writes what is waiting to stderr from the calling thread, for an exit that will not drop the
/// guard (`std::process::exit` on a second signal): the last lines before it are the ones that say why.
pub fn write_now() {
    let Some(shared) = SERVER_LOG.get() else {
        return;
    };
    let batch = std::mem::take(&mut shared.lock().bytes);
    let mut stderr = io::stderr().lock();
    let _ = stderr.write_all(&batch).and_then(|()| stderr.flush());
}

impl LogWriter {
    /// Appends whole lines. Never blocks on I/O: only on the buffer's lock, which the thread holds
    /// just long enough to swap buffers.
    pub(super) fn append(&self, line: &[u8]) {
        let mut pending = self.shared.lock();
        if pending.bytes.len() + line.len() > MAX_PENDING {
            pending.dropped += 1;
            return;
        }
        let starts_batch = pending.bytes.is_empty();
        pending.bytes.extend_from_slice(line);
        drop(pending);
        if starts_batch {
            self.shared.wake.notify_one();
        }
    }
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        self.clone()
    }
}

fn write_batches(shared: &Shared, mut out: impl Write) {
    let mut batch = Vec::new();
    loop {
        let mut pending = shared.lock();
        while pending.bytes.is_empty() && !pending.closing {
            pending = shared
                .wake
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if !pending.closing {
            // Let the batch fill: the lines of the next few milliseconds go out with one write.
            pending = shared
                .wake
                .wait_timeout_while(pending, FLUSH_INTERVAL, |p| !p.closing)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        std::mem::swap(&mut pending.bytes, &mut batch);
        let dropped = std::mem::take(&mut pending.dropped);
        let closing = pending.closing;
        drop(pending);
        if dropped > 0 {
            let _ = writeln!(
                batch,
                "portico: {dropped} log lines were dropped because the log could not be written fast enough"
            );
        }
        // A failed write (stderr closed) loses this batch, never the process: there is nowhere
        // else to say it.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        if batch.capacity() > KEEP_CAPACITY {
            batch.shrink_to(KEEP_CAPACITY);
        }
        if closing && shared.lock().bytes.is_empty() {
            return;
        }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose bytes the test can read back, counting the writes it was given.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut inner = self.0.lock().unwrap();
            inner.0.extend_from_slice(buf);
            inner.1 += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_in_order_and_a_burst_in_few_writes() {
        let out = Captured::default();
        let (writer, guard) = start(out.clone());
        let lines: Vec<String> = (0..10_000).map(|i| format!("line {i}\n")).collect();
        for line in &lines {
            writer.append(line.as_bytes());
        }
        drop(guard);
        let (bytes, writes) = out.0.lock().unwrap().clone();
        assert_eq!(String::from_utf8(bytes).unwrap(), lines.concat());
        // One write per batch, not per line (the burst takes far less than a few intervals).
        assert!(writes < 100, "{writes} writes for 10,000 lines");
    }

    #[test]
    fn a_line_appended_alone_is_written_without_waiting_for_more() {
        let out = Captured::default();
        let (writer, _guard) = start(out.clone());
        writer.append(b"alone\n");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while out.0.lock().unwrap().0.is_empty() {
            assert!(std::time::Instant::now() < deadline, "never written");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(out.0.lock().unwrap().0, b"alone\n");
    }

    /// A writer that blocks until the test lets it go, like a stderr pipe nobody reads.
    struct Blocked(Arc<(Mutex<bool>, Condvar)>, Captured);

    impl Write for Blocked {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (open, changed) = &*self.0;
            let mut open = open.lock().unwrap();
            while !*open {
                open = changed.wait(open).unwrap();
            }
            self.1.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_blocked_log_drops_lines_beyond_the_bound_and_says_how_many() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let out = Captured::default();
        let (writer, guard) = start(Blocked(gate.clone(), out.clone()));
        // The first batch is taken by the thread, which then blocks in its write.
        writer.append(b"first\n");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !writer.shared.lock().bytes.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the batch was never taken"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let line = vec![b'x'; 1023]
            .into_iter()
            .chain([b'\n'])
            .collect::<Vec<u8>>();
        let fits = MAX_PENDING / line.len();
        for _ in 0..fits + 10 {
            writer.append(&line);
        }
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        drop(guard);
        let text = String::from_utf8(out.0.lock().unwrap().0.clone()).unwrap();
        assert!(text.starts_with("first\n"));
        assert_eq!(
            text.matches(&*String::from_utf8(line).unwrap()).count(),
            fits
        );
        assert!(
            text.contains("portico: 10 log lines were dropped"),
            "{}",
            &text[text.len() - 200..]
        );
    }
}
