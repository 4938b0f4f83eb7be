//! The API's one error type: every failure becomes a JSON body with a status that says
//! whose fault it was. Server faults are logged once here and answered opaquely.

use app::model::{error_chain as chain, ErrorBody, ErrorKind};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    /// Not signed in, or the session or token no longer works.
    #[error("{0}")]
    Unauthorized(String),
    /// Signed in without the role or scope the request needs (the message names it).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Too many attempts: try again after the given seconds.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
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
    /// A fault of ours: the cause is logged (once, by [`log_internal_errors`]), never
    /// sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AppError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::BadRequest(_) => ErrorKind::BadRequest,
            Self::Unauthorized(_) => ErrorKind::Unauthorized,
            Self::Forbidden(_) => ErrorKind::Forbidden,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::Unprocessable(_) => ErrorKind::Unprocessable,
            Self::PayloadTooLarge(_) => ErrorKind::PayloadTooLarge,
            Self::TooManyRequests { .. } => ErrorKind::TooManyRequests,
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::EventRefused { .. } => ErrorKind::EventRefused,
            Self::Internal(_) => ErrorKind::Internal,
        }
    }

    pub(super) fn status(&self) -> StatusCode {
        match self {
            Self::EventRefused { status, .. } => *status,
            other => status_of(other.kind()),
        }
    }

    /// The body the client gets: the whole message for its own mistakes, an opaque one
    /// for ours.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            event_index: match self {
                Self::EventRefused { index, .. } => Some(*index),
                _ => None,
            },
            ..ErrorBody::new(self.kind(), self.public_message())
        }
    }

    /// The body, with the cause of a fault of ours logged once here.
    pub fn into_logged_body(self) -> ErrorBody {
        if let Self::Internal(cause) = &self {
            tracing::error!(cause = %chain(cause.as_ref()), "request failed");
        }
        self.body()
    }
}

fn status_of(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl AppError {
    /// A fault of ours, from whatever error caused it.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(cause.into())
    }

    /// What the client is told: the whole message for its own mistakes, an opaque one
    /// for ours.
    fn public_message(&self) -> String {
        match self {
            Self::Internal(_) => {
                "Something went wrong on our side; the cause is in the server log.".to_owned()
            }
            other => other.to_string(),
        }
    }
}

/// The cause of a 5xx, carried from the handler to [`log_internal_errors`] in the
/// response's extensions (never in its body).
#[derive(Clone)]
struct InternalCause(std::sync::Arc<String>);

/// Logs the cause of every internal error once, with its chain, where the request's
/// span (method, route) says which request it was.
pub async fn log_internal_errors(response: Response) -> Response {
    if let Some(InternalCause(cause)) = response.extensions().get::<InternalCause>() {
        tracing::error!(status = response.status().as_u16(), cause = %cause, "request failed");
    }
    response
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(self.body())).into_response();
        if let Self::TooManyRequests {
            retry_after_secs, ..
        } = &self
        {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(*retry_after_secs),
            );
        }
        if let Self::Unauthorized(_) = &self {
            // RFC 9110: a 401 says how to authenticate.
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"stepline\""),
            );
        }
        if let Self::Internal(cause) = &self {
            let cause = InternalCause(std::sync::Arc::new(chain(cause.as_ref())));
            response.extensions_mut().insert(cause);
        }
        response
    }
}

/// A server function's error answer leaves the framework as a 500 whatever it says: its
/// status is set here from the body's code, so a client's mistake is a 4xx on the pages'
/// paths too.
pub async fn server_fn_status(response: Response) -> Response {
    // A plain form's error is sent back to its page in a redirect, which must stay one.
    if response.status().is_redirection()
        || !response
            .headers()
            .contains_key(leptos::server_fn::error::SERVER_FN_ERROR_HEADER)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Error bodies are a message long; a longer one is ours and stays a 500.
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    if let Ok(error) = serde_json::from_slice::<ErrorBody>(&bytes) {
        parts.status = status_of(error.kind());
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

impl From<crate::auth::Denied> for AppError {
    fn from(denied: crate::auth::Denied) -> Self {
        match denied {
            crate::auth::Denied::NotSignedIn => Self::Unauthorized(
                "sign in, or send an API token (Authorization: Bearer ...)".into(),
            ),
            crate::auth::Denied::Missing(what) => Self::Forbidden(what),
        }
    }
}

impl From<crate::store::StoreError> for AppError {
    fn from(error: crate::store::StoreError) -> Self {
        Self::internal(error)
    }
}

impl From<crate::source::CommandError> for AppError {
    fn from(error: crate::source::CommandError) -> Self {
        use crate::source::CommandError;
        match error {
            CommandError::Refused(message) => Self::Conflict(message),
            CommandError::UnknownWorkflow(_) => Self::NotFound(error.to_string()),
            CommandError::Unavailable(message) => Self::Unavailable(message),
        }
    }
}

/// Every answer of the API is JSON, axum's own rejections included (a body over its
/// limit, a path that is not UTF-8, a method the route does not take): a 4xx or 5xx that
/// is not JSON is rewritten into the error body, with its headers (e.g. `Allow`) kept.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // axum's rejection texts are a line or two; anything longer is not worth repeating.
    let text = axum::body::to_bytes(body, 4 * 1024)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let reason = status.canonical_reason().unwrap_or("error");
    let body = ErrorBody {
        error: ErrorKind::ALL
            .into_iter()
            .find(|kind| kind.status() == status.as_u16())
            .map_or_else(
                || reason.to_ascii_lowercase().replace([' ', '-'], "_"),
                |kind| kind.code().to_owned(),
            ),
        message: if text.is_empty() || status.is_server_error() {
            reason.to_owned()
        } else {
            text
        },
        event_index: None,
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    let json = serde_json::to_vec(&body).unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(json))
}
