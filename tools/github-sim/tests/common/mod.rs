//! Helpers shared by the integration tests (real HTTP against a running sim).
#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different part of the helpers"
)]

use base64::Engine;
use reqwest::redirect::Policy;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub use github_sim::{Endpoint, Failure, FixtureSponsorship, GithubSim, SimOptions};

/// The app's GraphQL documents, exactly as the app sends them.
pub const VIEWER_SPONSORSHIP: &str = include_str!("../../../../graphql/viewer_sponsorship.graphql");
pub const SPONSORABLE_SPONSORSHIPS: &str =
    include_str!("../../../../graphql/sponsorable_sponsorships.graphql");

pub const UA: &str = "github-sim-tests";
pub const SCOPES: &[&str] = &["read:user", "user:email"];

pub async fn sim() -> GithubSim {
    GithubSim::start(SimOptions::default())
        .await
        .expect("sim starts")
}

/// A client that sends a User-Agent and does not follow redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(UA)
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// A client with no User-Agent header at all (reqwest's default).
pub fn bare_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// (verifier, S256 challenge)
pub fn pkce() -> (String, String) {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-extra-entropy".to_string();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub const REDIRECT: &str = "http://127.0.0.1:8080/oauth2/callback";

/// Query pairs of a redirect `Location`.
pub fn location_params(resp: &reqwest::Response) -> (String, Vec<(String, String)>) {
    let location = resp
        .headers()
        .get("location")
        .expect("Location header")
        .to_str()
        .unwrap()
        .to_string();
    let url = url::Url::parse(&location).expect("absolute Location");
    let pairs = url.query_pairs().into_owned().collect();
    (location, pairs)
}

pub fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Runs `GET /login/oauth/authorize?...&sim_user=LOGIN` and returns the code.
pub async fn authorize_code(sim: &GithubSim, login: &str, challenge: Option<&str>) -> String {
    let mut query = vec![
        ("client_id", "sim-client-id".to_string()),
        ("redirect_uri", REDIRECT.to_string()),
        ("scope", "read:user user:email".to_string()),
        ("state", "st-123".to_string()),
        ("sim_user", login.to_string()),
    ];
    if let Some(c) = challenge {
        query.push(("code_challenge", c.to_string()));
        query.push(("code_challenge_method", "S256".to_string()));
    }
    let resp = client()
        .get(format!("{}/login/oauth/authorize", sim.url()))
        .query(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let (_, pairs) = location_params(&resp);
    assert_eq!(param(&pairs, "state"), Some("st-123"));
    param(&pairs, "code").expect("code in redirect").to_string()
}

/// POSTs a GraphQL request and returns (status, body).
pub async fn gql(sim: &GithubSim, token: &str, query: &str, variables: Value) -> (u16, Value) {
    let resp = client()
        .post(format!("{}/graphql", sim.url()))
        .bearer_auth(token)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.json::<Value>().await.unwrap();
    (status, body)
}
