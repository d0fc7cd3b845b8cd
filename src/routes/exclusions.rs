//! `POST /exclude`, `GET /exclusions`, `DELETE /exclusions/{id}`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::Serialize;
use sponsorgate_sync::AddOutcome;
use utoipa::ToSchema;

use crate::error::{AppError, ErrorBody};
use crate::session::CurrentUser;
use crate::state::AppState;
use crate::store::validate_node_id;

/// Largest request body accepted anywhere (SPEC §3).
pub const BODY_LIMIT: usize = 16 * 1024;

#[derive(Serialize, ToSchema)]
pub struct Excluded {
    /// The node id that is now excluded.
    id: String,
    /// Whether the preference survives (sponsors) or expires after `EPHEMERAL_TTL_SECS`.
    persistent: bool,
    /// How many node ids the user excludes now.
    count: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Exclusions {
    /// Sorted bytewise.
    ids: Vec<String>,
    persistent: bool,
    /// `false` when the set was lost locally (evicted, flushed) and the remote
    /// copy could not be fetched back in time: `ids` is then only what the
    /// local Redis holds, and a later read returns everything (SPEC §6.9).
    complete: bool,
}

/// The body of `POST /exclude`: `{"id": "..."}` as JSON, or `id=...` as a form.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ExcludeRequest {
    /// A node id: 1 to 256 bytes of UTF-8 without control characters.
    id: String,
}

/// The node id from a JSON or form body, plus whether a browser form sent it
/// (form body and `Accept: text/html`: answered with a redirect to the page).
pub struct ExcludeBody {
    pub id: String,
    pub from_browser_form: bool,
}

impl<S: Send + Sync> FromRequest<S> for ExcludeBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let browser = crate::routes::auth::prefers_html(req.headers());
        let content_type = super::media_type(req.headers());
        let body = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge { limit: BODY_LIMIT }
            } else {
                AppError::bad_request("unreadable_body", "the request body could not be read")
            }
        })?;
        // An empty body is a malformed request whatever it claims to be.
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(AppError::bad_request(
                "missing_body",
                "the request has no body; send {\"id\": \"...\"}",
            ));
        }
        if content_type == "application/json" || content_type.ends_with("+json") {
            parse_json(&body).map(|id| ExcludeBody {
                id,
                from_browser_form: false,
            })
        } else if content_type == "application/x-www-form-urlencoded" {
            parse_form(&body).map(|id| ExcludeBody {
                id,
                from_browser_form: browser,
            })
        } else {
            Err(AppError::UnsupportedMediaType)
        }
    }
}

fn parse_json(body: &[u8]) -> Result<String, AppError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        AppError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
    })?;
    let object = value.as_object().ok_or_else(|| {
        AppError::bad_request("malformed_request", "the body must be a JSON object")
    })?;
    match object.get("id") {
        None => Err(AppError::bad_request(
            "missing_field",
            "the body has no \"id\" field",
        )),
        Some(serde_json::Value::String(id)) => Ok(id.clone()),
        Some(_) => Err(AppError::invalid("invalid_id", "id must be a string")),
    }
}

fn parse_form(body: &[u8]) -> Result<String, AppError> {
    if std::str::from_utf8(body).is_err() {
        return Err(AppError::bad_request(
            "malformed_form",
            "the form body is not UTF-8",
        ));
    }
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| AppError::bad_request("missing_field", "the form has no id field"))
}

/// Add a node id to the signed-in user's exclusions.
#[utoipa::path(post, path = "/exclude", tag = "preferences",
    request_body(content = ExcludeRequest, content_type = "application/json",
        description = "Also accepted as application/x-www-form-urlencoded (`id=...`)."),
    responses(
        (status = 200, body = Excluded),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn exclude(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: Option<CurrentUser>,
    body: Result<ExcludeBody, AppError>,
) -> Result<Response, AppError> {
    let result = async {
        let user = user.ok_or(AppError::NotSignedIn)?;
        let body = body?;
        validate_node_id(&body.id)?;
        match state.store.add_exclusion(user.0, &body.id).await? {
            AddOutcome::QuotaExceeded { limit } => Err(AppError::QuotaExceeded { limit }),
            AddOutcome::Added { count, sponsor, .. } => Ok((body, count, sponsor)),
        }
    }
    .await;
    match result {
        Ok((body, _, _)) if body.from_browser_form => Ok(Redirect::to("/").into_response()),
        Ok((body, count, sponsor)) => Ok(Json(Excluded {
            id: body.id,
            persistent: sponsor,
            count,
        })
        .into_response()),
        // A browser form sees the page again, with the error in words.
        Err(e) if is_browser_form(&headers) => Ok(back_to_page_with(&e).into_response()),
        Err(e) => Err(e),
    }
}

/// A form post from a browser (form body, `Accept: text/html`): answered with
/// redirects to the page rather than JSON, errors included.
fn is_browser_form(headers: &HeaderMap) -> bool {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    form && crate::routes::auth::prefers_html(headers)
}

/// 303 to `/?error=<code>`; the page turns the code into a sentence.
fn back_to_page_with(error: &AppError) -> Redirect {
    if error.status().is_server_error() {
        tracing::warn!(error.code = error.code(), "form request failed");
    }
    Redirect::to(&format!("/?error={}", error.code()))
}

/// The signed-in user's excluded node ids.
#[utoipa::path(get, path = "/exclusions", tag = "preferences",
    responses((status = 200, body = Exclusions), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Exclusions>, AppError> {
    let list = state.store.exclusions(user.0).await?;
    Ok(Json(Exclusions {
        ids: list.ids,
        persistent: list.persistent,
        complete: list.complete,
    }))
}

/// Remove one node id (204 also when it was not there).
#[utoipa::path(delete, path = "/exclusions/{id}", tag = "preferences",
    params(("id" = String, Path, description = "The node id, percent-encoded")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    validate_node_id(&id)?;
    state.store.remove_exclusion(user.0, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /exclusions/{id}/delete`: the same removal for HTML forms, which
/// cannot send DELETE; answers with a redirect back to the page.
pub async fn remove_from_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: Option<CurrentUser>,
    Path(id): Path<String>,
) -> Result<Redirect, AppError> {
    let result = async {
        let user = user.ok_or(AppError::NotSignedIn)?;
        validate_node_id(&id)?;
        state.store.remove_exclusion(user.0, &id).await
    }
    .await;
    match result {
        Ok(_) => Ok(Redirect::to("/")),
        Err(e) if crate::routes::auth::prefers_html(&headers) => Ok(back_to_page_with(&e)),
        Err(e) => Err(e),
    }
}
