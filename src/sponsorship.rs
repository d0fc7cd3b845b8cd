//! Sponsorship kept current between sign-ins (SPEC §3 `POST /webhooks/github`, §5).
//!
//! Three sources change a user's sponsor status after sign-in:
//!
//! * **GitHub Sponsors webhooks** ([`verify_signature`], [`parse_event`],
//!   [`decide`], [`handle_event`]): `created`, `tier_changed`, `cancelled`,
//!   `pending_cancellation`, `pending_tier_change` (`edited` is a privacy
//!   change only and is ignored).
//! * **Pending changes** ([`apply_due`]): a `pending_*` action whose
//!   `effective_date` lies ahead, and every demotion while
//!   `SPONSOR_GRACE_SECS` runs, wait in a schedule (one entry per user: the
//!   latest decision about a user replaces the earlier one) and are applied
//!   by a background step once due. A promotion removes the user's entry, so a
//!   returning sponsor cancels their scheduled demotion.
//! * **Re-verification** ([`reverify_once`]): with `SPONSORS_TOKEN`, the
//!   sponsorable's complete list of sponsors is read from GitHub and
//!   `sponsors:{SPONSORABLE}` reconciled both ways. A failed or partial read
//!   changes nothing.
//!
//! Every change goes through [`Store`](crate::store::Store)'s sponsor-status
//! script, which does the data effects atomically (promotion: the preference
//! set loses its TTL and is mirrored; demotion: the TTL is back, the remote copy
//! is kept). Decisions about one user are serialised by a short per-user lock
//! in the local Redis, so a webhook, the due-change step and re-verification
//! (in this or another process) never interleave on the same user.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::AppError;
use crate::github::{sponsorship_counts, AccessToken, GithubError};
use crate::state::{App, AppState};

// ---------------------------------------------------------------------------
// Keys. Every key lives under `sync:` (SPEC §4: the service writes no keys
// but the public layout, `session:` and `sync:`). They are named here, beside
// the only code that uses them, rather than in `sync/src/keys.rs`: the sync
// worker neither reads nor mirrors them (they are not sponsor keys).

/// `sync:webhook:delivery:{X-GitHub-Delivery}` (string, unix ms of the apply):
/// a delivery that was applied; written only after the apply succeeded.
pub const DELIVERY_PREFIX: &str = "sync:webhook:delivery:";
/// How long applied delivery ids are remembered (GitHub redelivers manually,
/// only deliveries of the past few days).
pub const DELIVERY_TTL_SECS: u64 = 7 * 24 * 3600;
/// Sorted set: user id → unix ms at which the user's pending change is due.
pub const PENDING_DUE: &str = "sync:sponsorship:due";
/// Hash: user id → JSON [`Change`] of the user's pending change (written
/// together with [`PENDING_DUE`] in one transaction).
pub const PENDING_CHANGES: &str = "sync:sponsorship:pending";
/// Sorted set: user id → unix ms of the last change a webhook (or a due
/// change) applied; re-verification leaves such users alone for
/// [`WEBHOOK_PRECEDENCE`], since its list from GitHub may predate the event.
pub const CHANGED_AT: &str = "sync:sponsorship:changed-at";
/// `sync:sponsorship:lock:{id}` (string with a random token, short TTL).
pub const LOCK_PREFIX: &str = "sync:sponsorship:lock:";
/// Held for one `SPONSORS_REFRESH_SECS` period by the process that runs the
/// re-verification, so that several processes run it once per period.
pub const REVERIFY_LEASE: &str = "sync:sponsorship:reverify-lease";

pub fn delivery_key(delivery: &str) -> String {
    format!("{DELIVERY_PREFIX}{delivery}")
}

pub fn lock_key(user_id: u64) -> String {
    format!("{LOCK_PREFIX}{user_id}")
}

/// A webhook's change wins over a re-verification whose GitHub list was read
/// less than this long before the change (the list may predate the event).
pub const WEBHOOK_PRECEDENCE: Duration = Duration::from_secs(60);
/// How often the background step looks for due changes.
pub const DUE_TICK: Duration = Duration::from_millis(500);
/// After a failed re-verification, the next attempt comes this soon (or after
/// `SPONSORS_REFRESH_SECS` when that is shorter).
pub const REVERIFY_RETRY: Duration = Duration::from_secs(60);
const LOCK_TTL_MS: u64 = 15_000;
const LOCK_WAIT: Duration = Duration::from_secs(5);
const DUE_BATCH: isize = 100;

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Signature

type HmacSha256 = Hmac<Sha256>;

/// `sha256=` + lowercase hex HMAC-SHA256 of `body` under `secret`: the value
/// GitHub sends in `X-Hub-Signature-256`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureCheck {
    Valid,
    Missing,
    Invalid,
}

/// Checks an `X-Hub-Signature-256` value against the raw body, in constant
/// time (the MAC comparison is `subtle`'s). The SHA-1 header is never consulted.
pub fn verify_signature(secret: &[u8], body: &[u8], header: Option<&[u8]>) -> SignatureCheck {
    let Some(value) = header else {
        return SignatureCheck::Missing;
    };
    let Some(hex_mac) = value.strip_prefix(b"sha256=") else {
        return SignatureCheck::Invalid;
    };
    let Ok(claimed) = hex::decode(hex_mac) else {
        return SignatureCheck::Invalid;
    };
    let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(secret) else {
        return SignatureCheck::Invalid;
    };
    mac.update(body);
    match mac.verify_slice(&claimed) {
        Ok(()) => SignatureCheck::Valid,
        Err(_) => SignatureCheck::Invalid,
    }
}

// ---------------------------------------------------------------------------
// Parsing

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Created,
    Cancelled,
    Edited,
    TierChanged,
    PendingCancellation,
    PendingTierChange,
}

impl Action {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created" => Self::Created,
            "cancelled" => Self::Cancelled,
            "edited" => Self::Edited,
            "tier_changed" => Self::TierChanged,
            "pending_cancellation" => Self::PendingCancellation,
            "pending_tier_change" => Self::PendingTierChange,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Cancelled => "cancelled",
            Self::Edited => "edited",
            Self::TierChanged => "tier_changed",
            Self::PendingCancellation => "pending_cancellation",
            Self::PendingTierChange => "pending_tier_change",
        }
    }

    fn is_pending(self) -> bool {
        matches!(self, Self::PendingCancellation | Self::PendingTierChange)
    }
}

/// `sponsorship.tier` as far as the decision needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tier {
    /// `monthly_price_in_cents` (the one-time amount for one-time tiers).
    pub monthly_cents: Option<u64>,
    pub one_time: bool,
}

impl Tier {
    /// Whole dollars of a monthly tier; `None` for one-time tiers.
    pub fn monthly_usd(&self) -> Option<u64> {
        self.monthly_cents
            .filter(|_| !self.one_time)
            .map(|c| c / 100)
    }
}

/// A `sponsorship` event for `SPONSORABLE` by a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SponsorshipEvent {
    pub action: Action,
    pub sponsor_id: u64,
    pub sponsor_login: String,
    /// The sponsorship's tier (the new one for `tier_changed` and
    /// `pending_tier_change`); `None` when the payload has none.
    pub tier: Option<Tier>,
    /// `effective_date` (unix ms); always set for `pending_*` actions.
    pub effective_at_ms: Option<i64>,
}

/// What a payload is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Event(SponsorshipEvent),
    /// Not for us (another account, no user to sign in, another action): the reason.
    Ignored(&'static str),
}

/// A signed payload that is not a sponsorship event we can read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PayloadError(pub String);

#[derive(Deserialize)]
struct RawEvent {
    action: Option<String>,
    sponsorship: Option<RawSponsorship>,
    effective_date: Option<String>,
}

#[derive(Deserialize)]
struct RawSponsorship {
    sponsor: Option<RawAccount>,
    sponsorable: Option<RawAccount>,
    tier: Option<RawTier>,
}

#[derive(Deserialize)]
struct RawAccount {
    login: Option<String>,
    id: Option<u64>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct RawTier {
    monthly_price_in_cents: Option<u64>,
    is_one_time: Option<bool>,
}

/// Reads a `sponsorship` payload (JSON) for `sponsorable`.
pub fn parse_event(payload: &[u8], sponsorable: &str) -> Result<Parsed, PayloadError> {
    let raw: RawEvent = serde_json::from_slice(payload)
        .map_err(|e| PayloadError(format!("not a sponsorship event payload: {e}")))?;
    let Some(action) = raw.action.as_deref().and_then(Action::parse) else {
        return Ok(Parsed::Ignored("action not handled"));
    };
    let Some(sponsorship) = raw.sponsorship else {
        return Ok(Parsed::Ignored("no sponsorship in the payload"));
    };
    let Some(target) = sponsorship.sponsorable else {
        return Ok(Parsed::Ignored("sponsorable is null"));
    };
    if !target
        .login
        .as_deref()
        .is_some_and(|l| l.eq_ignore_ascii_case(sponsorable))
    {
        return Ok(Parsed::Ignored("sponsorship of another account"));
    }
    let Some(sponsor) = sponsorship.sponsor else {
        return Ok(Parsed::Ignored("sponsor is null"));
    };
    if sponsor.kind.as_deref().is_some_and(|k| k != "User") {
        return Ok(Parsed::Ignored(
            "sponsor is not a user (organizations cannot sign in)",
        ));
    }
    let Some(sponsor_id) = sponsor.id else {
        return Ok(Parsed::Ignored("sponsor has no id"));
    };
    let effective_at_ms =
        if action.is_pending() {
            let raw_date = raw.effective_date.ok_or_else(|| {
                PayloadError(format!("{} without effective_date", action.as_str()))
            })?;
            Some(parse_date(&raw_date).ok_or_else(|| {
                PayloadError(format!("effective_date {raw_date:?} is not a date"))
            })?)
        } else {
            None
        };
    Ok(Parsed::Event(SponsorshipEvent {
        action,
        sponsor_id,
        sponsor_login: sponsor.login.unwrap_or_default(),
        tier: sponsorship.tier.map(|t| Tier {
            monthly_cents: t.monthly_price_in_cents,
            one_time: t.is_one_time.unwrap_or(false),
        }),
        effective_at_ms,
    }))
}

/// RFC 3339 (`2019-12-30T00:00:00+00:00`), or a bare date (midnight UTC).
fn parse_date(s: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    let at = match time::OffsetDateTime::parse(s, &Rfc3339) {
        Ok(at) => at,
        Err(_) => {
            let format =
                time::format_description::parse_borrowed::<2>("[year]-[month]-[day]").ok()?;
            time::Date::parse(s, &format).ok()?.midnight().assume_utc()
        }
    };
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

// ---------------------------------------------------------------------------
// Decision

/// A sponsor status to reach, as stored in the schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub sponsor: bool,
    /// Known monthly tier (whole USD) to record with a promotion.
    pub tier_monthly_usd: Option<u64>,
    /// When the change took (or takes) effect on GitHub, unix ms. A sign-in
    /// after that moment knows better than a scheduled demotion.
    pub effective_at_ms: i64,
    /// What caused it (`cancelled`, `reverify`, …), for logs.
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Ignore(&'static str),
    /// Reach this status at `effective_at_ms` (`None`: now); demotions then
    /// wait `SPONSOR_GRACE_SECS` more.
    Set {
        sponsor: bool,
        tier_monthly_usd: Option<u64>,
        effective_at_ms: Option<i64>,
    },
}

/// What an event means under `SPONSOR_MIN_MONTHLY_USD`.
pub fn decide(event: &SponsorshipEvent, min_monthly_usd: u64) -> Decision {
    match event.action {
        Action::Edited => Decision::Ignore("privacy change: sponsor status unchanged"),
        Action::Cancelled | Action::PendingCancellation => Decision::Set {
            sponsor: false,
            tier_monthly_usd: None,
            effective_at_ms: event.effective_at_ms,
        },
        Action::Created | Action::TierChanged | Action::PendingTierChange => {
            let counts = match event.tier {
                Some(t) => sponsorship_counts(t.one_time, t.monthly_cents, min_monthly_usd),
                None => sponsorship_counts(false, None, min_monthly_usd),
            };
            Decision::Set {
                sponsor: counts,
                tier_monthly_usd: event.tier.and_then(|t| t.monthly_usd()).filter(|_| counts),
                effective_at_ms: event.effective_at_ms,
            }
        }
    }
}

/// What became of an event, a due change or a re-verified user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The status is now what the event says (204).
    Applied,
    /// Takes effect later (a future `effective_date`, or a demotion's grace).
    Scheduled {
        due_ms: i64,
    },
    Ignored(&'static str),
    /// This delivery was applied before; nothing done.
    Duplicate,
}

// ---------------------------------------------------------------------------
// Schedule and per-user lock

/// A user's scheduled change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingChange {
    pub change: Change,
    pub due_ms: i64,
}

/// The user's pending change, if any.
pub async fn pending_change(app: &App, user_id: u64) -> Result<Option<PendingChange>, AppError> {
    load_pending(&mut app.store.connection(), user_id).await
}

async fn load_pending(
    conn: &mut ConnectionManager,
    user_id: u64,
) -> Result<Option<PendingChange>, AppError> {
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

async fn schedule(
    conn: &mut ConnectionManager,
    user_id: u64,
    change: &Change,
    due_ms: i64,
) -> Result<(), AppError> {
    let json = serde_json::to_string(change).map_err(|e| AppError::Internal(e.to_string()))?;
    redis::pipe()
        .atomic()
        .zadd(PENDING_DUE, user_id, due_ms)
        .hset(PENDING_CHANGES, user_id, json)
        .query_async::<()>(conn)
        .await?;
    Ok(())
}

async fn clear_pending(conn: &mut ConnectionManager, user_id: u64) -> Result<(), AppError> {
    redis::pipe()
        .atomic()
        .zrem(PENDING_DUE, user_id)
        .hdel(PENDING_CHANGES, user_id)
        .query_async::<()>(conn)
        .await?;
    Ok(())
}

async fn mark_changed(
    conn: &mut ConnectionManager,
    user_id: u64,
    at_ms: i64,
) -> Result<(), AppError> {
    conn.zadd::<_, _, _, ()>(CHANGED_AT, user_id, at_ms).await?;
    Ok(())
}

/// Serialises decisions about one user across tasks and processes.
struct UserLock {
    key: String,
    token: String,
}

const RELEASE_LOCK: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

impl UserLock {
    /// Waits up to `wait` for the lock; `None` when it stays taken.
    async fn acquire(
        conn: &mut ConnectionManager,
        user_id: u64,
        wait: Duration,
    ) -> Result<Option<Self>, AppError> {
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

    async fn release(self, conn: &mut ConnectionManager) {
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

async fn lock_or_busy(conn: &mut ConnectionManager, user_id: u64) -> Result<UserLock, AppError> {
    UserLock::acquire(conn, user_id, LOCK_WAIT)
        .await?
        .ok_or_else(|| {
            AppError::Internal(format!("sponsorship lock of user {user_id} stayed busy"))
        })
}

// ---------------------------------------------------------------------------
// Applying

/// Brings the user to `change` (held lock assumed): promotions now, or at a
/// future effective time; demotions after the grace, immediately when it is 0.
async fn settle(
    app: &App,
    conn: &mut ConnectionManager,
    user_id: u64,
    change: Change,
    now_ms: i64,
) -> Result<Outcome, AppError> {
    let effective = change.effective_at_ms;
    if change.sponsor {
        if effective > now_ms {
            schedule(conn, user_id, &change, effective).await?;
            return Ok(Outcome::Scheduled { due_ms: effective });
        }
        let (was, _) = app
            .store
            .set_sponsor_with_tier(user_id, true, change.tier_monthly_usd)
            .await?;
        // A promotion cancels whatever was scheduled (a demotion in its grace).
        clear_pending(conn, user_id).await?;
        if !was {
            tracing::info!(user_id, reason = %change.reason, "sponsor status: promoted");
        }
        return Ok(Outcome::Applied);
    }
    if !app.store.is_sponsor(user_id).await? {
        // Nothing to take away; writing would only leave a stub record.
        clear_pending(conn, user_id).await?;
        return Ok(Outcome::Applied);
    }
    let grace_ms = i64::try_from(app.config.sponsor_grace.as_millis()).unwrap_or(i64::MAX);
    let due = effective.saturating_add(grace_ms);
    if due <= now_ms {
        demote(app, user_id, &change.reason).await?;
        clear_pending(conn, user_id).await?;
        return Ok(Outcome::Applied);
    }
    // A demotion already scheduled earlier stays (another one must not push it back).
    if let Some(existing) = load_pending(conn, user_id).await? {
        if !existing.change.sponsor && existing.due_ms <= due {
            return Ok(Outcome::Scheduled {
                due_ms: existing.due_ms,
            });
        }
    }
    schedule(conn, user_id, &change, due).await?;
    tracing::info!(user_id, reason = %change.reason, due_ms = due, "sponsor status: demotion scheduled");
    Ok(Outcome::Scheduled { due_ms: due })
}

async fn demote(app: &App, user_id: u64, reason: &str) -> Result<(), AppError> {
    let (was, _) = app
        .store
        .set_sponsor_with_tier(user_id, false, None)
        .await?;
    if was {
        tracing::info!(user_id, reason, "sponsor status: demoted");
    }
    Ok(())
}

/// Applies a webhook event: decides, then (under the user's lock) skips an
/// already applied delivery, settles, and records the delivery id.
pub async fn handle_event(
    app: &App,
    event: &SponsorshipEvent,
    delivery: Option<&str>,
    now_ms: i64,
) -> Result<Outcome, AppError> {
    let (sponsor, tier_monthly_usd, effective_at_ms) =
        match decide(event, app.config.sponsor_min_monthly_usd) {
            Decision::Ignore(reason) => return Ok(Outcome::Ignored(reason)),
            Decision::Set {
                sponsor,
                tier_monthly_usd,
                effective_at_ms,
            } => (sponsor, tier_monthly_usd, effective_at_ms),
        };
    let change = Change {
        sponsor,
        tier_monthly_usd,
        effective_at_ms: effective_at_ms.unwrap_or(now_ms),
        reason: event.action.as_str().to_owned(),
    };
    let user_id = event.sponsor_id;
    let mut conn = app.store.connection();
    let lock = lock_or_busy(&mut conn, user_id).await?;
    let result = async {
        if let Some(id) = delivery {
            if conn.exists::<_, bool>(delivery_key(id)).await? {
                return Ok(Outcome::Duplicate);
            }
        }
        let outcome = settle(app, &mut conn, user_id, change, now_ms).await?;
        mark_changed(&mut conn, user_id, now_ms).await?;
        if let Some(id) = delivery {
            redis::cmd("SET")
                .arg(delivery_key(id))
                .arg(now_ms)
                .arg("NX")
                .arg("EX")
                .arg(DELIVERY_TTL_SECS)
                .query_async::<()>(&mut conn)
                .await?;
        }
        Ok(outcome)
    }
    .await;
    lock.release(&mut conn).await;
    result
}

/// A sign-in's "not a sponsor (any more)" answer under a grace period: the
/// demotion is scheduled like a webhook's, instead of taking effect at once.
pub async fn demote_after_sign_in(
    app: &App,
    user_id: u64,
    now_ms: i64,
) -> Result<Outcome, AppError> {
    let change = Change {
        sponsor: false,
        tier_monthly_usd: None,
        effective_at_ms: now_ms,
        reason: "sign-in".to_owned(),
    };
    let mut conn = app.store.connection();
    let lock = lock_or_busy(&mut conn, user_id).await?;
    let result = settle(app, &mut conn, user_id, change, now_ms).await;
    lock.release(&mut conn).await;
    result
}

/// Applies every scheduled change due at `now_ms` (at most a batch per call;
/// entries whose user is busy wait for the next call). Returns how many it applied.
pub async fn apply_due(app: &App, now_ms: i64) -> Result<usize, AppError> {
    let mut conn = app.store.connection();
    let due: Vec<u64> = conn
        .zrangebyscore_limit(PENDING_DUE, "-inf", now_ms, 0, DUE_BATCH)
        .await?;
    let mut applied = 0;
    for user_id in due {
        let Some(lock) = UserLock::acquire(&mut conn, user_id, Duration::ZERO).await? else {
            continue;
        };
        let result = apply_one(app, &mut conn, user_id, now_ms).await;
        lock.release(&mut conn).await;
        if result? {
            applied += 1;
        }
    }
    Ok(applied)
}

async fn apply_one(
    app: &App,
    conn: &mut ConnectionManager,
    user_id: u64,
    now_ms: i64,
) -> Result<bool, AppError> {
    // Re-read under the lock: it may have been cancelled or replaced meanwhile.
    let Some(PendingChange { change, due_ms }) = load_pending(conn, user_id).await? else {
        return Ok(false);
    };
    if due_ms > now_ms {
        return Ok(false);
    }
    if change.sponsor {
        app.store
            .set_sponsor_with_tier(user_id, true, change.tier_monthly_usd)
            .await?;
        tracing::info!(user_id, reason = %change.reason, "sponsor status: pending change applied");
    } else if signed_in_since(app, conn, user_id, change.effective_at_ms).await? {
        // The sign-in checked GitHub after the sponsorship ended: its answer
        // (promoted again, or already demoted) is newer than this demotion.
        tracing::info!(user_id, reason = %change.reason, "scheduled demotion dropped: newer sign-in check");
    } else {
        demote(app, user_id, &change.reason).await?;
    }
    clear_pending(conn, user_id).await?;
    mark_changed(conn, user_id, now_ms).await?;
    Ok(true)
}

/// `user_details:{id}` `checked_at` (sign-in's sponsorship check) is later than `at_ms`.
async fn signed_in_since(
    app: &App,
    conn: &mut ConnectionManager,
    user_id: u64,
    at_ms: i64,
) -> Result<bool, AppError> {
    let details = sponsorgate_sync::Keys::new(&app.config.sponsorable).user_details(user_id);
    let checked: Option<String> = conn.hget(details, "checked_at").await?;
    Ok(checked
        .and_then(|c| c.parse::<i64>().ok())
        .is_some_and(|secs| secs.saturating_mul(1000) > at_ms))
}

// ---------------------------------------------------------------------------
// Re-verification

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
    Store(#[from] AppError),
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
    let sponsors_key = sponsorgate_sync::Keys::new(&app.config.sponsorable)
        .sponsors()
        .to_owned();
    let local: Vec<String> = conn.smembers(&sponsors_key).await.map_err(AppError::from)?;
    let local: BTreeSet<u64> = local.iter().filter_map(|m| m.parse().ok()).collect();
    if listed.is_empty() && !local.is_empty() {
        return Err(ReverifyError::EmptyList(
            app.config.sponsorable.clone(),
            local.len(),
        ));
    }
    let pending: HashMap<String, String> = conn
        .hgetall(PENDING_CHANGES)
        .await
        .map_err(AppError::from)?;
    let precedence_ms = i64::try_from(WEBHOOK_PRECEDENCE.as_millis()).unwrap_or(i64::MAX);
    let cutoff = started_ms - precedence_ms;
    // Forget old change marks (they only matter for one run).
    conn.zrembyscore::<_, _, _, ()>(CHANGED_AT, "-inf", format!("({cutoff}"))
        .await
        .map_err(AppError::from)?;

    let mut report = ReverifyReport {
        listed: listed.len(),
        ..ReverifyReport::default()
    };
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

    for user_id in listed.difference(&local).copied() {
        reconcile_user(
            app,
            &mut conn,
            user_id,
            cutoff,
            started_ms,
            Reconcile::Promote,
            &mut report,
        )
        .await?;
    }
    for user_id in local.difference(&listed).copied() {
        reconcile_user(
            app,
            &mut conn,
            user_id,
            cutoff,
            started_ms,
            Reconcile::Demote,
            &mut report,
        )
        .await?;
    }
    for user_id in returning {
        reconcile_user(
            app,
            &mut conn,
            user_id,
            cutoff,
            started_ms,
            Reconcile::Keep,
            &mut report,
        )
        .await?;
    }
    Ok(report)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reconcile {
    Promote,
    Demote,
    Keep,
}

async fn reconcile_user(
    app: &App,
    conn: &mut ConnectionManager,
    user_id: u64,
    cutoff_ms: i64,
    listed_at_ms: i64,
    what: Reconcile,
    report: &mut ReverifyReport,
) -> Result<(), AppError> {
    let lock = lock_or_busy(conn, user_id).await?;
    let result = async {
        let changed: Option<f64> = conn.zscore(CHANGED_AT, user_id).await?;
        // A webhook changed them recently, or a sign-in checked GitHub after
        // the list was read: both know better than this run.
        let recent_webhook = changed.is_some_and(|at| at as i64 >= cutoff_ms);
        if recent_webhook || signed_in_since(app, conn, user_id, listed_at_ms).await? {
            report.skipped.push(user_id);
            return Ok(());
        }
        match what {
            Reconcile::Promote => {
                // The tier is not known here: keep whatever is recorded.
                let (was, is) = app.store.set_sponsor(user_id, true).await?;
                clear_pending(conn, user_id).await?;
                if is && !was {
                    tracing::info!(user_id, reason = "reverify", "sponsor status: promoted");
                    report.promoted.push(user_id);
                }
            }
            Reconcile::Demote => {
                let change = Change {
                    sponsor: false,
                    tier_monthly_usd: None,
                    effective_at_ms: listed_at_ms,
                    reason: "reverify".to_owned(),
                };
                match settle(app, conn, user_id, change, now_ms()).await? {
                    Outcome::Scheduled { .. } => report.scheduled.push(user_id),
                    _ => report.demoted.push(user_id),
                }
            }
            Reconcile::Keep => {
                if let Some(p) = load_pending(conn, user_id).await? {
                    if !p.change.sponsor && p.change.effective_at_ms <= listed_at_ms {
                        clear_pending(conn, user_id).await?;
                        report.kept.push(user_id);
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    lock.release(conn).await;
    result
}

// ---------------------------------------------------------------------------
// Background

/// Spawns the due-change step (every [`DUE_TICK`]) and, with
/// `SPONSORS_TOKEN`, the re-verification (every `SPONSORS_REFRESH_SECS`,
/// once per period across processes). Both stop when `shutdown` turns true
/// (or its sender is gone).
pub fn spawn_background(state: AppState, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![tokio::spawn(due_loop(state.clone(), shutdown.clone()))];
    let settings = state.config.github.as_ref();
    if let Some((token, refresh)) =
        settings.and_then(|g| Some((g.sponsors_token.clone()?, g.sponsors_refresh)))
    {
        let token = AccessToken::new(token.expose());
        tasks.push(tokio::spawn(reverify_loop(state, token, refresh, shutdown)));
    }
    tasks
}

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn due_loop(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(DUE_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => return,
            _ = tick.tick() => {}
        }
        match apply_due(&state, now_ms()).await {
            Ok(_) => failing = false,
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "applying due sponsorship changes failed; retrying");
                }
                failing = true;
            }
        }
    }
}

async fn reverify_loop(
    state: AppState,
    token: AccessToken,
    refresh: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let refresh_ms = u64::try_from(refresh.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let retry_ms = refresh_ms.min(u64::try_from(REVERIFY_RETRY.as_millis()).unwrap_or(60_000));
    let mut conn = state.store.connection();
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => return,
            _ = tick.tick() => {}
        }
        // One run per period among all processes sharing the local Redis.
        let claimed: redis::RedisResult<Option<String>> = redis::cmd("SET")
            .arg(REVERIFY_LEASE)
            .arg(now_ms())
            .arg("NX")
            .arg("PX")
            .arg(refresh_ms)
            .query_async(&mut conn)
            .await;
        if !matches!(claimed, Ok(Some(_))) {
            continue;
        }
        let run = tokio::select! {
            _ = stopped(&mut shutdown) => return,
            run = reverify_once(&state, &token) => run,
        };
        match run {
            Ok(report) => tracing::info!(
                listed = report.listed,
                promoted = report.promoted.len(),
                demoted = report.demoted.len(),
                scheduled = report.scheduled.len(),
                kept = report.kept.len(),
                skipped = report.skipped.len(),
                "sponsors re-verified"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "sponsor re-verification failed; nothing changed, retrying later");
                let _: redis::RedisResult<()> = conn.pexpire(REVERIFY_LEASE, retry_ms as i64).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_test_vector() {
        let secret = b"It's a Secret to Everybody";
        let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(secret, b"Hello, World!"), expected);
        let check = |h: &str| verify_signature(secret, b"Hello, World!", Some(h.as_bytes()));
        assert_eq!(check(expected), SignatureCheck::Valid);
        assert_eq!(
            check(&expected.replace("e17", "e18")),
            SignatureCheck::Invalid
        );
        assert_eq!(
            check(&expected[..expected.len() - 2]),
            SignatureCheck::Invalid
        );
        assert_eq!(
            check("sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"),
            SignatureCheck::Invalid
        );
        assert_eq!(
            check(expected.trim_start_matches("sha256=")),
            SignatureCheck::Invalid
        );
        assert_eq!(check("sha256=zz"), SignatureCheck::Invalid);
        assert_eq!(
            verify_signature(secret, b"Hello, World!", None),
            SignatureCheck::Missing
        );
        assert_eq!(
            verify_signature(secret, b"Hello, World?", Some(expected.as_bytes())),
            SignatureCheck::Invalid
        );
    }

    fn payload(
        action: &str,
        sponsorable: serde_json::Value,
        sponsor: serde_json::Value,
        tier: serde_json::Value,
    ) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "action": action,
            "sponsorship": {"sponsorable": sponsorable, "sponsor": sponsor, "tier": tier},
            "effective_date": "2019-12-30T00:00:00+00:00",
        }))
        .unwrap()
    }

    fn user(login: &str, id: u64) -> serde_json::Value {
        serde_json::json!({"login": login, "id": id, "type": "User"})
    }

    fn tier(cents: u64, one_time: bool) -> serde_json::Value {
        serde_json::json!({"monthly_price_in_cents": cents, "is_one_time": one_time})
    }

    fn event(action: &str, cents: u64, one_time: bool) -> SponsorshipEvent {
        let body = payload(
            action,
            user("ACME-org", 9001),
            user("alice", 1001),
            tier(cents, one_time),
        );
        match parse_event(&body, "acme-org").unwrap() {
            Parsed::Event(e) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parsing_filters_what_is_not_ours() {
        let ours = user("acme-org", 9001);
        let alice = user("alice", 1001);
        let t = tier(1000, false);
        let cases = [
            payload("created", user("octocat", 5), alice.clone(), t.clone()),
            payload("created", serde_json::Value::Null, alice.clone(), t.clone()),
            payload("created", ours.clone(), serde_json::Value::Null, t.clone()),
            payload(
                "created",
                ours.clone(),
                serde_json::json!({"login": "org", "id": 3, "type": "Organization"}),
                t.clone(),
            ),
            payload("renamed", ours.clone(), alice.clone(), t.clone()),
        ];
        for body in cases {
            assert!(matches!(
                parse_event(&body, "acme-org").unwrap(),
                Parsed::Ignored(_)
            ));
        }
        assert!(parse_event(b"[1]", "acme-org").is_err());
        assert!(parse_event(
            b"{\"action\":\"created\",\"sponsorship\":{\"sponsor\":{\"id\":\"x\"}}}",
            "acme-org"
        )
        .is_err());
        let e = event("pending_cancellation", 1000, false);
        assert_eq!(e.effective_at_ms, Some(1_577_664_000_000));
        assert_eq!(e.sponsor_id, 1001);
        assert_eq!(parse_date("2019-12-30"), Some(1_577_664_000_000));
    }

    #[test]
    fn decisions_apply_the_minimum() {
        let set = |sponsor, tier: Option<u64>| Decision::Set {
            sponsor,
            tier_monthly_usd: tier,
            effective_at_ms: None,
        };
        assert_eq!(
            decide(&event("created", 1000, false), 5),
            set(true, Some(10))
        );
        assert_eq!(decide(&event("created", 100, false), 5), set(false, None));
        assert_eq!(decide(&event("created", 5000, true), 5), set(false, None));
        assert_eq!(decide(&event("created", 5000, true), 0), set(true, None));
        assert_eq!(
            decide(&event("tier_changed", 499, false), 5),
            set(false, None)
        );
        assert_eq!(
            decide(&event("tier_changed", 500, false), 5),
            set(true, Some(5))
        );
        assert_eq!(
            decide(&event("cancelled", 1000, false), 0),
            set(false, None)
        );
        assert!(matches!(
            decide(&event("edited", 1000, false), 0),
            Decision::Ignore(_)
        ));
        assert!(matches!(
            decide(&event("pending_tier_change", 100, false), 5),
            Decision::Set {
                sponsor: false,
                effective_at_ms: Some(_),
                ..
            }
        ));
    }
}
