//! The HTTP surface, request by request (`oneshot` against the real router, store and
//! projector on a temporary SQLite file).

mod common;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use common::client::Client;
use common::core_state;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// The router on a temporary store, and the client every test speaks through.
struct TestServer {
    client: Client,
    router: Router,
    /// The client's API token (an operator's, who may push as the test sources).
    token: String,
    _dir: tempfile::TempDir,
}

impl TestServer {
    async fn start() -> Self {
        let (state, dir) = core_state::on_temporary_file().await;
        Self::on(state, dir).await
    }

    async fn on(state: server::http::AppState, dir: tempfile::TempDir) -> Self {
        let token = core_state::operator_token(&state).await;
        let router = server::app(state);
        Self {
            client: Client::in_process(router.clone()).with_token(token.clone()),
            router,
            token,
            _dir: dir,
        }
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    async fn push(&self, events: Value) -> (StatusCode, Value) {
        self.push_raw(&json!({"source": "billing", "events": events}).to_string())
            .await
    }
}

impl std::ops::Deref for TestServer {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339()
}

fn started(id: &str) -> Value {
    json!({
        "type": "workflow_started", "workflow_id": id, "at": now(),
        "workflow_type": "trial_activation", "total_steps": 15, "sla_target_seconds": 300,
        "triggered_by": "user@example.com", "trigger_type": "manual", "priority": "HIGH",
        "tags": ["trial", "customer-123"]
    })
}

fn step(kind: &str, id: &str, step: u32) -> Value {
    json!({"type": kind, "workflow_id": id, "at": now(), "step_number": step,
           "name": format!("step_{step}")})
}

#[tokio::test]
async fn an_empty_store_lists_nothing() {
    let server = TestServer::start().await;
    let (status, body) = server.get("/api/platform/orchestration/workflows").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["total"], 0);
    assert_eq!(body["workflows"], json!([]));
    assert_eq!(
        body["stats"],
        json!({"active": 0, "pending": 0, "completed_today": 0, "failed_today": 0,
               "sla_compliance_today": null,
               "tabs": {"active": 0, "pending": 0, "completed": 0, "failed": 0, "slow": 0},
               "engines": []})
    );
}

#[tokio::test]
async fn pushed_events_show_in_the_list_and_the_detail() {
    let server = TestServer::start().await;
    let mut events = vec![started("trial-wf-12345")];
    for n in 1..=6 {
        events.push(step("step_started", "trial-wf-12345", n));
        events.push(step("step_completed", "trial-wf-12345", n));
    }
    events.push(step("step_started", "trial-wf-12345", 7));
    events.push(
        json!({"type": "log_lines", "workflow_id": "trial-wf-12345", "at": now(),
                       "step_number": 7, "lines": ["Loading context file...", "Progress: 45%"]}),
    );
    let (status, body) = server.push(Value::Array(events)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["applied"], 15);

    let (status, list) = server
        .get("/api/platform/orchestration/workflows?status=RUNNING&limit=50")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 1);
    assert_eq!(list["stats"]["active"], 1);
    let row = &list["workflows"][0];
    assert_eq!(row["id"], "trial-wf-12345");
    assert_eq!(row["engine"], "custom:billing");
    assert_eq!(
        row["progress"],
        json!({"current_step": 7, "total_steps": 15, "percent": 47})
    );
    assert_eq!(row["sla_status"], "on_track");
    assert_eq!(row["priority"], "HIGH");
    assert_eq!(row["can_pause"], false, "a pushed run offers no actions");

    let (status, detail) = server
        .get("/api/platform/orchestration/workflows/trial-wf-12345")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["execution"]["current_step"], 7);
    let steps = detail["execution"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 7);
    assert_eq!(steps[6]["status"], "RUNNING");
    assert_eq!(
        steps[6]["logs"],
        json!(["Loading context file...", "Progress: 45%"])
    );
    assert_eq!(detail["metadata"]["tags"], json!(["trial", "customer-123"]));

    let (_, others) = server
        .get("/api/platform/orchestration/workflows?type=data_sync")
        .await;
    assert_eq!(others["total"], 0);
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_client_errors() {
    let server = TestServer::start().await;
    let (status, body) = server
        .get("/api/platform/orchestration/workflows/nope-123")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    assert!(body["message"].as_str().unwrap().contains("nope-123"));

    let (status, body) = server
        .get("/api/platform/orchestration/workflows/bad%20id")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "bad_request");

    let (status, body) = server.get("/api/platform/orchestration/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn bad_list_parameters_are_explained() {
    let server = TestServer::start().await;
    for (query, needle) in [
        ("status=BOGUS", "unknown status"),
        ("limit=0", "limit"),
        ("limit=many", "limit"),
        ("cursor=xyz", "cursor"),
    ] {
        let (status, body) = server
            .get(&format!("/api/platform/orchestration/workflows?{query}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(
            body["message"].as_str().unwrap().contains(needle),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn malformed_batches_are_refused_with_the_offending_event() {
    let server = TestServer::start().await;

    let (status, body) = server.push_raw("{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "bad_request");

    let (status, body) = server
        .push_raw(&json!({"source": "Not Valid!", "events": [started("a")]}).to_string())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("source"));

    let (status, _) = server.push(json!([])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (status, body) = server
        .push(
            json!([started("wf-ok"), {"type": "teleported", "workflow_id": "wf-ok", "at": now()}]),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["event_index"], 1);
    assert!(
        body["message"].as_str().unwrap().contains("teleported"),
        "{body}"
    );

    let (status, body) = server
        .push(json!([
            started("wf-ooo"),
            step("step_completed", "wf-ooo", 3)
        ]))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["event_index"], 1);

    let (status, body) = server.push(json!([step("step_started", "ghost", 1)])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["message"].as_str().unwrap().contains("ghost"));

    let many: Vec<Value> = (0..1001).map(|i| started(&format!("wf-{i}"))).collect();
    let (status, _) = server.push(Value::Array(many)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let huge = format!(
        "{{\"source\":\"billing\",\"events\":[{{\"pad\":\"{}\"}}]}}",
        "x".repeat(5 * 1024 * 1024)
    );
    let (status, body) = server.push_raw(&huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"], "payload_too_large");

    // Nothing of a refused batch was applied.
    let (_, list) = server.get("/api/platform/orchestration/workflows").await;
    assert_eq!(list["total"], 0, "{list}");
}

#[tokio::test]
async fn the_page_is_server_rendered_with_untrusted_text_escaped() {
    let server = TestServer::start().await;
    let mut hostile = started("wf-html");
    hostile["triggered_by"] = json!("<script>alert(1)</script>");
    let (status, _) = server.push(json!([hostile])).await;
    assert_eq!(status, StatusCode::OK);

    let (status, html) = server
        .send_text(Request::get("/orchestration").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-workflow-id=\"wf-html\""), "{html}");
    assert!(html.contains("1/15 (7%)"));
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));

    let (status, _) = server
        .send_text(Request::get("/no-such-page").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn actions_the_engine_cannot_honour_are_refused_with_the_reason() {
    let server = TestServer::start().await;
    let (status, _) = server
        .push(json!([
            started("wf-act"),
            step("step_started", "wf-act", 1)
        ]))
        .await;
    assert_eq!(status, StatusCode::OK);

    for action in ["pause", "resume", "cancel", "retry", "clone"] {
        let (status, body) = server
            .post_text(
                &format!("/api/platform/orchestration/workflows/wf-act/{action}"),
                "",
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{action}: {body}");
        assert!(
            body.contains(&format!("cannot {action}")),
            "{action}: {body}"
        );
        assert!(body.contains("custom:billing"), "{body}");
    }

    let (status, _) = server
        .post_text("/api/platform/orchestration/workflows/ghost/pause", "")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = server
        .post_text(
            "/api/platform/orchestration/workflows/wf-act/cancel",
            "{\"reason\": 5}",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = server
        .post_text(
            "/api/platform/orchestration/workflows/wf-act/retry",
            "{\"from_step\": 0}",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn export_downloads_the_whole_trace() {
    let server = TestServer::start().await;
    let lines: Vec<String> = (0..250).map(|i| format!("line {i}")).collect();
    let (status, _) = server
        .push(json!([
            started("wf-export"),
            step("step_started", "wf-export", 1),
            {"type": "log_lines", "workflow_id": "wf-export", "at": now(), "step_number": 1,
             "lines": lines}
        ]))
        .await;
    assert_eq!(status, StatusCode::OK);

    let response = server
        .router
        .clone()
        .oneshot(
            Request::get("/api/platform/orchestration/workflows/wf-export/export")
                .header("authorization", server.bearer())
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"wf-export.json\""
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let trace: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(trace["id"], "wf-export");
    assert_eq!(
        trace["execution"]["steps"][0]["logs"]
            .as_array()
            .unwrap()
            .len(),
        250,
        "the export keeps every log line, not just the tail"
    );

    let (status, _) = server
        .get("/api/platform/orchestration/workflows/nope/export")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_unknown_action_is_not_found() {
    let server = TestServer::start().await;
    let (status, body) = server
        .post_text("/api/platform/orchestration/workflows/wf-1/explode", "")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("explode"), "{body}");
}

#[tokio::test]
async fn a_runs_reference_in_its_engine_is_shown_cut_to_bounds_and_searched() {
    let server = TestServer::start().await;
    let long_ref = format!("workflow orders/2026/{} · run 0194", "x".repeat(2_000));
    let (status, body) = server
        .push_raw(
            &json!({"source": "billing", "events": [
                {"type": "workflow_started", "workflow_id": "bill-ref-1", "at": now(),
                 "workflow_type": "invoice_run", "engine_ref": "workflow orders/7 · run 0194ab"},
                {"type": "workflow_started", "workflow_id": "bill-ref-2", "at": now(),
                 "workflow_type": "invoice_run", "engine_ref": long_ref},
                {"type": "workflow_started", "workflow_id": "bill-ref-3", "at": now(),
                 "workflow_type": "invoice_run"}
            ]})
            .to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list = "/api/platform/orchestration/workflows";
    let (_, body) = server.get(&format!("{list}?q=orders%2F7")).await;
    assert_eq!(body["total"], 1, "{body}");
    assert_eq!(body["workflows"][0]["id"], "bill-ref-1");
    assert_eq!(
        body["workflows"][0]["engine_ref"],
        "workflow orders/7 · run 0194ab"
    );
    let (_, detail) = server.get(&format!("{list}/bill-ref-1")).await;
    assert_eq!(
        detail["metadata"]["engine_ref"],
        "workflow orders/7 · run 0194ab"
    );
    // Over its bound, the reference is stored cut (and says so), the run kept.
    let (_, detail) = server.get(&format!("{list}/bill-ref-2")).await;
    let cut = detail["metadata"]["engine_ref"].as_str().unwrap();
    assert!(cut.len() <= 1_100 && cut.ends_with("bytes cut]"), "{cut}");
    let (_, detail) = server.get(&format!("{list}/bill-ref-3")).await;
    assert_eq!(detail["metadata"]["engine_ref"], Value::Null);
}

#[tokio::test]
async fn tabs_search_and_engine_filter_the_list() {
    let server = TestServer::start().await;
    let (status, _) = server
        .push_raw(
            &json!({"source": "billing", "events": [
                {"type": "workflow_started", "workflow_id": "bill-wf-1", "at": now(),
                 "workflow_type": "invoice_run", "tags": ["customer_7"], "sla_target_seconds": 60},
                {"type": "workflow_started", "workflow_id": "bill-wf-2", "at": now(),
                 "workflow_type": "invoice_run", "status": "PENDING"},
                {"type": "workflow_started", "workflow_id": "bill-wf-3", "at": now(),
                 "workflow_type": "refund_run", "tags": ["customer%7"]},
                {"type": "workflow_status_changed", "workflow_id": "bill-wf-3", "at": now(),
                 "status": "FAILED", "reason": "no funds"}
            ]})
            .to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let ids = |body: &Value| -> Vec<String> {
        body["workflows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let list = "/api/platform/orchestration/workflows";
    let (_, body) = server.get(&format!("{list}?tab=active")).await;
    assert_eq!(ids(&body), ["bill-wf-1"]);
    assert_eq!(
        body["stats"]["tabs"],
        json!({"active": 1, "pending": 1, "completed": 0, "failed": 1, "slow": 0})
    );
    let (_, body) = server.get(&format!("{list}?tab=failed")).await;
    assert_eq!(ids(&body), ["bill-wf-3"]);
    // `%` and `_` in the search are literal, not wildcards.
    let (_, body) = server.get(&format!("{list}?q=customer%25")).await;
    assert_eq!(ids(&body), ["bill-wf-3"]);
    let (_, body) = server.get(&format!("{list}?q=CUSTOMER_")).await;
    assert_eq!(ids(&body), ["bill-wf-1"]);
    let (_, body) = server
        .get(&format!("{list}?engine=custom:billing&sort=oldest"))
        .await;
    assert_eq!(ids(&body), ["bill-wf-1", "bill-wf-2", "bill-wf-3"]);
    let (_, body) = server.get(&format!("{list}?engine=builtin")).await;
    assert_eq!(body["total"], 0);
    let (status, body) = server.get(&format!("{list}?tab=stuck")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = server.get(&format!("{list}?from=yesterday")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// An instant `seconds_ago` before now, as the API writes them.
fn ago(seconds_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(seconds_ago)).to_rfc3339()
}

#[tokio::test]
async fn analytics_sum_up_the_runs_that_ended_in_the_period() {
    let server = TestServer::start().await;
    // Three data_sync runs of 100, 200 and 300 s (target 250 s: the last breaches it),
    // whose "extract" step took 10, 20 (after a retry) and 30 s; one run failed after 50 s.
    let mut events = Vec::new();
    for (i, (run_s, step_s, retried)) in [(100, 10, false), (200, 20, true), (300, 30, false)]
        .into_iter()
        .enumerate()
    {
        let id = format!("an-wf-{i}");
        let start = 1_000;
        events.push(
            json!({"type": "workflow_started", "workflow_id": id, "at": ago(start),
            "workflow_type": "data_sync", "sla_target_seconds": 250, "total_steps": 1}),
        );
        events.push(
            json!({"type": "step_started", "workflow_id": id, "at": ago(start),
            "step_number": 1, "name": "extract"}),
        );
        if retried {
            events.push(json!({"type": "step_attempt_failed", "workflow_id": id,
                "at": ago(start - 5), "step_number": 1, "error": "timeout"}));
            events.push(
                json!({"type": "step_started", "workflow_id": id, "at": ago(start - 6),
                "step_number": 1}),
            );
        }
        events.push(json!({"type": "step_completed", "workflow_id": id,
            "at": ago(start - step_s), "step_number": 1}));
        events.push(json!({"type": "workflow_status_changed", "workflow_id": id,
            "at": ago(start - run_s), "status": "COMPLETED"}));
    }
    events.push(
        json!({"type": "workflow_started", "workflow_id": "an-wf-failed", "at": ago(500),
        "workflow_type": "data_sync", "sla_target_seconds": 250}),
    );
    events.push(
        json!({"type": "workflow_status_changed", "workflow_id": "an-wf-failed",
        "at": ago(450), "status": "FAILED", "reason": "boom"}),
    );
    // Still running: not in the analytics.
    events.push(
        json!({"type": "workflow_started", "workflow_id": "an-wf-open", "at": ago(10),
        "workflow_type": "trial_activation"}),
    );
    let (status, body) = server.push(json!(events)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) = server
        .get("/api/platform/orchestration/analytics?period=24h")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["period"], "24h");
    assert_eq!(body["runs"], 4);
    assert_eq!(
        body["sla_compliance"],
        json!({"percent": 75, "on_track": 3, "breached": 1})
    );
    // (100 + 200 + 300 + 50) / 4 = 162.5 s.
    assert_eq!(body["avg_duration_by_type"], json!({"data_sync": 163}));
    let p95 = body["p95_duration_by_type"]["data_sync"].as_f64().unwrap();
    assert!((p95 - 300.0).abs() <= 15.0, "p95 {p95} is 300 s within 5 %");
    assert_eq!(
        body["failure_rate"],
        json!({"overall": 25, "by_type": {"data_sync": 25}})
    );
    let slowest = &body["slowest_steps"][0];
    assert_eq!(slowest["step_name"], "extract");
    assert_eq!(slowest["avg_duration_seconds"], 20.0);
    assert_eq!(slowest["occurrences"], 3);
    assert_eq!(body["retry_rate"]["overall"], 33);
    assert_eq!(body["retry_rate"]["top_steps"][0]["retry_rate"], 33);

    let (status, _) = server
        .get("/api/platform/orchestration/analytics?period=1y")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = server.get("/api/platform/orchestration/analytics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["period"], "24h");
}

#[tokio::test]
async fn a_retried_run_counts_once_with_its_latest_outcome() {
    let server = TestServer::start().await;
    let status = |at: i64, status: &str| {
        json!({"type": "workflow_status_changed", "workflow_id": "re-wf", "at": ago(at),
               "status": status})
    };
    let (code, body) = server
        .push(json!([
            {"type": "workflow_started", "workflow_id": "re-wf", "at": ago(100),
             "workflow_type": "data_sync"},
            status(90, "FAILED")
        ]))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (_, body) = server.get("/api/platform/orchestration/analytics").await;
    assert_eq!(body["runs"], 1);
    assert_eq!(body["failure_rate"]["overall"], 100);

    let (code, body) = server
        .push(json!([status(80, "RUNNING"), status(70, "COMPLETED")]))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (_, body) = server.get("/api/platform/orchestration/analytics").await;
    assert_eq!(body["runs"], 1, "the failure was replaced, not added to");
    assert_eq!(body["failure_rate"]["overall"], 0);
    assert_eq!(body["avg_duration_by_type"]["data_sync"], 30);
}

#[tokio::test]
async fn analytics_follow_a_date_range_like_the_list() {
    let server = TestServer::start().await;
    let (code, body) = server
        .push(json!([
            {"type": "workflow_started", "workflow_id": "range-wf", "at": ago(100),
             "workflow_type": "data_sync"},
            {"type": "workflow_status_changed", "workflow_id": "range-wf", "at": ago(40),
             "status": "COMPLETED"}
        ]))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let day = |offset: i64| {
        (chrono::Utc::now() + chrono::Duration::days(offset))
            .format("%Y-%m-%d")
            .to_string()
    };
    let analytics = "/api/platform/orchestration/analytics";
    let (status, body) = server
        .get(&format!("{analytics}?from={}&to={}", day(-1), day(0)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["runs"], 1);
    assert_eq!(body["period"], Value::Null);
    let (_, body) = server
        .get(&format!("{analytics}?from=2026-01-01&to=2026-01-02"))
        .await;
    assert_eq!(body["runs"], 0, "a range before the run");
    for bad in [
        "from=2026-01-02&to=2026-01-01",
        "from=2025-01-01&to=2026-01-01",
        "period=24h&from=2026-01-01",
        "to=2026-01-01",
    ] {
        let (status, body) = server.get(&format!("{analytics}?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

/// The events of a finished `etl` run whose one step, "load", took `load_s` seconds,
/// started `start` seconds ago.
fn etl_run(id: &str, load_s: i64, start: i64) -> Vec<Value> {
    vec![
        json!({"type": "workflow_started", "workflow_id": id, "at": ago(start),
            "workflow_type": "etl", "total_steps": 1}),
        json!({"type": "step_started", "workflow_id": id, "at": ago(start),
            "step_number": 1, "name": "load"}),
        json!({"type": "step_completed", "workflow_id": id, "at": ago(start - load_s),
            "step_number": 1}),
        json!({"type": "workflow_status_changed", "workflow_id": id,
            "at": ago(start - load_s), "status": "COMPLETED"}),
    ]
}

#[tokio::test]
async fn the_gantt_svg_flags_a_step_far_slower_than_usual() {
    let server = TestServer::start().await;
    let svg_of = |id: &str| format!("/api/platform/orchestration/workflows/{id}/gantt.svg");
    // Six earlier runs whose "load" took 2 s; then one where it took 12 s.
    let mut events: Vec<Value> = (0..6)
        .flat_map(|i| etl_run(&format!("etl-usual-{i}"), 2, 1_000 + i * 10))
        .collect();
    events.extend(etl_run("etl-slow", 12, 500));
    let (status, body) = server.push(json!(events)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, svg) = server
        .get_text(&format!("{}?width=900", svg_of("etl-slow")))
        .await;
    assert_eq!(status, StatusCode::OK);
    // Its colours come from the console's stylesheet (the theme); then the chart.
    let chart = svg
        .strip_prefix("<?xml-stylesheet href=\"/pkg/stepline.css\" type=\"text/css\"?>\n")
        .unwrap_or_else(|| panic!("no stylesheet first: {}", &svg[..80]));
    assert!(chart.starts_with("<svg"), "{}", &chart[..60]);
    // Against the seven runs (six of 2 s, one of 12 s): p50 ≈ 2 s, p95 ≈ 12 s, so 12 s is
    // no outlier there; a usual run is not flagged either.
    let (_, usual) = server.get_text(&svg_of("etl-usual-0")).await;
    assert!(!usual.contains("× usual"), "a 2 s load is usual");
    assert!(usual.contains(r#"data-step="1" data-attempt="1" data-tone="succeeded""#));

    // Thirty more usual runs push p95 down to 2 s: now 12 s is flagged, 6× the median.
    let events: Vec<Value> = (0..30)
        .flat_map(|i| etl_run(&format!("etl-more-{i}"), 2, 900))
        .collect();
    let (status, body) = server.push(json!(events)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, svg) = server.get_text(&svg_of("etl-slow")).await;
    let flag = svg
        .lines()
        .find(|line| line.contains("× usual"))
        .unwrap_or_else(|| panic!("no slow flag in {svg}"));
    assert!(
        flag.contains("slow: 6.") || flag.contains("slow: 5."),
        "{flag}"
    );

    for (uri, expected) in [
        (
            "/api/platform/orchestration/workflows/etl-slow/gantt.svg?width=10",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/platform/orchestration/workflows/etl-slow/gantt.svg?width=wide",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/platform/orchestration/workflows/no-such-run/gantt.svg",
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/platform/orchestration/workflows/bad%20id/gantt.svg",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, _) = server.get(uri).await;
        assert_eq!(status, expected, "{uri}");
    }
}

#[tokio::test]
async fn every_refusal_is_json_even_axums_own() {
    let server = TestServer::start().await;
    let is_json_error = |status: StatusCode, body: &str| {
        let value: Value =
            serde_json::from_str(body).unwrap_or_else(|_| panic!("{status}: not JSON: {body:?}"));
        assert!(
            value["error"].is_string() && value["message"].is_string(),
            "{value}"
        );
        value
    };
    // A body over the limit, on an action and on the start.
    let big = format!("{{\"reason\":\"{}\"}}", "r".repeat(3 * 1024 * 1024));
    for uri in [
        "/api/platform/orchestration/workflows/wf-1/cancel",
        "/api/platform/orchestration/workflows",
    ] {
        let (status, body) = server.post_text(uri, &big).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
        let value = is_json_error(status, &body);
        assert_eq!(value["error"], "payload_too_large");
    }
    // A path that is not UTF-8.
    let (status, body) = server
        .get_text("/api/platform/orchestration/workflows/%FF%FE")
        .await;
    assert!(status.is_client_error(), "{status}");
    is_json_error(status, &body);
    // A method the route does not take.
    let (status, body) = server
        .send_text(
            Request::delete("/api/platform/orchestration/workflows")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(is_json_error(status, &body)["error"], "method_not_allowed");
}

/// Calls a page's server function as the browser does (a form-encoded POST).
async fn call_server_fn(server: &TestServer, name: &str, form: String) -> (StatusCode, Value) {
    let (status, body) = server
        .send_text(
            Request::post(format!("/api/{name}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(form))
                .unwrap(),
        )
        .await;
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

#[tokio::test]
async fn the_pages_server_functions_answer_client_mistakes_with_4xx_json() {
    let server = TestServer::start().await;
    let (status, body) = server.push(json!([started("wf-page")])).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) = call_server_fn(&server, "get_workflow", "id=wf-page".into()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], "wf-page");

    let cases = [
        ("get_workflow", "id=a%2Fb".to_owned(), 400, "bad_request"),
        (
            "get_workflow",
            format!("id={}", "x".repeat(300)),
            400,
            "bad_request",
        ),
        ("get_workflow", String::new(), 400, "bad_request"),
        (
            "act_on_workflow",
            "id=wf-page&action=explode".into(),
            400,
            "bad_request",
        ),
        (
            "act_on_workflow",
            "id=wf-none&action=pause".into(),
            404,
            "not_found",
        ),
        (
            "act_on_workflow",
            "id=wf-page&action=pause".into(),
            409,
            "conflict",
        ),
        (
            "get_step_norms",
            format!("workflow_type={}", "t".repeat(300)),
            400,
            "bad_request",
        ),
        (
            "list_workflows",
            format!("query[text]={}", "s".repeat(200_000)),
            400,
            "bad_request",
        ),
        (
            "get_workflow",
            format!("id={}", "x".repeat(3 * 1024 * 1024)),
            413,
            "payload_too_large",
        ),
    ];
    for (name, form, status, code) in cases {
        let (got, body) = call_server_fn(&server, name, form.clone()).await;
        let shown: String = form.chars().take(60).collect();
        assert_eq!(got.as_u16(), status, "{name}({shown}): {body}");
        assert_eq!(body["error"], code, "{name}({shown}): {body}");
        assert!(body["message"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn the_detail_api_pages_through_a_run_with_many_steps() {
    let server = TestServer::start().await;
    let id = "wf-many";
    let mut events = vec![started(id)];
    let total = 2_500;
    for number in 1..=total {
        events.push(step("step_scheduled", id, number));
    }
    for chunk in events.chunks(1_000) {
        let (status, body) = server.push(json!(chunk)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let detail = |query: &str| format!("/api/platform/orchestration/workflows/{id}{query}");
    let (status, first) = server.get(&detail("")).await;
    assert_eq!(status, StatusCode::OK);
    let steps = first["execution"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1_000);
    assert_eq!(steps[0]["step_number"], 1);
    assert_eq!(
        first["execution"]["steps_page"],
        json!({"from": 1, "limit": 1000, "total": total, "next_from": 1001})
    );
    let mut seen = steps.len();
    let mut next = first["execution"]["steps_page"]["next_from"].as_u64();
    while let Some(from) = next {
        let (status, page) = server
            .get(&detail(&format!("?steps_from={from}&steps_limit=700")))
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let steps = page["execution"]["steps"].as_array().unwrap();
        assert_eq!(steps[0]["step_number"], from);
        seen += steps.len();
        next = page["execution"]["steps_page"]["next_from"].as_u64();
    }
    assert_eq!(seen, total as usize);
    for bad in [
        "?steps_limit=0",
        "?steps_limit=5001",
        "?steps_from=-1",
        "?steps_from=x",
    ] {
        let (status, body) = server.get(&detail(bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"], "bad_request", "{bad}: {body}");
    }
}

#[tokio::test]
async fn a_page_that_cannot_be_shown_answers_with_the_status_of_its_error() {
    let server = TestServer::start().await;
    let (status, html) = server.get_text("/orchestration?status=BOGUS").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("role=\"alert\""), "{html}");
    assert!(html.contains("data-error=\"bad_request\""), "{html}");
    assert!(html.contains("unknown status"), "{html}");

    let (status, html) = server.get_text("/orchestration/analytics?period=1y").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("must be 1h, 24h or 7d"), "{html}");

    let (status, html) = server.get_text("/orchestration/workflows/wf-none").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("data-testid=\"not-found\""), "{html}");

    let (status, _) = server.get_text("/orchestration").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn runs_that_ended_before_rollups_existed_are_rolled_up_at_start_up() {
    let (state, dir) = core_state::on_temporary_file().await;
    let url = common::database::url_in(dir.path()).await;
    let store = state.store.clone();
    let first = TestServer::on(state, dir).await;
    let mut events = Vec::new();
    for (id, status) in [("old-wf-ok", "COMPLETED"), ("old-wf-bad", "FAILED")] {
        events.push(
            json!({"type": "workflow_started", "workflow_id": id, "at": ago(600),
            "workflow_type": "data_sync"}),
        );
        events.push(json!({"type": "workflow_status_changed", "workflow_id": id,
            "at": ago(500), "status": status}));
    }
    let (status, body) = first.push(json!(events)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let analytics = "/api/platform/orchestration/analytics?period=24h";
    assert_eq!(first.get(analytics).await.1["runs"], 2);
    // As a database from before rollups: the runs are there, their rollups are not.
    for table in ["analytics_runs", "analytics_steps"] {
        store
            .execute(&format!("DELETE FROM {table}"))
            .await
            .unwrap();
    }
    assert_eq!(first.get(analytics).await.1["runs"], 0);

    let options = leptos::config::LeptosOptions::builder()
        .output_name("stepline")
        .build();
    let again = server::start_core(&url, options, None).await.unwrap().state;
    let (status, figures) = TestServer::on(again, tempfile::tempdir().unwrap())
        .await
        .get(analytics)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(figures["runs"], 2, "{figures}");
    assert_eq!(figures["failure_rate"]["overall"], 50, "{figures}");
}

#[tokio::test]
async fn an_action_sent_by_a_plain_form_comes_back_to_its_page_with_the_refusal() {
    let server = TestServer::start().await;
    let (status, body) = server.push(json!([started("wf-form")])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // As a browser without JavaScript sends the run page's Pause form.
    let page = "http://stepline.test/orchestration/workflows/wf-form?confirm=cancel";
    let response = server
        .router
        .clone()
        .oneshot(
            Request::post("/api/act_on_workflow")
                .header("authorization", server.bearer())
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "text/html,application/xhtml+xml")
                .header("referer", page)
                .body(Body::from("id=wf-form&action=pause"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(page), "{location}");
    assert!(location.contains("__err="), "{location}");
    // The page it is sent back to says why, as text.
    let (status, html) = server
        .get_text(location.strip_prefix("http://stepline.test").unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-testid=\"notice\""), "{html}");
    assert!(html.contains("cannot pause"), "{html}");
    assert!(html.contains("custom:billing"), "{html}");
}

#[tokio::test]
async fn counts_come_from_counters_and_a_broad_search_says_more_than() {
    let server = TestServer::start().await;
    // 10,050 runs: past what a search counts, in batches as an engine pushes them.
    for batch in 0..15 {
        let events: Vec<Value> = (0..670)
            .map(|i| {
                let n = batch * 670 + i;
                json!({"type": "workflow_started", "workflow_id": format!("bulk-{n:05}"),
                       "at": now(), "workflow_type": if n % 2 == 0 { "even_run" } else { "odd_run" },
                       "tags": ["bulk-load"]})
            })
            .collect();
        let (status, body) = server.push(json!(events)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = server
        .push(
            json!([{"type": "workflow_status_changed", "workflow_id": "bulk-00003",
                      "at": now(), "status": "FAILED", "reason": "bad"}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list = "/api/platform/orchestration/workflows";

    // Filters the counters are kept by: exact, whatever the number.
    let (_, body) = server.get(list).await;
    assert_eq!(body["total"], 10_050, "{}", body["total"]);
    assert!(body.get("total_capped").is_none());
    let (_, body) = server.get(&format!("{list}?type=odd_run")).await;
    assert_eq!(body["total"], 5_025);
    let (_, body) = server.get(&format!("{list}?type=odd_run&tab=active")).await;
    assert_eq!(body["total"], 5_024, "the failed run left the active tab");
    let (_, body) = server.get(&format!("{list}?tab=failed")).await;
    assert_eq!(body["total"], 1);
    assert_eq!(body["workflows"][0]["id"], "bulk-00003");
    assert_eq!(body["stats"]["tabs"]["active"], 10_049);
    assert_eq!(body["stats"]["tabs"]["failed"], 1);

    // A search matching them all is counted only so far, and says so.
    let (_, body) = server.get(&format!("{list}?q=bulk-load")).await;
    assert_eq!(body["total"], 1_000);
    assert_eq!(body["total_capped"], true);
    assert_eq!(body["workflows"].as_array().unwrap().len(), 50);
    // A date range is counted up to 1,000, as far as a search looks.
    let (_, body) = server
        .get(&format!("{list}?from=2020-01-01T00:00:00Z"))
        .await;
    assert_eq!(body["total"], 1_000);
    assert_eq!(body["total_capped"], true);
    // A narrow search is exact; a short one is refused.
    let (_, body) = server.get(&format!("{list}?q=bulk-0004")).await;
    assert_eq!(body["total"], 10, "bulk-00040 … bulk-00049");
    assert!(body.get("total_capped").is_none());
    // With another filter, the runs found are counted by it.
    let (_, body) = server
        .get(&format!("{list}?q=bulk-0004&type=odd_run"))
        .await;
    assert_eq!(body["total"], 5);
    assert!(body.get("total_capped").is_none());
    let (_, body) = server
        .get(&format!("{list}?q=bulk-load&type=odd_run"))
        .await;
    assert_eq!(body["total"], 500, "the odd half of the newest 1,000");
    assert_eq!(body["total_capped"], true);
    let (status, body) = server.get(&format!("{list}?q=bu")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // A control character (stored as a space) cannot break the index's query.
    let (status, body) = server.get(&format!("{list}?q=bulk%00%22load")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 0);
    // The page says "more than".
    let (_, html) = server.get_text("/orchestration?q=bulk-load").await;
    assert!(html.contains("more than 1000"), "{html}");
}

#[tokio::test]
async fn cloudevents_are_pushed_as_one_event_or_a_batch() {
    let server = TestServer::start().await;
    let push = |content_type: &'static str, body: String| {
        let request = Request::post("/api/platform/orchestration/events")
            .header("authorization", server.bearer())
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap();
        server.send_text(request)
    };
    let event = |kind: &str, data: Value| {
        json!({"specversion": "1.0", "id": format!("ce-{kind}"), "type": format!("dev.stepline.{kind}"),
               "source": "urn:acme:billing", "subject": "ce-wf-1", "time": now(),
               "datacontenttype": "application/json", "data": data})
    };
    let started = event("workflow_started", json!({"workflow_type": "invoice"}));
    let (status, body) = push(
        "application/cloudevents+json; charset=utf-8",
        started.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let batch = json!([
        event("step_started", json!({"step_number": 1, "name": "charge"})),
        event("step_completed", json!({"step_number": 1})),
    ]);
    let (status, body) = push("application/cloudevents-batch+json", batch.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let run = server.detail("ce-wf-1").await;
    assert_eq!(run["engine"], "custom:billing");
    assert_eq!(run["type"], "invoice");
    assert_eq!(run["execution"]["steps"][0]["name"], "charge");
    assert_eq!(run["execution"]["steps"][0]["status"], "COMPLETED");

    // Another source than the token's, and an event that is not ours, are refused.
    let mut elsewhere = event("workflow_started", json!({"workflow_type": "x"}));
    elsewhere["source"] = json!("/engines/somewhere-else");
    elsewhere["subject"] = json!("ce-wf-2");
    let (status, _) = push("application/cloudevents+json", elsewhere.to_string()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let foreign = json!([event("step_failed", json!({"step_number": 1})), {"specversion": "1.0",
        "type": "com.acme.invoice.paid", "source": "billing", "id": "x"}]);
    let (status, body) = push("application/cloudevents-batch+json", foreign.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("\"event_index\":1"), "{body}");
}

/// Pushes `events` (all accepted) and answers what step 1 of `wf-wait` waits for then.
async fn waiting_after(server: &TestServer, events: Value) -> Value {
    let (status, body) = server.push(events).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, detail) = server
        .get("/api/platform/orchestration/workflows/wf-wait")
        .await;
    detail["execution"]["steps"][0]["waiting"].clone()
}

#[tokio::test]
async fn a_step_says_what_it_waits_for_until_it_moves_on() {
    let server = TestServer::start().await;
    let began = chrono::Utc::now() - chrono::Duration::seconds(600);
    let at = move |seconds: i64| {
        (began + chrono::Duration::seconds(seconds))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let event = |kind: &str, seconds: i64, fields: Value| {
        let mut event =
            json!({"type": kind, "workflow_id": "wf-wait", "at": at(seconds), "step_number": 1});
        event
            .as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        event
    };
    let mut start = started("wf-wait");
    start["at"] = json!(at(0));
    // An instant, however many digits of a second it is written with.
    let instant = |value: &Value| {
        chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap_or_default())
            .unwrap_or_else(|_| panic!("not an instant: {value}"))
    };
    let told = |seconds: i64| instant(&json!(at(seconds)));
    let waiting = waiting_after(
        &server,
        json!([
            start,
            event(
                "step_scheduled",
                0,
                json!({"name": "resize",
                "retry_policy": {"max_attempts": 3, "delays_seconds": [30, 60]}})
            ),
            event(
                "step_waiting",
                1,
                json!({"reason": "queue_slot", "detail": "a worker on task queue images"})
            ),
        ]),
    )
    .await;
    assert_eq!(waiting["reason"], "queue_slot", "{waiting}");
    assert_eq!(instant(&waiting["since"]), told(1));
    assert_eq!(waiting["until"], Value::Null);
    assert_eq!(waiting["detail"], "a worker on task queue images");

    // It starts: it waits no more. Its attempt fails: it waits for its backoff, 30 s as
    // its retry policy says.
    let waiting = waiting_after(&server, json!([event("step_started", 5, json!({}))])).await;
    assert_eq!(waiting, Value::Null);
    let waiting = waiting_after(
        &server,
        json!([event(
            "step_attempt_failed",
            10,
            json!({"error": "timeout"})
        )]),
    )
    .await;
    assert_eq!(waiting["reason"], "retry_backoff", "{waiting}");
    assert_eq!(instant(&waiting["since"]), told(10));
    assert_eq!(instant(&waiting["until"]), told(40));

    // An engine that tells more says what it waits for; a detail too long is cut, and
    // says so.
    let waiting = waiting_after(
        &server,
        json!([event(
            "step_waiting",
            11,
            json!({"reason": "human_input",
            "until": at(3_600), "detail": "x".repeat(100_000)})
        )]),
    )
    .await;
    assert_eq!(waiting["reason"], "human_input");
    assert_eq!(instant(&waiting["until"]), told(3_600));
    let cut = waiting["detail"].as_str().unwrap();
    assert!(
        cut.len() < 10_000 && cut.ends_with("bytes cut]"),
        "{}",
        &cut[cut.len() - 40..]
    );

    // Done: nothing to wait for, and a wait told after is out of order; a reason Stepline
    // does not know is refused with what it knows.
    let waiting = waiting_after(
        &server,
        json!([
            event("step_started", 50, json!({})),
            event("step_completed", 60, json!({}))
        ]),
    )
    .await;
    assert_eq!(waiting, Value::Null);
    let (status, body) = server
        .push(json!([event(
            "step_waiting",
            61,
            json!({"reason": "timer"})
        )]))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = server
        .push(json!([event("step_waiting", 61, json!({"reason": "nap"}))]))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("queue_slot"),
        "{body}"
    );
}
