//! The read model's write transaction: everything the projector (the single writer)
//! changes for one batch, committed together or not at all.

use super::rows::{LogRow, StepRow, WorkflowRow};
use super::{json_text, with_their_steps, OwnedStep, Store, StoreError, WriteTransaction};
use sqlx::QueryBuilder;
use std::collections::{BTreeMap, HashMap};

/// The most log text a step keeps, in bytes: past it, its oldest lines are dropped (a
/// step that logs forever costs a bounded share of the file, and its detail stays quick).
pub const LOG_BYTES_PER_STEP: i64 = 1 << 20;

/// The most rows one upsert writes. Statements come in power-of-two sizes up to it (see
/// [`power_of_two_chunks`]), and its 23 bound values a workflow row stay far below
/// SQLite's 32,766 a statement.
const ROWS_PER_STATEMENT: usize = 256;

/// Splits `items` into chunks whose lengths are powers of two, the largest first and none
/// over `largest`: a batch of any size is written by one of a few statement texts
/// (9 for 256), which the connection keeps prepared, instead of one text per size.
fn power_of_two_chunks<T>(mut items: &[T], largest: usize) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if items.is_empty() {
            return None;
        }
        let take = items.len().min(largest);
        let take = 1 << take.ilog2();
        let (chunk, rest) = items.split_at(take);
        items = rest;
        Some(chunk)
    })
}

/// An open write transaction; dropped without [`Writer::commit`], it changes nothing.
pub struct Writer {
    pub(super) tx: WriteTransaction,
    stats: std::sync::Arc<super::StatsKept>,
    /// The alerts file as it was when the transaction began.
    pub(super) alerting: crate::alerts::settings::SharedSettings,
}

impl Store {
    /// Opens the write transaction of one batch.
    pub async fn begin(&self) -> Result<Writer, StoreError> {
        Ok(Writer {
            tx: self.write_transaction().await?,
            stats: self.stats.clone(),
            alerting: self.alert_settings(),
        })
    }
}

impl Writer {
    /// The runs among `ids` that exist, each with its steps in step order, as this
    /// transaction sees them: two statements however many runs a batch touches.
    pub async fn runs(
        &mut self,
        ids: &[&str],
    ) -> Result<HashMap<String, (WorkflowRow, Vec<StepRow>)>, StoreError> {
        // An id with a NUL is no stored run's (a run is started under a valid id), and
        // PostgreSQL takes no NUL in text: such an id is not asked for.
        let ids: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| !id.contains('\0'))
            .collect();
        let ids = json_text(&ids);
        let listed = self.tx.dialect().pick(
            "SELECT value FROM json_each($1)",
            "SELECT jsonb_array_elements_text(CAST($1 AS jsonb))",
        );
        let runs = format!("SELECT * FROM workflows WHERE id IN ({listed})");
        let rows: Vec<WorkflowRow> = on_backend!(&mut self.tx, tx => {
            sqlx::query_as(&runs).bind(&ids).fetch_all(&mut **tx).await?
        });
        if rows.is_empty() {
            return Ok(HashMap::new());
        }
        let steps = format!(
            "SELECT workflow_id AS owner, * FROM steps WHERE workflow_id IN ({listed})
             ORDER BY workflow_id, step_number"
        );
        let steps: Vec<OwnedStep> = on_backend!(&mut self.tx, tx => {
            sqlx::query_as(&steps).bind(&ids).fetch_all(&mut **tx).await?
        });
        Ok(with_their_steps(rows, steps)
            .into_iter()
            .map(|(row, steps)| (row.id.clone(), (row, steps)))
            .collect())
    }

    /// Writes workflow rows (inserts or updates), many to a statement.
    ///
    /// Each row of a statement is given a rowid above the last one, from the top down, the
    /// first row the highest: the text index keys each run by its rowid negated (newest
    /// first, see `store::search`), and FTS5 writes out what it holds in memory whenever a
    /// key is not above the one before. Numbered upwards, every new run would cost such a
    /// write; numbered downwards, a statement costs one. A row already stored keeps its
    /// rowid (the upsert updates it), which only leaves its number unused.
    pub async fn save_workflows(&mut self, rows: &[&WorkflowRow]) -> Result<(), StoreError> {
        for chunk in power_of_two_chunks(rows, ROWS_PER_STATEMENT) {
            on_backend!(&mut self.tx, tx => {
                let last: Option<i64> = sqlx::query_scalar("SELECT max(rowid) FROM workflows")
                    .fetch_one(&mut **tx)
                    .await?;
                let top = last.unwrap_or(0) + i64::try_from(chunk.len()).unwrap_or(i64::MAX);
                let rowids = (0..).map(|below| top - below);
                let mut upsert = QueryBuilder::new(
                    "INSERT INTO workflows (
                         rowid, id, engine, workflow_type, status, status_reason, definition_name,
                         definition_version, declared_steps, completed_steps, total_steps,
                         sla_target_seconds, sla_status, triggered_by, trigger_type, priority, tags,
                         input, capabilities, created_ms, started_ms, completed_ms, updated_ms,
                         engine_ref, forecast_runs, forecast_p50_ms, forecast_p90_ms,
                         forecast_breach) ",
                );
                upsert.push_values(chunk.iter().zip(rowids), |mut values, (row, rowid)| {
                    // Only a running run has a forecast.
                    let forecast = row
                        .forecast
                        .filter(|_| row.status == app::model::WorkflowStatus::Running);
                    values
                        .push_bind(rowid)
                        .push_bind(row.id.clone())
                        .push_bind(row.engine.clone())
                        .push_bind(row.workflow_type.clone())
                        .push_bind(row.status.as_str())
                        .push_bind(row.status_reason.clone())
                        .push_bind(row.definition_name.clone())
                        .push_bind(row.definition_version.clone())
                        .push_bind(row.declared_steps.map(i64::from))
                        .push_bind(i64::from(row.completed_steps))
                        .push_bind(i64::from(row.total_steps))
                        .push_bind(row.sla_target_seconds)
                        .push_bind(row.sla_status.as_str())
                        .push_bind(row.triggered_by.clone())
                        .push_bind(row.trigger_type.clone())
                        .push_bind(row.priority.as_str())
                        .push_bind(json_text(&row.tags))
                        .push_bind(row.input.as_ref().map(json_text))
                        .push_bind(json_text(&row.capabilities))
                        .push_bind(row.created_ms)
                        .push_bind(row.started_ms)
                        .push_bind(row.completed_ms)
                        .push_bind(row.updated_ms)
                        .push_bind(row.engine_ref.clone())
                        .push_bind(forecast.map(|f| i64::from(f.runs_seen)))
                        .push_bind(forecast.and_then(|f| f.expected_ms))
                        .push_bind(forecast.and_then(|f| f.likely_by_ms))
                        .push_bind(forecast.map_or(0, |f| f.breach.level()));
                });
                upsert.push(
                    " ON CONFLICT (id) DO UPDATE SET
                         status = excluded.status,
                         status_reason = excluded.status_reason,
                         declared_steps = excluded.declared_steps,
                         completed_steps = excluded.completed_steps,
                         total_steps = excluded.total_steps,
                         sla_status = excluded.sla_status,
                         started_ms = excluded.started_ms,
                         completed_ms = excluded.completed_ms,
                         updated_ms = excluded.updated_ms,
                         forecast_runs = excluded.forecast_runs,
                         forecast_p50_ms = excluded.forecast_p50_ms,
                         forecast_p90_ms = excluded.forecast_p90_ms,
                         forecast_breach = excluded.forecast_breach",
                );
                upsert.build().execute(&mut **tx).await?;
            });
        }
        Ok(())
    }

    /// Writes step rows, each with the id of its run (inserts or updates), many to a
    /// statement.
    pub async fn save_steps(&mut self, steps: &[(&str, &StepRow)]) -> Result<(), StoreError> {
        for chunk in power_of_two_chunks(steps, ROWS_PER_STATEMENT) {
            on_backend!(&mut self.tx, tx => {
                let mut upsert = QueryBuilder::new(
                    "INSERT INTO steps (
                         workflow_id, step_number, name, status, kind, branch, compensates,
                         started_ms, completed_ms, input, output, error, retry_count, attempts,
                         retry_policy, waiting) ",
                );
                upsert.push_values(chunk, |mut values, (workflow_id, step)| {
                    values
                        .push_bind(workflow_id.to_string())
                        .push_bind(i64::from(step.step_number))
                        .push_bind(step.name.clone())
                        .push_bind(step.status.as_str())
                        .push_bind(step.kind.as_str())
                        .push_bind(step.branch.clone())
                        .push_bind(step.compensates.map(i64::from))
                        .push_bind(step.started_ms)
                        .push_bind(step.completed_ms)
                        .push_bind(step.input.as_ref().map(json_text))
                        .push_bind(step.output.as_ref().map(json_text))
                        .push_bind(step.error.clone())
                        .push_bind(i64::from(step.retry_count()))
                        .push_bind(json_text(&step.attempts))
                        .push_bind(step.retry_policy.as_ref().map(json_text))
                        .push_bind(step.waiting.as_ref().map(json_text));
                });
                upsert.push(
                    " ON CONFLICT (workflow_id, step_number) DO UPDATE SET
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
                         retry_policy = excluded.retry_policy,
                         waiting = excluded.waiting",
                );
                upsert.build().execute(&mut **tx).await?;
            });
        }
        Ok(())
    }

    /// Records where `engine` got to in its source for `key` (with the events it led to).
    pub async fn save_position(
        &mut self,
        engine: &str,
        key: &str,
        position: &str,
    ) -> Result<(), StoreError> {
        on_backend!(&mut self.tx, tx => {
            sqlx::query(
                "INSERT INTO engine_positions (engine, key, position) VALUES ($1, $2, $3)
                 ON CONFLICT (engine, key) DO UPDATE SET position = excluded.position",
            )
            .bind(engine)
            .bind(key)
            .bind(position)
            .execute(&mut **tx)
            .await?
            .rows_affected()
        });
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
            let stored: Option<i64> = on_backend!(&mut self.tx, tx => {
                sqlx::query_scalar(
                    "UPDATE steps SET log_bytes = log_bytes + $1
                     WHERE workflow_id = $2 AND step_number = $3 RETURNING log_bytes",
                )
                .bind(bytes)
                .bind(workflow_id)
                .bind(i64::from(step_number))
                .fetch_optional(&mut **tx)
                .await?
            });
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
        on_backend!(&mut self.tx, tx => {
            let dropped: Vec<i64> = sqlx::query_scalar(
                "DELETE FROM step_logs WHERE workflow_id = $1 AND step_number = $2 AND id <= (
                     SELECT id FROM (
                         SELECT id, SUM(octet_length(line)) OVER (ORDER BY id) AS upto
                         FROM step_logs WHERE workflow_id = $1 AND step_number = $2
                     ) AS running WHERE upto >= $3 ORDER BY id LIMIT 1)
                 RETURNING CAST(octet_length(line) AS BIGINT)",
            )
            .bind(workflow_id)
            .bind(i64::from(step_number))
            .bind(bytes)
            .fetch_all(&mut **tx)
            .await?;
            sqlx::query(
                "UPDATE steps SET log_bytes = log_bytes - $1, logs_dropped = logs_dropped + $2
                 WHERE workflow_id = $3 AND step_number = $4",
            )
            .bind(dropped.iter().sum::<i64>())
            .bind(i64::try_from(dropped.len()).unwrap_or(i64::MAX))
            .bind(workflow_id)
            .bind(i64::from(step_number))
            .execute(&mut **tx)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    async fn insert_logs(&mut self, workflow_id: &str, logs: &[LogRow]) -> Result<(), StoreError> {
        // SQLite allows 32766 bound values per statement; 4 per line.
        for chunk in logs.chunks(1000) {
            on_backend!(&mut self.tx, tx => {
                let mut insert = QueryBuilder::new(
                    "INSERT INTO step_logs (workflow_id, step_number, at_ms, line) ",
                );
                insert.push_values(chunk, |mut values, log| {
                    values
                        .push_bind(workflow_id)
                        .push_bind(i64::from(log.step_number))
                        .push_bind(log.at_ms)
                        .push_bind(&log.line);
                });
                insert.build().execute(&mut **tx).await?;
            });
        }
        Ok(())
    }

    /// Makes everything written durable.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        self.stats.counters_changed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::power_of_two_chunks;
    use crate::store::rows::WorkflowRow;
    use crate::store::Store;

    /// The runs' ids and rowids, by id.
    async fn rowids(store: &Store) -> Vec<(String, i64)> {
        sqlx::query_as("SELECT id, rowid FROM workflows ORDER BY id")
            .fetch_all(store.sqlite_pool().expect("a SQLite store"))
            .await
            .unwrap()
    }

    async fn save(store: &Store, rows: &[&WorkflowRow]) {
        let mut writer = store.begin().await.unwrap();
        writer.save_workflows(rows).await.unwrap();
        writer.commit().await.unwrap();
    }

    /// New runs of a statement are numbered from the top down (their text keys, the
    /// rowids negated, then ascend as FTS5 wants them), a run written again keeps its
    /// number, and each run's text row is keyed by its own rowid negated.
    #[tokio::test]
    async fn new_runs_are_numbered_downwards_and_rewritten_runs_keep_their_number() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        sqlx::query(
            "INSERT INTO workflows (id, engine, workflow_type, status, sla_status, priority,
                 capabilities, created_ms, updated_ms, completed_steps, total_steps)
             VALUES ('wf-0', 'custom:test', 'deploy', 'RUNNING', 'on_track', 'NORMAL', $1,
                 0, 0, 0, 2)",
        )
        .bind(serde_json::to_string(&app::model::Capabilities::default()).unwrap())
        .execute(store.sqlite_pool().expect("a SQLite store"))
        .await
        .unwrap();
        let template = store.workflow_row("wf-0").await.unwrap().unwrap();
        let named = |id: &str| WorkflowRow {
            id: id.into(),
            ..template.clone()
        };

        save(&store, &[&named("wf-a"), &named("wf-b")]).await;
        let first = rowids(&store).await;
        let (zero, a, b) = (first[0].1, first[1].1, first[2].1);
        assert!(
            a > b && b > zero,
            "the statement's first run numbered highest: {first:?}"
        );

        save(&store, &[&named("wf-a"), &named("wf-c")]).await;
        let second = rowids(&store).await;
        assert_eq!(&second[..3], &first[..], "stored runs keep their rowids");
        assert!(
            second[3].1 > a,
            "a later run is numbered above every earlier one"
        );

        let unkeyed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM workflows
             WHERE NOT EXISTS (SELECT 1 FROM workflows_text t
                               WHERE t.rowid = -workflows.rowid AND t.id = workflows.id)",
        )
        .fetch_one(store.sqlite_pool().expect("a SQLite store"))
        .await
        .unwrap();
        assert_eq!(
            unkeyed, 0,
            "every run's text row is keyed by its rowid negated"
        );
    }

    #[test]
    fn rows_are_written_in_power_of_two_statements_largest_first() {
        let items: Vec<u32> = (0..1000).collect();
        let sizes: Vec<usize> = power_of_two_chunks(&items, 256).map(<[u32]>::len).collect();
        assert_eq!(sizes, [256, 256, 256, 128, 64, 32, 8]);
        let rejoined: Vec<u32> = power_of_two_chunks(&items, 256)
            .flatten()
            .copied()
            .collect();
        assert_eq!(rejoined, items);
        assert_eq!(power_of_two_chunks(&items[..0], 256).count(), 0);
        assert_eq!(
            power_of_two_chunks(&items[..7], 256)
                .map(<[u32]>::len)
                .collect::<Vec<_>>(),
            [4, 2, 1]
        );
    }
}
