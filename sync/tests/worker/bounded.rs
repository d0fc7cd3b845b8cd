//! Bounded work (guarantees 13–14 of docs/contract.md): a 100,000-member set
//! of 256-byte ids is fetched back, read, compared and mirrored without one
//! command over 10 ms on the local Redis (as its SLOWLOG measures), another
//! key's change is mirrored meanwhile, and at rest the service's own `sync:`
//! keys for it take a sliver of the set's memory.

use std::time::{Duration, Instant};

use redis::Commands;
use sponsorgate_sync::{StatusUpdate, SyncConfig, SyncMetrics, SyncStore};

use crate::redis_server::RedisServer;

const BIG: usize = 100_000;

fn id(i: usize) -> String {
    format!("{i:08}{}", "x".repeat(248))
}

fn memory(conn: &mut redis::Connection, key: &str) -> u64 {
    redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .arg("SAMPLES")
        .arg(0)
        .query::<Option<u64>>(conn)
        .unwrap()
        .unwrap_or(0)
}

async fn poll<F: FnMut() -> bool>(limit: Duration, what: &str, mut check: F) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_set_never_blocks_the_local_redis_and_costs_little_at_rest() {
    let _alone = crate::MEASURING.lock().await;
    let local = RedisServer::start();
    let remote = RedisServer::start();
    let mut cfg = SyncConfig::new(local.url(), Some(remote.url()), "acme");
    cfg.remote_timeout = Duration::from_secs(20);
    cfg.settings.quota_sponsor = 2 * BIG as u64;
    let store = SyncStore::connect(cfg, SyncMetrics::new()).await.unwrap();
    let worker = {
        let store = store.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        (
            tokio::spawn(async move {
                store
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await
            }),
            stop,
        )
    };
    // The durable copy holds the big set; the local Redis has never seen it.
    let mut r = remote.conn();
    for chunk in (0..BIG).collect::<Vec<_>>().chunks(1000) {
        let ids: Vec<String> = chunk.iter().map(|i| id(*i)).collect();
        let _: () = r.sadd("user:1:mnodes", ids).unwrap();
    }
    store
        .set_sponsor(2, StatusUpdate::Sponsor, &[])
        .await
        .unwrap();
    let mut l = local.conn();
    local.watch_slow_commands(10_000);

    // A returning sponsor: their set is fetched back, while another
    // sponsor's change is mirrored at once.
    let started = Instant::now();
    store
        .set_sponsor(1, StatusUpdate::Sponsor, &[])
        .await
        .unwrap();
    let reader = {
        let store = store.clone();
        tokio::spawn(async move { store.exclusions(1).await.unwrap() })
    };
    store.add_exclusion(2, "small", None, None).await.unwrap();
    let lag = poll(
        Duration::from_secs(3),
        "the small key mirrored during the big fetch-back",
        || r.sismember("user:2:mnodes", "small").unwrap(),
    )
    .await;
    eprintln!("small key mirrored {lag:?} after its write, during a 100,000-member fetch-back");
    let read = reader.await.unwrap();
    eprintln!("fetch-back of {BIG} members: {:?}", started.elapsed());
    assert!(read.complete);
    assert_eq!(read.items.len(), BIG);

    // Writes, a read through SSCAN, a full comparison with the remote.
    store.add_exclusion(1, "new", None, None).await.unwrap();
    store.remove_exclusion(1, &id(7), None, None).await.unwrap();
    assert_eq!(store.exclusions(1).await.unwrap().items.len(), BIG);
    store.drain(Duration::from_secs(30)).await.unwrap();
    let report = store.reconcile().await.unwrap();
    assert!(report.checked >= 3, "{report}");
    poll(Duration::from_secs(10), "the change mirrored", || {
        r.sismember("user:1:mnodes", "new").unwrap()
            && !r.sismember::<_, _, bool>("user:1:mnodes", id(7)).unwrap()
    })
    .await;
    assert_eq!(r.scard::<_, usize>("user:1:mnodes").unwrap(), BIG);

    let slow = local.slow_commands();
    assert!(
        slow.is_empty(),
        "commands over 10 ms on the local Redis: {slow:?}"
    );

    // At rest: nothing pending, only the key's small meta hash.
    poll(Duration::from_secs(5), "nothing pending", || {
        !l.exists::<_, bool>("sync:p:{user:1:mnodes}").unwrap()
    })
    .await;
    let set = memory(&mut l, "user:1:mnodes");
    let own: u64 = [
        "sync:m:{user:1:mnodes}",
        "sync:p:{user:1:mnodes}",
        "sync:w:{user:1:mnodes}",
    ]
    .iter()
    .map(|k| memory(&mut l, k))
    .sum();
    eprintln!("memory at rest: set {set} bytes, the service's own sync keys for it {own} bytes");
    assert!(
        own * 4 <= set,
        "sync keys {own} B exceed 25% of the set's {set} B"
    );
    let _ = worker.1.send(());
    let _ = worker.0.await;
}
