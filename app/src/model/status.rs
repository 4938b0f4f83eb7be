//! Status vocabularies shared by every engine, as the story spells them on the wire.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a workflow run stands. Engines map their own states onto these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkflowStatus {
    /// Queued: waiting for a concurrency slot or for its engine to pick it up.
    Pending,
    Running,
    /// A pause was requested; the running step(s) finish first.
    Pausing,
    Paused,
    Completed,
    Failed,
    /// Cancel requested; compensations (if any) are running.
    Cancelling,
    Cancelled,
    /// A compensation failed: the run needs manual intervention.
    CompensationFailed,
    /// Hard-stopped by the engine without compensation.
    Terminated,
    TimedOut,
}

impl WorkflowStatus {
    pub const ALL: [WorkflowStatus; 11] = [
        Self::Pending,
        Self::Running,
        Self::Pausing,
        Self::Paused,
        Self::Completed,
        Self::Failed,
        Self::Cancelling,
        Self::Cancelled,
        Self::CompensationFailed,
        Self::Terminated,
        Self::TimedOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Pausing => "PAUSING",
            Self::Paused => "PAUSED",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Cancelling => "CANCELLING",
            Self::Cancelled => "CANCELLED",
            Self::CompensationFailed => "COMPENSATION_FAILED",
            Self::Terminated => "TERMINATED",
            Self::TimedOut => "TIMED_OUT",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// No further transitions happen on their own: the run is over (a retry starts anew).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed
                | Self::Failed
                | Self::Cancelled
                | Self::CompensationFailed
                | Self::Terminated
                | Self::TimedOut
        )
    }

    /// Work in progress or held mid-run: the "active" count, tab and filter.
    pub const ACTIVE: [WorkflowStatus; 4] =
        [Self::Running, Self::Pausing, Self::Paused, Self::Cancelling];

    /// Ended without doing what it was for: the "failed" count, tab, rate and filter.
    /// A terminated run (a hard stop) counts: its work was not done.
    pub const FAILURES: [WorkflowStatus; 4] = [
        Self::Failed,
        Self::CompensationFailed,
        Self::TimedOut,
        Self::Terminated,
    ];

    /// Counted as "active" in the stats: work is in progress or held mid-run.
    pub fn is_active(self) -> bool {
        Self::ACTIVE.contains(&self)
    }

    /// Counted as a failure everywhere (stats, the failed tab, the analytics).
    pub fn is_failure(self) -> bool {
        Self::FAILURES.contains(&self)
    }

    /// Whether an engine may report a move from `self` to `next`. A finished run only
    /// reopens (a retry); CANCELLING only ends; nothing returns to PENDING once started.
    pub fn can_become(self, next: WorkflowStatus) -> bool {
        use WorkflowStatus::*;
        if self == next {
            return true;
        }
        match self {
            // A failed rollback is retried by rolling back again.
            CompensationFailed => matches!(next, Pending | Running | Cancelling),
            _ if self.is_terminal() => matches!(next, Pending | Running),
            Pending => next != Pausing,
            Running | Pausing => next != Pending,
            Paused => !matches!(next, Pending | Pausing),
            Cancelling => matches!(
                next,
                Cancelled | CompensationFailed | Failed | Terminated | TimedOut
            ),
            _ => false,
        }
    }
}

impl fmt::Display for WorkflowStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepStatus {
    Pending,
    Running,
    /// An attempt failed and the next one waits for its backoff.
    Retrying,
    Completed,
    Failed,
    Cancelled,
    Skipped,
}

impl StepStatus {
    pub const ALL: [StepStatus; 7] = [
        Self::Pending,
        Self::Running,
        Self::Retrying,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
        Self::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Retrying => "RETRYING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
            Self::Skipped => "SKIPPED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Cancelled | Self::Skipped
        )
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step of the workflow's own work, or a compensation that undoes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    #[default]
    Normal,
    Compensation,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Compensation => "compensation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "normal" => Some(Self::Normal),
            "compensation" => Some(Self::Compensation),
            _ => None,
        }
    }
}

/// How a run stands against its SLA target: at risk from 90 % of the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SlaStatus {
    /// The workflow type declares no SLA target.
    #[default]
    NoTarget,
    OnTrack,
    AtRisk,
    Breached,
}

impl SlaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoTarget => "no_target",
            Self::OnTrack => "on_track",
            Self::AtRisk => "at_risk",
            Self::Breached => "breached",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "no_target" => Some(Self::NoTarget),
            "on_track" => Some(Self::OnTrack),
            "at_risk" => Some(Self::AtRisk),
            "breached" => Some(Self::Breached),
            _ => None,
        }
    }

    /// The SLA status of a run that has lasted `elapsed_ms` against `target_seconds`.
    /// At risk from 90 % of the target, breached beyond it.
    pub fn derive(elapsed_ms: i64, target_seconds: Option<i64>) -> Self {
        match target_seconds {
            None => Self::NoTarget,
            Some(target) if target <= 0 => Self::NoTarget,
            Some(target) => {
                let target_ms = target.saturating_mul(1000);
                if elapsed_ms > target_ms {
                    Self::Breached
                } else if elapsed_ms.saturating_mul(10) >= target_ms.saturating_mul(9) {
                    Self::AtRisk
                } else {
                    Self::OnTrack
                }
            }
        }
    }
}

/// The list's tabs: where an operator looks first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Tab {
    /// Running, pausing, paused or rolling back.
    Active,
    /// Queued.
    Pending,
    /// The newest completed runs (at most [`COMPLETED_TAB_SIZE`]).
    Completed,
    /// Failed, rollback failed, timed out or terminated.
    Failed,
    /// Active and past 90 % of their SLA target.
    Slow,
}

/// How many completed runs the Completed tab shows.
pub const COMPLETED_TAB_SIZE: u32 = 100;

impl Tab {
    pub const ALL: [Tab; 5] = [
        Self::Active,
        Self::Pending,
        Self::Completed,
        Self::Failed,
        Self::Slow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Pending => "pending",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Slow => "slow",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Pending => "Pending",
            Self::Completed => "Completed",
            Self::Failed => "Failed",
            Self::Slow => "Slow",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|tab| tab.as_str() == s)
    }

    /// The statuses a run of this tab has.
    pub fn statuses(self) -> &'static [WorkflowStatus] {
        use WorkflowStatus::*;
        match self {
            Self::Active | Self::Slow => &WorkflowStatus::ACTIVE,
            Self::Pending => &[Pending],
            Self::Completed => &[Completed],
            Self::Failed => &WorkflowStatus::FAILURES,
        }
    }

    /// Whether a run with this status and SLA status belongs in the tab.
    pub fn holds(self, status: WorkflowStatus, sla: SlaStatus) -> bool {
        self.statuses().contains(&status)
            && (self != Self::Slow || matches!(sla, SlaStatus::AtRisk | SlaStatus::Breached))
    }
}
