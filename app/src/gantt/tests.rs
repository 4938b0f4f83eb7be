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
        waiting: None,
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
    let svg = render_svg(&chart, "Gantt of <wf>", Default::default(), |n| {
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

#[test]
fn a_palette_reads_the_colours_a_stylesheet_computes_and_keeps_light_for_the_rest() {
    let dark = Palette::from_properties(|name| match name {
        "--gantt-background" => Some("rgb(17, 24, 39)".to_owned()),
        "--gantt-ink" => Some(" #E5E7EB".to_owned()),
        "--gantt-grid" => Some("rgb(55 65 81)".to_owned()),
        "--gantt-muted" => Some("light-dark(#fff, #000)".to_owned()),
        _ => None,
    });
    assert_eq!(dark.background.rgb, (17, 24, 39));
    assert_eq!(dark.ink.rgb, (229, 231, 235));
    assert_eq!(dark.grid.rgb, (55, 65, 81));
    // What is not a plain colour stays as in the light palette.
    assert_eq!(dark.muted.rgb, Palette::LIGHT.muted.rgb);
    assert_eq!(dark.failed.rgb, Palette::LIGHT.failed.rgb);
    assert!(dark != Palette::LIGHT);
    assert!(parse_color("rgb(1, 2, 3, 4)").is_none());
    assert!(parse_color("#12345").is_none());
}

#[test]
fn clock_ticks_say_the_time_of_day_and_the_zone() {
    let mut chart = layout(&branching(), &[], at(20_000), 900.0);
    assert_eq!(chart.ticks[0].label, "0:00");
    let origin = chart.origin_ms;
    chart.label_ticks_with_clock(|ms| format!("t{}", (ms - origin) / 1000), "UTC");
    assert_eq!(chart.ticks[0].label, "t0");
    assert_eq!(chart.axis_title, "Step · UTC");
}

#[cfg(feature = "ssr")]
#[test]
fn the_svg_takes_its_colours_from_the_stylesheet_with_light_ones_where_there_is_none() {
    let chart = layout(&branching(), &[], at(20_000), 900.0);
    let look = SvgLook {
        stylesheet: Some("/pkg/stepline.css"),
        theme: "dark",
    };
    let svg = render_svg(&chart, "Gantt", look, |n| format!("?step={n}"));
    assert!(
        svg.starts_with("<?xml-stylesheet href=\"/pkg/stepline.css\" type=\"text/css\"?>\n<svg ")
    );
    assert!(svg.contains(r#"xmlns="http://www.w3.org/2000/svg" data-theme="dark">"#));
    assert!(svg.contains(r#"style="fill:var(--gantt-background,#FFFFFF)""#));
    assert!(svg.contains(r#"style="stroke:var(--gantt-grid,#E2E5EA)""#));
    // Every colour painted is one of the palette's, so each follows the theme.
    assert!(!svg.contains(r##" fill="#"##), "a colour left fixed");
    assert!(!svg.contains(r##" stroke="#"##), "a colour left fixed");
    // A download names no stylesheet and no theme: light, wherever it is opened.
    let plain = render_svg(&chart, "Gantt", SvgLook::default(), |n| {
        format!("?step={n}")
    });
    assert!(plain.starts_with("<svg "));
    assert!(!plain.contains("data-theme"));
}

#[test]
fn a_big_fan_out_is_one_row_until_it_is_opened() {
    // prepare, then 30 "resize" siblings (one failed, one still running), then notify.
    let mut steps = vec![step(1, "prepare", 0, Some(1_000))];
    for i in 0..30 {
        let end = match i {
            29 => None,
            _ => Some(2_000 + i64::from(i) * 100),
        };
        let mut sibling = in_branch(
            step(2 + i, "resize", 1_000 + i64::from(i) * 10, end),
            &format!("b{i}"),
        );
        if i == 5 {
            sibling.status = StepStatus::Failed;
            sibling.attempts[0].status = StepStatus::Failed;
        }
        steps.push(sibling);
    }
    steps.push(step(32, "notify", 6_000, None));
    let detail = run(WorkflowStatus::Running, None, None, steps);
    let fan_outs = crate::model::fan_outs(&detail.execution.steps);
    assert_eq!(fan_outs.len(), 1);

    let open = layout(&detail, &[], at(9_000), 900.0);
    assert_eq!(open.rows.len(), 32);
    let mut shut = open.clone();
    shut.collapse_fan_outs(&fan_outs, |_| false);
    let numbers: Vec<u32> = shut.rows.iter().map(|r| r.step_number).collect();
    assert_eq!(numbers, [1, 2, 32]);
    assert_eq!(shut.height, open.height - 29.0 * ROW_HEIGHT);
    let summary = &shut.rows[1];
    assert_eq!(summary.fan_out_size, Some(30));
    assert_eq!(summary.label, "30 × resize");
    assert_eq!(
        summary.note,
        "30 × resize: 28 completed, 1 failed, 1 running"
    );
    assert_eq!(summary.top, AXIS_HEIGHT + ROW_HEIGHT);
    assert_eq!(shut.rows[2].top, AXIS_HEIGHT + 2.0 * ROW_HEIGHT);
    // One bar from the first sibling's start to the last one's end (now: one still runs),
    // red as one sibling failed.
    let [bar] = summary.bars.as_slice() else {
        panic!("one bar: {:?}", summary.bars)
    };
    assert_eq!(bar.x0, row(&open, 2).bars[0].x0);
    assert_eq!(bar.x1, row(&open, 31).bars[0].x1);
    assert!(bar.open);
    assert_eq!(bar.tone, Tone::Failed);
    assert_eq!(tooltip(summary, bar)[1], summary.note);

    // Opened, every sibling has its row again.
    let mut opened = open.clone();
    opened.collapse_fan_outs(&fan_outs, |first| first == 2);
    assert_eq!(opened, open);
}
