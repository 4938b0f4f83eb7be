//! The store's side of [`Recall`]: engines read their runs back as snapshots made from
//! the rows here, so no engine sees a row type.

use super::rows::{AttemptRecord, StepRow, WorkflowRow};
use super::{Store, StoreError};
use crate::source::{AttemptSnapshot, Recall, RecallError, RunSnapshot, StepSnapshot};
use async_trait::async_trait;
use std::collections::HashMap;

impl From<StoreError> for RecallError {
    fn from(error: StoreError) -> Self {
        Self(Box::new(error))
    }
}

fn snapshot(row: WorkflowRow, steps: Vec<StepRow>) -> RunSnapshot {
    RunSnapshot {
        id: row.id,
        engine: row.engine,
        workflow_type: row.workflow_type,
        engine_ref: row.engine_ref,
        status: row.status,
        status_reason: row.status_reason,
        priority: row.priority,
        input: row.input,
        created_ms: row.created_ms,
        total_steps: row.total_steps,
        steps: steps.into_iter().map(step_snapshot).collect(),
    }
}

fn step_snapshot(step: StepRow) -> StepSnapshot {
    StepSnapshot {
        step_number: step.step_number,
        name: step.name,
        kind: step.kind,
        compensates: step.compensates,
        status: step.status,
        error: step.error,
        completed_ms: step.completed_ms,
        attempts: step.attempts.into_iter().map(attempt_snapshot).collect(),
    }
}

fn attempt_snapshot(attempt: AttemptRecord) -> AttemptSnapshot {
    AttemptSnapshot {
        attempt: attempt.attempt,
        status: attempt.status,
        completed_ms: attempt.completed_ms,
        error: attempt.error,
    }
}

#[async_trait]
impl Recall for Store {
    async fn open_runs(&self, engine: &str) -> Result<Vec<RunSnapshot>, RecallError> {
        let runs = self.open_run_rows(engine).await?;
        Ok(runs
            .into_iter()
            .map(|(row, steps)| snapshot(row, steps))
            .collect())
    }

    async fn run(&self, id: &str) -> Result<Option<RunSnapshot>, RecallError> {
        let Some(row) = self.workflow_row(id).await? else {
            return Ok(None);
        };
        let steps = self.steps_of(id).await?;
        Ok(Some(snapshot(row, steps)))
    }

    async fn positions(&self, engine: &str) -> Result<HashMap<String, String>, RecallError> {
        Ok(self.engine_positions(engine).await?)
    }

    async fn longest_completed_runs(
        &self,
        engine: &str,
    ) -> Result<HashMap<String, u32>, RecallError> {
        Ok(self.longest_completed_run_steps(engine).await?)
    }
}
