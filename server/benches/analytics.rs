//! Benchmark of the analytics API's query over a large history: 1,000,000 stored runs
//! (5 steps each) that ended over the last 30 days, rolled up by the same code that
//! rolls up live runs; then `analytics(24h)` and `analytics(7d)` timed repeatedly.
//!
//! `cargo bench -p server --bench analytics` (`STEPLINE_BENCH_RUNS`, default 1000000).

use app::model::analytics::{Period, Window};
use app::model::Capabilities;
use std::time::Instant;

const DAY_MS: i64 = 86_400_000;

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    let runs: i64 = std::env::var("STEPLINE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url = format!("sqlite://{}/analytics.db", dir.path().display());
    let store = server::store::Store::open(&url).await.expect("store");
    let pool = store.sqlite_pool().expect("the benchmarks run on SQLite");
    let now = chrono::Utc::now().timestamp_millis();
    let spacing = 30 * DAY_MS / runs;
    let capabilities = serde_json::to_string(&Capabilities::everything()).unwrap();

    let began = Instant::now();
    // Runs of three types, 1 in 10 failed, 1 in 7 over its SLA, durations 60-660 s,
    // spread evenly over 30 days.
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1)
         INSERT INTO workflows (id, engine, workflow_type, status, sla_status, priority,
             capabilities, created_ms, started_ms, completed_ms, updated_ms,
             sla_target_seconds, completed_steps, total_steps)
         SELECT printf('bench-wf-%07d', i), 'builtin',
             CASE i % 3 WHEN 0 THEN 'trial_activation' WHEN 1 THEN 'agent_deployment'
                        ELSE 'data_sync' END,
             CASE WHEN i % 10 = 0 THEN 'FAILED' ELSE 'COMPLETED' END,
             CASE WHEN i % 7 = 0 THEN 'breached' ELSE 'on_track' END,
             'NORMAL', ?2,
             ?3 - i * ?4 - 60000 - (i % 600) * 1000, ?3 - i * ?4 - 60000 - (i % 600) * 1000,
             ?3 - i * ?4, ?3 - i * ?4, 600, 5, 5
         FROM n",
    )
    .bind(runs)
    .bind(&capabilities)
    .bind(now)
    .bind(spacing)
    .execute(pool)
    .await
    .expect("runs inserted");
    let single = r#"[{"attempt":1,"status":"COMPLETED","started_ms":null,"completed_ms":null,"error":null}]"#;
    let retried = r#"[{"attempt":1,"status":"FAILED","started_ms":null,"completed_ms":null,"error":"timeout"},{"attempt":2,"status":"COMPLETED","started_ms":null,"completed_ms":null,"error":null}]"#;
    sqlx::query(
        "WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < 5)
         INSERT INTO steps (workflow_id, step_number, name, status, kind, started_ms,
             completed_ms, attempts)
         SELECT w.id, k.n, w.workflow_type || '_step_' || k.n, 'COMPLETED', 'normal',
             w.started_ms + (k.n - 1) * (w.completed_ms - w.started_ms) / 5,
             w.started_ms + k.n * (w.completed_ms - w.started_ms) / 5,
             CASE WHEN (w.completed_ms / 1000 + k.n) % 9 = 0 THEN ?2 ELSE ?1 END
         FROM workflows w CROSS JOIN k",
    )
    .bind(single)
    .bind(retried)
    .execute(pool)
    .await
    .expect("steps inserted");
    println!(
        "stored {runs} runs and {} steps in {:.1} s",
        runs * 5,
        began.elapsed().as_secs_f64()
    );

    let began = Instant::now();
    let rolled = server::analytics::rebuild(&store).await.expect("rollups");
    println!(
        "rolled up {rolled} runs in {:.1} s",
        began.elapsed().as_secs_f64()
    );

    for period in [Period::Day, Period::Week, Period::Hour] {
        let mut times = Vec::new();
        let mut ended = 0;
        for _ in 0..200 {
            let started = Instant::now();
            let answer = server::analytics::analytics(&store, Window::Period(period), now)
                .await
                .expect("analytics");
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            ended = answer.runs;
        }
        times.sort_by(f64::total_cmp);
        println!(
            "RESULT analytics period={} runs_in_period={ended} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
            period.as_str(),
            quantile(&times, 0.5),
            quantile(&times, 0.99),
            times[times.len() - 1]
        );
    }
}
