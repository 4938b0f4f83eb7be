//! What an internal error leaves behind: an opaque answer, and its cause logged once,
//! with its chain, in its request's span. A test binary of its own: the log subscriber
//! it installs is the process's global one.

#[path = "common/core_state.rs"]
mod core_state;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

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
    let router = server::app(state);
    // The store goes away under the server: every read is now our fault.
    store.pool().close().await;
    let response = router
        .oneshot(
            Request::get("/api/platform/orchestration/workflows/wf-1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
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
