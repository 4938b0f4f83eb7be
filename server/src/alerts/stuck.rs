//! Stuck steps: a step that has run far beyond its usual time (the p95 of the step's
//! earlier durations in its type's runs) and has said nothing for a while (no new log
//! line, no new attempt). The forecast sweep, which reads every running run with its
//! steps and its type's history, tells the watcher; it fires the run's "stuck step" alert
//! when one begins to be stuck and resolves it when none is any more (the step moved on,
//! logged, or the run ended).

use super::{AlertMoves, NewAlert};
use crate::forecast::TypeHistory;
use crate::store::rows::{Millis, StepRow, WorkflowRow};
use crate::store::{Store, StoreError};
use app::model::alert::AlertCondition;
use app::model::{format_duration, StepKind, StepStatus, MIN_RUNS_FOR_FORECAST};
use std::collections::HashMap;

/// "Far beyond its usual time": this many times its p95...
const TIMES_USUAL: f64 = 3.0;
/// ... and at least this much past it.
const AT_LEAST_PAST_MS: f64 = 10_000.0;
/// Said nothing (no log line, no attempt) for its p95, and at least this long.
const SILENT_AT_LEAST_MS: f64 = 10_000.0;

/// A step running far beyond its usual time, before its silence is known.
#[derive(Debug, Clone, PartialEq)]
pub struct Overrun {
    pub step_number: u32,
    pub name: String,
    /// When it started, and when its latest attempt began.
    pub started_ms: Millis,
    pub attempt_began_ms: Millis,
    /// Its p95 over the type's earlier runs, in ms.
    pub usual_ms: f64,
}

impl Overrun {
    /// Whether it has said nothing long enough, its latest log line written at
    /// `last_log_ms` (if ever), at `now`.
    pub fn is_silent(&self, last_log_ms: Option<Millis>, now: Millis) -> bool {
        let last_word = last_log_ms.unwrap_or(0).max(self.attempt_began_ms);
        (now - last_word) as f64 >= self.usual_ms.max(SILENT_AT_LEAST_MS)
    }

    /// What the alert says.
    pub fn said(&self, last_log_ms: Option<Millis>, now: Millis) -> String {
        let seconds = |ms: f64| format_duration(ms / 1000.0);
        let ran = seconds((now - self.started_ms) as f64);
        let silent = match last_log_ms {
            Some(at) => format!("last log line {} ago", seconds((now - at) as f64)),
            None => "no log line".to_owned(),
        };
        format!(
            "step {} ({}) has run {ran}, usually at most {} (p95); {silent}",
            self.step_number,
            self.name,
            seconds(self.usual_ms)
        )
    }
}

/// The first of a running run's `steps` that has run far beyond its usual time, if one
/// has.
pub fn overrun<'s>(
    steps: impl Iterator<Item = &'s StepRow>,
    history: &TypeHistory,
    now: Millis,
) -> Option<Overrun> {
    if history.runs < MIN_RUNS_FOR_FORECAST {
        return None;
    }
    steps
        .filter(|step| step.kind == StepKind::Normal)
        .filter(|step| matches!(step.status, StepStatus::Running | StepStatus::Retrying))
        .find_map(|step| {
            let started = step.started_ms?;
            let usual = history.steps.get(&step.name)?.quantile(0.95)?;
            let ran = (now - started) as f64;
            if ran < usual * TIMES_USUAL || ran - usual < AT_LEAST_PAST_MS {
                return None;
            }
            let attempt_began = step
                .attempts
                .iter()
                .filter_map(|attempt| attempt.started_ms)
                .max()
                .unwrap_or(started);
            Some(Overrun {
                step_number: step.step_number,
                name: step.name.clone(),
                started_ms: started,
                attempt_began_ms: attempt_began,
                usual_ms: usual,
            })
        })
}

/// The runs this instance knows to have a stuck step (and which, once it has seen it), so
/// that it resolves their alerts when they no longer have: read from the store's holding
/// alerts at first.
#[derive(Default)]
pub struct StuckWatch {
    stuck: Option<HashMap<String, Option<u32>>>,
}

impl StuckWatch {
    /// What the sweep of `running` (running runs with their steps and their type's
    /// history, a slice of all of them) at `now` fires and resolves.
    pub async fn sweep(
        &mut self,
        store: &Store,
        running: &[(&WorkflowRow, &[StepRow], &TypeHistory)],
        now: Millis,
    ) -> Result<AlertMoves, StoreError> {
        if self.stuck.is_none() {
            let holding = store.holding_alerts(AlertCondition::StuckStep).await?;
            self.stuck = Some(holding.into_iter().map(|subject| (subject, None)).collect());
        }
        let stuck = self.stuck.get_or_insert_with(HashMap::new);
        let mut moves = AlertMoves::default();
        for (row, steps, history) in running {
            let found = match overrun(steps.iter(), history, now) {
                Some(overrun) => {
                    let last_log = store.last_log_ms(&row.id, overrun.step_number).await?;
                    overrun
                        .is_silent(last_log, now)
                        .then(|| (overrun.step_number, overrun.said(last_log, now)))
                }
                None => None,
            };
            match (found, stuck.get(&row.id).copied()) {
                (Some((step, said)), known) => {
                    match known {
                        // Its alert holds already (since before a restart: now its step
                        // is known).
                        Some(None) => {}
                        Some(Some(was)) if was == step => continue,
                        // Another step of the run is stuck now: a new alert says which.
                        Some(Some(_)) => {
                            moves
                                .resolve
                                .push((row.id.clone(), AlertCondition::StuckStep));
                            moves.fire.push(NewAlert::about_run(
                                AlertCondition::StuckStep,
                                row,
                                said,
                            ));
                        }
                        None => {
                            moves.fire.push(NewAlert::about_run(
                                AlertCondition::StuckStep,
                                row,
                                said,
                            ));
                        }
                    }
                    stuck.insert(row.id.clone(), Some(step));
                }
                (None, Some(_)) => {
                    moves
                        .resolve
                        .push((row.id.clone(), AlertCondition::StuckStep));
                    stuck.remove(&row.id);
                }
                (None, None) => {}
            }
        }
        // Runs known stuck that this slice did not hold: resolved once they no longer run
        // (the slices go round every running run; an ended run is in none).
        let elsewhere: Vec<String> = stuck
            .keys()
            .filter(|id| running.iter().all(|(row, ..)| &row.id != *id))
            .cloned()
            .collect();
        if !elsewhere.is_empty() {
            let still = store.still_running(&elsewhere).await?;
            for id in elsewhere.into_iter().filter(|id| !still.contains(id)) {
                moves.resolve.push((id.clone(), AlertCondition::StuckStep));
                stuck.remove(&id);
            }
        }
        Ok(moves)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rows::AttemptRecord;
    use app::model::analytics::Histogram;

    const T0: Millis = 1_790_000_000_000;
    const SECOND: Millis = 1_000;

    fn history(runs: u32, step: &str, around_ms: i64) -> TypeHistory {
        let mut durations = Histogram::default();
        for i in 0..40 {
            durations.add(around_ms * 9 / 10 + around_ms * 2 / 10 * i / 40);
        }
        TypeHistory {
            runs,
            steps: [(step.to_owned(), durations)].into_iter().collect(),
            shape: vec![(step.to_owned(), None)],
        }
    }

    fn running_step(name: &str, started: Millis, attempts: &[Millis]) -> StepRow {
        let mut step = StepRow::pending(1, name.to_owned());
        step.status = StepStatus::Running;
        step.started_ms = Some(started);
        step.attempts = attempts
            .iter()
            .enumerate()
            .map(|(n, at)| AttemptRecord {
                attempt: n as u32 + 1,
                status: StepStatus::Running,
                started_ms: Some(*at),
                completed_ms: None,
                error: None,
            })
            .collect();
        step
    }

    #[test]
    fn a_step_far_beyond_its_p95_overruns_and_one_within_does_not() {
        let usual = history(10, "deploy", 20 * SECOND);
        let step = running_step("deploy", T0, &[T0]);
        // p95 about 22 s: three times that is about 66 s.
        assert!(overrun([&step].into_iter(), &usual, T0 + 50 * SECOND).is_none());
        let found = overrun([&step].into_iter(), &usual, T0 + 80 * SECOND).unwrap();
        assert_eq!(found.step_number, 1);
        assert!((20_000.0..23_000.0).contains(&found.usual_ms), "{found:?}");
        // Too little history, or a step never seen before: no judgement.
        assert!(overrun(
            [&step].into_iter(),
            &history(4, "deploy", 20 * SECOND),
            T0 + 80 * SECOND
        )
        .is_none());
        assert!(overrun(
            [&step].into_iter(),
            &history(10, "other", 20 * SECOND),
            T0 + 80 * SECOND
        )
        .is_none());
        // A short step must also be well past its p95 (10 s), not just three times it.
        let quick = history(10, "deploy", SECOND);
        assert!(overrun([&step].into_iter(), &quick, T0 + 5 * SECOND).is_none());
        assert!(overrun([&step].into_iter(), &quick, T0 + 12 * SECOND).is_some());
    }

    #[test]
    fn a_step_that_logs_or_tries_again_is_not_silent() {
        let usual = history(10, "deploy", 20 * SECOND);
        let now = T0 + 120 * SECOND;
        let step = running_step("deploy", T0, &[T0]);
        let found = overrun([&step].into_iter(), &usual, now).unwrap();
        assert!(found.is_silent(None, now));
        assert!(
            found.is_silent(Some(T0 + 60 * SECOND), now),
            "60 s since its last line"
        );
        assert!(
            !found.is_silent(Some(now - 5 * SECOND), now),
            "it logged 5 s ago"
        );
        assert_eq!(
            found.said(Some(T0 + 60 * SECOND), now),
            format!(
                "step 1 (deploy) has run 2:00, usually at most {} (p95); last log line 1:00 ago",
                format_duration(found.usual_ms / 1000.0)
            )
        );
        let retried = running_step("deploy", T0, &[T0, now - 5 * SECOND]);
        let found = overrun([&retried].into_iter(), &usual, now).unwrap();
        assert!(!found.is_silent(None, now), "a new attempt 5 s ago");
    }
}
