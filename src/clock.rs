//! The one wall clock of the app. Times stored in Redis are unix
//! milliseconds (schedules, change marks) or unix seconds (`checked_at`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in milliseconds (0 before 1970, which a sane clock never is).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Unix time in whole seconds.
pub fn now_secs() -> u64 {
    u64::try_from(now_ms().div_euclid(1000)).unwrap_or(0)
}
