//! The REST API (`/api/platform/orchestration/...`) and the live endpoint, as an axum
//! router over the shared application state.

pub mod actions;
mod error;
mod gantt;
mod ingest;
mod serve;
mod workflows;

pub use error::{log_internal_errors, server_fn_status, AppError};
pub use serve::{serve, ConnectionLimits};

use crate::live::{ws, LiveHub, SnapshotSource};
use crate::projector::Projector;
use crate::source::now_ms;
use crate::source::Engines;
use crate::store::Store;
use app::api::{Operations, ReadError, ReadModel};
use app::model::{Action, ActionResponse, ErrorBody};
use app::model::{ListQuery, Workflow, WorkflowDetail, WorkflowList};
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::{any, get, post};
use axum::Router;
use leptos::config::LeptosOptions;
use std::sync::Arc;

/// Everything a request handler may need.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub projector: Projector,
    pub hub: Arc<LiveHub>,
    /// The engines that take commands, by the engine id stored on their runs.
    pub engines: Engines,
    /// How the followed engines (Temporal sources) are doing.
    pub health: crate::engines::health::HealthBoard,
    pub leptos_options: LeptosOptions,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl FromRef<AppState> for ws::LiveEndpoint {
    fn from_ref(state: &AppState) -> Self {
        ws::LiveEndpoint {
            hub: state.hub.clone(),
            snapshots: Arc::new(state.reader()),
        }
    }
}

impl AppState {
    /// The read side for pages, server functions and snapshots.
    pub fn reader(&self) -> StoreReader {
        StoreReader {
            store: self.store.clone(),
            hub: self.hub.clone(),
            health: self.health.clone(),
        }
    }
}

/// The API routes (without the pages).
pub fn api_router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/platform/orchestration/workflows",
            get(workflows::list)
                .post(actions::start)
                .layer(DefaultBodyLimit::max(actions::MAX_START_BYTES)),
        )
        .route(
            "/api/platform/orchestration/workflows/{id}",
            get(workflows::detail),
        )
        .route(
            "/api/platform/orchestration/workflows/{id}/{action}",
            post(actions::act),
        )
        .route(
            "/api/platform/orchestration/workflows/{id}/export",
            get(actions::export),
        )
        .route(
            "/api/platform/orchestration/workflows/{id}/gantt.svg",
            get(gantt::svg),
        )
        .route(
            "/api/platform/orchestration/events",
            post(ingest::push_events).layer(DefaultBodyLimit::max(
                crate::engines::ingest::MAX_BATCH_BYTES,
            )),
        )
        .route(
            "/api/platform/orchestration/analytics",
            get(workflows::analytics),
        )
        .route(
            "/api/platform/orchestration/engines",
            get(workflows::engines),
        )
        .route("/api/health", get(|| async { "ok" }))
        // Unknown API paths answer in JSON, not with the app's HTML 404 page.
        .route("/api/{*rest}", any(api_not_found))
        .route("/ws/orchestration", get(ws::handler))
        .layer(axum::middleware::map_response(error::json_errors))
}

/// The span of a request: method, matched route (not the raw path: ids stay out of span
/// names), and the status and latency [`record_response`] adds; everything the request
/// logs sits in it.
pub fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("(unmatched)", |path| path.as_str());
    tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    )
}

pub fn record_response(
    response: &axum::http::Response<axum::body::Body>,
    latency: std::time::Duration,
    span: &tracing::Span,
) {
    span.record("status", response.status().as_u16());
    span.record("latency_ms", latency.as_millis() as u64);
    tracing::debug!("answered");
}

async fn api_not_found() -> AppError {
    AppError::NotFound("no such API route".into())
}

/// Operators' actions for the pages' server functions: the REST API's rules.
#[derive(Clone)]
pub struct PageOperations {
    state: AppState,
}

impl AppState {
    pub fn operations(&self) -> PageOperations {
        PageOperations {
            state: self.clone(),
        }
    }
}

#[async_trait::async_trait]
impl Operations for PageOperations {
    async fn act(
        &self,
        id: &str,
        action: Action,
        reason: Option<String>,
        from_step: Option<u32>,
    ) -> Result<ActionResponse, ErrorBody> {
        actions::perform(&self.state, id, action, reason, from_step)
            .await
            .map_err(AppError::into_logged_body)
    }
}

/// The read model over the store, stamped with the live hub's position.
#[derive(Clone)]
pub struct StoreReader {
    store: Store,
    hub: Arc<LiveHub>,
    health: crate::engines::health::HealthBoard,
}

#[async_trait::async_trait]
impl ReadModel for StoreReader {
    async fn list_workflows(&self, query: &ListQuery) -> Result<WorkflowList, ReadError> {
        // The pages' server function hands over a deserialized query: bound it here too.
        query.validate()?;
        // The seq is taken before reading, so replaying from it covers every change the
        // page might not show; a change seen twice is harmless (rows are upserted).
        let seq = self.hub.current_seq();
        let mut list = self
            .store
            .list_workflows(query, now_ms())
            .await
            .map_err(|e| ReadError::Store(e.into()))?;
        list.seq = Some(seq);
        list.stats.engines = self.health.snapshot();
        Ok(list)
    }

    async fn analytics(
        &self,
        window: app::model::analytics::Window,
    ) -> Result<app::model::analytics::Analytics, ReadError> {
        crate::analytics::analytics(&self.store, window, now_ms())
            .await
            .map_err(|e| ReadError::Store(e.into()))
    }

    async fn step_norms(
        &self,
        workflow_type: &str,
    ) -> Result<Vec<app::model::analytics::StepNorm>, ReadError> {
        let window =
            app::model::analytics::Window::Period(app::model::analytics::STEP_NORMS_WINDOW);
        crate::analytics::step_norms(&self.store, workflow_type, window, now_ms())
            .await
            .map_err(|e| ReadError::Store(e.into()))
    }

    async fn stats(&self) -> Result<app::model::WorkflowStats, ReadError> {
        let mut stats = self
            .store
            .stats(now_ms())
            .await
            .map_err(|e| ReadError::Store(e.into()))?;
        stats.engines = self.health.snapshot();
        Ok(stats)
    }

    async fn workflow_detail(&self, id: &str) -> Result<Option<WorkflowDetail>, ReadError> {
        self.store
            .workflow_detail(id, now_ms())
            .await
            .map_err(|e| ReadError::Store(e.into()))
    }
}

#[async_trait::async_trait]
impl SnapshotSource for StoreReader {
    async fn rows(&self, ids: &[String]) -> Result<Vec<Workflow>, String> {
        self.store
            .workflows_by_id(ids, now_ms())
            .await
            .map_err(|e| e.to_string())
    }
}
