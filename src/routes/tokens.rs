//! `POST /tokens`, `GET /tokens`, `DELETE /tokens/{id}`: API tokens, managed
//! from the browser session (never with a token).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::now_secs;
use crate::error::{AppError, AppResult, ErrorBody, ErrorCode};
use crate::routes::identity::Caller;
use crate::state::AppState;
use crate::tokens::{self, Scope, TokenRecord, MAX_TOKENS};

/// The body of `POST /tokens`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for: 1 to 100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]+$"
    )]
    name: String,
    /// At least one of `exclusions:read`, `exclusions:write`.
    #[schema(min_items = 1)]
    scopes: Vec<Scope>,
    /// 1 to 365, or null for a token that does not expire.
    #[schema(minimum = 1, maximum = 365, value_type = Option<u64>)]
    expires_in_days: Option<serde_json::Number>,
}

/// A token as listed (never its secret).
#[derive(Serialize, ToSchema)]
pub struct TokenInfo {
    id: String,
    name: String,
    scopes: Vec<Scope>,
    /// Unix seconds.
    created_at: u64,
    /// Unix seconds, or null: never expires.
    expires_at: Option<u64>,
    /// Unix seconds of the last request made with it (updated at most once
    /// a minute), or null.
    last_used_at: Option<u64>,
}

/// A new token: the only answer that shows `token`.
#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    id: String,
    name: String,
    scopes: Vec<Scope>,
    created_at: u64,
    expires_at: Option<u64>,
    /// `sg_` + 40 letters and digits. Shown once: only a digest is kept.
    token: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenList {
    /// Newest first.
    tokens: Vec<TokenInfo>,
}

fn invalid(message: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::InvalidRequest, message.into())
}

/// The request checked against the rules of the schema.
fn validate(request: NewToken) -> AppResult<(String, Vec<Scope>, Option<u64>)> {
    let name = request.name;
    let chars = name.chars().count();
    if !(1..=100).contains(&chars) || name.chars().any(char::is_control) {
        return Err(invalid(
            "name must be 1 to 100 characters without control characters",
        ));
    }
    let mut scopes = request.scopes;
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(invalid(
            "scopes must name exclusions:read, exclusions:write or both",
        ));
    }
    // A whole number, also when written `30.0` (JSON does not tell them apart).
    let days = match request.expires_in_days {
        None => None,
        Some(n) => Some(
            n.as_f64()
                .filter(|d| d.fract() == 0.0 && (1.0..=365.0).contains(d))
                .map(|d| d as u64)
                .ok_or_else(|| {
                    invalid("expires_in_days must be a whole number from 1 to 365, or null")
                })?,
        ),
    };
    Ok((name, scopes, days))
}

/// Create an API token (shown once in this answer). Needs the browser
/// session: a request with a token is refused (403).
#[utoipa::path(post, path = "/tokens", tag = "tokens",
    request_body(content = NewToken, content_type = "application/json"),
    responses((status = 201, body = CreatedToken),
        (status = 400, description = "No body, not JSON, or a field missing", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "A value out of range, or 20 live tokens already", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user.id = caller.user_id))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> AppResult<Response> {
    caller.require_session()?;
    let request = parse_new_token(&crate::routes::negotiate::media_type(&headers), &body)?;
    let (record, token) = issue(&state, caller.user_id, request).await?;
    tracing::info!(token.id = %record.id, "API token created");
    let body = CreatedToken {
        id: record.id,
        name: record.name,
        scopes: record.scopes,
        created_at: record.created_at,
        expires_at: record.expires_at,
        token,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The JSON body of `POST /tokens`, with the contract's statuses: no body
/// or a missing field 400, not JSON 415, a value of the wrong kind 422.
pub fn parse_new_token(media_type: &str, body: &[u8]) -> AppResult<NewToken> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::new(
            ErrorCode::MissingBody,
            "the request has no body; send {\"name\", \"scopes\", \"expires_in_days\"}",
        ));
    }
    if !crate::routes::negotiate::is_json(media_type) {
        return Err(AppError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as application/json",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data if e.to_string().starts_with("missing field") => {
                AppError::new(ErrorCode::MissingField, e.to_string())
            }
            Category::Data => AppError::new(ErrorCode::InvalidRequest, e.to_string()),
            _ => AppError::new(
                ErrorCode::MalformedJson,
                format!("the body is not valid JSON: {e}"),
            ),
        }
    })
}

/// Checks a request and stores a new token for the user: the record and the
/// token itself (which only this answer shows).
pub async fn issue(
    state: &AppState,
    user_id: u64,
    request: NewToken,
) -> AppResult<(TokenRecord, String)> {
    let (name, scopes, days) = validate(request)?;
    let now = now_secs();
    // Expired tokens do not count as live: they go first.
    for expired in state
        .store
        .tokens(user_id)
        .await?
        .0
        .into_iter()
        .filter(|r| r.expired(now))
    {
        state.store.remove_token(user_id, &expired).await?;
        let _ = state.store.forget_token_use(user_id, &expired.id).await;
    }
    let token = tokens::generate(user_id);
    let record = TokenRecord {
        id: tokens::new_id(),
        digest: tokens::digest(&token),
        created_at: now,
        expires_at: days.map(|d| now + d * 86_400),
        scopes,
        name,
    };
    if !state.store.add_token(user_id, &record).await? {
        return Err(AppError::new(
            ErrorCode::TooManyTokens,
            format!("at most {MAX_TOKENS} live tokens; revoke one first"),
        ));
    }
    Ok((record, token))
}

impl NewToken {
    /// The form of the page: `name`, `scope` (repeated), `expires_in_days`
    /// (empty: never).
    pub fn from_form(body: &[u8]) -> AppResult<Self> {
        let mut name = None;
        let mut scopes = Vec::new();
        let mut days = None;
        for (key, value) in url::form_urlencoded::parse(body) {
            match key.as_ref() {
                "name" => name = Some(value.into_owned()),
                "scope" => {
                    scopes.push(Scope::parse(&value).ok_or_else(|| invalid("unknown scope"))?)
                }
                "expires_in_days" if value.is_empty() => {}
                "expires_in_days" => {
                    days = Some(
                        value
                            .parse::<u64>()
                            .map(serde_json::Number::from)
                            .map_err(|_| invalid("expires_in_days must be a whole number"))?,
                    )
                }
                _ => {}
            }
        }
        Ok(Self {
            name: name
                .ok_or_else(|| AppError::new(ErrorCode::MissingField, "the form has no name"))?,
            scopes,
            expires_in_days: days,
        })
    }
}

/// The caller's live tokens (no secrets). Needs the browser session.
#[utoipa::path(get, path = "/tokens", tag = "tokens",
    responses((status = 200, body = TokenList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user.id = caller.user_id))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<Json<TokenList>> {
    caller.require_session()?;
    Ok(Json(TokenList {
        tokens: live_tokens(&state, caller.user_id).await?,
    }))
}

/// The user's live tokens, newest first, with their last use.
pub async fn live_tokens(state: &AppState, user_id: u64) -> AppResult<Vec<TokenInfo>> {
    let now = now_secs();
    let used = state.store.tokens_last_used(user_id).await?;
    let mut tokens: Vec<TokenInfo> = state
        .store
        .tokens(user_id)
        .await?
        .0
        .into_iter()
        .filter(|r| !r.expired(now))
        .map(|r| TokenInfo {
            last_used_at: used.get(&r.id).copied(),
            id: r.id,
            name: r.name,
            scopes: r.scopes,
            created_at: r.created_at,
            expires_at: r.expires_at,
        })
        .collect();
    tokens.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
    Ok(tokens)
}

impl TokenInfo {
    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn scopes_text(&self) -> String {
        self.scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
    pub fn created_at(&self) -> u64 {
        self.created_at
    }
    pub fn expires_at(&self) -> Option<u64> {
        self.expires_at
    }
    pub fn last_used_at(&self) -> Option<u64> {
        self.last_used_at
    }
}

/// Revoke a token: it stops working at once, on every instance. Needs the
/// browser session.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "The token's id (`tok_…`)")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "Not one of the caller's tokens", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user.id = caller.user_id))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    caller.require_session()?;
    revoke(&state, caller.user_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes the user's token `id`; 404 when there is none.
pub async fn revoke(state: &AppState, user_id: u64, id: &str) -> AppResult<()> {
    let record = state
        .store
        .tokens(user_id)
        .await?
        .0
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such token"))?;
    state.store.remove_token(user_id, &record).await?;
    let _ = state.store.forget_token_use(user_id, id).await;
    tracing::info!(token.id = %id, "API token revoked");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str, scopes: Vec<Scope>, days: Option<u64>) -> NewToken {
        NewToken {
            name: name.to_owned(),
            scopes,
            expires_in_days: days.map(serde_json::Number::from),
        }
    }

    #[test]
    fn the_rules_of_a_new_token() {
        let read = vec![Scope::ExclusionsRead];
        assert!(validate(request("ci", read.clone(), Some(30))).is_ok());
        assert!(validate(request("ci", read.clone(), None)).is_ok());
        assert!(validate(request(&"x".repeat(100), read.clone(), Some(365))).is_ok());
        for bad in [
            request("", read.clone(), None),
            request(&"x".repeat(101), read.clone(), None),
            request("a\nb", read.clone(), None),
            request("ci", vec![], None),
            request("ci", read.clone(), Some(0)),
            request("ci", read.clone(), Some(366)),
        ] {
            assert_eq!(validate(bad).unwrap_err().code(), ErrorCode::InvalidRequest);
        }
        let mut whole = request("ci", read.clone(), None);
        whole.expires_in_days = serde_json::Number::from_f64(30.0);
        assert_eq!(validate(whole).unwrap().2, Some(30));
        let mut fraction = request("ci", read, None);
        fraction.expires_in_days = serde_json::Number::from_f64(1.5);
        assert!(validate(fraction).is_err());
    }
}
