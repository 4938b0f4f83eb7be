//! `/metrics` after known traffic: the expected series with the expected values, who may
//! scrape them, and the Grafana dashboard in `deploy/grafana/` built only on series that
//! exist. One test: the recorder is the process's, and the figures are compared before
//! and after the traffic.

mod common;

use common::client::{now_ms, until, Client, API};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::net::TcpListener;

const QUICK: &str = r#"
type = "quick"
name = "Two quick steps"
version = "1"
[[steps]]
name = "first"
action = { kind = "simulate", duration = "10ms" }
[[steps]]
name = "second"
after = ["first"]
action = { kind = "simulate", duration = "10ms" }
"#;

/// The samples of a scrape: each series (name and labels, as written) and its value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The value of the series `name` whose labels include every one of `labels` (summed
/// over the others), 0 when there is none.
fn value(samples: &BTreeMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| {
            let (series_name, rest) = series.split_once('{').unwrap_or((series, ""));
            series_name == name
                && labels
                    .iter()
                    .all(|(key, value)| rest.contains(&format!("{key}=\"{value}\"")))
        })
        .map(|(_, value)| value)
        .sum()
}

async fn scrape(client: &Client) -> (String, BTreeMap<String, f64>) {
    let (status, text) = client.get_text("/metrics").await;
    assert_eq!(status, 200, "{text}");
    let parsed = samples(&text);
    (text, parsed)
}

#[tokio::test]
async fn metrics_count_known_traffic_and_the_dashboard_names_only_real_series() {
    let dir = tempfile::tempdir().unwrap();
    let (core, token) = common::builtin::core_in(dir.path(), &[QUICK], None).await;
    let state = core.state;
    // A followed source as its follower reports it (the board the Temporal and Airflow
    // followers write).
    {
        use server::engines::health::Report;
        state.health.set(
            "temporal:metrics",
            app::model::EngineHealth::ok("temporal:metrics"),
        );
        state.health.set(
            "airflow:down",
            app::model::EngineHealth::degraded("airflow:down", "connection refused"),
        );
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::launch_with_listener(
        listener,
        state.clone(),
        Default::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let client = Client::over_http(base.clone()).with_token(token.clone());
    let (_, before) = scrape(&client).await;

    // Known traffic: three list reads, one unknown API path, a pushed run that has
    // breached its SLA and one that runs, a built-in run to its end, a live client.
    for _ in 0..3 {
        let (status, _) = client.get(&format!("{API}/workflows?limit=5")).await;
        assert_eq!(status, 200);
    }
    let (status, _) = client.get("/api/no/such/route/42").await;
    assert_eq!(status, 404);
    let long_ago = common::client::at(now_ms() - 3_600_000);
    let (status, body) = client
        .push_raw(
            &json!({"source": "billing", "events": [
                {"type": "workflow_started", "workflow_id": "late-1", "at": long_ago,
                 "workflow_type": "billing_sync", "total_steps": 2, "sla_target_seconds": 60},
                {"type": "step_started", "workflow_id": "late-1", "at": long_ago,
                 "step_number": 1, "name": "fetch"},
                {"type": "workflow_started", "workflow_id": "fresh-1",
                 "at": common::client::at(now_ms()), "workflow_type": "billing_sync",
                 "total_steps": 2}
            ]})
            .to_string(),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let id = client.start("quick").await;
    client
        .wait_for_status(&id, "COMPLETED", Duration::from_secs(20))
        .await;
    let _live = common::client::live_socket(&base, &token).await;
    until("the live client counted", Duration::from_secs(10), || {
        let hub = state.hub.clone();
        async move { (hub.clients() == 1).then_some(()) }
    })
    .await;
    // Retention deletes the built-in run once it is past its age.
    let swept = server::retention::sweep(
        &state.store,
        &server::retention::RetentionSettings {
            runs: Some(Duration::from_secs(60)),
            analytics: None,
            ..Default::default()
        },
        now_ms() + 3_600_000,
    )
    .await
    .unwrap();
    assert!(swept.runs >= 1, "{swept:?}");

    let (text, after) = scrape(&client).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let list = [
        ("method", "GET"),
        ("route", "/api/platform/orchestration/workflows"),
        ("status", "200"),
    ];
    assert_eq!(delta("stepline_http_requests_total", &list), 3.0, "{text}");
    assert_eq!(
        delta(
            "stepline_http_requests_total",
            &[("route", "/api/{*rest}"), ("status", "404")]
        ),
        1.0
    );
    // The raw path is never a label.
    assert!(!text.contains("/api/no/such/route/42"));
    assert_eq!(
        delta(
            "stepline_http_request_duration_seconds_count",
            &[
                ("method", "GET"),
                ("route", "/api/platform/orchestration/workflows")
            ]
        ),
        3.0
    );
    assert!(text.contains(
        "stepline_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/platform/orchestration/workflows\",le=\"0.005\"}"
    ), "{text}");
    assert_eq!(value(&after, "stepline_live_clients", &[]), 1.0);
    assert_eq!(value(&after, "stepline_ready", &[]), 1.0);
    assert!(delta("stepline_live_events_published_total", &[]) >= 3.0);
    assert!(
        delta(
            "stepline_projector_batches_total",
            &[("outcome", "applied")]
        ) >= 3.0
    );
    assert!(delta("stepline_projector_events_total", &[]) >= 3.0);
    assert!(delta("stepline_projector_batch_duration_seconds_count", &[]) >= 3.0);
    // The pushed runs by status, one breaching its SLA; the built-in run is gone.
    let billing = [("engine", "custom:billing")];
    assert_eq!(
        value(
            &after,
            "stepline_runs",
            &[billing[0], ("status", "RUNNING")]
        ),
        2.0,
        "{text}"
    );
    assert_eq!(
        value(&after, "stepline_runs", &[billing[0], ("status", "FAILED")]),
        0.0
    );
    assert_eq!(
        value(
            &after,
            "stepline_sla_runs_in_progress",
            &[billing[0], ("sla", "breached")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(
            &after,
            "stepline_runs",
            &[("engine", "builtin"), ("status", "COMPLETED")]
        ),
        0.0
    );
    assert_eq!(value(&after, "stepline_builtin_queue_depth", &[]), 0.0);
    assert_eq!(
        delta(
            "stepline_builtin_step_transitions_total",
            &[("to", "completed")]
        ),
        2.0,
        "{text}"
    );
    assert_eq!(
        delta(
            "stepline_builtin_step_transitions_total",
            &[("to", "started")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &after,
            "stepline_source_up",
            &[("engine", "temporal:metrics")]
        ),
        1.0
    );
    assert_eq!(
        value(&after, "stepline_source_up", &[("engine", "airflow:down")]),
        0.0
    );
    assert!(
        value(
            &after,
            "stepline_source_lag_seconds",
            &[("engine", "temporal:metrics")]
        ) < 60.0
    );
    assert!(!text.contains("stepline_source_lag_seconds{engine=\"airflow:down\"}"));
    assert!(delta("stepline_retention_deleted_total", &[("what", "runs")]) >= 1.0);

    // Every series the metrics name is described, and each dashboard query names one
    // of them. (Alert deliveries and dropped live events are counted where they happen:
    // `alert_delivery.rs` sends alerts; no client falls behind here.)
    let exported: BTreeSet<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    let not_exercised = [
        "stepline_alert_deliveries_total",
        "stepline_live_events_dropped_total",
    ];
    for (name, _) in server::metrics::SERIES {
        assert!(
            exported.contains(name) || not_exercised.contains(name),
            "{name} is not in the scrape:\n{text}"
        );
    }
    let catalogue: BTreeSet<&str> = server::metrics::SERIES
        .iter()
        .map(|(name, _)| *name)
        .collect();
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/grafana/stepline.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut queries = Vec::new();
    collect_exprs(&dashboard, &mut queries);
    assert!(queries.len() >= 20, "{queries:?}");
    let mut named = BTreeSet::new();
    for query in &queries {
        for name in metric_names(query) {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| base.ends_with("_seconds"))
                .unwrap_or(&name)
                .to_owned();
            assert!(
                catalogue.contains(base.as_str()),
                "the dashboard's query {query:?} names {name}, which Stepline does not export"
            );
            named.insert(base);
        }
    }
    // And the dashboard shows every series.
    for name in &catalogue {
        assert!(named.contains(*name), "the dashboard does not show {name}");
    }

    // Who may scrape: nobody anonymous; not a caller limited to some engines.
    let (status, _) = client.anonymous().get_text("/metrics").await;
    assert_eq!(status, 401);
    use app::model::identity::{Role, RoleBinding};
    let user = common::core_state::account(
        &state,
        "billing-viewer",
        None,
        &[RoleBinding {
            role: Role::Viewer,
            engines: "custom:billing".into(),
        }],
    )
    .await;
    let cookie = common::core_state::session_cookie(&state, user).await;
    let (status, body) = client
        .anonymous()
        .send_text(
            axum::http::Request::get("/metrics")
                .header(axum::http::header::COOKIE, &cookie)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, 403, "{body}");
}

/// Every `expr` of a Grafana dashboard, in panels and rows.
fn collect_exprs(value: &serde_json::Value, into: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", serde_json::Value::String(expr)) => into.push(expr.clone()),
                    _ => collect_exprs(value, into),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| collect_exprs(item, into)),
        _ => {}
    }
}

/// The metric names a PromQL query names (every `stepline_...` identifier).
fn metric_names(query: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = query;
    while let Some(start) = rest.find("stepline_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}
