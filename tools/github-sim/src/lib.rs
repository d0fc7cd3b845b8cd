//! A fake GitHub for tests and the dev stack: the OAuth web flow, `GET /user`,
//! `GET /user/emails` and the GraphQL sponsorship queries, at one base URL,
//! with GitHub's quirks (token errors as HTTP 200, comma-separated scopes,
//! mandatory `User-Agent`, `INSUFFICIENT_SCOPES`, paging limits, …).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = github_sim::GithubSim::start(github_sim::SimOptions::default()).await?;
//! let token = sim.issue_token("alice", &["read:user", "user:email"]);
//! let graphql_url = format!("{}/graphql", sim.url());
//! # let _ = (token, graphql_url); Ok(()) }
//! ```

mod clock;
mod failure;
mod fixtures;
mod graphql;
mod oauth;
mod pages;
mod rest;
mod state;
mod token;
mod world;

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use fixtures::{AccountKind, FixtureEmail, FixtureSponsorship, FixtureUser, Privacy};
pub use state::{AuthorizeRecord, Endpoint, Failure};
pub use world::fixtures;

use state::{find, normalize_scopes, Shared};

/// The OAuth app the simulator accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimOptions {
    pub client_id: String,
    pub client_secret: String,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            client_id: "sim-client-id".into(),
            client_secret: "sim-client-secret".into(),
        }
    }
}

/// A running simulator. Dropping it shuts the server down (requests held by
/// [`Failure::Hang`] are released with a 503).
pub struct GithubSim {
    shared: Shared,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/", get(pages::index))
        .route("/login/oauth/authorize", get(oauth::authorize))
        .route("/login/oauth/access_token", post(token::access_token))
        .route("/user", get(rest::user))
        .route("/user/emails", get(rest::emails))
        .route("/graphql", post(graphql::graphql))
        .route("/avatars/{id}", get(pages::avatar))
        .fallback(|| async { rest::not_found() })
        .with_state(shared)
}

impl GithubSim {
    /// Starts on `127.0.0.1` with a free port.
    pub async fn start(opts: SimOptions) -> std::io::Result<GithubSim> {
        Self::start_on(opts, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts on `addr` (port 0 picks a free one).
    pub async fn start_on(opts: SimOptions, addr: SocketAddr) -> std::io::Result<GithubSim> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let mut addr = listener.local_addr()?;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let (shutdown, stopped) = watch::channel(false);
        let shared = Shared::new(opts, format!("http://{addr}"), stopped.clone());
        let app = router(shared.clone());
        let mut signal = stopped;
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = signal.wait_for(|stop| *stop).await;
            });
            if let Err(e) = serve.await {
                tracing::warn!("github-sim server error: {e}");
            }
        });
        Ok(GithubSim {
            shared,
            addr,
            shutdown,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT` (no trailing slash). GraphQL is `url() + "/graphql"`.
    pub fn url(&self) -> String {
        self.shared.base.to_string()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A valid access token for a fixture user, as if the web flow had run.
    /// Panics if `login` is not a fixture user (organizations cannot sign in).
    pub fn issue_token(&self, login: &str, scopes: &[&str]) -> String {
        let user = self.shared.with(|s| {
            find(&s.world, login)
                .filter(|u| u.kind == AccountKind::User)
                .map(|u| u.login.clone())
        });
        let user = user.unwrap_or_else(|| panic!("github-sim: no fixture user '{login}'"));
        self.shared
            .mint_token(&user, normalize_scopes(&scopes.join(" ")))
    }

    /// Makes `endpoint` misbehave until told otherwise (`Failure::None`).
    pub fn set_failure(&self, endpoint: Endpoint, failure: Failure) {
        self.shared.with(|s| {
            s.failures.insert(endpoint, failure);
        });
    }

    /// How many requests reached `endpoint` (failed ones included).
    pub fn calls(&self, endpoint: Endpoint) -> usize {
        self.shared
            .with(|s| s.calls.get(&endpoint).copied().unwrap_or(0))
    }

    /// The parameters of the last authorize request.
    pub fn last_authorize(&self) -> Option<AuthorizeRecord> {
        self.shared.with(|s| s.last_authorize.clone())
    }

    /// Starts (`Some`), changes (`Some`) or removes (`None`) `login`'s
    /// sponsorship of `sponsorable`. Use [`FixtureSponsorship::ended`] for a
    /// past sponsor. Panics if either account does not exist (a test bug).
    pub fn set_sponsorship(&self, login: &str, sponsorable: &str, s: Option<FixtureSponsorship>) {
        self.shared.with(|st| {
            let target = find(&st.world, sponsorable)
                .map(|u| u.login.clone())
                .unwrap_or_else(|| panic!("github-sim: no account '{sponsorable}'"));
            let sponsor = st
                .world
                .iter_mut()
                .find(|u| u.login.eq_ignore_ascii_case(login))
                .unwrap_or_else(|| panic!("github-sim: no account '{login}'"));
            let existing = sponsor
                .sponsoring
                .iter()
                .position(|(l, _)| l.eq_ignore_ascii_case(&target));
            match (existing, s) {
                (Some(i), Some(s)) => sponsor.sponsoring[i].1 = s,
                (None, Some(s)) => sponsor.sponsoring.push((target, s)),
                (Some(i), None) => {
                    sponsor.sponsoring.remove(i);
                }
                (None, None) => {}
            }
        });
    }

    /// The world as it is now (fixture users, organizations and projects).
    pub fn users(&self) -> Vec<FixtureUser> {
        self.shared.with(|s| s.world.clone())
    }

    /// Changes how long authorization codes live (default 10 minutes).
    pub fn set_code_lifetime(&self, lifetime: Duration) {
        self.shared.with(|s| s.code_ttl = lifetime);
    }

    /// Stops the server and waits (at most 5 s) for it to finish.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for GithubSim {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
