//! Where everything of the Gantt chart goes, in pixels: rows, attempt bars, waits, time
//! ticks, the SLA line, the critical path and the steps that ran longer than usual.
//! Pure: the same layout feeds the SVG and the canvas, and the tests.

use crate::model::analytics::StepNorm;
use crate::model::{
    attempt_label, format_duration, thousands, FanOut, Step, StepKind, StepStatus, WaitReason,
    WorkflowDetail, WorkflowStatus,
};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::ops::Range;

/// Height of one step's row.
pub const ROW_HEIGHT: f64 = 24.0;
/// Height of an attempt's bar within its row.
pub const BAR_HEIGHT: f64 = 14.0;
/// The time axis above the rows.
pub const AXIS_HEIGHT: f64 = 28.0;
/// The summary line below the rows.
pub const FOOTER_HEIGHT: f64 = 30.0;
/// Width a character of the chart's 12 px labels takes, on average: labels are cut to fit
/// without measuring text (which the server cannot do the browser's way).
pub const CHAR_WIDTH: f64 = 6.6;

/// A step is flagged as slow only against a yardstick of at least this many runs.
pub const MIN_NORM_OCCURRENCES: u64 = 5;
/// Markedly longer: beyond the usual p95 by this factor, and at least this many times
/// the usual median.
const SLOW_OVER_P95: f64 = 1.1;
const SLOW_OVER_P50: f64 = 1.5;
/// Two steps touch when one ends at most this long before the other starts (engines
/// take a few milliseconds to start the next step).
const HANDOFF_SLACK_MS: i64 = 5;

/// What a bar's colour says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Succeeded,
    Failed,
    Running,
    Compensation,
    Cancelled,
}

impl Tone {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Running => "running",
            Self::Compensation => "compensation",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One attempt of a step, as a bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub x0: f64,
    pub x1: f64,
    pub attempt: u32,
    /// "Attempt 1", "Retry 2/3".
    pub label: String,
    pub tone: Tone,
    /// Seconds from the run's start to the attempt's.
    pub offset_seconds: f64,
    pub duration_seconds: f64,
    /// Still going: the bar grows with the clock.
    pub open: bool,
    /// Why the attempt failed (untrusted text).
    pub error: Option<String>,
}

/// The gap between two attempts (the retry's backoff), or before the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct Wait {
    pub x0: f64,
    pub x1: f64,
    pub seconds: f64,
    /// The next attempt has not started yet.
    pub open: bool,
}

/// How much longer than usual a step ran.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slowness {
    /// Its duration over the usual median.
    pub ratio: f64,
    pub p50_seconds: f64,
    pub p95_seconds: f64,
}

impl Slowness {
    /// "2.4× usual (p50 8s, p95 12s)".
    pub fn describe(&self) -> String {
        format!(
            "{:.1}× usual (p50 {}, p95 {})",
            self.ratio,
            format_duration(self.p50_seconds),
            format_duration(self.p95_seconds)
        )
    }
}

/// One step's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub step_number: u32,
    /// "Step 3: provision" or "C1: undo provision".
    pub label: String,
    pub kind: StepKind,
    pub status: StepStatus,
    pub branch: Option<String>,
    pub compensates: Option<u32>,
    /// Top edge, in chart pixels.
    pub top: f64,
    pub bars: Vec<Bar>,
    pub waits: Vec<Wait>,
    /// From the first attempt's start to the last one's end (or now), in epoch ms.
    pub span_ms: Option<(i64, i64)>,
    /// The short annotation right of the bars ("3 attempts · waited 3s").
    pub note: String,
    /// On the chain of steps that set the run's length.
    pub critical: bool,
    pub slow: Option<Slowness>,
    pub max_attempts: Option<u32>,
    /// A fan-out's siblings summarised in one row: how many (its `step_number` is the
    /// first's, its one bar spans them all).
    pub fan_out_size: Option<usize>,
    /// What the step waits for, while it waits.
    pub waiting: Option<WaitReason>,
}

impl Row {
    pub fn duration_seconds(&self) -> Option<f64> {
        self.span_ms
            .map(|(start, end)| (end - start) as f64 / 1000.0)
    }

    /// Vertical middle of the row.
    pub fn middle(&self) -> f64 {
        self.top + ROW_HEIGHT / 2.0
    }
}

/// A labelled mark on the time axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub x: f64,
    /// Epoch ms the tick stands for.
    pub at_ms: i64,
    pub label: String,
}

/// The SLA target as a line across the rows.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaLine {
    pub x: f64,
    pub target_seconds: i64,
    /// The run went past it: the chart shades what came after.
    pub breached: bool,
}

/// The whole chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub width: f64,
    pub height: f64,
    /// Where the time axis starts and ends, in pixels (labels are left of it, notes right).
    pub plot_left: f64,
    pub plot_right: f64,
    /// Epoch ms at `plot_left`, and the ms the plot spans.
    pub origin_ms: i64,
    pub span_ms: i64,
    /// Where the run's own time ends (its end, or now while it runs), in pixels.
    pub end_x: f64,
    pub ticks: Vec<Tick>,
    /// What the axis' header says: "Step", or with the zone of clock ticks "Step · UTC".
    pub axis_title: String,
    pub rows: Vec<Row>,
    pub sla: Option<SlaLine>,
    /// "SLA target 5:00 • Current 5:30 • Breach +30s".
    pub summary: String,
    /// The critical path, first step first.
    pub critical_path: Vec<u32>,
}

impl Layout {
    /// Labels the ticks with the time of day each stands for (`clock` writes one from
    /// its epoch ms) instead of the time since the run began; `zone` says in which zone.
    pub fn label_ticks_with_clock(&mut self, clock: impl Fn(i64) -> String, zone: &str) {
        for tick in &mut self.ticks {
            tick.label = clock(tick.at_ms);
        }
        self.axis_title = format!("Step · {zone}");
    }

    /// Shows each fan-out whose first sibling `open` does not name as one row: a bar from
    /// its first sibling's start to its last one's end, in the colour of how it stands, and
    /// its counts ("950 completed, 48 failed, 2 running") beside it.
    pub fn collapse_fan_outs(&mut self, fan_outs: &[FanOut], open: impl Fn(u32) -> bool) {
        let shut: Vec<&FanOut> = fan_outs.iter().filter(|f| !open(f.first())).collect();
        if shut.is_empty() {
            return;
        }
        let member_of: HashMap<u32, usize> = shut
            .iter()
            .enumerate()
            .flat_map(|(i, fan_out)| fan_out.members.iter().map(move |&n| (n, i)))
            .collect();
        // Where each fan-out's row is among the rows kept.
        let mut placed: Vec<Option<usize>> = vec![None; shut.len()];
        let mut rows: Vec<Row> = Vec::with_capacity(self.rows.len());
        for row in std::mem::take(&mut self.rows) {
            let fan_out = (row.kind == StepKind::Normal)
                .then(|| member_of.get(&row.step_number))
                .flatten();
            let Some(&i) = fan_out else {
                rows.push(row);
                continue;
            };
            match placed[i] {
                Some(at) => absorb(&mut rows[at], &row),
                None => {
                    placed[i] = Some(rows.len());
                    rows.push(summary_row(shut[i], row));
                }
            }
        }
        for (fan_out, at) in shut.iter().zip(placed) {
            if let Some(at) = at {
                let row = &mut rows[at];
                let tone = tone(StepKind::Normal, fan_out.status());
                for bar in &mut row.bars {
                    bar.tone = tone;
                }
            }
        }
        for (i, row) in rows.iter_mut().enumerate() {
            row.top = AXIS_HEIGHT + i as f64 * ROW_HEIGHT;
        }
        self.rows = rows;
        self.height = AXIS_HEIGHT + self.rows.len() as f64 * ROW_HEIGHT + FOOTER_HEIGHT;
    }

    /// Pixels of an instant.
    pub fn x_of(&self, ms: i64) -> f64 {
        x_of(
            ms,
            self.origin_ms,
            self.span_ms,
            self.plot_left,
            self.plot_right,
        )
    }

    /// Keeps only the first `rows` rows (a quick first paint of a huge run); the summary
    /// says how many were left out.
    pub fn keep_first_rows(&mut self, rows: usize) {
        let all = self.rows.len();
        if rows >= all {
            return;
        }
        self.rows.truncate(rows);
        self.height = AXIS_HEIGHT + rows as f64 * ROW_HEIGHT + FOOTER_HEIGHT;
        self.summary = format!("{} • first {rows} of {all} steps shown", self.summary);
    }

    /// Top of the footer (below every row).
    pub fn footer_top(&self) -> f64 {
        AXIS_HEIGHT + self.rows.len() as f64 * ROW_HEIGHT
    }

    /// The rows that show, even partly, between `top` and `bottom` of the chart (below the
    /// axis, which covers what scrolled under it).
    pub fn rows_between(&self, top: f64, bottom: f64) -> Range<usize> {
        let first = ((top - AXIS_HEIGHT) / ROW_HEIGHT).floor().max(0.0) as usize;
        let last = ((bottom - AXIS_HEIGHT) / ROW_HEIGHT).ceil().max(0.0) as usize;
        first.min(self.rows.len())..last.min(self.rows.len())
    }
}

fn x_of(ms: i64, origin: i64, span: i64, left: f64, right: f64) -> f64 {
    left + (ms - origin) as f64 / span.max(1) as f64 * (right - left)
}

/// A fan-out's row, begun from its first sibling's.
fn summary_row(fan_out: &FanOut, first: Row) -> Row {
    let mut row = Row {
        label: format!("{} × {}", thousands(fan_out.members.len()), fan_out.name),
        status: fan_out.status(),
        branch: None,
        waits: Vec::new(),
        note: fan_out.summary(),
        slow: None,
        max_attempts: None,
        fan_out_size: Some(fan_out.members.len()),
        waiting: None,
        bars: Vec::new(),
        ..first.clone()
    };
    absorb(&mut row, &first);
    row
}

/// Widens a fan-out's row over one more sibling's bars.
fn absorb(summary: &mut Row, sibling: &Row) {
    summary.critical |= sibling.critical;
    summary.span_ms = match (summary.span_ms, sibling.span_ms) {
        (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
        (a, b) => a.or(b),
    };
    let (Some(first), Some(last)) = (sibling.bars.first(), sibling.bars.last()) else {
        return;
    };
    let offset = first.offset_seconds;
    let end = last.offset_seconds + last.duration_seconds;
    let open = sibling.bars.iter().any(|b| b.open);
    match summary.bars.first_mut() {
        None => summary.bars.push(Bar {
            x0: first.x0,
            x1: last.x1,
            attempt: 1,
            label: "All of them".to_owned(),
            tone: first.tone,
            offset_seconds: offset,
            duration_seconds: end - offset,
            open,
            error: None,
        }),
        Some(bar) => {
            let bar_end = (bar.offset_seconds + bar.duration_seconds).max(end);
            bar.x0 = bar.x0.min(first.x0);
            bar.x1 = bar.x1.max(last.x1);
            bar.offset_seconds = bar.offset_seconds.min(offset);
            bar.duration_seconds = bar_end - bar.offset_seconds;
            bar.open |= open;
        }
    }
}

fn millis(at: Option<DateTime<Utc>>) -> Option<i64> {
    at.map(|t| t.timestamp_millis())
}

/// An attempt (or a step without attempts) as times and outcome, before pixels.
struct Span {
    attempt: u32,
    start: i64,
    end: i64,
    open: bool,
    status: StepStatus,
    error: Option<String>,
}

/// The attempts of `step` with an end each: an unfinished one ends `now` while the run
/// is active, else where the run ended.
fn spans(step: &Step, now: i64, run_end: i64, active: bool) -> Vec<Span> {
    let close = |end: Option<i64>| match end {
        Some(end) => (end, false),
        None if active => (now, true),
        None => (run_end, false),
    };
    if step.attempts.is_empty() {
        let Some(start) = millis(step.started_at) else {
            return Vec::new();
        };
        let (end, open) = close(millis(step.completed_at));
        return vec![Span {
            attempt: 1,
            start,
            end: end.max(start),
            open,
            status: step.status,
            error: step.error.clone(),
        }];
    }
    step.attempts
        .iter()
        .filter_map(|attempt| {
            let start = millis(attempt.started_at)?;
            let (end, open) = close(millis(attempt.completed_at));
            Some(Span {
                attempt: attempt.attempt,
                start,
                end: end.max(start),
                open,
                status: attempt.status,
                error: attempt.error.clone(),
            })
        })
        .collect()
}

fn tone(kind: StepKind, status: StepStatus) -> Tone {
    match (kind, status) {
        (_, StepStatus::Failed) => Tone::Failed,
        (StepKind::Compensation, _) => Tone::Compensation,
        (_, StepStatus::Completed) => Tone::Succeeded,
        (_, StepStatus::Cancelled | StepStatus::Skipped) => Tone::Cancelled,
        _ => Tone::Running,
    }
}

/// The seconds between ticks: the smallest of these that keeps labels apart.
const TICK_STEPS: [f64; 22] = [
    0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
    3600.0, 7200.0, 10800.0, 21600.0, 43200.0, 86400.0, 604800.0,
];
/// Pixels a tick label needs.
const TICK_SPACING: f64 = 72.0;

/// Ticks from 0 over `span_seconds`, at most one per [`TICK_SPACING`] pixels, labelled in
/// the unit that reads best at that step ("0.5s", "1:30", "2h 00m").
pub fn ticks(span_seconds: f64, plot_width: f64) -> Vec<(f64, String)> {
    let most = (plot_width / TICK_SPACING).floor().max(1.0);
    let step = TICK_STEPS
        .into_iter()
        .find(|step| span_seconds / step <= most)
        .unwrap_or_else(|| (span_seconds / most / 86400.0).ceil() * 86400.0);
    let count = (span_seconds / step).floor() as usize;
    (0..=count)
        .map(|i| {
            let at = i as f64 * step;
            (at, tick_label(at, step))
        })
        .collect()
}

fn tick_label(seconds: f64, step: f64) -> String {
    if step < 1.0 {
        format!("{seconds:.1}s")
    } else if seconds < 3600.0 || step < 60.0 {
        let whole = seconds.round() as u64;
        if whole >= 3600 {
            format!(
                "{}:{:02}:{:02}",
                whole / 3600,
                (whole % 3600) / 60,
                whole % 60
            )
        } else {
            format!("{}:{:02}", whole / 60, whole % 60)
        }
    } else {
        format_duration(seconds)
    }
}

/// Lays out the Gantt chart of `run` at `now`, `width` pixels wide. `norms` are the usual
/// durations of the type's steps (from analytics), by step name.
pub fn layout(run: &WorkflowDetail, norms: &[StepNorm], now: DateTime<Utc>, width: f64) -> Layout {
    let now = now.timestamp_millis();
    let active = run.status.is_active() || run.status == WorkflowStatus::Pending;
    let run_end = millis(run.execution.completed_at).unwrap_or(now);

    // Steps in timeline order: the workflow's own, then the rollback (C1, C2, ...).
    let mut steps: Vec<&Step> = run
        .execution
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::Normal)
        .collect();
    steps.sort_by_key(|s| s.step_number);
    steps.extend(
        run.execution
            .steps
            .iter()
            .filter(|s| s.kind == StepKind::Compensation),
    );
    let timed: Vec<Vec<Span>> = steps
        .iter()
        .map(|step| spans(step, now, run_end, active))
        .collect();

    let first_start = timed.iter().flatten().map(|s| s.start).min();
    let origin = match (millis(run.execution.started_at), first_start) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(now),
    };
    let last_end = timed
        .iter()
        .flatten()
        .map(|s| s.end)
        .max()
        .unwrap_or(origin);
    let run_until = if active {
        now.max(last_end)
    } else {
        run_end.max(last_end)
    };
    let elapsed_ms = (run_until - origin).max(0);
    let target_ms = run.definition.sla_target_seconds.map(|s| s * 1000);
    // The SLA line shows when it falls within a quarter beyond the run's own length;
    // further out it would squash the bars, and the summary says how far it is.
    let sla_shown = target_ms.filter(|&t| t as f64 <= elapsed_ms.max(1000) as f64 * 1.25);
    let span = elapsed_ms.max(sla_shown.unwrap_or(0)).max(1000);
    // A little room after the last instant, so a bar ending there stays visible.
    let span = span + span / 40;

    let plot_left = (width * 0.22).clamp(120.0, 240.0).round();
    let note_width = (width * 0.2).clamp(90.0, 220.0).round();
    let plot_right = (width - note_width).max(plot_left + 40.0);
    let x = |ms: i64| x_of(ms, origin, span, plot_left, plot_right);

    let norms: HashMap<&str, &StepNorm> = norms
        .iter()
        .filter(|n| n.occurrences >= MIN_NORM_OCCURRENCES && n.p50_seconds > 0.0)
        .map(|n| (n.step_name.as_str(), n))
        .collect();

    let mut compensation_index = 0;
    let mut rows: Vec<Row> = steps
        .iter()
        .zip(timed)
        .enumerate()
        .map(|(i, (step, spans))| {
            let label = match step.kind {
                StepKind::Normal => format!("Step {}: {}", step.step_number, step.name),
                StepKind::Compensation => {
                    compensation_index += 1;
                    format!("C{compensation_index}: {}", step.name)
                }
            };
            let max_attempts = step.retry_policy.as_ref().map(|p| p.max_attempts);
            let bars: Vec<Bar> = spans
                .iter()
                .map(|span| Bar {
                    x0: x(span.start),
                    x1: x(span.end),
                    attempt: span.attempt,
                    label: attempt_label(span.attempt, max_attempts),
                    tone: tone(step.kind, span.status),
                    offset_seconds: (span.start - origin) as f64 / 1000.0,
                    duration_seconds: (span.end - span.start) as f64 / 1000.0,
                    open: span.open,
                    error: span.error.clone(),
                })
                .collect();
            let mut waits: Vec<Wait> = spans
                .windows(2)
                .filter(|pair| pair[1].start > pair[0].end)
                .map(|pair| Wait {
                    x0: x(pair[0].end),
                    x1: x(pair[1].start),
                    seconds: (pair[1].start - pair[0].end) as f64 / 1000.0,
                    open: false,
                })
                .collect();
            if step.status == StepStatus::Retrying && active {
                if let Some(last) = spans.last().filter(|s| !s.open && now > s.end) {
                    waits.push(Wait {
                        x0: x(last.end),
                        x1: x(now),
                        seconds: (now - last.end) as f64 / 1000.0,
                        open: true,
                    });
                }
            }
            let span_ms = match (spans.first(), spans.last()) {
                (Some(first), Some(last)) => Some((first.start, last.end.max(first.start))),
                _ => None,
            };
            let slow = match (step.kind, span_ms, norms.get(step.name.as_str())) {
                (StepKind::Normal, Some((start, end)), Some(norm)) => {
                    let seconds = (end - start) as f64 / 1000.0;
                    (seconds > norm.p95_seconds * SLOW_OVER_P95
                        && seconds > norm.p50_seconds * SLOW_OVER_P50)
                        .then(|| Slowness {
                            ratio: seconds / norm.p50_seconds,
                            p50_seconds: norm.p50_seconds,
                            p95_seconds: norm.p95_seconds,
                        })
                }
                _ => None,
            };
            let mut row = Row {
                step_number: step.step_number,
                label,
                kind: step.kind,
                status: step.status,
                branch: step.branch.clone(),
                compensates: step.compensates,
                top: AXIS_HEIGHT + i as f64 * ROW_HEIGHT,
                bars,
                waits,
                span_ms,
                note: String::new(),
                critical: false,
                slow,
                max_attempts,
                fan_out_size: None,
                waiting: step.waiting.as_ref().map(|w| w.reason),
            };
            row.note = note(&row);
            row
        })
        .collect();

    let critical_path = mark_critical_path(&mut rows);
    let breached = target_ms.is_some_and(|t| elapsed_ms > t);
    let sla = sla_shown.map(|t| SlaLine {
        x: x(origin + t),
        target_seconds: t / 1000,
        breached,
    });
    let span_seconds = span as f64 / 1000.0;
    let ticks = ticks(span_seconds, plot_right - plot_left)
        .into_iter()
        .map(|(at, label)| Tick {
            x: x(origin + (at * 1000.0) as i64),
            at_ms: origin + (at * 1000.0) as i64,
            label,
        })
        .collect();
    Layout {
        width,
        height: AXIS_HEIGHT + rows.len() as f64 * ROW_HEIGHT + FOOTER_HEIGHT,
        plot_left,
        plot_right,
        origin_ms: origin,
        span_ms: span,
        end_x: x(run_until),
        ticks,
        axis_title: "Step".to_owned(),
        rows,
        sla,
        summary: summary(elapsed_ms, target_ms, active),
        critical_path,
    }
}

/// The annotation right of a row's bars.
fn note(row: &Row) -> String {
    let mut parts: Vec<String> = Vec::new();
    if row.bars.is_empty() {
        parts.push(row.status.as_str().to_ascii_lowercase());
    }
    if let Some(reason) = row.waiting {
        parts.push(format!("waiting for {}", reason.words()));
    }
    if row.bars.len() > 1 {
        parts.push(format!("{} attempts", row.bars.len()));
    }
    let waited: f64 = row.waits.iter().map(|w| w.seconds).sum();
    if waited >= 0.05 {
        parts.push(format!("waited {}", format_duration(waited)));
    }
    if let Some(step) = row.compensates {
        parts.push(format!("undoes step {step}"));
    }
    if let Some(slow) = row.slow {
        parts.push(format!("slow: {:.1}× usual", slow.ratio));
    }
    parts.join(" · ")
}

/// "SLA target 5:00 • Current 5:30 • Breach +30s" (Took ... once the run ended).
fn summary(elapsed_ms: i64, target_ms: Option<i64>, active: bool) -> String {
    let elapsed = format_duration(elapsed_ms as f64 / 1000.0);
    let so_far = if active { "Current" } else { "Took" };
    match target_ms {
        None => format!("{so_far} {elapsed} • no SLA target"),
        Some(target) => {
            let target_text = format_duration(target as f64 / 1000.0);
            let gap = format_duration((elapsed_ms - target).abs() as f64 / 1000.0);
            if elapsed_ms > target {
                format!("SLA target {target_text} • {so_far} {elapsed} • Breach +{gap}")
            } else if active {
                format!("SLA target {target_text} • {so_far} {elapsed} • {gap} left")
            } else {
                format!("SLA target {target_text} • {so_far} {elapsed} • within by {gap}")
            }
        }
    }
}

/// Marks the chain of steps that set the run's length and returns it, first step first.
///
/// From timings alone (the engines do not all say what waits on what): start from the
/// step that ended last; its predecessor is the step that ended latest before it started
/// (within [`HANDOFF_SLACK_MS`]), i.e. the one it was waiting for, staying within its
/// parallel branch when it has one; repeat until no step ended before.
pub fn mark_critical_path(rows: &mut [Row]) -> Vec<u32> {
    // (end, start, row) sorted by end: the steps without a branch, each branch's, all.
    let mut all: Vec<(i64, i64, usize)> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, row)| row.span_ms.map(|(start, end)| (end, start, i)))
        .collect();
    all.sort_unstable();
    let mut unbranched: Vec<(i64, i64, usize)> = Vec::new();
    let mut by_branch: HashMap<&str, Vec<(i64, i64, usize)>> = HashMap::new();
    for &entry in &all {
        match rows[entry.2].branch.as_deref() {
            Some(branch) => by_branch.entry(branch).or_default().push(entry),
            None => unbranched.push(entry),
        }
    }
    // The latest-ending step of `sorted` that ended by `limit` and started before `start`
    // (starts strictly fall along the chain, so it never loops).
    let latest = |sorted: &[(i64, i64, usize)], limit: i64, start: i64| {
        let upto = sorted.partition_point(|&(end, _, _)| end <= limit);
        sorted[..upto]
            .iter()
            .rev()
            .find(|&&(_, their_start, _)| their_start < start)
            .copied()
    };
    let mut chain: Vec<usize> = Vec::new();
    let mut current = all.last().copied();
    while let Some((_, start, i)) = current {
        chain.push(i);
        let limit = start + HANDOFF_SLACK_MS;
        current = match rows[i].branch.as_deref() {
            None => latest(&all, limit, start),
            Some(branch) => {
                let same = by_branch
                    .get(branch)
                    .and_then(|sorted| latest(sorted, limit, start));
                same.max(latest(&unbranched, limit, start))
            }
        };
    }
    chain.reverse();
    for &i in &chain {
        rows[i].critical = true;
    }
    chain.into_iter().map(|i| rows[i].step_number).collect()
}

/// What the tooltip of an attempt's bar says, line by line (untrusted text included:
/// callers render these as text).
pub fn tooltip(row: &Row, bar: &Bar) -> Vec<String> {
    if row.fan_out_size.is_some() {
        return vec![
            row.label.clone(),
            row.note.clone(),
            format!(
                "From +{} · {} in all{}",
                format_duration(bar.offset_seconds),
                format_duration(bar.duration_seconds),
                if bar.open { " so far" } else { "" }
            ),
            "Open to see each step".to_owned(),
        ];
    }
    let mut lines = vec![
        row.label.clone(),
        format!(
            "{} · {}{}",
            bar.label,
            if bar.open {
                "running".to_owned()
            } else {
                bar.tone.as_str().to_owned()
            },
            if row.bars.len() > 1 {
                format!(" (attempt {} of {})", bar.attempt, row.bars.len())
            } else {
                String::new()
            }
        ),
        format!(
            "Started at +{} · took {}{}",
            format_duration(bar.offset_seconds),
            format_duration(bar.duration_seconds),
            if bar.open { " so far" } else { "" }
        ),
    ];
    if let Some(seconds) = row.duration_seconds().filter(|_| row.bars.len() > 1) {
        lines.push(format!("Step in all: {}", format_duration(seconds)));
    }
    if let Some(error) = &bar.error {
        lines.push(format!("Error: {error}"));
    }
    if let Some(reason) = row.waiting.filter(|_| bar.open) {
        lines.push(format!("Waiting for {}", reason.words()));
    }
    if let Some(slow) = row.slow {
        lines.push(format!("Slow: {}", slow.describe()));
    }
    if row.critical {
        lines.push("On the critical path".to_owned());
    }
    if let Some(step) = row.compensates {
        lines.push(format!("Rolls back step {step}"));
    }
    lines
}
