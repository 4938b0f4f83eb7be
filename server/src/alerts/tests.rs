use super::*;
use crate::store::rows::{Millis, RunForecast};

const T0: Millis = 1_790_000_000_000;

fn run() -> WorkflowRow {
    WorkflowRow::running_since(T0, Some(120))
}

fn forecast(breach: BreachOutlook, expected_ms: Millis) -> Option<RunForecast> {
    Some(RunForecast {
        runs_seen: 12,
        expected_ms: Some(expected_ms),
        likely_by_ms: Some(expected_ms + 30_000),
        breach,
    })
}

#[test]
fn a_running_run_on_track_holds_nothing() {
    assert_eq!(Conditions::of(&run()), Conditions::default());
    let mut possibly_late = run();
    possibly_late.forecast = forecast(BreachOutlook::Possible, T0 + 100_000);
    assert_eq!(Conditions::of(&possibly_late), Conditions::default());
}

#[test]
fn each_condition_is_read_from_the_row() {
    let mut late = run();
    late.forecast = forecast(BreachOutlook::Likely, T0 + 150_000);
    assert!(Conditions::of(&late).holds(AlertCondition::ForecastBreach));

    let mut at_risk = late.clone();
    at_risk.sla_status = SlaStatus::AtRisk;
    let held = Conditions::of(&at_risk);
    assert!(held.holds(AlertCondition::SlaWarning));
    assert!(held.holds(AlertCondition::ForecastBreach));

    // Once breached, the breach says it: neither the warning nor the forecast holds.
    let mut breached = late.clone();
    breached.sla_status = SlaStatus::Breached;
    let held = Conditions::of(&breached);
    assert!(held.holds(AlertCondition::SlaBreached));
    assert!(!held.holds(AlertCondition::SlaWarning));
    assert!(!held.holds(AlertCondition::ForecastBreach));

    for (status, condition) in [
        (WorkflowStatus::Failed, AlertCondition::Failed),
        (WorkflowStatus::TimedOut, AlertCondition::Failed),
        (
            WorkflowStatus::CompensationFailed,
            AlertCondition::CompensationFailed,
        ),
    ] {
        let mut ended = breached.clone();
        ended.status = status;
        // An ended run's SLA conditions clear: only how it ended holds.
        let held = Conditions::of(&ended);
        assert_eq!(held, Conditions::default().with(condition), "{status:?}");
    }
    for status in [
        WorkflowStatus::Completed,
        WorkflowStatus::Cancelled,
        WorkflowStatus::Terminated,
    ] {
        let mut ended = breached.clone();
        ended.status = status;
        assert_eq!(Conditions::of(&ended), Conditions::default(), "{status:?}");
    }
}

#[test]
fn a_change_fires_what_began_to_hold_and_resolves_what_stopped() {
    let mut at_risk = run();
    at_risk.sla_status = SlaStatus::AtRisk;
    let before = Conditions::of(&at_risk);
    let mut breached = at_risk.clone();
    breached.sla_status = SlaStatus::Breached;

    let mut moves = AlertMoves::default();
    moves.add(before, &breached);
    assert_eq!(moves.fire.len(), 1);
    assert_eq!(moves.fire[0].condition, AlertCondition::SlaBreached);
    assert_eq!(moves.fire[0].workflow_id.as_deref(), Some("wf-1"));
    assert_eq!(moves.fire[0].workflow_type.as_deref(), Some("deploy"));
    assert_eq!(
        moves.resolve,
        vec![("wf-1".to_owned(), AlertCondition::SlaWarning)]
    );

    // Nothing changed, nothing moves.
    let mut unchanged = AlertMoves::default();
    unchanged.add(Conditions::of(&breached), &breached);
    assert!(unchanged.is_empty());

    // A new run that starts failed fires at once.
    let mut failed = run();
    failed.status = WorkflowStatus::Failed;
    failed.status_reason = Some("step 'charge' failed: card declined".into());
    let mut moves = AlertMoves::default();
    moves.add(Conditions::default(), &failed);
    assert_eq!(moves.fire.len(), 1);
    assert_eq!(
        moves.fire[0].summary,
        "deploy wf-1: failed: step 'charge' failed: card declined"
    );
}

#[test]
fn settling_fires_or_resolves_whatever_held_before() {
    let mut late = run();
    late.forecast = forecast(BreachOutlook::Likely, T0 + 150_000);
    let mut moves = AlertMoves::default();
    moves.settle(AlertCondition::ForecastBreach, &late);
    assert_eq!(moves.fire.len(), 1);
    assert_eq!(
        moves.fire[0].summary,
        "deploy wf-1: forecast to end 30s past its SLA (2:00)"
    );
    let mut moves = AlertMoves::default();
    moves.settle(AlertCondition::ForecastBreach, &run());
    assert_eq!(
        moves.resolve,
        vec![("wf-1".to_owned(), AlertCondition::ForecastBreach)]
    );
}

#[test]
fn a_summary_is_one_bounded_line() {
    let mut failed = run();
    failed.status = WorkflowStatus::Failed;
    failed.status_reason = Some("x".repeat(10_000));
    let mut moves = AlertMoves::default();
    moves.add(Conditions::default(), &failed);
    assert_eq!(moves.fire[0].summary.chars().count(), SUMMARY_CHARS);
}
