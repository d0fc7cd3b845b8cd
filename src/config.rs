//! Every setting, parsed once at start. Nothing reads the environment later.
//! Secrets are `secrecy` types: their `Debug` prints `[REDACTED]`, so
//! `check-config` and log lines cannot show them.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use secrecy::{ExposeSecret, SecretSlice, SecretString};
use url::Url;

fn secret(value: &str) -> SecretString {
    SecretString::from(value)
}

/// A configuration problem, named after the variable that caused it.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

fn problem(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        problem: problem.into(),
    }
}

#[derive(Clone, Debug)]
pub struct GithubSettings {
    pub client_id: String,
    pub client_secret: SecretString,
    pub web_url: Url,
    pub api_url: Url,
    pub graphql_url: Url,
    pub timeout: Duration,
    /// `SPONSORS_TOKEN`: a maintainer token for periodic re-verification.
    pub sponsors_token: Option<SecretString>,
    pub sponsors_refresh: Duration,
    pub webhook_secret: Option<SecretString>,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub bind: SocketAddr,
    pub public_url: Url,
    pub sponsorable: String,
    pub sponsor_min_monthly_usd: u64,
    pub sponsor_grace: Duration,
    /// `None` for commands that never talk to GitHub (`sync`).
    pub github: Option<GithubSettings>,
    pub redis_url: SecretString,
    pub enterprise_redis_url: Option<SecretString>,
    /// 64+ bytes; `None`: a random key per process. (`Arc`: secrecy lets
    /// only its own cloneable types be cloned, and bytes are not one.)
    pub session_key: Option<Arc<SecretSlice<u8>>>,
    pub ephemeral_ttl_secs: u64,
    pub quota_sponsor: u64,
    pub quota_free: u64,
    pub remote_timeout: Duration,
    pub sync_reconcile: Duration,
    pub log_format: LogFormat,
    /// `RUST_LOG`: a tracing-subscriber filter; `None`: the default levels.
    pub log_filter: Option<String>,
    /// `RATE_LIMIT_PER_MINUTE`; 0: no limit.
    pub rate_limit_per_minute: u64,
    /// `LOGIN_RATE_PER_MINUTE`; 0: no limit.
    pub login_rate_per_minute: u64,
    /// `TRUST_PROXY=1`: the client address is the last `X-Forwarded-For` entry.
    pub trust_proxy: bool,
    pub max_connections: usize,
    /// `ACTIVITY_MAX`: entries kept in each `user:{id}:activity`.
    pub activity_max: u64,
}

/// The development simulator's OAuth client id (`tools/github-sim`). It
/// signs anyone in as a fixture sponsor, so it is refused unless the service
/// is reachable on a loopback address only.
pub const SIMULATOR_CLIENT_ID: &str = "sim-client-id";

/// `LOG_FORMAT`: `text` (default) or `json` lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Which command is starting: `sync` needs no GitHub settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    Everything,
    RedisOnly,
}

struct Vars<'a>(&'a HashMap<String, String>);

impl Vars<'_> {
    /// Set and not blank.
    fn get(&self, var: &'static str) -> Option<&str> {
        self.0.get(var).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn required(&self, var: &'static str, what: &str) -> Result<&str, ConfigError> {
        self.get(var)
            .ok_or_else(|| problem(var, format!("is required ({what})")))
    }

    fn parse<T: std::str::FromStr>(
        &self,
        var: &'static str,
        default: T,
        what: &str,
    ) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|e| problem(var, format!("{raw:?} is not {what}: {e}"))),
        }
    }

    fn url(&self, var: &'static str, default: &str) -> Result<Url, ConfigError> {
        let raw = self.get(var).unwrap_or(default);
        let url =
            Url::parse(raw).map_err(|e| problem(var, format!("{raw:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(problem(var, "must be an http:// or https:// URL"));
        }
        Ok(url)
    }

    fn redis_url(&self, var: &'static str, raw: &str) -> Result<SecretString, ConfigError> {
        // Parse without echoing the value: it may carry a password.
        if raw.starts_with("redis+cluster://") || raw.starts_with("rediss+cluster://") {
            return match sponsorgate_sync::RedisTarget::parse(raw) {
                Ok(_) => Ok(secret(raw)),
                Err(why) => Err(problem(
                    var,
                    format!("is not a valid redis+cluster:// URL ({why})"),
                )),
            };
        }
        let url = Url::parse(raw)
            .map_err(|_| problem(var, "is not a redis://, rediss:// or redis+cluster:// URL"))?;
        if !matches!(url.scheme(), "redis" | "rediss") {
            return Err(problem(
                var,
                "must start with redis://, rediss:// or redis+cluster://",
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(problem(var, "has no host"));
        }
        Ok(secret(raw))
    }
}

impl Config {
    /// Reads the process environment (after `.env` was loaded into it).
    pub fn from_env(needs: Needs) -> Result<Self, ConfigError> {
        Self::from_map(&std::env::vars().collect(), needs)
    }

    pub fn from_map(map: &HashMap<String, String>, needs: Needs) -> Result<Self, ConfigError> {
        let vars = Vars(map);
        let public_url = vars.url("PUBLIC_URL", "http://localhost:8080")?;
        let sponsorable = vars
            .required(
                "SPONSORABLE",
                "the GitHub login whose sponsors get sponsor features",
            )?
            .to_owned();
        if !is_github_login(&sponsorable) {
            return Err(problem(
                "SPONSORABLE",
                format!("{sponsorable:?} is not a GitHub login"),
            ));
        }
        let github = match needs {
            Needs::RedisOnly => None,
            Needs::Everything => Some(GithubSettings {
                client_id: vars
                    .required("GITHUB_CLIENT_ID", "the OAuth app's client id")?
                    .to_owned(),
                client_secret: secret(
                    vars.required("GITHUB_CLIENT_SECRET", "the OAuth app's client secret")?,
                ),
                web_url: vars.url("GITHUB_URL", "https://github.com")?,
                api_url: vars.url("GITHUB_API_URL", "https://api.github.com")?,
                graphql_url: vars.url("GITHUB_GRAPHQL_URL", "https://api.github.com/graphql")?,
                timeout: Duration::from_secs(positive(&vars, "GITHUB_TIMEOUT_SECS", 10)?),
                sponsors_token: vars.get("SPONSORS_TOKEN").map(secret),
                sponsors_refresh: Duration::from_secs(positive(
                    &vars,
                    "SPONSORS_REFRESH_SECS",
                    3600,
                )?),
                webhook_secret: vars.get("GITHUB_WEBHOOK_SECRET").map(secret),
            }),
        };
        if let Some(g) = &github {
            if g.client_id == SIMULATOR_CLIENT_ID && !is_loopback(&public_url) {
                return Err(problem(
                    "GITHUB_CLIENT_ID",
                    "is the development simulator's, which signs anyone in as a sponsor; \
                     it is refused unless PUBLIC_URL is a loopback address",
                ));
            }
        }
        let redis_raw = vars.get("REDIS_URL").unwrap_or("redis://127.0.0.1:6379");
        let redis_url = vars.redis_url("REDIS_URL", redis_raw)?;
        let enterprise_redis_url = match vars.get("ENTERPRISE_REDIS_URL") {
            Some(raw) => Some(vars.redis_url("ENTERPRISE_REDIS_URL", raw)?),
            None => None,
        };
        let session_key = match vars.get("SESSION_KEY") {
            None => None,
            Some(raw) => Some(Arc::new(SecretSlice::from(decode_session_key(raw)?))),
        };
        Ok(Self {
            bind: vars.parse(
                "BIND",
                SocketAddr::from(([127, 0, 0, 1], 8080)),
                "a socket address like 127.0.0.1:8080",
            )?,
            public_url,
            sponsorable,
            sponsor_min_monthly_usd: vars.parse(
                "SPONSOR_MIN_MONTHLY_USD",
                0,
                "a whole number of dollars",
            )?,
            sponsor_grace: Duration::from_secs(vars.parse(
                "SPONSOR_GRACE_SECS",
                0,
                "a whole number of seconds",
            )?),
            github,
            redis_url,
            enterprise_redis_url,
            session_key,
            ephemeral_ttl_secs: positive(&vars, "EPHEMERAL_TTL_SECS", 86_400)?,
            quota_sponsor: positive(&vars, "QUOTA_SPONSOR", 100_000)?,
            quota_free: positive(&vars, "QUOTA_FREE", 1_000)?,
            remote_timeout: Duration::from_millis(positive(&vars, "REMOTE_TIMEOUT_MS", 500)?),
            sync_reconcile: Duration::from_secs(positive(&vars, "SYNC_RECONCILE_SECS", 300)?),
            rate_limit_per_minute: vars.parse(
                "RATE_LIMIT_PER_MINUTE",
                600,
                "a whole number (0: no limit)",
            )?,
            login_rate_per_minute: vars.parse(
                "LOGIN_RATE_PER_MINUTE",
                30,
                "a whole number (0: no limit)",
            )?,
            trust_proxy: match vars.get("TRUST_PROXY") {
                None | Some("0") => false,
                Some("1") => true,
                Some(other) => {
                    return Err(problem(
                        "TRUST_PROXY",
                        format!("{other:?} is neither 1 nor 0"),
                    ))
                }
            },
            activity_max: positive(&vars, "ACTIVITY_MAX", 1_000)?,
            max_connections: usize::try_from(positive(&vars, "MAX_CONNECTIONS", 10_000)?)
                .map_err(|_| problem("MAX_CONNECTIONS", "is too large"))?,
            log_filter: vars.get("RUST_LOG").map(str::to_owned),
            log_format: match vars.get("LOG_FORMAT") {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(other) => {
                    return Err(problem(
                        "LOG_FORMAT",
                        format!("{other:?} is neither text nor json"),
                    ))
                }
            },
        })
    }

    /// `PUBLIC_URL/oauth2/callback`
    pub fn redirect_url(&self) -> Url {
        let mut url = self.public_url.clone();
        let path = format!("{}/oauth2/callback", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url
    }

    /// Cookies are `Secure` when the service is reached over https.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// Every setting as `NAME=value` lines, for `check-config`: secrets as
    /// `[redacted]`, Redis URLs without their password.
    pub fn summary(&self) -> String {
        let redacted = |set: bool| if set { "[redacted]" } else { "" }.to_owned();
        let mut lines: Vec<(&str, String)> = vec![
            ("BIND", self.bind.to_string()),
            ("PUBLIC_URL", self.public_url.to_string()),
            ("SPONSORABLE", self.sponsorable.clone()),
            (
                "SPONSOR_MIN_MONTHLY_USD",
                self.sponsor_min_monthly_usd.to_string(),
            ),
            (
                "SPONSOR_GRACE_SECS",
                self.sponsor_grace.as_secs().to_string(),
            ),
        ];
        if let Some(g) = &self.github {
            lines.extend([
                ("GITHUB_CLIENT_ID", g.client_id.clone()),
                ("GITHUB_CLIENT_SECRET", redacted(true)),
                ("GITHUB_URL", g.web_url.to_string()),
                ("GITHUB_API_URL", g.api_url.to_string()),
                ("GITHUB_GRAPHQL_URL", g.graphql_url.to_string()),
                ("GITHUB_TIMEOUT_SECS", g.timeout.as_secs().to_string()),
                (
                    "GITHUB_WEBHOOK_SECRET",
                    redacted(g.webhook_secret.is_some()),
                ),
                ("SPONSORS_TOKEN", redacted(g.sponsors_token.is_some())),
                (
                    "SPONSORS_REFRESH_SECS",
                    g.sponsors_refresh.as_secs().to_string(),
                ),
            ]);
        }
        lines.extend([
            ("REDIS_URL", display_redis_url(&self.redis_url)),
            (
                "ENTERPRISE_REDIS_URL",
                self.enterprise_redis_url
                    .as_ref()
                    .map(display_redis_url)
                    .unwrap_or_default(),
            ),
            ("SESSION_KEY", redacted(self.session_key.is_some())),
            ("EPHEMERAL_TTL_SECS", self.ephemeral_ttl_secs.to_string()),
            ("QUOTA_SPONSOR", self.quota_sponsor.to_string()),
            ("QUOTA_FREE", self.quota_free.to_string()),
            (
                "REMOTE_TIMEOUT_MS",
                self.remote_timeout.as_millis().to_string(),
            ),
            (
                "SYNC_RECONCILE_SECS",
                self.sync_reconcile.as_secs().to_string(),
            ),
            (
                "LOG_FORMAT",
                match self.log_format {
                    LogFormat::Text => "text",
                    LogFormat::Json => "json",
                }
                .to_owned(),
            ),
        ]);
        lines
            .into_iter()
            .map(|(name, value)| format!("{name}={value}\n"))
            .collect()
    }

    /// The public origin (`scheme://host[:port]`) that same-site requests carry.
    pub fn public_origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }
}

/// `localhost`, `127.0.0.0/8` or `::1`.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A Redis URL with its password (and user name) replaced by `[redacted]`.
fn display_redis_url(url: &SecretString) -> String {
    if let Some(cluster) = sponsorgate_sync::target::display_cluster_url(url.expose_secret()) {
        return cluster;
    }
    match Url::parse(url.expose_secret()) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("[redacted]"));
            }
            if !parsed.username().is_empty() {
                let _ = parsed.set_username("[redacted]");
            }
            parsed.to_string()
        }
        Err(_) => "[redacted]".to_owned(),
    }
}

fn positive(vars: &Vars<'_>, var: &'static str, default: u64) -> Result<u64, ConfigError> {
    let value: u64 = vars.parse(var, default, "a whole number")?;
    if value == 0 {
        return Err(problem(var, "must be greater than 0"));
    }
    Ok(value)
}

fn decode_session_key(raw: &str) -> Result<Vec<u8>, ConfigError> {
    use base64::Engine as _;
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let bytes = engines
        .iter()
        .find_map(|e| e.decode(raw).ok())
        .ok_or_else(|| {
            problem(
                "SESSION_KEY",
                "is not base64 (generate one with `openssl rand -base64 64`)",
            )
        })?;
    if bytes.len() < 64 {
        return Err(problem(
            "SESSION_KEY",
            format!(
                "decodes to {} bytes; at least 64 are needed (`openssl rand -base64 64`)",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

/// GitHub logins: 1–39 alphanumerics or single hyphens, not at either end.
fn is_github_login(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 39
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> HashMap<String, String> {
        [
            ("SPONSORABLE", "acme-org"),
            ("GITHUB_CLIENT_ID", "id"),
            ("GITHUB_CLIENT_SECRET", "shh"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn with(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut map = base();
        for (k, v) in pairs {
            map.insert((*k).to_owned(), (*v).to_owned());
        }
        map
    }

    #[test]
    fn defaults_follow_the_spec() {
        let cfg = Config::from_map(&base(), Needs::Everything).unwrap();
        assert_eq!(cfg.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(
            cfg.redirect_url().as_str(),
            "http://localhost:8080/oauth2/callback"
        );
        assert!(!cfg.secure_cookies());
        assert_eq!(cfg.ephemeral_ttl_secs, 86_400);
        assert_eq!((cfg.quota_sponsor, cfg.quota_free), (100_000, 1_000));
        assert_eq!(cfg.remote_timeout, Duration::from_millis(500));
        assert!(cfg.enterprise_redis_url.is_none());
        let gh = cfg.github.unwrap();
        assert_eq!(gh.api_url.as_str(), "https://api.github.com/");
        assert_eq!(gh.timeout, Duration::from_secs(10));
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("BIND", "nope")], "BIND"),
            (&[("PUBLIC_URL", "ftp://x")], "PUBLIC_URL"),
            (
                &[("SPONSOR_MIN_MONTHLY_USD", "-1")],
                "SPONSOR_MIN_MONTHLY_USD",
            ),
            (&[("REDIS_URL", "http://x")], "REDIS_URL"),
            (
                &[("ENTERPRISE_REDIS_URL", "nonsense")],
                "ENTERPRISE_REDIS_URL",
            ),
            (&[("SESSION_KEY", "c2hvcnQ=")], "SESSION_KEY"),
            (&[("EPHEMERAL_TTL_SECS", "0")], "EPHEMERAL_TTL_SECS"),
            (&[("REMOTE_TIMEOUT_MS", "soon")], "REMOTE_TIMEOUT_MS"),
            (&[("SPONSORABLE", "bad login!")], "SPONSORABLE"),
        ];
        for (pairs, var) in cases {
            let err = Config::from_map(&with(pairs), Needs::Everything).unwrap_err();
            assert_eq!(err.var, *var, "{err}");
        }
        let mut missing = base();
        missing.remove("GITHUB_CLIENT_SECRET");
        let err = Config::from_map(&missing, Needs::Everything).unwrap_err();
        assert_eq!(err.var, "GITHUB_CLIENT_SECRET");
        assert!(Config::from_map(&missing, Needs::RedisOnly).is_ok());
    }

    #[test]
    fn cluster_urls_are_accepted_and_shown_as_seeds_without_passwords() {
        let cfg = Config::from_map(
            &with(&[
                ("REDIS_URL", "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"),
                (
                    "ENTERPRISE_REDIS_URL",
                    "rediss+cluster://:hunter2@db1.example:7000,db2.example:7000",
                ),
            ]),
            Needs::Everything,
        )
        .unwrap();
        let summary = cfg.summary();
        assert!(
            summary.contains("REDIS_URL=redis+cluster://127.0.0.1:7000,127.0.0.1:7001"),
            "{summary}"
        );
        assert!(
            summary.contains(
                "ENTERPRISE_REDIS_URL=rediss+cluster://[redacted]@db1.example:7000,db2.example:7000"
            ),
            "{summary}"
        );
        assert!(!summary.contains("hunter2"), "{summary}");
        for bad in [
            "redis+cluster://",
            "redis+cluster://:hunter2@a:1,,b:2",
            "redis+cluster://a:1/2",
        ] {
            let err =
                Config::from_map(&with(&[("REDIS_URL", bad)]), Needs::Everything).unwrap_err();
            assert_eq!(err.var, "REDIS_URL");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_and_errors() {
        let cfg = Config::from_map(
            &with(&[("ENTERPRISE_REDIS_URL", "redis://:hunter2@remote:6379")]),
            Needs::Everything,
        )
        .unwrap();
        let debug = format!("{cfg:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("shh"),
            "{debug}"
        );
        let summary = cfg.summary();
        assert!(
            !summary.contains("hunter2") && !summary.contains("shh"),
            "{summary}"
        );
        assert!(
            summary.contains("ENTERPRISE_REDIS_URL=redis://:%5Bredacted%5D@remote:6379")
                || summary.contains("ENTERPRISE_REDIS_URL=redis://:[redacted]@remote:6379"),
            "{summary}"
        );
        let err = Config::from_map(
            &with(&[("REDIS_URL", "http://:hunter2@x")]),
            Needs::Everything,
        )
        .unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn the_simulators_client_id_needs_a_loopback_public_url() {
        let sim = [("GITHUB_CLIENT_ID", SIMULATOR_CLIENT_ID)];
        for local in [
            "http://localhost:8080",
            "http://127.0.0.1:9",
            "http://[::1]:80",
        ] {
            let vars = with(&[sim[0], ("PUBLIC_URL", local)]);
            assert!(
                Config::from_map(&vars, Needs::Everything).is_ok(),
                "{local}"
            );
        }
        let vars = with(&[sim[0], ("PUBLIC_URL", "https://gate.example.com")]);
        let err = Config::from_map(&vars, Needs::Everything).unwrap_err();
        assert_eq!(err.var, "GITHUB_CLIENT_ID");
        assert!(err.to_string().contains("loopback"), "{err}");
    }

    #[test]
    fn limits_have_defaults_and_zero_turns_them_off() {
        let cfg = Config::from_map(&base(), Needs::Everything).unwrap();
        assert_eq!(
            (cfg.rate_limit_per_minute, cfg.login_rate_per_minute),
            (600, 30)
        );
        assert_eq!(cfg.max_connections, 10_000);
        assert!(!cfg.trust_proxy);
        let vars = with(&[
            ("RATE_LIMIT_PER_MINUTE", "0"),
            ("TRUST_PROXY", "1"),
            ("MAX_CONNECTIONS", "5"),
        ]);
        let cfg = Config::from_map(&vars, Needs::Everything).unwrap();
        assert_eq!(cfg.rate_limit_per_minute, 0);
        assert!(cfg.trust_proxy);
        assert_eq!(cfg.max_connections, 5);
        for (var, bad) in [("TRUST_PROXY", "yes"), ("MAX_CONNECTIONS", "0")] {
            let err = Config::from_map(&with(&[(var, bad)]), Needs::Everything).unwrap_err();
            assert_eq!(err.var, var);
        }
    }

    #[test]
    fn https_public_url_makes_cookies_secure() {
        let cfg = Config::from_map(
            &with(&[("PUBLIC_URL", "https://gate.example.com/app/")]),
            Needs::Everything,
        )
        .unwrap();
        assert!(cfg.secure_cookies());
        assert_eq!(
            cfg.redirect_url().as_str(),
            "https://gate.example.com/app/oauth2/callback"
        );
        assert_eq!(cfg.public_origin(), "https://gate.example.com");
    }
}
