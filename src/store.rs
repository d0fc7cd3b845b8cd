//! Preference and user-detail operations on the local Redis. Each operation is
//! one script of the sync crate's write path (change + journal, atomically);
//! when a script says a sponsor key must be fetched back first, the fetch-back
//! runs (bounded by `REMOTE_TIMEOUT_MS`) and the script is retried, or retried
//! with `force` when the remote cannot answer in time: the API degrades, it
//! never waits on the remote for long and never drops the write.

use std::sync::Arc;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use sponsorgate_sync::{AddOutcome, Gate, Quotas, SponsorKey, StatusUpdate, WritePath};

use crate::error::AppError;

/// Brings a sponsor key back from the remote (implemented by the sync crate).
#[async_trait]
pub trait FetchBack: Send + Sync {
    async fn fetch_back(&self, key: &SponsorKey) -> Result<(), String>;
}

#[derive(Clone)]
pub struct Store {
    conn: ConnectionManager,
    write: WritePath,
    fetch: Option<Arc<dyn FetchBack>>,
    quotas: Quotas,
    ttl_secs: u64,
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

/// Runs a gated write-path call, fetching back what it asks for.
macro_rules! gated {
    ($store:expr, |$conn:ident, $force:ident| $call:expr) => {{
        let mut $force = false;
        let mut fetched = 0;
        loop {
            let mut $conn = $store.conn.clone();
            match $call.await? {
                Gate::Done(value) => break value,
                Gate::NeedsFetchBack(key) => {
                    fetched += 1;
                    $force = !$store.fetch_back(&key).await || fetched > 2;
                }
            }
        }
    }};
}

impl Store {
    pub fn new(
        conn: ConnectionManager,
        write: WritePath,
        fetch: Option<Arc<dyn FetchBack>>,
        quotas: Quotas,
        ttl_secs: u64,
    ) -> Self {
        Self {
            conn,
            write,
            fetch,
            quotas,
            ttl_secs,
        }
    }

    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Answers whether the key is now usable; `false` means "go ahead with force".
    async fn fetch_back(&self, key: &SponsorKey) -> bool {
        let Some(fetch) = &self.fetch else {
            return false;
        };
        match fetch.fetch_back(key).await {
            Ok(()) => true,
            Err(reason) => {
                tracing::warn!(key = ?key, %reason, "fetch-back failed; serving from the local Redis");
                false
            }
        }
    }

    pub async fn add_exclusion(&self, user_id: u64, node_id: &str) -> Result<AddOutcome, AppError> {
        Ok(gated!(self, |conn, force| self.write.add_exclusion(
            &mut conn,
            user_id,
            node_id,
            self.quotas,
            self.ttl_secs,
            force
        )))
    }

    /// Returns whether the user is a sponsor (their set is persistent).
    pub async fn remove_exclusion(&self, user_id: u64, node_id: &str) -> Result<bool, AppError> {
        let (_removed, sponsor) = gated!(self, |conn, force| self.write.remove_exclusion(
            &mut conn,
            user_id,
            node_id,
            self.ttl_secs,
            force
        ));
        Ok(sponsor)
    }

    /// The excluded ids (sorted, for stable output) and whether they persist.
    pub async fn exclusions(&self, user_id: u64) -> Result<(Vec<String>, bool), AppError> {
        let (mut ids, sponsor) = gated!(self, |conn, force| self
            .write
            .read_exclusions(&mut conn, user_id, force));
        ids.sort_unstable();
        Ok((ids, sponsor))
    }

    pub async fn user(&self, user_id: u64) -> Result<Option<UserRecord>, AppError> {
        let (fields, sponsor) = gated!(self, |conn, force| self
            .write
            .read_user(&mut conn, user_id, force));
        if fields.is_empty() {
            return Ok(None);
        }
        let mut record = UserRecord {
            id: user_id,
            sponsor,
            ..UserRecord::default()
        };
        for (field, value) in fields {
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
        let (_was, now) = gated!(self, |conn, force| self.write.set_sponsor(
            &mut conn,
            profile.id,
            status,
            &fields,
            self.ttl_secs,
            force
        ));
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
        Ok(gated!(self, |conn, force| self.write.set_sponsor(
            &mut conn,
            user_id,
            status,
            &[],
            self.ttl_secs,
            force
        )))
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

/// Sponsor status changes that also know the tier (webhooks, due changes).
impl Store {
    /// Sets the sponsor status and `user_details:{id}` field `tier_monthly_usd`
    /// (empty unless a sponsor with a known monthly tier), in one script.
    /// Returns (was sponsor, is sponsor).
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
        Ok(gated!(self, |conn, force| self.write.set_sponsor(
            &mut conn,
            user_id,
            status,
            &fields,
            self.ttl_secs,
            force
        )))
    }

    /// Whether the user is in `sponsors:{SPONSORABLE}` now (fetched back first
    /// when the local copy may be missing).
    pub async fn is_sponsor(&self, user_id: u64) -> Result<bool, AppError> {
        let (_fields, sponsor) = gated!(self, |conn, force| self
            .write
            .read_user(&mut conn, user_id, force));
        Ok(sponsor)
    }
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
