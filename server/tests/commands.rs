//! Operators' commands to in-house engines that push their runs: delivered to a webhook
//! (a real HTTP server on loopback, in this process, standing for the engine) signed and
//! retried until the engine answers, or pulled by the engine with its token; each answer
//! shown on the run as the engine said it.

mod common;
use axum::http::{HeaderMap, StatusCode};
use common::client::{until, Client};
use common::core_state;
use serde_json::{json, Value};
use server::engines::commands::{
    signature, Delivery, PushSource, DEFAULT_CONFIRM_WITHIN, IDEMPOTENCY_HEADER, SIGNATURE_HEADER,
};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const API: &str = "/api/platform/orchestration";
const SECRET: &str = "a-webhook-secret-of-32-bytes-len";

/// What the engine's webhook received, and what it answers next (then 200 accepted).
#[derive(Clone, Default)]
struct Webhook {
    received: Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>,
    answers: Arc<Mutex<VecDeque<(StatusCode, Value)>>>,
}

impl Webhook {
    /// Listens on a free loopback port; its URL.
    async fn listen(&self) -> String {
        let hook = self.clone();
        let app = axum::Router::new().route(
            "/commands",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let hook = hook.clone();
                async move {
                    hook.received.lock().unwrap().push((headers, body.to_vec()));
                    let (status, answer) = hook
                        .answers
                        .lock()
                        .unwrap()
                        .pop_front()
                        .unwrap_or((StatusCode::OK, json!({"accepted": true})));
                    (status, axum::Json(answer))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}/commands")
    }
}

/// The source `name`, honouring every action but terminate, its commands POSTed to `url`.
fn webhook_source(name: &str, url: String) -> PushSource {
    PushSource {
        name: name.into(),
        capabilities: app::model::Capabilities::everything(),
        delivery: Delivery::Webhook {
            url,
            secret: SECRET.into(),
        },
        confirm_within: DEFAULT_CONFIRM_WITHIN,
    }
}

/// The source `name`, honouring every action but terminate, pulling its commands.
fn pulling_source(name: &str, confirm_within: Duration) -> PushSource {
    PushSource {
        name: name.into(),
        capabilities: app::model::Capabilities::everything(),
        delivery: Delivery::Pull,
        confirm_within,
    }
}

/// Stepline with `sources` declared, an operator's client that may also push as them, and
/// a running run `id` of the first source.
async fn stepline(
    sources: Vec<PushSource>,
    id: &str,
) -> (Client, server::store::Store, tempfile::TempDir) {
    let (mut state, dir) = core_state::on_temporary_file().await;
    let names: Vec<String> = sources
        .iter()
        .map(|s| format!("ingest:{}", s.name))
        .collect();
    let first = sources[0].name.clone();
    let mut scopes = vec!["read", "operate"];
    scopes.extend(names.iter().map(String::as_str));
    let token = core_state::token_with(&state, "operator-and-engine", &scopes).await;
    server::command_pushing_sources(&mut state, sources);
    let store = state.store.clone();
    let client = Client::in_process(server::app(state)).with_token(token);
    let (status, body) = client
        .post(
            &format!("{API}/events"),
            &json!({"source": first, "events": [{"type": "workflow_started", "workflow_id": id,
                "workflow_type": "deploy", "at": chrono::Utc::now().to_rfc3339()}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (client, store, dir)
}

/// The commands asked of run `id`, newest first.
async fn commands(client: &Client, id: &str) -> Vec<Value> {
    let (status, body) = client.get(&format!("{API}/workflows/{id}/commands")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

#[tokio::test]
async fn a_webhook_gets_each_command_signed_until_the_engine_answers() {
    let hook = Webhook::default();
    // The engine is down for the first delivery.
    hook.answers.lock().unwrap().push_back((
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"error": "restarting"}),
    ));
    let url = hook.listen().await;
    let (client, _store, _dir) =
        stepline(vec![webhook_source("billing", url)], "deploy-wf-67890").await;
    let run = client.detail("deploy-wf-67890").await;
    assert_eq!(run["can_cancel"], true, "the source declares cancel");

    let (status, answer) = client
        .post(
            &format!("{API}/workflows/deploy-wf-67890/cancel"),
            &json!({"reason": "runaway"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["new_status"], "RUNNING",
        "nothing pretends it happened"
    );
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("not confirmed yet"),
        "{answer}"
    );

    let accepted = until(
        "the engine's acceptance",
        Duration::from_secs(20),
        || async {
            let commands = commands(&client, "deploy-wf-67890").await;
            (commands[0]["state"] == "accepted").then(|| commands[0].clone())
        },
    )
    .await;
    assert_eq!(accepted["action"], "cancel");
    assert_eq!(accepted["reason"], "runaway");
    assert_eq!(
        accepted["requested_by"], "token:operator-and-engine",
        "who asked"
    );
    assert_eq!(accepted["carried_out"], false, "the run is still RUNNING");
    // The engine's own events show it done.
    let (status, body) = client
        .post(
            &format!("{API}/events"),
            &json!({"source": "billing", "events": [{"type": "workflow_status_changed",
                "workflow_id": "deploy-wf-67890", "at": chrono::Utc::now().to_rfc3339(),
                "status": "CANCELLING"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        commands(&client, "deploy-wf-67890").await[0]["carried_out"],
        true
    );
    assert_eq!(
        accepted["deliveries"], 2,
        "both deliveries counted: the one the engine answered 503, the one it accepted"
    );

    let received = hook.received.lock().unwrap().clone();
    assert_eq!(received.len(), 2, "delivered again after the engine's 503");
    let keys: Vec<&str> = received
        .iter()
        .map(|(headers, _)| headers[IDEMPOTENCY_HEADER].to_str().unwrap())
        .collect();
    assert_eq!(keys[0], keys[1], "one idempotency key for every delivery");
    for (headers, body) in &received {
        let signed = headers[SIGNATURE_HEADER].to_str().unwrap();
        let t: i64 = signed
            .strip_prefix("t=")
            .and_then(|rest| rest.split(',').next())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            signed,
            signature(SECRET, t, body),
            "the signature covers time and body"
        );
        assert!((chrono::Utc::now().timestamp() - t).abs() < 60);
        let message: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(message["workflow_id"], "deploy-wf-67890");
        assert_eq!(message["action"], "cancel");
        assert_eq!(message["idempotency_key"], keys[0]);
    }
}

#[tokio::test]
async fn a_refusal_is_shown_in_the_engines_own_words() {
    let hook = Webhook::default();
    hook.answers.lock().unwrap().push_back((
        StatusCode::OK,
        json!({"accepted": false, "reason": "step 6 cannot be interrupted <safely>"}),
    ));
    let url = hook.listen().await;
    let (client, _store, _dir) =
        stepline(vec![webhook_source("billing", url)], "deploy-wf-1").await;
    let (status, _) = client
        .post(&format!("{API}/workflows/deploy-wf-1/pause"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let refused = until("the engine's refusal", Duration::from_secs(20), || async {
        let commands = commands(&client, "deploy-wf-1").await;
        (commands[0]["state"] == "refused").then(|| commands[0].clone())
    })
    .await;
    assert_eq!(refused["said"], "step 6 cannot be interrupted <safely>");
    // An action the source does not declare is refused before anything is written.
    let (status, _) = client
        .post(
            &format!("{API}/workflows/deploy-wf-1/terminate"),
            &json!({"reason": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(commands(&client, "deploy-wf-1").await.len(), 1);
}

#[tokio::test]
async fn an_engine_behind_a_firewall_pulls_its_commands_and_answers_them() {
    let (client, store, _dir) = stepline(
        vec![
            pulling_source("edge", DEFAULT_CONFIRM_WITHIN),
            pulling_source("other", DEFAULT_CONFIRM_WITHIN),
        ],
        "edge-wf-1",
    )
    .await;
    let pull = format!("{API}/sources/edge/commands");
    let (status, nothing) = client.get(&format!("{pull}?wait=0")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(nothing, json!({"commands": []}));

    // A pull waiting when the operator asks gets the command at once.
    let waiting = {
        let client = client.clone();
        let pull = pull.clone();
        tokio::spawn(async move { client.get(&format!("{pull}?wait=25")).await })
    };
    tokio::task::yield_now().await;
    let (status, _) = client
        .post(
            &format!("{API}/workflows/edge-wf-1/retry"),
            &json!({"from_step": 4}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "a RUNNING run is not retried");
    let (status, _) = client
        .post(
            &format!("{API}/workflows/edge-wf-1/cancel"),
            &json!({"reason": "runaway"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, pulled) = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("the waiting pull answers when a command is written")
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    let command = &pulled["commands"][0];
    assert_eq!(command["action"], "cancel");
    assert_eq!(command["reason"], "runaway");
    assert_eq!(
        commands(&client, "edge-wf-1").await[0]["state"],
        "delivered"
    );

    let shown = &commands(&client, "edge-wf-1").await[0];
    assert_eq!(shown["overdue"], false, "within the engine's time");
    let answer = format!("{pull}/{}", command["id"]);
    let (status, _) = client.post(&answer, &json!({"accepted": true})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(commands(&client, "edge-wf-1").await[0]["state"], "accepted");
    let (status, _) = client.post(&answer, &json!({"accepted": true})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "answered already");
    let (status, _) = client.post(&answer, &json!({"maybe": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Another source's engine may not take these commands, nor anyone without a token.
    let other = core_state::token_with_store(&store, "other-engine", &["ingest:other"]).await;
    let (status, body) = client
        .clone()
        .with_token(other)
        .get(&format!("{pull}?wait=0"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = client.anonymous().get(&format!("{pull}?wait=0")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_operator_is_told_plainly_when_the_engine_has_not_confirmed_in_time() {
    let (client, _store, _dir) = stepline(
        vec![pulling_source("slow", Duration::from_millis(1))],
        "slow-wf-1",
    )
    .await;
    let (status, _) = client
        .post(&format!("{API}/workflows/slow-wf-1/pause"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let late = until(
        "the command shown overdue",
        Duration::from_secs(10),
        || async {
            let commands = commands(&client, "slow-wf-1").await;
            (commands[0]["overdue"] == true).then(|| commands[0].clone())
        },
    )
    .await;
    assert_eq!(late["state"], "requested");
    assert_eq!(late["carried_out"], false);
}

/// The real binary with `push_sources` declared, its output read until it says where it
/// serves, and a client whose token may act and push as `billing`.
async fn launch_binary(
    dir: &std::path::Path,
    push_sources: &str,
) -> (tokio::process::Child, Client) {
    let (child, base, store) = common::binary::launch_with_push_sources(
        dir,
        push_sources,
        ("BILLING_COMMAND_SECRET", SECRET),
    )
    .await;
    let token =
        core_state::token_with_store(&store, "tests", &["read", "operate", "ingest:billing"]).await;
    (child, Client::over_http(base).with_token(token))
}

fn webhook_declaration(url: &str) -> String {
    format!(
        r#"
[[source]]
name = "billing"
actions = ["pause", "resume", "cancel", "retry", "clone"]
delivery = "webhook"
url = "{url}"
secret_env = "BILLING_COMMAND_SECRET"
"#
    )
}

#[tokio::test]
async fn commands_not_yet_delivered_when_stepline_is_killed_are_all_delivered_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    // The engine is down: nothing listens where its webhook is.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let (mut first, client) = launch_binary(
        dir.path(),
        &webhook_declaration(&format!("http://{closed}/commands")),
    )
    .await;
    let (status, body) = client
        .post(
            &format!("{API}/events"),
            &json!({"source": "billing", "events": [{"type": "workflow_started",
                "workflow_id": "deploy-wf-1", "workflow_type": "deploy",
                "at": chrono::Utc::now().to_rfc3339()}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for action in ["pause", "cancel", "clone"] {
        let (status, body) = client
            .post(&format!("{API}/workflows/deploy-wf-1/{action}"), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
    }
    let asked = commands(&client, "deploy-wf-1").await;
    assert_eq!(asked.len(), 3);
    assert!(asked.iter().all(|command| command["state"] == "requested"));
    first.kill().await.unwrap(); // SIGKILL: no chance to deliver or clean up

    // The engine is back, and so is Stepline.
    let hook = Webhook::default();
    let url = hook.listen().await;
    let (_second, client) = launch_binary(dir.path(), &webhook_declaration(&url)).await;
    let answered = until(
        "every command answered",
        Duration::from_secs(30),
        || async {
            let commands = commands(&client, "deploy-wf-1").await;
            commands
                .iter()
                .all(|command| command["state"] == "accepted")
                .then_some(commands)
        },
    )
    .await;
    assert_eq!(answered.len(), 3);
    let received = hook.received.lock().unwrap().clone();
    let mut keys: Vec<String> = received
        .iter()
        .map(|(headers, _)| headers[IDEMPOTENCY_HEADER].to_str().unwrap().to_owned())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys.len(),
        3,
        "each command under its own key, whatever was delivered twice"
    );
    let actions: Vec<String> = received
        .iter()
        .map(|(_, body)| {
            serde_json::from_slice::<Value>(body).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for action in ["pause", "cancel", "clone"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} delivered: {actions:?}"
        );
    }
}

/// Sends `method uri` with `body` as the admin whose session `cookie` is (from Stepline's
/// own origin, as its pages would).
async fn as_admin(
    client: &Client,
    cookie: &str,
    method: axum::http::Method,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let request = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "stepline.test")
        .header("origin", "http://stepline.test")
        .header("cookie", cookie)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            body.map(|body| body.to_string()).unwrap_or_default(),
        ))
        .unwrap();
    let (status, bytes) = client.anonymous().send(request).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn admins_declare_a_pushing_source_while_stepline_serves_and_it_outlives_a_restart() {
    use axum::http::Method;
    let (state, dir) = core_state::on_temporary_file().await;
    server::command_pushing_sources(
        &state,
        vec![pulling_source("filed", DEFAULT_CONFIRM_WITHIN)],
    );
    let admin = core_state::account(
        &state,
        "root",
        None,
        &[app::model::identity::RoleBinding {
            role: app::model::identity::Role::Admin,
            engines: "*".into(),
        }],
    )
    .await;
    let cookie = core_state::session_cookie(&state, admin).await;
    let token = core_state::token_with(
        &state,
        "operator-and-engine",
        &["read", "operate", "ingest:declared"],
    )
    .await;
    let client = Client::in_process(server::app(state.clone())).with_token(token);
    let sources = format!("{API}/sources");

    // Declared through the API: listed beside the file's, and its engine takes commands.
    let declaration = json!({"name": "declared", "actions": ["pause", "cancel"],
        "delivery": "pull", "confirm_within": "5m"});
    let (status, body) = as_admin(
        &client,
        &cookie,
        Method::POST,
        &sources,
        Some(declaration.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["engine"], "custom:declared");
    assert_eq!(body["actions"], json!(["pause", "cancel"]));
    assert_eq!(body["declared_in"], "api");
    let (status, listed) = as_admin(&client, &cookie, Method::GET, &sources, None).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["declared_in"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(names, [("declared", "api"), ("filed", "file")]);

    let (status, body) = client
        .post(
            &format!("{API}/events"),
            &json!({"source": "declared", "events": [{"type": "workflow_started",
                "workflow_id": "declared-wf-1", "workflow_type": "deploy",
                "at": chrono::Utc::now().to_rfc3339()}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = client
        .post(&format!("{API}/workflows/declared-wf-1/pause"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, pulled) = client
        .get(&format!("{sources}/declared/commands?wait=0"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pulled["commands"][0]["action"], "pause");

    // What is refused, and why.
    let (status, body) =
        as_admin(&client, &cookie, Method::POST, &sources, Some(declaration)).await;
    assert_eq!(status, StatusCode::CONFLICT, "the name is taken: {body}");
    let (status, body) = as_admin(
        &client,
        &cookie,
        Method::POST,
        &sources,
        Some(
            json!({"name": "hook", "delivery": "webhook", "url": "https://engine.test/c",
            "secret_env": "STEPLINE_TEST_NO_SUCH_SECRET"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("STEPLINE_TEST_NO_SUCH_SECRET"),
        "{body}"
    );
    let (status, _) = as_admin(
        &client,
        &cookie,
        Method::POST,
        &sources,
        Some(json!({"name": "pigeon", "delivery": "carrier-pigeon"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = client
        .post(&sources, &json!({"name": "mine", "delivery": "pull"}))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an operator's token declares nothing"
    );
    let (status, body) = as_admin(
        &client,
        &cookie,
        Method::DELETE,
        &format!("{sources}/filed"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "the file's stays: {body}");

    // Stepline restarted on the same store takes its commands again.
    let url = common::database::url_in(dir.path()).await;
    let options = leptos::config::LeptosOptions::builder()
        .output_name("stepline")
        .build();
    let restarted = server::start_core(&url, options, None).await.unwrap().state;
    server::command_declared_sources(&restarted).await.unwrap();
    assert!(restarted.pushing.get("declared").is_some());
    assert!(restarted.engines.get("custom:declared").is_some());

    // Removed: its runs take no more commands (the engine could not be reached).
    let (status, body) = as_admin(
        &client,
        &cookie,
        Method::DELETE,
        &format!("{sources}/declared"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = client
        .post(&format!("{API}/workflows/declared-wf-1/cancel"), &json!({}))
        .await;
    assert!(status.is_client_error(), "{status}: {body}");
    let (status, _) = client
        .get(&format!("{sources}/declared/commands?wait=0"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let audit = state
        .store
        .audit(&app::model::identity::AuditQuery {
            actor: Some("root".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = audit.entries.iter().map(|e| e.action.as_str()).collect();
    assert!(
        actions.contains(&"declare_source") && actions.contains(&"remove_source"),
        "{actions:?}"
    );
}
