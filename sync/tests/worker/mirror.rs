//! Guarantee 1 (mirror) and 6 (many workers).

use std::time::Duration;

use redis::Commands;

use crate::support::*;

/// (1) A burst of API writes, then a burst of direct writes by another client,
/// each on the remote within 1 s of its last write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_direct_writes_reach_the_remote_within_a_second() {
    let _serial = serial().await;
    let pair = Pair::start(false).await;
    let sync = pair.sync("w1").await;
    let _worker = run_ready(&sync).await;
    let mut api = pair.api_conn().await;
    let uids = [1, 2, 3];
    for uid in uids {
        sponsor_with(&sync, &mut api, uid, &["seed"]).await;
    }
    converged(&pair, &uids, Duration::from_secs(5)).await;

    for i in 0..300u64 {
        let uid = uids[(i % 3) as usize];
        add(&sync, &mut api, uid, &format!("n{i}")).await;
        if i % 4 == 3 {
            remove(&sync, &mut api, uid, &format!("n{}", i - 3)).await;
        }
    }
    let took = converged(&pair, &uids, Duration::from_secs(5)).await;
    eprintln!("API burst on the remote {took:?} after its last write");
    assert!(
        took <= Duration::from_secs(1),
        "API burst mirrored after {took:?}"
    );

    let mut other = pair.local.conn();
    for i in 0..100 {
        let _: () = other.sadd("user:1:mnodes", format!("direct{i}")).unwrap();
    }
    let _: () = other
        .srem("user:1:mnodes", &["n0", "n6", "seed"][..])
        .unwrap();
    let _: () = other.sadd("user:2:mnodes", &["x", "y", "z"][..]).unwrap();
    let _: () = other
        .hset("user_details:3", "name", "Changed Elsewhere")
        .unwrap();
    let _: () = other.del("user:3:mnodes").unwrap();
    let took = converged(&pair, &uids, Duration::from_secs(5)).await;
    eprintln!("direct burst on the remote {took:?} after its last write");
    assert!(
        took <= Duration::from_secs(1),
        "direct burst mirrored after {took:?}"
    );
    let mut remote = pair.remote.conn();
    assert!(members(&mut remote, "user:1:mnodes").contains("direct99"));
    assert!(!members(&mut remote, "user:1:mnodes").contains("seed"));
    let name: String = remote.hget("user_details:3", "name").unwrap();
    assert_eq!(name, "Changed Elsewhere");
    assert!(!remote.exists::<_, bool>("user:3:mnodes").unwrap());
}

/// (5) Three workers at once (distinct consumers) end with local == remote,
/// one notification leader, and nothing left pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_converge() {
    let _serial = serial().await;
    let pair = Pair::start(false).await;
    let workers = [
        pair.sync("a").await,
        pair.sync("b").await,
        pair.sync("c").await,
    ];
    let running: Vec<_> = workers.iter().map(run).collect();
    eventually(
        Duration::from_secs(5),
        "one leader, all subscribed",
        || async {
            workers.iter().filter(|w| w.status().notify_leader).count() == 1
                && workers.iter().all(|w| w.status().subscribed)
        },
    )
    .await;
    let mut api = pair.api_conn().await;
    let uids = [1, 2, 3, 4, 5];
    for (i, uid) in uids.iter().enumerate() {
        sponsor_with(&workers[i % 3], &mut api, *uid, &["seed"]).await;
    }
    let mut other = pair.local.conn();
    for i in 0..400u64 {
        let uid = uids[(i % 5) as usize];
        let sync = &workers[(i % 3) as usize];
        add(sync, &mut api, uid, &format!("n{i}")).await;
        if i % 3 == 0 {
            remove(sync, &mut api, uid, &format!("n{}", i / 2)).await;
        }
        if i % 50 == 0 {
            let _: () = other
                .sadd(format!("user:{uid}:mnodes"), format!("direct{i}"))
                .unwrap();
        }
    }
    converged(&pair, &uids, Duration::from_secs(5)).await;
    let mut local = pair.local.conn();
    eventually(Duration::from_secs(5), "journal empty", || async {
        backlog(&mut pair.local.conn()) == 0
    })
    .await;
    let pending: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg("sync:journal")
        .arg("mirror")
        .query(&mut local)
        .unwrap();
    assert_eq!(pending.first(), Some(&redis::Value::Int(0)), "{pending:?}");
    assert_eq!(
        workers.iter().filter(|w| w.status().notify_leader).count(),
        1
    );
    for r in running {
        r.stop().await;
    }
    assert!(differences(&mut local, &mut pair.remote.conn(), &uids).is_empty());
}
