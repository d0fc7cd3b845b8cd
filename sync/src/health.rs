//! The health probe behind [`crate::Sync::status`]: pings the remote and
//! measures the backlog at least once a second, so `/readyz` and `/metrics`
//! reflect an outage within 3 s.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::config::HEALTH_EVERY;
use crate::keys::JOURNAL;
use crate::Inner;

/// What `/readyz` reports about sync.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncStatus {
    /// The remote answered the last ping.
    pub remote_up: bool,
    /// Journal entries not yet on the remote (`XLEN sync:journal`), as last measured.
    pub backlog: u64,
    /// This process turns keyspace notifications into journal entries.
    pub notify_leader: bool,
    /// The keyspace-notification subscription is live (only while `run` runs).
    pub subscribed: bool,
}

impl Inner {
    /// Bound of one probe: short, and never longer than a request may wait.
    fn probe_timeout(&self) -> Duration {
        self.cfg
            .remote_timeout
            .clamp(Duration::from_millis(200), Duration::from_millis(900))
    }

    /// One probe: remote PING and local XLEN, each bounded.
    pub(crate) async fn probe(&self) {
        let limit = self.probe_timeout();
        let ping =
            tokio::time::timeout(limit, self.remote.query::<String>(&redis::cmd("PING"))).await;
        let up = matches!(ping, Ok(Ok(_)));
        let was = self.remote_up.swap(up, Ordering::Relaxed);
        if up != was {
            if up {
                tracing::info!(remote = %self.remote_addr, "remote redis is reachable");
            } else {
                tracing::warn!(remote = %self.remote_addr, "remote redis is unreachable; changes wait in the journal");
            }
        }
        let mut xlen = redis::cmd("XLEN");
        xlen.arg(JOURNAL);
        match tokio::time::timeout(limit, self.local.query::<u64>(&xlen)).await {
            Ok(Ok(n)) => {
                self.backlog.store(n, Ordering::Relaxed);
                self.metrics.backlog.set(n.min(i64::MAX as u64) as i64);
            }
            _ => tracing::debug!("local redis did not answer XLEN"),
        }
    }

    pub(crate) fn status(&self) -> SyncStatus {
        SyncStatus {
            remote_up: self.remote_up.load(Ordering::Relaxed),
            backlog: self.backlog.load(Ordering::Relaxed),
            notify_leader: self.leader.load(Ordering::Relaxed),
            subscribed: self.subscribed.load(Ordering::Relaxed),
        }
    }
}

/// Probes every second for as long as a `Sync` handle exists.
pub(crate) fn spawn(inner: &Arc<Inner>) {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEALTH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(inner) = weak.upgrade() else { return };
            inner.probe().await;
        }
    });
}
