//! Fits an engine's facts into the read model's bounds before they are applied: text over
//! its limit is cut with a visible marker of how much was cut, control characters that
//! would break the pages and the SVG chart are removed, and over-large payloads are kept
//! as a preview. An engine's fact is never refused for its size: the run goes on being
//! followed, and what was cut says so.

use crate::source::limits::{self, cut};
use crate::source::{Change, SourceEvent, StepDeclaration, WorkflowStart};
use serde_json::{json, Value};
use std::borrow::Cow;

/// Text shown on one line (names, types, tags): every control character becomes a space.
fn one_line(text: &str, max: usize) -> String {
    let clean: Cow<str> = if text.chars().any(char::is_control) {
        Cow::Owned(
            text.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    };
    cut(&clean, max).into_owned()
}

/// Text that may span lines (errors, reasons, log lines): line breaks and tabs stay,
/// other control characters go.
fn multi_line(text: &str, max: usize) -> String {
    let kept = |c: char| !c.is_control() || c == '\n' || c == '\t';
    let clean: Cow<str> = if text.chars().all(kept) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.chars().filter(|&c| kept(c)).collect())
    };
    cut(&clean, max).into_owned()
}

fn fit_one_line(text: &mut String, max: usize) {
    if text.len() > max || text.chars().any(char::is_control) {
        *text = one_line(text, max);
    }
}

fn fit_multi_line(text: &mut String, max: usize) {
    if text.len() > max
        || text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        *text = multi_line(text, max);
    }
}

/// Whether `value` nests deeper than `max` levels (a scalar is 0), found without
/// recursion and without walking past the first branch that does.
fn nests_deeper_than(value: &Value, max: usize) -> bool {
    let mut stack = vec![(value, 0)];
    while let Some((value, level)) = stack.pop() {
        if level > max {
            return true;
        }
        match value {
            Value::Array(items) => stack.extend(items.iter().map(|item| (item, level + 1))),
            Value::Object(fields) => stack.extend(fields.values().map(|v| (v, level + 1))),
            _ => {}
        }
    }
    false
}

/// The length of `value`'s JSON text, counted as it is written rather than kept: most
/// payloads fit, and their text is not needed.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// A payload (input or output) over [`limits::PAYLOAD`] bytes of JSON, or nested deeper
/// than [`limits::PAYLOAD_DEPTH`] (the store could not read it back), is kept as the
/// start of its text, with its full size.
fn fit_payload(payload: &mut Option<Value>) {
    let Some(value) = payload else { return };
    let too_deep = nests_deeper_than(value, limits::PAYLOAD_DEPTH);
    if !too_deep && json_len(value) <= limits::PAYLOAD {
        return;
    }
    let text = value.to_string();
    let why = if too_deep {
        format!(
            "this payload nests deeper than {} levels; only the start of its {} bytes of JSON is kept",
            limits::PAYLOAD_DEPTH,
            text.len()
        )
    } else {
        format!(
            "this payload is {} bytes of JSON; only its start is kept",
            text.len()
        )
    };
    *payload = Some(json!({
        "stepline_cut": why,
        "bytes": text.len(),
        "start": multi_line(&text, limits::PAYLOAD_PREVIEW),
    }));
}

fn fit_step_name(name: &mut String, step_number: u32) {
    if name.trim().is_empty() {
        *name = format!("step {step_number}");
    }
    fit_one_line(name, limits::NAME);
}

fn fit_declaration(step: &mut StepDeclaration) {
    fit_step_name(&mut step.name, step.step_number);
    if let Some(branch) = &mut step.branch {
        fit_one_line(branch, limits::NAME);
    }
    fit_payload(&mut step.input);
}

fn fit_start(start: &mut WorkflowStart) {
    fit_one_line(&mut start.workflow_type, app::model::MAX_WORKFLOW_TYPE_LEN);
    if let Some(engine_ref) = &mut start.engine_ref {
        fit_one_line(engine_ref, limits::ENGINE_REF);
    }
    for value in [
        &mut start.triggered_by,
        &mut start.trigger_type,
        &mut start.definition_name,
        &mut start.definition_version,
    ]
    .into_iter()
    .flatten()
    {
        fit_one_line(value, limits::NAME);
    }
    if start.tags.len() > limits::TAGS {
        let dropped = start.tags.len() - (limits::TAGS - 1);
        start.tags.truncate(limits::TAGS - 1);
        start.tags.push(format!("+{dropped} more tags"));
    }
    for tag in &mut start.tags {
        fit_one_line(tag, limits::TAG);
    }
    fit_payload(&mut start.input);
    for step in &mut start.steps {
        fit_declaration(step);
    }
}

/// The event with every field within the read model's bounds.
pub fn fit(mut event: SourceEvent) -> SourceEvent {
    match &mut event.change {
        Change::WorkflowStarted(start) => fit_start(start),
        Change::StepScheduled(declaration) => fit_declaration(declaration),
        Change::StepStarted {
            step_number,
            name,
            input,
            branch,
            ..
        } => {
            if let Some(name) = name {
                fit_step_name(name, *step_number);
            }
            if let Some(branch) = branch {
                fit_one_line(branch, limits::NAME);
            }
            fit_payload(input);
        }
        Change::StepAttemptFailed { error, .. } | Change::StepFailed { error, .. } => {
            fit_multi_line(error, limits::ERROR)
        }
        Change::StepCompleted { output, .. } => fit_payload(output),
        Change::StepOutput { output, .. } => {
            let mut told = Some(std::mem::take(output));
            fit_payload(&mut told);
            *output = told.unwrap_or_default();
        }
        Change::StepCancelled { reason, .. } => fit_multi_line(reason, limits::REASON),
        Change::WorkflowStatusChanged { reason, .. } => {
            if let Some(reason) = reason {
                fit_multi_line(reason, limits::REASON);
            }
        }
        Change::LogLines { lines, .. } => {
            if lines.len() > limits::LOG_LINES_PER_EVENT {
                let dropped = lines.len() - (limits::LOG_LINES_PER_EVENT - 1);
                lines.truncate(limits::LOG_LINES_PER_EVENT - 1);
                lines.push(format!(
                    "… [{dropped} more lines dropped: at most {} in one event]",
                    limits::LOG_LINES_PER_EVENT
                ));
            }
            for line in lines {
                fit_multi_line(line, limits::LOG_LINE);
            }
        }
        Change::StepWaiting { detail, .. } => {
            if let Some(detail) = detail {
                fit_one_line(detail, limits::REASON);
            }
        }
        Change::StepSkipped { .. } => {}
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_text_fits_its_limit_and_says_how_much_was_cut() {
        let long = "é".repeat(10_000); // 20,000 bytes
        let cut = cut(&long, limits::ERROR);
        assert!(cut.len() <= limits::ERROR);
        assert!(cut.starts_with("éé"));
        let kept = cut.split('…').next().unwrap().len();
        assert!(
            cut.ends_with(&format!("… [{} bytes cut]", 20_000 - kept)),
            "{cut}"
        );
        assert_eq!(super::cut("short", 10), "short");
    }

    #[test]
    fn names_lose_control_characters_and_logs_keep_their_lines() {
        assert_eq!(one_line("a\u{0}b\nc\u{1b}[31m", 100), "a b c [31m");
        assert_eq!(
            multi_line("line 1\nline\t2\u{7}\u{8}", 100),
            "line 1\nline\t2"
        );
    }

    #[test]
    fn a_huge_payload_is_kept_as_its_start_and_size() {
        let mut payload = Some(json!({"blob": "x".repeat(limits::PAYLOAD * 2)}));
        fit_payload(&mut payload);
        let kept = payload.unwrap();
        assert!(kept["bytes"].as_u64().unwrap() > limits::PAYLOAD as u64 * 2);
        assert!(kept["start"]
            .as_str()
            .unwrap()
            .starts_with("{\"blob\":\"xxx"));
        assert!(kept.to_string().len() < limits::PAYLOAD);
    }

    #[test]
    fn a_payload_nested_too_deep_to_read_back_is_kept_as_its_start() {
        let mut nested = json!("core");
        for _ in 0..200 {
            nested = json!([nested]);
        }
        let mut payload = Some(nested);
        fit_payload(&mut payload);
        let kept = payload.unwrap();
        assert!(kept["stepline_cut"]
            .as_str()
            .unwrap()
            .contains("deeper than"));
        // What is stored reads back with serde_json's own nesting limit.
        let stored = kept.to_string();
        assert!(serde_json::from_str::<Value>(&stored).is_ok());
        let mut shallow = Some(json!({"a": [[[1]]]}));
        fit_payload(&mut shallow);
        assert_eq!(shallow, Some(json!({"a": [[[1]]]})));
        assert!(!nests_deeper_than(&json!({"a": [[[1]]]}), 4));
        assert!(nests_deeper_than(&json!({"a": [[[1]]]}), 3));
        assert_eq!(json_len(&json!({"a": [1, "é"]})), r#"{"a":[1,"é"]}"#.len());
    }
}
