//! sponsorgate's sync worker: mirrors sponsors' keys from the local Redis to
//! the remote one, fetches them back on a miss, and never loses an
//! acknowledged change (SPEC §6). See DESIGN.md ("Sync") for the data flow.
//!
//! State-based, versioned replication with an operation fast path:
//! - the API's scripts ([`journal`]) change a key, bump its version in
//!   `sync:meta:{key}` and append to the journal Stream in one step;
//! - the journal consumer ([`Sync::step`]) applies each key's entries on the
//!   remote — a run of set operations as they are, anything else as a copy
//!   of the whole key — conditional on the version the remote last applied,
//!   and acks only afterwards;
//! - fetch-back merges a key's remote copy back before its first use;
//! - keyspace notifications bring other clients' writes (and reads of
//!   missing keys) in; reconciliation repairs whatever slipped through.
//!
//! Redis Cluster: every multi-key script touches one user's keys, the
//! sponsors set, their `sync:` meta/tombstones and the journal. On a Cluster
//! the sync-owned keys would get hash tags and the journal would become one
//! Stream per slot group; the public key names (SPEC §4) would not change.

pub mod config;
mod conn;
pub mod error;
mod fetch;
pub mod flags;
pub mod health;
pub mod journal;
pub mod keys;
mod leader;
mod local;
pub mod metrics;
pub mod notify;
pub mod reconcile;
mod remote;
mod stream;
pub mod worker;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;

pub use config::SyncConfig;
pub use error::SyncError;
pub use flags::NotifyFlags;
pub use health::SyncStatus;
pub use journal::{AddOutcome, Gate, Quotas, StatusUpdate, WritePath};
pub use keys::{Keys, SponsorKey};
pub use metrics::SyncMetrics;
pub use reconcile::ReconcileReport;
pub use worker::StepReport;

use config::{backoff, BLOCK, WORKER_REMOTE_TIMEOUT};
use conn::Conn;
use fetch::FetchTask;
use remote::RemoteScripts;

/// The sync machinery of one process. Cheap to clone; shared by the API
/// handlers (`fetch_back`, `status`) and the worker (`run`).
#[derive(Clone)]
pub struct Sync {
    inner: Arc<Inner>,
}

pub(crate) struct Scripts {
    state: redis::Script,
    note: redis::Script,
    lease: redis::Script,
    release: redis::Script,
    merge: redis::Script,
}

pub(crate) struct Inner {
    cfg: SyncConfig,
    keys: Keys,
    metrics: SyncMetrics,
    remote_addr: String,
    /// Scripts and short commands on the local Redis.
    local: Conn,
    /// Only for `XREADGROUP … BLOCK` (its response timeout exceeds the block).
    blocking: Conn,
    remote: Conn,
    scripts: Scripts,
    remote_scripts: RemoteScripts,
    inflight: std::sync::Mutex<HashMap<String, FetchTask>>,
    remote_up: AtomicBool,
    backlog: AtomicU64,
    leader: AtomicBool,
    subscribed: AtomicBool,
    group_ready: AtomicBool,
    config_warned: AtomicBool,
    claim_cursor: std::sync::Mutex<String>,
    resync: Notify,
    reconcile_lock: tokio::sync::Mutex<()>,
}

impl Sync {
    /// Prepares both connections lazily: succeeds while either Redis is down
    /// (they are reached, and re-reached after failures with backoff and
    /// jitter, when first needed) and starts the health probe.
    pub async fn connect(cfg: SyncConfig, metrics: SyncMetrics) -> Result<Sync, SyncError> {
        let local = redis::Client::open(cfg.local_url.as_str())
            .map_err(|e| SyncError::Config(format!("local redis url: {}", e.category())))?;
        let remote = redis::Client::open(cfg.remote_url.as_str())
            .map_err(|e| SyncError::Config(format!("remote redis url: {}", e.category())))?;
        if cfg.consumer.is_empty() {
            return Err(SyncError::Config("consumer name is empty".into()));
        }
        let inner = Arc::new(Inner {
            keys: Keys::new(&cfg.sponsorable),
            remote_addr: cfg.remote_addr(),
            local: Conn::new(local.clone(), Duration::from_secs(5)),
            blocking: Conn::new(local, BLOCK + Duration::from_secs(2)),
            remote: Conn::new(remote, WORKER_REMOTE_TIMEOUT.max(cfg.remote_timeout)),
            scripts: Scripts {
                state: local::local_script(local::STATE),
                note: local::local_script(local::NOTE),
                lease: redis::Script::new(local::LEASE),
                release: redis::Script::new(local::RELEASE),
                merge: local::local_script(&fetch::merge_script()),
            },
            remote_scripts: RemoteScripts::new(),
            inflight: Default::default(),
            remote_up: AtomicBool::new(false),
            backlog: AtomicU64::new(0),
            leader: AtomicBool::new(false),
            subscribed: AtomicBool::new(false),
            group_ready: AtomicBool::new(false),
            config_warned: AtomicBool::new(false),
            claim_cursor: std::sync::Mutex::new("0-0".into()),
            resync: Notify::new(),
            reconcile_lock: tokio::sync::Mutex::new(()),
            metrics,
            cfg,
        });
        inner.probe().await;
        health::spawn(&inner);
        Ok(Sync { inner })
    }

    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    pub fn config(&self) -> &SyncConfig {
        &self.inner.cfg
    }

    /// Merges `key` back from the remote when the local copy must be (the
    /// sponsors set first for a user's key); a no-op for a hydrated key or a
    /// non-sponsor's. The whole call is bounded by `remote_timeout`; the merge
    /// itself carries on in the background after a timeout.
    pub async fn fetch_back(&self, key: &SponsorKey) -> Result<(), SyncError> {
        let limit = self.inner.cfg.remote_timeout;
        match tokio::time::timeout(limit, self.inner.hydrate(key)).await {
            Ok(outcome) => outcome.map(|_| ()),
            Err(_) => {
                self.inner.metrics.error("remote_unavailable");
                Err(SyncError::RemoteTimeout {
                    addr: self.inner.remote_addr.clone(),
                    after: limit,
                })
            }
        }
    }

    /// Remote reachability and backlog, refreshed every second in the background.
    pub fn status(&self) -> SyncStatus {
        self.inner.status()
    }

    /// One pass of the journal consumer: claim entries of dead consumers, read
    /// this consumer's pending entries, else new ones (blocking up to 1 s),
    /// apply them on the remote, ack.
    pub async fn step(&self) -> Result<StepReport, SyncError> {
        self.inner.step().await
    }

    /// One full compare-and-repair pass.
    pub async fn reconcile(&self) -> Result<ReconcileReport, SyncError> {
        self.inner.reconcile_pass().await
    }

    /// Adds the keyspace-notification flags the worker needs (`E g s h m`)
    /// to those set on the local Redis; never removes any. Where `CONFIG` is
    /// refused, warns once and answers `configurable() == false`.
    pub async fn ensure_notifications(&self) -> Result<NotifyFlags, SyncError> {
        self.inner.ensure_notifications().await
    }

    /// The whole worker until `shutdown` completes: journal consumer,
    /// keyspace notifications and the notification lead (with resyncs and the
    /// periodic reconciliation). Outages of either Redis are waited out.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) -> Result<(), SyncError> {
        let inner = &self.inner;
        tracing::info!(
            local = %inner.cfg.local_addr(),
            remote = %inner.remote_addr,
            consumer = %inner.cfg.consumer,
            "sync worker running"
        );
        let (stop_tx, stop_rx) = watch::channel(false);
        let (events_tx, events_rx) = mpsc::channel(256);
        let mut tasks = JoinSet::new();
        tasks.spawn(Arc::clone(inner).consume_loop(stop_rx.clone()));
        tasks.spawn(Arc::clone(inner).notify_loop(stop_rx.clone(), events_tx));
        tasks.spawn(Arc::clone(inner).process_events(events_rx));
        tasks.spawn(Arc::clone(inner).lease_loop(stop_rx.clone()));
        tasks.spawn(Arc::clone(inner).resync_loop(stop_rx));
        shutdown.await;
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(Duration::from_secs(5), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tasks.abort_all();
        }
        tracing::info!("sync worker stopped");
        Ok(())
    }
}

impl Inner {
    /// Steps until `stop`, backing off (≤ 1 s, jittered) while steps fail.
    async fn consume_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut failures = 0u32;
        while !*stop.borrow() {
            let outcome = tokio::select! {
                r = self.step() => r,
                _ = stop.changed() => break,
            };
            let error = match outcome {
                Ok(report) if report.retry == 0 => None,
                Ok(report) => Some(report.error.map(|e| e.to_string()).unwrap_or_default()),
                Err(e) => {
                    self.metrics.error(e.kind());
                    Some(e.to_string())
                }
            };
            match error {
                None => {
                    if failures > 0 {
                        tracing::info!("journal consumer recovered");
                    }
                    failures = 0;
                }
                Some(error) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(60) {
                        tracing::warn!(%error, failures, "journal entries could not be applied; retrying");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff(failures, Duration::from_millis(50))) => {}
                        _ = stop.changed() => break,
                    }
                }
            }
        }
    }
}
