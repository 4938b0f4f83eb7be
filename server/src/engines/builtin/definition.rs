//! Workflow definitions of the built-in engine: TOML files in a folder, one workflow type
//! per file, checked at load so a mistake is named (file, step, problem) before any run.
//!
//! ```toml
//! type = "data_sync"
//! name = "Data Sync"
//! version = "1.0.0"
//! sla_target = "3m"
//! priority = "NORMAL"          # of new runs, unless the start request says otherwise
//! max_concurrent = 4            # runs of this type at once; more wait as PENDING
//!
//! [[steps]]
//! name = "extract"
//! action = { kind = "simulate", duration = "1s..3s", failure_rate = 0.05, logs = ["Reading"] }
//! # simulate also takes: fail_attempts = 2 (the first two attempts fail, for tests),
//! # error = "Connection refused", stall_rate = 0.1 with stall = "1m..2m" (a slow run).
//! retry = { max_attempts = 3, initial_delay = "1s", max_delay = "10s" }
//! timeout = "30s"
//! compensation = { kind = "simulate", duration = "500ms" }
//!
//! [[steps]]
//! name = "load"
//! after = ["extract"]            # steps with the same predecessor run in parallel
//! action = { kind = "command", program = "sh", args = ["-c", "echo loaded"] }
//! ```

use app::model::{Priority, MAX_WORKFLOW_TYPE_LEN};
use backon::BackoffBuilder;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A definition file that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionError {
    pub file: PathBuf,
    pub step: Option<String>,
    pub problem: String,
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(step) = &self.step {
            write!(f, ": step {step:?}")?;
        }
        write!(f, ": {}", self.problem)
    }
}

impl std::error::Error for DefinitionError {}

/// A checked workflow definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    pub workflow_type: String,
    pub name: String,
    pub version: String,
    pub sla_target: Option<Duration>,
    pub priority: Priority,
    /// Most runs of this type at once (beyond it, new runs wait as PENDING).
    pub max_concurrent: Option<u32>,
    /// Steps in an order where every step comes after its dependencies; a step's
    /// number is its position + 1.
    pub steps: Vec<StepDefinition>,
    pub file: PathBuf,
}

/// One checked step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepDefinition {
    pub number: u32,
    pub name: String,
    /// Numbers of the steps that must complete first.
    pub after: Vec<u32>,
    pub action: Action,
    pub retry: RetryPolicy,
    pub timeout: Option<Duration>,
    pub compensation: Option<Action>,
    /// The parallel branch the step belongs to (`branch-a`, ...), if any.
    pub branch: Option<String>,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Calls a URL with the workflow's input; the response JSON is the output.
    Http {
        url: String,
        method: String,
        headers: BTreeMap<String, String>,
    },
    /// Runs a program; its output lines are the step's logs.
    Command { program: String, args: Vec<String> },
    /// Pretends to work, for demos and tests.
    Simulate(Simulation),
}

/// A simulated step: how long it takes, how it fails, what it logs.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulation {
    /// Shortest and longest duration; each attempt takes a random one in between.
    pub duration: (Duration, Duration),
    /// Chance that an attempt fails.
    pub failure_rate: f64,
    /// The first this many attempts fail whatever the rate (deterministic tests).
    pub fail_attempts: u32,
    /// The error a failed attempt reports.
    pub error: String,
    /// Chance that an attempt stalls, taking a duration from `stall` instead.
    pub stall_rate: f64,
    pub stall: (Duration, Duration),
    /// Lines logged, spread over the attempt's duration.
    pub logs: Vec<String>,
}

/// How often and how patiently a step is retried: exponential backoff from
/// `initial_delay`, times `multiplier` per attempt, capped at `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_delay: Duration,
    pub max_delay: Duration,
    pub multiplier: f32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 1,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            multiplier: 2.0,
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt` (2 for the first retry), or `None` when the
    /// policy allows no such attempt.
    pub fn delay_before(&self, attempt: u32) -> Option<Duration> {
        if attempt < 2 || attempt > self.max_attempts {
            return None;
        }
        backon::ExponentialBuilder::default()
            .with_min_delay(self.initial_delay)
            .with_max_delay(self.max_delay)
            .with_factor(self.multiplier)
            .with_max_times(self.max_attempts as usize)
            .build()
            .nth(attempt as usize - 2)
    }
}

impl RetryPolicy {
    /// The policy as the console shows it, with every wait spelled out.
    pub fn info(&self) -> app::model::RetryPolicyInfo {
        app::model::RetryPolicyInfo {
            max_attempts: self.max_attempts,
            delays_seconds: (2..=self.max_attempts)
                .filter_map(|attempt| self.delay_before(attempt))
                .map(|wait| wait.as_secs_f64())
                .collect(),
        }
    }
}

// The file format, before checks.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefinition {
    #[serde(rename = "type")]
    workflow_type: String,
    name: String,
    version: String,
    #[serde(default)]
    sla_target: Option<String>,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    max_concurrent: Option<u32>,
    steps: Vec<RawStep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: String,
    #[serde(default)]
    after: Vec<String>,
    action: RawAction,
    #[serde(default)]
    retry: Option<RawRetry>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    compensation: Option<RawAction>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum RawAction {
    Http {
        url: String,
        #[serde(default)]
        method: Option<String>,
        #[serde(default)]
        headers: BTreeMap<String, String>,
    },
    Command {
        program: String,
        #[serde(default)]
        args: Vec<String>,
    },
    Simulate {
        duration: String,
        #[serde(default)]
        failure_rate: f64,
        #[serde(default)]
        fail_attempts: u32,
        #[serde(default)]
        error: Option<String>,
        #[serde(default)]
        stall_rate: f64,
        #[serde(default)]
        stall: Option<String>,
        #[serde(default)]
        logs: Vec<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    max_attempts: u32,
    #[serde(default)]
    initial_delay: Option<String>,
    #[serde(default)]
    max_delay: Option<String>,
    #[serde(default)]
    multiplier: Option<f32>,
}

/// Most steps one definition may have.
pub const MAX_STEPS: usize = 10_000;
/// Most attempts a retry policy may allow.
pub const MAX_ATTEMPTS: u32 = 100;

/// Loads every `*.toml` definition in `dir`, in file-name order. Two files may not
/// define the same type.
pub fn load_dir(dir: &Path) -> Result<Vec<Definition>, DefinitionError> {
    let unreadable = |problem: String| DefinitionError {
        file: dir.to_owned(),
        step: None,
        problem,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| unreadable(format!("cannot read the folder: {e}")))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    let mut definitions: Vec<Definition> = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| DefinitionError {
            file: file.clone(),
            step: None,
            problem: format!("cannot read: {e}"),
        })?;
        let definition = parse(&file, &text)?;
        if let Some(other) = definitions
            .iter()
            .find(|d| d.workflow_type == definition.workflow_type)
        {
            return Err(DefinitionError {
                file,
                step: None,
                problem: format!(
                    "type {:?} is already defined by {}",
                    definition.workflow_type,
                    other.file.display()
                ),
            });
        }
        definitions.push(definition);
    }
    Ok(definitions)
}

/// Parses and checks one definition; `file` names it in errors.
pub fn parse(file: &Path, text: &str) -> Result<Definition, DefinitionError> {
    let fail = |step: Option<&str>, problem: String| DefinitionError {
        file: file.to_owned(),
        step: step.map(str::to_owned),
        problem,
    };
    let raw: RawDefinition = toml::from_str(text).map_err(|e| fail(None, e.to_string()))?;
    if raw.workflow_type.is_empty()
        || raw.workflow_type.len() > MAX_WORKFLOW_TYPE_LEN
        || !raw
            .workflow_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(fail(
            None,
            format!(
                "type {:?} must be 1 to {MAX_WORKFLOW_TYPE_LEN} characters of A-Z a-z 0-9 _ -",
                raw.workflow_type
            ),
        ));
    }
    let sla_target = raw
        .sla_target
        .as_deref()
        .map(|s| duration(s).map_err(|p| fail(None, format!("sla_target: {p}"))))
        .transpose()?;
    let priority = match raw.priority.as_deref() {
        None => Priority::Normal,
        Some(p) => Priority::parse(p)
            .ok_or_else(|| fail(None, format!("priority {p:?} is not HIGH, NORMAL or LOW")))?,
    };
    if raw.max_concurrent == Some(0) {
        return Err(fail(None, "max_concurrent must be at least 1".into()));
    }
    if raw.steps.is_empty() {
        return Err(fail(None, "a workflow needs at least one step".into()));
    }
    if raw.steps.len() > MAX_STEPS {
        return Err(fail(None, format!("at most {MAX_STEPS} steps")));
    }

    let mut index_of: HashMap<&str, usize> = HashMap::new();
    for (index, step) in raw.steps.iter().enumerate() {
        if step.name.trim().is_empty() || step.name.len() > 200 {
            return Err(fail(
                Some(&step.name),
                "a name must be 1 to 200 characters".into(),
            ));
        }
        if index_of.insert(step.name.as_str(), index).is_some() {
            return Err(fail(Some(&step.name), "the name is used twice".into()));
        }
    }
    let mut dependencies: Vec<Vec<usize>> = Vec::with_capacity(raw.steps.len());
    for step in &raw.steps {
        let mut deps = Vec::new();
        for name in &step.after {
            let dep = *index_of
                .get(name.as_str())
                .ok_or_else(|| fail(Some(&step.name), format!("unknown dependency {name:?}")))?;
            if !deps.contains(&dep) {
                deps.push(dep);
            }
        }
        dependencies.push(deps);
    }
    let order = topological_order(&dependencies).map_err(|cycle_at| {
        fail(
            Some(&raw.steps[cycle_at].name),
            "its dependencies form a cycle".into(),
        )
    })?;
    let mut number_of = vec![0u32; raw.steps.len()];
    for (position, &index) in order.iter().enumerate() {
        number_of[index] = position as u32 + 1;
    }
    let branches = branches(&dependencies, &order);

    let mut steps = Vec::with_capacity(raw.steps.len());
    for &index in &order {
        let step = &raw.steps[index];
        let at = |problem: String| fail(Some(&step.name), problem);
        let mut after: Vec<u32> = dependencies[index].iter().map(|&d| number_of[d]).collect();
        after.sort_unstable();
        steps.push(StepDefinition {
            number: number_of[index],
            name: step.name.clone(),
            after,
            action: action(&step.action).map_err(|p| at(format!("action: {p}")))?,
            retry: step
                .retry
                .as_ref()
                .map(retry_policy)
                .transpose()
                .map_err(|p| at(format!("retry: {p}")))?
                .unwrap_or_default(),
            timeout: step
                .timeout
                .as_deref()
                .map(duration)
                .transpose()
                .map_err(|p| at(format!("timeout: {p}")))?,
            compensation: step
                .compensation
                .as_ref()
                .map(action)
                .transpose()
                .map_err(|p| at(format!("compensation: {p}")))?,
            branch: branches[index].clone(),
        });
    }
    Ok(Definition {
        workflow_type: raw.workflow_type,
        name: raw.name,
        version: raw.version,
        sla_target,
        priority,
        max_concurrent: raw.max_concurrent,
        steps,
        file: file.to_owned(),
    })
}

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration like \"500ms\", \"30s\" or \"5m\" ({e})"))
}

/// `"2s"` (exactly) or `"1s..3s"` (anywhere between).
fn duration_range(range: &str) -> Result<(Duration, Duration), String> {
    let (low, high) = match range.split_once("..") {
        Some((low, high)) => (duration(low)?, duration(high)?),
        None => {
            let exact = duration(range)?;
            (exact, exact)
        }
    };
    if low > high {
        return Err(format!("duration {range:?} ends before it starts"));
    }
    Ok((low, high))
}

fn action(raw: &RawAction) -> Result<Action, String> {
    Ok(match raw {
        RawAction::Http {
            url,
            method,
            headers,
        } => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("url {url:?} must start with http:// or https://"));
            }
            let method = method.as_deref().unwrap_or("POST").to_ascii_uppercase();
            if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "PATCH" | "DELETE") {
                return Err(format!(
                    "method {method:?} is not GET, POST, PUT, PATCH or DELETE"
                ));
            }
            Action::Http {
                url: url.clone(),
                method,
                headers: headers.clone(),
            }
        }
        RawAction::Command { program, args } => {
            if program.trim().is_empty() {
                return Err("program must not be empty".into());
            }
            Action::Command {
                program: program.clone(),
                args: args.clone(),
            }
        }
        RawAction::Simulate {
            duration: range,
            failure_rate,
            fail_attempts,
            error,
            stall_rate,
            stall,
            logs,
        } => {
            for (name, rate) in [("failure_rate", failure_rate), ("stall_rate", stall_rate)] {
                if !(0.0..=1.0).contains(rate) {
                    return Err(format!("{name} {rate} must be between 0 and 1"));
                }
            }
            let stall = match stall {
                Some(stall) => duration_range(stall)?,
                None if *stall_rate > 0.0 => return Err("stall_rate needs a stall duration".into()),
                None => (Duration::ZERO, Duration::ZERO),
            };
            Action::Simulate(Simulation {
                duration: duration_range(range)?,
                failure_rate: *failure_rate,
                fail_attempts: *fail_attempts,
                error: error.clone().unwrap_or_else(|| "simulated failure".into()),
                stall_rate: *stall_rate,
                stall,
                logs: logs.clone(),
            })
        }
    })
}

fn retry_policy(raw: &RawRetry) -> Result<RetryPolicy, String> {
    let defaults = RetryPolicy::default();
    if !(1..=MAX_ATTEMPTS).contains(&raw.max_attempts) {
        return Err(format!("max_attempts must be between 1 and {MAX_ATTEMPTS}"));
    }
    let policy = RetryPolicy {
        max_attempts: raw.max_attempts,
        initial_delay: raw
            .initial_delay
            .as_deref()
            .map(duration)
            .transpose()?
            .unwrap_or(defaults.initial_delay),
        max_delay: raw
            .max_delay
            .as_deref()
            .map(duration)
            .transpose()?
            .unwrap_or(defaults.max_delay),
        multiplier: raw.multiplier.unwrap_or(defaults.multiplier),
    };
    if policy.max_delay < policy.initial_delay {
        return Err("max_delay is shorter than initial_delay".into());
    }
    if !(1.0..=10.0).contains(&policy.multiplier) {
        return Err(format!(
            "multiplier {} must be between 1 and 10",
            policy.multiplier
        ));
    }
    Ok(policy)
}

/// An order of the steps in which each comes after its dependencies, keeping file
/// order where the dependencies allow (Kahn's algorithm, lowest index first). On a
/// cycle, returns a step that is part of it or waits on it.
fn topological_order(dependencies: &[Vec<usize>]) -> Result<Vec<usize>, usize> {
    let count = dependencies.len();
    let mut waiting_on: Vec<usize> = dependencies.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (index, deps) in dependencies.iter().enumerate() {
        for &dep in deps {
            dependents[dep].push(index);
        }
    }
    let mut ready: std::collections::BTreeSet<usize> =
        (0..count).filter(|&i| waiting_on[i] == 0).collect();
    let mut order = Vec::with_capacity(count);
    while let Some(index) = ready.pop_first() {
        order.push(index);
        for &next in &dependents[index] {
            waiting_on[next] -= 1;
            if waiting_on[next] == 0 {
                ready.insert(next);
            }
        }
    }
    if order.len() == count {
        Ok(order)
    } else {
        Err((0..count).find(|&i| waiting_on[i] > 0).unwrap_or(0))
    }
}

/// Branch labels: every step that follows a fan-out (a step with several dependents, or
/// one of several first steps) starts a branch, and a step whose single predecessor
/// leads only to it continues that predecessor's branch; a fan-in ends branches.
fn branches(dependencies: &[Vec<usize>], order: &[usize]) -> Vec<Option<String>> {
    let count = dependencies.len();
    let mut dependents = vec![0usize; count];
    for deps in dependencies {
        for &dep in deps {
            dependents[dep] += 1;
        }
    }
    let roots = dependencies.iter().filter(|d| d.is_empty()).count();
    let mut labels: Vec<Option<String>> = vec![None; count];
    let mut next_label = 0usize;
    for &index in order {
        let starts_branch = match dependencies[index].as_slice() {
            [] => roots > 1,
            [dep] => dependents[*dep] > 1,
            _ => false,
        };
        labels[index] = if starts_branch {
            let label = branch_label(next_label);
            next_label += 1;
            Some(label)
        } else {
            match dependencies[index].as_slice() {
                [dep] if dependents[*dep] == 1 => labels[*dep].clone(),
                _ => None,
            }
        };
    }
    labels
}

/// `branch-a` … `branch-z`, then `branch-aa`, `branch-ab`, …
fn branch_label(n: usize) -> String {
    let mut letters = Vec::new();
    let mut n = n + 1;
    while n > 0 {
        n -= 1;
        letters.push(b'a' + (n % 26) as u8);
        n /= 26;
    }
    letters.reverse();
    format!("branch-{}", String::from_utf8_lossy(&letters))
}

#[cfg(test)]
mod tests;
