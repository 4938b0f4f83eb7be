//! Hostile input, generated: batches pushed to the events API through the real router (on
//! a real SQLite file), and the recorded Temporal histories, mutated, through the history
//! mapping and the projector. Every request must be answered 2xx, or 4xx with the API's
//! JSON error (naming the event when one is refused); nothing may panic or answer 5xx,
//! and what was stored must read back (list, detail, Gantt SVG).
//!
//! `STEPLINE_FUZZ_CASES` sets how many cases each test runs (default 2,000, quick enough
//! for every run of the suite); `STEPLINE_FUZZ_SEED` replays a run (a failure names its
//! seed and case), `STEPLINE_FUZZ_SEED=random` tries new cases.

mod common;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::client::Client;
use common::core_state;
use serde_json::{json, Map, Value};
use server::engines::temporal::history::{CompensationRule, HistoryMapper};
use server::projector::apply_batch;
use server::source::{ApplyError, Batch};

fn cases() -> u64 {
    std::env::var("STEPLINE_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
}

/// Says how far a long run has come, twenty times over its course (a million cases take
/// most of an hour on this machine, and a silent hour cannot be told from a hang).
fn progress(test: &str, seed: u64, case: u64, cases: u64) {
    let step = (cases / 20).max(1);
    if case > 0 && case % step == 0 {
        eprintln!("{test}: seed {seed}: {case} of {cases} cases passed");
    }
}

/// The seed: fixed by default, so that every run of the suite tries the same cases (a
/// CI that fails at random helps no one); `STEPLINE_FUZZ_SEED=random` explores.
fn seed() -> u64 {
    match std::env::var("STEPLINE_FUZZ_SEED").ok().as_deref() {
        Some("random") => fastrand::u64(..),
        Some(seed) => seed
            .parse()
            .expect("STEPLINE_FUZZ_SEED: a number or `random`"),
        None => 6_242_961_939_919_216_132,
    }
}

/// Text meant to break things: empty, huge, control characters, markup, odd Unicode.
fn hostile_text(rng: &mut fastrand::Rng) -> String {
    match rng.u8(..12) {
        0 => String::new(),
        1 => " \t ".to_owned(),
        2 => "x".repeat(rng.usize(..70_000)),
        3 => "é😀".repeat(rng.usize(..20_000)),
        4 => "\u{0}\u{1b}[31m\r\n\u{7f}\u{2028}end".to_owned(),
        5 => "<script>alert(1)</script>\"'&<![CDATA[".to_owned(),
        6 => "../../etc/passwd%00%2F/".to_owned(),
        7 => (0..rng.usize(1..40)).map(|_| rng.char(..)).collect(),
        8 => "NaN".to_owned(),
        9 => "0001-01-01T00:00:00Z".to_owned(),
        10 => "\u{202e}gnp.exe\u{feff}".to_owned(),
        _ => format!("fz-{}", rng.u8(..30)),
    }
}

fn hostile_value(rng: &mut fastrand::Rng, depth: u32) -> Value {
    match rng.u8(..14) {
        0 => Value::Null,
        1 => json!(rng.bool()),
        2 => json!(i64::MIN),
        3 => json!(u64::MAX),
        4 => json!(-1),
        5 => json!(1e308),
        6 => json!(rng.u32(..)),
        7 => json!(0.5),
        8 if depth < 3 => Value::Array(
            (0..rng.usize(..5))
                .map(|_| hostile_value(rng, depth + 1))
                .collect(),
        ),
        9 if depth < 3 => {
            let mut object = Map::new();
            for _ in 0..rng.usize(..5) {
                object.insert(hostile_text(rng), hostile_value(rng, depth + 1));
            }
            Value::Object(object)
        }
        // Nesting deeper than any parser should follow, now and then.
        10 if rng.u8(..8) == 0 => {
            let mut value = json!(1);
            for _ in 0..rng.usize(..300) {
                value = json!([value]);
            }
            value
        }
        _ => Value::String(hostile_text(rng)),
    }
}

fn timestamp(rng: &mut fastrand::Rng) -> Value {
    match rng.u8(..40) {
        0 => json!("0001-01-01T00:00:00Z"),
        1 => json!("9999-12-31T23:59:59Z"),
        2 => json!("2026-13-45T25:61:61Z"),
        3 => hostile_value(rng, 0),
        _ => {
            let offset = chrono::Duration::milliseconds(rng.i64(-3_600_000..60_000));
            json!((chrono::Utc::now() + offset).to_rfc3339())
        }
    }
}

const STATUSES: [&str; 12] = [
    "PENDING",
    "RUNNING",
    "PAUSING",
    "PAUSED",
    "CANCELLING",
    "CANCELLED",
    "COMPLETED",
    "FAILED",
    "COMPENSATION_FAILED",
    "TERMINATED",
    "TIMED_OUT",
    "running",
];

/// A well-formed event of a random kind about a run of the pool (most of the time).
/// What a step may wait for, and one reason Stepline does not know.
const WAIT_REASONS: [&str; 6] = [
    "timer",
    "signal",
    "queue_slot",
    "retry_backoff",
    "human_input",
    "nap",
];

fn event(rng: &mut fastrand::Rng) -> Value {
    let workflow_id = if rng.u8(..30) == 0 {
        hostile_text(rng)
    } else {
        format!("fz-{}", rng.u8(..30))
    };
    let mut event = match rng.u8(..10) {
        0 | 1 => json!({"type": "workflow_started", "workflow_type": "fuzzed",
            "total_steps": rng.u32(..8), "sla_target_seconds": rng.i64(-5..600),
            "tags": ["a", hostile_text(rng)], "input": hostile_value(rng, 0),
            "steps": [{"step_number": rng.u32(..5), "name": hostile_text(rng)}]}),
        2 => json!({"type": "step_scheduled", "step_number": rng.u32(..6),
            "name": hostile_text(rng), "branch": hostile_text(rng)}),
        3 => json!({"type": "step_started", "step_number": rng.u32(..6),
            "name": hostile_text(rng), "attempt": rng.u32(..4), "input": hostile_value(rng, 0)}),
        4 => {
            json!({"type": "step_attempt_failed", "step_number": rng.u32(..6), "error": hostile_text(rng)})
        }
        5 => {
            json!({"type": "step_completed", "step_number": rng.u32(..6), "output": hostile_value(rng, 0)})
        }
        6 => {
            json!({"type": "step_failed", "step_number": rng.u32(..6), "error": hostile_text(rng)})
        }
        7 if rng.bool() => {
            json!({"type": "step_cancelled", "step_number": rng.u32(..6), "reason": hostile_text(rng)})
        }
        7 => json!({"type": "step_waiting", "step_number": rng.u32(..6),
            "reason": WAIT_REASONS[rng.usize(..WAIT_REASONS.len())],
            "until": if rng.bool() { json!("9999-12-31T23:59:59Z") } else { json!(hostile_text(rng)) },
            "detail": hostile_text(rng)}),
        8 => json!({"type": "workflow_status_changed",
            "status": STATUSES[rng.usize(..STATUSES.len())], "reason": hostile_text(rng)}),
        _ => {
            // Now and then more lines than one event may hold.
            let lines: Vec<String> = if rng.u8(..10) == 0 {
                vec!["line".to_owned(); 1_100]
            } else {
                (0..rng.usize(..5)).map(|_| hostile_text(rng)).collect()
            };
            json!({"type": "log_lines", "step_number": rng.u32(..6), "lines": lines})
        }
    };
    event["workflow_id"] = json!(workflow_id);
    event["at"] = timestamp(rng);
    if rng.u8(..4) == 0 {
        mutate_object(rng, &mut event);
    }
    event
}

/// Drops, replaces or adds fields of an object, now and then.
fn mutate_object(rng: &mut fastrand::Rng, value: &mut Value) {
    let Some(object) = value.as_object_mut() else {
        return;
    };
    for _ in 0..rng.usize(..3) {
        let keys: Vec<String> = object.keys().cloned().collect();
        let key = keys[rng.usize(..keys.len())].clone();
        match rng.u8(..3) {
            0 => {
                object.remove(&key);
            }
            1 => {
                object.insert(key, hostile_value(rng, 0));
            }
            _ => {
                object.insert(hostile_text(rng), hostile_value(rng, 0));
            }
        }
        if object.is_empty() {
            return;
        }
    }
}

/// `at` moved on by up to 5 s, as an event's timestamp.
fn later(rng: &mut fastrand::Rng, at: &mut chrono::DateTime<chrono::Utc>) -> Value {
    *at += chrono::Duration::milliseconds(rng.i64(0..5_000));
    json!(at.to_rfc3339())
}

/// A plausible run from its start: its steps begin, log, fail and retry, and end in
/// order, then the run ends; now and then one event is mutated. Most of these are
/// accepted, so the projector's deeper states (retries, ends, reopened steps) are
/// reached too, not only the refusals of random events.
fn lifecycle(rng: &mut fastrand::Rng) -> Vec<Value> {
    let mut at = chrono::Utc::now() - chrono::Duration::minutes(30);
    let steps = rng.u32(..6);
    let mut events = vec![
        json!({"type": "workflow_started", "workflow_type": "fuzzed",
        "total_steps": steps, "sla_target_seconds": rng.i64(1..600),
        "input": hostile_value(rng, 0), "at": later(rng, &mut at)}),
    ];
    for step in 1..=steps {
        let attempts = rng.u32(1..4);
        for attempt in 1..=attempts {
            events.push(json!({"type": "step_started", "step_number": step,
                "name": hostile_text(rng), "attempt": attempt,
                "input": hostile_value(rng, 0), "at": later(rng, &mut at)}));
            if rng.bool() {
                let lines: Vec<String> = (0..rng.usize(1..4)).map(|_| hostile_text(rng)).collect();
                events.push(json!({"type": "log_lines", "step_number": step,
                    "lines": lines, "at": later(rng, &mut at)}));
            }
            if attempt < attempts {
                events.push(json!({"type": "step_attempt_failed", "step_number": step,
                    "error": hostile_text(rng), "at": later(rng, &mut at)}));
            }
        }
        events.push(match rng.u8(..6) {
            0 => json!({"type": "step_failed", "step_number": step,
                "error": hostile_text(rng), "at": later(rng, &mut at)}),
            1 => json!({"type": "step_cancelled", "step_number": step,
                "reason": hostile_text(rng), "at": later(rng, &mut at)}),
            _ => json!({"type": "step_completed", "step_number": step,
                "output": hostile_value(rng, 0), "at": later(rng, &mut at)}),
        });
    }
    if rng.u8(..4) != 0 {
        let status = [
            "COMPLETED",
            "FAILED",
            "CANCELLED",
            "TIMED_OUT",
            "TERMINATED",
        ][rng.usize(..5)];
        events.push(json!({"type": "workflow_status_changed", "status": status,
            "reason": hostile_text(rng), "at": later(rng, &mut at)}));
    }
    let id = json!(format!("fz-run-{}", rng.u64(..)));
    for event in &mut events {
        event["workflow_id"] = id.clone();
    }
    if rng.u8(..3) == 0 {
        let index = rng.usize(..events.len());
        mutate_object(rng, &mut events[index]);
    }
    events
}

/// A request body: mostly a batch, sometimes something that only looks like one.
fn body(rng: &mut fastrand::Rng) -> (Vec<u8>, Option<usize>) {
    let length = if rng.u8(..20) == 0 {
        0
    } else {
        rng.usize(1..6)
    };
    let planned = rng.u8(..3) == 0;
    let mut events: Vec<Value> = if planned {
        lifecycle(rng)
    } else {
        (0..length).map(|_| event(rng)).collect()
    };
    // Half the others are about one run of the pool, often from its start: deeper
    // states than runs that were never started.
    if !planned && rng.bool() {
        let fresh = rng.bool();
        let id = json!(if fresh {
            format!("fz-new-{}", rng.u64(..))
        } else {
            format!("fz-{}", rng.u8(..30))
        });
        if fresh {
            events.insert(
                0,
                json!({"type": "workflow_started", "workflow_type": "fuzzed",
                       "at": chrono::Utc::now().to_rfc3339()}),
            );
        }
        for event in &mut events {
            if event.is_object() {
                event["workflow_id"] = id.clone();
            }
        }
    }
    let count = events.len();
    let source = if rng.u8(..20) == 0 {
        hostile_value(rng, 0)
    } else {
        json!("fuzz")
    };
    let batch = json!({"source": source, "events": events}).to_string();
    match rng.u8(..25) {
        0 => (batch.as_bytes()[..rng.usize(..batch.len())].to_vec(), None),
        1 => ((0..rng.usize(..200)).map(|_| rng.u8(..)).collect(), None),
        2 => (
            json!({"source": "fuzz", "events": hostile_value(rng, 0)})
                .to_string()
                .into_bytes(),
            None,
        ),
        _ => (batch.into_bytes(), Some(count)),
    }
}

const CODES: [&str; 8] = [
    "bad_request",
    // A batch for a source the client's token may not push as.
    "forbidden",
    "not_found",
    "conflict",
    "unprocessable",
    "payload_too_large",
    "unavailable",
    "event_refused",
];

/// A 4xx must carry the API's JSON error.
fn check_error(status: StatusCode, body: &[u8], events: Option<usize>) -> Result<(), String> {
    if status.is_server_error() {
        return Err(format!("{status}: {}", String::from_utf8_lossy(body)));
    }
    if status.is_success() {
        return Ok(());
    }
    let error: Value = serde_json::from_slice(body)
        .map_err(|_| format!("{status} not JSON: {}", String::from_utf8_lossy(body)))?;
    let code = error["error"].as_str().unwrap_or_default();
    if !CODES.contains(&code) || error["message"].as_str().is_none_or(str::is_empty) {
        return Err(format!("{status}: not the API's error: {error}"));
    }
    if code == "event_refused" {
        let index = error["event_index"].as_u64().map(|i| i as usize);
        if index.is_none() || events.is_some_and(|n| index >= Some(n)) {
            return Err(format!(
                "a refusal that names no event of the batch: {error}"
            ));
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_events_api_answers_any_batch_with_success_or_a_json_4xx() {
    let (state, _dir) = core_state::on_temporary_file().await;
    let client = Client::in_process(server::app(state.clone()))
        .with_token(common::core_state::operator_token(&state).await);
    let (seed, cases) = (seed(), cases());
    // Printed first: a panic inside Stepline's code shows it too (STEPLINE_FUZZ_SEED).
    eprintln!("seed {seed}, {cases} cases");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut tally = [0u64; 2];
    for case in 0..cases {
        progress("events API", seed, case, cases);
        let (body, events) = body(&mut rng);
        let request = Request::post("/api/platform/orchestration/events")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let (status, answer) = client.send(request).await;
        tally[usize::from(!status.is_success())] += 1;
        if let Err(problem) = check_error(status, &answer, events) {
            panic!("seed {seed}, case {case}: {problem}");
        }
        if case % 25 == 0 {
            // What was stored reads back, whatever it was.
            let id = format!("fz-{}", rng.u8(..30));
            let query: String = url_escape(&hostile_text(&mut rng))
                .chars()
                .take(3_000)
                .collect();
            for uri in [
                format!("/api/platform/orchestration/workflows/{id}"),
                format!("/api/platform/orchestration/workflows/{id}/gantt.svg"),
                format!("/api/platform/orchestration/workflows?q={query}"),
                format!("/orchestration/workflows/{id}"),
            ] {
                let (status, answer) = client
                    .send(Request::get(&uri).body(Body::empty()).unwrap())
                    .await;
                if status.is_server_error() || (uri.ends_with(".svg") && contains_script(&answer)) {
                    panic!("seed {seed}, case {case}: GET {uri}: {status}");
                }
            }
        }
    }
    eprintln!(
        "seed {seed}: {cases} batches: {} accepted, {} refused with a JSON 4xx",
        tally[0], tally[1]
    );
}

fn contains_script(body: &[u8]) -> bool {
    String::from_utf8_lossy(body).contains("<script>")
}

/// Every byte percent-encoded: any text as a query value.
fn url_escape(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// The recorded histories and the recorded description of a run with pending activities.
fn recorded() -> (Vec<Vec<Value>>, Value) {
    let folder = format!(
        "{}/src/engines/temporal/fixtures",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut histories = Vec::new();
    let mut description = Value::Null;
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        match json.pointer("/history/events").and_then(Value::as_array) {
            Some(events) => histories.push(events.clone()),
            None => description = json,
        }
    }
    assert!(histories.len() >= 10, "{folder}");
    (histories, description)
}

/// Replaces one value somewhere inside `value` (a random path down).
fn mutate_somewhere(rng: &mut fastrand::Rng, value: &mut Value) {
    let descend = rng.u8(..4) != 0;
    match value {
        Value::Object(object) if descend && !object.is_empty() => {
            let key = object
                .keys()
                .nth(rng.usize(..object.len()))
                .unwrap()
                .clone();
            mutate_somewhere(rng, object.get_mut(&key).unwrap());
        }
        Value::Array(list) if descend && !list.is_empty() => {
            let index = rng.usize(..list.len());
            mutate_somewhere(rng, &mut list[index]);
        }
        _ => {
            *value = match rng.u8(..4) {
                0 => Value::String(hostile_text(rng)),
                _ => hostile_value(rng, 0),
            };
        }
    }
}

fn mutate_history(rng: &mut fastrand::Rng, events: &mut Vec<Value>, kinds: &[Value]) {
    for _ in 0..rng.usize(1..5) {
        if events.is_empty() {
            return;
        }
        let i = rng.usize(..events.len());
        match rng.u8(..7) {
            0 => {
                events.remove(i);
            }
            1 => {
                let copy = events[i].clone();
                events.insert(rng.usize(..events.len()), copy);
            }
            2 => {
                let j = rng.usize(..events.len());
                events.swap(i, j);
            }
            3 if events[i].is_object() => {
                events[i]["eventType"] = kinds[rng.usize(..kinds.len())].clone();
            }
            4 if events[i].is_object() => events[i]["eventId"] = hostile_value(rng, 0),
            5 => events.truncate(i),
            _ => mutate_somewhere(rng, &mut events[i]),
        }
    }
}

#[tokio::test]
async fn mutated_temporal_histories_map_and_apply_without_a_panic_or_a_store_error() {
    let (histories, description) = recorded();
    let kinds: Vec<Value> = histories
        .iter()
        .flatten()
        .filter_map(|e| e.get("eventType").cloned())
        .collect();
    let (store, _dir) = common::database::fresh_store().await;
    let rule = CompensationRule {
        prefixes: vec!["compensate".into()],
        types: Vec::new(),
    };
    let (seed, cases) = (seed(), cases());
    // Printed first: a panic inside Stepline's code shows it too (STEPLINE_FUZZ_SEED).
    eprintln!("seed {seed}, {cases} cases");
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut mapped, mut unreadable, mut refused) = (0u64, 0u64, 0u64);
    for case in 0..cases {
        progress("Temporal histories", seed, case, cases);
        let mut events = histories[rng.usize(..histories.len())].clone();
        mutate_history(&mut rng, &mut events, &kinds);
        let id = format!("local:default:fz-{case}");
        let mut mapper = if rng.bool() {
            HistoryMapper::new(id.clone(), rule.clone())
        } else {
            HistoryMapper::resuming(id.clone(), rule.clone(), rng.u64(..12))
        };
        let mut described = description.clone();
        mutate_somewhere(&mut rng, &mut described);
        let cut = rng.usize(..=events.len());
        let mut source_events = Vec::new();
        for slice in [&events[..cut], &events[cut..]] {
            match mapper.map(slice) {
                Ok(batch) => source_events.extend(batch),
                Err(_) => {
                    unreadable += 1;
                    break;
                }
            }
            source_events.extend(mapper.pending_activities(&described));
        }
        mapped += source_events.len() as u64;
        // As the follower does: an event the read model refuses is left out alone.
        let now = chrono::Utc::now().timestamp_millis();
        for event in source_events {
            let batch = Batch {
                engine: "temporal:local:default".into(),
                capabilities: Default::default(),
                events: vec![event],
                positions: Vec::new(),
                held: None,
            };
            match apply_batch(&store, batch, now).await {
                Ok(_) => {}
                Err(ApplyError::Refused { .. }) => refused += 1,
                Err(error) => panic!("seed {seed}, case {case}: {error}"),
            }
        }
        if let Err(error) = store.workflow_detail(&id, now).await {
            panic!("seed {seed}, case {case}: the run does not read back: {error}");
        }
    }
    eprintln!(
        "seed {seed}: {cases} mutated histories, {mapped} events mapped, {refused} refused, {unreadable} histories unreadable"
    );
}
