//! The analytics rollups as stored: per five-minute bucket, totals of the runs that
//! ended (per workflow type) and of their steps (per type and step name), each with a
//! duration histogram. What a run counts for is decided by the analytics module; this
//! module only adds totals up and reads them back.

use super::rows::{Millis, StepRow, WorkflowRow};
use super::writer::Writer;
use super::{json_text, with_their_steps, OwnedStep, Store, StoreError};
use app::model::analytics::Histogram;
use sqlx::QueryBuilder;
use std::collections::HashMap;

/// The width of a rollup bucket.
pub const BUCKET_MS: Millis = 300_000;

/// The start of the bucket `at` falls in.
pub fn bucket_of(at: Millis) -> Millis {
    at - at.rem_euclid(BUCKET_MS)
}

/// Totals of the runs of one type that ended in one bucket (or a period).
#[derive(Debug, Default)]
pub struct RunTotals {
    pub ended: i64,
    pub failed: i64,
    pub with_target: i64,
    pub breached: i64,
    pub duration_ms: i64,
    pub histogram: Histogram,
}

/// Totals of one step of one type over the runs that ended in one bucket (or a period).
#[derive(Debug, Default)]
pub struct StepTotals {
    pub occurrences: i64,
    pub retried: i64,
    pub duration_ms: i64,
    pub histogram: Histogram,
}

/// Totals being gathered, added to the stored ones with [`Writer::add_rollup`].
#[derive(Debug, Default)]
pub struct Rollup {
    /// By (bucket, workflow type).
    pub runs: HashMap<(Millis, String), RunTotals>,
    /// By (bucket, workflow type, step name).
    pub steps: HashMap<(Millis, String, String), StepTotals>,
}

impl Rollup {
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

fn histogram_of(text: &str) -> Histogram {
    serde_json::from_str(text).unwrap_or_default()
}

fn merged<'t>(texts: impl IntoIterator<Item = &'t str>) -> Histogram {
    let mut histogram = Histogram::default();
    for text in texts {
        histogram.merge(&histogram_of(text));
    }
    histogram
}

impl Writer {
    /// `delta` added to the histogram `select` finds for the bucket and names (none
    /// stored yet: `delta` alone).
    async fn with_stored_histogram(
        &mut self,
        select: &str,
        bucket: Millis,
        names: &[&str],
        delta: &Histogram,
    ) -> Result<Histogram, StoreError> {
        let stored: Option<String> = on_backend!(&mut self.tx, tx => {
            let mut query = sqlx::query_scalar(select).bind(bucket);
            for name in names {
                query = query.bind(*name);
            }
            query.fetch_optional(&mut **tx).await?
        });
        let mut histogram = stored.as_deref().map(histogram_of).unwrap_or_default();
        histogram.merge(delta);
        Ok(histogram)
    }

    /// Adds the gathered totals to the stored rollups.
    pub async fn add_rollup(&mut self, rollup: Rollup) -> Result<(), StoreError> {
        for ((bucket, workflow_type), totals) in rollup.runs {
            let histogram = self
                .with_stored_histogram(
                    "SELECT histogram FROM analytics_runs WHERE bucket_ms = $1 AND workflow_type = $2",
                    bucket,
                    &[&workflow_type],
                    &totals.histogram,
                )
                .await?;
            let histogram = json_text(&histogram);
            on_backend!(&mut self.tx, tx => {
                sqlx::query(
                    "INSERT INTO analytics_runs (bucket_ms, workflow_type, ended, failed,
                         with_target, breached, duration_ms, histogram)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (bucket_ms, workflow_type) DO UPDATE SET
                       ended = analytics_runs.ended + excluded.ended,
                       failed = analytics_runs.failed + excluded.failed,
                       with_target = analytics_runs.with_target + excluded.with_target,
                       breached = analytics_runs.breached + excluded.breached,
                       duration_ms = analytics_runs.duration_ms + excluded.duration_ms,
                       histogram = excluded.histogram",
                )
                .bind(bucket)
                .bind(&workflow_type)
                .bind(totals.ended)
                .bind(totals.failed)
                .bind(totals.with_target)
                .bind(totals.breached)
                .bind(totals.duration_ms)
                .bind(&histogram)
                .execute(&mut **tx)
                .await?
                .rows_affected()
            });
        }
        for ((bucket, workflow_type, step_name), totals) in rollup.steps {
            let histogram = self
                .with_stored_histogram(
                    "SELECT histogram FROM analytics_steps
                     WHERE bucket_ms = $1 AND workflow_type = $2 AND step_name = $3",
                    bucket,
                    &[&workflow_type, &step_name],
                    &totals.histogram,
                )
                .await?;
            let histogram = json_text(&histogram);
            on_backend!(&mut self.tx, tx => {
                sqlx::query(
                    "INSERT INTO analytics_steps (bucket_ms, workflow_type, step_name,
                         occurrences, retried, duration_ms, histogram)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (bucket_ms, workflow_type, step_name) DO UPDATE SET
                       occurrences = analytics_steps.occurrences + excluded.occurrences,
                       retried = analytics_steps.retried + excluded.retried,
                       duration_ms = analytics_steps.duration_ms + excluded.duration_ms,
                       histogram = excluded.histogram",
                )
                .bind(bucket)
                .bind(&workflow_type)
                .bind(&step_name)
                .bind(totals.occurrences)
                .bind(totals.retried)
                .bind(totals.duration_ms)
                .bind(&histogram)
                .execute(&mut **tx)
                .await?
                .rows_affected()
            });
        }
        Ok(())
    }

    /// Removes every stored rollup (before they are computed again from the runs).
    pub async fn clear_rollups(&mut self) -> Result<(), StoreError> {
        on_backend!(&mut self.tx, tx => {
            sqlx::query("DELETE FROM analytics_runs")
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM analytics_steps")
                .execute(&mut **tx)
                .await?;
        });
        Ok(())
    }

    /// Up to `limit` ended runs with ids after `after`, in id order, each with its
    /// normal steps: a page of what the rollups are computed from.
    pub async fn ended_runs_after(
        &mut self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(WorkflowRow, Vec<StepRow>)>, StoreError> {
        let (rows, steps): (Vec<WorkflowRow>, Vec<OwnedStep>) = on_backend!(&mut self.tx, tx => {
            let rows: Vec<WorkflowRow> = sqlx::query_as(
                "SELECT * FROM workflows WHERE completed_ms IS NOT NULL AND id > $1
                 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(&mut **tx)
            .await?;
            if rows.is_empty() {
                return Ok(Vec::new());
            }
            let mut select = QueryBuilder::new(
                "SELECT workflow_id AS owner, * FROM steps
                 WHERE kind = 'normal' AND workflow_id IN (",
            );
            let mut ids = select.separated(", ");
            for row in &rows {
                ids.push_bind(row.id.clone());
            }
            ids.push_unseparated(")");
            let steps = select.build_query_as().fetch_all(&mut **tx).await?;
            (rows, steps)
        });
        Ok(with_their_steps(rows, steps))
    }
}

impl Store {
    /// Whether runs ended before rollups existed: then they are computed once from the
    /// stored runs, at start-up.
    pub async fn rollups_missing(&self) -> Result<bool, StoreError> {
        let (rolled_up, ended): (bool, bool) = on_backend!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT EXISTS (SELECT 1 FROM analytics_runs),
                        EXISTS (SELECT 1 FROM workflows WHERE completed_ms IS NOT NULL)",
            )
            .fetch_one(pool)
            .await?
        });
        Ok(ended && !rolled_up)
    }

    /// The run totals per workflow type over the buckets from `first_bucket` to `until`.
    pub async fn run_totals(
        &self,
        first_bucket: Millis,
        until: Millis,
    ) -> Result<Vec<(String, RunTotals)>, StoreError> {
        let totals = format!(
            "SELECT workflow_type, CAST(SUM(ended) AS BIGINT), CAST(SUM(failed) AS BIGINT),
                    CAST(SUM(with_target) AS BIGINT), CAST(SUM(breached) AS BIGINT),
                    CAST(SUM(duration_ms) AS BIGINT), {}(histogram, '|')
             FROM analytics_runs WHERE bucket_ms >= $1 AND bucket_ms < $2 GROUP BY workflow_type",
            self.dialect().pick("group_concat", "string_agg")
        );
        let rows: Vec<(String, i64, i64, i64, i64, i64, String)> = on_backend!(&self.pool, pool => {
            sqlx::query_as(&totals)
                .bind(first_bucket)
                .bind(until)
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(workflow_type, ended, failed, with_target, breached, duration_ms, histograms)| {
                    let totals = RunTotals {
                        ended,
                        failed,
                        with_target,
                        breached,
                        duration_ms,
                        histogram: merged(histograms.split('|')),
                    };
                    (workflow_type, totals)
                },
            )
            .collect())
    }

    /// The step totals per (workflow type, step name) over the buckets from
    /// `first_bucket` to `until`, without histograms (see [`Store::step_histogram`]).
    pub async fn step_totals(
        &self,
        first_bucket: Millis,
        until: Millis,
    ) -> Result<Vec<(String, String, StepTotals)>, StoreError> {
        let rows: Vec<(String, String, i64, i64, i64)> = on_backend!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT workflow_type, step_name, CAST(SUM(occurrences) AS BIGINT),
                        CAST(SUM(retried) AS BIGINT), CAST(SUM(duration_ms) AS BIGINT)
                 FROM analytics_steps WHERE bucket_ms >= $1 AND bucket_ms < $2
                 GROUP BY workflow_type, step_name",
            )
            .bind(first_bucket)
            .bind(until)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(workflow_type, step_name, occurrences, retried, duration_ms)| {
                    let totals = StepTotals {
                        occurrences,
                        retried,
                        duration_ms,
                        histogram: Histogram::default(),
                    };
                    (workflow_type, step_name, totals)
                },
            )
            .collect())
    }

    /// The duration histogram of one step over the buckets from `first_bucket` to `until`.
    pub async fn step_histogram(
        &self,
        first_bucket: Millis,
        until: Millis,
        workflow_type: &str,
        step_name: &str,
    ) -> Result<Histogram, StoreError> {
        let histograms: Vec<String> = on_backend!(&self.pool, pool => {
            sqlx::query_scalar(
                "SELECT histogram FROM analytics_steps
                 WHERE bucket_ms >= $1 AND bucket_ms < $2 AND workflow_type = $3
                   AND step_name = $4",
            )
            .bind(first_bucket)
            .bind(until)
            .bind(workflow_type)
            .bind(step_name)
            .fetch_all(pool)
            .await?
        });
        Ok(merged(histograms.iter().map(String::as_str)))
    }

    /// Every step of `workflow_type` over the buckets from `first_bucket` to `until`:
    /// its occurrences and duration histogram, by step name.
    pub async fn steps_of_type(
        &self,
        workflow_type: &str,
        first_bucket: Millis,
        until: Millis,
    ) -> Result<HashMap<String, (i64, Histogram)>, StoreError> {
        let rows: Vec<(String, i64, String)> = on_backend!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT step_name, occurrences, histogram FROM analytics_steps
                 WHERE workflow_type = $1 AND bucket_ms >= $2 AND bucket_ms < $3",
            )
            .bind(workflow_type)
            .bind(first_bucket)
            .bind(until)
            .fetch_all(pool)
            .await?
        });
        let mut by_step: HashMap<String, (i64, Histogram)> = HashMap::new();
        for (step_name, occurrences, histogram) in rows {
            let entry = by_step.entry(step_name).or_default();
            entry.0 += occurrences;
            entry.1.merge(&histogram_of(&histogram));
        }
        Ok(by_step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_reads_back_as_it_was_stored() {
        let mut histogram = Histogram::default();
        for ms in [1, 10, 10, 950, 60_000] {
            histogram.add(ms);
        }
        assert_eq!(histogram_of(&json_text(&histogram)), histogram);
        assert_eq!(merged(["{}", "not json"]), Histogram::default());
    }
}
