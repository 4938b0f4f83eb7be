//! The mapping against what a real Airflow 3.3.2 answered (`samples/`, recorded from the
//! fixture DAGs of `server/tests/airflow/dags`), and the transitions between two looks.

use super::*;
use crate::engines::airflow::client::TaskInstance;
use crate::engines::airflow::sample;

fn tasks(dag: &str) -> Vec<Task> {
    serde_json::from_value(sample::<serde_json::Value>(&format!("{dag}.tasks"))["tasks"].clone())
        .unwrap()
}

fn instances(name: &str) -> Vec<TaskInstance> {
    serde_json::from_value(sample::<serde_json::Value>(name)["task_instances"].clone()).unwrap()
}

fn rule() -> CompensationRule {
    CompensationRule {
        prefixes: vec!["compensate_".into()],
        on_failure_trigger_rules: false,
    }
}

fn pending(number: u32) -> ReportedStep {
    ReportedStep {
        number,
        status: StepStatus::Pending,
        attempts: 0,
        seen: None,
    }
}

/// The facts of a step first seen finished, read with its tries as `needs_tries` asks.
fn facts_from_scratch(instance: &TaskInstance, tries: &[TaskInstance]) -> Vec<StepFact> {
    let mut step = pending(1);
    let tries = if needs_tries(&step, instance) {
        tries.to_vec()
    } else {
        vec![instance.clone()]
    };
    step_facts(&mut step, instance, &tries, Utc::now())
}

fn kinds(facts: &[StepFact]) -> Vec<String> {
    facts
        .iter()
        .map(|fact| match fact {
            StepFact::Rescheduled => "rescheduled".to_owned(),
            StepFact::Started { attempt, .. } => format!("started {attempt}"),
            StepFact::AttemptFailed { attempt, .. } => format!("attempt {attempt} failed"),
            StepFact::Failed { attempt, .. } => format!("failed at {attempt}"),
            StepFact::Completed { .. } => "completed".to_owned(),
            StepFact::Skipped { .. } => "skipped".to_owned(),
            StepFact::Cancelled { reason, .. } => format!("cancelled: {reason}"),
            StepFact::Waiting { reason, why, .. } => {
                format!("waiting ({}): {why}", reason.as_str())
            }
        })
        .collect()
}

#[test]
fn parallel_tasks_are_branches_between_the_fan_out_and_the_fan_in() {
    let structure = Structure::from_tasks(&tasks("stepline_parallel"), &rule());
    let order: Vec<(&str, Option<&str>)> = structure
        .tasks
        .iter()
        .map(|t| (t.task_id.as_str(), t.branch.as_deref()))
        .collect();
    assert_eq!(order[0], ("start", None));
    assert_eq!(order[4], ("join", None));
    let mut branches: Vec<_> = order[1..4].to_vec();
    branches.sort();
    assert_eq!(
        branches,
        [
            ("branch_a", Some("branch_a")),
            ("branch_b", Some("branch_b")),
            ("branch_c", Some("branch_c"))
        ]
    );
}

#[test]
fn a_clean_up_task_is_a_compensation_of_the_task_it_follows() {
    let structure = Structure::from_tasks(&tasks("stepline_permanent_failure"), &rule());
    let steps = declarations(&structure, &[]);
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(&names[..2], ["reserve_stock", "charge_card"]);
    let cleanup = steps
        .iter()
        .find(|s| s.name == "compensate_release")
        .unwrap();
    assert_eq!(cleanup.kind, StepKind::Compensation);
    assert_eq!(cleanup.compensates, Some(2));
    let charge = &steps[1];
    assert_eq!(
        charge.retry_policy,
        Some(RetryPolicyInfo {
            max_attempts: 2,
            delays_seconds: vec![1.0]
        })
    );
}

#[test]
fn a_mapped_task_is_one_step_per_map_index_in_one_column() {
    let structure = Structure::from_tasks(&tasks("stepline_mapped"), &rule());
    let steps = declarations(&structure, &instances("stepline_mapped.task_instances"));
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "list_items",
            "square[0]",
            "square[1]",
            "square[2]",
            "square[3]",
            "square[4]",
            "total"
        ]
    );
    assert!(steps[1..6]
        .iter()
        .all(|s| s.branch.as_deref() == Some("square")));
    // Before expansion: one step for the task, which its first map index takes over.
    let unexpanded = declarations(&structure, &[]);
    assert_eq!(unexpanded[1].name, "square");
    assert_eq!(step_key("square[3]"), ("square".into(), 3));
    assert_eq!(step_key("odd[name"), ("odd[name".into(), -1));
    assert_eq!(
        step_key(&step_name("group.task", -1)),
        ("group.task".into(), -1)
    );
}

#[test]
fn each_try_of_a_task_that_recovered_is_an_attempt_with_its_times() {
    let all = instances("stepline_retry_recovers.task_instances");
    let flaky = all.iter().find(|i| i.task_id == "flaky_fetch").unwrap();
    let tries = instances("stepline_retry_recovers.tries.flaky_fetch");
    let facts = facts_from_scratch(flaky, &tries);
    assert_eq!(
        kinds(&facts),
        [
            "started 1",
            "attempt 1 failed",
            "started 2",
            "attempt 2 failed",
            "started 3",
            "completed"
        ]
    );
    let StepFact::Started { at, .. } = &facts[2] else {
        panic!()
    };
    assert_eq!(Some(*at), tries[1].start_date, "the try's own start");
}

#[test]
fn a_permanent_failure_fails_at_its_last_try_and_stops_what_follows() {
    let all = instances("stepline_permanent_failure.task_instances");
    let find = |task: &str| all.iter().find(|i| i.task_id == task).unwrap();
    let tries = instances("stepline_permanent_failure.tries.charge_card");
    assert_eq!(
        kinds(&facts_from_scratch(find("charge_card"), &tries)),
        ["started 1", "attempt 1 failed", "started 2", "failed at 2"]
    );
    assert_eq!(
        kinds(&facts_from_scratch(find("ship_order"), &[])),
        ["cancelled: not run: an upstream task failed"]
    );
    assert_eq!(
        kinds(&facts_from_scratch(find("compensate_release"), &[])),
        ["started 1", "completed"]
    );
    let log: serde_json::Value = sample("stepline_permanent_failure.log.charge_card.2");
    let events = log["content"].as_array().unwrap();
    assert_eq!(
        error_from_log(events).as_deref(),
        Some("ValueError: card declined: insufficient funds")
    );
    let lines = log_lines(events);
    assert!(
        lines.iter().any(|l| l == "INFO charging card"),
        "{lines:#?}"
    );
    assert!(lines.iter().all(|l| !l.contains("::group::")));
}

#[test]
fn a_look_between_two_tries_sees_each_transition_once() {
    let tries = instances("stepline_retry_recovers.tries.flaky_fetch");
    let now = Utc::now();
    let mut step = pending(2);
    let mut look = |instance: &TaskInstance| {
        let tries = if needs_tries(&step, instance) {
            tries.clone()
        } else {
            vec![instance.clone()]
        };
        kinds(&step_facts(&mut step, instance, &tries, now))
    };
    let mut running = tries[0].clone();
    running.state = Some("running".into());
    running.end_date = None;
    assert_eq!(look(&running), ["started 1"]);
    assert!(look(&running).is_empty(), "nothing new");
    let mut waiting = tries[0].clone();
    waiting.state = Some("up_for_retry".into());
    assert_eq!(look(&waiting), ["attempt 1 failed"]);
    // Try 2 came and went unseen: try 3 runs now.
    let mut third = tries[2].clone();
    third.state = Some("running".into());
    third.end_date = None;
    assert_eq!(look(&third), ["started 2", "attempt 2 failed", "started 3"]);
    assert_eq!(look(&tries[2]), ["completed"]);
    assert!(look(&tries[2]).is_empty());
    // Cleared (no state, the try number unchanged), then run again.
    let mut cleared = tries[2].clone();
    cleared.state = None;
    assert_eq!(look(&cleared), ["rescheduled"]);
    let mut again = tries[2].clone();
    again.try_number = 4;
    again.state = Some("running".into());
    again.end_date = None;
    assert_eq!(look(&again), ["started 4"]);
    // Cleared while it ran.
    let mut stopped = again.clone();
    stopped.state = None;
    assert_eq!(look(&stopped), ["attempt 4 failed"]);
}

#[test]
fn a_deferred_task_says_once_what_it_waits_for() {
    let all = instances("stepline_deferred.deferred.task_instances");
    let wait = all.iter().find(|i| i.task_id == "wait_5s").unwrap();
    let mut step = pending(1);
    let facts = kinds(&step_facts(&mut step, wait, &[wait.clone()], Utc::now()));
    assert_eq!(facts[0], "started 1");
    assert!(
        facts[1].starts_with("waiting (signal): deferred"),
        "{facts:?}"
    );
    assert!(step_facts(&mut step, wait, &[wait.clone()], Utc::now()).is_empty());
    let after = all.iter().find(|i| i.task_id == "after_wait").unwrap();
    assert!(
        facts_from_scratch(after, &[]).is_empty(),
        "not scheduled yet"
    );
}

#[test]
fn run_states_and_triggers_read_as_the_story_names_them() {
    let run: DagRun = sample("stepline_linear.dag_run");
    assert_eq!(run_status(run.state.as_deref()), WorkflowStatus::Completed);
    assert_eq!(trigger_type(&run), "manual");
    assert_eq!(triggered_by(&run).as_deref(), Some("admin"));
    assert_eq!(run_status(Some("queued")), WorkflowStatus::Pending);
    assert_eq!(run_status(Some("failed")), WorkflowStatus::Failed);
}
