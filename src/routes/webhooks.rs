//! `POST /webhooks/github`: GitHub Sponsors webhooks. The handler checks the
//! signature and unwraps the body; what an event means and does is
//! [`crate::sponsorship`]'s business.

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::Serialize;
use utoipa::ToSchema;

use crate::clock::now_ms;
use crate::error::{json_response, AppError, AppResult, ErrorBody, ErrorCode};
use crate::routes::negotiate::{media_type, FORM};
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

/// The headers a delivery carries, read but not judged: the handler checks
/// them in the order the answers promise (signature before anything else).
pub struct WebhookHeaders {
    signature: Option<Vec<u8>>,
    event: Option<String>,
    /// `Err(())`: present but not a delivery id.
    delivery: Result<Option<String>, ()>,
    media_type: String,
}

impl WebhookHeaders {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let delivery = match headers.get(DELIVERY_HEADER) {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .ok()
                .filter(|d| is_delivery_id(d))
                .map(|d| Some(d.to_owned()))
                .ok_or(()),
        };
        Self {
            signature: headers.get(SIGNATURE_HEADER).map(|v| v.as_bytes().to_vec()),
            event: headers
                .get(EVENT_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            delivery,
            media_type: media_type(headers),
        }
    }

    fn event(&self) -> AppResult<&str> {
        self.event
            .as_deref()
            .ok_or_else(|| AppError::new(ErrorCode::MissingEvent, "X-GitHub-Event is required"))
    }

    fn delivery(&self) -> AppResult<Option<&str>> {
        self.delivery.as_ref().map(Option::as_deref).map_err(|()| {
            AppError::new(
                ErrorCode::InvalidDelivery,
                "X-GitHub-Delivery is not a delivery id",
            )
        })
    }
}

/// 1 to 128 visible ASCII characters (GitHub sends a UUID).
fn is_delivery_id(d: &str) -> bool {
    !d.is_empty() && d.len() <= 128 && d.bytes().all(|b| b.is_ascii_graphic())
}

impl<S: Send + Sync> FromRequestParts<S> for WebhookHeaders {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(Self::from_headers(&parts.headers))
    }
}

fn unauthorized(code: ErrorCode, message: &str) -> Response {
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
        ("X-GitHub-Delivery" = Option<String>, Header, description = "Delivery id: a delivery applied once is not applied again, and neither is a body applied once (under any delivery id)"),
    ),
    responses(
        (status = 200, description = "ping", body = WebhookReply),
        (status = 202, description = "ignored, scheduled for later, or already applied", body = WebhookReply),
        (status = 204, description = "applied"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "GITHUB_WEBHOOK_SECRET is not set", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(webhook.delivery))]
pub async fn receive_github_webhook(
    State(state): State<AppState>,
    headers: WebhookHeaders,
    body: Bytes,
) -> AppResult<Response> {
    let Some(secret) = state
        .config
        .github
        .as_ref()
        .and_then(|g| g.webhook_secret.as_ref())
    else {
        return Err(AppError::not_found());
    };
    if body.is_empty() {
        return Err(AppError::new(
            ErrorCode::MissingBody,
            "the request has no body",
        ));
    }
    let signature = headers.signature.as_deref();
    match sponsorship::verify_signature(secret.expose_secret().as_bytes(), &body, signature) {
        SignatureCheck::Valid => {}
        SignatureCheck::Missing => {
            return Ok(unauthorized(
                ErrorCode::MissingSignature,
                "X-Hub-Signature-256 is required",
            ));
        }
        SignatureCheck::Invalid => {
            return Ok(unauthorized(
                ErrorCode::BadSignature,
                "X-Hub-Signature-256 does not match the body",
            ));
        }
    }
    let event = headers.event()?;
    let delivery = headers.delivery()?;
    if let Some(id) = delivery {
        tracing::Span::current().record("webhook.delivery", id);
    }
    let payload = payload(&headers.media_type, &body)?;
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
        Err(e) => return Err(AppError::new(ErrorCode::InvalidPayload, e.to_string())),
        Ok(Parsed::Ignored(reason)) => return Ok(ignored(reason)),
        Ok(Parsed::Event(event)) => event,
    };
    let outcome = sponsorship::handle_event(&state, &event, delivery, &body, now_ms()).await?;
    tracing::info!(
        webhook.action = event.action.as_str(),
        user.id = event.sponsor_id,
        outcome = ?outcome,
        "sponsorship webhook"
    );
    Ok(reply_for(outcome))
}

fn reply_for(outcome: Outcome) -> Response {
    match outcome {
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
                reason: Some("this delivery (or this body) was already applied"),
                due_unix: None,
            },
        ),
    }
}

/// The JSON payload: the body itself, or a form's `payload` field.
pub fn payload(media_type: &str, body: &[u8]) -> AppResult<Vec<u8>> {
    match media_type {
        // GitHub always says; a missing type is read as JSON.
        "" | "application/json" => Ok(body.to_vec()),
        FORM => url::form_urlencoded::parse(body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| v.into_owned().into_bytes())
            .ok_or_else(|| AppError::new(ErrorCode::MissingField, "the form has no payload field")),
        _ => Err(AppError::new(
            ErrorCode::UnsupportedMediaType,
            "send the payload as application/json or application/x-www-form-urlencoded",
        )),
    }
}
