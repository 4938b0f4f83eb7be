//! What calling an engine's HTTP API can go wrong with, the same for every engine Stepline
//! polls or long-polls (Temporal, Airflow).

/// Why a call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// No answer (connection refused, timeout, TLS): the server is down or unreachable.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The server answered with an error (`{"code", "message"}`).
    #[error("HTTP {status}: {message}")]
    Refused { status: u16, message: String },
    /// The server answered something that is not the JSON we expect.
    #[error("unreadable answer: {0}")]
    Unreadable(String),
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server was slow or briefly failing (no answer in time, a 5xx): the same call
    /// may well go through a moment later.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable(_) => true,
            Self::Refused { status, .. } => *status >= 500,
            Self::Unreadable(_) => false,
        }
    }
}

/// Sends `request` and reads the engine's answer ([`read`]).
pub async fn send<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
) -> Result<T, ClientError> {
    let response = request
        .send()
        .await
        .map_err(|e| ClientError::Unreachable(e.to_string()))?;
    read(response).await
}

/// An engine's answer: its JSON when it succeeded, else its refusal with its message.
pub async fn read<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, ClientError> {
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| ClientError::Unreachable(e.to_string()))?;
    if !status.is_success() {
        return Err(ClientError::Refused {
            status: status.as_u16(),
            message: error_message(&text),
        });
    }
    serde_json::from_str(&text).map_err(|e| ClientError::Unreadable(e.to_string()))
}

/// The message of an engine's error answer: its `message` (Temporal) or `detail`
/// (Airflow) field, else the start of the body.
pub fn error_message(body: &str) -> String {
    let answer = serde_json::from_str::<serde_json::Value>(body).ok();
    let field = |name: &str| {
        answer.as_ref().and_then(|v| v.get(name)).map(|v| match v {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        })
    };
    field("message")
        .or_else(|| field("detail"))
        .unwrap_or_else(|| body.chars().take(300).collect())
}
