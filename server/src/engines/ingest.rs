//! The push engine: in-house engines report their runs to `POST .../events`. Stepline
//! cannot send them commands, so their runs declare no actions.

use app::model::{Capabilities, LiveMode};

/// Most events in one pushed batch.
pub const MAX_BATCH_EVENTS: usize = 1_000;
/// Largest pushed batch body.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// What Stepline can do with a pushed run: show it live, with its logs; no actions, as
/// there is no way to reach the engine that runs it.
pub fn capabilities() -> Capabilities {
    Capabilities {
        has_logs: true,
        live: LiveMode::Push,
        ..Capabilities::default()
    }
}

/// Names a pushing source may not take: its runs would show as a look-alike of one of
/// Stepline's own engines (`custom:builtin` beside `builtin`).
const RESERVED_SOURCES: [&str; 4] = ["builtin", "temporal", "airflow", "custom"];

/// The engine id of a pushing source (`custom:<source>`), or why the name is refused.
pub fn engine_id(source: &str) -> Result<String, String> {
    let valid = !source.is_empty()
        && source.len() <= 64
        && source
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if RESERVED_SOURCES.contains(&source) {
        Err(format!(
            "source {source:?} is the name of one of Stepline's own engine kinds; choose another"
        ))
    } else if valid {
        Ok(format!("custom:{source}"))
    } else {
        Err(format!(
            "source {source:?} must be 1 to 64 characters of a-z 0-9 - _"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_named_safely_and_not_after_our_own_engines() {
        assert_eq!(engine_id("billing-v2").unwrap(), "custom:billing-v2");
        assert!(engine_id("builtin").unwrap_err().contains("own engine"));
        assert!(engine_id("temporal").is_err());
        assert!(engine_id("Billing").is_err());
        assert!(engine_id("").is_err());
    }
}
