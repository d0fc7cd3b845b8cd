//! The OAuth web flow, step 3: `POST /login/oauth/access_token`. Every
//! failure is HTTP 200 with `error`, as on GitHub.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};
use url::form_urlencoded;

use crate::failure::gate;
use crate::state::{Endpoint, Shared};

/// The token endpoint's documented errors (always HTTP 200).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenError {
    IncorrectClientCredentials,
    BadVerificationCode,
    RedirectUriMismatch,
    UnsupportedGrantType,
}

#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
    error_description: &'static str,
    error_uri: &'static str,
}

impl TokenError {
    fn body(self) -> ErrorBody {
        let (error, error_description, error_uri) = match self {
            TokenError::IncorrectClientCredentials => (
                "incorrect_client_credentials",
                "The client_id and/or client_secret passed are incorrect.",
                concat!(
                    "https://docs.github.com/apps/managing-oauth-apps/",
                    "troubleshooting-oauth-app-access-token-request-errors/#incorrect-client-credentials"
                ),
            ),
            TokenError::BadVerificationCode => (
                "bad_verification_code",
                "The code passed is incorrect or expired.",
                concat!(
                    "https://docs.github.com/apps/managing-oauth-apps/",
                    "troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code"
                ),
            ),
            TokenError::RedirectUriMismatch => (
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL for this application.",
                concat!(
                    "https://docs.github.com/apps/managing-oauth-apps/",
                    "troubleshooting-authorization-request-errors/#redirect-uri-mismatch2"
                ),
            ),
            TokenError::UnsupportedGrantType => (
                "unsupported_grant_type",
                "The grant type is not supported by this application.",
                concat!(
                    "https://docs.github.com/apps/managing-oauth-apps/",
                    "troubleshooting-oauth-app-access-token-request-errors/"
                ),
            ),
        };
        ErrorBody {
            error,
            error_description,
            error_uri,
        }
    }
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("application/json"))
}

fn json_200(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

fn form_200(pairs: &[(&str, &str)]) -> Response {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// An error answer in the format the client asked for (HTTP 200 either way).
pub(crate) fn token_error(headers: &HeaderMap, e: TokenError) -> Response {
    let body = e.body();
    tracing::info!(error = body.error, "token exchange refused");
    if wants_json(headers) {
        json_200(serde_json::to_string(&body).unwrap_or_default())
    } else {
        form_200(&[
            ("error", body.error),
            ("error_description", body.error_description),
            ("error_uri", body.error_uri),
        ])
    }
}

/// Parameters from the query string, then the body (form or JSON) over them.
fn collect_params(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> HashMap<String, String> {
    let mut params: HashMap<String, String> = HashMap::new();
    if let Some(q) = query {
        params.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
    if is_json {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) {
            for (k, v) in map {
                match v {
                    serde_json::Value::String(s) => params.insert(k, s),
                    serde_json::Value::Number(n) => params.insert(k, n.to_string()),
                    _ => None,
                };
            }
        }
    } else {
        params.extend(form_urlencoded::parse(body).into_owned());
    }
    params
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| -> String {
        form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

/// `POST /login/oauth/access_token`
pub(crate) async fn access_token(
    State(shared): State<Shared>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if let Some(response) = gate(&shared, Endpoint::Token, &headers).await {
        return response;
    }
    let params = collect_params(query.as_deref(), &headers, &body);
    let basic = basic_credentials(&headers);
    let client_id = params
        .get("client_id")
        .cloned()
        .or_else(|| basic.as_ref().map(|b| b.0.clone()));
    let client_secret = params
        .get("client_secret")
        .cloned()
        .or_else(|| basic.as_ref().map(|b| b.1.clone()));
    if client_id.as_deref() != Some(shared.opts.client_id.as_str())
        || client_secret.as_deref() != Some(shared.opts.client_secret.as_str())
    {
        return token_error(&headers, TokenError::IncorrectClientCredentials);
    }
    if params
        .get("grant_type")
        .is_some_and(|g| g != "authorization_code")
    {
        return token_error(&headers, TokenError::UnsupportedGrantType);
    }
    // A code is consumed by the first exchange that presents it, whatever follows.
    let code = params.get("code").cloned().unwrap_or_default();
    let grant = shared.with(|s| {
        let ttl = s.code_ttl;
        s.codes
            .remove(&code)
            .filter(|g| g.issued.elapsed() < ttl && g.client_id == shared.opts.client_id)
    });
    let Some(grant) = grant else {
        return token_error(&headers, TokenError::BadVerificationCode);
    };
    if params
        .get("redirect_uri")
        .is_some_and(|r| *r != grant.redirect_uri)
    {
        return token_error(&headers, TokenError::RedirectUriMismatch);
    }
    if let Some(challenge) = &grant.challenge {
        let verified = params.get("code_verifier").is_some_and(|v| {
            let digest = Sha256::digest(v.as_bytes());
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest) == *challenge
        });
        if !verified {
            return token_error(&headers, TokenError::BadVerificationCode);
        }
    }
    let scope = grant.scopes.join(",");
    let token = shared.mint_token(&grant.login, grant.scopes.clone());
    tracing::info!(user = %grant.login, scope = %scope, "token issued");
    if wants_json(&headers) {
        #[derive(Serialize)]
        struct TokenOk<'a> {
            access_token: &'a str,
            token_type: &'a str,
            scope: &'a str,
        }
        let ok = TokenOk {
            access_token: &token,
            token_type: "bearer",
            scope: &scope,
        };
        json_200(serde_json::to_string(&ok).unwrap_or_default())
    } else {
        form_200(&[
            ("access_token", token.as_str()),
            ("scope", scope.as_str()),
            ("token_type", "bearer"),
        ])
    }
}
