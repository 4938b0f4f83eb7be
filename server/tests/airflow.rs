//! The Airflow adapter against a real Airflow 3.3.2 on PostgreSQL with the fixture DAGs
//! (`server/tests/airflow/dags`), started by `scripts/airflow.sh start DIR`, whose
//! `DIR/env` these tests read (`scripts/test.sh` does all of it). Stepline runs in-process
//! on a temporary SQLite file and is asked through its real router; the tests trigger and
//! read DAG runs through Airflow's own REST API.
//!
//! Ignored by a plain `cargo test` (they need Airflow); `scripts/test.sh` runs them with
//! `--include-ignored`.

mod common;
use axum::http::StatusCode;
use common::client::{millis, steps, until};
use common::relay::Relay;
use serde_json::{json, Value};
use server::engines::airflow::{CompensationRule, Credentials, SourceConfig};
use std::collections::HashMap;
use std::time::Duration;

/// A run of the fixture DAGs takes 5 to 16 s here; the scheduler may queue it a while.
const WITHIN: Duration = Duration::from_secs(90);

/// Airflow's own REST API, as the tests use it to trigger and read runs (signing in again
/// when its token expires: `scripts/test.sh` has Airflow's tokens last seconds).
struct Airflow {
    url: String,
    http: reqwest::Client,
    token: tokio::sync::Mutex<String>,
}

fn env_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/test.sh"))
}

impl Airflow {
    async fn from_env() -> Self {
        server::engines::install_tls_provider();
        let http = reqwest::Client::new();
        let url = env_var("STEPLINE_AIRFLOW_URL");
        let token = sign_in(&http, &url).await;
        Self {
            url,
            http,
            token: tokio::sync::Mutex::new(token),
        }
    }

    /// The source Stepline follows, reaching Airflow at `url` (its own, or a relay's).
    fn source(&self, url: &str) -> SourceConfig {
        SourceConfig {
            name: "local".into(),
            url: url.to_owned(),
            credentials: Credentials::Password {
                username: env_var("STEPLINE_AIRFLOW_USERNAME"),
                password: env_var("STEPLINE_AIRFLOW_PASSWORD"),
            },
            dag_ids: Vec::new(),
            tags: vec!["stepline-fixture".into()],
            compensation: CompensationRule {
                prefixes: vec!["compensate_".into()],
                on_failure_trigger_rules: true,
            },
            sla: HashMap::from([("stepline_linear".to_owned(), Duration::from_secs(600))]),
            poll_interval: Duration::from_millis(300),
            // The runs of the tests running now, not those of every test before.
            import_since: Duration::from_secs(20),
            running_logs_every: Some(Duration::from_secs(1)),
            reads_per_second: 5.0,
        }
    }

    /// Airflow's answer to `request` (built for a token), signing in again once if
    /// Airflow refuses the token.
    async fn call(&self, request: impl Fn(&str) -> reqwest::RequestBuilder) -> Value {
        let mut token = self.token.lock().await;
        let mut response = request(&token).send().await.unwrap();
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            *token = sign_in(&self.http, &self.url).await;
            response = request(&token).send().await.unwrap();
        }
        response.json().await.unwrap()
    }

    /// Triggers `dag` with `conf`: its run id.
    async fn trigger(&self, dag: &str, conf: Value) -> String {
        let url = format!("{}/api/v2/dags/{dag}/dagRuns", self.url);
        let answer = self
            .call(|token| {
                self.http
                    .post(&url)
                    .bearer_auth(token)
                    .json(&json!({"logical_date": null, "conf": conf}))
            })
            .await;
        answer["dag_run_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no run id: {answer}"))
            .to_owned()
    }

    async fn run(&self, dag: &str, run_id: &str) -> Value {
        let mut url = reqwest::Url::parse(&self.url).unwrap();
        url.path_segments_mut()
            .unwrap()
            .extend(["api", "v2", "dags", dag, "dagRuns", run_id]);
        self.call(|token| self.http.get(url.clone()).bearer_auth(token))
            .await
    }
}

/// A token from Airflow's `/auth/token`.
async fn sign_in(http: &reqwest::Client, url: &str) -> String {
    let answer: Value = http
        .post(format!("{url}/auth/token"))
        .json(&json!({
            "username": env_var("STEPLINE_AIRFLOW_USERNAME"),
            "password": env_var("STEPLINE_AIRFLOW_PASSWORD"),
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"].as_str().unwrap().to_owned()
}

/// Stepline following the real Airflow, on its own SQLite file, asked through its router.
type Stepline = common::core_state::Following<SourceConfig>;

impl Stepline {
    async fn following(airflow: &Airflow) -> Self {
        Self::following_at(airflow, &airflow.url).await
    }

    /// Stepline reaching `airflow` at `url`.
    async fn following_at(airflow: &Airflow, url: &str) -> Self {
        Self::on(airflow.source(url), tempfile::tempdir().unwrap()).await
    }

    /// Stepline following `source` on the store in `dir` (a restart reuses it).
    async fn on(source: SourceConfig, dir: tempfile::TempDir) -> Self {
        common::core_state::show_engine_logs();
        let state = common::core_state::in_folder(dir.path()).await;
        server::follow_airflow(&state, vec![source.clone()]).unwrap();
        Self::new(&state, source, dir).await
    }

    fn id(&self, dag: &str, run_id: &str) -> String {
        self.source.workflow_id(dag, run_id)
    }

    /// Triggers a run of `dag` (no conf) and returns its workflow id here.
    async fn triggered(&self, airflow: &Airflow, dag: &str) -> String {
        self.id(dag, &airflow.trigger(dag, json!({})).await)
    }
}

fn step(detail: &Value, name: &str) -> Value {
    steps(detail)
        .into_iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {detail:#}"))
}

#[tokio::test]
#[ignore = "needs a real Airflow: scripts/test.sh starts one"]
async fn parallel_tasks_overlap_and_a_mapped_task_shows_every_map_index() {
    let airflow = Airflow::from_env().await;
    let stepline = Stepline::following(&airflow).await;
    let parallel = stepline.triggered(&airflow, "stepline_parallel").await;
    let mapped = stepline.triggered(&airflow, "stepline_mapped").await;
    let detail = stepline
        .wait_for_status(&parallel, "COMPLETED", WITHIN)
        .await;
    assert_eq!(detail["engine"], "airflow:local");
    assert_eq!(
        detail["metadata"]["tags"],
        json!(["stepline-fixture"]),
        "the DAG's tags"
    );
    let branched: Vec<Value> = steps(&detail)
        .into_iter()
        .filter(|s| s["branch"].is_string())
        .collect();
    assert_eq!(branched.len(), 3, "three branches: {detail:#}");
    for a in &branched {
        for b in &branched {
            assert!(
                millis(&a["started_at"]) < millis(&b["completed_at"]),
                "{a} / {b}"
            );
        }
    }
    let detail = stepline.wait_for_status(&mapped, "COMPLETED", WITHIN).await;
    let names: Vec<String> = steps(&detail)
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    for index in 0..5 {
        let name = format!("square[{index}]");
        assert!(names.contains(&name), "{name} in {names:?}");
        assert_eq!(step(&detail, &name)["status"], "COMPLETED");
    }
    assert!(!names.contains(&"square".to_owned()), "{names:?}");
    assert_eq!(step(&detail, "total")["status"], "COMPLETED");
}

#[tokio::test]
#[ignore = "needs a real Airflow: scripts/test.sh starts one"]
async fn each_try_of_a_retried_task_shows_with_its_times_and_error() {
    let airflow = Airflow::from_env().await;
    let stepline = Stepline::following(&airflow).await;
    let id = stepline
        .triggered(&airflow, "stepline_retry_recovers")
        .await;
    // The completion shows at once; the output and lines of the successful try once read.
    let detail = stepline
        .wait_for(&id, WITHIN, |d| {
            d["status"] == "COMPLETED" && !step(d, "flaky_fetch")["output"].is_null()
        })
        .await;
    let flaky = step(&detail, "flaky_fetch");
    let attempts = flaky["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "{flaky:#}");
    assert_eq!(attempts[0]["status"], "FAILED");
    assert_eq!(attempts[1]["status"], "FAILED");
    assert_eq!(
        attempts[1]["error"], "RuntimeError: upstream not ready (try 2)",
        "{flaky:#}"
    );
    assert_eq!(attempts[2]["status"], "COMPLETED");
    for attempt in attempts {
        assert!(millis(&attempt["started_at"]) <= millis(&attempt["completed_at"]));
    }
    assert_eq!(flaky["retry_policy"]["max_attempts"], 3);
    assert_eq!(flaky["output"], json!({"try": 3}));
    assert!(
        flaky["logs"].to_string().contains("INFO fetched on try 3"),
        "{flaky:#}"
    );
}

#[tokio::test]
#[ignore = "needs a real Airflow: scripts/test.sh starts one"]
async fn a_permanent_failure_runs_its_clean_up_and_a_retry_from_the_failed_step_recovers() {
    let airflow = Airflow::from_env().await;
    let stepline = Stepline::following(&airflow).await;
    let failing = stepline.id(
        "stepline_permanent_failure",
        &airflow
            .trigger("stepline_permanent_failure", json!({}))
            .await,
    );
    let run_id = airflow.trigger("stepline_fixed_by_retry", json!({})).await;
    let fixable = stepline.id("stepline_fixed_by_retry", &run_id);

    let detail = stepline.wait_for_status(&failing, "FAILED", WITHIN).await;
    assert_eq!(
        detail["status_reason"], "task charge_card failed",
        "{detail:#}"
    );
    let cleanup = step(&detail, "compensate_release");
    assert_eq!(cleanup["kind"], "compensation");
    assert_eq!(cleanup["status"], "COMPLETED");
    assert_eq!(step(&detail, "ship_order")["status"], "CANCELLED");
    assert_eq!(
        step(&detail, "charge_card")["error"],
        "ValueError: card declined: insufficient funds"
    );

    let failed = stepline.wait_for_status(&fixable, "FAILED", WITHIN).await;
    let load = step(&failed, "load");
    assert_eq!(load["status"], "FAILED");
    let (status, answer) = stepline
        .post(
            &format!("/api/platform/orchestration/workflows/{fixable}/retry"),
            &json!({"from_step": load["step_number"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let recovered = stepline
        .wait_for_status(&fixable, "COMPLETED", WITHIN)
        .await;
    let load = step(&recovered, "load");
    let attempts = load["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "the first try is kept: {load:#}");
    assert_eq!(
        attempts[0]["error"],
        "RuntimeError: warehouse locked (first try)"
    );
    assert_eq!(attempts[1]["status"], "COMPLETED");
    assert_eq!(
        step(&recovered, "prepare")["attempts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        airflow.run("stepline_fixed_by_retry", &run_id).await["state"],
        "success"
    );
}

#[tokio::test]
#[ignore = "needs a real Airflow: scripts/test.sh starts one"]
async fn a_cancel_marks_the_run_failed_in_airflow_and_a_clone_runs_with_the_same_conf() {
    let airflow = Airflow::from_env().await;
    let stepline = Stepline::following(&airflow).await;
    let run_id = airflow
        .trigger("stepline_long_running", json!({"seconds": 120}))
        .await;
    let id = stepline.id("stepline_long_running", &run_id);
    let running = stepline
        .wait_for(&id, WITHIN, |d| {
            steps(d).iter().any(|s| s["status"] == "RUNNING")
        })
        .await;
    assert_eq!(running["capabilities"]["can_pause"], false);
    let (status, answer) = stepline
        .post(
            &format!("/api/platform/orchestration/workflows/{id}/pause"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "no per-run pause: {answer}");
    let (status, answer) = stepline
        .post(
            &format!("/api/platform/orchestration/workflows/{id}/cancel"),
            &json!({"reason": "test"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("Nothing is rolled back"),
        "{answer}"
    );
    let cancelled = stepline.wait_for_status(&id, "FAILED", WITHIN).await;
    assert!(
        cancelled["status_reason"]
            .as_str()
            .unwrap()
            .starts_with("cancelled from Stepline"),
        "{cancelled:#}"
    );
    until("Airflow to mark the run failed", WITHIN, || async {
        (airflow.run("stepline_long_running", &run_id).await["state"] == "failed").then_some(())
    })
    .await;

    let (status, answer) = stepline
        .post(
            &format!("/api/platform/orchestration/workflows/{id}/clone"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let clone_id = answer["workflow_id"].as_str().unwrap().to_owned();
    let clone = stepline.wait_for(&clone_id, WITHIN, |d| !d.is_null()).await;
    assert_eq!(clone["metadata"]["trigger_type"], format!("clone of {id}"));
    let reference = clone["metadata"]["engine_ref"].as_str().unwrap();
    let (_, clone_run) = server::engines::airflow::parse_engine_ref(reference).unwrap();
    let in_airflow = airflow.run("stepline_long_running", &clone_run).await;
    assert_eq!(
        in_airflow["conf"],
        json!({"seconds": 120}),
        "{in_airflow:#}"
    );
    // The clone runs two minutes: stop it too.
    let (status, answer) = stepline
        .post(
            &format!("/api/platform/orchestration/workflows/{clone_id}/cancel"),
            &json!({}),
        )
        .await;
    assert!(
        status == StatusCode::OK || status == StatusCode::CONFLICT,
        "{status}: {answer}"
    );
}

#[tokio::test]
#[ignore = "needs a real Airflow: scripts/test.sh starts one"]
async fn an_outage_shows_as_degraded_and_stepline_catches_up_on_what_it_missed() {
    let airflow = Airflow::from_env().await;
    let relay = Relay::to(&airflow.url).await;
    let stepline = Stepline::following_at(&airflow, &relay.url()).await;
    let run_id = airflow
        .trigger("stepline_long_running", json!({"seconds": 6}))
        .await;
    let id = stepline.id("stepline_long_running", &run_id);
    stepline
        .wait_for(&id, WITHIN, |d| {
            steps(d).iter().any(|s| s["status"] == "RUNNING")
        })
        .await;

    relay.set(false);
    let engine_state = || async {
        let (_, engines) = stepline.get("/api/platform/orchestration/engines").await;
        engines
            .as_array()
            .and_then(|all| all.iter().find(|e| e["engine"] == "airflow:local"))
            .and_then(|e| e["state"].as_str())
            .unwrap_or("?")
            .to_owned()
    };
    until("the source to show as degraded", WITHIN, || async {
        (engine_state().await == "degraded").then_some(())
    })
    .await;
    // The run goes on in Airflow while Stepline cannot see it.
    until("the run to succeed in Airflow", WITHIN, || async {
        (airflow.run("stepline_long_running", &run_id).await["state"] == "success").then_some(())
    })
    .await;
    assert_eq!(
        stepline.detail(&id).await["status"],
        "RUNNING",
        "Stepline could not have seen the end yet"
    );

    relay.set(true);
    let detail = stepline
        .wait_for(&id, WITHIN, |d| {
            d["status"] == "COMPLETED" && step(d, "wait")["logs"].to_string().contains("tick 6/6")
        })
        .await;
    let wait = step(&detail, "wait");
    assert_eq!(wait["status"], "COMPLETED", "{detail:#}");
    assert_eq!(wait["attempts"].as_array().unwrap().len(), 1);
    assert!(wait["logs"].to_string().contains("tick 6/6"), "{wait:#}");
    until("the source to recover", WITHIN, || async {
        (engine_state().await == "ok").then_some(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a real Airflow: scripts/test.sh starts one"]
async fn a_running_tries_log_is_read_as_it_grows_and_each_line_kept_once() {
    let airflow = Airflow::from_env().await;
    let stepline = Stepline::following(&airflow).await;
    let id = stepline.id(
        "stepline_long_running",
        &airflow
            .trigger("stepline_long_running", json!({"seconds": 8}))
            .await,
    );
    let running = stepline
        .wait_for(&id, WITHIN, |d| {
            steps(d)
                .iter()
                .any(|s| s["logs"].to_string().contains("tick 2/8"))
        })
        .await;
    assert_eq!(
        step(&running, "wait")["status"],
        "RUNNING",
        "read while it runs: {running:#}"
    );
    let done = stepline
        .wait_for(&id, WITHIN, |d| {
            d["status"] == "COMPLETED" && step(d, "wait")["logs"].to_string().contains("tick 8/8")
        })
        .await;
    let logs: Vec<String> = step(&done, "wait")["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line.as_str().unwrap().to_owned())
        .collect();
    for tick in 1..=8 {
        let line = format!("INFO tick {tick}/8");
        assert_eq!(
            logs.iter().filter(|l| **l == line).count(),
            1,
            "{line} once in {logs:#?}"
        );
    }
}

#[tokio::test]
#[ignore = "needs a real Airflow: scripts/test.sh starts one"]
async fn successful_tries_still_to_read_when_stepline_stops_are_read_after_a_restart() {
    let airflow = Airflow::from_env().await;
    let dir = tempfile::tempdir().unwrap();
    let run_id = airflow.trigger("stepline_linear", json!({})).await;
    let id = airflow
        .source(&airflow.url)
        .workflow_id("stepline_linear", &run_id);
    let marks = [
        (
            "extract",
            "extracting 3 orders",
            json!({"orders": [101, 102, 103]}),
        ),
        ("transform", "total 306", json!({"count": 3, "total": 306})),
        (
            "load",
            "loading summary",
            json!({"loaded": true, "rows": 3}),
        ),
    ];

    // The first Stepline reads one try, then would wait minutes for its next read; it runs
    // on its own runtime, so dropping it stops everything it had, as a killed process. It
    // watches the list only: opening the run would have its tries read at once.
    let dir = {
        let (airflow_url, id) = (airflow.url.clone(), id.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async {
                let airflow = Airflow::from_env().await;
                let mut source = airflow.source(&airflow_url);
                source.reads_per_second = 0.01;
                let stepline = Stepline::on(source, dir).await;
                let uri = format!("/api/platform/orchestration/workflows?q={id}");
                until("the run to end in Stepline's list", WITHIN, || async {
                    let (_, list) = stepline.get(&uri).await;
                    (list["workflows"][0]["status"] == "COMPLETED").then_some(())
                })
                .await;
                stepline.dir
            })
        })
        .join()
        .unwrap()
    };
    let unread = {
        use server::source::Recall;
        let store = server::store::Store::open(&common::database::url_in(dir.path()).await)
            .await
            .unwrap();
        let positions = store.positions("airflow:local").await.unwrap();
        let unread: Vec<Value> = serde_json::from_str(&positions["unread"]).unwrap();
        unread
            .iter()
            .filter(|u| u["workflow_id"] == id.as_str())
            .count()
    };
    assert!(
        unread >= 2,
        "two tries at least were still to read: {unread}"
    );

    let stepline = Stepline::on(airflow.source(&airflow.url), dir).await;
    let detail = stepline
        .wait_for(&id, WITHIN, |d| {
            marks
                .iter()
                .all(|(name, ..)| !step(d, name)["output"].is_null())
        })
        .await;
    for (name, line, output) in &marks {
        let step = step(&detail, name);
        assert_eq!(step["output"], *output, "{step:#}");
        let lines = step["logs"].as_array().unwrap();
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.as_str().unwrap().contains(line))
                .count(),
            1,
            "{line:?} once in {step:#}"
        );
    }
}

#[tokio::test]
#[ignore = "needs a real Airflow: scripts/test.sh starts one"]
async fn opening_a_run_reads_its_successful_tries_at_once_whatever_the_budget() {
    let airflow = Airflow::from_env().await;
    let mut source = airflow.source(&airflow.url);
    // One try read, then the next in minutes, unless someone looks.
    source.reads_per_second = 0.01;
    let stepline = Stepline::on(source, tempfile::tempdir().unwrap()).await;
    let id = stepline.triggered(&airflow, "stepline_linear").await;
    // The detail, as the run's page asks it, until every step shows its output.
    let detail = stepline
        .wait_for(&id, WITHIN, |d| {
            d["status"] == "COMPLETED"
                && ["extract", "transform", "load"]
                    .iter()
                    .all(|name| !step(d, name)["output"].is_null())
        })
        .await;
    assert_eq!(
        step(&detail, "transform")["output"],
        json!({"count": 3, "total": 306})
    );
    assert!(
        step(&detail, "load")["logs"]
            .to_string()
            .contains("loading summary"),
        "{detail:#}"
    );
}

#[tokio::test]
#[ignore = "needs a real Airflow: scripts/test.sh starts one"]
async fn a_token_that_expires_while_following_is_renewed_and_nothing_is_missed() {
    let lifetime: u64 = env_var("STEPLINE_AIRFLOW_TOKEN_ACCEPTED_SECONDS")
        .parse()
        .unwrap();
    assert!(
        lifetime <= 60,
        "scripts/test.sh has Airflow's tokens expire within a minute, not {lifetime} s"
    );
    let airflow = Airflow::from_env().await;
    common::core_state::show_engine_logs();
    let (state, dir) = common::core_state::on_temporary_file().await;
    let source = airflow.source(&airflow.url);
    let followed = server::follow_airflow(&state, vec![source.clone()]).unwrap();
    let stepline = Stepline::new(&state, source, dir).await;
    // A run that lasts past the token Stepline signed in with.
    let seconds = lifetime + 5;
    let id = stepline.id(
        "stepline_long_running",
        &airflow
            .trigger("stepline_long_running", json!({"seconds": seconds}))
            .await,
    );
    let last_tick = format!("tick {seconds}/{seconds}");
    let detail = stepline
        .wait_for(&id, WITHIN + Duration::from_secs(seconds), |d| {
            d["status"] == "COMPLETED" && step(d, "wait")["logs"].to_string().contains(&last_tick)
        })
        .await;
    assert_eq!(
        step(&detail, "wait")["attempts"].as_array().unwrap().len(),
        1
    );
    assert!(
        followed[0].sign_ins() >= 2,
        "signed in again when the first token expired: {} sign-ins",
        followed[0].sign_ins()
    );
    let (_, engines) = stepline.get("/api/platform/orchestration/engines").await;
    let airflow_source = engines
        .as_array()
        .and_then(|all| all.iter().find(|e| e["engine"] == "airflow:local"))
        .cloned();
    assert_eq!(
        airflow_source.as_ref().map(|e| e["state"].clone()),
        Some(json!("ok")),
        "{engines:#}"
    );
}

#[tokio::test]
#[ignore = "needs a real Airflow: scripts/test.sh starts one"]
async fn a_dags_deadline_alert_is_its_runs_sla_and_a_configured_sla_covers_the_others() {
    let airflow = Airflow::from_env().await;
    let mut source = airflow.source(&airflow.url);
    source.sla = HashMap::from([
        ("stepline_deadline".to_owned(), Duration::from_secs(1800)),
        ("stepline_linear".to_owned(), Duration::from_secs(1200)),
    ]);
    let stepline = Stepline::on(source, tempfile::tempdir().unwrap()).await;
    let due = stepline.triggered(&airflow, "stepline_deadline").await;
    let plain = stepline.triggered(&airflow, "stepline_linear").await;
    let detail = stepline.wait_for_status(&due, "COMPLETED", WITHIN).await;
    assert_eq!(
        detail["definition"]["sla_target_seconds"], 600,
        "the DAG's deadline alert (10 minutes after queued) wins over the configured 30: {detail:#}"
    );
    let detail = stepline.wait_for_status(&plain, "COMPLETED", WITHIN).await;
    assert_eq!(detail["definition"]["sla_target_seconds"], 1200);
}
