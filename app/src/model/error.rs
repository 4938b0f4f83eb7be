//! The one error every answer of the API carries, the REST routes and the pages' server
//! functions alike: a code a client can branch on, a message fit to show, and the HTTP
//! status the code stands for.

use serde::{Deserialize, Serialize};

/// Whose fault a failure was, and what a client may do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    /// Not signed in (no session, no token, or one that no longer works).
    Unauthorized,
    /// Signed in, but the role or scope the request needs is not held.
    Forbidden,
    NotFound,
    Conflict,
    Unprocessable,
    PayloadTooLarge,
    /// Too many attempts (sign-in); the answer says when to try again.
    TooManyRequests,
    /// An engine or the store cannot take the request now; trying later may work.
    Unavailable,
    /// One event of a pushed batch was refused (409 or 422, said by the answer).
    EventRefused,
    /// A fault of ours; the cause is in the server log, never in the answer.
    Internal,
}

impl ErrorKind {
    pub const ALL: [Self; 11] = [
        Self::BadRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::Conflict,
        Self::Unprocessable,
        Self::PayloadTooLarge,
        Self::TooManyRequests,
        Self::Unavailable,
        Self::EventRefused,
        Self::Internal,
    ];

    /// The `error` field of the body.
    pub const fn code(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::Unprocessable => "unprocessable",
            Self::PayloadTooLarge => "payload_too_large",
            Self::TooManyRequests => "too_many_requests",
            Self::Unavailable => "unavailable",
            Self::EventRefused => "event_refused",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status (a refused event's own status may be 409 instead).
    pub const fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::Unprocessable | Self::EventRefused => 422,
            Self::PayloadTooLarge => 413,
            Self::TooManyRequests => 429,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.code() == code)
    }
}

/// The body of every error the API answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
    /// For a refused batch of source events: the (0-based) index of the offending one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_index: Option<usize>,
}

impl ErrorBody {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            error: kind.code().to_owned(),
            message: message.into(),
            event_index: None,
        }
    }

    /// What kind of failure the body names; a code from a newer server is internal.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::from_code(&self.error).unwrap_or(ErrorKind::Internal)
    }
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ErrorBody {}

/// Server functions answer with the same JSON body as the REST API; the server sets the
/// HTTP status from its code. The framework's own failures are named by whose they are:
/// on the server, arguments that cannot be read are the client's mistake; in the browser,
/// a request that does not get through means the server is out of reach.
impl leptos::server_fn::error::FromServerFnError for ErrorBody {
    type Encoder = leptos::server_fn::codec::JsonEncoding;

    fn from_server_fn_error(value: leptos::server_fn::error::ServerFnErrorErr) -> Self {
        use leptos::server_fn::error::ServerFnErrorErr as Framework;
        let kind = match &value {
            Framework::Args(_) | Framework::MissingArg(_) => ErrorKind::BadRequest,
            // Only a server reads a request body; http-body's limit says this when the
            // body is over the size the route takes.
            Framework::Deserialization(text)
                if cfg!(feature = "ssr") && text.contains("length limit exceeded") =>
            {
                ErrorKind::PayloadTooLarge
            }
            Framework::Deserialization(_) if cfg!(feature = "ssr") => ErrorKind::BadRequest,
            Framework::Request(_) => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        };
        Self::new(kind, value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_code() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_code(kind.code()), Some(kind));
            assert!((400..600).contains(&kind.status()));
        }
        assert_eq!(ErrorKind::from_code("teapot"), None);
        assert_eq!(
            ErrorBody::new(ErrorKind::Conflict, "x").kind(),
            ErrorKind::Conflict
        );
    }
}

/// An error with every cause under it: "outer: inner: root".
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
