//! Real Temporal histories (recorded from a dev server, in
//! `server/src/engines/temporal/fixtures`) mapped and applied by the real projector on a
//! real (in-memory) SQLite store: every mapped event must be accepted, and the run must
//! read as it did in Temporal.

use app::model::{Capabilities, StepKind, StepStatus, WorkflowDetail, WorkflowStatus};
use serde_json::{json, Value};
use server::engines::temporal::history::{CompensationRule, HistoryMapper};
use server::projector::apply_batch;
use server::source::Batch;
use server::store::Store;

fn history(name: &str) -> Vec<Value> {
    let path = format!(
        "{}/src/engines/temporal/fixtures/hist_{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    let json: Value = serde_json::from_str(&text).expect("fixture is JSON");
    json["history"]["events"]
        .as_array()
        .expect("events")
        .clone()
}

fn saga_rule() -> CompensationRule {
    CompensationRule {
        prefixes: vec!["compensate".into()],
        types: Vec::new(),
    }
}

/// Maps a whole history in two slices (as a follower reads it) and applies it.
async fn replay(name: &str) -> WorkflowDetail {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let events = history(name);
    let mut mapper = HistoryMapper::new(format!("temporal:default:{name}"), saga_rule());
    let middle = events.len() / 2;
    let now = chrono::Utc::now().timestamp_millis();
    for slice in [&events[..middle], &events[middle..]] {
        let mapped = mapper.map(slice).expect("the history maps");
        let batch = Batch {
            engine: "temporal:local".into(),
            capabilities: Capabilities::default(),
            events: mapped,
            positions: Vec::new(),
            held: None,
        };
        apply_batch(&store, batch, now)
            .await
            .unwrap_or_else(|e| panic!("{name}: the projector refused: {e}"));
    }
    store
        .workflow_detail(&format!("temporal:default:{name}"), now)
        .await
        .unwrap()
        .expect("the run exists")
}

#[tokio::test]
async fn a_sequential_workflow_completes_step_by_step() {
    let run = replay("seq").await;
    assert_eq!(run.status, WorkflowStatus::Completed);
    assert!(run.execution.steps.len() >= 3);
    assert!(run
        .execution
        .steps
        .iter()
        .all(|s| s.status == StepStatus::Completed));
    assert_eq!(run.progress.percent, 100);
}

#[tokio::test]
async fn activities_scheduled_together_are_parallel_branches_that_overlap() {
    let run = replay("ParallelWF").await;
    assert_eq!(run.status, WorkflowStatus::Completed);
    let branches = &run.execution.parallel_branches;
    assert!(branches.len() >= 2, "{branches:?}");
    let in_branch: Vec<_> = run
        .execution
        .steps
        .iter()
        .filter(|s| {
            s.branch.as_deref() == Some(branches[0].branch_id.as_str())
                || s.branch.as_deref() == Some(branches[1].branch_id.as_str())
        })
        .collect();
    let (a, b) = (in_branch[0], in_branch[1]);
    assert!(
        a.started_at < b.completed_at && b.started_at < a.completed_at,
        "{a:?} and {b:?} overlap"
    );
    assert_eq!(
        a.retry_policy.as_ref().map(|p| p.max_attempts),
        Some(5),
        "the retry policy is kept"
    );
}

#[tokio::test]
async fn a_retried_activity_shows_its_attempts_and_last_error() {
    let run = replay("retry").await;
    let flaky = run
        .execution
        .steps
        .iter()
        .find(|s| s.name.contains("charge-card"))
        .expect("the flaky step");
    assert_eq!(flaky.status, StepStatus::Completed);
    assert_eq!(flaky.attempts.len(), 3);
    assert_eq!(flaky.retry_count, 2);
    assert_eq!(
        flaky.attempts[1].error.as_deref(),
        Some("charge-card: transient failure on attempt 2")
    );
    assert_eq!(
        flaky.output,
        Some(json!("charge-card succeeded on attempt 3"))
    );
}

#[tokio::test]
async fn a_saga_that_fails_shows_its_compensations() {
    let run = replay("sagafail").await;
    assert_eq!(run.status, WorkflowStatus::Failed);
    assert!(run
        .status_reason
        .as_deref()
        .is_some_and(|r| r.contains("book-car: permanent failure")));
    let compensations: Vec<&str> = run
        .execution
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::Compensation)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        compensations,
        ["compensate · book-hotel", "compensate · book-flight"]
    );
}

#[tokio::test]
async fn cancel_terminate_timeouts_timers_and_children_map_to_our_statuses() {
    assert_eq!(
        replay("saga-cancel").await.status,
        WorkflowStatus::Cancelled
    );
    let terminated = replay("long-terminate").await;
    assert_eq!(terminated.status, WorkflowStatus::Terminated);
    assert!(terminated
        .execution
        .steps
        .iter()
        .any(|s| s.name.starts_with("timer ")));
    let timed_out = replay("timeout").await;
    assert!(timed_out.execution.steps.iter().any(|s| s
        .error
        .as_deref()
        .is_some_and(|e| e.starts_with("timed out ("))));
    let parent = replay("ChildParentWF").await;
    assert!(parent
        .execution
        .steps
        .iter()
        .any(|s| s.name.starts_with("child workflow") && s.status == StepStatus::Completed));
    assert_eq!(replay("stuck").await.status, WorkflowStatus::Running);
}

#[tokio::test]
async fn an_activity_at_attempt_four_billion_fills_in_only_its_last_attempts() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let id = "temporal:default:stuck-forever";
    let mut mapper = HistoryMapper::new(id, saga_rule());
    let mut events = mapper.map(&history("stuck")).expect("the history maps");
    let path = format!(
        "{}/src/engines/temporal/fixtures/desc_stuck.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut description: Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    description["pendingActivities"][0]["attempt"] = serde_json::json!(4_000_000_000u64);
    let described = mapper.pending_activities(&description);
    assert!(described.len() <= 21, "{} events", described.len());
    events.extend(described);
    let now = chrono::Utc::now().timestamp_millis();
    let batch = Batch {
        engine: "temporal:local".into(),
        capabilities: Capabilities::default(),
        events,
        positions: Vec::new(),
        held: None,
    };
    apply_batch(&store, batch, now).await.expect("applied");
    let run = store.workflow_detail(id, now).await.unwrap().unwrap();
    let step = run
        .execution
        .steps
        .iter()
        .find(|s| s.attempts.len() > 1)
        .expect("the retried step");
    assert_eq!(step.attempts.last().unwrap().attempt, 3_999_999_999);
    assert!(step.attempts.len() <= 11, "{}", step.attempts.len());
    let first_filled = &step.attempts[step.attempts.len() - 10];
    assert!(
        first_filled
            .error
            .as_deref()
            .is_some_and(|e| e.contains("as did attempts")),
        "{first_filled:?}"
    );
}
