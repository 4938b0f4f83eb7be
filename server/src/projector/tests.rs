//! The projector against a real (in-memory) SQLite store: derivations, refusals,
//! atomic batches, and the live events a batch publishes.

use super::*;
use crate::engines::ingest;
use crate::source::{StepDeclaration, WorkflowStart};
use app::model::alert::AlertCondition;
use app::model::{SlaStatus, StepKind, StepStatus, WorkflowStatus};
use chrono::{DateTime, TimeZone, Utc};

const T0: i64 = 1_767_268_800_000; // 2026-01-01T12:00:00Z

fn at(offset_ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(T0 + offset_ms).unwrap()
}

fn event(id: &str, offset_ms: i64, change: Change) -> SourceEvent {
    SourceEvent {
        workflow_id: id.into(),
        at: at(offset_ms),
        change,
    }
}

fn started(id: &str, total: u32, sla: Option<i64>) -> SourceEvent {
    event(
        id,
        0,
        Change::WorkflowStarted(WorkflowStart {
            workflow_type: "trial_activation".into(),
            engine_ref: None,
            status: None,
            definition_name: Some("Trial Activation Workflow".into()),
            definition_version: Some("1.2.0".into()),
            total_steps: Some(total),
            sla_target_seconds: sla,
            triggered_by: Some("user@example.com".into()),
            trigger_type: Some("manual".into()),
            priority: None,
            tags: vec!["trial".into()],
            input: None,
            steps: Vec::new(),
        }),
    )
}

fn step_started(id: &str, offset_ms: i64, step: u32) -> SourceEvent {
    event(
        id,
        offset_ms,
        Change::StepStarted {
            step_number: step,
            name: Some(format!("step_{step}")),
            attempt: None,
            input: None,
            kind: None,
            branch: None,
            compensates: None,
        },
    )
}

fn step_completed(id: &str, offset_ms: i64, step: u32) -> SourceEvent {
    event(
        id,
        offset_ms,
        Change::StepCompleted {
            step_number: step,
            output: Some(serde_json::json!({"ok": true})),
        },
    )
}

fn batch(events: Vec<SourceEvent>) -> Batch {
    Batch {
        engine: "custom:test".into(),
        capabilities: ingest::capabilities(),
        events,
        positions: Vec::new(),
        held: None,
    }
}

/// A store of its own: in memory, or a database of its own on the PostgreSQL server of
/// `STEPLINE_TEST_POSTGRES_URL` (see `store::scratch`) for the pass on PostgreSQL.
async fn store() -> Store {
    if std::env::var(crate::store::scratch::POSTGRES_VARIABLE).is_err() {
        return Store::open("sqlite::memory:")
            .await
            .expect("in-memory store");
    }
    // A name for the database no other test of this run has: no folder is needed.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let key = format!("projector-{}-{}-{n}", std::process::id(), fastrand::u64(..));
    crate::store::scratch::store_in(std::path::Path::new(&key))
        .await
        .expect("a store on PostgreSQL")
}

#[tokio::test]
async fn progress_and_durations_are_derived_from_steps() {
    let store = store().await;
    let mut events = vec![started("wf-1", 15, Some(300))];
    for step in 1..=6 {
        let t = i64::from(step) * 1_000;
        events.push(step_started("wf-1", t, step));
        events.push(step_completed("wf-1", t + 500, step));
    }
    events.push(step_started("wf-1", 7_000, 7));
    apply_batch(&store, batch(events), T0 + 8_000)
        .await
        .unwrap();

    let detail = store
        .workflow_detail("wf-1", T0 + 10_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.status, WorkflowStatus::Running);
    assert_eq!(
        (
            detail.progress.current_step,
            detail.progress.total_steps,
            detail.progress.percent
        ),
        (7, 15, 47)
    );
    assert_eq!(detail.execution.duration_seconds, 10.0);
    assert_eq!(detail.execution.steps.len(), 7);
    let step_2 = &detail.execution.steps[1];
    assert_eq!(step_2.status, StepStatus::Completed);
    assert_eq!(step_2.duration_seconds, Some(0.5));
    assert_eq!(step_2.output, Some(serde_json::json!({"ok": true})));
    let step_7 = &detail.execution.steps[6];
    assert_eq!(step_7.status, StepStatus::Running);
    assert_eq!(
        step_7.duration_seconds,
        Some(3.0),
        "a running step lasts until now"
    );
    assert_eq!(detail.definition.version.as_deref(), Some("1.2.0"));
    assert_eq!(detail.metadata.tags, ["trial"]);
}

#[tokio::test]
async fn retries_keep_every_attempt_with_its_error() {
    let store = store().await;
    let events = vec![
        started("wf-r", 5, None),
        step_started("wf-r", 1_000, 1),
        event(
            "wf-r",
            2_000,
            Change::StepAttemptFailed {
                step_number: 1,
                error: "Connection refused".into(),
            },
        ),
        step_started("wf-r", 3_000, 1),
        event(
            "wf-r",
            4_000,
            Change::StepAttemptFailed {
                step_number: 1,
                error: "Connection refused".into(),
            },
        ),
        step_started("wf-r", 6_000, 1),
        event(
            "wf-r",
            7_000,
            Change::StepFailed {
                step_number: 1,
                error: "psycopg2.OperationalError: Connection refused".into(),
            },
        ),
    ];
    let live = apply_batch(&store, batch(events), T0 + 8_000)
        .await
        .unwrap();
    let detail = store
        .workflow_detail("wf-r", T0 + 8_000)
        .await
        .unwrap()
        .unwrap();
    let step = &detail.execution.steps[0];
    assert_eq!(step.status, StepStatus::Failed);
    assert_eq!(step.retry_count, 2);
    assert_eq!(step.attempts.len(), 3);
    assert!(step.attempts.iter().all(|a| a.status == StepStatus::Failed));
    assert_eq!(step.attempts[1].duration_seconds, Some(1.0));
    assert_eq!(
        step.error.as_deref(),
        Some("psycopg2.OperationalError: Connection refused")
    );
    let retrying = live
        .iter()
        .filter(|e| matches!(e, LiveEvent::StepRetrying { .. }))
        .count();
    assert_eq!(retrying, 2);
    assert!(live
        .iter()
        .any(|e| matches!(e, LiveEvent::StepFailed { attempts: 3, .. })));
}

#[tokio::test]
async fn a_refused_event_leaves_nothing_of_its_batch_behind() {
    let store = store().await;
    let events = vec![
        started("wf-a", 3, None),
        step_started("wf-a", 1_000, 1),
        // Step 2 never started: out of order.
        step_completed("wf-a", 2_000, 2),
    ];
    let error = apply_batch(&store, batch(events), T0 + 3_000)
        .await
        .unwrap_err();
    match error {
        ApplyError::Refused {
            index,
            workflow_id,
            refusal: Refusal::OutOfOrder(message),
        } => {
            assert_eq!(index, 2);
            assert_eq!(workflow_id, "wf-a");
            assert!(message.contains("step 2"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(store.workflow_detail("wf-a", T0).await.unwrap().is_none());
}

#[tokio::test]
async fn events_that_break_the_lifecycle_are_refused() {
    let store = store().await;
    apply_batch(&store, batch(vec![started("wf-l", 1, None)]), T0 + 1)
        .await
        .unwrap();

    let refusal = |events| {
        let store = store.clone();
        async move {
            match apply_batch(&store, batch(events), T0 + 10_000).await {
                Err(ApplyError::Refused { refusal, .. }) => refusal,
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
    };
    assert!(matches!(
        refusal(vec![started("wf-l", 1, None)]).await,
        Refusal::AlreadyExists(_)
    ));
    assert!(matches!(
        refusal(vec![step_started("nope", 1, 1)]).await,
        Refusal::UnknownWorkflow(_)
    ));
    assert!(matches!(
        refusal(vec![step_started("wf-l", -5_000, 1)]).await,
        Refusal::OutOfOrder(_)
    ));
    assert!(matches!(
        refusal(vec![event(
            "wf-l",
            1_000,
            Change::WorkflowStatusChanged {
                status: WorkflowStatus::Pending,
                reason: None
            }
        )])
        .await,
        Refusal::OutOfOrder(_)
    ));
    assert!(matches!(
        refusal(vec![
            step_started("wf-l", 1_000, 1),
            step_started("wf-l", 2_000, 1)
        ])
        .await,
        Refusal::OutOfOrder(_)
    ));
    assert!(matches!(
        refusal(vec![event(
            "wf-l",
            1_000,
            Change::LogLines {
                step_number: 1,
                lines: vec!["x".repeat(crate::source::limits::LOG_LINE + 1)]
            }
        )])
        .await,
        Refusal::Invalid(_) | Refusal::OutOfOrder(_)
    ));

    // Another engine cannot write to this engine's run.
    let foreign = Batch {
        engine: "custom:other".into(),
        ..batch(vec![step_started("wf-l", 1_000, 1)])
    };
    assert!(matches!(
        apply_batch(&store, foreign, T0 + 2_000).await,
        Err(ApplyError::Refused {
            refusal: Refusal::Invalid(_),
            ..
        })
    ));
}

#[tokio::test]
async fn finished_runs_only_reopen() {
    let store = store().await;
    let events = vec![
        started("wf-f", 1, None),
        step_started("wf-f", 1_000, 1),
        step_completed("wf-f", 2_000, 1),
        event(
            "wf-f",
            3_000,
            Change::WorkflowStatusChanged {
                status: WorkflowStatus::Completed,
                reason: None,
            },
        ),
    ];
    let live = apply_batch(&store, batch(events), T0 + 4_000)
        .await
        .unwrap();
    assert!(live.iter().any(|e| matches!(
        e,
        LiveEvent::WorkflowStatusChanged {
            old_status: WorkflowStatus::Running,
            new_status: WorkflowStatus::Completed,
            ..
        }
    )));
    let row = store
        .workflow_detail("wf-f", T0 + 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.progress.percent, 100);
    assert_eq!(
        row.execution.duration_seconds, 3.0,
        "a finished run's duration stops at its end"
    );
    let pause = batch(vec![event(
        "wf-f",
        5_000,
        Change::WorkflowStatusChanged {
            status: WorkflowStatus::Paused,
            reason: None,
        },
    )]);
    assert!(apply_batch(&store, pause, T0 + 6_000).await.is_err());
}

#[tokio::test]
async fn declared_steps_branches_and_compensations_are_kept() {
    let store = store().await;
    let mut start = started("wf-b", 4, None);
    if let Change::WorkflowStarted(start) = &mut start.change {
        start.steps = vec![
            StepDeclaration {
                step_number: 1,
                name: "provision".into(),
                kind: StepKind::Normal,
                branch: Some("branch-a".into()),
                compensates: None,
                input: Some(serde_json::json!({"size": "large"})),
                retry_policy: Some(app::model::RetryPolicyInfo {
                    max_attempts: 3,
                    delays_seconds: vec![1.0, 2.0],
                }),
            },
            StepDeclaration {
                step_number: 2,
                name: "configure".into(),
                kind: StepKind::Normal,
                branch: Some("branch-b".into()),
                compensates: None,
                input: None,
                retry_policy: None,
            },
            StepDeclaration {
                step_number: 5,
                name: "release".into(),
                kind: StepKind::Compensation,
                branch: None,
                compensates: Some(1),
                input: None,
                retry_policy: None,
            },
        ];
    }
    let events = vec![
        start,
        step_started("wf-b", 10, 1),
        step_completed("wf-b", 20, 1),
    ];
    apply_batch(&store, batch(events), T0 + 100).await.unwrap();
    let detail = store
        .workflow_detail("wf-b", T0 + 100)
        .await
        .unwrap()
        .unwrap();
    let branches: Vec<_> = detail
        .execution
        .parallel_branches
        .iter()
        .map(|b| (b.branch_id.as_str(), b.status))
        .collect();
    assert_eq!(
        branches,
        [
            ("branch-a", StepStatus::Completed),
            ("branch-b", StepStatus::Pending)
        ]
    );
    assert_eq!(
        detail.execution.steps[0].input,
        Some(serde_json::json!({"size": "large"}))
    );
    assert_eq!(
        detail.execution.steps[0]
            .retry_policy
            .as_ref()
            .map(|p| p.max_attempts),
        Some(3),
        "the declared retry policy is stored and shown"
    );
    let compensation = &detail.execution.steps[2];
    assert_eq!(compensation.kind, StepKind::Compensation);
    assert_eq!(compensation.compensates, Some(1));
    // Compensations do not count as progress: 1 of 4 normal steps done.
    assert_eq!(detail.progress.current_step, 2);
    assert_eq!(detail.progress.total_steps, 4);
}

#[tokio::test]
async fn logs_are_kept_in_order_and_the_detail_shows_the_tail() {
    let store = store().await;
    let lines: Vec<String> = (0..150).map(|i| format!("line {i}")).collect();
    let events = vec![
        started("wf-log", 1, None),
        step_started("wf-log", 10, 1),
        event(
            "wf-log",
            20,
            Change::LogLines {
                step_number: 1,
                lines: lines.clone(),
            },
        ),
    ];
    let applied = apply_batch(&store, batch(events), T0 + 100).await.unwrap();
    // Live, only the newest lines that fit in one event, and how many were left out.
    let live = applied.iter().find_map(|event| match event {
        LiveEvent::LogAppended { lines, earlier, .. } => Some((lines, *earlier)),
        _ => None,
    });
    let (sent, earlier) = live.expect("a live log event");
    assert_eq!(sent.len(), crate::live::LIVE_LOG_LINES);
    assert_eq!(earlier, 50);
    assert_eq!(sent.last().map(String::as_str), Some("line 149"));
    let wide: Vec<String> = (0..10)
        .map(|i| format!("{i}{}", "w".repeat(4_000)))
        .collect();
    let applied = apply_batch(
        &store,
        batch(vec![event(
            "wf-log",
            30,
            Change::LogLines {
                step_number: 1,
                lines: wide,
            },
        )]),
        T0 + 100,
    )
    .await
    .unwrap();
    let live = applied.iter().find_map(|event| match event {
        LiveEvent::LogAppended { lines, earlier, .. } => Some((lines.len(), *earlier)),
        _ => None,
    });
    assert_eq!(live, Some((4, 6)), "four lines of 4 KB fit in 16 KiB");
    let detail = store
        .workflow_detail("wf-log", T0 + 100)
        .await
        .unwrap()
        .unwrap();
    let logs = &detail.execution.steps[0].logs;
    assert_eq!(logs.len(), crate::store::LOG_TAIL as usize);
    assert_eq!(logs.first().map(String::as_str), Some("line 60"));
    assert!(logs.last().is_some_and(|line| line.starts_with('9')));
}

#[tokio::test]
async fn sla_moves_to_at_risk_and_breached_as_time_passes() {
    let store = store().await;
    apply_batch(
        &store,
        batch(vec![
            started("wf-sla", 3, Some(100)),
            step_started("wf-sla", 1_000, 1),
        ]),
        T0 + 2_000,
    )
    .await
    .unwrap();

    assert!(sweep_sla(&store, T0 + 89_000).await.unwrap().is_empty());

    let at_risk = sweep_sla(&store, T0 + 90_000).await.unwrap();
    assert_eq!(at_risk.len(), 1, "one engine's crossings");
    let (engine, at_risk) = &at_risk[0];
    assert_eq!(engine, "custom:test");
    assert!(matches!(
        at_risk.as_slice(),
        [
            LiveEvent::SlaWarning {
                sla_target: 100,
                ..
            },
            LiveEvent::WorkflowUpdated { .. },
            LiveEvent::AlertChanged { alert }
        ] if alert.condition == AlertCondition::SlaWarning && alert.resolved_at.is_none()
    ));
    assert!(
        sweep_sla(&store, T0 + 95_000).await.unwrap().is_empty(),
        "said once"
    );

    let breached = sweep_sla(&store, T0 + 100_001).await.unwrap();
    let (_, breached) = &breached[0];
    assert!(
        matches!(
            breached.as_slice(),
            [
                LiveEvent::SlaBreached { .. },
                LiveEvent::WorkflowUpdated { .. },
                LiveEvent::AlertChanged { alert: fired },
                LiveEvent::AlertChanged { alert: resolved },
            ] if fired.condition == AlertCondition::SlaBreached
                && resolved.condition == AlertCondition::SlaWarning
                && resolved.resolved_at.is_some()
        ),
        "{breached:?}"
    );
    let detail = store
        .workflow_detail("wf-sla", T0 + 100_001)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.sla_status, SlaStatus::Breached);
    assert!(sweep_sla(&store, T0 + 200_000).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_list_pages_stably_and_counts() {
    let store = store().await;
    let mut events = Vec::new();
    for i in 0..7 {
        let mut e = started(&format!("wf-{i}"), 2, None);
        e.at = at(i * 10);
        events.push(e);
    }
    apply_batch(&store, batch(events), T0 + 1_000)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut query = app::model::ListQuery {
        limit: Some(3),
        ..Default::default()
    };
    loop {
        let page = store.list_workflows(&query, T0 + 1_000).await.unwrap();
        assert_eq!(page.total, 7);
        assert_eq!(page.stats.active, 7);
        seen.extend(page.workflows.iter().map(|w| w.id.clone()));
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["wf-6", "wf-5", "wf-4", "wf-3", "wf-2", "wf-1", "wf-0"]
    );

    let filtered = store
        .list_workflows(
            &app::model::ListQuery {
                statuses: vec![WorkflowStatus::Completed],
                ..Default::default()
            },
            T0,
        )
        .await
        .unwrap();
    assert_eq!(filtered.total, 0);
    assert!(filtered.workflows.is_empty());
}

#[tokio::test]
async fn a_cancelled_step_ends_its_attempt_and_a_rescheduled_one_keeps_its_history() {
    let store = store().await;
    let status = |offset, status| {
        event(
            "wf-c",
            offset,
            Change::WorkflowStatusChanged {
                status,
                reason: None,
            },
        )
    };
    let events = vec![
        started("wf-c", 2, None),
        step_started("wf-c", 1_000, 1),
        event(
            "wf-c",
            2_000,
            Change::StepCancelled {
                step_number: 1,
                reason: "cancelled: Manual cancellation".into(),
            },
        ),
        status(2_000, WorkflowStatus::Cancelled),
    ];
    apply_batch(&store, batch(events), T0 + 3_000)
        .await
        .unwrap();
    let detail = store
        .workflow_detail("wf-c", T0 + 3_000)
        .await
        .unwrap()
        .unwrap();
    let step = &detail.execution.steps[0];
    assert_eq!(step.status, StepStatus::Cancelled);
    assert_eq!(step.attempts[0].status, StepStatus::Cancelled);
    assert_eq!(step.attempts[0].duration_seconds, Some(1.0));

    // A retry: the run reopens and the step is scheduled again, then runs attempt 2.
    let scheduled = event(
        "wf-c",
        4_000,
        Change::StepScheduled(StepDeclaration {
            step_number: 1,
            name: "step_1".into(),
            kind: StepKind::Normal,
            branch: None,
            compensates: None,
            input: None,
            retry_policy: None,
        }),
    );
    let events = vec![status(4_000, WorkflowStatus::Running), scheduled.clone()];
    apply_batch(&store, batch(events), T0 + 4_000)
        .await
        .unwrap();
    let detail = store
        .workflow_detail("wf-c", T0 + 4_000)
        .await
        .unwrap()
        .unwrap();
    let step = &detail.execution.steps[0];
    assert_eq!(step.status, StepStatus::Pending);
    assert_eq!(step.attempts.len(), 1, "the cancelled attempt stays");
    assert_eq!(detail.progress.current_step, 1);

    apply_batch(
        &store,
        batch(vec![step_started("wf-c", 5_000, 1)]),
        T0 + 5_000,
    )
    .await
    .unwrap();
    let refused = apply_batch(&store, batch(vec![scheduled]), T0 + 5_000).await;
    assert!(
        matches!(refused, Err(ApplyError::Refused { .. })),
        "a running step cannot be scheduled again"
    );
    let detail = store
        .workflow_detail("wf-c", T0 + 5_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.execution.steps[0].attempts[1].attempt, 2);
}

#[tokio::test]
async fn a_step_scheduled_before_a_pause_may_start_while_the_run_is_paused() {
    // Temporal's workflow pause stops new workflow tasks, not activities already
    // scheduled: their start, reported after the pause, is recorded and the run stays
    // PAUSED.
    let store = store().await;
    let paused = |offset| {
        event(
            "wf-p",
            offset,
            Change::WorkflowStatusChanged {
                status: WorkflowStatus::Paused,
                reason: None,
            },
        )
    };
    let events = vec![
        started("wf-p", 2, None),
        step_started("wf-p", 1_000, 1),
        step_completed("wf-p", 1_500, 1),
        paused(2_000),
    ];
    apply_batch(&store, batch(events), T0 + 3_000)
        .await
        .unwrap();
    let late_start = batch(vec![
        step_started("wf-p", 2_500, 2),
        step_completed("wf-p", 2_800, 2),
    ]);
    apply_batch(&store, late_start, T0 + 3_000)
        .await
        .expect("a paused run's scheduled step starts and completes");
    let detail = store
        .workflow_detail("wf-p", T0 + 3_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.status, WorkflowStatus::Paused);
    assert_eq!(detail.execution.steps[1].status, StepStatus::Completed);
}

#[tokio::test]
async fn facts_over_a_limit_are_stored_cut_with_a_marker_not_refused() {
    let store = store().await;
    let long_name = format!("child workflow SequentialWF ({})", "c".repeat(190));
    let events = vec![
        started("wf-cut", 2, None),
        event(
            "wf-cut",
            1_000,
            Change::StepStarted {
                step_number: 1,
                name: Some(long_name),
                attempt: None,
                input: Some(serde_json::json!({"blob": "b".repeat(200_000)})),
                kind: None,
                branch: None,
                compensates: None,
            },
        ),
        event(
            "wf-cut",
            1_500,
            Change::LogLines {
                step_number: 1,
                lines: vec!["l\u{1b}[0m".repeat(5_000); 1_200],
            },
        ),
        event(
            "wf-cut",
            2_000,
            Change::StepFailed {
                step_number: 1,
                error: format!("upstream said \u{0}{}", "e".repeat(20_000)),
            },
        ),
    ];
    apply_batch(&store, batch(events), T0 + 3_000)
        .await
        .expect("nothing is refused for its size");
    let detail = store
        .workflow_trace("wf-cut", T0 + 3_000)
        .await
        .unwrap()
        .unwrap();
    let step = &detail.execution.steps[0];
    assert!(step.name.len() <= crate::source::limits::NAME);
    assert!(step.name.ends_with("bytes cut]"), "{}", step.name);
    let error = step.error.as_deref().unwrap();
    assert!(error.len() <= crate::source::limits::ERROR);
    assert!(
        error.starts_with("upstream said eee"),
        "control characters go"
    );
    assert!(error.ends_with("bytes cut]"));
    let input = step.input.as_ref().unwrap();
    assert!(input["bytes"].as_u64().unwrap() > 200_000, "{input}");
    let logs = &step.logs;
    // A thousand lines of 8 KiB are over a step's stored cap: the oldest are dropped,
    // and counted.
    assert!(step.logs_dropped > 0);
    assert_eq!(
        logs.len() as u64 + step.logs_dropped,
        crate::source::limits::LOG_LINES_PER_EVENT as u64
    );
    assert!(
        logs.last().unwrap().contains("201 more lines dropped"),
        "{:?}",
        logs.last()
    );
    assert!(logs[0].len() <= crate::source::limits::LOG_LINE && !logs[0].contains('\u{1b}'));
}

#[tokio::test]
async fn when_a_run_ends_its_open_steps_end_with_it() {
    let store = store().await;
    let events = vec![
        started("wf-end", 3, None),
        step_started("wf-end", 1_000, 1),
        step_started("wf-end", 1_000, 2),
        event(
            "wf-end",
            1_500,
            Change::StepAttemptFailed {
                step_number: 2,
                error: "flaky".into(),
            },
        ),
        event(
            "wf-end",
            3_000,
            Change::WorkflowStatusChanged {
                status: WorkflowStatus::Cancelled,
                reason: Some("operator cancelled".into()),
            },
        ),
    ];
    apply_batch(&store, batch(events), T0 + 4_000)
        .await
        .unwrap();
    let detail = store
        .workflow_detail("wf-end", T0 + 4_000)
        .await
        .unwrap()
        .unwrap();
    for step in &detail.execution.steps[..2] {
        assert_eq!(step.status, StepStatus::Cancelled, "{step:?}");
        assert_eq!(
            step.error.as_deref(),
            Some("ended with the run (CANCELLED: operator cancelled)")
        );
        assert!(step.completed_at.is_some());
    }
}

#[tokio::test]
async fn a_status_reported_again_with_a_reason_keeps_the_reason() {
    let store = store().await;
    let why = |offset_ms, status, reason: Option<&str>| {
        event(
            "wf-why",
            offset_ms,
            Change::WorkflowStatusChanged {
                status,
                reason: reason.map(str::to_owned),
            },
        )
    };
    let events = vec![
        started("wf-why", 0, None),
        why(1_000, WorkflowStatus::Running, Some("steps cannot be read")),
        // Without a reason, the one given stays.
        why(2_000, WorkflowStatus::Running, None),
    ];
    apply_batch(&store, batch(events), T0 + 3_000)
        .await
        .unwrap();
    let detail = store
        .workflow_detail("wf-why", T0 + 3_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.status, WorkflowStatus::Running);
    assert_eq!(
        detail.status_reason.as_deref(),
        Some("steps cannot be read")
    );
}

#[tokio::test]
async fn a_timestamp_before_1970_is_refused_as_a_broken_clock() {
    let store = store().await;
    let mut ancient = started("wf-old", 1, None);
    ancient.at = "0001-01-01T00:00:00Z".parse().unwrap();
    let refused = apply_batch(&store, batch(vec![ancient]), T0).await;
    assert!(
        matches!(
            refused,
            Err(ApplyError::Refused {
                refusal: Refusal::Invalid(ref message),
                ..
            }) if message.contains("before 1970")
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_refused_event_sets_only_its_own_run_aside_when_applied_per_run() {
    let store = store().await;
    apply_batch(&store, batch(vec![started("wf-busy", 3, None)]), T0 + 1)
        .await
        .unwrap();
    let events = vec![
        step_started("wf-busy", 1_000, 1),
        started("wf-new", 2, None),
        // Refused: a step can not complete before it started.
        step_completed("wf-bad", 1_500, 1),
        step_started("wf-new", 2_000, 1),
        step_completed("wf-busy", 2_500, 1),
    ];
    let whole = apply_events(&store, batch(events.clone()), Atomicity::Batch, T0 + 3_000).await;
    assert!(
        matches!(whole, Err(ApplyError::Refused { index: 2, .. })),
        "{whole:?}"
    );
    assert!(store.workflow_detail("wf-new", T0).await.unwrap().is_none());

    let events = vec![
        step_started("wf-busy", 1_000, 1),
        started("wf-new", 2, None),
        started("wf-bad", 2, None),
        step_started("wf-bad", 1_200, 1),
        // Refused: the step number is out of range.
        step_started("wf-bad", 1_400, 0),
        step_started("wf-new", 2_000, 1),
        step_completed("wf-bad", 2_200, 1),
        step_completed("wf-busy", 2_500, 1),
    ];
    let applied = apply_events(&store, batch(events), Atomicity::PerRun, T0 + 3_000)
        .await
        .unwrap();
    assert_eq!(applied.set_aside.len(), 1, "{:?}", applied.set_aside);
    assert_eq!(applied.set_aside[0].workflow_id, "wf-bad");
    assert_eq!(applied.set_aside[0].index, 4);
    // Nothing of the run set aside is stored or published, the events after the refusal
    // included; the others are whole.
    assert!(store.workflow_detail("wf-bad", T0).await.unwrap().is_none());
    assert!(applied
        .live
        .iter()
        .all(|live| live.workflow_id() != Some("wf-bad")));
    let busy = store
        .workflow_detail("wf-busy", T0 + 3_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(busy.execution.steps[0].status, StepStatus::Completed);
    let new = store
        .workflow_detail("wf-new", T0 + 3_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(new.execution.steps[0].status, StepStatus::Running);
    assert!(applied
        .live
        .iter()
        .any(|live| live.workflow_id() == Some("wf-new")));
}

#[tokio::test]
async fn an_output_told_after_the_completion_lands_on_the_completed_step_even_once_the_run_ended() {
    let store = store().await;
    let output = |step: u32| {
        event(
            "wf-later",
            5_000,
            Change::StepOutput {
                step_number: step,
                output: serde_json::json!({"rows": step}),
            },
        )
    };
    let events = vec![
        started("wf-later", 2, None),
        step_started("wf-later", 1_000, 1),
        event(
            "wf-later",
            2_000,
            Change::StepCompleted {
                step_number: 1,
                output: None,
            },
        ),
        step_started("wf-later", 2_000, 2),
        event(
            "wf-later",
            3_000,
            Change::WorkflowStatusChanged {
                status: WorkflowStatus::Failed,
                reason: None,
            },
        ),
    ];
    apply_batch(&store, batch(events), T0 + 4_000)
        .await
        .unwrap();
    let live = apply_batch(&store, batch(vec![output(1)]), T0 + 6_000)
        .await
        .unwrap();
    assert!(
        live.iter()
            .any(|event| matches!(event, LiveEvent::WorkflowUpdated { .. })),
        "an open page learns that the run changed: {live:?}"
    );
    let detail = store
        .workflow_detail("wf-later", T0 + 6_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        detail.execution.steps[0].output,
        Some(serde_json::json!({"rows": 1}))
    );
    assert_eq!(
        detail.status,
        WorkflowStatus::Failed,
        "the run stays as it ended"
    );

    // Only a completed step has an output: step 2 ended with the run, step 3 never ran.
    for step in [2, 3] {
        let refused = apply_batch(&store, batch(vec![output(step)]), T0 + 6_000).await;
        assert!(
            matches!(refused, Err(ApplyError::Refused { .. })),
            "step {step}: {refused:?}"
        );
    }
}

#[tokio::test]
async fn the_stats_line_is_kept_between_writes_and_read_again_after_each() {
    let store = store().await;
    let now = T0 + 60_000;
    assert_eq!(store.stats(now).await.unwrap().active, 0);
    assert_eq!(
        store.stats(now).await.unwrap().active,
        0,
        "kept: the same line"
    );
    apply_batch(&store, batch(vec![started("wf-stats", 1, None)]), now)
        .await
        .unwrap();
    assert_eq!(
        store.stats(now).await.unwrap().active,
        1,
        "a batch committed"
    );
    let failed = batch(vec![event(
        "wf-stats",
        1_000,
        Change::WorkflowStatusChanged {
            status: WorkflowStatus::Failed,
            reason: None,
        },
    )]);
    apply_batch(&store, failed, now).await.unwrap();
    let stats = store.stats(now).await.unwrap();
    assert_eq!((stats.active, stats.tabs.failed), (0, 1));
    // A new UTC day counts what ended today afresh, with no write in between.
    assert_eq!(stats.failed_today, 1);
    assert_eq!(store.stats(now + 86_400_000).await.unwrap().failed_today, 0);
}
