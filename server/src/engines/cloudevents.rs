//! Pushed events in CloudEvents 1.0 form (structured JSON, one event or a batch), read as
//! the same events the native push format carries, so an engine that already emits
//! CloudEvents needs no translation:
//!
//! | CloudEvents | Stepline event |
//! |---|---|
//! | `type` `dev.stepline.<event>` | `type` `<event>` (`workflow_started`, `step_completed`, ...) |
//! | `source` (`billing`, `/engines/billing`, `urn:acme:billing`) | the pushing source: its last segment |
//! | `subject` | `workflow_id` (unless `data` names one) |
//! | `time` | `at` (unless `data` has one) |
//! | `data` (a JSON object) | the event's other fields |
//! | `specversion` | must be `1.0` |
//!
//! `id` and extension attributes are not used.

use serde_json::{Map, Value};

/// A single structured event.
pub const SINGLE: &str = "application/cloudevents+json";
/// A JSON array of structured events.
pub const BATCH: &str = "application/cloudevents-batch+json";
/// The prefix of every event type Stepline reads.
pub const TYPE_PREFIX: &str = "dev.stepline.";

/// Pushed events read from CloudEvents: the source they all come from, and each event in
/// the native form (or, by its index, why it could not be read).
#[derive(Debug, PartialEq)]
pub struct Read {
    pub source: String,
    pub events: Vec<Value>,
}

/// Why CloudEvents could not be read: the whole body, or one event by its index.
#[derive(Debug, PartialEq, Eq)]
pub enum Unreadable {
    Body(String),
    Event { index: usize, message: String },
}

/// Reads a body of `content_type` ([`SINGLE`] or [`BATCH`]).
pub fn read(content_type: &str, body: &[u8]) -> Result<Read, Unreadable> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Unreadable::Body(format!("not JSON: {e}")))?;
    let events = if content_type == BATCH {
        match value {
            Value::Array(events) => events,
            _ => {
                return Err(Unreadable::Body(
                    "a CloudEvents batch is a JSON array".into(),
                ))
            }
        }
    } else {
        vec![value]
    };
    let mut source: Option<String> = None;
    let mut read = Vec::with_capacity(events.len());
    for (index, event) in events.into_iter().enumerate() {
        let refused = |message: String| Unreadable::Event { index, message };
        let (event_source, event) = native(event).map_err(refused)?;
        match &source {
            None => source = Some(event_source),
            Some(first) if *first != event_source => {
                return Err(refused(format!(
                    "its source {event_source:?} is not the batch's ({first:?}): one source per request"
                )))
            }
            Some(_) => {}
        }
        read.push(event);
    }
    let source = source.ok_or_else(|| Unreadable::Body("the batch has no events".into()))?;
    Ok(Read {
        source,
        events: read,
    })
}

/// One CloudEvent as the pushing source's name and a native event.
fn native(event: Value) -> Result<(String, Value), String> {
    let Value::Object(mut event) = event else {
        return Err("a CloudEvent is a JSON object".into());
    };
    let mut text = |name: &str| match event.remove(name) {
        Some(Value::String(value)) => Ok(Some(value)),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(format!("its {name} must be a string")),
    };
    match text("specversion")?.as_deref() {
        Some("1.0") => {}
        Some(other) => return Err(format!("specversion {other:?} is not 1.0")),
        None => return Err("it has no specversion (1.0)".into()),
    }
    let kind = text("type")?.ok_or("it has no type")?;
    let kind = kind
        .strip_prefix(TYPE_PREFIX)
        .filter(|kind| !kind.is_empty())
        .ok_or_else(|| format!("its type {kind:?} is not {TYPE_PREFIX}<event>"))?
        .to_owned();
    let source = source_name(&text("source")?.ok_or("it has no source")?)?;
    let subject = text("subject")?;
    let time = text("time")?;
    let mut fields = match event.remove("data") {
        Some(Value::Object(data)) => data,
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err("its data must be a JSON object".into()),
    };
    fields.insert("type".into(), Value::String(kind));
    if let Some(subject) = subject {
        fields
            .entry("workflow_id")
            .or_insert(Value::String(subject));
    }
    if let Some(time) = time {
        fields.entry("at").or_insert(Value::String(time));
    }
    Ok((source, Value::Object(fields)))
}

/// The pushing source a CloudEvents `source` names: the whole of a plain name, else the
/// last segment of a path or URN (`/engines/billing`, `urn:acme:billing`).
fn source_name(source: &str) -> Result<String, String> {
    let last = source
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or_default();
    if last.is_empty() {
        return Err(format!("its source {source:?} names no source"));
    }
    Ok(last.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(source: &str, kind: &str) -> Value {
        json!({"specversion": "1.0", "id": "e-1", "type": kind, "source": source,
               "subject": "wf-1", "time": "2026-12-06T10:00:00Z",
               "datacontenttype": "application/json",
               "data": {"workflow_type": "sync", "step_number": 2}})
    }

    #[test]
    fn a_cloudevent_reads_as_the_native_event() {
        let body = event("/engines/billing", "dev.stepline.step_started").to_string();
        let read = read(SINGLE, body.as_bytes()).unwrap();
        assert_eq!(read.source, "billing");
        assert_eq!(
            read.events,
            vec![json!({"type": "step_started", "workflow_id": "wf-1",
                        "at": "2026-12-06T10:00:00Z", "workflow_type": "sync", "step_number": 2})]
        );
    }

    #[test]
    fn sources_are_plain_names_paths_or_urns() {
        assert_eq!(source_name("billing").unwrap(), "billing");
        assert_eq!(source_name("urn:acme:billing").unwrap(), "billing");
        assert_eq!(
            source_name("https://acme.example/engines/billing/").unwrap(),
            "billing"
        );
        assert!(source_name("/").is_err());
    }

    #[test]
    fn what_is_not_a_stepline_cloudevent_is_refused_by_its_index() {
        let batch = json!([
            event("billing", "dev.stepline.workflow_started"),
            event("billing", "com.acme.order.created"),
        ])
        .to_string();
        assert_eq!(
            read(BATCH, batch.as_bytes()),
            Err(Unreadable::Event {
                index: 1,
                message: "its type \"com.acme.order.created\" is not dev.stepline.<event>".into()
            })
        );
        let mixed = json!([
            event("billing", "dev.stepline.workflow_started"),
            event("shipping", "dev.stepline.workflow_started"),
        ])
        .to_string();
        assert!(matches!(
            read(BATCH, mixed.as_bytes()),
            Err(Unreadable::Event { index: 1, .. })
        ));
        let mut old = event("billing", "dev.stepline.workflow_started");
        old["specversion"] = json!("0.3");
        assert!(matches!(
            read(SINGLE, old.to_string().as_bytes()),
            Err(Unreadable::Event { index: 0, .. })
        ));
        assert!(matches!(read(BATCH, b"{}"), Err(Unreadable::Body(_))));
        assert!(matches!(read(BATCH, b"[]"), Err(Unreadable::Body(_))));
        assert!(matches!(
            read(SINGLE, b"not json"),
            Err(Unreadable::Body(_))
        ));
        let mut listed = event("billing", "dev.stepline.workflow_started");
        listed["data"] = json!([1, 2]);
        assert!(matches!(
            read(SINGLE, listed.to_string().as_bytes()),
            Err(Unreadable::Event { index: 0, .. })
        ));
    }
}
