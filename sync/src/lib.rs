//! sponsorgate's sync crate: the only way the service reads and writes
//! sponsor keys ([`SyncStore`], the door), and the worker that mirrors them
//! to the remote Redis, fetches them back on a loss and repairs the remote
//! after it lost data (the guarantees of docs/contract.md). `docs/sync.md` has the design, its
//! invariants, and why each fault is safe.
//!
//! - [`core`]: the rules as pure functions (entries, conflict rule, plans, diff).
//! - [`tiers`]: the atomic steps, one Lua script of `sync/lua/` or one command each.
//! - [`engine`]: the algorithms over the steps (push, fetch back, diff, reconcile).
//! - `door`: the API's reads and writes (bounded waits, `complete` reads).
//! - `worker`, `notify`, `leader`, `health`, `reconcile`: the background parts.

pub mod config;
mod conn;
pub mod core;
mod door;
pub mod engine;
pub mod error;
pub mod flags;
pub mod health;
pub mod keys;
mod leader;
pub mod metrics;
pub mod notify;
pub mod reconcile;
pub mod target;
pub mod tiers;
pub mod topology;
mod worker;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;

pub use config::SyncConfig;
pub use conn::RedisLink;
pub use door::{AddOutcome, Limited, Members, StatusUpdate, WriteOutcome};
pub use error::SyncError;
pub use flags::NotifyFlags;
pub use health::SyncStatus;
pub use keys::{Keys, SponsorKey};
pub use metrics::SyncMetrics;
pub use reconcile::ReconcileReport;
pub use target::RedisTarget;
pub use tiers::{LimitCount, RateLimit, RedisTiers, Tiers, WriteSettings, GCRA_SCRIPT};
pub use worker::DrainReport;

use config::{BLOCK, WORKER_REMOTE_TIMEOUT};
use conn::Conn;
use door::FetchTask;

/// The sponsor keys' one door and, with a remote configured, the sync
/// worker. Cheap to clone.
#[derive(Clone)]
pub struct SyncStore {
    inner: Arc<Inner>,
}

/// The worker's parts; each module owns the state it uses.
pub(crate) struct Inner {
    cfg: SyncConfig,
    keys: Keys,
    metrics: SyncMetrics,
    tiers: Arc<RedisTiers>,
    /// Connection for the worker's own short commands on the local Redis.
    local: Arc<Conn>,
    remote: Option<Arc<Conn>>,
    fetches: std::sync::Mutex<HashMap<String, FetchTask>>,
    queue: worker::Queue,
    health: health::Health,
    notify: notify::NotifyState,
    resync: Notify,
    reconcile_lock: tokio::sync::Mutex<()>,
}

impl SyncStore {
    /// Prepares both connections lazily: succeeds while either Redis is down
    /// (they are reached, and re-reached after failures with backoff and
    /// jitter, when first needed) and starts the health probe.
    pub async fn connect(cfg: SyncConfig, metrics: SyncMetrics) -> Result<SyncStore, SyncError> {
        let open = |url: &str, which: &str, timeout: Duration| {
            RedisTarget::parse(url)
                .and_then(|t| Conn::open(t, timeout).map_err(|e| e.category().to_string()))
                .map(Arc::new)
                .map_err(|e| SyncError::Config(format!("{which} redis url: {e}")))
        };
        let local = open(&cfg.local_url, "local", Duration::from_secs(5))?;
        let remote = match &cfg.remote_url {
            Some(url) => Some(open(
                url,
                "remote",
                WORKER_REMOTE_TIMEOUT.max(cfg.remote_timeout),
            )?),
            None => None,
        };
        if cfg.consumer.is_empty() {
            return Err(SyncError::Config("consumer name is empty".into()));
        }
        let keys = Keys::new(&cfg.sponsorable);
        let evicting = Arc::new(AtomicBool::new(false));
        let tiers = Arc::new(RedisTiers::new(
            keys.clone(),
            Arc::clone(&local),
            remote.clone().map(|r| (r, cfg.remote_addr())),
            cfg.settings,
            Arc::clone(&evicting),
        ));
        let inner = Arc::new(Inner {
            keys,
            tiers,
            local,
            remote,
            fetches: Default::default(),
            queue: worker::Queue::default(),
            health: health::Health::new(evicting),
            notify: notify::NotifyState::default(),
            resync: Notify::new(),
            reconcile_lock: tokio::sync::Mutex::new(()),
            metrics,
            cfg,
        });
        if inner.remote.is_some() {
            inner.probe().await;
            health::spawn(&inner);
        }
        Ok(SyncStore { inner })
    }

    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    pub fn config(&self) -> &SyncConfig {
        &self.inner.cfg
    }

    /// Whether a remote is configured (sync on).
    pub fn sync_on(&self) -> bool {
        self.inner.remote.is_some()
    }

    /// Whether every slot of the local tier is served and every primary
    /// (a single server: the server) answers within `within` (`/readyz`).
    pub async fn local_ready(&self, within: Duration) -> bool {
        health::tier_whole(&self.inner.local, within).await
    }

    /// Remote reachability, repair and backlog, refreshed every second.
    pub fn status(&self) -> SyncStatus {
        self.inner.status()
    }

    /// Pushes every key with pending changes known to this process (and
    /// those a scan of the local Redis finds), until none is left or
    /// `limit` passes: what `sync --reconcile` and tests call.
    pub async fn drain(&self, limit: Duration) -> Result<DrainReport, SyncError> {
        self.inner.drain(limit).await
    }

    /// One full compare-and-repair pass.
    pub async fn reconcile(&self) -> Result<ReconcileReport, SyncError> {
        self.inner.reconcile_pass().await
    }

    /// Adds the keyspace-notification flags the worker needs to those set on
    /// the local Redis; never removes any. Where `CONFIG` is refused, warns
    /// once and answers `configurable() == false`.
    pub async fn ensure_notifications(&self) -> Result<NotifyFlags, SyncError> {
        self.inner.ensure_notifications().await
    }

    /// The whole worker until `shutdown` completes: pushers, keyspace
    /// notifications, the notification lead (resyncs, the periodic
    /// reconciliation, repairs after a remote loss). Outages are waited out.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) -> Result<(), SyncError> {
        let inner = &self.inner;
        if inner.remote.is_none() {
            shutdown.await;
            return Ok(());
        }
        tracing::info!(
            local = %inner.cfg.local_addr(),
            remote = %inner.cfg.remote_addr(),
            consumer = %inner.cfg.consumer,
            "sync worker running"
        );
        let (stop_tx, stop_rx) = watch::channel(false);
        let (events_tx, events_rx) = mpsc::channel(256);
        let mut tasks = JoinSet::new();
        for _ in 0..worker::PUSHERS {
            tasks.spawn(Arc::clone(inner).push_loop(stop_rx.clone()));
        }
        tasks.spawn(Arc::clone(inner).scan_loop(stop_rx.clone()));
        tasks.spawn(Arc::clone(inner).notify_loop(stop_rx.clone(), events_tx));
        tasks.spawn(Arc::clone(inner).process_events(events_rx));
        tasks.spawn(Arc::clone(inner).lease_loop(stop_rx.clone()));
        tasks.spawn(Arc::clone(inner).resync_loop(stop_rx));
        shutdown.await;
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(joined) = tasks.join_next().await {
                if let Err(e) = joined {
                    if e.is_panic() {
                        tracing::error!(error.message = %e, "a sync worker task panicked");
                    }
                }
            }
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
    pub(crate) fn status(&self) -> SyncStatus {
        SyncStatus {
            remote_up: self.health.remote_up.load(Ordering::Relaxed),
            resyncing: self.health.resyncing.load(Ordering::Relaxed),
            backlog: self.queue.len() as u64,
            notify_leader: self.notify.leader.load(Ordering::Relaxed),
            subscribed: self.notify.subscribed.load(Ordering::Relaxed),
        }
    }
}

/// Longest wait of a blocking step of the worker loops.
pub(crate) const IDLE_WAIT: Duration = BLOCK;
