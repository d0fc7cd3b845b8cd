//! The sign-in path end to end: sponsorgate ⇄ fake GitHub ⇄ real Redis.

use std::time::{Duration, Instant};

use github_sim::{Endpoint, Failure};
use reqwest::header::ACCEPT;
use serde_json::json;

use crate::common::app::{location, status_json};
use crate::common::TestApp;

fn details(app: &TestApp, id: u64) -> std::collections::HashMap<String, String> {
    redis::cmd("HGETALL")
        .arg(format!("user_details:{id}"))
        .query(&mut app.local_conn())
        .unwrap()
}

fn sponsors(app: &TestApp) -> Vec<u64> {
    let mut ids: Vec<u64> = redis::cmd("SMEMBERS")
        .arg(format!("sponsors:{}", app.config.sponsorable))
        .query(&mut app.local_conn())
        .unwrap();
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn login_redirects_to_github_with_state_and_pkce() {
    let app = TestApp::spawn().await;
    let client = app.client();
    let first = url::Url::parse(&app.begin_login(&client).await).unwrap();
    assert_eq!(first.path(), "/login/oauth/authorize");
    assert!(first.as_str().starts_with(&app.sim.url()));
    let q: std::collections::HashMap<_, _> = first.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "sim-client-id");
    assert_eq!(q["redirect_uri"], format!("{}/oauth2/callback", app.url));
    assert_eq!(q["scope"], "read:user user:email");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43, "base64url SHA-256");
    assert!(q["state"].len() >= 16);
    let second = url::Url::parse(&app.begin_login(&client).await).unwrap();
    let q2: std::collections::HashMap<_, _> = second.query_pairs().into_owned().collect();
    assert_ne!(q["state"], q2["state"], "a fresh state per sign-in");
    assert_ne!(q["code_challenge"], q2["code_challenge"]);
}

#[tokio::test]
async fn sponsor_of_an_organization_signs_in_with_keys_written() {
    let app = TestApp::spawn().await;
    let alice = app.sign_in("alice").await;
    assert_eq!(
        alice.body,
        json!({"status": "success", "id": 1001, "user_login": "alice", "email": "alice@example.com", "sponsor": true})
    );
    let d = details(&app, 1001);
    assert_eq!(d["id"], "1001");
    assert_eq!(d["user_login"], "alice");
    assert_eq!(d["email"], "alice@example.com");
    assert_eq!(d["sponsor"], "1");
    assert_eq!(d["tier_monthly_usd"], "10");
    assert!(d["avatar_url"].starts_with("http"));
    assert!(d.contains_key("name"));
    let checked: u64 = d["checked_at"].parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(checked) < 60);
    assert_eq!(sponsors(&app), vec![1001]);
    let (status, me) = alice.get(&app, "/me").await;
    assert_eq!(status, 200);
    assert_eq!(me["sponsor"], true);
    assert_eq!(me["tier_monthly_usd"], 10);
    assert_eq!(me["user_login"], "alice");
}

#[tokio::test]
async fn every_fixture_user_gets_the_right_sponsor_status() {
    // (sponsorable, minimum USD, login, sponsor?)
    let cases = [
        ("acme-org", 0, "bob", false),
        ("maintainer-mia", 0, "carol", true),
        ("acme-org", 0, "carol", false),
        ("acme-org", 0, "dave", true),
        ("acme-org", 0, "erin", true),
        ("acme-org", 5, "erin", false),
        ("acme-org", 0, "frank", true),
        ("acme-org", 5, "frank", false),
        ("acme-org", 5, "alice", true),
        ("acme-org", 0, "heidi", true),
        ("acme-org", 0, "grace", false),
    ];
    for (sponsorable, min, login, expected) in cases {
        let app = TestApp::builder()
            .sponsorable(sponsorable)
            .var("SPONSOR_MIN_MONTHLY_USD", min)
            .start()
            .await;
        let user = app.sign_in(login).await;
        assert_eq!(
            user.body["sponsor"], expected,
            "{login} for {sponsorable} with min ${min}"
        );
        let is_member = sponsors(&app).contains(&user.id);
        assert_eq!(is_member, expected, "sponsors set for {login}");
        assert_eq!(
            details(&app, user.id)["sponsor"],
            if expected { "1" } else { "0" }
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn null_public_email_falls_back_to_the_primary_verified_address() {
    let app = TestApp::spawn().await;
    let grace = app.sign_in("grace").await;
    assert_eq!(grace.body["email"], "grace@users.example.com");
    assert_eq!(details(&app, 1007)["email"], "grace@users.example.com");
    assert!(app.sim.calls(Endpoint::Emails) >= 1);
    let before = app.sim.calls(Endpoint::Emails);
    app.sign_in("alice").await;
    assert_eq!(
        app.sim.calls(Endpoint::Emails),
        before,
        "no /user/emails call when the email is public"
    );
}

#[tokio::test]
async fn each_github_call_is_made_once_per_sign_in() {
    let app = TestApp::spawn().await;
    app.sign_in("alice").await;
    assert_eq!(app.sim.calls(Endpoint::Token), 1);
    assert_eq!(app.sim.calls(Endpoint::User), 1);
    assert_eq!(app.sim.calls(Endpoint::Graphql), 1);
}

#[tokio::test]
async fn session_id_changes_at_sign_in_and_logout_ends_it() {
    let app = TestApp::spawn().await;
    let client = app.client();
    let login = client.get(app.at("/login")).send().await.unwrap();
    let before = session_cookie(&login).expect("a session cookie for the pending sign-in");
    assert!(before.contains("HttpOnly"), "{before}");
    assert!(before.contains("SameSite=Lax"), "{before}");
    assert!(
        !before.contains("Secure"),
        "plain http PUBLIC_URL: {before}"
    );
    let callback = app
        .authorize_at_github(&client, &location(&login), "bob")
        .await;
    let done = client
        .get(callback)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    let after = session_cookie(&done).expect("a new session cookie at sign-in");
    assert_ne!(
        cookie_value(&before),
        cookie_value(&after),
        "new session id"
    );
    let sessions: Vec<String> = redis::cmd("KEYS")
        .arg("session:*")
        .query(&mut app.local_conn())
        .unwrap();
    assert_eq!(
        sessions.len(),
        1,
        "the pre-login session record is gone: {sessions:?}"
    );
    assert_eq!(
        client.get(app.at("/me")).send().await.unwrap().status(),
        200
    );
    let out = client.post(app.at("/logout")).send().await.unwrap();
    assert_eq!(out.status(), 204);
    assert_eq!(
        client.get(app.at("/me")).send().await.unwrap().status(),
        401
    );
    let sessions: Vec<String> = redis::cmd("KEYS")
        .arg("session:*")
        .query(&mut app.local_conn())
        .unwrap();
    assert!(
        sessions.is_empty(),
        "logout deletes the session: {sessions:?}"
    );
}

#[tokio::test]
async fn https_public_url_makes_the_cookie_secure() {
    // A real app's id: the simulator's is refused off loopback.
    let app = TestApp::builder()
        .var("PUBLIC_URL", "https://gate.example.com")
        .var("GITHUB_CLIENT_ID", "Iv1.a-real-oauth-app")
        .start()
        .await;
    let response = app.client().get(app.at("/login")).send().await.unwrap();
    let cookie = session_cookie(&response).unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
}

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("sponsorgate_session="))
        .map(str::to_owned)
}

fn cookie_value(set_cookie: &str) -> &str {
    set_cookie.split(';').next().unwrap_or("")
}

/// The callback as an API client (`Accept: application/json`) calls it.
async fn callback_json(client: &reqwest::Client, url: &str) -> (u16, serde_json::Value) {
    status_json(
        client
            .get(url)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn assert_signed_out(app: &TestApp, client: &reqwest::Client) {
    let (status, body) = status_json(client.get(app.at("/me")).send().await.unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("not_signed_in"))
    );
}

#[tokio::test]
async fn missing_wrong_and_reused_state_are_refused_without_a_session() {
    let app = TestApp::spawn().await;

    // Missing: the callback without any pending sign-in.
    let client = app.client();
    let (status, body) = callback_json(&client, &app.at("/oauth2/callback?code=x&state=y")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_state")),
        "{body}"
    );
    assert_signed_out(&app, &client).await;

    // Wrong: a state that is not the one issued.
    let client = app.client();
    let authorize = app.begin_login(&client).await;
    let callback = app.authorize_at_github(&client, &authorize, "alice").await;
    let mut forged = url::Url::parse(&callback).unwrap();
    let code = forged
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    forged
        .query_pairs_mut()
        .clear()
        .append_pair("code", &code)
        .append_pair("state", "forged-state");
    let (status, body) = callback_json(&client, forged.as_str()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_state")),
        "{body}"
    );
    assert_signed_out(&app, &client).await;
    // The real state was consumed by that attempt: single use.
    let (status, _) = callback_json(&client, &callback).await;
    assert_eq!(status, 400);
    assert_signed_out(&app, &client).await;

    // Reused: a successful callback replayed.
    let alice = app.sign_in("alice").await;
    let client = app.client();
    let authorize = app.begin_login(&client).await;
    let callback = app.authorize_at_github(&client, &authorize, "bob").await;
    let (status, _) = callback_json(&client, &callback).await;
    assert_eq!(status, 200);
    let replay = app.client();
    let (status, body) = callback_json(&replay, &callback).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_state"))
    );
    assert_signed_out(&app, &replay).await;
    drop(alice);
}

#[tokio::test]
async fn access_denied_is_a_clear_refusal_in_json_and_html() {
    let app = TestApp::spawn().await;
    let client = app.client();
    let authorize = app.begin_login(&client).await;
    let callback = app.deny_at_github(&client, &authorize).await;
    assert!(callback.contains("error=access_denied"));
    let (status, body) = callback_json(&client, &callback).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    assert_signed_out(&app, &client).await;

    // A browser gets a page with the same status, not raw JSON.
    let client = app.client();
    let authorize = app.begin_login(&client).await;
    let callback = app.deny_at_github(&client, &authorize).await;
    let page = client
        .get(callback)
        .header(ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 403);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text().await.unwrap().contains("declined"));
}

#[tokio::test]
async fn a_used_code_is_refused_by_github_and_reported_as_400() {
    let app = TestApp::spawn().await;
    let client = app.client();
    let authorize = app.begin_login(&client).await;
    let callback = app.authorize_at_github(&client, &authorize, "alice").await;
    let code = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let (status, _) = callback_json(&client, &callback).await;
    assert_eq!(status, 200);
    // A new sign-in attempt that smuggles the already-used code.
    let other = app.client();
    let authorize = url::Url::parse(&app.begin_login(&other).await).unwrap();
    let state = authorize
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let url = format!("{}/oauth2/callback?code={code}&state={state}", app.url);
    let (status, body) = callback_json(&other, &url).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("bad_verification_code")),
        "{body}"
    );
    assert_signed_out(&app, &other).await;
}

#[tokio::test]
async fn github_slow_or_down_gives_502_in_bounded_time_and_no_session() {
    let app = TestApp::builder()
        .var("GITHUB_TIMEOUT_SECS", 1)
        .start()
        .await;
    for (endpoint, failure) in [
        (Endpoint::Token, Failure::Hang),
        (Endpoint::User, Failure::Hang),
        (Endpoint::Token, Failure::Status(503)),
        (Endpoint::User, Failure::Status(502)),
        (Endpoint::User, Failure::Unauthorized),
    ] {
        app.sim.set_failure(endpoint, failure);
        let client = app.client();
        let authorize = app.begin_login(&client).await;
        let callback = app.authorize_at_github(&client, &authorize, "alice").await;
        let started = Instant::now();
        let (status, body) = callback_json(&client, &callback).await;
        assert_eq!(status, 502, "{endpoint:?} {failure:?}: {body}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "bounded by GITHUB_TIMEOUT_SECS"
        );
        assert_signed_out(&app, &client).await;
        app.sim.set_failure(endpoint, Failure::None);
    }
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("user_details:*")
        .query(&mut app.local_conn())
        .unwrap();
    assert!(
        keys.is_empty(),
        "nothing written for failed sign-ins: {keys:?}"
    );
}

#[tokio::test]
async fn a_failed_sponsorship_check_never_demotes_a_known_sponsor() {
    let app = TestApp::spawn().await;
    app.sign_in("alice").await;
    assert_eq!(sponsors(&app), vec![1001]);
    for failure in [
        Failure::GraphqlErrors,
        Failure::Unauthorized,
        Failure::Status(502),
    ] {
        app.sim.set_failure(Endpoint::Graphql, failure);
        let again = app.sign_in("alice").await;
        assert_eq!(again.body["sponsor"], true, "{failure:?}");
        assert_eq!(sponsors(&app), vec![1001], "{failure:?}");
    }
    // A brand-new user whose check fails is signed in with no sponsor status.
    let bob = app.sign_in("bob").await;
    assert_eq!(bob.body["sponsor"], false);
}

#[tokio::test]
async fn a_sign_in_that_finds_a_sponsorship_ended_demotes_after_the_grace() {
    let app = TestApp::builder()
        .var("SPONSOR_GRACE_SECS", 2)
        .start()
        .await;
    assert_eq!(app.sign_in("alice").await.body["sponsor"], true);
    app.sim.set_sponsorship("alice", "acme-org", None);
    let again = app.sign_in("alice").await;
    assert_eq!(
        again.body["sponsor"], true,
        "sponsor treatment during the grace"
    );
    assert_eq!(sponsors(&app), vec![1001]);
    crate::common::eventually(
        Duration::from_secs(10),
        "demotion once the grace is over",
        || async { sponsors(&app).is_empty().then_some(()) },
    )
    .await;
    let (_, me) = again.get(&app, "/me").await;
    assert_eq!(me["sponsor"], false);
}
