//! Guarantee 5 (only sponsors) and sponsorship changes (SPEC §5).

use std::time::Duration;

use redis::Commands;
use sponsorgate_sync::StatusUpdate;

use crate::support::*;

/// (6) Nothing of a non-sponsor reaches the remote: API writes, direct writes
/// by another client, key misses, or a reconciliation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_sponsors_keys_never_reach_the_remote() {
    let _serial = serial().await;
    let pair = Pair::start(false).await;
    let sync = pair.sync("w1").await;
    let _worker = run_ready(&sync).await;
    let mut api = pair.api_conn().await;
    sponsor_with(&sync, &mut api, 5, &["s"]).await;
    set_sponsor(&sync, &mut api, 99, StatusUpdate::NotSponsor).await;
    for id in ["x", "y", "z"] {
        add(&sync, &mut api, 99, id).await;
    }
    remove(&sync, &mut api, 99, "y").await;
    read(&sync, &mut api, 99).await;
    let mut other = pair.local.conn();
    let _: () = other.sadd("user:99:mnodes", "direct").unwrap();
    let _: () = other
        .hset("user_details:99", "name", "Not A Sponsor")
        .unwrap();
    let _: () = other.sadd("user:98:mnodes", "never-a-sponsor").unwrap();
    let _ = members(&mut other, "user:97:mnodes");
    // A sponsor's write after all that, as a barrier.
    add(&sync, &mut api, 5, "barrier").await;
    converged(&pair, &[5], Duration::from_secs(5)).await;
    eventually(Duration::from_secs(3), "journal empty", || async {
        backlog(&mut pair.local.conn()) == 0
    })
    .await;
    sync.reconcile().await.unwrap();

    let mut remote = pair.remote.conn();
    let keys: Vec<String> = remote.keys("*").unwrap();
    let leaked: Vec<&String> = keys
        .iter()
        .filter(|k| k.contains("99") || k.contains("98") || k.contains("97"))
        .collect();
    assert!(
        leaked.is_empty(),
        "non-sponsor keys on the remote: {leaked:?}"
    );
    assert_eq!(members(&mut remote, "sponsors:acme"), set_of(&["5"]));
    assert!(other.ttl::<_, i64>("user:99:mnodes").unwrap() > 0);
}

/// (7) Promotion mirrors the existing set; demotion puts the TTL back and
/// keeps the remote copy; re-promotion brings remote-only ids back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_demotion_and_return() {
    let _serial = serial().await;
    let pair = Pair::start(false).await;
    let sync = pair.sync("w1").await;
    let _worker = run_ready(&sync).await;
    let mut api = pair.api_conn().await;
    let mut local = pair.local.conn();
    let mut remote = pair.remote.conn();
    add(&sync, &mut api, 11, "a").await;
    add(&sync, &mut api, 11, "b").await;
    assert!(local.ttl::<_, i64>("user:11:mnodes").unwrap() > 0);

    set_sponsor(&sync, &mut api, 11, StatusUpdate::Sponsor).await;
    assert_eq!(local.ttl::<_, i64>("user:11:mnodes").unwrap(), -1);
    converged(&pair, &[11], Duration::from_secs(5)).await;
    assert_eq!(members(&mut remote, "user:11:mnodes"), set_of(&["a", "b"]));
    let flag: String = remote.hget("user_details:11", "sponsor").unwrap();
    assert_eq!(flag, "1");

    set_sponsor(&sync, &mut api, 11, StatusUpdate::NotSponsor).await;
    assert!(local.ttl::<_, i64>("user:11:mnodes").unwrap() > 0);
    eventually(
        Duration::from_secs(5),
        "remote sponsors set without 11",
        || async { !members(&mut pair.remote.conn(), "sponsors:acme").contains("11") },
    )
    .await;
    remove(&sync, &mut api, 11, "b").await;
    add(&sync, &mut api, 11, "c").await;
    eventually(Duration::from_secs(3), "journal empty", || async {
        backlog(&mut pair.local.conn()) == 0
    })
    .await;
    assert_eq!(members(&mut local, "user:11:mnodes"), set_of(&["a", "c"]));
    assert_eq!(
        members(&mut remote, "user:11:mnodes"),
        set_of(&["a", "b"]),
        "remote copy kept as it was"
    );

    set_sponsor(&sync, &mut api, 11, StatusUpdate::Sponsor).await;
    let (ids, sponsor) = read(&sync, &mut api, 11).await;
    assert!(sponsor);
    assert_eq!(ids, set_of(&["a", "b", "c"]));
    converged(&pair, &[11], Duration::from_secs(5)).await;
    assert_eq!(
        members(&mut remote, "user:11:mnodes"),
        set_of(&["a", "b", "c"])
    );
    assert_eq!(local.ttl::<_, i64>("user:11:mnodes").unwrap(), -1);
}
