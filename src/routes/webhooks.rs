//! `POST /webhooks/github`: GitHub Sponsors webhooks. The handler checks the
//! signature and unwraps the body; what an event means and does is
//! [`crate::sponsorship`]'s business.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{json_response, AppError, ErrorBody};
use crate::sponsorship::{self, Outcome, Parsed, SignatureCheck};
use crate::state::AppState;

pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
pub const EVENT_HEADER: &str = "x-github-event";
pub const DELIVERY_HEADER: &str = "x-github-delivery";

/// The body of 200 and 202 answers (204 has none).
#[derive(Serialize, ToSchema)]
pub struct WebhookReply {
    /// `pong`, `ignored`, `scheduled` or `duplicate`.
    pub status: &'static str,
    /// Why an event was ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// When a scheduled change takes effect (unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_unix: Option<i64>,
}

fn reply(status: StatusCode, body: WebhookReply) -> Response {
    json_response(status, &body)
}

fn ignored(reason: &'static str) -> Response {
    reply(
        StatusCode::ACCEPTED,
        WebhookReply {
            status: "ignored",
            reason: Some(reason),
            due_unix: None,
        },
    )
}

fn unauthorized(code: &'static str, message: &str) -> Response {
    json_response(
        StatusCode::UNAUTHORIZED,
        &ErrorBody {
            error: code,
            message: message.to_owned(),
        },
    )
}

/// Receive a GitHub Sponsors webhook (`sponsorship` events; `ping`).
#[utoipa::path(post, path = "/webhooks/github", tag = "webhooks",
    request_body(content = String, content_type = "application/json",
        description = "The raw event payload as GitHub sends it; also accepted as \
            application/x-www-form-urlencoded with the JSON in the `payload` field."),
    params(
        ("X-Hub-Signature-256" = String, Header, description = "`sha256=` + hex HMAC-SHA256 of the raw body under GITHUB_WEBHOOK_SECRET"),
        ("X-GitHub-Event" = String, Header, description = "`sponsorship` or `ping`; others are ignored"),
        ("X-GitHub-Delivery" = Option<String>, Header, description = "Delivery id: a delivery applied once is not applied again"),
    ),
    responses(
        (status = 200, description = "ping", body = WebhookReply),
        (status = 202, description = "ignored, scheduled for later, or already applied", body = WebhookReply),
        (status = 204, description = "applied"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "GITHUB_WEBHOOK_SECRET is not set", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let Some(secret) = state
        .config
        .github
        .as_ref()
        .and_then(|g| g.webhook_secret.as_ref())
    else {
        return Err(AppError::NotFound);
    };
    if body.is_empty() {
        return Err(AppError::bad_request(
            "missing_body",
            "the request has no body",
        ));
    }
    let signature = headers.get(SIGNATURE_HEADER).map(|v| v.as_bytes());
    match sponsorship::verify_signature(secret.expose().as_bytes(), &body, signature) {
        SignatureCheck::Valid => {}
        SignatureCheck::Missing => {
            return Ok(unauthorized(
                "missing_signature",
                "X-Hub-Signature-256 is required",
            ));
        }
        SignatureCheck::Invalid => {
            return Ok(unauthorized(
                "bad_signature",
                "X-Hub-Signature-256 does not match the body",
            ));
        }
    }
    let event = headers
        .get(EVENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| AppError::bad_request("missing_event", "X-GitHub-Event is required"))?;
    let delivery = match headers.get(DELIVERY_HEADER) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .filter(|d| {
                    !d.is_empty() && d.len() <= 128 && d.bytes().all(|b| b.is_ascii_graphic())
                })
                .ok_or_else(|| {
                    AppError::bad_request(
                        "invalid_delivery",
                        "X-GitHub-Delivery is not a delivery id",
                    )
                })?,
        ),
    };
    let payload = payload(&headers, &body)?;
    match event {
        "ping" => {
            return Ok(reply(
                StatusCode::OK,
                WebhookReply {
                    status: "pong",
                    reason: None,
                    due_unix: None,
                },
            ))
        }
        "sponsorship" => {}
        _ => return Ok(ignored("event not handled")),
    }
    let event = match sponsorship::parse_event(&payload, &state.config.sponsorable) {
        Err(e) => return Err(AppError::bad_request("invalid_payload", e.to_string())),
        Ok(Parsed::Ignored(reason)) => return Ok(ignored(reason)),
        Ok(Parsed::Event(event)) => event,
    };
    let outcome =
        sponsorship::handle_event(&state, &event, delivery, sponsorship::now_ms()).await?;
    tracing::info!(
        action = event.action.as_str(),
        user_id = event.sponsor_id,
        delivery = delivery.unwrap_or(""),
        outcome = ?outcome,
        "sponsorship webhook"
    );
    Ok(match outcome {
        Outcome::Applied => StatusCode::NO_CONTENT.into_response(),
        Outcome::Scheduled { due_ms } => reply(
            StatusCode::ACCEPTED,
            WebhookReply {
                status: "scheduled",
                reason: None,
                due_unix: Some(due_ms.div_euclid(1000)),
            },
        ),
        Outcome::Ignored(reason) => ignored(reason),
        Outcome::Duplicate => reply(
            StatusCode::ACCEPTED,
            WebhookReply {
                status: "duplicate",
                reason: Some("this delivery was already applied"),
                due_unix: None,
            },
        ),
    })
}

/// The JSON payload: the body itself, or a form's `payload` field.
fn payload(headers: &HeaderMap, body: &Bytes) -> Result<Vec<u8>, AppError> {
    let content_type = super::media_type(headers);
    match content_type.as_str() {
        // GitHub always says; a missing type is read as JSON.
        "" | "application/json" => Ok(body.to_vec()),
        "application/x-www-form-urlencoded" => url::form_urlencoded::parse(body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| v.into_owned().into_bytes())
            .ok_or_else(|| AppError::bad_request("missing_field", "the form has no payload field")),
        _ => Err(AppError::UnsupportedMediaType),
    }
}
