//! The schedule of pending changes and the per-user lock.

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use sponsorgate_sync::RedisLink;

use super::event::Change;
use super::keys::{lock_key, CHANGED_AT, LOCK_TTL_MS, LOCK_WAIT, PENDING_CHANGES, PENDING_DUE};
use super::{SponsorshipError, SponsorshipResult};
use crate::state::App;

/// A user's scheduled change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingChange {
    pub change: Change,
    pub due_ms: i64,
}

/// The user's pending change, if any.
pub async fn pending_change(app: &App, user_id: u64) -> SponsorshipResult<Option<PendingChange>> {
    load_pending(&mut app.store.connection(), user_id).await
}

pub(super) async fn load_pending(
    conn: &mut RedisLink,
    user_id: u64,
) -> SponsorshipResult<Option<PendingChange>> {
    let (due, json): (Option<f64>, Option<String>) = redis::pipe()
        .zscore(PENDING_DUE, user_id)
        .hget(PENDING_CHANGES, user_id)
        .query_async(conn)
        .await?;
    match (
        due,
        json.and_then(|j| serde_json::from_str::<Change>(&j).ok()),
    ) {
        (Some(due), Some(change)) => Ok(Some(PendingChange {
            change,
            due_ms: due as i64,
        })),
        (None, None) => Ok(None),
        // Half an entry (cannot happen through this module) or an unreadable
        // one: drop it rather than act on it.
        _ => {
            clear_pending(conn, user_id).await?;
            Ok(None)
        }
    }
}

/// Renames the schedule's keys of an older version to their tagged names
/// (single server only: a cluster never had the old ones). An old key is
/// renamed only while the new one does not exist, so a second instance
/// starting at the same time changes nothing.
pub async fn migrate_legacy_keys(conn: &mut RedisLink) -> SponsorshipResult<()> {
    if conn.is_cluster() {
        return Ok(());
    }
    for (old, new) in super::keys::LEGACY_SCHEDULE {
        // RENAMENX fails when `old` is absent: nothing to migrate then.
        let _: redis::RedisResult<i64> = redis::cmd("RENAMENX")
            .arg(old)
            .arg(new)
            .query_async(conn)
            .await;
    }
    Ok(())
}

pub(super) async fn schedule(
    conn: &mut RedisLink,
    user_id: u64,
    change: &Change,
    due_ms: i64,
) -> SponsorshipResult<()> {
    let json = serde_json::to_string(change)?;
    redis::pipe()
        .atomic()
        .zadd(PENDING_DUE, user_id, due_ms)
        .hset(PENDING_CHANGES, user_id, json)
        .query_async::<()>(conn)
        .await?;
    Ok(())
}

pub(super) async fn clear_pending(conn: &mut RedisLink, user_id: u64) -> SponsorshipResult<()> {
    redis::pipe()
        .atomic()
        .zrem(PENDING_DUE, user_id)
        .hdel(PENDING_CHANGES, user_id)
        .query_async::<()>(conn)
        .await?;
    Ok(())
}

pub(super) async fn mark_changed(
    conn: &mut RedisLink,
    user_id: u64,
    at_ms: i64,
) -> SponsorshipResult<()> {
    conn.zadd::<_, _, _, ()>(CHANGED_AT, user_id, at_ms).await?;
    Ok(())
}

/// Serialises decisions about one user across tasks and processes.
pub(super) struct UserLock {
    key: String,
    token: String,
}

pub(super) const RELEASE_LOCK: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

impl UserLock {
    /// Waits up to `wait` for the lock; `None` when it stays taken.
    pub(super) async fn acquire(
        conn: &mut RedisLink,
        user_id: u64,
        wait: Duration,
    ) -> SponsorshipResult<Option<Self>> {
        let key = lock_key(user_id);
        let token = hex::encode(rand::random::<[u8; 16]>());
        let deadline = Instant::now() + wait;
        loop {
            let taken: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(LOCK_TTL_MS)
                .query_async(conn)
                .await?;
            if taken.is_some() {
                return Ok(Some(Self { key, token }));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(super) async fn release(self, conn: &mut RedisLink) {
        let released: redis::RedisResult<i64> = redis::Script::new(RELEASE_LOCK)
            .key(&self.key)
            .arg(&self.token)
            .invoke_async(conn)
            .await;
        if let Err(e) = released {
            // It expires by itself.
            tracing::debug!(error.kind = ?e.kind(), "could not release a sponsorship lock");
        }
    }
}

pub(super) async fn lock_or_busy(
    conn: &mut RedisLink,
    user_id: u64,
) -> SponsorshipResult<UserLock> {
    UserLock::acquire(conn, user_id, LOCK_WAIT)
        .await?
        .ok_or(SponsorshipError::Busy(user_id))
}
