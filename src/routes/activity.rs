//! `GET /activity`: the changes made through the API, newest first.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{AppError, AppResult, ErrorBody, ErrorCode};
use crate::routes::identity::Caller;
use crate::state::AppState;
use crate::tokens::Scope;

/// Most items in one answer, and the default `limit`.
pub const ACTIVITY_PAGE_MAX: usize = 1_000;
pub const ACTIVITY_PAGE_DEFAULT: usize = 100;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityQuery {
    /// Most items: 1 to 1,000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
    /// Only items older than this one: the `next` of the previous page.
    #[param(pattern = r"^[0-9]+-[0-9]+$")]
    before: Option<String>,
    /// Only `add` or only `remove`.
    #[param(inline)]
    kind: Option<ActivityKind>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    Add,
    Remove,
}

impl ActivityKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ActivityItem {
    /// This item's position: pass it as `before` to read older ones.
    cursor: String,
    /// Unix milliseconds.
    at: u64,
    /// `add` or `remove`.
    kind: String,
    /// The node id.
    id: String,
    /// `session` (the browser) or `token` (an API token).
    via: String,
}

#[derive(Serialize, ToSchema)]
pub struct Activity {
    /// Newest first.
    items: Vec<ActivityItem>,
    /// The cursor for the next (older) page, or null.
    next: Option<String>,
}

fn parse_query(raw: Option<&str>) -> AppResult<ActivityQuery> {
    let invalid = |message: &str| AppError::new(ErrorCode::InvalidRequest, message.to_owned());
    let mut query = ActivityQuery::default();
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "limit" => {
                query.limit =
                    Some(crate::routes::negotiate::parse_limit(&value, ACTIVITY_PAGE_MAX)? as u64);
            }
            "before" => {
                let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                let Some((ms, seq)) = value
                    .split_once('-')
                    .filter(|(m, q)| digits(m) && digits(q))
                else {
                    return Err(invalid("before must be a cursor of an earlier answer"));
                };
                // A cursor beyond any stream id means "before the end".
                let part = |s: &str| s.parse::<u64>().unwrap_or(u64::MAX);
                query.before = Some(format!("{}-{}", part(ms), part(seq)));
            }
            "kind" => {
                query.kind = Some(match value.as_ref() {
                    "add" => ActivityKind::Add,
                    "remove" => ActivityKind::Remove,
                    _ => return Err(invalid("kind must be add or remove")),
                })
            }
            _ => {}
        }
    }
    Ok(query)
}

/// The caller's changes made through the API, newest first.
#[utoipa::path(get, path = "/activity", tag = "preferences",
    params(ActivityQuery),
    responses((status = 200, body = Activity), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("session" = []), ("bearer" = ["exclusions:read"])))]
#[tracing::instrument(skip_all, fields(user.id = caller.user_id))]
pub async fn list_activity(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> AppResult<Json<Activity>> {
    caller.require(Scope::ExclusionsRead)?;
    let query = parse_query(raw.as_deref())?;
    let limit = query.limit.map_or(ACTIVITY_PAGE_DEFAULT, |l| l as usize);
    let page = state
        .store
        .activity(
            caller.user_id,
            limit,
            query.before.as_deref(),
            query.kind.map(ActivityKind::as_str),
        )
        .await?;
    Ok(Json(Activity {
        items: page
            .items
            .into_iter()
            .map(|e| ActivityItem {
                cursor: e.cursor,
                at: e.at_ms,
                kind: e.kind,
                id: e.id,
                via: e.via,
            })
            .collect(),
        next: page.next,
    }))
}
