//! Failure switches and call counters.
#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot go on should fail loudly, where it is"
)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

async fn get_user(sim: &GithubSim, token: &str) -> reqwest::Response {
    client()
        .get(format!("{}/user", sim.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn status_failures_on_rest_and_graphql_then_recovery() {
    let sim = sim().await;
    let token = sim.issue_token("alice", SCOPES);

    sim.set_failure(Endpoint::User, Failure::Status(503));
    let resp = get_user(&sim, &token).await;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["message"], "Service Unavailable");

    sim.set_failure(Endpoint::Graphql, Failure::Status(502));
    let (status, body) = gql(&sim, &token, "{ viewer { login } }", json!({})).await;
    assert_eq!(status, 502);
    assert!(body["data"].is_null());
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("Something went wrong"));

    sim.set_failure(Endpoint::User, Failure::None);
    sim.set_failure(Endpoint::Graphql, Failure::None);
    assert_eq!(get_user(&sim, &token).await.status(), 200);
    let (status, body) = gql(&sim, &token, "{ viewer { login } }", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["viewer"]["login"], "alice");

    assert_eq!(sim.calls(Endpoint::User), 2);
    assert_eq!(sim.calls(Endpoint::Graphql), 2);
    assert_eq!(sim.calls(Endpoint::Emails), 0);
}

#[tokio::test]
async fn unauthorized_and_rate_limited_switches() {
    let sim = sim().await;
    let token = sim.issue_token("alice", SCOPES);

    sim.set_failure(Endpoint::Emails, Failure::Unauthorized);
    let resp = client()
        .get(format!("{}/user/emails", sim.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["message"],
        "Bad credentials"
    );

    sim.set_failure(Endpoint::Graphql, Failure::GraphqlErrors);
    let (status, body) = gql(
        &sim,
        &token,
        VIEWER_SPONSORSHIP,
        json!({"sponsorable": "acme-org"}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body["data"].is_null() && body.get("data").is_some());
    assert_eq!(body["errors"][0]["type"], "RATE_LIMITED");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("1001"));

    sim.set_failure(Endpoint::Token, Failure::Unauthorized);
    let code = authorize_code(&sim, "alice", None).await;
    let resp = client()
        .post(format!("{}/login/oauth/access_token", sim.url()))
        .header("accept", "application/json")
        .form(&[
            ("client_id", "sim-client-id"),
            ("client_secret", "sim-client-secret"),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "incorrect_client_credentials"
    );

    sim.set_failure(Endpoint::Authorize, Failure::Status(500));
    let resp = client()
        .get(format!("{}/login/oauth/authorize", sim.url()))
        .query(&[
            ("client_id", "sim-client-id"),
            ("redirect_uri", REDIRECT),
            ("sim_user", "alice"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(sim.calls(Endpoint::Authorize), 2);
}

#[tokio::test]
async fn fail_after_breaks_paging_in_the_middle() {
    let sim = sim().await;
    let token = sim.issue_token("dave", SCOPES);
    let q = "query($after: String) { viewer { sponsorshipsAsSponsor(first: 50, after: $after) { pageInfo { hasNextPage endCursor } } } }";
    sim.set_failure(Endpoint::Graphql, Failure::FailAfter(2));
    let mut after = Value::Null;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let (status, body) = gql(&sim, &token, q, json!({"after": after})).await;
        statuses.push(status);
        if status == 200 {
            after =
                body["data"]["viewer"]["sponsorshipsAsSponsor"]["pageInfo"]["endCursor"].clone();
            assert_eq!(
                body["data"]["viewer"]["sponsorshipsAsSponsor"]["pageInfo"]["hasNextPage"],
                true
            );
        }
    }
    assert_eq!(statuses, vec![200, 200, 502, 502]);
    assert_eq!(sim.calls(Endpoint::Graphql), 4);
}

#[tokio::test]
async fn hang_holds_only_that_request_and_shutdown_releases_it() {
    let sim = sim().await;
    let token = sim.issue_token("alice", SCOPES);
    sim.set_failure(Endpoint::Graphql, Failure::Hang);

    let url = format!("{}/graphql", sim.url());
    let hung = tokio::spawn({
        let token = token.clone();
        async move {
            client()
                .post(url)
                .bearer_auth(token)
                .json(&json!({"query": "{ viewer { login } }"}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    // The held request does not answer...
    let timed = tokio::time::timeout(Duration::from_millis(300), async {
        while !hung.is_finished() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(timed.is_err(), "hung request answered");
    assert_eq!(sim.calls(Endpoint::Graphql), 1);
    // ...while the server keeps answering others.
    assert_eq!(get_user(&sim, &token).await.status(), 200);

    // A client timeout sees it as a timeout.
    let err = client()
        .post(format!("{}/graphql", sim.url()))
        .bearer_auth(&token)
        .timeout(Duration::from_millis(200))
        .json(&json!({"query": "{ viewer { login } }"}))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());

    tokio::time::timeout(Duration::from_secs(5), sim.shutdown())
        .await
        .expect("shutdown is not blocked by hung requests");
    let released = tokio::time::timeout(Duration::from_secs(5), hung).await;
    assert!(released.is_ok(), "hung request released at shutdown");
}

#[tokio::test]
async fn dropping_the_sim_stops_the_server() {
    let sim = sim().await;
    let url = format!("{}/user", sim.url());
    drop(sim);
    let mut refused = false;
    for _ in 0..50 {
        if client().get(&url).send().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "server still answering after drop");
}
