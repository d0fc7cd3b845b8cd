//! OAuth web flow: the authorize URL (scope, state, PKCE S256) and the code
//! exchange, with GitHub's quirks: token errors come back as HTTP 200 (which
//! `oauth2` 5 reports as a *parse* error) and granted scopes are
//! comma-separated.

use std::fmt;

use oauth2::basic::BasicErrorResponse;
use oauth2::{
    AsyncHttpClient, AuthorizationCode, CsrfToken, HttpClientError, HttpRequest, HttpResponse,
    PkceCodeChallenge, PkceCodeVerifier, RequestTokenError, Scope, TokenResponse,
};
use serde::Deserialize;
use url::Url;

use secrecy::{ExposeSecret, SecretString};

use super::{error_chain, GithubClient, GithubError};

/// Scopes asked for at authorize time (sent space-separated).
pub const REQUESTED_SCOPES: [&str; 2] = ["read:user", "user:email"];

/// Where to send the browser, and what to keep (server side, single use)
/// until the callback.
pub struct AuthorizeRequest {
    /// `{GITHUB_URL}/login/oauth/authorize?response_type=code&client_id=…&state=…&code_challenge=…&code_challenge_method=S256&redirect_uri=…&scope=read%3Auser+user%3Aemail`
    pub url: Url,
    /// Fresh random state (16 random bytes, base64url): compare with the callback's `state`.
    pub state: String,
    /// PKCE verifier to hand back to [`GithubClient::exchange_code`].
    pub pkce_verifier: String,
}

impl fmt::Debug for AuthorizeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut endpoint = self.url.clone();
        endpoint.set_query(None);
        f.debug_struct("AuthorizeRequest")
            .field("url", &endpoint.as_str())
            .field("state", &"[redacted]")
            .field("pkce_verifier", &"[redacted]")
            .finish()
    }
}

/// A GitHub access token. `Debug` never shows it.
#[derive(Clone)]
pub struct AccessToken {
    secret: SecretString,
    scopes: Option<Vec<String>>,
}

impl AccessToken {
    /// A token obtained elsewhere (e.g. `SPONSORS_TOKEN`); its scopes are unknown.
    pub fn new(secret: impl Into<String>) -> Self {
        Self {
            secret: SecretString::from(secret.into()),
            scopes: None,
        }
    }

    pub fn secret(&self) -> &str {
        self.secret.expose_secret()
    }

    /// Scopes GitHub says it granted (GitHub separates them with commas),
    /// `None` when unknown. May be empty (GitHub Apps) and may differ from
    /// [`REQUESTED_SCOPES`].
    pub fn scopes(&self) -> Option<&[String]> {
        self.scopes.as_deref()
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes
            .as_ref()
            .is_some_and(|s| s.iter().any(|x| x == scope))
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"[redacted]")
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Splits what the `scope` field held on commas (GitHub) and whitespace (RFC 6749).
fn split_scopes<'a>(raw: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    raw.into_iter()
        .flat_map(|s| s.split(|c: char| c == ',' || c.is_whitespace()))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Failure of the HTTP call under the token exchange.
#[derive(Debug, thiserror::Error)]
enum TokenHttpError {
    #[error(transparent)]
    Client(#[from] HttpClientError<reqwest::Error>),
    /// A non-200 answer that is not an OAuth error body (5xx, 429, an HTML page…).
    #[error("HTTP {0}")]
    Status(u16),
}

/// GitHub's error body: `{"error": "...", "error_description": "...", "error_uri": "..."}`.
#[derive(Deserialize)]
struct TokenErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl TokenErrorBody {
    fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Self>(body)
            .ok()
            .filter(|e| !e.error.is_empty())
    }

    fn into_error(self) -> GithubError {
        GithubError::TokenRejected {
            code: self.error,
            description: self.error_description.unwrap_or_default(),
        }
    }
}

impl GithubClient {
    /// A fresh authorize URL with scope `read:user user:email`, a random
    /// `state` and a PKCE S256 challenge.
    pub fn authorize(&self) -> AuthorizeRequest {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = self
            .oauth()
            .authorize_url(CsrfToken::new_random)
            .add_scopes(REQUESTED_SCOPES.iter().map(|s| Scope::new((*s).to_owned())))
            .set_pkce_challenge(challenge)
            .url();
        AuthorizeRequest {
            url,
            state: state.into_secret(),
            pkce_verifier: verifier.into_secret(),
        }
    }

    /// Exchanges the callback's `code` (with the PKCE verifier) for an access
    /// token. Token errors, which GitHub sends as HTTP 200, become
    /// [`GithubError::TokenRejected`]; a non-OAuth failure status becomes
    /// [`GithubError::Status`].
    pub async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: String,
    ) -> Result<AccessToken, GithubError> {
        let http = self.http().clone();
        // Our own HTTP shim around reqwest so that a 5xx (whose body oauth2
        // would try to read as an OAuth error, losing the status) stays a
        // status error.
        let send = move |request: HttpRequest| {
            let http = http.clone();
            async move {
                let response: HttpResponse = http.call(request).await?;
                let status = response.status();
                if status != reqwest::StatusCode::OK
                    && TokenErrorBody::parse(response.body()).is_none()
                {
                    return Err(TokenHttpError::Status(status.as_u16()));
                }
                Ok(response)
            }
        };

        let result = self
            .oauth()
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier))
            .request_async(&send)
            .await;

        match result {
            Ok(token) => {
                let scopes = token
                    .scopes()
                    .map(|s| split_scopes(s.iter().map(|scope| scope.as_str())));
                Ok(AccessToken {
                    secret: SecretString::from(token.access_token().secret().clone()),
                    scopes,
                })
            }
            Err(err) => Err(map_token_error(err)),
        }
    }
}

fn map_token_error(err: RequestTokenError<TokenHttpError, BasicErrorResponse>) -> GithubError {
    match err {
        RequestTokenError::ServerResponse(e) => GithubError::TokenRejected {
            code: e.error().as_ref().to_owned(),
            description: e.error_description().cloned().unwrap_or_default(),
        },
        // GitHub's HTTP-200 error: oauth2 tried to read it as a token.
        RequestTokenError::Parse(parse_err, body) => match TokenErrorBody::parse(&body) {
            Some(e) => e.into_error(),
            // Only the path, never serde's message: it may quote a value.
            None => GithubError::Decode(format!(
                "token response does not parse (at `{}`)",
                parse_err.path()
            )),
        },
        RequestTokenError::Request(TokenHttpError::Status(code)) => GithubError::Status(code),
        RequestTokenError::Request(TokenHttpError::Client(HttpClientError::Reqwest(e))) => {
            GithubError::from_reqwest(*e)
        }
        RequestTokenError::Request(TokenHttpError::Client(e)) => {
            GithubError::Transport(error_chain(&e))
        }
        RequestTokenError::Other(msg) => GithubError::Decode(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_split_on_commas_and_spaces() {
        assert_eq!(
            split_scopes(["read:user,user:email"]),
            vec!["read:user", "user:email"]
        );
        assert_eq!(split_scopes(["read:user user:email"]).len(), 2);
        assert!(split_scopes([""]).is_empty());
    }

    #[test]
    fn token_debug_is_redacted() {
        let t = AccessToken::new("gho_supersecret");
        assert!(!format!("{t:?}").contains("gho_supersecret"));
        assert_eq!(t.secret(), "gho_supersecret");
    }

    #[test]
    fn http_200_error_body_is_a_rejection() {
        let body = br#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired.","error_uri":"https://docs.github.com/"}"#;
        match TokenErrorBody::parse(body).map(TokenErrorBody::into_error) {
            Some(GithubError::TokenRejected { code, description }) => {
                assert_eq!(code, "bad_verification_code");
                assert!(description.contains("incorrect or expired"));
            }
            other => panic!("{other:?}"),
        }
        assert!(TokenErrorBody::parse(br#"{"access_token":"x"}"#).is_none());
        assert!(TokenErrorBody::parse(b"<html>502</html>").is_none());
    }
}
