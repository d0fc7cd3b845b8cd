//! The OAuth web flow over real HTTP.
#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot go on should fail loudly, where it is"
)]

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use serde_json::Value;

async fn exchange_json(
    sim: &GithubSim,
    form: &[(&str, &str)],
) -> (reqwest::StatusCode, String, Value) {
    let resp = client()
        .post(format!("{}/login/oauth/access_token", sim.url()))
        .header("accept", "application/json")
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
    (status, ctype, resp.json().await.unwrap())
}

#[tokio::test]
async fn whole_web_flow_with_pkce_yields_a_working_token() {
    let sim = sim().await;
    let (verifier, challenge) = pkce();

    // The sign-in page lists the fixture users and carries the parameters.
    let page = client()
        .get(format!("{}/login/oauth/authorize", sim.url()))
        .query(&[
            ("client_id", "sim-client-id"),
            ("redirect_uri", REDIRECT),
            ("scope", "read:user user:email"),
            ("state", "xyz"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    for needle in [
        "name=\"sim_user\" value=\"alice\"",
        "alice</span>",
        "sponsors acme-org at $10/month",
        "name=\"sim_deny\"",
        "name=\"code_challenge\" value=\"",
        "name=\"state\" value=\"xyz\"",
    ] {
        assert!(html.contains(needle), "sign-in page lacks {needle}");
    }
    assert!(
        !html.contains("value=\"project-001\""),
        "generated projects are not listed"
    );
    // Self-contained: no external scripts, styles or images.
    for asset in ["<script", "<link", "src=", "url("] {
        assert!(!html.contains(asset), "sign-in page loads {asset}");
    }

    let record = sim.last_authorize().expect("recorded");
    assert_eq!(record.client_id.as_deref(), Some("sim-client-id"));
    assert_eq!(record.redirect_uri.as_deref(), Some(REDIRECT));
    assert_eq!(record.scope.as_deref(), Some("read:user user:email"));
    assert_eq!(record.state.as_deref(), Some("xyz"));
    assert_eq!(record.code_challenge.as_deref(), Some(challenge.as_str()));
    assert_eq!(record.code_challenge_method.as_deref(), Some("S256"));

    let code = authorize_code(&sim, "alice", Some(&challenge)).await;
    let (status, ctype, body) = exchange_json(
        &sim,
        &[
            ("client_id", "sim-client-id"),
            ("client_secret", "sim-client-secret"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ctype, "application/json; charset=utf-8");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["scope"], "read:user,user:email");
    let token = body["access_token"].as_str().unwrap();
    assert!(token.starts_with("gho_"));

    let user: Value = client()
        .get(format!("{}/user", sim.url()))
        .header("authorization", format!("token {token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(user["login"], "alice");
    assert_eq!(user["id"], 1001);
}

#[tokio::test]
async fn default_answer_is_urlencoded_and_credentials_may_come_by_basic_json_or_query() {
    let sim = sim().await;
    let url = format!("{}/login/oauth/access_token", sim.url());

    // Form body, HTTP Basic credentials, no Accept header: urlencoded answer.
    let code = authorize_code(&sim, "bob", None).await;
    let resp = client()
        .post(&url)
        .basic_auth("sim-client-id", Some("sim-client-secret"))
        .form(&[("code", code.as_str()), ("redirect_uri", REDIRECT)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.starts_with("access_token=gho_"), "{text}");
    assert!(
        text.ends_with("&scope=read%3Auser%2Cuser%3Aemail&token_type=bearer"),
        "{text}"
    );

    // JSON body.
    let code = authorize_code(&sim, "bob", None).await;
    let resp = client()
        .post(&url)
        .header("accept", "application/json")
        .json(&serde_json::json!({
            "client_id": "sim-client-id", "client_secret": "sim-client-secret", "code": code
        }))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert!(body["access_token"].as_str().unwrap().starts_with("gho_"));

    // Query string only.
    let code = authorize_code(&sim, "bob", None).await;
    let resp = client()
        .post(&url)
        .header("accept", "application/json")
        .query(&[
            ("client_id", "sim-client-id"),
            ("client_secret", "sim-client-secret"),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert!(body["access_token"].as_str().unwrap().starts_with("gho_"));
}

#[tokio::test]
async fn every_token_error_is_http_200_with_github_bodies() {
    let sim = sim().await;
    let (verifier, challenge) = pkce();
    let docs = "https://docs.github.com/apps/managing-oauth-apps/";
    let expect = |body: &Value, error: &str, description: &str, anchor: &str| {
        assert_eq!(body["error"], error, "{body}");
        assert_eq!(body["error_description"], description);
        let uri = body["error_uri"].as_str().unwrap();
        assert!(uri.starts_with(docs) && uri.ends_with(anchor), "{uri}");
    };

    // Wrong secret.
    let code = authorize_code(&sim, "alice", None).await;
    let (status, _, body) = exchange_json(
        &sim,
        &[
            ("client_id", "sim-client-id"),
            ("client_secret", "nope"),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(status, 200);
    expect(
        &body,
        "incorrect_client_credentials",
        "The client_id and/or client_secret passed are incorrect.",
        "#incorrect-client-credentials",
    );

    // Unknown code.
    let (status, _, body) = exchange_json(
        &sim,
        &[
            ("client_id", "sim-client-id"),
            ("client_secret", "sim-client-secret"),
            ("code", "deadbeef"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    expect(
        &body,
        "bad_verification_code",
        "The code passed is incorrect or expired.",
        "#bad-verification-code",
    );

    // redirect_uri differs from the one at authorize time.
    let code = authorize_code(&sim, "alice", None).await;
    let (status, _, body) = exchange_json(
        &sim,
        &[
            ("client_id", "sim-client-id"),
            ("client_secret", "sim-client-secret"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:8080/elsewhere"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    expect(
        &body,
        "redirect_uri_mismatch",
        "The redirect_uri MUST match the registered callback URL for this application.",
        "#redirect-uri-mismatch2",
    );

    // PKCE: missing verifier, then wrong verifier.
    for bad in [None, Some("wrong-verifier-wrong-verifier-wrong-verifier")] {
        let code = authorize_code(&sim, "alice", Some(&challenge)).await;
        let mut form = vec![
            ("client_id", "sim-client-id"),
            ("client_secret", "sim-client-secret"),
            ("code", code.as_str()),
        ];
        if let Some(v) = bad {
            form.push(("code_verifier", v));
        }
        let (status, _, body) = exchange_json(&sim, &form).await;
        assert_eq!(status, 200);
        expect(
            &body,
            "bad_verification_code",
            "The code passed is incorrect or expired.",
            "#bad-verification-code",
        );
    }

    // Errors are urlencoded too when JSON is not asked for.
    let resp = client()
        .post(format!("{}/login/oauth/access_token", sim.url()))
        .form(&[
            ("client_id", "sim-client-id"),
            ("client_secret", "x"),
            ("code", "y"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        text.starts_with("error=incorrect_client_credentials&error_description="),
        "{text}"
    );

    // The right verifier still works on a fresh code.
    let code = authorize_code(&sim, "alice", Some(&challenge)).await;
    let (_, _, body) = exchange_json(
        &sim,
        &[
            ("client_id", "sim-client-id"),
            ("client_secret", "sim-client-secret"),
            ("code", &code),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert!(body["access_token"].is_string(), "{body}");
}

#[tokio::test]
async fn codes_are_single_use_and_expire() {
    let sim = sim().await;
    let code = authorize_code(&sim, "carol", None).await;
    let form = [
        ("client_id", "sim-client-id"),
        ("client_secret", "sim-client-secret"),
        ("code", code.as_str()),
    ];
    let (_, _, first) = exchange_json(&sim, &form).await;
    assert!(first["access_token"].is_string());
    let (status, _, second) = exchange_json(&sim, &form).await;
    assert_eq!(status, 200);
    assert_eq!(second["error"], "bad_verification_code");

    sim.set_code_lifetime(Duration::from_millis(50));
    let code = authorize_code(&sim, "carol", None).await;
    tokio::time::sleep(Duration::from_millis(120)).await;
    let (_, _, late) = exchange_json(
        &sim,
        &[
            ("client_id", "sim-client-id"),
            ("client_secret", "sim-client-secret"),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(late["error"], "bad_verification_code");
}

#[tokio::test]
async fn deny_redirects_with_access_denied_exactly_like_github() {
    let sim = sim().await;
    let resp = client()
        .get(format!("{}/login/oauth/authorize", sim.url()))
        .query(&[
            ("client_id", "sim-client-id"),
            ("redirect_uri", REDIRECT),
            ("state", "xyz"),
            ("sim_deny", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let (location, pairs) = location_params(&resp);
    assert_eq!(
        location,
        format!("{REDIRECT}?error=access_denied&error_description=The+user+has+denied+your+application+access.&error_uri=/apps/building-integrations/setting-up-and-registering-oauth-apps/troubleshooting-authorization-request-errors/%23access-denied&state=xyz")
    );
    assert!(param(&pairs, "code").is_none());
}

#[tokio::test]
async fn authorize_refuses_unknown_clients_and_bad_pkce_parameters() {
    let sim = sim().await;
    let url = format!("{}/login/oauth/authorize", sim.url());
    let resp = client()
        .get(&url)
        .query(&[
            ("client_id", "someone-else"),
            ("redirect_uri", REDIRECT),
            ("sim_user", "alice"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(
        sim.last_authorize().unwrap().client_id.as_deref(),
        Some("someone-else")
    );

    let (_, challenge) = pkce();
    let cases: [&[(&str, &str)]; 3] = [
        &[("code_challenge", challenge.as_str())],
        &[("code_challenge_method", "S256")],
        &[
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "plain"),
        ],
    ];
    for extra in cases {
        let mut query = vec![
            ("client_id", "sim-client-id"),
            ("redirect_uri", REDIRECT),
            ("state", "s1"),
            ("sim_user", "alice"),
        ];
        query.extend_from_slice(extra);
        let resp = client().get(&url).query(&query).send().await.unwrap();
        assert_eq!(resp.status(), 302);
        let (_, pairs) = location_params(&resp);
        assert_eq!(param(&pairs, "error"), Some("invalid_request"), "{extra:?}");
        assert_eq!(param(&pairs, "state"), Some("s1"));
        assert!(param(&pairs, "code").is_none());
    }
}

#[tokio::test]
async fn scope_in_token_is_what_was_requested_normalised() {
    let sim = sim().await;
    let resp = client()
        .get(format!("{}/login/oauth/authorize", sim.url()))
        .query(&[
            ("client_id", "sim-client-id"),
            ("redirect_uri", REDIRECT),
            ("scope", "user user:email"),
            ("sim_user", "grace"),
        ])
        .send()
        .await
        .unwrap();
    let (_, pairs) = location_params(&resp);
    assert!(
        param(&pairs, "state").is_none(),
        "no state sent, none echoed"
    );
    let code = param(&pairs, "code").unwrap().to_string();
    let (_, _, body) = exchange_json(
        &sim,
        &[
            ("client_id", "sim-client-id"),
            ("client_secret", "sim-client-secret"),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(body["scope"], "user");
    // The basic-auth decoder handles url-encoded credentials (oauth2 crate style).
    let creds = base64::engine::general_purpose::STANDARD.encode("sim-client-id:sim-client-secret");
    let resp = client()
        .post(format!("{}/login/oauth/access_token", sim.url()))
        .header("authorization", format!("Basic {creds}"))
        .header("accept", "application/json")
        .form(&[("code", "unknown")])
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["error"], "bad_verification_code",
        "credentials were accepted"
    );
}
