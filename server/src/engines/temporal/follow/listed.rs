//! Runs Temporal lists but whose history its HTTP API cannot address: a workflow id
//! holding `/` (the API's routes split on it, however it is encoded). Such a run is
//! shown from what the listing says (type, start, status, end) with the reason its
//! steps are missing, and watched through the listing until it closes.

use super::position::Position;
use super::{Inner, TemporalSource};
use crate::engines::temporal::client::Execution;
use crate::engines::temporal::{engine_ref, quoted};
use crate::source::{Change, SourceEvent, WorkflowStart};
use app::model::{Capabilities, LiveMode, WorkflowStatus};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

/// Why such a run shows no steps, on the run itself.
pub const UNREADABLE: &str = "Temporal's HTTP API cannot address a workflow id that \
contains '/': this run is shown from Temporal's listing (its status, start and end); its \
steps cannot be read and it cannot be acted on from here (Temporal's own UI or CLI can)";

/// How often the listing is asked about an open run of this kind: rare runs, and a
/// status seen a few seconds late is all they can have.
const LISTED_EVERY: Duration = Duration::from_secs(2);

/// Whether Temporal's HTTP API can address the run's history and commands.
pub fn addressable(workflow_id: &str) -> bool {
    !workflow_id.contains('/')
}

/// Nothing can be done to such a run through the HTTP API.
fn capabilities() -> Capabilities {
    Capabilities {
        live: LiveMode::Poll,
        ..Capabilities::default()
    }
}

/// The run status a listing's `WORKFLOW_EXECUTION_STATUS_...` stands for.
fn listed_status(status: &str) -> WorkflowStatus {
    match status.trim_start_matches("WORKFLOW_EXECUTION_STATUS_") {
        "COMPLETED" | "CONTINUED_AS_NEW" => WorkflowStatus::Completed,
        "FAILED" => WorkflowStatus::Failed,
        "CANCELED" => WorkflowStatus::Cancelled,
        "TERMINATED" => WorkflowStatus::Terminated,
        "TIMED_OUT" => WorkflowStatus::TimedOut,
        "PAUSED" => WorkflowStatus::Paused,
        _ => WorkflowStatus::Running,
    }
}

fn instant(text: Option<&str>) -> Option<DateTime<Utc>> {
    text.and_then(|t| t.parse().ok())
}

impl TemporalSource {
    /// Shows a run known only from the listing (`stored`: the status already stored, if
    /// any), then asks the listing about it until it closes.
    pub(super) fn watch_listed(
        &self,
        id: String,
        (workflow_id, run_id): (String, String),
        listed: Option<Execution>,
        stored: Option<WorkflowStatus>,
    ) {
        let inner = self.inner.clone();
        self.inner.spawn_following(id.clone(), async move {
            watch(&inner, &id, (&workflow_id, &run_id), listed, stored).await;
        });
    }
}

async fn watch(
    inner: &Arc<Inner>,
    id: &str,
    (workflow_id, run_id): (&str, &str),
    mut next: Option<Execution>,
    mut stored: Option<WorkflowStatus>,
) {
    let query = format!(
        "WorkflowId = {} AND RunId = {}",
        quoted(workflow_id),
        quoted(run_id)
    );
    let mut tick = tokio::time::interval(LISTED_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let execution = match next.take() {
            Some(execution) => execution,
            None => {
                tick.tick().await;
                match inner.client.list(&query, None).await {
                    Ok((found, _)) => match found.into_iter().next() {
                        Some(execution) => execution,
                        None => {
                            tracing::warn!(run = %id, "Temporal no longer lists this run (retention); stopped watching");
                            return;
                        }
                    },
                    Err(error) => {
                        inner.degraded(&error);
                        continue;
                    }
                }
            }
        };
        inner.healthy();
        let status = listed_status(&execution.status);
        let started = instant(execution.start_time.as_deref()).unwrap_or_else(Utc::now);
        let mut events = Vec::new();
        if stored.is_none() {
            events.push(SourceEvent {
                workflow_id: id.to_owned(),
                at: started,
                change: Change::WorkflowStarted(WorkflowStart {
                    workflow_type: execution.workflow_type.clone(),
                    engine_ref: Some(engine_ref(workflow_id, run_id)),
                    status: Some(WorkflowStatus::Running),
                    definition_name: None,
                    definition_version: None,
                    total_steps: None,
                    sla_target_seconds: None,
                    triggered_by: None,
                    trigger_type: Some("temporal".to_owned()),
                    priority: None,
                    tags: Vec::new(),
                    input: None,
                    steps: Vec::new(),
                }),
            });
        }
        if stored != Some(status) {
            let at = instant(execution.close_time.as_deref()).unwrap_or(started);
            events.push(SourceEvent {
                workflow_id: id.to_owned(),
                at: at.max(started),
                change: Change::WorkflowStatusChanged {
                    status,
                    reason: Some(UNREADABLE.to_owned()),
                },
            });
        }
        let closed = status.is_terminal();
        if !events.is_empty() {
            let position = Position {
                workflow_id: workflow_id.to_owned(),
                run_id: run_id.to_owned(),
                event_id: 0,
                closed,
                attempts: Vec::new(),
                listed_only: true,
            }
            .stored_for(id);
            if !inner.commit_as(events, position, capabilities()).await {
                return;
            }
            stored = Some(status);
        }
        if closed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ids_without_a_slash_are_addressable() {
        assert!(addressable("order-7:eu"));
        assert!(!addressable("orders/7"));
    }

    #[test]
    fn listing_statuses_map_onto_run_statuses() {
        for (listed, status) in [
            ("WORKFLOW_EXECUTION_STATUS_RUNNING", WorkflowStatus::Running),
            (
                "WORKFLOW_EXECUTION_STATUS_COMPLETED",
                WorkflowStatus::Completed,
            ),
            (
                "WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW",
                WorkflowStatus::Completed,
            ),
            ("WORKFLOW_EXECUTION_STATUS_FAILED", WorkflowStatus::Failed),
            (
                "WORKFLOW_EXECUTION_STATUS_CANCELED",
                WorkflowStatus::Cancelled,
            ),
            (
                "WORKFLOW_EXECUTION_STATUS_TERMINATED",
                WorkflowStatus::Terminated,
            ),
            (
                "WORKFLOW_EXECUTION_STATUS_TIMED_OUT",
                WorkflowStatus::TimedOut,
            ),
            ("WORKFLOW_EXECUTION_STATUS_PAUSED", WorkflowStatus::Paused),
        ] {
            assert_eq!(listed_status(listed), status, "{listed}");
        }
    }
}
