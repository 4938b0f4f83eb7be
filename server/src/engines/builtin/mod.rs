//! The built-in durable engine: runs workflows described in definition files, on the
//! same SQLite database as the read model. One task (the driver) owns every live run;
//! it collects what happened (results, operators' commands, retry timers), decides the
//! next transitions, has the sink (the projector) make them durable in one transaction,
//! and only then starts or stops work. So whatever ran is in the store, and a restart picks every
//! open run up again from there (a step that was running runs again: at-least-once).
//!
//! Files: the handle is here in `mod.rs`; `driver.rs` is the task that owns every live
//! run; `admission.rs` the queue order and concurrency slots; `ids.rs` the run ids.

pub mod definition;
pub mod demo;
pub mod execute;
pub mod run;

mod admission;
mod driver;
mod ids;

use crate::source::{
    Command, CommandError, CommandOutcome, Engine, RecallError, SharedRecall, SharedSink,
    StartRequest,
};
use app::model::Capabilities;
use async_trait::async_trait;
use definition::Definition;
use driver::{Driver, Message};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The engine id stored on its runs.
pub const ENGINE_ID: &str = "builtin";

/// What the built-in engine can do with its runs: everything, honestly.
pub fn capabilities() -> Capabilities {
    Capabilities::everything()
}

/// How much the engine runs at once.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Runs holding a slot (RUNNING, PAUSING, CANCELLING) across all types; more wait
    /// as PENDING. Each type's `max_concurrent` applies as well.
    pub max_running: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_running: 1_000 }
    }
}

/// How many runs are where, per type (for the demo generator and the census).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    pub running: HashMap<String, usize>,
    pub pending: HashMap<String, usize>,
}

/// The handle on the running engine; cheap to clone.
#[derive(Clone)]
pub struct BuiltinEngine {
    inbox: mpsc::Sender<Message>,
    definitions: Arc<HashMap<String, Arc<Definition>>>,
}

impl BuiltinEngine {
    /// Starts the engine over `definitions`, after picking up every run the store holds
    /// open from before.
    pub async fn start(
        recall: SharedRecall,
        sink: SharedSink,
        definitions: Vec<Definition>,
        limits: Limits,
    ) -> Result<Self, RecallError> {
        let definitions: Arc<HashMap<String, Arc<Definition>>> = Arc::new(
            definitions
                .into_iter()
                .map(|d| (d.workflow_type.clone(), Arc::new(d)))
                .collect(),
        );
        let inbox = Driver::spawn(definitions.clone(), limits, recall, sink).await?;
        Ok(Self { inbox, definitions })
    }

    /// The workflow types this engine can start.
    pub fn workflow_types(&self) -> Vec<String> {
        let mut types: Vec<String> = self.definitions.keys().cloned().collect();
        types.sort();
        types
    }

    async fn ask<T>(
        &self,
        message: impl FnOnce(oneshot::Sender<T>) -> Message,
    ) -> Result<T, CommandError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || CommandError::Unavailable("the built-in engine has stopped".into());
        self.inbox
            .send(message(reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())
    }

    /// Starts a run of `request.workflow_type` (queued while the limits are reached).
    pub async fn start_workflow(
        &self,
        request: StartRequest,
    ) -> Result<CommandOutcome, CommandError> {
        if !self.definitions.contains_key(&request.workflow_type) {
            return Err(CommandError::Refused(format!(
                "no workflow type {:?}; known types: {}",
                request.workflow_type,
                self.workflow_types().join(", ")
            )));
        }
        self.ask(|reply| Message::Start(request, reply)).await?
    }

    pub async fn census(&self) -> Result<Census, CommandError> {
        self.ask(Message::Census).await
    }
}

#[async_trait]
impl Engine for BuiltinEngine {
    fn id(&self) -> &str {
        ENGINE_ID
    }

    async fn command(
        &self,
        workflow_id: &str,
        command: Command,
        _requested_by: &str,
    ) -> Result<CommandOutcome, CommandError> {
        let id = workflow_id.to_owned();
        self.ask(|reply| Message::Command(id, command, reply))
            .await?
    }

    fn starts_runs(&self) -> bool {
        true
    }

    async fn start(&self, request: StartRequest) -> Result<CommandOutcome, CommandError> {
        self.start_workflow(request).await
    }
}
