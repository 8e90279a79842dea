//! The one error type of the HTTP edge. It becomes `{"error":{"code","message"}}` with a status;
//! internal details go to the log, never to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hearth_proto::ErrorCode;

/// An error answered over HTTP.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Safe to show to a person.
    pub message: String,
}

impl ApiError {
    /// A 400 for a request that is not acceptable.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: ErrorCode::InvalidRequest,
            message: message.into(),
        }
    }

    /// A 404 for a session that does not exist.
    pub fn unknown_session() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: ErrorCode::UnknownSession,
            message: "no such session".into(),
        }
    }

    /// A 404 for anything else that does not exist.
    pub fn not_found() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: ErrorCode::NotFound,
            message: "not found".into(),
        }
    }

    /// A 500. `detail` is logged, not sent.
    pub fn internal(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        tracing::error!(%detail, "internal error");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: ErrorCode::Internal,
            message: "internal error; see the server log".into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "code": self.code, "message": self.message }
        });
        (self.status, Json(body)).into_response()
    }
}
