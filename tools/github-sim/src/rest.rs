//! REST: `GET /user`, `GET /user/emails`, and the API's common answers.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use crate::clock;
use crate::failure::{gate, request_id, text};
use crate::fixtures::FixtureUser;
use crate::state::{has_scope, Auth, Endpoint, Shared, TokenGrant};

const NO_USER_AGENT: &str = "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required).";

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

/// `401 {"message":"Bad credentials",…}`
pub(crate) fn bad_credentials() -> Response {
    json_response(
        StatusCode::UNAUTHORIZED,
        json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
            .to_string(),
    )
}

/// `404 {"message":"Not Found",…}`
pub(crate) fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
            .to_string(),
    )
}

/// The 403 GitHub's front end gives to requests without a `User-Agent`.
/// `Some(403)` when the request has no `User-Agent`.
pub(crate) fn missing_user_agent(headers: &HeaderMap) -> Option<Response> {
    let present = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().is_empty());
    (!present).then(|| text(StatusCode::FORBIDDEN, NO_USER_AGENT))
}

/// Adds the headers api.github.com sends on authenticated answers.
pub(crate) fn api_headers(
    response: &mut Response,
    grant: &TokenGrant,
    used: u64,
    resource: &'static str,
    accepted: &str,
) {
    let limit: u64 = 5000;
    let reset = clock::unix_now() / 3600 * 3600 + 3600;
    let pairs = [
        ("x-ratelimit-limit", limit.to_string()),
        (
            "x-ratelimit-remaining",
            limit.saturating_sub(used).to_string(),
        ),
        ("x-ratelimit-used", used.to_string()),
        ("x-ratelimit-reset", reset.to_string()),
        ("x-ratelimit-resource", resource.to_string()),
        ("x-oauth-scopes", grant.scopes.join(", ")),
        ("x-accepted-oauth-scopes", accepted.to_string()),
        ("x-github-media-type", "github.v3; format=json".to_string()),
        ("x-github-api-version-selected", "2022-11-28".to_string()),
        ("x-github-request-id", request_id()),
    ];
    let h = response.headers_mut();
    for (name, value) in pairs {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    }
}

/// User-Agent and token checks shared by the REST endpoints.
fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    docs: &str,
) -> Result<(TokenGrant, Box<FixtureUser>), Box<Response>> {
    if let Some(refused) = missing_user_agent(headers) {
        return Err(Box::new(refused));
    }
    match shared.auth(headers) {
        Auth::Valid { grant, user } => Ok((grant, user)),
        Auth::Unknown => Err(Box::new(bad_credentials())),
        Auth::Missing => Err(Box::new(json_response(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Requires authentication", "documentation_url": docs}).to_string(),
        ))),
    }
}

#[derive(Serialize)]
struct RestUser<'a> {
    login: &'a str,
    id: u64,
    node_id: String,
    avatar_url: String,
    gravatar_id: &'a str,
    url: String,
    html_url: String,
    followers_url: String,
    following_url: String,
    repos_url: String,
    organizations_url: String,
    #[serde(rename = "type")]
    kind: &'a str,
    user_view_type: &'a str,
    site_admin: bool,
    name: Option<&'a str>,
    company: Option<&'a str>,
    blog: &'a str,
    location: Option<&'a str>,
    email: Option<&'a str>,
    hireable: Option<bool>,
    bio: Option<&'a str>,
    twitter_username: Option<&'a str>,
    public_repos: u32,
    public_gists: u32,
    followers: u32,
    following: u32,
    created_at: &'a str,
    updated_at: &'a str,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    private: Option<serde_json::Value>,
}

/// `GET /user`
pub(crate) async fn user(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(response) = gate(&shared, Endpoint::User, &headers).await {
        return response;
    }
    const DOCS: &str = "https://docs.github.com/rest/users/users#get-the-authenticated-user";
    let (grant, u) = match authenticate(&shared, &headers, DOCS) {
        Ok(ok) => ok,
        Err(response) => return *response,
    };
    let base = &shared.base;
    let private = has_scope(&grant.scopes, "user").then(|| {
        json!({
            "private_gists": 0, "total_private_repos": 0, "owned_private_repos": 0,
            "disk_usage": 0, "collaborators": 0, "two_factor_authentication": true,
            "plan": {"name": "free", "space": 976562499, "private_repos": 10000, "collaborators": 0}
        })
    });
    let body = RestUser {
        login: &u.login,
        id: u.id,
        node_id: u.node_id(),
        avatar_url: format!("{base}/avatars/{}", u.id),
        gravatar_id: "",
        url: format!("{base}/users/{}", u.login),
        html_url: format!("{base}/{}", u.login),
        followers_url: format!("{base}/users/{}/followers", u.login),
        following_url: format!("{base}/users/{}/following{{/other_user}}", u.login),
        repos_url: format!("{base}/users/{}/repos", u.login),
        organizations_url: format!("{base}/users/{}/orgs", u.login),
        kind: u.kind.as_str(),
        user_view_type: if private.is_some() {
            "private"
        } else {
            "public"
        },
        site_admin: false,
        name: u.name.as_deref(),
        company: None,
        blog: "",
        location: None,
        email: u.email.as_deref(),
        hireable: None,
        bio: None,
        twitter_username: None,
        public_repos: 2,
        public_gists: 0,
        followers: 3,
        following: 1,
        created_at: "2015-06-01T12:00:00Z",
        updated_at: "2024-06-01T12:00:00Z",
        private,
    };
    let used = shared.count_rate(&u.login, "core");
    let mut response = json_response(
        StatusCode::OK,
        serde_json::to_string(&body).unwrap_or_default(),
    );
    api_headers(&mut response, &grant, used, "core", "");
    response
}

/// `GET /user/emails` (needs `user:email` or `user`; paged with `per_page`/`page`).
pub(crate) async fn emails(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(response) = gate(&shared, Endpoint::Emails, &headers).await {
        return response;
    }
    const DOCS: &str =
        "https://docs.github.com/rest/users/emails#list-email-addresses-for-the-authenticated-user";
    let (grant, u) = match authenticate(&shared, &headers, DOCS) {
        Ok(ok) => ok,
        Err(response) => return *response,
    };
    let used = shared.count_rate(&u.login, "core");
    let accepted = "user, user:email";
    if !has_scope(&grant.scopes, "user:email") {
        let mut response = json_response(
            StatusCode::FORBIDDEN,
            json!({"message": "Must have admin rights to Repository.", "documentation_url": DOCS})
                .to_string(),
        );
        api_headers(&mut response, &grant, used, "core", accepted);
        return response;
    }
    let number = |k: &str, default: usize| {
        q.get(k)
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(default)
    };
    let per_page = number("per_page", 30).min(100);
    let page = number("page", 1);
    let total = u.emails.len();
    let last = total.div_ceil(per_page).max(1);
    let items: Vec<serde_json::Value> = u
        .emails
        .iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(|e| {
            json!({"email": e.email, "primary": e.primary, "verified": e.verified, "visibility": e.visibility})
        })
        .collect();
    let link_to = |p: usize, rel: &str| {
        format!(
            "<{}/user/emails?per_page={per_page}&page={p}>; rel=\"{rel}\"",
            shared.base
        )
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(link_to((page - 1).min(last), "prev"));
    }
    if page < last {
        links.push(link_to(page + 1, "next"));
        links.push(link_to(last, "last"));
    }
    if page > 1 {
        links.push(link_to(1, "first"));
    }
    let mut response = json_response(StatusCode::OK, serde_json::Value::Array(items).to_string());
    if !links.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
            response.headers_mut().insert(header::LINK, v);
        }
    }
    api_headers(&mut response, &grant, used, "core", accepted);
    response
}
