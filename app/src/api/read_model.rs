//! The read side the server crate implements for server functions and SSR.

use crate::model::{
    Action, ActionResponse, ErrorBody, ErrorKind, ListQuery, QueryError, WorkflowDetail,
    WorkflowList, WorkflowStats,
};
use leptos::prelude::*;
use std::sync::Arc;

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The client asked for something malformed: safe to show.
    #[error(transparent)]
    BadQuery(#[from] QueryError),
    /// The caller may not read this (the message says what is missing): safe to show.
    #[error("{0}")]
    Forbidden(String),
    /// The store failed: logged (with its causes), never shown.
    #[error("the read model failed")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Queries of the read model, implemented by the server's store.
#[async_trait::async_trait]
pub trait ReadModel: Send + Sync + 'static {
    async fn list_workflows(&self, query: &ListQuery) -> Result<WorkflowList, ReadError>;
    async fn workflow_detail(&self, id: &str) -> Result<Option<WorkflowDetail>, ReadError>;
    async fn stats(&self) -> Result<WorkflowStats, ReadError>;
    async fn analytics(
        &self,
        window: crate::model::analytics::Window,
    ) -> Result<crate::model::analytics::Analytics, ReadError>;
    /// What was asked of run `id`'s engine (an in-house engine's commands), newest
    /// first; `None` for a run the reader cannot see.
    async fn engine_commands(
        &self,
        id: &str,
    ) -> Result<Option<Vec<crate::model::EngineCommand>>, ReadError>;

    /// A page of the alert inbox, of the engines the reader may see.
    async fn alerts(
        &self,
        query: &crate::model::alert::AlertQuery,
    ) -> Result<crate::model::alert::AlertPage, ReadError>;

    /// How many alerts are open (the header's badge).
    async fn open_alerts(&self) -> Result<u64, ReadError>;

    /// How long the steps of `workflow_type` usually take (the Gantt chart's yardstick).
    async fn step_norms(
        &self,
        workflow_type: &str,
    ) -> Result<Vec<crate::model::analytics::StepNorm>, ReadError>;
}

/// The read model as put into the Leptos context.
pub type SharedReadModel = Arc<dyn ReadModel>;

/// Operators' actions, implemented by the server with the same rules as its REST API.
#[async_trait::async_trait]
pub trait Operations: Send + Sync + 'static {
    /// Does `action` to run `id`; the error is the REST API's answer (404 unknown run,
    /// 409 refused, ...), its message fit for the operator.
    async fn act(
        &self,
        id: &str,
        action: Action,
        reason: Option<String>,
        from_step: Option<u32>,
    ) -> Result<ActionResponse, ErrorBody>;

    /// A page of the whole audit log, newest first (operators and admins only).
    async fn audit(
        &self,
        query: crate::model::identity::AuditQuery,
    ) -> Result<crate::model::identity::AuditPage, ErrorBody>;

    /// Acknowledges alert `id` (operators of its engine).
    async fn acknowledge_alert(&self, id: i64) -> Result<crate::model::alert::Alert, ErrorBody>;

    /// Mutes alert `id`'s condition for its workflow type for `minutes` (0 unmutes).
    async fn mute_alert(
        &self,
        id: i64,
        minutes: u32,
    ) -> Result<crate::model::alert::Alert, ErrorBody>;

    /// The actions taken on run `id` (who, when, why, how it ended), newest first.
    async fn audit_of(
        &self,
        id: &str,
    ) -> Result<Vec<crate::model::identity::AuditEntry>, ErrorBody>;
}

/// The operations as put into the Leptos context.
pub type SharedOperations = Arc<dyn Operations>;

/// Whether the server function being run was sent by a plain HTML form (the browser
/// itself, without JavaScript), which expects to be sent on to a page.
pub(super) fn is_plain_form_post() -> bool {
    use_context::<http::request::Parts>().is_some_and(|request| {
        request
            .headers
            .get(http::header::ACCEPT)
            .and_then(|accept| accept.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"))
    })
}

pub(super) fn from_context() -> Result<SharedReadModel, ErrorBody> {
    use_context::<SharedReadModel>()
        .ok_or_else(|| ErrorBody::new(ErrorKind::Unavailable, "the read model is not available"))
}

pub(super) fn to_client_error(error: ReadError) -> ErrorBody {
    match error {
        ReadError::BadQuery(e) => ErrorBody::new(ErrorKind::BadRequest, e.to_string()),
        ReadError::Forbidden(message) => ErrorBody::new(ErrorKind::Forbidden, message),
        ReadError::Store(cause) => {
            tracing::error!(cause = %crate::model::error_chain(cause.as_ref()), "read model failure");
            ErrorBody::new(
                ErrorKind::Internal,
                "the workflow store could not be read; see the server log",
            )
        }
    }
}
