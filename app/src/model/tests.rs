//! The story's example payloads must parse into our wire types: they are the contract.

use super::*;
use serde_json::json;

const STORY_LIST: &str = r#"{
  "workflows": [
    {
      "id": "trial-wf-12345",
      "type": "trial_activation",
      "status": "RUNNING",
      "progress": {
        "current_step": 7,
        "total_steps": 15,
        "percent": 47
      },
      "started_at": "2026-01-01T12:00:00Z",
      "duration_seconds": 120,
      "sla_target_seconds": 300,
      "sla_status": "on_track",
      "triggered_by": "user@example.com",
      "priority": "HIGH",
      "can_pause": true,
      "can_cancel": true
    }
  ],
  "total": 3,
  "stats": {
    "active": 3,
    "pending": 1,
    "completed_today": 45,
    "failed_today": 7
  }
}"#;

const STORY_DETAIL: &str = r#"{
  "id": "trial-wf-12345",
  "type": "trial_activation",
  "status": "RUNNING",
  "definition": {
    "name": "Trial Activation Workflow",
    "version": "1.2.0",
    "steps": 15,
    "sla_target_seconds": 300
  },
  "execution": {
    "started_at": "2026-01-01T12:00:00Z",
    "updated_at": "2026-01-01T12:05:30Z",
    "duration_seconds": 330,
    "current_step": 7,
    "steps": [
      {
        "step_number": 1,
        "name": "validate_trial_request",
        "status": "COMPLETED",
        "started_at": "2026-01-01T12:00:00Z",
        "completed_at": "2026-01-01T12:00:02Z",
        "duration_seconds": 2,
        "input": {"customer_id": "cust-123", "plan": "pro"},
        "output": {"valid": true},
        "logs": ["Validating customer...", "Customer verified"],
        "error": null,
        "retry_count": 0
      },
      {
        "step_number": 7,
        "name": "initialize_agent_context",
        "status": "RUNNING",
        "started_at": "2026-01-01T12:05:00Z",
        "completed_at": null,
        "duration_seconds": 300,
        "input": {"agent_id": "WowMemory", "context_size": "large"},
        "output": null,
        "logs": ["Loading context file...", "Progress: 45%"],
        "error": null,
        "retry_count": 0
      }
    ],
    "parallel_branches": [
      {
        "branch_id": "branch-a",
        "steps": [4, 5, 6],
        "status": "COMPLETED"
      },
      {
        "branch_id": "branch-b",
        "steps": [7, 8],
        "status": "RUNNING"
      }
    ]
  },
  "metadata": {
    "triggered_by": "user@example.com",
    "trigger_type": "manual",
    "priority": "HIGH",
    "tags": ["trial", "customer-123"]
  }
}"#;

#[test]
fn story_list_payload_parses() {
    let list: WorkflowList = serde_json::from_str(STORY_LIST).expect("story list parses");
    assert_eq!(list.total, 3);
    assert_eq!(list.stats.completed_today, 45);
    let wf = &list.workflows[0];
    assert_eq!(wf.workflow_type, "trial_activation");
    assert_eq!(wf.status, WorkflowStatus::Running);
    assert_eq!(
        wf.progress,
        Progress {
            current_step: 7,
            total_steps: 15,
            percent: 47
        }
    );
    assert_eq!(wf.sla_status, SlaStatus::OnTrack);
    assert_eq!(wf.priority, Priority::High);
    assert!(wf.can_pause && wf.can_cancel);
}

#[test]
fn story_detail_payload_parses_and_round_trips_field_names() {
    let detail: WorkflowDetail = serde_json::from_str(STORY_DETAIL).expect("story detail parses");
    assert_eq!(detail.definition.version.as_deref(), Some("1.2.0"));
    assert_eq!(detail.execution.current_step, 7);
    let step = &detail.execution.steps[1];
    assert_eq!(step.name, "initialize_agent_context");
    assert_eq!(step.status, StepStatus::Running);
    assert_eq!(step.kind, StepKind::Normal);
    assert_eq!(step.logs, ["Loading context file...", "Progress: 45%"]);
    assert_eq!(detail.execution.parallel_branches[0].steps, [4, 5, 6]);
    assert_eq!(detail.metadata.tags, ["trial", "customer-123"]);

    // Every field the story names comes back out under the same name.
    let out = serde_json::to_value(&detail).unwrap();
    let original: serde_json::Value = serde_json::from_str(STORY_DETAIL).unwrap();
    assert_same_keys(&original, &out, "$");
}

/// Checks that every object key of `story` is present in `ours`, recursively.
fn assert_same_keys(story: &serde_json::Value, ours: &serde_json::Value, path: &str) {
    match (story, ours) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (key, value) in a {
                let inner = b
                    .get(key)
                    .unwrap_or_else(|| panic!("{path}.{key} is missing from our output"));
                assert_same_keys(value, inner, &format!("{path}.{key}"));
            }
        }
        (serde_json::Value::Array(a), serde_json::Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_same_keys(x, y, &format!("{path}[{i}]"));
            }
        }
        _ => {}
    }
}

#[test]
fn story_live_events_parse() {
    let completed: LiveEvent = serde_json::from_value(json!({
      "event": "step_completed",
      "workflow_id": "trial-wf-12345",
      "step_number": 7,
      "step_name": "initialize_agent_context",
      "duration_seconds": 480,
      "status": "COMPLETED"
    }))
    .unwrap();
    assert_eq!(completed.workflow_id(), Some("trial-wf-12345"));

    let changed: LiveEvent = serde_json::from_value(json!({
      "event": "workflow_status_changed",
      "workflow_id": "trial-wf-12345",
      "old_status": "RUNNING",
      "new_status": "COMPLETED",
      "duration_seconds": 540
    }))
    .unwrap();
    assert!(matches!(
        changed,
        LiveEvent::WorkflowStatusChanged {
            new_status: WorkflowStatus::Completed,
            ..
        }
    ));

    let warning: LiveEvent = serde_json::from_value(json!({
      "event": "sla_warning",
      "workflow_id": "trial-wf-12345",
      "message": "Workflow at 90% of SLA target",
      "current_duration": 270,
      "sla_target": 300
    }))
    .unwrap();
    assert!(matches!(
        warning,
        LiveEvent::SlaWarning {
            sla_target: 300,
            ..
        }
    ));
}

#[test]
fn live_messages_carry_seq_next_to_the_event_name() {
    let message = LiveMessage {
        seq: 42,
        event: LiveEvent::LogAppended {
            workflow_id: "wf-1".into(),
            step_number: 3,
            lines: vec!["<script>".into()],
            earlier: 0,
        },
    };
    let value = serde_json::to_value(&message).unwrap();
    assert_eq!(value["seq"], 42);
    assert_eq!(value["event"], "log_appended");
    assert!(
        value.get("earlier").is_none(),
        "nothing left out, nothing said"
    );
    assert_eq!(
        serde_json::from_value::<LiveMessage>(value).unwrap(),
        message
    );
}

#[test]
fn story_subscribe_message_parses() {
    let message: ClientMessage = serde_json::from_value(json!(
        { "action": "subscribe", "workflow_ids": ["trial-wf-12345"] }
    ))
    .unwrap();
    assert_eq!(
        message,
        ClientMessage::Subscribe {
            subscription: Subscription {
                workflow_ids: vec!["trial-wf-12345".into()],
                ..Subscription::default()
            },
            since_seq: None
        }
    );
}

#[test]
fn progress_matches_the_story_examples() {
    // "Step 7/15 (47%)": six steps done, the seventh running.
    assert_eq!(progress_of(6, 15, WorkflowStatus::Running).percent, 47);
    assert_eq!(progress_of(6, 15, WorkflowStatus::Running).current_step, 7);
    // "3/8 (38%)" and a pending "1/5 (20%)".
    assert_eq!(progress_of(2, 8, WorkflowStatus::Running).percent, 38);
    assert_eq!(progress_of(0, 5, WorkflowStatus::Pending).percent, 20);
    // Finished runs sit on their last step; unknown totals show nothing.
    assert_eq!(progress_of(15, 15, WorkflowStatus::Completed).percent, 100);
    assert_eq!(
        progress_of(15, 15, WorkflowStatus::Running).current_step,
        15
    );
    assert_eq!(progress_of(0, 0, WorkflowStatus::Running).percent, 0);
    // A run that completed without any step is done, not at 0 %.
    assert_eq!(progress_of(0, 0, WorkflowStatus::Completed).percent, 100);
    // More completed steps than declared never shows more than 100 %.
    assert_eq!(progress_of(9, 5, WorkflowStatus::Running).percent, 100);
}

#[test]
fn sla_is_at_risk_from_ninety_percent() {
    assert_eq!(SlaStatus::derive(269_999, Some(300)), SlaStatus::OnTrack);
    assert_eq!(SlaStatus::derive(270_000, Some(300)), SlaStatus::AtRisk);
    assert_eq!(SlaStatus::derive(300_000, Some(300)), SlaStatus::AtRisk);
    assert_eq!(SlaStatus::derive(300_001, Some(300)), SlaStatus::Breached);
    assert_eq!(SlaStatus::derive(10, None), SlaStatus::NoTarget);
    assert_eq!(SlaStatus::derive(10, Some(0)), SlaStatus::NoTarget);
}

#[test]
fn durations_read_in_hours_past_an_hour() {
    assert_eq!(format_duration(0.42), "0.4s");
    assert_eq!(format_duration(2.0), "2s");
    assert_eq!(format_duration(330.0), "5:30");
    assert_eq!(format_duration(3_600.0), "1h 00m");
    assert_eq!(format_duration(2.0 * 3_600.0 + 5.0 * 60.0 + 9.0), "2h 05m");
    assert_eq!(format_duration(-1.0), "–");
}

#[test]
fn statuses_round_trip_through_their_names() {
    for status in WorkflowStatus::ALL {
        assert_eq!(WorkflowStatus::parse(status.as_str()), Some(status));
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            serde_json::Value::String(status.as_str().into())
        );
    }
    for status in StepStatus::ALL {
        assert_eq!(StepStatus::parse(status.as_str()), Some(status));
    }
    assert_eq!(WorkflowStatus::parse("running"), None);
}

#[test]
fn workflow_ids_are_url_safe() {
    assert!(is_valid_workflow_id("trial-wf-12345"));
    assert!(is_valid_workflow_id("temporal:default:wf.1_a"));
    assert!(!is_valid_workflow_id(""));
    assert!(!is_valid_workflow_id("a/b"));
    assert!(!is_valid_workflow_id("a b"));
    assert!(!is_valid_workflow_id(&"x".repeat(129)));
}

#[test]
fn list_query_reads_the_query_string_and_refuses_bad_input() {
    let query = ListQuery::from_params([
        ("status", "RUNNING,pending"),
        ("type", "data_sync"),
        ("limit", "20"),
        ("utm_source", "mail"),
    ])
    .unwrap();
    assert_eq!(
        query.statuses,
        [WorkflowStatus::Running, WorkflowStatus::Pending]
    );
    assert_eq!(query.workflow_type.as_deref(), Some("data_sync"));
    assert_eq!(query.effective_limit(), 20);
    let row = |status, workflow_type: &str| Workflow {
        status,
        workflow_type: workflow_type.into(),
        ..list_row("sync-wf-1")
    };
    assert!(query.matches(&row(WorkflowStatus::Pending, "data_sync")));
    assert!(!query.matches(&row(WorkflowStatus::Failed, "data_sync")));
    assert!(!query.matches(&row(WorkflowStatus::Running, "trial_activation")));

    assert_eq!(
        ListQuery::from_params([("status", "BOGUS")]),
        Err(QueryError::UnknownStatus("BOGUS".into()))
    );
    assert!(matches!(
        ListQuery::from_params([("limit", "0")]),
        Err(QueryError::BadLimit(_))
    ));
    assert!(matches!(
        ListQuery::from_params([("limit", "501")]),
        Err(QueryError::BadLimit(_))
    ));
    assert!(matches!(
        ListQuery::from_params([("cursor", "nope")]),
        Err(QueryError::BadCursor(_))
    ));
    let cursor = Cursor {
        created_ms: 17,
        id: "wf-1".into(),
    };
    assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
}

fn step(step_number: u32, branch: Option<&str>, status: StepStatus) -> Step {
    Step {
        step_number,
        name: format!("step_{step_number}"),
        status,
        started_at: None,
        completed_at: None,
        duration_seconds: None,
        input: None,
        output: None,
        logs: Vec::new(),
        logs_dropped: 0,
        error: None,
        retry_count: 0,
        attempts: Vec::new(),
        kind: StepKind::Normal,
        branch: branch.map(str::to_owned),
        compensates: None,
        retry_policy: None,
        waiting: None,
    }
}

#[test]
fn branches_are_derived_from_their_steps() {
    use StepStatus::*;
    let steps = [
        step(3, None, Completed),
        step(4, Some("branch-a"), Completed),
        step(5, Some("branch-a"), Completed),
        step(6, Some("branch-a"), Completed),
        step(7, Some("branch-b"), Completed),
        step(8, Some("branch-b"), Pending),
        step(9, Some("branch-c"), Retrying),
        step(10, Some("branch-d"), Failed),
        step(11, Some("branch-d"), Running),
        step(12, Some("branch-e"), Pending),
    ];
    let branches = derive_branches(&steps);
    let summary: Vec<(&str, Vec<u32>, StepStatus)> = branches
        .iter()
        .map(|b| (b.branch_id.as_str(), b.steps.clone(), b.status))
        .collect();
    assert_eq!(
        summary,
        [
            ("branch-a", vec![4, 5, 6], Completed),
            ("branch-b", vec![7, 8], Running),
            ("branch-c", vec![9], Running),
            ("branch-d", vec![10, 11], Failed),
            ("branch-e", vec![12], Pending),
        ]
    );
}

#[test]
fn status_transitions_follow_the_run_lifecycle() {
    use WorkflowStatus::*;
    assert!(Pending.can_become(Running));
    assert!(Running.can_become(Pausing));
    assert!(Pausing.can_become(Paused));
    assert!(Paused.can_become(Running));
    assert!(Running.can_become(Cancelling));
    assert!(Cancelling.can_become(Cancelled));
    assert!(Cancelling.can_become(CompensationFailed));
    assert!(Failed.can_become(Running), "a retry reopens a failed run");
    assert!(Running.can_become(Running), "repeats are harmless");

    assert!(!Completed.can_become(Paused));
    assert!(!Completed.can_become(Failed));
    assert!(!Running.can_become(Pending));
    assert!(!Cancelling.can_become(Running));
    assert!(!Paused.can_become(Pausing));
}

#[test]
fn terminate_is_a_separate_hard_stop() {
    let rolls_back = Capabilities::everything();
    assert_eq!(
        Action::Terminate
            .refusal(WorkflowStatus::Running, &rolls_back)
            .as_deref(),
        Some("the engine of this workflow cannot terminate")
    );
    let hard_stop = Capabilities {
        can_terminate: true,
        ..rolls_back
    };
    assert_eq!(
        Action::Terminate.refusal(WorkflowStatus::Cancelling, &hard_stop),
        None
    );
    assert!(Action::Terminate
        .refusal(WorkflowStatus::Completed, &hard_stop)
        .is_some());
    assert_eq!(Action::parse("terminate"), Some(Action::Terminate));
}

#[test]
fn actions_need_both_the_capability_and_a_fitting_status() {
    let all = Capabilities::everything();
    assert_eq!(Action::Pause.refusal(WorkflowStatus::Running, &all), None);
    assert_eq!(
        Action::Pause
            .refusal(WorkflowStatus::Completed, &all)
            .as_deref(),
        Some("cannot pause a COMPLETED workflow")
    );
    assert!(Action::Resume
        .refusal(WorkflowStatus::Running, &all)
        .is_some());
    assert_eq!(Action::Resume.refusal(WorkflowStatus::Paused, &all), None);
    assert_eq!(Action::Cancel.refusal(WorkflowStatus::Pending, &all), None);
    assert!(Action::Cancel
        .refusal(WorkflowStatus::Cancelling, &all)
        .is_some());
    assert_eq!(Action::Retry.refusal(WorkflowStatus::Failed, &all), None);
    assert!(Action::Retry
        .refusal(WorkflowStatus::Running, &all)
        .is_some());
    assert_eq!(Action::Clone.refusal(WorkflowStatus::Completed, &all), None);

    let none = Capabilities::default();
    assert_eq!(
        Action::Pause
            .refusal(WorkflowStatus::Running, &none)
            .as_deref(),
        Some("the engine of this workflow cannot pause")
    );
}

/// A list row to test filters against: RUNNING data_sync, created 2026-11-26 08:00 UTC.
fn list_row(id: &str) -> Workflow {
    serde_json::from_value(serde_json::json!({
        "id": id, "type": "data_sync", "engine": "builtin", "status": "RUNNING",
        "progress": {"current_step": 1, "total_steps": 5, "percent": 20},
        "created_at": "2026-11-26T08:00:00Z", "started_at": "2026-11-26T08:00:00Z",
        "completed_at": null, "updated_at": "2026-11-26T08:00:01Z", "duration_seconds": 1.0,
        "sla_target_seconds": 60, "sla_status": "at_risk", "triggered_by": "ops@company.com",
        "trigger_type": "manual", "priority": "NORMAL", "tags": ["customer-7"]
    }))
    .expect("a valid list row")
}

#[test]
fn tabs_text_engine_and_dates_filter_the_list_and_survive_the_url() {
    let query = ListQuery::from_params([
        ("tab", "slow"),
        ("engine", "builtin"),
        ("q", "CUSTOMER-7"),
        ("from", "2026-11-26"),
        ("to", "2026-11-26"),
        ("sort", "oldest"),
    ])
    .unwrap();
    assert_eq!(query.tab, Some(Tab::Slow));
    assert_eq!(query.sort, Sort::Oldest);
    assert!(
        query.matches(&list_row("sync-wf-1")),
        "tag matches the text, any case"
    );
    let on_track = Workflow {
        sla_status: SlaStatus::OnTrack,
        ..list_row("sync-wf-2")
    };
    assert!(
        !query.matches(&on_track),
        "the Slow tab holds runs at risk or breached"
    );
    let next_day = Workflow {
        created_at: Some("2026-11-27T00:00:00Z".parse().unwrap()),
        ..list_row("sync-wf-3")
    };
    assert!(
        !query.matches(&next_day),
        "`to` includes its whole day and no more"
    );
    let other_engine = Workflow {
        engine: "custom:billing".into(),
        ..list_row("sync-wf-4")
    };
    assert!(!query.matches(&other_engine));

    let again =
        ListQuery::from_params(query.to_params().iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
    assert_eq!(again, query, "a link reproduces the view");

    assert_eq!(
        ListQuery::from_params([("tab", "stuck")]),
        Err(QueryError::BadTab("stuck".into()))
    );
    assert_eq!(
        ListQuery::from_params([("from", "yesterday")]),
        Err(QueryError::BadDate("yesterday".into()))
    );
    assert_eq!(
        ListQuery::from_params([("q", "x".repeat(MAX_SEARCH + 1).as_str())]),
        Err(QueryError::BadText)
    );
    // Under three characters the full-text index cannot answer without a scan.
    assert_eq!(
        ListQuery::from_params([("q", "ab")]),
        Err(QueryError::BadText)
    );
    assert!(ListQuery::from_params([("q", "abc")]).is_ok());
    let completed = ListQuery::from_params([("tab", "completed"), ("limit", "500")]).unwrap();
    assert_eq!(
        completed.effective_limit(),
        100,
        "the Completed tab is the newest 100"
    );
}

#[test]
fn attempts_are_labelled_as_the_story_does() {
    let policy = RetryPolicyInfo {
        max_attempts: 4,
        delays_seconds: vec![1.0, 2.0, 4.0],
    };
    assert_eq!(policy.attempt_label(1), "Attempt 1");
    assert_eq!(policy.attempt_label(2), "Retry 1/3");
    assert_eq!(policy.attempt_label(4), "Retry 3/3");
    assert_eq!(
        policy.describe(),
        "Up to 3 retries, exponential backoff (1s, 2s, 4s)"
    );
    assert_eq!(attempt_label(3, None), "Retry 2");
}

#[test]
fn a_query_that_skipped_the_query_string_is_bounded_all_the_same() {
    // The pages' server function deserializes a ListQuery directly.
    let huge = ListQuery {
        text: Some("x".repeat(200_000)),
        ..ListQuery::default()
    };
    assert_eq!(huge.validate(), Err(QueryError::BadText));
    let bad_cursor = ListQuery {
        cursor: Some("not-a-cursor".into()),
        ..ListQuery::default()
    };
    assert!(matches!(
        bad_cursor.validate(),
        Err(QueryError::BadCursor(_))
    ));
    let long_type = ListQuery {
        workflow_type: Some("t".repeat(crate::model::MAX_WORKFLOW_TYPE_LEN)),
        ..ListQuery::default()
    };
    assert_eq!(
        long_type.validate(),
        Ok(()),
        "a type as long as a run may have"
    );
    assert_eq!(ListQuery::default().validate(), Ok(()));
}

#[test]
fn percentiles_come_from_log_buckets_within_five_percent() {
    let mut histogram = crate::model::analytics::Histogram::default();
    for ms in 1..=1000 {
        histogram.add(ms);
    }
    let p95 = histogram.quantile(0.95).unwrap();
    assert!((p95 - 950.0).abs() / 950.0 < 0.05, "p95 {p95}");
    let p50 = histogram.quantile(0.5).unwrap();
    assert!((p50 - 500.0).abs() / 500.0 < 0.05, "p50 {p50}");
    assert_eq!(
        crate::model::analytics::Histogram::default().quantile(0.95),
        None
    );
}

#[test]
fn what_a_running_duration_has_left_comes_from_the_longer_ones() {
    let mut histogram = crate::model::analytics::Histogram::default();
    for ms in 1..=1000 {
        histogram.add(ms);
    }
    // Of the durations beyond 600 ms (601..=1000), the median is about 800.
    let p50 = histogram.quantile_beyond(0.5, 600.0).unwrap();
    assert!((p50 - 800.0).abs() / 800.0 < 0.05, "p50 beyond 600: {p50}");
    let p90 = histogram.quantile_beyond(0.9, 600.0).unwrap();
    assert!((p90 - 960.0).abs() / 960.0 < 0.05, "p90 beyond 600: {p90}");
    // Within the last bucket: never less than what has already run.
    let late = histogram.quantile_beyond(0.5, 990.0).unwrap();
    assert!(late >= 990.0, "{late}");
    assert_eq!(
        histogram.quantile_beyond(0.5, 5_000.0),
        None,
        "nothing lasted that long"
    );
    assert_eq!(histogram.quantile_beyond(0.5, 0.0), histogram.quantile(0.5));
}

#[test]
fn a_forecast_breach_is_told_against_the_deadline() {
    use crate::model::BreachOutlook;
    assert_eq!(BreachOutlook::of(100, 200, None), BreachOutlook::Unlikely);
    assert_eq!(
        BreachOutlook::of(100, 200, Some(250)),
        BreachOutlook::Unlikely
    );
    assert_eq!(
        BreachOutlook::of(100, 200, Some(150)),
        BreachOutlook::Possible
    );
    assert_eq!(BreachOutlook::of(100, 200, Some(50)), BreachOutlook::Likely);
    for outlook in [
        BreachOutlook::Unlikely,
        BreachOutlook::Possible,
        BreachOutlook::Likely,
    ] {
        assert_eq!(BreachOutlook::from_level(outlook.level()), outlook);
    }
}

#[test]
fn the_will_breach_filter_keeps_running_runs_forecast_past_their_target() {
    use crate::model::{BreachOutlook, Forecast};
    let query = ListQuery::from_params([("will_breach", "true")]).unwrap();
    assert!(query.will_breach);
    let forecast = |breach| Forecast {
        runs_seen: 12,
        expected_at: Some("2026-11-26T09:00:00Z".parse().unwrap()),
        likely_by: Some("2026-11-26T09:05:00Z".parse().unwrap()),
        breach,
    };
    let running = |breach| Workflow {
        status: WorkflowStatus::Running,
        forecast: Some(forecast(breach)),
        ..list_row("sync-wf-1")
    };
    assert!(query.matches(&running(BreachOutlook::Likely)));
    assert!(!query.matches(&running(BreachOutlook::Possible)));
    assert!(!query.matches(&Workflow {
        forecast: None,
        ..running(BreachOutlook::Likely)
    }));
    assert!(!query.matches(&Workflow {
        status: WorkflowStatus::Completed,
        ..running(BreachOutlook::Likely)
    }));
    let again =
        ListQuery::from_params(query.to_params().iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
    assert_eq!(again, query, "a link keeps the filter");
    assert!(matches!(
        ListQuery::from_params([("will_breach", "maybe")]),
        Err(QueryError::BadWillBreach(_))
    ));
}

#[test]
fn the_live_map_keeps_only_the_most_recently_updated_runs() {
    let mut rows = std::collections::HashMap::new();
    for minute in 0..10u32 {
        let mut row = list_row(&format!("wf-{minute}"));
        row.updated_at = Some(
            chrono::DateTime::parse_from_rfc3339(&format!("2026-11-26T08:{minute:02}:00Z"))
                .unwrap()
                .into(),
        );
        rows.insert(row.id.clone(), row);
    }
    keep_newest(&mut rows, 20);
    assert_eq!(rows.len(), 10, "under the bound nothing goes");
    keep_newest(&mut rows, 3);
    let mut kept: Vec<&str> = rows.keys().map(String::as_str).collect();
    kept.sort();
    assert_eq!(kept, ["wf-7", "wf-8", "wf-9"]);
}

/// A run that fans out `n` ways after a first step: on branch i, "download" then "resize";
/// resize i fails when `failed(i)`, runs when `running(i)`, else completes; then "report".
fn fan_out_run(n: u32, failed: impl Fn(u32) -> bool, running: impl Fn(u32) -> bool) -> Vec<Step> {
    use StepStatus::*;
    let mut steps = vec![step(1, None, Completed)];
    for i in 0..n {
        let branch = format!("b{i}");
        let mut download = step(2 + i, Some(&branch), Completed);
        download.name = "download".into();
        let status = if failed(i) {
            Failed
        } else if running(i) {
            Running
        } else {
            Completed
        };
        let mut resize = step(2 + n + i, Some(&branch), status);
        resize.name = "resize".into();
        steps.push(download);
        steps.push(resize);
    }
    steps.push(step(2 + 2 * n, None, Pending));
    steps
}

#[test]
fn the_siblings_of_one_parallel_step_beyond_the_threshold_are_one_fan_out() {
    let steps = fan_out_run(1_000, |i| i % 20 == 7 || i == 999, |i| i == 3 || i == 500);
    let found = fan_outs(&steps);
    let summaries: Vec<String> = found.iter().map(FanOut::summary).collect();
    assert_eq!(
        summaries,
        [
            "1,000 × download: 1,000 completed",
            "1,000 × resize: 947 completed, 51 failed, 2 running"
        ]
    );
    assert_eq!(found[1].first(), 1_002);
    assert_eq!(found[1].members.len(), 1_000);
    assert!(found[1].contains(1_500) && !found[1].contains(2_002));
    assert_eq!(found[1].status(), StepStatus::Failed);
    assert_eq!(found[0].status(), StepStatus::Completed);

    // At the threshold, siblings stay as they are; a step on no branch is never one.
    assert!(fan_outs(&fan_out_run(
        FAN_OUT_COLLAPSE_AT as u32,
        |_| false,
        |_| false
    ))
    .is_empty());
    let sequential: Vec<Step> = (1..=100)
        .map(|n| step(n, None, StepStatus::Completed))
        .collect();
    assert!(fan_outs(&sequential).is_empty());
    assert_eq!(thousands(1_234_567), "1,234,567");
    assert_eq!(thousands(999), "999");
}
