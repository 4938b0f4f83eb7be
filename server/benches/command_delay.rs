//! Load tool for operators' commands to in-house engines: the delay from an operator's
//! action (its API request sent) to the engine holding the command, by webhook (a real
//! HTTP server on loopback that Stepline POSTs to, answering at once) and by pull (an
//! engine long-polling the API and answering each command), p50 and p99 over
//! `STEPLINE_BENCH_COMMANDS` commands each (default 200), one at a time.
//!
//! `cargo bench -p server --bench command_delay`

mod support;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use server::engines::commands::{Delivery, PushSource, DEFAULT_CONFIRM_WITHIN};
use std::time::Instant;
use tokio::sync::mpsc;
use tower::ServiceExt;

const API: &str = "/api/platform/orchestration";
/// The sources the history's core already lets the tool push as.
const BY_WEBHOOK: &str = "load-0";
const BY_PULL: &str = "load-1";

/// Sends `request` through the router with the tool's token; the JSON answer.
async fn call(router: &axum::Router, mut request: Request<Body>) -> Value {
    request.headers_mut().insert(
        "authorization",
        support::bearer().parse().expect("a header value"),
    );
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(
        status.is_success(),
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}

fn post(uri: &str, body: &Value) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// A run of `source`, still running.
async fn run_of(router: &axum::Router, source: &str) -> String {
    let id = format!("{source}-wf-1");
    let at = chrono::Utc::now().to_rfc3339();
    call(
        router,
        post(
            &format!("{API}/events"),
            &json!({"source": source, "events": [{"type": "workflow_started", "workflow_id": id,
                "workflow_type": "deploy", "at": at}]}),
        ),
    )
    .await;
    id
}

/// Asks `commands` pauses of `source`'s run one at a time, each once `received` has the
/// one before; the milliseconds from each request sent to its receipt, sorted.
async fn delays(
    router: &axum::Router,
    source: &str,
    commands: usize,
    received: &mut mpsc::UnboundedReceiver<Instant>,
) -> Vec<f64> {
    let id = run_of(router, source).await;
    let mut delays = Vec::with_capacity(commands);
    for _ in 0..commands {
        let asked = Instant::now();
        call(
            router,
            post(&format!("{API}/workflows/{id}/pause"), &json!({})),
        )
        .await;
        let got = received
            .recv()
            .await
            .expect("the engine receives the command");
        delays.push(got.duration_since(asked).as_secs_f64() * 1000.0);
    }
    delays.sort_by(f64::total_cmp);
    delays
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let commands = support::setting("STEPLINE_BENCH_COMMANDS", 200);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (mut state, _) = support::core_with_history(dir.path(), 1).await;

    // The webhook engine: notes when each command arrives, accepts it.
    let (hook_tx, mut by_webhook) = mpsc::unbounded_channel();
    let engine = axum::Router::new().route(
        "/commands",
        axum::routing::post(move || {
            let _ = hook_tx.send(Instant::now());
            async { axum::Json(json!({"accepted": true})) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/commands", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, engine).await });

    let source = |name: &str, delivery| PushSource {
        name: name.into(),
        capabilities: app::model::Capabilities::everything(),
        delivery,
        confirm_within: DEFAULT_CONFIRM_WITHIN,
    };
    server::command_pushing_sources(
        &mut state,
        vec![
            source(
                BY_WEBHOOK,
                Delivery::Webhook {
                    url,
                    secret: "a-load-tool-secret-of-32-bytes!!".into(),
                },
            ),
            source(BY_PULL, Delivery::Pull),
        ],
    );
    let router = server::app(state);

    // The pulling engine: long-polls, notes when each command arrives, answers it.
    let (pull_tx, mut by_pull) = mpsc::unbounded_channel();
    {
        let router = router.clone();
        tokio::spawn(async move {
            let pull = format!("{API}/sources/{BY_PULL}/commands");
            loop {
                let pulled = call(
                    &router,
                    Request::get(format!("{pull}?wait=20"))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await;
                for command in pulled["commands"].as_array().into_iter().flatten() {
                    let _ = pull_tx.send(Instant::now());
                    call(
                        &router,
                        post(
                            &format!("{pull}/{}", command["id"]),
                            &json!({"accepted": true}),
                        ),
                    )
                    .await;
                }
            }
        });
    }

    println!("{commands} commands each, one at a time; ms from the operator's request sent to the engine holding the command:");
    for (mode, source, received) in [
        ("webhook", BY_WEBHOOK, &mut by_webhook),
        ("pull", BY_PULL, &mut by_pull),
    ] {
        let delays = delays(&router, source, commands, received).await;
        println!(
            "{mode:<8} p50 {:>6.2} ms   p99 {:>6.2} ms   max {:>6.2} ms",
            support::quantile(&delays, 0.5),
            support::quantile(&delays, 0.99),
            delays.last().copied().unwrap_or(f64::NAN)
        );
    }
}
