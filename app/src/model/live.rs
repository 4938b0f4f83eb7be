//! The WebSocket protocol (`/ws/orchestration`): what clients send and what the live hub
//! pushes. Every pushed message carries the hub's `seq`, so a client that reconnects can
//! ask for what it missed.

use super::alert::Alert;
use super::command::CommandState;
use super::status::{StepStatus, WorkflowStatus};
use super::workflow::Workflow;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// How many run summaries a client keeps from the live stream: enough for a page of the
/// list (at most 500 rows) and the runs that changed since, not every run it ever heard
/// of (a busy fleet sends thousands an hour).
pub const LIVE_ROWS_KEPT: usize = 1_000;

/// Keeps the `max` most recently updated summaries of `rows` and forgets the rest, once
/// they are a quarter over `max`: the client calls this on every frame with news, and
/// trimming in steps keeps that from sorting the whole map each time.
pub fn keep_newest(rows: &mut HashMap<String, Workflow>, max: usize) {
    if rows.len() <= max + max / 4 {
        return;
    }
    let mut updated: Vec<_> = rows
        .values()
        .map(|w| (w.updated_at, w.id.clone()))
        .collect();
    let cut = updated.len() - max;
    // The `cut` oldest go; which of equally old ones go does not matter.
    updated.select_nth_unstable(cut - 1);
    for (_, id) in &updated[..cut] {
        rows.remove(id);
    }
}

/// A change to the read model, as the story names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A list row appeared or changed (status, progress, SLA, ...): the whole row, so a
    /// client can upsert it without knowing every rule that derived it.
    WorkflowUpdated { workflow: Box<Workflow> },
    StepStarted {
        workflow_id: String,
        step_number: u32,
        step_name: String,
        attempt: u32,
    },
    /// An attempt failed and another will follow.
    StepRetrying {
        workflow_id: String,
        step_number: u32,
        step_name: String,
        attempt: u32,
        error: Option<String>,
    },
    StepCompleted {
        workflow_id: String,
        step_number: u32,
        step_name: String,
        duration_seconds: f64,
        status: StepStatus,
    },
    StepFailed {
        workflow_id: String,
        step_number: u32,
        step_name: String,
        error: Option<String>,
        attempts: u32,
    },
    WorkflowStatusChanged {
        workflow_id: String,
        old_status: WorkflowStatus,
        new_status: WorkflowStatus,
        duration_seconds: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The run reached 90 % of its SLA target.
    SlaWarning {
        workflow_id: String,
        message: String,
        current_duration: f64,
        sla_target: i64,
    },
    /// The run went past its SLA target.
    SlaBreached {
        workflow_id: String,
        message: String,
        current_duration: f64,
        sla_target: i64,
    },
    /// New log lines of a step: of a large append only the newest are sent live, and
    /// `earlier` says how many were left out (the step's detail has them).
    LogAppended {
        workflow_id: String,
        step_number: u32,
        lines: Vec<String>,
        #[serde(default, skip_serializing_if = "super::workflow::is_zero")]
        earlier: u64,
    },
    /// A command to the run's engine moved on (requested, delivered, accepted or
    /// refused): the run's page reads its commands again.
    EngineCommandChanged {
        workflow_id: String,
        command_id: i64,
        state: CommandState,
    },
    /// An alert fired, cleared, or was acknowledged or muted: sent to every client that
    /// follows the alerts and may see its engine, whatever runs it follows (the header's
    /// badge counts them).
    AlertChanged { alert: Box<Alert> },
    /// Sent first on every connection: the hub's current position.
    Hello {},
    /// A fresh picture of the subscribed workflows, sent instead of a replay when the
    /// client is too far behind (or was too slow to keep up). `complete` is false when
    /// only the most recently changed rows fit: the client should reload its view.
    Snapshot {
        workflows: Vec<Workflow>,
        complete: bool,
    },
    /// The client sent something the hub could not take; the connection stays open.
    ProtocolError { message: String },
}

impl LiveEvent {
    /// Whether every client that follows the alerts and may see the event's engine gets
    /// it, whatever runs it follows.
    pub fn is_for_everyone(&self) -> bool {
        matches!(self, Self::AlertChanged { .. })
    }

    /// The workflow the event is about, for routing to subscribers.
    pub fn workflow_id(&self) -> Option<&str> {
        match self {
            Self::WorkflowUpdated { workflow } => Some(&workflow.id),
            Self::StepStarted { workflow_id, .. }
            | Self::StepRetrying { workflow_id, .. }
            | Self::StepCompleted { workflow_id, .. }
            | Self::StepFailed { workflow_id, .. }
            | Self::WorkflowStatusChanged { workflow_id, .. }
            | Self::SlaWarning { workflow_id, .. }
            | Self::SlaBreached { workflow_id, .. }
            | Self::LogAppended { workflow_id, .. }
            | Self::EngineCommandChanged { workflow_id, .. } => Some(workflow_id),
            Self::AlertChanged { alert } => alert.workflow_id.as_deref(),
            Self::Hello {} | Self::Snapshot { .. } | Self::ProtocolError { .. } => None,
        }
    }
}

/// A pushed message: an event with its position in the hub's sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LiveMessage {
    pub seq: u64,
    #[serde(flatten)]
    pub event: LiveEvent,
}

/// What a client asks for: all workflows, or some ids; and the alerts (of every engine
/// it may see), whatever runs it follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Subscription {
    /// Every workflow (the list page).
    #[serde(default)]
    pub all: bool,
    /// These workflows (a detail page), in addition to `all`.
    #[serde(default)]
    pub workflow_ids: Vec<String>,
    /// Every alert that fires, resolves or is taken in hand (`alert_changed`).
    #[serde(default)]
    pub alerts: bool,
}

/// Messages from a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Adds to the subscription. With `since_seq`, the hub first replays what the client
    /// missed after that seq (or sends a snapshot when it no longer has it).
    Subscribe {
        #[serde(flatten)]
        subscription: Subscription,
        #[serde(default)]
        since_seq: Option<u64>,
    },
    Unsubscribe {
        #[serde(flatten)]
        subscription: Subscription,
    },
}
