//! Where engines hand their events: a [`Batch`] per cycle, applied by the read model's
//! single writer (the projector implements [`Sink`]), and what it answers: the events
//! it refused and why.

use super::event::SourceEvent;
use super::lease::Held;
use app::model::Capabilities;
use async_trait::async_trait;
use std::sync::Arc;

/// Events from one engine, applied together or not at all.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The engine's id, stored on the runs it creates (e.g. `custom:billing`).
    pub engine: String,
    /// What that engine can do with the runs it creates.
    pub capabilities: Capabilities,
    pub events: Vec<SourceEvent>,
    /// Where the engine got to in its own source (by key: e.g. a Temporal run's last
    /// history event), saved in the same transaction: after a restart it resumes from
    /// there, neither losing nor repeating an event.
    pub positions: Vec<(String, String)>,
    /// The lease the engine writes under, when it does a job only one instance may do:
    /// the batch is applied only while the lease is still its holder's.
    pub held: Option<Held>,
}

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("workflow {0:?} is not known: send workflow_started first")]
    UnknownWorkflow(String),
    #[error("workflow {0:?} already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    OutOfOrder(String),
    #[error("{0}")]
    Invalid(String),
}

/// Why a batch was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// An event was malformed or out of order; nothing of the batch was applied.
    #[error("event {index} ({workflow_id}): {refusal}")]
    Refused {
        index: usize,
        workflow_id: String,
        refusal: Refusal,
    },
    /// The read model could not store the batch; nothing of it was applied.
    #[error(transparent)]
    Store(Arc<dyn std::error::Error + Send + Sync>),
    /// The batch was written under a lease its holder no longer holds; nothing of it was
    /// applied.
    #[error("lease {0:?} is no longer held by this instance")]
    LeaseLost(String),
    #[error("the projector has stopped")]
    Stopped,
}

/// A run whose events were left out of a batch applied run by run.
#[derive(Debug, Clone, PartialEq)]
pub struct SetAside {
    pub index: usize,
    pub workflow_id: String,
    pub refusal: Refusal,
}

/// The read model's writer, as engines see it.
#[async_trait]
pub trait Sink: Send + Sync {
    /// Applies a batch, all or nothing; answers how many events it held once they are
    /// durable.
    async fn apply(&self, batch: Batch) -> Result<usize, ApplyError>;

    /// Applies a batch run by run: the runs whose events were refused are set aside
    /// (and returned), the others are durable when this returns.
    async fn apply_per_run(&self, batch: Batch) -> Result<Vec<SetAside>, ApplyError>;
}

/// A sink shared by the engines and the ingest API.
pub type SharedSink = Arc<dyn Sink>;
