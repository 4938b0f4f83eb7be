//! Load tool for the workflow list over a long history: stores N runs (see
//! `support::core_with_history`), then asks the real router (in this process, no socket)
//! for the first page of each tab, a type filter, an engine filter, a date range, a search
//! for one id, a rare and a common search, and the server-rendered list page: p50/p99 with
//! one client, and requests per second with 16 clients at once, for each.
//!
//! `STEPLINE_BENCH_RUNS=10000,100000,1000000 cargo bench -p server --bench list` measures
//! each size in turn (default 100000) and ends with each query's p99 against the first;
//! `STEPLINE_BENCH_ONLY=search` keeps the queries whose name holds that text (to profile
//! one of them).

mod support;

use std::time::{Duration, Instant};
use support::{get, quantile, DAY_MS};

/// Requests timed one after another per query: a p99 of 300 moved by a millisecond between
/// runs on a shared 2-core machine; of 1,000 it is the tenth slowest.
const SEQUENTIAL: usize = 1_000;
/// Clients at once, and for how long, in the throughput part.
const CLIENTS: usize = 16;
const THROUGHPUT_FOR: Duration = Duration::from_secs(3);

/// One size's figures: each query's p99 with one client.
struct Figures {
    runs: i64,
    p99_ms: Vec<(String, f64)>,
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
    let mut all = Vec::new();
    for runs in sizes {
        all.push(measure(runs).await);
    }
    if let [first, rest @ ..] = &all[..] {
        for later in rest {
            println!("p99 at {} runs against {} runs:", later.runs, first.runs);
            for ((name, base), (_, now)) in first.p99_ms.iter().zip(&later.p99_ms) {
                println!(
                    "{name:<18} {base:>7.2} → {now:>7.2} ms  ({:.2}×)",
                    now / base
                );
            }
        }
    }
}

async fn measure(runs: i64) -> Figures {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (state, now) = support::core_with_history(dir.path(), runs).await;
    let router = server::app(state);
    let api = "/api/platform/orchestration/workflows";
    let day_ago = chrono::DateTime::from_timestamp_millis(now - DAY_MS)
        .unwrap()
        .to_rfc3339()
        .replace('+', "%2B");
    let queries = [
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
        // A tag: one run at 10,000, 110 at 1,000,000 (customer-4242 and customer-42420..).
        ("search, rare", format!("{api}?q=customer-4242")),
        ("search, common", format!("{api}?q=example.com")),
        ("SSR list page", "/orchestration".to_owned()),
    ];
    let only = std::env::var("STEPLINE_BENCH_ONLY").unwrap_or_default();
    let queries: Vec<_> = queries
        .into_iter()
        .filter(|(name, _)| name.contains(only.as_str()))
        .collect();
    println!("{runs} runs, {SEQUENTIAL} requests each, one client:");
    println!(
        "{:<18} {:>9} {:>9} {:>9}",
        "query", "p50 ms", "p99 ms", "bytes"
    );
    let mut figures = Figures {
        runs,
        p99_ms: Vec::new(),
    };
    for (name, uri) in &queries {
        // Warm the page cache and the statements.
        get(&router, uri).await;
        let mut times = Vec::with_capacity(SEQUENTIAL);
        let mut bytes = 0;
        for _ in 0..SEQUENTIAL {
            let began = Instant::now();
            bytes = get(&router, uri).await;
            times.push(began.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let p99 = quantile(&times, 0.99);
        println!(
            "{name:<18} {:>9.2} {p99:>9.2} {bytes:>9}",
            quantile(&times, 0.5)
        );
        figures.p99_ms.push(((*name).to_owned(), p99));
    }

    println!("{CLIENTS} clients at once for {THROUGHPUT_FOR:?}:");
    for (name, uri) in &queries {
        let (served, mut times) =
            support::read_for(&router, uri, CLIENTS, THROUGHPUT_FOR, || true).await;
        times.sort_by(f64::total_cmp);
        println!(
            "{name:<18} {:>8.0} req/s, p99 {:.1} ms",
            served as f64 / THROUGHPUT_FOR.as_secs_f64(),
            quantile(&times, 0.99)
        );
    }
    figures
}
