//! How the fleet is doing over a period: the analytics API's answer, in the story's shape
//! (`GET /api/platform/orchestration/analytics?period=24h`), plus the p95 figures the
//! console adds.

use super::instant::parse_instant;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The longest custom range analytics are computed over.
pub const MAX_RANGE_DAYS: i64 = 92;

/// What analytics cover: one of the periods up to now, or a date range (the list's
/// `from`/`to`, so a filtered list and its analytics show the same runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum Window {
    Period(Period),
    Range {
        from: DateTime<Utc>,
        /// Exclusive; none = up to now.
        to: Option<DateTime<Utc>>,
    },
}

impl Default for Window {
    fn default() -> Self {
        Self::Period(Period::default())
    }
}

impl Window {
    /// Reads `period=24h`, or `from=2026-11-01&to=2026-11-26` (`to` includes its day).
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        let (mut period, mut from, mut to) = (None, None, None);
        for (key, value) in params {
            match key {
                "period" if !value.is_empty() => {
                    period = Some(
                        Period::parse(value)
                            .ok_or_else(|| format!("period {value:?} must be 1h, 24h or 7d"))?,
                    )
                }
                "from" if !value.is_empty() => {
                    from = Some(parse_instant(value, false).map_err(|e| e.to_string())?)
                }
                "to" if !value.is_empty() => {
                    to = Some(parse_instant(value, true).map_err(|e| e.to_string())?)
                }
                _ => {}
            }
        }
        match (period, from, to) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                Err("give a period or a from/to range, not both".into())
            }
            (Some(period), None, None) => Ok(Self::Period(period)),
            (None, None, None) => Ok(Self::default()),
            (None, None, Some(_)) => Err("a range needs its start: from".into()),
            (None, Some(from), to) => {
                if to.is_some_and(|to| to <= from) {
                    return Err("the range ends before it starts".into());
                }
                let end = to.unwrap_or_else(Utc::now);
                if end - from > chrono::Duration::days(MAX_RANGE_DAYS) {
                    return Err(format!("a range may cover at most {MAX_RANGE_DAYS} days"));
                }
                Ok(Self::Range { from, to })
            }
        }
    }

    /// The covered instants, `[start, end)` in milliseconds, as of `now`.
    pub fn bounds(&self, now: i64) -> (i64, i64) {
        match self {
            Self::Period(period) => (now - period.millis(), now),
            Self::Range { from, to } => (
                from.timestamp_millis(),
                to.map_or(now, |to| to.timestamp_millis()),
            ),
        }
    }

    /// The query string that selects this window.
    pub fn to_query(&self) -> String {
        match self {
            Self::Period(period) => format!("period={}", period.as_str()),
            Self::Range { from, to } => {
                let instant =
                    |t: &DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                match to {
                    Some(to) => format!("from={}&to={}", instant(from), instant(to)),
                    None => format!("from={}", instant(from)),
                }
            }
        }
    }
}

/// The periods analytics are computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SlaCompliance {
    /// `on_track` of `on_track + breached`, rounded; none when no run with a target ended.
    pub percent: Option<u32>,
    pub on_track: u64,
    pub breached: u64,
}

/// Failed runs as a percentage of the runs that ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FailureRate {
    pub overall: u32,
    pub by_type: BTreeMap<String, u32>,
}

/// A step and how long it takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SlowStep {
    pub step_name: String,
    pub workflow_type: String,
    pub avg_duration_seconds: f64,
    pub p95_duration_seconds: f64,
    pub occurrences: u64,
}

/// A step and how often it needed more than one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StepRetryRate {
    pub step_name: String,
    pub workflow_type: String,
    /// Percentage of its runs that were retried.
    pub retry_rate: u32,
    pub occurrences: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RetryRate {
    /// Percentage of step runs that needed a retry.
    pub overall: u32,
    pub top_steps: Vec<StepRetryRate>,
}

/// The analytics of the runs that ended within a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Analytics {
    /// The period asked for; none for a date range.
    pub period: Option<Period>,
    /// The instants covered (`to` exclusive).
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
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

/// How long a step of a workflow type usually takes: the yardstick the Gantt chart
/// holds each step against ("ran 2.4× its usual duration").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StepNorm {
    pub step_name: String,
    pub p50_seconds: f64,
    pub p95_seconds: f64,
    /// Finished runs of the step the percentiles come from.
    pub occurrences: u64,
}

/// How far back "usual" step durations look.
pub const STEP_NORMS_WINDOW: Period = Period::Week;

/// `part` of `whole` in percent, rounded half up; 0 of nothing.
pub fn percent(part: u64, whole: u64) -> u32 {
    if whole == 0 {
        0
    } else {
        ((part * 200 + whole) / (whole * 2)) as u32
    }
}

/// Each histogram bucket is this much wider than the one before: a percentile read
/// from it is within ±5 % of the true value.
const GROWTH: f64 = 1.1;

/// Durations in milliseconds counted in log-width buckets (bucket `i` holds
/// `[GROWTH^i, GROWTH^(i+1))` ms): small and mergeable, so percentiles over any period
/// come from summing stored histograms. Counts are signed so a run counted once can be
/// taken out again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct Histogram(BTreeMap<u16, i64>);

impl Histogram {
    pub fn add(&mut self, duration_ms: i64) {
        self.count(duration_ms, 1);
    }

    /// Counts `duration_ms` in (`sign` 1) or out (`sign` -1).
    pub fn count(&mut self, duration_ms: i64, sign: i64) {
        let ms = duration_ms.max(1) as f64;
        let bucket = (ms.ln() / GROWTH.ln()).floor().clamp(0.0, u16::MAX as f64) as u16;
        *self.0.entry(bucket).or_default() += sign;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (bucket, count) in &other.0 {
            *self.0.entry(*bucket).or_default() += count;
        }
        self.0.retain(|_, count| *count > 0);
    }

    /// The `q` quantile in milliseconds (the geometric middle of its bucket).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.quantile_beyond(q, 0.0)
    }

    /// The `q` quantile in milliseconds of the durations that lasted beyond `floor_ms`
    /// (the bucket holding `floor_ms` counted whole), and at least `floor_ms`: how long
    /// something already running for `floor_ms` lasts in all. `None` when nothing lasted
    /// that long.
    pub fn quantile_beyond(&self, q: f64, floor_ms: f64) -> Option<f64> {
        let beyond = |bucket: &u16| GROWTH.powf(f64::from(*bucket) + 1.0) > floor_ms;
        let counted = || {
            self.0
                .iter()
                .filter(move |(bucket, count)| **count > 0 && beyond(bucket))
        };
        let total: i64 = counted().map(|(_, count)| count).sum();
        if total <= 0 {
            return None;
        }
        let rank = (q * total as f64).ceil().max(1.0) as i64;
        let mut seen = 0;
        for (bucket, count) in counted() {
            seen += count;
            if seen >= rank {
                return Some(GROWTH.powf(f64::from(*bucket) + 0.5).max(floor_ms));
            }
        }
        None
    }
}
