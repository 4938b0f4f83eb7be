//! Following one Airflow deployment, and taking operators' commands for its DAG runs.
//!
//! - Each poll asks Airflow only what changed since the last one: DAG runs and task
//!   instances with `updated_at` at or after it (two list calls, paged). A run seen for
//!   the first time costs one more call (its task instances) and its DAG's tasks once; a
//!   task instance that moved costs a call only when a try was missed between two polls
//!   (its tries), when a try ended (its log, for the error and the lines) and when a task
//!   succeeded (its return value). So the cost follows what changed, not what is stored.
//! - Airflow tells states, not events: each task instance is compared with what was
//!   reported of its step ([`super::mapping`]); the runs followed are kept in memory while
//!   they are open, and read back from the read model otherwise (after a restart, or when
//!   a clear reopens a finished run).
//! - The moment polled from is stored with the events: after a restart or an outage the
//!   first poll asks for everything that changed meanwhile, and nothing is lost.

use super::client::{AirflowClient, DagRun, TaskInstance};
use super::mapping::{self, Reported, ReportedStep, StepFact, StepKey, Structure, TaskShape};
use super::{engine_ref, parse_engine_ref, SourceConfig};
use crate::engines::health::{HealthBoard, Report};
use crate::engines::remote::ClientError;
use crate::retry::Backoff;
use crate::source::limits;
use crate::source::{
    Change, Command, CommandError, CommandOutcome, Engine, SharedRecall, SharedSink, SourceEvent,
    WorkflowStart,
};
use app::model::{Capabilities, EngineHealth, LiveMode, StepKind, StepStatus, WorkflowStatus};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How far before the last poll the next one looks: a change Airflow's database commits
/// a moment after stamping it, and the two clocks' disagreement.
const OVERLAP: chrono::TimeDelta = chrono::TimeDelta::seconds(5);
/// The position stored with the events: the moment the next poll after a restart asks from.
const POSITION: &str = "changed_since";
/// Waits while Airflow does not answer: from 500 ms, doubling, up to 10 s.
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(10);
/// How long the list of DAGs with a wanted tag is trusted.
const DAGS_KEPT_FOR: Duration = Duration::from_secs(60);

/// An Airflow deployment followed by polling; the engine of its DAG runs.
#[derive(Clone)]
pub struct AirflowSource {
    inner: Arc<Inner>,
}

struct Inner {
    config: SourceConfig,
    engine_id: String,
    client: AirflowClient,
    sink: SharedSink,
    recall: SharedRecall,
    health: HealthBoard,
    /// Runs Stepline cancelled, by id: who asked (why they failed).
    cancelled_by: Mutex<HashMap<String, String>>,
    /// Runs Stepline triggered (clones), by id: what they came from ("clone of <id>") and
    /// who asked.
    origins: Mutex<HashMap<String, (String, String)>>,
}

/// What the poller keeps between polls.
#[derive(Default)]
struct Following {
    /// What was reported of the open runs, by Stepline id.
    runs: HashMap<String, Reported>,
    /// DAGs' structures, by DAG id.
    structures: HashMap<String, Arc<Structure>>,
    /// Every DAG's tags, and when they were read.
    dags: Option<(Instant, HashMap<String, Vec<String>>)>,
    /// The running tries whose logs are read as they grow, by run id and step.
    live_logs: HashMap<(String, StepKey), LiveLog>,
}

/// A running try whose log is read on from where the last read ended.
struct LiveLog {
    instance: TaskInstance,
    try_number: u32,
    step_number: u32,
    /// Airflow's continuation token (signed by the api-server: a restart of Airflow makes
    /// it useless, and the log is read from the start, skipping what was pushed).
    token: Option<String>,
    /// Lines pushed so far.
    pushed: usize,
    /// The last error logged so far (a failure's may come before the try ends).
    error: Option<String>,
    read_at: Option<Instant>,
}

impl AirflowSource {
    /// Starts following `config`'s deployment from where it was left (or `import_since`
    /// ago the first time).
    pub fn start(
        config: SourceConfig,
        recall: SharedRecall,
        sink: SharedSink,
        health: HealthBoard,
    ) -> Result<Self, String> {
        let client = AirflowClient::new(&config.url, config.credentials.clone())?;
        let engine_id = config.engine_id();
        health.set(&engine_id, EngineHealth::connecting(&engine_id));
        let inner = Arc::new(Inner {
            engine_id,
            client,
            sink,
            recall,
            health,
            cancelled_by: Mutex::default(),
            origins: Mutex::default(),
            config,
        });
        tokio::spawn(inner.clone().follow());
        Ok(Self { inner })
    }

    /// The engine's id (`airflow:<source>`).
    pub fn engine_id(&self) -> &str {
        &self.inner.engine_id
    }

    /// How many calls Stepline has made to this Airflow.
    pub fn calls(&self) -> u64 {
        self.inner.client.calls()
    }
}

/// What Stepline can do with an Airflow run: cancel (marking it failed; Airflow has no
/// compensation), retry from the start or a task, clone. No pause: Airflow pauses whole
/// DAGs, not runs.
pub fn capabilities() -> Capabilities {
    Capabilities {
        can_pause: false,
        can_resume: false,
        can_cancel: true,
        compensates_on_cancel: false,
        can_retry_from_step: true,
        can_clone: true,
        can_terminate: false,
        has_logs: true,
        live: LiveMode::Poll,
    }
}

impl Inner {
    /// Polls for ever: from the stored position, every poll interval; while Airflow does
    /// not answer, the source is degraded and polls back off.
    async fn follow(self: Arc<Self>) {
        let mut following = Following::default();
        let mut since = self.resume_point().await;
        let mut backoff = Backoff::new(BACKOFF_FIRST, BACKOFF_CAP);
        loop {
            let began = Utc::now();
            match self.poll(&mut following, since, began - OVERLAP).await {
                Ok(()) => {
                    since = began - OVERLAP;
                    self.healthy();
                    backoff = Backoff::new(BACKOFF_FIRST, BACKOFF_CAP);
                    tokio::time::sleep(self.config.poll_interval).await;
                }
                Err(error) => {
                    // What was learnt in memory may not have been stored: read it again.
                    following.runs.clear();
                    self.degraded(&error);
                    backoff.wait().await;
                }
            }
        }
    }

    /// The moment to poll from: stored with the last events, else `import_since` ago.
    async fn resume_point(&self) -> DateTime<Utc> {
        let first =
            Utc::now() - chrono::TimeDelta::from_std(self.config.import_since).unwrap_or_default();
        loop {
            match self.recall.positions(&self.engine_id).await {
                Ok(positions) => {
                    return positions
                        .get(POSITION)
                        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
                        .map_or(first, |at| at.with_timezone(&Utc))
                }
                Err(error) => {
                    tracing::error!(engine = %self.engine_id, %error, "cannot read where Airflow was left; retrying");
                    tokio::time::sleep(BACKOFF_CAP).await;
                }
            }
        }
    }

    /// One poll: what changed since `since`, mapped and stored with `next` as the position.
    async fn poll(
        &self,
        following: &mut Following,
        since: DateTime<Utc>,
        next: DateTime<Utc>,
    ) -> Result<(), ClientError> {
        let runs = self.client.runs_changed_since(since).await?;
        let instances = self.client.task_instances_changed_since(since).await?;
        let seen: HashSet<&str> = runs
            .iter()
            .map(|r| r.dag_id.as_str())
            .chain(instances.iter().map(|i| i.dag_id.as_str()))
            .collect();
        let dags = self.dags(following, &seen).await?;
        let wanted = |dag_id: &str| {
            let tags = dags.get(dag_id).map(Vec::as_slice).unwrap_or_default();
            self.config.wants(dag_id, tags)
        };
        let mut changed: BTreeMap<(String, String), Vec<TaskInstance>> = BTreeMap::new();
        for instance in instances.into_iter().filter(|i| wanted(&i.dag_id)) {
            changed
                .entry((instance.dag_id.clone(), instance.dag_run_id.clone()))
                .or_default()
                .push(instance);
        }
        let mut listed: Vec<DagRun> = runs.into_iter().filter(|r| wanted(&r.dag_id)).collect();
        // Oldest first, so that runs are stored in the order they began.
        listed.sort_by_key(|r| r.queued_at.or(r.run_after));
        let mut events = Vec::new();
        let mut touched = Vec::new();
        for run in &listed {
            let key = (run.dag_id.clone(), run.dag_run_id.clone());
            let instances = changed.remove(&key).unwrap_or_default();
            touched.push(self.update(following, run, instances, &mut events).await?);
        }
        // Task instances of runs that did not change themselves.
        for ((dag_id, dag_run_id), instances) in changed {
            let run = self.client.run(&dag_id, &dag_run_id).await?;
            touched.push(self.update(following, &run, instances, &mut events).await?);
        }
        self.read_live_logs(following, &mut events).await;
        if events.is_empty() {
            return Ok(());
        }
        let committed = crate::engines::commit::commit(
            &self.sink,
            &self.engine_id,
            capabilities(),
            events,
            vec![(POSITION.to_owned(), next.to_rfc3339())],
        )
        .await;
        for id in touched {
            let ended = following
                .runs
                .get(&id)
                .is_some_and(|run| run.status.is_terminal());
            // Ended runs are read back from the read model if they ever reopen; a run
            // that lost an event is read back now, as the read model has it.
            if ended
                || committed.refused_runs.contains(&id)
                || committed.runs_missing_events.contains(&id)
            {
                following.runs.remove(&id);
            }
        }
        Ok(())
    }

    /// Every DAG's tags: known, or read again after a minute or when a DAG among `seen`
    /// is not known yet (a run of a new DAG is never left out for a stale list).
    async fn dags(
        &self,
        following: &mut Following,
        seen: &HashSet<&str>,
    ) -> Result<HashMap<String, Vec<String>>, ClientError> {
        if let Some((at, dags)) = &following.dags {
            if at.elapsed() < DAGS_KEPT_FOR && seen.iter().all(|dag| dags.contains_key(*dag)) {
                return Ok(dags.clone());
            }
        }
        let dags: HashMap<String, Vec<String>> = self
            .client
            .dags()
            .await?
            .into_iter()
            .map(|dag| {
                let tags = dag.tags.into_iter().map(|tag| tag.name).collect();
                (dag.dag_id, tags)
            })
            .collect();
        following.dags = Some((Instant::now(), dags.clone()));
        Ok(dags)
    }

    /// A DAG's structure: known, or read (again, when `fresh`: a task it did not have).
    async fn structure(
        &self,
        following: &mut Following,
        dag_id: &str,
        fresh: bool,
    ) -> Result<Arc<Structure>, ClientError> {
        if !fresh {
            if let Some(structure) = following.structures.get(dag_id) {
                return Ok(structure.clone());
            }
        }
        let tasks = self.client.tasks(dag_id).await?;
        let structure = Arc::new(Structure::from_tasks(&tasks, &self.config.compensation));
        following
            .structures
            .insert(dag_id.to_owned(), structure.clone());
        Ok(structure)
    }

    /// What was reported of run `id`: followed now, or read back (`None`: never seen).
    async fn reported(
        &self,
        following: &mut Following,
        id: &str,
    ) -> Result<Option<Reported>, ClientError> {
        if let Some(reported) = following.runs.remove(id) {
            return Ok(Some(reported));
        }
        let stored = self
            .recall
            .run(id)
            .await
            .map_err(|e| ClientError::Unreachable(format!("the read model: {e}")))?;
        Ok(stored.map(|run| Reported::from_snapshot(&run)))
    }

    /// Maps what changed of `run` (its state, and `changed` of its task instances) onto
    /// `events`; answers its id.
    async fn update(
        &self,
        following: &mut Following,
        run: &DagRun,
        changed: Vec<TaskInstance>,
        events: &mut Vec<SourceEvent>,
    ) -> Result<String, ClientError> {
        let id = self.config.workflow_id(&run.dag_id, &run.dag_run_id);
        let now = Utc::now();
        let status = mapping::run_status(run.state.as_deref());
        let mut structure = self.structure(following, &run.dag_id, false).await?;
        let event = |at: DateTime<Utc>, change: Change| SourceEvent {
            workflow_id: id.clone(),
            at,
            change,
        };
        let (mut reported, instances) = match self.reported(following, &id).await? {
            Some(reported) => {
                // A run ending is read whole once: nothing of its last moments is missed.
                let ending = status.is_terminal() && reported.status != status;
                let instances = if ending {
                    self.client
                        .task_instances(&run.dag_id, &run.dag_run_id)
                        .await?
                } else {
                    changed
                };
                (reported, instances)
            }
            None => {
                let instances = self
                    .client
                    .task_instances(&run.dag_id, &run.dag_run_id)
                    .await?;
                let tags = following
                    .dags
                    .as_ref()
                    .and_then(|(_, dags)| dags.get(&run.dag_id))
                    .cloned()
                    .unwrap_or_default();
                let start = self.start(run, &structure, &instances, &id, tags);
                let reported = Reported {
                    status: start.status.unwrap_or(WorkflowStatus::Running),
                    steps: start
                        .steps
                        .iter()
                        .map(|step| {
                            (
                                mapping::step_key(&step.name),
                                ReportedStep {
                                    number: step.step_number,
                                    status: StepStatus::Pending,
                                    attempts: 0,
                                    seen: None,
                                },
                            )
                        })
                        .collect(),
                };
                let created = run
                    .queued_at
                    .or(run.run_after)
                    .or(run.start_date)
                    .unwrap_or(now);
                events.push(event(created, Change::WorkflowStarted(start)));
                (reported, instances)
            }
        };
        if reported.status.is_terminal() && !status.is_terminal() {
            events.push(event(
                now,
                Change::WorkflowStatusChanged {
                    status,
                    reason: Some("cleared in Airflow: its tasks run again".into()),
                },
            ));
            reported.status = status;
        } else if reported.status == WorkflowStatus::Pending && status == WorkflowStatus::Running {
            events.push(event(
                run.start_date.unwrap_or(now),
                Change::WorkflowStatusChanged {
                    status,
                    reason: None,
                },
            ));
            reported.status = status;
        }
        let expanded: HashSet<String> = instances
            .iter()
            .filter(|i| i.map_index >= 0)
            .map(|i| i.task_id.clone())
            .chain(
                reported
                    .steps
                    .keys()
                    .filter(|(_, map_index)| *map_index >= 0)
                    .map(|(task_id, _)| task_id.clone()),
            )
            .collect();
        for instance in &instances {
            // A mapped task's instance before expansion stands for no step once expanded.
            if instance.map_index < 0 && expanded.contains(&instance.task_id) {
                continue;
            }
            let key: StepKey = (instance.task_id.clone(), instance.map_index);
            if !reported.steps.contains_key(&key) {
                if structure.task(&instance.task_id).is_none() {
                    structure = self.structure(following, &run.dag_id, true).await?;
                }
                let task = self.shape(&structure, instance);
                let declaration = new_step(&mut reported, &task, instance.map_index);
                events.push(event(now, Change::StepScheduled(declaration)));
            }
            let step = reported.steps.get_mut(&key).expect("declared above");
            let number = step.number;
            let tries = if mapping::needs_tries(step, instance) {
                self.client
                    .tries(
                        &instance.dag_id,
                        &instance.dag_run_id,
                        &instance.task_id,
                        instance.map_index,
                    )
                    .await?
            } else {
                vec![instance.clone()]
            };
            let facts = mapping::step_facts(step, instance, &tries, now);
            if facts.is_empty() {
                continue;
            }
            // Declared again only when Airflow cleared it (what it undoes included).
            let again = facts
                .iter()
                .any(|fact| matches!(fact, StepFact::Rescheduled))
                .then(|| {
                    let task = self.shape(&structure, instance);
                    mapping::declaration(&task, instance.map_index, number, |up| {
                        number_of(&reported, up)
                    })
                });
            let log_key = (id.clone(), key.clone());
            for fact in facts {
                let resume = match &fact {
                    StepFact::Started { attempt, .. } => {
                        if self.config.running_logs_every.is_some() {
                            following.live_logs.insert(
                                log_key.clone(),
                                LiveLog {
                                    instance: instance.clone(),
                                    try_number: *attempt,
                                    step_number: number,
                                    token: None,
                                    pushed: 0,
                                    error: None,
                                    read_at: None,
                                },
                            );
                        }
                        None
                    }
                    StepFact::AttemptFailed { attempt, .. } | StepFact::Failed { attempt, .. } => {
                        take_live_log(following, &log_key, *attempt)
                    }
                    StepFact::Completed { .. } => {
                        take_live_log(following, &log_key, instance.try_number.max(1))
                    }
                    StepFact::Cancelled { .. } => {
                        following.live_logs.remove(&log_key);
                        None
                    }
                    _ => None,
                };
                self.fact_events(
                    number,
                    again.as_ref(),
                    instance,
                    fact,
                    resume,
                    &mut |at, change| events.push(event(at, change)),
                )
                .await;
            }
        }
        if status.is_terminal() {
            // Whatever still ran ended with the run.
            following.live_logs.retain(|(run, _), _| *run != id);
        }
        if status.is_terminal() && reported.status != status {
            let reason = self.end_reason(&id, status, &reported);
            events.push(event(
                run.end_date.unwrap_or(now),
                Change::WorkflowStatusChanged { status, reason },
            ));
            reported.status = status;
        }
        following.runs.insert(id.clone(), reported);
        Ok(id)
    }

    /// The start of a run seen for the first time.
    fn start(
        &self,
        run: &DagRun,
        structure: &Structure,
        instances: &[TaskInstance],
        id: &str,
        mut tags: Vec<String>,
    ) -> WorkflowStart {
        // The DAG's tags, as many as a run keeps.
        tags.truncate(limits::TAGS);
        let steps = mapping::declarations(structure, instances);
        let origin = self.origins.lock().expect("not poisoned").remove(id);
        WorkflowStart {
            workflow_type: run.dag_id.clone(),
            engine_ref: Some(engine_ref(&run.dag_id, &run.dag_run_id)),
            status: Some(
                if mapping::run_status(run.state.as_deref()) == WorkflowStatus::Pending {
                    WorkflowStatus::Pending
                } else {
                    WorkflowStatus::Running
                },
            ),
            definition_name: Some(run.dag_id.clone()),
            definition_version: run
                .dag_versions
                .last()
                .and_then(|v| v.version_number)
                .map(|v| v.to_string()),
            total_steps: Some(steps.iter().filter(|s| s.kind == StepKind::Normal).count() as u32),
            sla_target_seconds: self
                .config
                .sla
                .get(&run.dag_id)
                .map(|sla| sla.as_secs() as i64),
            trigger_type: Some(
                origin
                    .as_ref()
                    .map_or_else(|| mapping::trigger_type(run), |(what, _)| what.clone()),
            ),
            triggered_by: origin
                .map(|(_, who)| who)
                .or_else(|| mapping::triggered_by(run)),
            priority: None,
            tags,
            input: run.conf.clone().filter(|conf| !conf.is_null()),
            steps,
        }
    }

    /// The shape of the task `instance` belongs to (a task the DAG no longer has is
    /// shown as it comes).
    fn shape(&self, structure: &Structure, instance: &TaskInstance) -> TaskShape {
        structure
            .task(&instance.task_id)
            .cloned()
            .unwrap_or_else(|| TaskShape {
                task_id: instance.task_id.clone(),
                upstream: Vec::new(),
                branch: None,
                compensation: self
                    .config
                    .compensation
                    .is_compensation(&instance.task_id, None),
                mapped: instance.map_index >= 0,
                retry_policy: None,
            })
    }

    /// The events of one fact about step `number` (`again`: its declaration, when the
    /// fact is that Airflow cleared it), with what Airflow tells only on asking: a try's
    /// log (its lines, and the error of a failed try) and a task's return value.
    async fn fact_events(
        &self,
        number: u32,
        again: Option<&crate::source::StepDeclaration>,
        instance: &TaskInstance,
        fact: StepFact,
        resume: Option<LiveLog>,
        push: &mut impl FnMut(DateTime<Utc>, Change),
    ) {
        match fact {
            StepFact::Rescheduled => {
                if let Some(declaration) = again {
                    push(Utc::now(), Change::StepScheduled(declaration.clone()));
                }
            }
            StepFact::Started { attempt, at } => push(at, Change::attempt_started(number, attempt)),
            StepFact::AttemptFailed { attempt, at, why } => {
                let error = match why {
                    Some(why) => why,
                    None => {
                        self.try_log(instance, attempt, number, at, resume, push)
                            .await
                    }
                };
                push(
                    at,
                    Change::StepAttemptFailed {
                        step_number: number,
                        error,
                    },
                );
            }
            StepFact::Failed { attempt, at } => {
                let error = self
                    .try_log(instance, attempt, number, at, resume, push)
                    .await;
                push(
                    at,
                    Change::StepFailed {
                        step_number: number,
                        error,
                    },
                );
            }
            StepFact::Completed { at } => {
                self.try_log(
                    instance,
                    instance.try_number.max(1),
                    number,
                    at,
                    resume,
                    push,
                )
                .await;
                let output = match self.client.return_value(instance).await {
                    Ok(output) => output,
                    Err(error) => {
                        tracing::warn!(engine = %self.engine_id, task = %instance.task_id, %error,
                            "cannot read a task's return value");
                        None
                    }
                };
                push(
                    at,
                    Change::StepCompleted {
                        step_number: number,
                        output,
                    },
                );
            }
            StepFact::Skipped { at } => push(
                at,
                Change::StepSkipped {
                    step_number: number,
                },
            ),
            StepFact::Cancelled { at, reason } => push(
                at,
                Change::StepCancelled {
                    step_number: number,
                    reason,
                },
            ),
            StepFact::Waiting { at, why } => push(
                at,
                Change::LogLines {
                    step_number: number,
                    lines: vec![why],
                },
            ),
        }
    }

    /// Reads try `attempt`'s log (on from where `resume` left it, when it was read while
    /// it ran), pushes its lines, and answers its error (for a failed try; a log that
    /// cannot be read is said so, and following goes on).
    async fn try_log(
        &self,
        instance: &TaskInstance,
        attempt: u32,
        number: u32,
        at: DateTime<Utc>,
        resume: Option<LiveLog>,
        push: &mut impl FnMut(DateTime<Utc>, Change),
    ) -> String {
        let (token, pushed, earlier_error) = match resume {
            Some(live) => (live.token, live.pushed, live.error),
            None => (None, 0, None),
        };
        let read = match self.read_log(instance, attempt, token.clone()).await {
            Ok((events, _)) if token.is_some() => Ok((events, 0)),
            // From the start: no token yet, or the token was refused (Airflow restarted).
            _ if token.is_some() => self
                .read_log(instance, attempt, None)
                .await
                .map(|(events, _)| (events, pushed)),
            other => other.map(|(events, _)| (events, pushed)),
        };
        let (events, skip) = match read {
            Ok(read) => read,
            Err(error) => {
                return format!("try {attempt} failed (its log could not be read: {error})")
            }
        };
        let lines = mapping::log_lines(&events);
        for chunk in lines
            .get(skip..)
            .unwrap_or_default()
            .chunks(limits::LOG_LINES_PER_EVENT)
        {
            push(
                at,
                Change::LogLines {
                    step_number: number,
                    lines: chunk.to_vec(),
                },
            );
        }
        mapping::error_from_log(&events)
            .or(earlier_error)
            .unwrap_or_else(|| format!("try {attempt} failed (Airflow recorded no error)"))
    }

    /// A try's log from `token` (the start when none), a few pages at the most (enough
    /// for what a step keeps: its newest lines), and the token to read on from.
    async fn read_log(
        &self,
        instance: &TaskInstance,
        attempt: u32,
        mut token: Option<String>,
    ) -> Result<(Vec<serde_json::Value>, Option<String>), ClientError> {
        let mut events = Vec::new();
        for _ in 0..8 {
            let page = self.client.log(instance, attempt, token.as_deref()).await?;
            let more = !page.content.is_empty();
            events.extend(page.content);
            match page.continuation_token {
                Some(next) if more && token.as_deref() != Some(next.as_str()) => token = Some(next),
                Some(next) => return Ok((events, Some(next))),
                None => return Ok((events, token)),
            }
        }
        Ok((events, token))
    }

    /// Reads on the logs of running tries due for it (every `running_logs_every`), their
    /// new lines onto `events`.
    async fn read_live_logs(&self, following: &mut Following, events: &mut Vec<SourceEvent>) {
        let Some(every) = self.config.running_logs_every else {
            return;
        };
        let now = Utc::now();
        for ((id, _), live) in following.live_logs.iter_mut() {
            if live.read_at.is_some_and(|at| at.elapsed() < every) {
                continue;
            }
            live.read_at = Some(Instant::now());
            let read = self
                .read_log(&live.instance, live.try_number, live.token.clone())
                .await;
            let (page, token) = match read {
                Ok(read) => read,
                Err(error) => {
                    tracing::debug!(engine = %self.engine_id, run = %id, %error, "a running try's log could not be read; trying again later");
                    continue;
                }
            };
            let lines = mapping::log_lines(&page);
            live.error = mapping::error_from_log(&page).or(live.error.take());
            live.token = token.or(live.token.take());
            live.pushed += lines.len();
            for chunk in lines.chunks(limits::LOG_LINES_PER_EVENT) {
                events.push(SourceEvent {
                    workflow_id: id.clone(),
                    at: now,
                    change: Change::LogLines {
                        step_number: live.step_number,
                        lines: chunk.to_vec(),
                    },
                });
            }
        }
    }

    /// Why a run ended as it did.
    fn end_reason(&self, id: &str, status: WorkflowStatus, reported: &Reported) -> Option<String> {
        if status != WorkflowStatus::Failed {
            return None;
        }
        if let Some(who) = self.cancelled_by.lock().expect("not poisoned").remove(id) {
            return Some(format!(
                "cancelled from Stepline by {who}: Airflow marked the run failed, stopped its running tasks and skipped the rest; nothing was rolled back"
            ));
        }
        let mut failed: Vec<(&u32, &str)> = reported
            .steps
            .iter()
            .filter(|(_, step)| step.status == StepStatus::Failed)
            .map(|(key, step)| (&step.number, key.0.as_str()))
            .collect();
        failed.sort();
        failed
            .first()
            .map(|(_, task)| format!("task {task} failed"))
    }

    fn degraded(&self, error: &ClientError) {
        if self.health.set(
            &self.engine_id,
            EngineHealth::degraded(&self.engine_id, &error.to_string()),
        ) {
            tracing::warn!(engine = %self.engine_id, %error, "Airflow source degraded");
        }
    }

    fn healthy(&self) {
        if self
            .health
            .set(&self.engine_id, EngineHealth::ok(&self.engine_id))
        {
            tracing::info!(engine = %self.engine_id, "Airflow source connected");
        }
    }

    /// The Airflow ids of Stepline's run `id`, and the run as stored.
    async fn airflow_run(
        &self,
        id: &str,
    ) -> Result<(String, String, crate::source::RunSnapshot), CommandError> {
        let run = self
            .recall
            .run(id)
            .await
            .map_err(|e| CommandError::Unavailable(e.to_string()))?
            .filter(|run| run.engine == self.engine_id)
            .ok_or_else(|| CommandError::UnknownWorkflow(id.to_owned()))?;
        let (dag_id, dag_run_id) = run
            .engine_ref
            .as_deref()
            .and_then(parse_engine_ref)
            .ok_or_else(|| CommandError::UnknownWorkflow(id.to_owned()))?;
        Ok((dag_id, dag_run_id, run))
    }
}

/// Declares a step new to the run (a map index, or a task of a newer DAG version): a
/// mapped task's placeholder step is taken over by its first map index, anything else
/// gets the next number.
fn new_step(
    reported: &mut Reported,
    task: &TaskShape,
    map_index: i64,
) -> crate::source::StepDeclaration {
    let placeholder = (task.task_id.clone(), -1);
    let unused_placeholder = map_index >= 0
        && reported
            .steps
            .get(&placeholder)
            .is_some_and(|step| step.status == StepStatus::Pending && step.attempts == 0);
    let number = if unused_placeholder {
        reported
            .steps
            .remove(&placeholder)
            .map(|step| step.number)
            .unwrap_or_else(|| reported.next_number())
    } else {
        reported.next_number()
    };
    let declaration = mapping::declaration(task, map_index, number, |up| number_of(reported, up));
    reported.steps.insert(
        (task.task_id.clone(), map_index),
        ReportedStep {
            number,
            status: StepStatus::Pending,
            attempts: 0,
            seen: None,
        },
    );
    declaration
}

/// The live log of `key`'s try `attempt`, taken out (the try has ended).
fn take_live_log(
    following: &mut Following,
    key: &(String, StepKey),
    attempt: u32,
) -> Option<LiveLog> {
    following
        .live_logs
        .remove(key)
        .filter(|live| live.try_number == attempt)
}

/// The step of a task of the run (its first map index, for a mapped one).
fn number_of(reported: &Reported, task_id: &str) -> Option<u32> {
    reported
        .steps
        .iter()
        .filter(|((task, _), _)| task == task_id)
        .map(|(_, step)| step.number)
        .min()
}

fn unavailable(error: ClientError) -> CommandError {
    match error {
        ClientError::Refused { status, message } if status == 409 || status == 400 => {
            CommandError::Refused(format!("Airflow refused: {message}"))
        }
        ClientError::Refused {
            status: 404,
            message,
        } => CommandError::Refused(format!("Airflow no longer has this run: {message}")),
        other => CommandError::Unavailable(format!("Airflow cannot be reached: {other}")),
    }
}

#[async_trait]
impl Engine for AirflowSource {
    fn id(&self) -> &str {
        &self.inner.engine_id
    }

    async fn command(
        &self,
        workflow_id: &str,
        command: Command,
        requested_by: &str,
    ) -> Result<CommandOutcome, CommandError> {
        let inner = &self.inner;
        let (dag_id, dag_run_id, run) = inner.airflow_run(workflow_id).await?;
        match command {
            Command::Cancel { .. } => {
                if run.status.is_terminal() {
                    return Err(CommandError::Refused(format!(
                        "the run is {} already",
                        run.status
                    )));
                }
                inner
                    .cancelled_by
                    .lock()
                    .expect("not poisoned")
                    .insert(workflow_id.to_owned(), requested_by.to_owned());
                if let Err(error) = inner.client.mark_run_failed(&dag_id, &dag_run_id).await {
                    inner
                        .cancelled_by
                        .lock()
                        .expect("not poisoned")
                        .remove(workflow_id);
                    return Err(unavailable(error));
                }
                Ok(CommandOutcome {
                    workflow_id: workflow_id.to_owned(),
                    new_status: WorkflowStatus::Failed,
                    message: "Airflow marked the run failed: its running tasks are stopped and the rest skipped. Nothing is rolled back (Airflow has no compensation).".into(),
                })
            }
            Command::Retry { from_step } => {
                let tasks: Vec<String> = match from_step {
                    None => run
                        .steps
                        .iter()
                        .map(|s| mapping::step_key(&s.name).0)
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect(),
                    Some(number) => {
                        let step = run
                            .steps
                            .iter()
                            .find(|s| s.step_number == number)
                            .ok_or_else(|| {
                                CommandError::Refused(format!("the run has no step {number}"))
                            })?;
                        vec![mapping::step_key(&step.name).0]
                    }
                };
                if !run.status.is_terminal() && from_step.is_none() {
                    return Err(CommandError::Refused(
                        "the run is still going: cancel it first, or retry from a failed task"
                            .into(),
                    ));
                }
                inner
                    .client
                    .clear(&dag_id, &dag_run_id, &tasks)
                    .await
                    .map_err(unavailable)?;
                let what = match from_step {
                    None => "every task".to_owned(),
                    Some(number) => format!("step {number} ({}) and everything after it", tasks[0]),
                };
                Ok(CommandOutcome {
                    workflow_id: workflow_id.to_owned(),
                    new_status: WorkflowStatus::Running,
                    message: format!(
                        "Airflow cleared {what}: they run again in the same DAG run, their earlier tries kept."
                    ),
                })
            }
            Command::Clone { triggered_by } => {
                let new_run_id = format!(
                    "stepline__{}",
                    Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
                );
                let new_id = inner.config.workflow_id(&dag_id, &new_run_id);
                let origin = format!("clone of {workflow_id}");
                let who = triggered_by.unwrap_or_else(|| requested_by.to_owned());
                let note = format!("{origin}, asked by {who} in Stepline");
                inner
                    .origins
                    .lock()
                    .expect("not poisoned")
                    .insert(new_id.clone(), (origin, who));
                let conf = run.input.clone().unwrap_or_else(|| serde_json::json!({}));
                inner
                    .client
                    .trigger(&dag_id, &new_run_id, &conf, &note)
                    .await
                    .map_err(|error| {
                        inner.origins.lock().expect("not poisoned").remove(&new_id);
                        unavailable(error)
                    })?;
                Ok(CommandOutcome {
                    workflow_id: new_id,
                    new_status: WorkflowStatus::Pending,
                    message: format!("Airflow triggered DAG {dag_id} again with the same conf."),
                })
            }
            Command::Pause | Command::Resume => Err(CommandError::Refused(
                "Airflow cannot pause one run: it pauses whole DAGs (no new task of any of their runs is scheduled), which is a different switch".into(),
            )),
            Command::Terminate { .. } => Err(CommandError::Refused(
                "Airflow has no terminate apart from cancel: cancel marks the run failed".into(),
            )),
        }
    }
}
