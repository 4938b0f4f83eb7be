//! The Temporal adapter against a real Temporal dev server and the fixture worker
//! (`server/tests/temporal/worker.py`), started by `scripts/temporal.sh start DIR`, whose
//! `DIR/env` these tests read (`scripts/test.sh` does all of it). Stepline runs in-process
//! on a temporary SQLite file and is asked through its real router.
//!
//! Ignored by a plain `cargo test` (they need the server); `scripts/test.sh` runs them
//! with `--include-ignored`.

mod common;
use axum::http::StatusCode;
use common::client::{millis, steps, until};
use common::relay::Relay;
use common::temporal_fixture::Temporal;
use serde_json::{json, Value};
use server::engines::temporal::history::CompensationRule;
use server::engines::temporal::SourceConfig;
use std::time::Duration;

fn source(url: &str) -> SourceConfig {
    SourceConfig {
        name: "local".into(),
        url: url.to_owned(),
        namespace: "default".into(),
        api_key: None,
        task_queue: Some(
            std::env::var("STEPLINE_TEMPORAL_TASK_QUEUE")
                .unwrap_or_else(|_| "stepline-fixtures".into()),
        ),
        workflow_types: Vec::new(),
        compensation: CompensationRule {
            prefixes: vec!["compensate_".into()],
            types: Vec::new(),
        },
        poll_interval: Duration::from_millis(200),
        // The runs of the tests running now, not those of every test before: each
        // test's Stepline follows what it imports.
        import_since: Duration::from_secs(120),
    }
}

/// Stepline following the Temporal server at `url`, on its own SQLite file, asked
/// through its real router.
type Stepline = common::core_state::Following<SourceConfig>;

impl Stepline {
    async fn following(url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::following_on(url, dir).await
    }

    /// Stepline on the store in `dir` (a restart reuses it).
    async fn following_on(url: &str, dir: tempfile::TempDir) -> Self {
        common::core_state::show_engine_logs();
        let mut state = common::core_state::in_folder(dir.path()).await;
        let source = source(url);
        server::follow_temporal(&mut state, vec![source.clone()])
            .await
            .unwrap();
        Self::new(&state, source, dir).await
    }

    fn id(&self, workflow_id: &str, run_id: &str) -> String {
        self.source.workflow_id(workflow_id, run_id)
    }
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

const WITHIN: Duration = Duration::from_secs(30);

#[tokio::test]
#[ignore = "needs a Temporal dev server: scripts/test.sh starts one"]
async fn a_parallel_workflows_branches_overlap() {
    let temporal = Temporal::from_env();
    let stepline = Stepline::following(&temporal.http).await;
    let workflow_id = unique("parallel");
    let run = temporal
        .start(
            "ParallelWF",
            &workflow_id,
            json!({"branch_ms": [300, 500, 400], "step_ms": 100}),
        )
        .await;
    let id = stepline.id(&workflow_id, &run);
    let detail = stepline.wait_for_status(&id, "COMPLETED", WITHIN).await;
    assert_eq!(detail["engine"], "temporal:local:default");
    let branched: Vec<Value> = steps(&detail)
        .into_iter()
        .filter(|s| s["branch"].is_string())
        .collect();
    assert_eq!(branched.len(), 3, "three branches: {detail:#}");
    // Every pair of branch steps overlaps in time.
    for a in &branched {
        for b in &branched {
            assert!(
                millis(&a["started_at"]) < millis(&b["completed_at"]),
                "{a} / {b}"
            );
        }
    }
    assert_eq!(
        detail["progress"]["current_step"],
        detail["progress"]["total_steps"]
    );
}

#[tokio::test]
#[ignore = "needs a Temporal dev server: scripts/test.sh starts one"]
async fn a_retried_activity_shows_its_attempts_and_last_error() {
    let temporal = Temporal::from_env();
    let stepline = Stepline::following(&temporal.http).await;
    let workflow_id = unique("retry");
    let run = temporal
        .start(
            "RetryWF",
            &workflow_id,
            json!({"fail_attempts": 2, "step_ms": 100}),
        )
        .await;
    let id = stepline.id(&workflow_id, &run);
    // While it waits for its second attempt, describe already tells the first failed.
    let waiting = stepline
        .wait_for(&id, WITHIN, |d| {
            steps(d).iter().any(|s| {
                s["attempts"]
                    .as_array()
                    .is_some_and(|a| a.first().is_some_and(|first| first["status"] == "FAILED"))
            })
        })
        .await;
    assert_eq!(waiting["status"], "RUNNING", "{waiting:#}");
    let detail = stepline.wait_for_status(&id, "COMPLETED", WITHIN).await;
    let step = steps(&detail)
        .into_iter()
        .find(|s| s["name"] == "flaky_step")
        .expect("the flaky step");
    let attempts = step["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "{step:#}");
    assert_eq!(attempts[0]["status"], "FAILED");
    assert_eq!(attempts[1]["status"], "FAILED");
    assert_eq!(attempts[1]["error"], "flaky upstream: attempt 2");
    assert_eq!(attempts[2]["status"], "COMPLETED");
    assert_eq!(step["retry_count"], 2);
    assert_eq!(step["retry_policy"]["max_attempts"], 5);
}

#[tokio::test]
#[ignore = "needs a Temporal dev server: scripts/test.sh starts one"]
async fn a_sagas_compensations_are_marked_after_a_failure() {
    let temporal = Temporal::from_env();
    let stepline = Stepline::following(&temporal.http).await;
    let workflow_id = unique("saga-fail");
    let run = temporal
        .start(
            "SagaWF",
            &workflow_id,
            json!({"steps": 4, "step_ms": 100, "fail_at": 3}),
        )
        .await;
    let id = stepline.id(&workflow_id, &run);
    let detail = stepline.wait_for_status(&id, "FAILED", WITHIN).await;
    let all = steps(&detail);
    let compensations: Vec<&Value> = all.iter().filter(|s| s["kind"] == "compensation").collect();
    assert_eq!(
        compensations.len(),
        2,
        "steps 2 and 1 rolled back: {detail:#}"
    );
    let failed = all
        .iter()
        .find(|s| s["kind"] == "normal" && s["status"] == "FAILED")
        .expect("the failed step");
    for compensation in &compensations {
        assert_eq!(compensation["status"], "COMPLETED");
        assert!(millis(&compensation["started_at"]) >= millis(&failed["completed_at"]));
    }
}

#[tokio::test]
#[ignore = "needs a Temporal dev server: scripts/test.sh starts one"]
async fn a_cancel_from_stepline_runs_the_sagas_compensations() {
    let temporal = Temporal::from_env();
    let stepline = Stepline::following(&temporal.http).await;
    let workflow_id = unique("saga-cancel");
    let run = temporal
        .start(
            "SagaWF",
            &workflow_id,
            json!({"steps": 3, "step_ms": 100, "hold_ms": 60000}),
        )
        .await;
    let id = stepline.id(&workflow_id, &run);
    // Three steps done, then it holds (a timer) until cancelled.
    stepline
        .wait_for(&id, WITHIN, |d| {
            steps(d)
                .iter()
                .filter(|s| s["status"] == "COMPLETED")
                .count()
                == 3
        })
        .await;
    let (status, answer) = stepline
        .post(
            &format!("/api/platform/orchestration/workflows/{id}/cancel"),
            &json!({"reason": "customer withdrew"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let detail = stepline.wait_for_status(&id, "CANCELLED", WITHIN).await;
    let compensations = steps(&detail)
        .into_iter()
        .filter(|s| s["kind"] == "compensation")
        .count();
    assert_eq!(compensations, 3, "{detail:#}");
    assert_eq!(
        temporal.status(&workflow_id).await,
        "WORKFLOW_EXECUTION_STATUS_CANCELED"
    );
}

#[tokio::test]
#[ignore = "needs a Temporal dev server: scripts/test.sh starts one"]
async fn pause_resume_and_terminate_from_stepline_change_temporals_status() {
    let temporal = Temporal::from_env();
    let stepline = Stepline::following(&temporal.http).await;
    let workflow_id = unique("long");
    let run = temporal
        .start(
            "LongRunningWF",
            &workflow_id,
            json!({"steps": 2, "step_ms": 30000}),
        )
        .await;
    let id = stepline.id(&workflow_id, &run);
    let running = stepline
        .wait_for(&id, WITHIN, |d| {
            d["status"] == "RUNNING" && d["capabilities"]["can_pause"] == true
        })
        .await;
    assert_eq!(running["capabilities"]["can_cancel"], true);
    let action = |what: &str| format!("/api/platform/orchestration/workflows/{id}/{what}");
    let (status, answer) = stepline.post(&action("pause"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        temporal.status(&workflow_id).await,
        "WORKFLOW_EXECUTION_STATUS_PAUSED"
    );
    stepline.wait_for_status(&id, "PAUSED", WITHIN).await;
    let (status, answer) = stepline.post(&action("resume"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        temporal.status(&workflow_id).await,
        "WORKFLOW_EXECUTION_STATUS_RUNNING"
    );
    stepline.wait_for_status(&id, "RUNNING", WITHIN).await;
    // The hard stop, apart from cancel.
    let (status, answer) = stepline
        .post(&action("terminate"), &json!({"reason": "test done"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        temporal.status(&workflow_id).await,
        "WORKFLOW_EXECUTION_STATUS_TERMINATED"
    );
    let ended = stepline.wait_for_status(&id, "TERMINATED", WITHIN).await;
    assert_eq!(ended["status_reason"], "test done");
}

/// Keeps a core busy until dropped: the follower must keep up on a loaded machine.
struct BusyCores {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl BusyCores {
    fn start() -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        // One core: with the other tests running beside this one, the machine is busy.
        let threads = (0..1)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for BusyCores {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// How long Stepline may take to show a pause or a resume that Temporal has taken, on a
/// loaded machine (the follower's aim is well under a second; Temporal's idle long-poll
/// lasts 20 s, so a follower stuck in one fails this).
const FOLLOWS_WITHIN: Duration = Duration::from_secs(10);

#[tokio::test]
#[ignore = "needs a Temporal dev server: scripts/test.sh starts one"]
async fn twenty_pauses_and_resumes_in_a_row_are_all_followed_under_load() {
    let temporal = Temporal::from_env();
    let stepline = Stepline::following(&temporal.http).await;
    let _load = BusyCores::start();
    let workflow_id = unique("pauses");
    // Short activities: the pauses land in every phase (activity running, workflow task
    // in flight just after a resume, between steps).
    let run = temporal
        .start(
            "LongRunningWF",
            &workflow_id,
            json!({"steps": 400, "step_ms": 150}),
        )
        .await;
    let id = stepline.id(&workflow_id, &run);
    stepline
        .wait_for(&id, WITHIN, |d| {
            d["status"] == "RUNNING" && d["capabilities"]["can_pause"] == true
        })
        .await;
    let action = |what: &str| format!("/api/platform/orchestration/workflows/{id}/{what}");
    for cycle in 1..=20 {
        let (status, answer) = stepline.post(&action("pause"), &json!({})).await;
        assert_eq!(status, StatusCode::OK, "pause {cycle}: {answer}");
        stepline
            .wait_for(&id, FOLLOWS_WITHIN, |d| d["status"] == "PAUSED")
            .await;
        let (status, answer) = stepline.post(&action("resume"), &json!({})).await;
        assert_eq!(status, StatusCode::OK, "resume {cycle}: {answer}");
        assert_eq!(
            temporal.status(&workflow_id).await,
            "WORKFLOW_EXECUTION_STATUS_RUNNING",
            "resume {cycle}"
        );
        stepline
            .wait_for(&id, FOLLOWS_WITHIN, |d| d["status"] == "RUNNING")
            .await;
    }
    // Steps still advance after all that: a new one completes.
    let before = stepline.detail(&id).await;
    let done = |d: &Value| {
        steps(d)
            .iter()
            .filter(|s| s["status"] == "COMPLETED")
            .count()
    };
    let completed = done(&before);
    stepline
        .wait_for(&id, WITHIN, |d| done(d) > completed)
        .await;
    let (status, answer) = stepline
        .post(&action("terminate"), &json!({"reason": "test done"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    stepline.wait_for_status(&id, "TERMINATED", WITHIN).await;
}

#[tokio::test]
#[ignore = "needs a Temporal dev server: scripts/test.sh starts one"]
async fn a_retry_from_the_failed_step_creates_a_new_run_that_stepline_follows() {
    let temporal = Temporal::from_env();
    let stepline = Stepline::following(&temporal.http).await;
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("fixed");
    let workflow_id = unique("fixable");
    let run = temporal
        .start(
            "FixableWF",
            &workflow_id,
            json!({"marker_path": marker, "step_ms": 100}),
        )
        .await;
    let id = stepline.id(&workflow_id, &run);
    let failed = stepline.wait_for_status(&id, "FAILED", WITHIN).await;
    let step = steps(&failed)
        .into_iter()
        .find(|s| s["status"] == "FAILED")
        .expect("the failed step");
    assert!(step["error"].as_str().unwrap().contains("marker"), "{step}");
    std::fs::write(&marker, "fixed").unwrap();

    let (status, answer) = stepline
        .post(
            &format!("/api/platform/orchestration/workflows/{id}/retry"),
            &json!({"from_step": step["step_number"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let new_id = answer["workflow_id"]
        .as_str()
        .expect("the new run's id")
        .to_owned();
    assert_ne!(new_id, id);
    assert!(
        answer["message"].as_str().unwrap().contains(&new_id),
        "{answer}"
    );
    let retried = stepline.wait_for_status(&new_id, "COMPLETED", WITHIN).await;
    assert_eq!(
        retried["metadata"]["trigger_type"],
        format!("retry of {id}")
    );
    assert!(
        steps(&retried).iter().all(|s| s["status"] == "COMPLETED"),
        "{retried:#}"
    );
    // The failed run stays as it was: Temporal resets a closed run into a new one.
    let old = stepline.detail(&id).await;
    assert_eq!(old["status"], "FAILED");
}

#[tokio::test]
#[ignore = "needs a Temporal dev server: scripts/test.sh starts one"]
async fn a_clone_starts_the_same_workflow_again() {
    let temporal = Temporal::from_env();
    let stepline = Stepline::following(&temporal.http).await;
    let workflow_id = unique("seq");
    let run = temporal
        .start(
            "SequentialWF",
            &workflow_id,
            json!({"steps": 2, "step_ms": 50}),
        )
        .await;
    let id = stepline.id(&workflow_id, &run);
    let original = stepline.wait_for_status(&id, "COMPLETED", WITHIN).await;
    let (status, answer) = stepline
        .post(
            &format!("/api/platform/orchestration/workflows/{id}/clone"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let clone_id = answer["workflow_id"].as_str().unwrap().to_owned();
    let clone = stepline
        .wait_for_status(&clone_id, "COMPLETED", WITHIN)
        .await;
    assert_eq!(clone["metadata"]["trigger_type"], format!("clone of {id}"));
    assert_eq!(clone["type"], "SequentialWF");
    assert_eq!(steps(&clone).len(), steps(&original).len());
    assert_eq!(steps(&clone)[0]["input"], steps(&original)[0]["input"]);
}

#[tokio::test]
#[ignore = "needs a Temporal dev server: scripts/test.sh starts one"]
async fn an_outage_shows_as_degraded_and_stepline_catches_up() {
    let temporal = Temporal::from_env();
    let relay = Relay::to(&temporal.http).await;
    let stepline = Stepline::following(&relay.url()).await;
    let workflow_id = unique("outage");
    let run = temporal
        .start(
            "SequentialWF",
            &workflow_id,
            // Long enough that Stepline cannot have seen the end when the relay is cut,
            // however slowly it saw the first step on a busy machine.
            json!({"steps": 6, "step_ms": 1000}),
        )
        .await;
    let id = stepline.id(&workflow_id, &run);
    stepline
        .wait_for(&id, WITHIN, |d| {
            steps(d).first().is_some_and(|s| s["status"] == "COMPLETED")
        })
        .await;

    relay.set(false);
    let engine_state = || async {
        let (_, engines) = stepline.get("/api/platform/orchestration/engines").await;
        engines[0]["state"].as_str().unwrap_or("?").to_owned()
    };
    until("the source to show as degraded", WITHIN, || async {
        (engine_state().await == "degraded").then_some(())
    })
    .await;
    let (_, list) = stepline.get("/api/platform/orchestration/workflows").await;
    assert_eq!(list["stats"]["engines"][0]["state"], "degraded", "{list:#}");
    // The run goes on in Temporal while Stepline cannot see it.
    until("the run to complete in Temporal", WITHIN, || async {
        (temporal.status(&workflow_id).await == "WORKFLOW_EXECUTION_STATUS_COMPLETED").then_some(())
    })
    .await;
    let stale = stepline.detail(&id).await;
    assert_eq!(
        stale["status"], "RUNNING",
        "Stepline could not have seen the end yet"
    );
    // Not answering for a while, the source is an alert of its own.
    let degraded = |state: &'static str| {
        let stepline = &stepline;
        async move {
            let (_, page) = stepline
                .get(&format!("/api/platform/orchestration/alerts?state={state}"))
                .await;
            page["alerts"].as_array().and_then(|alerts| {
                alerts
                    .iter()
                    .find(|a| a["condition"] == "source_degraded")
                    .cloned()
            })
        }
    };
    let alert = until("the degraded source's alert", WITHIN, || degraded("firing")).await;
    assert!(
        alert["summary"]
            .as_str()
            .unwrap()
            .contains("has not answered since"),
        "{alert}"
    );

    relay.set(true);
    let detail = stepline.wait_for_status(&id, "COMPLETED", WITHIN).await;
    let all = steps(&detail);
    assert_eq!(all.len(), 6);
    assert!(all.iter().all(|s| s["status"] == "COMPLETED"), "{detail:#}");
    until("the source to recover", WITHIN, || async {
        (engine_state().await == "ok").then_some(())
    })
    .await;
    let resolved = until("its alert resolved", WITHIN, || degraded("resolved")).await;
    assert_eq!(resolved["id"], alert["id"]);
}

#[tokio::test]
#[ignore = "needs a Temporal dev server: scripts/test.sh starts one"]
async fn after_a_restart_stepline_resumes_each_run_where_it_stopped() {
    let temporal = Temporal::from_env();
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().to_owned();
    let workflow_id = unique("restart");
    let run = temporal
        .start(
            "SequentialWF",
            &workflow_id,
            // Long enough that the first Stepline is dropped mid-run on a busy machine.
            json!({"steps": 5, "step_ms": 1000}),
        )
        .await;
    let id = source(&temporal.http).workflow_id(&workflow_id, &run);

    // The first Stepline runs on its own runtime: dropping it stops every task it had,
    // as a killed process would, while the workflow goes on in Temporal.
    let first = {
        let (url, id) = (temporal.http.clone(), id.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async {
                let stepline = Stepline::following_on(&url, dir).await;
                let seen = stepline
                    .wait_for(&id, WITHIN, |d| {
                        steps(d).first().is_some_and(|s| s["status"] == "COMPLETED")
                    })
                    .await;
                (seen, stepline.dir)
            })
        })
        .join()
        .unwrap()
    };
    let (seen, dir) = first;
    assert_eq!(seen["status"], "RUNNING");
    assert_eq!(dir.path(), database);

    let stepline = Stepline::following_on(&temporal.http, dir).await;
    let detail = stepline.wait_for_status(&id, "COMPLETED", WITHIN).await;
    let all = steps(&detail);
    assert_eq!(all.len(), 5, "{detail:#}");
    for step in &all {
        assert_eq!(step["status"], "COMPLETED", "{step}");
        assert_eq!(
            step["attempts"].as_array().unwrap().len(),
            1,
            "no step twice: {step}"
        );
    }
}

#[tokio::test]
#[ignore = "needs a Temporal dev server: scripts/test.sh starts one"]
async fn a_run_whose_workflow_task_keeps_failing_is_seen_to_end_when_terminated() {
    let temporal = Temporal::from_env();
    let stepline = Stepline::following(&temporal.http).await;
    // Without its marker path FixableWF fails its workflow task after step 1, again and
    // again: Temporal's long-poll answers end with a task it does not store.
    let workflow_id = unique("stuck");
    let run = temporal
        .start("FixableWF", &workflow_id, json!({"step_ms": 100}))
        .await;
    let id = stepline.id(&workflow_id, &run);
    stepline
        .wait_for(&id, WITHIN, |d| {
            steps(d).first().is_some_and(|s| s["status"] == "COMPLETED")
        })
        .await;
    // A few failed task attempts (1 s, then 2 s apart on the dev server).
    until("the workflow task to fail twice", WITHIN, || async {
        let history = temporal.history(&workflow_id).await;
        let failures = history
            .iter()
            .filter(|e| e["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_FAILED")
            .count();
        (failures >= 2).then_some(())
    })
    .await;
    temporal.terminate(&workflow_id, "stuck: terminated").await;
    let ended = stepline.wait_for_status(&id, "TERMINATED", WITHIN).await;
    assert_eq!(ended["status_reason"], "stuck: terminated");
    // Imported after the fact: the same end.
    let later = Stepline::following(&temporal.http).await;
    let imported = later.wait_for_status(&id, "TERMINATED", WITHIN).await;
    assert_eq!(imported["status_reason"], "stuck: terminated");
}

#[tokio::test]
#[ignore = "needs a Temporal dev server: scripts/test.sh starts one"]
async fn over_long_ids_names_and_errors_are_stored_cut_and_the_run_is_followed_to_its_end() {
    let temporal = Temporal::from_env();
    let stepline = Stepline::following(&temporal.http).await;
    // A 185-character workflow id: its child's id (190) makes a step name over 200 bytes,
    // and Stepline's own id must hash it.
    let parent_id = format!("{}-{}", unique("long"), "p".repeat(200));
    let parent_id = &parent_id[..185];
    let parent_run = temporal
        .start(
            "ChildParentWF",
            parent_id,
            json!({"steps": 1, "step_ms": 100}),
        )
        .await;
    // An activity that fails with a 20,000-character message.
    let failing_id = unique("long-error");
    let failing_run = temporal
        .start(
            "PermanentFailWF",
            &failing_id,
            json!({"step_ms": 100, "detail_len": 20_000}),
        )
        .await;

    let parent = stepline
        .wait_for_status(&stepline.id(parent_id, &parent_run), "COMPLETED", WITHIN)
        .await;
    // Stepline's id holds only a hash of the over-long workflow id: the detail shows the
    // ids Temporal knows the run by, and a search by the workflow id finds it.
    assert_eq!(
        parent["metadata"]["engine_ref"],
        format!("workflow {parent_id} · run {parent_run}")
    );
    let (_, found) = stepline
        .get(&format!(
            "/api/platform/orchestration/workflows?q={}",
            &parent_id[..120]
        ))
        .await;
    // The parent, and its child (whose id starts with the parent's).
    let found = found["workflows"].as_array().cloned().unwrap_or_default();
    assert!(found.iter().any(|w| w["id"] == parent["id"]), "{found:?}");
    assert!(
        found.iter().all(|w| w["engine_ref"]
            .as_str()
            .is_some_and(|r| r.contains(&parent_id[..120]))),
        "{found:?}"
    );
    let child_step = steps(&parent)
        .into_iter()
        .find(|s| {
            s["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("child workflow"))
        })
        .expect("the child workflow step");
    let name = child_step["name"].as_str().unwrap();
    assert!(name.len() <= 200, "{name}");
    assert!(name.ends_with("bytes cut]"), "the cut says so: {name}");
    assert_eq!(child_step["status"], "COMPLETED");

    let failed = stepline
        .wait_for_status(&stepline.id(&failing_id, &failing_run), "FAILED", WITHIN)
        .await;
    let step = steps(&failed)
        .into_iter()
        .find(|s| s["status"] == "FAILED")
        .expect("the failed step");
    let error = step["error"].as_str().unwrap();
    assert!(error.contains("upstream rejected the request"), "{error}");
    assert!(
        error.ends_with("bytes cut]"),
        "{}",
        &error[error.len() - 60..]
    );
    assert!(error.len() <= 16 * 1024);
}

#[tokio::test]
#[ignore = "needs a Temporal dev server: scripts/test.sh starts one"]
async fn a_workflow_id_with_a_slash_is_listed_and_says_why_its_steps_are_missing() {
    let temporal = Temporal::from_env();
    let stepline = Stepline::following(&temporal.http).await;
    // Temporal's HTTP API answers 404 for every path holding such an id (tried with `/`,
    // `%2F` and `%252F`): the runs are started through the CLI's gRPC.
    let done_id = format!("{}/orders/7", unique("slash"));
    let done_run = temporal
        .start_by_cli(
            "SequentialWF",
            &done_id,
            json!({"steps": 1, "step_ms": 100}),
        )
        .await;
    let live_id = format!("{}/orders/8", unique("slash"));
    let live_run = temporal
        .start_by_cli(
            "LongRunningWF",
            &live_id,
            json!({"steps": 1, "step_ms": 4000}),
        )
        .await;
    let live_key = stepline.id(&live_id, &live_run);
    let live = stepline.wait_for_status(&live_key, "RUNNING", WITHIN).await;
    let reason = live["status_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("cannot address a workflow id that contains '/'"),
        "{live:#}"
    );
    assert_eq!(
        live["metadata"]["engine_ref"],
        format!("workflow {live_id} · run {live_run}")
    );
    assert_eq!(live["type"], "LongRunningWF");
    assert!(steps(&live).is_empty(), "{live:#}");
    // Nothing can be done to it from here, and the API says so rather than trying.
    assert_eq!(live["capabilities"]["can_cancel"], false);
    let (status, refused) = stepline
        .post(
            &format!("/api/platform/orchestration/workflows/{live_key}/cancel"),
            &json!({"reason": "try"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    // Watched through the listing until it ends.
    let live = stepline
        .wait_for_status(&live_key, "COMPLETED", WITHIN)
        .await;
    assert_eq!(live["progress"]["percent"], 100);
    assert!(live["status_reason"]
        .as_str()
        .is_some_and(|r| r.contains("'/'")));
    let done = stepline
        .wait_for_status(&stepline.id(&done_id, &done_run), "COMPLETED", WITHIN)
        .await;

    // Imported after the fact: the same.
    let later = Stepline::following(&temporal.http).await;
    for (finished, id) in [(&done, later.id(&done_id, &done_run)), (&live, live_key)] {
        let imported = later.wait_for_status(&id, "COMPLETED", WITHIN).await;
        for field in ["status_reason", "type", "metadata", "progress"] {
            assert_eq!(imported[field], finished[field], "{field} of {id}");
        }
    }
}

#[tokio::test]
#[ignore = "needs a Temporal dev server: scripts/test.sh starts one"]
async fn two_executions_of_one_workflow_id_seconds_apart_are_two_runs() {
    let temporal = Temporal::from_env();
    let stepline = Stepline::following(&temporal.http).await;
    let workflow_id = unique("twice");
    let input = json!({"steps": 1, "step_ms": 100});
    let first = temporal
        .start("SequentialWF", &workflow_id, input.clone())
        .await;
    let first_id = stepline.id(&workflow_id, &first);
    stepline
        .wait_for_status(&first_id, "COMPLETED", WITHIN)
        .await;
    let second = temporal.start("SequentialWF", &workflow_id, input).await;
    let second_id = stepline.id(&workflow_id, &second);
    assert_ne!(first_id, second_id);
    stepline
        .wait_for_status(&second_id, "COMPLETED", WITHIN)
        .await;
    let first_detail = stepline.detail(&first_id).await;
    assert_eq!(first_detail["status"], "COMPLETED");
}

#[tokio::test]
#[ignore = "needs a Temporal dev server: scripts/test.sh starts one"]
async fn a_timed_out_runs_running_step_ends_with_it() {
    let temporal = Temporal::from_env();
    let stepline = Stepline::following(&temporal.http).await;
    let workflow_id = unique("timeout");
    let run = temporal
        .start_with(
            "LongRunningWF",
            &workflow_id,
            json!({"steps": 1, "step_ms": 30000, "delay_ms": 4000}),
            json!({"workflowExecutionTimeout": "15s"}),
        )
        .await;
    let id = stepline.id(&workflow_id, &run);
    // The timer first is a step too; the activity is the one that must end with the run.
    let activity = |d: &Value| {
        steps(d).into_iter().find(|s| {
            s["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("long_step"))
        })
    };
    stepline
        .wait_for(&id, WITHIN, |d| {
            activity(d).is_some_and(|s| s["status"] == "RUNNING")
        })
        .await;
    let ended = stepline.wait_for_status(&id, "TIMED_OUT", WITHIN).await;
    let all = steps(&ended);
    assert!(!all.is_empty(), "{ended:#}");
    for step in &all {
        assert!(
            !matches!(step["status"].as_str(), Some("RUNNING" | "RETRYING")),
            "no step is left open: {step}"
        );
    }
    // The step was scheduled 4 s into the run, so its own timeout (capped by Temporal at
    // the run timeout, counted from then) cannot fire first: without the delay the two
    // raced, and when the step's won, the workflow failed on it instead of timing out.
    let step = activity(&ended).expect("the activity step");
    assert!(
        step["error"]
            .as_str()
            .is_some_and(|e| e.contains("TIMED_OUT")),
        "{step}"
    );
}

#[tokio::test]
#[ignore = "needs a Temporal dev server: scripts/test.sh starts one"]
async fn a_local_activity_is_a_step() {
    let temporal = Temporal::from_env();
    let stepline = Stepline::following(&temporal.http).await;
    let workflow_id = unique("local");
    let run = temporal
        .start("LocalActivityWF", &workflow_id, json!({"step_ms": 100}))
        .await;
    let id = stepline.id(&workflow_id, &run);
    let done = stepline.wait_for_status(&id, "COMPLETED", WITHIN).await;
    let all = steps(&done);
    assert_eq!(all.len(), 2, "{done:#}");
    assert_eq!(all[1]["name"], "do_step (local)");
    assert_eq!(all[1]["status"], "COMPLETED");
    assert_eq!(all[1]["output"], "local done");
    assert!(millis(&all[1]["started_at"]) <= millis(&all[1]["completed_at"]));
    assert_eq!(done["progress"]["percent"], 100);
}

/// The fields of each step that following live and importing later must agree on (a
/// start too, where history records it: see the cancelled run's test).
fn step_facts(detail: &Value) -> Vec<Value> {
    steps(detail)
        .iter()
        .map(|s| {
            json!([
                s["name"],
                s["status"],
                s["error"],
                s["output"],
                s["completed_at"]
            ])
        })
        .collect()
}

fn step_starts(detail: &Value) -> Vec<Value> {
    steps(detail)
        .iter()
        .map(|s| s["started_at"].clone())
        .collect()
}

#[tokio::test]
#[ignore = "needs a Temporal dev server: scripts/test.sh starts one"]
async fn a_run_cancelled_while_its_step_ignores_the_cancel_ends_with_no_step_open() {
    let temporal = Temporal::from_env();
    let stepline = Stepline::following(&temporal.http).await;
    let workflow_id = unique("stubborn");
    let run = temporal
        .start("StubbornWF", &workflow_id, json!({"step_ms": 20000}))
        .await;
    let id = stepline.id(&workflow_id, &run);
    let stubborn = |d: &Value| {
        steps(d).into_iter().find(|s| {
            s["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("stubborn_step"))
        })
    };
    stepline
        .wait_for(&id, WITHIN, |d| {
            d["capabilities"]["can_cancel"] == true
                && stubborn(d).is_some_and(|s| s["status"] == "RUNNING")
        })
        .await;
    let (status, answer) = stepline
        .post(
            &format!("/api/platform/orchestration/workflows/{id}/cancel"),
            &json!({"reason": "no longer needed"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // Temporal ends the workflow while its activity, which never heartbeats, runs on:
    // history holds the cancel request for the step and no end for it.
    let ended = stepline.wait_for_status(&id, "CANCELLED", WITHIN).await;
    assert_eq!(
        temporal.status(&workflow_id).await,
        "WORKFLOW_EXECUTION_STATUS_CANCELED"
    );
    let step = stubborn(&ended).expect("the stubborn step");
    assert_eq!(step["status"], "CANCELLED", "{step}");
    assert!(
        step["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("ended with the run (CANCELLED")),
        "{step}"
    );
    assert!(millis(&step["started_at"]) <= millis(&step["completed_at"]));
    for step in steps(&ended) {
        assert!(
            !matches!(step["status"].as_str(), Some("RUNNING" | "RETRYING")),
            "no step is left open: {step}"
        );
    }
    // Imported after the fact: the same steps, ended at the same time for the same
    // reason. Temporal writes an activity's start only with its end, so the history of a
    // step that never ended holds no start: only the live follower saw it running.
    let later = Stepline::following(&temporal.http).await;
    let imported = later.wait_for_status(&id, "CANCELLED", WITHIN).await;
    assert_eq!(step_facts(&imported), step_facts(&ended));
    assert_eq!(stubborn(&imported).unwrap()["started_at"], Value::Null);
}

#[tokio::test]
#[ignore = "needs a Temporal dev server: scripts/test.sh starts one"]
async fn results_that_are_not_json_show_their_encoding_and_size() {
    let temporal = Temporal::from_env();
    let stepline = Stepline::following(&temporal.http).await;
    let workflow_id = unique("raw");
    let run = temporal
        .start("RawResultWF", &workflow_id, json!({"step_ms": 100}))
        .await;
    let id = stepline.id(&workflow_id, &run);
    let done = stepline.wait_for_status(&id, "COMPLETED", WITHIN).await;
    let output = |activity: &str| {
        steps(&done)
            .into_iter()
            .find(|s| s["name"].as_str().is_some_and(|n| n.starts_with(activity)))
            .unwrap_or_else(|| panic!("a {activity} step: {done:#}"))["output"]
            .clone()
    };
    // The Python SDK writes None as binary/null (no data) and bytes as binary/plain.
    assert_eq!(
        output("no_result"),
        json!({"encoding": "binary/null", "size_bytes": 0})
    );
    assert_eq!(
        output("raw_bytes"),
        json!({"encoding": "binary/plain", "size_bytes": 3})
    );
    assert_eq!(done["progress"]["percent"], 100);
    let later = Stepline::following(&temporal.http).await;
    let imported = later.wait_for_status(&id, "COMPLETED", WITHIN).await;
    assert_eq!(step_facts(&imported), step_facts(&done));
    assert_eq!(step_starts(&imported), step_starts(&done));
}
