//! REST: `GET /user`, and `GET /user/emails` when the profile has no public
//! email.

use reqwest::header::{HeaderValue, ACCEPT, LINK};
use serde::{Deserialize, Serialize};

use super::{AccessToken, GithubClient, GithubError, REST_API_VERSION};

/// Page size for `/user/emails` (GitHub's maximum).
const EMAILS_PER_PAGE: usize = 100;
/// Most `/user/emails` pages read before giving up on finding a primary address.
const EMAILS_MAX_PAGES: u32 = 10;

/// The signed-in GitHub user. `id` is the stable key; `login` can change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GithubUser {
    pub id: i64,
    pub login: String,
    pub name: Option<String>,
    /// The public profile email, else the primary verified address from
    /// `/user/emails`; `None` when neither is available.
    pub email: Option<String>,
    pub avatar_url: String,
}

#[derive(Deserialize)]
struct EmailEntry {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

impl GithubClient {
    /// `GET {api}/user`; when its `email` is null or empty, the `primary &&
    /// verified` entry of `GET {api}/user/emails` (paged, 100 a page).
    pub async fn user(&self, token: &AccessToken) -> Result<GithubUser, GithubError> {
        let url = self.api_endpoint(&["user"])?;
        let response = self.rest_get(url, token).await?;
        let mut user: GithubUser = response.json().await.map_err(GithubError::from_reqwest)?;
        user.email = user.email.filter(|e| !e.trim().is_empty());
        user.name = user.name.filter(|n| !n.trim().is_empty());
        if user.email.is_none() {
            user.email = self.primary_email(token).await?;
        }
        Ok(user)
    }

    /// The primary verified address, or `None` if there is none or the token
    /// may not read addresses (403/404: `user:email` not granted).
    async fn primary_email(&self, token: &AccessToken) -> Result<Option<String>, GithubError> {
        for page in 1..=EMAILS_MAX_PAGES {
            let mut url = self.api_endpoint(&["user", "emails"])?;
            url.query_pairs_mut()
                .append_pair("per_page", &EMAILS_PER_PAGE.to_string())
                .append_pair("page", &page.to_string());
            let response = match self.rest_get(url, token).await {
                Ok(r) => r,
                Err(GithubError::Status(code @ (403 | 404))) => {
                    tracing::warn!(
                        github.status = code,
                        "GitHub refused /user/emails (is the user:email scope granted?); \
                         continuing without an email address"
                    );
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            let has_next = match response.headers().get(LINK) {
                Some(link) => link_has_next(link),
                None => None,
            };
            let entries: Vec<EmailEntry> =
                response.json().await.map_err(GithubError::from_reqwest)?;
            if let Some(found) = entries.iter().find(|e| e.primary && e.verified) {
                return Ok(Some(found.email.clone()));
            }
            // Without a Link header, a full page may mean there is another.
            if !has_next.unwrap_or(entries.len() >= EMAILS_PER_PAGE) {
                return Ok(None);
            }
        }
        tracing::warn!(
            pages = EMAILS_MAX_PAGES,
            "no primary verified email in the first pages of /user/emails"
        );
        Ok(None)
    }

    /// A REST GET with GitHub's headers; 401 → `Unauthorized`, other
    /// non-2xx → `Status`.
    async fn rest_get(
        &self,
        url: url::Url,
        token: &AccessToken,
    ) -> Result<reqwest::Response, GithubError> {
        let response = self
            .http()
            .get(url)
            .bearer_auth(token.secret())
            .header(
                ACCEPT,
                HeaderValue::from_static("application/vnd.github+json"),
            )
            .header("X-GitHub-Api-Version", REST_API_VERSION)
            .send()
            .await
            .map_err(GithubError::from_reqwest)?;
        GithubError::check_status(response)
    }
}

/// `Some(true)` if an RFC 8288 `Link` header has a `rel="next"` entry,
/// `Some(false)` if it has none, `None` if it cannot be read.
fn link_has_next(link: &HeaderValue) -> Option<bool> {
    let link = link.to_str().ok()?;
    Some(link.split(',').any(|part| {
        part.split(';').skip(1).any(|param| {
            let param = param.trim();
            param
                .strip_prefix("rel=")
                .map(|v| v.trim_matches('"').split_whitespace().any(|r| r == "next"))
                .unwrap_or(false)
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_next() {
        let v = HeaderValue::from_static(
            r#"<https://api.github.com/user/emails?page=2>; rel="next", <https://api.github.com/user/emails?page=3>; rel="last""#,
        );
        assert_eq!(link_has_next(&v), Some(true));
        let v = HeaderValue::from_static(
            r#"<https://api.github.com/user/emails?page=1>; rel="prev", <https://api.github.com/user/emails?page=1>; rel="first""#,
        );
        assert_eq!(link_has_next(&v), Some(false));
    }

    #[test]
    fn user_json_shape() {
        // Trimmed from GitHub's documented example (docs.github.com, "Get the authenticated user").
        let body = r#"{"login":"octocat","id":1,"node_id":"MDQ6VXNlcjE=","avatar_url":"https://github.com/images/error/octocat_happy.gif","type":"User","site_admin":false,"name":"monalisa octocat","company":null,"email":null,"hireable":false}"#;
        let user: GithubUser = serde_json::from_str(body).unwrap();
        assert_eq!(user.id, 1);
        assert_eq!(user.login, "octocat");
        assert_eq!(user.email, None);
        let emails: Vec<EmailEntry> = serde_json::from_str(
            r#"[{"email":"octocat@github.com","verified":true,"primary":true,"visibility":"public"}]"#,
        )
        .unwrap();
        assert!(emails[0].primary && emails[0].verified);
    }
}
