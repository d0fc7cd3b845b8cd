//! The background tasks: due changes and periodic re-verification.

#[allow(unused_imports)]
use super::*;

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

pub(super) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

pub(super) async fn due_loop(state: AppState, mut shutdown: watch::Receiver<bool>) {
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

pub(super) async fn reverify_loop(
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
