//! What the forecasts read and write: what earlier runs of a type tell (kept a while, as
//! every batch of the projector asks), the running runs with their steps, and each running
//! run's forecast on its row.

use super::rollup::bucket_of;
use super::rows::{Millis, RunForecast, StepRow, WorkflowRow};
use super::writer::Writer;
use super::{with_their_steps, OwnedStep, Store, StoreError};
use app::model::analytics::{Histogram, Window, STEP_NORMS_WINDOW};
use app::model::StepKind;
use sqlx::QueryBuilder;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How long a type's history is used before it is read again.
const HISTORY_KEPT_MS: Millis = 60_000;

/// What earlier runs of one type tell about the next: how many ended, how long each step
/// took, and the steps in the order the newest completed run ran them.
#[derive(Debug, Default)]
pub struct TypeHistory {
    /// Runs of the type that ended within the norms' window.
    pub runs: u32,
    /// Durations of each step, by name.
    pub steps: HashMap<String, Histogram>,
    /// The newest completed run's normal steps in order: name, and parallel branch.
    pub shape: Vec<(String, Option<String>)>,
}

/// Each workflow type's history as last read, and when.
#[derive(Debug, Default)]
pub(super) struct HistoriesKept(Mutex<HashMap<String, (Millis, Arc<TypeHistory>)>>);

/// Stores one run's forecast while it runs, and returns its row. `updated_ms` moves on, so
/// that pages holding the row take the new one.
const SAVE_FORECAST: &str = "UPDATE workflows
    SET forecast_runs = $2, forecast_p50_ms = $3, forecast_p90_ms = $4, forecast_breach = $5,
        updated_ms = CASE WHEN updated_ms < $6 THEN $6 ELSE updated_ms + 1 END
    WHERE id = $1 AND status = 'RUNNING'
    RETURNING *";

impl Store {
    /// What the runs of `workflow_type` that ended within the norms' window before `now`
    /// tell, as read at most [`HISTORY_KEPT_MS`] ago.
    pub async fn type_history(
        &self,
        workflow_type: &str,
        now: Millis,
    ) -> Result<Arc<TypeHistory>, StoreError> {
        if let Some(history) = self.kept(workflow_type, |read| now - read < HISTORY_KEPT_MS) {
            return Ok(history);
        }
        let history = Arc::new(self.read_type_history(workflow_type, now).await?);
        let mut histories = self.histories.0.lock().unwrap_or_else(|p| p.into_inner());
        // Types come and go: forget those not asked for within the period.
        histories.retain(|_, (read, _)| now - *read < HISTORY_KEPT_MS);
        histories.insert(workflow_type.to_owned(), (now, history.clone()));
        Ok(history)
    }

    /// A type's history as [`Store::type_history`] last read it, however long ago; none if
    /// it was not read lately.
    pub fn kept_type_history(&self, workflow_type: &str) -> Option<Arc<TypeHistory>> {
        self.kept(workflow_type, |_| true)
    }

    /// The kept history of `workflow_type`, if it was read at a time `fresh` accepts.
    fn kept(
        &self,
        workflow_type: &str,
        fresh: impl Fn(Millis) -> bool,
    ) -> Option<Arc<TypeHistory>> {
        let histories = self.histories.0.lock().unwrap_or_else(|p| p.into_inner());
        histories
            .get(workflow_type)
            .filter(|(read, _)| fresh(*read))
            .map(|(_, history)| history.clone())
    }

    /// [`Store::type_history`] read afresh.
    pub async fn read_type_history(
        &self,
        workflow_type: &str,
        now: Millis,
    ) -> Result<TypeHistory, StoreError> {
        let (since, until) = Window::Period(STEP_NORMS_WINDOW).bounds(now);
        let first_bucket = bucket_of(since);
        let runs = self
            .runs_ended_of_type(workflow_type, first_bucket, until)
            .await?;
        let steps = self
            .steps_of_type(workflow_type, first_bucket, until)
            .await?
            .into_iter()
            .map(|(name, (_, histogram))| (name, histogram))
            .collect();
        let shape = self
            .newest_completed_steps(workflow_type)
            .await?
            .into_iter()
            .filter(|step| step.kind == StepKind::Normal)
            .map(|step| (step.name, step.branch))
            .collect();
        Ok(TypeHistory {
            runs: u32::try_from(runs).unwrap_or(u32::MAX),
            steps,
            shape,
        })
    }

    /// Up to `limit` running runs with ids after `after`, in id order, each with its steps.
    pub async fn running_runs(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(WorkflowRow, Vec<StepRow>)>, StoreError> {
        let (rows, steps): (Vec<WorkflowRow>, Vec<OwnedStep>) = on_backend!(&self.pool, pool => {
            let rows: Vec<WorkflowRow> = sqlx::query_as(
                "SELECT * FROM workflows WHERE status = 'RUNNING' AND id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            if rows.is_empty() {
                return Ok(Vec::new());
            }
            let mut select =
                QueryBuilder::new("SELECT workflow_id AS owner, * FROM steps WHERE workflow_id IN (");
            let mut ids = select.separated(", ");
            for row in &rows {
                ids.push_bind(row.id.clone());
            }
            ids.push_unseparated(") ORDER BY workflow_id, step_number");
            let steps = select.build_query_as().fetch_all(pool).await?;
            (rows, steps)
        });
        Ok(with_their_steps(rows, steps))
    }

    /// The steps of the newest completed run of `workflow_type`, in step order (none when
    /// no run of it completed).
    async fn newest_completed_steps(
        &self,
        workflow_type: &str,
    ) -> Result<Vec<StepRow>, StoreError> {
        Ok(on_backend!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT * FROM steps WHERE workflow_id = (
                     SELECT id FROM workflows WHERE workflow_type = $1 AND status = 'COMPLETED'
                     ORDER BY created_ms DESC, id DESC LIMIT 1)
                 ORDER BY step_number",
            )
            .bind(workflow_type)
            .fetch_all(pool)
            .await?
        }))
    }

    /// How many runs of `workflow_type` ended over the rollup buckets from `first_bucket`
    /// to `until`.
    async fn runs_ended_of_type(
        &self,
        workflow_type: &str,
        first_bucket: Millis,
        until: Millis,
    ) -> Result<i64, StoreError> {
        Ok(on_backend!(&self.pool, pool => {
            sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(ended), 0) AS BIGINT) FROM analytics_runs
                 WHERE workflow_type = $1 AND bucket_ms >= $2 AND bucket_ms < $3",
            )
            .bind(workflow_type)
            .bind(first_bucket)
            .bind(until)
            .fetch_one(pool)
            .await?
        }))
    }
}

impl Writer {
    /// Stores each run's forecast if the run still runs; returns the rows it was stored on.
    pub async fn save_forecasts(
        &mut self,
        forecasts: &[(String, RunForecast)],
        now: Millis,
    ) -> Result<Vec<WorkflowRow>, StoreError> {
        let mut saved = Vec::with_capacity(forecasts.len());
        for (id, forecast) in forecasts {
            let row: Option<WorkflowRow> = on_backend!(&mut self.tx, tx => {
                sqlx::query_as(SAVE_FORECAST)
                    .bind(id)
                    .bind(i64::from(forecast.runs_seen))
                    .bind(forecast.expected_ms)
                    .bind(forecast.likely_by_ms)
                    .bind(forecast.breach.level())
                    .bind(now)
                    .fetch_optional(&mut **tx)
                    .await?
            });
            saved.extend(row);
        }
        Ok(saved)
    }
}
