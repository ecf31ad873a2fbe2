//! Capturing what portico logs during a test, as the JSON lines a log shipper would see.
//!
//! In-process servers run on the test's single-threaded runtime and on worker threads that take the
//! starting thread's subscriber along, so a thread-local subscriber sees every line they write
//! (access, audit and the rest).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::TIMEOUT;

/// Every line logged on the test's thread since [`Logs::capture`].
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Starts capturing; capture ends when the guard is dropped.
    pub(crate) fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        keep_a_second_dispatcher();
        let logs = Logs::default();
        let buffer = logs.0.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || LogWriter(buffer.clone()))
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The fields of every line on `target`, oldest first.
    fn fields_on(&self, target: &str) -> Vec<Value> {
        self.text()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["target"] == target)
            .map(|line| line["fields"].clone())
            .collect()
    }

    /// The fields of every audit event named `event`, oldest first.
    pub(crate) fn audit(&self, event: &str) -> Vec<Value> {
        self.fields_on("audit")
            .into_iter()
            .filter(|fields| fields["event"] == event)
            .collect()
    }

    /// The fields of every access line, oldest first.
    pub(crate) fn access_lines(&self) -> Vec<Value> {
        self.fields_on("access")
    }

    /// The access line of the request `id`, waiting for it: it is written when the body ends.
    pub(crate) async fn access(&self, id: &str) -> Value {
        let waited = tokio::time::timeout(TIMEOUT, async {
            loop {
                if let Some(line) = self
                    .access_lines()
                    .into_iter()
                    .find(|line| line["request_id"] == id)
                {
                    return line;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        waited.unwrap_or_else(|_| panic!("no access line for {id}"))
    }
}

/// Registers, once per process, a dispatcher that is never dropped. tracing-core decides a callsite's
/// interest by asking only the hitting thread's dispatcher while at most one dispatcher is registered
/// (`has_just_one`): with one capturing test alive, a log line first written by a test that captures
/// nothing was cached as "never", and the capturing test lost every later line of that callsite (seen:
/// a test's whole server log empty when run beside another). With two registered, every callsite asks
/// every dispatcher, and each event goes to the one of the thread that writes it.
fn keep_a_second_dispatcher() {
    static SECOND: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    SECOND.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
}
