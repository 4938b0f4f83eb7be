//! Analytics over the runs that ended: SLA compliance, durations (mean and p95) and
//! failure rates by type, the slowest steps, and how often steps retry.
//!
//! The projector rolls every run up when it ends, into five-minute buckets per type and
//! per step (counts, sums, and a log-bucket histogram for percentiles), in the same
//! transaction as the run's last change. A period's answer then sums at most a few
//! thousand small rows, however long the history is.

use crate::store::rows::{Millis, StepRow, WorkflowRow};
use crate::store::StoreError;
use app::model::analytics::{
    percent, Analytics, FailureRate, RetryRate, SlaCompliance, SlowStep, StepNorm, StepRetryRate,
    Window,
};
use app::model::{SlaStatus, StepKind, StepStatus};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use std::collections::{BTreeMap, HashMap};

/// The width of a rollup bucket.
pub const BUCKET_MS: Millis = 300_000;
/// How many slowest steps the answer lists.
const SLOWEST: usize = 10;
/// How many retrying steps the answer lists.
const TOP_RETRYING: usize = 5;
/// Each histogram bucket is this much wider than the one before: a percentile read
/// from it is within ±5 % of the true value.
const GROWTH: f64 = 1.1;

/// Durations counted in log-width buckets (bucket `i` holds `[GROWTH^i, GROWTH^(i+1))` ms).
/// Counts are signed so a run that is reopened can be taken out again.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram(BTreeMap<u16, i64>);

impl Histogram {
    pub fn add(&mut self, duration_ms: Millis) {
        self.count(duration_ms, 1);
    }

    fn count(&mut self, duration_ms: Millis, sign: i64) {
        let ms = duration_ms.max(1) as f64;
        let bucket = (ms.ln() / GROWTH.ln()).floor().clamp(0.0, u16::MAX as f64) as u16;
        *self.0.entry(bucket).or_default() += sign;
    }

    fn merge(&mut self, other: &Histogram) {
        for (bucket, count) in &other.0 {
            *self.0.entry(*bucket).or_default() += count;
        }
        self.0.retain(|_, count| *count > 0);
    }

    fn from_json(text: &str) -> Self {
        Self(serde_json::from_str(text).unwrap_or_default())
    }

    fn to_json(&self) -> String {
        serde_json::to_string(&self.0).expect("a map of numbers serializes")
    }

    /// The `q` quantile in milliseconds (the geometric middle of its bucket).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total: i64 = self.0.values().filter(|c| **c > 0).sum();
        if total <= 0 {
            return None;
        }
        let rank = (q * total as f64).ceil().max(1.0) as i64;
        let mut seen = 0;
        for (bucket, count) in self.0.iter().filter(|(_, c)| **c > 0) {
            seen += count;
            if seen >= rank {
                return Some(GROWTH.powf(f64::from(*bucket) + 0.5));
            }
        }
        None
    }
}

#[derive(Debug, Default)]
struct RunTotals {
    ended: i64,
    failed: i64,
    with_target: i64,
    breached: i64,
    duration_ms: i64,
    histogram: Histogram,
}

#[derive(Debug, Default)]
struct StepTotals {
    occurrences: i64,
    retried: i64,
    duration_ms: i64,
    histogram: Histogram,
}

/// Rollups being gathered, written with [`Rollup::write`].
#[derive(Debug, Default)]
pub struct Rollup {
    runs: HashMap<(Millis, String), RunTotals>,
    steps: HashMap<(Millis, String, String), StepTotals>,
}

impl Rollup {
    /// Counts a run that ended, with its steps.
    pub fn add_run<'s>(&mut self, row: &WorkflowRow, steps: impl IntoIterator<Item = &'s StepRow>) {
        self.account(row, steps, 1);
    }

    /// Takes out a run counted when it ended before (it was reopened by a retry): the
    /// analytics follow each run's latest outcome.
    pub fn remove_run<'s>(
        &mut self,
        row: &WorkflowRow,
        steps: impl IntoIterator<Item = &'s StepRow>,
    ) {
        self.account(row, steps, -1);
    }

    fn account<'s>(
        &mut self,
        row: &WorkflowRow,
        steps: impl IntoIterator<Item = &'s StepRow>,
        sign: i64,
    ) {
        let Some(ended) = row.completed_ms else {
            return;
        };
        let bucket = ended - ended.rem_euclid(BUCKET_MS);
        let run = self
            .runs
            .entry((bucket, row.workflow_type.clone()))
            .or_default();
        let duration = row.elapsed_ms(ended);
        run.ended += sign;
        run.failed += sign * i64::from(row.status.is_failure());
        run.with_target += sign * i64::from(row.sla_target_seconds.is_some());
        run.breached += sign * i64::from(row.sla_status == SlaStatus::Breached);
        run.duration_ms += sign * duration;
        run.histogram.count(duration, sign);
        for step in steps {
            let finished = matches!(step.status, StepStatus::Completed | StepStatus::Failed);
            let (Some(start), Some(end)) = (step.started_ms, step.completed_ms) else {
                continue;
            };
            if step.kind != StepKind::Normal || !finished {
                continue;
            }
            let totals = self
                .steps
                .entry((bucket, row.workflow_type.clone(), step.name.clone()))
                .or_default();
            totals.occurrences += sign;
            totals.retried += sign * i64::from(step.attempts.len() > 1);
            totals.duration_ms += sign * (end - start);
            totals.histogram.count(end - start, sign);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Adds the gathered totals to the stored rollups.
    pub async fn write(self, conn: &mut SqliteConnection) -> Result<(), StoreError> {
        for ((bucket, workflow_type), totals) in self.runs {
            let stored: Option<String> = sqlx::query_scalar(
                "SELECT histogram FROM analytics_runs WHERE bucket_ms = ? AND workflow_type = ?",
            )
            .bind(bucket)
            .bind(&workflow_type)
            .fetch_optional(&mut *conn)
            .await?;
            let mut histogram = stored.map(|t| Histogram::from_json(&t)).unwrap_or_default();
            histogram.merge(&totals.histogram);
            sqlx::query(
                "INSERT INTO analytics_runs
                   (bucket_ms, workflow_type, ended, failed, with_target, breached, duration_ms, histogram)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (bucket_ms, workflow_type) DO UPDATE SET
                   ended = ended + excluded.ended,
                   failed = failed + excluded.failed,
                   with_target = with_target + excluded.with_target,
                   breached = breached + excluded.breached,
                   duration_ms = duration_ms + excluded.duration_ms,
                   histogram = excluded.histogram",
            )
            .bind(bucket)
            .bind(&workflow_type)
            .bind(totals.ended)
            .bind(totals.failed)
            .bind(totals.with_target)
            .bind(totals.breached)
            .bind(totals.duration_ms)
            .bind(histogram.to_json())
            .execute(&mut *conn)
            .await?;
        }
        for ((bucket, workflow_type, step_name), totals) in self.steps {
            let stored: Option<String> = sqlx::query_scalar(
                "SELECT histogram FROM analytics_steps
                 WHERE bucket_ms = ? AND workflow_type = ? AND step_name = ?",
            )
            .bind(bucket)
            .bind(&workflow_type)
            .bind(&step_name)
            .fetch_optional(&mut *conn)
            .await?;
            let mut histogram = stored.map(|t| Histogram::from_json(&t)).unwrap_or_default();
            histogram.merge(&totals.histogram);
            sqlx::query(
                "INSERT INTO analytics_steps
                   (bucket_ms, workflow_type, step_name, occurrences, retried, duration_ms, histogram)
                 VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (bucket_ms, workflow_type, step_name) DO UPDATE SET
                   occurrences = occurrences + excluded.occurrences,
                   retried = retried + excluded.retried,
                   duration_ms = duration_ms + excluded.duration_ms,
                   histogram = excluded.histogram",
            )
            .bind(bucket)
            .bind(&workflow_type)
            .bind(&step_name)
            .bind(totals.occurrences)
            .bind(totals.retried)
            .bind(totals.duration_ms)
            .bind(histogram.to_json())
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// Recomputes every rollup from the stored runs (for a database whose runs ended before
/// rollups existed, and for benchmarks that load runs in bulk). Reads the runs a page
/// at a time.
pub async fn rebuild(pool: &SqlitePool) -> Result<u64, StoreError> {
    const PAGE: i64 = 2_000;
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM analytics_runs")
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM analytics_steps")
        .execute(&mut *tx)
        .await?;
    let mut rollup = Rollup::default();
    let mut after = String::new();
    let mut counted = 0u64;
    loop {
        let rows: Vec<WorkflowRow> = sqlx::query_as(
            "SELECT * FROM workflows WHERE completed_ms IS NOT NULL AND id > ? ORDER BY id LIMIT ?",
        )
        .bind(&after)
        .bind(PAGE)
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.id.clone();
        let mut select = QueryBuilder::<Sqlite>::new(
            "SELECT workflow_id AS owner, * FROM steps WHERE kind = 'normal' AND workflow_id IN (",
        );
        let mut ids = select.separated(", ");
        for row in &rows {
            ids.push_bind(row.id.clone());
        }
        ids.push_unseparated(")");
        let steps: Vec<crate::store::OwnedStep> =
            select.build_query_as().fetch_all(&mut *tx).await?;
        let mut by_run: HashMap<&str, Vec<&StepRow>> = HashMap::new();
        for owned in &steps {
            by_run
                .entry(owned.owner.as_str())
                .or_default()
                .push(&owned.step);
        }
        for row in rows.iter().filter(|r| r.status.is_terminal()) {
            rollup.add_run(row, by_run.remove(row.id.as_str()).unwrap_or_default());
            counted += 1;
        }
    }
    rollup.write(&mut tx).await?;
    tx.commit().await?;
    Ok(counted)
}

/// The analytics of the runs that ended in `window` (as of `now`). Bounds are taken to
/// the enclosing five-minute buckets.
pub async fn analytics(
    pool: &SqlitePool,
    window: Window,
    now: Millis,
) -> Result<Analytics, StoreError> {
    let (since, until) = window.bounds(now);
    let first_bucket = since - since.rem_euclid(BUCKET_MS);
    let mut answer = Analytics {
        period: match window {
            Window::Period(period) => Some(period),
            Window::Range { .. } => None,
        },
        from: Some(crate::store::rows::to_datetime(since)),
        to: Some(crate::store::rows::to_datetime(until)),
        ..Analytics::default()
    };

    let runs: Vec<(String, i64, i64, i64, i64, i64, String)> = sqlx::query_as(
        "SELECT workflow_type, SUM(ended), SUM(failed), SUM(with_target), SUM(breached),
                SUM(duration_ms), group_concat(histogram, '|')
         FROM analytics_runs WHERE bucket_ms >= ? AND bucket_ms < ? GROUP BY workflow_type",
    )
    .bind(first_bucket)
    .bind(until)
    .fetch_all(pool)
    .await?;
    let (mut ended_all, mut failed_all, mut with_target, mut breached) = (0u64, 0u64, 0u64, 0u64);
    for (workflow_type, ended, failed, target, late, duration_ms, histograms) in runs {
        let (ended, failed) = (ended.max(0) as u64, failed.max(0) as u64);
        ended_all += ended;
        failed_all += failed;
        with_target += target.max(0) as u64;
        breached += late.max(0) as u64;
        if ended > 0 {
            let mean = duration_ms as f64 / ended as f64 / 1000.0;
            answer
                .avg_duration_by_type
                .insert(workflow_type.clone(), mean.round() as u64);
            let mut histogram = Histogram::default();
            for part in histograms.split('|') {
                histogram.merge(&Histogram::from_json(part));
            }
            if let Some(p95) = histogram.quantile(0.95) {
                answer
                    .p95_duration_by_type
                    .insert(workflow_type.clone(), (p95 / 1000.0).round() as u64);
            }
        }
        answer
            .failure_rate
            .by_type
            .insert(workflow_type, percent(failed, ended));
    }
    answer.runs = ended_all;
    answer.failure_rate = FailureRate {
        overall: percent(failed_all, ended_all),
        ..answer.failure_rate
    };
    let on_track = with_target - breached.min(with_target);
    answer.sla_compliance = SlaCompliance {
        percent: (with_target > 0).then(|| percent(on_track, with_target)),
        on_track,
        breached,
    };

    let steps: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT workflow_type, step_name, SUM(occurrences), SUM(retried), SUM(duration_ms)
         FROM analytics_steps WHERE bucket_ms >= ? AND bucket_ms < ?
         GROUP BY workflow_type, step_name",
    )
    .bind(first_bucket)
    .bind(until)
    .fetch_all(pool)
    .await?;
    let (mut occurrences_all, mut retried_all) = (0u64, 0u64);
    let mut slowest: Vec<(f64, String, String, u64)> = Vec::new();
    let mut retrying: Vec<StepRetryRate> = Vec::new();
    for (workflow_type, step_name, occurrences, retried, duration_ms) in steps {
        let (occurrences, retried) = (occurrences.max(0) as u64, retried.max(0) as u64);
        if occurrences == 0 {
            continue;
        }
        occurrences_all += occurrences;
        retried_all += retried;
        let mean = duration_ms as f64 / occurrences as f64 / 1000.0;
        slowest.push((mean, workflow_type.clone(), step_name.clone(), occurrences));
        if retried > 0 {
            retrying.push(StepRetryRate {
                step_name,
                workflow_type,
                retry_rate: percent(retried, occurrences),
                occurrences,
            });
        }
    }
    slowest.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.2.cmp(&b.2)));
    slowest.truncate(SLOWEST);
    for (mean, workflow_type, step_name, occurrences) in slowest {
        // Percentiles only for the few steps listed: their histograms are all we read.
        let histograms: Vec<String> = sqlx::query_scalar(
            "SELECT histogram FROM analytics_steps
             WHERE bucket_ms >= ? AND bucket_ms < ? AND workflow_type = ? AND step_name = ?",
        )
        .bind(first_bucket)
        .bind(until)
        .bind(&workflow_type)
        .bind(&step_name)
        .fetch_all(pool)
        .await?;
        let mut histogram = Histogram::default();
        for text in &histograms {
            histogram.merge(&Histogram::from_json(text));
        }
        answer.slowest_steps.push(SlowStep {
            step_name,
            workflow_type,
            avg_duration_seconds: (mean * 10.0).round() / 10.0,
            p95_duration_seconds: histogram
                .quantile(0.95)
                .map_or(0.0, |ms| (ms / 100.0).round() / 10.0),
            occurrences,
        });
    }
    retrying.sort_by(|a, b| {
        b.retry_rate
            .cmp(&a.retry_rate)
            .then(b.occurrences.cmp(&a.occurrences))
            .then_with(|| a.step_name.cmp(&b.step_name))
    });
    retrying.truncate(TOP_RETRYING);
    answer.retry_rate = RetryRate {
        overall: percent(retried_all, occurrences_all),
        top_steps: retrying,
    };
    Ok(answer)
}

/// How long `workflow_type`'s steps usually take: the p50 and p95 of each step over the
/// runs that ended within `window`, from the same rollups.
pub async fn step_norms(
    pool: &SqlitePool,
    workflow_type: &str,
    window: Window,
    now: Millis,
) -> Result<Vec<StepNorm>, StoreError> {
    let (since, until) = window.bounds(now);
    let rows: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT step_name, occurrences, histogram FROM analytics_steps
         WHERE workflow_type = ? AND bucket_ms >= ? AND bucket_ms < ?",
    )
    .bind(workflow_type)
    .bind(since - since.rem_euclid(BUCKET_MS))
    .bind(until)
    .fetch_all(pool)
    .await?;
    let mut by_step: BTreeMap<String, (i64, Histogram)> = BTreeMap::new();
    for (step_name, occurrences, histogram) in rows {
        let entry = by_step.entry(step_name).or_default();
        entry.0 += occurrences;
        entry.1.merge(&Histogram::from_json(&histogram));
    }
    Ok(by_step
        .into_iter()
        .filter(|(_, (occurrences, _))| *occurrences > 0)
        .filter_map(|(step_name, (occurrences, histogram))| {
            Some(StepNorm {
                step_name,
                p50_seconds: histogram.quantile(0.5)? / 1000.0,
                p95_seconds: histogram.quantile(0.95)? / 1000.0,
                occurrences: occurrences as u64,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_log_buckets_within_five_percent() {
        let mut histogram = Histogram::default();
        for ms in 1..=1000 {
            histogram.add(ms);
        }
        let p95 = histogram.quantile(0.95).unwrap();
        assert!((p95 - 950.0).abs() / 950.0 < 0.05, "p95 {p95}");
        let p50 = histogram.quantile(0.5).unwrap();
        assert!((p50 - 500.0).abs() / 500.0 < 0.05, "p50 {p50}");
        assert_eq!(Histogram::default().quantile(0.95), None);
        let round_trip = Histogram::from_json(&histogram.to_json());
        assert_eq!(round_trip, histogram);
    }
}
