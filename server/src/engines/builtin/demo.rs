//! The demo workload (`--demo`): keeps starting runs of the demo workflow types so the
//! console always shows active, queued, completed, failed and slow ones. The runs are
//! real runs of the built-in engine; only their steps' work is simulated.

use super::BuiltinEngine;
use crate::source::StartRequest;
use app::model::Priority;
use serde_json::json;
use std::time::Duration;

/// How the generator paces itself.
#[derive(Debug, Clone, Copy)]
pub struct DemoSettings {
    /// Runs kept open (running or queued) at once.
    pub open_runs: usize,
    /// Time between two checks (one start at most per type each time).
    pub every: Duration,
}

impl Default for DemoSettings {
    fn default() -> Self {
        Self {
            open_runs: 24,
            every: Duration::from_millis(1_500),
        }
    }
}

const CUSTOMERS: [&str; 8] = [
    "acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka",
];
const OPERATORS: [&str; 4] = [
    "admin@company.com",
    "ops@company.com",
    "scheduler",
    "api:signup-service",
];

/// Runs the generator until the engine stops.
pub async fn run(engine: BuiltinEngine, settings: DemoSettings) {
    let types = engine.workflow_types();
    if types.is_empty() {
        tracing::warn!("demo: no workflow types are defined; nothing to start");
        return;
    }
    let mut tick = tokio::time::interval(settings.every);
    loop {
        tick.tick().await;
        let Ok(census) = engine.census().await else {
            return;
        };
        let open: usize = census.running.values().chain(census.pending.values()).sum();
        if open >= settings.open_runs {
            continue;
        }
        let workflow_type = &types[fastrand::usize(..types.len())];
        let customer = CUSTOMERS[fastrand::usize(..CUSTOMERS.len())];
        let region = ["eu-west-1", "us-east-1", "ap-south-1"][fastrand::usize(..3)];
        let request = StartRequest {
            workflow_type: workflow_type.clone(),
            input: json!({
                "customer_id": format!("{customer}-{}", fastrand::u32(100..1000)),
                "region": region,
            }),
            priority: match fastrand::u8(..10) {
                0 => Some(Priority::High),
                1 => Some(Priority::Low),
                _ => None,
            },
            triggered_by: Some(OPERATORS[fastrand::usize(..OPERATORS.len())].into()),
            trigger_type: Some("demo".into()),
            tags: vec!["demo".into(), customer.into()],
        };
        if let Err(error) = engine.start_workflow(request).await {
            tracing::warn!(%error, "demo: could not start a run");
        }
    }
}
