//! Real Temporal histories (recorded from a dev server, in `../fixtures`) mapped and
//! applied by the real projector: every mapped event must be accepted, and the run must
//! read as it did in Temporal.

use super::*;
use crate::projector::apply_batch;
use crate::source::Batch;
use crate::store::Store;
use app::model::{Capabilities, StepStatus, WorkflowDetail};

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
        };
        apply_batch(&store, &batch, now)
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
        .any(|s| s.name.starts_with("⏱ timer")));
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

#[test]
fn payloads_that_are_not_json_show_their_encoding_and_size() {
    let binary = json!({"payloads": [{
        "metadata": {"encoding": "YmluYXJ5L3Byb3RvYnVm"},
        "data": "AAECAwQ="
    }]});
    assert_eq!(
        payload(Some(&binary)),
        Some(json!({"encoding": "binary/protobuf", "size_bytes": 5}))
    );
    assert_eq!(payload(Some(&json!(["x", 1]))), Some(json!(["x", 1])));
    assert_eq!(payload(Some(&json!([{"a": 1}]))), Some(json!({"a": 1})));
    assert_eq!(payload(None), None);
    // A binary/null result in the shorthand list: a raw payload with no data.
    assert_eq!(
        payload(Some(
            &json!([{"metadata": {"encoding": "YmluYXJ5L251bGw="}}])
        )),
        Some(json!({"encoding": "binary/null", "size_bytes": 0}))
    );
}

#[test]
fn a_history_that_refers_to_an_unknown_activity_is_refused_with_its_event() {
    let mut mapper = HistoryMapper::new("wf", CompensationRule::default());
    let error = mapper
        .map(
            &[json!({"eventId": "9", "eventTime": "2026-11-25T20:38:38Z",
            "eventType": "EVENT_TYPE_ACTIVITY_TASK_COMPLETED",
            "activityTaskCompletedEventAttributes": {"scheduledEventId": "5"}})],
        )
        .expect_err("unknown scheduling event");
    assert_eq!(error.event_id, "9");
}

#[test]
fn a_transient_workflow_task_at_the_end_of_a_page_is_not_counted_as_seen() {
    // While a workflow task keeps failing, Temporal's long-poll ends its answer with a
    // scheduled + started task it does not store; the event it then stores under the
    // same id (here the run's termination) must still be read.
    let event = |id: u64, kind: &str| {
        serde_json::json!({
            "eventId": id.to_string(),
            "eventTime": "2026-01-01T12:00:00Z",
            "eventType": format!("EVENT_TYPE_{kind}"),
        })
    };
    let mut start = event(1, "WORKFLOW_EXECUTION_STARTED");
    start["workflowExecutionStartedEventAttributes"] =
        serde_json::json!({"workflowType": {"name": "BrokenWF"}});
    let mut mapper = HistoryMapper::new("temporal:default:broken", saga_rule());
    let first = vec![
        start,
        event(2, "WORKFLOW_TASK_SCHEDULED"),
        event(3, "WORKFLOW_TASK_STARTED"),
        event(4, "WORKFLOW_TASK_FAILED"),
        event(5, "WORKFLOW_TASK_SCHEDULED"),
        event(6, "WORKFLOW_TASK_STARTED"),
    ];
    mapper.map(&first).unwrap();
    assert_eq!(
        mapper.last_event_id(),
        4,
        "the trailing task is not settled"
    );
    let mut terminated = event(5, "WORKFLOW_EXECUTION_TERMINATED");
    terminated["workflowExecutionTerminatedEventAttributes"] =
        serde_json::json!({"reason": "stuck"});
    let mapped = mapper.map(&[terminated]).unwrap();
    assert!(mapper.closed());
    assert!(
        matches!(
            mapped.as_slice(),
            [SourceEvent {
                change: Change::WorkflowStatusChanged {
                    status: WorkflowStatus::Terminated,
                    ..
                },
                ..
            }]
        ),
        "{mapped:?}"
    );
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
    };
    apply_batch(&store, &batch, now).await.expect("applied");
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

#[test]
fn an_activity_still_out_when_the_run_is_cancelled_ends_with_it() {
    // As Temporal records a run cancelled while its activity ignores the cancel: the
    // activity's cancel request, then the run's end, and nothing of the activity's own.
    let event = |id: u64, kind: &str, attributes: Value| {
        let mut event = json!({"eventId": id.to_string(), "eventTime": "2026-12-03T12:08:38Z",
            "eventType": format!("EVENT_TYPE_{kind}")});
        let name = kind
            .split('_')
            .enumerate()
            .map(|(i, word)| {
                let lower = word.to_ascii_lowercase();
                if i == 0 {
                    lower
                } else {
                    lower[..1].to_ascii_uppercase() + &lower[1..]
                }
            })
            .collect::<String>();
        event[format!("{name}EventAttributes")] = attributes;
        event
    };
    let history = [
        event(
            1,
            "WORKFLOW_EXECUTION_STARTED",
            json!({"workflowType": {"name": "StubbornWF"}}),
        ),
        event(
            5,
            "ACTIVITY_TASK_SCHEDULED",
            json!({"activityId": "1",
            "activityType": {"name": "stubborn_step"}, "workflowTaskCompletedEventId": "4"}),
        ),
        event(
            6,
            "ACTIVITY_TASK_SCHEDULED",
            json!({"activityId": "2",
            "activityType": {"name": "done_step"}, "workflowTaskCompletedEventId": "4"}),
        ),
        event(
            7,
            "ACTIVITY_TASK_STARTED",
            json!({"scheduledEventId": "6", "attempt": 1}),
        ),
        event(
            8,
            "ACTIVITY_TASK_COMPLETED",
            json!({"scheduledEventId": "6"}),
        ),
        event(10, "WORKFLOW_EXECUTION_CANCEL_REQUESTED", json!({})),
        event(
            14,
            "ACTIVITY_TASK_CANCEL_REQUESTED",
            json!({"scheduledEventId": "5"}),
        ),
        event(15, "WORKFLOW_EXECUTION_CANCELED", json!({})),
    ];
    let mapped = HistoryMapper::new("wf", CompensationRule::default())
        .map(&history)
        .expect("the history maps");
    let ends: Vec<&Change> = mapped.iter().rev().take(2).map(|e| &e.change).collect();
    assert_eq!(
        ends,
        [
            &Change::WorkflowStatusChanged {
                status: WorkflowStatus::Cancelled,
                reason: None
            },
            &Change::StepCancelled {
                step_number: 1,
                reason: "ended with the run (CANCELLED)".into()
            },
        ]
    );
    // The activity that ended is left as it ended.
    let cancelled = mapped
        .iter()
        .filter(|e| matches!(e.change, Change::StepCancelled { .. }))
        .count();
    assert_eq!(cancelled, 1);
}
