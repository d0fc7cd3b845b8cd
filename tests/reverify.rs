//! Periodic re-verification of `sponsors:{SPONSORABLE}` with a maintainer's
//! token (acme-admin administers acme-org in the fake GitHub).

use std::time::Duration;

use github_sim::{Endpoint, Failure, FixtureSponsorship, GithubSim, SimOptions};
use sponsorgate::github::AccessToken;
use sponsorgate::sponsorship::{self, ReverifyError};

use crate::common::{eventually, TestApp};
use crate::webhooks::{me, sponsors};

fn admin_token(sim: &GithubSim) -> AccessToken {
    AccessToken::new(sim.issue_token("acme-admin", &["read:user", "read:org"]))
}

/// A separate handle on the app's state (same Redis, same fake GitHub).
async fn state_of(app: &TestApp) -> sponsorgate::state::AppState {
    sponsorgate::app::build(app.config.clone())
        .await
        .expect("build")
        .state
}

fn ttl(app: &TestApp, key: &str) -> i64 {
    redis::cmd("TTL")
        .arg(key)
        .query(&mut app.local_conn())
        .unwrap()
}

/// Fixture sponsors of acme-org besides alice (min 0): dave, erin (one-time),
/// frank ($1), heidi (private).
const OTHERS: [u64; 4] = [1004, 1005, 1006, 1008];

#[tokio::test]
async fn reverification_adds_missing_sponsors_and_removes_former_ones() {
    let app = TestApp::spawn().await;
    let alice = app.sign_in("alice").await;
    let bob = app.sign_in("bob").await;
    assert_eq!(alice.exclude(&app, "n1").await.0, 200);
    assert_eq!(sponsors(&app), vec![1001]);

    // The world changes after sign-in: bob starts (privately), alice stops.
    app.sim.set_sponsorship(
        "bob",
        "acme-org",
        Some(FixtureSponsorship::monthly(1000).private()),
    );
    app.sim.set_sponsorship("alice", "acme-org", None);
    let state = state_of(&app).await;
    let report = sponsorship::reverify_once(&state, &admin_token(&app.sim))
        .await
        .unwrap();
    assert_eq!(report.demoted, vec![1001]);
    assert_eq!(report.promoted, vec![1002, 1004, 1005, 1006, 1008]);
    assert_eq!(sponsors(&app), vec![1002, 1004, 1005, 1006, 1008]);

    // Signed-in sessions see it on their next request.
    assert_eq!(me(&app, &bob).await["sponsor"], true);
    assert_eq!(me(&app, &alice).await["sponsor"], false);
    assert!(
        ttl(&app, "user:1001:mnodes") > 0,
        "the former sponsor's set expires again"
    );

    // Nothing left to do on a second run.
    let again = sponsorship::reverify_once(&state, &admin_token(&app.sim))
        .await
        .unwrap();
    assert!(
        again.promoted.is_empty() && again.demoted.is_empty(),
        "{again:?}"
    );
}

#[tokio::test]
async fn reverification_applies_the_minimum() {
    let app = TestApp::builder()
        .var("SPONSOR_MIN_MONTHLY_USD", "5")
        .start()
        .await;
    // frank ($1/month) in the set, e.g. from a time without a minimum.
    let _: () = redis::cmd("SADD")
        .arg("sponsors:acme-org")
        .arg(1006)
        .query(&mut app.local_conn())
        .unwrap();
    let state = state_of(&app).await;
    let report = sponsorship::reverify_once(&state, &admin_token(&app.sim))
        .await
        .unwrap();
    assert_eq!(report.demoted, vec![1006]);
    assert_eq!(
        sponsors(&app),
        vec![1001, 1004, 1008],
        "alice $10, dave $25, heidi $10 private"
    );
}

#[tokio::test]
async fn a_github_failure_in_the_middle_of_paging_changes_nothing() {
    let app = TestApp::spawn().await;
    let alice = app.sign_in("alice").await;
    // 100 more sponsors: two pages of 100.
    for k in 1..=100 {
        app.sim.set_sponsorship(
            &format!("project-{k:03}"),
            "acme-org",
            Some(FixtureSponsorship::monthly(500)),
        );
    }
    app.sim.set_sponsorship("alice", "acme-org", None);
    let state = state_of(&app).await;
    let token = admin_token(&app.sim);

    let calls = app.sim.calls(Endpoint::Graphql);
    app.sim
        .set_failure(Endpoint::Graphql, Failure::FailAfter(1));
    let err = sponsorship::reverify_once(&state, &token)
        .await
        .unwrap_err();
    assert!(matches!(err, ReverifyError::Github(_)), "{err}");
    assert_eq!(
        app.sim.calls(Endpoint::Graphql) - calls,
        2,
        "page 1 read, page 2 failed"
    );
    assert_eq!(sponsors(&app), vec![1001], "nothing added, nothing removed");
    assert_eq!(me(&app, &alice).await["sponsor"], true);

    app.sim.set_failure(Endpoint::Graphql, Failure::None);
    let report = sponsorship::reverify_once(&state, &token).await.unwrap();
    assert_eq!(report.listed, 104);
    assert_eq!(report.demoted, vec![1001]);
    let now = sponsors(&app);
    assert_eq!(now.len(), 104);
    assert!(
        OTHERS
            .iter()
            .chain(&[20_001, 20_100])
            .all(|id| now.contains(id)),
        "{now:?}"
    );
}

#[tokio::test]
async fn a_token_that_sees_no_sponsors_demotes_nobody() {
    let app = TestApp::spawn().await;
    app.sign_in("alice").await;
    // bob does not administer acme-org: GitHub answers an empty list, not an error.
    let bob = AccessToken::new(app.sim.issue_token("bob", &["read:user", "read:org"]));
    let err = sponsorship::reverify_once(&*state_of(&app).await, &bob)
        .await
        .unwrap_err();
    assert!(matches!(err, ReverifyError::EmptyList(..)), "{err}");
    assert_eq!(sponsors(&app), vec![1001]);
}

#[tokio::test]
async fn reverification_demotes_through_the_grace() {
    let app = TestApp::builder()
        .var("SPONSOR_GRACE_SECS", "3600")
        .start()
        .await;
    let alice = app.sign_in("alice").await;
    let state = state_of(&app).await;
    let token = admin_token(&app.sim);

    app.sim.set_sponsorship("alice", "acme-org", None);
    let report = sponsorship::reverify_once(&state, &token).await.unwrap();
    assert_eq!(report.scheduled, vec![1001]);
    assert_eq!(
        me(&app, &alice).await["sponsor"],
        true,
        "still a sponsor during the grace"
    );
    assert!(sponsorship::pending_change(&state, 1001)
        .await
        .unwrap()
        .is_some());

    // Listed again before the grace ends: the demotion is dropped.
    app.sim
        .set_sponsorship("alice", "acme-org", Some(FixtureSponsorship::monthly(1000)));
    let report = sponsorship::reverify_once(&state, &token).await.unwrap();
    assert_eq!(report.kept, vec![1001]);
    assert!(sponsorship::pending_change(&state, 1001)
        .await
        .unwrap()
        .is_none());

    // Gone again, and this time the grace runs out.
    app.sim.set_sponsorship("alice", "acme-org", None);
    let report = sponsorship::reverify_once(&state, &token).await.unwrap();
    assert_eq!(report.scheduled, vec![1001]);
    let due = sponsorship::pending_change(&state, 1001)
        .await
        .unwrap()
        .unwrap()
        .due_ms;
    assert!(
        due >= sponsorship::now_ms() + 3_500_000,
        "due after the grace"
    );
    assert_eq!(sponsorship::apply_due(&state, due).await.unwrap(), 1);
    assert_eq!(me(&app, &alice).await["sponsor"], false);
}

#[tokio::test]
async fn sponsors_token_runs_the_reverification_periodically() {
    // The token must exist before the app starts: a second fake GitHub serves
    // the GraphQL endpoint (nobody signs in here).
    let github = GithubSim::start(SimOptions::default()).await.unwrap();
    let token = github.issue_token("acme-admin", &["read:user", "read:org"]);
    let app = TestApp::builder()
        .var("GITHUB_GRAPHQL_URL", format!("{}/graphql", github.url()))
        .var("SPONSORS_TOKEN", token)
        .var("SPONSORS_REFRESH_SECS", "1")
        .start()
        .await;
    eventually(Duration::from_secs(10), "the first run", || async {
        (sponsors(&app) == [1001, 1004, 1005, 1006, 1008]).then_some(())
    })
    .await;
    github.set_sponsorship("heidi", "acme-org", None);
    eventually(
        Duration::from_secs(10),
        "a later run removes heidi",
        || async { (sponsors(&app) == [1001, 1004, 1005, 1006]).then_some(()) },
    )
    .await;
    let lease: bool = redis::cmd("EXISTS")
        .arg(sponsorship::REVERIFY_LEASE)
        .query(&mut app.local_conn())
        .unwrap();
    assert!(lease, "runs are paced by a lease under sync:");
}
