//! What the load tools share: a core on a temporary SQLite file (or, with
//! `STEPLINE_TEST_POSTGRES_URL`, a PostgreSQL database) filled with a long history of runs,
//! requests through the router, and the figures they report.
// Each load tool uses part of it.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use server::http::AppState;
use std::time::{Duration, Instant};
use tower::ServiceExt;

pub const DAY_MS: i64 = 86_400_000;
/// Runs still open whatever the history's length (the newest ones).
pub const RUNNING: i64 = 300;
pub const PENDING: i64 = 50;

/// The API token every request of the load tools sends (see [`authorize`]).
static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Makes the tool's API token (one per process, whatever the stores it measures) a real
/// token of `state`'s store that may read, act, and push as each of `sources`; every
/// later request of the tool sends it.
pub async fn authorize(state: &AppState, sources: &[&str]) {
    use app::model::identity::Scope;
    let mut scopes = vec![Scope::Read, Scope::Operate];
    scopes.extend(
        sources
            .iter()
            .map(|source| Scope::Ingest((*source).to_owned())),
    );
    let token = TOKEN.get_or_init(|| server::auth::secret::new_token().expect("randomness"));
    state
        .store
        .create_token(
            "load tool",
            &server::auth::secret::hash_secret(token),
            &scopes,
            "load tool",
            chrono::Utc::now().timestamp_millis(),
            None,
        )
        .await
        .expect("a token");
}

/// `Authorization` for the tool's token, to put on requests made outside the router
/// (WebSocket handshakes).
pub fn bearer() -> String {
    format!("Bearer {}", TOKEN.get().map_or("", String::as_str))
}

/// A number from the environment, else `default`.
pub fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Sorts `values` (milliseconds) and tells their p50, p95, p99 and maximum.
pub fn summary(values: &mut [f64]) -> String {
    values.sort_by(f64::total_cmp);
    format!(
        "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n = {})",
        quantile(values, 0.5),
        quantile(values, 0.95),
        quantile(values, 0.99),
        values[values.len() - 1],
        values.len()
    )
}

/// The process's resident memory, in MiB (from /proc).
pub fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The core (no engine, no runs) on a database in `dir`: SQLite, or with
/// `STEPLINE_TEST_POSTGRES_URL` set, a database of that server.
pub async fn core(dir: &std::path::Path) -> AppState {
    // The server's own warnings and errors (a 500's cause) on stderr.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn,sqlx=error"))
        .with_writer(std::io::stderr)
        .try_init();
    let url = server::store::scratch::url_in(dir)
        .await
        .expect("a database for the benchmark");
    let options = leptos::config::LeptosOptions::builder()
        .output_name("stepline")
        .build();
    server::start_core(&url, options, None)
        .await
        .expect("core")
        .state
}

/// The core (no engine) on a database in `dir`, holding `runs` runs: four engines, ten
/// types, a few hundred running and pending, one in ten failed, tags, triggers, engine
/// references, spread over 90 days. Returns the state and `now` as the runs see it.
pub async fn core_with_history(dir: &std::path::Path, runs: i64) -> (AppState, i64) {
    let state = core(dir).await;
    let now = chrono::Utc::now().timestamp_millis();
    let spacing = (90 * DAY_MS / runs.max(1)).max(1);
    let capabilities = serde_json::to_string(&app::model::Capabilities::everything()).unwrap();

    let began = Instant::now();
    if state.store.dialect() == server::store::Dialect::Postgres {
        store_history_on_postgres(&state, runs, now, spacing, &capabilities).await;
        authorize(&state, &["load-0", "load-1", "fanout"]).await;
        println!(
            "stored {runs} runs on PostgreSQL in {:.1} s (counters added up, text index built)",
            began.elapsed().as_secs_f64()
        );
        return (state, now);
    }
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1)
         INSERT INTO workflows (id, engine, workflow_type, status, sla_status, priority,
             capabilities, created_ms, started_ms, completed_ms, updated_ms,
             sla_target_seconds, completed_steps, total_steps, triggered_by, tags, engine_ref)
         SELECT printf('bench-wf-%08d', i),
             CASE i % 4 WHEN 0 THEN 'builtin' WHEN 1 THEN 'temporal:prod:default'
                        WHEN 2 THEN 'custom:billing' ELSE 'custom:etl' END,
             printf('type_%02d', i % 10),
             CASE WHEN i < ?5 THEN 'RUNNING' WHEN i < ?5 + ?6 THEN 'PENDING'
                  WHEN i % 10 = 3 THEN 'FAILED' WHEN i % 50 = 7 THEN 'CANCELLED'
                  ELSE 'COMPLETED' END,
             CASE WHEN i < ?5 AND i % 5 = 0 THEN 'at_risk'
                  WHEN i % 7 = 0 THEN 'breached' ELSE 'on_track' END,
             'NORMAL', ?2, ?3 - i * ?4, ?3 - i * ?4,
             CASE WHEN i < ?5 + ?6 THEN NULL ELSE ?3 - i * ?4 + 60000 END,
             ?3 - i * ?4 + 60000, 600, 5, 5,
             printf('user%03d@example.com', i % 500),
             printf('[\"customer-%d\",\"region-%d\"]', i % 100000, i % 7),
             CASE WHEN i % 4 = 1 THEN printf('workflow order-%d · run %08x', i, i * 40503)
                  ELSE NULL END
         FROM n",
    )
    .bind(runs)
    .bind(&capabilities)
    .bind(now)
    .bind(spacing)
    .bind(RUNNING)
    .bind(PENDING)
    .execute(
        state
            .store
            .sqlite_pool()
            .expect("the benchmarks run on SQLite"),
    )
    .await
    .expect("runs inserted");
    authorize(&state, &["load-0", "load-1", "fanout"]).await;
    // What a server that has run a while reads from: the write-ahead log folded into the
    // database file, as SQLite's automatic checkpoints do between bursts of writes.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(
            state
                .store
                .sqlite_pool()
                .expect("the benchmarks run on SQLite"),
        )
        .await
        .expect("checkpoint");
    println!(
        "stored {runs} runs in {:.1} s (counters and text index kept by the store's triggers)",
        began.elapsed().as_secs_f64()
    );
    (state, now)
}

/// The history of [`core_with_history`] on PostgreSQL: the same runs, written in one
/// statement with the counters' triggers off and the text index dropped, then the counters
/// added up and the index built, as a database that grew run by run would have them (row
/// triggers over a million rows of one transaction would take hours).
async fn store_history_on_postgres(
    state: &AppState,
    runs: i64,
    now: i64,
    spacing: i64,
    capabilities: &str,
) {
    let open = RUNNING + PENDING;
    let statements = [
        "ALTER TABLE workflows DISABLE TRIGGER USER".to_owned(),
        "DROP INDEX workflows_by_text".to_owned(),
        format!(
            "INSERT INTO workflows (rowid, id, engine, workflow_type, status, sla_status,
                 priority, capabilities, created_ms, started_ms, completed_ms, updated_ms,
                 sla_target_seconds, completed_steps, total_steps, triggered_by, tags,
                 engine_ref)
             SELECT i + 1, 'bench-wf-' || lpad(i::text, 8, '0'),
                 CASE i % 4 WHEN 0 THEN 'builtin' WHEN 1 THEN 'temporal:prod:default'
                            WHEN 2 THEN 'custom:billing' ELSE 'custom:etl' END,
                 'type_' || lpad((i % 10)::text, 2, '0'),
                 CASE WHEN i < {RUNNING} THEN 'RUNNING' WHEN i < {open} THEN 'PENDING'
                      WHEN i % 10 = 3 THEN 'FAILED' WHEN i % 50 = 7 THEN 'CANCELLED'
                      ELSE 'COMPLETED' END,
                 CASE WHEN i < {RUNNING} AND i % 5 = 0 THEN 'at_risk'
                      WHEN i % 7 = 0 THEN 'breached' ELSE 'on_track' END,
                 'NORMAL', '{capabilities}', {now} - i * {spacing}, {now} - i * {spacing},
                 CASE WHEN i < {open} THEN NULL ELSE {now} - i * {spacing} + 60000 END,
                 {now} - i * {spacing} + 60000, 600, 5, 5,
                 'user' || lpad((i % 500)::text, 3, '0') || '@example.com',
                 '[\"customer-' || (i % 100000) || '\",\"region-' || (i % 7) || '\"]',
                 CASE WHEN i % 4 = 1 THEN 'workflow order-' || i || ' · run '
                     || lpad(to_hex(i * 40503), greatest(8, length(to_hex(i * 40503))), '0')
                 END
             FROM generate_series(0::bigint, {runs} - 1) AS i"
        ),
        "INSERT INTO workflow_counts (engine, workflow_type, status, sla_status, runs)
         SELECT engine, workflow_type, status, sla_status, count(*) FROM workflows
         GROUP BY engine, workflow_type, status, sla_status"
            .to_owned(),
        "INSERT INTO ended_counts (day, engine, status, sla_status, with_sla, runs)
         SELECT completed_ms / 86400000, engine, status, sla_status,
                sla_target_seconds IS NOT NULL, count(*)
         FROM workflows WHERE completed_ms IS NOT NULL
         GROUP BY 1, engine, status, sla_status, 5"
            .to_owned(),
        "ALTER TABLE workflows ENABLE TRIGGER USER".to_owned(),
        "CREATE INDEX workflows_by_text ON workflows USING gin (search_text gin_trgm_ops)"
            .to_owned(),
        "ANALYZE".to_owned(),
    ];
    for statement in statements {
        state
            .store
            .execute(&statement)
            .await
            .unwrap_or_else(|error| panic!("{statement}: {error}"));
    }
}

/// GETs `uri` from the router in this process; returns the body's length. Anything but
/// 200 stops the tool: a figure over failed requests would be a lie.
pub async fn get(router: &axum::Router, uri: &str) -> usize {
    send(router, Request::get(uri).body(Body::empty()).unwrap(), uri).await
}

/// POSTs a JSON `body` to `uri`, as [`get`].
pub async fn post_json(router: &axum::Router, uri: &str, body: String) -> usize {
    let request = Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    send(router, request, uri).await
}

async fn send(router: &axum::Router, request: Request<Body>, uri: &str) -> usize {
    try_send(router, request)
        .await
        .unwrap_or_else(|failure| panic!("{uri}: {failure}"))
}

/// GETs `uri` as [`get`] does, but returns a failure instead of stopping the tool.
pub async fn try_get(router: &axum::Router, uri: &str) -> Result<usize, String> {
    try_send(router, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn try_send(router: &axum::Router, mut request: Request<Body>) -> Result<usize, String> {
    if TOKEN.get().is_some() {
        request
            .headers_mut()
            .insert("authorization", bearer().parse().expect("a header value"));
    }
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|error| error.to_string())?
        .to_bytes();
    if status != StatusCode::OK {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
    }
    Ok(body.len())
}

/// `clients` tasks GET `uri` one request after another for `period` (or until
/// `going_on` says stop); returns how many were served and each one's milliseconds.
pub async fn read_for(
    router: &axum::Router,
    uri: &str,
    clients: usize,
    period: Duration,
    going_on: impl Fn() -> bool + Clone + Send + 'static,
) -> (usize, Vec<f64>) {
    let deadline = Instant::now() + period;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let router = router.clone();
            let uri = uri.to_owned();
            let going_on = going_on.clone();
            tokio::spawn(async move {
                let mut times = Vec::new();
                while Instant::now() < deadline && going_on() {
                    let began = Instant::now();
                    get(&router, &uri).await;
                    times.push(began.elapsed().as_secs_f64() * 1000.0);
                }
                times
            })
        })
        .collect();
    let mut times = Vec::new();
    for task in tasks {
        times.extend(task.await.unwrap());
    }
    (times.len(), times)
}
