//! `POST /exclude`, `GET /exclusions`, `DELETE /exclusions/{id}`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use sponsorgate_sync::{AddOutcome, Limited};
use utoipa::{IntoParams, ToSchema};

use crate::error::{AppError, AppResult, ErrorBody, ErrorCode};
use crate::node_id::{InvalidNodeId, NodeId};
use crate::ratelimit::{Decision, StepCounted, StepLimit};
use crate::routes::identity::Caller;
use crate::routes::negotiate::{
    is_browser_form, is_json, media_type, parse_limit, prefers_html, BODY_LIMIT, FORM,
};
use crate::session::CurrentUser;
use crate::state::AppState;
use crate::store::Via;
use crate::tokens::Scope;

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
    /// local Redis holds, and a later read returns everything.
    complete: bool,
    /// The last id of this page when more remain (pass it as `after`), else null.
    next: Option<String>,
}

/// The body of `POST /exclude`: `{"id": "..."}` as JSON, or `id=...` as a form.
#[derive(ToSchema)]
#[expect(dead_code, reason = "only describes the body in the OpenAPI document")]
pub struct ExcludeRequest {
    /// A node id: 1 to 256 bytes of UTF-8 without control characters (C0,
    /// DEL, C1). `maxLength` counts characters: an id of 256 characters is
    /// refused (422) when its UTF-8 is longer than 256 bytes.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]+$"
    )]
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
        let browser = prefers_html(req.headers());
        let content_type = media_type(req.headers());
        let body = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                payload_too_large()
            } else {
                AppError::new(
                    ErrorCode::UnreadableBody,
                    "the request body could not be read",
                )
            }
        })?;
        parse_exclude_body(&content_type, browser, &body)
    }
}

pub fn payload_too_large() -> AppError {
    AppError::new(
        ErrorCode::PayloadTooLarge,
        format!("request body is larger than {BODY_LIMIT} bytes"),
    )
}

/// The body of `POST /exclude` with its media type (lower-cased, without
/// parameters) and whether the client prefers HTML. A plain function, so
/// the fuzzer and the property tests can call it without a server.
pub fn parse_exclude_body(
    content_type: &str,
    browser: bool,
    body: &[u8],
) -> AppResult<ExcludeBody> {
    // An empty body is a malformed request whatever it claims to be.
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::new(
            ErrorCode::MissingBody,
            "the request has no body; send {\"id\": \"...\"}",
        ));
    }
    if is_json(content_type) {
        parse_json(body).map(|id| ExcludeBody {
            id,
            from_browser_form: false,
        })
    } else if content_type == FORM {
        parse_form(body).map(|id| ExcludeBody {
            id,
            from_browser_form: browser,
        })
    } else {
        Err(AppError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as application/json or application/x-www-form-urlencoded",
        ))
    }
}

fn parse_json(body: &[u8]) -> AppResult<String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        AppError::new(
            ErrorCode::MalformedJson,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    let object = value.as_object().ok_or_else(|| {
        AppError::new(
            ErrorCode::MalformedRequest,
            "the body must be a JSON object",
        )
    })?;
    match object.get("id") {
        None => Err(AppError::new(
            ErrorCode::MissingField,
            "the body has no \"id\" field",
        )),
        Some(serde_json::Value::String(id)) => Ok(id.clone()),
        Some(_) => Err(InvalidNodeId::NotAString.into()),
    }
}

fn parse_form(body: &[u8]) -> AppResult<String> {
    if std::str::from_utf8(body).is_err() {
        return Err(AppError::new(
            ErrorCode::MalformedForm,
            "the form body is not UTF-8",
        ));
    }
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| AppError::new(ErrorCode::MissingField, "the form has no id field"))
}

/// Add a node id to the caller's exclusions.
#[utoipa::path(post, path = "/exclude", tag = "preferences",
    request_body(content = ExcludeRequest, content_type = "application/json",
        description = "Also accepted as application/x-www-form-urlencoded (`id=...`)."),
    params(("If-Match" = Option<String>, Header, description = "Change only if the set's ETag is this one (or `*`); else 412 and nothing changes")),
    responses(
        (status = 200, body = Excluded, headers(("ETag" = String, description = "The set's ETag after the change"))),
        (status = 303, description = "From an HTML form: back to /"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 412, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("session" = []), ("bearer" = ["exclusions:write"])))]
#[tracing::instrument(skip_all, fields(user.id))]
pub async fn add_exclusion(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Option<Caller>,
    limit: Option<Extension<StepLimit>>,
    body: Result<ExcludeBody, AppError>,
) -> Response {
    let mut counted = None;
    let result = async {
        let caller = caller.ok_or_else(AppError::not_signed_in)?;
        caller.require(Scope::ExclusionsWrite)?;
        tracing::Span::current().record("user.id", caller.user_id);
        let body = body?;
        let id = NodeId::parse(body.id)?;
        check_if_match(&state, &headers, caller.user_id).await?;
        let Limited { outcome, rate } = state
            .store
            .add_exclusion(
                caller.user_id,
                &id,
                caller.via,
                limit.as_deref().map(StepLimit::as_rate),
            )
            .await?;
        counted = rate.map(Decision::from);
        match outcome {
            // The rate-limit middleware answers for it (it sees `counted`).
            None => Err(AppError::new(ErrorCode::RateLimited, "too many requests")),
            Some(AddOutcome::QuotaExceeded { limit }) => Err(AppError::new(
                ErrorCode::QuotaExceeded,
                format!("quota reached: at most {limit} preferences"),
            )),
            Some(AddOutcome::Added { count, sponsor, .. }) => {
                Ok((id, body.from_browser_form, count, sponsor, caller.user_id))
            }
        }
    }
    .await;
    let mut response = match result {
        Ok((_, true, ..)) => Redirect::to("/").into_response(),
        Ok((id, false, count, sponsor, user_id)) => {
            let mut response = Json(Excluded {
                id: id.into_string(),
                persistent: sponsor,
                count,
            })
            .into_response();
            set_etag_after_change(&state, &headers, user_id, &mut response).await;
            response
        }
        // A browser form sees the page again, with the error in words.
        Err(e) if is_browser_form(&headers) => back_to_page_with(&e).into_response(),
        Err(e) => e.into_response(),
    };
    with_count(&mut response, counted);
    response
}

/// Hands what the write's step counted to the rate-limit middleware.
fn with_count(response: &mut Response, counted: Option<Decision>) {
    if let Some(decision) = counted {
        response.extensions_mut().insert(StepCounted(decision));
    }
}

/// 303 to `/?error=<code>`; the page turns the code into a sentence.
fn back_to_page_with(error: &AppError) -> Redirect {
    if error.status().is_server_error() {
        error.log();
    }
    Redirect::to(&format!("/?error={}", error.code()))
}

/// Most ids in one answer of `GET /exclusions`, and the default `limit`.
pub const PAGE_MAX: usize = 10_000;

/// Whether an `If-Match` / `If-None-Match` value names `etag` (or is `*`).
fn names_etag(header: &HeaderValue, etag: &str) -> bool {
    header.to_str().is_ok_and(|v| {
        v.split(',')
            .map(str::trim)
            .any(|candidate| candidate == "*" || candidate == etag)
    })
}

/// 412 `precondition_failed` when `If-Match` names another version.
async fn check_if_match(state: &AppState, headers: &HeaderMap, user_id: u64) -> AppResult<()> {
    let Some(wanted) = headers.get(header::IF_MATCH) else {
        return Ok(());
    };
    let current = state
        .lists
        .exclusions(&state.store, user_id)
        .await?
        .etag
        .clone();
    if names_etag(wanted, &current) {
        Ok(())
    } else {
        Err(AppError::new(
            ErrorCode::PreconditionFailed,
            format!("the set changed: its ETag is {current} now; nothing was changed"),
        ))
    }
}

/// A conditional writer learns the new version (only it pays for the read).
async fn set_etag_after_change(
    state: &AppState,
    headers: &HeaderMap,
    user_id: u64,
    response: &mut Response,
) {
    if !headers.contains_key(header::IF_MATCH) {
        return;
    }
    if let Ok(cached) = state.lists.exclusions(&state.store, user_id).await {
        if let Ok(value) = HeaderValue::from_str(&cached.etag) {
            response.headers_mut().insert(header::ETAG, value);
        }
    }
}

/// `GET /exclusions` paging: `limit` (1 to 10,000) and `after` (an id).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Most ids in the answer: 1 to 10,000 (default 10,000).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<u64>,
    /// Only ids after this one (bytewise): the `next` of the previous page.
    #[param(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]+$"
    )]
    after: Option<String>,
}

fn page_query(raw: Option<&str>) -> AppResult<PageQuery> {
    let mut query = PageQuery::default();
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "limit" => query.limit = Some(parse_limit(&value, PAGE_MAX)? as u64),
            "after" => {
                let after = NodeId::parse(value.into_owned())
                    .map_err(|e| AppError::new(ErrorCode::InvalidRequest, format!("after: {e}")))?;
                query.after = Some(after.into_string());
            }
            _ => {}
        }
    }
    Ok(query)
}

/// The caller's excluded node ids, sorted bytewise, a page at a time.
#[utoipa::path(get, path = "/exclusions", tag = "preferences",
    params(PageQuery,
        ("If-None-Match" = Option<String>, Header, description = "304 when the set's ETag is still this one")),
    responses(
        (status = 200, body = Exclusions, headers(
            ("ETag" = String, description = "Strong; changes whenever the set changes"),
            ("Link" = Option<String>, description = "`<…>; rel=\"next\"` when more ids remain"))),
        (status = 304, description = "Not modified", headers(("ETag" = String))),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("session" = []), ("bearer" = ["exclusions:read"])))]
#[tracing::instrument(skip_all, fields(user.id = caller.user_id))]
pub async fn list_exclusions(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> AppResult<Response> {
    caller.require(Scope::ExclusionsRead)?;
    let query = page_query(raw.as_deref())?;
    let cached = state.lists.exclusions(&state.store, caller.user_id).await?;
    let (list, etag) = (&cached.list, &cached.etag);
    let etag_value = HeaderValue::from_str(etag).map_err(AppError::internal)?;
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| names_etag(v, etag))
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response());
    }
    let limit = query.limit.map_or(PAGE_MAX, |l| l as usize);
    let start = match &query.after {
        // Sorted bytewise: the first id greater than `after`.
        Some(after) => list
            .ids
            .partition_point(|id| id.as_bytes() <= after.as_bytes()),
        None => 0,
    };
    let end = (start + limit).min(list.ids.len());
    let next = (end < list.ids.len()).then(|| list.ids[end - 1].clone());
    let mut response = Json(Exclusions {
        ids: list.ids[start..end].to_vec(),
        persistent: list.persistent,
        complete: list.complete,
        next: next.clone(),
    })
    .into_response();
    let out = response.headers_mut();
    out.insert(header::ETAG, etag_value);
    if let Some(next) = next {
        let link = format!(
            "</exclusions?limit={limit}&after={}>; rel=\"next\"",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        );
        if let Ok(value) = HeaderValue::from_str(&link) {
            out.insert(header::LINK, value);
        }
    }
    Ok(response)
}

/// Remove one node id (204 also when it was not there).
#[utoipa::path(delete, path = "/exclusions/{id}", tag = "preferences",
    params(("id" = String, Path, min_length = 1, max_length = 256, pattern = r"^[^\u0000-\u001F\u007F-\u009F]+$",
        description = "The node id, percent-encoded (the rules of `POST /exclude`'s `id`)"),
        ("If-Match" = Option<String>, Header, description = "Change only if the set's ETag is this one (or `*`); else 412 and nothing changes")),
    responses((status = 204, headers(("ETag" = Option<String>, description = "With If-Match: the set's ETag after the change"))),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 412, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody)),
    security(("session" = []), ("bearer" = ["exclusions:write"])))]
#[tracing::instrument(skip_all, fields(user.id = caller.user_id))]
pub async fn remove_exclusion(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    limit: Option<Extension<StepLimit>>,
    Path(id): Path<String>,
) -> AppResult<Response> {
    caller.require(Scope::ExclusionsWrite)?;
    let id = NodeId::parse(id)?;
    check_if_match(&state, &headers, caller.user_id).await?;
    let Limited { outcome, rate } = state
        .store
        .remove_exclusion(
            caller.user_id,
            &id,
            caller.via,
            limit.as_deref().map(StepLimit::as_rate),
        )
        .await?;
    let mut response = match outcome {
        None => StatusCode::TOO_MANY_REQUESTS.into_response(),
        Some(_) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            set_etag_after_change(&state, &headers, caller.user_id, &mut response).await;
            response
        }
    };
    with_count(&mut response, rate.map(Decision::from));
    Ok(response)
}

/// `POST /exclusions/{id}/delete`: the same removal for HTML forms, which
/// cannot send DELETE; answers with a redirect back to the page.
#[utoipa::path(post, path = "/exclusions/{id}/delete", tag = "browser",
    params(("id" = String, Path, description = "The node id, percent-encoded")),
    responses(
        (status = 303, description = "Back to the page (errors as `/?error=<code>` for a browser)"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn remove_exclusion_by_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: Option<CurrentUser>,
    limit: Option<Extension<StepLimit>>,
    Path(id): Path<String>,
) -> Response {
    let mut counted = None;
    let result = async {
        let user = user.ok_or_else(AppError::not_signed_in)?;
        let id = NodeId::parse(id)?;
        let Limited { outcome, rate } = state
            .store
            .remove_exclusion(
                user.0,
                &id,
                Via::Session,
                limit.as_deref().map(StepLimit::as_rate),
            )
            .await?;
        counted = rate.map(Decision::from);
        outcome.ok_or_else(|| AppError::new(ErrorCode::RateLimited, "too many requests"))
    }
    .await;
    let mut response = match result {
        Ok(_) => Redirect::to("/").into_response(),
        Err(e) if prefers_html(&headers) => back_to_page_with(&e).into_response(),
        Err(e) => e.into_response(),
    };
    with_count(&mut response, counted);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any string id comes out of a JSON or a form body unchanged, and
        /// the validation then decides alone.
        #[test]
        fn ids_survive_both_encodings(id in any::<String>(), browser in any::<bool>()) {
            let json = serde_json::to_vec(&serde_json::json!({ "id": id })).unwrap();
            let from_json = parse_exclude_body("application/json", browser, &json);
            let form: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("id", &id)
                .finish();
            let from_form = parse_exclude_body(FORM, browser, form.as_bytes());
            for parsed in [from_json, from_form] {
                match parsed {
                    Ok(body) => prop_assert_eq!(&body.id, &id),
                    // Only a blank body is refused before validation.
                    Err(e) => prop_assert_eq!(e.code(), ErrorCode::MissingBody),
                }
            }
        }

        /// Whatever the bytes, a refusal is a 4xx of the closed list.
        #[test]
        fn any_body_is_parsed_or_refused_with_a_client_error(
            body in proptest::collection::vec(any::<u8>(), 0..64),
            json in any::<bool>(),
        ) {
            let media = if json { "application/json" } else { FORM };
            if let Err(e) = parse_exclude_body(media, false, &body) {
                prop_assert!(e.status().is_client_error());
            }
        }
    }
}
