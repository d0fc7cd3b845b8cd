//! Facing the internet: rate limits shared by instances, cheap anonymous
//! visitors, a final logout, slow clients, webhook replays, security headers.

use std::time::{Duration, Instant};

use redis::Commands;
use reqwest::header::{HeaderMap, COOKIE};
use serde_json::json;
use sponsorgate::sponsorship;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::app::{status_json, Mode};
use crate::common::{eventually, TestApp};

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
}

in_every_mode!(writes_are_limited_per_user_across_instances);

async fn writes_are_limited_per_user_across_instances(mode: Mode) {
    let app = TestApp::builder()
        .mode(mode)
        .var("RATE_LIMIT_PER_MINUTE", 3)
        .var("SESSION_KEY", TEST_SESSION_KEY)
        .start()
        .await;
    let other = app.another_instance().await;
    let bob = app.sign_in("bob").await;
    let alice = app.sign_in("alice").await;

    let first = bob
        .client
        .post(app.at("/exclude"))
        .json(&json!({"id": "a"}));
    let response = first.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(response.headers(), "ratelimit-policy"),
        "\"writes\";q=3;w=60"
    );
    assert!(
        header(response.headers(), "ratelimit").starts_with("\"writes\";r=2;t="),
        "{:?}",
        response.headers()
    );
    // The second and third through the other instance: the count is shared.
    for id in ["b", "c"] {
        let response = reqwest::Client::new()
            .post(other.at("/exclude"))
            .header(COOKIE, &bob.session_cookie)
            .json(&json!({"id": id}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{id} through the second instance");
    }
    let refused = bob
        .client
        .delete(app.at("/exclusions/a"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let retry: u64 = header(refused.headers(), "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert!(header(refused.headers(), "ratelimit").starts_with("\"writes\";r=0;t="));
    let (_, body) = status_json(refused).await;
    assert_eq!(body["error"], "rate_limited", "{body}");
    let members: Vec<String> = app.local_conn().smembers("user:1002:mnodes").unwrap();
    assert_eq!(members.len(), 3, "the refused removal changed nothing");

    // Another user has a count of their own; reads are not limited.
    assert_eq!(alice.exclude(&app, "x").await.0, 200);
    assert_eq!(bob.get(&app, "/exclusions").await.0, 200);
    other.stop().await;
}

/// A write is counted in its own step; one that stops before it (a bad id,
/// a failed `If-Match`) and the other writes (tokens) are counted apart, on
/// the same counter.
#[tokio::test]
async fn every_write_counts_once_whether_its_step_counts_it_or_not() {
    let app = TestApp::builder()
        .var("RATE_LIMIT_PER_MINUTE", 5)
        .start()
        .await;
    let alice = app.sign_in("alice").await;
    let remaining = |response: &reqwest::Response| {
        header(response.headers(), "ratelimit")
            .split(";r=")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let post = |body: serde_json::Value| alice.client.post(app.at("/exclude")).json(&body).send();
    let counted = post(json!({"id": "a"})).await.unwrap();
    assert_eq!((counted.status().as_u16(), remaining(&counted)), (200, 4));
    let invalid = post(json!({"id": ""})).await.unwrap();
    assert_eq!((invalid.status().as_u16(), remaining(&invalid)), (422, 3));
    let stale = alice
        .client
        .delete(app.at("/exclusions/a"))
        .header("if-match", "\"not-the-etag\"")
        .send()
        .await
        .unwrap();
    assert_eq!((stale.status().as_u16(), remaining(&stale)), (412, 2));
    let token = alice
        .client
        .post(app.at("/tokens"))
        .json(&json!({"name": "t", "scopes": ["exclusions:read"], "expires_in_days": null}))
        .send()
        .await
        .unwrap();
    assert_eq!((token.status().as_u16(), remaining(&token)), (201, 1));
    let removed = alice
        .client
        .delete(app.at("/exclusions/a"))
        .send()
        .await
        .unwrap();
    assert_eq!((removed.status().as_u16(), remaining(&removed)), (204, 0));
    let refused = post(json!({"id": "b"})).await.unwrap();
    assert_eq!(refused.status(), 429);
    let members: Vec<String> = app.local_conn().smembers("user:1001:mnodes").unwrap();
    assert!(
        members.is_empty(),
        "the refused write changed nothing: {members:?}"
    );
}

/// A quota above one request per µs of the window once divided by zero in
/// the GCRA: the count came back unusable and the write was counted twice.
#[tokio::test]
async fn a_huge_quota_is_counted_once_in_the_write_step() {
    let app = TestApp::builder()
        .var("RATE_LIMIT_PER_MINUTE", 1_000_000_000)
        .start()
        .await;
    let alice = app.sign_in("alice").await;
    let response = alice
        .client
        .post(app.at("/exclude"))
        .json(&json!({"id": "a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // One 1 µs interval of the 60 s window spent: counted once.
    let limit = header(response.headers(), "ratelimit");
    assert!(limit.starts_with("\"writes\";r=59999999;"), "{limit}");
}

#[tokio::test]
async fn sign_in_pages_are_limited_per_client_address() {
    let app = TestApp::builder()
        .var("LOGIN_RATE_PER_MINUTE", 2)
        .start()
        .await;
    let client = app.client();
    let login = |forwarded: &'static str| {
        client
            .get(app.at("/login"))
            .header("x-forwarded-for", forwarded)
            .send()
    };
    assert_eq!(login("1.1.1.1").await.unwrap().status(), 302);
    assert_eq!(login("2.2.2.2").await.unwrap().status(), 302);
    // Without TRUST_PROXY the header is the client's word: one address.
    let refused = login("3.3.3.3").await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(
        header(refused.headers(), "ratelimit-policy"),
        "\"login\";q=2;w=60"
    );
    app.stop().await;

    let proxied = TestApp::builder()
        .var("LOGIN_RATE_PER_MINUTE", 1)
        .var("TRUST_PROXY", 1)
        .start()
        .await;
    let client = proxied.client();
    for (forwarded, status) in [
        ("9.9.9.9, 1.1.1.1", 302),
        ("9.9.9.9, 2.2.2.2", 302),
        ("8.8.8.8, 2.2.2.2", 429),
    ] {
        let response = client
            .get(proxied.at("/login"))
            .header("x-forwarded-for", forwarded)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "X-Forwarded-For: {forwarded}");
    }
}

/// Base64 of 64 bytes, for tests that share sessions between instances.
const TEST_SESSION_KEY: &str =
    "c3BvbnNvcmdhdGUgdGVzdCBzZXNzaW9uIGtleSwgc2l4dHktZm91ciBieXRlcyBsb25nLCBub3QgYSBzZWNyZXQu";

fn session_keys(app: &TestApp) -> Vec<String> {
    app.local_conn().keys("session:*").unwrap()
}

#[tokio::test]
async fn an_anonymous_visitor_costs_a_ten_minute_record() {
    let app = TestApp::spawn().await;
    let client = app.client();
    app.begin_login(&client).await;
    let keys = session_keys(&app);
    assert_eq!(keys.len(), 1, "{keys:?}");
    let ttl: i64 = app.local_conn().ttl(&keys[0]).unwrap();
    assert!(
        (1..=600).contains(&ttl),
        "the sign-in record lives ≤ 10 min: {ttl}"
    );

    let bob = app.sign_in("bob").await;
    let keys = session_keys(&app);
    let longest = keys
        .iter()
        .map(|k| app.local_conn().ttl::<_, i64>(k).unwrap())
        .max()
        .unwrap();
    assert!(
        longest > 6 * 24 * 3600,
        "the signed-in session lives 7 days: {longest}"
    );
    // A signed-in user who starts another sign-in keeps the long session.
    app.begin_login(&bob.client).await;
    assert_eq!(bob.get(&app, "/me").await.0, 200);
}

#[tokio::test]
async fn logout_is_final_even_against_requests_in_flight() {
    let app = TestApp::spawn().await;
    for round in 0..10 {
        let bob = app.sign_in("bob").await;
        let cookie = bob.session_cookie.clone();
        let plain = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        // Requests that save the session (GET /login writes the sign-in
        // state into it) race the logout.
        let racers: Vec<_> = (0..40)
            .map(|i| {
                let request = plain.get(app.at("/login")).header(COOKIE, &cookie);
                tokio::spawn(async move {
                    // Spread over the moment of the logout.
                    tokio::time::sleep(Duration::from_micros(100 * i)).await;
                    request.send().await.map(|r| r.status())
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(2)).await;
        let logout = plain
            .post(app.at("/logout"))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(logout.status(), 204);
        for racer in racers {
            let _ = racer.await.unwrap();
        }
        let me = plain
            .get(app.at("/me"))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 401, "round {round}: the old cookie is dead");
    }
}

#[tokio::test]
async fn a_session_deleted_by_logout_is_not_saved_back() {
    use sponsorgate::session::RedisSessionStore;
    use tower_sessions::session::{Id, Record};
    use tower_sessions::session_store::SessionStore;

    let app = TestApp::spawn().await;
    let conn = sponsorgate::app::local_connection(&app.local.url()).unwrap();
    let store = RedisSessionStore::new(conn);
    let mut record = Record {
        id: Id::default(),
        data: Default::default(),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    };
    store.create(&mut record).await.unwrap();
    assert!(store.load(&record.id).await.unwrap().is_some());
    store.delete(&record.id).await.unwrap();
    store.save(&record).await.unwrap();
    assert!(
        store.load(&record.id).await.unwrap().is_none(),
        "a save after the delete does not bring it back"
    );
}

/// Sends a request head one header line per `pause`, never finishing it.
async fn dribble(mut stream: TcpStream, pause: Duration) {
    let _ = stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await;
    for i in 0.. {
        tokio::time::sleep(pause).await;
        if stream
            .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn healthz_answers(url: &str) -> bool {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    matches!(client.get(url).send().await, Ok(r) if r.status() == 200)
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_connections_are_capped() {
    let app = TestApp::builder().var("MAX_CONNECTIONS", 3).start().await;
    let addr = app.url.trim_start_matches("http://").to_owned();
    let healthz = app.at("/healthz");
    assert!(healthz_answers(&healthz).await);
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..3 {
        let stream = TcpStream::connect(&addr).await.unwrap();
        slow.push(tokio::spawn(dribble(stream, Duration::from_millis(500))));
    }
    // Every slot is held by a dribbler: a new connection is closed at once.
    eventually(Duration::from_secs(5), "the cap refuses", || {
        let healthz = healthz.clone();
        async move { (!healthz_answers(&healthz).await).then_some(()) }
    })
    .await;
    // Within the 10 s header timeout (plus slack) the dribblers are cut off
    // and the service answers again.
    eventually(Duration::from_secs(20), "served again", || {
        let healthz = healthz.clone();
        async move { healthz_answers(&healthz).await.then_some(()) }
    })
    .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(9),
        "served again only once the dribblers were cut off ({elapsed:?})"
    );
    for task in slow {
        task.abort();
    }
    // A connection that sent nothing at all is closed too.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(15), idle.read(&mut buf))
        .await
        .expect("the server closes a silent connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

const WEBHOOK_SECRET: &str = "hardening-webhook-secret";

fn sponsorship_body(action: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "action": action,
        "sponsorship": {
            "node_id": "S_kwHOA1",
            "created_at": "2026-11-01T10:00:00Z",
            "sponsorable": {"login": "acme-org", "id": 9001, "type": "Organization"},
            "sponsor": {"login": "bob", "id": 1002, "type": "User"},
            "tier": {"monthly_price_in_cents": 1000, "is_one_time": false}
        }
    }))
    .unwrap()
}

async fn deliver(app: &TestApp, body: &[u8], delivery: &str) -> u16 {
    reqwest::Client::new()
        .post(app.at("/webhooks/github"))
        .header("content-type", "application/json")
        .header("x-github-event", "sponsorship")
        .header("x-github-delivery", delivery)
        .header(
            "x-hub-signature-256",
            sponsorship::sign(WEBHOOK_SECRET.as_bytes(), body),
        )
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn is_sponsor(app: &TestApp, id: u64) -> bool {
    app.local_conn().sismember("sponsors:acme-org", id).unwrap()
}

#[tokio::test]
async fn a_replayed_webhook_body_is_not_applied_again() {
    let app = TestApp::builder()
        .var("GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .start()
        .await;
    let created = sponsorship_body("created");
    assert_eq!(deliver(&app, &created, "d-1").await, 204);
    assert!(is_sponsor(&app, 1002));
    assert_eq!(
        deliver(&app, &sponsorship_body("cancelled"), "d-2").await,
        204
    );
    assert!(!is_sponsor(&app, 1002));
    // The captured `created` body under a fresh delivery id.
    assert_eq!(deliver(&app, &created, "d-3-replay").await, 202);
    assert!(!is_sponsor(&app, 1002), "the replay did not re-promote");
    let ttl: i64 = app
        .local_conn()
        .ttl(sponsorship::body_key(&created))
        .unwrap();
    assert!(ttl >= 30 * 24 * 3600, "kept at least 30 days: {ttl}");
}

#[tokio::test]
async fn answers_carry_the_security_headers() {
    let app = TestApp::spawn().await;
    let bob = app.sign_in("bob").await;
    let page = bob.client.get(app.at("/")).send().await.unwrap();
    let headers = page.headers();
    let csp = header(headers, "content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(header(headers, "x-content-type-options"), "nosniff");
    assert_eq!(header(headers, "referrer-policy"), "same-origin");

    for path in ["/me", "/exclusions"] {
        let response = bob.client.get(app.at(path)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(response.headers(), "cache-control"),
            "no-store",
            "{path}"
        );
        assert_eq!(
            header(response.headers(), "x-content-type-options"),
            "nosniff"
        );
    }
    let response = bob
        .client
        .post(app.at("/exclude"))
        .json(&json!({"id": "n"}))
        .send()
        .await
        .unwrap();
    assert_eq!(header(response.headers(), "cache-control"), "no-store");
    // Errors too, also the ones a layer made (a 404 of no route).
    let missing = reqwest::get(app.at("/nope")).await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        header(missing.headers(), "x-content-type-options"),
        "nosniff"
    );
    // The HTML error page of a failed sign-in has the CSP.
    let failed = reqwest::Client::new()
        .get(app.at("/oauth2/callback?code=x&state=y"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 400);
    assert!(header(failed.headers(), "content-security-policy").contains("frame-ancestors"));
}
