//! Periodic re-verification of the sponsors set with a maintainer token.

use std::collections::{BTreeSet, HashMap};

use redis::AsyncCommands;
use sponsorgate_sync::RedisLink;

use super::apply::{settle, signed_in_since};
use super::event::{Change, Outcome};
use super::keys::{CHANGED_AT, PENDING_CHANGES, WEBHOOK_PRECEDENCE};
use super::schedule::{clear_pending, load_pending, lock_or_busy};
use super::{SponsorshipError, SponsorshipResult};
use crate::clock::now_ms;
use crate::github::{AccessToken, GithubError};
use crate::state::App;

/// What one re-verification did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReverifyReport {
    /// Sponsors GitHub lists (counting under the minimum).
    pub listed: usize,
    pub promoted: Vec<u64>,
    pub demoted: Vec<u64>,
    /// Demotions waiting for the grace.
    pub scheduled: Vec<u64>,
    /// Listed again: their scheduled demotion was dropped.
    pub kept: Vec<u64>,
    /// Changed by a webhook after (or just before) the list was read: left alone.
    pub skipped: Vec<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReverifyError {
    #[error("GitHub: {0}")]
    Github(#[from] GithubError),
    #[error("local Redis: {0}")]
    Store(#[from] SponsorshipError),
    /// GitHub listed nobody while sponsors are known here: far more likely a
    /// token that cannot see the sponsorships (not a maintainer's, or missing
    /// `read:org`) than everyone leaving at once. Nothing is changed.
    #[error("GitHub listed no sponsors of {0} while {1} are known here; is SPONSORS_TOKEN a maintainer's token?")]
    EmptyList(String, usize),
}

/// Reads every sponsor of `SPONSORABLE` from GitHub with a maintainer's
/// token, then reconciles `sponsors:{SPONSORABLE}` both ways: listed users
/// missing locally are promoted; local sponsors GitHub no longer lists are
/// demoted (after the grace). When GitHub fails anywhere (any page), nothing
/// changes; an empty list while sponsors are known here is refused too
/// ([`ReverifyError::EmptyList`]). Users a webhook changed within
/// [`WEBHOOK_PRECEDENCE`] of the read, or who signed in after it, are left
/// alone.
#[tracing::instrument(skip_all)]
pub async fn reverify_once(
    app: &App,
    token: &AccessToken,
) -> Result<ReverifyReport, ReverifyError> {
    let started_ms = now_ms();
    let listed = app
        .github
        .sponsors_of(
            token,
            &app.config.sponsorable,
            app.config.sponsor_min_monthly_usd,
        )
        .await
        .inspect_err(|e| app.metrics.github_error(e.kind()))?;
    let listed: BTreeSet<u64> = listed
        .into_iter()
        .filter_map(|id| u64::try_from(id).ok())
        .collect();

    let mut conn = app.store.connection();
    let local: BTreeSet<u64> = app
        .store
        .sponsor_ids()
        .await
        .map_err(SponsorshipError::from)?
        .into_iter()
        .collect();
    if listed.is_empty() && !local.is_empty() {
        return Err(ReverifyError::EmptyList(
            app.config.sponsorable.clone(),
            local.len(),
        ));
    }
    let pending: HashMap<String, String> = conn
        .hgetall(PENDING_CHANGES)
        .await
        .map_err(SponsorshipError::from)?;
    let precedence_ms = i64::try_from(WEBHOOK_PRECEDENCE.as_millis()).unwrap_or(i64::MAX);
    let cutoff_ms = started_ms - precedence_ms;
    // Forget old change marks (they only matter for one run).
    conn.zrembyscore::<_, _, _, ()>(CHANGED_AT, "-inf", format!("({cutoff_ms}"))
        .await
        .map_err(SponsorshipError::from)?;

    // Listed and sponsor here, but a demotion from before the list was read
    // is waiting: they came back (a future cancellation stays scheduled).
    let returning: Vec<u64> = pending
        .iter()
        .filter_map(|(id, json)| {
            Some((
                id.parse::<u64>().ok()?,
                serde_json::from_str::<Change>(json).ok()?,
            ))
        })
        .filter(|(id, c)| {
            !c.sponsor
                && c.effective_at_ms <= started_ms
                && listed.contains(id)
                && local.contains(id)
        })
        .map(|(id, _)| id)
        .collect();

    let mut reconciler = Reconciler {
        app,
        conn,
        cutoff_ms,
        listed_at_ms: started_ms,
        report: ReverifyReport {
            listed: listed.len(),
            ..ReverifyReport::default()
        },
    };
    for user_id in listed.difference(&local) {
        reconciler.reconcile(*user_id, Reconcile::Promote).await?;
    }
    for user_id in local.difference(&listed) {
        reconciler.reconcile(*user_id, Reconcile::Demote).await?;
    }
    for user_id in returning {
        reconciler.reconcile(user_id, Reconcile::Keep).await?;
    }
    Ok(reconciler.report)
}

/// What GitHub's list says about a user.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reconcile {
    Promote,
    Demote,
    Keep,
}

/// One re-verification run's view: the list's read time, the cutoff for
/// recent webhook changes, and the report it fills in.
struct Reconciler<'a> {
    app: &'a App,
    conn: RedisLink,
    cutoff_ms: i64,
    listed_at_ms: i64,
    report: ReverifyReport,
}

impl Reconciler<'_> {
    /// Brings one user in line with GitHub's list, under the user's lock.
    async fn reconcile(&mut self, user_id: u64, what: Reconcile) -> SponsorshipResult<()> {
        let mut conn = self.conn.clone();
        let lock = lock_or_busy(&mut conn, user_id).await?;
        let result = self.reconcile_locked(&mut conn, user_id, what).await;
        lock.release(&mut conn).await;
        result
    }

    async fn reconcile_locked(
        &mut self,
        conn: &mut RedisLink,
        user_id: u64,
        what: Reconcile,
    ) -> SponsorshipResult<()> {
        let app = self.app;
        let changed: Option<f64> = conn.zscore(CHANGED_AT, user_id).await?;
        // A webhook changed them recently, or a sign-in checked GitHub after
        // the list was read: both know better than this run.
        let recent_webhook = changed.is_some_and(|at| at as i64 >= self.cutoff_ms);
        if recent_webhook || signed_in_since(app, conn, user_id, self.listed_at_ms).await? {
            self.report.skipped.push(user_id);
            return Ok(());
        }
        match what {
            Reconcile::Promote => {
                // The tier is not known here: keep whatever is recorded.
                let (was, is) = app.store.set_sponsor(user_id, true).await?;
                clear_pending(conn, user_id).await?;
                if is && !was {
                    tracing::info!(
                        user.id = user_id,
                        reason = "reverify",
                        "sponsor status: promoted"
                    );
                    self.report.promoted.push(user_id);
                }
            }
            Reconcile::Demote => {
                let change = Change {
                    sponsor: false,
                    tier_monthly_usd: None,
                    effective_at_ms: self.listed_at_ms,
                    reason: "reverify".to_owned(),
                };
                match settle(app, conn, user_id, change, now_ms()).await? {
                    Outcome::Scheduled { .. } => self.report.scheduled.push(user_id),
                    _ => self.report.demoted.push(user_id),
                }
            }
            Reconcile::Keep => {
                if let Some(p) = load_pending(conn, user_id).await? {
                    if !p.change.sponsor && p.change.effective_at_ms <= self.listed_at_ms {
                        clear_pending(conn, user_id).await?;
                        self.report.kept.push(user_id);
                    }
                }
            }
        }
        Ok(())
    }
}
