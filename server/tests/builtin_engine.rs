//! The built-in engine end to end: real definitions run by the real server (HTTP on a
//! loopback port, SQLite in a temporary folder), driven and observed through the REST
//! API an operator uses. The restart test kills the real binary with SIGKILL.

mod common;
use common::client::{Client, API};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long a condition may take to come true before a test fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// Waits until the run has `status`, and returns its detail then.
async fn wait_status(client: &Client, id: &str, status: &str) -> Value {
    client.wait_for_status(id, status, PATIENCE).await
}

/// Waits until step `number` of the run has `status`.
async fn wait_step(client: &Client, id: &str, number: usize, status: &str) -> Value {
    client
        .wait_for(id, PATIENCE, |detail| {
            step(detail, number)["status"] == status
        })
        .await
}

fn step(detail: &Value, number: usize) -> &Value {
    detail["execution"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step_number"] == number)
        .unwrap_or_else(|| panic!("no step {number} in {detail}"))
}

fn instant(value: &Value) -> chrono::DateTime<chrono::Utc> {
    value.as_str().unwrap().parse().unwrap()
}

/// (start, end) of every attempt of a step.
fn attempt_times(
    step: &Value,
) -> Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> {
    step["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (instant(&a["started_at"]), instant(&a["completed_at"])))
        .collect()
}

/// The server in this process, on a free loopback port.
struct InProcess {
    client: Client,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve(definitions: &[&str]) -> InProcess {
    let dir = tempfile::tempdir().unwrap();
    let (core, token) = common::builtin::core_in(dir.path(), definitions, None).await;
    let state = core.state;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::launch_with_listener(
        listener,
        state,
        Default::default(),
        async {
            let _ = stopped.await;
        },
    ));
    InProcess {
        client: Client::over_http(base).with_token(token),
        _dir: dir,
        _stop: stop,
    }
}

#[tokio::test]
async fn parallel_branches_overlap_in_time() {
    let server = serve(&[r#"
type = "fan"
name = "Fan out"
version = "1"
[[steps]]
name = "prepare"
action = { kind = "simulate", duration = "50ms" }
[[steps]]
name = "left"
after = ["prepare"]
action = { kind = "simulate", duration = "400ms" }
[[steps]]
name = "right"
after = ["prepare"]
action = { kind = "simulate", duration = "400ms" }
[[steps]]
name = "join"
after = ["left", "right"]
action = { kind = "simulate", duration = "50ms" }
"#])
    .await;
    let id = server.client.start("fan").await;
    let detail = wait_status(&server.client, &id, "COMPLETED").await;
    let (left, right) = (
        attempt_times(step(&detail, 2))[0],
        attempt_times(step(&detail, 3))[0],
    );
    assert!(
        left.0 < right.1 && right.0 < left.1,
        "left {left:?} and right {right:?} overlap"
    );
    let join = attempt_times(step(&detail, 4))[0];
    assert!(
        join.0 >= left.1 && join.0 >= right.1,
        "join starts after both"
    );
    let branches = detail["execution"]["parallel_branches"].as_array().unwrap();
    assert_eq!(branches.len(), 2, "{branches:?}");
    assert_eq!(detail["progress"]["percent"], 100);
}

#[tokio::test]
async fn retries_back_off_as_configured() {
    let server = serve(&[r#"
type = "flaky"
name = "Flaky"
version = "1"
[[steps]]
name = "call_database"
action = { kind = "simulate", duration = "10ms", fail_attempts = 2, error = "Connection refused" }
retry = { max_attempts = 3, initial_delay = "300ms", max_delay = "2s" }
"#])
    .await;
    let id = server.client.start("flaky").await;
    let detail = wait_status(&server.client, &id, "COMPLETED").await;
    let database = step(&detail, 1);
    let times = attempt_times(database);
    assert_eq!(times.len(), 3);
    let first_wait = (times[1].0 - times[0].1).num_milliseconds();
    let second_wait = (times[2].0 - times[1].1).num_milliseconds();
    assert!(first_wait >= 300, "first wait {first_wait} ms");
    assert!(second_wait >= 600, "second wait {second_wait} ms doubles");
    assert!(second_wait > first_wait);
    let attempts = database["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["error"], "Connection refused");
    assert_eq!(attempts[2]["status"], "COMPLETED");
    assert_eq!(database["retry_count"], 2);
}

const TWO_STEPS: &str = r#"
type = "two"
name = "Two steps"
version = "1"
[[steps]]
name = "long_first"
action = { kind = "simulate", duration = "2s" }
[[steps]]
name = "second"
after = ["long_first"]
action = { kind = "simulate", duration = "20ms" }
"#;

#[tokio::test]
async fn pause_stops_after_the_current_step_and_resume_continues() {
    let server = serve(&[TWO_STEPS]).await;
    let client = &server.client;
    let id = client.start("two").await;
    wait_step(&client, &id, 1, "RUNNING").await;
    let (status, body) = client
        .post(&format!("{API}/workflows/{id}/pause"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["new_status"], "PAUSING");
    assert_eq!(
        body["message"],
        "Workflow pauses after step 1 (long_first) completes"
    );
    let paused = wait_status(&client, &id, "PAUSED").await;
    assert_eq!(step(&paused, 1)["status"], "COMPLETED");
    assert_eq!(
        step(&paused, 2)["status"],
        "PENDING",
        "nothing ran after the pause"
    );

    let (status, body) = client
        .post(&format!("{API}/workflows/{id}/pause"), &json!({}))
        .await;
    assert_eq!(status, 409, "a paused run cannot pause again: {body}");
    let (status, body) = client
        .post(&format!("{API}/workflows/{id}/resume"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["new_status"], "RUNNING");
    wait_status(&client, &id, "COMPLETED").await;
    let (status, _) = client
        .post(&format!("{API}/workflows/{id}/resume"), &json!({}))
        .await;
    assert_eq!(status, 409, "a completed run cannot resume");
    let (status, _) = client
        .post(&format!("{API}/workflows/no-such-run/pause"), &json!({}))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn cancel_runs_compensations_in_reverse_order() {
    let server = serve(&[r#"
type = "deploy"
name = "Deploy"
version = "1"
[[steps]]
name = "reserve_resources"
action = { kind = "simulate", duration = "20ms" }
compensation = { kind = "simulate", duration = "50ms", logs = ["Released reserved resources"] }
[[steps]]
name = "deploy_container"
after = ["reserve_resources"]
action = { kind = "simulate", duration = "20ms" }
compensation = { kind = "simulate", duration = "50ms", logs = ["Deleted deployed container"] }
[[steps]]
name = "record_without_undo"
after = ["deploy_container"]
action = { kind = "simulate", duration = "20ms" }
[[steps]]
name = "wait_for_external_api"
after = ["record_without_undo"]
action = { kind = "simulate", duration = "1h" }
compensation = { kind = "simulate", duration = "10ms" }
"#])
    .await;
    let client = &server.client;
    let id = client.start("deploy").await;
    wait_step(&client, &id, 4, "RUNNING").await;
    let (status, body) = client
        .post(
            &format!("{API}/workflows/{id}/cancel"),
            &json!({"reason": "Manual cancellation"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["new_status"], "CANCELLING");
    let detail = wait_status(&client, &id, "CANCELLED").await;
    assert_eq!(detail["status_reason"], "Manual cancellation");
    assert_eq!(
        step(&detail, 4)["status"],
        "CANCELLED",
        "the running step was stopped"
    );
    let compensations: Vec<&Value> = detail["execution"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "compensation")
        .collect();
    let undone: Vec<u64> = compensations
        .iter()
        .map(|s| s["compensates"].as_u64().unwrap())
        .collect();
    assert_eq!(undone, vec![2, 1], "latest completed step is undone first");
    let (c1, c2) = (
        attempt_times(compensations[0])[0],
        attempt_times(compensations[1])[0],
    );
    assert!(c1.1 <= c2.0, "C2 starts after C1 ends");
    assert!(compensations.iter().all(|c| c["status"] == "COMPLETED"));
    assert_eq!(compensations[0]["logs"][0], "Deleted deployed container");
    let (status, _) = client
        .post(&format!("{API}/workflows/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 409, "a cancelled run cannot be cancelled again");
}

#[tokio::test]
async fn a_failed_compensation_is_left_for_manual_intervention() {
    let server = serve(&[r#"
type = "fragile"
name = "Fragile rollback"
version = "1"
[[steps]]
name = "create_account"
action = { kind = "simulate", duration = "10ms" }
compensation = { kind = "simulate", duration = "10ms", fail_attempts = 1, error = "account locked" }
[[steps]]
name = "wait"
after = ["create_account"]
action = { kind = "simulate", duration = "1h" }
"#])
    .await;
    let client = &server.client;
    let id = client.start("fragile").await;
    wait_step(&client, &id, 2, "RUNNING").await;
    client
        .post(&format!("{API}/workflows/{id}/cancel"), &json!({}))
        .await;
    let detail = wait_status(&client, &id, "COMPENSATION_FAILED").await;
    let reason = detail["status_reason"].as_str().unwrap();
    assert!(reason.contains("account locked"), "{reason}");
    assert!(reason.contains("Not rolled back yet: step 1"), "{reason}");
    // The operator fixed the cause: retrying finishes the rollback.
    let (status, body) = client
        .post(&format!("{API}/workflows/{id}/retry"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let detail = wait_status(&client, &id, "CANCELLED").await;
    assert_eq!(step(&detail, 3)["attempts"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn retry_from_step_four_reruns_from_step_four() {
    let server = serve(&[r#"
type = "trial"
name = "Trial"
version = "1"
[[steps]]
name = "validate"
action = { kind = "simulate", duration = "10ms" }
[[steps]]
name = "provision"
after = ["validate"]
action = { kind = "simulate", duration = "10ms" }
[[steps]]
name = "configure"
after = ["provision"]
action = { kind = "simulate", duration = "10ms" }
[[steps]]
name = "database_insert"
after = ["configure"]
action = { kind = "simulate", duration = "10ms", fail_attempts = 3, error = "psycopg2.OperationalError: Connection refused" }
retry = { max_attempts = 3, initial_delay = "20ms", max_delay = "50ms" }
[[steps]]
name = "notify"
after = ["database_insert"]
action = { kind = "simulate", duration = "10ms" }
"#])
    .await;
    let client = &server.client;
    let id = client.start("trial").await;
    let failed = wait_status(&client, &id, "FAILED").await;
    assert_eq!(step(&failed, 4)["attempts"].as_array().unwrap().len(), 3);
    assert!(failed["status_reason"]
        .as_str()
        .unwrap()
        .contains("step 4 (database_insert) failed: psycopg2.OperationalError"));
    let (status, body) = client
        .post(
            &format!("{API}/workflows/{id}/retry"),
            &json!({"from_step": 4}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "Retrying from step 4 (database_insert)");
    let done = wait_status(&client, &id, "COMPLETED").await;
    for number in 1..=3 {
        assert_eq!(
            step(&done, number)["attempts"].as_array().unwrap().len(),
            1,
            "step {number} did not run again"
        );
    }
    let database = step(&done, 4);
    let attempts = database["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 4, "the failed attempts stay in the history");
    assert_eq!(attempts[3]["status"], "COMPLETED");
    assert_eq!(step(&done, 5)["status"], "COMPLETED");

    let (status, body) = client
        .post(
            &format!("{API}/workflows/{id}/retry"),
            &json!({"from_step": 4}),
        )
        .await;
    assert_eq!(status, 409, "a completed run has nothing to retry: {body}");
}

#[tokio::test]
async fn command_output_lines_become_logs_and_exit_codes_fail() {
    let server = serve(&[r#"
type = "script"
name = "Script"
version = "1"
[[steps]]
name = "export_rows"
action = { kind = "command", program = "sh", args = ["-c", "echo \"exporting for $STEPLINE_WORKFLOW_ID\"; echo 'disk almost full' >&2; echo '{\"rows\": 3}'"] }
[[steps]]
name = "read_input"
after = ["export_rows"]
action = { kind = "command", program = "sh", args = ["-c", "read -r input; echo \"got $input\""] }
[[steps]]
name = "fail_loudly"
after = ["read_input"]
action = { kind = "command", program = "sh", args = ["-c", "echo 'cannot reach <b>warehouse</b>'; exit 3"] }
"#])
    .await;
    let client = &server.client;
    let id = client.start("script").await;
    let detail = wait_status(&client, &id, "FAILED").await;
    let export = step(&detail, 1);
    let logs: Vec<&str> = export["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        logs.contains(&format!("exporting for {id}").as_str()),
        "{logs:?}"
    );
    assert!(logs.contains(&"disk almost full"), "{logs:?}");
    assert_eq!(export["output"], json!({"rows": 3}));
    assert_eq!(
        step(&detail, 2)["logs"][0],
        r#"got {"customer":"c-1"}"#,
        "the input arrives on stdin"
    );
    let failed = step(&detail, 3);
    assert_eq!(failed["error"], "sh exited with code 3");
    assert_eq!(failed["logs"][0], "cannot reach <b>warehouse</b>");
}

#[tokio::test]
async fn http_steps_post_the_input_and_keep_the_answer() {
    use axum::routing::post;
    let endpoint = axum::Router::new()
        .route(
            "/provision",
            post(|axum::Json(body): axum::Json<Value>| async move {
                axum::Json(
                    json!({"provisioned_for": body["input"]["customer"], "step": body["step"]}),
                )
            }),
        )
        .route(
            "/down",
            post(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "maintenance") }),
        )
        .route(
            "/moved",
            post(|| async {
                (
                    axum::http::StatusCode::FOUND,
                    [(axum::http::header::LOCATION, "/provision")],
                    "elsewhere",
                )
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, endpoint).await });
    let definition = format!(
        r#"
type = "remote"
name = "Remote"
version = "1"
[[steps]]
name = "provision"
action = {{ kind = "http", url = "http://{address}/provision" }}
[[steps]]
name = "notify"
after = ["provision"]
action = {{ kind = "http", url = "http://{address}/down" }}
"#
    );
    let server = serve(&[&definition]).await;
    let id = server.client.start("remote").await;
    let detail = wait_status(&server.client, &id, "FAILED").await;
    assert_eq!(
        step(&detail, 1)["output"],
        json!({"provisioned_for": "c-1", "step": "provision"})
    );
    assert_eq!(
        step(&detail, 2)["error"],
        format!("HTTP 503 Service Unavailable from http://{address}/down: maintenance")
    );

    // A redirect is not followed: the endpoint answered, and not with a success.
    let moved = format!(
        r#"
type = "moved"
name = "Moved"
version = "1"
[[steps]]
name = "provision"
action = {{ kind = "http", url = "http://{address}/moved" }}
"#
    );
    let server = serve(&[&moved]).await;
    let id = server.client.start("moved").await;
    let detail = wait_status(&server.client, &id, "FAILED").await;
    assert_eq!(
        step(&detail, 1)["error"],
        format!("HTTP 302 Found from http://{address}/moved: elsewhere")
    );
}

#[tokio::test]
async fn runs_beyond_a_type_limit_wait_as_pending_and_clone_copies_the_input() {
    let server = serve(&[r#"
type = "single"
name = "One at a time"
version = "1"
max_concurrent = 1
[[steps]]
name = "work"
action = { kind = "simulate", duration = "300ms" }
"#])
    .await;
    let client = &server.client;
    let first = client.start("single").await;
    let second = client.start("single").await;
    let first_done = wait_status(&client, &first, "COMPLETED").await;
    let second_done = wait_status(&client, &second, "COMPLETED").await;
    // The second waited for the first's slot, however fast or slow the machine.
    let at = |detail: &Value, field: &str| {
        detail["execution"][field]
            .as_str()
            .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
            .unwrap_or_else(|| panic!("{field}: {detail}"))
    };
    assert!(
        at(&second_done, "started_at") >= at(&first_done, "completed_at"),
        "{second_done} / {first_done}"
    );

    let (status, body) = client
        .post(&format!("{API}/workflows/{first}/clone"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let clone = body["workflow_id"].as_str().unwrap();
    assert_ne!(clone, first);
    let detail = wait_status(&client, clone, "COMPLETED").await;
    assert_eq!(step(&detail, 1)["input"], json!({"customer": "c-1"}));

    let (status, body) = client
        .post(
            &format!("{API}/workflows"),
            &json!({"workflow_type": "nope"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("known types: single"));
    let (status, _) = client
        .post(&format!("{API}/workflows"), &json!({"input": {}}))
        .await;
    assert_eq!(status, 400, "workflow_type is required");
}

/// The real binary, with its output read until it says where it serves.
struct Binary {
    child: tokio::process::Child,
    client: Client,
}

async fn launch_binary(dir: &Path, folder: &Path) -> Binary {
    let (child, base) =
        common::binary::launch(dir, &[("STEPLINE_WORKFLOWS", folder.display().to_string())]).await;
    // A token for the test, made as an admin would, in the binary's own database.
    let store = server::store::Store::open(&common::binary::database_url(dir))
        .await
        .unwrap();
    let token = common::core_state::token_with_store(&store, "tests", &["read", "operate"]).await;
    Binary {
        child,
        client: Client::over_http(base).with_token(token),
    }
}

#[tokio::test]
async fn a_server_killed_mid_run_resumes_every_workflow_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    // "load" runs until the test lets it finish (after the restart): the kill always
    // lands while it runs, however slow the machine.
    let go = dir.path().join("go");
    let definition = format!(
        r#"
type = "sync"
name = "Sync"
version = "1"
max_concurrent = 3
[[steps]]
name = "extract"
action = {{ kind = "simulate", duration = "50ms" }}
[[steps]]
name = "load"
after = ["extract"]
action = {{ kind = "command", program = "sh", args = ["-c", "echo loading; until [ -e '{}' ]; do sleep 0.05; done; echo loaded"] }}
[[steps]]
name = "report"
after = ["load"]
action = {{ kind = "simulate", duration = "50ms" }}
"#,
        go.display()
    );
    let folder = common::builtin::write_definitions(dir.path(), &[&definition]);
    let mut first = launch_binary(dir.path(), &folder).await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(first.client.start("sync").await);
    }
    for id in &ids[..3] {
        wait_step(&first.client, id, 2, "RUNNING").await;
    }
    assert_eq!(first.client.status(&ids[3]).await, "PENDING");
    first.child.kill().await.unwrap(); // SIGKILL: no chance to clean up
    std::fs::write(&go, "").unwrap();

    let second = launch_binary(dir.path(), &folder).await;
    for id in &ids {
        let detail = wait_status(&second.client, id, "COMPLETED").await;
        for number in 1..=3 {
            assert_eq!(
                step(&detail, number)["status"],
                "COMPLETED",
                "{id} step {number}"
            );
        }
    }
    for id in &ids[..3] {
        let detail = second.client.detail(id).await;
        let attempts = step(&detail, 2)["attempts"].as_array().unwrap().clone();
        assert_eq!(attempts.len(), 2, "{id}: interrupted attempt + the rerun");
        assert!(attempts[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("interrupted"));
        assert_eq!(attempts[1]["status"], "COMPLETED");
        assert_eq!(step(&detail, 1)["attempts"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_command_gets_a_large_input_on_stdin_only() {
    let server = serve(&[r#"
type = "bulk"
name = "Bulk"
version = "1"
[[steps]]
name = "count_input"
action = { kind = "command", program = "sh", args = ["-c", "echo \"env:${#STEPLINE_INPUT}\"; wc -c"] }
"#])
    .await;
    let big = "x".repeat(100 * 1024);
    let (status, body) = server
        .client
        .post(
            &format!("{API}/workflows"),
            &json!({"workflow_type": "bulk", "input": {"blob": big}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["workflow_id"].as_str().unwrap().to_owned();
    let detail = wait_status(&server.client, &id, "COMPLETED").await;
    let logs = step(&detail, 1)["logs"].clone();
    // {"blob":"xxx..."} is 102,411 bytes, plus the newline.
    assert_eq!(
        logs,
        json!(["env:0", "102412"]),
        "too big for the environment"
    );
}

/// The id the built-in engine hands out at `ms` (first of that millisecond): its ids are
/// readable and so predictable.
fn predicted_builtin_id(prefix: &str, ms: i64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let (mut n, mut digits) = (ms as u64, Vec::new());
    while n > 0 {
        digits.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    digits.reverse();
    format!("{prefix}-wf-{}00", String::from_utf8(digits).unwrap())
}

#[tokio::test]
async fn a_pushing_source_cannot_take_the_ids_the_builtin_engine_hands_out() {
    let server = serve(&[r#"
type = "squat"
name = "Squatted"
version = "1"
[[steps]]
name = "only"
action = { kind = "simulate", duration = "10ms" }
"#])
    .await;
    // Every id the engine could hand out in the next 4 seconds, taken by a pushed run.
    let from = chrono::Utc::now().timestamp_millis();
    let squatted: Vec<String> = (from..from + 4_000)
        .map(|ms| predicted_builtin_id("squat", ms))
        .collect();
    for chunk in squatted.chunks(1_000) {
        let events: Vec<Value> = chunk
            .iter()
            .map(|id| {
                json!({"type": "workflow_started", "workflow_id": id,
                       "at": chrono::Utc::now(), "workflow_type": "squat"})
            })
            .collect();
        let (status, body) = server
            .client
            .post(
                &format!("{API}/events"),
                &json!({"source": "squatter", "events": events}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let id = server.client.start("squat").await;
    assert!(!squatted.contains(&id), "{id} was squatted");
    let detail = wait_status(&server.client, &id, "COMPLETED").await;
    assert_eq!(detail["engine"], "builtin");
    // The pushed runs stay the source's own.
    let first = server.client.detail(&squatted[0]).await;
    assert_eq!(first["engine"], "custom:squatter", "{first}");
}
