//! Server functions: thin adapters from the pages onto the server's read model.
//!
//! The server crate provides a [`ReadModel`] in the Leptos context; these functions only
//! read it. Internal errors never cross to the browser as text: they are logged on the
//! server and the page gets a plain message.

use crate::model::{ListQuery, WorkflowDetail, WorkflowList};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
mod read_model;
#[cfg(feature = "ssr")]
pub use read_model::{ReadError, ReadModel, SharedReadModel};

/// One page of the workflow list.
#[server]
pub async fn list_workflows(query: ListQuery) -> Result<WorkflowList, ServerFnError> {
    let model = read_model::from_context()?;
    model
        .list_workflows(&query)
        .await
        .map_err(read_model::to_client_error)
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
