//! Soak: the demo workload at ten times its rate for an hour, with retention on, while a
//! client reads the list once a second. Every minute it prints the process's resident
//! memory, the database's size on disk (with its write-ahead log), the runs stored, and
//! the warnings and errors logged and failed reads so far; at the end, how much memory
//! and the file grew over the last half of the run (a store that levels off grows by
//! less than 10 %).
//!
//! `cargo bench -p server --bench soak` (`STEPLINE_BENCH_MINUTES` default 60,
//! `STEPLINE_BENCH_RETAIN` default "15m": closed runs older than that are deleted;
//! `STEPLINE_BENCH_SPEED` default 10: times the demo's pace and each type's concurrency).
//! Retention must be well under half the run for the last half to be its steady state.

mod support;

use server::engines::builtin::definition::load_dir;
use server::engines::builtin::demo;
use server::retention::RetentionSettings;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{rss_mib, setting};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const LIST: &str = "/api/platform/orchestration/workflows";
const SAMPLE_EVERY: Duration = Duration::from_secs(60);

/// Counts the warnings and errors the server logs (each also printed on stderr).
#[derive(Clone, Default)]
struct Complaints(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Complaints {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() <= tracing::Level::WARN {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One minute's reading.
struct Sample {
    minute: u64,
    rss_mib: f64,
    file_mib: f64,
    runs: i64,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let minutes = setting("STEPLINE_BENCH_MINUTES", 60) as u64;
    let speed = setting("STEPLINE_BENCH_SPEED", 10).max(1);
    let retain: Duration = std::env::var("STEPLINE_BENCH_RETAIN")
        .unwrap_or_else(|_| "15m".into())
        .parse::<humantime::Duration>()
        .expect("STEPLINE_BENCH_RETAIN: a duration such as 15m")
        .into();
    let complaints = Complaints::default();
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("warn,sqlx=error"))
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(complaints.clone())
        .init();

    let dir = tempfile::tempdir().expect("a temporary folder");
    let db = dir.path().join("soak.db");
    let mut definitions =
        load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows"))
            .expect("the demo's workflow definitions");
    for definition in &mut definitions {
        definition.max_concurrent = definition.max_concurrent.map(|n| n * speed as u32);
    }
    let options = leptos::config::LeptosOptions::builder()
        .output_name("stepline")
        .build();
    let core = server::start_core(
        &format!("sqlite://{}", db.display()),
        options,
        Some(server::BuiltinSettings {
            definitions,
            ..Default::default()
        }),
    )
    .await
    .expect("core");
    let store = core.state.store.clone();
    support::authorize(&core.state, &[]).await;
    let router = server::app(core.state);
    let pace = demo::DemoSettings::default();
    tokio::spawn(demo::run(
        core.builtin.expect("the built-in engine"),
        demo::DemoSettings {
            open_runs: pace.open_runs * speed,
            every: pace.every / speed as u32,
        },
    ));
    tokio::spawn(server::retention::run(
        store.clone(),
        RetentionSettings {
            runs: Some(retain),
            ..RetentionSettings::default()
        },
    ));

    // A reader: the list's first page once a second; anything but 200 is a failure.
    let failed_reads = Arc::new(AtomicUsize::new(0));
    let reads = Arc::new(AtomicUsize::new(0));
    {
        let (router, failed_reads, reads) = (router.clone(), failed_reads.clone(), reads.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if support::try_get(&router, LIST).await.is_err() {
                    failed_reads.fetch_add(1, Ordering::Relaxed);
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    println!(
        "soak: demo at {speed}x for {minutes} min, closed runs kept {}, list read every second",
        humantime::format_duration(retain)
    );
    println!("minute   RSS MiB   file MiB   runs stored   warnings+errors   failed reads");
    let began = Instant::now();
    let mut samples = Vec::new();
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + SAMPLE_EVERY, SAMPLE_EVERY);
    for minute in 1..=minutes {
        tick.tick().await;
        let runs: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(runs), 0) FROM workflow_counts")
            .fetch_one(store.sqlite_pool().expect("the benchmarks run on SQLite"))
            .await
            .expect("runs stored");
        let sample = Sample {
            minute,
            rss_mib: rss_mib(),
            file_mib: file_mib(&db),
            runs,
        };
        println!(
            "{:>6}   {:>7.0}   {:>8.1}   {:>11}   {:>15}   {:>12}",
            sample.minute,
            sample.rss_mib,
            sample.file_mib,
            sample.runs,
            complaints.0.load(Ordering::Relaxed),
            failed_reads.load(Ordering::Relaxed)
        );
        samples.push(sample);
    }
    let growth = |of: fn(&Sample) -> f64| {
        let middle = samples.len().checked_sub(1).map(|last| last / 2);
        let (Some(middle), Some(last)) = (middle.and_then(|i| samples.get(i)), samples.last())
        else {
            return f64::NAN;
        };
        (of(last) - of(middle)) / of(middle) * 100.0
    };
    println!(
        "after {:.0} min: over the last half, RSS grew {:+.1} %, the file {:+.1} %, runs stored \
         {:+.1} %; {} warnings and errors logged, {} of {} reads failed",
        began.elapsed().as_secs_f64() / 60.0,
        growth(|s| s.rss_mib),
        growth(|s| s.file_mib),
        growth(|s| s.runs as f64),
        complaints.0.load(Ordering::Relaxed),
        failed_reads.load(Ordering::Relaxed),
        reads.load(Ordering::Relaxed),
    );
}

/// The database's size on disk: the file, its write-ahead log and shared memory.
fn file_mib(db: &std::path::Path) -> f64 {
    let bytes: u64 = ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut path = db.as_os_str().to_owned();
            path.push(suffix);
            std::fs::metadata(path).ok().map(|meta| meta.len())
        })
        .sum();
    bytes as f64 / (1024.0 * 1024.0)
}
