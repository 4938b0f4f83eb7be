//! The read model's write transaction: everything the projector (the single writer)
//! changes for one batch, committed together or not at all.

use super::rows::{LogRow, StepRow, WorkflowRow};
use super::{json_text, load_steps, load_workflow, Store, StoreError};
use sqlx::{QueryBuilder, Sqlite, Transaction};
use std::collections::BTreeMap;

/// The most log text a step keeps, in bytes: past it, its oldest lines are dropped (a
/// step that logs forever costs a bounded share of the file, and its detail stays quick).
pub const LOG_BYTES_PER_STEP: i64 = 1 << 20;

/// An open write transaction; dropped without [`Writer::commit`], it changes nothing.
pub struct Writer {
    pub(super) tx: Transaction<'static, Sqlite>,
}

impl Store {
    /// Opens the write transaction of one batch.
    pub async fn begin(&self) -> Result<Writer, StoreError> {
        Ok(Writer {
            tx: self.write_transaction().await?,
        })
    }
}

impl Writer {
    /// One workflow row as this transaction sees it.
    pub async fn workflow(&mut self, id: &str) -> Result<Option<WorkflowRow>, StoreError> {
        load_workflow(&mut self.tx, id).await
    }

    /// A workflow's steps in step order, as this transaction sees them.
    pub async fn steps(&mut self, id: &str) -> Result<Vec<StepRow>, StoreError> {
        load_steps(&mut self.tx, id).await
    }

    /// Writes a workflow row (insert or update).
    pub async fn save_workflow(&mut self, row: &WorkflowRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO workflows (
                 id, engine, workflow_type, status, status_reason, definition_name,
                 definition_version, declared_steps, completed_steps, total_steps,
                 sla_target_seconds, sla_status, triggered_by, trigger_type, priority, tags,
                 input, capabilities, created_ms, started_ms, completed_ms, updated_ms, engine_ref)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET
                 status = excluded.status,
                 status_reason = excluded.status_reason,
                 declared_steps = excluded.declared_steps,
                 completed_steps = excluded.completed_steps,
                 total_steps = excluded.total_steps,
                 sla_status = excluded.sla_status,
                 started_ms = excluded.started_ms,
                 completed_ms = excluded.completed_ms,
                 updated_ms = excluded.updated_ms",
        )
        .bind(&row.id)
        .bind(&row.engine)
        .bind(&row.workflow_type)
        .bind(row.status.as_str())
        .bind(&row.status_reason)
        .bind(&row.definition_name)
        .bind(&row.definition_version)
        .bind(row.declared_steps.map(i64::from))
        .bind(i64::from(row.completed_steps))
        .bind(i64::from(row.total_steps))
        .bind(row.sla_target_seconds)
        .bind(row.sla_status.as_str())
        .bind(&row.triggered_by)
        .bind(&row.trigger_type)
        .bind(row.priority.as_str())
        .bind(json_text(&row.tags))
        .bind(row.input.as_ref().map(json_text))
        .bind(json_text(&row.capabilities))
        .bind(row.created_ms)
        .bind(row.started_ms)
        .bind(row.completed_ms)
        .bind(row.updated_ms)
        .bind(&row.engine_ref)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Writes a step row (insert or update).
    pub async fn save_step(&mut self, workflow_id: &str, step: &StepRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO steps (
                 workflow_id, step_number, name, status, kind, branch, compensates, started_ms,
                 completed_ms, input, output, error, retry_count, attempts, retry_policy)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (workflow_id, step_number) DO UPDATE SET
                 name = excluded.name,
                 status = excluded.status,
                 kind = excluded.kind,
                 branch = excluded.branch,
                 compensates = excluded.compensates,
                 started_ms = excluded.started_ms,
                 completed_ms = excluded.completed_ms,
                 input = excluded.input,
                 output = excluded.output,
                 error = excluded.error,
                 retry_count = excluded.retry_count,
                 attempts = excluded.attempts,
                 retry_policy = excluded.retry_policy",
        )
        .bind(workflow_id)
        .bind(i64::from(step.step_number))
        .bind(&step.name)
        .bind(step.status.as_str())
        .bind(step.kind.as_str())
        .bind(&step.branch)
        .bind(step.compensates.map(i64::from))
        .bind(step.started_ms)
        .bind(step.completed_ms)
        .bind(step.input.as_ref().map(json_text))
        .bind(step.output.as_ref().map(json_text))
        .bind(&step.error)
        .bind(i64::from(step.retry_count()))
        .bind(json_text(&step.attempts))
        .bind(step.retry_policy.as_ref().map(json_text))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records where `engine` got to in its source for `key` (with the events it led to).
    pub async fn save_position(
        &mut self,
        engine: &str,
        key: &str,
        position: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO engine_positions (engine, key, position) VALUES (?, ?, ?)
             ON CONFLICT (engine, key) DO UPDATE SET position = excluded.position",
        )
        .bind(engine)
        .bind(key)
        .bind(position)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Appends log lines of a workflow's steps. A step whose lines come to more than
    /// [`LOG_BYTES_PER_STEP`] loses its oldest ones (down to three quarters of it, so
    /// that trimming is rare), counted in the step's `logs_dropped`.
    pub async fn append_logs(
        &mut self,
        workflow_id: &str,
        logs: &[LogRow],
    ) -> Result<(), StoreError> {
        self.insert_logs(workflow_id, logs).await?;
        let mut added: BTreeMap<u32, i64> = BTreeMap::new();
        for log in logs {
            *added.entry(log.step_number).or_default() +=
                i64::try_from(log.line.len()).unwrap_or(i64::MAX);
        }
        for (step_number, bytes) in added {
            let stored: Option<i64> = sqlx::query_scalar(
                "UPDATE steps SET log_bytes = log_bytes + ? WHERE workflow_id = ? AND step_number = ?
                 RETURNING log_bytes",
            )
            .bind(bytes)
            .bind(workflow_id)
            .bind(i64::from(step_number))
            .fetch_optional(&mut *self.tx)
            .await?;
            if let Some(stored) = stored.filter(|stored| *stored > LOG_BYTES_PER_STEP) {
                self.drop_oldest_logs(
                    workflow_id,
                    step_number,
                    stored - LOG_BYTES_PER_STEP * 3 / 4,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Deletes a step's oldest log lines until at least `bytes` are gone.
    async fn drop_oldest_logs(
        &mut self,
        workflow_id: &str,
        step_number: u32,
        bytes: i64,
    ) -> Result<(), StoreError> {
        let dropped: Vec<i64> = sqlx::query_scalar(
            "DELETE FROM step_logs WHERE workflow_id = ?1 AND step_number = ?2 AND id <= (
                 SELECT id FROM (
                     SELECT id, SUM(length(CAST(line AS BLOB))) OVER (ORDER BY id) AS upto
                     FROM step_logs WHERE workflow_id = ?1 AND step_number = ?2
                 ) WHERE upto >= ?3 ORDER BY id LIMIT 1)
             RETURNING length(CAST(line AS BLOB))",
        )
        .bind(workflow_id)
        .bind(i64::from(step_number))
        .bind(bytes)
        .fetch_all(&mut *self.tx)
        .await?;
        sqlx::query(
            "UPDATE steps SET log_bytes = log_bytes - ?, logs_dropped = logs_dropped + ?
             WHERE workflow_id = ? AND step_number = ?",
        )
        .bind(dropped.iter().sum::<i64>())
        .bind(i64::try_from(dropped.len()).unwrap_or(i64::MAX))
        .bind(workflow_id)
        .bind(i64::from(step_number))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn insert_logs(&mut self, workflow_id: &str, logs: &[LogRow]) -> Result<(), StoreError> {
        // SQLite allows 32766 bound values per statement; 4 per line.
        for chunk in logs.chunks(1000) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO step_logs (workflow_id, step_number, at_ms, line) ",
            );
            insert.push_values(chunk, |mut values, log| {
                values
                    .push_bind(workflow_id)
                    .push_bind(i64::from(log.step_number))
                    .push_bind(log.at_ms)
                    .push_bind(&log.line);
            });
            insert.build().execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Makes everything written durable.
    pub async fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit().await?)
    }
}
