//! Helpers of the sync tests: set contents on either side, API writes that
//! must succeed, and polls for the remote to catch up.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use redis::Commands;

use super::app::{SignedIn, TestApp};
use super::eventually;

/// The members of a set, sorted.
pub fn members(conn: &mut impl redis::ConnectionLike, key: &str) -> Vec<String> {
    let mut m: Vec<String> = conn.smembers(key).unwrap();
    m.sort();
    m
}

/// Excludes `id` as `user`, asserting success; returns the answer's body.
pub async fn exclude(app: &TestApp, user: &SignedIn, id: &str) -> serde_json::Value {
    let (status, body) = user.exclude(app, id).await;
    assert_eq!(status, 200, "exclude {id}: {body}");
    body
}

/// Removes `id` as `user`, asserting success.
pub async fn remove(app: &TestApp, user: &SignedIn, id: &str) {
    assert_eq!(user.remove(app, id).await, 204, "remove {id}");
}

/// Waits until the remote set `key` holds exactly `expected`.
pub async fn until_remote_has(app: &TestApp, key: &str, expected: &[&str], limit: Duration) {
    let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected.sort();
    let mut remote = app.remote_conn();
    eventually(limit, &format!("remote {key} == {expected:?}"), || {
        let ok = members(&mut remote, key) == expected;
        async move { ok.then_some(()) }
    })
    .await;
}

/// Waits until the local set `key` holds exactly `expected`.
pub async fn until_local_has(app: &TestApp, key: &str, expected: &[&str], limit: Duration) {
    let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected.sort();
    let mut local = app.local_conn();
    eventually(limit, &format!("local {key} == {expected:?}"), || {
        let ok = members(&mut local, key) == expected;
        async move { ok.then_some(()) }
    })
    .await;
}

/// `GET /exclusions` once it answers `complete: true`; returns the ids.
pub async fn complete_exclusions(app: &TestApp, user: &SignedIn, limit: Duration) -> Vec<String> {
    eventually(limit, "a complete read of /exclusions", || async {
        let (status, body) = user.get(app, "/exclusions").await;
        (status == 200 && body["complete"] == true).then(|| {
            body["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        })
    })
    .await
}

/// A `sponsorgate sync` process of the test app (the worker alone).
pub struct SyncProcess(Child);

impl SyncProcess {
    pub fn spawn(app: &TestApp, args: &[&str]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_sponsorgate"))
            .arg("sync")
            .args(args)
            .envs(app.process_env())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sponsorgate sync");
        Self(child)
    }

    pub fn sigkill(&mut self) {
        // std's Child::kill is SIGKILL on Unix: no chance to clean up.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for SyncProcess {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// Runs `sponsorgate sync --reconcile` against the app's Redis pair, asserting success.
pub fn run_reconcile(app: &TestApp) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_sponsorgate"))
        .args(["sync", "--reconcile"])
        .envs(app.process_env())
        .output()
        .expect("run sponsorgate sync --reconcile");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
