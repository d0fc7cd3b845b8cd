//! `GET /user` and `GET /user/emails` over real HTTP.
#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot go on should fail loudly, where it is"
)]

mod common;

use common::*;
use serde_json::Value;

#[tokio::test]
async fn missing_user_agent_is_refused_with_github_text() {
    let sim = sim().await;
    let token = sim.issue_token("alice", SCOPES);
    for path in ["/user", "/user/emails"] {
        let resp = bare_client()
            .get(format!("{}{path}", sim.url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{path}");
        let text = resp.text().await.unwrap();
        assert!(
            text.starts_with("Request forbidden by administrative rules. Please make sure your request has a User-Agent header"),
            "{text}"
        );
    }
    // The same token works once a User-Agent is sent.
    let resp = client()
        .get(format!("{}/user", sim.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn unknown_or_missing_token_is_401() {
    let sim = sim().await;
    let resp = client()
        .get(format!("{}/user", sim.url()))
        .header("authorization", "token gho_notarealtoken")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["message"], "Bad credentials");
    assert_eq!(body["documentation_url"], "https://docs.github.com/rest");

    let resp = client()
        .get(format!("{}/user/emails", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn user_has_the_real_shape_and_headers() {
    let sim = sim().await;
    let token = sim.issue_token("alice", SCOPES);
    let resp = client()
        .get(format!("{}/user", sim.url()))
        .header("authorization", format!("token {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["x-oauth-scopes"], "read:user, user:email");
    assert_eq!(h["x-accepted-oauth-scopes"], "");
    assert_eq!(h["x-ratelimit-limit"], "5000");
    assert_eq!(h["x-ratelimit-used"], "1");
    assert_eq!(h["x-ratelimit-remaining"], "4999");
    assert_eq!(h["x-ratelimit-resource"], "core");
    assert!(
        h["x-ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 1_700_000_000
    );
    let u: Value = resp.json().await.unwrap();
    assert_eq!(u["login"], "alice");
    assert_eq!(u["id"], 1001);
    assert_eq!(u["node_id"], "MDQ6VXNlcjEwMDE=");
    assert_eq!(u["type"], "User");
    assert_eq!(u["site_admin"], false);
    assert_eq!(u["email"], "alice@example.com");
    assert_eq!(u["name"], "Alice Anders");
    for key in [
        "company",
        "blog",
        "location",
        "bio",
        "html_url",
        "created_at",
    ] {
        assert!(u.get(key).is_some(), "missing {key}");
    }
    assert!(
        u.get("plan").is_none(),
        "private fields need the user scope"
    );

    // The avatar URL is served.
    let avatar = client()
        .get(u["avatar_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(avatar.status(), 200);
    assert_eq!(avatar.headers()["content-type"], "image/svg+xml");

    // A second call counts against the limit.
    let resp = client()
        .get(format!("{}/user", sim.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-ratelimit-used"], "2");
}

#[tokio::test]
async fn grace_has_null_public_email_and_primary_in_emails() {
    let sim = sim().await;
    let token = sim.issue_token("grace", SCOPES);
    let u: Value = client()
        .get(format!("{}/user", sim.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(u["id"], 1007);
    assert!(u["email"].is_null());

    let resp = client()
        .get(format!("{}/user/emails", sim.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-accepted-oauth-scopes"],
        "user, user:email"
    );
    assert!(resp.headers().get("link").is_none(), "one page only");
    let emails: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(emails.len(), 4);
    let primary: Vec<&Value> = emails
        .iter()
        .filter(|e| e["primary"] == true && e["verified"] == true)
        .collect();
    assert_eq!(primary.len(), 1);
    assert_eq!(primary[0]["email"], "grace@users.example.com");
    assert!(emails.iter().any(|e| e["verified"] == false));
    assert!(emails
        .iter()
        .any(|e| e["email"].as_str().unwrap().contains("noreply")));
    assert_ne!(
        emails[0]["primary"], true,
        "the primary address is not first"
    );
    for e in &emails {
        for key in ["email", "primary", "verified", "visibility"] {
            assert!(e.get(key).is_some());
        }
    }
}

#[tokio::test]
async fn emails_need_the_user_email_scope() {
    let sim = sim().await;
    let token = sim.issue_token("grace", &["read:user"]);
    let resp = client()
        .get(format!("{}/user/emails", sim.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["x-oauth-scopes"], "read:user");
    let body: Value = resp.json().await.unwrap();
    assert!(body["message"].is_string());

    // `user` implies `user:email`.
    let token = sim.issue_token("grace", &["user"]);
    let resp = client()
        .get(format!("{}/user/emails", sim.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn emails_are_paginated_with_link_headers() {
    let sim = sim().await;
    let token = sim.issue_token("grace", SCOPES);
    let base = sim.url();
    let mut seen = Vec::new();
    let mut next = Some(format!("{base}/user/emails?per_page=3"));
    let mut pages = 0;
    while let Some(url) = next.take() {
        let resp = client().get(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let link = resp
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        pages += 1;
        if pages == 1 {
            assert_eq!(
                link,
                format!("<{base}/user/emails?per_page=3&page=2>; rel=\"next\", <{base}/user/emails?per_page=3&page=2>; rel=\"last\"")
            );
        } else {
            assert!(
                link.contains("rel=\"prev\"") && link.contains("rel=\"first\""),
                "{link}"
            );
            assert!(!link.contains("rel=\"next\""));
        }
        next = link
            .split(", ")
            .find(|l| l.ends_with("rel=\"next\""))
            .map(|l| {
                l.trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_string()
            });
        let page: Vec<Value> = resp.json().await.unwrap();
        seen.extend(
            page.into_iter()
                .map(|e| e["email"].as_str().unwrap().to_string()),
        );
    }
    assert_eq!(pages, 2);
    assert_eq!(seen.len(), 4);
    assert!(seen.contains(&"grace@users.example.com".to_string()));

    // per_page is capped at 100 and a page past the end is empty.
    let resp = client()
        .get(format!("{base}/user/emails?per_page=500&page=9"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let page: Vec<Value> = resp.json().await.unwrap();
    assert!(page.is_empty());
}

#[tokio::test]
async fn user_scope_gives_the_private_shape() {
    let sim = sim().await;
    let token = sim.issue_token("bob", &["user"]);
    let u: Value = client()
        .get(format!("{}/user", sim.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(u["id"], 1002);
    assert!(u["plan"].is_object());
    assert_eq!(u["email"], "bob@example.com");
}
