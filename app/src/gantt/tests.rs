//! The Gantt layout on runs built by hand: overlap, attempts and waits, the critical
//! path, slow steps, the SLA line, ticks; and the SVG's escaping.

use super::*;
use crate::model::analytics::StepNorm;
use crate::model::{
    Attempt, DefinitionInfo, Execution, Metadata, Step, StepKind, StepStatus, WorkflowDetail,
    WorkflowStatus,
};
use chrono::{DateTime, TimeZone, Utc};

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_800_000_000_000 + ms).unwrap()
}

/// A step that ran once from `start` to `end` (ms after the run's start).
fn step(number: u32, name: &str, start: i64, end: Option<i64>) -> Step {
    let status = if end.is_some() {
        StepStatus::Completed
    } else {
        StepStatus::Running
    };
    Step {
        step_number: number,
        name: name.into(),
        status,
        started_at: Some(at(start)),
        completed_at: end.map(at),
        duration_seconds: end.map(|e| (e - start) as f64 / 1000.0),
        input: None,
        output: None,
        logs: Vec::new(),
        logs_dropped: 0,
        error: None,
        retry_count: 0,
        attempts: vec![Attempt {
            attempt: 1,
            status,
            started_at: Some(at(start)),
            completed_at: end.map(at),
            duration_seconds: None,
            error: None,
        }],
        kind: StepKind::Normal,
        branch: None,
        compensates: None,
        retry_policy: None,
    }
}

fn in_branch(mut step: Step, branch: &str) -> Step {
    step.branch = Some(branch.into());
    step
}

fn run(
    status: WorkflowStatus,
    end: Option<i64>,
    sla: Option<i64>,
    steps: Vec<Step>,
) -> WorkflowDetail {
    WorkflowDetail {
        id: "wf-1".into(),
        workflow_type: "trial_activation".into(),
        engine: "builtin".into(),
        status,
        status_reason: None,
        progress: Default::default(),
        sla_status: Default::default(),
        capabilities: Default::default(),
        can_pause: false,
        can_cancel: false,
        definition: DefinitionInfo {
            sla_target_seconds: sla,
            ..Default::default()
        },
        execution: Execution {
            started_at: Some(at(0)),
            updated_at: None,
            completed_at: end.map(at),
            duration_seconds: 0.0,
            current_step: 0,
            steps,
            parallel_branches: Vec::new(),
            steps_page: None,
        },
        metadata: Metadata::default(),
        forecast: None,
    }
}

/// 1 → (branch a: 2) ‖ (branch b: 3 → 4) → 5, branch b the longer.
fn branching() -> WorkflowDetail {
    run(
        WorkflowStatus::Completed,
        Some(10_000),
        None,
        vec![
            step(1, "prepare", 0, Some(1_000)),
            in_branch(step(2, "email", 1_002, Some(3_000)), "a"),
            in_branch(step(3, "provision", 1_003, Some(5_000)), "b"),
            in_branch(step(4, "configure", 5_001, Some(8_000)), "b"),
            step(5, "notify", 8_002, Some(10_000)),
        ],
    )
}

fn row(layout: &Layout, number: u32) -> &Row {
    layout
        .rows
        .iter()
        .find(|r| r.step_number == number && r.kind == StepKind::Normal)
        .unwrap()
}

#[test]
fn parallel_branches_overlap_on_the_time_axis() {
    let chart = layout(&branching(), &[], at(20_000), 1000.0);
    let (a, b) = (&row(&chart, 2).bars[0], &row(&chart, 3).bars[0]);
    assert!(a.x0 < b.x1 && b.x0 < a.x1, "bars {a:?} and {b:?} overlap");
    assert_ne!(row(&chart, 2).top, row(&chart, 3).top);
    // Sequential steps do not overlap.
    let (one, five) = (&row(&chart, 1).bars[0], &row(&chart, 5).bars[0]);
    assert!(one.x1 <= five.x0);
    assert!(chart.plot_left <= one.x0 && five.x1 <= chart.plot_right);
}

#[test]
fn the_critical_path_follows_the_longer_branch() {
    let chart = layout(&branching(), &[], at(20_000), 1000.0);
    assert_eq!(chart.critical_path, vec![1, 3, 4, 5]);
    assert!(!row(&chart, 2).critical);
    assert!(row(&chart, 4).critical);
}

#[test]
fn the_critical_path_of_a_long_chain_is_the_whole_chain() {
    let steps: Vec<Step> = (0..10_000)
        .map(|i| step(i as u32 + 1, "s", i * 10, Some(i * 10 + 9)))
        .collect();
    let chart = layout(
        &run(WorkflowStatus::Completed, Some(100_000), None, steps),
        &[],
        at(0),
        1200.0,
    );
    assert_eq!(chart.critical_path.len(), 10_000);
    assert_eq!(chart.critical_path.first(), Some(&1));
    assert_eq!(
        chart.rows_between(AXIS_HEIGHT + 24.0 * 100.0, AXIS_HEIGHT + 24.0 * 110.0),
        100..110
    );
}

#[test]
fn a_retried_step_shows_each_attempt_and_the_waits_between() {
    let mut retried = step(1, "charge", 0, Some(9_000));
    retried.attempts = vec![
        Attempt {
            attempt: 1,
            status: StepStatus::Failed,
            started_at: Some(at(0)),
            completed_at: Some(at(1_000)),
            duration_seconds: None,
            error: Some("card declined".into()),
        },
        Attempt {
            attempt: 2,
            status: StepStatus::Failed,
            started_at: Some(at(3_000)),
            completed_at: Some(at(4_000)),
            duration_seconds: None,
            error: Some("card declined".into()),
        },
        Attempt {
            attempt: 3,
            status: StepStatus::Completed,
            started_at: Some(at(8_000)),
            completed_at: Some(at(9_000)),
            duration_seconds: None,
            error: None,
        },
    ];
    retried.retry_policy = Some(crate::model::RetryPolicyInfo {
        max_attempts: 3,
        delays_seconds: vec![2.0, 4.0],
    });
    let chart = layout(
        &run(WorkflowStatus::Completed, Some(9_000), None, vec![retried]),
        &[],
        at(9_000),
        800.0,
    );
    let r = &chart.rows[0];
    let tones: Vec<Tone> = r.bars.iter().map(|b| b.tone).collect();
    assert_eq!(tones, vec![Tone::Failed, Tone::Failed, Tone::Succeeded]);
    let waits: Vec<f64> = r.waits.iter().map(|w| w.seconds).collect();
    assert_eq!(waits, vec![2.0, 4.0]);
    assert_eq!(r.note, "3 attempts · waited 6s");
    let tip = tooltip(r, &r.bars[1]);
    assert_eq!(tip[1], "Retry 1/2 · failed (attempt 2 of 3)");
    assert!(tip.contains(&"Error: card declined".to_owned()), "{tip:?}");
}

#[test]
fn a_running_step_grows_until_now() {
    let chart = layout(
        &run(
            WorkflowStatus::Running,
            None,
            None,
            vec![step(1, "wait", 0, None)],
        ),
        &[],
        at(4_000),
        800.0,
    );
    let bar = &chart.rows[0].bars[0];
    assert!(bar.open);
    assert_eq!(bar.tone, Tone::Running);
    assert_eq!(bar.duration_seconds, 4.0);
    assert!((bar.x1 - chart.end_x).abs() < 0.01);
    assert!(chart.summary.starts_with("Current 4s"), "{}", chart.summary);
}

#[test]
fn steps_far_beyond_their_usual_duration_are_flagged() {
    let steps = vec![
        step(1, "fast", 0, Some(1_000)),
        step(2, "slow", 1_000, Some(6_000)),
    ];
    let norm = |name: &str, occurrences| StepNorm {
        step_name: name.into(),
        p50_seconds: 1.0,
        p95_seconds: 2.0,
        occurrences,
    };
    let chart = layout(
        &run(WorkflowStatus::Completed, Some(6_000), None, steps.clone()),
        &[norm("fast", 10), norm("slow", 10)],
        at(6_000),
        800.0,
    );
    assert_eq!(row(&chart, 1).slow, None);
    let slow = row(&chart, 2).slow.expect("flagged");
    assert_eq!(slow.ratio, 5.0);
    assert_eq!(slow.describe(), "5.0× usual (p50 1s, p95 2s)");
    assert!(row(&chart, 2).note.contains("5.0× usual"));
    // Too few runs to know what is usual: no flag.
    let chart = layout(
        &run(WorkflowStatus::Completed, Some(6_000), None, steps),
        &[norm("slow", MIN_NORM_OCCURRENCES - 1)],
        at(6_000),
        800.0,
    );
    assert_eq!(row(&chart, 2).slow, None);
}

#[test]
fn the_sla_line_and_the_breach() {
    let late = run(
        WorkflowStatus::Completed,
        Some(12_000),
        Some(10),
        vec![step(1, "a", 0, Some(12_000))],
    );
    let chart = layout(&late, &[], at(12_000), 800.0);
    let sla = chart.sla.as_ref().expect("line shown");
    assert!(sla.breached);
    assert!(sla.x < chart.end_x);
    assert_eq!(chart.summary, "SLA target 10s • Took 12s • Breach +2s");

    // A target far beyond the run does not squash it; the summary says how far it is.
    let quick = run(
        WorkflowStatus::Completed,
        Some(2_000),
        Some(300),
        vec![step(1, "a", 0, Some(2_000))],
    );
    let chart = layout(&quick, &[], at(2_000), 800.0);
    assert_eq!(chart.sla, None);
    assert_eq!(chart.summary, "SLA target 5:00 • Took 2s • within by 4:58");
}

#[test]
fn ticks_read_well_at_every_scale() {
    let labels = |span: f64, width: f64| -> Vec<String> {
        ticks(span, width).into_iter().map(|(_, l)| l).collect()
    };
    assert_eq!(
        labels(45.0, 700.0),
        ["0:00", "0:05", "0:10", "0:15", "0:20", "0:25", "0:30", "0:35", "0:40", "0:45"]
    );
    assert_eq!(
        labels(0.5, 400.0),
        ["0.0s", "0.1s", "0.2s", "0.3s", "0.4s", "0.5s"]
    );
    assert_eq!(
        labels(3.0 * 3600.0, 300.0),
        ["0:00", "1h 00m", "2h 00m", "3h 00m"]
    );
    assert_eq!(labels(330.0, 700.0)[..3], ["0:00", "1:00", "2:00"]);
}

#[test]
fn compensations_come_after_the_steps_in_yellow() {
    let mut detail = branching();
    let mut undo = step(9, "undo provision", 10_500, Some(11_000));
    undo.kind = StepKind::Compensation;
    undo.compensates = Some(3);
    detail.execution.steps.push(undo);
    let chart = layout(&detail, &[], at(11_000), 900.0);
    let last = chart.rows.last().unwrap();
    assert_eq!(last.label, "C1: undo provision");
    assert_eq!(last.bars[0].tone, Tone::Compensation);
    assert_eq!(last.note, "undoes step 3");
}

#[test]
fn a_first_paint_can_keep_only_the_first_rows() {
    let mut chart = layout(&branching(), &[], at(20_000), 900.0);
    chart.keep_first_rows(2);
    assert_eq!(chart.rows.len(), 2);
    assert_eq!(chart.height, AXIS_HEIGHT + 2.0 * ROW_HEIGHT + FOOTER_HEIGHT);
    assert!(
        chart.summary.ends_with(" • first 2 of 5 steps shown"),
        "{}",
        chart.summary
    );
}

#[test]
fn labels_are_cut_to_fit() {
    assert_eq!(fit("short", 100.0), "short");
    assert_eq!(fit("a very long step name indeed", 66.0), "a very lo…");
}

#[cfg(feature = "ssr")]
#[test]
fn the_svg_escapes_what_the_workflow_wrote_and_links_each_bar() {
    let mut detail = branching();
    detail.execution.steps[0].name = "<script>alert(1)</script>".into();
    detail.execution.steps[0].attempts[0].error = Some("\"><img src=x onerror=alert(1)>".into());
    let chart = layout(&detail, &[], at(20_000), 900.0);
    let svg = render_svg(&chart, "Gantt of <wf>", |n| {
        format!("/orchestration/workflows/wf-1?step={n}&view=gantt")
    });
    assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(!svg.contains("<script>"));
    assert!(!svg.contains("<img"));
    assert!(svg.contains("&lt;script&gt;"));
    assert!(svg.contains("<title>Gantt of &lt;wf&gt;</title>"));
    assert_eq!(svg.matches("<a href=").count(), 5);
    assert!(svg.contains(r#"href="/orchestration/workflows/wf-1?step=3&amp;view=gantt""#));
    assert!(svg
        .contains(r#"data-step="3" data-attempt="1" data-tone="succeeded" data-critical="true""#));
}
