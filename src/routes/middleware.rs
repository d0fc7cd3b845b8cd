//! The middleware every route runs through: request metrics and the
//! conversion of non-JSON error responses into the contract's error shape.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::{json_response, ErrorBody, ErrorCode};
use crate::metrics::{RouteLabel, RouteStatus};
use crate::routes::negotiate::BODY_LIMIT;
use crate::state::AppState;

/// Counts every request by its route template (never the raw path: ids in
/// paths would explode the label set).
pub async fn track_metrics(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let metrics = &state.metrics;
    metrics
        .http_duration
        .get_or_create(&RouteLabel {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .http_requests
        .get_or_create(&RouteStatus {
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// Turns every error response that is not already JSON or HTML (axum's own
/// rejections, 405s, the CSRF layer's 403, the body limit's 413) into the
/// contract's JSON error shape.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") || content_type.starts_with("text/html") {
        return response;
    }
    let message = match status {
        StatusCode::FORBIDDEN => "cross-site request refused".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this path".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => format!("request body is larger than {BODY_LIMIT} bytes"),
        _ => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let mut converted = json_response(
        status,
        &ErrorBody {
            error: ErrorCode::for_status(status),
            message,
        },
    );
    if let Some(allow) = response.headers().get(header::ALLOW) {
        converted.headers_mut().insert(header::ALLOW, allow.clone());
    }
    converted
}
