//! Applying changes: now, at a future effective time, or after the grace.

use std::time::Duration;

use redis::AsyncCommands;
use sponsorgate_sync::RedisLink;

use super::event::{decide, Change, Decision, Outcome, SponsorshipEvent};
use super::keys::{
    body_key, delivery_key, BODY_TTL_SECS, DELIVERY_TTL_SECS, DUE_BATCH, PENDING_DUE,
};
use super::schedule::{
    clear_pending, load_pending, lock_or_busy, mark_changed, schedule, PendingChange, UserLock,
};
use super::SponsorshipResult;
use crate::state::App;
use crate::store::{Profile, Sponsorship};

/// Brings the user to `change` (held lock assumed): promotions now, or at a
/// future effective time; demotions after the grace, immediately when it is 0.
pub(super) async fn settle(
    app: &App,
    conn: &mut RedisLink,
    user_id: u64,
    change: Change,
    now_ms: i64,
) -> SponsorshipResult<Outcome> {
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
            tracing::info!(user.id = user_id, reason = %change.reason, "sponsor status: promoted");
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
    tracing::info!(user.id = user_id, reason = %change.reason, due_ms = due, "sponsor status: demotion scheduled");
    Ok(Outcome::Scheduled { due_ms: due })
}

pub(super) async fn demote(app: &App, user_id: u64, reason: &str) -> SponsorshipResult<()> {
    let (was, _) = app
        .store
        .set_sponsor_with_tier(user_id, false, None)
        .await?;
    if was {
        tracing::info!(user.id = user_id, reason, "sponsor status: demoted");
    }
    Ok(())
}

/// Applies a webhook event: decides, then (under the user's lock) skips an
/// already applied delivery or body, settles, and records both. `body` is
/// the raw signed body: a replay of it under another delivery id is a
/// duplicate too.
#[tracing::instrument(skip_all, fields(user.id = event.sponsor_id, webhook.action = event.action.as_str()))]
pub async fn handle_event(
    app: &App,
    event: &SponsorshipEvent,
    delivery: Option<&str>,
    body: &[u8],
    now_ms: i64,
) -> SponsorshipResult<Outcome> {
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
    let body_seen = body_key(body);
    let result = async {
        let mut seen: Vec<String> = vec![body_seen.clone()];
        seen.extend(delivery.map(delivery_key));
        if conn.exists::<_, u64>(&seen).await? > 0 {
            return Ok(Outcome::Duplicate);
        }
        let outcome = settle(app, &mut conn, user_id, change, now_ms).await?;
        mark_changed(&mut conn, user_id, now_ms).await?;
        let mut remember = redis::pipe();
        remember
            .cmd("SET")
            .arg(&body_seen)
            .arg(now_ms)
            .arg("NX")
            .arg("EX")
            .arg(BODY_TTL_SECS)
            .ignore();
        if let Some(id) = delivery {
            remember
                .cmd("SET")
                .arg(delivery_key(id))
                .arg(now_ms)
                .arg("NX")
                .arg("EX")
                .arg(DELIVERY_TTL_SECS)
                .ignore();
        }
        remember.query_async::<()>(&mut conn).await?;
        Ok(outcome)
    }
    .await;
    lock.release(&mut conn).await;
    result
}

/// Records what a sign-in learned: the profile and GitHub's sponsorship
/// answer (`None`: GitHub failed, the known status is kept). Under a grace
/// period (`SPONSOR_GRACE_SECS`), a sponsor whom GitHub no longer lists keeps
/// sponsor treatment and the demotion is scheduled, like a webhook's. Returns
/// whether the user is a sponsor now.
#[tracing::instrument(skip_all, fields(user.id = profile.id))]
pub async fn record_sign_in(
    app: &App,
    profile: &Profile,
    sponsorship: Option<Sponsorship>,
    now_ms: i64,
) -> SponsorshipResult<bool> {
    let now_secs = u64::try_from(now_ms.div_euclid(1000)).unwrap_or(0);
    let grace = !app.config.sponsor_grace.is_zero();
    match sponsorship {
        Some(s) if grace && !s.sponsor => {
            app.store.record_login(profile, None, now_secs).await?;
            demote_after_sign_in(app, profile.id, now_ms).await?;
            Ok(app.store.is_sponsor(profile.id).await?)
        }
        other => Ok(app.store.record_login(profile, other, now_secs).await?),
    }
}

/// A sign-in's "not a sponsor (any more)" answer under a grace period: the
/// demotion is scheduled like a webhook's, instead of taking effect at once.
async fn demote_after_sign_in(app: &App, user_id: u64, now_ms: i64) -> SponsorshipResult<Outcome> {
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
#[tracing::instrument(skip_all)]
pub async fn apply_due(app: &App, now_ms: i64) -> SponsorshipResult<usize> {
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

pub(super) async fn apply_one(
    app: &App,
    conn: &mut RedisLink,
    user_id: u64,
    now_ms: i64,
) -> SponsorshipResult<bool> {
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
        tracing::info!(user.id = user_id, reason = %change.reason, "sponsor status: pending change applied");
    } else if signed_in_since(app, conn, user_id, change.effective_at_ms).await? {
        // The sign-in checked GitHub after the sponsorship ended: its answer
        // (promoted again, or already demoted) is newer than this demotion.
        tracing::info!(user.id = user_id, reason = %change.reason, "scheduled demotion dropped: newer sign-in check");
    } else {
        demote(app, user_id, &change.reason).await?;
    }
    clear_pending(conn, user_id).await?;
    mark_changed(conn, user_id, now_ms).await?;
    Ok(true)
}

/// `user_details:{id}` `checked_at` (sign-in's sponsorship check) is later than `at_ms`.
pub(super) async fn signed_in_since(
    app: &App,
    conn: &mut RedisLink,
    user_id: u64,
    at_ms: i64,
) -> SponsorshipResult<bool> {
    let details = sponsorgate_sync::Keys::new(&app.config.sponsorable).user_details(user_id);
    let checked: Option<String> = conn.hget(details, "checked_at").await?;
    Ok(checked
        .and_then(|c| c.parse::<i64>().ok())
        .is_some_and(|secs| secs.saturating_mul(1000) > at_ms))
}
