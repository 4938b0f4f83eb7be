//! Commands to engines that are not called but reached later (in-house engines that push
//! their events): written down when an operator asks, handed to the engine at least once
//! under one idempotency key, settled by the engine's answer. Engines see the outbox
//! through [`CommandOutbox`]; the store keeps it.

use super::clock::{to_datetime, Millis};
use app::model::WorkflowStatus;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A command as kept in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxCommand {
    pub id: i64,
    /// The pushing source whose engine is to do it.
    pub source: String,
    pub workflow_id: String,
    /// `pause`, `resume`, `cancel`, `retry`, `clone`, `terminate`.
    pub action: String,
    pub from_step: Option<i64>,
    pub reason: Option<String>,
    pub requested_by: String,
    pub requested_ms: Millis,
    pub idempotency_key: String,
    /// `requested`, `delivered`, `accepted` or `refused`.
    pub state: String,
    /// Deliveries tried so far.
    pub attempts: i64,
    pub next_attempt_ms: Millis,
    /// Why the last delivery failed, or the engine's words when it refused.
    pub said: Option<String>,
    pub delivered_ms: Option<Millis>,
    pub answered_ms: Option<Millis>,
}

/// A command as its engine receives it (a webhook's body, one item of a pull).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommandMessage {
    /// Answer with this id.
    pub id: i64,
    /// The same on every delivery of this command: do it once.
    pub idempotency_key: String,
    pub workflow_id: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_step: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub requested_by: String,
    pub requested_at: chrono::DateTime<chrono::Utc>,
}

impl OutboxCommand {
    pub fn message(&self) -> CommandMessage {
        CommandMessage {
            id: self.id,
            idempotency_key: self.idempotency_key.clone(),
            workflow_id: self.workflow_id.clone(),
            action: self.action.clone(),
            from_step: self.from_step,
            reason: self.reason.clone(),
            requested_by: self.requested_by.clone(),
            requested_at: to_datetime(self.requested_ms),
        }
    }
}

/// A command to write.
#[derive(Debug, Clone)]
pub struct NewCommand<'a> {
    pub source: &'a str,
    pub workflow_id: &'a str,
    pub action: &'a str,
    pub from_step: Option<u32>,
    pub reason: Option<&'a str>,
    pub requested_by: &'a str,
    pub idempotency_key: &'a str,
}

/// How an engine answered a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Accepted,
    Refused(String),
}

/// An engine's answer as it sends it, to a webhook delivery or by the answer endpoint:
/// `{"accepted": true}` or `{"accepted": false, "reason": "..."}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct Reply {
    pub accepted: bool,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Longest refusal kept, in characters.
const REFUSAL_KEPT: usize = 500;

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Self {
        if reply.accepted {
            return Self::Accepted;
        }
        let reason = reply
            .reason
            .filter(|reason| !reason.trim().is_empty())
            .unwrap_or_else(|| "refused, without a reason".into());
        Self::Refused(reason.chars().take(REFUSAL_KEPT).collect())
    }
}

/// The outbox could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("the command outbox: {0}")]
pub struct OutboxError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// The outbox, as engines use it.
#[async_trait]
pub trait CommandOutbox: Send + Sync {
    /// Writes a command for run `workflow_id`, due at once, with the run's status as it
    /// is; `None` when there is no such run.
    async fn request(
        &self,
        command: NewCommand<'_>,
        now: Millis,
    ) -> Result<Option<(OutboxCommand, WorkflowStatus)>, OutboxError>;

    /// Commands of `source` not yet answered and due by `now`, oldest first.
    async fn due(
        &self,
        source: &str,
        now: Millis,
        limit: i64,
    ) -> Result<Vec<OutboxCommand>, OutboxError>;

    /// When the earliest unanswered command of `source` is next due.
    async fn next_due(&self, source: &str) -> Result<Option<Millis>, OutboxError>;

    /// Records a delivery at `now`: handed over (`failure` none), or why it failed; due
    /// again at `next_attempt_ms` unless answered before.
    async fn delivered(
        &self,
        id: i64,
        now: Millis,
        next_attempt_ms: Millis,
        failure: Option<&str>,
    ) -> Result<(), OutboxError>;

    /// Records the engine's answer to command `id` of `source`: the run it is about, or
    /// `None` when the source has no such command still waiting for one.
    async fn answer(
        &self,
        source: &str,
        id: i64,
        answer: &Answer,
        now: Millis,
    ) -> Result<Option<String>, OutboxError>;
}

/// The outbox as engines hold it.
pub type SharedOutbox = std::sync::Arc<dyn CommandOutbox>;
