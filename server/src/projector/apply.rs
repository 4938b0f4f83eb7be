//! The projector's rules, as pure functions: how a source event changes a workflow's rows,
//! which events are refused as malformed or out of order, what is derived (progress,
//! SLA, durations), and which live events the change produces.
//!
//! [`apply`] checks what every event must satisfy (its clock, its step number), then
//! hands the event to the rule for its change: one function per change, each saying
//! what it refuses and what it does. The checks the rules share are grouped under
//! Validation.

use crate::alerts::Conditions;
use crate::source::{limits, Change, Refusal, SourceEvent, StepDeclaration, WorkflowStart};
use crate::store::rows::{
    to_datetime, to_millis, AttemptRecord, LogRow, Millis, StepRow, WorkflowRow,
};
use app::model::{
    is_valid_workflow_id, Capabilities, LiveEvent, SlaStatus, StepKind, StepStatus, WaitReason,
    Waiting, WorkflowStatus,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One workflow's rows while a batch is applied, and what changed.
#[derive(Debug, Clone)]
pub struct WorkflowState {
    pub row: WorkflowRow,
    pub steps: BTreeMap<u32, StepRow>,
    /// Steps to write back.
    pub dirty_steps: BTreeSet<u32>,
    pub new_logs: Vec<LogRow>,
    /// SLA status before the batch, to tell when it crossed a threshold.
    pub sla_before: SlaStatus,
    /// The run as it was when loaded, if it had ended: the analytics take it out again
    /// when a retry reopens it.
    pub ended_before: Option<Box<(WorkflowRow, Vec<StepRow>)>>,
    /// The alert conditions the run held before the batch (none for a new run).
    pub alerting_before: Conditions,
}

impl WorkflowState {
    /// A run as read from the store, before the batch changes it.
    pub fn loaded(row: WorkflowRow, steps: Vec<StepRow>) -> Self {
        Self {
            sla_before: row.sla_status,
            alerting_before: Conditions::of(&row),
            ended_before: row
                .status
                .is_terminal()
                .then(|| Box::new((row.clone(), steps.clone()))),
            row,
            steps: steps.into_iter().map(|s| (s.step_number, s)).collect(),
            dirty_steps: BTreeSet::new(),
            new_logs: Vec::new(),
        }
    }
}

// Validation: what an event must satisfy before a rule changes anything.

/// A step number is between 1 and the most steps a run may have.
fn check_step_number(step_number: u32) -> Result<(), Refusal> {
    if step_number == 0 || step_number > limits::STEPS {
        Err(Refusal::Invalid(format!(
            "step_number must be between 1 and {}, got {step_number}",
            limits::STEPS
        )))
    } else {
        Ok(())
    }
}

/// Checks an event's timestamp against our clock: one before 1970, or further in the
/// future than the clocks may disagree, says the engine's clock is wrong.
fn check_clock(at: Millis, now: Millis) -> Result<(), Refusal> {
    if at < limits::EARLIEST_MS {
        return Err(Refusal::Invalid(
            "\"at\" is before 1970; check the engine's clock".into(),
        ));
    }
    if at > now + limits::CLOCK_SKEW_MS {
        return Err(Refusal::Invalid(format!(
            "\"at\" is {} s in the future; check the engine's clock",
            (at - now) / 1000
        )));
    }
    Ok(())
}

/// An ended run takes no new step (until a retry reopens it): `action` is refused.
fn require_open(state: &WorkflowState, action: &str) -> Result<(), Refusal> {
    if state.row.status.is_terminal() {
        Err(Refusal::OutOfOrder(format!(
            "workflow {:?} is {}: cannot {action}",
            state.row.id, state.row.status
        )))
    } else {
        Ok(())
    }
}

/// The step an end-of-attempt event is about, which must be running or retrying.
fn running_step<'s>(
    state: &'s mut WorkflowState,
    step_number: u32,
    what: &str,
) -> Result<&'s mut StepRow, Refusal> {
    let id = state.row.id.clone();
    match state.steps.get_mut(&step_number) {
        Some(step) if matches!(step.status, StepStatus::Running | StepStatus::Retrying) => Ok(step),
        Some(step) => Err(Refusal::OutOfOrder(format!(
            "step {step_number} of {id:?} is {}: it cannot be reported that {what}",
            step.status
        ))),
        None => Err(Refusal::OutOfOrder(format!(
            "step {step_number} of {id:?} has not started: it cannot be reported that {what}"
        ))),
    }
}

// Creating a run and applying events to it.

/// Creates a run from its `workflow_started` event.
pub fn start(
    event: &SourceEvent,
    start: &WorkflowStart,
    engine: &str,
    capabilities: Capabilities,
    now: Millis,
) -> Result<WorkflowState, Refusal> {
    if !is_valid_workflow_id(&event.workflow_id) {
        return Err(Refusal::Invalid(format!(
            "workflow_id {:?} must be 1 to 128 characters of A-Z a-z 0-9 . _ : -",
            event.workflow_id
        )));
    }
    if start.workflow_type.trim().is_empty() {
        return Err(Refusal::Invalid("workflow_type must not be empty".into()));
    }
    let at = to_millis(event.at);
    check_clock(at, now)?;
    let status = start.status.unwrap_or(WorkflowStatus::Running);
    if !matches!(status, WorkflowStatus::Pending | WorkflowStatus::Running) {
        return Err(Refusal::Invalid(format!(
            "a workflow starts PENDING or RUNNING, not {status}"
        )));
    }
    if let Some(total) = start.total_steps {
        if total > limits::STEPS {
            return Err(Refusal::Invalid(format!(
                "total_steps must be at most {}",
                limits::STEPS
            )));
        }
    }
    if let Some(target) = start.sla_target_seconds {
        if !(1..=limits::SLA_TARGET_SECONDS).contains(&target) {
            return Err(Refusal::Invalid(format!(
                "sla_target_seconds must be between 1 and {}",
                limits::SLA_TARGET_SECONDS
            )));
        }
    }
    let mut steps = BTreeMap::new();
    for declaration in &start.steps {
        check_step_number(declaration.step_number)?;
        if steps
            .insert(declaration.step_number, declared_step(declaration))
            .is_some()
        {
            return Err(Refusal::Invalid(format!(
                "step {} is declared twice",
                declaration.step_number
            )));
        }
    }
    let row = WorkflowRow {
        id: event.workflow_id.clone(),
        engine: engine.to_owned(),
        workflow_type: start.workflow_type.clone(),
        engine_ref: start.engine_ref.clone(),
        status,
        status_reason: None,
        definition_name: start.definition_name.clone(),
        definition_version: start.definition_version.clone(),
        declared_steps: start.total_steps,
        completed_steps: 0,
        total_steps: 0,
        sla_target_seconds: start.sla_target_seconds,
        sla_status: SlaStatus::derive(0, start.sla_target_seconds),
        triggered_by: start.triggered_by.clone(),
        trigger_type: start.trigger_type.clone(),
        priority: start.priority.unwrap_or_default(),
        tags: start.tags.clone(),
        input: start.input.clone(),
        capabilities,
        created_ms: at,
        started_ms: (status == WorkflowStatus::Running).then_some(at),
        completed_ms: None,
        updated_ms: now,
        forecast: None,
    };
    let dirty_steps = steps.keys().copied().collect();
    Ok(WorkflowState {
        sla_before: row.sla_status,
        alerting_before: Conditions::default(),
        ended_before: None,
        row,
        steps,
        dirty_steps,
        new_logs: Vec::new(),
    })
}

/// The row of a declared step before it runs: pending, with what the declaration says.
fn declared_step(declaration: &StepDeclaration) -> StepRow {
    StepRow {
        kind: declaration.kind,
        branch: declaration.branch.clone(),
        compensates: declaration.compensates,
        input: declaration.input.clone(),
        retry_policy: declaration.retry_policy.clone(),
        ..StepRow::pending(declaration.step_number, declaration.name.clone())
    }
}

/// Applies one event (other than `workflow_started`) to a run, pushing the live events
/// it causes onto `out`.
///
/// Every event is checked first (its clock, that it is not older than the run, its step
/// number); then the rule for its change decides the rest.
pub fn apply(
    state: &mut WorkflowState,
    event: &SourceEvent,
    now: Millis,
    out: &mut Vec<LiveEvent>,
) -> Result<(), Refusal> {
    let at = to_millis(event.at);
    check_clock(at, now)?;
    if at < state.row.created_ms {
        return Err(Refusal::OutOfOrder(format!(
            "\"at\" is before workflow {:?} started",
            state.row.id
        )));
    }
    if let Some(step_number) = event.change.step_number() {
        check_step_number(step_number)?;
    }
    let applied = match &event.change {
        // A run starts once: its start is not applied to it again.
        Change::WorkflowStarted(_) => Err(Refusal::AlreadyExists(state.row.id.clone())),
        Change::StepScheduled(declaration) => step_scheduled(state, declaration),
        Change::StepStarted {
            step_number,
            name,
            attempt,
            input,
            kind,
            branch,
            compensates,
        } => step_started(
            state,
            StepStart {
                step_number,
                name,
                attempt,
                input,
                kind,
                branch,
                compensates,
            },
            at,
            out,
        ),
        Change::StepAttemptFailed { step_number, error } => {
            step_attempt_failed(state, step_number, error, at, out)
        }
        Change::StepCompleted {
            step_number,
            output,
        } => step_completed(state, step_number, output, at, out),
        Change::StepOutput {
            step_number,
            output,
        } => step_output(state, step_number, output),
        Change::StepFailed { step_number, error } => {
            step_failed(state, step_number, error, at, out)
        }
        Change::StepSkipped { step_number } => step_skipped(state, step_number, at),
        Change::StepCancelled {
            step_number,
            reason,
        } => step_cancelled(state, step_number, reason, at),
        Change::WorkflowStatusChanged { status, reason } => {
            workflow_status_changed(state, status, reason, at, out)
        }
        Change::LogLines { step_number, lines } => log_lines(state, step_number, lines, at, out),
        Change::StepWaiting {
            step_number,
            reason,
            until,
            detail,
        } => step_waiting(
            state,
            *step_number,
            Waiting {
                reason: *reason,
                since: event.at,
                until: *until,
                detail: detail.clone(),
            },
        ),
    };
    if applied.is_ok() {
        end_wait(state, &event.change, at);
    }
    applied
}

/// A step waits for something (a timer, a signal, ...): only a step that has not
/// finished can, and its wait is what the event says until the step moves on.
fn step_waiting(
    state: &mut WorkflowState,
    step_number: u32,
    waiting: Waiting,
) -> Result<(), Refusal> {
    let id = state.row.id.clone();
    let step = state.steps.get_mut(&step_number).ok_or_else(|| {
        Refusal::OutOfOrder(format!(
            "step {step_number} of {id:?} cannot wait: it was never scheduled"
        ))
    })?;
    if step.status.is_finished() {
        return Err(Refusal::OutOfOrder(format!(
            "step {step_number} of {id:?} is {}: it waits for nothing",
            step.status
        )));
    }
    step.waiting = Some(waiting);
    state.dirty_steps.insert(step_number);
    Ok(())
}

/// A step that moves on (an attempt starts or fails, the step ends) waits no more; after
/// a failed attempt it waits for its retry backoff, until when its retry policy says.
fn end_wait(state: &mut WorkflowState, change: &Change, at: Millis) {
    let moved = match change {
        Change::StepWaiting { .. } | Change::StepOutput { .. } | Change::LogLines { .. } => None,
        other => other.step_number(),
    };
    let Some(step) = moved.and_then(|n| state.steps.get_mut(&n)) else {
        return;
    };
    step.waiting = match change {
        Change::StepAttemptFailed { .. } => Some(Waiting {
            reason: WaitReason::RetryBackoff,
            since: to_datetime(at),
            until: step.retry_policy.as_ref().and_then(|policy| {
                let failed = step.attempts.len().checked_sub(1)?;
                let delay = policy.delays_seconds.get(failed)?;
                Some(to_datetime(
                    at.saturating_add((delay * 1000.0).round() as Millis),
                ))
            }),
            detail: None,
        }),
        _ => None,
    };
}

// The rules, one function per change.

/// A step becomes known before it runs (its name, kind, branch, input). Only an open run
/// takes new steps, and a step running or waiting to retry cannot be scheduled over. A
/// finished step scheduled again will run again (a retry of the run): it waits anew, and
/// its earlier attempts stay in the history.
fn step_scheduled(state: &mut WorkflowState, declaration: &StepDeclaration) -> Result<(), Refusal> {
    let id = state.row.id.clone();
    require_open(state, "schedule a step")?;
    match state.steps.get_mut(&declaration.step_number) {
        Some(step) if matches!(step.status, StepStatus::Running | StepStatus::Retrying) => {
            return Err(Refusal::OutOfOrder(format!(
                "step {} of {id:?} is already {}",
                declaration.step_number, step.status
            )))
        }
        Some(step) => {
            // A finished step scheduled again will run again (a retry of the
            // run): it waits anew, and its earlier attempts stay in the history.
            let attempts = std::mem::take(&mut step.attempts);
            *step = StepRow {
                attempts,
                ..declared_step(declaration)
            };
        }
        None => {
            state
                .steps
                .insert(declaration.step_number, declared_step(declaration));
        }
    }
    state.dirty_steps.insert(declaration.step_number);
    Ok(())
}

/// What a `step_started` event says, borrowed from it.
struct StepStart<'e> {
    step_number: &'e u32,
    name: &'e Option<String>,
    attempt: &'e Option<u32>,
    input: &'e Option<Value>,
    kind: &'e Option<StepKind>,
    branch: &'e Option<String>,
    compensates: &'e Option<u32>,
}

/// An attempt of a step begins: the step is running, the attempt joins its history, and a
/// pending run is running from then on. A step never scheduled may start if the event
/// names it; what the event says about the step (name, kind, branch, input) updates it.
/// Attempts only go forward, and a step runs one attempt at a time. A finished step that
/// starts again is a retry from this step: its earlier result is cleared, its attempts
/// kept. No step starts in an ended run.
fn step_started(
    state: &mut WorkflowState,
    start: StepStart<'_>,
    at: Millis,
    out: &mut Vec<LiveEvent>,
) -> Result<(), Refusal> {
    let StepStart {
        step_number,
        name,
        attempt,
        input,
        kind,
        branch,
        compensates,
    } = start;
    let id = state.row.id.clone();
    // A paused run may still start a step scheduled before the pause (Temporal
    // dispatches activities already scheduled): that is a fact, not a mistake.
    if state.row.status.is_terminal() {
        return Err(Refusal::OutOfOrder(format!(
            "workflow {id:?} is {}: no step can start",
            state.row.status
        )));
    }
    let step = match state.steps.get_mut(step_number) {
        Some(step) => step,
        None => {
            let Some(name) = name else {
                return Err(Refusal::Invalid(format!(
                    "step {step_number} of {id:?} was never scheduled: step_started needs its \"name\""
                )));
            };
            state
                .steps
                .entry(*step_number)
                .or_insert_with(|| StepRow::pending(*step_number, name.clone()))
        }
    };
    if step.status == StepStatus::Running {
        return Err(Refusal::OutOfOrder(format!(
            "step {step_number} of {id:?} is already running"
        )));
    }
    let last = step.attempts.last().map_or(0, |a| a.attempt);
    let number = attempt.unwrap_or(last + 1);
    if number <= last {
        return Err(Refusal::OutOfOrder(format!(
            "attempt {number} of step {step_number} of {id:?} comes after attempt {last}"
        )));
    }
    if let Some(name) = name {
        step.name = name.clone();
    }
    if let Some(kind) = kind {
        step.kind = *kind;
    }
    if branch.is_some() {
        step.branch = branch.clone();
    }
    if compensates.is_some() {
        step.compensates = *compensates;
    }
    if input.is_some() {
        step.input = input.clone();
    }
    if step.status.is_finished() {
        // Run again (a retry from this step): the earlier attempts stay.
        step.output = None;
        step.error = None;
        step.completed_ms = None;
    }
    step.status = StepStatus::Running;
    step.started_ms.get_or_insert(at);
    step.attempts.push(AttemptRecord {
        attempt: number,
        status: StepStatus::Running,
        started_ms: Some(at),
        completed_ms: None,
        error: None,
    });
    out.push(LiveEvent::StepStarted {
        workflow_id: id.clone(),
        step_number: *step_number,
        step_name: step.name.clone(),
        attempt: number,
    });
    state.dirty_steps.insert(*step_number);
    if state.row.status == WorkflowStatus::Pending {
        set_status(state, WorkflowStatus::Running, None, at, out);
    }
    Ok(())
}

/// An attempt failed and the engine will try again: the running attempt fails with the
/// error, and the step waits to retry, showing that error meanwhile.
fn step_attempt_failed(
    state: &mut WorkflowState,
    step_number: &u32,
    error: &str,
    at: Millis,
    out: &mut Vec<LiveEvent>,
) -> Result<(), Refusal> {
    let id = state.row.id.clone();
    let step = running_step(state, *step_number, "an attempt failed")?;
    finish_attempt(step, StepStatus::Failed, Some(error.to_owned()), at)?;
    step.status = StepStatus::Retrying;
    step.error = Some(error.to_owned());
    let (name, attempt) = (step.name.clone(), step.attempts.len() as u32);
    out.push(LiveEvent::StepRetrying {
        workflow_id: id,
        step_number: *step_number,
        step_name: name,
        attempt,
        error: Some(error.to_owned()),
    });
    state.dirty_steps.insert(*step_number);
    Ok(())
}

/// A running step succeeded: its attempt and the step complete, with its output, and any
/// earlier error is cleared. A step waiting to retry must start its next attempt before
/// it can complete.
fn step_completed(
    state: &mut WorkflowState,
    step_number: &u32,
    output: &Option<Value>,
    at: Millis,
    out: &mut Vec<LiveEvent>,
) -> Result<(), Refusal> {
    let id = state.row.id.clone();
    let step = running_step(state, *step_number, "it completed")?;
    if step.status != StepStatus::Running {
        return Err(Refusal::OutOfOrder(format!(
            "step {step_number} of {id:?} is waiting to retry: start its next attempt before completing it"
        )));
    }
    finish_attempt(step, StepStatus::Completed, None, at)?;
    step.status = StepStatus::Completed;
    step.completed_ms = Some(at);
    step.output = output.clone();
    step.error = None;
    out.push(LiveEvent::StepCompleted {
        workflow_id: id,
        step_number: *step_number,
        step_name: step.name.clone(),
        duration_seconds: step.duration_seconds(at).unwrap_or(0.0),
        status: StepStatus::Completed,
    });
    state.dirty_steps.insert(*step_number);
    Ok(())
}

/// A completed step's output, told after its completion (the run may have ended since).
fn step_output(
    state: &mut WorkflowState,
    step_number: &u32,
    output: &Value,
) -> Result<(), Refusal> {
    let id = state.row.id.clone();
    let step = state.steps.get_mut(step_number).ok_or_else(|| {
        Refusal::OutOfOrder(format!(
            "step {step_number} of {id:?} has no output: it was never scheduled"
        ))
    })?;
    if step.status != StepStatus::Completed {
        return Err(Refusal::OutOfOrder(format!(
            "step {step_number} of {id:?} is {}: only a completed step has an output",
            step.status
        )));
    }
    step.output = Some(output.clone());
    state.dirty_steps.insert(*step_number);
    Ok(())
}

/// A running or retrying step failed for good (no attempt left): its running attempt, if
/// any, fails with it, and the step keeps the error.
fn step_failed(
    state: &mut WorkflowState,
    step_number: &u32,
    error: &str,
    at: Millis,
    out: &mut Vec<LiveEvent>,
) -> Result<(), Refusal> {
    let id = state.row.id.clone();
    let step = running_step(state, *step_number, "it failed")?;
    if step.status == StepStatus::Running {
        finish_attempt(step, StepStatus::Failed, Some(error.to_owned()), at)?;
    }
    step.status = StepStatus::Failed;
    step.completed_ms = Some(at);
    step.error = Some(error.to_owned());
    out.push(LiveEvent::StepFailed {
        workflow_id: id,
        step_number: *step_number,
        step_name: step.name.clone(),
        error: Some(error.to_owned()),
        attempts: step.attempts.len() as u32,
    });
    state.dirty_steps.insert(*step_number);
    Ok(())
}

/// A step that will not run (say, on a branch not taken) is skipped; only a known step
/// still pending can be, as one that ran cannot be undone.
fn step_skipped(state: &mut WorkflowState, step_number: &u32, at: Millis) -> Result<(), Refusal> {
    let id = state.row.id.clone();
    let step = state.steps.get_mut(step_number).ok_or_else(|| {
        Refusal::OutOfOrder(format!(
            "step {step_number} of {id:?} cannot be skipped: it was never scheduled"
        ))
    })?;
    if step.status != StepStatus::Pending {
        return Err(Refusal::OutOfOrder(format!(
            "step {step_number} of {id:?} is {}: only a pending step can be skipped",
            step.status
        )));
    }
    step.status = StepStatus::Skipped;
    step.completed_ms = Some(at);
    state.dirty_steps.insert(*step_number);
    Ok(())
}

/// A step was stopped before it finished (the run was cancelled, or failed elsewhere):
/// a pending, running or retrying step is cancelled with the reason, and its running
/// attempt, if any, ends with it.
fn step_cancelled(
    state: &mut WorkflowState,
    step_number: &u32,
    reason: &str,
    at: Millis,
) -> Result<(), Refusal> {
    // A step may be cancelled before it started (a pending one) as well.
    let pending = state
        .steps
        .get(step_number)
        .is_some_and(|step| step.status == StepStatus::Pending);
    let step = if pending {
        state.steps.get_mut(step_number).expect("checked above")
    } else {
        running_step(state, *step_number, "it was cancelled")?
    };
    if step.status == StepStatus::Running {
        finish_attempt(step, StepStatus::Cancelled, Some(reason.to_owned()), at)?;
    }
    step.status = StepStatus::Cancelled;
    step.completed_ms = Some(at);
    step.error = Some(reason.to_owned());
    state.dirty_steps.insert(*step_number);
    Ok(())
}

/// The run moves to another status, if its lifecycle allows that move; when it ends, the
/// steps still open end with it. The same status again with a reason only records why
/// the run is as it is.
fn workflow_status_changed(
    state: &mut WorkflowState,
    status: &WorkflowStatus,
    reason: &Option<String>,
    at: Millis,
    out: &mut Vec<LiveEvent>,
) -> Result<(), Refusal> {
    let id = state.row.id.clone();
    let from = state.row.status;
    if !from.can_become(*status) {
        return Err(Refusal::OutOfOrder(format!(
            "workflow {id:?} cannot go from {from} to {status}"
        )));
    }
    if from != *status {
        set_status(state, *status, reason.clone(), at, out);
        if status.is_terminal() {
            close_open_steps(state, *status, reason.as_deref(), at);
        }
    } else if reason.is_some() {
        // The same status with a reason says why the run is as it is (e.g. why
        // its steps cannot be shown): the reason is kept, the status unchanged.
        state.row.status_reason = reason.clone();
    }
    Ok(())
}

/// Log lines of a known step are kept, stamped with the event's time, and streamed live;
/// a step never scheduled has no logs.
fn log_lines(
    state: &mut WorkflowState,
    step_number: &u32,
    lines: &[String],
    at: Millis,
    out: &mut Vec<LiveEvent>,
) -> Result<(), Refusal> {
    let id = state.row.id.clone();
    if !state.steps.contains_key(step_number) {
        return Err(Refusal::OutOfOrder(format!(
            "step {step_number} of {id:?} has no logs yet: it was never scheduled"
        )));
    }
    state.new_logs.extend(lines.iter().map(|line| LogRow {
        step_number: *step_number,
        at_ms: at,
        line: line.clone(),
    }));
    // The newest lines that fit in one live event; the rest are said to be there.
    let mut bytes = 0;
    let sent = lines
        .iter()
        .rev()
        .take(crate::live::LIVE_LOG_LINES)
        .take_while(|line| {
            bytes += line.len();
            bytes <= crate::live::LIVE_LOG_BYTES
        })
        .count();
    out.push(LiveEvent::LogAppended {
        workflow_id: id,
        step_number: *step_number,
        lines: lines[lines.len() - sent..].to_vec(),
        earlier: (lines.len() - sent) as u64,
    });
    Ok(())
}

// What the rules share.

/// When a run ends, every step still running or waiting to retry ends with it, saying
/// why: an engine does not always report each one (an activity that ignored a cancel
/// request, a run that timed out while a step ran).
fn close_open_steps(
    state: &mut WorkflowState,
    status: WorkflowStatus,
    reason: Option<&str>,
    at: Millis,
) {
    let why = crate::source::event::ended_with_the_run(status, reason);
    let why = limits::cut(&why, limits::ERROR).into_owned();
    for step in state.steps.values_mut() {
        if !matches!(step.status, StepStatus::Running | StepStatus::Retrying) {
            continue;
        }
        if step.status == StepStatus::Running {
            // Never before the attempt began, whatever the engine's clocks say.
            let start = step
                .attempts
                .last()
                .and_then(|a| a.started_ms)
                .unwrap_or(at);
            let _ = finish_attempt(
                step,
                StepStatus::Cancelled,
                Some(why.clone()),
                at.max(start),
            );
        }
        step.status = StepStatus::Cancelled;
        step.completed_ms = Some(at.max(step.started_ms.unwrap_or(at)));
        step.error = Some(why.clone());
        state.dirty_steps.insert(step.step_number);
    }
}

/// Ends a step's latest attempt with `status` at `at`: refused when the step has no
/// attempt, or when the end would come before the attempt began.
fn finish_attempt(
    step: &mut StepRow,
    status: StepStatus,
    error: Option<String>,
    at: Millis,
) -> Result<(), Refusal> {
    let step_number = step.step_number;
    let Some(attempt) = step.attempts.last_mut() else {
        return Err(Refusal::OutOfOrder(format!(
            "step {step_number} has no attempt running"
        )));
    };
    if attempt.started_ms.is_some_and(|start| at < start) {
        return Err(Refusal::OutOfOrder(format!(
            "step {step_number} cannot end before its attempt {} started",
            attempt.attempt
        )));
    }
    attempt.status = status;
    attempt.completed_ms = Some(at);
    attempt.error = error;
    Ok(())
}

/// Moves the run to `status` and says so live. The first move to running stamps its
/// start and an end its completion; a run reopened by a retry is no longer complete,
/// and its old reason goes (replaced by the new one, if any).
fn set_status(
    state: &mut WorkflowState,
    status: WorkflowStatus,
    reason: Option<String>,
    at: Millis,
    out: &mut Vec<LiveEvent>,
) {
    let row = &mut state.row;
    let old = row.status;
    row.status = status;
    if status == WorkflowStatus::Running && row.started_ms.is_none() {
        row.started_ms = Some(at);
    }
    if status.is_terminal() {
        row.completed_ms = Some(at);
    } else if old.is_terminal() {
        // Reopened by a retry.
        row.completed_ms = None;
    }
    if reason.is_some() || old.is_terminal() {
        row.status_reason = reason.clone();
    }
    out.push(LiveEvent::WorkflowStatusChanged {
        workflow_id: row.id.clone(),
        old_status: old,
        new_status: status,
        duration_seconds: row.elapsed_ms(at) as f64 / 1000.0,
        reason,
    });
}

/// Re-derives what depends on the whole run (progress, SLA status), stamps the update
/// time, and pushes the SLA events of a crossed threshold and the run's new list row.
pub fn finish(state: &mut WorkflowState, now: Millis, out: &mut Vec<LiveEvent>) {
    let normal = state.steps.values().filter(|s| s.kind == StepKind::Normal);
    let (mut known, mut done) = (0u32, 0u32);
    for step in normal {
        known += 1;
        if matches!(step.status, StepStatus::Completed | StepStatus::Skipped) {
            done += 1;
        }
    }
    let row = &mut state.row;
    row.completed_steps = done;
    row.total_steps = row.declared_steps.unwrap_or(0).max(known);
    row.updated_ms = now.max(row.updated_ms + 1);
    row.sla_status = row.sla_at(now);
    push_sla_crossing(row, state.sla_before, now, out);
    state.sla_before = row.sla_status;
    out.push(LiveEvent::WorkflowUpdated {
        workflow: Box::new(row.to_wire(now)),
    });
}

/// The SLA event for a move from `before` to the row's current SLA status, if any.
pub fn push_sla_crossing(
    row: &WorkflowRow,
    before: SlaStatus,
    now: Millis,
    out: &mut Vec<LiveEvent>,
) {
    let Some(target) = row.sla_target_seconds else {
        return;
    };
    let current_duration = row.elapsed_ms(now) as f64 / 1000.0;
    match (before, row.sla_status) {
        (SlaStatus::OnTrack, SlaStatus::AtRisk) => out.push(LiveEvent::SlaWarning {
            workflow_id: row.id.clone(),
            message: "Workflow at 90% of SLA target".into(),
            current_duration,
            sla_target: target,
        }),
        (SlaStatus::OnTrack | SlaStatus::AtRisk, SlaStatus::Breached) => {
            out.push(LiveEvent::SlaBreached {
                workflow_id: row.id.clone(),
                message: "Workflow exceeded its SLA target".into(),
                current_duration,
                sla_target: target,
            })
        }
        _ => {}
    }
}
