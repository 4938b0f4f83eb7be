//! Airflow 3's REST API v2, as far as Stepline uses it: what changed since a moment (DAG
//! runs and task instances), a run's task instances, a task's tries and logs, a DAG's
//! tasks, XCom return values, and the actions (mark failed, clear, trigger). Signs in
//! with a password (renewing its token when Airflow refuses it) or a given token.

use super::Credentials;
use crate::engines::remote::{self, ClientError};
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Every call; Airflow answers a page of 1,000 in about half a second here.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// How long an operator's action that is safe to repeat is tried again while Airflow is
/// slow or briefly failing. Marking a run failed waits for the scheduler's lock on the
/// run: seconds here when idle, longer when busy.
const ACTION_PATIENCE: Duration = Duration::from_secs(30);
/// Items per page of a list (Airflow's `maximum_page_limit` may cap it lower: paging
/// follows `next_cursor` or the offset either way).
pub const PAGE: usize = 500;

/// A DAG run as the API answers it (fields Stepline reads; the rest is ignored).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct DagRun {
    pub dag_run_id: String,
    pub dag_id: String,
    #[serde(default)]
    pub queued_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub start_date: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end_date: Option<DateTime<Utc>>,
    #[serde(default)]
    pub run_after: Option<DateTime<Utc>>,
    /// `manual`, `scheduled`, `backfill`, `asset_triggered`.
    #[serde(default)]
    pub run_type: Option<String>,
    /// `queued`, `running`, `success`, `failed`.
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub triggered_by: Option<String>,
    #[serde(default)]
    pub triggering_user_name: Option<String>,
    #[serde(default)]
    pub conf: Option<Value>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub dag_versions: Vec<DagVersion>,
}

/// A run's deadlines, as Airflow's UI API answers them.
#[derive(Debug, Deserialize)]
struct DeadlinesPage {
    #[serde(default)]
    deadlines: Vec<Deadline>,
}

#[derive(Debug, Deserialize)]
struct Deadline {
    deadline_time: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct DagVersion {
    #[serde(default)]
    pub version_number: Option<i64>,
}

/// A task instance, or one try of it (the tries endpoint answers the same shape).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct TaskInstance {
    pub task_id: String,
    pub dag_id: String,
    pub dag_run_id: String,
    #[serde(default = "unmapped")]
    pub map_index: i64,
    #[serde(default)]
    pub start_date: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end_date: Option<DateTime<Utc>>,
    /// `None` (no status: not scheduled yet, or cleared), `scheduled`, `queued`,
    /// `running`, `success`, `failed`, `up_for_retry`, `up_for_reschedule`,
    /// `upstream_failed`, `skipped`, `removed`, `restarting`, `deferred`, `awaiting_input`.
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub try_number: u32,
    #[serde(default)]
    pub max_tries: u32,
    #[serde(default)]
    pub rendered_map_index: Option<String>,
    #[serde(default)]
    pub queued_when: Option<DateTime<Utc>>,
    #[serde(default)]
    pub scheduled_when: Option<DateTime<Utc>>,
}

fn unmapped() -> i64 {
    -1
}

/// A task of a DAG, as `/tasks` answers it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Task {
    pub task_id: String,
    #[serde(default)]
    pub downstream_task_ids: Vec<String>,
    #[serde(default)]
    pub trigger_rule: Option<String>,
    #[serde(default)]
    pub retries: Option<f64>,
    #[serde(default)]
    pub retry_delay: Option<TimeDelta>,
    /// A number in Airflow 3 (the backoff's base; 0 for none), a flag before.
    #[serde(default)]
    pub retry_exponential_backoff: Option<Value>,
    #[serde(default)]
    pub is_mapped: Option<bool>,
}

/// Airflow's serialised `timedelta`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
pub struct TimeDelta {
    #[serde(default)]
    pub days: f64,
    #[serde(default)]
    pub seconds: f64,
    #[serde(default)]
    pub microseconds: f64,
}

impl TimeDelta {
    pub fn as_seconds(self) -> f64 {
        self.days * 86_400.0 + self.seconds + self.microseconds / 1e6
    }
}

/// A page of a try's log: its events and the token to read on from (none: the end).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogPage {
    #[serde(default)]
    pub content: Vec<Value>,
    #[serde(default)]
    pub continuation_token: Option<String>,
}

#[derive(Deserialize)]
struct RunsPage {
    #[serde(default)]
    dag_runs: Vec<DagRun>,
    #[serde(default)]
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct TaskInstancesPage {
    #[serde(default)]
    task_instances: Vec<TaskInstance>,
    #[serde(default)]
    total_entries: Option<usize>,
}

#[derive(Deserialize)]
struct TasksPage {
    #[serde(default)]
    tasks: Vec<Task>,
}

#[derive(Deserialize)]
struct DagsPage {
    #[serde(default)]
    dags: Vec<Dag>,
    #[serde(default)]
    total_entries: Option<usize>,
}

/// A DAG as the DAG list answers it.
#[derive(Debug, Clone, Deserialize)]
pub struct Dag {
    pub dag_id: String,
    #[serde(default)]
    pub tags: Vec<DagTag>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DagTag {
    pub name: String,
}

/// A client of one Airflow API server.
#[derive(Clone)]
pub struct AirflowClient {
    http: reqwest::Client,
    /// `.../api/v2`
    base: Url,
    root: Url,
    credentials: Credentials,
    token: Arc<tokio::sync::Mutex<Option<String>>>,
    /// Calls made, for the request budget the source reports.
    calls: Arc<AtomicU64>,
    /// Tokens obtained with the password (the first, and each renewal).
    sign_ins: Arc<AtomicU64>,
}

impl AirflowClient {
    pub fn new(url: &str, credentials: Credentials) -> Result<Self, String> {
        let root = Url::parse(url).map_err(|e| format!("Airflow URL {url:?}: {e}"))?;
        let mut base = root.clone();
        base.path_segments_mut()
            .map_err(|()| format!("Airflow URL {url:?} cannot have a path"))?
            .pop_if_empty()
            .extend(["api", "v2"]);
        crate::engines::install_tls_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| e.to_string())?;
        let token = match &credentials {
            Credentials::Token(token) => Some(token.clone()),
            Credentials::Password { .. } => None,
        };
        Ok(Self {
            http,
            base,
            root,
            credentials,
            token: Arc::new(tokio::sync::Mutex::new(token)),
            calls: Arc::default(),
            sign_ins: Arc::default(),
        })
    }

    /// How many calls this client has made.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// How many tokens it has obtained with its password.
    pub fn sign_ins(&self) -> u64 {
        self.sign_ins.load(Ordering::Relaxed)
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.extend(segments);
        }
        url
    }

    /// A token: the one held, or a new one from `/auth/token`.
    async fn token(&self, renew: bool) -> Result<String, ClientError> {
        let mut held = self.token.lock().await;
        if let (Some(token), false) = (held.as_ref(), renew) {
            return Ok(token.clone());
        }
        let Credentials::Password { username, password } = &self.credentials else {
            // A given token cannot be renewed: Airflow's refusal stands.
            return held.clone().ok_or_else(|| ClientError::Refused {
                status: 401,
                message: "no token".into(),
            });
        };
        let url = self.root_url(&["auth", "token"]);
        self.calls.fetch_add(1, Ordering::Relaxed);
        let request = self
            .http
            .post(url)
            .timeout(CALL_TIMEOUT)
            .json(&json!({"username": username, "password": password}));
        let answer: Value = remote::send(request).await.map_err(|error| match error {
            ClientError::Refused { status, message } => ClientError::Refused {
                status,
                message: format!("signing in to Airflow: {message}"),
            },
            other => other,
        })?;
        let token = answer
            .get("access_token")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Unreadable("no access_token in /auth/token".into()))?;
        *held = Some(token.clone());
        self.sign_ins.fetch_add(1, Ordering::Relaxed);
        Ok(token)
    }

    /// One call, signed; a token Airflow refuses (expired) is renewed once.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<T, ClientError> {
        let mut renewed = false;
        loop {
            let token = self.token(false).await?;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .timeout(CALL_TIMEOUT)
                .bearer_auth(token)
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            self.calls.fetch_add(1, Ordering::Relaxed);
            let response = request
                .send()
                .await
                .map_err(|e| ClientError::Unreachable(e.to_string()))?;
            let status = response.status();
            if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) && !renewed {
                renewed = true;
                if matches!(self.credentials, Credentials::Password { .. }) {
                    self.token(true).await?;
                    continue;
                }
            }
            return remote::read(response).await;
        }
    }

    /// A call that is safe to repeat, tried again with backoff while its failure is
    /// transient, for up to [`ACTION_PATIENCE`].
    async fn call_repeatable<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: &Value,
    ) -> Result<T, ClientError> {
        let give_up = tokio::time::Instant::now() + ACTION_PATIENCE;
        let mut backoff =
            crate::retry::Backoff::new(Duration::from_millis(250), Duration::from_secs(4));
        loop {
            match self.call(method.clone(), url.clone(), Some(body)).await {
                Err(error) if error.is_transient() && tokio::time::Instant::now() < give_up => {
                    tracing::warn!(%error, %url, "Airflow did not take the action; trying again");
                    backoff.wait().await;
                }
                answer => return answer,
            }
        }
    }

    async fn get<T: DeserializeOwned>(&self, url: Url) -> Result<T, ClientError> {
        self.call(Method::GET, url, None).await
    }

    /// DAG runs of every DAG changed at or after `since` (all pages, keyset-paged: an
    /// empty cursor asks for the first page; without one Airflow pages by offset and
    /// gives no cursor).
    pub async fn runs_changed_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<DagRun>, ClientError> {
        let mut runs = Vec::new();
        let mut cursor = String::new();
        loop {
            let mut url = self.url(&["dags", "~", "dagRuns"]);
            url.query_pairs_mut()
                .append_pair("updated_at_gte", &since.to_rfc3339())
                .append_pair("order_by", "id")
                .append_pair("limit", &PAGE.to_string())
                .append_pair("cursor", &cursor);
            let page: RunsPage = self.get(url).await?;
            runs.extend(page.dag_runs);
            match page.next_cursor {
                Some(next) if !next.is_empty() && next != cursor => cursor = next,
                _ => return Ok(runs),
            }
        }
    }

    /// One DAG run.
    pub async fn run(&self, dag_id: &str, dag_run_id: &str) -> Result<DagRun, ClientError> {
        self.get(self.url(&["dags", dag_id, "dagRuns", dag_run_id]))
            .await
    }

    /// Task instances of every run changed at or after `since` (all pages).
    pub async fn task_instances_changed_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<TaskInstance>, ClientError> {
        self.task_instances_pages(
            &["dags", "~", "dagRuns", "~", "taskInstances"],
            &[("updated_at_gte", since.to_rfc3339())],
        )
        .await
    }

    /// Every task instance of one run (mapped ones one per map index).
    pub async fn task_instances(
        &self,
        dag_id: &str,
        dag_run_id: &str,
    ) -> Result<Vec<TaskInstance>, ClientError> {
        self.task_instances_pages(
            &["dags", dag_id, "dagRuns", dag_run_id, "taskInstances"],
            &[],
        )
        .await
    }

    async fn task_instances_pages(
        &self,
        segments: &[&str],
        filter: &[(&str, String)],
    ) -> Result<Vec<TaskInstance>, ClientError> {
        let mut instances = Vec::new();
        loop {
            let mut url = self.url(segments);
            {
                let mut pairs = url.query_pairs_mut();
                pairs.extend_pairs(filter);
                pairs
                    .append_pair("order_by", "id")
                    .append_pair("limit", &PAGE.to_string())
                    .append_pair("offset", &instances.len().to_string());
            }
            let page: TaskInstancesPage = self.get(url).await?;
            let got = page.task_instances.len();
            instances.extend(page.task_instances);
            let total = page.total_entries.unwrap_or(0);
            if got == 0 || instances.len() >= total {
                return Ok(instances);
            }
        }
    }

    /// Every try of one task instance, oldest first.
    pub async fn tries(
        &self,
        dag_id: &str,
        dag_run_id: &str,
        task_id: &str,
        map_index: i64,
    ) -> Result<Vec<TaskInstance>, ClientError> {
        let map_index = map_index.to_string();
        let mut segments = vec![
            "dags",
            dag_id,
            "dagRuns",
            dag_run_id,
            "taskInstances",
            task_id,
        ];
        if map_index != "-1" {
            segments.push(&map_index);
        }
        segments.push("tries");
        let page: TaskInstancesPage = self.get(self.url(&segments)).await?;
        let mut tries = page.task_instances;
        tries.sort_by_key(|t| t.try_number);
        Ok(tries)
    }

    /// The tasks of a DAG (its structure).
    pub async fn tasks(&self, dag_id: &str) -> Result<Vec<Task>, ClientError> {
        let page: TasksPage = self.get(self.url(&["dags", dag_id, "tasks"])).await?;
        Ok(page.tasks)
    }

    /// How many deadline alerts a DAG has. Airflow 3.3's public API has no deadlines: its
    /// own UI's API (`/ui`, same token) is asked, and a refusal (another Airflow version)
    /// reads as none.
    pub async fn deadline_alerts(&self, dag_id: &str) -> Result<u64, ClientError> {
        let url = self.root_url(&["ui", "dags", dag_id, "deadlineAlerts"]);
        match self.get::<Value>(url).await {
            Ok(answer) => Ok(answer
                .get("total_entries")
                .and_then(Value::as_u64)
                .unwrap_or(0)),
            Err(ClientError::Refused { .. }) => Ok(0),
            Err(error) => Err(error),
        }
    }

    /// The earliest deadline of a DAG run (see [`Self::deadline_alerts`]), if it has one.
    pub async fn run_deadline(
        &self,
        dag_id: &str,
        dag_run_id: &str,
    ) -> Result<Option<DateTime<Utc>>, ClientError> {
        let mut url = self.root_url(&["ui", "dags", dag_id, "dagRuns", dag_run_id, "deadlines"]);
        url.query_pairs_mut()
            .append_pair("order_by", "deadline_time")
            .append_pair("limit", "1");
        match self.get::<DeadlinesPage>(url).await {
            Ok(page) => Ok(page.deadlines.first().map(|d| d.deadline_time)),
            Err(ClientError::Refused { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// A URL outside the API (`/auth/token`, `/ui/...`).
    fn root_url(&self, segments: &[&str]) -> Url {
        let mut url = self.root.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Every DAG with its tags.
    pub async fn dags(&self) -> Result<Vec<Dag>, ClientError> {
        let mut dags = Vec::new();
        loop {
            let mut url = self.url(&["dags"]);
            url.query_pairs_mut()
                .append_pair("limit", &PAGE.to_string())
                .append_pair("offset", &dags.len().to_string());
            let page: DagsPage = self.get(url).await?;
            let got = page.dags.len();
            dags.extend(page.dags);
            if got == 0 || dags.len() >= page.total_entries.unwrap_or(0) {
                return Ok(dags);
            }
        }
    }

    /// One page of a try's log from `token` (the start when none).
    pub async fn log(
        &self,
        instance: &TaskInstance,
        try_number: u32,
        token: Option<&str>,
    ) -> Result<LogPage, ClientError> {
        let try_number = try_number.to_string();
        let mut url = self.url(&[
            "dags",
            &instance.dag_id,
            "dagRuns",
            &instance.dag_run_id,
            "taskInstances",
            &instance.task_id,
            "logs",
            &try_number,
        ]);
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("map_index", &instance.map_index.to_string());
            if let Some(token) = token {
                pairs.append_pair("token", token);
            }
        }
        self.get(url).await
    }

    /// A task's return value (its XCom `return_value`), if it has one.
    pub async fn return_value(
        &self,
        instance: &TaskInstance,
    ) -> Result<Option<Value>, ClientError> {
        let mut url = self.url(&[
            "dags",
            &instance.dag_id,
            "dagRuns",
            &instance.dag_run_id,
            "taskInstances",
            &instance.task_id,
            "xcomEntries",
            "return_value",
        ]);
        url.query_pairs_mut()
            .append_pair("map_index", &instance.map_index.to_string())
            .append_pair("deserialize", "true");
        match self.get::<Value>(url).await {
            Ok(entry) => Ok(entry.get("value").cloned()),
            Err(ClientError::Refused { status: 404, .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Marks a run `failed`: Airflow stops its running tasks and skips the rest. Marking
    /// it twice is marking it once, so a slow or failing answer is tried again.
    pub async fn mark_run_failed(&self, dag_id: &str, dag_run_id: &str) -> Result<(), ClientError> {
        let url = self.url(&["dags", dag_id, "dagRuns", dag_run_id]);
        self.call_repeatable::<Value>(Method::PATCH, url, &json!({"state": "failed"}))
            .await
            .map(drop)
    }

    /// Clears tasks of a run (and everything downstream of them) so that they run again;
    /// their earlier tries stay in the history.
    pub async fn clear(
        &self,
        dag_id: &str,
        dag_run_id: &str,
        task_ids: &[String],
    ) -> Result<(), ClientError> {
        let url = self.url(&["dags", dag_id, "clearTaskInstances"]);
        let body = json!({
            "dry_run": false,
            "dag_run_id": dag_run_id,
            "task_ids": task_ids,
            "include_downstream": true,
            "only_failed": false,
            "reset_dag_runs": true,
        });
        self.call::<Value>(Method::POST, url, Some(&body))
            .await
            .map(drop)
    }

    /// Triggers a new run of `dag_id` with `conf`.
    pub async fn trigger(
        &self,
        dag_id: &str,
        dag_run_id: &str,
        conf: &Value,
        note: &str,
    ) -> Result<DagRun, ClientError> {
        let url = self.url(&["dags", dag_id, "dagRuns"]);
        let body = json!({
            "dag_run_id": dag_run_id,
            "logical_date": null,
            "conf": conf,
            "note": note,
        });
        self.call(Method::POST, url, Some(&body)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{http::StatusCode as Status, routing::patch, Json, Router};
    use std::sync::atomic::AtomicU32;

    /// A stand-in for Airflow's run endpoint (a real Airflow cannot be made to fail on
    /// cue): it answers the first `failures` calls with `failure`, then marks the run.
    async fn fake_airflow_failing_first(
        failures: u32,
        failure: Status,
    ) -> (String, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        let app = Router::new().route(
            "/api/v2/dags/{dag}/dagRuns/{run}",
            patch(move || {
                let counted = counted.clone();
                async move {
                    if counted.fetch_add(1, Ordering::SeqCst) < failures {
                        (
                            failure,
                            Json(json!({"detail": "the scheduler holds the run"})),
                        )
                    } else {
                        (Status::OK, Json(json!({"state": "failed"})))
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, calls)
    }

    fn client(url: &str) -> AirflowClient {
        AirflowClient::new(url, Credentials::Token("token".into())).unwrap()
    }

    #[tokio::test]
    async fn marking_a_run_failed_is_tried_again_while_airflow_answers_a_5xx() {
        let (url, calls) = fake_airflow_failing_first(2, Status::SERVICE_UNAVAILABLE).await;
        client(&url).mark_run_failed("etl", "run 1").await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_refusal_is_not_tried_again() {
        let (url, calls) = fake_airflow_failing_first(1, Status::CONFLICT).await;
        let refused = client(&url)
            .mark_run_failed("etl", "run 1")
            .await
            .unwrap_err();
        assert_eq!(refused.status(), Some(409), "{refused}");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
