//! Guarantees 2 (nothing lost) and 7 (remote down).

use std::time::{Duration, Instant};

use sponsorgate_sync::SponsorKey;

use crate::support::*;

/// (2) The network to the remote is cut while 500 writes are acknowledged;
/// the API does not wait on the remote, `status()` reports the outage, and
/// once restored everything arrives within 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_an_outage_arrive_after_it() {
    let _serial = serial().await;
    let pair = Pair::start(true).await;
    let sync = pair.sync("w1").await;
    let _worker = run_ready(&sync).await;
    let mut api = pair.api_conn().await;
    let uids = [1, 2];
    for uid in uids {
        sponsor_with(&sync, &mut api, uid, &["before"]).await;
    }
    converged(&pair, &uids, Duration::from_secs(5)).await;
    assert!(sync.status().remote_up);

    pair.proxy().cut();
    let mut slowest = Duration::ZERO;
    for i in 0..500u64 {
        let started = Instant::now();
        let uid = uids[(i % 2) as usize];
        add(&sync, &mut api, uid, &format!("during{i}")).await;
        if i % 10 == 9 {
            remove(&sync, &mut api, uid, &format!("during{}", i - 2)).await;
        }
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(300),
        "a write waited {slowest:?} on the cut remote"
    );
    eventually(
        Duration::from_secs(3),
        "status reports the outage",
        || async {
            let s = sync.status();
            !s.remote_up && s.backlog > 0
        },
    )
    .await;
    assert!(members(&mut pair.remote.conn(), "user:1:mnodes").len() < 10);

    pair.proxy().restore();
    let took = converged(&pair, &uids, Duration::from_secs(10)).await;
    assert!(members(&mut pair.remote.conn(), "user:1:mnodes").contains("during498"));
    eventually(
        Duration::from_secs(3),
        "status reports recovery",
        || async {
            let s = sync.status();
            s.remote_up && s.backlog == 0
        },
    )
    .await;
    eprintln!("backlog of 550 entries drained {took:?} after the network came back");
}

/// (9) With the network cut, a fetch-back (what an API read does on a miss)
/// fails within REMOTE_TIMEOUT_MS, and the forced read answers at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_back_fails_within_the_remote_timeout() {
    let _serial = serial().await;
    let pair = Pair::start(true).await;
    let sync = pair.sync("w1").await;
    let mut api = pair.api_conn().await;
    sponsor_with(&sync, &mut api, 42, &["a", "b"]).await;
    drain(&sync, &mut pair.local.conn(), Duration::from_secs(5)).await;

    let _: () = redis::cmd("FLUSHALL")
        .query(&mut pair.local.conn())
        .unwrap();
    pair.proxy().cut();
    let limit = sync.config().remote_timeout + Duration::from_millis(150);
    for key in [SponsorKey::Sponsors, SponsorKey::Mnodes(42)] {
        let started = Instant::now();
        let outcome = sync.fetch_back(&key).await;
        let took = started.elapsed();
        assert!(
            outcome.is_err(),
            "fetch-back of {key:?} succeeded through a cut network"
        );
        assert!(took <= limit, "fetch-back of {key:?} took {took:?}");
    }
    let started = Instant::now();
    let (ids, _) = read(&sync, &mut api, 42).await;
    assert!(
        started.elapsed() <= limit,
        "a read took {:?}",
        started.elapsed()
    );
    assert!(ids.is_empty());
    eventually(
        Duration::from_secs(3),
        "status reports the outage",
        || async { !sync.status().remote_up },
    )
    .await;

    // A process starting while the remote is unreachable starts all the same.
    let started = Instant::now();
    let late = pair.sync("late").await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "connect took {:?}",
        started.elapsed()
    );
    assert!(!late.status().remote_up);
    pair.proxy().restore();
    eventually(
        Duration::from_secs(3),
        "late starter sees the remote",
        || async { late.status().remote_up },
    )
    .await;
    late.fetch_back(&SponsorKey::Mnodes(42)).await.unwrap();
    assert_eq!(
        members(&mut pair.local.conn(), "user:42:mnodes"),
        set_of(&["a", "b"])
    );
}
