//! Guarantee 3 (fetch back on miss) and the notification flags.

use std::time::{Duration, Instant};

use crate::support::*;

/// (3) After a local FLUSHALL an API read returns the remote data; after
/// another, a plain SMEMBERS by another client (a key miss) brings the key
/// back locally within 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_local_redis_is_fetched_back() {
    let _serial = serial().await;
    let pair = Pair::start(false).await;
    let sync = pair.sync("w1").await;
    let _worker = run_ready(&sync).await;
    let mut api = pair.api_conn().await;
    sponsor_with(&sync, &mut api, 42, &["a", "b", "c"]).await;
    converged(&pair, &[42], Duration::from_secs(5)).await;
    let mut local = pair.local.conn();

    let _: () = redis::cmd("FLUSHALL").query(&mut local).unwrap();
    let (ids, sponsor) = read(&sync, &mut api, 42).await;
    assert_eq!(ids, set_of(&["a", "b", "c"]));
    assert!(sponsor);
    assert_eq!(
        members(&mut local, "user:42:mnodes"),
        set_of(&["a", "b", "c"])
    );

    // The leader has matched the merge's own keyspace events (so no late
    // event can trigger a fetch-back below).
    eventually(Duration::from_secs(2), "own events matched", || async {
        let mut c = pair.local.conn();
        ["sync:meta:sponsors:acme", "sync:meta:user:42:mnodes"]
            .iter()
            .all(|meta| {
                redis::cmd("HGET")
                    .arg(meta)
                    .arg("e")
                    .query::<Option<i64>>(&mut c)
                    .unwrap()
                    .unwrap_or(0)
                    == 0
            })
    })
    .await;
    // Flush again, keeping the notification lease so that the new leader's
    // full resync does not do the keymiss path's work.
    let _: () = redis::pipe()
        .atomic()
        .cmd("FLUSHALL")
        .ignore()
        .cmd("SET")
        .arg("sync:notify-leader")
        .arg("w1")
        .arg("PX")
        .arg(5000)
        .ignore()
        .query(&mut local)
        .unwrap();
    let started = Instant::now();
    let first = members(&mut local, "user:42:mnodes");
    assert!(first.is_empty(), "the flush left {first:?}");
    eventually(
        Duration::from_secs(1),
        "key back after a key miss",
        || async { members(&mut pair.local.conn(), "user:42:mnodes") == set_of(&["a", "b", "c"]) },
    )
    .await;
    eprintln!("key fetched back {:?} after the miss", started.elapsed());
    // The merge copied the remote exactly: nothing to send back.
    let mut remote = pair.remote.conn();
    assert_eq!(
        members(&mut remote, "user:42:mnodes"),
        set_of(&["a", "b", "c"])
    );
}

/// `ensure_notifications` adds what it needs to the flags already set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_flags_are_added_never_removed() {
    let _serial = serial().await;
    let pair = Pair::start(false).await;
    let sync = pair.sync("w1").await;
    let mut local = pair.local.conn();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("Kl")
        .query(&mut local)
        .unwrap();
    let flags = sync.ensure_notifications().await.unwrap();
    assert!(flags.configurable());
    let now: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query(&mut local)
        .unwrap();
    for flag in ['K', 'l', 'E', 'g', 's', 'h', 'm'] {
        assert!(now[1].contains(flag), "{flag} missing from {now:?}");
    }
    // Idempotent.
    let again = sync.ensure_notifications().await.unwrap();
    assert_eq!(again.before, again.after);
}
