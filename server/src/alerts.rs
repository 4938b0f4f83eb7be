//! Alert conditions: which of them a run's row holds (as the projector and the sweeps
//! leave it), and what a change of the row fires and resolves. Whoever changes a row
//! moves its alerts in the same write transaction, so an alert is never lost to a crash
//! between the change and the alert, and each fires once (the store keeps one holding
//! alert per run and condition).

use crate::store::rows::WorkflowRow;
use app::model::alert::AlertCondition;
use app::model::{format_duration, BreachOutlook, SlaStatus, WorkflowStatus};

/// A set of conditions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conditions(u8);

impl Conditions {
    fn bit(condition: AlertCondition) -> u8 {
        1 << (condition as u8)
    }

    pub fn holds(self, condition: AlertCondition) -> bool {
        self.0 & Self::bit(condition) != 0
    }

    fn with(self, condition: AlertCondition) -> Self {
        Self(self.0 | Self::bit(condition))
    }

    /// The conditions `row` holds now.
    pub fn of(row: &WorkflowRow) -> Self {
        let mut held = Self::default();
        match row.status {
            WorkflowStatus::Failed | WorkflowStatus::TimedOut => {
                held = held.with(AlertCondition::Failed);
            }
            WorkflowStatus::CompensationFailed => {
                held = held.with(AlertCondition::CompensationFailed);
            }
            _ => {}
        }
        // The SLA's conditions concern a run that can still be helped: once it has ended,
        // they clear (how it ended is its own condition).
        if !row.status.is_terminal() {
            match row.sla_status {
                SlaStatus::AtRisk => held = held.with(AlertCondition::SlaWarning),
                SlaStatus::Breached => held = held.with(AlertCondition::SlaBreached),
                SlaStatus::NoTarget | SlaStatus::OnTrack => {}
            }
            let likely_late = row
                .forecast
                .is_some_and(|forecast| forecast.breach == BreachOutlook::Likely);
            // Once breached, the breach says it.
            if likely_late && row.sla_status != SlaStatus::Breached {
                held = held.with(AlertCondition::ForecastBreach);
            }
        }
        held
    }
}

/// The longest summary kept: a run's reason can be long, and the inbox shows a line.
const SUMMARY_CHARS: usize = 300;

/// An alert to fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    pub subject: String,
    pub condition: AlertCondition,
    pub engine: String,
    pub workflow_id: Option<String>,
    pub workflow_type: Option<String>,
    pub summary: String,
    /// The run's tags, which channels may route by (not kept with the alert).
    pub tags: Vec<String>,
}

/// What changes of rows fire and resolve, to move in their write transaction.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AlertMoves {
    pub fire: Vec<NewAlert>,
    /// Subjects and conditions whose holding alert clears.
    pub resolve: Vec<(String, AlertCondition)>,
}

impl AlertMoves {
    pub fn is_empty(&self) -> bool {
        self.fire.is_empty() && self.resolve.is_empty()
    }

    /// Adds what `row` changing from holding `before` fires and resolves.
    pub fn add(&mut self, before: Conditions, row: &WorkflowRow) {
        let after = Conditions::of(row);
        if after == before {
            return;
        }
        for condition in AlertCondition::ALL {
            match (before.holds(condition), after.holds(condition)) {
                (false, true) => self.fire.push(NewAlert::of(condition, row)),
                (true, false) => self.resolve.push((row.id.clone(), condition)),
                _ => {}
            }
        }
    }

    /// Fires `condition` if `row` holds it, else resolves it, whatever held before: for a
    /// writer that changed a row it read earlier, and so does not know what the store
    /// held (firing what holds and resolving what does not are both no-ops then).
    pub fn settle(&mut self, condition: AlertCondition, row: &WorkflowRow) {
        if Conditions::of(row).holds(condition) {
            self.fire.push(NewAlert::of(condition, row));
        } else {
            self.resolve.push((row.id.clone(), condition));
        }
    }
}

impl NewAlert {
    fn of(condition: AlertCondition, row: &WorkflowRow) -> Self {
        Self::about_run(condition, row, summary(condition, row))
    }

    /// An alert of `condition` about the run of `row`, saying `what` (after the run's
    /// type and id).
    pub fn about_run(condition: AlertCondition, row: &WorkflowRow, what: String) -> Self {
        let line = format!("{} {}: {what}", row.workflow_type, row.id);
        Self {
            subject: row.id.clone(),
            condition,
            engine: row.engine.clone(),
            workflow_id: Some(row.id.clone()),
            workflow_type: Some(row.workflow_type.clone()),
            summary: line.chars().take(SUMMARY_CHARS).collect(),
            tags: row.tags.clone(),
        }
    }

    /// An alert of `condition` about no run but `subject` (`source:<engine>`,
    /// `channel:<name>`) of `engine`, saying `what`.
    pub fn about(condition: AlertCondition, subject: String, engine: &str, what: &str) -> Self {
        Self {
            subject,
            condition,
            engine: engine.to_owned(),
            workflow_id: None,
            workflow_type: None,
            summary: what.chars().take(SUMMARY_CHARS).collect(),
            tags: Vec::new(),
        }
    }
}

/// What an alert says of its run (after its type and id).
fn summary(condition: AlertCondition, row: &WorkflowRow) -> String {
    let target = row
        .sla_target_seconds
        .map(|seconds| format!(" ({})", format_duration(seconds as f64)))
        .unwrap_or_default();
    let reason = row
        .status_reason
        .as_deref()
        .map(|reason| format!(": {reason}"))
        .unwrap_or_default();
    let said = match condition {
        AlertCondition::ForecastBreach => {
            let late = row
                .forecast
                .and_then(|forecast| forecast.expected_ms)
                .zip(row.sla_deadline_ms())
                .map(|(expected, deadline)| format_duration((expected - deadline) as f64 / 1000.0));
            match late {
                Some(late) => format!("forecast to end {late} past its SLA{target}"),
                None => format!("forecast to end past its SLA{target}"),
            }
        }
        AlertCondition::SlaWarning => format!("90 % of its SLA{target} has passed"),
        AlertCondition::SlaBreached => format!("past its SLA{target} and still running"),
        AlertCondition::Failed => {
            format!(
                "{}{reason}",
                row.status.as_str().to_lowercase().replace('_', " ")
            )
        }
        AlertCondition::CompensationFailed => {
            format!("a compensation failed{reason}; it needs manual intervention")
        }
        // Told by their own watchers (`deliver`, `stuck`, `sources`), in their words.
        AlertCondition::ChannelFailing
        | AlertCondition::StuckStep
        | AlertCondition::SourceDegraded => String::new(),
    };
    said
}

pub mod deliver;
pub mod settings;
pub mod sources;
pub mod stuck;

#[cfg(test)]
mod tests;
