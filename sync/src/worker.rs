//! The pushers: keys with pending changes wait in a queue (fed by this
//! process's writes, by keyspace events of other processes' writes, and by a
//! scan of `sync:p:*` at start, after every resubscription and periodically)
//! and several pushers work on different keys at once, so one large or slow
//! key never holds back the others (guarantee 13 of docs/contract.md). A failed push puts its key
//! back with a backoff; nothing is forgotten locally before the remote has it.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::config::backoff;
use crate::door::FetchTask;
use crate::engine;
use crate::error::SyncError;
use crate::keys::SponsorKey;
use crate::Inner;

/// Keys pushed at the same time by one process.
pub(crate) const PUSHERS: usize = 4;
/// Period of the backstop scan for pending keys nobody announced.
pub(crate) const SCAN_EVERY: Duration = Duration::from_secs(30);

#[derive(Default)]
struct QueueState {
    ready: VecDeque<SponsorKey>,
    queued: HashSet<SponsorKey>,
    busy: HashSet<SponsorKey>,
    /// Keys whose push came in while they were being pushed.
    again: HashSet<SponsorKey>,
    /// Failed keys and when to retry them.
    later: Vec<(Instant, SponsorKey, u32)>,
}

#[derive(Default)]
pub(crate) struct Queue {
    state: std::sync::Mutex<QueueState>,
    wake: Notify,
}

impl Queue {
    pub(crate) fn push(&self, key: SponsorKey) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.busy.contains(&key) {
            st.again.insert(key);
            return;
        }
        if st.queued.insert(key.clone()) {
            st.ready.push_back(key);
            drop(st);
            self.wake.notify_one();
        }
    }

    /// Keys queued, being pushed or waiting for a retry.
    pub(crate) fn len(&self) -> usize {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.queued.len() + st.busy.len() + st.later.len()
    }

    fn take(&self) -> Option<SponsorKey> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let mut i = 0;
        while i < st.later.len() {
            if st.later[i].0 <= now {
                let (_, key, _) = st.later.swap_remove(i);
                if st.queued.insert(key.clone()) {
                    st.ready.push_back(key);
                }
            } else {
                i += 1;
            }
        }
        let key = st.ready.pop_front()?;
        st.queued.remove(&key);
        st.busy.insert(key.clone());
        Some(key)
    }

    fn next_retry(&self) -> Option<Instant> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.later.iter().map(|(at, _, _)| *at).min()
    }

    fn done(&self, key: &SponsorKey, failed: Option<u32>) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.busy.remove(key);
        let again = st.again.remove(key);
        match failed {
            Some(attempt) => {
                st.later.retain(|(_, k, _)| k != key);
                let at = Instant::now() + backoff(attempt, Duration::from_millis(50));
                st.later.push((at, key.clone(), attempt));
            }
            None if again && st.queued.insert(key.clone()) => st.ready.push_back(key.clone()),
            None => {}
        }
        drop(st);
        self.wake.notify_one();
    }

    fn attempts(&self, key: &SponsorKey) -> u32 {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.later
            .iter()
            .find(|(_, k, _)| k == key)
            .map(|(_, _, a)| *a)
            .unwrap_or(0)
    }
}

/// What [`crate::SyncStore::drain`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    pub keys: usize,
    pub pushed: usize,
}

pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Inner {
    /// Pushes one key (fetching it back first when it turns out lost and
    /// must be compared). Errors leave its entries pending.
    pub(crate) async fn push_one(self: &Arc<Self>, key: &SponsorKey) -> Result<usize, SyncError> {
        // A token of its own: two fetch-backs never share a lease.
        let token = format!("{}.{:08x}", self.cfg.consumer, rand::random::<u32>());
        let report = engine::push_key(&*self.tiers, key, &token).await?;
        if report.needs_fetch {
            self.fetch_task(key.clone()).await?;
        }
        if report.malformed > 0 {
            self.metrics.error("malformed");
            tracing::warn!(sync.key = ?key, n = report.malformed, "malformed pending entries dropped");
        }
        if report.pushed() > 0 {
            self.metrics.applied.inc_by(report.pushed() as u64);
            let now_us = now_millis() * 1000;
            for stamp in &report.stamps {
                self.metrics
                    .lag_seconds
                    .observe(now_us.saturating_sub(*stamp) as f64 / 1e6);
            }
        }
        Ok(report.pushed())
    }

    pub(crate) async fn push_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            let Some(key) = self.queue.take() else {
                let retry = self.queue.next_retry();
                let wait = async {
                    match retry {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => tokio::time::sleep(crate::IDLE_WAIT).await,
                    }
                };
                tokio::select! {
                    _ = self.queue.wake.notified() => {}
                    _ = wait => {}
                    _ = stop.changed() => break,
                }
                continue;
            };
            let outcome = tokio::select! {
                r = self.push_one(&key) => r,
                _ = stop.changed() => {
                    self.queue.done(&key, Some(1));
                    break;
                }
            };
            match outcome {
                Ok(_) => self.queue.done(&key, None),
                Err(e) => {
                    let attempt = self.queue.attempts(&key) + 1;
                    self.metrics.error(e.kind());
                    if attempt == 1 || attempt.is_multiple_of(60) {
                        tracing::warn!(error.message = %e, sync.key = ?key, attempt, "pending changes could not be pushed; retrying");
                    }
                    self.queue.done(&key, Some(attempt));
                }
            }
        }
    }

    /// Finds every key with pending changes in the local Redis (`SCAN`, in
    /// steps of 1000, on every primary) and queues it.
    pub(crate) async fn scan_pending_keys(&self) -> Result<usize, SyncError> {
        let mut found = 0;
        let topology = self.local.topology().await.map_err(SyncError::Local)?;
        for (_, node) in &topology.primaries {
            let pattern = format!("{}*", crate::keys::PENDING_PREFIX);
            scan_names(node, &pattern, |names| {
                for name in names {
                    if let Some(key) = self.keys.parse_pending(&name) {
                        self.queue.push(key);
                        found += 1;
                    }
                }
            })
            .await?;
        }
        Ok(found)
    }

    pub(crate) async fn scan_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut failures = 0;
        loop {
            let pause = match self.scan_pending_keys().await {
                Ok(_) => {
                    failures = 0;
                    SCAN_EVERY
                }
                Err(e) => {
                    failures += 1;
                    tracing::debug!(error.message = %e, "scan for pending keys failed");
                    backoff(failures, Duration::from_millis(200))
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => return,
            }
        }
    }

    pub(crate) async fn drain(self: &Arc<Self>, limit: Duration) -> Result<DrainReport, SyncError> {
        let deadline = Instant::now() + limit;
        let mut report = DrainReport::default();
        self.scan_pending_keys().await?;
        loop {
            let Some(key) = self.queue.take() else {
                if self.queue.len() == 0 {
                    return Ok(report);
                }
                if Instant::now() > deadline {
                    return Err(SyncError::protocol(
                        "drain",
                        format!("{} keys still pending", self.queue.len()),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            match self.push_one(&key).await {
                Ok(n) => {
                    report.keys += 1;
                    report.pushed += n;
                    self.queue.done(&key, None);
                }
                Err(e) => {
                    self.queue.done(&key, Some(1));
                    return Err(e);
                }
            }
        }
    }

    /// The running fetch-back of `key`, or a new one (as its own task, so a
    /// request that gives up does not cancel it).
    pub(crate) fn fetch_task(self: &Arc<Self>, key: SponsorKey) -> FetchTask {
        crate::door::fetch_task(self, key)
    }
}

/// Every key name of one server matching `pattern`, in `SCAN` steps of 1000
/// handed to `each` (a server of a cluster holds only its own slots' keys).
pub(crate) async fn scan_names(
    node: &crate::conn::Conn,
    pattern: &str,
    mut each: impl FnMut(Vec<String>),
) -> Result<(), SyncError> {
    let mut cursor: u64 = 0;
    loop {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000);
        let (next, names): (u64, Vec<String>) =
            node.query(&scan).await.map_err(SyncError::Local)?;
        each(names);
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
