//! Single steps of `sync/lua/` whose guard the simulation reaches only by
//! chance: a fetch-back never swaps in a staged copy that lost items, nor
//! one whose lease ran out.

use std::time::Duration;

use redis::Commands;
use sponsorgate_sync::tiers::{Condition, Tiers};
use sponsorgate_sync::{RedisTiers, SponsorKey, WriteSettings};

use crate::redis_server::RedisServer;

const SETTINGS: WriteSettings = WriteSettings {
    quota_sponsor: 1000,
    quota_free: 1000,
    quota_tokens: 20,
    activity_max: 1000,
    ttl_secs: 3600,
};

fn items(ids: &[&str]) -> Vec<(Vec<u8>, Vec<u8>)> {
    ids.iter()
        .map(|i| (i.as_bytes().to_vec(), Vec::new()))
        .collect()
}

#[tokio::test]
async fn a_fetch_back_refuses_a_staged_copy_that_lost_items() {
    let local = RedisServer::start();
    let remote = RedisServer::start();
    let tiers = RedisTiers::connect(
        "acme",
        &local.url(),
        Some(&remote.url()),
        SETTINGS,
        true,
        10_000,
    )
    .unwrap();
    let key = SponsorKey::Sponsors;
    assert_eq!(
        tiers.read(&key, 10, None).await.unwrap().condition,
        Condition::Lost
    );
    assert!(tiers.begin_fetch(&key, "t1").await.unwrap().is_some());
    assert!(tiers
        .stage(&key, "t1", &items(&["1", "2", "3"]))
        .await
        .unwrap());
    // The staging key is evicted mid-fetch; later chunks recreate it.
    let _: () = local.conn().del("sync:f:{sponsors:acme}:t1").unwrap();
    assert!(tiers.stage(&key, "t1", &items(&["4"])).await.unwrap());
    assert!(
        !tiers.finish_fetch(&key, "t1", 0).await.unwrap(),
        "a partial copy is refused"
    );
    assert_eq!(
        tiers.read(&key, 10, None).await.unwrap().condition,
        Condition::Lost
    );
    // Started over, whole: accepted.
    assert!(tiers.begin_fetch(&key, "t2").await.unwrap().is_some());
    assert!(tiers
        .stage(&key, "t2", &items(&["1", "2", "3", "4"]))
        .await
        .unwrap());
    assert!(tiers.finish_fetch(&key, "t2", 0).await.unwrap());
    let read = tiers.read(&key, 10, None).await.unwrap();
    assert_eq!((read.condition, read.len), (Condition::Complete, 4));
}

#[tokio::test]
async fn a_fetch_back_whose_lease_ran_out_starts_over() {
    let local = RedisServer::start();
    let remote = RedisServer::start();
    let tiers = RedisTiers::connect(
        "acme",
        &local.url(),
        Some(&remote.url()),
        SETTINGS,
        true,
        50,
    )
    .unwrap();
    let key = SponsorKey::Sponsors;
    assert!(tiers.begin_fetch(&key, "t1").await.unwrap().is_some());
    assert!(tiers.stage(&key, "t1", &items(&["1"])).await.unwrap());
    // Wait out the 50 ms lease: writes made now would not reach the list.
    let mut conn = local.conn();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let f: String = conn.hget("sync:m:{sponsors:acme}", "f").unwrap();
        let until: u64 = f.rsplit(':').next().unwrap().parse().unwrap();
        let (secs, micros): (u64, u64) = redis::cmd("TIME").query(&mut conn).unwrap();
        if secs * 1000 + micros / 1000 > until {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lease never ran out"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        !tiers.stage(&key, "t1", &items(&["2"])).await.unwrap(),
        "no renewal after it ran out"
    );
    assert!(!tiers.finish_fetch(&key, "t1", 0).await.unwrap());
    assert_eq!(
        tiers.read(&key, 10, None).await.unwrap().condition,
        Condition::Lost
    );
}
