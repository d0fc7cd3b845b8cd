//! The worker's Prometheus metrics (prometheus-client, no global state).
//!
//! Registered under the app's registry, which adds the `sponsorgate_` prefix;
//! counters get their `_total` suffix from the encoder.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: &'static str,
}

/// The `kind` label values of `sync_errors_total` (see `SyncError::kind`).
pub const ERROR_KINDS: [&str; 8] = [
    "config",
    "local",
    "remote",
    "remote_unavailable",
    "protocol",
    "malformed",
    "wrongtype",
    "notify",
];

/// Cheap to clone: every field is a shared handle.
#[derive(Clone, Debug)]
pub struct SyncMetrics {
    /// Keys with changes this process has not pushed yet.
    pub backlog: Gauge,
    /// Acknowledged change (its stamp) → remote apply.
    pub lag_seconds: Histogram,
    /// Pending entries pushed to the remote.
    pub applied: Counter,
    /// Repairs of the remote after it lost data (guarantee 12 of docs/contract.md).
    pub resyncs: Counter,
    /// Keys merged back from the remote.
    pub fetchbacks: Counter,
    pub fetchback_seconds: Histogram,
    pub errors: Family<ErrorLabels, Counter>,
}

impl Default for SyncMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl SyncMetrics {
    pub fn new() -> Self {
        let metrics = Self {
            backlog: Gauge::default(),
            // 1 ms … ~65 s
            lag_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            applied: Counter::default(),
            resyncs: Counter::default(),
            fetchbacks: Counter::default(),
            // 1 ms … ~4 s
            fetchback_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 13)),
            errors: Family::default(),
        };
        // Every kind exists from the start at 0, so alerts on a rate work
        // before the first failure (an empty family is not rendered at all).
        for kind in ERROR_KINDS {
            drop(metrics.errors.get_or_create(&ErrorLabels { kind }));
        }
        metrics
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "sync_backlog",
            "Keys with changes not yet pushed to the remote Redis",
            self.backlog.clone(),
        );
        registry.register(
            "sync_lag_seconds",
            "Time from an acknowledged change to its apply on the remote Redis",
            self.lag_seconds.clone(),
        );
        registry.register(
            "sync_applied",
            "Pending changes pushed to the remote Redis",
            self.applied.clone(),
        );
        registry.register(
            "sync_resyncs",
            "Repairs of the remote Redis after it lost data",
            self.resyncs.clone(),
        );
        registry.register(
            "sync_fetchbacks",
            "Sponsor keys merged back from the remote Redis",
            self.fetchbacks.clone(),
        );
        registry.register(
            "sync_fetchback_seconds",
            "Duration of fetch-backs from the remote Redis",
            self.fetchback_seconds.clone(),
        );
        registry.register("sync_errors", "Sync failures by kind", self.errors.clone());
    }

    pub(crate) fn error(&self, kind: &'static str) {
        self.errors.get_or_create(&ErrorLabels { kind }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_contract() {
        let m = SyncMetrics::new();
        m.error("remote_unavailable");
        m.applied.inc();
        m.backlog.set(3);
        let mut registry = Registry::with_prefix("sponsorgate");
        m.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        for name in [
            "sponsorgate_sync_backlog 3",
            "sponsorgate_sync_lag_seconds_bucket",
            "sponsorgate_sync_applied_total 1",
            "sponsorgate_sync_fetchbacks_total 0",
            "sponsorgate_sync_fetchback_seconds_count",
            "sponsorgate_sync_errors_total{kind=\"remote_unavailable\"} 1",
        ] {
            assert!(out.contains(name), "{name} missing in\n{out}");
        }
    }
}
