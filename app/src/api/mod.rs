//! Server functions: thin adapters from the pages onto the server's read model.
//!
//! The server crate provides a [`ReadModel`] in the Leptos context; these functions only
//! read it. Internal errors never cross to the browser as text: they are logged on the
//! server and the page gets a plain message.

use crate::model::{
    Action, ActionResponse, ListQuery, WorkflowDetail, WorkflowList, WorkflowStats,
};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
mod read_model;
#[cfg(feature = "ssr")]
pub use read_model::{Operations, ReadError, ReadModel, SharedOperations, SharedReadModel};

/// One page of the workflow list.
#[server]
pub async fn list_workflows(query: ListQuery) -> Result<WorkflowList, ServerFnError> {
    let model = read_model::from_context()?;
    model
        .list_workflows(&query)
        .await
        .map_err(read_model::to_client_error)
}

/// The stats line and the tabs' counts.
#[server]
pub async fn get_stats() -> Result<WorkflowStats, ServerFnError> {
    let model = read_model::from_context()?;
    model.stats().await.map_err(read_model::to_client_error)
}

/// One workflow with its steps, or `None` when no engine knows the id.
#[server]
pub async fn get_workflow(id: String) -> Result<Option<WorkflowDetail>, ServerFnError> {
    let model = read_model::from_context()?;
    model
        .workflow_detail(&id)
        .await
        .map_err(read_model::to_client_error)
}

/// An operator's action on a run (the detail page's buttons). The answer, or the
/// engine's reason for refusing, is shown to the operator as it is.
#[server]
pub async fn act_on_workflow(
    id: String,
    action: Action,
    reason: Option<String>,
    from_step: Option<u32>,
) -> Result<ActionResponse, ServerFnError> {
    let operations = use_context::<SharedOperations>()
        .ok_or_else(|| ServerFnError::new("actions are not available"))?;
    operations
        .act(&id, action, reason, from_step)
        .await
        .map_err(ServerFnError::new)
}

/// How the fleet did over a period (the analytics page).
#[server]
pub async fn get_analytics(
    window: crate::model::analytics::Window,
) -> Result<crate::model::analytics::Analytics, ServerFnError> {
    let model = read_model::from_context()?;
    model
        .analytics(window)
        .await
        .map_err(read_model::to_client_error)
}

/// How long the steps of a workflow type usually take, for the Gantt chart's flags.
#[server]
pub async fn get_step_norms(
    workflow_type: String,
) -> Result<Vec<crate::model::analytics::StepNorm>, ServerFnError> {
    if workflow_type.len() > crate::model::MAX_WORKFLOW_TYPE_LEN {
        return Err(ServerFnError::new("the workflow type is too long"));
    }
    let model = read_model::from_context()?;
    model
        .step_norms(&workflow_type)
        .await
        .map_err(read_model::to_client_error)
}
