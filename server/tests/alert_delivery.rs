//! Alerts delivered to real receivers, each a process of its own (a webhook receiver and
//! an SMTP server, see common/receiver.rs): each alert reaches the channels that take it,
//! once, signed; a receiver that is down gets it when it is back (and the failing channel
//! is an alert meanwhile); Stepline SIGKILLed with undelivered alerts delivers them after
//! its restart, each once; a storm of 1,000 failures is a few digests, not 1,000 messages.
//! Ignored unless the receivers' Python is given (scripts/test.sh runs them).

mod common;
use common::client::{until, Client};
use common::core_state;
use common::receiver::{free_port, Receiver};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(60);
const SECRET: &str = "alert-webhook-secret-0123";
const ALERTS: &str = "/api/platform/orchestration/alerts";

fn now() -> String {
    chrono::Utc::now().to_rfc3339()
}

fn failure(id: &str, tags: &[&str]) -> Vec<Value> {
    vec![
        json!({"type": "workflow_started", "workflow_id": id, "at": now(),
               "workflow_type": "invoice_run", "total_steps": 1, "sla_target_seconds": 600,
               "tags": tags}),
        json!({"type": "workflow_status_changed", "workflow_id": id, "at": now(),
               "status": "FAILED", "reason": "the ledger refused <the batch>"}),
    ]
}

async fn push(client: &Client, events: Vec<Value>) {
    let (status, body) = client
        .push_raw(&json!({"source": "billing", "events": events}).to_string())
        .await;
    assert!(status.is_success(), "push refused: {status} {body}");
}

fn channels(declared: &str) -> server::alerts::settings::AlertSettings {
    server::alerts::settings::parse_settings(declared, |name| {
        (name == "ALERT_SECRET").then(|| SECRET.to_owned())
    })
    .unwrap()
}

fn webhook(name: &str, port: u16, extra: &str) -> String {
    format!(
        "[[channel]]\nname = \"{name}\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/alerts\"\nsecret_env = \"ALERT_SECRET\"\n{extra}\n"
    )
}

/// The alerts a webhook receiver took, by alert id: the news of each, in order, whether
/// it came alone or within a digest.
fn news_by_alert(messages: &[Value]) -> BTreeMap<i64, Vec<String>> {
    let mut by_alert: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for message in messages {
        let body: Value = serde_json::from_str(message["body"].as_str().unwrap()).unwrap();
        let delivered = match body["kind"].as_str() {
            Some("alert") => vec![body.clone()],
            Some("digest") => body["deliveries"].as_array().unwrap().clone(),
            other => panic!("a message of kind {other:?}: {body}"),
        };
        for one in delivered {
            by_alert
                .entry(one["alert"]["id"].as_i64().unwrap())
                .or_default()
                .push(one["news"].as_str().unwrap().to_owned());
        }
    }
    by_alert
}

/// Whether the outbox has nothing left to send.
async fn outbox_empty(store: &server::store::Store) -> bool {
    store
        .read_number("SELECT COUNT(*) FROM alert_deliveries WHERE state = 'due'")
        .await
        .unwrap()
        == 0
}

#[tokio::test]
#[ignore = "needs the receivers' Python: STEPLINE_RECEIVER_PYTHON (scripts/test.sh sets it)"]
async fn each_alert_reaches_the_channels_that_take_it_once_and_signed() {
    let folder = tempfile::tempdir().unwrap();
    let (hook_port, slack_port, smtp_port) =
        (free_port().await, free_port().await, free_port().await);
    let hook = Receiver::start("webhook", hook_port, folder.path()).await;
    let slack = Receiver::start("webhook", slack_port, folder.path()).await;
    let mail = Receiver::start("smtp", smtp_port, folder.path()).await;
    let (state, _dir) = core_state::on_temporary_file().await;
    let declared = format!(
        "{}\n[[channel]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"http://127.0.0.1:{slack_port}/slack\"\nconditions = [\"failed\"]\n\n[[channel]]\nname = \"pager\"\nkind = \"email\"\nsmtp = \"smtp://127.0.0.1:{smtp_port}\"\nfrom = \"stepline@example.com\"\nto = [\"ops@example.com\"]\ntags = [\"page-me\"]\n",
        webhook("hook", hook_port, "")
    );
    server::deliver_alerts(&state, channels(&declared));
    let token = core_state::operator_token(&state).await;
    let client = Client::in_process(server::app(state.clone())).with_token(token);

    // Breached, then completed: the webhook alone takes it, fired then resolved.
    let start = (chrono::Utc::now() - chrono::Duration::seconds(70)).to_rfc3339();
    push(
        &client,
        vec![
            json!({"type": "workflow_started", "workflow_id": "inv-late", "at": start,
                    "workflow_type": "invoice_run", "total_steps": 1, "sla_target_seconds": 60}),
        ],
    )
    .await;
    // Failed, tagged for the pager: all three take it.
    push(&client, failure("inv-failed", &["page-me"])).await;
    push(
        &client,
        vec![
            json!({"type": "workflow_status_changed", "workflow_id": "inv-late", "at": now(),
                    "status": "COMPLETED"}),
        ],
    )
    .await;

    until("every delivery sent", WITHIN, || async {
        (outbox_empty(&state.store).await && hook.messages().len() == 3).then_some(())
    })
    .await;
    let messages = hook.messages();
    let by_alert = news_by_alert(&messages);
    let news: Vec<Vec<String>> = by_alert.values().cloned().collect();
    assert_eq!(
        news,
        [
            vec!["fired".to_owned(), "resolved".to_owned()],
            vec!["fired".to_owned()]
        ],
        "{messages:?}"
    );
    let mut keys = Vec::new();
    for message in &messages {
        // Signed as the commands to in-house engines are: HMAC-SHA256 of "t.body".
        let signature = message["headers"]["stepline-signature"].as_str().unwrap();
        let (t, v1) = signature
            .strip_prefix("t=")
            .and_then(|rest| rest.split_once(",v1="))
            .unwrap();
        let body = message["body"].as_str().unwrap();
        let expected = server::digest::hmac_sha256_hex(
            SECRET.as_bytes(),
            &[t.as_bytes(), b".", body.as_bytes()],
        );
        assert_eq!(v1, expected, "{message}");
        keys.push(
            message["headers"]["idempotency-key"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 3, "a key per delivery");

    let chat = slack.messages();
    assert_eq!(chat.len(), 1, "{chat:?}");
    let text: Value = serde_json::from_str(chat[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        text["text"],
        "[FIRING] Failed: invoice_run inv-failed: failed: the ledger refused &lt;the batch&gt;"
    );
    let mails = mail.messages();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0]["to"], json!(["ops@example.com"]));
    assert!(
        mails[0]["subject"]
            .as_str()
            .unwrap()
            .starts_with("[Stepline] [FIRING] Failed: invoice_run inv-failed"),
        "{mails:?}"
    );
}

#[tokio::test]
#[ignore = "needs the receivers' Python: STEPLINE_RECEIVER_PYTHON (scripts/test.sh sets it)"]
async fn a_receiver_that_is_down_gets_the_alert_once_it_is_back() {
    let folder = tempfile::tempdir().unwrap();
    let port = free_port().await;
    let (state, _dir) = core_state::on_temporary_file().await;
    server::deliver_alerts(&state, channels(&webhook("hook", port, "")));
    let token = core_state::operator_token(&state).await;
    let client = Client::in_process(server::app(state.clone())).with_token(token);
    push(&client, failure("inv-1", &[])).await;

    // Three failed tries in a row: the channel is an alert of its own.
    let failing = until("the channel's alert", WITHIN, || async {
        let (_, page) = client.get(ALERTS).await;
        page["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|alert| alert["condition"] == "channel_failing")
            .cloned()
    })
    .await;
    assert_eq!(failing["engine"], "stepline");
    assert!(
        failing["summary"]
            .as_str()
            .unwrap()
            .contains("hook (webhook) failed 3 times"),
        "{failing}"
    );

    let hook = Receiver::start("webhook", port, folder.path()).await;
    until("the alert, once the receiver is back", WITHIN, || async {
        (!hook.messages().is_empty()).then_some(())
    })
    .await;
    until("the channel's alert resolved", WITHIN, || async {
        let (_, page) = client.get(&format!("{ALERTS}?state=resolved")).await;
        page["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|alert| alert["condition"] == "channel_failing")
            .then_some(())
    })
    .await;
    assert!(outbox_empty(&state.store).await);
    let by_alert = news_by_alert(&hook.messages());
    assert_eq!(by_alert.len(), 1, "{by_alert:?}");
    assert_eq!(by_alert.values().next().unwrap(), &["fired"]);
}

#[tokio::test]
#[ignore = "needs the receivers' Python: STEPLINE_RECEIVER_PYTHON (scripts/test.sh sets it)"]
async fn killed_with_undelivered_alerts_it_delivers_each_once_after_a_restart() {
    let folder = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().await;
    let file = dir.path().join("alerts.toml");
    std::fs::write(&file, webhook("hook", port, "")).unwrap();
    let env = [
        (
            "STEPLINE_WORKFLOWS",
            dir.path().join("no-definitions").display().to_string(),
        ),
        ("STEPLINE_ALERTS", file.display().to_string()),
        ("ALERT_SECRET", SECRET.to_owned()),
    ];
    let (mut first, base) = common::binary::launch(dir.path(), &env).await;
    let store = server::store::Store::open(&common::binary::database_url(dir.path()))
        .await
        .unwrap();
    let token =
        core_state::token_with_store(&store, "tests", &["read", "operate", "billing"]).await;
    let client = Client::over_http(base).with_token(token.clone());
    for n in 0..5 {
        push(&client, failure(&format!("inv-{n}"), &[])).await;
    }
    let (_, page) = client.get(&format!("{ALERTS}?limit=500")).await;
    assert_eq!(page["open"], 5, "{page}");
    assert!(
        !outbox_empty(&store).await,
        "the receiver is down: nothing delivered yet"
    );
    first.kill().await.unwrap();

    let hook = Receiver::start("webhook", port, folder.path()).await;
    let (_second, base) = common::binary::launch(dir.path(), &env).await;
    let client = Client::over_http(base).with_token(token);
    until("the five alerts delivered", WITHIN, || async {
        outbox_empty(&store).await.then_some(())
    })
    .await;
    let by_alert = news_by_alert(&hook.messages());
    assert_eq!(by_alert.len(), 5, "{by_alert:?}");
    assert!(
        by_alert.values().all(|news| news == &["fired"]),
        "{by_alert:?}"
    );
    let (_, page) = client.get(&format!("{ALERTS}?limit=500")).await;
    assert_eq!(page["open"], 5, "delivered is not acknowledged: {page}");
}

#[tokio::test]
#[ignore = "needs the receivers' Python: STEPLINE_RECEIVER_PYTHON (scripts/test.sh sets it)"]
async fn a_storm_of_a_thousand_failures_is_a_few_digests_not_a_thousand_messages() {
    let folder = tempfile::tempdir().unwrap();
    let port = free_port().await;
    let hook = Receiver::start("webhook", port, folder.path()).await;
    let (state, _dir) = core_state::on_temporary_file().await;
    server::deliver_alerts(&state, channels(&webhook("hook", port, "per_minute = 10")));
    let token = core_state::operator_token(&state).await;
    let client = Client::in_process(server::app(state.clone())).with_token(token);
    let stormed = std::time::Instant::now();
    // Spread over 5 s, as failures come in a storm: 20 batches of 50, one each 250 ms.
    let mut pace = tokio::time::interval(Duration::from_millis(250));
    for batch in 0..20 {
        pace.tick().await;
        let events: Vec<Value> = (0..50)
            .flat_map(|n| failure(&format!("storm-{batch}-{n}"), &[]))
            .collect();
        push(&client, events).await;
    }
    until("the storm delivered", WITHIN, || async {
        outbox_empty(&state.store).await.then_some(())
    })
    .await;
    let messages = hook.messages();
    let by_alert = news_by_alert(&messages);
    assert_eq!(by_alert.len(), 1_000, "every alert told");
    assert!(
        by_alert.values().all(|news| news == &["fired"]),
        "each once"
    );
    let digests = messages
        .iter()
        .filter(|m| m["body"].as_str().unwrap().contains("\"kind\":\"digest\""))
        .count();
    println!(
        "1,000 alerts: {} messages ({digests} digests) within {:?}",
        messages.len(),
        stormed.elapsed()
    );
    assert!(digests >= 1, "{} messages, none a digest", messages.len());
    assert!(
        messages.len() <= 25,
        "{} messages for 1,000 alerts within a minute at 10 a minute",
        messages.len()
    );
}
