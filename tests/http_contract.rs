//! The HTTP contract (docs/contract.md): every bad input gets its status and the JSON
//! error shape; forged identity and cross-site requests are refused; Redis
//! failures are 503, not hangs.

use std::time::{Duration, Instant};

use futures_util::future::{FutureExt, LocalBoxFuture};
use insta::{assert_json_snapshot, assert_snapshot};
use redis::Commands;
use serde_json::{json, Value};

use crate::common::app::status_json;
use crate::common::TestApp;

/// `"<status> <body>"` for inline snapshots.
async fn show(response: reqwest::Response) -> String {
    let (status, body) = status_json(response).await;
    format!("{status} {body}")
}

#[tokio::test]
async fn bad_bodies_get_their_status_and_json_error() {
    let app = TestApp::spawn().await;
    let bob = app.sign_in("bob").await;
    let post = || bob.client.post(app.at("/exclude"));
    let json_ct = ("content-type", "application/json");

    assert_snapshot!(show(post().header(json_ct.0, json_ct.1).send().await.unwrap()).await,
        @r#"400 {"error":"missing_body","message":"the request has no body; send {\"id\": \"...\"}"}"#);
    assert_snapshot!(show(post().send().await.unwrap()).await,
        @r#"400 {"error":"missing_body","message":"the request has no body; send {\"id\": \"...\"}"}"#);
    assert_snapshot!(show(post().header("content-type", "text/plain").body("id=x").send().await.unwrap()).await,
        @r#"415 {"error":"unsupported_media_type","message":"send the body as application/json or application/x-www-form-urlencoded"}"#);
    let (status, body) = status_json(
        post()
            .header(json_ct.0, json_ct.1)
            .body("{\"id\":")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("malformed_json"))
    );
    assert_snapshot!(show(post().json(&json!({"node": "x"})).send().await.unwrap()).await,
        @r#"400 {"error":"missing_field","message":"the body has no \"id\" field"}"#);
    assert_snapshot!(show(post().json(&json!(["x"])).send().await.unwrap()).await,
        @r#"400 {"error":"malformed_request","message":"the body must be a JSON object"}"#);
    assert_snapshot!(show(post().form(&[("node", "x")]).send().await.unwrap()).await,
        @r#"400 {"error":"missing_field","message":"the form has no id field"}"#);
    for bad in [
        json!(5),
        json!(null),
        json!(true),
        json!({"a": 1}),
        json!([]),
    ] {
        let (status, body) =
            status_json(post().json(&json!({"id": bad})).send().await.unwrap()).await;
        assert_eq!(
            body,
            json!({"error": "invalid_id", "message": "id must be a string"}),
            "{bad}"
        );
        assert_eq!(status, 422);
    }
    assert_snapshot!(show(post().json(&json!({"id": ""})).send().await.unwrap()).await,
        @r#"422 {"error":"invalid_id","message":"id must not be empty"}"#);
    assert_snapshot!(show(post().json(&json!({"id": "x".repeat(257)})).send().await.unwrap()).await,
        @r#"422 {"error":"invalid_id","message":"id must be at most 256 bytes"}"#);
    for control in ["a\u{0}b", "line\nbreak", "c1\u{9b}x"] {
        let (status, body) =
            status_json(post().json(&json!({"id": control})).send().await.unwrap()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (422, Some("invalid_id")),
            "{control:?}"
        );
    }
    let big = format!("{{\"id\":\"{}\"}}", "x".repeat(17 * 1024));
    assert_snapshot!(show(post().header(json_ct.0, json_ct.1).body(big).send().await.unwrap()).await,
        @r#"413 {"error":"payload_too_large","message":"request body is larger than 16384 bytes"}"#);
    let (status, body) = status_json(
        bob.client
            .delete(app.at("/exclusions/a%00b"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (422, Some("invalid_id")));
    // axum's own rejections (bad percent-encoding in the path or the query)
    // speak the same JSON shape.
    for url in [
        app.at("/exclusions/%FF%FE"),
        app.at("/oauth2/callback?state=%FF&code=x"),
    ] {
        let (status, body) = status_json(
            bob.client
                .request(
                    if url.contains("exclusions") {
                        reqwest::Method::DELETE
                    } else {
                        reqwest::Method::GET
                    },
                    &url,
                )
                .header("accept", "application/json")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{url}: {body}");
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{url}: {body}"
        );
    }
    let stored: usize = app.local_conn().scard("user:1002:mnodes").unwrap();
    assert_eq!(stored, 0, "no bad input was stored");
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_json() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/nope").await;
    assert_snapshot!(format!("{status} {body}"),
        @r#"404 {"error":"not_found","message":"not found"}"#);
    let response = app.client().put(app.at("/exclude")).send().await.unwrap();
    assert!(response.headers().contains_key("allow"));
    assert_snapshot!(show(response).await,
        @r#"405 {"error":"method_not_allowed","message":"method not allowed on this path"}"#);
}

#[tokio::test]
async fn signed_out_requests_and_forged_identity_get_401_and_write_nothing() {
    let app = TestApp::spawn().await;
    app.sign_in("alice").await; // user 1001 exists
    let client = app.client();
    let forged = [
        client.get(app.at("/me")).header("cookie", "user_id=1001"),
        client.get(app.at("/me?user_id=1001")),
        client.get(app.at("/me")).header("x-user-id", "1001"),
        client
            .get(app.at("/exclusions"))
            .header("cookie", "user_id=1001"),
        client
            .post(app.at("/exclude?user_id=1001"))
            .json(&json!({"id": "x"})),
        client
            .post(app.at("/exclude"))
            .header("cookie", "user_id=1001")
            .json(&json!({"id": "x", "user_id": 1001})),
        client
            .post(app.at("/exclude"))
            .header("x-user-id", "1001")
            .form(&[("id", "x"), ("user_id", "1001")]),
        client
            .delete(app.at("/exclusions/x"))
            .header("cookie", "user_id=1001"),
        client
            .get(app.at("/me"))
            .header("cookie", "sponsorgate_session=forged-value"),
    ];
    for request in forged {
        let (status, body) = status_json(request.send().await.unwrap()).await;
        assert_eq!(
            (status, body),
            (
                401,
                json!({"error": "not_signed_in", "message": "sign in first"})
            )
        );
    }
    let exists: bool = app.local_conn().exists("user:1001:mnodes").unwrap();
    assert!(!exists, "nothing was written for the forged requests");
}

#[tokio::test]
async fn cross_site_state_changes_are_refused() {
    let app = TestApp::spawn().await;
    let bob = app.sign_in("bob").await;
    // The same request as `SignedIn::exclude`, open to extra headers.
    let exclude_x = || {
        bob.client
            .post(app.at("/exclude"))
            .json(&json!({"id": "x"}))
    };
    let attempts = [
        exclude_x().header("sec-fetch-site", "cross-site"),
        exclude_x().header("origin", "https://evil.example"),
        bob.client
            .delete(app.at("/exclusions/x"))
            .header("sec-fetch-site", "cross-site"),
        bob.client
            .post(app.at("/logout"))
            .header("origin", "https://evil.example"),
    ];
    for request in attempts {
        let (status, body) = status_json(request.send().await.unwrap()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("cross_site_request")),
            "{body}"
        );
    }
    let exists: bool = app.local_conn().exists("user:1002:mnodes").unwrap();
    assert!(!exists);
    assert_eq!(bob.get(&app, "/me").await.0, 200, "still signed in");
    let same_origin = exclude_x()
        .header("sec-fetch-site", "same-origin")
        .header("origin", &app.url)
        .send()
        .await
        .unwrap();
    assert_eq!(same_origin.status(), 200);
}

#[tokio::test]
async fn local_redis_down_gives_503_fast_and_readyz_says_so() {
    let mut app = TestApp::spawn().await;
    let bob = app.sign_in("bob").await;
    let (status, body) = app.get("/readyz").await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"local": "ok", "remote": "disabled", "backlog": 0})
        )
    );
    app.local.stop();
    let requests: [LocalBoxFuture<'_, (u16, Value)>; 3] = [
        bob.get(&app, "/me").boxed_local(),
        bob.get(&app, "/exclusions").boxed_local(),
        bob.exclude(&app, "x").boxed_local(),
    ];
    for request in requests {
        let started = Instant::now();
        let (status, body) = request.await;
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("redis_unavailable")),
            "{body}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no hang: {:?}",
            started.elapsed()
        );
    }
    let (status, body) = app.get("/readyz").await;
    assert_eq!((status, body["local"].as_str()), (503, Some("down")));
    assert_eq!(app.get("/healthz").await.0, 200);
    // Back up (empty): the service recovers by itself.
    app.local.restart();
    crate::common::eventually(Duration::from_secs(5), "readyz ok again", || async {
        (app.get("/readyz").await.0 == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let app = TestApp::spawn().await;
    let bob = app.sign_in("bob").await;
    bob.remove(&app, "some-id").await;
    let text = app.metrics().await;
    assert!(
        text.contains(
            r#"sponsorgate_http_requests_total{route="/exclusions/{id}",status="204"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains("sponsorgate_http_request_duration_seconds_bucket"));
    assert!(text.contains("sponsorgate_github_errors_total") || !text.contains("github_errors{"));
    assert!(!text.contains("some-id"), "raw paths never become labels");
}

#[tokio::test]
async fn openapi_document_lists_every_json_route() {
    let app = TestApp::spawn().await;
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/login", "get"),
        ("/oauth2/callback", "get"),
        ("/logout", "post"),
        ("/me", "get"),
        ("/exclude", "post"),
        ("/exclusions", "get"),
        ("/exclusions/{id}", "delete"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/activity", "get"),
        ("/tokens", "post"),
        ("/tokens", "get"),
        ("/tokens/{id}", "delete"),
        ("/", "get"),
        ("/static/{file}", "get"),
        ("/exclusions/{id}/delete", "post"),
        ("/tokens/new", "post"),
        ("/tokens/{id}/revoke", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    // And nothing documented that the router does not serve.
    let client = app.client();
    for path in paths.keys() {
        let probe = path.replace("{id}", "x").replace("{file}", "app.css");
        let status = client
            .request(reqwest::Method::OPTIONS, app.at(&probe))
            .send()
            .await
            .unwrap()
            .status();
        assert_ne!(status, 404, "{path} is documented but not routed");
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}

/// The whole document, so that any change to the API's description (a path,
/// a schema, an operationId) shows up in review as a snapshot diff.
#[tokio::test]
async fn openapi_document_matches_its_snapshot() {
    let app = TestApp::spawn().await;
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, 200, "{doc}");
    assert_json_snapshot!("openapi", doc);
}
