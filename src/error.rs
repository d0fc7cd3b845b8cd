//! The HTTP edge's one error type. Every route answers errors as
//! `{"error": "<code>", "message": "<human text>"}`, where `<code>` is one of
//! the closed list [`ErrorCode`] (documented in the OpenAPI document and in
//! `docs/api.md`). Domain modules return their own errors; they become an
//! [`AppError`] here, in one place.

use std::borrow::Cow;
use std::fmt;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::github::GithubError;
use crate::node_id::InvalidNodeId;
use crate::sponsorship::SponsorshipError;
use crate::store::StoreError;

pub type AppResult<T> = Result<T, AppError>;

/// Defines [`ErrorCode`] from one table, so a code, its status and its
/// documentation cannot drift apart (a derive crate would need the same table).
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $code:literal => $status:ident,)+) => {
        /// The closed list of error codes. A code keeps its meaning and its
        /// status forever; new codes may be added.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)+
        }

        impl ErrorCode {
            /// Every code, in the documented order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            pub const fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)+ }
            }

            /// The status a response with this code has.
            pub const fn status(self) -> StatusCode {
                match self { $(ErrorCode::$variant => StatusCode::$status,)+ }
            }

            /// The code named `code`, if it is one of the list.
            pub fn parse(code: &str) -> Option<Self> {
                match code { $($code => Some(ErrorCode::$variant),)+ _ => None }
            }
        }
    };
}

error_codes! {
    /// The request is malformed in a way no more specific code names.
    BadRequest = "bad_request" => BAD_REQUEST,
    /// The request has no body (or only whitespace).
    MissingBody = "missing_body" => BAD_REQUEST,
    /// The body could not be read.
    UnreadableBody = "unreadable_body" => BAD_REQUEST,
    /// The JSON body does not parse.
    MalformedJson = "malformed_json" => BAD_REQUEST,
    /// The JSON body is not an object.
    MalformedRequest = "malformed_request" => BAD_REQUEST,
    /// The form body is not UTF-8.
    MalformedForm = "malformed_form" => BAD_REQUEST,
    /// A required field (`id`, a form's `payload`) is missing.
    MissingField = "missing_field" => BAD_REQUEST,
    /// The sign-in's `state` is missing, expired, reused or wrong.
    InvalidState = "invalid_state" => BAD_REQUEST,
    /// GitHub sent the browser back without an authorization code.
    MissingCode = "missing_code" => BAD_REQUEST,
    /// GitHub sent the browser back with an OAuth error.
    OauthError = "oauth_error" => BAD_REQUEST,
    /// The authorization code is invalid, expired or already used.
    BadVerificationCode = "bad_verification_code" => BAD_REQUEST,
    /// A webhook without `X-GitHub-Event`.
    MissingEvent = "missing_event" => BAD_REQUEST,
    /// A webhook whose `X-GitHub-Delivery` is not a delivery id.
    InvalidDelivery = "invalid_delivery" => BAD_REQUEST,
    /// A signed webhook payload that is not a sponsorship event.
    InvalidPayload = "invalid_payload" => BAD_REQUEST,
    /// No signed-in session.
    NotSignedIn = "not_signed_in" => UNAUTHORIZED,
    /// A webhook without `X-Hub-Signature-256`.
    MissingSignature = "missing_signature" => UNAUTHORIZED,
    /// A webhook whose signature does not match its body.
    BadSignature = "bad_signature" => UNAUTHORIZED,
    /// A bearer token that is unknown, revoked or expired (see `WWW-Authenticate`).
    InvalidToken = "invalid_token" => UNAUTHORIZED,
    /// Refused (e.g. the sign-in was declined at GitHub).
    Forbidden = "forbidden" => FORBIDDEN,
    /// A state-changing request from another site.
    CrossSiteRequest = "cross_site_request" => FORBIDDEN,
    /// The token lacks the scope the route needs (see `WWW-Authenticate`).
    InsufficientScope = "insufficient_scope" => FORBIDDEN,
    /// No such route or resource.
    NotFound = "not_found" => NOT_FOUND,
    /// The route exists, the method does not (see `Allow`).
    MethodNotAllowed = "method_not_allowed" => METHOD_NOT_ALLOWED,
    /// The request took longer than the server allows.
    RequestTimeout = "request_timeout" => REQUEST_TIMEOUT,
    /// `If-Match` names another version of the resource: nothing changed.
    PreconditionFailed = "precondition_failed" => PRECONDITION_FAILED,
    /// The body is larger than 16 KiB.
    PayloadTooLarge = "payload_too_large" => PAYLOAD_TOO_LARGE,
    /// The body is neither JSON nor a form.
    UnsupportedMediaType = "unsupported_media_type" => UNSUPPORTED_MEDIA_TYPE,
    /// A node id that breaks the rules (1 to 256 bytes of UTF-8, no control characters).
    InvalidId = "invalid_id" => UNPROCESSABLE_ENTITY,
    /// A well-formed request with values the route does not accept.
    InvalidRequest = "invalid_request" => UNPROCESSABLE_ENTITY,
    /// The user holds the most live API tokens already (20).
    TooManyTokens = "too_many_tokens" => UNPROCESSABLE_ENTITY,
    /// The user's list is full (`QUOTA_SPONSOR` / `QUOTA_FREE`).
    QuotaExceeded = "quota_exceeded" => TOO_MANY_REQUESTS,
    /// Over a rate limit (`RATE_LIMIT_PER_MINUTE`, `LOGIN_RATE_PER_MINUTE`); see `Retry-After`.
    RateLimited = "rate_limited" => TOO_MANY_REQUESTS,
    /// Too many requests.
    TooManyRequests = "too_many_requests" => TOO_MANY_REQUESTS,
    /// A bug or an unexpected failure; details are in the server's log.
    InternalError = "internal_error" => INTERNAL_SERVER_ERROR,
    /// GitHub could not be reached or answered with an error.
    GithubUnavailable = "github_unavailable" => BAD_GATEWAY,
    /// GitHub did not answer in time.
    GithubTimeout = "github_timeout" => BAD_GATEWAY,
    /// GitHub answered with something unusable.
    GithubBadAnswer = "github_bad_answer" => BAD_GATEWAY,
    /// GitHub refused the token exchange (the service's GitHub app settings).
    TokenExchangeFailed = "token_exchange_failed" => BAD_GATEWAY,
    /// An upstream failure no more specific code names.
    BadGateway = "bad_gateway" => BAD_GATEWAY,
    /// The local Redis is unavailable: nothing was changed.
    RedisUnavailable = "redis_unavailable" => SERVICE_UNAVAILABLE,
    /// The service cannot answer right now.
    ServiceUnavailable = "service_unavailable" => SERVICE_UNAVAILABLE,
}

impl ErrorCode {
    /// The code for a bare status, for responses that did not come from an
    /// [`AppError`] (axum's own rejections, tower-http's layers).
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => Self::NotSignedIn,
            412 => Self::PreconditionFailed,
            403 => Self::CrossSiteRequest,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            408 => Self::RequestTimeout,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            422 => Self::InvalidRequest,
            429 => Self::TooManyRequests,
            502 => Self::BadGateway,
            503 => Self::ServiceUnavailable,
            _ if status.is_server_error() => Self::InternalError,
            _ => Self::BadRequest,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error on its way to becoming a response.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    code: ErrorCode,
    message: Cow<'static, str>,
    /// For the server's log only (never in the response).
    detail: Option<String>,
}

/// The JSON error shape of every route.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A code of the closed list.
    pub error: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
            detail: None,
        }
    }

    /// A failure the user cannot fix; `detail` goes to the log only.
    pub fn internal(detail: impl fmt::Display) -> Self {
        Self {
            code: ErrorCode::InternalError,
            message: "internal error".into(),
            detail: Some(detail.to_string()),
        }
    }

    pub fn not_signed_in() -> Self {
        Self::new(ErrorCode::NotSignedIn, "sign in first")
    }

    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, "not found")
    }

    pub fn redis_unavailable(kind: impl fmt::Debug) -> Self {
        Self {
            code: ErrorCode::RedisUnavailable,
            message: "the local Redis is unavailable".into(),
            detail: Some(format!("{kind:?}")),
        }
    }

    pub fn with_detail(mut self, detail: impl fmt::Display) -> Self {
        self.detail = Some(detail.to_string());
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Logs server-side failures once, where they are turned into a response.
    pub fn log(&self) {
        let detail = self.detail.as_deref().unwrap_or("");
        match self.code {
            ErrorCode::RedisUnavailable => {
                tracing::warn!(error.kind = detail, "local Redis unavailable")
            }
            ErrorCode::InternalError => tracing::error!(error.detail = detail, "internal error"),
            code if code.status() == StatusCode::BAD_GATEWAY => {
                tracing::warn!(
                    error.code = code.as_str(),
                    error.detail = detail,
                    "GitHub request failed"
                )
            }
            _ => {}
        }
    }
}

impl From<ErrorCode> for AppError {
    /// The code with its status's reason as the message.
    fn from(code: ErrorCode) -> Self {
        let reason = code.status().canonical_reason().unwrap_or("error");
        Self::new(code, reason.to_lowercase())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let body = ErrorBody {
            error: self.code,
            message: self.message.into_owned(),
        };
        let mut response = json_response(body.error.status(), &body);
        // RFC 6750 §3: a bearer failure says so in `WWW-Authenticate`.
        let challenge = match body.error {
            ErrorCode::InvalidToken => Some("Bearer error=\"invalid_token\""),
            ErrorCode::InsufficientScope => Some("Bearer error=\"insufficient_scope\""),
            _ => None,
        };
        if let Some(challenge) = challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

/// `body` as `application/json` with `status`.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

// ---------------------------------------------------------------------------
// Domain errors → HTTP, in one place.

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(kind) => Self::redis_unavailable(kind),
            StoreError::Internal(detail) => Self::internal(detail),
        }
    }
}

impl From<SponsorshipError> for AppError {
    fn from(e: SponsorshipError) -> Self {
        match e {
            SponsorshipError::Store(e) => e.into(),
            other => Self::internal(other),
        }
    }
}

impl From<InvalidNodeId> for AppError {
    fn from(e: InvalidNodeId) -> Self {
        Self::new(ErrorCode::InvalidId, e.to_string())
    }
}

impl From<tower_sessions::session::Error> for AppError {
    fn from(e: tower_sessions::session::Error) -> Self {
        // The session store is the local Redis: when it fails, so does the service.
        match e {
            tower_sessions::session::Error::Store(_) => Self::redis_unavailable("session store"),
            other => Self::internal(other),
        }
    }
}

impl From<&GithubError> for AppError {
    fn from(e: &GithubError) -> Self {
        match e {
            GithubError::TokenRejected { code, .. } if code == "bad_verification_code" => {
                Self::new(
                    ErrorCode::BadVerificationCode,
                    "the authorization code is invalid, expired or already used; sign in again",
                )
            }
            GithubError::TokenRejected { code, description } => {
                tracing::error!(error.code = %code, error.description = %description, "GitHub refused the token exchange");
                Self::new(
                    ErrorCode::TokenExchangeFailed,
                    "GitHub refused the sign-in; the service's GitHub app settings may be wrong",
                )
            }
            GithubError::Timeout => Self::new(
                ErrorCode::GithubTimeout,
                "GitHub did not answer in time; try again",
            ),
            other => Self::new(
                ErrorCode::GithubUnavailable,
                "GitHub could not be reached or answered with an error; try again",
            )
            .with_detail(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
            assert_eq!(ErrorCode::parse(s), Some(*code));
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                s,
                "serde and as_str agree"
            );
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
        assert_eq!(ErrorCode::parse("teapot"), None);
    }

    #[test]
    fn docs_api_md_lists_every_code_with_its_status() {
        let doc = include_str!("../docs/api.md");
        for code in ErrorCode::ALL {
            let row = format!("| `{}` | {} |", code.as_str(), code.status().as_u16());
            assert!(doc.contains(&row), "docs/api.md lacks {row}");
        }
    }

    #[test]
    fn a_bare_status_gets_a_code_of_that_status_where_one_exists() {
        for status in [401, 404, 405, 408, 412, 413, 415, 422, 429, 500, 502, 503] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(ErrorCode::for_status(status).status(), status);
        }
    }
}
