//! Operators' commands on the source's runs: pause, resume, cancel and terminate as
//! Temporal's own workflow commands; retry as a reset; clone as a new execution.

use super::{Inner, TemporalSource};
use crate::engines::temporal::client::ClientError;
use crate::engines::temporal::history::HistoryMapper;
use crate::engines::temporal::parse_engine_ref;
use crate::source::{Command, CommandError, CommandOutcome, Engine};
use app::model::WorkflowStatus;
use async_trait::async_trait;
use serde_json::Value;

#[async_trait]
impl Engine for TemporalSource {
    fn id(&self) -> &str {
        &self.inner.engine_id
    }

    async fn command(
        &self,
        workflow_id: &str,
        command: Command,
        _requested_by: &str,
    ) -> Result<CommandOutcome, CommandError> {
        let inner = &self.inner;
        let (temporal_id, run_id) = inner.temporal_ids(workflow_id).await?;
        match command {
            Command::Pause if !inner.capabilities().can_pause => Err(CommandError::Refused(
                "this Temporal server has workflow pause turned off (frontend.WorkflowPauseEnabled)"
                    .into(),
            )),
            Command::Pause => {
                self.workflow_command(workflow_id, "pause", None, WorkflowStatus::Paused,
                    "Paused in Temporal: running activities finish, no new step starts until resumed")
                    .await
            }
            Command::Resume => {
                self.workflow_command(workflow_id, "unpause", None, WorkflowStatus::Running,
                    "Resumed in Temporal")
                    .await
            }
            Command::Cancel { reason } => {
                self.workflow_command(workflow_id, "cancel", reason, WorkflowStatus::Cancelling,
                    "Cancellation requested: the workflow's own code decides what to roll back; its compensations show as they run")
                    .await
            }
            Command::Terminate { reason } => {
                self.workflow_command(workflow_id, "terminate", reason, WorkflowStatus::Terminated,
                    "Terminated in Temporal: stopped at once, nothing rolled back")
                    .await
            }
            Command::Retry { from_step } => {
                let history = self.full_history(&temporal_id, &run_id).await?;
                let mut mapper = HistoryMapper::resuming(
                    workflow_id,
                    inner.config.compensation.clone(),
                    u64::MAX,
                );
                mapper
                    .map(&history)
                    .map_err(|e| CommandError::Unavailable(e.to_string()))?;
                let event = mapper.reset_point(from_step).ok_or_else(|| {
                    CommandError::Refused(match from_step {
                        Some(step) => format!("step {step} is not an activity this run scheduled: Temporal can only reset to the workflow task that scheduled it"),
                        None => "this run has no completed workflow task to reset to".into(),
                    })
                })?;
                let reason = match from_step {
                    Some(step) => format!("retry from step {step}, from Stepline"),
                    None => "retry from the start, from Stepline".into(),
                };
                let new_run = inner
                    .client
                    .reset(&temporal_id, &run_id, event, &reason)
                    .await
                    .map_err(command_error)?;
                let new_id = inner.config.workflow_id(&temporal_id, &new_run);
                inner.started_from(&new_id, format!("retry of {workflow_id}"));
                inner.remember(&new_id, &temporal_id, &new_run);
                self.follow(new_id.clone(), temporal_id, new_run, 0, &[]);
                Ok(CommandOutcome {
                    workflow_id: new_id.clone(),
                    new_status: WorkflowStatus::Running,
                    message: format!(
                        "Temporal reset the run to event {event}: the retry is the new run {new_id}"
                    ),
                })
            }
            Command::Clone { .. } => {
                let history = self.full_history(&temporal_id, &run_id).await?;
                let started = history
                    .first()
                    .and_then(|e| e.get("workflowExecutionStartedEventAttributes"))
                    .ok_or_else(|| {
                        CommandError::Unavailable("the run's history has no start".into())
                    })?;
                let text = |pointer: &str| {
                    started
                        .pointer(pointer)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                let workflow_type = text("/workflowType/name")
                    .ok_or_else(|| CommandError::Unavailable("the run's type is unknown".into()))?;
                let task_queue = text("/taskQueue/name").ok_or_else(|| {
                    CommandError::Unavailable("the run's task queue is unknown".into())
                })?;
                let new_temporal_id = format!(
                    "{}-clone-{}",
                    temporal_id.chars().take(100).collect::<String>(),
                    chrono::Utc::now().timestamp_millis()
                );
                let new_run = inner
                    .client
                    .start(
                        &new_temporal_id,
                        &workflow_type,
                        &task_queue,
                        started.get("input").cloned(),
                    )
                    .await
                    .map_err(command_error)?;
                let new_id = inner.config.workflow_id(&new_temporal_id, &new_run);
                inner.started_from(&new_id, format!("clone of {workflow_id}"));
                inner.remember(&new_id, &new_temporal_id, &new_run);
                self.follow(new_id.clone(), new_temporal_id, new_run, 0, &[]);
                Ok(CommandOutcome {
                    workflow_id: new_id.clone(),
                    new_status: WorkflowStatus::Running,
                    message: format!("Started {new_id}: same type, task queue and input"),
                })
            }
        }
    }
}

impl TemporalSource {
    /// One of Temporal's own workflow commands (`pause`, `unpause`, `cancel`,
    /// `terminate`) on run `id`; `status` and `message` say what follows.
    async fn workflow_command(
        &self,
        id: &str,
        command: &str,
        reason: Option<String>,
        status: WorkflowStatus,
        message: &str,
    ) -> Result<CommandOutcome, CommandError> {
        let (temporal_id, run_id) = self.inner.temporal_ids(id).await?;
        let reason = reason.unwrap_or_else(|| format!("{command} from Stepline"));
        self.inner
            .client
            .workflow_command(&temporal_id, &run_id, command, &reason)
            .await
            .map_err(command_error)?;
        Ok(CommandOutcome {
            workflow_id: id.to_owned(),
            new_status: status,
            message: message.to_owned(),
        })
    }

    /// A run's whole history (for a reset point or a clone's input).
    async fn full_history(
        &self,
        workflow_id: &str,
        run_id: &str,
    ) -> Result<Vec<Value>, CommandError> {
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .inner
                .client
                .history(workflow_id, run_id, token.as_deref(), false)
                .await
                .map_err(command_error)?;
            let empty = page.events.is_empty();
            events.extend(page.events);
            match page.next_page_token {
                // A running workflow's history always has a next token: stop at its end.
                Some(next) if !empty => token = Some(next),
                _ => return Ok(events),
            }
        }
    }
}

impl Inner {
    /// Notes that Stepline started run `id` from another (see `origins`).
    fn started_from(&self, id: &str, origin: String) {
        self.origins
            .lock()
            .expect("not poisoned")
            .insert(id.to_owned(), origin);
    }

    /// Run `id`'s ids in Temporal: as learnt while following, else as stored (another
    /// instance follows the namespace).
    async fn temporal_ids(&self, id: &str) -> Result<(String, String), CommandError> {
        let known = self.runs.lock().expect("not poisoned").get(id).cloned();
        if let Some(ids) = known {
            return Ok(ids);
        }
        let run = self
            .recall
            .run(id)
            .await
            .map_err(|e| CommandError::Unavailable(e.to_string()))?;
        let ids = run
            .filter(|run| run.engine == self.engine_id)
            .and_then(|run| run.engine_ref)
            .and_then(|reference| parse_engine_ref(&reference))
            .ok_or_else(|| CommandError::UnknownWorkflow(id.to_owned()))?;
        self.runs
            .lock()
            .expect("not poisoned")
            .insert(id.to_owned(), ids.clone());
        Ok(ids)
    }
}

/// A failed call as the operator sees it: Temporal's refusal (409) or its absence (503).
fn command_error(error: ClientError) -> CommandError {
    match error {
        ClientError::Refused { status, message } if (400..500).contains(&status) => {
            CommandError::Refused(format!("Temporal refused: {message}"))
        }
        ClientError::Refused {
            status: 501,
            message,
        } => CommandError::Refused(format!("Temporal does not support this: {message}")),
        other => CommandError::Unavailable(format!("Temporal is unavailable: {other}")),
    }
}
