//! The configuration file on the real binary: `check-config` on the documented example
//! and on a file with mistakes, a server that refuses a file with mistakes, and the
//! precedence of flag over environment variable over file.

mod common;

use std::path::Path;
use std::process::{Command, Output};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../stepline.example.toml");

/// The secrets the example names, as a deployment would have them.
const SECRETS: &[(&str, &str)] = &[
    ("TEMPORAL_API_KEY", "temporal-key"),
    ("AIRFLOW_PASSWORD", "airflow-password"),
    ("BILLING_COMMAND_SECRET", "a-signing-secret-of-32-bytes...."),
    ("CORP_OIDC_SECRET", "oidc-secret"),
    ("STEPLINE_HOOK_SECRET", "another-signing-secret-of-32-byt"),
    (
        "SLACK_WEBHOOK_URL",
        "https://hooks.slack.example.com/T000/B000/XXXX",
    ),
];

fn check_config(file: &Path, secrets: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_server"));
    command.arg("check-config").arg(file);
    for (name, _) in SECRETS {
        command.env_remove(name);
    }
    for (name, value) in secrets {
        command.env(name, value);
    }
    command.output().unwrap()
}

#[test]
fn the_documented_example_has_no_mistakes_and_declares_every_kind() {
    let output = check_config(Path::new(EXAMPLE), SECRETS);
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        said.contains(
            "no mistakes (13 settings; 2 Temporal, 1 Airflow and 2 pushing sources; 1 sign-in providers; 3 alert channels)"
        ),
        "{said}"
    );
}

#[test]
fn the_example_without_its_secrets_names_each_missing_variable_with_its_line() {
    let output = check_config(Path::new(EXAMPLE), &[]);
    assert_eq!(output.status.code(), Some(1));
    let said = String::from_utf8_lossy(&output.stderr);
    let example = std::fs::read_to_string(EXAMPLE).unwrap();
    let line_of = |text: &str| {
        example
            .lines()
            .position(|line| line.contains(text))
            .map(|index| index + 1)
            .unwrap()
    };
    for (variable, table, key) in [
        ("TEMPORAL_API_KEY", "[[temporal]]", "temporal[1]"),
        ("AIRFLOW_PASSWORD", "[[airflow]]", "airflow[1]"),
        (
            "BILLING_COMMAND_SECRET",
            "[[pushing_source]]",
            "pushing_source[1]",
        ),
        ("CORP_OIDC_SECRET", "[[sign_in]]", "sign_in[1]"),
        (
            "STEPLINE_HOOK_SECRET",
            "[[alerts.channel]]",
            "alerts.channel[1]",
        ),
    ] {
        let expected = format!("stepline.example.toml:{}: {key}: ", line_of(table));
        let told = said
            .lines()
            .find(|line| line.contains(variable))
            .unwrap_or_else(|| panic!("{variable} is not named:\n{said}"));
        assert!(told.contains(&expected), "{expected} in {told}");
    }
}

#[test]
fn check_config_names_three_mistakes_with_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stepline.toml");
    std::fs::write(
        &file,
        r#"# three mistakes
[server]
max_connections = "many"

[retention]
runs = "2s"

[[airflow]]
name = "data"
url = "ftp://airflow.example.com"
token_file = "/nonexistent/token"
"#,
    )
    .unwrap();
    let output = check_config(&file, &[]);
    assert_eq!(output.status.code(), Some(1));
    let said = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 3, "{said}");
    let name = file.display().to_string();
    assert!(
        lines[0].starts_with(&format!(
            "{name}:3: server.max_connections: invalid value 'many'"
        )),
        "{said}"
    );
    assert!(
        lines[1].starts_with(&format!("{name}:6: retention.runs: ")) && lines[1].contains("minute"),
        "{said}"
    );
    assert!(
        lines[2].starts_with(&format!("{name}:8: airflow[1]: ")) && lines[2].contains("url"),
        "{said}"
    );
}

/// Starts the binary with `args` and `env` (and no STEPLINE_* of the test's own), reads
/// where it says it starts, and stops it: the address.
async fn starts_on(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_server"));
    for (name, _) in std::env::vars() {
        if name.starts_with("STEPLINE_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let base = common::binary::starting_at(&mut child).await;
    child.kill().await.unwrap();
    base
}

#[tokio::test]
async fn a_flag_wins_over_its_variable_which_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (in_file, in_env, in_flag) = (
        common::binary::free_port(),
        common::binary::free_port(),
        common::binary::free_port(),
    );
    let file = dir.path().join("stepline.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:{in_file}\"\n[database]\nurl = \"sqlite://{}/stepline.db\"\n[builtin]\nworkflows = \"{}\"\n",
            dir.path().display(),
            dir.path().join("no-definitions").display()
        ),
    )
    .unwrap();
    let file = file.display().to_string();
    let config = ["--config", file.as_str()];
    assert_eq!(
        starts_on(&config, &[]).await,
        format!("http://127.0.0.1:{in_file}")
    );
    let env_listen = format!("127.0.0.1:{in_env}");
    let env = [("STEPLINE_LISTEN", env_listen.as_str())];
    assert_eq!(
        starts_on(&config, &env).await,
        format!("http://127.0.0.1:{in_env}")
    );
    let flag_listen = format!("127.0.0.1:{in_flag}");
    assert_eq!(
        starts_on(&["--config", &file, "--listen", &flag_listen], &env).await,
        format!("http://127.0.0.1:{in_flag}")
    );
    // The file may also be named by its variable.
    assert_eq!(
        starts_on(&[], &[("STEPLINE_CONFIG", file.as_str())]).await,
        format!("http://127.0.0.1:{in_file}")
    );
}

#[test]
fn a_server_given_a_file_with_mistakes_does_not_start_and_says_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stepline.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"nowhere\"\n[log]\nformat = \"xml\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_server"))
        .arg("--config")
        .arg(&file)
        .env_remove("STEPLINE_CONFIG")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("not applied, as it has mistakes"), "{said}");
    assert!(said.contains(":2: server.listen"), "{said}");
    assert!(said.contains(":4: log.format"), "{said}");
}
