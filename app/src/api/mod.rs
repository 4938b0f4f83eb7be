//! Server functions: thin adapters from the pages onto the server's read model.
//!
//! The server crate provides a [`ReadModel`] in the Leptos context; these functions only
//! read it. They fail with the REST API's [`ErrorBody`] (its code sets the HTTP status:
//! a client's mistake is a 4xx); internal errors never cross to the browser as text:
//! they are logged on the server and the page gets a plain message. Each has a fixed
//! path, `/api/<name>`, the same in every build.

use crate::model::{
    Action, ActionResponse, ErrorBody, ListQuery, WorkflowDetail, WorkflowList, WorkflowStats,
};
// Only the server's side of each function makes errors.
#[cfg(feature = "ssr")]
use crate::model::ErrorKind;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
mod read_model;
#[cfg(feature = "ssr")]
pub use read_model::{Operations, ReadError, ReadModel, SharedOperations, SharedReadModel};

/// One page of the workflow list.
#[server(endpoint = "list_workflows")]
pub async fn list_workflows(query: ListQuery) -> Result<WorkflowList, ErrorBody> {
    let model = read_model::from_context()?;
    model
        .list_workflows(&query)
        .await
        .map_err(read_model::to_client_error)
}

/// The stats line and the tabs' counts.
#[server(endpoint = "get_stats")]
pub async fn get_stats() -> Result<WorkflowStats, ErrorBody> {
    let model = read_model::from_context()?;
    model.stats().await.map_err(read_model::to_client_error)
}

/// The one check of a run's id a server function is given.
#[cfg(feature = "ssr")]
fn checked_id(id: &str) -> Result<(), ErrorBody> {
    if crate::model::is_valid_workflow_id(id) {
        Ok(())
    } else {
        Err(ErrorBody::new(
            ErrorKind::BadRequest,
            crate::model::invalid_workflow_id(id),
        ))
    }
}

/// One workflow with its steps, or `None` when no engine knows the id.
#[server(endpoint = "get_workflow")]
pub async fn get_workflow(id: String) -> Result<Option<WorkflowDetail>, ErrorBody> {
    checked_id(&id)?;
    let model = read_model::from_context()?;
    model
        .workflow_detail(&id)
        .await
        .map_err(read_model::to_client_error)
}

/// An operator's action on a run (the detail page's forms). The answer, or the
/// engine's reason for refusing, is shown to the operator as it is. A form the browser
/// sent itself (JavaScript off) is answered with the run's page; a refusal goes back to
/// the page it came from, in its address, where the page shows it.
#[server(endpoint = "act_on_workflow")]
pub async fn act_on_workflow(
    id: String,
    action: Action,
    reason: Option<String>,
    from_step: Option<u32>,
) -> Result<ActionResponse, ErrorBody> {
    let operations = use_context::<SharedOperations>()
        .ok_or_else(|| ErrorBody::new(ErrorKind::Unavailable, "actions are not available"))?;
    // A reason field left empty means no reason, as when the API is sent none.
    let reason = reason.filter(|reason| !reason.trim().is_empty());
    let answer = operations.act(&id, action, reason, from_step).await?;
    if read_model::is_plain_form_post() {
        // To the run the answer is about (a clone's new run), not back to the page the
        // form was on: that may be the dialog just answered.
        let shown = if crate::model::is_valid_workflow_id(&answer.workflow_id) {
            &answer.workflow_id
        } else {
            &id
        };
        leptos_axum::redirect(&format!("/orchestration/workflows/{shown}"));
    }
    Ok(answer)
}

/// Who is signed in (`None` for a visitor), for the header and for showing only the
/// actions the user may take.
#[server(endpoint = "who_am_i")]
pub async fn who_am_i() -> Result<Option<crate::model::identity::Me>, ErrorBody> {
    Ok(use_context::<Option<crate::model::identity::Me>>().flatten())
}

/// The actions taken on a run, for its page: who, when, why, and how it ended.
#[server(endpoint = "get_audit")]
pub async fn get_audit(id: String) -> Result<Vec<crate::model::identity::AuditEntry>, ErrorBody> {
    checked_id(&id)?;
    let operations = use_context::<SharedOperations>()
        .ok_or_else(|| ErrorBody::new(ErrorKind::Unavailable, "the audit log is not available"))?;
    operations.audit_of(&id).await
}

/// A page of the audit log, newest first (the audit page; operators and admins).
#[server(endpoint = "search_audit")]
pub async fn search_audit(
    query: crate::model::identity::AuditQuery,
) -> Result<crate::model::identity::AuditPage, ErrorBody> {
    if let Some(invalid) = query.invalid() {
        return Err(ErrorBody::new(ErrorKind::BadRequest, invalid));
    }
    let operations = use_context::<SharedOperations>()
        .ok_or_else(|| ErrorBody::new(ErrorKind::Unavailable, "the audit log is not available"))?;
    operations.audit(query).await
}

/// What was asked of a run's engine and how it went (the run's page).
#[server(endpoint = "get_engine_commands")]
pub async fn get_engine_commands(
    id: String,
) -> Result<Vec<crate::model::EngineCommand>, ErrorBody> {
    checked_id(&id)?;
    let model = read_model::from_context()?;
    model
        .engine_commands(&id)
        .await
        .map_err(read_model::to_client_error)?
        .ok_or_else(|| ErrorBody::new(ErrorKind::NotFound, format!("no workflow {id:?}")))
}

/// How the fleet did over a period (the analytics page).
#[server(endpoint = "get_analytics")]
pub async fn get_analytics(
    window: crate::model::analytics::Window,
) -> Result<crate::model::analytics::Analytics, ErrorBody> {
    let model = read_model::from_context()?;
    model
        .analytics(window)
        .await
        .map_err(read_model::to_client_error)
}

/// How long the steps of a workflow type usually take, for the Gantt chart's flags.
#[server(endpoint = "get_step_norms")]
pub async fn get_step_norms(
    workflow_type: String,
) -> Result<Vec<crate::model::analytics::StepNorm>, ErrorBody> {
    if workflow_type.len() > crate::model::MAX_WORKFLOW_TYPE_LEN {
        return Err(ErrorBody::new(
            ErrorKind::BadRequest,
            "the workflow type is too long",
        ));
    }
    let model = read_model::from_context()?;
    model
        .step_norms(&workflow_type)
        .await
        .map_err(read_model::to_client_error)
}

/// A page of the alert inbox (the inbox page, the run page's alerts).
#[server(endpoint = "list_alerts")]
pub async fn list_alerts(
    query: crate::model::alert::AlertQuery,
) -> Result<crate::model::alert::AlertPage, ErrorBody> {
    let model = read_model::from_context()?;
    model
        .alerts(&query)
        .await
        .map_err(read_model::to_client_error)
}

/// How many alerts are open, for the header's badge.
#[server(endpoint = "count_open_alerts")]
pub async fn count_open_alerts() -> Result<u64, ErrorBody> {
    let model = read_model::from_context()?;
    model
        .open_alerts()
        .await
        .map_err(read_model::to_client_error)
}

#[cfg(feature = "ssr")]
fn operations() -> Result<SharedOperations, ErrorBody> {
    use_context::<SharedOperations>()
        .ok_or_else(|| ErrorBody::new(ErrorKind::Unavailable, "actions are not available"))
}

/// An operator acknowledges an alert (the inbox's button).
#[server(endpoint = "acknowledge_alert")]
pub async fn acknowledge_alert(id: i64) -> Result<crate::model::alert::Alert, ErrorBody> {
    let alert = operations()?.acknowledge_alert(id).await?;
    back_to_the_inbox();
    Ok(alert)
}

/// An operator mutes an alert's condition for its workflow type (0 minutes unmutes).
#[server(endpoint = "mute_alert")]
pub async fn mute_alert(id: i64, minutes: u32) -> Result<crate::model::alert::Alert, ErrorBody> {
    let alert = operations()?.mute_alert(id, minutes).await?;
    back_to_the_inbox();
    Ok(alert)
}

/// A form the browser sent itself (JavaScript off) goes back to the inbox.
#[cfg(feature = "ssr")]
fn back_to_the_inbox() {
    if read_model::is_plain_form_post() {
        leptos_axum::redirect("/orchestration/alerts");
    }
}
