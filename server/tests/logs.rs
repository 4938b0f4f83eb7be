//! The real binary's logs as JSON (`--log-format json`): one object a line, with the
//! fields of the spans an event was logged in (a request's method and route).

mod common;
use common::binary;
use serde_json::Value;
use std::time::Duration;

/// Stepline's own prints to the person who started it, not log lines.
fn is_print(line: &str) -> bool {
    line.starts_with("Stepline is starting: ")
        || line.starts_with("Stepline is running: ")
        || line.starts_with("First start: ")
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_with_the_requests_span_fields() {
    let dir = tempfile::tempdir().unwrap();
    let (_child, base, mut printed) = binary::launch_printing(
        dir.path(),
        &[
            ("STEPLINE_LOG_FORMAT", "json".into()),
            // The request layer says at debug level that a request came in, in its span.
            ("STEPLINE_LOG", "info,tower_http=debug".into()),
            (
                "STEPLINE_WORKFLOWS",
                dir.path().join("none").display().to_string(),
            ),
        ],
    )
    .await;
    let client = common::client::Client::over_http(base);
    let (status, _) = client.get_text("/api/health").await;
    assert_eq!(status, 200);

    let mut serving = None;
    let mut request = None;
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = printed.recv().await {
            if is_print(&line) {
                continue;
            }
            let event: Value = serde_json::from_str(&line)
                .unwrap_or_else(|error| panic!("a log line that is not JSON ({error}): {line}"));
            assert!(
                event["timestamp"].is_string() && event["level"].is_string(),
                "{event}"
            );
            let message = event["fields"]["message"].as_str().unwrap_or_default();
            if message.starts_with("Stepline is serving on") {
                serving = Some(event.clone());
            }
            if event["span"]["route"] == "/api/health" {
                request = Some(event);
            }
            if serving.is_some() && request.is_some() {
                return;
            }
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "no start and request lines: {serving:?} {request:?}"
    );
    let serving = serving.unwrap();
    assert_eq!(serving["level"], "INFO");
    assert!(serving["fields"]["database"]
        .as_str()
        .unwrap()
        .starts_with("sqlite://"));
    let request = request.unwrap();
    assert_eq!(request["span"]["name"], "request");
    assert_eq!(request["span"]["method"], "GET");
    assert!(
        request["spans"]
            .as_array()
            .is_some_and(|spans| spans.iter().any(|span| span["name"] == "request")),
        "{request}"
    );
}
