//! What an engine may read back from the read model about its own runs: the runs it
//! left open (to pick them up after a restart), one run again (after a failed commit),
//! where it got to in its source, and how many steps its completed runs took. Engines
//! see small snapshots, not the store's rows, so the store can change shape (or
//! database) without touching them; the store implements [`Recall`].

use super::clock::Millis;
use app::model::{Priority, StepKind, StepStatus, WorkflowStatus};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// A run as the read model holds it, as much as an engine needs to go on with it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSnapshot {
    pub id: String,
    /// The engine the run belongs to.
    pub engine: String,
    pub workflow_type: String,
    /// The run's own reference in its engine, as the engine reported it.
    pub engine_ref: Option<String>,
    pub status: WorkflowStatus,
    pub status_reason: Option<String>,
    pub priority: Priority,
    pub input: Option<Value>,
    pub created_ms: Millis,
    /// Normal steps expected (as the read model derived it).
    pub total_steps: u32,
    /// In step order.
    pub steps: Vec<StepSnapshot>,
}

/// A step of a [`RunSnapshot`].
#[derive(Debug, Clone, PartialEq)]
pub struct StepSnapshot {
    pub step_number: u32,
    pub name: String,
    pub kind: StepKind,
    /// For a compensation: the step it undoes.
    pub compensates: Option<u32>,
    pub status: StepStatus,
    pub error: Option<String>,
    pub completed_ms: Option<Millis>,
    pub attempts: Vec<AttemptSnapshot>,
}

/// One try of a step.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptSnapshot {
    pub attempt: u32,
    pub status: StepStatus,
    pub completed_ms: Option<Millis>,
    pub error: Option<String>,
}

/// The read model could not be read; the cause says why.
#[derive(Debug, thiserror::Error)]
#[error("the read model could not be read")]
pub struct RecallError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// The read model, as engines read it back.
#[async_trait]
pub trait Recall: Send + Sync {
    /// Every run of `engine` that has not ended, oldest first, with its steps.
    async fn open_runs(&self, engine: &str) -> Result<Vec<RunSnapshot>, RecallError>;

    /// One run with its steps, if it exists.
    async fn run(&self, id: &str) -> Result<Option<RunSnapshot>, RecallError>;

    /// Where `engine` got to in its source, by key (as its batches saved it).
    async fn positions(&self, engine: &str) -> Result<HashMap<String, String>, RecallError>;

    /// For each workflow type of `engine`, the steps of its longest completed run.
    async fn longest_completed_runs(
        &self,
        engine: &str,
    ) -> Result<HashMap<String, u32>, RecallError>;
}

/// The read model shared by the engines.
pub type SharedRecall = Arc<dyn Recall>;
