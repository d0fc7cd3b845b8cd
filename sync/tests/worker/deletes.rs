//! Guarantee 4 (deletes win).

use std::time::Duration;

use redis::Commands;

use crate::support::*;

/// (4) A sponsor removes their last id (the set no longer exists) and the set
/// is read at once, through the API and by another client, fifty times over:
/// the id never comes back, locally or on the remote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_last_id_is_final() {
    let _serial = serial().await;
    let pair = Pair::start(false).await;
    let sync = pair.sync("w1").await;
    let _worker = run_ready(&sync).await;
    let mut api = pair.api_conn().await;
    sponsor_with(&sync, &mut api, 7, &[]).await;
    let mut other = pair.local.conn();
    let mut remote = pair.remote.conn();
    for round in 0..50 {
        let id = format!("only{round}");
        add(&sync, &mut api, 7, &id).await;
        assert!(remove(&sync, &mut api, 7, &id).await);
        let (ids, sponsor) = read(&sync, &mut api, 7).await;
        assert!(sponsor);
        assert!(ids.is_empty(), "round {round}: API read {ids:?}");
        assert!(
            members(&mut other, "user:7:mnodes").is_empty(),
            "round {round}: SMEMBERS"
        );
        if round % 10 == 0 {
            // Let the worker and the notification leader see the reads.
            converged(&pair, &[7], Duration::from_secs(2)).await;
        }
    }
    converged(&pair, &[7], Duration::from_secs(5)).await;
    eventually(Duration::from_secs(3), "journal empty", || async {
        backlog(&mut pair.local.conn()) == 0
    })
    .await;
    // Key misses on the absent set must not resurrect anything.
    for _ in 0..20 {
        assert!(members(&mut other, "user:7:mnodes").is_empty());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!other.exists::<_, bool>("user:7:mnodes").unwrap());
    assert!(!remote.exists::<_, bool>("user:7:mnodes").unwrap());
    assert_eq!(backlog(&mut other), 0, "key misses journaled something");
}

/// (10) The local Redis is flushed while the remote is unreachable; a removal
/// made then (forced: the fetch-back fails) leaves a tombstone, and the merge
/// after the network returns does not bring the id back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_before_the_fetch_back_wins() {
    let _serial = serial().await;
    let pair = Pair::start(true).await;
    let sync = pair.sync("w1").await;
    let _worker = run_ready(&sync).await;
    let mut api = pair.api_conn().await;
    sponsor_with(&sync, &mut api, 42, &["a", "b"]).await;
    converged(&pair, &[42], Duration::from_secs(5)).await;

    pair.proxy().cut();
    let mut local = pair.local.conn();
    let _: () = redis::cmd("FLUSHALL").query(&mut local).unwrap();
    remove(&sync, &mut api, 42, "a").await;
    add(&sync, &mut api, 42, "c").await;
    assert_eq!(members(&mut local, "user:42:mnodes"), set_of(&["c"]));

    pair.proxy().restore();
    let mut remote = pair.remote.conn();
    eventually(
        Duration::from_secs(10),
        "merged set on both sides",
        || async {
            members(&mut pair.local.conn(), "user:42:mnodes") == set_of(&["b", "c"])
                && members(&mut pair.remote.conn(), "user:42:mnodes") == set_of(&["b", "c"])
        },
    )
    .await;
    let ttl: i64 = local.ttl("user:42:mnodes").unwrap();
    assert_eq!(ttl, -1, "a sponsor's set keeps no TTL after the merge");
    assert!(!local.exists::<_, bool>("sync:tomb:user:42:mnodes").unwrap());
    let (ids, sponsor) = read(&sync, &mut api, 42).await;
    assert!(sponsor);
    assert_eq!(ids, set_of(&["b", "c"]));
    converged(&pair, &[42], Duration::from_secs(10)).await;
    assert!(!members(&mut remote, "user:42:mnodes").contains("a"));
}
