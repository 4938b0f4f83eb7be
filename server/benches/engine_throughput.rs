//! Load benchmark of the built-in engine: how many durable step transitions per second
//! it makes while holding many running workflows, on SQLite in a temporary folder.
//!
//! `cargo bench -p server --bench engine_throughput`
//! (`STEPLINE_BENCH_WORKFLOWS`, default 10000; `STEPLINE_BENCH_SECONDS`, default 20.)
//!
//! Every run has 20 simulated steps of 1 to 3 s, so 10,000 of them ask for about 10,000
//! transitions a second: more than the engine can store, which is the point: the figure
//! is what it sustains. A transition is a step attempt starting or a step completing,
//! each committed to SQLite before the work it announces goes on.

use server::engines::builtin::definition::parse;
use server::engines::builtin::Limits;
use server::source::StartRequest;
use std::path::Path;
use std::time::{Duration, Instant};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn definition() -> String {
    let mut text = String::from("type = \"bench\"\nname = \"Bench\"\nversion = \"1\"\n");
    for step in 1..=20 {
        text.push_str(&format!(
            "[[steps]]\nname = \"step_{step}\"\n{}action = {{ kind = \"simulate\", duration = \"1s..3s\" }}\n",
            if step > 1 { format!("after = [\"step_{}\"]\n", step - 1) } else { String::new() }
        ));
    }
    text
}

/// Step attempts started plus steps completed so far.
async fn transitions(pool: &sqlx::SqlitePool) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(SUM(json_array_length(attempts)), 0)
              + COALESCE(SUM(status = 'COMPLETED'), 0) FROM steps",
    )
    .fetch_one(pool)
    .await
    .expect("counting transitions")
}

fn resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::main]
async fn main() {
    let workflows = setting("STEPLINE_BENCH_WORKFLOWS", 10_000) as usize;
    let seconds = setting("STEPLINE_BENCH_SECONDS", 20);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url = format!("sqlite://{}/bench.db", dir.path().display());
    let settings = server::BuiltinSettings {
        definitions: vec![parse(Path::new("bench.toml"), &definition()).expect("valid")],
        limits: Limits {
            max_running: workflows,
        },
        ..Default::default()
    };
    let options = leptos::config::LeptosOptions::builder()
        .output_name("stepline")
        .build();
    let core = server::start_core(&url, options, Some(settings))
        .await
        .expect("the core starts");
    let state = core.state;
    let engine = core.builtin.expect("the built-in engine runs");
    // Measured as it drives its runs, not while it takes its lease.
    engine.driving().await;

    println!("starting {workflows} workflows of 20 steps (1-3 s each) on {url}");
    let began = Instant::now();
    let mut starts = tokio::task::JoinSet::new();
    for _ in 0..workflows {
        let engine = engine.clone();
        starts.spawn(async move {
            engine
                .start_workflow(StartRequest {
                    workflow_type: "bench".into(),
                    ..StartRequest::default()
                })
                .await
                .expect("started")
        });
    }
    while let Some(started) = starts.join_next().await {
        started.expect("the start task ran");
    }
    println!(
        "started {workflows} in {:.2} s ({:.0} starts/s)",
        began.elapsed().as_secs_f64(),
        workflows as f64 / began.elapsed().as_secs_f64()
    );

    let pool = state
        .store
        .sqlite_pool()
        .expect("the benchmarks run on SQLite")
        .clone();
    let from = transitions(&pool).await;
    let window = Instant::now();
    let mut least_running = usize::MAX;
    for _ in 0..seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let census = engine.census().await.expect("census");
        let running: usize = census.running.values().sum();
        least_running = least_running.min(running);
        println!(
            "  t+{:>4.1} s  running {running:>6}  pending {:>6}  rss {:.0} MiB",
            window.elapsed().as_secs_f64(),
            census.pending.values().sum::<usize>(),
            resident_mib()
        );
    }
    let to = transitions(&pool).await;
    let elapsed = window.elapsed().as_secs_f64();
    println!(
        "RESULT workflows_held_min={least_running} transitions={} seconds={elapsed:.1} transitions_per_second={:.0} rss_mib={:.0}",
        to - from,
        (to - from) as f64 / elapsed,
        resident_mib()
    );
}
