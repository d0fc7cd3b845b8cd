//! Everything sponsorgate says to GitHub: the OAuth web flow (authorize URL,
//! code exchange), the REST user endpoints and the GraphQL sponsorship
//! queries. Nothing here touches Redis.
//!
//! One [`GithubClient`] holds one `reqwest::Client` (User-Agent, connect and
//! total timeouts, no redirects) shared by every call, plus the typed `oauth2`
//! client. Errors are [`GithubError`]; none of their messages or `Debug`
//! output ever carries an access token, an authorization code, the client
//! secret or a PKCE verifier.

mod graphql;
mod oauth;
mod rest;
mod sponsorship;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, ClientId, ClientSecret, EndpointNotSet, EndpointSet, RedirectUrl, TokenUrl,
};
use secrecy::ExposeSecret;
pub use secrecy::SecretString;
use url::Url;

pub use oauth::{AccessToken, AuthorizeRequest, REQUESTED_SCOPES};
pub use rest::GithubUser;
pub use sponsorship::{sponsorship_counts, SponsorStatus};

/// `User-Agent` sent on every request (GitHub refuses requests without one).
pub const USER_AGENT: &str = concat!("sponsorgate/", env!("CARGO_PKG_VERSION"));

/// REST API version pinned on every REST call.
const REST_API_VERSION: &str = "2022-11-28";

/// Where GitHub lives and how this app is registered there. The app's config
/// module fills it from the environment (`GITHUB_URL` etc.).
#[derive(Clone, Debug)]
pub struct GithubConfig {
    pub client_id: String,
    pub client_secret: SecretString,
    /// `GITHUB_URL`, e.g. `https://github.com`: the authorize and token endpoints live here.
    pub web_url: Url,
    /// `GITHUB_API_URL`, e.g. `https://api.github.com` (GHES: `https://HOST/api/v3`; the path is kept).
    pub api_url: Url,
    /// `GITHUB_GRAPHQL_URL`, used as is.
    pub graphql_url: Url,
    /// `PUBLIC_URL` + `/oauth2/callback`.
    pub redirect_url: Url,
    /// `GITHUB_TIMEOUT_SECS`: bound on every call (connect and total).
    pub timeout: Duration,
}

/// What can go wrong talking to GitHub. The app maps these to HTTP answers
/// (token rejections to 4xx, the rest to 502).
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// The token endpoint refused the exchange (GitHub says so with HTTP 200
    /// and an `error` field): `bad_verification_code`,
    /// `incorrect_client_credentials`, `redirect_uri_mismatch`, …
    #[error("GitHub refused the token exchange: {code}: {description}")]
    TokenRejected { code: String, description: String },
    /// HTTP 401 (`Bad credentials`): the access token is invalid, expired or revoked.
    #[error("GitHub rejected the access token (401)")]
    Unauthorized,
    /// The call did not finish within `GITHUB_TIMEOUT_SECS`.
    #[error("GitHub did not answer in time")]
    Timeout,
    /// Any other non-success HTTP status (5xx, 403, 429, 3xx, …).
    #[error("GitHub answered HTTP {0}")]
    Status(u16),
    /// A GraphQL answer with a non-empty `errors` array or without `data`.
    #[error("GitHub GraphQL errors: {}", .0.join("; "))]
    Graphql(Vec<String>),
    /// The sponsorable account does not exist (when listing its sponsors).
    #[error("GitHub account {0:?} not found")]
    SponsorableNotFound(String),
    /// Could not connect, or the connection broke.
    #[error("could not reach GitHub: {0}")]
    Transport(String),
    /// An answer that does not have the expected shape.
    #[error("unexpected answer from GitHub: {0}")]
    Decode(String),
    /// The configuration cannot be used (bad URL, TLS backend failure).
    #[error("invalid GitHub configuration: {0}")]
    Config(String),
}

impl GithubError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout)
    }

    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Self::Unauthorized)
    }

    /// A refusal caused by the request (bad/expired code, redirect URI,
    /// client credentials), as opposed to GitHub failing.
    pub fn is_token_rejected(&self) -> bool {
        matches!(self, Self::TokenRejected { .. })
    }

    /// Every value [`Self::kind`] can return.
    pub const KINDS: [&'static str; 9] = [
        "token_rejected",
        "unauthorized",
        "timeout",
        "status",
        "graphql",
        "not_found",
        "transport",
        "decode",
        "config",
    ];

    /// A short, stable name for metrics labels and log fields.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TokenRejected { .. } => "token_rejected",
            Self::Unauthorized => "unauthorized",
            Self::Timeout => "timeout",
            Self::Status(_) => "status",
            Self::Graphql(_) => "graphql",
            Self::SponsorableNotFound(_) => "not_found",
            Self::Transport(_) => "transport",
            Self::Decode(_) => "decode",
            Self::Config(_) => "config",
        }
    }

    /// 401 is a bad token (never "not a sponsor"); any other non-2xx is `Status`.
    pub(crate) fn check_status(response: reqwest::Response) -> Result<reqwest::Response, Self> {
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(Self::Unauthorized);
        }
        if !status.is_success() {
            return Err(Self::Status(status.as_u16()));
        }
        Ok(response)
    }

    /// Maps a reqwest error. The message never holds a secret: URLs carry
    /// none (tokens travel in headers, codes in bodies), and the URL is
    /// dropped anyway.
    pub(crate) fn from_reqwest(err: reqwest::Error) -> Self {
        if err.is_timeout() {
            return Self::Timeout;
        }
        let err = err.without_url();
        if err.is_decode() {
            return Self::Decode(error_chain(&err));
        }
        Self::Transport(error_chain(&err))
    }
}

/// `err` and its sources, joined with ": ".
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

pub(crate) type OauthClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// The GitHub client. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct GithubClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    oauth: OauthClient,
    api_url: Url,
    graphql_url: Url,
}

impl fmt::Debug for GithubClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubClient")
            .field("authorize_url", &self.inner.oauth.auth_uri().as_str())
            .field("token_url", &self.inner.oauth.token_uri().as_str())
            .field("api_url", &self.inner.api_url.as_str())
            .field("graphql_url", &self.inner.graphql_url.as_str())
            .finish_non_exhaustive()
    }
}

impl GithubClient {
    pub fn new(cfg: GithubConfig) -> Result<Self, GithubError> {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(cfg.timeout)
            .timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| GithubError::Config(error_chain(&e)))?;

        let auth_url = join_path(&cfg.web_url, &["login", "oauth", "authorize"])?;
        let token_url = join_path(&cfg.web_url, &["login", "oauth", "access_token"])?;
        let oauth = BasicClient::new(ClientId::new(cfg.client_id))
            .set_client_secret(ClientSecret::new(
                cfg.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_uri(AuthUrl::from_url(auth_url))
            .set_token_uri(TokenUrl::from_url(token_url))
            .set_redirect_uri(RedirectUrl::from_url(cfg.redirect_url))
            // GitHub documents the client credentials as body parameters;
            // HTTP Basic works in practice but is not documented.
            .set_auth_type(AuthType::RequestBody);

        Ok(Self {
            inner: Arc::new(Inner {
                http,
                oauth,
                api_url: cfg.api_url,
                graphql_url: cfg.graphql_url,
            }),
        })
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn oauth(&self) -> &OauthClient {
        &self.inner.oauth
    }

    pub(crate) fn graphql_url(&self) -> &Url {
        &self.inner.graphql_url
    }

    /// `{api_url}/seg/seg…`, keeping any path of the base (GHES `/api/v3`).
    pub(crate) fn api_endpoint(&self, segments: &[&str]) -> Result<Url, GithubError> {
        join_path(&self.inner.api_url, segments)
    }
}

/// Appends path segments to `base`, keeping its own path (with or without a
/// trailing slash) and dropping any query or fragment.
pub(crate) fn join_path(base: &Url, segments: &[&str]) -> Result<Url, GithubError> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| GithubError::Config(format!("{base} cannot be a base URL")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn join_keeps_base_path() {
        let ghes = url("https://ghe.example.com/api/v3");
        assert_eq!(
            join_path(&ghes, &["user", "emails"]).unwrap().as_str(),
            "https://ghe.example.com/api/v3/user/emails"
        );
        let slash = url("https://ghe.example.com/api/v3/");
        assert_eq!(
            join_path(&slash, &["user"]).unwrap().as_str(),
            "https://ghe.example.com/api/v3/user"
        );
        let root = url("https://api.github.com");
        assert_eq!(
            join_path(&root, &["user"]).unwrap().as_str(),
            "https://api.github.com/user"
        );
        let web = url("http://127.0.0.1:9999/");
        assert_eq!(
            join_path(&web, &["login", "oauth", "authorize"])
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9999/login/oauth/authorize"
        );
    }

    fn config() -> GithubConfig {
        GithubConfig {
            client_id: "the-client-id".into(),
            client_secret: SecretString::from("very-secret-value"),
            web_url: url("https://github.com"),
            api_url: url("https://api.github.com"),
            graphql_url: url("https://api.github.com/graphql"),
            redirect_url: url("http://localhost:8080/oauth2/callback"),
            timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn debug_never_shows_the_client_secret() {
        let cfg = config();
        let shown = format!("{cfg:?} {:?}", cfg.client_secret);
        assert!(!shown.contains("very-secret-value"), "{shown}");
        assert!(
            shown.contains("[REDACTED]"),
            "secrecy marks the value: {shown}"
        );
        let client = GithubClient::new(cfg).unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("very-secret-value"), "{shown}");
        assert!(shown.contains("https://github.com/login/oauth/access_token"));
    }
}
