//! Liveness (`/livez`: the process answers) and readiness (`/readyz`: the store is open
//! and migrated and the sources have started, and the instance is not shutting down), in
//! the shape load balancers and Kubernetes probe; and `/metrics` for Prometheus.

use super::{AppError, AppState};
use crate::auth::Caller;
use app::model::identity::{Grants, Sight};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

/// Where the instance is in its life: starting, ready, or shutting down. Shared by the
/// start-up, the probes and the shutdown.
#[derive(Debug, Default)]
pub struct Readiness {
    phase: AtomicU8,
    /// What start-up is doing or waiting for, as the probe tells it.
    waiting_for: Mutex<String>,
}

const STARTING: u8 = 0;
const READY: u8 = 1;
const STOPPING: u8 = 2;

/// What `/readyz` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ReadyBody {
    /// `starting`, `ready` or `stopping`.
    pub status: String,
    /// While starting, what it is waiting for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Readiness {
    /// An instance that is starting, with what it does first.
    pub fn starting(detail: &str) -> Arc<Self> {
        let readiness = Arc::new(Self::default());
        readiness.waiting_for(detail);
        readiness
    }

    /// An instance that is ready already (tests that build the core themselves).
    pub fn ready_now() -> Arc<Self> {
        let readiness = Self::default();
        readiness.phase.store(READY, Ordering::Release);
        Arc::new(readiness)
    }

    /// Start-up now does or waits for `detail` (shown by the probe).
    pub fn waiting_for(&self, detail: &str) {
        *self.waiting_for.lock().unwrap_or_else(|p| p.into_inner()) = detail.to_owned();
    }

    /// Start-up is done: the instance takes traffic.
    pub fn ready(&self) {
        // Never back from stopping: a signal during start-up wins.
        let _ = self
            .phase
            .compare_exchange(STARTING, READY, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Shutdown began: load balancers should send no more traffic.
    pub fn stopping(&self) {
        self.phase.store(STOPPING, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.phase.load(Ordering::Acquire) == READY
    }

    pub fn body(&self) -> ReadyBody {
        match self.phase.load(Ordering::Acquire) {
            READY => ReadyBody {
                status: "ready".into(),
                detail: None,
            },
            STARTING => ReadyBody {
                status: "starting".into(),
                detail: Some(
                    self.waiting_for
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone(),
                ),
            },
            _ => ReadyBody {
                status: "stopping".into(),
                detail: None,
            },
        }
    }

    /// The `/readyz` answer: 200 when ready, else 503 saying why (never cached).
    pub fn answer(&self) -> Response {
        let status = if self.is_ready() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (
            status,
            [(header::CACHE_CONTROL, "no-store")],
            Json(self.body()),
        )
            .into_response()
    }
}

/// What `/livez` answers while the process serves at all.
pub fn alive() -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "status": "alive" })),
    )
        .into_response()
}

/// `GET /api/health`: the oldest probe, kept for what already asks it.
#[utoipa::path(
    get,
    path = crate::http::routes::HEALTH,
    tag = "operations",
    security(()),
    responses((status = 200, description = "The process serves (the body is `ok`)", content_type = "text/plain", body = String))
)]
pub async fn health() -> &'static str {
    "ok"
}

/// `GET /livez`.
#[utoipa::path(
    get,
    path = crate::http::routes::LIVEZ,
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "The process serves", body = serde_json::Value)
    )
)]
pub async fn livez() -> Response {
    alive()
}

/// `GET /readyz`.
#[utoipa::path(
    get,
    path = crate::http::routes::READYZ,
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "Ready: the store is open and migrated, the sources started", body = ReadyBody),
        (status = 503, description = "Starting (and what it waits for), or stopping", body = ReadyBody)
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    state.readiness.answer()
}

/// `GET /metrics`: every engine's figures, so only for a caller who may read every
/// engine (an API token of the reader role and no engine scope, for Prometheus).
#[utoipa::path(
    get,
    path = crate::http::routes::METRICS,
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus' text format", content_type = "text/plain", body = String),
        crate::http::openapi::Denied
    )
)]
pub async fn metrics(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, AppError> {
    if !matches!(caller.sight(), Sight::Everything) {
        return Err(AppError::Forbidden(
            "the metrics cover every engine: they need a caller who may read every engine".into(),
        ));
    }
    let text = crate::metrics::render(&state).await;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response())
}

/// What serves while the instance starts: the probes answer (alive; not ready, and why)
/// and everything else is a 503 saying so, until the whole app is in place; then every
/// request goes through to it.
#[derive(Clone)]
pub struct Gate {
    readiness: Arc<Readiness>,
    app: Arc<std::sync::OnceLock<axum::Router>>,
}

impl Gate {
    pub fn new(readiness: Arc<Readiness>) -> Self {
        Self {
            readiness,
            app: Arc::default(),
        }
    }

    /// The router to serve from the first moment.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .fallback(through_gate)
            .with_state(self.clone())
    }

    /// The app is in place: requests go to it from now on.
    pub fn open(&self, app: axum::Router) {
        let _ = self.app.set(app);
    }
}

async fn through_gate(State(gate): State<Gate>, request: axum::extract::Request) -> Response {
    use tower::ServiceExt;
    if let Some(app) = gate.app.get() {
        return match app.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
    }
    match request.uri().path() {
        super::routes::LIVEZ => alive(),
        super::routes::READYZ => gate.readiness.answer(),
        _ => {
            let detail = gate.readiness.body().detail.unwrap_or_default();
            let mut response = AppError::Unavailable(format!(
                "Stepline is starting ({detail}); try again shortly"
            ))
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            response
        }
    }
}
