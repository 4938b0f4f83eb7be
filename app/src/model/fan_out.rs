//! Big fan-outs: the siblings of one parallel step (one step, by name, on many parallel
//! branches), which the timeline and the Gantt chart show as one summarised row past a
//! threshold, expanded on demand.

use super::{Step, StepKind, StepStatus};

/// More siblings than this collapse into one row.
pub const FAN_OUT_COLLAPSE_AT: usize = 20;

/// The order a summary counts statuses in: how it ended, then what is still going.
const SUMMARY_ORDER: [StepStatus; 7] = [
    StepStatus::Completed,
    StepStatus::Failed,
    StepStatus::Running,
    StepStatus::Retrying,
    StepStatus::Pending,
    StepStatus::Cancelled,
    StepStatus::Skipped,
];

/// The siblings of one parallel step.
#[derive(Debug, Clone, PartialEq)]
pub struct FanOut {
    pub name: String,
    /// The siblings' step numbers, in order.
    pub members: Vec<u32>,
    /// How many siblings are in each status (those with none left out).
    pub counts: Vec<(StepStatus, usize)>,
}

impl FanOut {
    /// The first sibling's number, which names the fan-out (`?fan_out=`, the rows' keys).
    pub fn first(&self) -> u32 {
        self.members.first().copied().unwrap_or_default()
    }

    pub fn contains(&self, step_number: u32) -> bool {
        self.members.binary_search(&step_number).is_ok()
    }

    pub fn count(&self, status: StepStatus) -> usize {
        self.counts
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n)
    }

    /// What the fan-out as a whole is: failed if a sibling failed, running while one
    /// runs or retries, completed when all did, else pending.
    pub fn status(&self) -> StepStatus {
        let any = |status| self.count(status) > 0;
        if any(StepStatus::Failed) {
            StepStatus::Failed
        } else if any(StepStatus::Running) || any(StepStatus::Retrying) {
            StepStatus::Running
        } else if self.count(StepStatus::Completed) + self.count(StepStatus::Skipped)
            == self.members.len()
        {
            StepStatus::Completed
        } else if any(StepStatus::Cancelled) && !any(StepStatus::Pending) {
            StepStatus::Cancelled
        } else {
            StepStatus::Pending
        }
    }

    /// "1,000 × resize: 950 completed, 48 failed, 2 running".
    pub fn summary(&self) -> String {
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|(status, n)| {
                format!("{} {}", thousands(*n), status.as_str().to_ascii_lowercase())
            })
            .collect();
        format!(
            "{} × {}: {}",
            thousands(self.members.len()),
            self.name,
            counts.join(", ")
        )
    }
}

/// `1234567` as "1,234,567".
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The fan-outs of a run's `steps`: within each stretch of its own steps (in order)
/// that run on parallel branches, the steps of one name on more than
/// [`FAN_OUT_COLLAPSE_AT`] branches.
pub fn fan_outs(steps: &[Step]) -> Vec<FanOut> {
    let mut normal: Vec<&Step> = steps
        .iter()
        .filter(|s| s.kind == StepKind::Normal)
        .collect();
    normal.sort_by_key(|s| s.step_number);
    normal
        .chunk_by(|a, b| a.branch.is_some() == b.branch.is_some())
        .filter(|stretch| stretch[0].branch.is_some() && stretch.len() > FAN_OUT_COLLAPSE_AT)
        .flat_map(siblings_in)
        .collect()
}

/// The fan-outs of one stretch of parallel steps, by name in order of first appearance.
fn siblings_in(stretch: &[&Step]) -> Vec<FanOut> {
    let mut by_name: Vec<(&str, Vec<&Step>)> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for step in stretch {
        let at = *index.entry(step.name.as_str()).or_insert_with(|| {
            by_name.push((step.name.as_str(), Vec::new()));
            by_name.len() - 1
        });
        by_name[at].1.push(step);
    }
    by_name
        .into_iter()
        .filter(|(_, siblings)| siblings.len() > FAN_OUT_COLLAPSE_AT)
        .map(|(name, siblings)| {
            let mut members: Vec<u32> = siblings.iter().map(|s| s.step_number).collect();
            members.sort_unstable();
            let counts = SUMMARY_ORDER
                .into_iter()
                .map(|status| {
                    (
                        status,
                        siblings.iter().filter(|s| s.status == status).count(),
                    )
                })
                .filter(|(_, n)| *n > 0)
                .collect();
            FanOut {
                name: name.to_owned(),
                members,
                counts,
            }
        })
        .collect()
}
