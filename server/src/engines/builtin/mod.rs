//! The built-in durable engine: runs workflows described in definition files, on the
//! same SQLite database as the read model. One task (the driver) owns every live run;
//! it collects what happened (results, operators' commands, retry timers), decides the
//! next transitions, has the sink (the projector) make them durable in one transaction,
//! and only then starts or stops work. So whatever ran is in the store, and a restart picks every
//! open run up again from there (a step that was running runs again: at-least-once).
//!
//! With several instances on one database, the instance that holds the engine's lease
//! drives every run; the others forward what operators ask to it through the store.
//!
//! Files: the handle is here in `mod.rs`; `driver.rs` is the task that owns every live
//! run; `forward.rs` the lease terms and the requests forwarded to their holder;
//! `admission.rs` the queue order and concurrency slots; `ids.rs` the run ids.

pub mod definition;
pub mod demo;
pub mod execute;
pub mod run;

mod admission;
mod driver;
mod forward;
mod ids;

use crate::source::forward::SharedForwarding;
use crate::source::{
    Command, CommandError, CommandOutcome, Engine, LeaseKeeper, SharedRecall, SharedSink,
    StartRequest,
};
use app::model::Capabilities;
use async_trait::async_trait;
use definition::Definition;
use driver::Message;
use forward::Request;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

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

/// The lease under which one instance at a time drives the engine's runs.
pub const LEASE: &str = "engine:builtin";

/// The handle on the running engine; cheap to clone. The engine drives its runs on the
/// instance that holds its lease; every instance takes starts and commands, and one that
/// does not hold the lease forwards them to the one that does (`forward.rs`).
#[derive(Clone)]
pub struct BuiltinEngine {
    /// The driver of this instance's lease term, while it holds the lease.
    driver: watch::Receiver<Option<mpsc::Sender<Message>>>,
    definitions: Arc<HashMap<String, Arc<Definition>>>,
    forwarding: SharedForwarding,
}

impl BuiltinEngine {
    /// Starts the engine over `definitions`. Whenever this instance holds `lease`, it
    /// picks up every run the store holds open (as after a restart: a step that was
    /// running runs again) and drives them until the lease is lost.
    pub fn start(
        recall: SharedRecall,
        sink: SharedSink,
        forwarding: SharedForwarding,
        definitions: Vec<Definition>,
        limits: Limits,
        lease: LeaseKeeper,
    ) -> Self {
        let definitions: Arc<HashMap<String, Arc<Definition>>> = Arc::new(
            definitions
                .into_iter()
                .map(|d| (d.workflow_type.clone(), Arc::new(d)))
                .collect(),
        );
        let (driver_tx, driver) = watch::channel(None);
        tokio::spawn(forward::lead(
            forward::Lead {
                definitions: definitions.clone(),
                limits,
                recall,
                sink,
                forwarding: forwarding.clone(),
            },
            lease,
            driver_tx,
        ));
        Self {
            driver,
            definitions,
            forwarding,
        }
    }

    /// The workflow types this engine can start.
    pub fn workflow_types(&self) -> Vec<String> {
        let mut types: Vec<String> = self.definitions.keys().cloned().collect();
        types.sort();
        types
    }

    /// This instance's driver, while it holds the lease.
    fn driver(&self) -> Option<mpsc::Sender<Message>> {
        self.driver.borrow().clone()
    }

    /// Waits until this instance drives the engine's runs (tests and benchmarks that
    /// start one instance and measure the engine itself).
    pub async fn driving(&self) {
        let mut driver = self.driver.clone();
        // Fails only once the engine has stopped for good.
        let _ = driver.wait_for(Option::is_some).await;
    }

    /// Does `request` here, or has the instance holding the lease do it.
    async fn perform(&self, request: Request) -> Result<CommandOutcome, CommandError> {
        match self.driver() {
            Some(inbox) => forward::locally(&inbox, request).await,
            None => forward::remotely(&self.forwarding, &request).await,
        }
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
        self.perform(Request::Start { request }).await
    }

    /// Shutdown: the driver stores what happened so far and, on each running step, that
    /// the server stopped under it (the attempt runs again when the engine resumes), then
    /// stops. How many steps were running; `None` when this instance does not drive the
    /// runs.
    pub async fn stop(&self) -> Option<usize> {
        let inbox = self.driver()?;
        forward::ask(&inbox, Message::Stop).await.ok()
    }

    /// How many runs are where, per type; only on the instance that drives them.
    pub async fn census(&self) -> Result<Census, CommandError> {
        let inbox = self.driver().ok_or_else(|| {
            CommandError::Unavailable(
                "another instance of Stepline drives the built-in engine's runs".into(),
            )
        })?;
        forward::ask(&inbox, Message::Census).await
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
        self.perform(Request::Command {
            workflow_id: workflow_id.to_owned(),
            command,
        })
        .await
    }

    fn starts_runs(&self) -> bool {
        true
    }

    async fn start(&self, request: StartRequest) -> Result<CommandOutcome, CommandError> {
        self.start_workflow(request).await
    }
}
