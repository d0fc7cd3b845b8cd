//! The `sponsorgate` binary as an operator runs it: configuration errors,
//! signals, and logs that never carry a secret.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use github_sim::{GithubSim, SimOptions};
use reqwest::header::ACCEPT;

use crate::common::app::{location, REMOTE_PASSWORD};
use crate::common::eventually;
use crate::common::redis::{free_port, RedisServer};

const BIN: &str = env!("CARGO_BIN_EXE_sponsorgate");

/// Every secret the service knows, set to a value a search can recognise.
struct Secrets {
    webhook: &'static str,
    sponsors_token: &'static str,
    local_password: &'static str,
}

const SECRETS: Secrets = Secrets {
    webhook: "whsec-RECOGNISABLE-4242",
    sponsors_token: "ghp_RECOGNISABLE0000000000000000000000",
    local_password: "localpw-RECOGNISABLE-77",
};

/// The raw bytes of `SESSION_KEY` (ASCII, so a raw rendering shows too).
fn session_key_bytes() -> Vec<u8> {
    b"SESSIONKEY-RECOGNISABLE-".repeat(3)
}

impl Secrets {
    fn env(&self) -> Vec<(String, String)> {
        use base64::Engine as _;
        vec![
            (
                "SESSION_KEY".to_owned(),
                base64::engine::general_purpose::STANDARD.encode(session_key_bytes()),
            ),
            ("GITHUB_WEBHOOK_SECRET".to_owned(), self.webhook.to_owned()),
            ("SPONSORS_TOKEN".to_owned(), self.sponsors_token.to_owned()),
        ]
    }

    /// Every rendering of every secret that must not appear in `output`.
    fn assert_absent(&self, output: &str, what: &str) {
        use base64::Engine as _;
        let key = session_key_bytes();
        let decimal = key[..4]
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let renderings = [
            String::from_utf8_lossy(&key[..12]).into_owned(),
            base64::engine::general_purpose::STANDARD.encode(&key)[..16].to_owned(),
            hex::encode(&key[..8]),
            decimal,
            self.webhook.to_owned(),
            self.sponsors_token.to_owned(),
            self.local_password.to_owned(),
            REMOTE_PASSWORD.to_owned(),
            SimOptions::default().client_secret,
        ];
        for secret in renderings {
            assert!(
                !output.contains(&secret),
                "{what} shows a secret ({secret}):\n{output}"
            );
        }
    }
}

#[test]
fn check_config_prints_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let output = sponsorgate(dir.path())
        .arg("check-config")
        .envs(SECRETS.env())
        .envs([
            ("SPONSORABLE", "acme-org".to_owned()),
            ("GITHUB_CLIENT_ID", "i".to_owned()),
            ("GITHUB_CLIENT_SECRET", SimOptions::default().client_secret),
            (
                "REDIS_URL",
                format!("redis://:{}@127.0.0.1:6399", SECRETS.local_password),
            ),
            (
                "ENTERPRISE_REDIS_URL",
                format!("redis://user:{REMOTE_PASSWORD}@remote:6379"),
            ),
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(printed.contains("SESSION_KEY=[redacted]"), "{printed}");
    assert!(
        printed.contains("@remote:6379"),
        "hosts are shown: {printed}"
    );
    SECRETS.assert_absent(&printed, "check-config");
}

/// A command with a clean environment (no developer `.env` either: the
/// working directory is a temporary one).
fn sponsorgate(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(dir);
    cmd
}

#[test]
fn a_bad_configuration_stops_start_up_with_one_line_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "SPONSORABLE"),
        (&[("SPONSORABLE", "acme-org")], "GITHUB_CLIENT_ID"),
        (
            &[
                ("SPONSORABLE", "acme-org"),
                ("GITHUB_CLIENT_ID", "i"),
                ("GITHUB_CLIENT_SECRET", "s"),
                ("QUOTA_FREE", "lots"),
            ],
            "QUOTA_FREE",
        ),
        (
            &[
                ("SPONSORABLE", "acme-org"),
                ("GITHUB_CLIENT_ID", "i"),
                ("GITHUB_CLIENT_SECRET", "s"),
                ("ENTERPRISE_REDIS_URL", "http://:hunter2@remote"),
            ],
            "ENTERPRISE_REDIS_URL",
        ),
        (
            // The simulator's client id off loopback: refused.
            &[
                ("SPONSORABLE", "acme-org"),
                ("GITHUB_CLIENT_ID", "sim-client-id"),
                ("GITHUB_CLIENT_SECRET", "s"),
                ("PUBLIC_URL", "https://gate.example.com"),
            ],
            "GITHUB_CLIENT_ID",
        ),
    ];
    for (vars, var) in cases {
        let output = sponsorgate(dir.path())
            .arg("serve")
            .envs(vars.iter().copied())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{var}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(var), "{stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("hunter2"),
            "{stderr}"
        );
    }
    // A .env file in the working directory is read; real variables win over it.
    std::fs::write(
        dir.path().join(".env"),
        "SPONSORABLE=from-dotenv\nGITHUB_CLIENT_ID=i\nGITHUB_CLIENT_SECRET=s\n",
    )
    .unwrap();
    let output = sponsorgate(dir.path())
        .arg("check-config")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("from-dotenv"));
    let output = sponsorgate(dir.path())
        .arg("check-config")
        .env("SPONSORABLE", "from-env")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("from-env") && !stdout.contains("from-dotenv"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("GITHUB_CLIENT_SECRET=s") && stdout.contains("[redacted]"),
        "{stdout}"
    );
}

#[tokio::test]
async fn serve_signs_in_without_logging_secrets_and_stops_on_sigterm() {
    let sim = GithubSim::start(SimOptions::default()).await.unwrap();
    let local = RedisServer::start();
    let remote = RedisServer::start_with_password(REMOTE_PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let defaults = SimOptions::default();
    let mut child = sponsorgate(dir.path())
        .arg("serve")
        .envs([
            ("BIND", format!("127.0.0.1:{port}")),
            ("PUBLIC_URL", url.clone()),
            ("SPONSORABLE", "acme-org".into()),
            ("GITHUB_CLIENT_ID", defaults.client_id.clone()),
            ("GITHUB_CLIENT_SECRET", defaults.client_secret.clone()),
            ("GITHUB_URL", sim.url()),
            ("GITHUB_API_URL", sim.url()),
            ("GITHUB_GRAPHQL_URL", format!("{}/graphql", sim.url())),
            ("REDIS_URL", local.url()),
            ("ENTERPRISE_REDIS_URL", remote.url()),
            // As chatty as it gets: even debug logs must not leak.
            ("RUST_LOG", "debug".into()),
        ])
        .envs(SECRETS.env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    eventually(Duration::from_secs(10), "serve answers /healthz", || {
        let request = client.get(format!("{url}/healthz")).send();
        async move { request.await.ok().filter(|r| r.status() == 200).map(|_| ()) }
    })
    .await;

    // A full sign-in and a write: everything a secret could leak through.
    let login = client.get(format!("{url}/login")).send().await.unwrap();
    let callback = client
        .get(format!("{}&sim_user=alice", location(&login)))
        .send()
        .await
        .unwrap();
    let callback = location(&callback);
    let code = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let signed_in = client
        .get(&callback)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .and_then(|v| v.split_once('='))
        .map(|(_, value)| value.to_owned())
        .expect("session cookie");
    assert_eq!(signed_in.status(), 200);
    let r = client
        .post(format!("{url}/exclude"))
        .json(&serde_json::json!({"id": "n1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // An API token, created and used.
    let created: serde_json::Value = client
        .post(format!("{url}/tokens"))
        .json(&serde_json::json!({"name": "ci", "scopes": ["exclusions:read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let api_token = created["token"].as_str().expect("token").to_owned();
    let used = reqwest::Client::new()
        .get(format!("{url}/me"))
        .bearer_auth(&api_token)
        .send()
        .await
        .unwrap();
    assert_eq!(used.status(), 200);
    let bad = client
        .get(format!(
            "{url}/oauth2/callback?code=secret-code-123&state=secret-state-456"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    // A signed webhook, and one with a wrong signature.
    let body = serde_json::to_vec(&serde_json::json!({
        "action": "created",
        "sponsorship": {
            "sponsorable": {"login": "acme-org", "id": 9001},
            "sponsor": {"login": "bob", "id": 1002, "type": "User"},
            "tier": {"monthly_price_in_cents": 500, "is_one_time": false}
        }
    }))
    .unwrap();
    for signature in [
        sponsorgate::sponsorship::sign(SECRETS.webhook.as_bytes(), &body),
        "sha256=00".to_owned(),
    ] {
        let r = client
            .post(format!("{url}/webhooks/github"))
            .header("x-github-event", "sponsorship")
            .header("x-hub-signature-256", signature)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert!(r.status() == 204 || r.status() == 401, "{}", r.status());
    }

    // SIGTERM: graceful shutdown, exit 0, quickly.
    let started = Instant::now();
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "serve did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "{exit:?}");

    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(logs.contains("signed in"), "the logs are real: {logs}");
    assert!(
        logs.contains("sponsorship webhook"),
        "the webhook was logged: {logs}"
    );
    SECRETS.assert_absent(&logs, "the logs");
    for secret in [api_token.clone(), sponsorgate::tokens::digest(&api_token)] {
        assert!(
            !logs.contains(&secret),
            "the logs contain the API token:\n{logs}"
        );
    }
    for secret in [
        defaults.client_secret.as_str(),
        REMOTE_PASSWORD,
        "gho_",
        code.as_str(),
        cookie.as_str(),
        "secret-code-123",
        "secret-state-456",
    ] {
        assert!(
            !logs.contains(secret),
            "the logs contain a secret ({secret}):\n{logs}"
        );
    }
}
