//! One clock for the whole server: seconds since the Unix epoch.
//!
//! Sessions, token caches and signed assertions all compare times in whole seconds; they read them here
//! so that a test or a future monotonic source changes one function. It must not depend on anything else.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch; 0 if the system clock is before 1970.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
