//! Stepline's server: the store, the projector, the live hub, the engines, and the HTTP
//! surface (REST, WebSocket, server-rendered pages), assembled by [`launch`].
#![forbid(unsafe_code)]
// The app's view types, instantiated here by the routes, nest deeply.
#![recursion_limit = "512"]

pub mod alerts;
pub mod analytics;
pub mod auth;
pub mod config;
pub mod digest;
pub mod engines;
pub mod forecast;
pub mod http;
pub mod live;
pub mod metrics;
pub mod projector;
pub mod retention;
pub mod retry;
pub mod source;
pub mod store;

use app::api::{SharedOperations, SharedReadModel};
use app::{shell, App};
use axum::Router;
use engines::builtin::definition::Definition;
use engines::builtin::{BuiltinEngine, Limits};
use http::AppState;
use leptos::config::LeptosOptions;
use leptos::prelude::{provide_context, use_context};
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use live::LiveHub;
use projector::Projector;
use source::Engines;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use store::Store;
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;

/// What the built-in engine runs: its workflow definitions and its limits, and the
/// instance it runs on (this process: [`source::lease::instance_id`]; several in a test).
#[derive(Debug, Clone)]
pub struct BuiltinSettings {
    pub definitions: Vec<Definition>,
    pub limits: Limits,
    pub instance: String,
}

impl Default for BuiltinSettings {
    fn default() -> Self {
        Self {
            definitions: Vec::new(),
            limits: Limits::default(),
            instance: source::lease::instance_id().to_owned(),
        }
    }
}

/// The running core: what the HTTP surface serves, and the built-in engine's own handle
/// (for the demo workload and benchmarks; HTTP reaches it as any engine, by id).
pub struct Core {
    pub state: AppState,
    pub builtin: Option<BuiltinEngine>,
}

/// Why the core did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// The running core: store, projector, hub and engines, wired together. With
/// `builtin`, the built-in engine starts and resumes the runs it left open.
pub async fn start_core(
    database_url: &str,
    leptos_options: LeptosOptions,
    builtin: Option<BuiltinSettings>,
) -> Result<Core, StartError> {
    let store = Store::open(database_url).await?;
    // Runs that ended before analytics rollups existed are rolled up once, before the
    // projector adds to the rollups.
    if store.rollups_missing().await? {
        let runs = analytics::rebuild(&store).await?;
        tracing::info!(runs, "analytics rolled up from the stored runs");
    }
    // Instances on one PostgreSQL send the same live events under the same seqs, read
    // from the store's shared log; alone on SQLite, the hub numbers its own.
    let hub = if store.shares_live_events() {
        live::shared::shared_hub(&store).await?
    } else {
        Arc::new(LiveHub::starting_now())
    };
    let projector = Projector::spawn(store.clone(), hub.clone());
    let engines = Engines::default();
    let instance = builtin.as_ref().map_or_else(
        || source::lease::instance_id().to_owned(),
        |settings| settings.instance.clone(),
    );
    let builtin = match builtin {
        Some(settings) => {
            let lease = source::LeaseKeeper::keep(
                Arc::new(store.clone()),
                engines::builtin::LEASE.to_owned(),
                settings.instance.clone(),
            );
            let engine = BuiltinEngine::start(
                Arc::new(store.clone()),
                Arc::new(projector.clone()),
                Arc::new(store.clone()),
                settings.definitions,
                settings.limits,
                lease,
            );
            engines.add(Arc::new(engine.clone()));
            Some(engine)
        }
        None => None,
    };
    let health = engines::health::HealthBoard::default();
    // The sources this instance follows, watched for an outage long enough to alert.
    tokio::spawn(alerts::sources::watch(
        store.clone(),
        hub.clone(),
        health.clone(),
    ));
    let state = AppState {
        store,
        projector,
        hub,
        engines,
        health,
        auth: Arc::new(http::AuthRuntime::default()),
        pushing: Default::default(),
        leptos_options,
        instance,
        readiness: http::health::Readiness::ready_now(),
    };
    Ok(Core { state, builtin })
}

/// Takes operators' commands for the pushing `sources` of the `--push-sources` file: each
/// is its own engine (`custom:<name>`), whose commands are POSTed to its webhook or left
/// for it to pull.
pub fn command_pushing_sources(state: &AppState, sources: Vec<engines::commands::PushSource>) {
    for source in sources {
        take_commands_from(state, source, engines::commands::DeclaredIn::File);
    }
}

/// Takes operators' commands for the pushing sources admins declared through the API (kept
/// in the store). One that no longer holds (its secret's variable is gone, its name is now
/// in the file) is skipped with a warning: the others, and Stepline, still start.
pub async fn command_declared_sources(state: &AppState) -> Result<(), store::StoreError> {
    for kept in state.store.declared_sources().await? {
        let source = serde_json::from_str::<engines::commands::Declaration>(&kept.declaration)
            .map_err(|error| error.to_string())
            .and_then(|declaration| declaration.source(|name| std::env::var(name).ok()));
        match source {
            Ok(source) => {
                let delivery = source.delivery.name();
                if take_commands_from(state, source, engines::commands::DeclaredIn::Api).is_some() {
                    tracing::info!(source = %kept.name, delivery, "taking commands for a pushing source an admin declared");
                } else {
                    tracing::warn!(source = %kept.name, "a pushing source an admin declared is also in the file; the file's is used");
                }
            }
            Err(error) => {
                tracing::warn!(source = %kept.name, %error, "a pushing source an admin declared cannot take commands");
            }
        }
    }
    Ok(())
}

/// Takes operators' commands for one pushing `source`, unless its name is taken: its
/// engine, if it now does.
pub fn take_commands_from(
    state: &AppState,
    source: engines::commands::PushSource,
    declared_in: engines::commands::DeclaredIn,
) -> Option<Arc<engines::commands::PushEngine>> {
    let webhook = matches!(source.delivery, engines::commands::Delivery::Webhook { .. });
    let engine = Arc::new(engines::commands::PushEngine::new(
        source,
        Arc::new(state.store.clone()),
        state.hub.clone(),
    ));
    if !state.pushing.add(engine.clone(), declared_in) {
        return None;
    }
    if webhook {
        tokio::spawn(engines::commands::deliver_webhooks(engine.clone()));
    }
    state.engines.add(engine.clone());
    Some(engine)
}

/// Stops taking commands for the pushing source `name` (if it is one).
pub fn stop_taking_commands_from(state: &AppState, name: &str) {
    if let Some(engine) = state.pushing.remove(name) {
        state.engines.remove(&engine.source().engine_id());
    }
}

/// Raises and sends alerts as the alerts file (`--alerts`) says: each alert that fires
/// from now on is written to its channels' outbox, which the instance holding the
/// deliverer's lease empties.
pub fn deliver_alerts(state: &AppState, settings: alerts::settings::AlertSettings) {
    let settings = Arc::new(settings);
    state.store.alert_by(settings.clone());
    let lease = source::LeaseKeeper::keep(
        Arc::new(state.store.clone()),
        alerts::deliver::LEASE.to_owned(),
        state.instance.clone(),
    );
    tokio::spawn(alerts::deliver::deliver(
        state.store.clone(),
        state.hub.clone(),
        settings,
        lease,
    ));
}

/// The lease under which one instance at a time follows the engine `engine_id`.
fn source_lease(state: &AppState, engine_id: &str) -> source::LeaseKeeper {
    source::LeaseKeeper::keep(
        Arc::new(state.store.clone()),
        format!("source:{engine_id}"),
        state.instance.clone(),
    )
}

/// Follows the Temporal `sources` (each namespace its own engine) alongside the others.
pub async fn follow_temporal(
    state: &mut AppState,
    sources: Vec<engines::temporal::SourceConfig>,
) -> Result<Vec<engines::temporal::TemporalSource>, String> {
    let mut started = Vec::new();
    for config in sources {
        let lease = source_lease(state, &config.engine_id());
        let source = engines::temporal::TemporalSource::start(
            config,
            Arc::new(state.store.clone()),
            Arc::new(state.projector.clone()),
            state.health.clone(),
            lease,
        )
        .await?;
        state.engines.add(Arc::new(source.clone()));
        started.push(source);
    }
    Ok(started)
}

/// Follows the Airflow `sources` (each its own engine) alongside the others.
pub fn follow_airflow(
    state: &AppState,
    sources: Vec<engines::airflow::SourceConfig>,
) -> Result<Vec<engines::airflow::AirflowSource>, String> {
    let mut started = Vec::new();
    for config in sources {
        let lease = source_lease(state, &config.engine_id());
        let source = engines::airflow::AirflowSource::start(
            config,
            Arc::new(state.store.clone()),
            Arc::new(state.projector.clone()),
            state.health.clone(),
            lease,
        )?;
        state.engines.add(Arc::new(source.clone()));
        started.push(source);
    }
    Ok(started)
}

/// The console's pages, listed once per process. Listing them renders the whole app with
/// every resource held back by a flag that is one for the process (leptos_server's
/// `SuppressResourceLoad`): a page rendered meanwhile by another router of the same
/// process (the tests build one each) would wait for its data forever.
pub fn page_routes() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The whole HTTP surface: API, live endpoint, pages and static files. Every request is
/// identified first (session cookie or API token); every route then checks what its
/// caller needs ([`http::routes`]); the pages and their server functions read and act as
/// the caller.
pub fn app(state: AppState) -> Router {
    metrics::install();
    let options = state.leptos_options.clone();
    let routes = page_routes();
    let per_request = state.clone();
    Router::new()
        .merge(http::api_router())
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                let caller = use_context::<axum::http::request::Parts>()
                    .and_then(|parts| parts.extensions.get::<auth::Caller>().cloned());
                let reader: SharedReadModel = Arc::new(per_request.reader_for(caller.clone()));
                let operations: SharedOperations =
                    Arc::new(per_request.operations_for(caller.clone()));
                provide_context(reader);
                provide_context(operations);
                provide_context(caller.map(|caller| caller.me()));
                // The page's inline scripts run by this request's nonce, nothing else.
                if let (Some(nonce), Some(response)) = (
                    use_context::<leptos::nonce::Nonce>(),
                    use_context::<leptos_axum::ResponseOptions>(),
                ) {
                    if let Ok(policy) =
                        axum::http::HeaderValue::from_str(&http::page_policy(&nonce.to_string()))
                    {
                        response.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, policy);
                    }
                }
            },
            move || shell(options.clone()),
        )
        .route_layer(axum::middleware::from_fn(http::auth::authorize))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::auth::identify,
        ))
        .layer(axum::middleware::map_response(http::security_headers))
        .layer(axum::middleware::from_fn(http::auth::over_https))
        .layer(axum::middleware::map_response(http::server_fn_status))
        .layer(axum::middleware::map_response(http::log_internal_errors))
        .layer(axum::middleware::from_fn(http::count_request))
        // Failures are logged once, with their cause, by `log_internal_errors`.
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(http::request_span)
                .on_response(http::record_response)
                .on_failure(()),
        )
        .layer(CompressionLayer::new())
        .with_state(state)
}

/// Serves `state` on `listener` within `limits` until `shutdown` resolves. Tests call
/// this on port 0.
pub async fn launch_with_listener(
    listener: TcpListener,
    state: AppState,
    limits: http::ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    launch(
        listener,
        state,
        http::Serving {
            limits,
            ..Default::default()
        },
        shutdown,
    )
    .await
}

/// Serves `state` on `listener` as `serving` says (TLS, trusted proxies, bounds) until
/// `shutdown` resolves.
pub async fn launch(
    listener: TcpListener,
    state: AppState,
    serving: http::Serving,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    http::serve(listener, app(state), serving, shutdown).await
}
