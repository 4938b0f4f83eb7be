//! The work of one attempt of a step: call a URL, run a program, or simulate. Log lines
//! stream back to the engine as they appear; the result is the step's output or error.
//! Dropping the future stops the work (a program is killed), which is how cancel and
//! timeouts take effect.

use super::definition::{Action, Simulation};
use super::run::Launch;
use crate::source::limits;
use crate::source::limits::cut;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// Most log lines kept from one attempt; the rest are counted, not stored.
const MAX_LOG_LINES: usize = 10_000;
/// Largest HTTP response body read as a step's output.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// How much of a failed response's body an error quotes.
const ERROR_BODY_BYTES: usize = 500;

/// Where an attempt's log lines go.
#[derive(Clone)]
pub struct LogSink {
    lines: mpsc::UnboundedSender<String>,
}

impl LogSink {
    pub fn new(lines: mpsc::UnboundedSender<String>) -> Self {
        Self { lines }
    }

    fn send(&self, line: &str) {
        // The engine stops listening only when the attempt is over.
        // Cut here already: a program's endless line must not sit in memory whole.
        let _ = self.lines.send(cut(line, limits::LOG_LINE).into_owned());
    }
}

/// How long an `http` step without a timeout of its own waits for its answer.
const HTTP_STEP_DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Runs one attempt to its end (or its timeout).
pub async fn perform(
    launch: &Launch,
    http: &reqwest::Client,
    logs: &LogSink,
) -> Result<Option<Value>, String> {
    let work = async {
        match &launch.action {
            Action::Simulate(simulation) => simulate(simulation, launch.attempt, logs).await,
            Action::Command { program, args } => command(launch, program, args, logs).await,
            Action::Http {
                url,
                method,
                headers,
            } => call(launch, http, url, method, headers).await,
        }
    };
    match launch.timeout {
        Some(limit) => tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
            Err(format!(
                "timed out after {}",
                humantime::format_duration(limit)
            ))
        }),
        None => work.await,
    }
}

fn pick(range: (Duration, Duration)) -> Duration {
    let (low, high) = (range.0.as_millis() as u64, range.1.as_millis() as u64);
    Duration::from_millis(fastrand::u64(low..=high))
}

async fn simulate(
    simulation: &Simulation,
    attempt: u32,
    logs: &LogSink,
) -> Result<Option<Value>, String> {
    let stalls = simulation.stall_rate > 0.0 && fastrand::f64() < simulation.stall_rate;
    let duration = pick(if stalls {
        simulation.stall
    } else {
        simulation.duration
    });
    let fails = attempt <= simulation.fail_attempts
        || (simulation.failure_rate > 0.0 && fastrand::f64() < simulation.failure_rate);
    // The log lines are spread over the attempt, so a running step shows a live tail.
    let mut lines: Vec<&str> = simulation.logs.iter().map(String::as_str).collect();
    if stalls {
        lines.insert(0, "Waiting for an external dependency...");
    }
    let pause = duration / (lines.len() as u32 + 1);
    for line in lines {
        tokio::time::sleep(pause).await;
        logs.send(line);
    }
    tokio::time::sleep(pause).await;
    if fails {
        logs.send(&format!("Error: {}", simulation.error));
        Err(simulation.error.clone())
    } else {
        Ok(Some(json!({ "duration_ms": duration.as_millis() as u64 })))
    }
}

/// Largest input also passed in `STEPLINE_INPUT`: Linux refuses a larger environment
/// string (128 KiB) and the program would not start at all.
const MAX_INPUT_IN_ENV: usize = 64 * 1024;

/// Runs a program with the workflow's input as JSON on its stdin (and in
/// `STEPLINE_INPUT` when it is at most 64 KiB). Each output line is a log line; a last
/// stdout line that is a JSON object becomes the output.
async fn command(
    launch: &Launch,
    program: &str,
    args: &[String],
    logs: &LogSink,
) -> Result<Option<Value>, String> {
    let input = launch.input.to_string();
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env("STEPLINE_WORKFLOW_ID", &launch.workflow_id)
        .env("STEPLINE_STEP", &launch.step_name)
        .env("STEPLINE_ATTEMPT", launch.attempt.to_string());
    if input.len() <= MAX_INPUT_IN_ENV {
        command.env("STEPLINE_INPUT", &input);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Cancel and timeouts drop this future: the program must not outlive it.
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {program:?}: {e}"))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // Written alongside reading the output: a program that prints before it reads its
    // input must not block on a full pipe. A program that never reads is fine too.
    let feed = async move {
        use tokio::io::AsyncWriteExt;
        let _ = stdin.write_all(input.as_bytes()).await;
        let _ = stdin.write_all(b"\n").await;
    };
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (mut out_lines, mut err_lines) = (
        BufReader::new(stdout).lines(),
        BufReader::new(stderr).lines(),
    );
    let (mut kept, mut dropped) = (0usize, 0usize);
    let mut last_stdout: Option<String> = None;
    let (mut out_open, mut err_open) = (true, true);
    tokio::pin!(feed);
    let mut fed = false;
    while out_open || err_open {
        let line = tokio::select! {
            () = &mut feed, if !fed => { fed = true; None }
            line = out_lines.next_line(), if out_open => match line {
                Ok(Some(line)) => { last_stdout = Some(line.clone()); Some(line) }
                _ => { out_open = false; None }
            },
            line = err_lines.next_line(), if err_open => match line {
                Ok(Some(line)) => Some(line),
                _ => { err_open = false; None }
            },
        };
        if let Some(line) = line {
            if kept < MAX_LOG_LINES {
                kept += 1;
                logs.send(&line);
            } else {
                dropped += 1;
            }
        }
    }
    if dropped > 0 {
        logs.send(&format!("... {dropped} more lines not kept"));
    }
    let status = child
        .wait()
        .await
        .map_err(|e| format!("waiting for {program:?}: {e}"))?;
    if !status.success() {
        return Err(match status.code() {
            Some(code) => format!("{program} exited with code {code}"),
            None => format!("{program} was killed by a signal"),
        });
    }
    let output = last_stdout
        .and_then(|line| serde_json::from_str::<Value>(&line).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({ "exit_code": 0 }));
    Ok(Some(output))
}

/// Calls a URL with `{workflow_id, step, attempt, input}`; a 2xx response's JSON body is
/// the output, anything else fails the attempt.
async fn call(
    launch: &Launch,
    http: &reqwest::Client,
    url: &str,
    method: &str,
    headers: &std::collections::BTreeMap<String, String>,
) -> Result<Option<Value>, String> {
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|e| format!("method {method:?}: {e}"))?;
    let mut request = http.request(method.clone(), url);
    if launch.timeout.is_none() {
        // A step without its own timeout still never waits forever on a silent server.
        request = request.timeout(HTTP_STEP_DEFAULT_TIMEOUT);
    }
    for (name, value) in headers {
        request = request.header(name, value);
    }
    if method != reqwest::Method::GET {
        request = request.json(&json!({
            "workflow_id": launch.workflow_id,
            "step": launch.step_name,
            "attempt": launch.attempt,
            "input": launch.input,
        }));
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| format!("{url}: {}", without_url(&e)))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("{url}: reading the response: {}", without_url(&e)))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(format!(
                "{url}: the response is larger than {MAX_RESPONSE_BYTES} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        let excerpt: String = text.chars().take(ERROR_BODY_BYTES).collect();
        return Err(format!("HTTP {status} from {url}: {excerpt}"));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| format!("{url} answered {status} with a body that is not JSON: {e}"))
}

/// reqwest's message without the URL it already names (we name it once).
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(&format!(" ({url})"), "");
    }
    text
}
