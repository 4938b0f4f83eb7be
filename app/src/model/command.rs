//! A command sent to an in-house engine, as the API and a run's page show it: asked by
//! whom and when, delivered, accepted or refused (in the engine's words), and whether the
//! engine's own events show it carried out — or that they do not yet, past the time the
//! engine is given.

use super::{Action, WorkflowStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a command is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CommandState {
    /// Written down, not yet handed to the engine.
    Requested,
    /// Handed to the engine, which has not answered.
    Delivered,
    /// The engine said it will do it.
    Accepted,
    /// The engine said no (see `said`).
    Refused,
}

impl CommandState {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "requested" => Self::Requested,
            "delivered" => Self::Delivered,
            "accepted" => Self::Accepted,
            "refused" => Self::Refused,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EngineCommand {
    pub id: i64,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_step: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub state: CommandState,
    /// Deliveries tried so far.
    pub deliveries: i64,
    /// Why the last delivery failed, or the engine's own words when it refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub said: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<DateTime<Utc>>,
    /// The run's own events show the command done (its status moved the way it asks).
    pub carried_out: bool,
    /// Not carried out, nor refused, within the time the engine is given.
    pub overdue: bool,
}

/// Whether a run now `status`, last changed at `updated_at`, shows `action` asked at
/// `requested_at` carried out. A clone makes another run: it is never shown here.
pub fn carried_out(
    action: Action,
    status: WorkflowStatus,
    updated_at: DateTime<Utc>,
    requested_at: DateTime<Utc>,
) -> bool {
    use WorkflowStatus::*;
    if updated_at < requested_at {
        return false;
    }
    match action {
        Action::Pause => matches!(status, Pausing | Paused),
        Action::Resume => status == Running || status.is_terminal(),
        Action::Cancel => matches!(status, Cancelling | Cancelled | CompensationFailed),
        Action::Terminate => status == Terminated,
        Action::Retry => !status.is_terminal() || status == Completed,
        Action::Clone => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_is_carried_out_when_the_run_moved_its_way_after_it_was_asked() {
        let asked = DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z")
            .unwrap()
            .to_utc();
        let later = asked + chrono::Duration::seconds(5);
        let earlier = asked - chrono::Duration::seconds(5);
        use WorkflowStatus::*;
        assert!(carried_out(Action::Cancel, Cancelling, later, asked));
        assert!(carried_out(Action::Cancel, Cancelled, later, asked));
        assert!(!carried_out(Action::Cancel, Running, later, asked));
        assert!(
            !carried_out(Action::Cancel, Cancelled, earlier, asked),
            "before it was asked"
        );
        assert!(carried_out(Action::Pause, Paused, later, asked));
        assert!(carried_out(Action::Resume, Running, later, asked));
        assert!(!carried_out(Action::Resume, Paused, later, asked));
        assert!(carried_out(Action::Terminate, Terminated, later, asked));
        assert!(carried_out(Action::Retry, Running, later, asked));
        assert!(!carried_out(Action::Retry, Failed, later, asked));
        assert!(!carried_out(Action::Clone, Running, later, asked));
    }
}
