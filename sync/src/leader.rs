//! The notification leader: one process at a time (a lease, `SET NX PX`
//! renewed every second) turns keyspace events into pending changes, runs
//! the periodic reconciliation and repairs the remote after a loss. On taking the lead and after every
//! resubscription it resets the event counters (`e`) and reconciles, since
//! events may have been missed meanwhile.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::{LEASE, LEASE_RENEW};
use crate::error::SyncError;
use crate::keys::{META_PREFIX, NOTIFY_LEADER};
use crate::Inner;

/// KEYS: lease   ARGV: holder, ttl ms. Returns 2 newly acquired, 1 renewed, 0 held by another.
const LEASE_LUA: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"#;

/// KEYS: lease   ARGV: holder
const RELEASE_LUA: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

impl Inner {
    async fn lease(&self) -> Result<i64, SyncError> {
        let script = redis::Script::new(LEASE_LUA);
        let mut inv = script.prepare_invoke();
        inv.key(NOTIFY_LEADER)
            .arg(&self.cfg.consumer)
            .arg(LEASE.as_millis() as u64);
        self.local.invoke(&inv).await.map_err(SyncError::Local)
    }

    /// Holds (or waits for) the lease until `stop`, then gives it up.
    pub(crate) async fn lease_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(LEASE_RENEW);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            match self.lease().await {
                Ok(2) => {
                    self.notify.leader.store(true, Ordering::Relaxed);
                    tracing::info!(sync.consumer = %self.cfg.consumer, "this process is now the sync notification leader");
                    self.resync.notify_one();
                }
                Ok(1) => self.notify.leader.store(true, Ordering::Relaxed),
                Ok(_) => {
                    if self.notify.leader.swap(false, Ordering::Relaxed) {
                        tracing::info!("another process took the sync notification lead");
                    }
                }
                Err(e) => {
                    self.notify.leader.store(false, Ordering::Relaxed);
                    tracing::debug!(error.message = %e, "could not renew the notification lease");
                }
            }
        }
        self.notify.leader.store(false, Ordering::Relaxed);
        let script = redis::Script::new(RELEASE_LUA);
        let mut inv = script.prepare_invoke();
        inv.key(NOTIFY_LEADER).arg(&self.cfg.consumer);
        let _ =
            tokio::time::timeout(Duration::from_millis(500), self.local.invoke::<i64>(&inv)).await;
    }

    /// Forgets every key's count of own events not yet matched.
    pub(crate) async fn reset_event_counts(&self) -> Result<usize, SyncError> {
        let mut reset = 0;
        let topology = self.local.topology().await.map_err(SyncError::Local)?;
        for (_, node) in &topology.primaries {
            let mut batches = Vec::new();
            crate::worker::scan_names(node, &format!("{META_PREFIX}*"), |metas| {
                if !metas.is_empty() {
                    batches.push(metas)
                }
            })
            .await?;
            for metas in batches {
                let mut pipe = redis::pipe();
                for meta in &metas {
                    pipe.cmd("HDEL").arg(meta).arg("e").ignore();
                }
                node.pipe::<()>(&pipe).await.map_err(SyncError::Local)?;
                reset += metas.len();
            }
        }
        Ok(reset)
    }

    /// Runs resyncs (on demand) and the periodic reconciliation, while leader.
    pub(crate) async fn resync_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let every = self.cfg.reconcile_every.max(Duration::from_secs(1));
        let mut next_periodic = Instant::now() + every;
        let mut retry_at: Option<Instant> = None;
        loop {
            let retry = async {
                match retry_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let resync = tokio::select! {
                _ = self.resync.notified() => true,
                _ = retry => true,
                _ = tokio::time::sleep_until(next_periodic) => false,
                _ = stop.changed() => return,
            };
            next_periodic = Instant::now() + every;
            if !self.notify.leader.load(Ordering::Relaxed) {
                retry_at = None;
                continue;
            }
            if resync {
                if let Err(e) = self.reset_event_counts().await {
                    tracing::debug!(error.message = %e, "could not reset event counts");
                }
                if let Err(e) = self.scan_pending_keys().await {
                    tracing::debug!(error.message = %e, "could not scan for pending keys");
                }
            }
            let repairing = self.health.resyncing.load(Ordering::Relaxed);
            match self.reconcile_pass().await {
                Ok(report) => {
                    retry_at = None;
                    if repairing {
                        match self.mark_remote_whole().await {
                            Ok(()) => tracing::info!(%report, "the remote redis is whole again"),
                            Err(e) => {
                                tracing::warn!(error.message = %e, "could not mark the remote whole; retrying");
                                retry_at = Some(Instant::now() + Duration::from_secs(1));
                            }
                        }
                    }
                    if report.changed() {
                        tracing::info!(%report, "reconciled");
                    } else {
                        tracing::debug!(%report, "reconciled");
                    }
                }
                Err(e) => {
                    self.metrics.error(e.kind());
                    tracing::warn!(error.message = %e, "reconciliation failed; retrying in 5 s");
                    retry_at = Some(Instant::now() + Duration::from_secs(5));
                }
            }
        }
    }
}
