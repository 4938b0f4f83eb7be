//! Row types of the store, typed, and their conversion to the wire model. The projector
//! works on these rows; readers turn them into wire types with `to_wire`.

use app::model::{
    progress_of, Action, Attempt, BreachOutlook, Capabilities, Forecast, Priority, RetryPolicyInfo,
    SlaStatus, Step, StepKind, StepStatus, Waiting, Workflow, WorkflowStatus,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{FromRow, Row};

pub use crate::source::clock::{seconds_between, to_datetime, to_millis, Millis};

/// A workflow run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowRow {
    pub id: String,
    pub engine: String,
    pub workflow_type: String,
    /// The run's own reference in its engine, when Stepline's id does not carry it.
    pub engine_ref: Option<String>,
    pub status: WorkflowStatus,
    pub status_reason: Option<String>,
    pub definition_name: Option<String>,
    pub definition_version: Option<String>,
    /// Step count the engine announced, if any.
    pub declared_steps: Option<u32>,
    /// Normal steps completed or skipped (derived by the projector).
    pub completed_steps: u32,
    /// Normal steps expected (derived by the projector).
    pub total_steps: u32,
    pub sla_target_seconds: Option<i64>,
    /// SLA status at the last projection; time moves it on (see the projector's sweep).
    pub sla_status: SlaStatus,
    pub triggered_by: Option<String>,
    pub trigger_type: Option<String>,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub input: Option<Value>,
    pub capabilities: Capabilities,
    pub created_ms: Millis,
    pub started_ms: Option<Millis>,
    pub completed_ms: Option<Millis>,
    pub updated_ms: Millis,
    /// The run's forecast while it runs (kept by the projector and the forecast sweep).
    pub forecast: Option<RunForecast>,
}

/// A running run's forecast as stored (see `crate::forecast`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunForecast {
    pub runs_seen: u32,
    pub expected_ms: Option<Millis>,
    pub likely_by_ms: Option<Millis>,
    pub breach: BreachOutlook,
}

impl RunForecast {
    /// Whether there was enough history to forecast.
    pub fn is_known(&self) -> bool {
        self.expected_ms.is_some()
    }

    pub fn to_wire(&self) -> Forecast {
        Forecast {
            runs_seen: self.runs_seen,
            expected_at: self.expected_ms.map(to_datetime),
            likely_by: self.likely_by_ms.map(to_datetime),
            breach: self.breach,
        }
    }
}

impl WorkflowRow {
    /// How long the run has lasted at `now`: to its end once finished.
    pub fn elapsed_ms(&self, now: Millis) -> Millis {
        match self.started_ms {
            None => 0,
            Some(start) => (self.completed_ms.unwrap_or(now) - start).max(0),
        }
    }

    /// When the run's SLA target runs out, if it has one and has started.
    pub fn sla_deadline_ms(&self) -> Option<Millis> {
        self.started_ms
            .zip(self.sla_target_seconds)
            .map(|(started, target)| started + target * 1000)
    }

    /// The SLA status the run has at `now`.
    pub fn sla_at(&self, now: Millis) -> SlaStatus {
        SlaStatus::derive(self.elapsed_ms(now), self.sla_target_seconds)
    }

    /// Why `action` cannot be done to the run now, or `None` when it can.
    pub fn refusal(&self, action: Action) -> Option<String> {
        action.refusal(self.status, &self.capabilities)
    }

    /// The list row the API and the live hub send, as of `now`.
    pub fn to_wire(&self, now: Millis) -> Workflow {
        Workflow {
            id: self.id.clone(),
            workflow_type: self.workflow_type.clone(),
            engine: self.engine.clone(),
            engine_ref: self.engine_ref.clone(),
            status: self.status,
            progress: progress_of(self.completed_steps, self.total_steps, self.status),
            created_at: Some(to_datetime(self.created_ms)),
            started_at: self.started_ms.map(to_datetime),
            completed_at: self.completed_ms.map(to_datetime),
            updated_at: Some(to_datetime(self.updated_ms)),
            duration_seconds: self.elapsed_ms(now) as f64 / 1000.0,
            sla_target_seconds: self.sla_target_seconds,
            sla_status: self.sla_at(now),
            triggered_by: self.triggered_by.clone(),
            trigger_type: self.trigger_type.clone(),
            priority: self.priority,
            tags: self.tags.clone(),
            capabilities: self.capabilities,
            can_pause: self.refusal(Action::Pause).is_none(),
            can_cancel: self.refusal(Action::Cancel).is_none(),
            forecast: self
                .forecast
                .filter(|_| self.status == WorkflowStatus::Running)
                .map(|forecast| forecast.to_wire()),
        }
    }
}

fn decode_error(column: &str, message: impl Into<String>) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: message.into().into(),
    }
}

/// The rows' decoding from one backend's row type (`$row`), in a module of its own: the
/// same code for SQLite's rows and PostgreSQL's.
macro_rules! decoding {
    ($module:ident, $row:ty) => {
        mod $module {
            use super::*;

            fn json_column<T: for<'de> Deserialize<'de>>(
                row: &$row,
                column: &str,
            ) -> sqlx::Result<T> {
                let text: String = row.try_get(column)?;
                serde_json::from_str(&text).map_err(|e| decode_error(column, e.to_string()))
            }

            fn optional_json_column<T: serde::de::DeserializeOwned>(
                row: &$row,
                column: &str,
            ) -> sqlx::Result<Option<T>> {
                let text: Option<String> = row.try_get(column)?;
                text.map(|t| {
                    serde_json::from_str(&t).map_err(|e| decode_error(column, e.to_string()))
                })
                .transpose()
            }

            fn enum_column<T>(
                row: &$row,
                column: &str,
                parse: fn(&str) -> Option<T>,
            ) -> sqlx::Result<T> {
                let text: String = row.try_get(column)?;
                parse(&text).ok_or_else(|| decode_error(column, format!("unknown value {text:?}")))
            }

            fn u32_column(row: &$row, column: &str) -> sqlx::Result<u32> {
                let value: i64 = row.try_get(column)?;
                u32::try_from(value)
                    .map_err(|_| decode_error(column, format!("out of range: {value}")))
            }

            fn optional_u32_column(row: &$row, column: &str) -> sqlx::Result<Option<u32>> {
                let value: Option<i64> = row.try_get(column)?;
                value
                    .map(|v| {
                        u32::try_from(v)
                            .map_err(|_| decode_error(column, format!("out of range: {v}")))
                    })
                    .transpose()
            }

            /// The forecast columns: none until the run was first forecast.
            fn forecast_columns(row: &$row) -> sqlx::Result<Option<RunForecast>> {
                let Some(runs) = row.try_get::<Option<i64>, _>("forecast_runs")? else {
                    return Ok(None);
                };
                Ok(Some(RunForecast {
                    runs_seen: u32::try_from(runs.max(0)).unwrap_or(u32::MAX),
                    expected_ms: row.try_get("forecast_p50_ms")?,
                    likely_by_ms: row.try_get("forecast_p90_ms")?,
                    breach: BreachOutlook::from_level(row.try_get("forecast_breach")?),
                }))
            }

            impl<'r> FromRow<'r, $row> for WorkflowRow {
                fn from_row(row: &'r $row) -> sqlx::Result<Self> {
                    Ok(Self {
                        id: row.try_get("id")?,
                        engine: row.try_get("engine")?,
                        workflow_type: row.try_get("workflow_type")?,
                        engine_ref: row.try_get("engine_ref")?,
                        status: enum_column(row, "status", WorkflowStatus::parse)?,
                        status_reason: row.try_get("status_reason")?,
                        definition_name: row.try_get("definition_name")?,
                        definition_version: row.try_get("definition_version")?,
                        declared_steps: optional_u32_column(row, "declared_steps")?,
                        completed_steps: u32_column(row, "completed_steps")?,
                        total_steps: u32_column(row, "total_steps")?,
                        sla_target_seconds: row.try_get("sla_target_seconds")?,
                        sla_status: enum_column(row, "sla_status", SlaStatus::parse)?,
                        triggered_by: row.try_get("triggered_by")?,
                        trigger_type: row.try_get("trigger_type")?,
                        priority: enum_column(row, "priority", Priority::parse)?,
                        tags: json_column(row, "tags")?,
                        input: optional_json_column(row, "input")?,
                        capabilities: json_column(row, "capabilities")?,
                        created_ms: row.try_get("created_ms")?,
                        started_ms: row.try_get("started_ms")?,
                        completed_ms: row.try_get("completed_ms")?,
                        updated_ms: row.try_get("updated_ms")?,
                        forecast: forecast_columns(row)?,
                    })
                }
            }

            impl<'r> FromRow<'r, $row> for StepRow {
                fn from_row(row: &'r $row) -> sqlx::Result<Self> {
                    Ok(Self {
                        step_number: u32_column(row, "step_number")?,
                        name: row.try_get("name")?,
                        status: enum_column(row, "status", StepStatus::parse)?,
                        kind: enum_column(row, "kind", StepKind::parse)?,
                        branch: row.try_get("branch")?,
                        compensates: optional_u32_column(row, "compensates")?,
                        started_ms: row.try_get("started_ms")?,
                        completed_ms: row.try_get("completed_ms")?,
                        input: optional_json_column(row, "input")?,
                        output: optional_json_column(row, "output")?,
                        error: row.try_get("error")?,
                        attempts: json_column(row, "attempts")?,
                        retry_policy: optional_json_column(row, "retry_policy")?,
                        waiting: optional_json_column(row, "waiting")?,
                    })
                }
            }
        }
    };
}
decoding!(from_sqlite, sqlx::sqlite::SqliteRow);
decoding!(from_postgres, sqlx::postgres::PgRow);

/// One try of a step, as stored (in the step row's `attempts` column).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub status: StepStatus,
    pub started_ms: Option<Millis>,
    pub completed_ms: Option<Millis>,
    pub error: Option<String>,
}

impl AttemptRecord {
    fn to_wire(&self) -> Attempt {
        Attempt {
            attempt: self.attempt,
            status: self.status,
            started_at: self.started_ms.map(to_datetime),
            completed_at: self.completed_ms.map(to_datetime),
            duration_seconds: self
                .started_ms
                .zip(self.completed_ms)
                .map(|(from, to)| seconds_between(from, to)),
            error: self.error.clone(),
        }
    }
}

/// A step as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRow {
    pub step_number: u32,
    pub name: String,
    pub status: StepStatus,
    pub kind: StepKind,
    pub branch: Option<String>,
    pub compensates: Option<u32>,
    /// Start of the first attempt.
    pub started_ms: Option<Millis>,
    /// End of the last attempt, once finished.
    pub completed_ms: Option<Millis>,
    pub input: Option<Value>,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub attempts: Vec<AttemptRecord>,
    pub retry_policy: Option<RetryPolicyInfo>,
    /// What it waits for, as last told (shown only while the step has not finished).
    pub waiting: Option<Waiting>,
}

impl StepRow {
    /// A step known by name only, not yet run.
    pub fn pending(step_number: u32, name: String) -> Self {
        Self {
            step_number,
            name,
            status: StepStatus::Pending,
            kind: StepKind::Normal,
            branch: None,
            compensates: None,
            started_ms: None,
            completed_ms: None,
            input: None,
            output: None,
            error: None,
            attempts: Vec::new(),
            retry_policy: None,
            waiting: None,
        }
    }

    pub fn retry_count(&self) -> u32 {
        u32::try_from(self.attempts.len().saturating_sub(1)).unwrap_or(u32::MAX)
    }

    /// Seconds from the first attempt's start to the end (or to `now` while running).
    pub fn duration_seconds(&self, now: Millis) -> Option<f64> {
        let start = self.started_ms?;
        Some(seconds_between(start, self.completed_ms.unwrap_or(now)))
    }

    pub fn to_wire(&self, logs: Vec<String>, now: Millis) -> Step {
        Step {
            step_number: self.step_number,
            name: self.name.clone(),
            status: self.status,
            started_at: self.started_ms.map(to_datetime),
            completed_at: self.completed_ms.map(to_datetime),
            duration_seconds: self.duration_seconds(now),
            input: self.input.clone(),
            output: self.output.clone(),
            logs,
            logs_dropped: 0,
            error: self.error.clone(),
            retry_count: self.retry_count(),
            attempts: self.attempts.iter().map(AttemptRecord::to_wire).collect(),
            kind: self.kind,
            branch: self.branch.clone(),
            compensates: self.compensates,
            retry_policy: self.retry_policy.clone(),
            waiting: self.waiting.clone().filter(|_| !self.status.is_finished()),
        }
    }
}

/// A log line waiting to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    pub step_number: u32,
    pub at_ms: Millis,
    pub line: String,
}

#[cfg(test)]
impl WorkflowRow {
    /// A run of `deploy` on the built-in engine, running since `started`, for tests.
    pub fn running_since(started: Millis, sla_seconds: Option<i64>) -> Self {
        Self {
            id: "wf-1".into(),
            engine: "builtin".into(),
            workflow_type: "deploy".into(),
            engine_ref: None,
            status: WorkflowStatus::Running,
            status_reason: None,
            definition_name: None,
            definition_version: None,
            declared_steps: None,
            completed_steps: 0,
            total_steps: 0,
            sla_target_seconds: sla_seconds,
            sla_status: SlaStatus::OnTrack,
            triggered_by: None,
            trigger_type: None,
            priority: Priority::Normal,
            tags: Vec::new(),
            input: None,
            capabilities: Capabilities::default(),
            created_ms: started,
            started_ms: Some(started),
            completed_ms: None,
            updated_ms: started,
            forecast: None,
        }
    }
}
