//! `GET /me`: the signed-in user as stored in `user_details:{id}`.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{AppError, AppResult, ErrorBody};
use crate::routes::identity::Caller;
use crate::state::AppState;
use crate::tokens::Scope;

#[derive(Serialize, ToSchema)]
pub struct Me {
    /// GitHub's numeric user id.
    pub id: u64,
    pub user_login: String,
    /// Empty when GitHub has no address for the user.
    pub email: String,
    pub name: String,
    pub avatar_url: String,
    /// Sponsors `SPONSORABLE` now (read on every request, never cached in the session).
    pub sponsor: bool,
    pub tier_monthly_usd: Option<u64>,
}

/// The signed-in user.
#[utoipa::path(get, path = "/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody)),
    security(("session" = []), ("bearer" = ["exclusions:read"])))]
#[tracing::instrument(skip_all, fields(user.id = caller.user_id))]
pub async fn get_current_user(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<Json<Me>> {
    caller.require(Scope::ExclusionsRead)?;
    // A session whose user record is gone (the local Redis lost it and the
    // remote has no copy) is treated as signed out.
    let record = state
        .store
        .user(caller.user_id)
        .await?
        .ok_or_else(AppError::not_signed_in)?;
    Ok(Json(Me {
        id: record.id,
        user_login: record.user_login,
        email: record.email,
        name: record.name,
        avatar_url: record.avatar_url,
        sponsor: record.sponsor,
        tier_monthly_usd: record.tier_monthly_usd.filter(|_| record.sponsor),
    }))
}
