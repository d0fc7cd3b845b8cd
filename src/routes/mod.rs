//! The router: every route, its middleware, and the OpenAPI document built
//! from the handlers' annotations.

pub mod activity;
pub mod auth;
pub mod deprecation;
pub mod exclusions;
pub mod health;
pub mod identity;
pub mod me;
pub mod middleware;
pub mod negotiate;
pub mod openapi;
pub mod page;
pub mod tokens;
pub mod webhooks;

use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::from_fn;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::get;
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

use crate::error::AppError;
use crate::routes::negotiate::BODY_LIMIT;
use crate::session::{RedisSessionStore, SESSION_LIFETIME};
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "sponsorgate_session";

/// The JSON API's routes, with the OpenAPI document they describe.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(auth::begin_sign_in))
        .routes(routes!(auth::finish_sign_in))
        .routes(routes!(auth::sign_out))
        .routes(routes!(me::get_current_user))
        .routes(routes!(exclusions::add_exclusion))
        .routes(routes!(exclusions::list_exclusions))
        .routes(routes!(exclusions::remove_exclusion))
        .routes(routes!(activity::list_activity))
        .routes(routes!(tokens::create_token, tokens::list_tokens))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(page::show_index))
        .routes(routes!(page::serve_asset))
        .routes(routes!(exclusions::remove_exclusion_by_form))
        .routes(routes!(page::create_token_by_form))
        .routes(routes!(page::revoke_token_by_form))
        .routes(routes!(health::check_liveness))
        .routes(routes!(health::check_readiness))
        .routes(routes!(health::export_metrics))
        .routes(routes!(webhooks::receive_github_webhook))
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
        .with_expiry(Expiry::OnInactivity(SESSION_LIFETIME))
        .with_signed(session_key);
    let avatar_origin = config
        .github
        .as_ref()
        .map(|g| g.web_url.origin().ascii_serialization())
        .unwrap_or_default();
    let csp = HeaderValue::from_str(&middleware::content_security_policy(&avatar_origin))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"));
    let csrf = CsrfLayer::new()
        .add_trusted_origin(config.public_origin())
        .unwrap_or_else(|_| CsrfLayer::new());
    // One composed layer: `Router::layer` wraps every route separately and
    // each `.layer()` call boxes the route again, and every request clones
    // (and then drops) the boxed stack, so ten chained calls cost ten
    // allocations per request. Same order as chaining: outermost first.
    let middleware = ServiceBuilder::new()
        // Outermost: also on the answers the layers below made.
        .layer(from_fn_with_state(csp, middleware::security_headers))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
                // The path only: query strings can carry OAuth codes and state.
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
            }),
        )
        .layer(CatchPanicLayer::custom(|_| {
            AppError::internal("handler panicked").into_response()
        }))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(from_fn(middleware::json_errors))
        .layer(from_fn_with_state(state.clone(), middleware::track_metrics))
        .layer(from_fn(middleware::bearer_skips_cross_site_check))
        .layer(csrf)
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(sessions);
    let routes = api
        .route(
            "/openapi.json",
            get(move || openapi::serve_openapi(doc.clone())),
        )
        .fallback(not_found);
    // Only while something is deprecated: a layer costs every request.
    let routes = if deprecation::DEPRECATIONS.is_empty() {
        routes
    } else {
        routes.layer(from_fn(deprecation::announce_deprecations))
    };
    routes
        // Inside the session layer: it reads the signed-in user.
        .layer(from_fn_with_state(
            state.clone(),
            middleware::enforce_rate_limits,
        ))
        .layer(middleware)
        .with_state(state)
}

async fn not_found() -> AppError {
    AppError::not_found()
}
