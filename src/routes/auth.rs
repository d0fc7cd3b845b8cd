//! Sign-in with GitHub: `GET /login`, `GET /oauth2/callback`, `POST /logout`.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::error::{AppError, ErrorBody};
use crate::github::GithubError;
use crate::session::AuthSession;
use crate::state::AppState;
use crate::store::{Profile, Sponsorship};

/// Start the GitHub sign-in: a redirect to GitHub's authorize page with a
/// fresh single-use `state` and a PKCE challenge (S256).
#[utoipa::path(get, path = "/login", tag = "auth", responses((status = 302, description = "To GitHub")))]
pub async fn login(
    State(state): State<AppState>,
    session: AuthSession,
) -> Result<Response, AppError> {
    let request = state.github.authorize();
    session
        .begin_login(&request.state, &request.pkce_verifier)
        .await?;
    let mut response = StatusCode::FOUND.into_response();
    let location = request
        .url
        .as_str()
        .parse()
        .map_err(|_| AppError::Internal("authorize URL is not a header value".into()))?;
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
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn callback(
    State(state): State<AppState>,
    session: AuthSession,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let wants_json = accepts_json(&headers);
    match finish_sign_in(&state, &session, query).await {
        Ok(signed_in) if wants_json => Json(signed_in).into_response(),
        Ok(_) => Redirect::to("/").into_response(),
        Err(e) if wants_json => e.into_response(),
        Err(e) => e.into_html_response(),
    }
}

async fn finish_sign_in(
    state: &AppState,
    session: &AuthSession,
    query: CallbackQuery,
) -> Result<SignedIn, AppError> {
    // Single use: the pending state and verifier leave the session before
    // anything is compared, whatever the outcome.
    let pending = session.take_pending_login().await?;
    if let Some(error) = query.error.as_deref() {
        return Err(callback_error(error, query.error_description.as_deref()));
    }
    let (Some(expected), Some(got)) = (pending.state.as_deref(), query.state.as_deref()) else {
        return Err(AppError::bad_request(
            "invalid_state",
            "the sign-in has no matching state (expired, reused or started elsewhere); start again at /login",
        ));
    };
    if !bool::from(expected.as_bytes().ct_eq(got.as_bytes())) {
        return Err(AppError::bad_request(
            "invalid_state",
            "the sign-in state does not match; start again at /login",
        ));
    }
    let code = query.code.filter(|c| !c.is_empty()).ok_or_else(|| {
        AppError::bad_request("missing_code", "GitHub sent no authorization code")
    })?;
    let verifier = pending.pkce_verifier.ok_or_else(|| {
        AppError::bad_request(
            "invalid_state",
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
    let id = u64::try_from(user.id).map_err(|_| AppError::Github {
        code: "github_bad_answer",
        message: "GitHub sent an invalid user id".into(),
    })?;
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
    let now = unix_now();
    let grace = !state.config.sponsor_grace.is_zero();
    let sponsor = match sponsorship {
        // A former sponsor keeps sponsor treatment for SPONSOR_GRACE_SECS:
        // keep the status now, schedule the demotion.
        Some(s) if grace && !s.sponsor => {
            state.store.record_login(&profile, None, now).await?;
            let now_ms = crate::sponsorship::now_ms();
            crate::sponsorship::demote_after_sign_in(state, id, now_ms).await?;
            state.store.is_sponsor(id).await?
        }
        other => state.store.record_login(&profile, other, now).await?,
    };
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
        "access_denied" => AppError::Forbidden("you declined the sign-in at GitHub".into()),
        _ => AppError::bad_request("oauth_error", format!("GitHub: {error}: {description}")),
    }
}

fn github_failure(state: &AppState, e: GithubError) -> AppError {
    state.metrics.github_error(e.kind());
    match &e {
        GithubError::TokenRejected { code, .. } if code == "bad_verification_code" => {
            AppError::bad_request(
                "bad_verification_code",
                "the authorization code is invalid, expired or already used; sign in again",
            )
        }
        GithubError::TokenRejected { code, description } => {
            tracing::error!(error.code = %code, error.description = %description, "GitHub refused the token exchange");
            AppError::Github {
                code: "token_exchange_failed",
                message:
                    "GitHub refused the sign-in; the service's GitHub app settings may be wrong"
                        .into(),
            }
        }
        GithubError::Timeout => AppError::Github {
            code: "github_timeout",
            message: "GitHub did not answer in time; try again".into(),
        },
        _ => {
            tracing::warn!(error = %e, "GitHub call failed");
            AppError::Github {
                code: "github_unavailable",
                message: "GitHub could not be reached or answered with an error; try again".into(),
            }
        }
    }
}

/// End the session.
#[utoipa::path(post, path = "/logout", tag = "auth",
    responses((status = 204, description = "Signed out"), (status = 303, description = "From an HTML form: to /"),
        (status = 403, body = ErrorBody)))]
pub async fn logout(session: AuthSession, headers: HeaderMap) -> Result<Response, AppError> {
    session.sign_out().await?;
    if prefers_html(&headers) {
        return Ok(Redirect::to("/").into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub fn accepts_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

/// A browser navigation or form post (Accept lists text/html).
pub fn prefers_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
