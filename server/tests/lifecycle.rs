//! The real binary's life as an orchestrator sees it: `/livez` and `/readyz` while it
//! starts (its database locked by another process), while it serves and while it stops;
//! and a SIGTERM under load, which answers every request in flight, tells live clients to
//! go elsewhere, answers long polls at once and has the built-in engine write down where
//! it stopped.

mod common;

use common::binary;
use common::client::{until, Client, API};
use common::core_state::token_with_store;
use futures::StreamExt;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LONG_STEP: &str = r#"
type = "long"
name = "One long step"
version = "1"
[[steps]]
name = "long_step"
action = { kind = "simulate", duration = "10m" }
"#;

const PULLING_SOURCE: &str = r#"
[[source]]
name = "edge"
actions = ["pause", "resume", "cancel", "retry", "clone"]
delivery = "pull"
"#;

/// Sends the process SIGTERM, by its PID, as an orchestrator stops it.
fn terminate(child: &tokio::process::Child) {
    let pid = child.id().expect("the process runs");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The binary started with `env`, not waited for: the process and the base URL it says
/// it starts on (before its store is open).
async fn spawn_starting(dir: &Path, env: &[(&str, String)]) -> (tokio::process::Child, String) {
    let mut command = binary::command(dir, env);
    command.env("STEPLINE_WORKFLOWS", dir.join("no-definitions"));
    let mut child = command.spawn().unwrap();
    let base = binary::starting_at(&mut child).await;
    (child, base)
}

async fn probe(http: &reqwest::Client, url: &str) -> Option<(u16, Value)> {
    let response = http.get(url).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.unwrap_or(Value::Null)))
}

#[tokio::test]
async fn readiness_is_false_while_the_store_is_locked_and_while_stopping() {
    let dir = tempfile::tempdir().unwrap();
    // Another process holds the database: Stepline cannot migrate it yet.
    let path = dir.path().join("stepline.db");
    let mut holder = {
        use sqlx::ConnectOptions;
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap()
    };
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut holder)
        .await
        .unwrap();

    let (child, base) =
        spawn_starting(dir.path(), &[("STEPLINE_SHUTDOWN_DELAY", "30s".into())]).await;
    server::engines::install_tls_provider();
    let http = reqwest::Client::new();
    let (status, body) = probe(&http, &format!("{base}/livez")).await.unwrap();
    assert_eq!((status, &body["status"]), (200, &json!("alive")));
    let (status, body) = probe(&http, &format!("{base}/readyz")).await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "starting");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("opening the store"),
        "{body}"
    );
    // Anything else is refused as unavailable, not left hanging.
    let response = http
        .get(format!("{base}{API}/workflows"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    // It keeps trying while the database is busy, and says why it is not ready.
    until("the probe names the lock", Duration::from_secs(30), || {
        let http = http.clone();
        let url = format!("{base}/readyz");
        async move {
            let (_, body) = probe(&http, &url).await?;
            body["detail"]
                .as_str()
                .is_some_and(|detail| detail.contains("locked"))
                .then_some(())
        }
    })
    .await;

    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    drop(holder);
    until(
        "ready once the store opens",
        Duration::from_secs(30),
        || {
            let http = http.clone();
            let url = format!("{base}/readyz");
            async move { (probe(&http, &url).await?.0 == 200).then_some(()) }
        },
    )
    .await;
    let (status, _) = probe(&http, &format!("{base}{API}/workflows"))
        .await
        .unwrap();
    assert_eq!(status, 401, "the app serves (and asks who is calling)");

    // Stopping: not ready at once, still serving during the shutdown delay.
    terminate(&child);
    until("not ready while stopping", Duration::from_secs(10), || {
        let http = http.clone();
        let url = format!("{base}/readyz");
        async move {
            let (status, body) = probe(&http, &url).await?;
            (status == 503 && body["status"] == "stopping").then_some(())
        }
    })
    .await;
    let (status, body) = probe(&http, &format!("{base}/livez")).await.unwrap();
    assert_eq!((status, &body["status"]), (200, &json!("alive")));
}

/// A POST of events whose headers ask to be told to go on (`Expect: 100-continue`): once
/// the server says so, it is reading the request. Returns the connection, and the body's
/// second half still to send.
async fn upload_half(base: &str, token: &str, id: &str) -> (tokio::net::TcpStream, Vec<u8>) {
    let address = base.trim_start_matches("http://");
    let body = json!({"source": "edge", "events": [{
        "type": "workflow_started", "workflow_id": id, "at": chrono::Utc::now().to_rfc3339(),
        "workflow_type": "upload", "total_steps": 1
    }]})
    .to_string()
    .into_bytes();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {API}/events HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut told = [0u8; 25];
    stream.read_exact(&mut told).await.unwrap();
    assert!(
        told.starts_with(b"HTTP/1.1 100 Continue"),
        "{}",
        String::from_utf8_lossy(&told)
    );
    let half = body.len() / 2;
    stream.write_all(&body[..half]).await.unwrap();
    (stream, body[half..].to_vec())
}

#[tokio::test]
async fn sigterm_under_load_answers_every_request_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let definitions = common::builtin::write_definitions(dir.path(), &[LONG_STEP]);
    let sources = dir.path().join("push-sources.toml");
    std::fs::write(&sources, PULLING_SOURCE).unwrap();
    let (child, base, _printed) = binary::launch_printing(
        dir.path(),
        &[
            ("STEPLINE_WORKFLOWS", definitions.display().to_string()),
            ("STEPLINE_PUSH_SOURCES", sources.display().to_string()),
        ],
    )
    .await;
    let store = server::store::Store::open(&binary::database_url(dir.path()))
        .await
        .unwrap();
    let token = token_with_store(&store, "tests", &["read", "operate", "ingest:edge"]).await;
    let client = Client::over_http(base.clone()).with_token(token.clone());

    // A built-in run whose step is running.
    let id = client.start("long").await;
    client
        .wait_for(&id, Duration::from_secs(20), |detail| {
            detail["execution"]["steps"][0]["status"] == "RUNNING"
        })
        .await;

    // A live client.
    let mut live = common::client::live_socket(&base, &token).await;
    let hello = live.next().await.unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("hello"), "{hello}");

    // Long polls of the pulling engine, waiting for commands that will not come.
    let polls: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .get(&format!("{API}/sources/edge/commands?wait=30"))
                    .await
            })
        })
        .collect();

    // Uploads the server has begun reading.
    let mut uploads = Vec::new();
    for i in 0..8 {
        uploads.push(upload_half(&base, &token, &format!("upload-{i}")).await);
    }

    // And load: clients asking one request after another, each on a new connection.
    let answered = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = (0..16)
        .map(|n| {
            let (base, token, answered) = (base.clone(), token.clone(), answered.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .pool_max_idle_per_host(0)
                    .build()
                    .unwrap();
                let mut statuses = Vec::new();
                for i in 0.. {
                    let sent = if i % 2 == 0 {
                        http.get(format!("{base}{API}/workflows?limit=20"))
                            .bearer_auth(&token)
                            .send()
                            .await
                    } else {
                        let body = json!({"source": "edge", "events": [{
                            "type": "workflow_started", "workflow_id": format!("load-{n}-{i}"),
                            "at": chrono::Utc::now().to_rfc3339(),
                            "workflow_type": "load", "total_steps": 1
                        }]});
                        http.post(format!("{base}{API}/events"))
                            .bearer_auth(&token)
                            .json(&body)
                            .send()
                            .await
                    };
                    match sent {
                        Ok(response) => {
                            statuses.push(response.status().as_u16());
                            // The whole answer arrives.
                            response.bytes().await.expect("an answer begun is finished");
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        // The listener closed: no more requests get in.
                        Err(_) => return statuses,
                    }
                }
                statuses
            })
        })
        .collect();
    until("the load runs", Duration::from_secs(20), || {
        let answered = answered.clone();
        async move { (answered.load(Ordering::Relaxed) >= 50).then_some(()) }
    })
    .await;

    terminate(&child);

    // Each upload in flight finishes and is answered.
    for (mut stream, rest) in uploads {
        stream.write_all(&rest).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 2"), "{answer}");
    }
    // The long polls are answered at once, with no command.
    for poll in polls {
        let (status, body) = tokio::time::timeout(Duration::from_secs(10), poll)
            .await
            .expect("a long poll is answered when the server stops")
            .unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["commands"], json!([]));
    }
    // The live client is told the server goes away.
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), live.next())
            .await
            .expect("the live connection is closed")
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("the connection ended without a close frame: {other:?}"),
        }
    };
    assert_eq!(u16::from(closed.unwrap().code), 1001);
    // Every request of the load that got in was answered in full, none with a failure.
    for task in load {
        let statuses = task.await.unwrap();
        assert!(
            statuses
                .iter()
                .all(|status| *status == 200 || *status == 202),
            "{statuses:?}"
        );
    }
    let mut child = child;
    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the process ends")
        .unwrap();
    assert!(exit.success(), "{exit}");

    // The built-in engine wrote down where it stopped, and the uploads are stored.
    let detail = store
        .workflow_detail(&id, chrono::Utc::now().timestamp_millis())
        .await
        .unwrap()
        .unwrap();
    let logs = &detail.execution.steps[0].logs;
    assert!(
        logs.iter()
            .any(|line| line.contains("Stepline stopped here")),
        "{logs:?}"
    );
    for i in 0..8 {
        let upload = format!("upload-{i}");
        assert!(
            store.workflow_row(&upload).await.unwrap().is_some(),
            "{upload}"
        );
    }
}
