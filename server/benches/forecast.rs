//! Backtest of the forecasts on the demo's own workflow types. Simulates runs of each
//! definition in `workflows/` as the definitions say (each attempt's duration, failures
//! and retries with their backoff, stalls, timeouts), pushes a week of them through the
//! events API as history (the projector keeps the rollups the forecasts read), then
//! replays later runs and reports:
//!
//! - how far the expected end was from the real one at 25 %, 50 % and 75 % of each run
//!   (median absolute error, in seconds and in share of the run's duration);
//! - of the runs that missed their SLA target, how many were forecast "likely breach"
//!   before the 90 % warning and how long before the breach, against those only caught at
//!   90 %; and how many runs that made their target were forecast to miss it.
//!
//! `cargo bench -p server --bench forecast` (`STEPLINE_BACKTEST_RUNS`: runs of each type
//! pushed as history, default 300; as many again are replayed; `STEPLINE_BACKTEST_SEED`).

mod support;

use serde_json::{json, Value};
use server::engines::builtin::definition::{self, Action, Definition};
use server::forecast::{forecast, TypeHistory};
use server::store::rows::{StepRow, WorkflowRow};
use std::collections::HashMap;
use std::time::Duration;
use support::{post_json, quantile, setting, DAY_MS};

/// Runs pushed per request.
const RUNS_PER_PUSH: usize = 20;
/// The breach walk looks at each run every this share of its SLA target.
const WALK_STEP: f64 = 0.01;

/// One simulated step: when it started and ended, from its run's start.
struct SimulatedStep {
    number: u32,
    name: String,
    branch: Option<String>,
    start_ms: i64,
    end_ms: i64,
    attempts: u32,
}

/// One simulated run: its steps, how long it lasted, and whether it completed.
struct SimulatedRun {
    steps: Vec<SimulatedStep>,
    duration_ms: i64,
    completed: bool,
}

fn between(rng: &mut fastrand::Rng, (low, high): (Duration, Duration)) -> i64 {
    let (low, high) = (low.as_millis() as i64, high.as_millis() as i64);
    if high <= low {
        low
    } else {
        rng.i64(low..=high)
    }
}

/// A run of `definition` as its built-in engine would run it: every step once its
/// dependencies completed, each attempt a random duration (or a stall), failing at its
/// rate or at its timeout, retried after the policy's backoff; the run fails with a step
/// that has no attempt left.
fn simulate(definition: &Definition, rng: &mut fastrand::Rng) -> SimulatedRun {
    let mut ends: HashMap<u32, i64> = HashMap::new();
    let mut steps = Vec::new();
    for step in &definition.steps {
        let start = step.after.iter().map(|a| ends[a]).max().unwrap_or(0);
        let mut at = start;
        let mut attempt = 1;
        let succeeded = loop {
            let Action::Simulate(simulation) = &step.action else {
                break true;
            };
            let mut took = if rng.f64() < simulation.stall_rate {
                between(rng, simulation.stall)
            } else {
                between(rng, simulation.duration)
            };
            let mut failed = rng.f64() < simulation.failure_rate;
            if let Some(timeout) = step.timeout {
                let timeout = timeout.as_millis() as i64;
                if took > timeout {
                    took = timeout;
                    failed = true;
                }
            }
            at += took;
            if !failed {
                break true;
            }
            attempt += 1;
            match step.retry.delay_before(attempt) {
                Some(delay) => at += delay.as_millis() as i64,
                None => break false,
            }
        };
        ends.insert(step.number, at);
        steps.push(SimulatedStep {
            number: step.number,
            name: step.name.clone(),
            branch: step.branch.clone(),
            start_ms: start,
            end_ms: at,
            attempts: attempt.min(step.retry.max_attempts.max(1)),
        });
        if !succeeded {
            return SimulatedRun {
                steps,
                duration_ms: at,
                completed: false,
            };
        }
    }
    let duration_ms = ends.values().copied().max().unwrap_or(0);
    SimulatedRun {
        steps,
        duration_ms,
        completed: true,
    }
}

fn at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("a time")
        .to_rfc3339()
}

/// The events an engine would push for `run`, started at `start`.
fn events_of(id: &str, definition: &Definition, run: &SimulatedRun, start: i64) -> Vec<Value> {
    let mut events = vec![json!({
        "type": "workflow_started", "workflow_id": id, "at": at(start),
        "workflow_type": definition.workflow_type,
        "total_steps": definition.steps.len(),
        "sla_target_seconds": definition.sla_target.map(|t| t.as_secs()),
    })];
    for step in &run.steps {
        let mut attempt_start = start + step.start_ms;
        events.push(json!({
            "type": "step_started", "workflow_id": id, "at": at(attempt_start),
            "step_number": step.number, "name": step.name, "branch": step.branch,
        }));
        // Earlier attempts' failures are spread over the step (their exact times do not
        // change its duration, which is what the forecasts learn).
        for attempt in 2..=step.attempts {
            attempt_start += (step.end_ms - step.start_ms) / i64::from(step.attempts);
            events.push(json!({
                "type": "step_attempt_failed", "workflow_id": id, "at": at(attempt_start),
                "step_number": step.number, "error": "simulated failure",
            }));
            events.push(json!({
                "type": "step_started", "workflow_id": id, "at": at(attempt_start),
                "step_number": step.number, "attempt": attempt,
            }));
        }
        let end = start + step.end_ms;
        events.push(if run.completed || step.end_ms < run.duration_ms {
            json!({"type": "step_completed", "workflow_id": id, "at": at(end),
                   "step_number": step.number})
        } else {
            json!({"type": "step_failed", "workflow_id": id, "at": at(end),
                   "step_number": step.number, "error": "simulated failure"})
        });
    }
    events.push(json!({
        "type": "workflow_status_changed", "workflow_id": id,
        "at": at(start + run.duration_ms),
        "status": if run.completed { "COMPLETED" } else { "FAILED" },
    }));
    events
}

/// The run's steps as the store would hold them `elapsed` ms after its start.
fn steps_at(run: &SimulatedRun, start: i64, elapsed: i64) -> Vec<StepRow> {
    run.steps
        .iter()
        .map(|step| {
            let mut row = StepRow::pending(step.number, step.name.clone());
            row.branch = step.branch.clone();
            if step.start_ms <= elapsed {
                row.started_ms = Some(start + step.start_ms);
                row.status = app::model::StepStatus::Running;
            }
            if step.end_ms <= elapsed {
                row.completed_ms = Some(start + step.end_ms);
                row.status = app::model::StepStatus::Completed;
            }
            row
        })
        .collect()
}

/// What the replay found for one type.
#[derive(Default)]
struct Findings {
    /// Absolute errors (ms) and the same as a share of the run's duration, by progress.
    errors: [Vec<(f64, f64)>; 3],
    replayed: usize,
    breached: usize,
    /// Of the breached runs: forecast "likely breach" before 90 % of the target, with how
    /// long (s) before the breach.
    forecast_early: Vec<f64>,
    /// Of the breached runs: said "likely" only at or after 90 % (or never).
    caught_at_warning: usize,
    /// Runs that made their target but were forecast "likely breach" at some point.
    false_alarms: usize,
}

const PROGRESS: [f64; 3] = [0.25, 0.5, 0.75];

fn replay(
    template: &WorkflowRow,
    definition: &Definition,
    history: &TypeHistory,
    run: &SimulatedRun,
    start: i64,
    findings: &mut Findings,
) {
    let sla_ms = definition.sla_target.map(|t| t.as_millis() as i64);
    let row = WorkflowRow {
        workflow_type: definition.workflow_type.clone(),
        started_ms: Some(start),
        created_ms: start,
        sla_target_seconds: sla_ms.map(|ms| ms / 1000),
        ..template.clone()
    };
    let end = start + run.duration_ms;
    findings.replayed += 1;
    for (slot, share) in PROGRESS.iter().enumerate() {
        let elapsed = (run.duration_ms as f64 * share) as i64;
        let now = start + elapsed;
        let said = forecast(&row, steps_at(run, start, elapsed).iter(), history, now);
        if let Some(expected) = said.expected_ms {
            let error = (expected - end).abs() as f64;
            findings.errors[slot].push((error, error / run.duration_ms.max(1) as f64));
        }
    }
    let Some(sla_ms) = sla_ms else {
        return;
    };
    let breached = run.duration_ms > sla_ms;
    findings.breached += usize::from(breached);
    // Walk the run until its end or its deadline, whichever comes first.
    let mut first_likely = None;
    let walk_until = run.duration_ms.min(sla_ms);
    let stride = ((sla_ms as f64 * WALK_STEP) as i64).max(1);
    let mut elapsed = 0;
    while elapsed < walk_until {
        let now = start + elapsed;
        let said = forecast(&row, steps_at(run, start, elapsed).iter(), history, now);
        if said.breach == app::model::BreachOutlook::Likely {
            first_likely = Some(elapsed);
            break;
        }
        elapsed += stride;
    }
    match (breached, first_likely) {
        (true, Some(at)) if (at as f64) < 0.9 * sla_ms as f64 => {
            findings.forecast_early.push((sla_ms - at) as f64 / 1000.0);
        }
        (true, _) => findings.caught_at_warning += 1,
        (false, Some(_)) => findings.false_alarms += 1,
        (false, None) => {}
    }
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    quantile(&values, 0.5)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let runs = setting("STEPLINE_BACKTEST_RUNS", 300);
    let seed = setting("STEPLINE_BACKTEST_SEED", 7) as u64;
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows");
    let definitions = definition::load_dir(&folder).expect("the demo's definitions");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let state = support::core(dir.path()).await;
    support::authorize(&state, &["backtest"]).await;
    let store = state.store.clone();
    let router = server::app(state);
    let mut rng = fastrand::Rng::with_seed(seed);
    let now = chrono::Utc::now().timestamp_millis();

    // History: `runs` runs of each type over the last six days, pushed as an engine would.
    let spacing = 6 * DAY_MS / runs.max(1) as i64;
    for definition in &definitions {
        let mut batch = Vec::new();
        for n in 0..runs {
            let run = simulate(definition, &mut rng);
            let start = now - 6 * DAY_MS + n as i64 * spacing;
            let id = format!("history-{}-{n}", definition.workflow_type);
            batch.extend(events_of(&id, definition, &run, start));
            if (n + 1) % RUNS_PER_PUSH == 0 || n + 1 == runs {
                let body = json!({"source": "backtest", "events": batch}).to_string();
                post_json(&router, "/api/platform/orchestration/events", body).await;
                batch = Vec::new();
            }
        }
    }
    // A row to replay on (what the store holds of a run besides its times).
    let template_events = vec![json!({
        "type": "workflow_started", "workflow_id": "backtest-template", "at": at(now),
        "workflow_type": "template",
    })];
    let body = json!({"source": "backtest", "events": template_events}).to_string();
    post_json(&router, "/api/platform/orchestration/events", body).await;
    let template = store
        .workflow_row("backtest-template")
        .await
        .expect("the store answers")
        .expect("the template run");

    println!("Backtest: {runs} runs of each demo type as history (seed {seed}), as many replayed");
    println!(
        "{:<18} {:>8} {:>22} {:>22} {:>22} {:>9} {:>24} {:>10} {:>7}",
        "type",
        "replayed",
        "ETA error at 25 %",
        "at 50 %",
        "at 75 %",
        "breached",
        "forecast before 90 %",
        "only at 90",
        "false+"
    );
    for definition in &definitions {
        let history = store
            .read_type_history(&definition.workflow_type, now)
            .await
            .expect("the type's history");
        let mut findings = Findings::default();
        for n in 0..runs {
            let run = simulate(definition, &mut rng);
            if !run.completed {
                continue;
            }
            let start = now + n as i64 * 1_000;
            replay(&template, definition, &history, &run, start, &mut findings);
        }
        let error = |slot: usize| {
            let errors = &findings.errors[slot];
            format!(
                "{:.1} s ({:.0} %)",
                median(errors.iter().map(|(ms, _)| ms / 1000.0)),
                median(errors.iter().map(|(_, share)| share * 100.0))
            )
        };
        let early = &findings.forecast_early;
        println!(
            "{:<18} {:>8} {:>22} {:>22} {:>22} {:>9} {:>24} {:>10} {:>7}",
            definition.workflow_type,
            findings.replayed,
            error(0),
            error(1),
            error(2),
            findings.breached,
            format!(
                "{} (median {:.0} s ahead)",
                early.len(),
                median(early.iter().copied())
            ),
            findings.caught_at_warning,
            findings.false_alarms
        );
    }
    println!(
        "(A breach caught at the 90 % warning is told {} before the target; \"false+\": runs \
         that made their target but were forecast to miss it at some point.)",
        "10 % of the target"
    );
}
