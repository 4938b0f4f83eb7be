//! The real Temporal that the Temporal tests and benchmark run against (a dev server and
//! the fixture worker, started by `scripts/temporal.sh start DIR`; `. DIR/env` gives its
//! address): starts fixture workflows and reads what Temporal says about them.
// The tests and the benchmark each use a part.
#![allow(dead_code)]

use serde_json::{json, Value};

pub struct Temporal {
    pub http: String,
    pub task_queue: String,
    client: reqwest::Client,
}

impl Temporal {
    pub fn from_env() -> Self {
        server::engines::install_tls_provider();
        let http = std::env::var("STEPLINE_TEMPORAL_HTTP").expect(
            "STEPLINE_TEMPORAL_HTTP is not set: start a server with `scripts/temporal.sh start DIR` and `. DIR/env`",
        );
        Self {
            http,
            task_queue: std::env::var("STEPLINE_TEMPORAL_TASK_QUEUE")
                .unwrap_or_else(|_| "stepline-fixtures".into()),
            client: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1/namespaces/default/{path}", self.http)
    }

    async fn get(&self, path: &str) -> Value {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("Temporal answers")
            .json()
            .await
            .expect("JSON")
    }

    /// Starts a fixture workflow; answers its run id.
    pub async fn start(&self, workflow_type: &str, workflow_id: &str, input: Value) -> String {
        self.start_with(workflow_type, workflow_id, input, json!({}))
            .await
    }

    /// Starts a fixture workflow with more start options (e.g. a
    /// `workflowExecutionTimeout`); answers its run id.
    pub async fn start_with(
        &self,
        workflow_type: &str,
        workflow_id: &str,
        input: Value,
        options: Value,
    ) -> String {
        let mut body = json!({
            "workflowType": {"name": workflow_type},
            "taskQueue": {"name": self.task_queue},
            "input": [input],
        });
        if let (Some(body), Some(options)) = (body.as_object_mut(), options.as_object()) {
            body.extend(options.clone());
        }
        let response = self
            .client
            .post(self.url(&format!("workflows/{workflow_id}")))
            .json(&body)
            .send()
            .await
            .expect("Temporal answers");
        let status = response.status();
        let body: Value = response.json().await.expect("JSON");
        assert!(
            status.is_success(),
            "start {workflow_type}: {status} {body}"
        );
        body["runId"].as_str().expect("a run id").to_owned()
    }

    /// Starts a fixture workflow through the `temporal` CLI (gRPC), which takes workflow
    /// ids the HTTP API cannot address (a `/`); answers its run id.
    pub async fn start_by_cli(
        &self,
        workflow_type: &str,
        workflow_id: &str,
        input: Value,
    ) -> String {
        let env = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: start a server with `scripts/temporal.sh start DIR` and `. DIR/env`")
            })
        };
        let output = tokio::process::Command::new(env("STEPLINE_TEMPORAL_CLI"))
            .args(["workflow", "start", "--output", "json", "--address"])
            .arg(env("STEPLINE_TEMPORAL_GRPC"))
            .args(["--task-queue", &self.task_queue, "--type", workflow_type])
            .args(["--workflow-id", workflow_id, "--input", &input.to_string()])
            .output()
            .await
            .expect("the temporal CLI runs");
        assert!(
            output.status.success(),
            "start {workflow_type} {workflow_id}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let started: Value = serde_json::from_slice(&output.stdout).expect("JSON");
        started["runId"].as_str().expect("a run id").to_owned()
    }

    /// Terminates the workflow in Temporal itself (as an operator would in its own UI).
    pub async fn terminate(&self, workflow_id: &str, reason: &str) {
        let response = self
            .client
            .post(self.url(&format!("workflows/{workflow_id}/terminate")))
            .json(&json!({"reason": reason}))
            .send()
            .await
            .expect("Temporal answers");
        assert!(
            response.status().is_success(),
            "terminate {workflow_id}: {}",
            response.status()
        );
    }

    /// The workflow's status as Temporal has it (`WORKFLOW_EXECUTION_STATUS_...`).
    pub async fn status(&self, workflow_id: &str) -> String {
        let body = self.get(&format!("workflows/{workflow_id}")).await;
        body.pointer("/workflowExecutionInfo/status")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned()
    }

    /// The workflow's stored history events, oldest first.
    pub async fn history(&self, workflow_id: &str) -> Vec<Value> {
        let history = self.get(&format!("workflows/{workflow_id}/history")).await;
        history["history"]["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// When each activity of the workflow completed (its event time, epoch ms), in order.
    pub async fn completions(&self, workflow_id: &str) -> Vec<i64> {
        self.history(workflow_id)
            .await
            .into_iter()
            .filter(|e| e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_COMPLETED")
            .filter_map(|e| {
                e["eventTime"]
                    .as_str()?
                    .parse::<chrono::DateTime<chrono::Utc>>()
                    .ok()
            })
            .map(|t| t.timestamp_millis())
            .collect()
    }
}
