//! One error type for the app, mapped to HTTP in one place: every route answers
//! `{"error": "<snake_case_code>", "message": "<human text>"}` (SPEC §3).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("sign in first")]
    NotSignedIn,
    #[error("cross-site request refused")]
    CrossSite,
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("send the body as application/json or application/x-www-form-urlencoded")]
    UnsupportedMediaType,
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("quota reached: at most {limit} preferences")]
    QuotaExceeded { limit: u64 },
    #[error("{message}")]
    Github { code: &'static str, message: String },
    #[error("the local Redis is unavailable")]
    RedisUnavailable(#[source] redis::RedisError),
    #[error("internal error")]
    Internal(String),
}

/// The JSON error shape of every route.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable snake_case code, e.g. `not_signed_in`, `invalid_id`.
    pub error: &'static str,
    /// What went wrong, for people.
    pub message: String,
}

impl AppError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::NotSignedIn => StatusCode::UNAUTHORIZED,
            Self::CrossSite | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::QuotaExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Github { .. } => StatusCode::BAD_GATEWAY,
            Self::RedisUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Invalid { code, .. }
            | Self::Github { code, .. } => code,
            Self::NotSignedIn => "not_signed_in",
            Self::CrossSite => "cross_site_request",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::QuotaExceeded { .. } => "quota_exceeded",
            Self::RedisUnavailable(_) => "redis_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    /// Logs server-side failures once, where they are turned into a response.
    fn log(&self) {
        match self {
            Self::RedisUnavailable(e) => {
                tracing::warn!(error.kind = ?e.kind(), "local Redis unavailable")
            }
            Self::Internal(detail) => tracing::error!(error.detail = %detail, "internal error"),
            Self::Github { code, .. } => tracing::warn!(error.code = code, "GitHub request failed"),
            _ => {}
        }
    }

    /// The same error as a small HTML page, for browser navigations.
    pub fn into_html_response(self) -> Response {
        self.log();
        let status = self.status();
        let page = crate::routes::page::error_page(status, &self.to_string());
        (status, page).into_response()
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let body = ErrorBody {
            error: self.code(),
            message: self.to_string(),
        };
        json_response(status, &body)
    }
}

pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

impl From<redis::RedisError> for AppError {
    fn from(e: redis::RedisError) -> Self {
        Self::RedisUnavailable(e)
    }
}

impl From<tower_sessions::session::Error> for AppError {
    fn from(e: tower_sessions::session::Error) -> Self {
        // The session store is the local Redis: when it fails, so does the service.
        match e {
            tower_sessions::session::Error::Store(_) => Self::RedisUnavailable(
                redis::RedisError::from((redis::ErrorKind::Io, "session store unavailable")),
            ),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// Snake-case error code for a bare status (used when converting responses
/// that did not come from [`AppError`], e.g. axum's own rejections).
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "not_signed_in",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "invalid_request",
        429 => "too_many_requests",
        502 => "bad_gateway",
        503 => "service_unavailable",
        _ if status.is_server_error() => "internal_error",
        _ => "error",
    }
}
