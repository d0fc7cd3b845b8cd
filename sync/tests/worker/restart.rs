//! Either Redis restarting empty (guarantees 2 and 3 across restarts).

use std::time::Duration;

use crate::support::*;

/// The local Redis restarts empty under a running worker: it re-enables
/// keyspace notifications, recreates the journal group, fetches sponsor keys
/// back when read, and keeps mirroring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_restart_is_survived() {
    let _serial = serial().await;
    let mut pair = Pair::start(false).await;
    let sync = pair.sync("w1").await;
    let _worker = run_ready(&sync).await;
    let mut api = pair.api_conn().await;
    sponsor_with(&sync, &mut api, 42, &["a", "b"]).await;
    converged(&pair, &[42], Duration::from_secs(5)).await;

    pair.local.restart();
    // Another client's read of the missing set brings it back.
    eventually(
        Duration::from_secs(5),
        "key back after a local restart",
        || async { members(&mut pair.local.conn(), "user:42:mnodes") == set_of(&["a", "b"]) },
    )
    .await;
    eventually(
        Duration::from_secs(3),
        "notifications re-enabled",
        || async {
            let flags: Vec<String> = redis::cmd("CONFIG")
                .arg("GET")
                .arg("notify-keyspace-events")
                .query(&mut pair.local.conn())
                .unwrap();
            flags[1].contains('m')
        },
    )
    .await;
    let mut api = pair.api_conn().await;
    add(&sync, &mut api, 42, "after-restart").await;
    converged(&pair, &[42], Duration::from_secs(5)).await;
    assert!(members(&mut pair.remote.conn(), "user:42:mnodes").contains("after-restart"));
}

/// The remote restarts empty: the next change to a key copies it whole, and
/// a reconciliation restores every other sponsor key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_restart_is_repaired() {
    let _serial = serial().await;
    let mut pair = Pair::start(false).await;
    let sync = pair.sync("w1").await;
    let _worker = run_ready(&sync).await;
    let mut api = pair.api_conn().await;
    sponsor_with(&sync, &mut api, 1, &["a", "b"]).await;
    sponsor_with(&sync, &mut api, 2, &["c"]).await;
    converged(&pair, &[1, 2], Duration::from_secs(5)).await;

    pair.remote.restart();
    add(&sync, &mut api, 1, "new").await;
    eventually(
        Duration::from_secs(5),
        "changed key copied whole",
        || async {
            members(&mut pair.remote.conn(), "user:1:mnodes") == set_of(&["a", "b", "new"])
        },
    )
    .await;
    let report = sync.reconcile().await.unwrap();
    let mut repaired = report.repaired.clone();
    repaired.sort();
    assert_eq!(
        repaired,
        [
            "sponsors:acme",
            "user:2:mnodes",
            "user_details:1",
            "user_details:2"
        ],
        "{report}"
    );
    converged(&pair, &[1, 2], Duration::from_secs(1)).await;
}
