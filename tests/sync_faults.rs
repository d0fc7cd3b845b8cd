//! Issue 9's eight scenarios, one test each, through the API against real
//! Redis servers: the interleavings just outside the first contract where the
//! first sync design lost an acknowledged write or brought a removal back
//! (guarantees 8–13 of docs/contract.md). Each one failed on that design.

use std::time::{Duration, Instant};

use github_sim::FixtureSponsorship;
use redis::Commands;
use serde_json::json;

use crate::common::sync::{
    complete_exclusions, exclude, members, remove, run_reconcile, until_local_has, until_remote_has,
};
use crate::common::{eventually, TestApp};

const ALICE: &str = "user:1001:mnodes";
const LONG: Duration = Duration::from_secs(10);

/// A sponsor with `ids` mirrored and her keys known complete locally.
async fn alice_with(app: &TestApp, ids: &[&str]) -> crate::common::app::SignedIn {
    let alice = app.sign_in("alice").await;
    for id in ids {
        exclude(app, &alice, id).await;
    }
    until_remote_has(app, ALICE, ids, Duration::from_secs(2)).await;
    assert_eq!(
        complete_exclusions(app, &alice, LONG).await.len(),
        ids.len()
    );
    alice
}

/// The key and its meta are gone, as after an eviction of both.
fn lose_locally(app: &TestApp, key: &str) {
    let _: () = redis::cmd("DEL")
        .arg(key)
        .arg(format!("sync:m:{{{key}}}"))
        .query(&mut app.local_conn())
        .unwrap();
}

#[tokio::test]
async fn scenario_1_a_write_to_an_evicted_set_while_the_remote_is_down_wipes_nothing() {
    // The local Redis of the prototype: an `allkeys-*` policy, so any key may go.
    let app = TestApp::builder()
        .with_remote()
        .local_redis_args(&["--maxmemory-policy", "allkeys-lru"])
        .start()
        .await;
    let alice = alice_with(&app, &["a", "b", "c"]).await;
    app.proxy.as_ref().unwrap().cut();
    // The set alone goes (an expiry here; an eviction is the same to the
    // service), its meta stays: the old design took that for a deletion.
    let mut local = app.local_conn();
    let _: () = local.pexpire(ALICE, 1).unwrap();
    eventually(LONG, "the set expired", || {
        let gone = !local.exists::<_, bool>(ALICE).unwrap();
        async move { gone.then_some(()) }
    })
    .await;
    // Accepted at once (guarantee 9 of docs/contract.md), though the set cannot be fetched back.
    remove(&app, &alice, "a").await;
    let body = exclude(&app, &alice, "d").await;
    assert_eq!(body["persistent"], true);
    let (status, body) = alice.get(&app, "/exclusions").await;
    assert_eq!((status, &body["complete"]), (200, &json!(false)), "{body}");
    assert_eq!(
        body["ids"],
        json!(["d"]),
        "what the local Redis holds, said to be incomplete"
    );

    app.proxy.as_ref().unwrap().restore();
    until_remote_has(&app, ALICE, &["b", "c", "d"], LONG).await;
    assert_eq!(
        complete_exclusions(&app, &alice, LONG).await,
        ["b", "c", "d"]
    );
    until_local_has(&app, ALICE, &["b", "c", "d"], LONG).await;
    // And a forced write to an evicted set cannot overwrite the remote at
    // the next reconciliation either.
    run_reconcile(&app);
    assert_eq!(members(&mut app.remote_conn(), ALICE), ["b", "c", "d"]);
}

#[tokio::test]
async fn scenario_2_an_eviction_while_the_remote_lags_keeps_removals_and_additions() {
    let app = TestApp::builder().with_remote().start().await;
    let alice = alice_with(&app, &["a", "b"]).await;
    // The remote lags: these two are acknowledged, not yet mirrored.
    app.proxy.as_ref().unwrap().cut();
    remove(&app, &alice, "a").await;
    exclude(&app, &alice, "c").await;
    lose_locally(&app, ALICE);
    app.proxy.as_ref().unwrap().restore();
    assert_eq!(complete_exclusions(&app, &alice, LONG).await, ["b", "c"]);
    until_remote_has(&app, ALICE, &["b", "c"], LONG).await;
}

#[tokio::test]
async fn scenario_3_a_stub_written_after_a_local_flush_never_replaces_the_profile() {
    let secret = "webhook-secret";
    let app = TestApp::builder()
        .with_remote()
        .var("GITHUB_WEBHOOK_SECRET", secret)
        .start()
        .await;
    let alice = alice_with(&app, &["a"]).await;
    let (_, me) = alice.get(&app, "/me").await;
    assert_eq!(me["user_login"], "alice", "{me}");
    let mut remote = app.remote_conn();
    eventually(LONG, "the profile mirrored", || {
        let login: Option<String> = remote.hget("user_details:1001", "user_login").unwrap();
        async move { (login.as_deref() == Some("alice")).then_some(()) }
    })
    .await;

    let _: () = redis::cmd("FLUSHALL").query(&mut app.local_conn()).unwrap();
    // A webhook carries only the status and the tier.
    let body = crate::webhooks::payload("tier_changed", "alice", 1001, 1500);
    let (status, _) = crate::webhooks::send_with_secret(&app, secret, &body).await;
    assert!(status < 300, "{status}");
    run_reconcile(&app);

    let profile: std::collections::HashMap<String, String> =
        remote.hgetall("user_details:1001").unwrap();
    assert_eq!(
        profile.get("user_login").map(String::as_str),
        Some("alice"),
        "{profile:?}"
    );
    assert!(profile.contains_key("avatar_url"), "{profile:?}");
    assert_eq!(
        profile.get("tier_monthly_usd").map(String::as_str),
        Some("15"),
        "the stub's field is updated"
    );
    let alice = app.sign_in("alice").await;
    let (_, me) = alice.get(&app, "/me").await;
    assert_eq!(me["user_login"], "alice");
    assert!(
        me["avatar_url"].as_str().is_some_and(|a| !a.is_empty()),
        "{me}"
    );
}

#[tokio::test]
async fn scenario_4_a_demotion_drops_no_acknowledged_change() {
    let app = TestApp::builder().with_remote().start().await;
    let alice = alice_with(&app, &["a", "b"]).await;
    app.proxy.as_ref().unwrap().cut();
    remove(&app, &alice, "a").await;
    assert_eq!(exclude(&app, &alice, "x").await["persistent"], true);
    // Demoted before the worker could mirror those two.
    app.sim.set_sponsorship("alice", "acme-org", None);
    let alice = app.sign_in("alice").await;
    assert_eq!(alice.body["sponsor"], false);
    // A former sponsor's removal persists too; her additions do not.
    remove(&app, &alice, "b").await;
    assert_eq!(exclude(&app, &alice, "y").await["persistent"], false);
    app.proxy.as_ref().unwrap().restore();
    until_remote_has(&app, ALICE, &["x"], LONG).await;

    // Back as a sponsor after her local set expired: exactly what she kept.
    let _: () = app.local_conn().del(ALICE).unwrap();
    app.sim
        .set_sponsorship("alice", "acme-org", Some(FixtureSponsorship::monthly(500)));
    let alice = app.sign_in("alice").await;
    assert_eq!(complete_exclusions(&app, &alice, LONG).await, ["x"]);
}

#[tokio::test]
async fn scenario_5_after_a_rewind_to_an_older_snapshot_new_changes_are_mirrored() {
    let mut app = TestApp::builder().with_remote().start().await;
    let alice = alice_with(&app, &["a"]).await;
    app.local.snapshot();
    remove(&app, &alice, "a").await;
    exclude(&app, &alice, "b").await;
    until_remote_has(&app, ALICE, &["b"], LONG).await;

    // Restored from the snapshot: the local Redis holds {a} and forgot the rest.
    app.local.rewind();
    assert_eq!(members(&mut app.local_conn(), ALICE), ["a"]);
    eventually(LONG, "the API back on the rewound Redis", || async {
        let (status, _) = alice.get(&app, "/exclusions").await;
        (status == 200).then_some(())
    })
    .await;
    exclude(&app, &alice, "c").await;
    until_remote_has(&app, ALICE, &["b", "c"], LONG).await;
    assert_eq!(
        complete_exclusions(&app, &alice, LONG).await,
        ["b", "c"],
        "a stays removed"
    );
    until_local_has(&app, ALICE, &["b", "c"], LONG).await;
}

#[tokio::test]
async fn scenario_6_a_remote_restarted_empty_is_repaired_within_10_seconds() {
    let mut app = TestApp::builder().with_remote().start().await;
    let alice = alice_with(&app, &["a", "b"]).await;
    alice.get(&app, "/me").await;
    let before = resyncs(&app).await;
    app.remote.as_mut().unwrap().restart();
    let started = Instant::now();
    until_remote_has(&app, ALICE, &["a", "b"], Duration::from_secs(10)).await;
    let mut remote = app.remote_conn();
    eventually(
        Duration::from_secs(10),
        "profile and sponsors set repaired",
        || {
            let sponsor: bool = remote.sismember("sponsors:acme-org", 1001).unwrap();
            let login: Option<String> = remote.hget("user_details:1001", "user_login").unwrap();
            async move { (sponsor && login.as_deref() == Some("alice")).then_some(()) }
        },
    )
    .await;
    eprintln!("remote repaired {:?} after its restart", started.elapsed());
    assert_eq!(resyncs(&app).await, before + 1, "counted once");
    eventually(LONG, "readyz: remote ok again", || async {
        let (_, body) = app.get("/readyz").await;
        (body["remote"] == "ok").then_some(())
    })
    .await;
}

async fn resyncs(app: &TestApp) -> u64 {
    let metrics = app.metrics().await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("sponsorgate_sync_resyncs_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no resync counter in {metrics}"))
}

#[tokio::test]
async fn scenario_7_one_large_set_holds_back_neither_other_keys_nor_the_local_redis() {
    let app = TestApp::builder()
        .with_remote()
        .var("REMOTE_TIMEOUT_MS", 20_000)
        .var("QUOTA_SPONSOR", 200_000)
        .start()
        .await;
    // A returning sponsor whose durable copy holds 100,000 ids of 256 bytes.
    let mut remote = app.remote_conn();
    let ids: Vec<String> = (0..100_000)
        .map(|i| format!("{i:08}{}", "x".repeat(248)))
        .collect();
    for chunk in ids.chunks(1000) {
        let _: () = remote.sadd(ALICE, chunk).unwrap();
    }
    app.local.watch_slow_commands(10_000);
    let alice = app.sign_in("alice").await;
    app.sim
        .set_sponsorship("bob", "acme-org", Some(FixtureSponsorship::monthly(500)));
    let bob = app.sign_in("bob").await;
    let reading = {
        let client = alice.client.clone();
        let url = app.at("/exclusions");
        tokio::spawn(async move {
            client
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        })
    };
    let written = Instant::now();
    exclude(&app, &bob, "small").await;
    until_remote_has(&app, "user:1002:mnodes", &["small"], Duration::from_secs(2)).await;
    eprintln!(
        "bob's change mirrored {:?} after its write, during alice's fetch-back",
        written.elapsed()
    );
    let body = reading.await.unwrap();
    assert_eq!(body["complete"], true);
    // Pages of 10,000 (the default): the first is full, and more remain.
    assert_eq!(body["ids"].as_array().unwrap().len(), 10_000);
    assert!(body["next"].is_string(), "{}", body["next"]);
    let members: usize = redis::Commands::scard(&mut app.local_conn(), "user:1001:mnodes").unwrap();
    assert_eq!(members, 100_000, "the whole set is back locally");
    let slow = app.local.slow_commands();
    assert!(
        slow.is_empty(),
        "commands over 10 ms on the local Redis: {slow:?}"
    );
}

#[tokio::test]
async fn scenario_8_a_del_by_another_program_while_no_worker_listens_is_mirrored() {
    let app = TestApp::builder()
        .with_remote()
        .without_worker()
        .start()
        .await;
    let alice = app.sign_in("alice").await;
    exclude(&app, &alice, "a").await;
    exclude(&app, &alice, "b").await;
    run_reconcile(&app);
    assert_eq!(members(&mut app.remote_conn(), ALICE), ["a", "b"]);
    assert_eq!(complete_exclusions(&app, &alice, LONG).await, ["a", "b"]);

    // No worker runs: nobody sees the event. The local Redis cannot evict
    // keys without a TTL (noeviction), so the absence is a deletion.
    let _: () = app.local_conn().del(ALICE).unwrap();
    run_reconcile(&app);
    assert!(
        members(&mut app.remote_conn(), ALICE).is_empty(),
        "the deletion is mirrored"
    );
    assert!(
        complete_exclusions(&app, &alice, LONG).await.is_empty(),
        "and never fetched back"
    );
}
