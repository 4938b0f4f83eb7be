//! Workflows, steps and attempts as the REST API and the UI see them.

use super::forecast::Forecast;
use super::status::{SlaStatus, StepKind, StepStatus, Tab, WorkflowStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Queue priority of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Priority {
    High,
    #[default]
    Normal,
    Low,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::High => "HIGH",
            Self::Normal => "NORMAL",
            Self::Low => "LOW",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "HIGH" => Some(Self::High),
            "NORMAL" => Some(Self::Normal),
            "LOW" => Some(Self::Low),
            _ => None,
        }
    }
}

/// How fresh an engine's data is: pushed to us as it happens, or polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LiveMode {
    #[default]
    Push,
    Poll,
}

/// What the engine behind a workflow can honour. The UI offers exactly these actions and
/// the API refuses the others with 409: capabilities are never faked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Capabilities {
    pub can_pause: bool,
    pub can_resume: bool,
    pub can_cancel: bool,
    pub compensates_on_cancel: bool,
    pub can_retry_from_step: bool,
    pub can_clone: bool,
    /// A hard stop, apart from cancel: nothing is rolled back (Temporal's terminate).
    #[serde(default)]
    pub can_terminate: bool,
    pub has_logs: bool,
    pub live: LiveMode,
}

impl Capabilities {
    /// The flag that says whether the engine honours `action`.
    fn flag(&mut self, action: Action) -> &mut bool {
        match action {
            Action::Pause => &mut self.can_pause,
            Action::Resume => &mut self.can_resume,
            Action::Cancel => &mut self.can_cancel,
            Action::Retry => &mut self.can_retry_from_step,
            Action::Clone => &mut self.can_clone,
            Action::Terminate => &mut self.can_terminate,
        }
    }

    /// Whether the engine honours `action`.
    pub fn can(mut self, action: Action) -> bool {
        *self.flag(action)
    }

    /// The engine honours `action` too (a cancel rolls back what was done).
    pub fn allow(&mut self, action: Action) {
        *self.flag(action) = true;
        if action == Action::Cancel {
            self.compensates_on_cancel = true;
        }
    }

    /// Every action but terminate (an engine whose cancel always rolls back has no use
    /// for a hard stop), logs, and pushed updates.
    pub fn everything() -> Self {
        Self {
            can_pause: true,
            can_resume: true,
            can_cancel: true,
            compensates_on_cancel: true,
            can_retry_from_step: true,
            can_clone: true,
            can_terminate: false,
            has_logs: true,
            live: LiveMode::Push,
        }
    }
}

/// The story's progress triple: the step the run is on, out of how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Progress {
    pub current_step: u32,
    pub total_steps: u32,
    pub percent: u32,
}

/// Progress as the story shows it ("Step 7/15 (47%)" while step 7 runs after six
/// completed): the step being worked on is `completed + 1`, a finished run is on its
/// last step, and percent is that position over the total, rounded half up (100 once
/// completed, even for a run that had no step).
pub fn progress_of(completed_steps: u32, total_steps: u32, status: WorkflowStatus) -> Progress {
    let total = total_steps.max(completed_steps);
    let current = if total == 0 {
        0
    } else if status == WorkflowStatus::Completed {
        total
    } else {
        (completed_steps + 1).min(total)
    };
    // A completed run is done whatever it declared (one that ran no step is too).
    let percent = if status == WorkflowStatus::Completed {
        100
    } else {
        super::analytics::percent(u64::from(current), u64::from(total))
    };
    Progress {
        current_step: current,
        total_steps: total,
        percent,
    }
}

/// One row of the workflow list (and the summary pushed live when a row changes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Workflow {
    pub id: String,
    #[serde(rename = "type")]
    pub workflow_type: String,
    /// Which engine (and namespace) the run comes from, e.g. `builtin`, `custom:billing`.
    #[serde(default)]
    pub engine: String,
    /// The run's own reference in its engine (e.g. Temporal's workflow and run id), when
    /// Stepline's id does not carry it whole.
    #[serde(default)]
    pub engine_ref: Option<String>,
    pub status: WorkflowStatus,
    pub progress: Progress,
    /// When the engine first reported the run (queued runs have not started yet).
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// Seconds run so far (to now while active, to the end once finished).
    pub duration_seconds: f64,
    pub sla_target_seconds: Option<i64>,
    pub sla_status: SlaStatus,
    pub triggered_by: Option<String>,
    pub trigger_type: Option<String>,
    pub priority: Priority,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Pause is possible now: the engine can and the status allows it.
    #[serde(default)]
    pub can_pause: bool,
    /// Cancel is possible now: the engine can and the status allows it.
    #[serde(default)]
    pub can_cancel: bool,
    /// When a running run is expected to end; absent until it is forecast, and once it
    /// stops running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<Forecast>,
}

/// Whether Stepline reaches an engine it follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EngineState {
    /// Not answered yet since Stepline started.
    Connecting,
    Ok,
    /// Not answering: its runs may be stale until it does (then Stepline catches up).
    Degraded,
}

/// An engine Stepline follows, and how that goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EngineHealth {
    pub engine: String,
    pub state: EngineState,
    /// What went wrong, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Since when the engine is in this state.
    pub since: DateTime<Utc>,
}

/// Counts shown above the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WorkflowStats {
    pub active: u64,
    pub pending: u64,
    pub completed_today: u64,
    pub failed_today: u64,
    /// Of the runs with an SLA target that ended today (UTC), the percentage that ended
    /// within it; none when no such run ended yet.
    #[serde(default)]
    pub sla_compliance_today: Option<u32>,
    /// How many runs each tab of the list holds.
    #[serde(default)]
    pub tabs: TabCounts,
    /// The engines Stepline follows (Temporal sources), with their health.
    #[serde(default)]
    pub engines: Vec<EngineHealth>,
}

/// The list tabs' counts (the Completed tab shows at most its newest 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TabCounts {
    pub active: u64,
    pub pending: u64,
    pub completed: u64,
    pub failed: u64,
    pub slow: u64,
}

impl TabCounts {
    pub fn of(&self, tab: Tab) -> u64 {
        match tab {
            Tab::Active => self.active,
            Tab::Pending => self.pending,
            Tab::Completed => self.completed,
            Tab::Failed => self.failed,
            Tab::Slow => self.slow,
        }
    }
}

/// A page of the workflow list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WorkflowList {
    pub workflows: Vec<Workflow>,
    /// How many workflows match the filters, over all pages; with `total_capped`, at
    /// least this many (a search or a date range is counted only this far).
    pub total: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub total_capped: bool,
    pub stats: WorkflowStats,
    /// Opaque cursor of the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// The live hub's position when the page was read: subscribing from it replays
    /// every change since, so nothing falls between the page and the live stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// One try of a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Attempt {
    pub attempt: u32,
    pub status: StepStatus,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_seconds: Option<f64>,
    pub error: Option<String>,
}

/// One step of a run, with every attempt it took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Step {
    pub step_number: u32,
    pub name: String,
    pub status: StepStatus,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_seconds: Option<f64>,
    pub input: Option<Value>,
    pub output: Option<Value>,
    /// The most recent log lines (untrusted text: always rendered as text).
    #[serde(default)]
    pub logs: Vec<String>,
    /// How many of the step's oldest log lines were dropped to keep its stored logs
    /// under the per-step cap.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub logs_dropped: u64,
    pub error: Option<String>,
    /// Attempts beyond the first.
    #[serde(default)]
    pub retry_count: u32,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    #[serde(default)]
    pub kind: StepKind,
    /// The parallel branch the step belongs to, if any.
    #[serde(default)]
    pub branch: Option<String>,
    /// For a compensation: the step it undoes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compensates: Option<u32>,
    /// How the engine retries the step, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicyInfo>,
    /// What the step waits for, while it waits and its engine tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
}

/// What a step waits for before it can go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// A timer (a sleep, a scheduled time).
    Timer,
    /// The pause before its next attempt.
    RetryBackoff,
    /// A message from outside (a signal, an event, a trigger).
    Signal,
    /// A free worker or slot (a queue, a pool).
    QueueSlot,
    /// A person (an approval, an answer).
    HumanInput,
}

impl WaitReason {
    pub const ALL: [WaitReason; 5] = [
        Self::Timer,
        Self::RetryBackoff,
        Self::Signal,
        Self::QueueSlot,
        Self::HumanInput,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timer => "timer",
            Self::RetryBackoff => "retry_backoff",
            Self::Signal => "signal",
            Self::QueueSlot => "queue_slot",
            Self::HumanInput => "human_input",
        }
    }

    /// "a timer", "the retry backoff", ...: what the step waits for, in words.
    pub fn words(self) -> &'static str {
        match self {
            Self::Timer => "a timer",
            Self::RetryBackoff => "its retry backoff",
            Self::Signal => "a signal",
            Self::QueueSlot => "a free worker",
            Self::HumanInput => "a person",
        }
    }
}

/// A step's wait: why, since when, until when (when known), and what the engine adds
/// ("task queue images", "approval by finance"; untrusted text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Waiting {
    pub reason: WaitReason,
    pub since: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// How a step is retried, as its engine declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RetryPolicyInfo {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    /// The waits before the second, third, ... attempt.
    #[serde(default)]
    pub delays_seconds: Vec<f64>,
}

impl RetryPolicyInfo {
    /// "Exponential backoff (1s, 2s, 4s)", or "No retries".
    pub fn describe(&self) -> String {
        if self.max_attempts <= 1 {
            return "No retries".into();
        }
        let waits: Vec<String> = self
            .delays_seconds
            .iter()
            .map(|s| format_duration(*s))
            .collect();
        format!(
            "Up to {} retries, exponential backoff ({})",
            self.max_attempts - 1,
            waits.join(", ")
        )
    }

    /// How the story labels attempt `attempt` of a step: "Attempt 1", then
    /// "Retry 1/3", "Retry 2/3", ...
    pub fn attempt_label(&self, attempt: u32) -> String {
        attempt_label(attempt, Some(self.max_attempts))
    }
}

/// "Attempt 1", then "Retry 1/3" (or "Retry 1" when the limit is unknown).
pub fn attempt_label(attempt: u32, max_attempts: Option<u32>) -> String {
    match (attempt, max_attempts) {
        (0 | 1, _) => "Attempt 1".into(),
        (n, Some(max)) if max > 1 => format!("Retry {}/{}", n - 1, max - 1),
        (n, _) => format!("Retry {}", n - 1),
    }
}

/// A parallel path of a run and how far it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Branch {
    pub branch_id: String,
    pub steps: Vec<u32>,
    pub status: StepStatus,
}

/// The definition a run follows, as far as its engine tells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DefinitionInfo {
    pub name: Option<String>,
    pub version: Option<String>,
    pub steps: u32,
    pub sla_target_seconds: Option<i64>,
}

/// The execution part of the detail view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Execution {
    pub started_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_seconds: f64,
    pub current_step: u32,
    pub steps: Vec<Step>,
    #[serde(default)]
    pub parallel_branches: Vec<Branch>,
    /// Which steps `steps` holds, when the read was paged (the REST detail always is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps_page: Option<StepsPage>,
}

/// One page of a run's steps: from step `from` (by number), at most `limit` of `total`;
/// `next_from` is where the next page starts, absent on the last one. The branches
/// are those of the steps on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StepsPage {
    pub from: u32,
    pub limit: u32,
    pub total: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_from: Option<u32>,
}

impl StepsPage {
    /// Steps per page when the client does not say.
    pub const DEFAULT_LIMIT: u32 = 1_000;
    pub const MAX_LIMIT: u32 = 5_000;
}

/// Who started a run, how, and how it is labelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Metadata {
    /// The run's own reference in its engine (e.g. Temporal's workflow and run id), when
    /// Stepline's id does not carry it whole.
    #[serde(default)]
    pub engine_ref: Option<String>,
    pub triggered_by: Option<String>,
    pub trigger_type: Option<String>,
    #[serde(default)]
    pub priority: Priority,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Everything about one run (`GET .../workflows/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WorkflowDetail {
    pub id: String,
    #[serde(rename = "type")]
    pub workflow_type: String,
    #[serde(default)]
    pub engine: String,
    pub status: WorkflowStatus,
    /// Why the run is as it is (cancel reason, final error, why its steps are not
    /// shown), when known.
    #[serde(default)]
    pub status_reason: Option<String>,
    #[serde(default)]
    pub progress: Progress,
    #[serde(default)]
    pub sla_status: SlaStatus,
    #[serde(default)]
    pub capabilities: Capabilities,
    #[serde(default)]
    pub can_pause: bool,
    #[serde(default)]
    pub can_cancel: bool,
    pub definition: DefinitionInfo,
    pub execution: Execution,
    pub metadata: Metadata,
    /// As on the list row: when a running run is expected to end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<Forecast>,
}

/// The one way every view writes a duration: `0.4s`, `12s`, `5:30`, and in hours from an
/// hour on (`2h 05m`).
pub fn format_duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "–".to_owned();
    }
    if seconds < 1.0 {
        return format!("{seconds:.1}s");
    }
    let whole = seconds.floor() as u64;
    if whole < 60 {
        format!("{whole}s")
    } else if whole < 3600 {
        format!("{}:{:02}", whole / 60, whole % 60)
    } else {
        format!("{}h {:02}m", whole / 3600, (whole % 3600) / 60)
    }
}

/// The parallel branches of a run, from its steps' `branch` labels, in order of their
/// first step. A branch failed if any of its steps did, runs while any step runs or
/// retries, is complete when every step completed (or was skipped), and is pending else.
pub fn derive_branches(steps: &[Step]) -> Vec<Branch> {
    let mut branches: Vec<Branch> = Vec::new();
    for step in steps.iter().filter(|s| s.kind == StepKind::Normal) {
        let Some(id) = &step.branch else { continue };
        match branches.iter_mut().find(|b| &b.branch_id == id) {
            Some(branch) => branch.steps.push(step.step_number),
            None => branches.push(Branch {
                branch_id: id.clone(),
                steps: vec![step.step_number],
                status: StepStatus::Pending,
            }),
        }
    }
    for branch in &mut branches {
        let statuses = steps
            .iter()
            .filter(|s| branch.steps.contains(&s.step_number) && s.kind == StepKind::Normal)
            .map(|s| s.status);
        branch.status = branch_status(statuses);
    }
    branches
}

fn branch_status(statuses: impl Iterator<Item = StepStatus>) -> StepStatus {
    let (mut any_failed, mut any_active, mut all_done, mut any_started) =
        (false, false, true, false);
    for status in statuses {
        any_failed |= matches!(status, StepStatus::Failed | StepStatus::Cancelled);
        any_active |= matches!(status, StepStatus::Running | StepStatus::Retrying);
        all_done &= matches!(status, StepStatus::Completed | StepStatus::Skipped);
        any_started |= status != StepStatus::Pending;
    }
    if any_failed {
        StepStatus::Failed
    } else if any_active || (any_started && !all_done) {
        StepStatus::Running
    } else if all_done {
        StepStatus::Completed
    } else {
        StepStatus::Pending
    }
}

/// What an operator can ask of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Pause,
    Resume,
    Cancel,
    Retry,
    Clone,
    /// Stop at once, without compensation.
    Terminate,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Self::Pause,
        Self::Resume,
        Self::Cancel,
        Self::Retry,
        Self::Clone,
        Self::Terminate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Cancel => "cancel",
            Self::Retry => "retry",
            Self::Clone => "clone",
            Self::Terminate => "terminate",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == s)
    }

    /// Why `self` cannot be done to a run in `status` whose engine can do `capabilities`,
    /// or `None` when it can. Both the UI (to offer buttons) and the API (to answer 409)
    /// ask this one question.
    pub fn refusal(self, status: WorkflowStatus, capabilities: &Capabilities) -> Option<String> {
        use WorkflowStatus::*;
        let allowed = match self {
            Self::Pause => status == Running,
            Self::Resume => matches!(status, Paused | Pausing),
            Self::Cancel => matches!(status, Pending | Running | Pausing | Paused),
            Self::Retry => matches!(
                status,
                Failed | Cancelled | CompensationFailed | Terminated | TimedOut
            ),
            Self::Clone => true,
            Self::Terminate => matches!(status, Pending | Running | Pausing | Paused | Cancelling),
        };
        if !capabilities.can(self) {
            Some(format!(
                "the engine of this workflow cannot {}",
                self.as_str()
            ))
        } else if !allowed {
            Some(format!("cannot {} a {status} workflow", self.as_str()))
        } else {
            None
        }
    }
}

/// The answer to an action (`POST .../workflows/{id}/pause` and the like).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ActionResponse {
    pub status: String,
    pub workflow_id: String,
    pub new_status: WorkflowStatus,
    pub message: String,
}

/// For `skip_serializing_if`: a count of nothing is left out of the JSON.
pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}
