//! Reconciliation: one full compare-and-repair pass over the sponsor keys.
//!
//! For the sponsors set and each user in the *local* sponsors set
//! (`user_details:{id}`, `user:{id}:mnodes`): an unhydrated key is fetched
//! back (merged) first; then the local and remote contents are compared by
//! digest and, where they differ, the local key is journaled in full with a
//! version above the remote's and copied to the remote at once. Former
//! sponsors' remote copies are never touched; non-sponsors' keys are never
//! written to the remote.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::Value;

use crate::error::SyncError;
use crate::fetch::Hydrated;
use crate::keys::{SponsorKey, JOURNAL, JOURNAL_GROUP};
use crate::local::{LocalState, Noted};
use crate::Inner;

/// What one pass did (`Display` is the summary of `sponsorgate sync --reconcile`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Keys compared.
    pub checked: usize,
    /// Keys merged back from the remote first (they were missing locally).
    pub fetched_back: Vec<String>,
    /// Keys whose remote copy differed and was replaced with the local one.
    pub repaired: Vec<String>,
    /// Idle journal consumers (no pending entries, idle > 1 h) removed.
    pub consumers_removed: usize,
}

impl ReconcileReport {
    pub fn changed(&self) -> bool {
        !self.fetched_back.is_empty() || !self.repaired.is_empty()
    }
}

fn list(f: &mut fmt::Formatter<'_>, names: &[String]) -> fmt::Result {
    for (i, name) in names.iter().take(20).enumerate() {
        write!(f, "{}{name}", if i == 0 { " (" } else { ", " })?;
    }
    if names.len() > 20 {
        write!(f, ", … {} more", names.len() - 20)?;
    }
    if !names.is_empty() {
        write!(f, ")")?;
    }
    Ok(())
}

impl fmt::Display for ReconcileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "checked {} sponsor keys; fetched back {}",
            self.checked,
            self.fetched_back.len()
        )?;
        list(f, &self.fetched_back)?;
        write!(f, "; repaired {} on the remote", self.repaired.len())?;
        list(f, &self.repaired)?;
        if self.consumers_removed > 0 {
            write!(
                f,
                "; removed {} idle journal consumers",
                self.consumers_removed
            )?;
        }
        Ok(())
    }
}

impl Inner {
    pub(crate) async fn reconcile_pass(self: &Arc<Self>) -> Result<ReconcileReport, SyncError> {
        let _one_at_a_time = self.reconcile_lock.lock().await;
        let mut report = ReconcileReport::default();
        self.reconcile_key(&SponsorKey::Sponsors, &mut report)
            .await?;
        let mut members = redis::cmd("SMEMBERS");
        members.arg(self.keys.sponsors());
        let ids: Vec<String> = self.local.query(&members).await.map_err(SyncError::Local)?;
        let mut ids: Vec<u64> = ids.iter().filter_map(|id| id.parse().ok()).collect();
        ids.sort_unstable();
        for id in ids {
            for key in [SponsorKey::UserDetails(id), SponsorKey::Mnodes(id)] {
                self.reconcile_key(&key, &mut report).await?;
            }
        }
        match self.prune_consumers().await {
            Ok(n) => report.consumers_removed = n,
            Err(e) => tracing::debug!(error = %e, "could not prune idle journal consumers"),
        }
        Ok(report)
    }

    async fn reconcile_key(
        self: &Arc<Self>,
        key: &SponsorKey,
        report: &mut ReconcileReport,
    ) -> Result<(), SyncError> {
        let name = self.keys.name(key);
        report.checked += 1;
        match self.local_state(key, false).await? {
            LocalState::NotSponsor => return Ok(()),
            LocalState::Ready { .. } => {}
            LocalState::SponsorsUnhydrated | LocalState::Unhydrated => {
                if self.hydrate(key).await? == Hydrated::NotSponsor {
                    return Ok(());
                }
                report.fetched_back.push(name.clone());
            }
        }
        for _ in 0..3 {
            let (local, remote) = tokio::join!(self.digest(&name, false), self.digest(&name, true));
            let (local, remote) = (local?, remote?);
            if local.same_content(&remote) {
                return Ok(());
            }
            // Journal the key with a version above the remote's (durable even
            // if the copy below fails), then copy it now.
            match self.note(key, 0, remote.v + 1).await? {
                Noted::Journaled(_) => {}
                Noted::SponsorsUnhydrated | Noted::NotSponsor | Noted::OwnEvents => return Ok(()),
            }
            match self.local_state(key, true).await? {
                LocalState::Ready {
                    v,
                    content: Some(content),
                } if matches!(content.kind.as_str(), "set" | "hash" | "none") => {
                    // `false`: a running worker applied the journaled copy first.
                    let here = self.remote_apply_full(&name, v, &content).await?;
                    tracing::info!(key = %name, v, here, "remote copy differed; replaced with the local one");
                    report.repaired.push(name);
                    return Ok(());
                }
                LocalState::Ready { .. } | LocalState::NotSponsor => return Ok(()),
                LocalState::SponsorsUnhydrated | LocalState::Unhydrated => {
                    self.hydrate(key).await?;
                }
            }
        }
        Err(SyncError::protocol(
            "reconcile",
            format!("{name} kept losing its hydration while being repaired"),
        ))
    }

    /// Removes consumers of the journal group that hold nothing and have been
    /// idle for over an hour (every process start adds one).
    async fn prune_consumers(&self) -> Result<usize, SyncError> {
        let mut info = redis::cmd("XINFO");
        info.arg("CONSUMERS").arg(JOURNAL).arg(JOURNAL_GROUP);
        let reply: Value = self.local.query(&info).await.map_err(SyncError::Local)?;
        let Value::Array(consumers) = reply else {
            return Ok(0);
        };
        let mut removed = 0;
        for consumer in consumers {
            let fields = fields_of(consumer);
            let get = |name: &str| {
                fields
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            let (Some(Value::BulkString(who)), Some(Value::Int(pending)), Some(Value::Int(idle))) =
                (get("name"), get("pending"), get("idle"))
            else {
                continue;
            };
            let who = String::from_utf8_lossy(&who).into_owned();
            if pending == 0
                && idle > Duration::from_secs(3600).as_millis() as i64
                && who != self.cfg.consumer
            {
                let mut del = redis::cmd("XGROUP");
                del.arg("DELCONSUMER")
                    .arg(JOURNAL)
                    .arg(JOURNAL_GROUP)
                    .arg(&who);
                self.local
                    .query::<i64>(&del)
                    .await
                    .map_err(SyncError::Local)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn fields_of(v: Value) -> Vec<(String, Value)> {
    let pairs: Vec<(Value, Value)> = match v {
        Value::Array(items) => {
            let mut it = items.into_iter();
            std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect()
        }
        Value::Map(pairs) => pairs,
        _ => Vec::new(),
    };
    pairs
        .into_iter()
        .filter_map(|(k, v)| redis::from_redis_value::<String>(k).ok().map(|k| (k, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_what_changed() {
        let mut r = ReconcileReport {
            checked: 5,
            ..Default::default()
        };
        assert!(!r.changed());
        assert_eq!(
            r.to_string(),
            "checked 5 sponsor keys; fetched back 0; repaired 0 on the remote"
        );
        r.repaired = vec!["user:1:mnodes".into(), "user_details:1".into()];
        r.consumers_removed = 2;
        assert!(r.changed());
        assert_eq!(
            r.to_string(),
            "checked 5 sponsor keys; fetched back 0; repaired 2 on the remote (user:1:mnodes, user_details:1); \
             removed 2 idle journal consumers"
        );
        r.fetched_back = (0..25).map(|i| format!("k{i}")).collect();
        assert!(r.to_string().contains("fetched back 25 (k0, k1,"));
        assert!(r.to_string().contains("… 5 more)"));
    }
}
