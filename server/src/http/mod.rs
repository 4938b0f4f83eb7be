//! The REST API (`/api/platform/orchestration/...`) and the live endpoint, as an axum
//! router over the shared application state.

pub mod actions;
mod admin;
pub mod alerts;
pub mod auth;
mod commands;
mod error;
mod gantt;
mod headers;
pub mod health;
mod ingest;
pub mod openapi;
pub mod origin;
pub mod routes;
mod serve;
mod sso;
mod workflows;

pub use error::{log_internal_errors, server_fn_status, AppError};
pub use headers::{page_policy, security_headers};
pub use origin::{tls_settings, Https, TrustedProxies};
pub use serve::{serve, ConnectionLimits, Serving};

use crate::auth::{Caller, Need};
use crate::live::{ws, LiveHub, SnapshotSource};
use crate::projector::Projector;
use crate::source::now_ms;
use crate::source::Engines;
use crate::store::Store;
use app::api::{Operations, ReadError, ReadModel};
use app::model::alert::{Alert, AlertPage, AlertQuery};
use app::model::identity::{AuditEntry, AuditPage, AuditQuery, Grants, Sight};
use app::model::{Action, ActionResponse, ErrorBody};
use app::model::{ListQuery, Workflow, WorkflowDetail, WorkflowList};
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::{any, delete, get, patch, post, MethodRouter};
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
    /// Sessions' lifetimes and the sign-in throttle.
    pub auth: Arc<AuthRuntime>,
    /// The declared pushing sources whose engines take commands, by source name.
    pub pushing: crate::engines::commands::PushEngines,
    pub leptos_options: LeptosOptions,
    /// This instance as the holder of leases (see `source::lease`).
    pub instance: String,
    /// Whether this instance takes traffic (`/readyz`).
    pub readiness: Arc<health::Readiness>,
}

/// What signing in and sessions need while serving.
#[derive(Default)]
pub struct AuthRuntime {
    pub settings: crate::auth::AuthSettings,
    pub throttle: crate::auth::SignInThrottle,
    /// The OpenID Connect providers people may sign in through.
    pub providers: crate::auth::oidc::Providers,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl AppState {
    /// The read side as Stepline itself sees it: every engine.
    pub fn reader(&self) -> StoreReader {
        self.reader_for(None)
    }

    /// The read side for pages, server functions and snapshots, as `caller` may see it
    /// (`None`: everything; for Stepline's own use, such as the live hub's snapshots of
    /// a caller already checked).
    pub fn reader_for(&self, caller: Option<Caller>) -> StoreReader {
        StoreReader {
            store: self.store.clone(),
            hub: self.hub.clone(),
            health: self.health.clone(),
            pushing: self.pushing.clone(),
            engines: self.engines.clone(),
            sight: caller.as_ref().map_or(Sight::Everything, Grants::sight),
            caller,
        }
    }
}

/// The API routes (without the pages), each with its authorization rule from
/// [`routes::API`]: adding a route that has none stops the router from being built.
pub fn api_router() -> Router<AppState> {
    use routes::*;
    let with_rule =
        |router: Router<AppState>, path: &'static str, methods: MethodRouter<AppState>| {
            assert!(
                API.iter().any(|rule| rule.path == path),
                "the route {path} has no authorization rule in http::routes::API"
            );
            router.route(path, methods)
        };
    let mut router = Router::new();
    for (path, methods) in [
        (
            WORKFLOWS,
            get(workflows::list)
                .post(actions::start)
                .layer(DefaultBodyLimit::max(actions::MAX_START_BYTES)),
        ),
        (WORKFLOW, get(workflows::detail)),
        (WORKFLOW_ACTION, post(actions::act)),
        (WORKFLOW_EXPORT, get(actions::export)),
        (WORKFLOW_COMMANDS, get(commands::of_run)),
        (
            SOURCES,
            get(admin::sources)
                .post(admin::declare_source)
                .layer(DefaultBodyLimit::max(16 * 1024)),
        ),
        (SOURCE, delete(admin::remove_source)),
        (SOURCE_COMMANDS, get(commands::pull)),
        (SOURCE_COMMAND, post(commands::answer)),
        (WORKFLOW_GANTT, get(gantt::svg)),
        (
            EVENTS,
            post(ingest::push_events).layer(DefaultBodyLimit::max(
                crate::engines::ingest::MAX_BATCH_BYTES,
            )),
        ),
        (ANALYTICS, get(workflows::analytics)),
        (ENGINES, get(workflows::engines)),
        (LEASES, get(workflows::leases)),
        (AUDIT, get(admin::audit)),
        (ALERTS, get(alerts::list)),
        (ALERT_ACKNOWLEDGE, post(alerts::acknowledge)),
        (
            ALERT_MUTE,
            post(alerts::mute).layer(DefaultBodyLimit::max(1024)),
        ),
        (HEALTH, get(health::health)),
        (LIVEZ, get(health::livez)),
        (READYZ, get(health::readyz)),
        (METRICS, get(health::metrics)),
        (OPENAPI, get(openapi::serve)),
        (
            SIGN_IN,
            post(auth::sign_in).layer(DefaultBodyLimit::max(16 * 1024)),
        ),
        (SIGN_IN_PAGE, get(auth::sign_in_page)),
        (SSO_START, get(sso::start)),
        (SSO_CALLBACK, get(sso::callback)),
        (SIGN_OUT, post(auth::sign_out)),
        (ME, get(auth::me)),
        (USERS, get(admin::users).post(admin::create_user)),
        (USER, patch(admin::update_user)),
        (TOKENS, get(admin::tokens).post(admin::create_token)),
        (TOKEN, delete(admin::revoke_token)),
        // Unknown API paths answer in JSON, not with the app's HTML 404 page.
        (UNKNOWN_API, any(api_not_found)),
        (LIVE, get(ws::handler)),
    ] {
        router = with_rule(router, path, methods);
    }
    router.layer(axum::middleware::map_response(error::json_errors))
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

/// Counts each request for the metrics, by method, route as matched (a path no route
/// matches counts as `(unmatched)`: a client's made-up paths cannot multiply the series)
/// and status, with its latency.
pub async fn count_request(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::Method;
    let method = match *request.method() {
        Method::GET
        | Method::POST
        | Method::PUT
        | Method::PATCH
        | Method::DELETE
        | Method::HEAD
        | Method::OPTIONS => request.method().as_str().to_owned(),
        _ => "other".to_owned(),
    };
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "(unmatched)".to_owned(), |path| path.as_str().to_owned());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    crate::metrics::http_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
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

/// Operators' actions for the pages' server functions: the REST API's rules, as the
/// signed-in caller.
#[derive(Clone)]
pub struct PageOperations {
    state: AppState,
    caller: Option<Caller>,
}

impl AppState {
    pub fn operations_for(&self, caller: Option<Caller>) -> PageOperations {
        PageOperations {
            state: self.clone(),
            caller,
        }
    }
}

impl PageOperations {
    /// Who asks, or why they may not `what` without signing in.
    fn signed_in(&self, what: &str) -> Result<&Caller, ErrorBody> {
        self.caller
            .as_ref()
            .ok_or_else(|| AppError::Unauthorized(format!("sign in to {what}")).into_logged_body())
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
        let caller = self.caller.as_ref().ok_or_else(|| {
            AppError::Unauthorized("sign in to act on runs".into()).into_logged_body()
        })?;
        actions::perform(&self.state, caller, id, action, reason, from_step)
            .await
            .map_err(AppError::into_logged_body)
    }

    async fn audit(&self, query: AuditQuery) -> Result<AuditPage, ErrorBody> {
        // What the REST API's audit route asks of its callers.
        Need::Operate
            .check(self.caller.as_ref())
            .map_err(|denied| AppError::from(denied).into_logged_body())?;
        self.state
            .store
            .audit(&query)
            .await
            .map_err(|error| AppError::from(error).into_logged_body())
    }

    async fn acknowledge_alert(&self, id: i64) -> Result<Alert, ErrorBody> {
        let caller = self.signed_in("acknowledge alerts")?;
        alerts::acknowledge_as(&self.state, caller, id)
            .await
            .map_err(AppError::into_logged_body)
    }

    async fn mute_alert(&self, id: i64, minutes: u32) -> Result<Alert, ErrorBody> {
        let caller = self.signed_in("mute alerts")?;
        let request = Ok(app::model::alert::MuteRequest { minutes });
        alerts::mute_as(&self.state, caller, id, request)
            .await
            .map_err(AppError::into_logged_body)
    }

    async fn audit_of(&self, id: &str) -> Result<Vec<AuditEntry>, ErrorBody> {
        let caller = self.caller.as_ref().ok_or_else(|| {
            AppError::Unauthorized("sign in to read the audit log".into()).into_logged_body()
        })?;
        actions::audit_of(&self.state, caller, id)
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
    pushing: crate::engines::commands::PushEngines,
    engines: Engines,
    /// Whose reads these are, and which engines' runs they may see.
    caller: Option<Caller>,
    sight: Sight,
}

impl StoreReader {
    /// Refuses a read that covers every engine (analytics) to a caller who may read only
    /// some.
    fn require_everything(&self, what: &str) -> Result<(), ReadError> {
        match (&self.sight, &self.caller) {
            (Sight::Engines(_), Some(caller)) => Err(ReadError::Forbidden(format!(
                "{what} cover every engine; {} may read only some (the viewer role on every engine is needed)",
                caller.actor
            ))),
            _ => Ok(()),
        }
    }
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
            .list_workflows_seen(query, now_ms(), self.sight.patterns())
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
        self.require_everything("analytics")?;
        crate::analytics::analytics(&self.store, window, now_ms())
            .await
            .map_err(|e| ReadError::Store(e.into()))
    }

    async fn step_norms(
        &self,
        workflow_type: &str,
    ) -> Result<Vec<app::model::analytics::StepNorm>, ReadError> {
        self.require_everything("step norms")?;
        let window =
            app::model::analytics::Window::Period(app::model::analytics::STEP_NORMS_WINDOW);
        crate::analytics::step_norms(&self.store, workflow_type, window, now_ms())
            .await
            .map_err(|e| ReadError::Store(e.into()))
    }

    async fn alerts(&self, query: &AlertQuery) -> Result<AlertPage, ReadError> {
        if let Some(invalid) = query.invalid() {
            return Err(ReadError::BadQuery(app::model::QueryError::BadWorkflowId(
                invalid,
            )));
        }
        self.store
            .alerts(query, self.sight.patterns(), now_ms())
            .await
            .map_err(|e| ReadError::Store(e.into()))
    }

    async fn open_alerts(&self) -> Result<u64, ReadError> {
        self.store
            .open_alerts(self.sight.patterns(), now_ms())
            .await
            .map_err(|e| ReadError::Store(e.into()))
    }

    async fn stats(&self) -> Result<app::model::WorkflowStats, ReadError> {
        let mut stats = self
            .store
            .stats_seen(now_ms(), self.sight.patterns())
            .await
            .map_err(|e| ReadError::Store(e.into()))?;
        stats.engines = self.health.snapshot();
        Ok(stats)
    }

    async fn engine_commands(
        &self,
        id: &str,
    ) -> Result<Option<Vec<app::model::EngineCommand>>, ReadError> {
        let store_failed = |e: crate::store::StoreError| ReadError::Store(e.into());
        let Some(run) = self
            .store
            .workflow_row(id)
            .await
            .map_err(store_failed)?
            .filter(|row| self.sight.sees(&row.engine))
        else {
            return Ok(None);
        };
        commands::of(&self.store, &self.pushing, &run)
            .await
            .map(Some)
            .map_err(store_failed)
    }

    async fn workflow_detail(&self, id: &str) -> Result<Option<WorkflowDetail>, ReadError> {
        let detail = self
            .store
            .workflow_detail(id, now_ms())
            .await
            .map_err(|e| ReadError::Store(e.into()))?;
        // A run of an engine the caller may not read is as unknown to them.
        let detail = detail.filter(|detail| self.sight.sees(&detail.engine));
        if let Some(detail) = &detail {
            self.engines.opened(&detail.engine, id);
        }
        Ok(detail)
    }
}

#[async_trait::async_trait]
impl SnapshotSource for StoreReader {
    async fn rows(&self, ids: &[String]) -> Result<Vec<Workflow>, String> {
        let mut rows = self
            .store
            .workflows_by_id(ids, now_ms())
            .await
            .map_err(|e| e.to_string())?;
        rows.retain(|row| self.sight.sees(&row.engine));
        Ok(rows)
    }
}
