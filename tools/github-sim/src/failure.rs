//! Failure switches: every handler passes through [`gate`] first.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::{Auth, Endpoint, Failure, Shared};
use crate::{clock, pages, rest, token};

/// Counts the call, then applies the endpoint's failure switch: `None` means
/// "behave normally", `Some(response)` is what to answer instead.
pub(crate) async fn gate(shared: &Shared, ep: Endpoint, headers: &HeaderMap) -> Option<Response> {
    let failure = shared.with(|s| {
        *s.calls.entry(ep).or_insert(0) += 1;
        match s.failures.get_mut(&ep) {
            None => Failure::None,
            Some(Failure::FailAfter(n)) if *n > 0 => {
                *n -= 1;
                Failure::None
            }
            Some(Failure::FailAfter(_)) => Failure::Status(502),
            Some(f) => *f,
        }
    });
    match failure {
        Failure::None | Failure::FailAfter(_) => None,
        Failure::Hang => {
            let mut shutdown = shared.shutdown.clone();
            // Released only when the simulator shuts down.
            let _ = shutdown.wait_for(|stopped| *stopped).await;
            Some(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
        Failure::Status(code) => Some(status_response(ep, code)),
        Failure::Unauthorized => Some(match ep {
            Endpoint::Authorize => pages::error_page(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "The simulator was told to refuse this request.",
            ),
            Endpoint::Token => {
                token::token_error(headers, token::TokenError::IncorrectClientCredentials)
            }
            _ => rest::bad_credentials(),
        }),
        Failure::GraphqlErrors => Some(rate_limited(shared, ep, headers)),
    }
}

fn status_response(ep: Endpoint, code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = status.canonical_reason().unwrap_or("Server Error");
    match ep {
        Endpoint::Authorize | Endpoint::Token => pages::error_page(
            status,
            "Unicorn!",
            "No server is currently available to service your request. Sorry about that.",
        ),
        Endpoint::Graphql if code >= 500 => {
            let body = json!({
                "data": null,
                "errors": [{
                    "message": format!(
                        "Something went wrong while executing your query. This may be the result of a timeout, or it could be a GitHub bug. Please include `{}` when reporting this issue.",
                        request_id()
                    )
                }]
            });
            (status, axum::Json(body)).into_response()
        }
        _ => {
            let body =
                json!({"message": reason, "documentation_url": "https://docs.github.com/rest"});
            (status, axum::Json(body)).into_response()
        }
    }
}

fn rate_limited(shared: &Shared, ep: Endpoint, headers: &HeaderMap) -> Response {
    let who = match shared.auth(headers) {
        Auth::Valid { user, .. } => format!(" for user ID {}", user.id),
        _ => String::new(),
    };
    let message = format!("API rate limit exceeded{who}.");
    let mut response = match ep {
        Endpoint::Graphql => axum::Json(json!({
            "data": null,
            "errors": [{"type": "RATE_LIMITED", "message": message}]
        }))
        .into_response(),
        Endpoint::User | Endpoint::Emails => (
            StatusCode::FORBIDDEN,
            axum::Json(json!({
                "message": message,
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
            })),
        )
            .into_response(),
        Endpoint::Authorize | Endpoint::Token => pages::error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            "You have exceeded a secondary rate limit.",
        ),
    };
    let resource = if ep == Endpoint::Graphql {
        "graphql"
    } else {
        "core"
    };
    let h = response.headers_mut();
    let reset = (clock::unix_now() + 3600).to_string();
    for (name, value) in [
        ("x-ratelimit-limit", "5000".to_string()),
        ("x-ratelimit-remaining", "0".to_string()),
        ("x-ratelimit-used", "5000".to_string()),
        ("x-ratelimit-reset", reset),
        ("x-ratelimit-resource", resource.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    response
}

/// A GitHub-looking request id (`x-github-request-id`).
pub(crate) fn request_id() -> String {
    use crate::state::random_hex;
    format!(
        "{}:{}:{}:{}:{}",
        random_hex(4).to_uppercase(),
        random_hex(5).to_uppercase(),
        random_hex(6).to_uppercase(),
        random_hex(7).to_uppercase(),
        random_hex(8).to_uppercase()
    )
}

/// Adds `content-type: text/plain` helper for bodies built by hand.
pub(crate) fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}
