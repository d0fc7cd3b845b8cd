//! What only a Redis Cluster has: keys on several primaries, a failover, a
//! slot migration, one primary lost or flushed while the others serve.
//! (The sync guarantees themselves run in both modes in `sync_api.rs`.)

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use github_sim::FixtureSponsorship;
use redis::Commands;
use serde_json::json;

use crate::common::app::{Mode, SignedIn, TestAppBuilder};
use crate::common::sync::{exclude, members, until_remote_has};
use crate::common::{eventually, TestApp};

/// Users whose `user:{id}:mnodes` and `user_details:{id}` keys land on every
/// primary of a three-primary cluster (slots are fixed by the key names).
const SPONSORS: [&str; 3] = ["alice", "carol", "dave"];

/// An app on two three-primary clusters, sync on.
fn clustered() -> TestAppBuilder {
    TestApp::builder().mode(Mode::Cluster).with_remote()
}

async fn sponsors_signed_in(app: &TestApp) -> Vec<SignedIn> {
    let mut users = Vec::new();
    for login in SPONSORS {
        app.sim
            .set_sponsorship(login, "acme-org", Some(FixtureSponsorship::monthly(500)));
        let user = app.sign_in(login).await;
        assert_eq!(user.body["sponsor"], true, "{login}");
        users.push(user);
    }
    users
}

#[tokio::test]
async fn other_programs_writes_on_every_primary_are_mirrored_within_a_second() {
    let app = clustered().start().await;
    let users = sponsors_signed_in(&app).await;
    let cluster = app.local.cluster();
    let keys: Vec<(u64, String, String)> = users
        .iter()
        .map(|u| {
            (
                u.id,
                format!("user:{}:mnodes", u.id),
                format!("user_details:{}", u.id),
            )
        })
        .collect();
    let nodes: BTreeSet<usize> = keys
        .iter()
        .flat_map(|(_, set, hash)| [cluster.index_of(set), cluster.index_of(hash)])
        .collect();
    assert_eq!(nodes.len(), 3, "the users' keys are on every primary");

    let mut other_program = app.local_conn();
    let mut remote = app.remote_conn();
    for (_, set, hash) in &keys {
        let _: () = other_program.sadd(set, "by-another-program").unwrap();
        let _: () = other_program
            .hset(hash, "name", "Renamed Elsewhere")
            .unwrap();
        until_remote_has(&app, set, &["by-another-program"], Duration::from_secs(1)).await;
        eventually(
            Duration::from_secs(1),
            &format!("remote {hash} renamed"),
            || {
                let name: Option<String> = remote.hget(hash, "name").unwrap();
                async move { (name.as_deref() == Some("Renamed Elsewhere")).then_some(()) }
            },
        )
        .await;
    }
    // And a removal by another program on any primary is mirrored too.
    for (_, set, _) in &keys {
        let _: () = other_program.srem(set, "by-another-program").unwrap();
        until_remote_has(&app, set, &[], Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn after_a_manual_failover_writes_on_the_new_primary_are_still_mirrored() {
    let app = clustered().local_replicas(1).start().await;
    let alice = app.sign_in("alice").await;
    exclude(&app, &alice, "before").await;
    let key = "user:1001:mnodes";
    until_remote_has(&app, key, &["before"], Duration::from_secs(2)).await;

    let cluster = app.local.cluster();
    let old = cluster.index_of(key);
    let replica = cluster.replica_of(old);
    let _: () = redis::cmd("CLUSTER")
        .arg("FAILOVER")
        .query(&mut cluster.nodes[replica].conn())
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "the replica serves the key",
        || async { (cluster.index_of(key) == replica).then_some(()) },
    )
    .await;
    cluster.wait_whole(Duration::from_secs(10));

    // A promoted replica may lag its primary, so its keys count as lost
    // and are fetched back once the worker sees the new topology
    // (docs/cluster.md): a read is complete again, and from then on other
    // programs' writes on the new primary are mirrored as before.
    let body = eventually(
        Duration::from_secs(3),
        "a complete read after the failover",
        || async {
            let (status, body) = alice.get(&app, "/exclusions").await;
            (status == 200 && body["complete"] == true).then_some(body)
        },
    )
    .await;
    assert_eq!(body["ids"], json!(["before"]));
    let mut other_program = app.local_conn();
    let _: () = other_program.sadd(key, "after-failover").unwrap();
    until_remote_has(
        &app,
        key,
        &["after-failover", "before"],
        Duration::from_secs(1),
    )
    .await;
    // The API goes on reading and writing the key on its new primary.
    exclude(&app, &alice, "api-after").await;
    let (status, body) = alice.get(&app, "/exclusions").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["ids"],
        json!(["after-failover", "api-after", "before"])
    );
    assert_eq!(body["complete"], true);
}

#[tokio::test]
async fn a_flushed_primary_loses_only_its_slots_and_they_are_fetched_back() {
    let app = clustered().start().await;
    let users = sponsors_signed_in(&app).await;
    for user in &users {
        for i in 0..5 {
            exclude(&app, user, &format!("{}-{i}", user.id)).await;
        }
    }
    let expected =
        |user: &SignedIn| -> Vec<String> { (0..5).map(|i| format!("{}-{i}", user.id)).collect() };
    for user in &users {
        let ids = expected(user);
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        until_remote_has(
            &app,
            &format!("user:{}:mnodes", user.id),
            &ids,
            Duration::from_secs(2),
        )
        .await;
    }

    let cluster = app.local.cluster();
    let flushed = cluster.index_of("user:1001:mnodes");
    let _: () = redis::cmd("FLUSHALL")
        .query(&mut cluster.nodes[flushed].conn())
        .unwrap();
    let mut local = app.local_conn();
    for user in &users {
        let key = format!("user:{}:mnodes", user.id);
        if cluster.index_of(&key) != flushed {
            assert_eq!(
                members(&mut local, &key),
                expected(user),
                "{key} on another primary"
            );
        }
    }
    // Every set reads complete again (sessions on the flushed primary are
    // gone too: those users sign in again).
    for (user, login) in users.iter().zip(SPONSORS) {
        let user_now = app.sign_in(login).await;
        let body = eventually(Duration::from_secs(3), "a complete read", || async {
            let (status, body) = user_now.get(&app, "/exclusions").await;
            (status == 200 && body["complete"] == true).then_some(body)
        })
        .await;
        assert_eq!(body["ids"], json!(expected(user)), "{login}");
        assert_eq!(
            members(&mut local, &format!("user:{}:mnodes", user.id)),
            expected(user)
        );
    }
}

/// Waits until `/readyz` reports `want`'s tiers; the status it answered.
async fn ready(app: &TestApp, want: serde_json::Value) -> u16 {
    eventually(Duration::from_secs(5), &format!("readyz {want}"), || {
        let want = want.clone();
        async move {
            let (status, body) = app.get("/readyz").await;
            (body["local"] == want["local"] && body["remote"] == want["remote"]).then_some(status)
        }
    })
    .await
}

#[tokio::test]
async fn readyz_reports_a_tier_down_while_one_of_its_primaries_is() {
    let mut app = clustered().start().await;
    assert_eq!(
        ready(&app, json!({"local": "ok", "remote": "ok"})).await,
        200
    );

    app.local.cluster_mut().nodes[1].stop();
    assert_eq!(
        ready(&app, json!({"local": "down", "remote": "ok"})).await,
        503
    );
    app.local.cluster_mut().nodes[1].restart();
    app.local.cluster().wait_whole(Duration::from_secs(20));
    assert_eq!(
        ready(&app, json!({"local": "ok", "remote": "ok"})).await,
        200
    );

    app.remote.as_mut().unwrap().cluster_mut().nodes[2].stop();
    assert_eq!(
        ready(&app, json!({"local": "ok", "remote": "down"})).await,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_migration_loses_no_acknowledged_write() {
    let app = clustered().start().await;
    let alice = app.sign_in("alice").await;
    exclude(&app, &alice, "before").await;
    let key = "user:1001:mnodes";

    // Writes run on their own while the key's slot moves; `answered`
    // counts their answers, so the migration can wait for writes to land
    // between its steps.
    let (client, url) = (alice.client.clone(), app.at("/exclude"));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let answered = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&answered);
    let writer = tokio::spawn(async move {
        let mut acknowledged = vec!["before".to_owned()];
        let mut unavailable = 0;
        for i in 0.. {
            if *stop_rx.borrow() {
                break;
            }
            let id = format!("during-{i}");
            let response = client
                .post(&url)
                .json(&json!({ "id": id }))
                .send()
                .await
                .unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            match response.status().as_u16() {
                200 => acknowledged.push(id),
                503 => unavailable += 1,
                other => panic!("write {id}: {other}"),
            }
        }
        (acknowledged, unavailable)
    });
    let cluster = app.local.cluster();
    let to = (cluster.index_of(key) + 1) % 3;
    // Between two steps of the migration, at least two more writes answered.
    let progress = || {
        let from = answered.load(Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(5);
        while answered.load(Ordering::SeqCst) < from + 2 {
            assert!(Instant::now() < deadline, "the writer stalled");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    tokio::task::block_in_place(|| cluster.migrate_slot_of(key, to, progress));
    // A few more writes on the slot's new home.
    let after = answered.load(Ordering::SeqCst);
    eventually(Duration::from_secs(5), "writes after the migration", || {
        let n = answered.load(Ordering::SeqCst);
        async move { (n >= after + 10).then_some(()) }
    })
    .await;
    stop_tx.send(true).unwrap();
    let (mut acknowledged, unavailable) = writer.await.unwrap();
    assert_eq!(cluster.index_of(key), to, "the slot moved");
    eprintln!(
        "{} writes acknowledged, {unavailable} answered 503",
        acknowledged.len()
    );
    acknowledged.sort();
    assert!(
        acknowledged.len() > 10,
        "{} writes acknowledged ({unavailable} answered 503)",
        acknowledged.len()
    );
    assert_eq!(
        members(&mut app.local_conn(), key),
        acknowledged,
        "local set"
    );
    let expected: Vec<&str> = acknowledged.iter().map(String::as_str).collect();
    until_remote_has(&app, key, &expected, Duration::from_secs(5)).await;
}
