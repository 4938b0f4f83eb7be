//! What an internal error leaves behind: an opaque answer, and its cause logged once,
//! with its chain, in its request's span. A test binary of its own: the log subscriber
//! it installs is the process's global one.

mod common;
use axum::http::StatusCode;
use common::client::Client;
use common::core_state;

/// Log lines written while a test runs, to check what the server logged.
#[derive(Clone, Default)]
struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn an_internal_errors_cause_is_logged_once_with_its_chain_and_never_sent() {
    let log = CapturedLog::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_env_filter("warn,server=info")
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let (state, _dir) = core_state::on_temporary_file().await;
    let store = state.store.clone();
    let client = Client::in_process(server::app(state.clone()))
        .with_token(common::core_state::operator_token(&state).await);
    // The store goes away under the server: every read is now our fault.
    store.close().await;
    let (status, body) = client
        .get("/api/platform/orchestration/workflows/wf-1")
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"], "internal");
    let message = body["message"].as_str().unwrap();
    assert!(
        !message.to_lowercase().contains("pool"),
        "the cause stays out: {message}"
    );

    let logged = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let failures: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("request failed"))
        .collect();
    assert_eq!(failures.len(), 1, "logged once: {logged}");
    let line = failures[0];
    assert!(
        line.to_lowercase().contains("pool"),
        "with its cause: {line}"
    );
    assert!(
        line.contains("/api/platform/orchestration/workflows/{id}"),
        "in its request's span: {line}"
    );
}
