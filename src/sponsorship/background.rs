//! The background tasks: due changes and periodic re-verification.

use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use redis::AsyncCommands;
use secrecy::ExposeSecret;
use tokio::sync::watch;

use super::apply::apply_due;
use super::keys::{DUE_TICK, REVERIFY_LEASE, REVERIFY_RETRY};
use super::reverify::reverify_once;
use crate::clock::now_ms;
use crate::github::AccessToken;
use crate::state::AppState;

/// The due-change step (every [`DUE_TICK`]) and, with `SPONSORS_TOKEN`, the
/// re-verification (every `SPONSORS_REFRESH_SECS`, once per period across
/// processes), named, for the caller to spawn and watch. Both return when
/// `shutdown` turns true (or its sender is gone), never before.
pub fn background_tasks(
    state: AppState,
    shutdown: watch::Receiver<bool>,
) -> Vec<(&'static str, BoxFuture<'static, ()>)> {
    let mut tasks = vec![(
        "sponsorship-due",
        due_loop(state.clone(), shutdown.clone()).boxed(),
    )];
    let settings = state.config.github.as_ref();
    if let Some((token, refresh)) =
        settings.and_then(|g| Some((g.sponsors_token.clone()?, g.sponsors_refresh)))
    {
        let token = AccessToken::new(token.expose_secret());
        tasks.push((
            "sponsorship-reverify",
            reverify_loop(state, token, refresh, shutdown).boxed(),
        ));
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
                    tracing::warn!(error.message = %e, "applying due sponsorship changes failed; retrying");
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
                tracing::warn!(error.message = %e, "sponsor re-verification failed; nothing changed, retrying later");
                let _: redis::RedisResult<()> = conn.pexpire(REVERIFY_LEASE, retry_ms as i64).await;
            }
        }
    }
}
