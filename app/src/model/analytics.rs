//! How the fleet is doing over a period: the analytics API's answer, in the story's shape
//! (`GET /api/platform/orchestration/analytics?period=24h`), plus the p95 figures the
//! console adds.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The periods analytics are computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Period {
    #[serde(rename = "1h")]
    Hour,
    #[default]
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
}

impl Period {
    pub const ALL: [Period; 3] = [Self::Hour, Self::Day, Self::Week];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::Day => "24h",
            Self::Week => "7d",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Hour => "Last hour",
            Self::Day => "Last 24h",
            Self::Week => "Last 7 days",
        }
    }

    pub fn millis(self) -> i64 {
        match self {
            Self::Hour => 3_600_000,
            Self::Day => 86_400_000,
            Self::Week => 7 * 86_400_000,
        }
    }
}

/// Runs that ended within their SLA target, and those that did not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SlaCompliance {
    /// `on_track` of `on_track + breached`, rounded; none when no run with a target ended.
    pub percent: Option<u32>,
    pub on_track: u64,
    pub breached: u64,
}

/// Failed runs as a percentage of the runs that ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FailureRate {
    pub overall: u32,
    pub by_type: BTreeMap<String, u32>,
}

/// A step and how long it takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowStep {
    pub step_name: String,
    pub workflow_type: String,
    pub avg_duration_seconds: f64,
    pub p95_duration_seconds: f64,
    pub occurrences: u64,
}

/// A step and how often it needed more than one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRetryRate {
    pub step_name: String,
    pub workflow_type: String,
    /// Percentage of its runs that were retried.
    pub retry_rate: u32,
    pub occurrences: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RetryRate {
    /// Percentage of step runs that needed a retry.
    pub overall: u32,
    pub top_steps: Vec<StepRetryRate>,
}

/// The analytics of the runs that ended within a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Analytics {
    pub period: Period,
    /// Runs that ended in the period.
    pub runs: u64,
    pub sla_compliance: SlaCompliance,
    /// Mean seconds from start to end, by type.
    pub avg_duration_by_type: BTreeMap<String, u64>,
    /// 95th percentile of the same (within 5 %: durations are kept in log buckets).
    pub p95_duration_by_type: BTreeMap<String, u64>,
    pub failure_rate: FailureRate,
    /// The ten steps with the longest mean duration.
    pub slowest_steps: Vec<SlowStep>,
    pub retry_rate: RetryRate,
}

/// `part` of `whole` in percent, rounded half up; 0 of nothing.
pub fn percent(part: u64, whole: u64) -> u32 {
    if whole == 0 {
        0
    } else {
        ((part * 200 + whole) / (whole * 2)) as u32
    }
}
