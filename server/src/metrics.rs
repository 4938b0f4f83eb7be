//! Prometheus metrics at `/metrics`: what happens is counted where it happens (requests,
//! live events, projector batches, step transitions, deletions, alert deliveries); what
//! is (runs by status, sources' health, live clients) is read when Prometheus scrapes.
//!
//! Every series is named in [`SERIES`]; the Grafana dashboard in `deploy/grafana/` is
//! built on them, and a test checks that each query of the dashboard names one of them.

use crate::http::AppState;
use app::model::{EngineState, SlaStatus, WorkflowStatus};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

pub const HTTP_REQUESTS: &str = "stepline_http_requests_total";
pub const HTTP_DURATION: &str = "stepline_http_request_duration_seconds";
pub const LIVE_CLIENTS: &str = "stepline_live_clients";
pub const LIVE_PUBLISHED: &str = "stepline_live_events_published_total";
pub const LIVE_DROPPED: &str = "stepline_live_events_dropped_total";
pub const PROJECTOR_BATCHES: &str = "stepline_projector_batches_total";
pub const PROJECTOR_EVENTS: &str = "stepline_projector_events_total";
pub const PROJECTOR_DURATION: &str = "stepline_projector_batch_duration_seconds";
pub const RUNS: &str = "stepline_runs";
pub const SLA_RUNS: &str = "stepline_sla_runs_in_progress";
pub const SOURCE_UP: &str = "stepline_source_up";
pub const SOURCE_LAG: &str = "stepline_source_lag_seconds";
pub const BUILTIN_QUEUE: &str = "stepline_builtin_queue_depth";
pub const BUILTIN_TRANSITIONS: &str = "stepline_builtin_step_transitions_total";
pub const RETENTION_DELETED: &str = "stepline_retention_deleted_total";
pub const ALERT_DELIVERIES: &str = "stepline_alert_deliveries_total";
pub const READY: &str = "stepline_ready";

/// Every series Stepline exports, with its help text.
pub const SERIES: &[(&str, &str)] = &[
    (
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route (as matched, not the raw path) and status",
    ),
    (
        HTTP_DURATION,
        "Time to answer an HTTP request (to its headers), by method and route",
    ),
    (LIVE_CLIENTS, "Live (WebSocket) clients connected"),
    (LIVE_PUBLISHED, "Live events published to the clients"),
    (
        LIVE_DROPPED,
        "Live events a client fell too far behind to be sent (it then catches up or resyncs)",
    ),
    (
        PROJECTOR_BATCHES,
        "Batches of engine events the projector handled, by outcome (applied, refused, failed)",
    ),
    (
        PROJECTOR_EVENTS,
        "Engine events in the batches the projector applied",
    ),
    (
        PROJECTOR_DURATION,
        "Time the projector took to apply a batch (one transaction)",
    ),
    (RUNS, "Stored runs, by engine and status"),
    (
        SLA_RUNS,
        "Runs in progress whose SLA is at risk or breached, by engine and SLA status",
    ),
    (
        SOURCE_UP,
        "1 when an engine source answers (or another instance follows it), 0 when not",
    ),
    (
        SOURCE_LAG,
        "Seconds since an engine source this instance follows last answered",
    ),
    (
        BUILTIN_QUEUE,
        "Built-in engine runs waiting for a slot (PENDING)",
    ),
    (
        BUILTIN_TRANSITIONS,
        "Built-in engine step transitions, by what the step did",
    ),
    (
        RETENTION_DELETED,
        "What retention deleted past its age: closed runs, analytics rollup rows",
    ),
    (
        ALERT_DELIVERIES,
        "Alert messages sent to a channel, or tries that failed, by channel and outcome",
    ),
    (
        READY,
        "1 while this instance is ready to serve, 0 while starting or stopping",
    ),
];

/// The upper bounds of the latency histograms' buckets, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's recorder, installed on first use; `None` when another recorder was
/// installed before (then nothing is exported).
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("the buckets are not empty");
            match builder.install_recorder() {
                Ok(handle) => {
                    for (name, help) in SERIES {
                        describe(name, help);
                    }
                    Some(handle)
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics are not exported");
                    None
                }
            }
        })
        .as_ref()
}

fn describe(name: &'static str, help: &'static str) {
    if name.ends_with("_total") {
        metrics::describe_counter!(name, help);
    } else if name.ends_with("_seconds") && name != SOURCE_LAG {
        metrics::describe_histogram!(name, metrics::Unit::Seconds, help);
    } else {
        metrics::describe_gauge!(name, help);
    }
}

/// Starts recording: what is counted before the recorder exists is lost, so the server
/// installs it before it starts anything.
pub fn install() {
    let _ = handle();
}

/// Runs an HTTP request was answered: its route as the router matched it (ids stay out of
/// the labels), its status and how long it took.
pub fn http_request(method: &str, route: &str, status: u16, took: Duration) {
    let (method, route) = (method.to_owned(), route.to_owned());
    metrics::counter!(HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route)
        .record(took.as_secs_f64());
}

/// The projector handled a batch of `events` in `took`, with `outcome`.
pub fn projector_batch(outcome: &'static str, events: usize, took: Duration) {
    metrics::counter!(PROJECTOR_BATCHES, "outcome" => outcome).increment(1);
    if outcome == "applied" {
        metrics::counter!(PROJECTOR_EVENTS).increment(events as u64);
    }
    metrics::histogram!(PROJECTOR_DURATION).record(took.as_secs_f64());
}

/// How many step transitions of each kind a batch of the built-in engine makes (none for
/// other engines' batches).
pub fn step_transitions(batch: &crate::source::Batch) -> BTreeMap<&'static str, u64> {
    use crate::source::Change;
    let mut kinds = BTreeMap::new();
    if batch.engine != crate::engines::builtin::ENGINE_ID {
        return kinds;
    }
    for event in &batch.events {
        let kind = match &event.change {
            Change::StepScheduled(_) => "scheduled",
            Change::StepStarted { .. } => "started",
            Change::StepAttemptFailed { .. } => "attempt_failed",
            Change::StepCompleted { .. } => "completed",
            Change::StepFailed { .. } => "failed",
            Change::StepSkipped { .. } => "skipped",
            Change::StepWaiting { .. } => "waiting",
            Change::StepCancelled { .. } => "cancelled",
            _ => continue,
        };
        *kinds.entry(kind).or_default() += 1;
    }
    kinds
}

/// Counts the step transitions of an applied batch.
pub fn count_step_transitions(kinds: BTreeMap<&'static str, u64>) {
    for (kind, n) in kinds {
        metrics::counter!(BUILTIN_TRANSITIONS, "to" => kind).increment(n);
    }
}

/// The text Prometheus scrapes: the counters as they stand, and the gauges read now.
pub async fn render(state: &AppState) -> String {
    let Some(handle) = handle() else {
        return String::new();
    };
    sample(state).await;
    handle.render()
}

/// Sets the gauges that are read rather than counted.
async fn sample(state: &AppState) {
    metrics::gauge!(LIVE_CLIENTS).set(state.hub.clients() as f64);
    metrics::gauge!(READY).set(if state.readiness.is_ready() { 1.0 } else { 0.0 });
    match state.store.run_counts().await {
        Ok(counts) => {
            // Every status of every engine seen since the start gets its series, zero when
            // no run is in it: a series that stopped being set would keep its last value.
            static ENGINES: std::sync::Mutex<std::collections::BTreeSet<String>> =
                std::sync::Mutex::new(std::collections::BTreeSet::new());
            let mut engines = ENGINES.lock().unwrap_or_else(|p| p.into_inner());
            let mut runs: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
            let mut sla: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
            for count in &counts {
                engines.insert(count.engine.clone());
            }
            for engine in engines.iter() {
                for status in WorkflowStatus::ALL {
                    runs.insert((engine.clone(), status.as_str()), 0);
                }
                for watched in [SlaStatus::AtRisk, SlaStatus::Breached] {
                    sla.insert((engine.clone(), watched.as_str()), 0);
                }
            }
            drop(engines);
            for count in counts {
                *runs
                    .entry((count.engine.clone(), count.status.as_str()))
                    .or_default() += count.runs;
                if !count.status.is_terminal()
                    && matches!(count.sla, SlaStatus::AtRisk | SlaStatus::Breached)
                {
                    *sla.entry((count.engine, count.sla.as_str())).or_default() += count.runs;
                }
            }
            let queued = runs
                .get(&(
                    crate::engines::builtin::ENGINE_ID.to_owned(),
                    WorkflowStatus::Pending.as_str(),
                ))
                .copied()
                .unwrap_or(0);
            for ((engine, status), n) in runs {
                metrics::gauge!(RUNS, "engine" => engine, "status" => status).set(n as f64);
            }
            for ((engine, status), n) in sla {
                metrics::gauge!(SLA_RUNS, "engine" => engine, "sla" => status).set(n as f64);
            }
            metrics::gauge!(BUILTIN_QUEUE).set(queued as f64);
        }
        Err(error) => tracing::warn!(%error, "cannot count the runs for the metrics"),
    }
    for (health, heard) in state.health.with_last_heard() {
        let up = health.state == EngineState::Ok;
        metrics::gauge!(SOURCE_UP, "engine" => health.engine.clone()).set(if up {
            1.0
        } else {
            0.0
        });
        if let Some(heard) = heard {
            metrics::gauge!(SOURCE_LAG, "engine" => health.engine)
                .set(heard.elapsed().as_secs_f64());
        }
    }
}
