//! The door: every read and write of a sponsor key by the API goes through
//! here. A write is one step on the local Redis and never waits for the
//! remote (a lost key is written all the same: its entries win over the
//! remote copy at the fetch-back, guarantee 9 of docs/contract.md). A read of a lost key waits for
//! its fetch-back at most `REMOTE_TIMEOUT_MS`, then answers what the local
//! Redis holds with `complete: false`.

use std::sync::Arc;

use futures_util::future::{BoxFuture, FutureExt, Shared};

use crate::engine::{self, Hydration};
use crate::error::SyncError;
use crate::keys::SponsorKey;
use crate::tiers::{Change, Condition, LimitCount, RateLimit, ReadReply, Tiers, WriteReply};
use crate::{Inner, SyncStore};

/// Reads of up to this many members are one atomic script; larger sets are
/// read with SSCAN so that no call blocks the local Redis (guarantee 14 of docs/contract.md).
const SMALL: usize = 2000;

pub(crate) type FetchTask = Shared<BoxFuture<'static, Result<(), SyncError>>>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddOutcome {
    Added {
        added: bool,
        count: u64,
        sponsor: bool,
    },
    QuotaExceeded {
        limit: u64,
    },
}

/// An outcome and the count of the rate limit it was made under
/// ([`crate::tiers::Change::limit`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limited<T> {
    /// `None`: refused by the limit; nothing changed.
    pub outcome: Option<T>,
    /// The count, when a limit was given.
    pub rate: Option<LimitCount>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteOutcome {
    pub changed: bool,
    /// The change persists (the owner is a sponsor).
    pub sponsor: bool,
}

/// A read of a set or hash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Members {
    /// Members (sorted bytewise) or field/value pairs.
    pub items: Vec<(String, String)>,
    pub sponsor: bool,
    /// `false` when the key was lost locally and could not be fetched back
    /// in time: `items` is then what the local Redis holds (guarantee 9 of docs/contract.md).
    pub complete: bool,
}

/// A sponsor status to record; `Keep` leaves it as it is (the GitHub check
/// failed: never demote on a failure).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusUpdate {
    Sponsor,
    NotSponsor,
    Keep,
}

fn token(inner: &Inner) -> String {
    format!("{}.{:08x}", inner.cfg.consumer, rand::random::<u32>())
}

/// The running hydration of `key` in this process, or a new one.
pub(crate) fn fetch_task(inner: &Arc<Inner>, key: SponsorKey) -> FetchTask {
    let name = inner.keys.name(&key);
    let mut fetches = inner.fetches.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(task) = fetches.get(&name) {
        return task.clone();
    }
    let worker = Arc::clone(inner);
    let task_name = name.clone();
    let handle = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let outcome = hydrate_until_done(&worker, &key).await;
        if outcome.is_ok() {
            worker.metrics.fetchbacks.inc();
            worker
                .metrics
                .fetchback_seconds
                .observe(started.elapsed().as_secs_f64());
        }
        worker
            .fetches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&task_name);
        outcome
    });
    let task = async move {
        handle.await.unwrap_or_else(|e| {
            Err(SyncError::protocol(
                "fetch back",
                format!("task failed: {e}"),
            ))
        })
    }
    .boxed()
    .shared();
    fetches.insert(name, task.clone());
    task
}

async fn hydrate_until_done(inner: &Arc<Inner>, key: &SponsorKey) -> Result<(), SyncError> {
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_millis(crate::tiers::FETCH_LEASE_MS * 2);
    loop {
        match engine::hydrate(&*inner.tiers, key, &token(inner)).await? {
            Hydration::Complete | Hydration::NotSponsor => return Ok(()),
            // Another process holds the lease: wait for its swap (or its
            // lease to run out, then take over).
            Hydration::Busy => {
                if tokio::time::Instant::now() > deadline {
                    return Err(SyncError::protocol("fetch back", "the key stayed busy"));
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}

impl Inner {
    /// Hydrates `key` within `REMOTE_TIMEOUT_MS`; the fetch-back carries on
    /// in the background after a timeout. Returns whether it completed.
    async fn hydrate_bounded(self: &Arc<Self>, key: &SponsorKey) -> bool {
        let limit = self.cfg.remote_timeout;
        match tokio::time::timeout(limit, fetch_task(self, key.clone())).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(sync.key = ?key, error.message = %e, "fetch-back failed; serving from the local Redis");
                false
            }
            Err(_) => {
                self.metrics.error("remote_unavailable");
                false
            }
        }
    }

    /// The owner's sponsorship as the sponsors set says now (fetched back
    /// first when lost, within the bound); `None` when it cannot be known:
    /// the key's own record then decides, so a failure never demotes.
    async fn status_of(self: &Arc<Self>, key: &SponsorKey) -> Result<Option<bool>, SyncError> {
        let Some(uid) = key.user_id() else {
            return Ok(Some(true));
        };
        let (condition, member) = self.tiers.sponsor_check(uid).await?;
        if condition == Condition::Complete {
            return Ok(Some(member));
        }
        if self.hydrate_bounded(&SponsorKey::Sponsors).await {
            let (condition, member) = self.tiers.sponsor_check(uid).await?;
            if condition == Condition::Complete {
                return Ok(Some(member));
            }
        }
        Ok(None)
    }

    fn announce(self: &Arc<Self>, key: &SponsorKey) {
        if self.remote.is_some() {
            self.queue.push(key.clone());
        }
    }

    /// One step (the sponsors set is read inside it); the slow path only
    /// when the sponsors set was lost and the key's own record does not know.
    async fn write(self: &Arc<Self>, mut change: Change<'_>) -> Result<WriteReply, SyncError> {
        if change.status.is_none() {
            change.status = self.cluster_status(change.key).await?;
        }
        let mut reply = self.tiers.write(&change).await?;
        if let WriteReply::Done {
            condition,
            sponsor,
            sponsors_lost,
            recorded,
            stamp,
            ..
        } = &mut reply
        {
            if *recorded {
                self.announce(change.key);
            }
            if *sponsors_lost {
                if sponsor.is_none() {
                    *sponsor = self.record_status(change.key).await?;
                    if let (Some(known), Some(stamp)) = (*sponsor, *stamp) {
                        self.confirm_origin(&change, stamp, known).await?;
                    }
                } else {
                    drop(fetch_task(self, SponsorKey::Sponsors));
                }
            }
            if *condition == Condition::Lost && *sponsor != Some(false) {
                // Fetch it back now rather than at the next read.
                drop(fetch_task(self, change.key.clone()));
            }
        }
        Ok(reply)
    }

    /// The entries of `change` were written with an unknown origin (`U`);
    /// the API answers with `sponsor` now, so they carry that origin: an
    /// answer `"persistent": true` is kept even through a later demotion.
    async fn confirm_origin(
        &self,
        change: &Change<'_>,
        stamp: crate::core::Stamp,
        sponsor: bool,
    ) -> Result<(), SyncError> {
        use crate::core::{Entry, Op, Origin};
        let hash = matches!(change.key, SponsorKey::UserDetails(_));
        for (field, value) in change.items {
            let mut entry = Entry {
                stamp,
                op: if change.add { Op::Add } else { Op::Remove },
                origin: Origin::Unknown,
                value: hash.then(|| value.as_bytes().to_vec()),
            };
            let written = entry.encode();
            entry.origin = if sponsor {
                Origin::Sponsor
            } else {
                Origin::NonSponsor
            };
            self.tiers
                .confirm(change.key, field.as_bytes(), &written, &entry.encode())
                .await?;
        }
        Ok(())
    }

    /// The owner's sponsorship from the sponsors set (fetched back within the
    /// bound), recorded on `key`; `None` when it still cannot be known.
    async fn record_status(self: &Arc<Self>, key: &SponsorKey) -> Result<Option<bool>, SyncError> {
        let status = self.status_of(key).await?;
        if let Some(s) = status {
            self.tiers.set_status(key, s, false).await?;
        }
        Ok(status)
    }

    /// On a cluster the sponsors set is in another slot than a user's keys,
    /// so a step cannot read it: the door reads it first (`None` on a single
    /// server, where the step reads it itself, or when it cannot be known).
    async fn cluster_status(self: &Arc<Self>, key: &SponsorKey) -> Result<Option<bool>, SyncError> {
        if self.tiers.colocated() || key.user_id().is_none() {
            return Ok(None);
        }
        self.status_of(key).await
    }

    async fn read_all(self: &Arc<Self>, key: &SponsorKey) -> Result<Members, SyncError> {
        let status = self.cluster_status(key).await?;
        let mut state: ReadReply = self.tiers.read(key, SMALL, status).await?;
        if state.sponsors_lost {
            if state.sponsor.is_none() {
                self.record_status(key).await?;
                state = self.tiers.read(key, SMALL, None).await?;
            } else {
                drop(fetch_task(self, SponsorKey::Sponsors));
            }
        }
        if state.condition == Condition::Lost {
            self.hydrate_bounded(key).await;
            state = self.tiers.read(key, SMALL, None).await?;
        }
        let sponsor = state.sponsor.unwrap_or(false);
        let mut complete = state.condition == Condition::Complete;
        let raw = match state.items {
            Some(items) => items,
            None => {
                // A large set is read in steps; it is complete only if it
                // stayed complete from before the first step to after the last.
                let mut generation = None;
                // A non-sponsor's key (or any key without a remote) is never
                // compared with a remote copy: complete as it stands.
                let mut settled = complete && (self.remote.is_none() || !sponsor);
                if complete && !settled {
                    match self.tiers.begin_diff(key).await? {
                        crate::tiers::DiffStart::Ready { generation: g, .. } => {
                            generation = Some(g)
                        }
                        crate::tiers::DiffStart::NotSponsor => settled = true,
                        _ => {}
                    }
                }
                let mut out = Vec::new();
                let mut cursor = 0;
                loop {
                    let (next, items) = self.tiers.scan_local(key, cursor).await?;
                    out.extend(items);
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
                complete = match &generation {
                    Some(g) => self.tiers.end_diff(key, g).await?,
                    None => settled,
                };
                out
            }
        };
        let mut items: Vec<(String, String)> = raw
            .into_iter()
            .map(|(a, b)| {
                (
                    String::from_utf8_lossy(&a).into_owned(),
                    String::from_utf8_lossy(&b).into_owned(),
                )
            })
            .collect();
        items.sort_unstable();
        items.dedup();
        Ok(Members {
            items,
            sponsor,
            complete,
        })
    }
}

impl SyncStore {
    /// One member added to or removed from a set of the user's.
    async fn change_member(
        &self,
        key: SponsorKey,
        member: &str,
        add: bool,
        via: Option<&str>,
        limit: Option<RateLimit<'_>>,
    ) -> Result<WriteReply, SyncError> {
        self.inner
            .write(Change {
                key: &key,
                add,
                items: &[(member, "")],
                status: None,
                via,
                limit,
            })
            .await
    }

    /// `POST /exclude`: adds a node id to `user:{id}:mnodes`; with `via`
    /// (how the request came), the change is also appended to
    /// `user:{id}:activity` in the same step.
    pub async fn add_exclusion(
        &self,
        user_id: u64,
        node_id: &str,
        via: Option<&str>,
        limit: Option<RateLimit<'_>>,
    ) -> Result<Limited<AddOutcome>, SyncError> {
        let key = SponsorKey::Mnodes(user_id);
        let reply = self.change_member(key, node_id, true, via, limit).await?;
        Ok(Limited {
            rate: rate_of(&reply),
            outcome: match reply {
                WriteReply::RateLimited(_) => None,
                reply => Some(added(reply)?),
            },
        })
    }

    /// `DELETE /exclusions/{id}` (recorded in the activity with `via`).
    pub async fn remove_exclusion(
        &self,
        user_id: u64,
        node_id: &str,
        via: Option<&str>,
        limit: Option<RateLimit<'_>>,
    ) -> Result<Limited<WriteOutcome>, SyncError> {
        let key = SponsorKey::Mnodes(user_id);
        let reply = self.change_member(key, node_id, false, via, limit).await?;
        Ok(Limited {
            rate: rate_of(&reply),
            outcome: match reply {
                WriteReply::RateLimited(_) => None,
                reply => Some(removed(reply)?),
            },
        })
    }

    /// Adds an API token record to `auth:tokens:{id}` (at most
    /// `quota_tokens` per user: `QuotaExceeded` beyond).
    pub async fn add_token(&self, user_id: u64, record: &str) -> Result<AddOutcome, SyncError> {
        let key = SponsorKey::Tokens(user_id);
        added(self.change_member(key, record, true, None, None).await?)
    }

    /// Removes an API token record (a revocation, or an expired token).
    pub async fn remove_token(
        &self,
        user_id: u64,
        record: &str,
    ) -> Result<WriteOutcome, SyncError> {
        let key = SponsorKey::Tokens(user_id);
        removed(self.change_member(key, record, false, None, None).await?)
    }

    /// Merges the remote copy of a sponsor's activity stream into the local
    /// one (when the local lost it); nothing without a remote.
    pub async fn restore_activity(&self, user_id: u64) -> Result<(), SyncError> {
        if self.inner.remote.is_none() {
            return Ok(());
        }
        self.inner.tiers.restore_activity(user_id).await
    }

    /// The user's API token records (fetched back first, within the bound,
    /// when the local copy was lost).
    pub async fn tokens(&self, user_id: u64) -> Result<Members, SyncError> {
        self.inner.read_all(&SponsorKey::Tokens(user_id)).await
    }
}

/// The rate-limit count a write step made.
fn rate_of(reply: &WriteReply) -> Option<LimitCount> {
    match reply {
        WriteReply::Done { rate, .. } | WriteReply::QuotaExceeded { rate, .. } => *rate,
        WriteReply::RateLimited(count) => Some(*count),
    }
}

fn added(reply: WriteReply) -> Result<AddOutcome, SyncError> {
    Ok(match reply {
        WriteReply::RateLimited(_) => {
            return Err(SyncError::protocol(
                "add",
                "refused by a limit it was not given",
            ))
        }
        WriteReply::QuotaExceeded { limit, .. } => AddOutcome::QuotaExceeded { limit },
        WriteReply::Done {
            changed,
            sponsor,
            count,
            ..
        } => AddOutcome::Added {
            added: changed,
            count,
            sponsor: sponsor.unwrap_or(false),
        },
    })
}

fn removed(reply: WriteReply) -> Result<WriteOutcome, SyncError> {
    match reply {
        WriteReply::Done {
            changed, sponsor, ..
        } => Ok(WriteOutcome {
            changed,
            sponsor: sponsor.unwrap_or(false),
        }),
        WriteReply::QuotaExceeded { .. } => {
            Err(SyncError::protocol("remove", "quota on a removal"))
        }
        WriteReply::RateLimited(_) => Err(SyncError::protocol(
            "remove",
            "refused by a limit it was not given",
        )),
    }
}

impl SyncStore {
    /// `GET /exclusions`: the ids sorted bytewise.
    pub async fn exclusions(&self, user_id: u64) -> Result<Members, SyncError> {
        self.inner.read_all(&SponsorKey::Mnodes(user_id)).await
    }

    /// The sponsors set's ids.
    pub async fn sponsors(&self) -> Result<Members, SyncError> {
        self.inner.read_all(&SponsorKey::Sponsors).await
    }

    /// `user_details:{id}` fields (empty when absent).
    pub async fn user_fields(&self, user_id: u64) -> Result<Members, SyncError> {
        self.inner.read_all(&SponsorKey::UserDetails(user_id)).await
    }

    /// Whether the user is in `sponsors:{SPONSORABLE}` (fetched back first,
    /// within the bound, when the local copy was lost).
    pub async fn is_sponsor(&self, user_id: u64) -> Result<bool, SyncError> {
        let key = SponsorKey::Mnodes(user_id);
        Ok(match self.inner.status_of(&key).await? {
            Some(s) => s,
            None => self
                .inner
                .tiers
                .read(&key, 0, None)
                .await?
                .sponsor
                .unwrap_or(false),
        })
    }

    /// Records a sponsor status and the user's profile fields (updated, never
    /// removed: guarantee 11 of docs/contract.md). One step per key (each in its own slot): the
    /// sponsors set, the preferences' status, then the profile. Returns
    /// (was sponsor, is sponsor).
    pub async fn set_sponsor(
        &self,
        user_id: u64,
        status: StatusUpdate,
        fields: &[(&str, String)],
    ) -> Result<(bool, bool), SyncError> {
        let inner = &self.inner;
        let was = self.is_sponsor(user_id).await?;
        let now = match status {
            StatusUpdate::Sponsor => true,
            StatusUpdate::NotSponsor => false,
            StatusUpdate::Keep => was,
        };
        let id = user_id.to_string();
        if status != StatusUpdate::Keep {
            inner
                .write(Change {
                    key: &SponsorKey::Sponsors,
                    add: now,
                    items: &[(id.as_str(), "")],
                    status: None,
                    via: None,
                    limit: None,
                })
                .await?;
        }
        let mnodes = SponsorKey::Mnodes(user_id);
        let details = SponsorKey::UserDetails(user_id);
        let tokens = SponsorKey::Tokens(user_id);
        for key in [&mnodes, &details, &tokens] {
            let before = inner.tiers.set_status(key, now, false).await?;
            if key == &mnodes {
                // The activity stream lives as long as the preferences do.
                inner.tiers.activity_lifetime(user_id, now).await?;
            }
            if now && before != Some(true) && inner.remote.is_some() {
                // A returning sponsor's kept remote copy comes back now.
                drop(fetch_task(inner, key.clone()));
            }
        }
        let mut items: Vec<(&str, &str)> = fields.iter().map(|(f, v)| (*f, v.as_str())).collect();
        items.push(("sponsor", if now { "1" } else { "0" }));
        inner
            .write(Change {
                key: &details,
                add: true,
                items: &items,
                status: Some(now),
                via: None,
                limit: None,
            })
            .await?;
        Ok((was, now))
    }
}
