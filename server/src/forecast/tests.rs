use super::*;

const T0: Millis = 1_790_000_000_000;
const SECOND: Millis = 1_000;

/// Durations `around` ms give or take 10 %, `count` of them.
fn durations(around: i64, count: i64) -> Histogram {
    let mut histogram = Histogram::default();
    for i in 0..count {
        histogram.add(around * 9 / 10 + around * 2 / 10 * i / count.max(1));
    }
    histogram
}

fn history(runs: u32, shape: &[(&str, Option<&str>, i64)]) -> TypeHistory {
    TypeHistory {
        runs,
        steps: shape
            .iter()
            .map(|(name, _, ms)| ((*name).to_owned(), durations(*ms, 40)))
            .collect(),
        shape: shape
            .iter()
            .map(|(name, branch, _)| ((*name).to_owned(), branch.map(str::to_owned)))
            .collect(),
    }
}

fn running(started: Millis, sla_seconds: Option<i64>) -> WorkflowRow {
    WorkflowRow::running_since(started, sla_seconds)
}

fn step(number: u32, name: &str, status: StepStatus, started: Option<Millis>) -> StepRow {
    StepRow {
        status,
        started_ms: started,
        ..StepRow::pending(number, name.to_owned())
    }
}

/// Seconds from `now` to an instant.
fn seconds_from(now: Millis, at: Option<Millis>) -> f64 {
    (at.expect("a forecast") - now) as f64 / 1000.0
}

#[test]
fn the_steps_left_add_up_and_a_parallel_block_counts_its_slowest_branch() {
    // prepare 10 s, then branches a (20 s + 20 s) and b (30 s), then publish 5 s.
    let history = history(
        20,
        &[
            ("prepare", None, 10_000),
            ("a1", Some("a"), 20_000),
            ("a2", Some("a"), 20_000),
            ("b", Some("b"), 30_000),
            ("publish", None, 5_000),
        ],
    );
    let row = running(T0, Some(120));
    let now = T0;
    let forecast = forecast(&row, [].iter(), &history, now);
    let expected = seconds_from(now, forecast.expected_ms);
    // 10 + max(40, 30) + 5 = 55 s, within the histogram's 10 % buckets.
    assert!((expected - 55.0).abs() < 3.0, "expected in {expected} s");
    let likely = seconds_from(now, forecast.likely_by_ms);
    assert!(likely >= expected && likely < 65.0, "likely by {likely} s");
    assert_eq!(forecast.runs_seen, 20);
    assert_eq!(forecast.breach, BreachOutlook::Unlikely);
}

#[test]
fn a_running_step_counts_with_what_it_usually_has_left() {
    let history = history(20, &[("fetch", None, 60_000), ("store", None, 10_000)]);
    let row = running(T0, None);
    // fetch has run 30 s of its usual 60.
    let now = T0 + 30 * SECOND;
    let steps = [
        step(1, "fetch", StepStatus::Running, Some(T0)),
        step(2, "store", StepStatus::Pending, None),
    ];
    let expected = seconds_from(now, forecast(&row, steps.iter(), &history, now).expected_ms);
    assert!(
        (expected - 40.0).abs() < 4.0,
        "30 s of fetch + 10 s of store: {expected}"
    );

    // fetch has run longer than any earlier fetch: it may end any moment, and store is left.
    let now = T0 + 200 * SECOND;
    let expected = seconds_from(now, forecast(&row, steps.iter(), &history, now).expected_ms);
    assert!(
        (expected - 10.0).abs() < 1.5,
        "only store is left: {expected}"
    );

    // Completed steps count nothing.
    let steps = [
        step(1, "fetch", StepStatus::Completed, Some(T0)),
        step(2, "store", StepStatus::Running, Some(now - 5 * SECOND)),
    ];
    let expected = seconds_from(now, forecast(&row, steps.iter(), &history, now).expected_ms);
    assert!(expected < 6.5, "half of store is left: {expected}");
}

#[test]
fn the_breach_outlook_compares_both_ends_with_the_target() {
    let history = history(20, &[("only", None, 100_000)]);
    let now = T0;
    // Expected about 100 s, likely by about 110 s.
    let outlook = |target| forecast(&running(T0, Some(target)), [].iter(), &history, now).breach;
    assert_eq!(outlook(300), BreachOutlook::Unlikely);
    assert_eq!(outlook(103), BreachOutlook::Possible);
    assert_eq!(outlook(60), BreachOutlook::Likely);
}

#[test]
fn too_little_history_says_so_instead_of_guessing() {
    let history = history(MIN_RUNS_FOR_FORECAST - 1, &[("only", None, 10_000)]);
    let forecast = forecast(&running(T0, Some(1)), [].iter(), &history, T0);
    assert_eq!(forecast.runs_seen, MIN_RUNS_FOR_FORECAST - 1);
    assert!(!forecast.is_known());
    assert_eq!(forecast.breach, BreachOutlook::Unlikely);
}

#[test]
fn steps_the_history_does_not_know_count_nothing_and_new_ones_follow_the_shape() {
    let history = history(20, &[("known", None, 10_000)]);
    let steps = [
        step(1, "known", StepStatus::Completed, Some(T0)),
        step(2, "brand_new", StepStatus::Running, Some(T0)),
    ];
    let forecast = forecast(&running(T0, None), steps.iter(), &history, T0 + 20 * SECOND);
    assert_eq!(forecast.expected_ms, Some(T0 + 20 * SECOND));
}

#[test]
fn only_a_noticeable_change_is_stored_again() {
    let now = T0;
    let at = |expected: Millis, breach| RunForecast {
        runs_seen: 20,
        expected_ms: Some(now + expected),
        likely_by_ms: Some(now + expected + 10_000),
        breach,
    };
    let old = at(600_000, BreachOutlook::Unlikely);
    assert!(noticeably_changed(None, &old, now));
    // 10 minutes left: 5 % is 30 s.
    assert!(!noticeably_changed(
        Some(&old),
        &at(620_000, BreachOutlook::Unlikely),
        now
    ));
    assert!(noticeably_changed(
        Some(&old),
        &at(640_000, BreachOutlook::Unlikely),
        now
    ));
    assert!(noticeably_changed(
        Some(&old),
        &at(600_000, BreachOutlook::Possible),
        now
    ));
    // Close to the end: 5 s still counts.
    let near = at(20_000, BreachOutlook::Unlikely);
    assert!(!noticeably_changed(
        Some(&near),
        &at(24_000, BreachOutlook::Unlikely),
        now
    ));
    assert!(noticeably_changed(
        Some(&near),
        &at(26_000, BreachOutlook::Unlikely),
        now
    ));
}
