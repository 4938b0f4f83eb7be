//! Forecasts for running runs: when each is expected to end and whether it will make its
//! SLA target, from how long its type's steps took in earlier runs. The projector
//! forecasts each running run it changes (the forecast rides on the run's own update);
//! a sweep forecasts them again as time passes and stores and tells only what moved
//! noticeably. On the row, the list filters on it ("will breach").

use crate::alerts::AlertMoves;
use crate::projector::{add_of_engine, move_alerts};
pub use crate::store::forecast::TypeHistory;
use crate::store::rows::{Millis, RunForecast, StepRow, WorkflowRow};
use crate::store::{Store, StoreError};
use app::model::alert::AlertCondition;
use app::model::analytics::Histogram;
use app::model::{BreachOutlook, LiveEvent, StepKind, StepStatus, MIN_RUNS_FOR_FORECAST};
use std::collections::{HashMap, HashSet};

#[cfg(test)]
mod tests;

/// Running runs forecast per sweep; a sweep goes on from the last one's, so every running
/// run is forecast again however many there are, a slice at a time.
pub const RUNS_PER_SWEEP: i64 = 2_000;
/// Forecasts stored per write transaction (each holds the write lock a moment only).
const SAVED_PER_WRITE: usize = 32;
/// A forecast moved by less than this (or by less than [`NOTICEABLE_SHARE`] of the time
/// it has left) is not stored again nor told.
const NOTICEABLE_MS: f64 = 5_000.0;
const NOTICEABLE_SHARE: f64 = 0.05;

/// The forecast of `row`, running with `steps` at `now`, from its type's `history`.
pub fn forecast<'s>(
    row: &WorkflowRow,
    steps: impl Iterator<Item = &'s StepRow>,
    history: &TypeHistory,
    now: Millis,
) -> RunForecast {
    let runs_seen = history.runs;
    if runs_seen < MIN_RUNS_FOR_FORECAST {
        return RunForecast {
            runs_seen,
            expected_ms: None,
            likely_by_ms: None,
            breach: BreachOutlook::Unlikely,
        };
    }
    let [median, likely] = time_left(steps, history, now);
    let expected = now + median.round() as Millis;
    let likely_by = (now + likely.round() as Millis).max(expected);
    let deadline = row.sla_deadline_ms();
    RunForecast {
        runs_seen,
        expected_ms: Some(expected),
        likely_by_ms: Some(likely_by),
        breach: BreachOutlook::of(expected, likely_by, deadline),
    }
}

/// The quantiles of the earlier durations the two ends are told from: expected, likely-latest.
const QUANTILES: [f64; 2] = [0.5, 0.9];

/// How long the run has left, in milliseconds, with each step left taking each of the
/// [`QUANTILES`] of its earlier durations: the steps one after another, each block of
/// parallel branches as long as its slowest branch.
fn time_left<'s>(
    steps: impl Iterator<Item = &'s StepRow>,
    history: &TypeHistory,
    now: Millis,
) -> [f64; 2] {
    // The run's own normal steps in order, and by name (the latest of a name, should it
    // repeat).
    let steps: Vec<&StepRow> = steps.filter(|s| s.kind == StepKind::Normal).collect();
    let own: HashMap<&str, &StepRow> = steps.iter().map(|s| (s.name.as_str(), *s)).collect();
    let left = |name: &str| {
        let (step, durations) = (own.get(name).copied(), history.steps.get(name));
        QUANTILES.map(|q| step_left(step, durations, q, now))
    };
    // The shape of the newest completed run, then the run's own steps it did not have
    // (each after the others).
    let mut plan: Vec<(&str, Option<&str>)> = history
        .shape
        .iter()
        .map(|(name, branch)| (name.as_str(), branch.as_deref()))
        .collect();
    let in_shape: HashSet<&str> = plan.iter().map(|(name, _)| *name).collect();
    for step in &steps {
        if !in_shape.contains(step.name.as_str()) {
            plan.push((step.name.as_str(), None));
        }
    }
    let add = |to: &mut [f64; 2], left: [f64; 2]| {
        to[0] += left[0];
        to[1] += left[1];
    };
    let mut total = [0.0; 2];
    let mut block: HashMap<&str, [f64; 2]> = HashMap::new();
    let end_block = |block: &mut HashMap<&str, [f64; 2]>, total: &mut [f64; 2]| {
        for (at, sum) in total.iter_mut().enumerate() {
            *sum += block.values().map(|left| left[at]).fold(0.0, f64::max);
        }
        block.clear();
    };
    for (name, branch) in plan {
        match branch {
            Some(branch) => add(block.entry(branch).or_default(), left(name)),
            None => {
                end_block(&mut block, &mut total);
                add(&mut total, left(name));
            }
        }
    }
    end_block(&mut block, &mut total);
    total
}

/// What one step has left: nothing once it ended; the `q` quantile of the earlier
/// durations longer than its own, less what it has run, while it runs; the `q` quantile of
/// all of them before it starts. A step never seen before counts nothing.
fn step_left(step: Option<&StepRow>, durations: Option<&Histogram>, q: f64, now: Millis) -> f64 {
    let Some(durations) = durations else {
        return 0.0;
    };
    match step.map(|s| (s.status, s.started_ms)) {
        Some((
            StepStatus::Completed
            | StepStatus::Skipped
            | StepStatus::Failed
            | StepStatus::Cancelled,
            _,
        )) => 0.0,
        Some((StepStatus::Running | StepStatus::Retrying, Some(started))) => {
            let ran = (now - started).max(0) as f64;
            // Longer than every earlier run of the step: it may end any moment.
            durations
                .quantile_beyond(q, ran)
                .map_or(0.0, |total| total - ran)
        }
        _ => durations.quantile(q).unwrap_or(0.0),
    }
}

/// Whether `new` differs enough from the stored `old` to be stored and told.
pub fn noticeably_changed(old: Option<&RunForecast>, new: &RunForecast, now: Millis) -> bool {
    let Some(old) = old else {
        return true;
    };
    let moved = |was: Option<Millis>, is: Option<Millis>| match (was, is) {
        (Some(was), Some(is)) => {
            let left = (is - now).max(0) as f64;
            ((is - was).abs() as f64) >= NOTICEABLE_MS.max(left * NOTICEABLE_SHARE)
        }
        (was, is) => was.is_some() != is.is_some(),
    };
    old.breach != new.breach
        || moved(old.expected_ms, new.expected_ms)
        || moved(old.likely_by_ms, new.likely_by_ms)
        || (!old.is_known() && old.runs_seen != new.runs_seen)
}

/// Where the last sweep stopped: each sweep forecasts the next [`RUNS_PER_SWEEP`] running
/// runs.
#[derive(Default)]
pub struct Forecaster {
    after: String,
    /// The slices swept are also looked at for stuck steps.
    stuck: crate::alerts::stuck::StuckWatch,
}

impl Forecaster {
    /// Forecasts the next slice of running runs and stores the forecasts that changed
    /// noticeably; returns their live events, by engine.
    pub async fn sweep(
        &mut self,
        store: &Store,
        now: Millis,
    ) -> Result<Vec<(String, Vec<LiveEvent>)>, StoreError> {
        let running = store.running_runs(&self.after, RUNS_PER_SWEEP).await?;
        self.after = match running.last() {
            Some((row, _)) if running.len() as i64 == RUNS_PER_SWEEP => row.id.clone(),
            _ => String::new(),
        };
        let mut changed = Vec::new();
        let mut histories = Vec::with_capacity(running.len());
        for (row, steps) in &running {
            let history = store.type_history(&row.workflow_type, now).await?;
            let new = forecast(row, steps.iter(), &history, now);
            if noticeably_changed(row.forecast.as_ref(), &new, now) {
                changed.push((row.id.clone(), new));
            }
            histories.push(history);
        }
        let swept: Vec<(&WorkflowRow, &[StepRow], &TypeHistory)> = running
            .iter()
            .zip(&histories)
            .map(|((row, steps), history)| (row, steps.as_slice(), history.as_ref()))
            .collect();
        let stuck = self.stuck.sweep(store, &swept, now).await?;
        let mut out = crate::projector::commit_alert_moves(store, &stuck, now).await?;
        // A few at a time: the projector's batches take turns with these writes.
        for slice in changed.chunks(SAVED_PER_WRITE) {
            let mut writer = store.begin().await?;
            let mut told = Vec::new();
            let mut alerting = AlertMoves::default();
            for row in writer.save_forecasts(slice, now).await? {
                alerting.settle(AlertCondition::ForecastBreach, &row);
                let event = LiveEvent::WorkflowUpdated {
                    workflow: Box::new(row.to_wire(now)),
                };
                add_of_engine(&mut told, &row.engine, vec![event]);
            }
            move_alerts(&mut writer, &alerting, now, &mut told).await?;
            // On PostgreSQL the changes go to the shared log with them.
            for (engine, events) in &told {
                writer.record_live(Some(engine), events, now).await?;
            }
            writer.commit().await?;
            for (engine, events) in told {
                add_of_engine(&mut out, &engine, events);
            }
        }
        Ok(out)
    }
}
