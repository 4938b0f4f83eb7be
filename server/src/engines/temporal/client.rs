//! Temporal's HTTP API (the frontend's JSON gateway), as far as Stepline uses it: count
//! and list executions, read and long-poll histories, describe, and the commands.

use reqwest::{Method, Url};
use serde_json::{json, Value};
use std::time::Duration;

/// How long a history long-poll may hang: Temporal answers within 20 s.
const LONG_POLL_TIMEOUT: Duration = Duration::from_secs(40);
/// Every other call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Events per history page.
const HISTORY_PAGE: &str = "500";

pub use crate::engines::remote::ClientError;

/// One execution as the list returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    pub workflow_id: String,
    pub run_id: String,
    pub workflow_type: String,
    pub status: String,
    pub start_time: Option<String>,
    pub close_time: Option<String>,
}

/// A history page: its events and the token of the next (none: the workflow closed and
/// this was the end).
#[derive(Debug, Clone)]
pub struct HistoryPage {
    pub events: Vec<Value>,
    pub next_page_token: Option<String>,
}

/// A client of one namespace.
#[derive(Clone)]
pub struct TemporalClient {
    http: reqwest::Client,
    /// `.../api/v1/namespaces/{namespace}`
    base: Url,
    api_key: Option<String>,
}

impl TemporalClient {
    pub fn new(url: &str, namespace: &str, api_key: Option<String>) -> Result<Self, String> {
        let mut base = Url::parse(url).map_err(|e| format!("Temporal URL {url:?}: {e}"))?;
        base.path_segments_mut()
            .map_err(|()| format!("Temporal URL {url:?} cannot have a path"))?
            .pop_if_empty()
            .extend(["api", "v1", "namespaces", namespace]);
        crate::engines::install_tls_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            http,
            base,
            api_key,
        })
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.extend(segments);
        }
        url
    }

    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let mut request = self.http.request(method, url).timeout(timeout);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        crate::engines::remote::send(request).await
    }

    async fn get(&self, url: Url) -> Result<Value, ClientError> {
        self.call(Method::GET, url, None, CALL_TIMEOUT).await
    }

    async fn post(&self, segments: &[&str], body: Value) -> Result<Value, ClientError> {
        self.call(Method::POST, self.url(segments), Some(body), CALL_TIMEOUT)
            .await
    }

    /// Executions per status (`GROUP BY ExecutionStatus`) matching `filter`.
    pub async fn count_by_status(&self, filter: &str) -> Result<Vec<(String, u64)>, ClientError> {
        let mut url = self.url(&["workflow-count"]);
        let query = if filter.is_empty() {
            "GROUP BY ExecutionStatus".to_owned()
        } else {
            format!("{filter} GROUP BY ExecutionStatus")
        };
        url.query_pairs_mut().append_pair("query", &query);
        let answer = self.get(url).await?;
        let groups = answer
            .get("groups")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(groups
            .iter()
            .map(|group| {
                let status = group
                    .pointer("/groupValues/0/data")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned();
                let count = group
                    .get("count")
                    .and_then(|c| c.as_str().and_then(|s| s.parse().ok()).or(c.as_u64()))
                    .unwrap_or(0);
                (status, count)
            })
            .collect())
    }

    /// One page of executions matching `query` (newest first).
    pub async fn list(
        &self,
        query: &str,
        page_token: Option<&str>,
    ) -> Result<(Vec<Execution>, Option<String>), ClientError> {
        let mut url = self.url(&["workflows"]);
        {
            let mut pairs = url.query_pairs_mut();
            pairs
                .append_pair("query", query)
                .append_pair("pageSize", "200");
            if let Some(token) = page_token {
                pairs.append_pair("nextPageToken", token);
            }
        }
        let answer = self.get(url).await?;
        let text = |v: &Value, pointer: &str| {
            v.pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let executions = answer
            .get("executions")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|e| {
                        Some(Execution {
                            workflow_id: text(e, "/execution/workflowId")?,
                            run_id: text(e, "/execution/runId")?,
                            workflow_type: text(e, "/type/name").unwrap_or_default(),
                            status: text(e, "/status").unwrap_or_default(),
                            start_time: text(e, "/startTime"),
                            close_time: text(e, "/closeTime"),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok((executions, next_token(&answer)))
    }

    /// A page of a run's history from `page_token`; with `wait`, hangs until there is a
    /// new event (or Temporal's 20 s are up, answering no events and a token to go on).
    pub async fn history(
        &self,
        workflow_id: &str,
        run_id: &str,
        page_token: Option<&str>,
        wait: bool,
    ) -> Result<HistoryPage, ClientError> {
        let mut url = self.url(&["workflows", workflow_id, "history"]);
        {
            let mut pairs = url.query_pairs_mut();
            pairs
                .append_pair("execution.runId", run_id)
                .append_pair("maximumPageSize", HISTORY_PAGE);
            if let Some(token) = page_token {
                pairs.append_pair("nextPageToken", token);
            }
            if wait {
                pairs.append_pair("waitNewEvent", "true");
            }
        }
        let timeout = if wait {
            LONG_POLL_TIMEOUT
        } else {
            CALL_TIMEOUT
        };
        let answer = self.call(Method::GET, url, None, timeout).await?;
        let events = answer
            .pointer("/history/events")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let next_page_token = next_token(&answer);
        if next_page_token.is_none() {
            tracing::debug!(keys = ?answer.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()), "history without a next token");
        }
        Ok(HistoryPage {
            events,
            next_page_token,
        })
    }

    /// The run's description: status and pending activities (attempt, last failure).
    pub async fn describe(&self, workflow_id: &str, run_id: &str) -> Result<Value, ClientError> {
        let mut url = self.url(&["workflows", workflow_id]);
        url.query_pairs_mut().append_pair("execution.runId", run_id);
        self.get(url).await
    }

    /// `cancel`, `terminate`, `pause` or `unpause` of a workflow, with a reason.
    pub async fn workflow_command(
        &self,
        workflow_id: &str,
        run_id: &str,
        command: &str,
        reason: &str,
    ) -> Result<Value, ClientError> {
        let mut body = json!({"reason": reason, "identity": "stepline"});
        // Each request names the run its own way; terminate takes no request id.
        if matches!(command, "pause" | "unpause") {
            body["workflowId"] = json!(workflow_id);
            body["runId"] = json!(run_id);
        } else {
            body["workflowExecution"] = json!({"workflowId": workflow_id, "runId": run_id});
        }
        if command != "terminate" {
            body["requestId"] = json!(request_id());
        }
        self.post(&["workflows", workflow_id, command], body).await
    }

    /// Resets the run to just after workflow task `event_id`; answers the new run's id.
    pub async fn reset(
        &self,
        workflow_id: &str,
        run_id: &str,
        event_id: u64,
        reason: &str,
    ) -> Result<String, ClientError> {
        let answer = self
            .post(
                &["workflows", workflow_id, "reset"],
                json!({
                    "workflowExecution": {"workflowId": workflow_id, "runId": run_id},
                    "workflowTaskFinishEventId": event_id.to_string(),
                    "reason": reason,
                    "requestId": request_id(),
                    "resetReapplyType": "RESET_REAPPLY_TYPE_SIGNAL",
                }),
            )
            .await?;
        answer
            .get("runId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Unreadable("reset answered no runId".into()))
    }

    /// Starts a workflow; answers its run id.
    pub async fn start(
        &self,
        workflow_id: &str,
        workflow_type: &str,
        task_queue: &str,
        input: Option<Value>,
    ) -> Result<String, ClientError> {
        let mut body = json!({
            "workflowId": workflow_id,
            "workflowType": {"name": workflow_type},
            "taskQueue": {"name": task_queue},
            "identity": "stepline",
            "requestId": request_id(),
        });
        if let Some(input) = input {
            body["input"] = input;
        }
        let answer = self.post(&["workflows", workflow_id], body).await?;
        answer
            .get("runId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Unreadable("start answered no runId".into()))
    }
}

fn next_token(answer: &Value) -> Option<String> {
    answer
        .get("nextPageToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// A request id for Temporal's deduplication of retried commands.
fn request_id() -> String {
    format!(
        "stepline-{:x}-{:x}",
        chrono::Utc::now().timestamp_micros(),
        fastrand::u64(..)
    )
}
