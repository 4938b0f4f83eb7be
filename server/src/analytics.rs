//! Analytics over the runs that ended: SLA compliance, durations (mean and p95) and
//! failure rates by type, the slowest steps, and how often steps retry.
//!
//! The projector rolls every run up when it ends, into five-minute buckets per type and
//! per step (counts, sums, and a log-bucket histogram for percentiles), in the same
//! transaction as the run's last change. A period's answer then sums at most a few
//! thousand small rows, however long the history is. The store keeps and sums the
//! totals ([`crate::store::rollup`]); what a run counts for, and the answer, are here.

use crate::store::rollup::{bucket_of, Rollup};
use crate::store::rows::{to_datetime, Millis, StepRow, WorkflowRow};
use crate::store::{Store, StoreError};
use app::model::analytics::{
    percent, Analytics, FailureRate, RetryRate, SlaCompliance, SlowStep, StepNorm, StepRetryRate,
    Window,
};
use app::model::{SlaStatus, StepKind, StepStatus};

/// How many slowest steps the answer lists.
const SLOWEST: usize = 10;
/// How many retrying steps the answer lists.
const TOP_RETRYING: usize = 5;

// What a run counts for in the rollups the store keeps.
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
        let bucket = bucket_of(ended);
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
}

/// Recomputes every rollup from the stored runs (for a database whose runs ended before
/// rollups existed, and for benchmarks that load runs in bulk), in one transaction.
/// Reads the runs a page at a time.
pub async fn rebuild(store: &Store) -> Result<u64, StoreError> {
    const PAGE: i64 = 2_000;
    let mut writer = store.begin().await?;
    writer.clear_rollups().await?;
    let mut rollup = Rollup::default();
    let mut after = String::new();
    let mut counted = 0u64;
    loop {
        let page = writer.ended_runs_after(&after, PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = last.id.clone();
        for (row, steps) in page.iter().filter(|(row, _)| row.status.is_terminal()) {
            rollup.add_run(row, steps);
            counted += 1;
        }
    }
    writer.add_rollup(rollup).await?;
    writer.commit().await?;
    Ok(counted)
}

/// The analytics of the runs that ended in `window` (as of `now`). Bounds are taken to
/// the enclosing five-minute buckets.
pub async fn analytics(
    store: &Store,
    window: Window,
    now: Millis,
) -> Result<Analytics, StoreError> {
    let (since, until) = window.bounds(now);
    let first_bucket = bucket_of(since);
    let mut answer = Analytics {
        period: match window {
            Window::Period(period) => Some(period),
            Window::Range { .. } => None,
        },
        from: Some(to_datetime(since)),
        to: Some(to_datetime(until)),
        ..Analytics::default()
    };

    let runs = store.run_totals(first_bucket, until).await?;
    let (mut ended_all, mut failed_all, mut with_target, mut breached) = (0u64, 0u64, 0u64, 0u64);
    for (workflow_type, totals) in runs {
        let (ended, failed) = (totals.ended.max(0) as u64, totals.failed.max(0) as u64);
        ended_all += ended;
        failed_all += failed;
        with_target += totals.with_target.max(0) as u64;
        breached += totals.breached.max(0) as u64;
        if ended > 0 {
            let mean = totals.duration_ms as f64 / ended as f64 / 1000.0;
            answer
                .avg_duration_by_type
                .insert(workflow_type.clone(), mean.round() as u64);
            if let Some(p95) = totals.histogram.quantile(0.95) {
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

    let steps = store.step_totals(first_bucket, until).await?;
    let (mut occurrences_all, mut retried_all) = (0u64, 0u64);
    let mut slowest: Vec<(f64, String, String, u64)> = Vec::new();
    let mut retrying: Vec<StepRetryRate> = Vec::new();
    for (workflow_type, step_name, totals) in steps {
        let (occurrences, retried) = (
            totals.occurrences.max(0) as u64,
            totals.retried.max(0) as u64,
        );
        if occurrences == 0 {
            continue;
        }
        occurrences_all += occurrences;
        retried_all += retried;
        let mean = totals.duration_ms as f64 / occurrences as f64 / 1000.0;
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
        let histogram = store
            .step_histogram(first_bucket, until, &workflow_type, &step_name)
            .await?;
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
    store: &Store,
    workflow_type: &str,
    window: Window,
    now: Millis,
) -> Result<Vec<StepNorm>, StoreError> {
    let (since, until) = window.bounds(now);
    let by_step = store
        .steps_of_type(workflow_type, bucket_of(since), until)
        .await?;
    let mut norms: Vec<StepNorm> = by_step
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
        .collect();
    norms.sort_by(|a, b| a.step_name.cmp(&b.step_name));
    Ok(norms)
}
