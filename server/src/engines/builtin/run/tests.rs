//! The run state machine on its own: which steps start when, how retries wait, what a
//! failure stops, the rollback order, retry from a step, and a restart's recovery.

use super::*;
use crate::engines::builtin::definition::parse;
use std::path::Path;

/// one → (left → left_again) and (right) → join, numbered 1 to 5 in file order;
/// left_again retries twice with 1 s, 2 s waits; one, left and left_again compensate.
const DIAMOND: &str = r#"
type = "diamond"
name = "Diamond"
version = "1"
[[steps]]
name = "one"
action = { kind = "simulate", duration = "1s" }
compensation = { kind = "simulate", duration = "1s" }
[[steps]]
name = "left"
after = ["one"]
action = { kind = "simulate", duration = "1s" }
compensation = { kind = "simulate", duration = "1s" }
[[steps]]
name = "left_again"
after = ["left"]
action = { kind = "simulate", duration = "1s" }
retry = { max_attempts = 3, initial_delay = "1s", max_delay = "10s" }
compensation = { kind = "simulate", duration = "1s" }
[[steps]]
name = "right"
after = ["one"]
action = { kind = "simulate", duration = "1s" }
[[steps]]
name = "join"
after = ["left_again", "right"]
action = { kind = "simulate", duration = "1s" }
"#;

fn definition() -> Arc<Definition> {
    Arc::new(parse(Path::new("diamond.toml"), DIAMOND).expect("valid definition"))
}

fn started(now: Millis) -> (Run, Decisions) {
    let mut decisions = Decisions::default();
    let mut run = Run::create(
        "diamond-wf-1".into(),
        definition(),
        StartRequest {
            workflow_type: "diamond".into(),
            input: serde_json::json!({"customer": 7}),
            ..StartRequest::default()
        },
        now,
        &mut decisions,
    );
    run.admit(now, &mut decisions);
    (run, decisions)
}

fn launched(decisions: &Decisions) -> Vec<(u32, u32)> {
    decisions
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Launch(l) => Some((l.step_number, l.attempt)),
            _ => None,
        })
        .collect()
}

fn complete(run: &mut Run, step: u32, now: Millis) -> Decisions {
    let mut d = Decisions::default();
    let attempt = run.attempt_running(step).expect("the step runs");
    run.finish_attempt(step, attempt, Ok(None), now, &mut d);
    d
}

fn fail(run: &mut Run, step: u32, now: Millis) -> Decisions {
    let mut d = Decisions::default();
    let attempt = run.attempt_running(step).expect("the step runs");
    run.finish_attempt(step, attempt, Err("boom".into()), now, &mut d);
    d
}

fn statuses(decisions: &Decisions) -> Vec<WorkflowStatus> {
    decisions
        .events
        .iter()
        .filter_map(|e| match &e.change {
            Change::WorkflowStatusChanged { status, .. } => Some(*status),
            _ => None,
        })
        .collect()
}

#[test]
fn a_new_run_is_queued_then_starts_its_first_step() {
    let (run, decisions) = started(1_000);
    assert!(matches!(
        &decisions.events[0].change,
        Change::WorkflowStarted(start) if start.status == Some(WorkflowStatus::Pending)
            && start.total_steps == Some(5) && start.steps.len() == 5
    ));
    assert_eq!(statuses(&decisions), vec![WorkflowStatus::Running]);
    assert_eq!(launched(&decisions), vec![(1, 1)]);
    assert_eq!(run.status, WorkflowStatus::Running);
}

#[test]
fn independent_steps_start_together_and_the_join_waits_for_both() {
    let (mut run, _) = started(0);
    let d = complete(&mut run, 1, 10);
    // Numbered in file order: left=2, left_again=3, right=4, join=5.
    assert_eq!(launched(&d), vec![(2, 1), (4, 1)]);
    let d = complete(&mut run, 4, 20);
    assert!(launched(&d).is_empty(), "join waits for the left branch");
    let d = complete(&mut run, 2, 30);
    assert_eq!(launched(&d), vec![(3, 1)]);
    let d = complete(&mut run, 3, 40);
    assert_eq!(launched(&d), vec![(5, 1)]);
    let d = complete(&mut run, 5, 50);
    assert_eq!(statuses(&d), vec![WorkflowStatus::Completed]);
}

#[test]
fn a_failed_attempt_waits_out_its_backoff_then_fails_for_good() {
    let (mut run, _) = started(0);
    complete(&mut run, 1, 0);
    complete(&mut run, 2, 0);
    let d = fail(&mut run, 3, 1_000);
    assert!(matches!(
        d.events[0].change,
        Change::StepAttemptFailed { step_number: 3, .. }
    ));
    assert_eq!(
        run.steps[2].phase,
        Phase::RetryAt(2_000),
        "first wait is 1 s"
    );
    assert!(d.effects.contains(&Effect::WakeAt {
        workflow_id: run.id.clone(),
        at: 2_000
    }));

    let mut early = Decisions::default();
    run.advance(1_999, &mut early);
    assert!(launched(&early).is_empty(), "not before the wait is over");
    let mut due = Decisions::default();
    run.advance(2_000, &mut due);
    assert_eq!(launched(&due), vec![(3, 2)]);

    fail(&mut run, 3, 3_000);
    assert_eq!(
        run.steps[2].phase,
        Phase::RetryAt(5_000),
        "second wait is 2 s"
    );
    let mut due = Decisions::default();
    run.advance(5_000, &mut due);
    // Step 4 (right) still runs in the other branch: it is stopped when 3 fails.
    let d = fail(&mut run, 3, 6_000);
    assert!(d
        .events
        .iter()
        .any(|e| matches!(e.change, Change::StepFailed { step_number: 3, .. })));
    assert!(d
        .events
        .iter()
        .any(|e| matches!(e.change, Change::StepCancelled { step_number: 4, .. })));
    assert!(d.effects.contains(&Effect::Abort {
        workflow_id: run.id.clone(),
        step_number: 4
    }));
    assert_eq!(statuses(&d), vec![WorkflowStatus::Failed]);
}

#[test]
fn pause_waits_for_the_running_steps_and_resume_goes_on() {
    let (mut run, _) = started(0);
    complete(&mut run, 1, 0);
    let mut d = Decisions::default();
    let message = run.pause(10, &mut d).expect("a running run pauses");
    assert_eq!(
        message,
        "Workflow pauses after step 2 (left) and step 4 (right) complete"
    );
    assert_eq!(statuses(&d), vec![WorkflowStatus::Pausing]);
    let d = complete(&mut run, 2, 20);
    assert!(launched(&d).is_empty(), "nothing new starts while pausing");
    let d = complete(&mut run, 4, 30);
    assert_eq!(statuses(&d), vec![WorkflowStatus::Paused]);
    assert_eq!(
        run.pause(40, &mut Decisions::default()),
        Err("cannot pause a PAUSED workflow".into())
    );
    let mut d = Decisions::default();
    run.resume(50, &mut d).expect("a paused run resumes");
    assert_eq!(launched(&d), vec![(3, 1)]);
    assert_eq!(
        run.resume(60, &mut Decisions::default()),
        Err("cannot resume a RUNNING workflow".into())
    );
}

#[test]
fn cancel_rolls_back_completed_steps_latest_first_one_at_a_time() {
    let (mut run, _) = started(0);
    complete(&mut run, 1, 10);
    complete(&mut run, 2, 20);
    let mut d = Decisions::default();
    run.cancel(Some("Manual cancellation".into()), 30, &mut d)
        .expect("a running run cancels");
    assert_eq!(statuses(&d), vec![WorkflowStatus::Cancelling]);
    // Left_again (3) and right (4) were running: stopped.
    assert!(d.effects.contains(&Effect::Abort {
        workflow_id: run.id.clone(),
        step_number: 3
    }));
    let compensated: Vec<(u32, Option<u32>)> = d
        .events
        .iter()
        .filter_map(|e| match &e.change {
            Change::StepScheduled(s) => Some((s.step_number, s.compensates)),
            _ => None,
        })
        .collect();
    assert_eq!(
        compensated,
        vec![(6, Some(2)), (7, Some(1))],
        "C1 undoes step 2, C2 step 1"
    );
    assert_eq!(launched(&d), vec![(6, 1)], "one compensation at a time");
    let d = complete(&mut run, 6, 40);
    assert_eq!(launched(&d), vec![(7, 1)]);
    let d = complete(&mut run, 7, 50);
    assert!(matches!(
        &d.events.last().expect("an event").change,
        Change::WorkflowStatusChanged { status: WorkflowStatus::Cancelled, reason: Some(r) } if r == "Manual cancellation"
    ));
}

#[test]
fn a_failed_compensation_needs_intervention_and_retry_resumes_the_rollback() {
    let (mut run, _) = started(0);
    complete(&mut run, 1, 10);
    complete(&mut run, 2, 20);
    run.cancel(None, 30, &mut Decisions::default())
        .expect("cancels");
    let d = fail(&mut run, 6, 40);
    assert_eq!(statuses(&d), vec![WorkflowStatus::CompensationFailed]);
    let Some(Change::WorkflowStatusChanged {
        reason: Some(reason),
        ..
    }) = d.events.last().map(|e| &e.change)
    else {
        panic!("a status change with a reason");
    };
    assert!(
        reason.contains("compensation of step 2 (left) failed: boom"),
        "{reason}"
    );
    assert!(
        reason.contains("Not rolled back yet: step 2, step 1"),
        "{reason}"
    );

    let mut d = Decisions::default();
    run.retry(None, 50, &mut d)
        .expect("the rollback is retried");
    assert_eq!(statuses(&d), vec![WorkflowStatus::Cancelling]);
    assert_eq!(
        launched(&d),
        vec![(6, 2)],
        "the same compensation, next attempt"
    );
}

#[test]
fn retry_from_a_step_reruns_it_and_what_follows_but_keeps_the_rest() {
    let (mut run, _) = started(0);
    for step in [1, 2, 4] {
        complete(&mut run, step, 10);
    }
    for at in [20, 2_000, 6_000] {
        let mut due = Decisions::default();
        run.advance(at, &mut due);
        fail(&mut run, 3, at + 1);
    }
    assert_eq!(run.status, WorkflowStatus::Failed);
    assert_eq!(
        run.retry(Some(9), 7_000, &mut Decisions::default()),
        Err("from_step 9 is not a step of this workflow (1 to 5)".into())
    );
    let mut d = Decisions::default();
    let message = run.retry(Some(3), 7_000, &mut d).expect("retries");
    assert_eq!(message, "Retrying from step 3 (left_again)");
    let rescheduled: Vec<u32> = d
        .events
        .iter()
        .filter_map(|e| match &e.change {
            Change::StepScheduled(s) => Some(s.step_number),
            _ => None,
        })
        .collect();
    assert_eq!(rescheduled, vec![3, 5]);
    assert_eq!(
        launched(&d),
        vec![(3, 4)],
        "attempt numbers go on: 1-3 stay in history"
    );
    assert_eq!(run.steps[0].phase, Phase::Completed);
}

#[test]
fn a_run_cancelled_while_queued_ends_at_once() {
    let mut d = Decisions::default();
    let mut run = Run::create(
        "diamond-wf-2".into(),
        definition(),
        StartRequest::default(),
        0,
        &mut d,
    );
    let mut d = Decisions::default();
    run.cancel(None, 5, &mut d).expect("a queued run cancels");
    assert_eq!(statuses(&d), vec![WorkflowStatus::Cancelled]);
    assert!(d.effects.is_empty());
}

#[test]
fn a_restart_reruns_the_interrupted_attempt_without_using_up_a_retry() {
    use crate::source::{AttemptSnapshot, RunSnapshot, StepSnapshot};
    // The run as the read model holds it after its start: every step pending.
    let mut d = Decisions::default();
    let original = Run::create(
        "diamond-wf-3".into(),
        definition(),
        StartRequest::default(),
        0,
        &mut d,
    );
    let mut steps: Vec<StepSnapshot> = original
        .definition
        .steps
        .iter()
        .map(|step| StepSnapshot {
            step_number: step.number,
            name: step.name.clone(),
            kind: StepKind::Normal,
            compensates: None,
            status: StepStatus::Pending,
            error: None,
            completed_ms: None,
            attempts: Vec::new(),
        })
        .collect();
    let attempt = |status, completed_ms, error: Option<&str>| AttemptSnapshot {
        attempt: 1,
        status,
        completed_ms,
        error: error.map(str::to_owned),
    };
    steps[0].status = StepStatus::Completed;
    steps[1].status = StepStatus::Running;
    steps[1]
        .attempts
        .push(attempt(StepStatus::Running, None, None));
    steps[2].status = StepStatus::Retrying;
    steps[2]
        .attempts
        .push(attempt(StepStatus::Failed, Some(200), Some("boom")));
    let stored = RunSnapshot {
        id: original.id.clone(),
        engine: "builtin".into(),
        workflow_type: original.definition.workflow_type.clone(),
        engine_ref: None,
        status: WorkflowStatus::Running,
        status_reason: None,
        priority: original.priority,
        input: None,
        created_ms: 0,
        total_steps: steps.len() as u32,
        steps,
    };

    let mut d = Decisions::default();
    let mut run = Run::restore(&stored, original.definition, 1_000, &mut d).expect("restores");
    assert!(matches!(
        &d.events[0].change,
        Change::StepAttemptFailed { step_number: 2, error } if error == INTERRUPTED
    ));
    assert_eq!(run.steps[1].failures, 0, "an interruption is not a failure");
    assert_eq!(run.steps[2].failures, 1);
    run.advance(1_000, &mut d);
    assert_eq!(
        launched(&d),
        vec![(2, 2), (4, 1)],
        "interrupted step and a ready one"
    );
    assert!(
        d.effects.contains(&Effect::WakeAt {
            workflow_id: run.id.clone(),
            at: 1_200
        }),
        "step 3 waits out the rest of its 1 s backoff"
    );
}
