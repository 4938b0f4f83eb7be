//! What the store keeps and what it forgets: closed runs past their age go with their
//! steps, logs and engine positions, open runs stay however old, the stats line's "today"
//! comes from the per-day counters, the space the deletions free is given back (SQLite's
//! file; PostgreSQL leaves it to autovacuum), and a step's logs are capped in bytes with
//! the dropped lines counted. On either backend (see `common::database`).

mod common;

use axum::http::StatusCode;
use common::client::Client;
use common::core_state;
use serde_json::{json, Value};
use server::retention::{sweep, RetentionSettings};
use sqlx::ConnectOptions;
use std::time::Duration;

/// 10:00 UTC on the day the old runs ran.
const OLD_DAY: &str = "2026-01-10T10:00:00Z";
const DAY_MS: i64 = 86_400_000;

/// One number the database answers `sql` with (SQLite or PostgreSQL).
async fn scalar(store: &server::store::Store, sql: &str) -> i64 {
    store.read_number(sql).await.unwrap()
}

/// Whether the test's store is SQLite, whose file gives pages back (PostgreSQL leaves the
/// space to its autovacuum).
fn on_sqlite(store: &server::store::Store) -> bool {
    store.dialect() == server::store::Dialect::Sqlite
}

fn ms(at: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(at)
        .unwrap()
        .timestamp_millis()
}

fn at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339()
}

/// A run of one step with `lines` log lines of 1,000 characters, ended with `status`
/// (or still running) `minutes` after it started.
fn run(
    id: &str,
    started: i64,
    sla_seconds: u32,
    end: Option<(&str, i64)>,
    lines: usize,
) -> Vec<Value> {
    let mut events = vec![
        json!({"type": "workflow_started", "workflow_id": id, "at": at(started),
               "workflow_type": "nightly_export", "sla_target_seconds": sla_seconds,
               "total_steps": 1}),
        json!({"type": "step_started", "workflow_id": id, "at": at(started),
               "step_number": 1, "name": "export"}),
    ];
    if lines > 0 {
        let line = "x".repeat(1_000);
        events.push(
            json!({"type": "log_lines", "workflow_id": id, "at": at(started),
                           "step_number": 1, "lines": vec![line; lines]}),
        );
    }
    if let Some((status, minutes)) = end {
        let ended = started + minutes * 60_000;
        events.push(
            json!({"type": "step_completed", "workflow_id": id, "at": at(ended),
                           "step_number": 1}),
        );
        events.push(json!({"type": "workflow_status_changed", "workflow_id": id,
                           "at": at(ended), "status": status, "reason": "done"}));
    }
    events
}

#[tokio::test]
async fn closed_runs_past_their_age_go_with_everything_under_them_and_open_ones_stay() {
    let (state, _dir) = core_state::on_temporary_file().await;
    let store = state.store.clone();
    let client = Client::in_process(server::app(state.clone()))
        .with_token(common::core_state::operator_token(&state).await);
    let push = |events: Vec<Value>| {
        let client = &client;
        async move {
            let body = json!({"source": "billing", "events": events}).to_string();
            let (status, body) = client.push_raw(&body).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    };
    let old = ms(OLD_DAY);
    for n in 1..=3 {
        // Within their SLA (5 minutes), with a megabyte of logs each.
        push(run(
            &format!("old-done-{n}"),
            old,
            300,
            Some(("COMPLETED", 1)),
            1_000,
        ))
        .await;
    }
    push(run("old-failed", old, 60, Some(("FAILED", 20)), 0)).await;
    push(run("old-open", old, 60, None, 0)).await;
    let recent = chrono::Utc::now().timestamp_millis() - 600_000;
    push(run("recent-done", recent, 300, Some(("COMPLETED", 1)), 0)).await;

    // "Today" is read from the per-day counters.
    let stats = store.stats(old + 8 * 3_600_000).await.unwrap();
    assert_eq!(
        (
            stats.completed_today,
            stats.failed_today,
            stats.sla_compliance_today
        ),
        (3, 1, Some(75)),
        "three within their SLA, one failed past it"
    );
    let next_day = store.stats(old + DAY_MS).await.unwrap();
    assert_eq!(
        (
            next_day.completed_today,
            next_day.failed_today,
            next_day.sla_compliance_today
        ),
        (0, 0, None)
    );

    store
        .execute(
            "INSERT INTO engine_positions (engine, key, position)
             SELECT engine, 'old-done-1', '{}' FROM workflows WHERE id = 'old-done-1'",
        )
        .await
        .unwrap();
    let pages_before = if on_sqlite(&store) {
        let auto_vacuum: i64 = scalar(&store, "PRAGMA auto_vacuum").await;
        assert_eq!(auto_vacuum, 2, "a new database frees pages incrementally");
        scalar(&store, "PRAGMA page_count").await
    } else {
        0
    };

    // Forty days later, keeping runs for thirty: the closed old runs go, two at a time.
    let settings = RetentionSettings {
        runs: Some(Duration::from_secs(30 * 86_400)),
        analytics: Some(Duration::from_secs(400 * 86_400)),
        batch: 2,
        pause: Duration::ZERO,
        ..RetentionSettings::default()
    };
    let swept = sweep(&store, &settings, old + 40 * DAY_MS).await.unwrap();
    assert_eq!(swept.runs, 4);
    assert_eq!(swept.rollup_rows, 0, "analytics are kept longer");
    if on_sqlite(&store) {
        assert!(swept.pages_released > 0, "{swept:?}");
        let pages_after: i64 = scalar(&store, "PRAGMA page_count").await;
        assert!(
            pages_after < pages_before / 2,
            "the logs' pages went back: {pages_before} → {pages_after}"
        );
    }

    let list = "/api/platform/orchestration/workflows";
    let (_, body) = client.get(list).await;
    let mut ids: Vec<&str> = body["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["old-open", "recent-done"]);
    assert_eq!(body["total"], 2);
    let (status, _) = client.get(&format!("{list}/old-done-1")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = client.get(&format!("{list}?q=old-done")).await;
    assert_eq!(body["total"], 0, "gone from the text index too");
    for table in ["steps", "step_logs"] {
        let left: i64 = scalar(&store, &format!(
            "SELECT COUNT(*) FROM {table} WHERE workflow_id LIKE 'old-%' AND workflow_id != 'old-open'"
        )).await;
        assert_eq!(left, 0, "{table}");
    }
    let positions: i64 = scalar(&store, "SELECT COUNT(*) FROM engine_positions").await;
    assert_eq!(positions, 0);
    let stats = store.stats(old + 8 * 3_600_000).await.unwrap();
    assert_eq!((stats.completed_today, stats.failed_today), (0, 0));

    // A second pass finds nothing more; rollups go once past their own age.
    let again = sweep(&store, &settings, old + 40 * DAY_MS).await.unwrap();
    assert_eq!((again.runs, again.rollup_rows), (0, 0));
    let shorter = RetentionSettings {
        analytics: Some(Duration::from_secs(30 * 86_400)),
        ..settings
    };
    let swept = sweep(&store, &shorter, old + 40 * DAY_MS).await.unwrap();
    assert!(swept.rollup_rows > 0, "{swept:?}");
    let old_rollups: i64 = scalar(
        &store,
        &format!(
            "SELECT COUNT(*) FROM analytics_runs WHERE bucket_ms < {}",
            old + 10 * DAY_MS
        ),
    )
    .await;
    assert_eq!(old_rollups, 0);
    let kept_rollups: i64 = scalar(&store, "SELECT COUNT(*) FROM analytics_runs").await;
    assert_eq!(kept_rollups, 1, "the recent run's");
}

#[tokio::test]
async fn a_step_keeps_its_newest_megabyte_of_logs_and_says_how_many_lines_it_dropped() {
    let (state, _dir) = core_state::on_temporary_file().await;
    let store = state.store.clone();
    let client = Client::in_process(server::app(state.clone()))
        .with_token(common::core_state::operator_token(&state).await);
    let now = chrono::Utc::now().timestamp_millis();
    // 3,000 lines of 500 bytes (1.5 MB) in three events; the cap is 1 MiB, trimmed to
    // three quarters of it when passed.
    let line = |n: usize| format!("{:<500}", format!("line {n:05}"));
    let mut events = run("chatty", now - 60_000, 300, None, 0);
    for part in 0..3 {
        let lines: Vec<String> = (part * 1_000..(part + 1) * 1_000).map(line).collect();
        events.push(
            json!({"type": "log_lines", "workflow_id": "chatty", "at": at(now),
                           "step_number": 1, "lines": lines}),
        );
    }
    let body = json!({"source": "billing", "events": events}).to_string();
    let (status, body) = client.push_raw(&body).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // 1,500,000 bytes, over 1,048,576: at least 1,500,000 - 786,432 = 713,568 go, which
    // is 1,428 whole lines.
    let dropped = 1_428;
    let detail = client.detail("chatty").await;
    let step = &detail["execution"]["steps"][0];
    assert_eq!(step["logs_dropped"], dropped, "{step}");
    assert_eq!(
        step["logs"].as_array().unwrap().last().unwrap(),
        &json!(line(2_999))
    );
    let chatty = "FROM step_logs WHERE workflow_id = 'chatty'";
    let kept = scalar(&store, &format!("SELECT COUNT(*) {chatty}")).await;
    assert_eq!(kept, 3_000 - dropped);
    let oldest_kept = scalar(
        &store,
        &format!(
            "SELECT COUNT(*) {chatty} AND line = '{}'
               AND id = (SELECT min(id) {chatty})",
            line(dropped as usize)
        ),
    )
    .await;
    assert_eq!(oldest_kept, 1, "the oldest went first");
    let stored: i64 = scalar(
        &store,
        "SELECT log_bytes FROM steps WHERE workflow_id = 'chatty'",
    )
    .await;
    let kept_bytes = scalar(
        &store,
        &format!("SELECT CAST(SUM(octet_length(line)) AS BIGINT) {chatty}"),
    )
    .await;
    assert_eq!(stored, kept_bytes);
    assert!(stored <= server::store::LOG_BYTES_PER_STEP);

    let (status, html) = client.get_text("/orchestration/workflows/chatty").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("1428 earlier lines dropped"), "{html}");
}

#[tokio::test]
async fn a_write_transaction_holds_the_write_lock_from_its_start() {
    // Retention's batches commit beside the projector's: a transaction that started as a
    // reader could not become a writer after one of them ("database is locked" at once,
    // a 500 on ingest). The store's write transactions take the lock when they begin.
    let (state, dir) = core_state::on_temporary_file().await;
    let writer = state.store.begin().await.unwrap();
    let path = dir.path().join("stepline.db");
    let mut other = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .busy_timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    let second = sqlx::query("BEGIN IMMEDIATE").execute(&mut other).await;
    assert!(second.is_err(), "a second writer got the lock: {second:?}");
    drop(writer);
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .expect("the lock is free once the transaction ends");
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();

    // Opening connections writes nothing: the pool may open one at any time.
    let before: i64 = sqlx::query_scalar("PRAGMA data_version")
        .fetch_one(&mut other)
        .await
        .unwrap();
    let every = state
        .store
        .sqlite_pool()
        .expect("a SQLite store")
        .options()
        .get_max_connections();
    let fresh: Vec<_> = futures::future::join_all(
        (0..every).map(|_| state.store.sqlite_pool().expect("a SQLite store").acquire()),
    )
    .await;
    assert!(fresh.iter().all(Result::is_ok));
    let after: i64 = sqlx::query_scalar("PRAGMA data_version")
        .fetch_one(&mut other)
        .await
        .unwrap();
    assert_eq!(before, after, "another connection changed the database");
}
