//! `POST /webhooks/github`: signed GitHub Sponsors events against a real
//! sponsorgate, real Redis and the fake GitHub. Payloads are GitHub's example
//! payloads (tests/fixtures/webhooks/) with the accounts changed.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};
use sponsorgate::sponsorship;

use crate::common::app::status_json;
use crate::common::app::SignedIn;
use crate::common::sync::exclude;
use crate::common::{eventually, TestApp};

const SECRET: &str = "It's a Secret to Everybody";
const CREATED: &str = include_str!("fixtures/webhooks/sponsorship.created.json");
const PENDING_TIER_CHANGE: &str =
    include_str!("fixtures/webhooks/sponsorship.pending_tier_change.json");

/// GitHub's example payload for `action`, for `login` (`id`) sponsoring
/// acme-org (an organization) at `cents` a month. Each call is a distinct
/// event, as GitHub's are (a new sponsorship has its own `created_at`): an
/// identical body is a replay, which the service does not apply twice.
pub fn payload(action: &str, login: &str, id: u64, cents: u64) -> Value {
    static EVENTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = EVENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let example = if action == "pending_tier_change" {
        PENDING_TIER_CHANGE
    } else {
        CREATED
    };
    let mut v: Value = serde_json::from_str(example).unwrap();
    v["action"] = json!(action);
    let s = &mut v["sponsorship"];
    s["sponsorable"]["login"] = json!("acme-org");
    s["sponsorable"]["id"] = json!(9001);
    s["sponsorable"]["type"] = json!("Organization");
    s["sponsor"]["login"] = json!(login);
    s["sponsor"]["id"] = json!(id);
    s["tier"]["monthly_price_in_cents"] = json!(cents);
    s["tier"]["monthly_price_in_dollars"] = json!(cents / 100);
    s["tier"]["name"] = json!(format!("${} a month", cents / 100));
    s["created_at"] = json!(format!(
        "2026-01-01T00:{:02}:{:02}+00:00",
        n / 60 % 60,
        n % 60
    ));
    s["node_id"] = json!(format!("S_test{n}"));
    v["sender"] = s["sponsor"].clone();
    v
}

/// `v` with `effective_date` `offset_secs` from now (RFC 3339, +00:00 like GitHub).
pub fn effective_in(mut v: Value, offset_secs: i64) -> Value {
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(offset_secs);
    v["effective_date"] = json!(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    ));
    v
}

fn fresh_delivery() -> String {
    format!("delivery-{}", hex::encode(rand::random::<[u8; 8]>()))
}

/// Sends `body` as a `sponsorship` event with a fresh delivery id, signed.
pub async fn send(app: &TestApp, body: &Value) -> (u16, Value) {
    send_as(app, "sponsorship", &fresh_delivery(), body).await
}

pub async fn send_as(app: &TestApp, event: &str, delivery: &str, body: &Value) -> (u16, Value) {
    send_signed(app, SECRET, event, delivery, body).await
}

/// Sends `body` signed with `secret` (an app configured with another secret).
pub async fn send_with_secret(app: &TestApp, secret: &str, body: &Value) -> (u16, Value) {
    send_signed(app, secret, "sponsorship", &fresh_delivery(), body).await
}

async fn send_signed(
    app: &TestApp,
    secret: &str,
    event: &str,
    delivery: &str,
    body: &Value,
) -> (u16, Value) {
    let raw = serde_json::to_vec(body).unwrap();
    let response = reqwest::Client::new()
        .post(app.at("/webhooks/github"))
        .header(CONTENT_TYPE, "application/json")
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", delivery)
        .header(
            "X-Hub-Signature-256",
            sponsorship::sign(secret.as_bytes(), &raw),
        )
        .header("User-Agent", "GitHub-Hookshot/test")
        .body(raw)
        .send()
        .await
        .unwrap();
    status_json(response).await
}

pub fn sponsors(app: &TestApp) -> Vec<u64> {
    let mut ids: Vec<u64> = redis::cmd("SMEMBERS")
        .arg(format!("sponsors:{}", app.config.sponsorable))
        .query(&mut app.local_conn())
        .unwrap();
    ids.sort_unstable();
    ids
}

fn details(app: &TestApp, id: u64) -> HashMap<String, String> {
    redis::cmd("HGETALL")
        .arg(format!("user_details:{id}"))
        .query(&mut app.local_conn())
        .unwrap()
}

fn ttl(app: &TestApp, key: &str) -> i64 {
    redis::cmd("TTL")
        .arg(key)
        .query(&mut app.local_conn())
        .unwrap()
}

pub async fn me(app: &TestApp, user: &SignedIn) -> Value {
    let (status, body) = user.get(app, "/me").await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn webhook_app(extra: &[(&str, &str)]) -> TestApp {
    let mut builder = TestApp::builder().var("GITHUB_WEBHOOK_SECRET", SECRET);
    for (k, v) in extra {
        builder = builder.var(k, v);
    }
    builder.start().await
}

/// A separate handle on the app's state, for the schedule's functions.
async fn state_of(app: &TestApp) -> sponsorgate::state::AppState {
    sponsorgate::app::build(app.config.clone())
        .await
        .expect("build")
        .state
}

#[tokio::test]
async fn unset_secret_is_404() {
    let app = TestApp::spawn().await;
    let (status, body) = send(&app, &payload("created", "bob", 1002, 1000)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    assert!(sponsors(&app).is_empty());
}

#[tokio::test]
async fn ping_is_200_and_other_events_202() {
    let app = webhook_app(&[]).await;
    let ping = json!({"zen": "Keep it logically awesome.", "hook_id": 1});
    let (status, body) = send_as(&app, "ping", "d-ping", &ping).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("pong")),
        "{body}"
    );
    let (status, body) = send_as(
        &app,
        "push",
        "d-push",
        &payload("created", "bob", 1002, 1000),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("ignored")),
        "{body}"
    );
    assert!(
        sponsors(&app).is_empty(),
        "a non-sponsorship event changes nothing"
    );
}

#[tokio::test]
async fn missing_wrong_or_sha1_signatures_are_401_and_change_nothing() {
    let app = webhook_app(&[]).await;
    let raw = serde_json::to_vec(&payload("created", "bob", 1002, 1000)).unwrap();
    let post = || {
        reqwest::Client::new()
            .post(app.at("/webhooks/github"))
            .header(CONTENT_TYPE, "application/json")
            .header("X-GitHub-Event", "sponsorship")
            .header("X-GitHub-Delivery", fresh_delivery())
            .body(raw.clone())
    };
    let good = sponsorship::sign(SECRET.as_bytes(), &raw);
    let cases = [
        ("missing", post()),
        (
            "other secret",
            post().header(
                "X-Hub-Signature-256",
                sponsorship::sign(b"not the secret", &raw),
            ),
        ),
        (
            "other body",
            post().header(
                "X-Hub-Signature-256",
                sponsorship::sign(SECRET.as_bytes(), b"{}"),
            ),
        ),
        (
            "bare hex",
            post().header("X-Hub-Signature-256", good.trim_start_matches("sha256=")),
        ),
        (
            "truncated",
            post().header("X-Hub-Signature-256", &good[..good.len() - 2]),
        ),
        // GitHub's legacy SHA-1 header alone is never accepted.
        (
            "sha1 only",
            post().header(
                "X-Hub-Signature",
                "sha1=2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
            ),
        ),
    ];
    for (what, request) in cases {
        let (status, body) = status_json(request.send().await.unwrap()).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{what}: {body}"
        );
    }
    assert!(sponsors(&app).is_empty(), "nothing changed");
    assert!(details(&app, 1002).is_empty());
    // The same request correctly signed is applied.
    let (status, body) = status_json(
        post()
            .header("X-Hub-Signature-256", good)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(sponsors(&app), vec![1002]);
    // Over 16 KiB: 413 whatever the signature.
    let big = vec![b' '; 17 * 1024];
    let response = post()
        .header(
            "X-Hub-Signature-256",
            sponsorship::sign(SECRET.as_bytes(), &big),
        )
        .body(big);
    assert_eq!(response.send().await.unwrap().status(), 413);
}

#[tokio::test]
async fn created_promotes_and_the_session_sees_it_on_the_next_request() {
    let app = webhook_app(&[]).await;
    let bob = app.sign_in("bob").await;
    exclude(&app, &bob, "MDQ6VXNlcjE=").await;
    assert_eq!(me(&app, &bob).await["sponsor"], false);
    assert!(
        ttl(&app, "user:1002:mnodes") > 0,
        "non-sponsor's set expires"
    );

    let (status, body) = send(&app, &payload("created", "bob", 1002, 1000)).await;
    assert_eq!(status, 204, "{body}");
    let now = me(&app, &bob).await;
    assert_eq!(
        (now["sponsor"].clone(), now["tier_monthly_usd"].clone()),
        (json!(true), json!(10))
    );
    assert_eq!(
        ttl(&app, "user:1002:mnodes"),
        -1,
        "promotion removes the TTL"
    );
    let d = details(&app, 1002);
    assert_eq!(
        (d["sponsor"].as_str(), d["tier_monthly_usd"].as_str()),
        ("1", "10")
    );
    let (_, list) = bob.get(&app, "/exclusions").await;
    assert_eq!(
        list,
        json!({"ids": ["MDQ6VXNlcjE="], "persistent": true, "complete": true, "next": null})
    );
}

#[tokio::test]
async fn cancelled_demotes_at_once_without_grace() {
    let app = webhook_app(&[]).await;
    let alice = app.sign_in("alice").await;
    exclude(&app, &alice, "node-1").await;
    assert_eq!(ttl(&app, "user:1001:mnodes"), -1);
    assert_eq!(me(&app, &alice).await["sponsor"], true);

    let (status, body) = send(&app, &payload("cancelled", "alice", 1001, 1000)).await;
    assert_eq!(status, 204, "{body}");
    let now = me(&app, &alice).await;
    assert_eq!(
        (now["sponsor"].clone(), now["tier_monthly_usd"].clone()),
        (json!(false), Value::Null)
    );
    assert!(sponsors(&app).is_empty());
    assert!(
        ttl(&app, "user:1001:mnodes") > 0,
        "demotion puts the TTL back"
    );
    assert_eq!(details(&app, 1001)["sponsor"], "0");
}

#[tokio::test]
async fn tiers_are_measured_against_the_minimum() {
    let app = webhook_app(&[("SPONSOR_MIN_MONTHLY_USD", "5")]).await;
    // Below the minimum: not promoted.
    let (status, _) = send(&app, &payload("created", "frank", 1006, 100)).await;
    assert_eq!(status, 204);
    // One-time payments do not count under a minimum.
    let mut one_time = payload("created", "erin", 1005, 5000);
    one_time["sponsorship"]["tier"]["is_one_time"] = json!(true);
    let (status, _) = send(&app, &one_time).await;
    assert_eq!(status, 204);
    assert!(
        sponsors(&app).is_empty(),
        "neither frank ($1) nor erin (one-time) counts"
    );
    assert!(
        details(&app, 1006).is_empty(),
        "no record written for a non-sponsor"
    );

    // tier_changed re-evaluates: up to $5 promotes, down to $4.99 demotes.
    let bob = app.sign_in("bob").await;
    let (status, _) = send(&app, &payload("tier_changed", "bob", 1002, 500)).await;
    assert_eq!(status, 204);
    assert_eq!(sponsors(&app), vec![1002]);
    assert_eq!(me(&app, &bob).await["tier_monthly_usd"], 5);
    let (status, _) = send(&app, &payload("tier_changed", "bob", 1002, 499)).await;
    assert_eq!(status, 204);
    assert!(sponsors(&app).is_empty());
    assert_eq!(me(&app, &bob).await["sponsor"], false);
}

#[tokio::test]
async fn one_time_counts_when_the_minimum_is_zero() {
    let app = webhook_app(&[]).await;
    let mut one_time = payload("created", "erin", 1005, 5000);
    one_time["sponsorship"]["tier"]["is_one_time"] = json!(true);
    assert_eq!(send(&app, &one_time).await.0, 204);
    assert_eq!(sponsors(&app), vec![1005]);
    assert_eq!(
        details(&app, 1005)["tier_monthly_usd"],
        "",
        "no monthly tier for a one-time payment"
    );
}

#[tokio::test]
async fn edited_is_a_privacy_change_that_changes_nothing() {
    let app = webhook_app(&[]).await;
    let alice = app.sign_in("alice").await;
    let mut edited = payload("edited", "alice", 1001, 1000);
    edited["changes"] = json!({"privacy_level": {"from": "public"}});
    edited["sponsorship"]["privacy_level"] = json!("private");
    let (status, body) = send(&app, &edited).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("ignored")),
        "{body}"
    );
    assert_eq!(me(&app, &alice).await["sponsor"], true);
    let (status, _) = send(&app, &payload("edited", "bob", 1002, 1000)).await;
    assert_eq!(status, 202);
    assert_eq!(
        sponsors(&app),
        vec![1001],
        "no promotion from an edit either"
    );
}

#[tokio::test]
async fn a_replayed_delivery_is_answered_but_not_applied_again() {
    let app = webhook_app(&[]).await;
    let created = payload("created", "bob", 1002, 1000);
    assert_eq!(send_as(&app, "sponsorship", "d-1", &created).await.0, 204);
    assert_eq!(sponsors(&app), vec![1002]);
    let _: () = redis::cmd("SREM")
        .arg("sponsors:acme-org")
        .arg(1002)
        .query(&mut app.local_conn())
        .unwrap();

    let (status, body) = send_as(&app, "sponsorship", "d-1", &created).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("duplicate")),
        "{body}"
    );
    assert!(sponsors(&app).is_empty(), "the replay did not re-add bob");
    let ttl = ttl(&app, "sync:webhook:delivery:d-1");
    assert!(
        ttl > 6 * 86_400,
        "delivery id remembered under sync: with a TTL ({ttl})"
    );
    // The same body under another delivery id is a replay too.
    let (status, body) = send_as(&app, "sponsorship", "d-2", &created).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("duplicate")));
    assert!(
        sponsors(&app).is_empty(),
        "the replayed body did not re-add bob"
    );
    // A new event (another body) is applied.
    let again = payload("created", "bob", 1002, 1000);
    assert_eq!(send_as(&app, "sponsorship", "d-3", &again).await.0, 204);
    assert_eq!(sponsors(&app), vec![1002]);
}

#[tokio::test]
async fn events_for_other_accounts_or_without_a_user_are_ignored() {
    let app = webhook_app(&[]).await;
    let octocat: Value = serde_json::from_str(CREATED).unwrap(); // sponsorable octocat
    let mut null_sponsor = payload("created", "bob", 1002, 1000);
    null_sponsor["sponsorship"]["sponsor"] = Value::Null;
    let mut null_sponsorable = payload("created", "bob", 1002, 1000);
    null_sponsorable["sponsorship"]["sponsorable"] = Value::Null;
    let mut org_sponsor = payload("created", "acme-org", 9001, 1000);
    org_sponsor["sponsorship"]["sponsor"]["type"] = json!("Organization");
    let mut case = payload("created", "bob", 1002, 1000);
    case["sponsorship"]["sponsorable"]["login"] = json!("ACME-Org");
    for (what, body) in [
        ("another sponsorable", octocat),
        ("null sponsor", null_sponsor),
        ("null sponsorable", null_sponsorable),
        ("organization sponsor", org_sponsor),
        ("unknown action", payload("renamed", "bob", 1002, 1000)),
    ] {
        let (status, reply) = send(&app, &body).await;
        assert_eq!(
            (status, reply["status"].as_str()),
            (202, Some("ignored")),
            "{what}: {reply}"
        );
    }
    assert!(sponsors(&app).is_empty());
    // SPONSORABLE matches case-insensitively.
    assert_eq!(send(&app, &case).await.0, 204);
    assert_eq!(sponsors(&app), vec![1002]);
    // Signed but unreadable: 400, nothing changed.
    let (status, body) = send(
        &app,
        &json!({"action": "created", "sponsorship": {"sponsor": {"id": "x"}}}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_payload")),
        "{body}"
    );
}

#[tokio::test]
async fn form_encoded_payloads_are_accepted() {
    let app = webhook_app(&[]).await;
    let json = serde_json::to_string(&payload("created", "bob", 1002, 1000)).unwrap();
    let form: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &json)
        .finish();
    let response = reqwest::Client::new()
        .post(app.at("/webhooks/github"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("X-GitHub-Event", "sponsorship")
        .header("X-GitHub-Delivery", fresh_delivery())
        // Signed over the raw form body, as GitHub does.
        .header(
            "X-Hub-Signature-256",
            sponsorship::sign(SECRET.as_bytes(), form.as_bytes()),
        )
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(sponsors(&app), vec![1002]);
}

#[tokio::test]
async fn pending_changes_take_effect_at_their_date() {
    let app = webhook_app(&[("SPONSOR_MIN_MONTHLY_USD", "5")]).await;
    let alice = app.sign_in("alice").await;
    let heidi = app.sign_in("heidi").await;
    let state = state_of(&app).await;

    // Past effective date: applied at once.
    let past = effective_in(payload("pending_cancellation", "alice", 1001, 1000), -60);
    assert_eq!(send(&app, &past).await.0, 204);
    assert_eq!(me(&app, &alice).await["sponsor"], false);

    // Future date: 202, nothing changes now, applied once due.
    let future = effective_in(payload("pending_tier_change", "heidi", 1008, 100), 3600);
    let (status, body) = send(&app, &future).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("scheduled")),
        "{body}"
    );
    assert_eq!(me(&app, &heidi).await["sponsor"], true);
    let pending = sponsorship::pending_change(&state, 1008)
        .await
        .unwrap()
        .expect("scheduled");
    assert!(!pending.change.sponsor);
    assert_eq!(
        sponsorship::apply_due(&state, sponsorship::now_ms())
            .await
            .unwrap(),
        0,
        "not due yet"
    );
    assert_eq!(me(&app, &heidi).await["sponsor"], true);
    assert_eq!(
        sponsorship::apply_due(&state, pending.due_ms)
            .await
            .unwrap(),
        1
    );
    assert_eq!(me(&app, &heidi).await["sponsor"], false);
    assert!(sponsorship::pending_change(&state, 1008)
        .await
        .unwrap()
        .is_none());

    // A pending change to a tier that still counts only updates the tier.
    let bob = app.sign_in("bob").await;
    assert_eq!(
        send(&app, &payload("created", "bob", 1002, 2500)).await.0,
        204
    );
    let still = effective_in(payload("pending_tier_change", "bob", 1002, 1000), 3600);
    assert_eq!(send(&app, &still).await.0, 202);
    assert_eq!(me(&app, &bob).await["tier_monthly_usd"], 25);
    let due = sponsorship::pending_change(&state, 1002)
        .await
        .unwrap()
        .unwrap()
        .due_ms;
    assert_eq!(sponsorship::apply_due(&state, due).await.unwrap(), 1);
    let now = me(&app, &bob).await;
    assert_eq!(
        (now["sponsor"].clone(), now["tier_monthly_usd"].clone()),
        (json!(true), json!(10))
    );
}

#[tokio::test]
async fn the_background_step_applies_due_changes() {
    let app = webhook_app(&[]).await;
    let alice = app.sign_in("alice").await;
    let soon = effective_in(payload("pending_cancellation", "alice", 1001, 1000), 2);
    assert_eq!(send(&app, &soon).await.0, 202);
    assert_eq!(me(&app, &alice).await["sponsor"], true);
    eventually(
        Duration::from_secs(10),
        "the pending cancellation applied",
        || async { (me(&app, &alice).await["sponsor"] == false).then_some(()) },
    )
    .await;
    assert_eq!(details(&app, 1001)["sponsor"], "0");
    assert!(sponsorship::pending_change(&*state_of(&app).await, 1001)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn grace_delays_demotions_and_a_promotion_cancels_them() {
    let app = webhook_app(&[("SPONSOR_GRACE_SECS", "2")]).await;
    let alice = app.sign_in("alice").await;
    exclude(&app, &alice, "node-1").await;
    let state = state_of(&app).await;

    // Cancelled: still a sponsor during the grace, demoted after it.
    let (status, body) = send(&app, &payload("cancelled", "alice", 1001, 1000)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("scheduled")),
        "{body}"
    );
    assert_eq!(me(&app, &alice).await["sponsor"], true);
    assert_eq!(ttl(&app, "user:1001:mnodes"), -1);
    eventually(
        Duration::from_secs(10),
        "demotion after the grace",
        || async { (me(&app, &alice).await["sponsor"] == false).then_some(()) },
    )
    .await;
    assert!(ttl(&app, "user:1001:mnodes") > 0);

    // Back as a sponsor, cancelled again, then back within the grace: the
    // scheduled demotion is gone, even once its time has passed.
    assert_eq!(
        send(&app, &payload("created", "alice", 1001, 1000)).await.0,
        204
    );
    assert_eq!(
        send(&app, &payload("cancelled", "alice", 1001, 1000))
            .await
            .0,
        202
    );
    let due = sponsorship::pending_change(&state, 1001)
        .await
        .unwrap()
        .expect("scheduled")
        .due_ms;
    assert_eq!(
        send(&app, &payload("created", "alice", 1001, 1000)).await.0,
        204
    );
    assert!(sponsorship::pending_change(&state, 1001)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        sponsorship::apply_due(&state, due + 10_000).await.unwrap(),
        0
    );
    assert_eq!(me(&app, &alice).await["sponsor"], true);
    assert_eq!(ttl(&app, "user:1001:mnodes"), -1);
}

/// Scheduled changes written by a version before the schedule's keys had
/// their hash tag are renamed at start (single server), and a second start
/// (or a second instance) changes nothing.
#[tokio::test]
async fn scheduled_changes_under_the_old_key_names_are_renamed_at_start() {
    let server = crate::common::redis::RedisServer::start();
    let mut raw = server.conn();
    let _: () = redis::cmd("ZADD")
        .arg("sync:sponsorship:due")
        .arg(123)
        .arg(1001)
        .query(&mut raw)
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg("sync:sponsorship:pending")
        .arg(1001)
        .arg("{\"old\":true}")
        .query(&mut raw)
        .unwrap();
    let mut link =
        sponsorgate_sync::RedisLink::open(&server.url(), Duration::from_secs(2)).unwrap();
    sponsorship::migrate_legacy_keys(&mut link).await.unwrap();
    let due: Option<f64> = redis::cmd("ZSCORE")
        .arg(sponsorship::PENDING_DUE)
        .arg(1001)
        .query(&mut raw)
        .unwrap();
    assert_eq!(due, Some(123.0));
    let change: Option<String> = redis::cmd("HGET")
        .arg(sponsorship::PENDING_CHANGES)
        .arg(1001)
        .query(&mut raw)
        .unwrap();
    assert_eq!(change.as_deref(), Some("{\"old\":true}"));
    let left: i64 = redis::cmd("EXISTS")
        .arg("sync:sponsorship:due")
        .arg("sync:sponsorship:pending")
        .query(&mut raw)
        .unwrap();
    assert_eq!(left, 0, "the old names are gone");

    // An old key appearing again never replaces the current one.
    let _: () = redis::cmd("ZADD")
        .arg("sync:sponsorship:due")
        .arg(999)
        .arg(1001)
        .query(&mut raw)
        .unwrap();
    sponsorship::migrate_legacy_keys(&mut link).await.unwrap();
    let due: Option<f64> = redis::cmd("ZSCORE")
        .arg(sponsorship::PENDING_DUE)
        .arg(1001)
        .query(&mut raw)
        .unwrap();
    assert_eq!(due, Some(123.0));
}
