//! The API's one error type: every failure becomes a JSON body with a status that says
//! whose fault it was. Server faults are logged once here and answered opaquely.

use app::model::ErrorBody;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// An engine or the store cannot take the request now; trying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// One event of a pushed batch was refused; nothing of the batch was applied.
    #[error("event {index}: {message}")]
    EventRefused {
        index: usize,
        status: StatusCode,
        message: String,
    },
    /// A fault of ours: the cause is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::EventRefused { status, .. } => (*status, "event_refused"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl AppError {
    /// What the client is told: the whole message for its own mistakes, an opaque one
    /// for ours (whose cause is logged here, once).
    pub fn public_message(&self) -> String {
        match self {
            Self::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                "Something went wrong on our side; the cause is in the server log.".to_owned()
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = self.public_message();
        (
            status,
            Json(ErrorBody {
                error: code.to_owned(),
                message,
                event_index: match &self {
                    Self::EventRefused { index, .. } => Some(*index),
                    _ => None,
                },
            }),
        )
            .into_response()
    }
}

impl From<crate::store::StoreError> for AppError {
    fn from(error: crate::store::StoreError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<crate::engines::CommandError> for AppError {
    fn from(error: crate::engines::CommandError) -> Self {
        use crate::engines::CommandError;
        match error {
            CommandError::Refused(message) => Self::Conflict(message),
            CommandError::UnknownWorkflow(_) => Self::NotFound(error.to_string()),
            CommandError::Unavailable(message) => Self::Unavailable(message),
        }
    }
}
