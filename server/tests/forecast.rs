//! Forecasts through the API, on the real router, store and projector: a running run of
//! a type with history is forecast from its steps' earlier durations, told against its SLA
//! target long before 90 % of it has passed, and listed by the "will breach" filter; a type
//! with too little history says so; a run that ends is no longer forecast.

mod common;
use common::client::{at, millis, now_ms, until, Client};
use common::core_state;
use serde_json::{json, Value};
use std::time::Duration;

/// The forecast sweep runs every few seconds; this is ample.
const WITHIN: Duration = Duration::from_secs(30);
const SECOND: i64 = 1_000;

fn started(id: &str, workflow_type: &str, start: i64, sla_seconds: i64) -> Value {
    json!({"type": "workflow_started", "workflow_id": id, "at": at(start),
           "workflow_type": workflow_type, "total_steps": 2, "sla_target_seconds": sla_seconds})
}

fn step(kind: &str, id: &str, at_ms: i64, number: u32, name: &str) -> Value {
    json!({"type": kind, "workflow_id": id, "at": at(at_ms), "step_number": number, "name": name})
}

/// A run of `workflow_type` that ran `extract` for 60 s and then `load` for 30 s, from
/// `start`.
fn earlier_run(id: &str, workflow_type: &str, start: i64) -> Vec<Value> {
    let extracted = start + 60 * SECOND;
    let loaded = extracted + 30 * SECOND;
    vec![
        started(id, workflow_type, start, 600),
        step("step_started", id, start, 1, "extract"),
        step("step_completed", id, extracted, 1, "extract"),
        step("step_started", id, extracted, 2, "load"),
        step("step_completed", id, loaded, 2, "load"),
        json!({"type": "workflow_status_changed", "workflow_id": id, "at": at(loaded),
               "status": "COMPLETED"}),
    ]
}

async fn push(client: &Client, events: Vec<Value>) {
    let (status, body) = client
        .push_raw(&json!({"source": "billing", "events": events}).to_string())
        .await;
    assert!(status.is_success(), "push refused: {status} {body}");
}

/// Pushes a run of `workflow_type` started at `start` with its first step running since.
async fn running(
    client: &Client,
    id: &str,
    workflow_type: &str,
    start: i64,
    sla_seconds: i64,
    first_step: &str,
) {
    let events = vec![
        started(id, workflow_type, start, sla_seconds),
        step("step_started", id, start, 1, first_step),
    ];
    push(client, events).await;
}

async fn alerts_of(client: &Client, id: &str) -> Vec<Value> {
    let (status, page) = client
        .get(&format!(
            "/api/platform/orchestration/alerts?state=all&workflow_id={id}"
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    page["alerts"].as_array().unwrap().clone()
}

async fn forecast_of(client: &Client, id: &str) -> Option<Value> {
    let detail = client.detail(id).await;
    let forecast = detail.get("forecast")?;
    (!forecast.is_null()).then(|| forecast.clone())
}

#[tokio::test]
async fn a_running_run_is_forecast_from_its_types_history_and_its_breach_told_early() {
    let (state, _dir) = core_state::on_temporary_file().await;
    let token = core_state::operator_token(&state).await;
    let client = Client::in_process(server::app(state)).with_token(token);
    let begin = now_ms() - 3_600 * SECOND;
    let mut history = Vec::new();
    for n in 0..6 {
        history.extend(earlier_run(
            &format!("export-wf-{n}"),
            "nightly_export",
            begin + n * 300 * SECOND,
        ));
    }
    push(&client, history).await;

    // Started 10 s ago with a 60 s target: extract has about 50 s left, load 30 s, so it
    // is expected about 90 s after its start, 30 s past its target; 17 % of it has passed.
    let start = now_ms() - 10 * SECOND;
    running(
        &client,
        "export-wf-late",
        "nightly_export",
        start,
        60,
        "extract",
    )
    .await;
    // The same, with 10 minutes to spare.
    running(
        &client,
        "export-wf-easy",
        "nightly_export",
        start,
        600,
        "extract",
    )
    .await;
    // A type nobody ran before.
    running(&client, "novel-wf-1", "brand_new_type", start, 60, "first").await;

    let late = until("the late run's forecast", WITHIN, || {
        forecast_of(&client, "export-wf-late")
    })
    .await;
    assert_eq!(late["runs_seen"], 6, "{late}");
    assert_eq!(late["breach"], "likely", "{late}");
    let expected_in = (millis(&late["expected_at"]) - start) as f64 / 1000.0;
    assert!(
        (80.0..100.0).contains(&expected_in),
        "expected about 90 s after its start, forecast {expected_in} s: {late}"
    );
    assert!(millis(&late["likely_by"]) >= millis(&late["expected_at"]));
    // Its alert fired with the forecast, once.
    let alerts = alerts_of(&client, "export-wf-late").await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["condition"], "forecast_breach");
    assert!(alerts[0]["resolved_at"].is_null());
    assert_eq!(
        alerts_of(&client, "export-wf-easy").await,
        Vec::<Value>::new()
    );
    let detail = client.detail("export-wf-late").await;
    assert_eq!(
        detail["sla_status"], "on_track",
        "the breach is told before the 90 % warning"
    );

    let easy = until("the easy run's forecast", WITHIN, || {
        forecast_of(&client, "export-wf-easy")
    })
    .await;
    assert_eq!(easy["breach"], "unlikely", "{easy}");

    let novel = until("the new type's answer", WITHIN, || {
        forecast_of(&client, "novel-wf-1")
    })
    .await;
    assert_eq!(novel["runs_seen"], 0, "{novel}");
    assert!(
        novel["expected_at"].is_null(),
        "no guess without history: {novel}"
    );

    // The list row carries the forecast too, and the filter keeps the late run alone.
    let (status, list) = client
        .get("/api/platform/orchestration/workflows?will_breach=true")
        .await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<&str> = list["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["export-wf-late"], "{list}");
    assert_eq!(list["workflows"][0]["forecast"]["breach"], "likely");
    let (status, refused) = client
        .get("/api/platform/orchestration/workflows?will_breach=perhaps")
        .await;
    assert_eq!(status, 400, "{refused}");

    // Once it ends, it is no longer forecast nor listed as about to breach.
    let end = now_ms();
    push(
        &client,
        vec![
            step("step_completed", "export-wf-late", end, 1, "extract"),
            json!({"type": "workflow_status_changed", "workflow_id": "export-wf-late",
                   "at": at(end), "status": "COMPLETED"}),
        ],
    )
    .await;
    assert!(forecast_of(&client, "export-wf-late").await.is_none());
    let alerts = alerts_of(&client, "export-wf-late").await;
    assert!(
        !alerts[0]["resolved_at"].is_null(),
        "the alert resolved when the run ended: {alerts:?}"
    );
    let (_, list) = client
        .get("/api/platform/orchestration/workflows?will_breach=true")
        .await;
    assert_eq!(list["workflows"], json!([]), "{list}");
}
