//! How fresh Stepline is on a real Airflow, and what following costs Airflow.
//!
//! 1. Delay from a task instance ending in Airflow (its `end_date`) to Stepline
//!    publishing its step completed on the live hub (what the WebSocket clients and the
//!    read API see, in the same transaction), over every task of the runs triggered.
//! 2. Calls per second Stepline makes to Airflow while following those runs (50 by
//!    default, open at once: running or queued behind Airflow's parallelism), at the
//!    default poll interval of 1 s.
//!
//! Needs a real Airflow with the fixture DAGs: `scripts/airflow.sh start DIR; . DIR/env`,
//! then `cargo bench -p server --bench airflow_follow` (`STEPLINE_BENCH_RUNS`, default 50;
//! `STEPLINE_BENCH_POLL`, default `1s`).

use app::model::LiveEvent;
use serde_json::{json, Value};
use server::engines::airflow::{CompensationRule, Credentials, SourceConfig};
use std::collections::HashMap;
use std::time::{Duration, Instant};

mod support;
use support::summary;

/// Airflow's own API, as the bench triggers and reads runs.
struct Airflow {
    url: String,
    http: reqwest::Client,
    token: String,
}

impl Airflow {
    async fn call(&self, request: reqwest::RequestBuilder) -> Value {
        request
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("Airflow answers")
            .json()
            .await
            .expect("JSON")
    }

    async fn trigger(&self, dag: &str, conf: Value) -> String {
        let answer = self
            .call(
                self.http
                    .post(format!("{}/api/v2/dags/{dag}/dagRuns", self.url))
                    .json(&json!({"logical_date": null, "conf": conf})),
            )
            .await;
        answer["dag_run_id"].as_str().expect("a run id").to_owned()
    }

    /// The end of each task instance of a run, by step name.
    async fn ends(&self, dag: &str, run_id: &str) -> HashMap<String, i64> {
        let mut url = reqwest::Url::parse(&self.url).unwrap();
        url.path_segments_mut().unwrap().extend([
            "api",
            "v2",
            "dags",
            dag,
            "dagRuns",
            run_id,
            "taskInstances",
        ]);
        let answer = self.call(self.http.get(url)).await;
        answer["task_instances"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|ti| {
                let end = ti["end_date"]
                    .as_str()?
                    .parse::<chrono::DateTime<chrono::Utc>>()
                    .ok()?;
                let name = server::engines::airflow::mapping::step_name(
                    ti["task_id"].as_str()?,
                    ti["map_index"].as_i64().unwrap_or(-1),
                );
                Some((name, end.timestamp_millis()))
            })
            .collect()
    }
}

#[tokio::main]
async fn main() {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name}: start Airflow with scripts/airflow.sh and source its env")
        })
    };
    let url = var("STEPLINE_AIRFLOW_URL");
    let (username, password) = (
        var("STEPLINE_AIRFLOW_USERNAME"),
        var("STEPLINE_AIRFLOW_PASSWORD"),
    );
    let runs: usize = std::env::var("STEPLINE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let poll: Duration = std::env::var("STEPLINE_BENCH_POLL")
        .ok()
        .and_then(|v| humantime::parse_duration(&v).ok())
        .unwrap_or(Duration::from_secs(1));
    server::engines::install_tls_provider();
    let http = reqwest::Client::new();
    let signed_in: Value = http
        .post(format!("{url}/auth/token"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("Airflow answers")
        .json()
        .await
        .expect("a token");
    let airflow = Airflow {
        url: url.clone(),
        http,
        token: signed_in["access_token"]
            .as_str()
            .expect("a token")
            .to_owned(),
    };

    let dir = tempfile::tempdir().expect("a temporary folder");
    let database = format!("sqlite://{}/bench.db", dir.path().display());
    let options = leptos::config::LeptosOptions::builder()
        .output_name("stepline")
        .build();
    let state = server::start_core(&database, options, None)
        .await
        .expect("core")
        .state;
    let source = SourceConfig {
        name: "bench".into(),
        url: url.clone(),
        credentials: Credentials::Password { username, password },
        dag_ids: Vec::new(),
        tags: Vec::new(),
        compensation: CompensationRule::default(),
        sla: HashMap::new(),
        poll_interval: poll,
        // Only what this bench triggers.
        import_since: Duration::from_secs(1),
        // The defaults: a failed try's log read when it ends, a successful one's (and its
        // return value) at one call a second.
        running_logs_every: None,
        reads_per_second: 1.0,
    };
    let (_, mut live) = state.hub.subscribe();
    let followed = server::follow_airflow(&state, vec![source.clone()]).expect("following");
    // Let the first polls pass, so that the count below is the steady cost.
    tokio::time::sleep(poll * 3).await;

    // Runs that stay open a while: a long task each (Airflow runs 8 tasks at once here,
    // the others wait queued), and every fixture shape among them.
    let shapes = [
        ("stepline_long_running", json!({"seconds": 20})),
        ("stepline_parallel", json!({})),
        ("stepline_linear", json!({})),
        ("stepline_mapped", json!({})),
        ("stepline_task_group", json!({})),
    ];
    let mut triggered = Vec::new();
    for n in 0..runs {
        let (dag, conf) = &shapes[n % shapes.len()];
        let run_id = airflow.trigger(dag, conf.clone()).await;
        triggered.push((
            dag.to_string(),
            run_id.clone(),
            source.workflow_id(dag, &run_id),
        ));
    }
    let index: HashMap<String, usize> = triggered
        .iter()
        .enumerate()
        .map(|(n, (_, _, id))| (id.clone(), n))
        .collect();
    let calls_before = followed[0].calls();
    let began = Instant::now();

    // Every step completion and every run's start and end, as the hub publishes them.
    let mut seen: HashMap<(usize, String), i64> = HashMap::new();
    let mut started = std::collections::HashSet::new();
    let mut ended = std::collections::HashSet::new();
    let mut most_open = 0;
    // The steady cost: from when Stepline has seen every run, for 15 s or until a fifth
    // of them have ended.
    let mut all_seen: Option<(u64, Instant)> = None;
    let mut steady: Option<(u64, Duration)> = None;
    let deadline = Instant::now() + Duration::from_secs(900);
    while ended.len() < triggered.len() {
        assert!(Instant::now() < deadline, "the runs did not end in time");
        let published = match tokio::time::timeout(Duration::from_secs(1), live.recv()).await {
            Ok(Ok(published)) => published,
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(missed))) => {
                panic!("the bench fell {missed} events behind the hub")
            }
            Ok(Err(closed)) => panic!("{closed}"),
            Err(_) => continue,
        };
        let now = chrono::Utc::now().timestamp_millis();
        let Some(&run) = published.workflow_id.as_ref().and_then(|id| index.get(id)) else {
            continue;
        };
        started.insert(run);
        match serde_json::from_str::<LiveEvent>(&published.json) {
            Ok(LiveEvent::StepCompleted { step_name, .. }) => {
                seen.entry((run, step_name)).or_insert(now);
            }
            Ok(LiveEvent::WorkflowStatusChanged { new_status, .. }) if new_status.is_terminal() => {
                ended.insert(run);
            }
            _ => {}
        }
        let open = triggered.len() - ended.len();
        most_open = most_open.max(started.len() - ended.len());
        if started.len() == triggered.len() && all_seen.is_none() {
            all_seen = Some((followed[0].calls(), Instant::now()));
        }
        if let (Some((calls, at)), None) = (all_seen, steady) {
            if at.elapsed() >= Duration::from_secs(15) || open * 5 < runs * 4 {
                steady = Some((followed[0].calls() - calls, at.elapsed()));
            }
        }
    }
    let all_calls = (followed[0].calls() - calls_before, began.elapsed());

    let mut delays = Vec::new();
    for (index, (dag, run_id, _)) in triggered.iter().enumerate() {
        for (name, ended) in airflow.ends(dag, run_id).await {
            if let Some(shown) = seen.get(&(index, name)) {
                delays.push((shown - ended) as f64);
            }
        }
    }
    println!("{runs} DAG runs, Stepline polling every {poll:?}:");
    println!(
        "task instance ended in Airflow → step completed in Stepline's API: {}",
        summary(&mut delays)
    );
    if let Some((calls, over)) = steady {
        println!(
            "calls to Airflow once every run was seen, while ≥ 80 % were open: {calls} in {:.1} s = {:.1}/s",
            over.as_secs_f64(),
            calls as f64 / over.as_secs_f64()
        );
    }
    println!(
        "calls to Airflow until every run ended: {} in {:.1} s = {:.1}/s (most open at once: {})",
        all_calls.0,
        all_calls.1.as_secs_f64(),
        all_calls.0 as f64 / all_calls.1.as_secs_f64(),
        most_open
    );
}
