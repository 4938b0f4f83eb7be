//! When a running run is expected to end, and whether it will make its SLA: what the API,
//! the list and the run's page say of it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Fewest earlier runs of a type (ended within the norms' window) a forecast is made from:
/// with fewer, a run says it has too little history instead of guessing.
pub const MIN_RUNS_FOR_FORECAST: u32 = 5;

/// How likely a run is to miss its SLA target, by its forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BreachOutlook {
    /// Even the likely-latest end is within the target (or the run has no target).
    #[default]
    Unlikely,
    /// The expected end is within the target, the likely-latest is past it.
    Possible,
    /// The expected end is past the target.
    Likely,
}

impl BreachOutlook {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unlikely => "unlikely",
            Self::Possible => "possible",
            Self::Likely => "likely",
        }
    }

    /// As stored: 0, 1, 2 in order of concern.
    pub fn level(self) -> i64 {
        match self {
            Self::Unlikely => 0,
            Self::Possible => 1,
            Self::Likely => 2,
        }
    }

    pub fn from_level(level: i64) -> Self {
        match level {
            2.. => Self::Likely,
            1 => Self::Possible,
            _ => Self::Unlikely,
        }
    }

    /// Where an SLA deadline stands against an expected and a likely-latest end.
    pub fn of(expected_ms: i64, likely_by_ms: i64, deadline_ms: Option<i64>) -> Self {
        match deadline_ms {
            Some(deadline) if expected_ms > deadline => Self::Likely,
            Some(deadline) if likely_by_ms > deadline => Self::Possible,
            _ => Self::Unlikely,
        }
    }
}

/// A running run's forecast, from how long the steps it still has to run took in earlier
/// runs of its type (parallel branches counted as their slowest, a running step with what
/// it usually has left).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Forecast {
    /// Earlier runs of the type the forecast comes from; under
    /// [`MIN_RUNS_FOR_FORECAST`] there is no forecast and the times are absent.
    pub runs_seen: u32,
    /// Expected end: the steps left taking their median durations.
    pub expected_at: Option<DateTime<Utc>>,
    /// Likely latest end: the steps left taking their 90th-percentile durations.
    pub likely_by: Option<DateTime<Utc>>,
    /// Against the run's SLA target.
    pub breach: BreachOutlook,
}

impl Forecast {
    /// Whether there was enough history to forecast.
    pub fn is_known(&self) -> bool {
        self.expected_at.is_some()
    }
}
