//! The process-level chaos run: the real `sponsorgate`
//! binary as the sync worker, real redis-servers, the TCP proxy. Seeded
//! random API and raw-client adds, removes and reads, with remote cuts,
//! SIGKILLs and restarts of the `sponsorgate sync` process, remote restarts
//! (empty), and local flushes once the backlog drained. Every API read that
//! says `complete` and every raw read of a complete key agrees with the
//! model; at the end local = remote = the model.
//!
//! `CHAOS_SEED` replays a seed, `CHAOS_SECS` sets the length (default 45 s).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Commands;

use crate::common::sync::{members, SyncProcess};
use crate::common::TestApp;

const KEY: &str = "user:1001:mnodes";
const IDS: [&str; 8] = ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"];

fn sorted(model: &BTreeSet<String>) -> Vec<String> {
    model.iter().cloned().collect()
}

#[tokio::test]
async fn chaos_run_with_real_processes_agrees_with_the_model() {
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let secs: u64 = std::env::var("CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(45);
    eprintln!("chaos seed {seed} for {secs} s (replay: CHAOS_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut app = TestApp::builder()
        .with_remote()
        .without_worker()
        .var("REMOTE_TIMEOUT_MS", 100)
        .start()
        .await;
    let mut alice = app.sign_in("alice").await;
    let mut worker = Some(SyncProcess::spawn(&app, &[]));
    let mut model: BTreeSet<String> = BTreeSet::new();
    let mut cut = false;
    // The local key is known complete (a complete read since the last flush).
    let mut complete = false;
    let mut log: Vec<String> = Vec::new();
    let mut counts = std::collections::BTreeMap::<&str, (usize, Duration)>::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        let id = IDS[rng.gen_range(0..IDS.len())];
        let roll = rng.gen_range(0..100);
        let started = Instant::now();
        let what = match roll {
            0..=34 => {
                if rng.gen_bool(0.6) {
                    let (status, _) = alice.exclude(&app, id).await;
                    assert_eq!(status, 200, "seed {seed}");
                    model.insert(id.to_string());
                    "api add"
                } else {
                    assert_eq!(alice.remove(&app, id).await, 204, "seed {seed}");
                    model.remove(id);
                    "api remove"
                }
            }
            35..=44 if complete => {
                // Another program writes the local Redis directly.
                let mut local = app.local_conn();
                if rng.gen_bool(0.5) {
                    let _: () = local.sadd(KEY, id).unwrap();
                    model.insert(id.to_string());
                    "raw add"
                } else {
                    let _: () = local.srem(KEY, id).unwrap();
                    model.remove(id);
                    "raw remove"
                }
            }
            45..=69 => {
                let (status, body) = alice.get(&app, "/exclusions").await;
                assert_eq!(status, 200, "seed {seed}: {body}");
                if body["complete"] == true {
                    let ids: Vec<String> = serde_json::from_value(body["ids"].clone()).unwrap();
                    assert_eq!(
                        ids,
                        sorted(&model),
                        "seed {seed}: an API read disagrees\n{}",
                        log.join("\n")
                    );
                    complete = true;
                    "api read (complete)"
                } else {
                    "api read (incomplete)"
                }
            }
            70..=74 if complete => {
                assert_eq!(
                    members(&mut app.local_conn(), KEY),
                    sorted(&model),
                    "seed {seed}: a raw read disagrees\n{}",
                    log.join("\n")
                );
                "raw read"
            }
            75..=80 => {
                cut = !cut;
                let proxy = app.proxy.as_ref().unwrap();
                if cut {
                    proxy.cut()
                } else {
                    proxy.restore()
                }
                if cut {
                    "remote cut"
                } else {
                    "remote back"
                }
            }
            81..=86 => match worker.take() {
                Some(mut w) => {
                    w.sigkill();
                    "sync process SIGKILLed"
                }
                None => {
                    worker = Some(SyncProcess::spawn(&app, &[]));
                    "sync process started"
                }
            },
            87..=89 if complete => {
                app.remote.as_mut().unwrap().restart();
                "remote restarted empty"
            }
            90..=93 if !cut && worker.is_some() => {
                // A local loss once everything is mirrored: nothing to lose.
                let drained = Instant::now() + Duration::from_secs(15);
                let mut remote = app.remote_conn();
                while members(&mut remote, KEY) != sorted(&model) {
                    assert!(
                        Instant::now() < drained,
                        "seed {seed}: backlog did not drain\n{}",
                        log.join("\n")
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let pending: bool = app
                    .local_conn()
                    .exists("sync:p:{user:1001:mnodes}")
                    .unwrap();
                if pending {
                    "flush skipped (changes pending)"
                } else {
                    let _: () = redis::cmd("FLUSHALL").query(&mut app.local_conn()).unwrap();
                    alice = app.sign_in("alice").await;
                    complete = false;
                    "local flushed"
                }
            }
            _ => "idle",
        };
        let entry = counts.entry(what).or_default();
        entry.0 += 1;
        entry.1 += started.elapsed();
        log.push(what.to_string());
        if log.len() > 60 {
            log.remove(0);
        }
    }
    app.proxy.as_ref().unwrap().restore();
    if worker.is_none() {
        worker = Some(SyncProcess::spawn(&app, &[]));
    }
    let settle = Instant::now() + Duration::from_secs(20);
    let mut remote = app.remote_conn();
    loop {
        let (_, body) = alice.get(&app, "/exclusions").await;
        let local = members(&mut app.local_conn(), KEY);
        let far = members(&mut remote, KEY);
        if body["complete"] == true && local == sorted(&model) && far == sorted(&model) {
            break;
        }
        assert!(
            Instant::now() < settle,
            "seed {seed}: did not settle: model {model:?} local {local:?} remote {far:?} read {body}\n{}",
            log.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("chaos seed {seed}: {counts:?}");
    drop(worker);
}
