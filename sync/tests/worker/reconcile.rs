//! Reconciliation (`sponsorgate sync --reconcile`).

use std::time::Duration;

use redis::Commands;

use crate::support::*;

/// (8) Changes made by hand on the remote are found and repaired (the local
/// Redis is the authority for current sponsors); a second pass finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_repairs_a_remote_changed_by_hand() {
    let _serial = serial().await;
    let pair = Pair::start(false).await;
    let sync = pair.sync("w1").await;
    let mut api = pair.api_conn().await;
    sponsor_with(&sync, &mut api, 1, &["a", "b"]).await;
    sponsor_with(&sync, &mut api, 2, &["c"]).await;
    let mut local = pair.local.conn();
    drain(&sync, &mut local, Duration::from_secs(5)).await;
    converged(&pair, &[1, 2], Duration::from_secs(1)).await;

    let mut remote = pair.remote.conn();
    let _: () = remote.sadd("user:1:mnodes", "bogus").unwrap();
    let _: () = remote.srem("user:1:mnodes", "a").unwrap();
    let _: () = remote
        .hset("user_details:1", "user_login", "mallory")
        .unwrap();
    let _: () = remote.del("user:2:mnodes").unwrap();
    let _: () = remote.sadd("sponsors:acme", "999").unwrap();
    // A former sponsor's copy, not in the local sponsors set: left alone.
    let _: () = remote.sadd("user:500:mnodes", "kept").unwrap();

    let report = sync.reconcile().await.unwrap();
    let mut repaired = report.repaired.clone();
    repaired.sort();
    assert_eq!(
        repaired,
        [
            "sponsors:acme",
            "user:1:mnodes",
            "user:2:mnodes",
            "user_details:1"
        ]
    );
    assert!(report.fetched_back.is_empty());
    assert_eq!(report.checked, 5);
    let summary = report.to_string();
    assert!(
        summary.contains("repaired 4") && summary.contains("user:2:mnodes"),
        "{summary}"
    );
    assert!(differences(&mut local, &mut remote, &[1, 2]).is_empty());
    assert_eq!(members(&mut remote, "user:500:mnodes"), set_of(&["kept"]));

    let again = sync.reconcile().await.unwrap();
    assert!(!again.changed(), "{again}");
    // The repairs were journaled too; applying them changes nothing.
    drain(&sync, &mut local, Duration::from_secs(5)).await;
    assert!(differences(&mut local, &mut remote, &[1, 2]).is_empty());
}
