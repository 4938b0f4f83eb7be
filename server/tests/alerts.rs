//! Alerts through the API, on the real router, store and projector (SQLite, and
//! PostgreSQL when the tests are given one): each condition fires once while it holds and
//! resolves when it clears; operators acknowledge and mute alerts, recorded in the audit
//! log; the badge's count follows; callers see only their engines' alerts.

mod common;
use app::model::identity::{Role, RoleBinding};
use common::client::{at, now_ms, until, Client};
use common::core_state;
use serde_json::{json, Value};
use std::time::Duration;

/// The SLA sweep runs every second; this is ample.
const WITHIN: Duration = Duration::from_secs(30);
const SECOND: i64 = 1_000;
const ALERTS: &str = "/api/platform/orchestration/alerts";

fn started(id: &str, start: i64, sla_seconds: i64) -> Value {
    json!({"type": "workflow_started", "workflow_id": id, "at": at(start),
           "workflow_type": "invoice_run", "total_steps": 2, "sla_target_seconds": sla_seconds})
}

fn status_of(id: &str, status: &str, reason: Option<&str>) -> Value {
    json!({"type": "workflow_status_changed", "workflow_id": id, "at": at(now_ms()),
           "status": status, "reason": reason})
}

async fn push(client: &Client, events: Vec<Value>) {
    let (status, body) = client
        .push_raw(&json!({"source": "billing", "events": events}).to_string())
        .await;
    assert!(status.is_success(), "push refused: {status} {body}");
}

/// Every alert of run `id`, newest first.
async fn alerts_of(client: &Client, id: &str) -> Vec<Value> {
    let (status, page) = client
        .get(&format!("{ALERTS}?state=all&workflow_id={id}"))
        .await;
    assert_eq!(status, 200, "{page}");
    page["alerts"].as_array().unwrap().clone()
}

/// The conditions of run `id`'s alerts, newest first, each with whether it still holds.
async fn conditions_of(client: &Client, id: &str) -> Vec<(String, bool)> {
    alerts_of(client, id)
        .await
        .iter()
        .map(|alert| {
            (
                alert["condition"].as_str().unwrap().to_owned(),
                alert["resolved_at"].is_null(),
            )
        })
        .collect()
}

fn holding(pairs: &[(&str, bool)]) -> Vec<(String, bool)> {
    pairs
        .iter()
        .map(|(condition, holds)| ((*condition).to_owned(), *holds))
        .collect()
}

async fn open_count(client: &Client) -> u64 {
    let (status, page) = client.get(&format!("{ALERTS}?limit=1")).await;
    assert_eq!(status, 200, "{page}");
    page["open"].as_u64().unwrap()
}

#[tokio::test]
async fn each_condition_fires_once_while_it_holds_and_resolves_when_it_clears() {
    let (state, _dir) = core_state::on_temporary_file().await;
    let token = core_state::operator_token(&state).await;
    let client = Client::in_process(server::app(state)).with_token(token);

    // Failed: fires once, however many events the failed run still gets.
    push(
        &client,
        vec![
            started("inv-failed", now_ms(), 600),
            json!({"type": "step_started", "workflow_id": "inv-failed", "at": at(now_ms()),
                   "step_number": 1, "name": "post"}),
        ],
    )
    .await;
    assert_eq!(conditions_of(&client, "inv-failed").await, holding(&[]));
    push(
        &client,
        vec![status_of(
            "inv-failed",
            "FAILED",
            Some("the ledger refused the batch"),
        )],
    )
    .await;
    push(
        &client,
        vec![
            json!({"type": "log_lines", "workflow_id": "inv-failed", "at": at(now_ms()),
                    "step_number": 1, "lines": ["after the failure"]}),
        ],
    )
    .await;
    let alerts = alerts_of(&client, "inv-failed").await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["condition"], "failed");
    assert_eq!(alerts[0]["engine"], "custom:billing");
    assert_eq!(alerts[0]["workflow_type"], "invoice_run");
    assert_eq!(
        alerts[0]["summary"],
        "invoice_run inv-failed: failed: the ledger refused the batch"
    );

    // Compensation failed.
    push(&client, vec![started("inv-comp", now_ms(), 600)]).await;
    push(
        &client,
        vec![
            status_of("inv-comp", "CANCELLING", None),
            status_of("inv-comp", "COMPENSATION_FAILED", Some("refund timed out")),
        ],
    )
    .await;
    assert_eq!(
        conditions_of(&client, "inv-comp").await,
        holding(&[("compensation_failed", true)])
    );

    // Started 56 s ago with a 60 s target: at 93 %, the warning fires at once; a few
    // seconds on, the SLA sweep breaches it (the warning resolves, the breach fires); when
    // it ends, the breach resolves.
    push(
        &client,
        vec![started("inv-late", now_ms() - 56 * SECOND, 60)],
    )
    .await;
    assert_eq!(
        conditions_of(&client, "inv-late").await,
        holding(&[("sla_warning", true)])
    );
    until("the breach", WITHIN, || async {
        let now = conditions_of(&client, "inv-late").await;
        (now == holding(&[("sla_breached", true), ("sla_warning", false)])).then_some(())
    })
    .await;
    push(&client, vec![status_of("inv-late", "COMPLETED", None)]).await;
    assert_eq!(
        conditions_of(&client, "inv-late").await,
        holding(&[("sla_breached", false), ("sla_warning", false)])
    );

    // Firing and not acknowledged: the failure and the failed compensation.
    assert_eq!(open_count(&client).await, 2);
    let (_, firing) = client.get(ALERTS).await;
    let firing: Vec<&str> = firing["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|alert| alert["workflow_id"].as_str().unwrap())
        .collect();
    assert_eq!(firing, ["inv-comp", "inv-failed"]);
    let (_, resolved) = client.get(&format!("{ALERTS}?state=resolved")).await;
    assert_eq!(
        resolved["alerts"].as_array().unwrap().len(),
        2,
        "{resolved}"
    );
}

#[tokio::test]
async fn operators_acknowledge_and_mute_alerts_and_the_audit_log_says_who() {
    let (state, _dir) = core_state::on_temporary_file().await;
    let token = core_state::operator_token(&state).await;
    let reader = core_state::token_with(&state, "reader", &["read"]).await;
    let client = Client::in_process(server::app(state)).with_token(token);
    let reading = client.anonymous().with_token(reader);
    for n in 0..3 {
        let id = format!("inv-{n}");
        push(&client, vec![started(&id, now_ms(), 600)]).await;
        push(&client, vec![status_of(&id, "FAILED", Some("declined"))]).await;
    }
    assert_eq!(open_count(&client).await, 3);
    let id = alerts_of(&client, "inv-0").await[0]["id"].as_i64().unwrap();

    // Newest first, a page at a time.
    let (_, first) = client.get(&format!("{ALERTS}?limit=2")).await;
    let runs = |page: &Value| -> Vec<String> {
        page["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|alert| alert["workflow_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(runs(&first), ["inv-2", "inv-1"]);
    let before = first["next_before"].as_i64().expect("an older page");
    let (_, older) = client
        .get(&format!("{ALERTS}?limit=2&before={before}"))
        .await;
    assert_eq!(runs(&older), ["inv-0"]);
    assert!(older["next_before"].is_null(), "{older}");

    // A reader may read, not acknowledge.
    assert_eq!(open_count(&reading).await, 3);
    let (status, refused) = reading
        .post(&format!("{ALERTS}/{id}/acknowledge"), &json!({}))
        .await;
    assert_eq!(status, 403, "{refused}");

    let (status, acknowledged) = client
        .post(&format!("{ALERTS}/{id}/acknowledge"), &json!({}))
        .await;
    assert_eq!(status, 200, "{acknowledged}");
    assert_eq!(acknowledged["acknowledged_by"], "token:tests");
    assert!(acknowledged["resolved_at"].is_null(), "still holding");
    assert_eq!(open_count(&client).await, 2);
    // Again: nothing changes, and it is said once in the audit log.
    let (status, again) = client
        .post(&format!("{ALERTS}/{id}/acknowledge"), &json!({}))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["acknowledged_at"], acknowledged["acknowledged_at"]);
    let (_, audit) = client
        .get("/api/platform/orchestration/audit?action=alert_acknowledged")
        .await;
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["actor"], "token:tests");
    assert_eq!(entries[0]["workflow_id"], "inv-0");

    // Muting the failures of invoice_run for an hour silences the other two.
    let other = alerts_of(&client, "inv-1").await[0]["id"].as_i64().unwrap();
    let (status, muted) = client
        .post(&format!("{ALERTS}/{other}/mute"), &json!({"minutes": 60}))
        .await;
    assert_eq!(status, 200, "{muted}");
    assert!(!muted["muted_until"].is_null(), "{muted}");
    assert_eq!(open_count(&client).await, 0);
    let (_, audit) = client
        .get("/api/platform/orchestration/audit?action=alert_muted")
        .await;
    assert_eq!(
        audit["entries"][0]["detail"],
        "failed of invoice_run for 60 min"
    );
    // A new failure of the type is kept, muted.
    push(&client, vec![started("inv-9", now_ms(), 600)]).await;
    push(&client, vec![status_of("inv-9", "FAILED", None)]).await;
    assert_eq!(alerts_of(&client, "inv-9").await.len(), 1);
    assert_eq!(open_count(&client).await, 0);
    // Unmuted, they count again (the acknowledged one does not).
    let (status, _) = client
        .post(&format!("{ALERTS}/{other}/mute"), &json!({"minutes": 0}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(open_count(&client).await, 3);

    // A client's mistakes are answered, never a 500.
    for (path, body, expected) in [
        (format!("{ALERTS}/999999/acknowledge"), json!({}), 404),
        (format!("{ALERTS}/abc/acknowledge"), json!({}), 404),
        (format!("{ALERTS}/-1/acknowledge"), json!({}), 404),
        (
            format!("{ALERTS}/{other}/mute"),
            json!({"minutes": 1_000_000}),
            400,
        ),
        (
            format!("{ALERTS}/{other}/mute"),
            json!({"minutes": -5}),
            400,
        ),
        (format!("{ALERTS}/{other}/mute"), json!({}), 400),
    ] {
        let (status, body) = client.post(&path, &body).await;
        assert_eq!(status, expected, "{path}: {body}");
    }
    for query in [
        "state=open",
        "workflow_id=no%20such%20id",
        "limit=x",
        "before=y",
    ] {
        let (status, body) = client.get(&format!("{ALERTS}?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
    }
}

#[tokio::test]
async fn a_caller_sees_only_the_alerts_of_the_engines_it_may_read() {
    let (state, _dir) = core_state::on_temporary_file().await;
    let token = core_state::operator_token(&state).await;
    let client = Client::in_process(server::app(state.clone())).with_token(token);
    push(&client, vec![started("inv-x", now_ms(), 600)]).await;
    push(&client, vec![status_of("inv-x", "FAILED", None)]).await;
    let id = alerts_of(&client, "inv-x").await[0]["id"].as_i64().unwrap();

    let user = core_state::account(
        &state,
        "tess@example.com",
        None,
        &[RoleBinding {
            role: Role::Viewer,
            engines: "temporal:*".into(),
        }],
    )
    .await;
    let cookie = core_state::session_cookie(&state, user).await;
    for path in [
        ALERTS.to_owned(),
        format!("{ALERTS}?state=all&workflow_id=inv-x"),
    ] {
        let request = axum::http::Request::get(&path)
            .header(axum::http::header::COOKIE, &cookie)
            .body(axum::body::Body::empty())
            .unwrap();
        let (status, body) = client.anonymous().send(request).await;
        let page: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, 200, "{page}");
        assert_eq!(
            page["alerts"],
            json!([]),
            "{path}: the alert of custom:billing is not shown"
        );
        assert_eq!(page["open"], 0, "nor counted");
    }
    // The operator who may see it still does.
    assert_eq!(alerts_of(&client, "inv-x").await[0]["id"], id);
}

#[tokio::test]
async fn a_step_far_beyond_its_usual_time_and_silent_is_stuck_until_it_speaks() {
    let (state, _dir) = core_state::on_temporary_file().await;
    let token = core_state::operator_token(&state).await;
    let client = Client::in_process(server::app(state)).with_token(token);
    // Six earlier runs whose `deploy` took a second.
    let hour_ago = now_ms() - 3_600 * SECOND;
    let mut history = Vec::new();
    for n in 0..6 {
        let (id, start) = (format!("deploy-{n}"), hour_ago + n * 60 * SECOND);
        history.extend([
            json!({"type": "workflow_started", "workflow_id": id, "at": at(start),
                   "workflow_type": "deploy_run", "total_steps": 1}),
            json!({"type": "step_started", "workflow_id": id, "at": at(start),
                   "step_number": 1, "name": "deploy"}),
            json!({"type": "step_completed", "workflow_id": id, "at": at(start + SECOND),
                   "step_number": 1}),
            json!({"type": "workflow_status_changed", "workflow_id": id,
                   "at": at(start + SECOND), "status": "COMPLETED"}),
        ]);
    }
    push(&client, history).await;
    // This one's `deploy` has run 30 s and said nothing.
    let began = now_ms() - 30 * SECOND;
    push(
        &client,
        vec![
            json!({"type": "workflow_started", "workflow_id": "deploy-stuck", "at": at(began),
                   "workflow_type": "deploy_run", "total_steps": 1}),
            json!({"type": "step_started", "workflow_id": "deploy-stuck", "at": at(began),
                   "step_number": 1, "name": "deploy"}),
        ],
    )
    .await;
    let stuck = until("the stuck step's alert", WITHIN, || async {
        alerts_of(&client, "deploy-stuck")
            .await
            .into_iter()
            .find(|alert| alert["condition"] == "stuck_step")
    })
    .await;
    let summary = stuck["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("deploy_run deploy-stuck: step 1 (deploy) has run 3"),
        "{summary}"
    );
    assert!(
        summary.ends_with("usually at most 1s (p95); no log line"),
        "{summary}"
    );

    // It speaks: no longer stuck.
    push(
        &client,
        vec![
            json!({"type": "log_lines", "workflow_id": "deploy-stuck", "at": at(now_ms()),
                    "step_number": 1, "lines": ["still copying"]}),
        ],
    )
    .await;
    until("the stuck step's alert resolved", WITHIN, || async {
        (conditions_of(&client, "deploy-stuck").await == holding(&[("stuck_step", false)]))
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_rule_of_the_alerts_file_turns_a_condition_off_for_its_runs_only() {
    let (state, _dir) = core_state::on_temporary_file().await;
    let settings = server::alerts::settings::parse_settings(
        "[[rule]]\nworkflow_types = [\"invoice_run\"]\ntags = [\"expected-to-fail\"]\nconditions = [\"failed\"]\nalert = false\n",
        |_| None,
    )
    .unwrap();
    server::deliver_alerts(&state, settings);
    let token = core_state::operator_token(&state).await;
    let client = Client::in_process(server::app(state)).with_token(token);
    for (id, tags) in [
        ("inv-drill", json!(["expected-to-fail"])),
        ("inv-real", json!([])),
    ] {
        push(
            &client,
            vec![
                json!({"type": "workflow_started", "workflow_id": id, "at": at(now_ms()),
                        "workflow_type": "invoice_run", "total_steps": 1, "tags": tags}),
            ],
        )
        .await;
        push(&client, vec![status_of(id, "FAILED", None)]).await;
    }
    assert_eq!(conditions_of(&client, "inv-drill").await, holding(&[]));
    assert_eq!(
        conditions_of(&client, "inv-real").await,
        holding(&[("failed", true)])
    );
}
