//! Time as the read model keeps it: milliseconds since the Unix epoch.

use chrono::{DateTime, Utc};

/// Milliseconds since the Unix epoch: how the store keeps every instant.
pub type Millis = i64;

/// Now, by our clock.
pub fn now_ms() -> Millis {
    Utc::now().timestamp_millis()
}

pub fn to_datetime(ms: Millis) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

pub fn to_millis(at: DateTime<Utc>) -> Millis {
    at.timestamp_millis()
}

/// Seconds between two instants, to the millisecond.
pub fn seconds_between(from: Millis, to: Millis) -> f64 {
    (to - from).max(0) as f64 / 1000.0
}
