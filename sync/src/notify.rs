//! Keyspace notifications: how changes and reads by other clients of the
//! local Redis reach the sync machinery.
//!
//! Every worker keeps a pub/sub subscription to `__keyevent@<db>__:*`; only
//! the notification leader (see `leader.rs`) acts on it. Events are collected
//! for [`EVENT_WINDOW`], counted per key, and each key is handed to the NOTE
//! script: events our own scripts caused were counted in the key's meta `e`
//! and are matched off; anything more is a change by another program, which
//! journals the whole key. A `keymiss` on a sponsor key fetches it back.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::config::{backoff, EVENT_WINDOW, FLAGS_RECHECK, WORKER_REMOTE_TIMEOUT};
use crate::keys::SponsorKey;
use crate::local::Noted;
use crate::Inner;

/// Keyspace events of one window: change counts per key, and key misses.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct EventBatch {
    pub changes: Vec<(SponsorKey, u64)>,
    pub misses: Vec<SponsorKey>,
    index: HashMap<String, usize>,
}

impl EventBatch {
    /// Records `event` on `key` (a sponsor key). `evicted` and `new` are not
    /// changes: an eviction must not delete the remote copy.
    pub(crate) fn add(&mut self, event: &str, key: &str, parsed: SponsorKey) {
        match event {
            "keymiss" => {
                if !self.misses.contains(&parsed) {
                    self.misses.push(parsed);
                }
            }
            "evicted" | "new" => {}
            _ => match self.index.get(key) {
                Some(&i) => self.changes[i].1 += 1,
                None => {
                    self.index.insert(key.to_string(), self.changes.len());
                    self.changes.push((parsed, 1));
                }
            },
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.misses.is_empty()
    }
}

/// The event name of a `__keyevent@<db>__:<event>` channel.
pub(crate) fn event_name(channel: &str) -> Option<&str> {
    channel
        .strip_prefix("__keyevent@")?
        .split_once("__:")
        .map(|(_, e)| e)
}

impl Inner {
    /// Subscribes, reads events into windows, and resubscribes after any loss.
    pub(crate) async fn notify_loop(
        self: Arc<Self>,
        mut stop: watch::Receiver<bool>,
        tx: mpsc::Sender<EventBatch>,
    ) {
        let pattern = format!(
            "__keyevent@{}__:*",
            self.local
                .client()
                .get_connection_info()
                .redis_settings()
                .db()
        );
        let mut failures = 0u32;
        while !*stop.borrow() {
            // Flags first (a restarted Redis forgot them); without an answer
            // there is no point in subscribing yet.
            let ensured = match self.ensure_notifications().await {
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            };
            let subscribed = async {
                let mut ps = self.local.client().get_async_pubsub().await?;
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
                    self.subscribed.store(true, Ordering::Relaxed);
                    // Events may have been missed while we were not subscribed.
                    self.resync.notify_one();
                    self.read_events(ps, &mut stop, &tx).await;
                    self.subscribed.store(false, Ordering::Relaxed);
                }
                Err(error) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(%error, "keyspace-notification subscription failed; retrying");
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
                    if !self.leader.load(Ordering::Relaxed) {
                        continue;
                    }
                    let Some(event) = event_name(msg.get_channel_name()) else { continue };
                    let Ok(key) = msg.get_payload::<String>() else { continue };
                    if let Some(parsed) = self.keys.parse(&key) {
                        batch.add(event, &key, parsed);
                        deadline.get_or_insert_with(|| Instant::now() + EVENT_WINDOW);
                    }
                }
                _ = window => {
                    deadline = None;
                    self.hand_over(std::mem::take(&mut batch), tx);
                }
                _ = recheck.tick() => {
                    // Someone may have changed the flags; events were missed if so.
                    if let Ok(flags) = self.ensure_notifications().await {
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

    /// Turns windows of events into journal entries and fetch-backs.
    pub(crate) async fn process_events(self: Arc<Self>, mut rx: mpsc::Receiver<EventBatch>) {
        while let Some(batch) = rx.recv().await {
            for (key, count) in &batch.changes {
                self.note_change(key, *count).await;
            }
            for key in batch.misses {
                let inner = Arc::clone(&self);
                tokio::spawn(async move {
                    match tokio::time::timeout(WORKER_REMOTE_TIMEOUT, inner.hydrate(&key)).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, key = ?key, "fetch-back on key miss failed")
                        }
                        Err(_) => tracing::debug!(key = ?key, "fetch-back on key miss timed out"),
                    }
                });
            }
        }
    }

    async fn note_change(self: &Arc<Self>, key: &SponsorKey, count: u64) {
        for _ in 0..3 {
            match self.note(key, count, 0).await {
                Ok(Noted::SponsorsUnhydrated) => {
                    if let Err(e) = self.fetch_task(SponsorKey::Sponsors).await {
                        tracing::debug!(error = %e, "change by another client not journaled: sponsors set unavailable");
                        return;
                    }
                }
                Ok(Noted::Journaled(v)) => {
                    tracing::debug!(key = ?key, v, "change by another client journaled");
                    return;
                }
                Ok(_) => return,
                Err(e) => {
                    self.metrics.error(e.kind());
                    tracing::debug!(error = %e, "could not journal a change by another client");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_windows_count_changes_and_collect_misses() {
        let keys = crate::Keys::new("acme");
        let mut batch = EventBatch::default();
        for (event, key) in [
            ("sadd", "user:1:mnodes"),
            ("srem", "user:1:mnodes"),
            ("hset", "user_details:1"),
            ("keymiss", "user:2:mnodes"),
            ("keymiss", "user:2:mnodes"),
            ("evicted", "user:3:mnodes"),
            ("new", "user:3:mnodes"),
        ] {
            batch.add(event, key, keys.parse(key).unwrap());
        }
        assert_eq!(
            batch.changes,
            vec![(SponsorKey::Mnodes(1), 2), (SponsorKey::UserDetails(1), 1)]
        );
        assert_eq!(batch.misses, vec![SponsorKey::Mnodes(2)]);
        assert!(!batch.is_empty());
        assert_eq!(event_name("__keyevent@0__:keymiss"), Some("keymiss"));
        assert_eq!(event_name("__keyevent@12__:sadd"), Some("sadd"));
        assert_eq!(event_name("__keyspace@0__:user:1:mnodes"), None);
    }
}
