//! `TestApp`: a real sponsorgate on a free port, with its own local Redis,
//! optionally a password-protected remote Redis, and the fake GitHub.

use std::collections::HashMap;
use std::time::Duration;

use github_sim::{GithubSim, SimOptions};
use reqwest::header::{ACCEPT, LOCATION};
use reqwest::redirect::Policy;
use serde_json::Value;
use sponsorgate::app::Running;
use sponsorgate::config::{Config, Needs};

use super::proxy::ChaosProxy;
use super::redis::{AnyConn, RedisCluster, RedisServer, Tier};

pub const REMOTE_PASSWORD: &str = "remote-secret-pw";

pub struct TestAppBuilder {
    vars: HashMap<String, String>,
    with_remote: bool,
    run_worker: bool,
    local_args: Vec<String>,
    mode: Mode,
    local_replicas: usize,
}

/// Which tiers are Redis Clusters (three primaries each). The tests of the
/// sync guarantees run in every mode, from the same code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Single,
    /// Both tiers are clusters.
    Cluster,
    /// A cluster on the local side, one server as the remote.
    LocalCluster,
}

impl Mode {
    fn local_cluster(self) -> bool {
        matches!(self, Mode::Cluster | Mode::LocalCluster)
    }

    fn remote_cluster(self) -> bool {
        self == Mode::Cluster
    }
}

pub struct TestApp {
    pub url: String,
    pub local: Tier,
    pub remote: Option<Tier>,
    /// Between the app and a single remote Redis: `cut()` / `restore()` for
    /// outages ([`TestApp::cut_remote`] covers clusters too).
    pub proxy: Option<ChaosProxy>,
    pub sim: GithubSim,
    pub config: Config,
    running: Option<Running>,
}

/// A signed-in browser-like client.
pub struct SignedIn {
    pub client: reqwest::Client,
    pub id: u64,
    pub body: Value,
    /// `sponsorgate_session=…`, for requests by other clients or to another instance.
    pub session_cookie: String,
}

/// A second sponsorgate on the same Redis pair and configuration (share
/// sessions across instances by setting `SESSION_KEY`).
pub struct Instance {
    pub url: String,
    running: Running,
}

impl Instance {
    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    pub async fn stop(self) {
        self.running.stop().await;
    }
}

impl TestAppBuilder {
    pub fn var(mut self, key: &str, value: impl ToString) -> Self {
        self.vars.insert(key.to_owned(), value.to_string());
        self
    }

    pub fn sponsorable(self, login: &str) -> Self {
        self.var("SPONSORABLE", login)
    }

    /// Adds a password-protected remote Redis (sync on).
    pub fn with_remote(mut self) -> Self {
        self.with_remote = true;
        self
    }

    /// Extra `redis-server` arguments of the local Redis (e.g. its eviction policy).
    pub fn local_redis_args(mut self, args: &[&str]) -> Self {
        self.local_args = args.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Which tiers are clusters.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Replicas per primary of a local cluster (for failovers).
    pub fn local_replicas(mut self, replicas: usize) -> Self {
        self.local_replicas = replicas;
        self
    }

    /// Serve without the in-process worker (tests drive sync steps themselves).
    pub fn without_worker(mut self) -> Self {
        self.run_worker = false;
        self
    }

    pub async fn start(self) -> TestApp {
        let sim = GithubSim::start(SimOptions::default())
            .await
            .expect("start fake GitHub");
        let local_args: Vec<&str> = self.local_args.iter().map(String::as_str).collect();
        let local = if self.mode.local_cluster() {
            Tier::Cluster(RedisCluster::start_with(
                3,
                self.local_replicas,
                None,
                &local_args,
            ))
        } else {
            Tier::Single(RedisServer::start_with(None, &local_args))
        };
        let remote = self.with_remote.then(|| {
            if self.mode.remote_cluster() {
                Tier::Cluster(RedisCluster::start_with_password(REMOTE_PASSWORD))
            } else {
                Tier::Single(RedisServer::start_with_password(REMOTE_PASSWORD))
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let url = format!("http://{addr}");
        let defaults = SimOptions::default();
        let mut vars: HashMap<String, String> = [
            ("PUBLIC_URL", url.clone()),
            ("SPONSORABLE", "acme-org".to_owned()),
            ("GITHUB_CLIENT_ID", defaults.client_id.clone()),
            ("GITHUB_CLIENT_SECRET", defaults.client_secret.clone()),
            ("GITHUB_URL", sim.url()),
            ("GITHUB_API_URL", sim.url()),
            ("GITHUB_GRAPHQL_URL", format!("{}/graphql", sim.url())),
            ("GITHUB_TIMEOUT_SECS", "2".to_owned()),
            ("REDIS_URL", local.url()),
            // Limits off unless a test sets them: many tests write fast.
            ("RATE_LIMIT_PER_MINUTE", "0".to_owned()),
            ("LOGIN_RATE_PER_MINUTE", "0".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let proxy = match &remote {
            Some(Tier::Cluster(cluster)) => {
                vars.insert("ENTERPRISE_REDIS_URL".into(), cluster.url());
                None
            }
            Some(Tier::Single(remote)) => {
                let proxy = ChaosProxy::start(remote.port()).await;
                vars.insert("ENTERPRISE_REDIS_URL".into(), remote.url_via(proxy.port()));
                Some(proxy)
            }
            None => None,
        };
        vars.extend(self.vars);
        let config = Config::from_map(&vars, Needs::Everything).expect("test config");
        let running = sponsorgate::app::start(config.clone(), listener, self.run_worker)
            .await
            .expect("start sponsorgate");
        TestApp {
            url,
            local,
            remote,
            proxy,
            sim,
            config,
            running: Some(running),
        }
    }
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            vars: HashMap::new(),
            with_remote: false,
            run_worker: true,
            local_args: Vec::new(),
            mode: Mode::Single,
            local_replicas: 0,
        }
    }

    pub async fn spawn() -> TestApp {
        Self::builder().start().await
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// A client like a browser: keeps cookies, does not follow redirects.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client")
    }

    /// `GET /login` with `client`; returns the GitHub authorize URL.
    pub async fn begin_login(&self, client: &reqwest::Client) -> String {
        let response = client
            .get(self.at("/login"))
            .send()
            .await
            .expect("GET /login");
        assert_eq!(response.status(), 302, "GET /login");
        location(&response)
    }

    /// Goes through the fake GitHub's authorize page as `login` and returns
    /// the callback URL GitHub sends the browser back to.
    pub async fn authorize_at_github(
        &self,
        client: &reqwest::Client,
        authorize_url: &str,
        login: &str,
    ) -> String {
        let response = client
            .get(format!("{authorize_url}&sim_user={login}"))
            .send()
            .await
            .expect("GET authorize");
        assert_eq!(response.status(), 302, "fake GitHub authorize");
        location(&response)
    }

    /// Presses "Deny" at the fake GitHub; returns the callback URL it sends
    /// the browser back to (with `error=access_denied`).
    pub async fn deny_at_github(&self, client: &reqwest::Client, authorize_url: &str) -> String {
        let response = client
            .get(format!("{authorize_url}&sim_deny=1"))
            .send()
            .await
            .expect("GET authorize (deny)");
        assert_eq!(response.status(), 302, "fake GitHub deny");
        location(&response)
    }

    /// The Prometheus text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        let response = self
            .client()
            .get(self.at("/metrics"))
            .send()
            .await
            .expect("GET /metrics");
        response.text().await.expect("metrics body")
    }

    /// `GET path` signed out, with a fresh client: (status, JSON body).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        status_json(self.client().get(self.at(path)).send().await.expect("GET")).await
    }

    /// The whole web flow as `login`, ending with the JSON answer of the callback.
    pub async fn sign_in(&self, login: &str) -> SignedIn {
        let client = self.client();
        let authorize = self.begin_login(&client).await;
        let callback = self.authorize_at_github(&client, &authorize, login).await;
        let response = client
            .get(callback)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .expect("GET callback");
        let status = response.status();
        let session_cookie = response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|v| v.starts_with("sponsorgate_session="))
            .unwrap_or_default()
            .to_owned();
        let body: Value = response.json().await.expect("callback JSON");
        assert_eq!(status, 200, "sign-in as {login}: {body}");
        let id = body["id"].as_u64().expect("id");
        SignedIn {
            client,
            id,
            body,
            session_cookie,
        }
    }

    /// Starts another instance of the service on this app's Redis pair.
    pub async fn another_instance(&self) -> Instance {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let running = sponsorgate::app::start(self.config.clone(), listener, false)
            .await
            .expect("start another instance");
        Instance { url, running }
    }

    pub fn local_conn(&self) -> AnyConn {
        self.local.conn()
    }

    /// Cuts the app off the remote: the chaos proxy drops its connections,
    /// or a remote cluster's processes are paused (connections hang).
    pub fn cut_remote(&self) {
        match (&self.proxy, self.remote.as_ref()) {
            (Some(proxy), _) => proxy.cut(),
            (None, Some(remote)) => remote.cluster().pause(true),
            (None, None) => panic!("app has no remote"),
        }
    }

    pub fn restore_remote(&self) {
        match (&self.proxy, self.remote.as_ref()) {
            (Some(proxy), _) => proxy.restore(),
            (None, Some(remote)) => remote.cluster().pause(false),
            (None, None) => panic!("app has no remote"),
        }
    }

    /// The environment a `sponsorgate` process needs to join this app's
    /// Redis pair (for tests that run the binary).
    pub fn process_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("SPONSORABLE".to_owned(), self.config.sponsorable.clone()),
            ("REDIS_URL".to_owned(), self.local.url()),
            ("RUST_LOG".to_owned(), "warn".to_owned()),
        ];
        if let Some(remote) = &self.remote {
            env.push(("ENTERPRISE_REDIS_URL".to_owned(), remote.url()));
        }
        env
    }

    pub fn remote_conn(&self) -> AnyConn {
        self.remote.as_ref().expect("app has no remote").conn()
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }
}

impl SignedIn {
    /// `POST /tokens` with these scopes (no expiry): the token.
    pub async fn create_token(&self, app: &TestApp, scopes: &[&str]) -> String {
        let response = self
            .client
            .post(app.at("/tokens"))
            .json(&serde_json::json!({"name": "test", "scopes": scopes, "expires_in_days": null}))
            .send()
            .await
            .expect("POST /tokens");
        let (status, body) = status_json(response).await;
        assert_eq!(status, 201, "POST /tokens: {body}");
        body["token"].as_str().expect("token").to_owned()
    }

    /// `POST /exclude {"id": id}` as this user: (status, JSON body).
    pub async fn exclude(&self, app: &TestApp, id: &str) -> (u16, Value) {
        let request = self
            .client
            .post(app.at("/exclude"))
            .json(&serde_json::json!({ "id": id }));
        status_json(request.send().await.expect("POST /exclude")).await
    }

    /// `POST /exclude` with the form body `id=…` as this user: (status, JSON body).
    pub async fn exclude_form(&self, app: &TestApp, id: &str) -> (u16, Value) {
        let request = self.client.post(app.at("/exclude")).form(&[("id", id)]);
        status_json(request.send().await.expect("POST /exclude (form)")).await
    }

    /// `DELETE /exclusions/{id}` (id already percent-encoded): the status.
    pub async fn remove(&self, app: &TestApp, encoded_id: &str) -> u16 {
        let request = self
            .client
            .delete(app.at(&format!("/exclusions/{encoded_id}")));
        request
            .send()
            .await
            .expect("DELETE /exclusions")
            .status()
            .as_u16()
    }

    /// `GET path` as this user: (status, JSON body).
    pub async fn get(&self, app: &TestApp, path: &str) -> (u16, Value) {
        status_json(self.client.get(app.at(path)).send().await.expect("GET")).await
    }
}

/// A client that is not a browser: no cookies, no redirects.
pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// `method url` with `Authorization: Bearer token`: (status, headers, JSON body).
pub async fn with_token(
    request: reqwest::RequestBuilder,
    token: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = request
        .bearer_auth(token)
        .send()
        .await
        .expect("bearer request");
    let headers = response.headers().clone();
    let (status, body) = status_json(response).await;
    (status, headers, body)
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("Location header")
        .to_owned()
}

/// Status and JSON body, for one-line assertions.
pub async fn status_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// Polls `GET path` with `token` until 200 (a 503 in between is allowed:
/// the token's records may be on their way back); the body.
pub async fn until_token_reads(app: &TestApp, path: &str, token: &str) -> Value {
    let client = plain_client();
    super::eventually(
        Duration::from_secs(10),
        &format!("GET {path} with the token"),
        || {
            let request = client.get(app.at(path));
            let token = token.to_owned();
            async move {
                let (status, _, body) = with_token(request, &token).await;
                assert!(status == 200 || status == 503, "{status} {body}");
                (status == 200).then_some(body)
            }
        },
    )
    .await
}
