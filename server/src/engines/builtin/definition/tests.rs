//! Definition files: what is accepted, how steps are numbered and branched, and how
//! every kind of mistake is named.

use super::*;

fn load(text: &str) -> Result<Definition, DefinitionError> {
    parse(Path::new("workflows/test.toml"), text)
}

fn problem(text: &str) -> String {
    load(text).expect_err("should be refused").to_string()
}

const DIAMOND: &str = r#"
type = "trial_activation"
name = "Trial Activation"
version = "1.2.0"
sla_target = "5m"
priority = "HIGH"

[[steps]]
name = "validate"
action = { kind = "simulate", duration = "1s..2s", failure_rate = 0.1, logs = ["ok"] }
retry = { max_attempts = 3, initial_delay = "1s", max_delay = "4s" }
timeout = "30s"

[[steps]]
name = "memory"
after = ["validate"]
action = { kind = "command", program = "sh", args = ["-c", "echo hi"] }
compensation = { kind = "simulate", duration = "500ms" }

[[steps]]
name = "container"
after = ["memory"]
action = { kind = "simulate", duration = "2s" }

[[steps]]
name = "email"
after = ["validate"]
action = { kind = "http", url = "http://127.0.0.1:9/send", method = "put" }

[[steps]]
name = "activate"
after = ["container", "email"]
action = { kind = "simulate", duration = "1s" }
"#;

#[test]
fn a_diamond_is_numbered_in_order_with_two_branches() {
    let definition = load(DIAMOND).unwrap();
    assert_eq!(definition.workflow_type, "trial_activation");
    assert_eq!(definition.sla_target, Some(Duration::from_secs(300)));
    assert_eq!(definition.priority, Priority::High);
    let summary: Vec<(u32, &str, Vec<u32>, Option<&str>)> = definition
        .steps
        .iter()
        .map(|s| {
            (
                s.number,
                s.name.as_str(),
                s.after.clone(),
                s.branch.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "validate", vec![], None),
            (2, "memory", vec![1], Some("branch-a")),
            (3, "container", vec![2], Some("branch-a")),
            (4, "email", vec![1], Some("branch-b")),
            (5, "activate", vec![3, 4], None),
        ]
    );
    assert_eq!(
        definition.steps[3].action,
        Action::Http {
            url: "http://127.0.0.1:9/send".into(),
            method: "PUT".into(),
            headers: BTreeMap::new()
        }
    );
    assert_eq!(
        definition.steps[0].action,
        Action::Simulate(Simulation {
            duration: (Duration::from_secs(1), Duration::from_secs(2)),
            failure_rate: 0.1,
            fail_attempts: 0,
            error: "simulated failure".into(),
            stall_rate: 0.0,
            stall: (Duration::ZERO, Duration::ZERO),
            logs: vec!["ok".into()]
        })
    );
    assert!(definition.steps[1].compensation.is_some());
    assert_eq!(definition.steps[0].timeout, Some(Duration::from_secs(30)));
}

#[test]
fn steps_listed_before_their_dependencies_are_reordered() {
    let definition = load(
        r#"
type = "t"
name = "T"
version = "1"
[[steps]]
name = "second"
after = ["first"]
action = { kind = "simulate", duration = "1s" }
[[steps]]
name = "first"
action = { kind = "simulate", duration = "1s" }
"#,
    )
    .unwrap();
    let names: Vec<&str> = definition.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["first", "second"]);
    assert_eq!(definition.steps[1].after, [1]);
}

#[test]
fn retries_back_off_exponentially_up_to_the_cap() {
    let policy = RetryPolicy {
        max_attempts: 5,
        initial_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(5),
        multiplier: 2.0,
    };
    let delays: Vec<Option<Duration>> = (1..=6).map(|a| policy.delay_before(a)).collect();
    assert_eq!(
        delays,
        [
            None,
            Some(Duration::from_secs(1)),
            Some(Duration::from_secs(2)),
            Some(Duration::from_secs(4)),
            Some(Duration::from_secs(5)),
            None
        ]
    );
    assert_eq!(
        RetryPolicy::default().delay_before(2),
        None,
        "one attempt by default"
    );
}

#[test]
fn mistakes_are_named_with_the_file_the_step_and_the_problem() {
    let header = "type = \"t\"\nname = \"T\"\nversion = \"1\"\n";
    let step = |body: &str| format!("{header}[[steps]]\n{body}\n");

    let message = problem(&step(
        "name = \"a\"\nafter = [\"nope\"]\naction = { kind = \"simulate\", duration = \"1s\" }",
    ));
    assert_eq!(
        message,
        "workflows/test.toml: step \"a\": unknown dependency \"nope\""
    );

    let cycle = format!(
        "{header}[[steps]]\nname = \"a\"\nafter = [\"b\"]\naction = {{ kind = \"simulate\", duration = \"1s\" }}\n\
         [[steps]]\nname = \"b\"\nafter = [\"a\"]\naction = {{ kind = \"simulate\", duration = \"1s\" }}\n"
    );
    assert!(problem(&cycle).contains("cycle"), "{}", problem(&cycle));

    let bad_duration = problem(&step(
        "name = \"a\"\naction = { kind = \"simulate\", duration = \"soon\" }",
    ));
    assert!(
        bad_duration.contains("step \"a\": action:"),
        "{bad_duration}"
    );
    assert!(bad_duration.contains("not a duration"), "{bad_duration}");

    let bad_timeout = problem(&step(
        "name = \"a\"\ntimeout = \"-1\"\naction = { kind = \"simulate\", duration = \"1s\" }",
    ));
    assert!(bad_timeout.contains("timeout"), "{bad_timeout}");

    let bad_retry = problem(&step(
        "name = \"a\"\nretry = { max_attempts = 0 }\naction = { kind = \"simulate\", duration = \"1s\" }",
    ));
    assert!(bad_retry.contains("max_attempts"), "{bad_retry}");

    let bad_rate = problem(&step(
        "name = \"a\"\naction = { kind = \"simulate\", duration = \"1s\", failure_rate = 1.5 }",
    ));
    assert!(bad_rate.contains("failure_rate"), "{bad_rate}");

    let bad_url = problem(&step(
        "name = \"a\"\naction = { kind = \"http\", url = \"file:///etc/passwd\" }",
    ));
    assert!(bad_url.contains("http://"), "{bad_url}");

    let twice = format!(
        "{header}[[steps]]\nname = \"a\"\naction = {{ kind = \"simulate\", duration = \"1s\" }}\n\
         [[steps]]\nname = \"a\"\naction = {{ kind = \"simulate\", duration = \"1s\" }}\n"
    );
    assert!(problem(&twice).contains("used twice"));

    let unknown_field = problem(&step(
        "name = \"a\"\nretries = 3\naction = { kind = \"simulate\", duration = \"1s\" }",
    ));
    assert!(unknown_field.contains("retries"), "{unknown_field}");

    assert!(problem(header).contains("steps"));
    assert!(problem("type = \"a b\"\nname = \"x\"\nversion = \"1\"\nsteps = []").contains("type"));
}

#[test]
fn a_folder_refuses_two_files_of_one_type() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), DIAMOND).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let loaded = load_dir(dir.path()).unwrap();
    assert_eq!(loaded.len(), 1);

    std::fs::write(dir.path().join("b.toml"), DIAMOND).unwrap();
    let error = load_dir(dir.path()).unwrap_err();
    assert!(error.file.ends_with("b.toml"));
    assert!(error.problem.contains("already defined by"), "{error}");
}

#[test]
fn branch_labels_continue_past_z() {
    assert_eq!(branch_label(0), "branch-a");
    assert_eq!(branch_label(25), "branch-z");
    assert_eq!(branch_label(26), "branch-aa");
}

#[test]
fn the_demo_definitions_load_with_the_story_shapes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows");
    let definitions = load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    let shape = |workflow_type: &str| {
        let definition = definitions
            .iter()
            .find(|d| d.workflow_type == workflow_type)
            .unwrap_or_else(|| panic!("{workflow_type} is defined"));
        let mut branches: Vec<&str> = definition
            .steps
            .iter()
            .filter_map(|s| s.branch.as_deref())
            .collect();
        branches.dedup();
        let compensated = definition
            .steps
            .iter()
            .filter(|s| s.compensation.is_some())
            .count();
        (definition.steps.len(), branches, compensated > 0)
    };
    assert_eq!(
        shape("trial_activation"),
        (15, vec!["branch-a", "branch-b"], true)
    );
    assert_eq!(shape("agent_deployment"), (8, vec![], true));
    assert_eq!(shape("data_sync"), (5, vec![], true));
}
