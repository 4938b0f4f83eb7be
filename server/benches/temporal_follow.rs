//! How fresh Stepline is on a real Temporal server, and how its list holds up with many
//! Temporal executions known.
//!
//! 1. Delay from an activity completing in Temporal (its ACTIVITY_TASK_COMPLETED event
//!    time) to Stepline's read API showing the step completed (polled every 2 ms through
//!    the same reader the REST API uses), over every step of sequential workflows.
//! 2. The list API (`GET .../workflows`, through the real router) with 1,000 Temporal
//!    executions known.
//!
//! Needs the dev server and fixture worker: `scripts/temporal.sh start DIR; . DIR/env`,
//! then `cargo bench -p server --bench temporal_follow`
//! (`STEPLINE_BENCH_EXECUTIONS`, default 1000).

use app::api::ReadModel;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use server::engines::temporal::history::CompensationRule;
use server::engines::temporal::SourceConfig;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tower::ServiceExt;

mod support;
use support::summary;

#[path = "../tests/common/temporal_fixture.rs"]
mod temporal_fixture;
use temporal_fixture::Temporal;

#[tokio::main]
async fn main() {
    let temporal = std::sync::Arc::new(Temporal::from_env());
    let http = temporal.http.clone();
    let executions: usize = std::env::var("STEPLINE_BENCH_EXECUTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url = format!("sqlite://{}/bench.db", dir.path().display());
    let options = leptos::config::LeptosOptions::builder()
        .output_name("stepline")
        .build();
    let mut state = server::start_core(&url, options, None)
        .await
        .expect("core")
        .state;
    let source = SourceConfig {
        name: "bench".into(),
        url: http.clone(),
        namespace: "default".into(),
        api_key: None,
        task_queue: Some(temporal.task_queue.clone()),
        workflow_types: Vec::new(),
        compensation: CompensationRule::default(),
        poll_interval: Duration::from_millis(200),
        // Only what this run starts.
        import_since: Duration::from_secs(1),
    };
    server::follow_temporal(&mut state, vec![source.clone()])
        .await
        .expect("following Temporal");
    let reader = state.reader();
    // A real token for the list requests, made as an admin would.
    let token = server::auth::secret::new_token().expect("randomness");
    state
        .store
        .create_token(
            "bench",
            &server::auth::secret::hash_secret(&token),
            &[app::model::identity::Scope::Read],
            "bench",
            chrono::Utc::now().timestamp_millis(),
            None,
        )
        .await
        .expect("a token");
    let router = server::app(state);
    let stamp = chrono::Utc::now().timestamp_millis();

    // 1. Freshness: three sequential workflows of 40 steps of 100 ms, side by side.
    let mut runs = Vec::new();
    for n in 0..3 {
        let workflow_id = format!("bench-seq-{stamp}-{n}");
        let run = temporal
            .start(
                "SequentialWF",
                &workflow_id,
                json!({"steps": 40, "step_ms": 100}),
            )
            .await;
        runs.push((workflow_id.clone(), source.workflow_id(&workflow_id, &run)));
    }
    let mut seen: HashMap<(usize, usize), i64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut tick = tokio::time::interval(Duration::from_millis(2));
    loop {
        tick.tick().await;
        let now = chrono::Utc::now().timestamp_millis();
        let mut done = 0;
        for (index, (_, id)) in runs.iter().enumerate() {
            let Ok(Some(detail)) = reader.workflow_detail(id).await else {
                continue;
            };
            for step in &detail.execution.steps {
                if step.status == app::model::StepStatus::Completed {
                    seen.entry((index, step.step_number as usize))
                        .or_insert(now);
                }
            }
            if detail.status == app::model::WorkflowStatus::Completed {
                done += 1;
            }
        }
        if done == runs.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the workflows did not complete in time"
        );
    }
    let mut delays = Vec::new();
    for (index, (workflow_id, _)) in runs.iter().enumerate() {
        for (i, completed) in temporal
            .completions(workflow_id)
            .await
            .into_iter()
            .enumerate()
        {
            if let Some(shown) = seen.get(&(index, i + 1)) {
                delays.push((shown - completed) as f64);
            }
        }
    }
    println!(
        "activity completed in Temporal → step completed in Stepline's API: {}",
        summary(&mut delays)
    );

    // 2. The list with `executions` Temporal executions known.
    let began = Instant::now();
    let mut starts = Vec::new();
    for n in 0..executions {
        let temporal = temporal.clone();
        starts.push(tokio::spawn(async move {
            temporal
                .start(
                    "SequentialWF",
                    &format!("bench-many-{stamp}-{n}"),
                    json!({"steps": 1, "step_ms": 10}),
                )
                .await
        }));
        if starts.len() == 20 {
            for start in starts.drain(..) {
                start.await.expect("started");
            }
        }
    }
    for start in starts {
        start.await.expect("started");
    }
    let started = began.elapsed();
    let engine = source.engine_id();
    let list = |query: String| {
        let router = router.clone();
        let bearer = format!("Bearer {token}");
        async move {
            let response = router
                .oneshot(
                    Request::get(query)
                        .header("authorization", bearer)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        }
    };
    let all = format!("/api/platform/orchestration/workflows?engine={engine}");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let page = list(all.clone()).await;
        if page["total"].as_u64().unwrap_or(0) as usize >= executions + runs.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Stepline did not discover them all: {}",
            page["total"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "{executions} executions started in {:.1} s, all known to Stepline {:.1} s after the first start",
        started.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
    for (label, query) in [
        (
            "first page (50)",
            format!("/api/platform/orchestration/workflows?engine={engine}"),
        ),
        (
            "completed tab",
            format!("/api/platform/orchestration/workflows?engine={engine}&tab=completed"),
        ),
        (
            "search",
            format!("/api/platform/orchestration/workflows?q=bench-many-{stamp}-99"),
        ),
    ] {
        let mut times = Vec::new();
        for _ in 0..200 {
            let began = Instant::now();
            let page = list(query.clone()).await;
            times.push(began.elapsed().as_secs_f64() * 1000.0);
            assert!(page["workflows"].is_array());
        }
        println!(
            "list API, {label}, {} executions known: {}",
            executions + runs.len(),
            summary(&mut times)
        );
    }
}
