//! What operators do to runs: start one (`POST .../workflows`), act on one
//! (`POST .../workflows/{id}/{pause,resume,cancel,retry,clone}`), and export one
//! (`GET .../workflows/{id}/export`). An action the run's engine cannot honour, or that
//! its status does not allow, is refused with 409 and the reason.

use super::{AppError, AppState};
use crate::auth::{refusal_on_engine, Caller};
use crate::source::{limits, now_ms, Command, CommandOutcome, StartRequest};
use crate::store::identity::NewAuditEntry;
use app::model::identity::{AuditEntry, AuditQuery, Grants, Role};
use app::model::{is_valid_workflow_id, Action, ActionResponse, Priority};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::Value;
use tracing::Instrument;

/// Largest start request (its input is stored and shown with every step).
pub const MAX_START_BYTES: usize = 256 * 1024;

/// Longest cancel reason accepted.
const MAX_REASON: usize = 2 * 1024;

/// The optional body of an action (`{"reason": ...}` for cancel, `{"from_step": N}` for
/// retry).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    from_step: Option<u32>,
}

/// The body of `POST .../workflows`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StartBody {
    workflow_type: String,
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    priority: Option<Priority>,
    #[serde(default)]
    triggered_by: Option<String>,
    #[serde(default)]
    trigger_type: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

fn answer(outcome: CommandOutcome) -> ActionResponse {
    ActionResponse {
        status: "success".into(),
        workflow_id: outcome.workflow_id,
        new_status: outcome.new_status,
        message: outcome.message,
    }
}

/// Starts a run of a workflow type of the built-in engine.
#[utoipa::path(
    post,
    operation_id = "start_workflow",
    path = crate::http::routes::WORKFLOWS,
    tag = "actions",
    request_body = StartBody,
    responses(
        (status = 201, description = "Started (or queued as PENDING)", body = app::model::ActionResponse),
        crate::http::openapi::Invalid,
        crate::http::openapi::Denied,
        crate::http::openapi::Conflicting,
        crate::http::openapi::TooLarge
    )
)]
pub async fn start(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<(StatusCode, Json<ActionResponse>), AppError> {
    let body: StartBody = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("unreadable body: {e}")))?;
    let engine = state.engines.starter().ok_or_else(|| {
        AppError::Conflict("no engine that starts runs is running, so no run can be started".into())
    })?;
    if let Some(refusal) = refusal_on_engine(&caller, Role::Operator, engine.id()) {
        return Err(AppError::Forbidden(refusal));
    }
    if body.tags.len() > limits::TAGS {
        return Err(AppError::BadRequest(format!(
            "at most {} tags",
            limits::TAGS
        )));
    }
    let too_long = body.tags.iter().any(|t| t.len() > limits::TAG)
        || [&body.triggered_by, &body.trigger_type]
            .into_iter()
            .flatten()
            .any(|v| v.len() > limits::NAME);
    if too_long {
        return Err(AppError::BadRequest(format!(
            "tags may be at most {} bytes, triggered_by and trigger_type {}",
            limits::TAG,
            limits::NAME
        )));
    }
    let workflow_type = body.workflow_type.clone();
    let outcome = engine
        .start(StartRequest {
            workflow_type: body.workflow_type,
            input: body
                .input
                .unwrap_or_else(|| Value::Object(Default::default())),
            priority: body.priority,
            // Who started it, unless the request says on whose behalf.
            triggered_by: body.triggered_by.or_else(|| Some(caller.actor.clone())),
            trigger_type: body.trigger_type.or_else(|| Some("api".into())),
            tags: body.tags,
        })
        .await;
    let said = outcome
        .as_ref()
        .map(|_| format!("a run of {workflow_type} started"))
        .map_err(ToString::to_string);
    let started = outcome
        .as_ref()
        .ok()
        .map(|started| started.workflow_id.as_str());
    audit_action(&state, &caller, "start", started, None, &said).await;
    Ok((StatusCode::CREATED, Json(answer(outcome?))))
}

/// The one check of a workflow id taken from a request path.
pub(super) fn checked_id(id: &str) -> Result<(), AppError> {
    if is_valid_workflow_id(id) {
        Ok(())
    } else {
        Err(AppError::BadRequest(app::model::invalid_workflow_id(id)))
    }
}

#[utoipa::path(
    post,
    operation_id = "act_on_workflow",
    path = crate::http::routes::WORKFLOW_ACTION,
    tag = "actions",
    params(("id" = String, Path, description = "The run's id"), ("action" = String, Path, description = "pause, resume, cancel, retry, clone or terminate")),
    request_body = Option<ActionBody>,
    responses(
        (status = 200, description = "Done, or begun (PAUSING, CANCELLING); for clone, the new run", body = app::model::ActionResponse),
        crate::http::openapi::Invalid,
        crate::http::openapi::Denied,
        crate::http::openapi::Missing,
        crate::http::openapi::Conflicting,
        crate::http::openapi::Unavailable
    )
)]
pub async fn act(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<ActionResponse>, AppError> {
    let action = Action::parse(&action)
        .ok_or_else(|| AppError::NotFound(format!("no action {action:?}")))?;
    let body: ActionBody = if body.iter().all(u8::is_ascii_whitespace) {
        ActionBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::BadRequest(format!("unreadable body: {e}")))?
    };
    perform(&state, &caller, &id, action, body.reason, body.from_step)
        .await
        .map(Json)
}

/// Does an action to a run as `caller`: the REST API and the pages' server function both
/// come here, so they answer alike, and every attempt on a run the caller may read is
/// written to the audit log with its outcome.
pub async fn perform(
    state: &AppState,
    caller: &Caller,
    id: &str,
    action: Action,
    reason: Option<String>,
    from_step: Option<u32>,
) -> Result<ActionResponse, AppError> {
    checked_id(id)?;
    let row = state
        .store
        .workflow_row(id)
        .await?
        .filter(|row| caller.sight().sees(&row.engine))
        .ok_or_else(|| AppError::NotFound(format!("no workflow {id:?}")))?;
    let outcome = act_on(state, caller, &row, action, reason.clone(), from_step).await;
    let said = outcome
        .as_ref()
        .map(|answer| answer.message.clone())
        .map_err(|error| error.body().message);
    audit_action(state, caller, action.as_str(), Some(id), reason, &said).await;
    outcome
}

/// Writes an operator's action and how it ended to the audit log.
async fn audit_action(
    state: &AppState,
    caller: &Caller,
    action: &str,
    workflow_id: Option<&str>,
    reason: Option<String>,
    outcome: &Result<String, String>,
) {
    let (outcome, detail) = match outcome {
        Ok(message) => ("ok", message.clone()),
        Err(message) => ("refused", message.clone()),
    };
    super::auth::record(
        state,
        NewAuditEntry {
            workflow_id: workflow_id.map(str::to_owned),
            reason,
            outcome: outcome.into(),
            detail: Some(detail.chars().take(MAX_REASON).collect()),
            ..super::auth::entry_by(caller, action)
        },
    )
    .await;
}

/// The actions taken on a run the caller may read, newest first.
pub async fn audit_of(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Vec<AuditEntry>, AppError> {
    checked_id(id)?;
    let visible = state
        .store
        .workflow_row(id)
        .await?
        .is_some_and(|row| caller.sight().sees(&row.engine));
    if !visible {
        return Err(AppError::NotFound(format!("no workflow {id:?}")));
    }
    let page = state
        .store
        .audit(&AuditQuery {
            workflow_id: Some(id.to_owned()),
            limit: Some(RUN_AUDIT_SHOWN),
            ..AuditQuery::default()
        })
        .await?;
    Ok(page.entries)
}

/// How many of a run's audit entries its page shows.
const RUN_AUDIT_SHOWN: u32 = 50;

async fn act_on(
    state: &AppState,
    caller: &Caller,
    row: &crate::store::rows::WorkflowRow,
    action: Action,
    reason: Option<String>,
    from_step: Option<u32>,
) -> Result<ActionResponse, AppError> {
    let id = row.id.as_str();
    if let Some(refusal) = refusal_on_engine(caller, Role::Operator, &row.engine) {
        return Err(AppError::Forbidden(refusal));
    }
    if reason.as_ref().is_some_and(|r| r.len() > MAX_REASON) {
        return Err(AppError::BadRequest(format!(
            "reason may be at most {MAX_REASON} bytes"
        )));
    }
    if from_step == Some(0) {
        return Err(AppError::BadRequest("from_step counts from 1".into()));
    }
    if let Some(refusal) = row.refusal(action) {
        return Err(AppError::Conflict(format!(
            "{refusal} (engine {})",
            row.engine
        )));
    }
    let engine = state.engines.get(&row.engine).ok_or_else(|| {
        AppError::Conflict(format!(
            "engine {} is not connected to Stepline, so it cannot {} {id:?}",
            row.engine,
            action.as_str()
        ))
    })?;
    let command = match action {
        Action::Pause => Command::Pause,
        Action::Resume => Command::Resume,
        Action::Cancel => Command::Cancel { reason },
        Action::Retry => Command::Retry { from_step },
        Action::Clone => Command::Clone {
            triggered_by: Some(caller.actor.clone()),
        },
        Action::Terminate => Command::Terminate { reason },
    };
    let span = tracing::info_span!("engine_command", engine = %row.engine, workflow = %id, action = action.as_str());
    let outcome = engine
        .command(id, command, &caller.actor)
        .instrument(span)
        .await?;
    Ok(answer(outcome))
}

/// The full execution trace as a JSON download.
#[utoipa::path(
    get,
    operation_id = "export_workflow",
    path = crate::http::routes::WORKFLOW_EXPORT,
    tag = "workflows",
    params(("id" = String, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The run as a JSON file to save (its detail with every step and log line kept)", body = app::model::WorkflowDetail),
        crate::http::openapi::Denied,
        crate::http::openapi::Missing
    )
)]
pub async fn export(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    checked_id(&id)?;
    let trace = state
        .store
        .workflow_trace(&id, now_ms())
        .await?
        .filter(|trace| caller.sight().sees(&trace.engine))
        .ok_or_else(|| AppError::NotFound(format!("no workflow {id:?}")))?;
    let disposition = format!("attachment; filename=\"{id}.json\"");
    Ok(([(header::CONTENT_DISPOSITION, disposition)], Json(trace)).into_response())
}
