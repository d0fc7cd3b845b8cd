//! Keyspace notifications: how changes and reads by other clients of the
//! local Redis reach the sync machinery.
//!
//! Every worker keeps a pub/sub subscription to `__keyevent@<db>__:*` on
//! every primary of the local tier (events are per node); only
//! the notification leader (see `leader.rs`) acts on it. Events are collected
//! for [`EVENT_WINDOW`] and handed over per key:
//! - a change event on a sponsor key goes to `note.lua`: events our own
//!   scripts caused were counted in the key's meta (`e`) and are matched
//!   off; anything more is another program's change, and a diff marker has
//!   the worker compare the key with its remote copy (a `DEL` included: a
//!   removal, guarantee 8 of docs/contract.md);
//! - `evicted` / `expired` is a loss: the key is marked lost and fetched back;
//! - `keymiss` on a sponsor key fetches it back;
//! - a change of a pending hash (`sync:p:{key}`) is another process's API
//!   write: the key is queued for a push.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::config::{backoff, EVENT_WINDOW, FLAGS_RECHECK, TOPOLOGY_EVERY, WORKER_REMOTE_TIMEOUT};
use crate::conn::Conn;
use crate::keys::SponsorKey;
use crate::Inner;

/// The notification side's state.
#[derive(Default)]
pub(crate) struct NotifyState {
    pub(crate) leader: AtomicBool,
    pub(crate) subscribed: AtomicBool,
    pub(crate) config_warned: AtomicBool,
}

/// Keyspace events of one window.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct EventBatch {
    /// Change events per sponsor key.
    pub changes: Vec<(SponsorKey, u64)>,
    /// Evicted or expired sponsor keys.
    pub lost: Vec<SponsorKey>,
    /// Reads of missing sponsor keys.
    pub misses: Vec<SponsorKey>,
    /// Keys whose pending changes another process wrote.
    pub pending: Vec<SponsorKey>,
    /// Keys another program gave a TTL (`expire` events).
    pub ttl_set: Vec<SponsorKey>,
    /// Keys with a `del` event (a DEL or UNLINK, or a removal that emptied them).
    pub deleted: Vec<SponsorKey>,
    index: HashMap<String, usize>,
}

fn push_unique(list: &mut Vec<SponsorKey>, key: SponsorKey) {
    if !list.contains(&key) {
        list.push(key);
    }
}

impl EventBatch {
    /// Records `event` on `key`. `new` is not a change; `evicted` and
    /// `expired` are losses, never removals.
    pub(crate) fn add(&mut self, keys: &crate::keys::Keys, event: &str, key: &str) {
        if let Some(parsed) = keys.parse_pending(key) {
            if event == "hset" {
                push_unique(&mut self.pending, parsed);
            }
            return;
        }
        let Some(parsed) = keys.parse(key) else {
            return;
        };
        match event {
            "keymiss" => push_unique(&mut self.misses, parsed),
            "evicted" | "expired" => push_unique(&mut self.lost, parsed),
            "new" => {}
            "expire" => {
                push_unique(&mut self.ttl_set, parsed.clone());
                self.count(key, parsed);
            }
            "del" => {
                push_unique(&mut self.deleted, parsed.clone());
                self.count(key, parsed);
            }
            _ => self.count(key, parsed),
        }
    }

    fn count(&mut self, key: &str, parsed: SponsorKey) {
        match self.index.get(key) {
            Some(&i) => self.changes[i].1 += 1,
            None => {
                self.index.insert(key.to_string(), self.changes.len());
                self.changes.push((parsed, 1));
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.changes.is_empty()
            && self.misses.is_empty()
            && self.lost.is_empty()
            && self.pending.is_empty()
    }
}

/// The event name of a `__keyevent@<db>__:<event>` channel.
pub(crate) fn event_name(channel: &str) -> Option<&str> {
    channel
        .strip_prefix("__keyevent@")?
        .split_once("__:")
        .map(|(_, e)| e)
}

/// One subscription per primary of the local tier.
struct Listener {
    task: tokio::task::JoinHandle<()>,
    subscribed: Arc<AtomicBool>,
}

impl Inner {
    /// Keeps one listener on every primary of the local tier (a single
    /// server: that server), following the topology: a primary added or
    /// promoted by a failover gets one within [`TOPOLOGY_EVERY`], one that
    /// left loses it. Events are per node, and a new listener missed what
    /// happened before it subscribed: it asks for a reconciliation.
    pub(crate) async fn notify_loop(
        self: Arc<Self>,
        mut stop: watch::Receiver<bool>,
        tx: mpsc::Sender<EventBatch>,
    ) {
        let mut listeners: HashMap<String, Listener> = HashMap::new();
        let mut failures = 0u32;
        while !*stop.borrow() {
            let pause = match self.local.topology().await {
                Ok(topology) => {
                    failures = 0;
                    listeners.retain(|addr, l| {
                        let keep = !l.task.is_finished()
                            && topology.primaries.iter().any(|(p, _)| &p.addr() == addr);
                        if !keep {
                            l.task.abort();
                            tracing::info!(sync.node = %addr, "stopped listening to a node that is no longer a primary");
                        }
                        keep
                    });
                    for (primary, node) in topology.primaries {
                        listeners.entry(primary.addr()).or_insert_with(|| {
                            let subscribed = Arc::new(AtomicBool::new(false));
                            let task = tokio::spawn(Arc::clone(&self).listen_node(
                                node,
                                Arc::clone(&subscribed),
                                stop.clone(),
                                tx.clone(),
                            ));
                            Listener { task, subscribed }
                        });
                    }
                    TOPOLOGY_EVERY
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(error.message = %e, "could not read the local topology; retrying");
                    }
                    backoff(failures, Duration::from_millis(100))
                }
            };
            let all = !listeners.is_empty()
                && listeners
                    .values()
                    .all(|l| l.subscribed.load(Ordering::Relaxed));
            self.notify.subscribed.store(all, Ordering::Relaxed);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => {}
            }
        }
        for (_, l) in listeners {
            l.task.abort();
        }
        self.notify.subscribed.store(false, Ordering::Relaxed);
    }

    /// Subscribes on one server, reads events into windows, and
    /// resubscribes after any loss.
    async fn listen_node(
        self: Arc<Self>,
        node: Arc<Conn>,
        subscribed_flag: Arc<AtomicBool>,
        mut stop: watch::Receiver<bool>,
        tx: mpsc::Sender<EventBatch>,
    ) {
        let pattern = format!("__keyevent@{}__:*", node.db());
        let mut failures = 0u32;
        while !*stop.borrow() {
            // Flags first (a restarted Redis forgot them); without an answer
            // there is no point in subscribing yet.
            let ensured = match self.ensure_notifications_on(&node).await {
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            };
            let subscribed = async {
                let client = node.single_client().ok_or_else(|| {
                    redis::RedisError::from((redis::ErrorKind::Client, "not a single node"))
                })?;
                let mut ps = client.get_async_pubsub().await?;
                ps.psubscribe(&pattern).await?;
                Ok::<_, redis::RedisError>(ps)
            };
            let outcome = match ensured {
                Ok(()) => tokio::time::timeout(Duration::from_secs(2), subscribed)
                    .await
                    .map_err(|_| "timed out".to_string())
                    .and_then(|r| r.map_err(|e| e.to_string())),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(ps) => {
                    failures = 0;
                    subscribed_flag.store(true, Ordering::Relaxed);
                    // Events may have been missed while we were not subscribed.
                    self.resync.notify_one();
                    self.read_events(&node, ps, &mut stop, &tx).await;
                    subscribed_flag.store(false, Ordering::Relaxed);
                }
                Err(error) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(error.message = %error, "keyspace-notification subscription failed; retrying");
                    }
                    self.metrics.error("notify");
                }
            }
            let pause = backoff(failures.max(1), Duration::from_millis(100));
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => {}
            }
        }
    }

    async fn read_events(
        &self,
        node: &Conn,
        ps: redis::aio::PubSub,
        stop: &mut watch::Receiver<bool>,
        tx: &mpsc::Sender<EventBatch>,
    ) {
        let mut messages = ps.into_on_message();
        let mut batch = EventBatch::default();
        let mut deadline: Option<Instant> = None;
        let mut recheck = tokio::time::interval_at(Instant::now() + FLAGS_RECHECK, FLAGS_RECHECK);
        loop {
            let window = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                msg = messages.next() => {
                    let Some(msg) = msg else { break };
                    if !self.notify.leader.load(Ordering::Relaxed) {
                        continue;
                    }
                    let Some(event) = event_name(msg.get_channel_name()) else { continue };
                    let Ok(key) = msg.get_payload::<String>() else { continue };
                    if key.starts_with("sync:") && !key.starts_with(crate::keys::PENDING_PREFIX) {
                        continue;
                    }
                    batch.add(&self.keys, event, &key);
                    if !batch.is_empty() {
                        deadline.get_or_insert_with(|| Instant::now() + EVENT_WINDOW);
                    }
                }
                _ = window => {
                    deadline = None;
                    self.hand_over(std::mem::take(&mut batch), tx);
                }
                _ = recheck.tick() => {
                    // Someone may have changed the flags; events were missed if so.
                    if let Ok(flags) = self.ensure_notifications_on(node).await {
                        if flags.before != flags.after {
                            self.resync.notify_one();
                        }
                    }
                }
                _ = stop.changed() => return,
            }
        }
        self.hand_over(batch, tx);
        tracing::warn!("keyspace-notification subscription lost; resubscribing");
    }

    fn hand_over(&self, batch: EventBatch, tx: &mpsc::Sender<EventBatch>) {
        if batch.is_empty() {
            return;
        }
        if tx.try_send(batch).is_err() {
            tracing::warn!("keyspace events are arriving faster than they are handled; a reconciliation will catch up");
            self.metrics.error("notify");
            self.resync.notify_one();
        }
    }

    /// Turns windows of events into diff markers, pushes and fetch-backs.
    pub(crate) async fn process_events(self: Arc<Self>, mut rx: mpsc::Receiver<EventBatch>) {
        while let Some(batch) = rx.recv().await {
            for key in batch.pending {
                self.queue.push(key);
            }
            // Losses first: an expiry in the same window as the TTL that
            // caused it must not be taken for a deletion.
            for key in &batch.lost {
                if let Err(e) = self.note(key, 0, true, false, false).await {
                    tracing::debug!(error.message = %e, sync.key = ?key, "could not mark a lost key");
                }
            }
            for (key, count) in &batch.changes {
                let ttl_set = batch.ttl_set.contains(key);
                // A `del` with no eviction or expiry of the key in the window.
                let deleted = batch.deleted.contains(key) && !batch.lost.contains(key);
                match self.note(key, *count, false, ttl_set, deleted).await {
                    Ok(1) => self.queue.push(key.clone()),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error.message = %e, sync.key = ?key, "could not note a change; the reconciliation will");
                        self.resync.notify_one();
                    }
                }
            }
            for key in batch.lost {
                self.spawn_hydrate(key);
            }
            for key in batch.misses {
                self.spawn_hydrate(key);
            }
        }
    }

    fn spawn_hydrate(self: &Arc<Self>, key: SponsorKey) {
        let task = self.fetch_task(key.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(WORKER_REMOTE_TIMEOUT, task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(error.message = %e, sync.key = ?key, "fetch-back after an event failed")
                }
                Err(_) => tracing::debug!(sync.key = ?key, "fetch-back after an event timed out"),
            }
        });
    }

    /// Runs `note.lua` on a key: returns 1 when a diff marker was set.
    pub(crate) async fn note(
        &self,
        key: &SponsorKey,
        count: u64,
        lost: bool,
        ttl_set: bool,
        deleted: bool,
    ) -> Result<i64, crate::SyncError> {
        let name = self.keys.name(key);
        let mut inv = self.tiers.scripts.note.prepare_invoke();
        inv.key(&name)
            .key(self.keys.meta(&name))
            .key(self.keys.pending(&name))
            .arg(count)
            .arg(if lost { "1" } else { "0" })
            .arg(if ttl_set { "1" } else { "0" })
            .arg(if deleted { "1" } else { "0" });
        self.local
            .invoke_epoch(inv)
            .await
            .map_err(crate::SyncError::Local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keys;

    #[test]
    fn events_are_sorted_into_changes_losses_misses_and_pushes() {
        let keys = Keys::new("acme");
        let mut b = EventBatch::default();
        b.add(&keys, "sadd", "user:1:mnodes");
        b.add(&keys, "srem", "user:1:mnodes");
        b.add(&keys, "expire", "user:2:mnodes");
        b.add(&keys, "expired", "user:2:mnodes");
        b.add(&keys, "evicted", "user_details:3");
        b.add(&keys, "keymiss", "sponsors:acme");
        b.add(&keys, "hset", "sync:p:{user:4:mnodes}");
        b.add(&keys, "new", "user:5:mnodes");
        b.add(&keys, "sadd", "session:x");
        assert_eq!(
            b.changes,
            vec![(SponsorKey::Mnodes(1), 2), (SponsorKey::Mnodes(2), 1)]
        );
        assert_eq!(
            b.lost,
            vec![SponsorKey::Mnodes(2), SponsorKey::UserDetails(3)]
        );
        assert_eq!(b.ttl_set, vec![SponsorKey::Mnodes(2)]);
        assert_eq!(b.misses, vec![SponsorKey::Sponsors]);
        assert_eq!(b.pending, vec![SponsorKey::Mnodes(4)]);
        assert_eq!(event_name("__keyevent@0__:sadd"), Some("sadd"));
    }
}
