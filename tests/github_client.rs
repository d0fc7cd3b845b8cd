//! `sponsorgate::github::GithubClient` over real HTTP against the fake GitHub
//! (`github_sim`): sponsorship rules on every fixture, the email fallback,
//! error mapping (401, GraphQL errors, 5xx, hangs) and the OAuth exchange.

use std::time::{Duration, Instant};

use github_sim::{Endpoint, Failure, FixtureSponsorship, GithubSim, SimOptions};
use sponsorgate::github::{
    AccessToken, GithubClient, GithubConfig, GithubError, SecretString, SponsorStatus,
};
use url::Url;

const TIMEOUT: Duration = Duration::from_secs(1);
const SCOPES: &[&str] = &["read:user", "user:email"];
const CALLBACK: &str = "http://127.0.0.1:8080/oauth2/callback";

fn config(sim: &GithubSim) -> GithubConfig {
    let base = Url::parse(&sim.url()).unwrap();
    GithubConfig {
        client_id: SimOptions::default().client_id,
        client_secret: SecretString::from(SimOptions::default().client_secret),
        web_url: base.clone(),
        api_url: base.clone(),
        graphql_url: base.join("/graphql").unwrap(),
        redirect_url: Url::parse(CALLBACK).unwrap(),
        timeout: TIMEOUT,
    }
}

async fn setup() -> (GithubSim, GithubClient) {
    let sim = GithubSim::start(SimOptions::default()).await.unwrap();
    let client = GithubClient::new(config(&sim)).unwrap();
    (sim, client)
}

fn token(sim: &GithubSim, login: &str) -> AccessToken {
    AccessToken::new(sim.issue_token(login, SCOPES))
}

fn status(sponsor: bool, tier: Option<u64>, one_time: bool) -> SponsorStatus {
    SponsorStatus {
        sponsor,
        tier_monthly_usd: tier,
        one_time,
    }
}

#[tokio::test]
async fn fixture_sponsorships_with_min_0_and_min_5() {
    let (sim, gh) = setup().await;
    // (login, sponsorable, with minimum $0, with minimum $5)
    let cases = [
        (
            "alice",
            "acme-org",
            status(true, Some(10), false),
            status(true, Some(10), false),
        ),
        (
            "bob",
            "acme-org",
            status(false, None, false),
            status(false, None, false),
        ),
        // A user (not an organization) as the sponsorable; exactly the minimum counts.
        (
            "carol",
            "maintainer-mia",
            status(true, Some(5), false),
            status(true, Some(5), false),
        ),
        (
            "carol",
            "acme-org",
            status(false, None, false),
            status(false, None, false),
        ),
        // 131 sponsorships: acme-org is found by direct lookup, no paging.
        (
            "dave",
            "acme-org",
            status(true, Some(25), false),
            status(true, Some(25), false),
        ),
        // One-time payments count only when the minimum is 0.
        (
            "erin",
            "acme-org",
            status(true, None, true),
            status(false, None, true),
        ),
        (
            "frank",
            "acme-org",
            status(true, Some(1), false),
            status(false, Some(1), false),
        ),
        (
            "grace",
            "acme-org",
            status(false, None, false),
            status(false, None, false),
        ),
        // Private sponsorship: the viewer sees their own.
        (
            "heidi",
            "acme-org",
            status(true, Some(10), false),
            status(true, Some(10), false),
        ),
        (
            "acme-admin",
            "acme-org",
            status(false, None, false),
            status(false, None, false),
        ),
    ];
    for (login, sponsorable, at_0, at_5) in cases {
        let t = token(&sim, login);
        let got = gh.viewer_sponsorship(&t, sponsorable, 0).await.unwrap();
        assert_eq!(got, at_0, "{login} → {sponsorable}, min $0");
        let got = gh.viewer_sponsorship(&t, sponsorable, 5).await.unwrap();
        assert_eq!(got, at_5, "{login} → {sponsorable}, min $5");
    }
    // Logins are case-insensitive on GitHub.
    let got = gh
        .viewer_sponsorship(&token(&sim, "alice"), "ACME-Org", 5)
        .await
        .unwrap();
    assert!(got.sponsor);
}

#[tokio::test]
async fn higher_minimum_and_ended_sponsorships() {
    let (sim, gh) = setup().await;
    let alice = token(&sim, "alice");
    // $10 is below a $11 minimum (compared in cents, 1000 < 1100).
    let got = gh.viewer_sponsorship(&alice, "acme-org", 11).await.unwrap();
    assert_eq!(got, status(false, Some(10), false));
    // $10.50 counts for a $10 minimum and shows as 10.
    sim.set_sponsorship("alice", "acme-org", Some(FixtureSponsorship::monthly(1050)));
    let got = gh.viewer_sponsorship(&alice, "acme-org", 10).await.unwrap();
    assert_eq!(got, status(true, Some(10), false));
    // A past sponsor is not a sponsor.
    sim.set_sponsorship(
        "alice",
        "acme-org",
        Some(FixtureSponsorship::monthly(1000).ended()),
    );
    let got = gh.viewer_sponsorship(&alice, "acme-org", 0).await.unwrap();
    assert_eq!(got, status(false, None, false));
}

#[tokio::test]
async fn unknown_sponsorable_is_not_sponsored() {
    let (sim, gh) = setup().await;
    let got = gh
        .viewer_sponsorship(&token(&sim, "alice"), "no-such-account", 0)
        .await
        .unwrap();
    assert_eq!(got, SponsorStatus::default());
}

#[tokio::test]
async fn user_profile_and_email_fallback() {
    let (sim, gh) = setup().await;
    let alice = gh.user(&token(&sim, "alice")).await.unwrap();
    assert_eq!(alice.id, 1001);
    assert_eq!(alice.login, "alice");
    assert_eq!(alice.name.as_deref(), Some("Alice Anders"));
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
    assert!(!alice.avatar_url.is_empty());
    assert_eq!(sim.calls(Endpoint::User), 1);
    assert_eq!(
        sim.calls(Endpoint::Emails),
        0,
        "public email: no /user/emails"
    );

    // grace has no public email: the primary verified address from /user/emails.
    let grace = gh.user(&token(&sim, "grace")).await.unwrap();
    assert_eq!(grace.id, 1007);
    assert_eq!(grace.email.as_deref(), Some("grace@users.example.com"));
    assert_eq!(sim.calls(Endpoint::Emails), 1);

    // Without user:email, /user/emails is refused: no email, but still signed in.
    let narrow = AccessToken::new(sim.issue_token("grace", &["read:user"]));
    let grace = gh.user(&narrow).await.unwrap();
    assert_eq!(grace.id, 1007);
    assert_eq!(grace.email, None);
}

#[tokio::test]
async fn bad_credentials_are_unauthorized_never_not_a_sponsor() {
    let (sim, gh) = setup().await;
    let bogus = AccessToken::new("gho_not_a_real_token_000000000000000000");
    let err = gh
        .viewer_sponsorship(&bogus, "acme-org", 0)
        .await
        .unwrap_err();
    assert!(err.is_unauthorized(), "{err:?}");
    let err = gh.user(&bogus).await.unwrap_err();
    assert!(err.is_unauthorized(), "{err:?}");
    let err = gh.sponsors_of(&bogus, "acme-org", 0).await.unwrap_err();
    assert!(err.is_unauthorized(), "{err:?}");

    // A valid token that GitHub stops accepting (revoked) → 401 too.
    let alice = token(&sim, "alice");
    sim.set_failure(Endpoint::Graphql, Failure::Unauthorized);
    let err = gh
        .viewer_sponsorship(&alice, "acme-org", 0)
        .await
        .unwrap_err();
    assert!(matches!(err, GithubError::Unauthorized), "{err:?}");
    sim.set_failure(Endpoint::User, Failure::Unauthorized);
    let err = gh.user(&alice).await.unwrap_err();
    assert!(matches!(err, GithubError::Unauthorized), "{err:?}");
    // Nothing secret in what gets logged.
    assert!(!format!("{err} {err:?}").contains(alice.secret()));
}

#[tokio::test]
async fn graphql_errors_and_failure_statuses() {
    let (sim, gh) = setup().await;
    let alice = token(&sim, "alice");

    sim.set_failure(Endpoint::Graphql, Failure::GraphqlErrors);
    let err = gh
        .viewer_sponsorship(&alice, "acme-org", 0)
        .await
        .unwrap_err();
    match &err {
        GithubError::Graphql(messages) => {
            assert!(
                messages.iter().any(|m| m.contains("RATE_LIMITED")),
                "{messages:?}"
            )
        }
        other => panic!("expected Graphql, got {other:?}"),
    }

    sim.set_failure(Endpoint::Graphql, Failure::Status(502));
    let err = gh
        .viewer_sponsorship(&alice, "acme-org", 0)
        .await
        .unwrap_err();
    assert!(matches!(err, GithubError::Status(502)), "{err:?}");

    sim.set_failure(Endpoint::User, Failure::Status(503));
    let err = gh.user(&alice).await.unwrap_err();
    assert!(matches!(err, GithubError::Status(503)), "{err:?}");

    // REST rate limit (403) is a status error, not a profile.
    sim.set_failure(Endpoint::User, Failure::GraphqlErrors);
    let err = gh.user(&alice).await.unwrap_err();
    assert!(matches!(err, GithubError::Status(403)), "{err:?}");

    // A failing /user/emails fails the lookup (no silently missing email).
    sim.set_failure(Endpoint::User, Failure::None);
    sim.set_failure(Endpoint::Emails, Failure::Status(500));
    let err = gh.user(&token(&sim, "grace")).await.unwrap_err();
    assert!(matches!(err, GithubError::Status(500)), "{err:?}");

    // Back to normal.
    sim.set_failure(Endpoint::Graphql, Failure::None);
    assert!(
        gh.viewer_sponsorship(&alice, "acme-org", 0)
            .await
            .unwrap()
            .sponsor
    );
}

/// A call that GitHub never answers ends as `Timeout` within the configured
/// bound (1 s here), and the whole test cannot hang.
async fn assert_times_out<T: std::fmt::Debug>(
    call: impl std::future::Future<Output = Result<T, GithubError>>,
) {
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the client's own timeout fired");
    let elapsed = started.elapsed();
    let err = result.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(
        elapsed >= TIMEOUT.mul_f32(0.9) && elapsed < TIMEOUT * 3,
        "timed out after {elapsed:?}"
    );
}

#[tokio::test]
async fn hangs_become_timeouts() {
    let (sim, gh) = setup().await;
    let alice = token(&sim, "alice");
    sim.set_failure(Endpoint::Graphql, Failure::Hang);
    assert_times_out(gh.viewer_sponsorship(&alice, "acme-org", 0)).await;
    assert_times_out(gh.sponsors_of(&token(&sim, "acme-admin"), "acme-org", 0)).await;
    sim.set_failure(Endpoint::User, Failure::Hang);
    assert_times_out(gh.user(&alice)).await;
    sim.set_failure(Endpoint::User, Failure::None);
    sim.set_failure(Endpoint::Emails, Failure::Hang);
    assert_times_out(gh.user(&token(&sim, "grace"))).await;
    sim.set_failure(Endpoint::Token, Failure::Hang);
    assert_times_out(gh.exchange_code("whatever", "v".repeat(43))).await;
}

#[tokio::test]
async fn sponsors_of_lists_counting_user_sponsors() {
    let (sim, gh) = setup().await;
    let admin = token(&sim, "acme-admin");
    // alice $10, dave $25, erin one-time $50, frank $1, heidi $10 private.
    let all = gh.sponsors_of(&admin, "acme-org", 0).await.unwrap();
    assert_eq!(all, vec![1001, 1004, 1005, 1006, 1008]);
    let at_5 = gh.sponsors_of(&admin, "acme-org", 5).await.unwrap();
    assert_eq!(at_5, vec![1001, 1004, 1008]);
    let at_20 = gh.sponsors_of(&admin, "acme-org", 20).await.unwrap();
    assert_eq!(at_20, vec![1004]);

    // A user as the sponsorable (read with its own token); an organization
    // sponsoring it is left out: only user ids go into the sponsors set.
    sim.set_sponsorship(
        "acme-org",
        "maintainer-mia",
        Some(FixtureSponsorship::monthly(5000)),
    );
    let mia = token(&sim, "maintainer-mia");
    let got = gh.sponsors_of(&mia, "maintainer-mia", 0).await.unwrap();
    assert_eq!(got, vec![1003]);

    let err = gh
        .sponsors_of(&admin, "no-such-account", 0)
        .await
        .unwrap_err();
    assert!(
        matches!(err, GithubError::SponsorableNotFound(_)),
        "{err:?}"
    );
}

/// 130 more sponsors make two pages of 100.
fn add_many_sponsors(sim: &GithubSim) {
    for k in 1..=130 {
        sim.set_sponsorship(
            &format!("project-{k:03}"),
            "acme-org",
            Some(FixtureSponsorship::monthly(300)),
        );
    }
}

#[tokio::test]
async fn sponsors_of_reads_every_page() {
    let (sim, gh) = setup().await;
    add_many_sponsors(&sim);
    let admin = token(&sim, "acme-admin");
    let before = sim.calls(Endpoint::Graphql);
    let all = gh.sponsors_of(&admin, "acme-org", 0).await.unwrap();
    assert_eq!(sim.calls(Endpoint::Graphql) - before, 2, "two pages");
    assert_eq!(all.len(), 135);
    for id in [1001, 1004, 1005, 1006, 1008, 20_001, 20_100, 20_130] {
        assert!(all.contains(&id), "{id} missing");
    }
    let at_5 = gh.sponsors_of(&admin, "acme-org", 5).await.unwrap();
    assert_eq!(at_5, vec![1001, 1004, 1008]);
}

#[tokio::test]
async fn a_failure_while_paging_is_an_error_not_a_short_list() {
    let (sim, gh) = setup().await;
    add_many_sponsors(&sim);
    let admin = token(&sim, "acme-admin");
    sim.set_failure(Endpoint::Graphql, Failure::FailAfter(1));
    let err = gh.sponsors_of(&admin, "acme-org", 0).await.unwrap_err();
    assert!(matches!(err, GithubError::Status(502)), "{err:?}");
    assert_eq!(sim.calls(Endpoint::Graphql), 2);
}

/// Runs the browser's part of the web flow: follows the authorize URL as
/// `user` and returns the `code` and `state` GitHub redirected back with.
async fn authorize_as(gh: &GithubClient, user: &str) -> (String, String, String) {
    let request = gh.authorize();
    let mut url = request.url.clone();
    url.query_pairs_mut().append_pair("sim_user", user);
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = browser.get(url).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(CALLBACK), "{location}");
    let location = Url::parse(&location).unwrap();
    let param = |name: &str| {
        location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no {name} in {location}"))
    };
    assert_eq!(param("state"), request.state);
    (param("code"), request.state, request.pkce_verifier)
}

#[tokio::test]
async fn authorize_url_and_code_exchange() {
    let (sim, gh) = setup().await;
    let (code, state, verifier) = authorize_as(&gh, "alice").await;
    let sent = sim.last_authorize().unwrap();
    assert_eq!(sent.client_id.as_deref(), Some("sim-client-id"));
    assert_eq!(sent.redirect_uri.as_deref(), Some(CALLBACK));
    assert_eq!(sent.scope.as_deref(), Some("read:user user:email"));
    assert_eq!(sent.code_challenge_method.as_deref(), Some("S256"));
    assert_eq!(sent.state.as_deref(), Some(state.as_str()));
    // Two authorize requests never share state or verifier.
    let other = gh.authorize();
    assert_ne!(other.state, state);
    assert_ne!(other.pkce_verifier, verifier);
    assert!(!format!("{other:?}").contains(&other.pkce_verifier));

    let token = gh.exchange_code(&code, verifier.clone()).await.unwrap();
    assert_eq!(
        token.scopes(),
        Some(&["read:user".to_string(), "user:email".to_string()][..])
    );
    assert!(token.has_scope("user:email"));
    assert!(!format!("{token:?}").contains(token.secret()));
    let user = gh.user(&token).await.unwrap();
    assert_eq!((user.id, user.login.as_str()), (1001, "alice"));
    assert!(
        gh.viewer_sponsorship(&token, "acme-org", 0)
            .await
            .unwrap()
            .sponsor
    );

    // A code works once: GitHub answers HTTP 200 with bad_verification_code.
    let err = gh.exchange_code(&code, verifier).await.unwrap_err();
    match &err {
        GithubError::TokenRejected { code: c, .. } => assert_eq!(c, "bad_verification_code"),
        other => panic!("expected TokenRejected, got {other:?}"),
    }
    assert!(!format!("{err} {err:?}").contains(&code));
}

#[tokio::test]
async fn token_errors_arrive_as_http_200() {
    let (sim, gh) = setup().await;

    // Wrong PKCE verifier.
    let (code, _, _) = authorize_as(&gh, "bob").await;
    let err = gh.exchange_code(&code, "x".repeat(43)).await.unwrap_err();
    assert!(err.is_token_rejected(), "{err:?}");

    // Wrong client secret.
    let mut cfg = config(&sim);
    cfg.client_secret = SecretString::from("not-the-secret");
    let wrong_secret = GithubClient::new(cfg).unwrap();
    let (code, _, verifier) = authorize_as(&wrong_secret, "bob").await;
    let err = wrong_secret
        .exchange_code(&code, verifier)
        .await
        .unwrap_err();
    match &err {
        GithubError::TokenRejected { code, description } => {
            assert_eq!(code, "incorrect_client_credentials");
            assert!(!description.is_empty());
        }
        other => panic!("expected TokenRejected, got {other:?}"),
    }
    assert!(!format!("{err} {err:?}").contains("not-the-secret"));

    // Exchanging with another redirect URI than the one authorized.
    let (code, _, verifier) = authorize_as(&gh, "bob").await;
    let mut cfg = config(&sim);
    cfg.redirect_url = Url::parse("http://127.0.0.1:8080/elsewhere").unwrap();
    let err = GithubClient::new(cfg)
        .unwrap()
        .exchange_code(&code, verifier)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, GithubError::TokenRejected { code, .. } if code == "redirect_uri_mismatch"),
        "{err:?}"
    );

    // A failing token endpoint is a status error, not a rejection.
    let (code, _, verifier) = authorize_as(&gh, "bob").await;
    sim.set_failure(Endpoint::Token, Failure::Status(502));
    let err = gh.exchange_code(&code, verifier).await.unwrap_err();
    assert!(matches!(err, GithubError::Status(502)), "{err:?}");
}
