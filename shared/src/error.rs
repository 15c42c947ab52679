//! The one JSON error type every response uses: `{"error": "<code>", "message": "..."}`.
//!
//! Handlers return `Result<_, ApiError>`; the production stack's catcher
//! (`routes::json_errors`) gives the same shape to errors salvo produces itself (no
//! route, wrong method, a caught panic).
//!
//! ```
//! use std::time::Duration;
//! use salvo::http::StatusCode;
//! use sse_shared::error::ApiError;
//!
//! let busy = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Wait a moment.")
//!     .retry_after(Duration::from_secs(2)); // and a `Retry-After: 2` header
//! assert_eq!(busy.body(), r#"{"error":"rate-limited","message":"Wait a moment."}"#);
//! ```

use std::time::Duration;

use salvo::http::StatusCode;
use salvo::http::header::{HeaderValue, RETRY_AFTER};
use salvo::prelude::*;
use salvo_oapi::{Components, Content, EndpointOutRegister, Operation, ToSchema};
use serde::Serialize;

use crate::publish_error::PublishError;

/// An error response: status, a stable machine-readable code, a human sentence, and
/// optionally how long to wait before retrying.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A short kebab-case code that clients can match on, e.g. `too-many-streams`.
    pub code: &'static str,
    /// A sentence for humans.
    pub message: String,
    /// Sent as `Retry-After` (whole seconds, rounded up) when set.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// `500 Internal Server Error`, code `internal`: the server's fault, not the client's.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// `400 Bad Request`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// Adds a `Retry-After` header.
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// The JSON body, as sent.
    pub fn body(&self) -> String {
        let body = ErrorBody {
            error: self.code.to_owned(),
            message: self.message.clone(),
        };
        serde_json::to_string(&body).unwrap_or_default()
    }
}

/// The body of every error response, as the OpenAPI document describes it.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// A short kebab-case code that clients can match on, e.g. `too-many-streams`.
    pub error: String,
    /// A sentence for humans.
    pub message: String,
}

/// The error statuses the examples answer with, each an [`ErrorBody`]; an endpoint
/// keeps its own with `#[endpoint(status_codes(..))]`.
impl EndpointOutRegister for ApiError {
    fn register(components: &mut Components, operation: &mut Operation) {
        let schema = ErrorBody::to_schema(components);
        for status in [400, 401, 403, 404, 408, 413, 415, 421, 429, 500, 503] {
            let Ok(status) = StatusCode::from_u16(status) else {
                continue;
            };
            let reason = status.canonical_reason().unwrap_or("Error");
            let about = format!("{reason}: `error` is a code clients can match on (API.md).");
            let response = salvo_oapi::Response::new(about)
                .add_content("application/json", Content::new(schema.clone()));
            operation.responses.insert(status.as_str(), response);
        }
    }
}

impl Scribe for ApiError {
    fn render(self, res: &mut Response) {
        res.status_code(self.status);
        if let Some(wait) = self.retry_after {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            res.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        res.render(Text::Json(self.body()));
    }
}

/// How a failed publish is answered.
impl From<PublishError> for ApiError {
    fn from(failure: PublishError) -> Self {
        match failure {
            PublishError::TooLarge { size, max } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                format!("The event is {size} bytes; the history holds at most {max}."),
            ),
            PublishError::Frame(e) => ApiError::internal(e.to_string()),
            PublishError::Unavailable(e) => {
                tracing::warn!("publish failed: {e}");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "backend-unavailable",
                    "The shared event store (Redis) is unreachable; nothing was published. Try again shortly.",
                )
                .retry_after(Duration::from_secs(1))
            }
        }
    }
}
