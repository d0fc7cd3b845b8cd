//! Preference and user-detail operations. Every read and write of a
//! sponsor key goes through the sync crate's door ([`SyncStore`]), which owns
//! the gate, the fetch-back and the bounded waits: a write never waits on the
//! remote, a read of a lost key waits at most `REMOTE_TIMEOUT_MS` and then
//! says it is incomplete.

use std::time::Duration;

use sponsorgate_sync::RedisLink;
use sponsorgate_sync::{
    AddOutcome, Limited, Members, RateLimit, StatusUpdate, SyncError, SyncStore, WriteOutcome,
};

use crate::node_id::NodeId;
use crate::tokens::TokenRecord;

/// How a change came: recorded with it in `user:{id}:activity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Session,
    Token,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Token => "token",
        }
    }
}

/// One entry of `user:{id}:activity`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivityEntry {
    /// The stream id (`<ms>-<seq>`): the paging cursor.
    pub cursor: String,
    pub at_ms: u64,
    pub kind: String,
    pub id: String,
    pub via: String,
}

/// A page of activity, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivityPage {
    pub items: Vec<ActivityEntry>,
    /// The cursor to pass as `before` for the next page, when more remain.
    pub next: Option<String>,
}

/// What can go wrong in storage.
#[derive(Clone, Debug, thiserror::Error)]
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
    conn: RedisLink,
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

/// The stream id just before `id` (`<ms>-<seq>`), for an exclusive range;
/// `None` before `0-0` or for a malformed id.
fn id_before(id: &str) -> Option<String> {
    let (ms, seq) = id.split_once('-')?;
    let (ms, seq): (u64, u64) = (ms.parse().ok()?, seq.parse().ok()?);
    match (ms, seq) {
        (_, s) if s > 0 => Some(format!("{ms}-{}", s - 1)),
        (0, 0) => None,
        (m, _) => Some(format!("{}-{}", m - 1, u64::MAX)),
    }
}

/// `auth:used:{id}`: token id → unix seconds of its last use.
fn last_used_key(user_id: u64) -> String {
    format!("auth:used:{user_id}")
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
    pub fn new(conn: RedisLink, data: SyncStore) -> Self {
        Self { conn, data }
    }

    /// The local Redis for the service's own keys (sessions, webhook
    /// deliveries, schedules): never for sponsor keys, which go through the door.
    pub fn connection(&self) -> RedisLink {
        self.conn.clone()
    }

    /// Whether the local tier answers within `within`: on a cluster, every
    /// slot served and every primary answering `PING`.
    pub async fn ping(&self, within: Duration) -> bool {
        self.data.local_ready(within).await
    }

    /// With `limit`, the write counts against it in its own step
    /// (`outcome: None`: refused, nothing changed).
    pub async fn add_exclusion(
        &self,
        user_id: u64,
        node_id: &NodeId,
        via: Via,
        limit: Option<RateLimit<'_>>,
    ) -> StoreResult<Limited<AddOutcome>> {
        Ok(self
            .data
            .add_exclusion(user_id, node_id.as_str(), Some(via.as_str()), limit)
            .await?)
    }

    /// The outcome says whether the user is a sponsor (the removal
    /// persists); `limit` as for [`Self::add_exclusion`].
    pub async fn remove_exclusion(
        &self,
        user_id: u64,
        node_id: &NodeId,
        via: Via,
        limit: Option<RateLimit<'_>>,
    ) -> StoreResult<Limited<WriteOutcome>> {
        Ok(self
            .data
            .remove_exclusion(user_id, node_id.as_str(), Some(via.as_str()), limit)
            .await?)
    }

    /// The user's token records (expired ones included), in no order, and
    /// whether that is all of them (`false`: the local copy was lost and the
    /// remote did not answer in time).
    pub async fn tokens(&self, user_id: u64) -> StoreResult<(Vec<TokenRecord>, bool)> {
        let Members {
            items, complete, ..
        } = self.data.tokens(user_id).await?;
        let records = items
            .iter()
            .filter_map(|(member, _)| TokenRecord::decode(member))
            .collect();
        Ok((records, complete))
    }

    /// Whether the user may hold token records at all: some are here, or
    /// the user is a sponsor (whose records may have to come back from the
    /// remote). A forged token for anyone else is refused without touching
    /// the sync layer (which would keep a record of the key it looked at).
    pub async fn may_hold_tokens(&self, user_id: u64) -> StoreResult<bool> {
        let keys = self.data.keys();
        let mut conn = self.conn.clone();
        let (tokens, sponsor, sponsors_known): (bool, bool, bool) = redis::pipe()
            .cmd("EXISTS")
            .arg(keys.tokens(user_id))
            .cmd("SISMEMBER")
            .arg(keys.sponsors())
            .arg(user_id)
            .cmd("EXISTS")
            .arg(keys.sponsors())
            .query_async(&mut conn)
            .await?;
        // A lost sponsors set (with a remote to bring it back): only the sync
        // layer can tell.
        Ok(tokens || sponsor || (!sponsors_known && self.data.sync_on()))
    }

    /// Stores a new token record; `false` when the user holds the most already.
    pub async fn add_token(&self, user_id: u64, record: &TokenRecord) -> StoreResult<bool> {
        Ok(matches!(
            self.data.add_token(user_id, &record.encode()).await?,
            AddOutcome::Added { .. }
        ))
    }

    pub async fn remove_token(&self, user_id: u64, record: &TokenRecord) -> StoreResult<()> {
        self.data.remove_token(user_id, &record.encode()).await?;
        Ok(())
    }

    /// When each of the user's tokens was last used (unix seconds), from
    /// `auth:used:{id}` (local only: it is a convenience, not a record).
    pub async fn tokens_last_used(
        &self,
        user_id: u64,
    ) -> StoreResult<std::collections::HashMap<String, u64>> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("HGETALL")
            .arg(last_used_key(user_id))
            .query_async(&mut conn)
            .await?)
    }

    /// Notes a use of a token, at most once a minute per token.
    pub async fn touch_token(
        &self,
        user_id: u64,
        token_id: &str,
        now_secs: u64,
    ) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        let key = last_used_key(user_id);
        let last: Option<u64> = redis::cmd("HGET")
            .arg(&key)
            .arg(token_id)
            .query_async(&mut conn)
            .await?;
        if last.is_none_or(|l| now_secs >= l + 60) {
            redis::cmd("HSET")
                .arg(&key)
                .arg(token_id)
                .arg(now_secs)
                .query_async::<()>(&mut conn)
                .await?;
        }
        Ok(())
    }

    pub async fn forget_token_use(&self, user_id: u64, token_id: &str) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("HDEL")
            .arg(last_used_key(user_id))
            .arg(token_id)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Up to `limit` entries of `user:{id}:activity` older than `before`
    /// (a cursor), newest first, of `kind` when given. A sponsor's stream
    /// that the local Redis lost comes back with their preferences, so a
    /// missing stream has the preferences read (and fetched back) first.
    pub async fn activity(
        &self,
        user_id: u64,
        limit: usize,
        before: Option<&str>,
        kind: Option<&str>,
    ) -> StoreResult<ActivityPage> {
        let key = self.data.keys().activity(user_id);
        let mut conn = self.conn.clone();
        let exists: bool = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut conn)
            .await?;
        if !exists && self.data.is_sponsor(user_id).await? {
            self.data.restore_activity(user_id).await?;
        }
        let mut items = Vec::new();
        let mut end = match before {
            None => "+".to_owned(),
            Some(cursor) => match id_before(cursor) {
                Some(end) => end,
                // Nothing is older than the first possible id.
                None => {
                    return Ok(ActivityPage {
                        items: vec![],
                        next: None,
                    })
                }
            },
        };
        let batch = (limit + 1).clamp(16, 1_000);
        loop {
            let raw: Vec<(String, Vec<(String, String)>)> = redis::cmd("XREVRANGE")
                .arg(&key)
                .arg(&end)
                .arg("-")
                .arg("COUNT")
                .arg(batch)
                .query_async(&mut conn)
                .await?;
            let exhausted = raw.len() < batch;
            for (cursor, fields) in &raw {
                let field = |name: &str| {
                    fields
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                let entry = ActivityEntry {
                    at_ms: cursor
                        .split('-')
                        .next()
                        .and_then(|ms| ms.parse().ok())
                        .unwrap_or(0),
                    cursor: cursor.clone(),
                    kind: field("kind"),
                    id: field("id"),
                    via: field("via"),
                };
                if kind.is_none_or(|k| k == entry.kind) {
                    if items.len() == limit {
                        // One more exists: the page ends at the last item.
                        let next = items.last().map(|e: &ActivityEntry| e.cursor.clone());
                        return Ok(ActivityPage { items, next });
                    }
                    items.push(entry);
                }
            }
            match raw.last() {
                Some((last, _)) if !exhausted => match id_before(last) {
                    Some(before_last) => end = before_last,
                    None => return Ok(ActivityPage { items, next: None }),
                },
                _ => return Ok(ActivityPage { items, next: None }),
            }
        }
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

    /// What changes when `user:{id}:mnodes` changes, read in one round trip:
    /// its size, the stamp of the last change recorded through the API and
    /// the run the key was last made complete in (a loss changes it).
    pub async fn exclusions_validator(
        &self,
        user_id: u64,
    ) -> StoreResult<(u64, Option<String>, Option<String>)> {
        let keys = self.data.keys();
        let key = keys.mnodes(user_id);
        let meta = keys.meta(&key);
        let mut conn = self.conn.clone();
        let (count, stamp, hydrated): (u64, Option<String>, Option<String>) = redis::pipe()
            .cmd("SCARD")
            .arg(&key)
            .cmd("HGET")
            .arg(&meta)
            .arg("s")
            .cmd("HGET")
            .arg(&meta)
            .arg("h")
            .query_async(&mut conn)
            .await?;
        Ok((count, stamp, hydrated))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_before_a_stream_id() {
        assert_eq!(id_before("5-3").as_deref(), Some("5-2"));
        assert_eq!(id_before("5-0").as_deref(), Some("4-18446744073709551615"));
        assert_eq!(id_before("0-0"), None);
        assert_eq!(id_before("x-1"), None);
    }
}
