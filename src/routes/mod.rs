//! The router: every route, its middleware, and the OpenAPI document built
//! from the handlers' annotations.

pub mod auth;
pub mod exclusions;
pub mod health;
pub mod me;
pub mod openapi;
pub mod page;
pub mod webhooks;

use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::csrf::CsrfLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::{Key, SameSite};
use tower_sessions::{Expiry, SessionManagerLayer};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{code_for_status, json_response, AppError, ErrorBody};
use crate::session::RedisSessionStore;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "sponsorgate_session";

/// The JSON API's routes, with the OpenAPI document they describe.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(auth::login))
        .routes(routes!(auth::callback))
        .routes(routes!(auth::logout))
        .routes(routes!(me::me))
        .routes(routes!(exclusions::exclude))
        .routes(routes!(exclusions::list))
        .routes(routes!(exclusions::remove))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(webhooks::receive))
        .split_for_parts()
}

pub fn router(state: AppState, session_key: Key) -> Router {
    let (api, doc) = api();
    let doc = std::sync::Arc::new(doc);
    let config = &state.config;
    let sessions = SessionManagerLayer::new(RedisSessionStore::new(state.store.connection()))
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.secure_cookies())
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(time::Duration::days(7)))
        .with_signed(session_key);
    let csrf = CsrfLayer::new()
        .add_trusted_origin(config.public_origin())
        .unwrap_or_else(|_| CsrfLayer::new());
    // One composed layer: `Router::layer` wraps every route separately and
    // each `.layer()` call boxes the route again, and every request clones
    // (and then drops) the boxed stack, so ten chained calls cost ten
    // allocations per request. Same order as chaining: outermost first.
    let middleware = ServiceBuilder::new()
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
                // The path only: query strings can carry OAuth codes and state.
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
            }),
        )
        .layer(CatchPanicLayer::custom(|_| {
            AppError::Internal("handler panicked".into()).into_response()
        }))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .layer(csrf)
        .layer(RequestBodyLimitLayer::new(exclusions::BODY_LIMIT))
        .layer(DefaultBodyLimit::max(exclusions::BODY_LIMIT))
        .layer(sessions);
    api.route("/", get(page::index))
        .route("/static/{file}", get(page::asset))
        .route(
            "/exclusions/{id}/delete",
            post(exclusions::remove_from_form),
        )
        .route("/openapi.json", get(move || openapi::serve(doc.clone())))
        .fallback(not_found)
        .layer(middleware)
        .with_state(state)
}

/// The request's media type, lower-cased, without parameters (`""` when absent).
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

async fn not_found() -> AppError {
    AppError::NotFound
}

/// Turns every error response that is not already JSON or HTML (axum's own
/// rejections, 405s, the CSRF layer's 403, the body limit's 413) into the
/// contract's JSON error shape.
async fn json_errors(request: Request, next: Next) -> Response {
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
        StatusCode::PAYLOAD_TOO_LARGE => format!(
            "request body is larger than {} bytes",
            exclusions::BODY_LIMIT
        ),
        _ => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let code = match status {
        StatusCode::FORBIDDEN => "cross_site_request",
        other => code_for_status(other),
    };
    let mut converted = json_response(
        status,
        &ErrorBody {
            error: code,
            message,
        },
    );
    if let Some(allow) = response.headers().get(header::ALLOW) {
        converted.headers_mut().insert(header::ALLOW, allow.clone());
    }
    let _ = HeaderValue::from_static("");
    converted
}
