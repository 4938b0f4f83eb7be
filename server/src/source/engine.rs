//! What every engine offers Stepline: its id, the commands it takes and what it did with
//! them, and the registry the HTTP layer looks engines up in by the id stored on a run.

use app::model::{Priority, WorkflowStatus};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// How a run is started: the start API's fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StartRequest {
    pub workflow_type: String,
    pub input: Value,
    pub priority: Option<Priority>,
    pub triggered_by: Option<String>,
    pub trigger_type: Option<String>,
    pub tags: Vec<String>,
}

/// What an operator asks an engine to do to one of its runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Pause,
    Resume,
    Cancel {
        reason: Option<String>,
    },
    /// Run again from the start (`None`) or from a step.
    Retry {
        from_step: Option<u32>,
    },
    /// Start a new run with the same type and input.
    Clone {
        triggered_by: Option<String>,
    },
    /// Stop at once; nothing is rolled back.
    Terminate {
        reason: Option<String>,
    },
}

/// What an engine did with a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutcome {
    /// The run the outcome is about (the new run, for a clone).
    pub workflow_id: String,
    pub new_status: WorkflowStatus,
    /// What happened, in the operator's words ("paused after step 7 completes").
    pub message: String,
}

/// Why an engine did not do a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum CommandError {
    /// The run's state does not allow it (HTTP 409).
    #[error("{0}")]
    Refused(String),
    #[error("the engine does not know workflow {0:?}")]
    UnknownWorkflow(String),
    /// The engine cannot be reached now (HTTP 503).
    #[error("{0}")]
    Unavailable(String),
}

/// An engine Stepline can send commands to.
#[async_trait]
pub trait Engine: Send + Sync {
    /// The id stored on the runs it reports (`builtin`, `temporal:prod`, ...).
    fn id(&self) -> &str;

    /// Does `command` to run `workflow_id`, asked by `requested_by` (an account's login or
    /// `token:<name>`, for engines that record who asked).
    async fn command(
        &self,
        workflow_id: &str,
        command: Command,
        requested_by: &str,
    ) -> Result<CommandOutcome, CommandError>;

    /// Someone opened run `workflow_id`'s page or detail: an engine that reads some facts
    /// only on demand (Airflow's logs and return values of successful tries, read at a
    /// budgeted pace) reads that run's now. Answers at once; what it reads arrives as
    /// events.
    fn opened(&self, _workflow_id: &str) {}

    /// Whether runs can be started through it (the start API picks such an engine).
    fn starts_runs(&self) -> bool {
        false
    }

    /// Starts a run; most engines are started from their own side and refuse.
    async fn start(&self, request: StartRequest) -> Result<CommandOutcome, CommandError> {
        Err(CommandError::Refused(format!(
            "engine {} does not start runs from Stepline (asked for {:?})",
            self.id(),
            request.workflow_type
        )))
    }
}

/// The engines that accept commands, by id; shared by every clone, and changed while
/// serving when an admin declares or removes a pushing source.
#[derive(Clone, Default)]
pub struct Engines {
    by_id: Arc<RwLock<HashMap<String, Arc<dyn Engine>>>>,
}

impl Engines {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<dyn Engine>>> {
        // Every change is a single insert or remove: a poisoned lock is still consistent.
        self.by_id
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn add(&self, engine: Arc<dyn Engine>) {
        self.by_id
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(engine.id().to_owned(), engine);
    }

    pub fn remove(&self, id: &str) {
        self.by_id
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(id);
    }

    pub fn get(&self, id: &str) -> Option<Arc<dyn Engine>> {
        self.read().get(id).cloned()
    }

    /// Tells `engine` that its run `workflow_id` was opened (see [`Engine::opened`]).
    pub fn opened(&self, engine: &str, workflow_id: &str) {
        if let Some(engine) = self.read().get(engine) {
            engine.opened(workflow_id);
        }
    }

    /// The engine the start API starts runs on, if one is running.
    pub fn starter(&self) -> Option<Arc<dyn Engine>> {
        let engines = self.read();
        let mut starters = engines.values().filter(|engine| engine.starts_runs());
        // Ids are unique; with several starters the lowest id wins, whatever the order.
        let first = starters.next()?;
        Some(
            starters
                .fold(first, |best, e| if e.id() < best.id() { e } else { best })
                .clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine that knows no run; it starts runs or, as Temporal does, only follows
    /// runs started on its own side.
    struct Idle {
        id: &'static str,
        starts_runs: bool,
    }

    fn followed_only(id: &'static str) -> Idle {
        Idle {
            id,
            starts_runs: false,
        }
    }

    fn starting(id: &'static str) -> Idle {
        Idle {
            id,
            starts_runs: true,
        }
    }

    #[async_trait]
    impl Engine for Idle {
        fn id(&self) -> &str {
            self.id
        }

        async fn command(
            &self,
            id: &str,
            _: Command,
            _: &str,
        ) -> Result<CommandOutcome, CommandError> {
            Err(CommandError::UnknownWorkflow(id.to_owned()))
        }

        fn starts_runs(&self) -> bool {
            self.starts_runs
        }
    }

    #[tokio::test]
    async fn an_engine_that_does_not_start_runs_refuses_saying_which_it_is() {
        let refused = followed_only("temporal:prod")
            .start(StartRequest {
                workflow_type: "order".into(),
                ..StartRequest::default()
            })
            .await;
        let Err(CommandError::Refused(message)) = refused else {
            panic!("refused: {refused:?}");
        };
        assert!(message.contains("temporal:prod") && message.contains("\"order\""));
    }

    #[test]
    fn the_start_api_picks_the_engine_that_starts_runs_whatever_the_order() {
        let engines = Engines::default();
        assert!(engines.starter().is_none());
        engines.add(Arc::new(followed_only("temporal:a")));
        assert!(engines.starter().is_none());
        engines.add(Arc::new(starting("zeta")));
        engines.add(Arc::new(starting("builtin")));
        engines.add(Arc::new(followed_only("temporal:b")));
        assert_eq!(
            engines.starter().map(|e| e.id().to_owned()),
            Some("builtin".into())
        );
    }
}
