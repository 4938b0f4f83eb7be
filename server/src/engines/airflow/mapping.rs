//! How Airflow's facts become Stepline's: a DAG's tasks become a run's steps (in the
//! order the DAG runs them, with its parallel branches and compensation-like clean-up
//! tasks), a mapped task one step per map index, and a task instance's state and tries
//! the step's attempts. Airflow tells states, not events: each task instance is compared
//! with what was reported of its step, and only the difference is reported.

use super::client::{DagRun, Task, TaskInstance};
use super::CompensationRule;
use crate::source::{RunSnapshot, StepDeclaration};
use app::model::{RetryPolicyInfo, StepKind, StepStatus, WaitReason, WorkflowStatus};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};

/// A step's identity in Airflow: its task and map index (-1 when not mapped).
pub type StepKey = (String, i64);

/// The step name of a task instance: the task id, with `[map index]` for a mapped one.
pub fn step_name(task_id: &str, map_index: i64) -> String {
    if map_index < 0 {
        task_id.to_owned()
    } else {
        format!("{task_id}[{map_index}]")
    }
}

/// The task and map index a step name stands for.
pub fn step_key(name: &str) -> StepKey {
    if let Some(open) = name.rfind('[') {
        if let Some(index) = name[open + 1..]
            .strip_suffix(']')
            .and_then(|i| i.parse::<i64>().ok())
        {
            return (name[..open].to_owned(), index);
        }
    }
    (name.to_owned(), -1)
}

/// A task as a step needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskShape {
    pub task_id: String,
    pub upstream: Vec<String>,
    /// The parallel branch it is on (the task that begins the branch), if any.
    pub branch: Option<String>,
    pub compensation: bool,
    pub mapped: bool,
    pub retry_policy: Option<RetryPolicyInfo>,
}

/// A DAG's tasks in the order a run goes through them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Structure {
    pub tasks: Vec<TaskShape>,
    /// Whether the DAG has deadline alerts (its runs' deadlines are then read).
    pub has_deadlines: bool,
}

impl Structure {
    /// Orders `tasks` so that each comes after its upstream tasks (in the API's order
    /// where the DAG leaves it open), and finds their parallel branches: the tasks after
    /// a fan-out, each line up to the next fan-in or fan-out.
    pub fn from_tasks(tasks: &[Task], rule: &CompensationRule) -> Self {
        let index: HashMap<&str, usize> = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.task_id.as_str(), i))
            .collect();
        let mut upstream: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
        for (i, task) in tasks.iter().enumerate() {
            for down in &task.downstream_task_ids {
                if let Some(&d) = index.get(down.as_str()) {
                    upstream[d].push(i);
                }
            }
        }
        // Kahn's algorithm, always taking the first ready task in the API's order; a
        // cycle (which Airflow refuses) leaves its tasks in that order at the end.
        let mut waiting: Vec<usize> = upstream.iter().map(Vec::len).collect();
        let mut placed = vec![false; tasks.len()];
        let mut order = Vec::with_capacity(tasks.len());
        while order.len() < tasks.len() {
            let next = (0..tasks.len())
                .find(|&i| !placed[i] && waiting[i] == 0)
                .or_else(|| (0..tasks.len()).find(|&i| !placed[i]))
                .expect("a task is left");
            placed[next] = true;
            order.push(next);
            for down in &tasks[next].downstream_task_ids {
                if let Some(&d) = index.get(down.as_str()) {
                    waiting[d] = waiting[d].saturating_sub(1);
                }
            }
        }
        let fans_out = |i: usize| tasks[i].downstream_task_ids.len() > 1;
        let mut branch: Vec<Option<String>> = vec![None; tasks.len()];
        for &i in &order {
            branch[i] = match upstream[i].as_slice() {
                [only] if fans_out(*only) => Some(tasks[i].task_id.clone()),
                [only] => branch[*only].clone(),
                _ => None,
            };
        }
        let shapes = order
            .into_iter()
            .map(|i| {
                let task = &tasks[i];
                TaskShape {
                    task_id: task.task_id.clone(),
                    upstream: upstream[i]
                        .iter()
                        .map(|&u| tasks[u].task_id.clone())
                        .collect(),
                    branch: branch[i].clone(),
                    compensation: rule.is_compensation(&task.task_id, task.trigger_rule.as_deref()),
                    mapped: task.is_mapped.unwrap_or(false),
                    retry_policy: retry_policy(task),
                }
            })
            .collect();
        Self {
            tasks: shapes,
            has_deadlines: false,
        }
    }

    pub fn task(&self, task_id: &str) -> Option<&TaskShape> {
        self.tasks.iter().find(|t| t.task_id == task_id)
    }
}

/// A task's retries as Stepline's retry policy: attempts in all, and the waits (doubling
/// when the task backs off exponentially, as Airflow does with base 2).
fn retry_policy(task: &Task) -> Option<RetryPolicyInfo> {
    let retries = task.retries?.max(0.0) as u32;
    let delay = task.retry_delay.map_or(300.0, |d| d.as_seconds());
    let exponential = match &task.retry_exponential_backoff {
        Some(serde_json::Value::Bool(on)) => *on,
        Some(serde_json::Value::Number(base)) => base.as_f64().unwrap_or(0.0) > 0.0,
        _ => false,
    };
    Some(RetryPolicyInfo {
        max_attempts: retries.saturating_add(1),
        delays_seconds: (0..retries.min(16))
            .map(|n| {
                if exponential {
                    delay * 2f64.powi(n as i32)
                } else {
                    delay
                }
            })
            .collect(),
    })
}

/// A run's status in Stepline for a DAG run's state.
pub fn run_status(state: Option<&str>) -> WorkflowStatus {
    match state {
        Some("success") => WorkflowStatus::Completed,
        Some("failed") => WorkflowStatus::Failed,
        Some("running") => WorkflowStatus::Running,
        _ => WorkflowStatus::Pending,
    }
}

/// How a run was triggered, in the story's words.
pub fn trigger_type(run: &DagRun) -> String {
    match run.run_type.as_deref() {
        Some("manual") => "manual",
        Some("scheduled") => "scheduled",
        Some("backfill") => "backfill",
        Some("asset_triggered" | "dataset_triggered") => "asset",
        Some(other) => other,
        None => "unknown",
    }
    .to_owned()
}

/// Who triggered a run: the user, else what did (the scheduler, the API).
pub fn triggered_by(run: &DagRun) -> Option<String> {
    run.triggering_user_name
        .clone()
        .or_else(|| run.triggered_by.clone())
}

/// What was reported of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportedStep {
    pub number: u32,
    pub status: StepStatus,
    /// The number of its latest attempt (0: never started).
    pub attempts: u32,
    /// The Airflow state last seen (not stored: after a restart it is learnt again).
    pub seen: Option<String>,
}

/// What was reported of a run: its status and steps, by task and map index.
#[derive(Debug, Clone, PartialEq)]
pub struct Reported {
    pub status: WorkflowStatus,
    pub steps: HashMap<StepKey, ReportedStep>,
}

impl Reported {
    /// What the read model holds of a run (after a restart, or a failed commit).
    pub fn from_snapshot(run: &RunSnapshot) -> Self {
        let steps = run
            .steps
            .iter()
            .map(|step| {
                (
                    step_key(&step.name),
                    ReportedStep {
                        number: step.step_number,
                        status: step.status,
                        attempts: step.attempts.last().map_or(0, |a| a.attempt),
                        seen: None,
                    },
                )
            })
            .collect();
        Self {
            status: run.status,
            steps,
        }
    }

    /// The next free step number.
    pub fn next_number(&self) -> u32 {
        self.steps.values().map(|s| s.number).max().unwrap_or(0) + 1
    }
}

/// The steps a run declares when it is first seen: every task in the DAG's order, a
/// mapped task one step per map index already known (one step for the task while it is
/// not expanded yet).
pub fn declarations(structure: &Structure, instances: &[TaskInstance]) -> Vec<StepDeclaration> {
    let mut indexes: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for instance in instances.iter().filter(|i| i.map_index >= 0) {
        indexes
            .entry(instance.task_id.as_str())
            .or_default()
            .push(instance.map_index);
    }
    let mut steps = Vec::new();
    for task in &structure.tasks {
        let mut maps = indexes
            .get(task.task_id.as_str())
            .cloned()
            .unwrap_or_default();
        maps.sort_unstable();
        if maps.is_empty() {
            maps.push(-1);
        }
        for map_index in maps {
            let number = steps.len() as u32 + 1;
            let step = declaration(task, map_index, number, |upstream| {
                steps
                    .iter()
                    .find(|s: &&StepDeclaration| step_key(&s.name).0 == upstream)
                    .map(|s| s.step_number)
            });
            steps.push(step);
        }
    }
    steps
}

/// The declaration of step `number` for `task`'s instance `map_index`; `number_of` tells
/// the step of an upstream task (a compensation undoes its first upstream task's step).
pub fn declaration(
    task: &TaskShape,
    map_index: i64,
    number: u32,
    number_of: impl Fn(&str) -> Option<u32>,
) -> StepDeclaration {
    let compensates = task
        .compensation
        .then(|| task.upstream.iter().find_map(|up| number_of(up)));
    StepDeclaration {
        step_number: number,
        name: step_name(&task.task_id, map_index),
        kind: if task.compensation {
            StepKind::Compensation
        } else {
            StepKind::Normal
        },
        // A mapped task's instances run side by side: one column, named by the task.
        branch: if task.mapped {
            Some(task.branch.clone().unwrap_or_else(|| task.task_id.clone()))
        } else {
            task.branch.clone()
        },
        compensates: compensates.flatten(),
        input: None,
        retry_policy: task.retry_policy.clone(),
    }
}

/// What happened to a step since it was last reported, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum StepFact {
    /// Cleared in Airflow: it will run again (its earlier attempts stay).
    Rescheduled,
    Started {
        attempt: u32,
        at: DateTime<Utc>,
    },
    /// An attempt ended in failure and another will follow; `why` when Airflow's state
    /// says it (else the try's log does).
    AttemptFailed {
        attempt: u32,
        at: DateTime<Utc>,
        why: Option<String>,
    },
    /// The last attempt failed; no attempt is left.
    Failed {
        attempt: u32,
        at: DateTime<Utc>,
    },
    Completed {
        at: DateTime<Utc>,
    },
    Skipped {
        at: DateTime<Utc>,
    },
    /// Will not run, or stopped before it finished.
    Cancelled {
        at: DateTime<Utc>,
        reason: String,
    },
    /// Waiting: for a worker (queued), its trigger (deferred), a reschedule (a sensor),
    /// a human.
    Waiting {
        at: DateTime<Utc>,
        reason: WaitReason,
        why: String,
    },
}

/// Whether the step's tries must be read to tell what happened: when a try was missed
/// between two looks, or the attempt reported running has ended and another began.
pub fn needs_tries(step: &ReportedStep, instance: &TaskInstance) -> bool {
    let current = instance.try_number;
    current > step.attempts + 1
        || (current > step.attempts && step.attempts > 0 && step.status == StepStatus::Running)
}

/// The facts that take `step` (as reported) to `instance` (as Airflow has it now), with
/// `tries` its tries oldest first (the instance itself stands for its current try when
/// [`needs_tries`] did not ask for them). `now` stamps what Airflow does not date.
/// Updates `step` to what the facts report.
pub fn step_facts(
    step: &mut ReportedStep,
    instance: &TaskInstance,
    tries: &[TaskInstance],
    now: DateTime<Utc>,
) -> Vec<StepFact> {
    let mut facts = Vec::new();
    let state = instance.state.as_deref();
    let current = instance.try_number;
    // Cleared: no state (or back in the queue) for the try last reported, after it had
    // finished or while it ran (the next try's number comes when it is scheduled).
    let cleared = matches!(state, None | Some("scheduled" | "queued" | "restarting"))
        && current <= step.attempts;
    if cleared {
        match step.status {
            StepStatus::Running => {
                facts.push(StepFact::AttemptFailed {
                    attempt: step.attempts,
                    at: now,
                    why: Some("cleared in Airflow while it ran: it will run again".into()),
                });
                step.status = StepStatus::Retrying;
            }
            status if status.is_finished() => {
                facts.push(StepFact::Rescheduled);
                step.status = StepStatus::Pending;
            }
            _ => {}
        }
    }
    // Tries begun since the last look, each with how it ended.
    for one in tries.iter().filter(|t| t.try_number >= 1) {
        let number = one.try_number;
        let is_current = number == current;
        let try_state = if is_current {
            state
        } else {
            one.state.as_deref()
        };
        if number > step.attempts {
            let Some(start) = one
                .start_date
                .or(is_current.then_some(now))
                .filter(|_| !matches!(try_state, None | Some("scheduled" | "queued")))
            else {
                continue;
            };
            if step.status == StepStatus::Running {
                // The attempt reported running ended unseen, and another began.
                facts.push(StepFact::AttemptFailed {
                    attempt: step.attempts,
                    at: start,
                    why: None,
                });
            }
            facts.push(StepFact::Started {
                attempt: number,
                at: start,
            });
            step.attempts = number;
            step.status = StepStatus::Running;
        }
        if number != step.attempts || step.status != StepStatus::Running {
            continue;
        }
        let end = one.end_date.unwrap_or(now);
        match try_state {
            Some("success") => {
                facts.push(StepFact::Completed { at: end });
                step.status = StepStatus::Completed;
            }
            Some("failed") if is_current => {
                facts.push(StepFact::Failed {
                    attempt: number,
                    at: end,
                });
                step.status = StepStatus::Failed;
            }
            Some("failed" | "up_for_retry") => {
                facts.push(StepFact::AttemptFailed {
                    attempt: number,
                    at: end,
                    why: None,
                });
                step.status = StepStatus::Retrying;
            }
            Some("skipped" | "removed") => {
                facts.push(StepFact::Cancelled {
                    at: end,
                    reason: format!("{} in Airflow while it ran", try_state.unwrap_or("")),
                });
                step.status = StepStatus::Cancelled;
            }
            Some("upstream_failed") => {
                facts.push(StepFact::Cancelled {
                    at: end,
                    reason: "stopped: an upstream task failed".into(),
                });
                step.status = StepStatus::Cancelled;
            }
            _ => {}
        }
    }
    // States that need no try: a task that never ran.
    if step.status == StepStatus::Pending {
        let at = instance.end_date.or(instance.start_date).unwrap_or(now);
        match state {
            Some("skipped" | "removed") => {
                facts.push(StepFact::Skipped { at });
                step.status = StepStatus::Skipped;
            }
            Some("upstream_failed") => {
                facts.push(StepFact::Cancelled {
                    at,
                    reason: "not run: an upstream task failed".into(),
                });
                step.status = StepStatus::Cancelled;
            }
            Some("failed") if current == 0 => {
                facts.push(StepFact::Cancelled {
                    at,
                    reason: "marked failed in Airflow before it ran".into(),
                });
                step.status = StepStatus::Cancelled;
            }
            _ => {}
        }
    }
    let waiting = match state {
        Some("scheduled" | "queued") if step.status == StepStatus::Pending => Some((
            WaitReason::QueueSlot,
            "queued in Airflow: waiting for a free worker slot",
        )),
        Some("deferred") if step.status == StepStatus::Running => Some((
            WaitReason::Signal,
            "deferred: waiting for its trigger in Airflow's triggerer",
        )),
        Some("up_for_reschedule") if step.status == StepStatus::Running => Some((
            WaitReason::Timer,
            "waiting to be rescheduled (a sensor in reschedule mode)",
        )),
        Some("awaiting_input") if step.status == StepStatus::Running => Some((
            WaitReason::HumanInput,
            "waiting for a human's input in Airflow",
        )),
        _ => None,
    };
    if let Some((reason, why)) = waiting {
        if step.seen.as_deref() != state {
            facts.push(StepFact::Waiting {
                at: now,
                reason,
                why: why.to_owned(),
            });
        }
    }
    step.seen = state.map(str::to_owned);
    facts
}

/// The error of a failed try, from its log's events: the exception Airflow recorded
/// (`error_detail`), else the last line logged at error level.
pub fn error_from_log(events: &[serde_json::Value]) -> Option<String> {
    let errors = events
        .iter()
        .filter(|e| e.get("level").and_then(|l| l.as_str()) == Some("error"));
    let mut last = None;
    for event in errors {
        let text = event.get("event").and_then(|e| e.as_str()).unwrap_or("");
        let exception = event
            .get("error_detail")
            .and_then(|d| d.as_array())
            .and_then(|d| d.last())
            .map(|d| {
                let kind = d
                    .get("exc_type")
                    .and_then(|t| t.as_str())
                    .unwrap_or("Error");
                match d.get("exc_value").and_then(|v| v.as_str()) {
                    Some(value) if !value.is_empty() => format!("{kind}: {value}"),
                    _ => kind.to_owned(),
                }
            });
        last = Some(exception.unwrap_or_else(|| text.to_owned()));
    }
    last
}

/// A try's log events as lines: `LEVEL message`, without Airflow's own group markers.
pub fn log_lines(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| {
            let text = match event.get("event") {
                Some(serde_json::Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
                None => return None,
            };
            if text.starts_with("::group::") || text.starts_with("::endgroup::") {
                return None;
            }
            // The lines before the first timestamp say where the log file lives.
            event.get("timestamp").filter(|t| !t.is_null())?;
            let level = event
                .get("level")
                .and_then(|l| l.as_str())
                .unwrap_or("info")
                .to_ascii_uppercase();
            let detail = error_from_log(std::slice::from_ref(event))
                .filter(|error| *error != text)
                .map(|error| format!(" — {error}"))
                .unwrap_or_default();
            Some(format!("{level} {text}{detail}"))
        })
        .collect()
}

#[cfg(test)]
mod tests;
