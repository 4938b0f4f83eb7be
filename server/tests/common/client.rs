//! The one client of a Stepline under test that every integration test uses: it speaks
//! to the real router in this process (no socket), or over HTTP to a Stepline serving on
//! a port, and waits on a run the way an operator's script would (polling its detail for
//! a condition, never sleeping for a guessed time).
// Each test binary uses a part.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::future::Future;
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// Where the REST API lives.
pub const API: &str = "/api/platform/orchestration";

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(25);

#[derive(Clone)]
enum Transport {
    Router(Router),
    Http { base: String, http: reqwest::Client },
}

/// A client of one Stepline, sending its API token (if it has one) with every request.
#[derive(Clone)]
pub struct Client {
    transport: Transport,
    token: Option<String>,
}

impl Client {
    /// Through `router` itself, request by request.
    pub fn in_process(router: Router) -> Self {
        Self {
            transport: Transport::Router(router),
            token: None,
        }
    }

    /// The same client, sending `token` as `Authorization: Bearer`.
    pub fn with_token(self, token: impl Into<String>) -> Self {
        Self {
            token: Some(token.into()),
            ..self
        }
    }

    /// The same client without a token (an anonymous caller).
    pub fn anonymous(&self) -> Self {
        Self {
            token: None,
            ..self.clone()
        }
    }

    /// Over HTTP to the Stepline at `base` (`http://127.0.0.1:PORT`). Redirects are not
    /// followed, as in process.
    pub fn over_http(base: String) -> Self {
        server::engines::install_tls_provider();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            transport: Transport::Http { base, http },
            token: None,
        }
    }

    /// Sends `request` (its URI a path), answering the status and the body.
    pub async fn send(&self, mut request: Request<Body>) -> (StatusCode, Vec<u8>) {
        if let Some(token) = &self.token {
            if !request.headers().contains_key("authorization") {
                request
                    .headers_mut()
                    .insert("authorization", format!("Bearer {token}").parse().unwrap());
            }
        }
        match &self.transport {
            Transport::Router(router) => {
                let response = router.clone().oneshot(request).await.unwrap();
                let status = response.status();
                let bytes = response.into_body().collect().await.unwrap().to_bytes();
                (status, bytes.to_vec())
            }
            Transport::Http { base, http } => {
                let (parts, body) = request.into_parts();
                let body = body.collect().await.unwrap().to_bytes();
                let response = http
                    .request(parts.method, format!("{base}{}", parts.uri))
                    .headers(parts.headers)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                (status, response.bytes().await.unwrap().to_vec())
            }
        }
    }

    pub async fn send_text(&self, request: Request<Body>) -> (StatusCode, String) {
        let (status, body) = self.send(request).await;
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn send_json(&self, request: Request<Body>) -> (StatusCode, Value) {
        let (status, text) = self.send_text(request).await;
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get_text(&self, uri: &str) -> (StatusCode, String) {
        self.send_text(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    /// GET `uri`: its JSON, or its text as a JSON string when it is not JSON.
    pub async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.send_json(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    fn json_post(uri: &str, body: String) -> Request<Body> {
        Request::post(uri)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    }

    /// POST `body` as it is, labelled JSON.
    pub async fn post_text(&self, uri: &str, body: &str) -> (StatusCode, String) {
        self.send_text(Self::json_post(uri, body.to_owned())).await
    }

    /// POST `body`: the answer's JSON, or its text as a JSON string.
    pub async fn post(&self, uri: &str, body: &Value) -> (StatusCode, Value) {
        self.send_json(Self::json_post(uri, body.to_string())).await
    }

    /// A batch of events for the events API, as it is.
    pub async fn push_raw(&self, body: &str) -> (StatusCode, Value) {
        self.send_json(Self::json_post(&format!("{API}/events"), body.to_owned()))
            .await
    }

    /// Starts a run of `workflow_type` through the API, answering its id.
    pub async fn start(&self, workflow_type: &str) -> String {
        let (status, body) = self
            .post(
                &format!("{API}/workflows"),
                &json!({"workflow_type": workflow_type, "input": {"customer": "c-1"}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["workflow_id"].as_str().unwrap().to_owned()
    }

    /// The run's detail as the API answers it (`Null` while it is unknown).
    pub async fn detail(&self, id: &str) -> Value {
        let (status, detail) = self.get(&format!("{API}/workflows/{id}")).await;
        if status == StatusCode::OK {
            detail
        } else {
            Value::Null
        }
    }

    /// The run's status, as the API says it.
    pub async fn status(&self, id: &str) -> String {
        self.detail(id).await["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Polls the run's detail until `done` holds, for at most `within`, and answers the
    /// detail then; fails the test with the last detail seen.
    pub async fn wait_for(
        &self,
        id: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let detail = self.detail(id).await;
            if !detail.is_null() && done(&detail) {
                return detail;
            }
            assert!(
                Instant::now() < deadline,
                "{id} did not get there in {within:?}: {detail:#}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    pub async fn wait_for_status(&self, id: &str, status: &str, within: Duration) -> Value {
        self.wait_for(id, within, |d| d["status"] == status).await
    }
}

/// Polls `check` until it yields a value, failing the test after `within`.
pub async fn until<T, F, Fut>(what: &str, within: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    until_or_none(within, check)
        .await
        .unwrap_or_else(|| panic!("timed out after {within:?} waiting for {what}"))
}

/// Polls `check` until it yields a value, or gives `None` after `within`.
pub async fn until_or_none<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A run's steps, from its detail.
pub fn steps(detail: &Value) -> Vec<Value> {
    detail["execution"]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A time of the API (RFC 3339) in milliseconds.
pub fn millis(value: &Value) -> i64 {
    value
        .as_str()
        .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|| panic!("not a time: {value}"))
}

/// Milliseconds as the API writes a time (RFC 3339).
pub fn at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("a time")
        .to_rfc3339()
}

/// The time now, in milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A live (WebSocket) connection to the Stepline at `base`, sending `token`.
pub async fn live_socket(
    base: &str,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}/ws/orchestration", base.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap().0
}
