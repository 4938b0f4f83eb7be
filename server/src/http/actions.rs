//! What operators do to a run: `POST .../workflows/{id}/{pause,resume,cancel,retry,clone}`,
//! and `GET .../workflows/{id}/export`. An action the run's engine cannot honour, or
//! that its status does not allow, is refused with 409 and the reason.

use super::{AppError, AppState};
use crate::projector::now_ms;
use app::model::{is_valid_workflow_id, Action, ActionResponse};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

/// Longest cancel reason accepted.
const MAX_REASON: usize = 2 * 1024;

/// The optional body of an action (`{"reason": ...}` for cancel, `{"from_step": N}` for
/// retry).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    from_step: Option<u32>,
}

fn checked_id(id: &str) -> Result<(), AppError> {
    if is_valid_workflow_id(id) {
        Ok(())
    } else {
        Err(AppError::BadRequest(format!("{id:?} is not a workflow id")))
    }
}

pub async fn act(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<ActionResponse>, AppError> {
    let action = Action::parse(&action)
        .ok_or_else(|| AppError::NotFound(format!("no action {action:?}")))?;
    checked_id(&id)?;
    let body: ActionBody = if body.iter().all(u8::is_ascii_whitespace) {
        ActionBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::BadRequest(format!("unreadable body: {e}")))?
    };
    if body.reason.as_ref().is_some_and(|r| r.len() > MAX_REASON) {
        return Err(AppError::BadRequest(format!(
            "reason may be at most {MAX_REASON} bytes"
        )));
    }
    if body.from_step == Some(0) {
        return Err(AppError::BadRequest("from_step counts from 1".into()));
    }
    let row = state
        .store
        .workflow_row(&id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no workflow {id:?}")))?;
    if let Some(reason) = row.refusal(action) {
        return Err(AppError::Conflict(format!(
            "{reason} (engine {})",
            row.engine
        )));
    }
    // Only engines that accept commands declare capabilities; none is connected yet
    // that could take this one.
    Err(AppError::Conflict(format!(
        "engine {} is not connected to Stepline, so it cannot {} {id:?}",
        row.engine,
        action.as_str()
    )))
}

/// The full execution trace as a JSON download.
pub async fn export(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    checked_id(&id)?;
    let trace = state
        .store
        .workflow_trace(&id, now_ms())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no workflow {id:?}")))?;
    let disposition = format!("attachment; filename=\"{id}.json\"");
    Ok(([(header::CONTENT_DISPOSITION, disposition)], Json(trace)).into_response())
}
