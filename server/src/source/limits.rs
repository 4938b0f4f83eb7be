//! Bounds on what is stored of an engine's facts: everything is stored and shown, so
//! nothing is unbounded. Text over a bound is cut with a marker of how much was cut
//! ([`cut`]), not refused.

use std::borrow::Cow;

pub const NAME: usize = 200;
/// A run's reference in its engine: Temporal's workflow ids go up to 1,000 bytes.
pub const ENGINE_REF: usize = 1_100;
pub const ERROR: usize = 16 * 1024;
pub const REASON: usize = 2 * 1024;
pub const LOG_LINE: usize = 8 * 1024;
pub const LOG_LINES_PER_EVENT: usize = 1_000;
/// A step's or run's input or output, as JSON text.
pub const PAYLOAD: usize = 64 * 1024;
/// How deeply a payload may nest: serde_json reads back at most 128 levels, and the
/// store keeps payloads as JSON text.
pub const PAYLOAD_DEPTH: usize = 64;
/// What is kept of a payload over [`PAYLOAD`].
pub const PAYLOAD_PREVIEW: usize = 4 * 1024;
pub const TAGS: usize = 32;
pub const TAG: usize = 64;
pub const STEPS: u32 = 100_000;
pub const SLA_TARGET_SECONDS: i64 = 31 * 24 * 3600;
/// How far ahead of our clock an engine's timestamp may be.
pub const CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;
/// The earliest timestamp taken (1970-01-01T00:00:00Z): anything before (year 1 is
/// a common zero value) is a broken clock, not a fact.
pub const EARLIEST_MS: i64 = 0;

/// `text` cut to at most `max` bytes on a character boundary, ending with a marker
/// that says how many bytes were cut.
pub fn cut(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    // The marker's own length depends on the number it carries: size it for the
    // largest it can be (all of `text`).
    let marker_len = marker(text.len()).len();
    let mut end = max.saturating_sub(marker_len);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}{}", &text[..end], marker(text.len() - end)))
}

fn marker(cut_bytes: usize) -> String {
    format!("… [{cut_bytes} bytes cut]")
}
