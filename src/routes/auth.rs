//! Sign-in with GitHub: `GET /login`, `GET /oauth2/callback`, `POST /logout`.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::clock::now_ms;
use crate::error::{AppError, AppResult, ErrorBody, ErrorCode};
use crate::github::GithubError;
use crate::routes::negotiate::{accepts_json, prefers_html};
use crate::session::AuthSession;
use crate::sponsorship;
use crate::state::AppState;
use crate::store::{Profile, Sponsorship};

/// Start the GitHub sign-in: a redirect to GitHub's authorize page with a
/// fresh single-use `state` and a PKCE challenge (S256).
#[utoipa::path(get, path = "/login", tag = "auth", responses((status = 302, description = "To GitHub")))]
#[tracing::instrument(skip_all)]
pub async fn begin_sign_in(
    State(state): State<AppState>,
    session: AuthSession,
) -> AppResult<Response> {
    let request = state.github.authorize();
    session
        .begin_login(&request.state, &request.pkce_verifier)
        .await?;
    let mut response = StatusCode::FOUND.into_response();
    let location = request
        .url
        .as_str()
        .parse()
        .map_err(|_| AppError::internal("authorize URL is not a header value"))?;
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SignedIn {
    /// Always `"success"`.
    status: &'static str,
    id: u64,
    user_login: String,
    email: Option<String>,
    sponsor: bool,
}

/// GitHub sends the browser back here. Browsers get a 303 to `/`; clients
/// sending `Accept: application/json` get the signed-in user.
#[utoipa::path(get, path = "/oauth2/callback", tag = "auth",
    params(("code" = Option<String>, Query), ("state" = Option<String>, Query), ("error" = Option<String>, Query)),
    responses((status = 200, body = SignedIn, description = "With Accept: application/json"),
        (status = 303, description = "Signed in; to /"),
        (status = 400, description = "Bad or missing state or code: JSON with Accept: application/json, else an HTML page",
            content((ErrorBody = "application/json"), (String = "text/html"))),
        (status = 403, description = "Declined at GitHub", content((ErrorBody = "application/json"), (String = "text/html"))),
        (status = 502, description = "GitHub failed", content((ErrorBody = "application/json"), (String = "text/html"))),
        (status = 503, description = "The local Redis is unavailable", content((ErrorBody = "application/json"), (String = "text/html")))))]
#[tracing::instrument(skip_all)]
pub async fn finish_sign_in(
    State(state): State<AppState>,
    session: AuthSession,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let wants_json = accepts_json(&headers);
    match complete_sign_in(&state, &session, query).await {
        Ok(signed_in) if wants_json => Json(signed_in).into_response(),
        Ok(_) => Redirect::to("/").into_response(),
        Err(e) if wants_json => e.into_response(),
        Err(e) => crate::routes::page::error_response(e),
    }
}

/// Checks the callback against the pending sign-in, then asks GitHub who
/// the user is and whether they sponsor.
async fn complete_sign_in(
    state: &AppState,
    session: &AuthSession,
    query: CallbackQuery,
) -> AppResult<SignedIn> {
    // Single use: the pending state and verifier leave the session before
    // anything is compared, whatever the outcome.
    let pending = session.take_pending_login().await?;
    if let Some(error) = query.error.as_deref() {
        return Err(callback_error(error, query.error_description.as_deref()));
    }
    let (Some(expected), Some(got)) = (pending.state.as_deref(), query.state.as_deref()) else {
        return Err(AppError::new(
            ErrorCode::InvalidState,
            "the sign-in has no matching state (expired, reused or started elsewhere); start again at /login",
        ));
    };
    if !bool::from(expected.as_bytes().ct_eq(got.as_bytes())) {
        return Err(AppError::new(
            ErrorCode::InvalidState,
            "the sign-in state does not match; start again at /login",
        ));
    }
    let code = query.code.filter(|c| !c.is_empty()).ok_or_else(|| {
        AppError::new(ErrorCode::MissingCode, "GitHub sent no authorization code")
    })?;
    let verifier = pending.pkce_verifier.ok_or_else(|| {
        AppError::new(
            ErrorCode::InvalidState,
            "the sign-in has no PKCE verifier; start again",
        )
    })?;

    let token = state
        .github
        .exchange_code(&code, verifier)
        .await
        .map_err(|e| github_failure(state, e))?;
    let user = state
        .github
        .user(&token)
        .await
        .map_err(|e| github_failure(state, e))?;
    let id = u64::try_from(user.id)
        .map_err(|_| AppError::new(ErrorCode::GithubBadAnswer, "GitHub sent an invalid user id"))?;
    let sponsorship = match state
        .github
        .viewer_sponsorship(
            &token,
            &state.config.sponsorable,
            state.config.sponsor_min_monthly_usd,
        )
        .await
    {
        Ok(status) => Some(Sponsorship {
            sponsor: status.sponsor,
            tier_monthly_usd: status.tier_monthly_usd,
        }),
        Err(e) => {
            // Sign in with the last known status: a GitHub failure never demotes.
            state.metrics.github_error(e.kind());
            tracing::warn!(
                user.id = id,
                error.kind = e.kind(),
                "sponsorship check failed; keeping the known status"
            );
            None
        }
    };
    let profile = Profile {
        id,
        login: user.login,
        email: user.email,
        name: user.name,
        avatar_url: user.avatar_url,
    };
    let sponsor = sponsorship::record_sign_in(state, &profile, sponsorship, now_ms()).await?;
    session.sign_in(id).await?;
    tracing::info!(user.id = id, user.sponsor = sponsor, "signed in");
    Ok(SignedIn {
        status: "success",
        id,
        user_login: profile.login,
        email: profile.email,
        sponsor,
    })
}

fn callback_error(error: &str, description: Option<&str>) -> AppError {
    let description = description.unwrap_or("GitHub did not complete the sign-in");
    match error {
        "access_denied" => {
            AppError::new(ErrorCode::Forbidden, "you declined the sign-in at GitHub")
        }
        _ => AppError::new(
            ErrorCode::OauthError,
            format!("GitHub: {error}: {description}"),
        ),
    }
}

/// Counts the failure by kind; the HTTP answer is [`AppError`]'s mapping.
fn github_failure(state: &AppState, e: GithubError) -> AppError {
    state.metrics.github_error(e.kind());
    AppError::from(&e)
}

/// End the session.
#[utoipa::path(post, path = "/logout", tag = "auth",
    responses((status = 204, description = "Signed out"), (status = 303, description = "From an HTML form: to /"),
        (status = 403, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn sign_out(session: AuthSession, headers: HeaderMap) -> AppResult<Response> {
    session.sign_out().await?;
    if prefers_html(&headers) {
        return Ok(Redirect::to("/").into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
