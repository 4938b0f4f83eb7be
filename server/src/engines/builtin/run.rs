//! One run of the built-in engine as a state machine. It holds no I/O: every change is
//! returned as the source events to make durable and the effects (start or stop a step's
//! work, wake up later) to carry out once they are. The same rules rebuild a run from the
//! read model after a restart, so what is stored is all the engine needs.

use super::definition::{Action, Definition, StepDefinition};
use crate::source::clock::{to_datetime, Millis};
use crate::source::{
    Change, RunSnapshot, SourceEvent, StartRequest, StepDeclaration, StepSnapshot, WorkflowStart,
};
use app::model::{Priority, StepKind, StepStatus, WorkflowStatus};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The error of an attempt that was cut short because Stepline stopped. It does not
/// count against the step's retry policy: the step simply runs again (at-least-once).
pub const INTERRUPTED: &str = "interrupted: Stepline stopped during this attempt, which runs again";

/// Where one step (or compensation) of a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Running {
        attempt: u32,
    },
    /// Failed an attempt; the next one may start at this instant.
    RetryAt(Millis),
    Completed,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepRun {
    pub phase: Phase,
    /// The number of the latest attempt (0 before the first).
    pub last_attempt: u32,
    /// Attempts that failed since the step was last (re)scheduled; interruptions by a
    /// restart do not count.
    pub failures: u32,
    pub error: Option<String>,
    pub completed_ms: Option<Millis>,
}

impl StepRun {
    fn new() -> Self {
        Self {
            phase: Phase::Pending,
            last_attempt: 0,
            failures: 0,
            error: None,
            completed_ms: None,
        }
    }

    fn is_active(&self) -> bool {
        matches!(self.phase, Phase::Running { .. } | Phase::RetryAt(_))
    }
}

/// A compensation step: it undoes normal step `undoes`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompensationRun {
    pub number: u32,
    pub undoes: u32,
    pub step: StepRun,
}

/// Work to carry out once the events of a change are durable.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Launch(Launch),
    Abort {
        workflow_id: String,
        step_number: u32,
    },
    WakeAt {
        workflow_id: String,
        at: Millis,
    },
}

impl Effect {
    pub fn workflow_id(&self) -> &str {
        match self {
            Self::Launch(launch) => &launch.workflow_id,
            Self::Abort { workflow_id, .. } | Self::WakeAt { workflow_id, .. } => workflow_id,
        }
    }
}

/// One attempt of a step's action to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub workflow_id: String,
    pub step_number: u32,
    pub step_name: String,
    pub attempt: u32,
    pub action: Action,
    pub timeout: Option<Duration>,
    pub input: Value,
}

/// What a change decided: events to persist, then effects to carry out.
#[derive(Debug, Default)]
pub struct Decisions {
    pub events: Vec<SourceEvent>,
    pub effects: Vec<Effect>,
}

impl Decisions {
    fn push(&mut self, workflow_id: &str, at: Millis, change: Change) {
        self.events.push(SourceEvent {
            workflow_id: workflow_id.to_owned(),
            at: to_datetime(at),
            change,
        });
    }
}

/// One run in memory.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: String,
    pub definition: Arc<Definition>,
    pub input: Value,
    pub priority: Priority,
    pub created_ms: Millis,
    pub status: WorkflowStatus,
    /// The cancel reason, kept for the final CANCELLED.
    pub reason: Option<String>,
    /// Normal steps; step `n` is at index `n - 1`.
    pub steps: Vec<StepRun>,
    /// Every compensation ever scheduled, in step-number order.
    pub compensations: Vec<CompensationRun>,
}

/// Whether a run in this status holds one of the engine's concurrency slots.
pub fn holds_slot(status: WorkflowStatus) -> bool {
    matches!(
        status,
        WorkflowStatus::Running | WorkflowStatus::Pausing | WorkflowStatus::Cancelling
    )
}

impl Run {
    /// A new run, queued (PENDING) until the engine admits it.
    pub fn create(
        id: String,
        definition: Arc<Definition>,
        request: StartRequest,
        now: Millis,
        decisions: &mut Decisions,
    ) -> Self {
        let priority = request.priority.unwrap_or(definition.priority);
        let steps = definition
            .steps
            .iter()
            .map(|step| StepDeclaration {
                step_number: step.number,
                name: step.name.clone(),
                kind: StepKind::Normal,
                branch: step.branch.clone(),
                compensates: None,
                input: None,
                retry_policy: Some(step.retry.info()),
            })
            .collect();
        decisions.push(
            &id,
            now,
            Change::WorkflowStarted(WorkflowStart {
                workflow_type: definition.workflow_type.clone(),
                engine_ref: None,
                status: Some(WorkflowStatus::Pending),
                definition_name: Some(definition.name.clone()),
                definition_version: Some(definition.version.clone()),
                total_steps: Some(definition.steps.len() as u32),
                sla_target_seconds: definition
                    .sla_target
                    .map(|target| target.as_secs().max(1) as i64),
                triggered_by: request.triggered_by,
                trigger_type: request.trigger_type,
                priority: Some(priority),
                tags: request.tags,
                input: Some(request.input.clone()),
                steps,
            }),
        );
        Self {
            id,
            input: request.input,
            priority,
            created_ms: now,
            status: WorkflowStatus::Pending,
            reason: None,
            steps: definition.steps.iter().map(|_| StepRun::new()).collect(),
            compensations: Vec::new(),
            definition,
        }
    }

    /// Rebuilds a run from the read model. A step that was running when Stepline
    /// stopped is recorded as interrupted and will run again.
    pub fn restore(
        row: &RunSnapshot,
        definition: Arc<Definition>,
        now: Millis,
        decisions: &mut Decisions,
    ) -> Result<Self, String> {
        let expected = definition.steps.len();
        let normal: Vec<&StepSnapshot> = row
            .steps
            .iter()
            .filter(|s| s.kind == StepKind::Normal)
            .collect();
        let same_shape = normal.len() == expected
            && normal
                .iter()
                .zip(&definition.steps)
                .all(|(row, step)| row.step_number == step.number && row.name == step.name);
        if !same_shape {
            return Err(format!(
                "the definition of {:?} changed since this run started (now version {}); retry the run to follow the new one",
                definition.workflow_type, definition.version
            ));
        }
        let mut run = Self {
            id: row.id.clone(),
            input: row.input.clone().unwrap_or(Value::Null),
            priority: row.priority,
            created_ms: row.created_ms,
            status: row.status,
            reason: row.status_reason.clone(),
            steps: Vec::with_capacity(expected),
            compensations: Vec::new(),
            definition,
        };
        for step_row in &row.steps {
            let retry = match step_row.compensates {
                Some(undoes) => run.step_definition(undoes).map(|s| s.retry),
                None => run.step_definition(step_row.step_number).map(|s| s.retry),
            }
            .unwrap_or_default();
            let failures = step_row
                .attempts
                .iter()
                .filter(|a| {
                    a.status == StepStatus::Failed && a.error.as_deref() != Some(INTERRUPTED)
                })
                .count() as u32;
            let last = step_row.attempts.last();
            let phase = match step_row.status {
                StepStatus::Pending => Phase::Pending,
                StepStatus::Completed | StepStatus::Skipped => Phase::Completed,
                StepStatus::Failed => Phase::Failed,
                StepStatus::Cancelled => Phase::Cancelled,
                StepStatus::Running if row.status.is_terminal() => Phase::Cancelled,
                StepStatus::Running => {
                    decisions.push(
                        &run.id,
                        now,
                        Change::StepAttemptFailed {
                            step_number: step_row.step_number,
                            error: INTERRUPTED.into(),
                        },
                    );
                    Phase::RetryAt(now)
                }
                StepStatus::Retrying => {
                    let failed_at = last.and_then(|a| a.completed_ms).unwrap_or(now);
                    let wait = retry.delay_before(failures + 1).unwrap_or_default();
                    Phase::RetryAt(failed_at + wait.as_millis() as Millis)
                }
            };
            let step = StepRun {
                phase,
                last_attempt: last.map_or(0, |a| a.attempt),
                failures,
                error: step_row.error.clone(),
                completed_ms: step_row.completed_ms,
            };
            match step_row.compensates {
                Some(undoes) if step_row.kind == StepKind::Compensation => {
                    run.compensations.push(CompensationRun {
                        number: step_row.step_number,
                        undoes,
                        step,
                    })
                }
                _ => run.steps.push(step),
            }
        }
        Ok(run)
    }

    fn step_definition(&self, number: u32) -> Option<&StepDefinition> {
        self.definition.steps.get(number.checked_sub(1)? as usize)
    }

    fn next_step_number(&self) -> u32 {
        let last_compensation = self.compensations.last().map_or(0, |c| c.number);
        last_compensation.max(self.steps.len() as u32) + 1
    }

    fn set_status(
        &mut self,
        status: WorkflowStatus,
        reason: Option<String>,
        now: Millis,
        decisions: &mut Decisions,
    ) {
        if self.status == status {
            return;
        }
        self.status = status;
        decisions.push(
            &self.id,
            now,
            Change::WorkflowStatusChanged { status, reason },
        );
    }

    /// The run leaves the queue and starts.
    pub fn admit(&mut self, now: Millis, decisions: &mut Decisions) {
        if self.status == WorkflowStatus::Pending {
            self.set_status(WorkflowStatus::Running, None, now, decisions);
            self.advance(now, decisions);
        }
    }

    /// Starts what can start and finishes the run when there is nothing left to do.
    pub fn advance(&mut self, now: Millis, decisions: &mut Decisions) {
        match self.status {
            WorkflowStatus::Running => self.advance_steps(now, decisions),
            WorkflowStatus::Pausing => {
                if !self
                    .steps
                    .iter()
                    .any(|s| matches!(s.phase, Phase::Running { .. }))
                {
                    self.set_status(WorkflowStatus::Paused, None, now, decisions);
                }
            }
            WorkflowStatus::Cancelling => self.advance_rollback(now, decisions),
            _ => {}
        }
    }

    fn advance_steps(&mut self, now: Millis, decisions: &mut Decisions) {
        if let Some(index) = self.steps.iter().position(|s| s.phase == Phase::Failed) {
            let number = index as u32 + 1;
            let reason = format!("stopped: step {number} failed");
            self.stop_active_steps(&reason, now, decisions);
            let error = self.steps[index].error.clone().unwrap_or_default();
            let name = self.definition.steps[index].name.clone();
            self.set_status(
                WorkflowStatus::Failed,
                Some(format!("step {number} ({name}) failed: {error}")),
                now,
                decisions,
            );
            return;
        }
        if self.steps.iter().all(|s| s.phase == Phase::Completed) {
            self.set_status(WorkflowStatus::Completed, None, now, decisions);
            return;
        }
        for index in 0..self.steps.len() {
            let ready = match self.steps[index].phase {
                Phase::Pending => self.definition.steps[index]
                    .after
                    .iter()
                    .all(|&dep| self.steps[dep as usize - 1].phase == Phase::Completed),
                Phase::RetryAt(at) if at <= now => true,
                Phase::RetryAt(at) => {
                    decisions.effects.push(Effect::WakeAt {
                        workflow_id: self.id.clone(),
                        at,
                    });
                    false
                }
                _ => false,
            };
            if ready {
                let step = self.definition.steps[index].clone();
                self.launch(step.number, &step, step.action.clone(), now, decisions);
            }
        }
    }

    /// Starts the next attempt of step `number` (a normal step, or a compensation of
    /// `definition`'s step).
    fn launch(
        &mut self,
        number: u32,
        definition: &StepDefinition,
        action: Action,
        now: Millis,
        decisions: &mut Decisions,
    ) {
        let compensation = number as usize > self.steps.len();
        let step = self.step_mut(number).expect("launching a known step");
        let attempt = step.last_attempt + 1;
        step.last_attempt = attempt;
        step.phase = Phase::Running { attempt };
        let name = if compensation {
            compensation_name(&definition.name)
        } else {
            definition.name.clone()
        };
        decisions.push(
            &self.id,
            now,
            Change::StepStarted {
                step_number: number,
                name: None,
                attempt: Some(attempt),
                input: (attempt == 1).then(|| self.input.clone()),
                kind: None,
                branch: None,
                compensates: None,
            },
        );
        decisions.effects.push(Effect::Launch(Launch {
            workflow_id: self.id.clone(),
            step_number: number,
            step_name: name,
            attempt,
            action,
            timeout: definition.timeout,
            input: self.input.clone(),
        }));
    }

    /// The attempt of step `number` that is running, if one is.
    pub fn attempt_running(&self, number: u32) -> Option<u32> {
        let step = match self.steps.get(number.checked_sub(1)? as usize) {
            Some(step) => step,
            None => &self.compensations.iter().find(|c| c.number == number)?.step,
        };
        match step.phase {
            Phase::Running { attempt } => Some(attempt),
            _ => None,
        }
    }

    fn step_mut(&mut self, number: u32) -> Option<&mut StepRun> {
        if let Some(step) = self.steps.get_mut(number.checked_sub(1)? as usize) {
            return Some(step);
        }
        self.compensations
            .iter_mut()
            .find(|c| c.number == number)
            .map(|c| &mut c.step)
    }

    /// The definition a step (or compensation) follows.
    fn definition_of(&self, number: u32) -> Option<StepDefinition> {
        match self.compensations.iter().find(|c| c.number == number) {
            Some(c) => self.step_definition(c.undoes).cloned(),
            None => self.step_definition(number).cloned(),
        }
    }

    /// Stops every running or retrying normal step.
    fn stop_active_steps(&mut self, reason: &str, now: Millis, decisions: &mut Decisions) {
        for (index, step) in self.steps.iter_mut().enumerate() {
            if !step.is_active() {
                continue;
            }
            let step_number = index as u32 + 1;
            if matches!(step.phase, Phase::Running { .. }) {
                decisions.effects.push(Effect::Abort {
                    workflow_id: self.id.clone(),
                    step_number,
                });
            }
            step.phase = Phase::Cancelled;
            decisions.push(
                &self.id,
                now,
                Change::StepCancelled {
                    step_number,
                    reason: reason.to_owned(),
                },
            );
        }
    }

    /// An attempt's work ended. Results of attempts that no longer run (the step was
    /// stopped meanwhile) are ignored.
    pub fn finish_attempt(
        &mut self,
        number: u32,
        attempt: u32,
        result: Result<Option<Value>, String>,
        now: Millis,
        decisions: &mut Decisions,
    ) {
        let Some(definition) = self.definition_of(number) else {
            return;
        };
        let id = self.id.clone();
        let Some(step) = self.step_mut(number) else {
            return;
        };
        if step.phase != (Phase::Running { attempt }) {
            return;
        }
        match result {
            Ok(output) => {
                step.phase = Phase::Completed;
                step.error = None;
                step.completed_ms = Some(now);
                decisions.push(
                    &id,
                    now,
                    Change::StepCompleted {
                        step_number: number,
                        output,
                    },
                );
            }
            Err(error) => {
                step.failures += 1;
                step.error = Some(error.clone());
                match definition.retry.delay_before(step.failures + 1) {
                    Some(wait) => {
                        step.phase = Phase::RetryAt(now + wait.as_millis() as Millis);
                        decisions.push(
                            &id,
                            now,
                            Change::StepAttemptFailed {
                                step_number: number,
                                error,
                            },
                        );
                    }
                    None => {
                        step.phase = Phase::Failed;
                        step.completed_ms = Some(now);
                        decisions.push(
                            &id,
                            now,
                            Change::StepFailed {
                                step_number: number,
                                error,
                            },
                        );
                    }
                }
            }
        }
        self.advance(now, decisions);
    }

    fn running_step_names(&self) -> Vec<String> {
        self.steps
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.phase, Phase::Running { .. }))
            .map(|(i, _)| format!("step {} ({})", i + 1, self.definition.steps[i].name))
            .collect()
    }

    /// Halts the run once the running step(s) complete.
    pub fn pause(&mut self, now: Millis, decisions: &mut Decisions) -> Result<String, String> {
        if self.status != WorkflowStatus::Running {
            return Err(format!("cannot pause a {} workflow", self.status));
        }
        let running = self.running_step_names();
        self.set_status(WorkflowStatus::Pausing, None, now, decisions);
        self.advance(now, decisions);
        Ok(if running.is_empty() {
            "Workflow paused; no step was running".into()
        } else {
            format!(
                "Workflow pauses after {} complete{}",
                running.join(" and "),
                if running.len() == 1 { "s" } else { "" }
            )
        })
    }

    pub fn resume(&mut self, now: Millis, decisions: &mut Decisions) -> Result<String, String> {
        if !matches!(
            self.status,
            WorkflowStatus::Paused | WorkflowStatus::Pausing
        ) {
            return Err(format!("cannot resume a {} workflow", self.status));
        }
        self.set_status(WorkflowStatus::Running, None, now, decisions);
        self.advance(now, decisions);
        Ok("Workflow resumed".into())
    }

    /// Stops the run and rolls back: the compensation of every completed step runs, the
    /// most recently completed first (C1, C2, ...).
    pub fn cancel(
        &mut self,
        reason: Option<String>,
        now: Millis,
        decisions: &mut Decisions,
    ) -> Result<String, String> {
        let reason = reason
            .filter(|r| !r.trim().is_empty())
            .unwrap_or_else(|| "Manual cancellation".into());
        match self.status {
            WorkflowStatus::Pending => {
                self.set_status(WorkflowStatus::Cancelled, Some(reason), now, decisions);
                return Ok("Workflow cancelled before it started; nothing to roll back".into());
            }
            WorkflowStatus::Running | WorkflowStatus::Pausing | WorkflowStatus::Paused => {}
            status => return Err(format!("cannot cancel a {status} workflow")),
        }
        self.reason = Some(reason.clone());
        self.set_status(
            WorkflowStatus::Cancelling,
            Some(reason.clone()),
            now,
            decisions,
        );
        self.stop_active_steps(&format!("cancelled: {reason}"), now, decisions);
        let mut completed: Vec<(Millis, u32)> = self
            .steps
            .iter()
            .enumerate()
            .filter(|(i, s)| {
                s.phase == Phase::Completed && self.definition.steps[*i].compensation.is_some()
            })
            .map(|(i, s)| (s.completed_ms.unwrap_or(0), i as u32 + 1))
            .collect();
        completed.sort_unstable_by(|a, b| b.cmp(a));
        for (_, undoes) in &completed {
            let number = self.next_step_number();
            let name = compensation_name(&self.definition.steps[*undoes as usize - 1].name);
            decisions.push(
                &self.id,
                now,
                Change::StepScheduled(StepDeclaration {
                    step_number: number,
                    name,
                    kind: StepKind::Compensation,
                    branch: None,
                    compensates: Some(*undoes),
                    input: None,
                    retry_policy: Some(self.definition.steps[*undoes as usize - 1].retry.info()),
                }),
            );
            self.compensations.push(CompensationRun {
                number,
                undoes: *undoes,
                step: StepRun::new(),
            });
        }
        self.advance(now, decisions);
        Ok(match completed.len() {
            0 => "Workflow cancelled; no completed step needed rolling back".into(),
            n => format!("Cancelling: rolling back {n} completed step(s)"),
        })
    }

    /// Runs the rollback one compensation at a time, in order.
    fn advance_rollback(&mut self, now: Millis, decisions: &mut Decisions) {
        let Some(position) = self
            .compensations
            .iter()
            .position(|c| c.step.phase != Phase::Completed)
        else {
            let reason = self.reason.clone();
            self.set_status(WorkflowStatus::Cancelled, reason, now, decisions);
            return;
        };
        let compensation = &self.compensations[position];
        match compensation.step.phase {
            Phase::Running { .. } | Phase::Completed => {}
            Phase::Failed | Phase::Cancelled => {
                let undone = &self.definition.steps[compensation.undoes as usize - 1].name;
                let error = compensation.step.error.clone().unwrap_or_default();
                let left: Vec<String> = self.compensations[position..]
                    .iter()
                    .map(|c| format!("step {}", c.undoes))
                    .collect();
                let reason = format!(
                    "compensation of step {} ({undone}) failed: {error}. Not rolled back yet: {}. Fix the cause and retry, or roll back by hand.",
                    compensation.undoes,
                    left.join(", ")
                );
                self.set_status(
                    WorkflowStatus::CompensationFailed,
                    Some(reason),
                    now,
                    decisions,
                );
            }
            Phase::RetryAt(at) if at > now => decisions.effects.push(Effect::WakeAt {
                workflow_id: self.id.clone(),
                at,
            }),
            Phase::Pending | Phase::RetryAt(_) => {
                let number = compensation.number;
                let definition = self.definition.steps[compensation.undoes as usize - 1].clone();
                let action = definition
                    .compensation
                    .clone()
                    .expect("only steps with a compensation are rolled back");
                self.launch(number, &definition, action, now, decisions);
            }
        }
    }

    /// Runs the run again: from the start, or from step `from_step` (which, everything
    /// after it and every step that did not complete run again; earlier attempts stay in
    /// the history). A failed rollback is retried from the compensation that failed.
    pub fn retry(
        &mut self,
        from_step: Option<u32>,
        now: Millis,
        decisions: &mut Decisions,
    ) -> Result<String, String> {
        match self.status {
            WorkflowStatus::CompensationFailed => {
                if from_step.is_some() {
                    return Err(
                        "a failed rollback is retried as a whole: retry without from_step".into(),
                    );
                }
                for compensation in &mut self.compensations {
                    if matches!(compensation.step.phase, Phase::Failed | Phase::Cancelled) {
                        compensation.step.phase = Phase::Pending;
                        compensation.step.failures = 0;
                    }
                }
                let reason = self.reason.clone();
                self.set_status(WorkflowStatus::Cancelling, reason, now, decisions);
                self.advance(now, decisions);
                return Ok("Retrying the rollback from the compensation that failed".into());
            }
            WorkflowStatus::Cancelled if from_step.is_some() => {
                return Err("the run was rolled back: retry it from the start".into())
            }
            WorkflowStatus::Failed
            | WorkflowStatus::Cancelled
            | WorkflowStatus::TimedOut
            | WorkflowStatus::Terminated => {}
            status => return Err(format!("cannot retry a {status} workflow")),
        }
        let count = self.steps.len() as u32;
        let rerun: Vec<bool> = match from_step {
            None => vec![true; self.steps.len()],
            Some(from) if from == 0 || from > count => {
                return Err(format!(
                    "from_step {from} is not a step of this workflow (1 to {count})"
                ))
            }
            Some(from) => {
                let mut rerun: Vec<bool> = self
                    .steps
                    .iter()
                    .map(|s| s.phase != Phase::Completed)
                    .collect();
                rerun[from as usize - 1] = true;
                // Steps are numbered after their dependencies, so one pass in order
                // reaches everything downstream.
                for step in &self.definition.steps {
                    if step.after.iter().any(|&dep| rerun[dep as usize - 1]) {
                        rerun[step.number as usize - 1] = true;
                    }
                }
                rerun
            }
        };
        // Reopened first: a finished run takes no new steps.
        self.reason = None;
        self.set_status(WorkflowStatus::Running, None, now, decisions);
        for (index, again) in rerun.iter().enumerate() {
            if !*again {
                continue;
            }
            let definition = &self.definition.steps[index];
            let step = &mut self.steps[index];
            step.phase = Phase::Pending;
            step.failures = 0;
            step.error = None;
            step.completed_ms = None;
            decisions.push(
                &self.id,
                now,
                Change::StepScheduled(StepDeclaration {
                    step_number: definition.number,
                    name: definition.name.clone(),
                    kind: StepKind::Normal,
                    branch: definition.branch.clone(),
                    compensates: None,
                    input: None,
                    retry_policy: Some(definition.retry.info()),
                }),
            );
        }
        self.advance(now, decisions);
        Ok(match from_step {
            None => "Retrying from the start".into(),
            Some(from) => format!(
                "Retrying from step {from} ({})",
                self.definition.steps[from as usize - 1].name
            ),
        })
    }
}

/// The name a compensation step is shown with.
fn compensation_name(step_name: &str) -> String {
    format!("compensate {step_name}")
}

#[cfg(test)]
mod tests;
