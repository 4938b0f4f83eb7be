//! `GET .../workflows`, `GET .../workflows/{id}` and `GET .../analytics`.

use super::{AppError, AppState};
use crate::auth::Caller;
use crate::source::now_ms;
use app::api::{ReadError, ReadModel};
use app::model::analytics::{Analytics, Window};
use app::model::identity::Grants;
use app::model::{ListQuery, StepsPage, WorkflowDetail, WorkflowList};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};

pub(super) fn read_error(error: ReadError) -> AppError {
    match error {
        ReadError::BadQuery(e) => AppError::BadRequest(e.to_string()),
        ReadError::Forbidden(message) => AppError::Forbidden(message),
        ReadError::Store(cause) => AppError::internal(cause),
    }
}

#[utoipa::path(
    get,
    operation_id = "list_workflows",
    path = crate::http::routes::WORKFLOWS,
    tag = "workflows",
    params(("tab" = Option<String>, Query, description = "active, pending, completed (newest 100), failed or slow"), ("status" = Option<String>, Query, description = "Statuses, comma-separated (RUNNING,PENDING)"), ("type" = Option<String>, Query, description = "A workflow type"), ("engine" = Option<String>, Query, description = "An engine id (builtin, temporal:prod:orders, ...)"), ("q" = Option<String>, Query, description = "Text searched in id, type, trigger, tags and the engine's own id (3 characters or more)"), ("from" = Option<String>, Query, description = "Started on or after (a date, 2026-11-01, or an RFC 3339 time)"), ("to" = Option<String>, Query, description = "Started before"), ("sort" = Option<String>, Query, description = "newest (the default) or oldest"), ("limit" = Option<u32>, Query, description = "Runs in the page (50 by default, at most 200)"), ("cursor" = Option<String>, Query, description = "Where the page starts: the previous page's next_cursor"), ("will_breach" = Option<bool>, Query, description = "Only running runs forecast to miss their SLA")),
    responses(
        (status = 200, description = "A page of runs, newest first, with the counts above the list", body = app::model::WorkflowList),
        crate::http::openapi::Invalid,
        crate::http::openapi::Denied
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<WorkflowList>, AppError> {
    let Query(params) = params.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let query = ListQuery::from_params(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    state
        .reader_for(Some(caller))
        .list_workflows(&query)
        .await
        .map(Json)
        .map_err(read_error)
}

/// `GET .../workflows/{id}?steps_from=N&steps_limit=M`: the run with one page of its
/// steps (from step 1, [`StepsPage::DEFAULT_LIMIT`] of them, when not said).
#[utoipa::path(
    get,
    operation_id = "get_workflow",
    path = crate::http::routes::WORKFLOW,
    tag = "workflows",
    params(("id" = String, Path, description = "The run's id"), ("steps_from" = Option<u32>, Query, description = "The first step of the page (1 by default)"), ("steps_limit" = Option<u32>, Query, description = "Steps in the page (1,000 by default, at most 5,000)")),
    responses(
        (status = 200, description = "The run with its steps (a page of them), attempts, log tails, branches and metadata", body = app::model::WorkflowDetail),
        crate::http::openapi::Invalid,
        crate::http::openapi::Denied,
        crate::http::openapi::Missing
    )
)]
pub async fn detail(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<WorkflowDetail>, AppError> {
    super::actions::checked_id(&id)?;
    let Query(params) = params.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let (mut from, mut limit) = (1, StepsPage::DEFAULT_LIMIT);
    for (key, value) in &params {
        let number = || {
            value.parse::<u32>().map_err(|_| {
                AppError::BadRequest(format!("{key} must be a whole number, not {value:?}"))
            })
        };
        match key.as_str() {
            "steps_from" => from = number()?,
            "steps_limit" => limit = number()?,
            _ => {}
        }
    }
    if !(1..=StepsPage::MAX_LIMIT).contains(&limit) {
        return Err(AppError::BadRequest(format!(
            "steps_limit must be between 1 and {}",
            StepsPage::MAX_LIMIT
        )));
    }
    let detail = state
        .store
        .workflow_detail_page(&id, now_ms(), from, limit)
        .await?
        // A run of an engine the caller may not read is as unknown to them.
        .filter(|detail| caller.sight().sees(&detail.engine))
        .ok_or_else(|| AppError::NotFound(format!("no workflow {id:?}")))?;
    state.engines.opened(&detail.engine, &id);
    Ok(Json(detail))
}

/// `GET .../analytics?period=1h|24h|7d` (24h when absent), or `?from=...&to=...`.
#[utoipa::path(
    get,
    operation_id = "get_analytics",
    path = crate::http::routes::ANALYTICS,
    tag = "analytics",
    params(("period" = Option<String>, Query, description = "1h, 24h (the default) or 7d")),
    responses(
        (status = 200, description = "Runs that ended in the period: counts, durations, success rates, slowest steps", body = app::model::analytics::Analytics),
        crate::http::openapi::Invalid,
        crate::http::openapi::Denied
    )
)]
pub async fn analytics(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Analytics>, AppError> {
    let Query(params) = params.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let window = Window::from_params(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(AppError::BadRequest)?;
    state
        .reader_for(Some(caller))
        .analytics(window)
        .await
        .map(Json)
        .map_err(read_error)
}

/// `GET .../engines`: the engines Stepline follows and whether it reaches them.
#[utoipa::path(
    get,
    operation_id = "list_engines",
    path = crate::http::routes::ENGINES,
    tag = "operations",
    responses(
        (status = 200, description = "The followed engines and how each is doing", body = Vec<app::model::EngineHealth>),
        crate::http::openapi::Denied
    )
)]
pub async fn engines(State(state): State<AppState>) -> Json<Vec<app::model::EngineHealth>> {
    Json(state.health.snapshot())
}

/// The instance that answers, and every lease: which instance follows each engine source
/// and drives the built-in engine.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Leases {
    pub instance: String,
    pub leases: Vec<Lease>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    pub taken_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

#[utoipa::path(
    get,
    operation_id = "list_leases",
    path = crate::http::routes::LEASES,
    tag = "operations",
    responses(
        (status = 200, description = "The instance that answers, and which instance holds each lease", body = Leases),
        crate::http::openapi::Denied
    )
)]
pub async fn leases(State(state): State<AppState>) -> Result<Json<Leases>, AppError> {
    let leases = state
        .store
        .leases()
        .await?
        .into_iter()
        .map(|lease| Lease {
            name: lease.name,
            holder: lease.holder,
            taken_at: crate::source::to_datetime(lease.taken_ms),
            expires_at: crate::source::to_datetime(lease.expires_ms),
        })
        .collect();
    Ok(Json(Leases {
        instance: state.instance.clone(),
        leases,
    }))
}
