//! Load tool for the workflow list over a long history: stores N runs (see
//! `support::core_with_history`), then asks the real router (in this process, no socket)
//! for the first page of each tab, a type filter, an engine filter, a date range, a search
//! for one id, a search for a part of an id and a common search, and the server-rendered
//! list page: p50/p99 with one client, and requests per second with 16 clients at once,
//! for each.
//!
//! `STEPLINE_BENCH_RUNS=10000,100000,1000000 cargo bench -p server --bench list` stores
//! every size first (default 100000), then times each query on every size in turns of
//! [`TURN`] requests, so that what else the machine does at a moment falls on every size
//! alike, and ends with each query's p99 against the first size's;
//! `STEPLINE_BENCH_ONLY=search` keeps the queries whose name holds that text (to profile
//! one of them).

mod support;

use std::time::{Duration, Instant};
use support::{get, quantile, DAY_MS};

/// Requests timed one after another per query and size: a p99 of 300 moved by a
/// millisecond between runs on a shared 2-core machine; of 1,000 it is the tenth slowest.
const SEQUENTIAL: usize = 1_000;
/// Requests timed on one size before the next size's turn.
const TURN: usize = 50;
/// Clients at once, and for how long, in the throughput part.
const CLIENTS: usize = 16;
const THROUGHPUT_FOR: Duration = Duration::from_secs(3);

/// One size's stored history and the router over it.
struct History {
    runs: i64,
    router: axum::Router,
    queries: Vec<(&'static str, String)>,
    // Holds the database's folder until the tool ends.
    _dir: tempfile::TempDir,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let sizes = std::env::var("STEPLINE_BENCH_RUNS").unwrap_or_else(|_| "100000".into());
    let sizes: Vec<i64> = sizes
        .split(',')
        .map(|size| {
            size.trim()
                .parse()
                .expect("STEPLINE_BENCH_RUNS: numbers, comma-separated")
        })
        .collect();
    let mut histories = Vec::new();
    for runs in sizes {
        histories.push(store(runs).await);
    }
    let names: Vec<&str> = histories[0].queries.iter().map(|(name, _)| *name).collect();

    // p99 per query (outer) and size (inner), timed in turns.
    let mut p99_ms: Vec<Vec<f64>> = Vec::new();
    for (query, name) in names.iter().enumerate() {
        let mut times = vec![Vec::with_capacity(SEQUENTIAL); histories.len()];
        let mut bytes = vec![0; histories.len()];
        for history in &histories {
            // Warm the page cache and the statements.
            get(&history.router, &history.queries[query].1).await;
        }
        while times[0].len() < SEQUENTIAL {
            for (size, history) in histories.iter().enumerate() {
                let uri = &history.queries[query].1;
                for _ in 0..TURN {
                    let began = Instant::now();
                    bytes[size] = get(&history.router, uri).await;
                    times[size].push(began.elapsed().as_secs_f64() * 1000.0);
                }
            }
        }
        let mut row = Vec::new();
        for (size, history) in histories.iter().enumerate() {
            let times = &mut times[size];
            times.sort_by(f64::total_cmp);
            let p99 = quantile(times, 0.99);
            println!(
                "{name:<18} {:>9} runs  p50 {:>6.2} ms  p99 {p99:>6.2} ms  {:>7} bytes",
                history.runs,
                quantile(times, 0.5),
                bytes[size]
            );
            row.push(p99);
        }
        p99_ms.push(row);
    }

    println!("{CLIENTS} clients at once for {THROUGHPUT_FOR:?}:");
    for (query, name) in names.iter().enumerate() {
        for history in &histories {
            let uri = &history.queries[query].1;
            let (served, mut times) =
                support::read_for(&history.router, uri, CLIENTS, THROUGHPUT_FOR, || true).await;
            times.sort_by(f64::total_cmp);
            println!(
                "{name:<18} {:>9} runs {:>8.0} req/s, p99 {:.1} ms",
                history.runs,
                served as f64 / THROUGHPUT_FOR.as_secs_f64(),
                quantile(&times, 0.99)
            );
        }
    }

    for (size, later) in histories.iter().enumerate().skip(1) {
        println!(
            "p99 at {} runs against {} runs:",
            later.runs, histories[0].runs
        );
        for (name, row) in names.iter().zip(&p99_ms) {
            let (base, now) = (row[0], row[size]);
            println!(
                "{name:<18} {base:>7.2} → {now:>7.2} ms  ({:.2}×)",
                now / base
            );
        }
    }
}

/// Stores `runs` runs and names the queries to time on them.
async fn store(runs: i64) -> History {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (state, now) = support::core_with_history(dir.path(), runs).await;
    let router = server::app(state);
    let api = "/api/platform/orchestration/workflows";
    let day_ago = chrono::DateTime::from_timestamp_millis(now - DAY_MS)
        .unwrap()
        .to_rfc3339()
        .replace('+', "%2B");
    let queries = vec![
        ("all, first page", api.to_owned()),
        ("tab active", format!("{api}?tab=active")),
        ("tab pending", format!("{api}?tab=pending")),
        ("tab completed", format!("{api}?tab=completed")),
        ("tab failed", format!("{api}?tab=failed")),
        ("tab slow", format!("{api}?tab=slow")),
        ("type filter", format!("{api}?type=type_03")),
        (
            "engine + failed",
            format!("{api}?engine=custom:etl&tab=failed"),
        ),
        ("last 24 h", format!("{api}?from={day_ago}")),
        // A pasted id: one run at every size.
        ("search, one id", format!("{api}?q=bench-wf-00004242")),
        // Part of an id: bench-wf-00000420 to …429, ten runs at every size. (A tag such as
        // `customer-4242` would not do: it is in 1 run at 10,000 and 110 at 1,000,000, a
        // different answer at each size.)
        ("search, id part", format!("{api}?q=bench-wf-0000042")),
        ("search, common", format!("{api}?q=example.com")),
        ("SSR list page", "/orchestration".to_owned()),
    ];
    let only = std::env::var("STEPLINE_BENCH_ONLY").unwrap_or_default();
    let queries = queries
        .into_iter()
        .filter(|(name, _)| name.contains(only.as_str()))
        .collect();
    History {
        runs,
        router,
        queries,
        _dir: dir,
    }
}
