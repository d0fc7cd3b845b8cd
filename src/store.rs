//! Preference and user-detail operations. Every read and write of a
//! sponsor key goes through the sync crate's door ([`SyncStore`]), which owns
//! the gate, the fetch-back and the bounded waits: a write never waits on the
//! remote, a read of a lost key waits at most `REMOTE_TIMEOUT_MS` and then
//! says it is incomplete.

use std::time::Duration;

use redis::aio::ConnectionManager;
use sponsorgate_sync::{AddOutcome, Members, StatusUpdate, SyncError, SyncStore};

use crate::node_id::NodeId;

/// What can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The local Redis failed or did not answer: nothing was changed.
    #[error("the local Redis is unavailable ({0})")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        // The kind only: a Redis error's text can carry the URL.
        Self::Unavailable(format!("{:?}", e.kind()))
    }
}

impl From<SyncError> for StoreError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Local(e) => e.into(),
            SyncError::LocalTimeout(after) => Self::Unavailable(format!("no answer in {after:?}")),
            other => Self::Internal(other.to_string()),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Clone)]
pub struct Store {
    conn: ConnectionManager,
    data: SyncStore,
}

/// What sign-in learned about a user, to be written to `user_details:{id}`.
#[derive(Clone, Debug)]
pub struct Profile {
    pub id: u64,
    pub login: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub avatar_url: String,
}

/// The sponsorship check's answer; `None` when GitHub could not tell.
#[derive(Clone, Copy, Debug)]
pub struct Sponsorship {
    pub sponsor: bool,
    pub tier_monthly_usd: Option<u64>,
}

/// `user_details:{id}` as the API shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserRecord {
    pub id: u64,
    pub user_login: String,
    pub email: String,
    pub name: String,
    pub avatar_url: String,
    pub sponsor: bool,
    pub tier_monthly_usd: Option<u64>,
}

/// A user's excluded ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExclusionList {
    /// Sorted bytewise.
    pub ids: Vec<String>,
    pub persistent: bool,
    /// `false`: the set was lost locally and the remote did not answer in
    /// time; `ids` is what the local Redis holds (guarantee 9 of docs/contract.md).
    pub complete: bool,
}

impl Store {
    pub fn new(conn: ConnectionManager, data: SyncStore) -> Self {
        Self { conn, data }
    }

    /// The local Redis for the service's own keys (sessions, webhook
    /// deliveries, schedules): never for sponsor keys, which go through the door.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Whether the local Redis answers `PING` within `within`.
    pub async fn ping(&self, within: Duration) -> bool {
        let mut conn = self.conn.clone();
        let ping =
            tokio::time::timeout(within, redis::cmd("PING").query_async::<String>(&mut conn)).await;
        matches!(ping, Ok(Ok(_)))
    }

    pub async fn add_exclusion(&self, user_id: u64, node_id: &NodeId) -> StoreResult<AddOutcome> {
        Ok(self.data.add_exclusion(user_id, node_id.as_str()).await?)
    }

    /// Returns whether the user is a sponsor (the removal persists).
    pub async fn remove_exclusion(&self, user_id: u64, node_id: &NodeId) -> StoreResult<bool> {
        Ok(self
            .data
            .remove_exclusion(user_id, node_id.as_str())
            .await?
            .sponsor)
    }

    pub async fn exclusions(&self, user_id: u64) -> StoreResult<ExclusionList> {
        let Members {
            items,
            sponsor,
            complete,
        } = self.data.exclusions(user_id).await?;
        Ok(ExclusionList {
            ids: items.into_iter().map(|(id, _)| id).collect(),
            persistent: sponsor,
            complete,
        })
    }

    pub async fn user(&self, user_id: u64) -> StoreResult<Option<UserRecord>> {
        let Members { items, sponsor, .. } = self.data.user_fields(user_id).await?;
        if items.is_empty() {
            return Ok(None);
        }
        let mut record = UserRecord {
            id: user_id,
            sponsor,
            ..UserRecord::default()
        };
        for (field, value) in items {
            match field.as_str() {
                "user_login" => record.user_login = value,
                "email" => record.email = value,
                "name" => record.name = value,
                "avatar_url" => record.avatar_url = value,
                "tier_monthly_usd" => record.tier_monthly_usd = value.parse().ok(),
                _ => {}
            }
        }
        Ok(Some(record))
    }

    /// Writes `user_details:{id}` and the sponsor status learned at sign-in.
    /// With `sponsorship: None` (GitHub failed) the known status is kept.
    pub async fn record_login(
        &self,
        profile: &Profile,
        sponsorship: Option<Sponsorship>,
        now_unix: u64,
    ) -> StoreResult<bool> {
        let mut fields: Vec<(&str, String)> = vec![
            ("id", profile.id.to_string()),
            ("user_login", profile.login.clone()),
            ("email", profile.email.clone().unwrap_or_default()),
            ("name", profile.name.clone().unwrap_or_default()),
            ("avatar_url", profile.avatar_url.clone()),
        ];
        let status = match sponsorship {
            Some(s) => {
                let tier = s.tier_monthly_usd.filter(|_| s.sponsor);
                fields.push((
                    "tier_monthly_usd",
                    tier.map(|t| t.to_string()).unwrap_or_default(),
                ));
                fields.push(("checked_at", now_unix.to_string()));
                if s.sponsor {
                    StatusUpdate::Sponsor
                } else {
                    StatusUpdate::NotSponsor
                }
            }
            None => StatusUpdate::Keep,
        };
        let (_was, now) = self.data.set_sponsor(profile.id, status, &fields).await?;
        Ok(now)
    }

    /// Changes a user's sponsor status without new details (webhooks,
    /// re-verification). Returns (was sponsor, is sponsor).
    pub async fn set_sponsor(&self, user_id: u64, sponsor: bool) -> StoreResult<(bool, bool)> {
        let status = if sponsor {
            StatusUpdate::Sponsor
        } else {
            StatusUpdate::NotSponsor
        };
        Ok(self.data.set_sponsor(user_id, status, &[]).await?)
    }

    /// Sets the sponsor status and `user_details:{id}` field `tier_monthly_usd`
    /// (empty unless a sponsor with a known monthly tier). Returns (was
    /// sponsor, is sponsor).
    pub async fn set_sponsor_with_tier(
        &self,
        user_id: u64,
        sponsor: bool,
        tier_monthly_usd: Option<u64>,
    ) -> StoreResult<(bool, bool)> {
        let status = if sponsor {
            StatusUpdate::Sponsor
        } else {
            StatusUpdate::NotSponsor
        };
        let tier = tier_monthly_usd
            .filter(|_| sponsor)
            .map(|t| t.to_string())
            .unwrap_or_default();
        let fields = [("id", user_id.to_string()), ("tier_monthly_usd", tier)];
        Ok(self.data.set_sponsor(user_id, status, &fields).await?)
    }

    /// The ids in `sponsors:{SPONSORABLE}` (fetched back first, within the
    /// bound, when the local copy was lost).
    pub async fn sponsor_ids(&self) -> StoreResult<Vec<u64>> {
        let Members { items, .. } = self.data.sponsors().await?;
        Ok(items.iter().filter_map(|(id, _)| id.parse().ok()).collect())
    }

    /// Whether the user is in `sponsors:{SPONSORABLE}` now (fetched back first
    /// when the local copy was lost).
    pub async fn is_sponsor(&self, user_id: u64) -> StoreResult<bool> {
        Ok(self.data.is_sponsor(user_id).await?)
    }
}
