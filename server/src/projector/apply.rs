//! The projector's rules, as pure functions: how a source event changes a workflow's rows,
//! which events are refused as malformed or out of order, what is derived (progress,
//! SLA, durations), and which live events the change produces.

use crate::source::{limits, Change, Refusal, SourceEvent, StepDeclaration, WorkflowStart};
use crate::store::rows::{to_millis, AttemptRecord, LogRow, Millis, StepRow, WorkflowRow};
use app::model::{
    is_valid_workflow_id, Capabilities, LiveEvent, SlaStatus, StepKind, StepStatus, WorkflowStatus,
};
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
}

impl WorkflowState {
    pub fn loaded(row: WorkflowRow, steps: Vec<StepRow>) -> Self {
        Self {
            sla_before: row.sla_status,
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

/// Checks an event's timestamp against our clock.
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
    };
    let dirty_steps = steps.keys().copied().collect();
    Ok(WorkflowState {
        sla_before: row.sla_status,
        ended_before: None,
        row,
        steps,
        dirty_steps,
        new_logs: Vec::new(),
    })
}

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
    let id = state.row.id.clone();
    if let Some(step_number) = event.change.step_number() {
        check_step_number(step_number)?;
    }
    match &event.change {
        Change::WorkflowStarted(_) => return Err(Refusal::AlreadyExists(id)),
        Change::StepScheduled(declaration) => {
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
        }
        Change::StepStarted {
            step_number,
            name,
            attempt,
            input,
            kind,
            branch,
            compensates,
        } => {
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
        }
        Change::StepAttemptFailed { step_number, error } => {
            let step = running_step(state, *step_number, "an attempt failed")?;
            finish_attempt(step, StepStatus::Failed, Some(error.clone()), at)?;
            step.status = StepStatus::Retrying;
            step.error = Some(error.clone());
            let (name, attempt) = (step.name.clone(), step.attempts.len() as u32);
            out.push(LiveEvent::StepRetrying {
                workflow_id: id,
                step_number: *step_number,
                step_name: name,
                attempt,
                error: Some(error.clone()),
            });
            state.dirty_steps.insert(*step_number);
        }
        Change::StepCompleted {
            step_number,
            output,
        } => {
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
        }
        Change::StepFailed { step_number, error } => {
            let step = running_step(state, *step_number, "it failed")?;
            if step.status == StepStatus::Running {
                finish_attempt(step, StepStatus::Failed, Some(error.clone()), at)?;
            }
            step.status = StepStatus::Failed;
            step.completed_ms = Some(at);
            step.error = Some(error.clone());
            out.push(LiveEvent::StepFailed {
                workflow_id: id,
                step_number: *step_number,
                step_name: step.name.clone(),
                error: Some(error.clone()),
                attempts: step.attempts.len() as u32,
            });
            state.dirty_steps.insert(*step_number);
        }
        Change::StepSkipped { step_number } => {
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
        }
        Change::StepCancelled {
            step_number,
            reason,
        } => {
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
                finish_attempt(step, StepStatus::Cancelled, Some(reason.clone()), at)?;
            }
            step.status = StepStatus::Cancelled;
            step.completed_ms = Some(at);
            step.error = Some(reason.clone());
            state.dirty_steps.insert(*step_number);
        }
        Change::WorkflowStatusChanged { status, reason } => {
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
        }
        Change::LogLines { step_number, lines } => {
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
            out.push(LiveEvent::LogAppended {
                workflow_id: id,
                step_number: *step_number,
                lines: lines.clone(),
            });
        }
    }
    Ok(())
}

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
