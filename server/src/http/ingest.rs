//! `POST .../events`: where a custom (in-house) engine pushes batches of normalised
//! source events, natively or as CloudEvents (see [`cloudevents`]). A batch is applied
//! atomically; a refused event is named by its index.

use super::{AppError, AppState};
use crate::auth::Caller;
use crate::engines::cloudevents::{self, Unreadable};
use crate::engines::ingest;
use crate::source::{ApplyError, Batch, Refusal, Sink, SourceEvent};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

/// A pushed batch, before each event is checked (each is one `SourceEvent`).
#[derive(Deserialize, utoipa::ToSchema)]
struct RawBatch {
    /// The pushing source's name (the caller's token must have `ingest:<source>`).
    source: String,
    /// At most 1,000 events (and 5 MiB), applied all or none, in order.
    #[schema(value_type = Vec<crate::source::SourceEvent>)]
    events: Vec<serde_json::Value>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub status: &'static str,
    pub source: String,
    pub applied: usize,
}

#[utoipa::path(
    post,
    path = crate::http::routes::EVENTS,
    tag = "events",
    request_body = RawBatch,
    responses(
        (status = 200, description = "Every event applied", body = Accepted),
        crate::http::openapi::Invalid,
        crate::http::openapi::Denied,
        crate::http::openapi::Conflicting,
        crate::http::openapi::TooLarge,
        crate::http::openapi::Refused,
        crate::http::openapi::Unavailable
    ),
    description = "Custom engines push what happens to their runs: a batch of events of one source, applied in order, all or none. Each event names its run (workflow_id), when it happened (at, RFC 3339) and its type: workflow_started, step_scheduled, step_started, step_attempt_failed, step_completed, step_output, step_failed, step_skipped, step_cancelled, step_waiting (what a step waits for: timer, retry_backoff, signal, queue_slot or human_input, until when), workflow_status_changed, log_lines. Text too long is cut and says so; a refused event answers 409 or 422 with its event_index. Needs a token with ingest:<source>."
)]
pub async fn push_events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Accepted>, AppError> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge(format!(
            "a batch may be at most {} bytes; send several",
            ingest::MAX_BATCH_BYTES
        )),
        _ => AppError::BadRequest(e.body_text()),
    })?;
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let raw = if media_type == cloudevents::SINGLE || media_type == cloudevents::BATCH {
        let read = cloudevents::read(&media_type, &body).map_err(|error| match error {
            Unreadable::Body(message) => AppError::BadRequest(format!("CloudEvents: {message}")),
            Unreadable::Event { index, message } => AppError::EventRefused {
                index,
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: format!("CloudEvent: {message}"),
            },
        })?;
        RawBatch {
            source: read.source,
            events: read.events,
        }
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            AppError::BadRequest(format!(
                "expected {{\"source\": \"...\", \"events\": [...]}}: {e}"
            ))
        })?
    };
    let source = ingest::engine_id(&raw.source).map_err(AppError::BadRequest)?;
    // Only a token for this very source may write its runs.
    if !caller.may_ingest(&raw.source) {
        return Err(AppError::Forbidden(format!(
            "{} may not push events as {:?}: a token with the scope ingest:{} is needed",
            caller.actor, raw.source, raw.source
        )));
    }
    if raw.events.is_empty() {
        return Err(AppError::Unprocessable("the batch has no events".into()));
    }
    if raw.events.len() > ingest::MAX_BATCH_EVENTS {
        return Err(AppError::PayloadTooLarge(format!(
            "a batch may hold at most {} events, this one has {}",
            ingest::MAX_BATCH_EVENTS,
            raw.events.len()
        )));
    }
    let events = raw
        .events
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            serde_json::from_value::<SourceEvent>(value).map_err(|e| AppError::EventRefused {
                index,
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: format!("malformed: {e}"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let applied = state
        .projector
        .apply(Batch {
            engine: source,
            // What the source's engine is declared to honour, if it takes commands.
            capabilities: state
                .pushing
                .get(&raw.source)
                .map_or_else(ingest::capabilities, |engine| engine.source().capabilities),
            events,
            positions: Vec::new(),
            held: None,
        })
        .await
        .map_err(|error| match error {
            ApplyError::Refused {
                index,
                workflow_id: _,
                refusal,
            } => AppError::EventRefused {
                index,
                status: match refusal {
                    Refusal::AlreadyExists(_) | Refusal::OutOfOrder(_) => StatusCode::CONFLICT,
                    Refusal::UnknownWorkflow(_) | Refusal::Invalid(_) => {
                        StatusCode::UNPROCESSABLE_ENTITY
                    }
                },
                message: refusal.to_string(),
            },
            other => AppError::internal(other),
        })?;
    Ok(Json(Accepted {
        status: "accepted",
        source: raw.source,
        applied,
    }))
}
