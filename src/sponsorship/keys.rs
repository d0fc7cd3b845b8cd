//! The module's keys and timings. Every key lives under `sync:` (the service
//! writes no keys but the public layout, `session:` and `sync:`). They are
//! named here, beside the only code that uses them, rather than in the sync
//! crate: the sync worker neither reads nor mirrors them (they are not
//! sponsor keys).

use std::time::Duration;

/// `sync:webhook:delivery:{X-GitHub-Delivery}` (string, unix ms of the apply):
/// a delivery that was applied; written only after the apply succeeded.
pub const DELIVERY_PREFIX: &str = "sync:webhook:delivery:";
/// How long applied delivery ids are remembered (GitHub redelivers manually,
/// only deliveries of the past few days).
pub const DELIVERY_TTL_SECS: u64 = 7 * 24 * 3600;
/// `sync:webhook:body:{sha256 of the raw body}` (string, unix ms of the
/// apply): a body that was applied. A signed body replayed under a new
/// delivery id is recognised by it.
pub const BODY_PREFIX: &str = "sync:webhook:body:";
/// How long applied bodies are remembered (at least 30 days).
pub const BODY_TTL_SECS: u64 = 35 * 24 * 3600;
/// Sorted set: user id → unix ms at which the user's pending change is due.
/// The hash tag keeps it in one Redis Cluster slot with [`PENDING_CHANGES`].
pub const PENDING_DUE: &str = "sync:sponsorship:{schedule}:due";
/// Hash: user id → JSON [`Change`](super::Change) of the user's pending change (written
/// together with [`PENDING_DUE`] in one transaction).
pub const PENDING_CHANGES: &str = "sync:sponsorship:{schedule}:pending";
/// The names [`PENDING_DUE`] and [`PENDING_CHANGES`] had before they got
/// their hash tag (renamed at start on a single server, where both lived).
pub const LEGACY_SCHEDULE: [(&str, &str); 2] = [
    ("sync:sponsorship:due", PENDING_DUE),
    ("sync:sponsorship:pending", PENDING_CHANGES),
];
/// Sorted set: user id → unix ms of the last change a webhook (or a due
/// change) applied; re-verification leaves such users alone for
/// [`WEBHOOK_PRECEDENCE`], since its list from GitHub may predate the event.
pub const CHANGED_AT: &str = "sync:sponsorship:changed-at";
/// `sync:sponsorship:lock:{id}` (string with a random token, short TTL).
pub const LOCK_PREFIX: &str = "sync:sponsorship:lock:";
/// Held for one `SPONSORS_REFRESH_SECS` period by the process that runs the
/// re-verification, so that several processes run it once per period.
pub const REVERIFY_LEASE: &str = "sync:sponsorship:reverify-lease";

pub fn delivery_key(delivery: &str) -> String {
    format!("{DELIVERY_PREFIX}{delivery}")
}

/// The body digest key of a raw webhook body.
pub fn body_key(body: &[u8]) -> String {
    use sha2::Digest as _;
    format!("{BODY_PREFIX}{}", hex::encode(sha2::Sha256::digest(body)))
}

pub fn lock_key(user_id: u64) -> String {
    format!("{LOCK_PREFIX}{user_id}")
}

/// A webhook's change wins over a re-verification whose GitHub list was read
/// less than this long before the change (the list may predate the event).
pub const WEBHOOK_PRECEDENCE: Duration = Duration::from_secs(60);
/// How often the background step looks for due changes.
pub const DUE_TICK: Duration = Duration::from_millis(500);
/// After a failed re-verification, the next attempt comes this soon (or after
/// `SPONSORS_REFRESH_SECS` when that is shorter).
pub const REVERIFY_RETRY: Duration = Duration::from_secs(60);
pub(super) const LOCK_TTL_MS: u64 = 15_000;
pub(super) const LOCK_WAIT: Duration = Duration::from_secs(5);
pub(super) const DUE_BATCH: isize = 100;
