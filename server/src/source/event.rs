//! The facts engines report: one [`SourceEvent`] per change of one run, in the shape
//! the events API documents for engine authors.

use app::model::{Priority, RetryPolicyInfo, StepKind, WaitReason, WorkflowStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One fact an engine reports about one workflow run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SourceEvent {
    pub workflow_id: String,
    /// When it happened, by the engine's clock.
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub change: Change,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    WorkflowStarted(WorkflowStart),
    /// A step became known before it runs (its name, branch and input).
    StepScheduled(StepDeclaration),
    /// An attempt of a step began.
    StepStarted {
        step_number: u32,
        #[serde(default)]
        name: Option<String>,
        /// Attempt number (1 for the first try); the next one when absent.
        #[serde(default)]
        attempt: Option<u32>,
        #[serde(default)]
        input: Option<Value>,
        #[serde(default)]
        kind: Option<StepKind>,
        #[serde(default)]
        branch: Option<String>,
        #[serde(default)]
        compensates: Option<u32>,
    },
    /// An attempt failed and the engine will try again.
    StepAttemptFailed {
        step_number: u32,
        error: String,
    },
    StepCompleted {
        step_number: u32,
        #[serde(default)]
        output: Option<Value>,
    },
    /// A completed step's output, told after its completion: an engine that reads outputs
    /// apart from states (Airflow's return values) reports the completion at once and the
    /// output when it has read it.
    StepOutput {
        step_number: u32,
        output: Value,
    },
    /// The step failed for good (no attempt left).
    StepFailed {
        step_number: u32,
        error: String,
    },
    StepSkipped {
        step_number: u32,
    },
    /// A step that has not finished waits (for a timer, its retry backoff, a signal, a
    /// free worker, a person), from `at` until `until` when known. Its next change (an
    /// attempt starting, its end) ends the wait.
    StepWaiting {
        step_number: u32,
        reason: WaitReason,
        #[serde(default)]
        until: Option<DateTime<Utc>>,
        /// What it waits for, in the engine's words ("task queue images").
        #[serde(default)]
        detail: Option<String>,
    },
    /// A running or retrying step was stopped (the run was cancelled, or failed
    /// elsewhere); its running attempt, if any, ends with `reason`.
    StepCancelled {
        step_number: u32,
        reason: String,
    },
    WorkflowStatusChanged {
        status: WorkflowStatus,
        #[serde(default)]
        reason: Option<String>,
    },
    LogLines {
        step_number: u32,
        lines: Vec<String>,
    },
}

impl Change {
    /// An attempt of an already known step begins (nothing else about it changes).
    pub fn attempt_started(step_number: u32, attempt: u32) -> Self {
        Self::StepStarted {
            step_number,
            name: None,
            attempt: Some(attempt),
            input: None,
            kind: None,
            branch: None,
            compensates: None,
        }
    }

    /// The step the change is about, if it is about one.
    pub fn step_number(&self) -> Option<u32> {
        match self {
            Self::StepScheduled(declaration) => Some(declaration.step_number),
            Self::StepStarted { step_number, .. }
            | Self::StepAttemptFailed { step_number, .. }
            | Self::StepCompleted { step_number, .. }
            | Self::StepOutput { step_number, .. }
            | Self::StepFailed { step_number, .. }
            | Self::StepSkipped { step_number }
            | Self::StepWaiting { step_number, .. }
            | Self::StepCancelled { step_number, .. }
            | Self::LogLines { step_number, .. } => Some(*step_number),
            Self::WorkflowStarted(_) | Self::WorkflowStatusChanged { .. } => None,
        }
    }
}

/// Why a step still open when its run ended was ended with it: one wording for every
/// engine and for the read model's own rule.
pub fn ended_with_the_run(status: WorkflowStatus, reason: Option<&str>) -> String {
    match reason {
        Some(reason) => format!("ended with the run ({status}: {reason})"),
        None => format!("ended with the run ({status})"),
    }
}

/// A new run and what is known of it up front.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkflowStart {
    pub workflow_type: String,
    /// The run's own reference in its engine, as an operator would look it up there
    /// (e.g. "workflow order/7 · run 0194…"), when Stepline's id does not carry it whole.
    #[serde(default)]
    pub engine_ref: Option<String>,
    /// PENDING (queued) or RUNNING; RUNNING when absent.
    #[serde(default)]
    pub status: Option<WorkflowStatus>,
    #[serde(default)]
    pub definition_name: Option<String>,
    #[serde(default)]
    pub definition_version: Option<String>,
    /// How many (normal) steps the run will have, when the engine knows.
    #[serde(default)]
    pub total_steps: Option<u32>,
    #[serde(default)]
    pub sla_target_seconds: Option<i64>,
    #[serde(default)]
    pub triggered_by: Option<String>,
    #[serde(default)]
    pub trigger_type: Option<String>,
    #[serde(default)]
    pub priority: Option<Priority>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub input: Option<Value>,
    /// Steps known before they run.
    #[serde(default)]
    pub steps: Vec<StepDeclaration>,
}

/// A step as known before it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepDeclaration {
    pub step_number: u32,
    pub name: String,
    #[serde(default)]
    pub kind: StepKind,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub compensates: Option<u32>,
    #[serde(default)]
    pub input: Option<Value>,
    #[serde(default)]
    pub retry_policy: Option<RetryPolicyInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batch shown to engine authors must keep parsing.
    #[test]
    fn a_documented_batch_parses() {
        let events: Vec<SourceEvent> = serde_json::from_value(serde_json::json!([
            {"type": "workflow_started", "workflow_id": "sync-wf-11111", "at": "2026-01-01T12:00:00Z",
             "workflow_type": "data_sync", "status": "PENDING", "total_steps": 5,
             "sla_target_seconds": 300, "priority": "LOW", "triggered_by": "scheduler",
             "trigger_type": "scheduled",
             "steps": [{"step_number": 1, "name": "extract", "branch": "branch-a"}]},
            {"type": "step_started", "workflow_id": "sync-wf-11111", "at": "2026-01-01T12:00:01Z",
             "step_number": 1, "input": {"table": "trials"}},
            {"type": "log_lines", "workflow_id": "sync-wf-11111", "at": "2026-01-01T12:00:02Z",
             "step_number": 1, "lines": ["read 120 rows"]},
            {"type": "step_attempt_failed", "workflow_id": "sync-wf-11111", "at": "2026-01-01T12:00:03Z",
             "step_number": 1, "error": "timeout"},
            {"type": "step_completed", "workflow_id": "sync-wf-11111", "at": "2026-01-01T12:00:09Z",
             "step_number": 1, "output": {"rows": 120}},
            {"type": "workflow_status_changed", "workflow_id": "sync-wf-11111",
             "at": "2026-01-01T12:01:00Z", "status": "FAILED", "reason": "step 2 failed"}
        ]))
        .expect("the documented events parse");
        assert_eq!(events.len(), 6);
        assert!(matches!(
            &events[0].change,
            Change::WorkflowStarted(start) if start.status == Some(WorkflowStatus::Pending)
                && start.steps[0].branch.as_deref() == Some("branch-a")
        ));
        assert_eq!(events[2].change.step_number(), Some(1));
    }
}
