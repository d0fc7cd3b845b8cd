//! Conditional requests, paging and the activity stream (over real HTTP).

use std::time::Duration;

use redis::Commands;
use serde_json::json;

use crate::common::app::{plain_client, status_json, until_token_reads, with_token};
use crate::common::{eventually, TestApp};

#[tokio::test]
async fn etags_answer_304_and_guard_writes_with_412() {
    let app = TestApp::spawn().await;
    let bob = app.sign_in("bob").await;
    bob.exclude(&app, "a").await;
    let first = bob.client.get(app.at("/exclusions")).send().await.unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong: {etag}"
    );
    let again = bob
        .client
        .get(app.at("/exclusions"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.unwrap().is_empty());

    // A write under the current ETag goes through and says the new one.
    let written = bob
        .client
        .post(app.at("/exclude"))
        .header("if-match", &etag)
        .json(&json!({"id": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(written.status(), 200);
    let newer = written.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(newer, etag);
    // Under the old one, nothing changes.
    let stale = bob
        .client
        .post(app.at("/exclude"))
        .header("if-match", &etag)
        .json(&json!({"id": "c"}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(stale).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (412, Some("precondition_failed"))
    );
    let stale_delete = bob
        .client
        .delete(app.at("/exclusions/a"))
        .header("if-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(stale_delete.status(), 412);
    let members: Vec<String> = app.local_conn().smembers("user:1002:mnodes").unwrap();
    assert_eq!(members.len(), 2, "nothing changed: {members:?}");

    // Another program's change shows in the ETag at once.
    let _: () = app
        .local_conn()
        .sadd("user:1002:mnodes", "by-another-program")
        .unwrap();
    let after = bob
        .client
        .get(app.at("/exclusions"))
        .header("if-none-match", &newer)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200);
    assert_ne!(after.headers()["etag"].to_str().unwrap(), newer);
}

#[tokio::test]
async fn a_100000_member_set_is_paged_in_order_without_blocking_redis() {
    let app = TestApp::spawn().await;
    let bob = app.sign_in("bob").await;
    let mut local = app.local_conn();
    for batch in 0..100 {
        let ids: Vec<String> = (0..1000)
            .map(|i| format!("n{:06}", batch * 1000 + i))
            .collect();
        let _: () = local.sadd("user:1002:mnodes", ids).unwrap();
    }
    app.local.watch_slow_commands(10_000);
    let (status, page) = bob.get(&app, "/exclusions?limit=1000").await;
    assert_eq!(status, 200);
    let ids = page["ids"].as_array().unwrap();
    assert_eq!(ids.len(), 1000);
    assert_eq!(ids[0], "n000000");
    assert_eq!(page["next"], "n000999");
    assert_eq!(
        page["complete"], true,
        "a large non-sponsor set is complete as it stands"
    );
    let response = bob
        .client
        .get(app.at("/exclusions?limit=1000&after=n000999"))
        .send()
        .await
        .unwrap();
    let link = response.headers()["link"].to_str().unwrap().to_owned();
    assert_eq!(link, "</exclusions?limit=1000&after=n001999>; rel=\"next\"");
    let (_, second) = status_json(response).await;
    assert_eq!(second["ids"][0], "n001000");
    let (_, last) = bob.get(&app, "/exclusions?limit=1000&after=n098999").await;
    assert_eq!(last["ids"].as_array().unwrap().len(), 1000);
    assert_eq!(last["next"], serde_json::Value::Null);
    let (_, default) = bob.get(&app, "/exclusions").await;
    assert_eq!(
        default["ids"].as_array().unwrap().len(),
        10_000,
        "default limit"
    );
    assert_eq!(default["next"], "n009999");
    for bad in ["limit=0", "limit=10001", "limit=ten"] {
        let (status, body) = bob.get(&app, &format!("/exclusions?{bad}")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (422, Some("invalid_request")),
            "{bad}"
        );
    }
    let slow = app.local.slow_commands();
    assert!(slow.is_empty(), "commands over 10 ms: {slow:?}");
}

#[tokio::test]
async fn activity_records_each_change_newest_first() {
    let app = TestApp::builder().var("ACTIVITY_MAX", 4).start().await;
    let bob = app.sign_in("bob").await;
    bob.exclude(&app, "a").await;
    bob.exclude(&app, "a").await; // no change, no entry
    bob.exclude(&app, "b").await;
    bob.remove(&app, "a").await;
    let token = bob
        .create_token(&app, &["exclusions:read", "exclusions:write"])
        .await;
    let client = plain_client();
    with_token(
        client.post(app.at("/exclude")).json(&json!({"id": "c"})),
        &token,
    )
    .await;

    let (status, _, all) = with_token(client.get(app.at("/activity")), &token).await;
    assert_eq!(status, 200, "{all}");
    let seen: Vec<(String, String, String)> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap().to_owned(),
                i["id"].as_str().unwrap().to_owned(),
                i["via"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("add", "c", "token"),
        ("remove", "a", "session"),
        ("add", "b", "session"),
        ("add", "a", "session"),
    ]
    .map(|(k, i, v)| (k.to_owned(), i.to_owned(), v.to_owned()));
    assert_eq!(seen, expected);
    assert_eq!(all["next"], serde_json::Value::Null);

    let (_, adds) = bob.get(&app, "/activity?kind=add&limit=2").await;
    let items = adds["items"].as_array().unwrap();
    assert_eq!((items.len(), items[0]["id"].as_str()), (2, Some("c")));
    let cursor = adds["next"].as_str().unwrap().to_owned();
    let (_, older) = bob
        .get(&app, &format!("/activity?kind=add&before={cursor}"))
        .await;
    let ids: Vec<&str> = older["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a"]);
    for bad in ["limit=0", "kind=edit", "before=yesterday"] {
        assert_eq!(
            bob.get(&app, &format!("/activity?{bad}")).await.0,
            422,
            "{bad}"
        );
    }

    // The public stream: capped at ACTIVITY_MAX, a non-sponsor's expires with the set.
    bob.exclude(&app, "d").await;
    let mut local = app.local_conn();
    let len: usize = local.xlen("user:1002:activity").unwrap();
    assert_eq!(len, 4);
    let ttl: i64 = local.ttl("user:1002:activity").unwrap();
    assert!(ttl > 0, "a non-sponsor's activity expires: {ttl}");
}

#[tokio::test]
async fn a_sponsors_activity_persists_across_a_local_flush() {
    let app = TestApp::builder().with_remote().start().await;
    let alice = app.sign_in("alice").await;
    // The flush ends the session; the token (a sponsor's) persists.
    let token = alice.create_token(&app, &["exclusions:read"]).await;
    alice.exclude(&app, "x").await;
    alice.exclude(&app, "y").await;
    let ttl: i64 = app.local_conn().ttl("user:1001:activity").unwrap();
    assert_eq!(ttl, -1, "a sponsor's activity does not expire");
    let mut remote = app.remote_conn();
    eventually(
        Duration::from_secs(10),
        "the activity and token on the remote",
        || {
            let n: usize = remote.xlen("user:1001:activity").unwrap_or(0);
            let tokens: usize = remote.scard("auth:tokens:1001").unwrap_or(0);
            async move { (n == 2 && tokens == 1).then_some(()) }
        },
    )
    .await;
    let _: () = redis::cmd("FLUSHALL").query(&mut app.local_conn()).unwrap();
    // 503 while the token's records are on their way back, then 200.
    let activity = until_token_reads(&app, "/activity", &token).await;
    let ids: Vec<&str> = activity["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["y", "x"], "{activity}");
}

#[tokio::test]
async fn the_activity_stream_lives_as_long_as_the_preferences() {
    use github_sim::FixtureSponsorship;
    let app = TestApp::spawn().await;
    let bob = app.sign_in("bob").await;
    bob.exclude(&app, "a").await;
    let ttl: i64 = app.local_conn().ttl("user:1002:activity").unwrap();
    assert!(ttl > 0, "{ttl}");
    // Promoted at the next sign-in: both lose their TTL.
    app.sim
        .set_sponsorship("bob", "acme-org", Some(FixtureSponsorship::monthly(500)));
    app.sign_in("bob").await;
    let mut local = app.local_conn();
    assert_eq!(local.ttl::<_, i64>("user:1002:mnodes").unwrap(), -1);
    assert_eq!(
        local.ttl::<_, i64>("user:1002:activity").unwrap(),
        -1,
        "the stream follows the set"
    );
    let (status, beyond) = bob
        .get(&app, "/activity?before=99999999999999999999-0")
        .await;
    assert_eq!(status, 200, "a cursor beyond any stream id: before the end");
    assert_eq!(
        beyond["items"].as_array().map(Vec::len),
        Some(1),
        "{beyond}"
    );
}

/// A large set is served from a shared copy (`src/listcache.rs`): a change
/// through the API shows at once, another program's same-size change within
/// the copy's second.
#[tokio::test]
async fn a_large_set_read_from_its_shared_copy_stays_fresh() {
    let app = TestApp::builder().var("QUOTA_FREE", 100_000).start().await;
    let bob = app.sign_in("bob").await;
    let mut local = app.local_conn();
    let ids: Vec<String> = (0..3000).map(|i| format!("big-{i:05}")).collect();
    let _: () = local.sadd("user:1002:mnodes", &ids).unwrap();
    let (_, first) = bob.get(&app, "/exclusions?limit=1").await;
    assert_eq!(
        (first["ids"][0].as_str(), first["complete"].as_bool()),
        (Some("big-00000"), Some(true))
    );
    // Through the API: at once.
    assert_eq!(bob.exclude(&app, "a-first").await.0, 200);
    let (_, after_add) = bob.get(&app, "/exclusions?limit=1").await;
    assert_eq!(after_add["ids"][0], "a-first");
    // Another program, keeping the size: within the copy's second.
    let _: () = local.srem("user:1002:mnodes", "a-first").unwrap();
    let _: () = local.sadd("user:1002:mnodes", "a-second").unwrap();
    eventually(Duration::from_secs(3), "another program's change", || {
        let request = bob.client.get(app.at("/exclusions?limit=1"));
        async move {
            let (_, body) = status_json(request.send().await.unwrap()).await;
            (body["ids"][0] == "a-second").then_some(())
        }
    })
    .await;
}
