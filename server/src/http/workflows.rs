//! `GET .../workflows`, `GET .../workflows/{id}` and `GET .../analytics`.

use super::{AppError, AppState};
use app::api::{ReadError, ReadModel};
use app::model::analytics::{Analytics, Window};
use app::model::{is_valid_workflow_id, ListQuery, WorkflowDetail, WorkflowList};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;

fn read_error(error: ReadError) -> AppError {
    match error {
        ReadError::BadQuery(e) => AppError::BadRequest(e.to_string()),
        ReadError::Store(cause) => AppError::internal(cause),
    }
}

pub async fn list(
    State(state): State<AppState>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<WorkflowList>, AppError> {
    let Query(params) = params.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let query = ListQuery::from_params(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    state
        .reader()
        .list_workflows(&query)
        .await
        .map(Json)
        .map_err(read_error)
}

pub async fn detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<WorkflowDetail>, AppError> {
    if !is_valid_workflow_id(&id) {
        return Err(AppError::BadRequest(format!(
            "{id:?} is not a workflow id (1 to 128 characters of A-Z a-z 0-9 . _ : -)"
        )));
    }
    state
        .reader()
        .workflow_detail(&id)
        .await
        .map_err(read_error)?
        .map(Json)
        .ok_or_else(|| AppError::NotFound(format!("no workflow {id:?}")))
}

/// `GET .../analytics?period=1h|24h|7d` (24h when absent), or `?from=...&to=...`.
pub async fn analytics(
    State(state): State<AppState>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Analytics>, AppError> {
    let Query(params) = params.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let window = Window::from_params(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(AppError::BadRequest)?;
    state
        .reader()
        .analytics(window)
        .await
        .map(Json)
        .map_err(read_error)
}

/// `GET .../engines`: the engines Stepline follows and whether it reaches them.
pub async fn engines(State(state): State<AppState>) -> Json<Vec<app::model::EngineHealth>> {
    Json(state.health.snapshot())
}
