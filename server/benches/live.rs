//! Load tool for ingest and the live side, over a store of N runs:
//! 1. ingest while 16 clients read the list: events per second pushed through the events
//!    API (two pushing sources, 500 events a request) and the readers' requests per second;
//! 2. fan-out on a real server on loopback: C WebSocket clients subscribed to everything
//!    while R events per second are pushed, each event's time from its push to each client
//!    (p50, p99, max), and how many clients had to be resynced;
//! 3. idle: I more clients connected and held past the header timeout, none dropped;
//!
//! and the process's resident memory at each stage (clients included: an upper bound of
//! the server's).
//!
//! `ulimit -n 20000; STEPLINE_BENCH_RUNS=1000000 cargo bench -p server --bench live`
//! (`STEPLINE_BENCH_RUNS` default 100000, `STEPLINE_BENCH_CLIENTS` 200,
//! `STEPLINE_BENCH_RATE` 2000 events/s, `STEPLINE_BENCH_IDLE` 2000).

mod support;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{post_json, quantile, rss_mib, setting};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

const EVENTS: &str = "/api/platform/orchestration/events";
const LIST: &str = "/api/platform/orchestration/workflows";
const INGEST_FOR: Duration = Duration::from_secs(10);
const READERS: usize = 16;
const PUSHERS: usize = 2;
/// Runs per ingest request, five events each.
const RUNS_PER_PUSH: usize = 100;
const FANOUT_FOR: Duration = Duration::from_secs(10);
/// Pushes per second in the fan-out part (the rate is split over them).
const PUSHES_PER_SECOND: u32 = 100;
/// How long clients keep listening after the last push.
const GRACE: Duration = Duration::from_secs(1);
/// Longer than the server's header timeout (10 s): idle live clients must outlast it.
const IDLE_FOR: Duration = Duration::from_secs(15);

/// A run's five events: started, two steps started and completed.
fn run_events(id: &str) -> [Value; 5] {
    let at = chrono::Utc::now().to_rfc3339();
    let step = |kind: &str, n: u32| {
        json!({"type": kind, "workflow_id": id, "at": at, "step_number": n,
               "name": format!("step_{n}")})
    };
    [
        json!({"type": "workflow_started", "workflow_id": id, "at": at,
               "workflow_type": "load_test", "total_steps": 2, "tags": ["load"]}),
        step("step_started", 1),
        step("step_completed", 1),
        step("step_started", 2),
        step("step_completed", 2),
    ]
}

fn push_body(source: &str, ids: impl Iterator<Item = String>) -> (String, usize) {
    let events: Vec<Value> = ids.flat_map(|id| run_events(&id)).collect();
    let count = events.len();
    (
        json!({"source": source, "events": events}).to_string(),
        count,
    )
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let runs = setting("STEPLINE_BENCH_RUNS", 100_000) as i64;
    let clients = setting("STEPLINE_BENCH_CLIENTS", 200);
    let rate = setting("STEPLINE_BENCH_RATE", 2_000);
    let idle = setting("STEPLINE_BENCH_IDLE", 2_000);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (state, _) = support::core_with_history(dir.path(), runs).await;
    let hub = state.hub.clone();
    let router = server::app(state.clone());
    println!("RSS with {runs} runs stored: {:.0} MiB", rss_mib());

    // 1. Ingest while the list is read.
    let pushed = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + INGEST_FOR;
    let pushers: Vec<_> = (0..PUSHERS)
        .map(|pusher| {
            let router = router.clone();
            let pushed = pushed.clone();
            tokio::spawn(async move {
                let mut next = 0;
                while Instant::now() < deadline {
                    let ids = (next..next + RUNS_PER_PUSH).map(|n| format!("ingest-{pusher}-{n}"));
                    next += RUNS_PER_PUSH;
                    let (body, count) = push_body(&format!("load-{pusher}"), ids);
                    post_json(&router, EVENTS, body).await;
                    pushed.fetch_add(count, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let began = Instant::now();
    let (reads, mut read_ms) = support::read_for(&router, LIST, READERS, INGEST_FOR, || true).await;
    for pusher in pushers {
        pusher.await.unwrap();
    }
    let took = began.elapsed().as_secs_f64();
    read_ms.sort_by(f64::total_cmp);
    println!(
        "ingest with {READERS} readers: {:.0} events/s; list {:.0} req/s, p99 {:.1} ms",
        pushed.load(Ordering::Relaxed) as f64 / took,
        reads as f64 / took,
        quantile(&read_ms, 0.99)
    );

    // 2. Fan-out over real WebSockets.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = server::http::ConnectionLimits {
        max_connections: 20_000,
        header_timeout: Duration::from_secs(10),
    };
    tokio::spawn(server::launch_with_listener(
        listener,
        state,
        limits,
        std::future::pending(),
    ));
    let url = format!("ws://{addr}/ws/orchestration");
    let epoch = Instant::now();
    let (stop, stopped) = watch::channel(false);
    let mut watchers = Vec::with_capacity(clients);
    for _ in 0..clients {
        let mut socket = connect(&url).await;
        socket
            .send(Message::text(r#"{"action":"subscribe","all":true}"#))
            .await
            .unwrap();
        let mut stopped = stopped.clone();
        watchers.push(tokio::spawn(async move {
            let (mut latencies, mut resyncs) = (Vec::new(), 0);
            loop {
                tokio::select! {
                    message = socket.next() => match message {
                        Some(Ok(Message::Text(text))) => {
                            if text.contains("\"snapshot\"") {
                                resyncs += 1;
                            } else if let Some(sent_us) = probe_sent(&text) {
                                let now_us = epoch.elapsed().as_micros() as f64;
                                latencies.push((now_us - sent_us) / 1000.0);
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                    _ = stopped.changed() => break,
                }
            }
            (latencies, resyncs)
        }));
    }
    println!("RSS with {clients} live clients: {:.0} MiB", rss_mib());
    let seq_before = hub.current_seq();
    let per_push = (rate / PUSHES_PER_SECOND as usize / 5).max(1);
    let mut tick = tokio::time::interval(Duration::from_secs(1) / PUSHES_PER_SECOND);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let fanout_until = Instant::now() + FANOUT_FOR;
    let mut sent_events = 0;
    let mut push = 0;
    while Instant::now() < fanout_until {
        tick.tick().await;
        let sent_us = epoch.elapsed().as_micros();
        let ids = (0..per_push).map(|i| format!("probe-{sent_us}-{push}-{i}"));
        let (body, count) = push_body("fanout", ids);
        post_json(&router, EVENTS, body).await;
        sent_events += count;
        push += 1;
    }
    let rss_live = rss_mib();
    // A second's grace for the last pushes to arrive; what has not by then is counted
    // as missing below.
    tokio::time::sleep(GRACE).await;
    // Counted after it: on PostgreSQL the hub sends what the shared log gained, a moment
    // after the push that caused it was answered.
    let published = hub.current_seq() - seq_before;
    let mut latencies = Vec::new();
    let mut resynced = 0;
    stop.send(true).unwrap();
    for watcher in watchers {
        let (mut got, resyncs) = watcher.await.unwrap();
        latencies.append(&mut got);
        resynced += usize::from(resyncs > 0);
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "fan-out: {sent_events} events pushed in {FANOUT_FOR:?} ({:.0}/s, {published} live \
         events published), {} of {} deliveries to {clients} clients: event → client p50 \
         {:.1} ms, p99 {:.1} ms, max {:.1} ms; {resynced} clients resynced; RSS {rss_live:.0} MiB",
        sent_events as f64 / FANOUT_FOR.as_secs_f64(),
        latencies.len(),
        published as usize * clients,
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
    );

    // 3. Idle clients, held.
    let (stop, stopped) = watch::channel(false);
    let mut held = Vec::with_capacity(idle);
    for _ in 0..idle {
        let mut socket = connect(&url).await;
        let mut stopped = stopped.clone();
        held.push(tokio::spawn(async move {
            tokio::select! {
                _ = socket.next() => false,
                _ = stopped.changed() => true,
            }
        }));
    }
    println!(
        "RSS with {idle} idle clients connected: {:.0} MiB",
        rss_mib()
    );
    tokio::time::sleep(IDLE_FOR).await;
    stop.send(true).unwrap();
    let mut still_open = 0;
    for client in held {
        still_open += usize::from(client.await.unwrap());
    }
    println!("idle: {still_open} of {idle} clients still connected after {IDLE_FOR:?}");
}

/// A live client, connected and greeted by the hub.
async fn connect(
    url: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().expect("a WebSocket URL");
    request.headers_mut().insert(
        "authorization",
        support::bearer().parse().expect("a header value"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    match socket.next().await {
        Some(Ok(Message::Text(text))) if text.contains("hello") => socket,
        other => panic!("expected the hub's hello, got {other:?}"),
    }
}

/// When the probe run a live message is about was pushed (µs since the tool's epoch).
fn probe_sent(text: &str) -> Option<f64> {
    let start = text.find("probe-")? + "probe-".len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}
