//! Who is asking: the signed-in browser session, or an API token
//! (`Authorization: Bearer sg_…`). Identity comes from nothing else.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use crate::clock::now_secs;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::session::AuthSession;
use crate::state::AppState;
use crate::store::Via;
use crate::tokens::{owner_of, Scope};

/// The caller of a request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user_id: u64,
    pub via: Via,
    /// A token's scopes; `None` for a session, which may do everything.
    scopes: Option<Vec<Scope>>,
}

impl Caller {
    /// 403 `insufficient_scope` for a token without `scope`.
    pub fn require(&self, scope: Scope) -> AppResult<()> {
        match &self.scopes {
            Some(scopes) if !scopes.contains(&scope) => Err(AppError::new(
                ErrorCode::InsufficientScope,
                format!("this token does not have the {scope} scope"),
            )),
            _ => Ok(()),
        }
    }

    /// 403 for a token: managing tokens needs the browser session.
    pub fn require_session(&self) -> AppResult<()> {
        match self.via {
            Via::Session => Ok(()),
            Via::Token => Err(AppError::new(
                ErrorCode::Forbidden,
                "tokens are managed from a signed-in browser session, not with a token",
            )),
        }
    }
}

/// The token of an `Authorization: Bearer …` header (the scheme is
/// case-insensitive); `None` without one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn invalid_token() -> AppError {
    AppError::new(
        ErrorCode::InvalidToken,
        "the token is not valid: unknown, revoked or expired",
    )
}

/// The caller a token stands for; 401 `invalid_token` for anything else.
async fn authenticate(state: &AppState, token: &str) -> AppResult<Caller> {
    let user_id = owner_of(token).ok_or_else(invalid_token)?;
    if !state.store.may_hold_tokens(user_id).await? {
        return Err(invalid_token());
    }
    let now = now_secs();
    let (records, complete) = state.store.tokens(user_id).await?;
    let Some(record) = records.into_iter().find(|r| r.matches(token)) else {
        // The records were lost locally and are not back yet: say "later",
        // not "invalid" (the token may well be good).
        if !complete {
            return Err(AppError::new(
                ErrorCode::ServiceUnavailable,
                "the token cannot be checked right now; try again in a moment",
            ));
        }
        return Err(invalid_token());
    };
    if record.expired(now) {
        return Err(invalid_token());
    }
    // Best effort: `last_used_at` is a convenience, never a reason to refuse.
    let _ = state.store.touch_token(user_id, &record.id, now).await;
    Ok(Caller {
        user_id,
        via: Via::Token,
        scopes: Some(record.scopes),
    })
}

impl OptionalFromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, AppError> {
        // Resolved once per request: the rate limiter asks first.
        if let Some(known) = parts.extensions.get::<Caller>() {
            return Ok(Some(known.clone()));
        }
        if let Some(token) = bearer_token(&parts.headers) {
            let token = token.to_owned();
            let caller = authenticate(state, &token).await?;
            parts.extensions.insert(caller.clone());
            return Ok(Some(caller));
        }
        let session = AuthSession::from_request_parts(parts, state).await?;
        Ok(session.user_id().await?.map(|user_id| Caller {
            user_id,
            via: Via::Session,
            scopes: None,
        }))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        <Self as OptionalFromRequestParts<AppState>>::from_request_parts(parts, state)
            .await?
            .ok_or_else(AppError::not_signed_in)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_the_bearer_scheme_carries_a_token() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer sg_abc"),
        );
        assert_eq!(bearer_token(&headers), Some("sg_abc"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  sg_abc "),
        );
        assert_eq!(bearer_token(&headers), Some("sg_abc"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic eDp5"),
        );
        assert_eq!(bearer_token(&headers), None);
    }
}
