//! API tokens over real HTTP: created from the session, used with
//! `Authorization: Bearer`, scoped, revoked on every instance at once.

use std::time::Duration;

use redis::Commands;
use serde_json::json;

use crate::common::app::{plain_client, status_json, until_token_reads, with_token, Mode};
use crate::common::{eventually, TestApp};

const BOTH: &[&str] = &["exclusions:read", "exclusions:write"];

in_every_mode!(tokens_work_on_every_instance_and_a_revocation_is_immediate);

async fn tokens_work_on_every_instance_and_a_revocation_is_immediate(mode: Mode) {
    let app = TestApp::builder().mode(mode).start().await;
    let other = app.another_instance().await;
    let alice = app.sign_in("alice").await;
    let response = alice
        .client
        .post(app.at("/tokens"))
        .json(&json!({"name": "notebook", "scopes": BOTH, "expires_in_days": 30}))
        .send()
        .await
        .unwrap();
    let (status, created) = status_json(response).await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("sg_") && token.len() == 43, "{token}");
    assert!(token[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
    let expires = created["expires_at"].as_u64().unwrap();
    let made = created["created_at"].as_u64().unwrap();
    assert_eq!(expires - made, 30 * 86_400);
    // Only a digest is stored.
    let stored: Vec<String> = app.local_conn().smembers("auth:tokens:1001").unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(&token[3..]), "{stored:?}");

    // The other instance knows it (nothing per process).
    let client = plain_client();
    let (status, _, me) = with_token(client.get(other.at("/me")), &token).await;
    assert_eq!((status, me["id"].as_u64()), (200, Some(1001)));
    let (status, _, added) = with_token(
        client.post(other.at("/exclude")).json(&json!({"id": "n1"})),
        &token,
    )
    .await;
    assert_eq!(
        (status, added["persistent"].as_bool()),
        (200, Some(true)),
        "{added}"
    );
    let (status, _, list) = with_token(client.get(other.at("/exclusions")), &token).await;
    assert_eq!((status, list["ids"].clone()), (200, json!(["n1"])));

    let (_, listed) = alice.get(&app, "/tokens").await;
    let entry = &listed["tokens"][0];
    assert_eq!(entry["name"], "notebook");
    assert!(
        entry.get("token").is_none(),
        "no secret in the list: {listed}"
    );
    assert!(entry["last_used_at"].as_u64().unwrap() >= made, "{listed}");

    let id = created["id"].as_str().unwrap();
    assert_eq!(
        alice
            .client
            .delete(app.at(&format!("/tokens/{id}")))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let (status, headers, body) = with_token(client.get(other.at("/me")), &token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );
    assert_eq!(
        headers["www-authenticate"].to_str().unwrap(),
        "Bearer error=\"invalid_token\""
    );
    assert_eq!(
        alice
            .client
            .delete(app.at(&format!("/tokens/{id}")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    other.stop().await;
}

#[tokio::test]
async fn scopes_expiry_and_the_session_rule_are_enforced() {
    let app = TestApp::spawn().await;
    let bob = app.sign_in("bob").await;
    let reader = bob.create_token(&app, &["exclusions:read"]).await;
    let client = plain_client();
    let (status, headers, body) = with_token(
        client.post(app.at("/exclude")).json(&json!({"id": "x"})),
        &reader,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("insufficient_scope"))
    );
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("insufficient_scope"));
    assert_eq!(
        with_token(client.get(app.at("/exclusions")), &reader)
            .await
            .0,
        200
    );
    assert_eq!(
        with_token(client.delete(app.at("/exclusions/x")), &reader)
            .await
            .0,
        403
    );
    // Tokens are managed from the browser session only.
    assert_eq!(
        with_token(client.get(app.at("/tokens")), &reader).await.0,
        403
    );
    let (status, _, _) = with_token(
        client
            .post(app.at("/tokens"))
            .json(&json!({"name": "n", "scopes": BOTH})),
        &reader,
    )
    .await;
    assert_eq!(status, 403);
    // Look-alikes, and a real token made to expire.
    for fake in ["sg_notatoken", "ghp_0123456789", &reader[..42]] {
        let (status, _, body) = with_token(client.get(app.at("/me")), fake).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_token")),
            "{fake}"
        );
    }
    let mut local = app.local_conn();
    let record: String = local.spop("auth:tokens:1002").unwrap();
    let mut parts: Vec<&str> = record.splitn(7, '|').collect();
    parts[4] = "1";
    let _: () = local.sadd("auth:tokens:1002", parts.join("|")).unwrap();
    assert_eq!(with_token(client.get(app.at("/me")), &reader).await.0, 401);

    // The rules of a new token, and at most 20 live ones.
    for bad in [
        json!({"name": "", "scopes": BOTH}),
        json!({"name": "n", "scopes": []}),
        json!({"name": "n", "scopes": ["admin"]}),
        json!({"name": "n", "scopes": BOTH, "expires_in_days": 0}),
        json!({"name": "n", "scopes": BOTH, "expires_in_days": 366}),
    ] {
        let response = bob
            .client
            .post(app.at("/tokens"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{bad}");
    }
    for _ in 0..20 {
        bob.create_token(&app, BOTH).await;
    }
    let response = bob
        .client
        .post(app.at("/tokens"))
        .json(&json!({"name": "21st", "scopes": BOTH}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("too_many_tokens"))
    );
}

#[tokio::test]
async fn bearer_requests_skip_the_cross_site_check_and_count_as_their_user() {
    let app = TestApp::builder()
        .var("RATE_LIMIT_PER_MINUTE", 2)
        .start()
        .await;
    let bob = app.sign_in("bob").await;
    let token = bob.create_token(&app, BOTH).await;
    let client = plain_client();
    let evil = |request: reqwest::RequestBuilder| request.header("origin", "https://evil.example");
    // A script's request from anywhere carries no cookie: allowed.
    let (status, _, body) = with_token(
        evil(client.post(app.at("/exclude"))).json(&json!({"id": "a"})),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // A cookie from another site is still refused.
    let refused = evil(bob.client.post(app.at("/exclude")))
        .json(&json!({"id": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    // Token and session share the user's limit (2 per minute; the token
    // creation counted as one).
    let (status, _, body) = with_token(
        client.post(app.at("/exclude")).json(&json!({"id": "c"})),
        &token,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("rate_limited")),
        "{body}"
    );
}

#[tokio::test]
async fn a_sponsors_tokens_survive_a_local_flush() {
    let app = TestApp::builder().with_remote().start().await;
    let alice = app.sign_in("alice").await;
    let token = alice.create_token(&app, BOTH).await;
    let mut remote = app.remote_conn();
    eventually(
        Duration::from_secs(10),
        "the token record on the remote",
        || {
            let n: usize = remote.scard("auth:tokens:1001").unwrap();
            async move { (n == 1).then_some(()) }
        },
    )
    .await;
    let _: () = redis::cmd("FLUSHALL").query(&mut app.local_conn()).unwrap();
    let me = until_token_reads(&app, "/me", &token).await;
    assert_eq!(me["id"].as_u64(), Some(1001), "{me}");
}

/// Names with astral characters survive the record encoding (a name the API fuzzer made).
#[tokio::test]
async fn a_token_with_any_name_can_be_revoked() {
    let app = TestApp::spawn().await;
    let bob = app.sign_in("bob").await;
    let body = r#"{"name": "$\ud9e2\ude5fA]\u00e6\udbd8\ude46\u0114", "scopes": ["exclusions:write", "exclusions:read", "exclusions:read", "exclusions:write"], "expires_in_days": null}"#;
    let response = bob
        .client
        .post(app.at("/tokens"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, created) = status_json(response).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let (_, listed) = bob.get(&app, "/tokens").await;
    assert_eq!(listed["tokens"][0]["name"], "$\u{88a5f}A]æ\u{106246}Ĕ");
    let revoked = bob
        .client
        .delete(app.at(&format!("/tokens/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
}

#[tokio::test]
async fn forged_tokens_and_bad_bodies_are_refused_and_leave_nothing_behind() {
    let app = TestApp::spawn().await;
    let bob = app.sign_in("bob").await;
    // A well-formed token (right checksum) for a user who has none.
    let forged = sponsorgate::tokens::generate(424_242);
    let (status, _, body) = with_token(plain_client().get(app.at("/me")), &forged).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );
    let left: Vec<String> = app.local_conn().keys("*424242*").unwrap();
    assert!(left.is_empty(), "a forged token wrote keys: {left:?}");

    for (content_type, body, status, code) in [
        ("application/json", "", 400, "missing_body"),
        (
            "application/json",
            "{\"scopes\": [\"exclusions:read\"]}",
            400,
            "missing_field",
        ),
        ("application/json", "{\"name\": ", 400, "malformed_json"),
        ("text/plain", "name=x", 415, "unsupported_media_type"),
        (
            "application/json",
            "{\"name\": \"x\", \"scopes\": \"all\"}",
            422,
            "invalid_request",
        ),
    ] {
        let response = bob
            .client
            .post(app.at("/tokens"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let (got, answer) = status_json(response).await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(code)),
            "{body:?}"
        );
    }
}

#[tokio::test]
async fn a_token_made_with_the_page_is_never_stored_in_clear() {
    let app = TestApp::spawn().await;
    let bob = app.sign_in("bob").await;
    let page = bob
        .client
        .post(app.at("/tokens/new"))
        .header("accept", "text/html")
        .form(&[
            ("name", "page"),
            ("scope", "exclusions:read"),
            ("expires_in_days", "30"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    let start = html.find("value=\"sg_").expect("the token on the page") + 7;
    let token = &html[start..start + 43];
    assert_eq!(
        with_token(plain_client().get(app.at("/me")), token).await.0,
        200
    );
    let mut local = app.local_conn();
    for key in local.keys::<_, Vec<String>>("*").unwrap() {
        let dump: Vec<u8> = redis::cmd("DUMP").arg(&key).query(&mut local).unwrap();
        assert!(
            !dump.windows(token.len()).any(|w| w == token.as_bytes()),
            "{key} holds the token"
        );
    }
    // The next view of the page does not show it again.
    let again = bob
        .client
        .get(app.at("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!again.contains(token));
}
