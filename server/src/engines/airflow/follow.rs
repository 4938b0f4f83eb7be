//! Following one Airflow deployment, and taking operators' commands for its DAG runs.
//!
//! - Each poll asks Airflow only what changed since the last one: task instances with
//!   `updated_at` at or after it (a list call, paged), and DAG runs the same way when one
//!   may have changed without its task instances: a followed run whose tasks have all
//!   ended (its own end is due), and at least every [`RUNS_LISTED_EVERY`] (a run queued
//!   behind others, a run an operator marked). A run seen for
//!   the first time costs one more call (its task instances; and its deadline, for a DAG
//!   with deadline alerts) and its DAG's tasks and deadline alerts once; a
//!   task instance that moved costs a call only when a try was missed between two polls
//!   (its tries) and when a try failed (its log, for the error and the lines). A run whose
//!   task instances moved is not asked for again while it runs (it would be listed had it
//!   changed). So the cost follows what changed, not what is stored.
//! - A successful try's log and return value are read apart, at `reads_per_second`: the
//!   completion is stored at once, its output and lines when read (the same poll when few
//!   tries end). The tries still to read are stored with the position, so a restart
//!   reads them too; past [`UNREAD_KEPT`] the oldest are given up, and their steps say so.
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
use crate::source::{LeaseKeeper, Term};
use app::model::{
    Capabilities, EngineHealth, LiveMode, StepKind, StepStatus, WaitReason, WorkflowStatus,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
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
/// The position that holds the successful tries whose log and return value are still to
/// be read, as JSON.
const UNREAD: &str = "unread";
/// At most this many tries wait to be read (stored with every batch, a few hundred bytes
/// each); past it the oldest are given up.
const UNREAD_KEPT: usize = 1_000;
/// At most this many of an opened run's tries are read at once for it (a 1,000-way map
/// is read on at the budget's pace), and at most this many opened runs are remembered
/// between two polls.
const OPENED_READS_AT_MOST: usize = 64;
const OPENED_KEPT: usize = 16;
/// DAG runs are listed at least this often, though no task instance says one changed.
const RUNS_LISTED_EVERY: Duration = Duration::from_secs(10);
/// Reads saved up while few tries end, in seconds of `reads_per_second`: a burst of
/// endings after a quiet spell is read at once, up to this.
const READS_SAVED_FOR: f64 = 5.0;

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
    /// The source's lease: only the instance that holds it follows the source.
    lease: LeaseKeeper,
    /// Runs Stepline cancelled, by id: who asked (why they failed).
    cancelled_by: Mutex<HashMap<String, String>>,
    /// Runs Stepline triggered (clones), by id: what they came from ("clone of <id>") and
    /// who asked.
    origins: Mutex<HashMap<String, (String, String)>>,
    /// Runs opened since the last poll, whose tries still to read are read first.
    opened: Mutex<VecDeque<String>>,
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
    /// The open runs as Airflow last listed them, by Stepline id.
    dag_runs: HashMap<String, DagRun>,
    /// Successful tries whose log and return value are still to be read, oldest first.
    unread: VecDeque<Unread>,
    /// Calls that may be spent on them now, and when that was worked out.
    reads_allowed: f64,
    reads_counted_at: Option<Instant>,
    /// The tries still to read as last stored.
    unread_stored: Option<String>,
    /// When DAG runs were last listed, and from which moment the next list asks.
    runs_listed_at: Option<Instant>,
    runs_since: Option<DateTime<Utc>>,
    /// The lease term this is followed in: its batches are stored only while it lasts.
    term: Option<Term>,
}

/// A successful try whose log and return value are still to be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Unread {
    workflow_id: String,
    step_number: u32,
    instance: TaskInstance,
    try_number: u32,
    /// When the try ended: the moment its lines are stored at.
    at: DateTime<Utc>,
    /// Where a live read of its log left off (see [`LiveLog`]).
    token: Option<String>,
    pushed: usize,
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

impl LiveLog {
    /// Takes a read of the log from this live log's token: pushes the lines not pushed yet
    /// (all of them after a token; past the `pushed` ones when read from the start), and
    /// keeps where to read on from (`token`: none once Airflow said the log ended).
    fn read_on(
        &mut self,
        page: &[serde_json::Value],
        token: Option<String>,
        at: DateTime<Utc>,
        push: &mut impl FnMut(DateTime<Utc>, Change),
    ) {
        let skip = if self.token.is_some() { 0 } else { self.pushed };
        self.error = mapping::error_from_log(page).or(self.error.take());
        self.token = token;
        self.pushed += push_log_lines(self.step_number, at, page, skip, push);
    }

    /// Airflow refused the token (it signs them with a key a restart may change): the
    /// next read starts over, skipping the lines pushed.
    fn token_refused(&mut self) {
        self.token = None;
    }
}

impl AirflowSource {
    /// Starts following `config`'s deployment from where it was left (or `import_since`
    /// ago the first time), whenever this instance holds `lease`.
    pub fn start(
        config: SourceConfig,
        recall: SharedRecall,
        sink: SharedSink,
        health: HealthBoard,
        lease: LeaseKeeper,
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
            lease,
            cancelled_by: Mutex::default(),
            origins: Mutex::default(),
            opened: Mutex::default(),
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

    /// How many tokens Stepline has obtained from this Airflow (the first and each
    /// renewal of an expired one).
    pub fn sign_ins(&self) -> u64 {
        self.inner.client.sign_ins()
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
    /// Follows the source in each term this instance holds its lease, from what the
    /// store holds at the term's start (the last holder's positions).
    async fn follow(self: Arc<Self>) {
        let mut lease = self.lease.clone();
        loop {
            let term = lease
                .next_term(|| {
                    self.health
                        .set(&self.engine_id, EngineHealth::standby(&self.engine_id));
                })
                .await;
            tracing::info!(engine = %self.engine_id, "following the Airflow source: this instance holds its lease");
            self.health
                .set(&self.engine_id, EngineHealth::connecting(&self.engine_id));
            tokio::select! {
                () = self.follow_term(term.clone()) => {}
                () = term.ended() => {}
            }
            tracing::warn!(engine = %self.engine_id, "no longer following the Airflow source: its lease is another instance's");
        }
    }

    /// Polls for as long as `term` lasts: from the stored position, every poll interval;
    /// while Airflow does not answer, the source is degraded and polls back off.
    async fn follow_term(&self, term: Term) {
        let (mut since, unread) = self.resume_point().await;
        let mut following = Following {
            unread,
            term: Some(term),
            ..Following::default()
        };
        let mut backoff = Backoff::new(BACKOFF_FIRST, BACKOFF_CAP);
        loop {
            let began = Utc::now();
            let polled = Instant::now();
            match self.poll(&mut following, since, began - OVERLAP).await {
                Ok(()) => {
                    since = began - OVERLAP;
                    self.healthy();
                    backoff = Backoff::new(BACKOFF_FIRST, BACKOFF_CAP);
                    // One poll per interval, however long this one took (a busy Airflow
                    // answers slowly: waiting a whole interval more would add to the delay).
                    tokio::time::sleep(self.config.poll_interval.saturating_sub(polled.elapsed()))
                        .await;
                }
                Err(error) => {
                    // What was learnt in memory may not have been stored: read it again.
                    following.runs.clear();
                    following.dag_runs.clear();
                    following.runs_listed_at = None;
                    self.degraded(&error);
                    backoff.wait().await;
                }
            }
        }
    }

    /// The moment to poll from (stored with the last events, else `import_since` ago), and
    /// the tries that were still to be read.
    async fn resume_point(&self) -> (DateTime<Utc>, VecDeque<Unread>) {
        let first =
            Utc::now() - chrono::TimeDelta::from_std(self.config.import_since).unwrap_or_default();
        loop {
            match self.recall.positions(&self.engine_id).await {
                Ok(positions) => {
                    let since = positions
                        .get(POSITION)
                        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
                        .map_or(first, |at| at.with_timezone(&Utc));
                    let unread = match positions.get(UNREAD).map(|u| serde_json::from_str(u)) {
                        None => VecDeque::new(),
                        Some(Ok(unread)) => unread,
                        Some(Err(error)) => {
                            tracing::error!(engine = %self.engine_id, %error,
                                "the tries still to read were stored unreadably; their logs and return values stay in Airflow");
                            VecDeque::new()
                        }
                    };
                    return (since, unread);
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
        let runs_since = following.runs_since.unwrap_or(since).min(since);
        let list_runs = following
            .runs_listed_at
            .is_none_or(|at| at.elapsed() >= RUNS_LISTED_EVERY)
            || following.runs.values().any(ending_due);
        let runs = if list_runs {
            self.client.runs_changed_since(runs_since).await?
        } else {
            Vec::new()
        };
        let instances = self.client.task_instances_changed_since(since).await?;
        // After a restart, both lists ask from the older of their moments.
        let position = if list_runs { next } else { runs_since };
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
        // Task instances of runs that did not change themselves: a run followed while it
        // runs is as last listed (had it changed, it would be listed again).
        for ((dag_id, dag_run_id), instances) in changed {
            let id = self.config.workflow_id(&dag_id, &dag_run_id);
            let known = following.dag_runs.get(&id).filter(|_| {
                following
                    .runs
                    .get(&id)
                    .is_some_and(|run| run.status == WorkflowStatus::Running)
            });
            let run = match known {
                Some(run) => run.clone(),
                None => self.client.run(&dag_id, &dag_run_id).await?,
            };
            touched.push(self.update(following, &run, instances, &mut events).await?);
        }
        if list_runs {
            // Kept only once what the list told is stored (a failed poll lists again).
            following.runs_listed_at = Some(Instant::now());
            following.runs_since = Some(next);
        }
        if !events.is_empty() {
            let committed = self.store(events, position, following).await;
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
                    following.dag_runs.remove(&id);
                }
            }
        }
        // Then what Airflow tells only on asking, stored apart: the states above are not
        // kept waiting for logs and return values.
        let mut read = Vec::new();
        let unread_before = following.unread.len();
        self.read_live_logs(following, &mut read).await;
        self.read_ended_tries(following, &mut read).await;
        if !read.is_empty() || following.unread.len() != unread_before {
            self.store(read, position, following).await;
        }
        Ok(())
    }

    /// Stores `events` with `position`, and the tries still to read when they changed
    /// (a busy source has hundreds: not written again with every batch).
    async fn store(
        &self,
        events: Vec<SourceEvent>,
        position: DateTime<Utc>,
        following: &mut Following,
    ) -> crate::engines::commit::Committed {
        let mut positions = vec![(POSITION.to_owned(), position.to_rfc3339())];
        let unread = serde_json::to_string(&following.unread).expect("plain data");
        if following.unread_stored.as_ref() != Some(&unread) {
            positions.push((UNREAD.to_owned(), unread.clone()));
            following.unread_stored = Some(unread);
        }
        crate::engines::commit::commit(
            &self.sink,
            &self.engine_id,
            capabilities(),
            events,
            positions,
            following.term.as_ref(),
        )
        .await
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
        let structure = Arc::new(Structure {
            has_deadlines: self.client.deadline_alerts(dag_id).await? > 0,
            ..Structure::from_tasks(&tasks, &self.config.compensation)
        });
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
                let created = run
                    .queued_at
                    .or(run.run_after)
                    .or(run.start_date)
                    .unwrap_or(now);
                // The DAG's own deadline, where it has one, is the run's SLA.
                let deadline = if structure.has_deadlines {
                    self.client
                        .run_deadline(&run.dag_id, &run.dag_run_id)
                        .await?
                } else {
                    None
                };
                let sla = deadline
                    .map(|at| {
                        (at - created)
                            .num_seconds()
                            .clamp(1, limits::SLA_TARGET_SECONDS)
                    })
                    .or_else(|| {
                        self.config
                            .sla
                            .get(&run.dag_id)
                            .map(|sla| sla.as_secs() as i64)
                    });
                let start = self.start(run, &structure, &instances, &id, tags, sla);
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
                let resume = match (&fact, resume) {
                    // Completed now; its output and lines once read (`read_ended_tries`).
                    (StepFact::Completed { at }, resume) => {
                        let (token, pushed) =
                            resume.map_or((None, 0), |live| (live.token, live.pushed));
                        let unread = Unread {
                            workflow_id: id.clone(),
                            step_number: number,
                            instance: instance.clone(),
                            try_number: instance.try_number.max(1),
                            at: *at,
                            token,
                            pushed,
                        };
                        to_read(
                            &mut following.unread,
                            unread,
                            &mut |workflow_id, at, change| {
                                events.push(SourceEvent {
                                    workflow_id,
                                    at,
                                    change,
                                })
                            },
                        );
                        None
                    }
                    (_, resume) => resume,
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
        following.dag_runs.insert(id.clone(), run.clone());
        Ok(id)
    }

    /// The start of a run seen for the first time, due `sla_target_seconds` after it began.
    fn start(
        &self,
        run: &DagRun,
        structure: &Structure,
        instances: &[TaskInstance],
        id: &str,
        mut tags: Vec<String>,
        sla_target_seconds: Option<i64>,
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
            sla_target_seconds,
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
    /// fact is that Airflow cleared it), with what Airflow tells only on asking: a failed
    /// try's log (its lines, and its error). A completion comes without its output and
    /// lines, read apart (see [`Unread`]).
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
            StepFact::Completed { at } => push(
                at,
                Change::StepCompleted {
                    step_number: number,
                    output: None,
                },
            ),
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
            StepFact::Waiting { at, reason, why } => {
                push(
                    at,
                    Change::StepWaiting {
                        step_number: number,
                        reason,
                        until: None,
                        detail: Some(why.clone()),
                    },
                );
                // A running step's log says it too, where its lines are.
                if reason != WaitReason::QueueSlot {
                    push(
                        at,
                        Change::LogLines {
                            step_number: number,
                            lines: vec![why],
                        },
                    );
                }
            }
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
        let events = match self.ended_try_log(instance, attempt, token, pushed).await {
            Ok((events, skip)) => {
                push_log_lines(number, at, &events, skip, push);
                events
            }
            Err(error) => {
                return format!("try {attempt} failed (its log could not be read: {error})")
            }
        };
        mapping::error_from_log(&events)
            .or(earlier_error)
            .unwrap_or_else(|| format!("try {attempt} failed (Airflow recorded no error)"))
    }

    /// An ended try's log, and how many of its lines to skip: the rest after `token`, when
    /// it was read while the try ran, or the whole log past the `pushed` lines already
    /// pushed (no token yet, or the token was refused: Airflow restarted).
    async fn ended_try_log(
        &self,
        instance: &TaskInstance,
        attempt: u32,
        token: Option<String>,
        pushed: usize,
    ) -> Result<(Vec<serde_json::Value>, usize), ClientError> {
        match self.read_log(instance, attempt, token.clone()).await {
            Ok((events, _)) if token.is_some() => Ok((events, 0)),
            _ if token.is_some() => self
                .read_log(instance, attempt, None)
                .await
                .map(|(events, _)| (events, pushed)),
            other => other.map(|(events, _)| (events, pushed)),
        }
    }

    /// Reads the log and return value of successful tries still to read onto `events`:
    /// first those of the runs opened since the last poll (an operator is looking), then
    /// the oldest, as many as `reads_per_second` allows since the last poll (the opened
    /// runs' reads count against it too).
    async fn read_ended_tries(&self, following: &mut Following, events: &mut Vec<SourceEvent>) {
        let rate = self.config.reads_per_second;
        let now = Instant::now();
        let elapsed = following
            .reads_counted_at
            .map_or(READS_SAVED_FOR, |at| now.duration_since(at).as_secs_f64());
        following.reads_counted_at = Some(now);
        following.reads_allowed =
            (following.reads_allowed + elapsed * rate).min(rate * READS_SAVED_FOR);
        let opened: Vec<String> = self
            .opened
            .lock()
            .expect("not poisoned")
            .drain(..)
            .collect();
        for id in opened {
            let mut read = 0;
            let mut index = 0;
            while read < OPENED_READS_AT_MOST && index < following.unread.len() {
                if following.unread[index].workflow_id != id {
                    index += 1;
                    continue;
                }
                let unread = following.unread[index].clone();
                if !self
                    .read_try(&unread, &mut following.reads_allowed, events)
                    .await
                {
                    return;
                }
                following.unread.remove(index);
                read += 1;
            }
        }
        while following.reads_allowed > 0.0 {
            let Some(unread) = following.unread.front().cloned() else {
                break;
            };
            if !self
                .read_try(&unread, &mut following.reads_allowed, events)
                .await
            {
                break;
            }
            following.unread.pop_front();
        }
    }

    /// Reads `unread`'s return value and log onto `events`, its calls taken from
    /// `allowed`: whether it is done with (read, or given up because Airflow no longer has
    /// it, which its step says); not when Airflow cannot answer for now.
    async fn read_try(
        &self,
        unread: &Unread,
        allowed: &mut f64,
        events: &mut Vec<SourceEvent>,
    ) -> bool {
        let calls_before = self.client.calls();
        let read = async {
            let output = self.client.return_value(&unread.instance).await?;
            let log = self
                .ended_try_log(
                    &unread.instance,
                    unread.try_number,
                    unread.token.clone(),
                    unread.pushed,
                )
                .await?;
            Ok::<_, ClientError>((output, log))
        }
        .await;
        *allowed -= self.client.calls().saturating_sub(calls_before) as f64;
        let mut push = |at, change| {
            events.push(SourceEvent {
                workflow_id: unread.workflow_id.clone(),
                at,
                change,
            })
        };
        match read {
            Ok((output, (log, skip))) => {
                push_log_lines(unread.step_number, unread.at, &log, skip, &mut push);
                if let Some(output) = output {
                    push(
                        unread.at,
                        Change::StepOutput {
                            step_number: unread.step_number,
                            output,
                        },
                    );
                }
                true
            }
            Err(ClientError::Refused {
                status: 404,
                message,
            }) => {
                push(
                    unread.at,
                    Change::LogLines {
                        step_number: unread.step_number,
                        lines: vec![format!(
                            "[the log and return value of try {} could not be read: Airflow no longer has them ({message})]",
                            unread.try_number
                        )],
                    },
                );
                true
            }
            Err(error) => {
                tracing::debug!(engine = %self.engine_id, run = %unread.workflow_id, %error,
                    "a finished try's log could not be read; trying again at the next poll");
                false
            }
        }
    }

    /// A try's log from `token` (the start when none), a few pages at the most (enough
    /// for what a step keeps: its newest lines), and the token to read on from: none once
    /// Airflow has said the log ended (a try no longer running gets no token), as the last
    /// token given would read again what came after it.
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
                None => return Ok((events, None)),
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
                Err(ClientError::Refused { status: 400, .. }) if live.token.is_some() => {
                    live.token_refused();
                    continue;
                }
                Err(error) => {
                    tracing::debug!(engine = %self.engine_id, run = %id, %error, "a running try's log could not be read; trying again later");
                    continue;
                }
            };
            live.read_on(&page, token, now, &mut |at, change| {
                events.push(SourceEvent {
                    workflow_id: id.clone(),
                    at,
                    change,
                })
            });
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

/// Adds `unread` to the tries to read (once: a poll that failed finds the same completion
/// again); past [`UNREAD_KEPT`] the oldest is given up, and its step says so through `push`.
fn to_read(
    queue: &mut VecDeque<Unread>,
    unread: Unread,
    push: &mut impl FnMut(String, DateTime<Utc>, Change),
) {
    let same = |other: &Unread| {
        other.workflow_id == unread.workflow_id
            && other.step_number == unread.step_number
            && other.try_number == unread.try_number
    };
    if queue.iter().any(same) {
        return;
    }
    queue.push_back(unread);
    while queue.len() > UNREAD_KEPT {
        let Some(given_up) = queue.pop_front() else {
            break;
        };
        push(
            given_up.workflow_id,
            Utc::now(),
            Change::LogLines {
                step_number: given_up.step_number,
                lines: vec![format!(
                    "[the log and return value of try {} were not read: more tries ended than reads_per_second reads; they are in Airflow]",
                    given_up.try_number
                )],
            },
        );
    }
}

/// Pushes the lines of a try's log `events` but the first `skip`, in events of at most
/// [`limits::LOG_LINES_PER_EVENT`]; answers how many were pushed.
fn push_log_lines(
    step_number: u32,
    at: DateTime<Utc>,
    events: &[serde_json::Value],
    skip: usize,
    push: &mut impl FnMut(DateTime<Utc>, Change),
) -> usize {
    let lines = mapping::log_lines(events);
    let new = lines.get(skip..).unwrap_or_default();
    for chunk in new.chunks(limits::LOG_LINES_PER_EVENT) {
        push(
            at,
            Change::LogLines {
                step_number,
                lines: chunk.to_vec(),
            },
        );
    }
    new.len()
}

/// Whether a followed run's end is due: it is open and none of its tasks is still to run
/// (Airflow ends the run in its next scheduling loop, without a task instance changing).
fn ending_due(run: &Reported) -> bool {
    !run.status.is_terminal()
        && run.steps.values().all(|step| {
            !matches!(
                step.status,
                StepStatus::Pending | StepStatus::Running | StepStatus::Retrying
            )
        })
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

    fn opened(&self, workflow_id: &str) {
        let mut opened = self.inner.opened.lock().expect("not poisoned");
        if !opened.iter().any(|id| id == workflow_id) {
            opened.push_back(workflow_id.to_owned());
            if opened.len() > OPENED_KEPT {
                opened.pop_front();
            }
        }
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

#[cfg(test)]
mod tests;
