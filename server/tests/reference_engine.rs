//! The reference in-house engine (`examples/inhouse-engine/engine.py`) as a real process
//! of its own beside the real Stepline binary: its runs pushed, operators' commands
//! carried out in both delivery modes (pause and resume, retry from the failed step,
//! clone, cancel with its compensations as the rollback, a refusal in its words), the
//! engine down while a command waits, Stepline killed with commands not yet delivered,
//! and the engine's check of Stepline's webhook signature.

mod common;
use axum::http::StatusCode;
use common::client::{until, Client};
use serde_json::{json, Value};
use server::engines::commands::{signature, SIGNATURE_HEADER};
use std::path::{Path, PathBuf};
use std::time::Duration;

const API: &str = "/api/platform/orchestration";
const SECRET: &str = "the-reference-engine-secret-0123";
/// Long enough for a run's slowest path in a test (steps of 0.4 s, retries, a restart).
const WITHIN: Duration = Duration::from_secs(45);

/// How commands reach the engine.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Webhook,
    Pull,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Webhook => "webhook",
            Mode::Pull => "pull",
        }
    }

    /// The source this mode's engine pushes as.
    fn source(self) -> &'static str {
        match self {
            Mode::Webhook => "ref-hook",
            Mode::Pull => "ref-pull",
        }
    }
}

/// Stepline (the real binary) with both of the reference engine's sources declared.
struct Stepline {
    process: tokio::process::Child,
    base: String,
    /// An operator's client (reads, acts).
    client: Client,
    /// A token that may push as both sources: the engine's.
    engine_token: String,
}

impl Stepline {
    async fn launch(dir: &Path, engine_port: u16) -> Self {
        let declared = format!(
            r#"
[[source]]
name = "ref-hook"
actions = ["pause", "resume", "cancel", "retry", "clone"]
delivery = "webhook"
url = "http://127.0.0.1:{engine_port}/stepline/commands"
secret_env = "REFERENCE_ENGINE_SECRET"

[[source]]
name = "ref-pull"
actions = ["pause", "resume", "cancel", "retry", "clone"]
delivery = "pull"
"#
        );
        let (process, base, store) = common::binary::launch_with_push_sources(
            dir,
            &declared,
            ("REFERENCE_ENGINE_SECRET", SECRET),
        )
        .await;
        let operator =
            common::core_state::token_with_store(&store, "operator", &["read", "operate"]).await;
        let engine_token = common::core_state::token_with_store(
            &store,
            "reference-engine",
            &["ingest:ref-hook", "ingest:ref-pull"],
        )
        .await;
        let client = Client::over_http(base.clone()).with_token(operator);
        Self {
            process,
            base,
            client,
            engine_token,
        }
    }
}

/// The reference engine, a Python process, in one delivery mode.
struct Engine {
    process: tokio::process::Child,
    base: String,
    http: reqwest::Client,
}

impl Engine {
    /// Starts the engine on `port` with its state in `state`, and waits until it serves.
    async fn start(mode: Mode, stepline: &Stepline, port: u16, state: &Path) -> Self {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/inhouse-engine/engine.py");
        let mut process = tokio::process::Command::new("python3")
            .arg(script)
            .args(["--stepline", &stepline.base, "--source", mode.source()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--delivery", mode.name(), "--step-seconds", "0.4"])
            .arg("--state")
            .arg(state)
            .env("STEPLINE_TOKEN", &stepline.engine_token)
            .env("STEPLINE_COMMAND_SECRET", SECRET)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs the reference engine");
        let base = common::binary::output_after(&mut process, "ready ").await;
        Self {
            process,
            base,
            http: reqwest::Client::new(),
        }
    }

    /// Stops the engine as its operators would (SIGTERM, by its PID): it keeps its runs.
    async fn stop(mut self) {
        let pid = self.process.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(15), self.process.wait())
            .await
            .expect("the engine stops within 15 s")
            .unwrap();
        assert!(exit.success(), "the engine stopped cleanly: {exit}");
    }

    /// The engine's JSON answer to `request`.
    async fn answer(request: reqwest::RequestBuilder) -> Value {
        request.send().await.unwrap().json().await.unwrap()
    }

    /// Starts a run of `provision_tenant` with `input`; its id.
    async fn run(&self, input: Value) -> String {
        let asked = json!({"workflow_type": "provision_tenant", "input": input});
        let answer = Self::answer(self.http.post(format!("{}/runs", self.base)).json(&asked)).await;
        answer["workflow_id"].as_str().unwrap().to_owned()
    }

    /// Starts a run with `input` and waits until Stepline shows its step at `index` (from
    /// 0) running; its id.
    async fn run_until_step_runs(&self, client: &Client, input: Value, index: usize) -> String {
        let id = self.run(input).await;
        until_step_runs(client, &id, index).await;
        id
    }

    /// The commands the engine answered, by idempotency key.
    async fn answered(&self) -> serde_json::Map<String, Value> {
        let answer = Self::answer(self.http.get(format!("{}/commands", self.base))).await;
        answer.as_object().unwrap().clone()
    }
}

/// Asks `action` of run `id` as an operator: Stepline answers at once that it asked, and
/// says plainly that the engine has not confirmed it yet.
async fn ask(client: &Client, id: &str, action: &str, body: Value) {
    let (status, answer) = client
        .post(&format!("{API}/workflows/{id}/{action}"), &body)
        .await;
    assert_eq!(status, StatusCode::OK, "{action} {id}: {answer}");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(message.contains("not confirmed yet"), "{answer}");
}

/// The commands asked of run `id`, newest first.
async fn commands(client: &Client, id: &str) -> Vec<Value> {
    let (status, body) = client.get(&format!("{API}/workflows/{id}/commands")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

/// Waits until the newest command asked of `id` is in `state` (and carried out, if
/// `carried_out`); that command.
async fn command_reaches(client: &Client, id: &str, state: &str, carried_out: bool) -> Value {
    until(
        &format!("the newest command of {id} {state}"),
        WITHIN,
        || async {
            let newest = commands(client, id).await.into_iter().next()?;
            (newest["state"] == state && (!carried_out || newest["carried_out"] == true))
                .then_some(newest)
        },
    )
    .await
}

/// Waits until Stepline shows the step at `index` (from 0) of run `id` running.
async fn until_step_runs(client: &Client, id: &str, index: usize) {
    client
        .wait_for(id, WITHIN, |d| {
            d["execution"]["steps"][index]["status"] == "RUNNING"
        })
        .await;
}

fn step<'a>(detail: &'a Value, name: &str) -> &'a Value {
    detail["execution"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {detail:#}"))
}

/// The story's operator flows on runs of the reference engine, commanded in `mode`.
async fn operator_flows(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let port = common::binary::free_port();
    let stepline = Stepline::launch(dir.path(), port).await;
    let engine = Engine::start(mode, &stepline, port, &dir.path().join("engine.json")).await;
    let client = &stepline.client;

    // Pause takes effect after the running step: the branches after it wait.
    let id = engine
        .run_until_step_runs(
            client,
            json!({"fail": {"charge_card": 3}, "step_seconds": {"reserve_capacity": 1.5}}),
            0,
        )
        .await;
    ask(client, &id, "pause", json!({})).await;
    let paused = client.wait_for_status(&id, "PAUSED", WITHIN).await;
    assert_eq!(step(&paused, "reserve_capacity")["status"], "COMPLETED");
    assert_eq!(step(&paused, "create_database")["status"], "PENDING");
    command_reaches(client, &id, "accepted", true).await;
    ask(client, &id, "resume", json!({})).await;

    // charge_card fails all three attempts; the run is retried from it and completes.
    let failed = client.wait_for_status(&id, "FAILED", WITHIN).await;
    assert_eq!(step(&failed, "charge_card")["status"], "FAILED");
    assert_eq!(
        step(&failed, "charge_card")["attempts"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    ask(client, &id, "retry", json!({"from_step": 4})).await;
    let completed = client.wait_for_status(&id, "COMPLETED", WITHIN).await;
    let charge = step(&completed, "charge_card");
    assert_eq!(
        charge["attempts"].as_array().unwrap().len(),
        4,
        "earlier attempts kept"
    );
    assert_eq!(
        step(&completed, "create_database")["attempts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    command_reaches(client, &id, "accepted", true).await;

    // A clone is a new run of the engine; cancelling it rolls back what it completed.
    ask(client, &id, "clone", json!({})).await;
    let clone = until("the clone pushed", WITHIN, || async {
        let (_, list) = client
            .get(&format!("{API}/workflows?q=cloned-from:{id}"))
            .await;
        list["workflows"][0]["id"].as_str().map(str::to_owned)
    })
    .await;
    until_step_runs(client, &clone, 1).await;
    ask(client, &clone, "cancel", json!({"reason": "runaway clone"})).await;
    let cancelled = client.wait_for_status(&clone, "CANCELLED", WITHIN).await;
    let rollback: Vec<&Value> = cancelled["execution"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|step| step["kind"] == "compensation")
        .collect();
    // Newest first: whatever else had completed is undone before the first step.
    let last = rollback.last().expect("a rollback");
    assert_eq!(last["name"], "release_capacity", "{cancelled:#}");
    assert_eq!(last["compensates"], 1);
    assert!(
        rollback.iter().all(|step| step["status"] == "COMPLETED"),
        "{cancelled:#}"
    );
    command_reaches(client, &clone, "accepted", true).await;

    // A cancel while the card is being charged is refused, in the engine's words.
    let charging = engine
        .run_until_step_runs(client, json!({"step_seconds": {"charge_card": 3}}), 3)
        .await;
    ask(
        client,
        &charging,
        "cancel",
        json!({"reason": "changed my mind"}),
    )
    .await;
    let refused = command_reaches(client, &charging, "refused", false).await;
    assert_eq!(
        refused["said"],
        "charge_card is under way and cannot be interrupted; cancel once it ends"
    );
    client.wait_for_status(&charging, "COMPLETED", WITHIN).await;

    // The engine knows each command once, under its key, however often it came.
    let answered = engine.answered().await;
    assert_eq!(answered.len(), 6, "{answered:#?}");
    engine.stop().await;
    drop(stepline.process);
}

#[tokio::test]
async fn operator_flows_on_the_reference_engine_by_webhook() {
    operator_flows(Mode::Webhook).await;
}

#[tokio::test]
async fn operator_flows_on_the_reference_engine_by_pull() {
    operator_flows(Mode::Pull).await;
}

#[tokio::test]
async fn a_command_asked_while_the_engine_is_down_is_delivered_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::binary::free_port();
    let stepline = Stepline::launch(dir.path(), port).await;
    let state: PathBuf = dir.path().join("engine.json");
    let engine = Engine::start(Mode::Webhook, &stepline, port, &state).await;
    let client = &stepline.client;
    let id = engine
        .run_until_step_runs(client, json!({"step_seconds": {"create_database": 2.0}}), 1)
        .await;
    engine.stop().await;

    ask(client, &id, "pause", json!({})).await;
    let waiting = until("a delivery tried", WITHIN, || async {
        let newest = commands(client, &id).await.into_iter().next()?;
        (newest["deliveries"].as_i64() >= Some(1)).then_some(newest)
    })
    .await;
    assert_eq!(waiting["state"], "requested", "{waiting}");
    assert_eq!(waiting["carried_out"], false);
    let page = client
        .get_text(&format!("/orchestration/workflows/{id}"))
        .await
        .1;
    assert!(page.contains("not delivered"), "the run's page says so");
    assert_eq!(client.status(&id).await, "RUNNING");

    // The engine is back (its runs with it): the command reaches it, once.
    let engine = Engine::start(Mode::Webhook, &stepline, port, &state).await;
    command_reaches(client, &id, "accepted", true).await;
    client.wait_for_status(&id, "PAUSED", WITHIN).await;
    let answered = engine.answered().await;
    assert_eq!(answered.len(), 1);
    assert_eq!(answered.values().next().unwrap()["deliveries"], 1);
    engine.stop().await;
}

#[tokio::test]
async fn commands_left_undelivered_by_a_killed_stepline_reach_the_engine_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::binary::free_port();
    let mut stepline = Stepline::launch(dir.path(), port).await;
    let state = dir.path().join("engine.json");
    let engine = Engine::start(Mode::Pull, &stepline, port, &state).await;
    let slow = json!({"step_seconds": {"reserve_capacity": 8.0}});
    let (first, second) = (engine.run(slow.clone()).await, engine.run(slow).await);
    for id in [&first, &second] {
        until_step_runs(&stepline.client, id, 0).await;
    }
    engine.stop().await;
    ask(
        &stepline.client,
        &first,
        "cancel",
        json!({"reason": "runaway"}),
    )
    .await;
    ask(&stepline.client, &second, "pause", json!({})).await;
    ask(&stepline.client, &second, "clone", json!({})).await;
    stepline.process.kill().await.unwrap(); // SIGKILL

    let stepline = Stepline::launch(dir.path(), port).await;
    let engine = Engine::start(Mode::Pull, &stepline, port, &state).await;
    let client = &stepline.client;
    client.wait_for_status(&first, "CANCELLED", WITHIN).await;
    client.wait_for_status(&second, "PAUSED", WITHIN).await;
    for id in [&first, &second] {
        until("every command of the run accepted", WITHIN, || async {
            commands(client, id)
                .await
                .iter()
                .all(|command| command["state"] == "accepted")
                .then_some(())
        })
        .await;
    }
    let answered = engine.answered().await;
    assert_eq!(answered.len(), 3, "{answered:#?}");
    assert!(
        answered.values().all(|command| command["deliveries"] == 1),
        "none came twice: {answered:#?}"
    );
    engine.stop().await;
}

#[tokio::test]
async fn the_engine_refuses_a_forged_or_replayed_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::binary::free_port();
    let stepline = Stepline::launch(dir.path(), port).await;
    let engine = Engine::start(Mode::Webhook, &stepline, port, &dir.path().join("e.json")).await;
    let hook = format!("{}/stepline/commands", engine.base);
    let body = json!({"id": 1, "idempotency_key": "k-1", "workflow_id": "ref-hook-none",
        "action": "pause"})
    .to_string();
    let now = chrono::Utc::now().timestamp();
    let post = |signed: String| {
        engine
            .http
            .post(&hook)
            .header(SIGNATURE_HEADER, signed)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    };
    let forged = signature("not-the-secret-at-all-0123456789", now, body.as_bytes());
    assert_eq!(post(forged).await.unwrap().status(), 401, "another secret");
    let stale = signature(SECRET, now - 600, body.as_bytes());
    assert_eq!(post(stale).await.unwrap().status(), 401, "ten minutes old");
    assert_eq!(post(String::new()).await.unwrap().status(), 401, "unsigned");
    let good = signature(SECRET, now, body.as_bytes());
    let answer = post(good.clone()).await.unwrap();
    assert_eq!(answer.status(), 200);
    let reply: Value = answer.json().await.unwrap();
    assert_eq!(reply["accepted"], false, "no such run: {reply}");
    assert_eq!(
        post(good).await.unwrap().status(),
        401,
        "the same signature again"
    );
    engine.stop().await;
}
