//! Preference and user-detail operations. Every read and write of a
//! sponsor key goes through the sync crate's door ([`SyncStore`]), which owns
//! the gate, the fetch-back and the bounded waits: a write never waits on the
//! remote, a read of a lost key waits at most `REMOTE_TIMEOUT_MS` and then
//! says it is incomplete.

use redis::aio::ConnectionManager;
use sponsorgate_sync::{AddOutcome, Members, StatusUpdate, SyncError, SyncStore};

use crate::error::AppError;

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
    /// time; `ids` is what the local Redis holds (SPEC §6.9).
    pub complete: bool,
}

impl From<SyncError> for AppError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Local(e) => AppError::RedisUnavailable(e),
            other => AppError::Internal(other.to_string()),
        }
    }
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

    pub async fn add_exclusion(&self, user_id: u64, node_id: &str) -> Result<AddOutcome, AppError> {
        Ok(self.data.add_exclusion(user_id, node_id).await?)
    }

    /// Returns whether the user is a sponsor (the removal persists).
    pub async fn remove_exclusion(&self, user_id: u64, node_id: &str) -> Result<bool, AppError> {
        Ok(self.data.remove_exclusion(user_id, node_id).await?.sponsor)
    }

    pub async fn exclusions(&self, user_id: u64) -> Result<ExclusionList, AppError> {
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

    pub async fn user(&self, user_id: u64) -> Result<Option<UserRecord>, AppError> {
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
    ) -> Result<bool, AppError> {
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
    pub async fn set_sponsor(&self, user_id: u64, sponsor: bool) -> Result<(bool, bool), AppError> {
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
    ) -> Result<(bool, bool), AppError> {
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
    pub async fn sponsor_ids(&self) -> Result<Vec<u64>, AppError> {
        let Members { items, .. } = self.data.sponsors().await?;
        Ok(items.iter().filter_map(|(id, _)| id.parse().ok()).collect())
    }

    /// Whether the user is in `sponsors:{SPONSORABLE}` now (fetched back first
    /// when the local copy was lost).
    pub async fn is_sponsor(&self, user_id: u64) -> Result<bool, AppError> {
        Ok(self.data.is_sponsor(user_id).await?)
    }
}

/// Node ids: 1 to 256 bytes of UTF-8 without control characters (C0, DEL, C1).
pub fn validate_node_id(id: &str) -> Result<(), AppError> {
    if id.is_empty() {
        return Err(AppError::invalid("invalid_id", "id must not be empty"));
    }
    if id.len() > 256 {
        return Err(AppError::invalid(
            "invalid_id",
            "id must be at most 256 bytes",
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "invalid_id",
            "id must not contain control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_rules() {
        assert!(validate_node_id("MDQ6VXNlcjE=").is_ok());
        assert!(validate_node_id("ü…é").is_ok());
        assert!(validate_node_id(&"x".repeat(256)).is_ok());
        for bad in ["", "a\nb", "a\u{0}", "tab\there", "c1\u{85}", "del\u{7f}"] {
            assert!(validate_node_id(bad).is_err(), "{bad:?}");
        }
        assert!(validate_node_id(&"x".repeat(257)).is_err());
        assert!(validate_node_id(&"é".repeat(129)).is_err(), "258 bytes");
    }
}
