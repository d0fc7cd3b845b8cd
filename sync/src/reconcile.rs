//! Reconciliation: one full compare-and-repair pass over the sponsor keys,
//! run periodically by the notification leader, after every resubscription,
//! after a remote loss (guarantee 12 of docs/contract.md), and by `sponsorgate sync --reconcile`.
//!
//! For the sponsors set and each user in it (`user_details:{id}`,
//! `user:{id}:mnodes`): pending entries are pushed, then a complete key is
//! compared with its remote copy member by member (SSCAN/HSCAN in steps of
//! 1000 on both sides, never one long command), and a lost one is fetched
//! back. Former sponsors' remote copies are never touched; non-sponsors'
//! keys never reach the remote.

use std::fmt;
use std::sync::Arc;

use crate::engine::{self, Reconciled};
use crate::error::SyncError;
use crate::keys::SponsorKey;
use crate::Inner;

/// What one pass did (`Display` is the summary of `sponsorgate sync --reconcile`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Keys compared with their remote copies.
    pub checked: usize,
    /// Keys fetched back from the remote first (they were lost locally).
    pub fetched_back: Vec<String>,
}

impl ReconcileReport {
    pub fn changed(&self) -> bool {
        !self.fetched_back.is_empty()
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
        list(f, &self.fetched_back)
    }
}

impl Inner {
    async fn reconcile_one(
        self: &Arc<Self>,
        key: &SponsorKey,
        report: &mut ReconcileReport,
    ) -> Result<(), SyncError> {
        let token = format!("{}.r", self.cfg.consumer);
        match engine::reconcile_key(&*self.tiers, key, &token).await? {
            Reconciled::Compared => report.checked += 1,
            Reconciled::FetchedBack => {
                report.checked += 1;
                report.fetched_back.push(self.keys.name(key));
            }
            Reconciled::Skipped => {}
        }
        Ok(())
    }

    pub(crate) async fn reconcile_pass(self: &Arc<Self>) -> Result<ReconcileReport, SyncError> {
        let _one_at_a_time = self.reconcile_lock.lock().await;
        let mut report = ReconcileReport::default();
        self.reconcile_one(&SponsorKey::Sponsors, &mut report)
            .await?;
        let mut cursor = 0;
        loop {
            let (next, items) =
                crate::tiers::Tiers::scan_local(&*self.tiers, &SponsorKey::Sponsors, cursor)
                    .await?;
            for (id, _) in items {
                let Some(id) = std::str::from_utf8(&id)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                else {
                    continue;
                };
                for key in [
                    SponsorKey::UserDetails(id),
                    SponsorKey::Mnodes(id),
                    SponsorKey::Tokens(id),
                ] {
                    self.reconcile_one(&key, &mut report).await?;
                }
            }
            if next == 0 {
                return Ok(report);
            }
            cursor = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_what_was_fetched_back() {
        let mut r = ReconcileReport {
            checked: 5,
            ..Default::default()
        };
        assert!(!r.changed());
        assert_eq!(r.to_string(), "checked 5 sponsor keys; fetched back 0");
        r.fetched_back = (0..25).map(|i| format!("k{i}")).collect();
        assert!(r.changed());
        assert!(r.to_string().contains("fetched back 25 (k0, k1,"));
        assert!(r.to_string().contains("… 5 more)"));
    }
}
