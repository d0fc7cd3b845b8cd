//! The journal consumer: reads `sync:journal` in the consumer group
//! `mirror`, applies each key's entries on the remote, then acks and deletes
//! them (so `XLEN` is the backlog). Nothing is acked before the remote has it.
//!
//! Cluster note: the journal is one Stream; under Redis Cluster it would be
//! one Stream per hash-tagged slot group, each consumed the same way.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use redis::Value;

use crate::config::{BATCH, BLOCK, CLAIM_IDLE};
use crate::error::{is_nogroup, SyncError};
use crate::keys::{SponsorKey, JOURNAL, JOURNAL_GROUP};
use crate::local::LocalState;
use crate::stream::{
    decode, group_by_key, id_millis, parse_autoclaim, parse_read, plan, Entry, Plan,
};
use crate::Inner;

/// What one [`crate::Sync::step`] did.
#[derive(Clone, Debug, Default)]
pub struct StepReport {
    /// Entries taken over from consumers idle for more than 2 s.
    pub claimed: usize,
    /// Entries handled in this step.
    pub read: usize,
    /// Entries applied on the remote (or found already applied there), acked.
    pub applied: usize,
    /// Entries acked without a remote write: not a sponsor's key, malformed, deleted.
    pub skipped: usize,
    /// Entries left pending for a retry (remote down or failing).
    pub retry: usize,
    /// The first failure, when `retry > 0`.
    pub error: Option<SyncError>,
}

enum KeyOutcome {
    Mirrored,
    Skipped,
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Inner {
    async fn ensure_group(&self) -> Result<(), SyncError> {
        let mut cmd = redis::cmd("XGROUP");
        cmd.arg("CREATE")
            .arg(JOURNAL)
            .arg(JOURNAL_GROUP)
            .arg("0")
            .arg("MKSTREAM");
        match self.local.query::<()>(&cmd).await {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") || e.to_string().contains("BUSYGROUP") => {
                Ok(())
            }
            Err(e) => Err(SyncError::Local(e)),
        }
    }

    pub(crate) async fn step(self: &Arc<Self>) -> Result<StepReport, SyncError> {
        if !self.group_ready.load(Ordering::Relaxed) {
            self.ensure_group().await?;
            self.group_ready.store(true, Ordering::Relaxed);
        }
        match self.step_once().await {
            Err(SyncError::Local(e)) if is_nogroup(&e) => {
                // The local Redis lost the journal (flush, restart): start over.
                self.group_ready.store(false, Ordering::Relaxed);
                self.ensure_group().await?;
                self.group_ready.store(true, Ordering::Relaxed);
                Ok(StepReport::default())
            }
            other => other,
        }
    }

    async fn read_group(
        &self,
        id: &str,
        block: bool,
    ) -> Result<Vec<crate::stream::RawEntry>, SyncError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(JOURNAL_GROUP)
            .arg(&self.cfg.consumer)
            .arg("COUNT")
            .arg(BATCH);
        if block {
            cmd.arg("BLOCK").arg(BLOCK.as_millis() as u64);
        }
        cmd.arg("STREAMS").arg(JOURNAL).arg(id);
        let conn = if block { &self.blocking } else { &self.local };
        let reply: Value = conn.query(&cmd).await.map_err(SyncError::Local)?;
        Ok(parse_read(&reply))
    }

    async fn step_once(self: &Arc<Self>) -> Result<StepReport, SyncError> {
        let mut report = StepReport::default();
        let cursor = self
            .claim_cursor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut claim = redis::cmd("XAUTOCLAIM");
        claim
            .arg(JOURNAL)
            .arg(JOURNAL_GROUP)
            .arg(&self.cfg.consumer)
            .arg(CLAIM_IDLE.as_millis() as u64)
            .arg(&cursor)
            .arg("COUNT")
            .arg(BATCH)
            .arg("JUSTID");
        let reply: Value = self.local.query(&claim).await.map_err(SyncError::Local)?;
        let (next, claimed) = parse_autoclaim(&reply);
        *self.claim_cursor.lock().unwrap_or_else(|e| e.into_inner()) = next;
        report.claimed = claimed;

        let mut raw = self.read_group("0", false).await?;
        if raw.is_empty() {
            raw = self.read_group(">", true).await?;
        }
        report.read = raw.len();
        let mut ack: Vec<String> = Vec::new();
        let mut entries = Vec::with_capacity(raw.len());
        for r in &raw {
            match decode(r) {
                Some(e) => entries.push(e),
                None => {
                    if r.fields.is_some() {
                        self.metrics.error("malformed");
                        tracing::warn!(id = %r.id, "malformed journal entry dropped");
                    }
                    report.skipped += 1;
                    ack.push(r.id.clone());
                }
            }
        }
        let mut groups = group_by_key(entries).into_iter();
        for (key, list) in groups.by_ref() {
            match self.apply_key(&key, &list).await {
                Ok(KeyOutcome::Mirrored) => {
                    let now = now_millis();
                    for e in &list {
                        if let Some(ms) = id_millis(&e.id) {
                            self.metrics
                                .lag_seconds
                                .observe(now.saturating_sub(ms) as f64 / 1000.0);
                        }
                    }
                    self.metrics.applied.inc_by(list.len() as u64);
                    report.applied += list.len();
                    ack.extend(list.into_iter().map(|e| e.id));
                }
                Ok(KeyOutcome::Skipped) => {
                    report.skipped += list.len();
                    ack.extend(list.into_iter().map(|e| e.id));
                }
                Err(e) => {
                    self.metrics.error(e.kind());
                    report.retry += list.len();
                    let stop = e.is_remote_unavailable() || matches!(e, SyncError::Local(_));
                    report.error.get_or_insert(e);
                    if stop {
                        break;
                    }
                }
            }
        }
        report.retry += groups.map(|(_, list)| list.len()).sum::<usize>();
        if !ack.is_empty() {
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("XACK")
                .arg(JOURNAL)
                .arg(JOURNAL_GROUP)
                .arg(&ack)
                .ignore()
                .cmd("XDEL")
                .arg(JOURNAL)
                .arg(&ack)
                .ignore();
            self.local
                .pipe::<()>(&pipe)
                .await
                .map_err(SyncError::Local)?;
        }
        Ok(report)
    }

    /// Brings the remote copy of one key up to date with (at least) `entries`.
    async fn apply_key(
        self: &Arc<Self>,
        key: &str,
        entries: &[Entry],
    ) -> Result<KeyOutcome, SyncError> {
        let Some(sk) = self.keys.parse(key) else {
            tracing::warn!(key, "journal entry for a key outside the layout dropped");
            self.metrics.error("malformed");
            return Ok(KeyOutcome::Skipped);
        };
        let last_v = entries.last().map(|e| e.v).unwrap_or(0);
        let mut ops = match plan(entries) {
            Plan::Ops { first_v, ops } => Some((first_v, ops)),
            Plan::Full => None,
        };
        for _ in 0..6 {
            match self.local_state(&sk, ops.is_none()).await? {
                LocalState::SponsorsUnhydrated => self.fetch_task(SponsorKey::Sponsors).await?,
                LocalState::Unhydrated => {
                    self.fetch_task(sk.clone()).await?;
                    ops = None;
                }
                LocalState::NotSponsor => return Ok(KeyOutcome::Skipped),
                LocalState::Ready { v, content } => match (&ops, content) {
                    (Some((first_v, list)), _) => {
                        // A local version below the entries' means the local
                        // Redis restarted its history since: copy instead.
                        if v < last_v {
                            ops = None;
                            continue;
                        }
                        match self.remote_apply_ops(key, *first_v, list).await? {
                            crate::remote::OpsOutcome::NeedsFull => ops = None,
                            _ => return Ok(KeyOutcome::Mirrored),
                        }
                    }
                    (None, Some(content)) => {
                        if !matches!(content.kind.as_str(), "set" | "hash" | "none") {
                            tracing::warn!(key, kind = %content.kind, "sponsor key of an unexpected type is not mirrored");
                            self.metrics.error("wrongtype");
                            return Ok(KeyOutcome::Skipped);
                        }
                        self.remote_apply_full(key, v, &content).await?;
                        return Ok(KeyOutcome::Mirrored);
                    }
                    (None, None) => return Err(SyncError::protocol("state", "snapshot missing")),
                },
            }
        }
        Err(SyncError::protocol(
            "apply",
            "the key kept losing its hydration",
        ))
    }
}
