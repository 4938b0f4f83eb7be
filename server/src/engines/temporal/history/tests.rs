//! The history mapper on its own: payloads it cannot read as JSON, histories that refer
//! to what they never scheduled, pages that end mid-task, runs that end with work out.
//! (Whole recorded histories mapped and stored are in `server/tests/temporal_histories.rs`.)

use super::*;

fn saga_rule() -> CompensationRule {
    CompensationRule {
        prefixes: vec!["compensate".into()],
        types: Vec::new(),
    }
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

#[test]
fn a_timer_waits_until_it_fires_and_a_scheduled_activity_for_a_worker() {
    let event = |id: u64, kind: &str, attributes: (&str, Value)| {
        let mut event = json!({
            "eventId": id.to_string(),
            "eventTime": "2026-01-01T12:00:00Z",
            "eventType": format!("EVENT_TYPE_{kind}"),
        });
        event[attributes.0] = attributes.1;
        event
    };
    let mut mapper = HistoryMapper::new("wf", CompensationRule::default());
    let events = mapper
        .map(&[
            event(5, "TIMER_STARTED", ("timerStartedEventAttributes", json!({"timerId": "t1", "startToFireTimeout": "90.500s"}))),
            event(6, "ACTIVITY_TASK_SCHEDULED", ("activityTaskScheduledEventAttributes",
                json!({"activityId": "1", "activityType": {"name": "resize"}, "taskQueue": {"name": "images"}}))),
            // A hostile duration waits with no end rather than breaking the mapping.
            event(7, "TIMER_STARTED", ("timerStartedEventAttributes", json!({"timerId": "t2", "startToFireTimeout": "1e300s"}))),
        ])
        .expect("mapped");
    let waits: Vec<(WaitReason, Option<String>, Option<String>)> = events
        .iter()
        .filter_map(|e| match &e.change {
            Change::StepWaiting {
                reason,
                until,
                detail,
                ..
            } => Some((*reason, until.map(|u| u.to_rfc3339()), detail.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        waits,
        [
            (
                WaitReason::Timer,
                Some("2026-01-01T12:01:30.500+00:00".to_owned()),
                None
            ),
            (
                WaitReason::QueueSlot,
                None,
                Some("a worker on task queue images".to_owned())
            ),
            (WaitReason::Timer, None, None),
        ]
    );
}
