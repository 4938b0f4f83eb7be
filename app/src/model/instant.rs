//! Dates and instants as people type them in filters: `2026-11-26` or an RFC 3339
//! instant, for the list's and the analytics' ranges alike.

use chrono::{DateTime, NaiveDate, Utc};

/// A filter bound that is neither a date nor an instant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a date (2026-11-26) or an instant (2026-11-26T08:00:00Z)")]
pub struct NotAnInstant(pub String);

/// A date (its start, or the start of the next day for an end) or an RFC 3339 instant.
pub fn parse_instant(value: &str, end_of_day: bool) -> Result<DateTime<Utc>, NotAnInstant> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(value) {
        return Ok(instant.with_timezone(&Utc));
    }
    let not_one = || NotAnInstant(value.to_owned());
    let date = NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| not_one())?;
    let day = if end_of_day {
        date.succ_opt().ok_or_else(not_one)?
    } else {
        date
    };
    Ok(day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
}
