//! Temporal workflow histories (the HTTP API's JSON, oldest event first) mapped onto
//! Stepline's source events: activities, timers and child workflows become steps,
//! workflow events become status changes. Fed a history in slices as it is read, the
//! mapper keeps what it needs (which step each scheduled event became) between them.

use crate::source::event::ended_with_the_run;
use crate::source::{Change, SourceEvent, StepDeclaration, WorkflowStart};
use app::model::{RetryPolicyInfo, StepKind, WaitReason, WorkflowStatus};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};

/// Which activities are compensations: Temporal has no marker for them, so the
/// source's configuration names them (by type, or by a type prefix).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompensationRule {
    pub prefixes: Vec<String>,
    pub types: Vec<String>,
}

impl CompensationRule {
    pub fn is_compensation(&self, activity_type: &str) -> bool {
        self.types.iter().any(|t| t == activity_type)
            || self
                .prefixes
                .iter()
                .any(|p| activity_type.starts_with(p.as_str()))
    }
}

/// Why a history could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("history event {event_id}: {problem}")]
pub struct MappingError {
    pub event_id: String,
    pub problem: String,
}

/// A payload as Stepline shows it: JSON as it is; anything else as its encoding and size.
pub fn payload(value: Option<&Value>) -> Option<Value> {
    let value = value?;
    if let Some(payloads) = value.get("payloads").and_then(Value::as_array) {
        let described: Vec<Value> = payloads.iter().map(describe_payload).collect();
        return Some(match described.len() {
            1 => described.into_iter().next().expect("one element"),
            _ => Value::Array(described),
        });
    }
    // The shorthand: a list of arguments, json/plain ones as their JSON and the others
    // (binary/null, protobuf, encrypted...) as their raw payload objects.
    let shown = |item: &Value| {
        if is_raw_payload(item) {
            describe_payload(item)
        } else {
            item.clone()
        }
    };
    match value {
        Value::Array(items) if items.len() == 1 => Some(shown(&items[0])),
        Value::Array(items) => Some(Value::Array(items.iter().map(shown).collect())),
        other => Some(shown(other)),
    }
}

/// A payload as Temporal writes it when it is not plain JSON: `metadata` with a
/// base64 `encoding`, and at most `data` beside it.
fn is_raw_payload(item: &Value) -> bool {
    let Some(fields) = item.as_object() else {
        return false;
    };
    let encoding = item.pointer("/metadata/encoding").and_then(Value::as_str);
    encoding.is_some_and(|e| base64::engine::general_purpose::STANDARD.decode(e).is_ok())
        && fields
            .keys()
            .all(|key| matches!(key.as_str(), "metadata" | "data" | "externalPayloads"))
}

fn describe_payload(payload: &Value) -> Value {
    let decode = |text: &str| base64::engine::general_purpose::STANDARD.decode(text).ok();
    let encoding = payload
        .pointer("/metadata/encoding")
        .and_then(Value::as_str)
        .and_then(decode)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_else(|| "unknown".into());
    let data = payload.get("data").and_then(Value::as_str).unwrap_or("");
    let size = decode(data).map_or(data.len() * 3 / 4, |bytes| bytes.len());
    json!({ "encoding": encoding, "size_bytes": size })
}

fn attributes(event: &Value) -> &Value {
    event
        .as_object()
        .and_then(|fields| {
            fields
                .iter()
                .find(|(key, _)| key.ends_with("EventAttributes"))
                .map(|(_, value)| value)
        })
        .unwrap_or(&Value::Null)
}

fn text<'v>(value: &'v Value, pointer: &str) -> Option<&'v str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// A Temporal duration (`"3.5s"`) in seconds.
fn seconds(value: Option<&str>) -> Option<f64> {
    value?.strip_suffix('s')?.parse().ok()
}

/// The retry policy of an activity, with its waits spelled out.
fn retry_policy(policy: &Value) -> Option<RetryPolicyInfo> {
    let max_attempts = policy.get("maximumAttempts").and_then(Value::as_u64)? as u32;
    if max_attempts == 0 {
        return None; // unlimited
    }
    let initial = seconds(text(policy, "/initialInterval")).unwrap_or(1.0);
    let factor = policy
        .get("backoffCoefficient")
        .and_then(Value::as_f64)
        .unwrap_or(2.0);
    let cap = seconds(text(policy, "/maximumInterval")).unwrap_or(initial * 100.0);
    let delays_seconds = (0..max_attempts.saturating_sub(1).min(100))
        .map(|k| (initial * factor.powi(k as i32)).min(cap))
        .collect();
    Some(RetryPolicyInfo {
        max_attempts,
        delays_seconds,
    })
}

/// Most attempts of a step one description fills in (see `emit_attempts`).
const MAX_ATTEMPTS_FILLED: u32 = 10;

/// Maps one workflow's history onto source events, slice by slice.
#[derive(Debug, Clone)]
pub struct HistoryMapper {
    workflow_id: String,
    rule: CompensationRule,
    /// The step each scheduling event (activity, timer, child) became.
    steps: HashMap<String, u32>,
    next_step: u32,
    /// Events up to this id were mapped before (by an earlier process): they rebuild the
    /// mapper's state but are not emitted again.
    replayed_through: u64,
    /// The last event id mapped.
    last_event_id: u64,
    /// The step of each activity id (describe names pending activities by it).
    activities: HashMap<String, u32>,
    /// The highest attempt of each step already emitted (from describe or history),
    /// whether it was last seen running, and the time of the last event emitted for it.
    attempts: HashMap<u32, (u32, bool, DateTime<Utc>)>,
    /// For each step, the workflow task that scheduled it: where a reset to retry it goes.
    reset_points: HashMap<u32, u64>,
    /// The first completed workflow task: where a retry from the start goes.
    first_task: Option<u64>,
    /// The history holds the run's end (completed, failed, cancelled, ...).
    closed: bool,
    /// Activities scheduled whose end the history has not recorded yet. Temporal writes
    /// an activity's start only with its end, so one that is still out when the run
    /// ends (it ignored a cancel request, say) would stay "scheduled" forever: it ends
    /// with the run instead.
    unended_activities: BTreeSet<u32>,
}

impl HistoryMapper {
    pub fn new(workflow_id: impl Into<String>, rule: CompensationRule) -> Self {
        Self {
            workflow_id: workflow_id.into(),
            rule,
            steps: HashMap::new(),
            next_step: 1,
            replayed_through: 0,
            last_event_id: 0,
            activities: HashMap::new(),
            attempts: HashMap::new(),
            reset_points: HashMap::new(),
            first_task: None,
            closed: false,
            unended_activities: BTreeSet::new(),
        }
    }

    /// A mapper that re-reads a history whose events up to `event_id` were already
    /// mapped and stored: it emits only what comes after.
    pub fn resuming(workflow_id: impl Into<String>, rule: CompensationRule, event_id: u64) -> Self {
        let mut mapper = Self::new(workflow_id, rule);
        mapper.replayed_through = event_id;
        mapper
    }

    /// What the mapper knows of attempts beyond the history (from describe): stored with
    /// its position so a restarted mapper does not report them again. Each entry is
    /// (step, attempt, still running, ms of its last event).
    pub fn attempt_state(&self) -> Vec<(u32, u32, bool, i64)> {
        let mut state: Vec<_> = self
            .attempts
            .iter()
            .map(|(step, (attempt, open, at))| (*step, *attempt, *open, at.timestamp_millis()))
            .collect();
        state.sort_unstable();
        state
    }

    /// Takes back what [`Self::attempt_state`] gave.
    pub fn restore_attempts(&mut self, state: &[(u32, u32, bool, i64)]) {
        for &(step, attempt, open, ms) in state {
            let at = DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC);
            self.attempts.insert(step, (attempt, open, at));
        }
    }

    /// Whether the history read so far ends the run.
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// The id of the last event mapped (0 before any).
    pub fn last_event_id(&self) -> u64 {
        self.last_event_id
    }

    /// The workflow task to reset to for re-running `step` (or from the start).
    pub fn reset_point(&self, step: Option<u32>) -> Option<u64> {
        match step {
            Some(step) => self.reset_points.get(&step).copied(),
            None => self.first_task,
        }
    }

    /// What describe's `pendingActivities` tell that history does not yet: the attempt
    /// an activity is on (running, or waiting to retry after `lastFailure`).
    pub fn pending_activities(&mut self, description: &Value) -> Vec<SourceEvent> {
        let mut out = Vec::new();
        let pending = description
            .get("pendingActivities")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for activity in &pending {
            let Some(step) =
                text(activity, "/activityId").and_then(|id| self.activities.get(id).copied())
            else {
                continue;
            };
            let attempt = activity
                .get("attempt")
                .and_then(Value::as_u64)
                .map_or(1, |n| u32::try_from(n).unwrap_or(u32::MAX));
            let state = text(activity, "/state").unwrap_or("");
            // Started: this attempt runs. Scheduled with a failure: the attempt before
            // failed and this one waits for its backoff.
            let running = state.ends_with("STARTED");
            let reached = if running {
                attempt
            } else {
                attempt.saturating_sub(1)
            };
            let started_at = text(activity, "/lastStartedTime")
                .and_then(|t| t.parse::<DateTime<Utc>>().ok())
                .unwrap_or_else(Utc::now);
            let failure = text(activity, "/lastFailure/message").map(str::to_owned);
            let failed_at = text(activity, "/lastAttemptCompleteTime")
                .and_then(|t| t.parse::<DateTime<Utc>>().ok())
                .unwrap_or(started_at);
            self.emit_attempts(
                step, reached, running, failure, started_at, failed_at, &mut out,
            );
        }
        out
    }

    /// Emits what is new about `step`'s attempts (the last [`MAX_ATTEMPTS_FILLED`] of
    /// them): attempt `reached` runs (`running`) or has failed; every attempt before it
    /// failed. `failure` is the latest failure
    /// Temporal kept; older attempts' failures are not kept.
    #[allow(clippy::too_many_arguments)]
    fn emit_attempts(
        &mut self,
        step: u32,
        reached: u32,
        running: bool,
        failure: Option<String>,
        started_at: DateTime<Utc>,
        failed_at: DateTime<Utc>,
        out: &mut Vec<SourceEvent>,
    ) {
        let (done, open, last_time) =
            self.attempts
                .get(&step)
                .copied()
                .unwrap_or((0, false, DateTime::<Utc>::MIN_UTC));
        if reached < done || (reached == done && (running || !open)) {
            return;
        }
        let latest_failure = || failure.clone().unwrap_or_else(|| "failed".into());
        // Describe and history give these times from different clocks and moments:
        // a step's events never go back in time.
        let failed_at = failed_at.max(last_time);
        let started_at = started_at.max(failed_at);
        let event = |at: DateTime<Utc>, change: Change| SourceEvent {
            workflow_id: self.workflow_id.clone(),
            at,
            change,
        };
        let failed = |error: String| Change::StepAttemptFailed {
            step_number: step,
            error,
        };
        let mut emitted = Vec::new();
        // The attempt last seen running has failed since.
        if open {
            let error = if reached == done || (reached == done + 1 && running) {
                latest_failure()
            } else {
                "failed (Temporal keeps only the last failure)".to_owned()
            };
            emitted.push(event(failed_at, failed(error)));
        }
        // An activity retried without end can be at attempt millions: only the last
        // attempts are filled in, the first of them says how many went before unseen.
        let first = (done + 1).max(reached.saturating_sub(MAX_ATTEMPTS_FILLED - 1));
        for attempt in first..=reached {
            let last = attempt == reached;
            // An attempt that already failed started no later than it failed.
            let start = if last && running {
                started_at
            } else {
                started_at.min(failed_at).max(last_time)
            };
            emitted.push(event(start, Change::attempt_started(step, attempt)));
            if last && running {
                continue;
            }
            let latest = if running {
                attempt + 1 == reached
            } else {
                last
            };
            let error = if latest {
                latest_failure()
            } else if attempt == first && first > done + 1 {
                format!(
                    "failed, as did attempts {} to {} before it (Temporal keeps only the last failure)",
                    done + 1,
                    first - 1
                )
            } else {
                "failed (Temporal keeps only the last failure)".to_owned()
            };
            emitted.push(event(failed_at, failed(error)));
        }
        let last_time = emitted.last().map_or(last_time, |e: &SourceEvent| e.at);
        self.attempts.insert(step, (reached, running, last_time));
        out.extend(emitted);
    }

    /// The source events of the next slice of history (oldest first).
    pub fn map(&mut self, events: &[Value]) -> Result<Vec<SourceEvent>, MappingError> {
        // Activities scheduled by one workflow task run in parallel: they get branches.
        let mut per_task: HashMap<&str, usize> = HashMap::new();
        for event in events {
            if text(event, "/eventType") == Some("EVENT_TYPE_ACTIVITY_TASK_SCHEDULED") {
                if let Some(task) = text(attributes(event), "/workflowTaskCompletedEventId") {
                    *per_task.entry(task).or_default() += 1;
                }
            }
        }
        let mut branch_index: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::new();
        // A page may end with a workflow task Temporal has not stored (a transient one,
        // while a task keeps failing): its ids are handed out again to the events that
        // are stored. Those trailing task events map to nothing; they are not counted
        // as seen, so whatever Temporal stores under their ids is read.
        let settled = events.len()
            - events
                .iter()
                .rev()
                .take_while(|event| {
                    matches!(
                        text(event, "/eventType")
                            .unwrap_or("")
                            .trim_start_matches("EVENT_TYPE_"),
                        "WORKFLOW_TASK_SCHEDULED" | "WORKFLOW_TASK_STARTED"
                    )
                })
                .count();
        for (index, event) in events.iter().enumerate() {
            let id = text(event, "/eventId")
                .and_then(|id| id.parse::<u64>().ok())
                .unwrap_or(self.last_event_id + 1);
            let emitted = out.len();
            self.map_event(event, &per_task, &mut branch_index, &mut out)?;
            if id <= self.replayed_through {
                out.truncate(emitted);
            }
            if index < settled {
                self.last_event_id = self.last_event_id.max(id);
            }
        }
        Ok(out)
    }

    fn new_step(&mut self, scheduled_event: &str) -> u32 {
        let number = self.next_step;
        self.next_step += 1;
        self.steps.insert(scheduled_event.to_owned(), number);
        number
    }

    fn step_of(&self, event_id: &str, scheduled: Option<&str>) -> Result<u32, MappingError> {
        scheduled
            .and_then(|id| self.steps.get(id).copied())
            .ok_or_else(|| MappingError {
                event_id: event_id.to_owned(),
                problem: format!("refers to unknown scheduling event {scheduled:?}"),
            })
    }

    fn map_event(
        &mut self,
        event: &Value,
        per_task: &HashMap<&str, usize>,
        branch_index: &mut HashMap<String, usize>,
        out: &mut Vec<SourceEvent>,
    ) -> Result<(), MappingError> {
        let event_id = text(event, "/eventId").unwrap_or("?").to_owned();
        let fail = |problem: &str| MappingError {
            event_id: event_id.clone(),
            problem: problem.to_owned(),
        };
        let at: DateTime<Utc> = text(event, "/eventTime")
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| fail("no readable eventTime"))?;
        let kind = text(event, "/eventType").ok_or_else(|| fail("no eventType"))?;
        let attrs = attributes(event);
        let workflow_id = self.workflow_id.clone();
        let mut push = |change: Change| {
            out.push(SourceEvent {
                workflow_id: workflow_id.clone(),
                at,
                change,
            })
        };
        let status = |status: WorkflowStatus, reason: Option<String>| {
            Change::WorkflowStatusChanged { status, reason }
        };
        let failure = |attrs: &Value| {
            let message = text(attrs, "/failure/message").unwrap_or("failed");
            match text(attrs, "/failure/cause/message") {
                Some(cause) => format!("{message}: {cause}"),
                None => message.to_owned(),
            }
        };
        let ending = match kind.trim_start_matches("EVENT_TYPE_") {
            "WORKFLOW_EXECUTION_COMPLETED" => Some((WorkflowStatus::Completed, None)),
            "WORKFLOW_EXECUTION_FAILED" => Some((WorkflowStatus::Failed, Some(failure(attrs)))),
            "WORKFLOW_EXECUTION_TIMED_OUT" => Some((WorkflowStatus::TimedOut, None)),
            "WORKFLOW_EXECUTION_CANCELED" => Some((WorkflowStatus::Cancelled, None)),
            "WORKFLOW_EXECUTION_TERMINATED" => Some((
                WorkflowStatus::Terminated,
                text(attrs, "/reason").map(str::to_owned),
            )),
            "WORKFLOW_EXECUTION_CONTINUED_AS_NEW" => Some((
                WorkflowStatus::Completed,
                Some(format!(
                    "continued as new run {}",
                    text(attrs, "/newExecutionRunId").unwrap_or("?")
                )),
            )),
            _ => None,
        };
        if let Some((status, reason)) = ending {
            self.closed = true;
            let why = ended_with_the_run(status, reason.as_deref());
            for step_number in std::mem::take(&mut self.unended_activities) {
                push(Change::StepCancelled {
                    step_number,
                    reason: why.clone(),
                });
            }
            push(Change::WorkflowStatusChanged { status, reason });
            return Ok(());
        }
        match kind.trim_start_matches("EVENT_TYPE_") {
            "WORKFLOW_EXECUTION_STARTED" => push(Change::WorkflowStarted(WorkflowStart {
                workflow_type: text(attrs, "/workflowType/name")
                    .ok_or_else(|| fail("no workflow type"))?
                    .to_owned(),
                engine_ref: None,
                status: Some(WorkflowStatus::Running),
                definition_name: None,
                definition_version: None,
                total_steps: None,
                sla_target_seconds: None,
                triggered_by: text(attrs, "/identity").map(str::to_owned),
                trigger_type: Some(
                    text(attrs, "/taskQueue/name")
                        .map_or("temporal".to_owned(), |q| format!("task queue {q}")),
                ),
                priority: None,
                tags: Vec::new(),
                input: payload(attrs.get("input")),
                steps: Vec::new(),
            })),
            "ACTIVITY_TASK_SCHEDULED" => {
                let activity_type = text(attrs, "/activityType/name").unwrap_or("activity");
                // Activities are often one type run with different arguments: a short
                // first argument names the step better than the type alone.
                let name = match attrs.pointer("/input/0").and_then(Value::as_str) {
                    Some(label) if label.len() <= 60 => format!("{activity_type} · {label}"),
                    _ => activity_type.to_owned(),
                };
                let task = text(attrs, "/workflowTaskCompletedEventId").unwrap_or("");
                let branch = (per_task.get(task).copied().unwrap_or(0) > 1).then(|| {
                    let index = branch_index.entry(task.to_owned()).or_default();
                    *index += 1;
                    format!("task-{task}-branch-{}", *index)
                });
                let number = self.new_step(&event_id);
                self.unended_activities.insert(number);
                if let Some(activity_id) = text(attrs, "/activityId") {
                    self.activities.insert(activity_id.to_owned(), number);
                }
                if let Some(task) = task.parse::<u64>().ok() {
                    self.reset_points.insert(number, task);
                }
                let compensation = self.rule.is_compensation(activity_type);
                push(Change::StepScheduled(StepDeclaration {
                    step_number: number,
                    name,
                    kind: if compensation {
                        StepKind::Compensation
                    } else {
                        StepKind::Normal
                    },
                    branch,
                    compensates: None,
                    input: payload(attrs.get("input")),
                    retry_policy: attrs.get("retryPolicy").and_then(retry_policy),
                }));
                // Until a worker of its task queue picks it up.
                push(Change::StepWaiting {
                    step_number: number,
                    reason: WaitReason::QueueSlot,
                    until: None,
                    detail: text(attrs, "/taskQueue/name")
                        .map(|queue| format!("a worker on task queue {queue}")),
                });
            }
            "ACTIVITY_TASK_STARTED" => {
                let number = self.step_of(&event_id, text(attrs, "/scheduledEventId"))?;
                let attempt = attrs.get("attempt").and_then(Value::as_u64).unwrap_or(1) as u32;
                // Temporal keeps only the last attempt; the earlier ones (unless describe
                // reported them as they happened) are recorded as failed, at this
                // instant, with the last failure it kept.
                let failure = text(attrs, "/lastFailure/message").map(str::to_owned);
                self.emit_attempts(number, attempt, true, failure, at, at, out);
            }
            "ACTIVITY_TASK_COMPLETED" | "CHILD_WORKFLOW_EXECUTION_COMPLETED" => {
                let scheduled =
                    text(attrs, "/scheduledEventId").or(text(attrs, "/initiatedEventId"));
                let number = self.step_of(&event_id, scheduled)?;
                self.unended_activities.remove(&number);
                push(Change::StepCompleted {
                    step_number: number,
                    output: payload(attrs.get("result")),
                });
            }
            "ACTIVITY_TASK_FAILED" | "CHILD_WORKFLOW_EXECUTION_FAILED" => {
                let scheduled =
                    text(attrs, "/scheduledEventId").or(text(attrs, "/initiatedEventId"));
                let number = self.step_of(&event_id, scheduled)?;
                self.unended_activities.remove(&number);
                push(Change::StepFailed {
                    step_number: number,
                    error: failure(attrs),
                });
            }
            "ACTIVITY_TASK_TIMED_OUT" | "CHILD_WORKFLOW_EXECUTION_TIMED_OUT" => {
                let scheduled =
                    text(attrs, "/scheduledEventId").or(text(attrs, "/initiatedEventId"));
                let number = self.step_of(&event_id, scheduled)?;
                self.unended_activities.remove(&number);
                let kind = text(attrs, "/failure/timeoutFailureInfo/timeoutType")
                    .unwrap_or("TIMEOUT_TYPE_UNSPECIFIED")
                    .trim_start_matches("TIMEOUT_TYPE_")
                    .to_ascii_lowercase()
                    .replace('_', "-");
                push(Change::StepFailed {
                    step_number: number,
                    error: format!("timed out ({kind})"),
                });
            }
            "ACTIVITY_TASK_CANCELED"
            | "CHILD_WORKFLOW_EXECUTION_CANCELED"
            | "TIMER_CANCELED"
            | "CHILD_WORKFLOW_EXECUTION_TERMINATED" => {
                let scheduled = text(attrs, "/scheduledEventId")
                    .or(text(attrs, "/initiatedEventId"))
                    .or(text(attrs, "/startedEventId"));
                let number = self.step_of(&event_id, scheduled)?;
                self.unended_activities.remove(&number);
                push(Change::StepCancelled {
                    step_number: number,
                    reason: "cancelled".into(),
                });
            }
            // A local activity runs inside the workflow task: Temporal records only a
            // marker once it is done (Core-based SDKs and Go/Java name it differently).
            "MARKER_RECORDED"
                if matches!(
                    text(attrs, "/markerName"),
                    Some("core_local_activity" | "LocalActivity")
                ) =>
            {
                let details = attrs.get("details").unwrap_or(&Value::Null);
                let data = details.pointer("/data/0").unwrap_or(&Value::Null);
                let activity_type = text(data, "/activity_type")
                    .or(text(data, "/ActivityType"))
                    .unwrap_or("local activity");
                let attempt = data
                    .get("attempt")
                    .or(data.get("Attempt"))
                    .and_then(Value::as_u64)
                    .map_or(1, |n| n.clamp(1, u64::from(u32::MAX)) as u32);
                let scheduled = data
                    .pointer("/original_schedule_time/seconds")
                    .and_then(Value::as_i64)
                    .and_then(|seconds| {
                        let nanos = data
                            .pointer("/original_schedule_time/nanos")
                            .and_then(Value::as_u64)
                            .unwrap_or(0);
                        DateTime::from_timestamp(seconds, nanos.min(999_999_999) as u32)
                    })
                    .filter(|started| *started <= at)
                    .unwrap_or(at);
                let number = self.new_step(&event_id);
                let kind = if self.rule.is_compensation(activity_type) {
                    StepKind::Compensation
                } else {
                    StepKind::Normal
                };
                out.push(SourceEvent {
                    workflow_id: self.workflow_id.clone(),
                    at: scheduled,
                    change: Change::StepStarted {
                        step_number: number,
                        name: Some(format!("{activity_type} (local)")),
                        attempt: Some(attempt),
                        input: None,
                        kind: Some(kind),
                        branch: None,
                        compensates: None,
                    },
                });
                let end = match details.get("failure") {
                    Some(failure) => Change::StepFailed {
                        step_number: number,
                        error: text(failure, "/message").unwrap_or("failed").to_owned(),
                    },
                    None => Change::StepCompleted {
                        step_number: number,
                        output: payload(details.get("result")),
                    },
                };
                out.push(SourceEvent {
                    workflow_id: self.workflow_id.clone(),
                    at,
                    change: end,
                });
            }
            "TIMER_STARTED" => {
                let number = self.new_step(&event_id);
                let wait = text(attrs, "/startToFireTimeout").unwrap_or("?");
                push(Change::StepStarted {
                    step_number: number,
                    name: Some(format!(
                        "timer {} ({wait})",
                        text(attrs, "/timerId").unwrap_or("?")
                    )),
                    attempt: Some(1),
                    input: None,
                    kind: None,
                    branch: None,
                    compensates: None,
                });
                push(Change::StepWaiting {
                    step_number: number,
                    reason: WaitReason::Timer,
                    until: seconds(Some(wait))
                        .and_then(|wait| chrono::Duration::try_milliseconds((wait * 1000.0) as i64))
                        .and_then(|wait| at.checked_add_signed(wait)),
                    detail: None,
                });
            }
            "TIMER_FIRED" => {
                let number = self.step_of(&event_id, text(attrs, "/startedEventId"))?;
                push(Change::StepCompleted {
                    step_number: number,
                    output: None,
                });
            }
            "START_CHILD_WORKFLOW_EXECUTION_INITIATED" => {
                let number = self.new_step(&event_id);
                push(Change::StepScheduled(StepDeclaration {
                    step_number: number,
                    name: format!(
                        "child workflow {} ({})",
                        text(attrs, "/workflowType/name").unwrap_or("?"),
                        text(attrs, "/workflowId").unwrap_or("?")
                    ),
                    kind: StepKind::Normal,
                    branch: None,
                    compensates: None,
                    input: payload(attrs.get("input")),
                    retry_policy: None,
                }));
            }
            "CHILD_WORKFLOW_EXECUTION_STARTED" => {
                let number = self.step_of(&event_id, text(attrs, "/initiatedEventId"))?;
                push(Change::attempt_started(number, 1));
            }
            "WORKFLOW_EXECUTION_CANCEL_REQUESTED" => push(status(
                WorkflowStatus::Cancelling,
                text(attrs, "/cause").map(str::to_owned),
            )),
            "WORKFLOW_EXECUTION_PAUSED" => push(status(WorkflowStatus::Paused, None)),
            "WORKFLOW_EXECUTION_UNPAUSED" => push(status(WorkflowStatus::Running, None)),
            "WORKFLOW_TASK_COMPLETED" => {
                if self.first_task.is_none() {
                    self.first_task = event_id.parse().ok();
                }
            }
            // Other workflow task events, signals, markers...: not steps.
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
