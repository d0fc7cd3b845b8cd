//! `GET /`: the server-rendered page (askama templates under `templates/`),
//! its stylesheet and script under `/static/`, and the HTML error pages.
//!
//! The page works without JavaScript (plain forms that answer 303 to `/`, with
//! errors carried back as `/?error=<code>`); `static/app.js` upgrades the same
//! forms to in-place updates over the JSON API.

use std::sync::LazyLock;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::error::{AppError, AppResult, ErrorBody, ErrorCode};
use crate::routes::negotiate::FORM;
use crate::routes::tokens::{issue, live_tokens, revoke, NewToken};
use crate::session::CurrentUser;
use crate::state::AppState;

const CSS: &str = include_str!("../../static/app.css");
const JS: &str = include_str!("../../static/app.js");

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Asset URLs carry a hash of their content, so they can be cached for long
/// and still change with every build that changes them.
pub struct Assets {
    css: String,
    js: String,
}

static ASSETS: LazyLock<Assets> = LazyLock::new(|| Assets {
    css: format!("/static/app.css?v={:016x}", fnv1a(CSS.as_bytes())),
    js: format!("/static/app.js?v={:016x}", fnv1a(JS.as_bytes())),
});

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `GET /static/{file}`: the page's stylesheet and script (no CDN, works offline).
#[utoipa::path(get, path = "/static/{file}", tag = "browser",
    params(("file" = String, Path, description = "`app.css` or `app.js`")),
    responses(
        (status = 200, description = "The stylesheet or the script", content(
            (String = "text/css"), (String = "text/javascript"))),
        (status = 404, body = ErrorBody)))]
pub async fn serve_asset(Path(file): Path<String>) -> AppResult<Response> {
    let (body, content_type) = match file.as_str() {
        "app.css" => (CSS, "text/css; charset=utf-8"),
        "app.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return Err(AppError::not_found()),
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate<'a> {
    assets: &'a Assets,
    sponsorable: &'a str,
    status: u16,
    reason: &'a str,
    message: &'a str,
}

/// An error as a whole HTML page, for browser navigations (e.g. a failed
/// sign-in): the same status and message as the JSON answer.
pub fn error_response(error: AppError) -> Response {
    error.log();
    let status = error.status();
    (status, error_page(status, error.message())).into_response()
}

/// A whole HTML page for an error a browser navigated into.
pub fn error_page(status: StatusCode, message: &str) -> Html<String> {
    let reason = status.canonical_reason().unwrap_or("Error");
    let page = ErrorTemplate {
        assets: &ASSETS,
        sponsorable: "",
        status: status.as_u16(),
        reason,
        message,
    };
    Html(page.render().unwrap_or_else(|_| {
        // Rendering only fails on a formatter error; keep a page anyway.
        format!(
            "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>{0} {1}</title>\
             <h1>{0} {1}</h1><p role=\"alert\">{2}</p><p><a href=\"/\">Back to the start page</a></p></html>",
            status.as_u16(),
            escape(reason),
            escape(message)
        )
    }))
}

/// `POST /tokens/new`: the page's form to create an API token. The answer
/// is the page itself, showing the new token this once (it is never stored:
/// not in the session, not in a URL); errors go back to `/?error=<code>`.
#[utoipa::path(post, path = "/tokens/new", tag = "browser",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The page, showing the new token once", content_type = "text/html"),
        (status = 303, description = "Back to the page with the error: `/?error=<code>#tokens`"),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn create_token_by_form(
    State(state): State<AppState>,
    user: Option<CurrentUser>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let result = async {
        let CurrentUser(user_id) = user.ok_or_else(AppError::not_signed_in)?;
        if crate::routes::negotiate::media_type(&headers) != FORM {
            return Err(AppError::new(
                ErrorCode::UnsupportedMediaType,
                "send the form as application/x-www-form-urlencoded",
            ));
        }
        let (_, token) = issue(&state, user_id, NewToken::from_form(&body)?).await?;
        render_index(&state, Ok(Some(CurrentUser(user_id))), Some(token), None).await
    }
    .await;
    match result {
        Ok(html) => personal_page(html),
        Err(e) => back_to_tokens(Err(e)),
    }
}

/// A page with personal data: never cached.
fn personal_page(html: String) -> Response {
    let mut response = Html(html).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `POST /tokens/{id}/revoke`: the page's form to revoke a token.
#[utoipa::path(post, path = "/tokens/{id}/revoke", tag = "browser",
    params(("id" = String, Path, description = "The token's id")),
    responses(
        (status = 303, description = "Back to the page: `/#tokens`, or `/?error=<code>#tokens`"),
        (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn revoke_token_by_form(
    State(state): State<AppState>,
    user: Option<CurrentUser>,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let CurrentUser(user_id) = user.ok_or_else(AppError::not_signed_in)?;
        revoke(&state, user_id, &id).await
    }
    .await;
    back_to_tokens(result)
}

/// 303 to the page's tokens, or to `/?error=<code>`.
fn back_to_tokens(result: AppResult<()>) -> Response {
    match result {
        Ok(()) => Redirect::to("/#tokens").into_response(),
        Err(e) => {
            if e.status().is_server_error() {
                e.log();
            }
            Redirect::to(&format!("/?error={}#tokens", e.code())).into_response()
        }
    }
}

/// What the signed-in part of the page shows.
struct SignedIn {
    login: String,
    name: String,
    avatar_url: String,
    sponsor: bool,
    tier_monthly_usd: Option<u64>,
    ids: Vec<String>,
    quota: u64,
    tokens: Vec<TokenRow>,
    /// A token created by the last form post, shown this once.
    new_token: Option<String>,
}

/// The page's form to create a token (`POST /tokens/new`).
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "only describes the form in the OpenAPI document")]
pub struct TokenForm {
    /// 1 to 100 characters.
    name: String,
    /// Repeated: `exclusions:read`, `exclusions:write`.
    scope: Vec<String>,
    /// Whole days, or empty for never.
    expires_in_days: Option<String>,
}

/// One API token as the page lists it.
struct TokenRow {
    id: String,
    name: String,
    scopes: String,
    created: String,
    expires: String,
    last_used: String,
}

/// Unix seconds as a UTC date (`2026-12-01`).
fn day(secs: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(0))
        .map(|t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexTemplate<'a> {
    assets: &'a Assets,
    sponsorable: &'a str,
    /// `EPHEMERAL_TTL_SECS` in words ("24 hours").
    ttl: String,
    /// A human message for `?error=<code>` (set by the form endpoints).
    error: Option<String>,
    user: Option<SignedIn>,
    /// The same messages for the script, so both paths say the same thing.
    messages_json: String,
}

/// The start page: sign in when signed out; profile, sponsor status and the
/// exclusion list when signed in.
#[utoipa::path(get, path = "/", tag = "browser",
    params(("error" = Option<String>, Query, description = "An error code to explain in words (set by the form routes)")),
    responses(
        (status = 200, description = "The page", content_type = "text/html"),
        (status = 503, description = "The local Redis is unavailable", content_type = "text/html")))]
#[tracing::instrument(skip_all)]
pub async fn show_index(
    State(state): State<AppState>,
    user: Result<Option<CurrentUser>, AppError>,
    RawQuery(query): RawQuery,
) -> Response {
    match render_index(&state, user, None, query.as_deref()).await {
        // The page shows personal data: kept out of shared and back-button caches.
        Ok(html) => personal_page(html),
        // A browser page: errors are pages too, never raw JSON.
        Err(e) => error_response(e),
    }
}

async fn render_index(
    state: &AppState,
    user: Result<Option<CurrentUser>, AppError>,
    new_token: Option<String>,
    query: Option<&str>,
) -> AppResult<String> {
    let config = &state.config;
    let signed_in = match user? {
        None => None,
        Some(CurrentUser(id)) => {
            let record = state.store.user(id).await?.unwrap_or_default();
            let ids = state.store.exclusions(id).await?.ids;
            let login = if record.user_login.is_empty() {
                format!("GitHub user {id}")
            } else {
                record.user_login
            };
            let avatar_url = if record.avatar_url.starts_with("https://")
                || record.avatar_url.starts_with("http://")
            {
                record.avatar_url
            } else {
                String::new()
            };
            let tokens = live_tokens(state, id)
                .await?
                .iter()
                .map(|t| TokenRow {
                    id: t.id().to_owned(),
                    name: t.name().to_owned(),
                    scopes: t.scopes_text(),
                    created: day(t.created_at()),
                    expires: t.expires_at().map_or_else(|| "never".to_owned(), day),
                    last_used: t.last_used_at().map_or_else(|| "never".to_owned(), day),
                })
                .collect();
            Some(SignedIn {
                login,
                name: record.name,
                avatar_url,
                sponsor: record.sponsor,
                tier_monthly_usd: record.tier_monthly_usd.filter(|usd| *usd > 0),
                ids,
                tokens,
                new_token,
                quota: if record.sponsor {
                    config.quota_sponsor
                } else {
                    config.quota_free
                },
            })
        }
    };
    let quota = signed_in.as_ref().map_or(config.quota_free, |u| u.quota);
    let error = query
        .and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "error")
                .map(|(_, v)| v.into_owned())
        })
        .map(|code| error_message(&code, quota));
    let page = IndexTemplate {
        assets: &ASSETS,
        sponsorable: &config.sponsorable,
        ttl: ttl_phrase(config.ephemeral_ttl_secs),
        error,
        user: signed_in,
        messages_json: messages_json(quota),
    };
    page.render()
        .map_err(|e| AppError::internal(format!("rendering the page: {e}")))
}

/// Error codes the page explains in words; others get a generic message.
const KNOWN_CODES: &[ErrorCode] = &[
    ErrorCode::InvalidId,
    ErrorCode::MissingField,
    ErrorCode::MissingBody,
    ErrorCode::QuotaExceeded,
    ErrorCode::NotSignedIn,
    ErrorCode::RedisUnavailable,
    ErrorCode::CrossSiteRequest,
    ErrorCode::PayloadTooLarge,
    ErrorCode::RateLimited,
    ErrorCode::TooManyTokens,
    ErrorCode::InvalidRequest,
    ErrorCode::NotFound,
];

/// The script's own code for a request that never reached the server.
const NETWORK_ERROR: &str = "network_error";

/// The human message for an error code carried back to the page.
pub fn error_message(code: &str, quota: u64) -> String {
    if code == NETWORK_ERROR {
        return "The server could not be reached. Check your connection and try again.".to_owned();
    }
    match ErrorCode::parse(code) {
        Some(ErrorCode::InvalidId) => {
            "That node id was not accepted: a node id is 1 to 256 bytes of text \
                         without control characters."
                .to_owned()
        }
        Some(ErrorCode::MissingField | ErrorCode::MissingBody) => {
            "Enter a node id first.".to_owned()
        }
        Some(ErrorCode::QuotaExceeded) => format!(
            "Your list is full: it holds at most {quota} node ids. Remove some to add more."
        ),
        Some(ErrorCode::NotSignedIn) => "Your session has ended. Please sign in again.".to_owned(),
        Some(ErrorCode::RedisUnavailable) => {
            "The service cannot reach its storage right now, so nothing \
                                was changed. Please try again in a moment."
                .to_owned()
        }
        Some(ErrorCode::CrossSiteRequest) => {
            "The request was refused because it did not come from this \
                                 page. Reload the page and try again."
                .to_owned()
        }
        Some(ErrorCode::PayloadTooLarge) => "That was too long to send.".to_owned(),
        Some(ErrorCode::TooManyTokens) => {
            "You have 20 tokens already: revoke one to create another.".to_owned()
        }
        Some(ErrorCode::InvalidRequest) => "That was not accepted: check the name (1 to 100 \
                                             characters), pick at least one scope and a lifetime."
            .to_owned(),
        Some(ErrorCode::NotFound) => "That token does not exist (any more).".to_owned(),
        Some(ErrorCode::RateLimited) => {
            "That was too many changes in a short time. Wait a minute and try again.".to_owned()
        }
        _ => generic_message(code),
    }
}

fn generic_message(code: &str) -> String {
    match code {
        other
            if (1..=40).contains(&other.len())
                && other.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
        {
            format!("Something went wrong (error code {other}). Please try again.")
        }
        _ => "Something went wrong. Please try again.".to_owned(),
    }
}

/// `{"code": "message", ...}` for the script, safe to embed in `<script>`.
fn messages_json(quota: u64) -> String {
    let map: serde_json::Map<String, serde_json::Value> = KNOWN_CODES
        .iter()
        .map(|code| code.as_str())
        .chain([NETWORK_ERROR])
        .map(|code| (code.to_owned(), error_message(code, quota).into()))
        .collect();
    serde_json::Value::Object(map)
        .to_string()
        .replace('<', "\\u003c")
}

/// `EPHEMERAL_TTL_SECS` said in hours ("24 hours", "1 hour", "1.5 hours"), or
/// in minutes when shorter than an hour.
pub fn ttl_phrase(secs: u64) -> String {
    let plural = |n: u64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    if secs >= 3600 {
        if secs.is_multiple_of(3600) {
            plural(secs / 3600, "hour")
        } else {
            let hours = secs as f64 / 3600.0;
            format!("{} hours", format!("{hours:.1}").trim_end_matches(".0"))
        }
    } else if secs >= 60 {
        plural(secs.div_ceil(60), "minute")
    } else {
        plural(secs, "second")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_in_words() {
        assert_eq!(ttl_phrase(86_400), "24 hours");
        assert_eq!(ttl_phrase(3_600), "1 hour");
        assert_eq!(ttl_phrase(5_400), "1.5 hours");
        assert_eq!(ttl_phrase(7_300), "2 hours");
        assert_eq!(ttl_phrase(600), "10 minutes");
        assert_eq!(ttl_phrase(1), "1 second");
    }

    #[test]
    fn error_codes_become_sentences_and_unknown_ones_stay_harmless() {
        assert!(error_message("quota_exceeded", 7).contains("at most 7 node ids"));
        assert!(error_message("invalid_id", 1).contains("1 to 256 bytes"));
        assert_eq!(
            error_message("teapot", 1),
            "Something went wrong (error code teapot). Please try again."
        );
        assert_eq!(
            error_message("<script>", 1),
            "Something went wrong. Please try again."
        );
    }

    #[test]
    fn messages_embed_safely_in_a_script_element() {
        let json = messages_json(10);
        assert!(!json.contains('<'));
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed.as_object().unwrap().len(), KNOWN_CODES.len() + 1);
    }

    #[test]
    fn error_page_escapes_the_message() {
        let Html(page) = error_page(StatusCode::BAD_REQUEST, "<b>state</b> & co");
        assert!(page.contains("400 Bad Request"));
        assert!(page.contains("&#60;b&#62;state") || page.contains("&lt;b&gt;state"));
        assert!(!page.contains("<b>state"));
    }
}
