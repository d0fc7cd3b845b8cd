//! `GET /openapi.json`: generated from the handlers' annotations, so it cannot
//! drift from the routes (a test compares both).

use std::sync::Arc;

use axum::response::IntoResponse;
use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "sponsorgate", description = "Sponsor-only preferences behind GitHub sign-in."),
    tags(
        (name = "auth", description = "GitHub sign-in and the session"),
        (name = "preferences", description = "Excluded node ids"),
        (name = "operations", description = "Health, readiness, metrics"),
        (name = "webhooks", description = "GitHub Sponsors webhooks"),
        (name = "tokens", description = "API tokens, managed from the browser session"),
        (name = "browser", description = "The web page and its forms (HTML, redirects)")
    ),
    modifiers(&Security)
)]
struct ApiDoc;

/// The two ways in: the session cookie, and `Authorization: Bearer sg_…`.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::routes::SESSION_COOKIE,
                "The browser session (sign in at /login)",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("sg_ + 40 letters and digits")
                    .description(Some(
                        "An API token from POST /tokens; its scopes say what it may do",
                    ))
                    .build(),
            ),
        );
    }
}

pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub async fn serve_openapi(doc: Arc<utoipa::openapi::OpenApi>) -> impl IntoResponse {
    Json(doc.as_ref().clone())
}
