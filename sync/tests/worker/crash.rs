//! Guarantee 2 under a crash: a consumer killed mid-batch.

use std::time::Duration;

use crate::support::*;

/// `XPENDING key group`: count, lowest id, highest id, (consumer, count) pairs.
type XPendingSummary = (
    u64,
    Option<String>,
    Option<String>,
    Option<Vec<(String, String)>>,
);

/// (11) A consumer reads a batch and dies before acking (its step is dropped
/// mid-flight while its remote is unreachable, then the whole instance is
/// dropped, like SIGKILL). Another consumer claims the entries after 2 s of
/// idleness and applies them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_consumers_entries_are_claimed_and_applied() {
    let _serial = serial().await;
    let pair = Pair::start(true).await;
    let survivor = {
        let mut cfg = pair.config("survivor");
        cfg.remote_url = pair.remote.url();
        sponsorgate_sync::Sync::connect(cfg, sponsorgate_sync::SyncMetrics::new())
            .await
            .unwrap()
    };
    let mut api = pair.api_conn().await;
    sponsor_with(&survivor, &mut api, 5, &["seed"]).await;
    let mut local = pair.local.conn();
    drain(&survivor, &mut local, Duration::from_secs(5)).await;

    pair.proxy().cut();
    let doomed = pair.sync("doomed").await;
    for i in 0..20 {
        add(&survivor, &mut api, 5, &format!("n{i}")).await;
    }
    let _ = tokio::time::timeout(Duration::from_millis(800), doomed.step()).await;
    drop(doomed);
    let pending: XPendingSummary = redis::cmd("XPENDING")
        .arg("sync:journal")
        .arg("mirror")
        .query(&mut local)
        .unwrap();
    assert_eq!(pending.0, 20, "{pending:?}");
    assert_eq!(
        pending.3.unwrap(),
        vec![("doomed".to_string(), "20".to_string())]
    );

    let started = std::time::Instant::now();
    let (mut claimed, mut applied) = (0, 0);
    while applied < 20 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not applied within 10 s"
        );
        let report = survivor.step().await.expect("step");
        claimed += report.claimed;
        applied += report.applied;
    }
    let took = started.elapsed();
    assert!(claimed >= 20, "claimed {claimed}");
    assert_eq!(backlog(&mut local), 0);
    converged(&pair, &[5], Duration::from_secs(1)).await;
    eprintln!("dead consumer's batch applied {took:?} after the crash");
}
