//! Preferences: exclude, list, remove; keys, TTLs and quotas in the local Redis.

use redis::Commands;
use serde_json::json;

use crate::common::TestApp;

#[tokio::test]
async fn a_sponsor_excludes_lists_and_removes_with_no_ttl() {
    let app = TestApp::spawn().await;
    let alice = app.sign_in("alice").await;
    let (status, body) = alice.exclude(&app, "MDQ6VXNlcjE=").await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"id": "MDQ6VXNlcjE=", "persistent": true, "count": 1})
        )
    );
    let (status, body) = alice.exclude_form(&app, "node/2 é").await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"id": "node/2 é", "persistent": true, "count": 2})
        )
    );
    let mut local = app.local_conn();
    let members: Vec<String> = local.smembers("user:1001:mnodes").unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(
        local.ttl::<_, i64>("user:1001:mnodes").unwrap(),
        -1,
        "sponsors' sets never expire"
    );

    let (status, body) = alice.get(&app, "/exclusions").await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"ids": ["MDQ6VXNlcjE=", "node/2 é"], "persistent": true, "complete": true, "next": null})
        )
    );

    assert_eq!(alice.remove(&app, "node%2F2%20%C3%A9").await, 204);
    assert_eq!(
        alice.remove(&app, "node%2F2%20%C3%A9").await,
        204,
        "removing an absent id is fine"
    );
    let members: Vec<String> = local.smembers("user:1001:mnodes").unwrap();
    assert_eq!(members, vec!["MDQ6VXNlcjE=".to_owned()]);
}

#[tokio::test]
async fn a_non_sponsors_set_expires_after_the_ttl_refreshed_on_write() {
    let app = TestApp::builder()
        .var("EPHEMERAL_TTL_SECS", 600)
        .start()
        .await;
    let bob = app.sign_in("bob").await;
    let (status, body) = bob.exclude(&app, "a").await;
    assert_eq!(
        (status, body),
        (200, json!({"id": "a", "persistent": false, "count": 1}))
    );
    let mut local = app.local_conn();
    let ttl: i64 = local.ttl("user:1002:mnodes").unwrap();
    assert!((590..=600).contains(&ttl), "ttl {ttl}");
    let _: () = local.expire("user:1002:mnodes", 10).unwrap();
    bob.exclude(&app, "b").await;
    let ttl: i64 = local.ttl("user:1002:mnodes").unwrap();
    assert!(ttl > 500, "a write refreshes the TTL (got {ttl})");
    let (_, list) = bob.get(&app, "/exclusions").await;
    assert_eq!(
        list,
        json!({"ids": ["a", "b"], "persistent": false, "complete": true, "next": null})
    );
}

#[tokio::test]
async fn quota_limits_new_ids_but_not_repeats() {
    let app = TestApp::builder()
        .var("QUOTA_FREE", 2)
        .var("QUOTA_SPONSOR", 3)
        .start()
        .await;
    let bob = app.sign_in("bob").await;
    let alice = app.sign_in("alice").await;
    for id in ["a", "b"] {
        assert_eq!(bob.exclude(&app, id).await.0, 200);
    }
    let (status, body) = bob.exclude(&app, "c").await;
    assert_eq!(status, 429);
    assert_eq!(body["error"], "quota_exceeded");
    assert_eq!(
        bob.exclude(&app, "a").await.0,
        200,
        "an id already held does not count again"
    );
    let count: usize = app.local_conn().scard("user:1002:mnodes").unwrap();
    assert_eq!(count, 2);
    for id in ["a", "b", "c"] {
        assert_eq!(
            alice.exclude(&app, id).await.0,
            200,
            "sponsors have the larger quota"
        );
    }
    assert_eq!(alice.exclude(&app, "d").await.0, 429);
}

#[tokio::test]
async fn sponsor_status_is_read_on_each_request_not_frozen_in_the_session() {
    let app = TestApp::spawn().await;
    let alice = app.sign_in("alice").await;
    let (_, me) = alice.get(&app, "/me").await;
    assert_eq!(me["sponsor"], true);
    // Another component (a webhook, re-verification) demotes her.
    let _: () = app.local_conn().srem("sponsors:acme-org", 1001).unwrap();
    let (_, me) = alice.get(&app, "/me").await;
    assert_eq!(me["sponsor"], false);
    assert_eq!(me["tier_monthly_usd"], serde_json::Value::Null);
    let (_, body) = alice.exclude(&app, "x").await;
    assert_eq!(body["persistent"], false);
}
