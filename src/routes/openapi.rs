//! `GET /openapi.json`: generated from the handlers' annotations, so it cannot
//! drift from the routes (a test compares both).

use std::sync::Arc;

use axum::response::IntoResponse;
use axum::Json;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "sponsorgate", description = "Sponsor-only preferences behind GitHub sign-in."),
    tags(
        (name = "auth", description = "GitHub sign-in and the session"),
        (name = "preferences", description = "Excluded node ids"),
        (name = "operations", description = "Health, readiness, metrics"),
        (name = "webhooks", description = "GitHub Sponsors webhooks")
    )
)]
struct ApiDoc;

pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub async fn serve_openapi(doc: Arc<utoipa::openapi::OpenApi>) -> impl IntoResponse {
    Json(doc.as_ref().clone())
}
