//! Alerts: what needs an operator now (a run failed, will miss or has missed its SLA, a
//! compensation failed, a step is stuck, an engine source or an alert channel fails),
//! each fired once per run (or source, or channel) and condition and resolved when the
//! condition clears; the inbox's API shapes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlertCondition {
    /// The run is forecast to end past its SLA deadline (before it is breached).
    ForecastBreach,
    /// 90 % of the run's SLA target has passed and it still runs.
    SlaWarning,
    /// The run went past its SLA target and still runs.
    SlaBreached,
    /// The run failed (or timed out).
    Failed,
    /// A compensation failed: the run needs manual intervention.
    CompensationFailed,
    /// An alert channel keeps failing to take alerts (about no run: the channel).
    ChannelFailing,
    /// A step runs far beyond its usual time (its p95) with no new log line or attempt.
    StuckStep,
    /// An engine source Stepline follows does not answer (about no run: the source).
    SourceDegraded,
}

impl AlertCondition {
    pub const ALL: [AlertCondition; 8] = [
        Self::ForecastBreach,
        Self::SlaWarning,
        Self::SlaBreached,
        Self::Failed,
        Self::CompensationFailed,
        Self::ChannelFailing,
        Self::StuckStep,
        Self::SourceDegraded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ForecastBreach => "forecast_breach",
            Self::SlaWarning => "sla_warning",
            Self::SlaBreached => "sla_breached",
            Self::Failed => "failed",
            Self::CompensationFailed => "compensation_failed",
            Self::ChannelFailing => "channel_failing",
            Self::StuckStep => "stuck_step",
            Self::SourceDegraded => "source_degraded",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// How the console names it.
    pub fn label(self) -> &'static str {
        match self {
            Self::ForecastBreach => "Forecast to breach",
            Self::SlaWarning => "SLA at 90 %",
            Self::SlaBreached => "SLA breached",
            Self::Failed => "Failed",
            Self::CompensationFailed => "Compensation failed",
            Self::ChannelFailing => "Alert channel failing",
            Self::StuckStep => "Step stuck",
            Self::SourceDegraded => "Source degraded",
        }
    }
}

/// Which alerts a page of the inbox holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Still holding (acknowledged or not).
    #[default]
    Firing,
    /// Cleared.
    Resolved,
    /// Both.
    All,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
            Self::All => "all",
        }
    }
}

/// One alert, as the inbox and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Alert {
    pub id: i64,
    pub condition: AlertCondition,
    pub engine: String,
    /// The run it is about.
    pub workflow_id: Option<String>,
    pub workflow_type: Option<String>,
    /// What happened, in a line (from the run: untrusted text, shown escaped).
    pub summary: String,
    /// When it fired (a condition that clears and holds again is a new alert).
    pub fired_at: DateTime<Utc>,
    /// When it cleared; `None` while it holds.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Who acknowledged it, and when.
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Until when alerts of its condition and workflow type are muted (not counted as
    /// open, not sent), if they are.
    pub muted_until: Option<DateTime<Utc>>,
}

impl Alert {
    /// Whether it asks for someone: holding, not acknowledged, not muted.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.resolved_at.is_none()
            && self.acknowledged_at.is_none()
            && self.muted_until.is_none_or(|until| until <= now)
    }
}

/// A page of the inbox, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AlertQuery {
    #[serde(default)]
    pub state: AlertState,
    /// Only the alerts of this run.
    #[serde(default)]
    pub workflow_id: Option<String>,
    /// Alerts older than this id (the previous page's `next_before`).
    #[serde(default)]
    pub before: Option<i64>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Most alerts in one answer.
pub const MAX_ALERT_LIMIT: u32 = 500;
pub const DEFAULT_ALERT_LIMIT: u32 = 100;
/// The open count stops here ("1,000+"): a storm costs the badge no more than this.
pub const OPEN_ALERTS_COUNTED_AT_MOST: u64 = 1_000;

impl AlertQuery {
    /// What is wrong with the query, if anything.
    pub fn invalid(&self) -> Option<String> {
        match &self.workflow_id {
            Some(id) if !super::is_valid_workflow_id(id) => Some(super::invalid_workflow_id(id)),
            _ => None,
        }
    }

    pub fn effective_limit(&self) -> u32 {
        self.limit
            .unwrap_or(DEFAULT_ALERT_LIMIT)
            .clamp(1, MAX_ALERT_LIMIT)
    }
}

/// A page of the inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AlertPage {
    pub alerts: Vec<Alert>,
    /// Pass as `before` for the next (older) page.
    pub next_before: Option<i64>,
    /// How many alerts are open (see [`Alert::is_open`]), counted up to
    /// [`OPEN_ALERTS_COUNTED_AT_MOST`].
    pub open: u64,
}

/// How long an operator may mute a condition for, in minutes (a week).
pub const MAX_MUTE_MINUTES: u32 = 7 * 24 * 60;

/// An operator mutes an alert's condition for its workflow type (or, for an alert about
/// no run, its engine) for a while; `minutes: 0` unmutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MuteRequest {
    pub minutes: u32,
}

/// The badge's number: open alerts, up to [`OPEN_ALERTS_COUNTED_AT_MOST`].
pub fn open_badge(open: u64) -> String {
    if open >= OPEN_ALERTS_COUNTED_AT_MOST {
        format!("{OPEN_ALERTS_COUNTED_AT_MOST}+")
    } else {
        open.to_string()
    }
}
