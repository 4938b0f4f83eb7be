//! Following one Temporal namespace live, and taking operators' commands for its runs.
//!
//! - Discovery: the namespace's counts by status are checked every poll interval (a few
//!   ms); only when they move are the executions started since the newest one seen
//!   listed (`StartTime >` filter). Nothing scans the whole namespace after the first
//!   import.
//! - One follower per open run long-polls its history (`waitNewEvent`), so a step's
//!   completion is mapped and stored as soon as Temporal writes it; while activities are
//!   pending, describe tells their attempts and failures (retries write no history).
//! - Each batch stores the run's last mapped event with its events: after a restart (or
//!   an outage) every follower resumes from there and nothing is lost or repeated.
//! - Unreachable server: the source reports itself degraded, followers and discovery
//!   retry with capped backoff and catch up once it answers again.

mod listed;

use super::client::{ClientError, Execution, TemporalClient};
use super::history::HistoryMapper;
use super::SourceConfig;
use crate::engines::health::{HealthBoard, Report};
use crate::retry::Backoff;
use crate::source::{
    ApplyError, Batch, Change, Command, CommandError, CommandOutcome, Engine, SharedSink,
    SourceEvent,
};
use crate::store::Store;
use app::model::EngineHealth;
use app::model::{Capabilities, LiveMode, WorkflowStatus};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a run with pending activities is described (their attempts and failures).
const DESCRIBE_EVERY: Duration = Duration::from_secs(1);
/// Retry waits while the server does not answer: from 250 ms, doubling, up to 5 s.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// Listing new executions looks this far before the newest start seen (clock skew).
const START_OVERLAP: chrono::Duration = chrono::Duration::seconds(5);

/// Where a run's follower is, stored with the events it mapped.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Position {
    #[serde(rename = "w")]
    workflow_id: String,
    #[serde(rename = "r")]
    run_id: String,
    /// The last history event mapped.
    #[serde(rename = "e")]
    event_id: u64,
    /// The run closed and its history was read to the end.
    #[serde(rename = "c")]
    closed: bool,
    /// Attempts known from describe, ahead of the history (see
    /// [`HistoryMapper::attempt_state`]).
    #[serde(rename = "a", default, skip_serializing_if = "Vec::is_empty")]
    attempts: Vec<(u32, u32, bool, i64)>,
    /// The run is known from the listing only (see [`listed`]): no history to follow.
    #[serde(rename = "l", default, skip_serializing_if = "std::ops::Not::not")]
    listed_only: bool,
}

impl Position {
    /// The position as stored with run `id`'s events.
    fn stored_for(&self, id: &str) -> (String, String) {
        (
            id.to_owned(),
            serde_json::to_string(self).expect("a position serializes"),
        )
    }
}

/// A Temporal namespace followed live; the engine of its runs.
#[derive(Clone)]
pub struct TemporalSource {
    inner: Arc<Inner>,
}

struct Inner {
    config: SourceConfig,
    engine_id: String,
    client: TemporalClient,
    sink: SharedSink,
    store: Store,
    health: HealthBoard,
    capabilities: Mutex<Capabilities>,
    /// Every run known, by Stepline id: its Temporal ids.
    runs: Mutex<HashMap<String, (String, String)>>,
    /// Every execution known, by its Temporal ids (runs stored under an earlier id
    /// scheme are known by these too, so they are not imported twice).
    executions: Mutex<HashSet<(String, String)>>,
    /// Runs with a follower now.
    followed: Mutex<HashSet<String>>,
    /// Steps of the longest completed run of each type: the progress total of new runs.
    known_steps: Mutex<HashMap<String, u32>>,
    /// Runs Stepline itself started (a retry's reset, a clone), with what they came
    /// from ("retry of <id>"): their trigger, which links them to the original.
    origins: Mutex<HashMap<String, String>>,
}

impl TemporalSource {
    /// Starts following `config`'s namespace: resumes the runs followed before, imports
    /// what started within `import_since`, then follows new executions.
    pub async fn start(
        config: SourceConfig,
        store: Store,
        sink: SharedSink,
        health: HealthBoard,
    ) -> Result<Self, String> {
        let client = TemporalClient::new(&config.url, &config.namespace, config.api_key.clone())?;
        let engine_id = config.engine_id();
        let inner = Arc::new(Inner {
            engine_id: engine_id.clone(),
            client,
            sink,
            store,
            health,
            capabilities: Mutex::new(capabilities(false)),
            runs: Mutex::new(HashMap::new()),
            executions: Mutex::new(HashSet::new()),
            followed: Mutex::new(HashSet::new()),
            known_steps: Mutex::new(HashMap::new()),
            origins: Mutex::new(HashMap::new()),
            config,
        });
        inner
            .health
            .set(&engine_id, EngineHealth::connecting(&engine_id));
        let source = Self { inner };
        tokio::spawn(source.clone().discover());
        Ok(source)
    }

    /// Runs discovery for as long as the process lives.
    async fn discover(self) {
        let inner = &self.inner;
        let known = match inner.store.positions(&inner.engine_id).await {
            Ok(known) => known,
            Err(cause) => {
                tracing::error!(%cause, engine = %inner.engine_id, "cannot read the Temporal positions");
                HashMap::new()
            }
        };
        for (id, position) in known {
            let Ok(position) = serde_json::from_str::<Position>(&position) else {
                continue;
            };
            inner.remember(&id, &position.workflow_id, &position.run_id);
            if position.listed_only && !position.closed {
                let ids = (position.workflow_id, position.run_id);
                // Stored as running (or paused): a status other than the listing's is
                // stored again, which changes nothing when it is the same.
                self.watch_listed(id, ids, None, Some(WorkflowStatus::Running));
            } else if !position.closed {
                self.follow(
                    id,
                    position.workflow_id,
                    position.run_id,
                    position.event_id,
                    &position.attempts,
                );
            }
        }
        if let Err(cause) = inner.learn_known_steps().await {
            tracing::warn!(%cause, "cannot learn the step counts of completed Temporal runs");
        }

        let mut backoff = Backoff::new(BACKOFF_FIRST, BACKOFF_CAP);
        // The pause probe and the first import, until the server answers.
        let mut newest_start = chrono::Utc::now()
            - chrono::Duration::from_std(inner.config.import_since).unwrap_or_default();
        loop {
            // Capabilities first: they are stored on the runs the import creates.
            let ready = match inner.probe_pause().await {
                Ok(()) => self.import_since(&mut newest_start).await,
                Err(error) => Err(error),
            };
            match ready {
                Ok(()) => break,
                Err(error) => {
                    inner.degraded(&error);
                    backoff.wait().await;
                }
            }
        }
        inner.healthy();
        let mut counts = None;
        let mut ticker = tokio::time::interval(inner.config.poll_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let now_counts = match inner.client.count_by_status(&inner.config.filter()).await {
                Ok(now_counts) => now_counts,
                Err(error) => {
                    inner.degraded(&error);
                    continue;
                }
            };
            inner.healthy();
            if counts.as_ref() == Some(&now_counts) {
                continue;
            }
            match self.import_since(&mut newest_start).await {
                Ok(()) => counts = Some(now_counts),
                Err(error) => inner.degraded(&error),
            }
        }
    }

    /// Lists the executions started after `newest_start` (a little before, for clock
    /// skew) and follows those not known yet.
    async fn import_since(
        &self,
        newest_start: &mut chrono::DateTime<chrono::Utc>,
    ) -> Result<(), ClientError> {
        let inner = &self.inner;
        let since =
            (*newest_start - START_OVERLAP).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut query = format!("StartTime > \"{since}\"");
        let filter = inner.config.filter();
        if !filter.is_empty() {
            query = format!("{filter} AND {query}");
        }
        let mut token: Option<String> = None;
        let mut found: Vec<Execution> = Vec::new();
        loop {
            let (page, next) = inner.client.list(&query, token.as_deref()).await?;
            found.extend(page);
            match next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        // Oldest first, so a reset's new run comes after the run it came from.
        found.sort_by(|a, b| a.start_time.cmp(&b.start_time));
        for execution in found {
            if let Some(start) = execution
                .start_time
                .as_deref()
                .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
            {
                *newest_start = (*newest_start).max(start);
            }
            if !inner.config.wants(&execution.workflow_type) {
                continue;
            }
            if inner.knows(&execution.workflow_id, &execution.run_id) {
                continue;
            }
            let id = inner
                .config
                .workflow_id(&execution.workflow_id, &execution.run_id);
            inner.remember(&id, &execution.workflow_id, &execution.run_id);
            if !listed::addressable(&execution.workflow_id) {
                let ids = (execution.workflow_id.clone(), execution.run_id.clone());
                self.watch_listed(id, ids, Some(execution), None);
                continue;
            }
            self.follow(id, execution.workflow_id, execution.run_id, 0, &[]);
        }
        Ok(())
    }

    /// Follows a run from after history event `from_event` (with the `attempts` known
    /// beyond it) until it closes.
    fn follow(
        &self,
        id: String,
        workflow_id: String,
        run_id: String,
        from_event: u64,
        attempts: &[(u32, u32, bool, i64)],
    ) {
        let inner = self.inner.clone();
        let mut mapper =
            HistoryMapper::resuming(id.clone(), inner.config.compensation.clone(), from_event);
        mapper.restore_attempts(attempts);
        let mut follower = Follower {
            mapper,
            inner: inner.clone(),
            id: id.clone(),
            workflow_id,
            run_id,
            token: None,
            pending: false,
            described: None,
            received_up_to: 0,
        };
        self.inner
            .spawn_following(id, async move { follower.run().await });
    }

    /// The engine's id (`temporal:<source>:<namespace>`).
    pub fn engine_id(&self) -> &str {
        &self.inner.engine_id
    }
}

impl Inner {
    /// Runs `watch` for run `id` unless the run is followed already; it is no longer
    /// followed once `watch` ends.
    fn spawn_following(
        self: &Arc<Self>,
        id: String,
        watch: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        if !self
            .followed
            .lock()
            .expect("not poisoned")
            .insert(id.clone())
        {
            return;
        }
        let inner = self.clone();
        tokio::spawn(async move {
            watch.await;
            inner.followed.lock().expect("not poisoned").remove(&id);
        });
    }

    fn knows(&self, workflow_id: &str, run_id: &str) -> bool {
        self.executions
            .lock()
            .expect("not poisoned")
            .contains(&(workflow_id.to_owned(), run_id.to_owned()))
    }

    fn remember(&self, id: &str, workflow_id: &str, run_id: &str) {
        self.runs
            .lock()
            .expect("not poisoned")
            .insert(id.to_owned(), (workflow_id.to_owned(), run_id.to_owned()));
        self.executions
            .lock()
            .expect("not poisoned")
            .insert((workflow_id.to_owned(), run_id.to_owned()));
    }

    /// Notes that Stepline started run `id` from another (see `origins`).
    fn started_from(&self, id: &str, origin: String) {
        self.origins
            .lock()
            .expect("not poisoned")
            .insert(id.to_owned(), origin);
    }

    fn temporal_ids(&self, id: &str) -> Result<(String, String), CommandError> {
        self.runs
            .lock()
            .expect("not poisoned")
            .get(id)
            .cloned()
            .ok_or_else(|| CommandError::UnknownWorkflow(id.to_owned()))
    }

    fn capabilities(&self) -> Capabilities {
        *self.capabilities.lock().expect("not poisoned")
    }

    fn degraded(&self, error: &ClientError) {
        let changed = self.health.set(
            &self.engine_id,
            EngineHealth::degraded(&self.engine_id, &error.to_string()),
        );
        if changed {
            tracing::warn!(engine = %self.engine_id, %error, "Temporal source degraded");
        }
    }

    fn healthy(&self) {
        if self
            .health
            .set(&self.engine_id, EngineHealth::ok(&self.engine_id))
        {
            tracing::info!(engine = %self.engine_id, "Temporal source connected");
        }
    }

    /// Native workflow pause is a server option: pausing a run that does not exist
    /// answers 501 when it is off (and 404 when it is on).
    async fn probe_pause(&self) -> Result<(), ClientError> {
        let answer = self
            .client
            .workflow_command("stepline-pause-probe", "", "pause", "capability probe")
            .await;
        let can_pause = match answer {
            Err(ClientError::Refused { status: 501, .. }) => false,
            Err(error @ (ClientError::Unreachable(_) | ClientError::Unreadable(_))) => {
                return Err(error)
            }
            _ => true,
        };
        *self.capabilities.lock().expect("not poisoned") = capabilities(can_pause);
        tracing::info!(engine = %self.engine_id, can_pause, "Temporal source capabilities");
        Ok(())
    }

    /// Progress of Temporal runs: the total is not known in advance, so a new run counts
    /// against the steps of the longest completed run of its type seen so far.
    async fn learn_known_steps(&self) -> Result<(), crate::store::StoreError> {
        let counts = self.store.longest_completed_runs(&self.engine_id).await?;
        self.known_steps
            .lock()
            .expect("not poisoned")
            .extend(counts);
        Ok(())
    }

    fn known_steps(&self, workflow_type: &str) -> Option<u32> {
        self.known_steps
            .lock()
            .expect("not poisoned")
            .get(workflow_type)
            .copied()
    }

    fn learn_completed(&self, workflow_type: &str, steps: u32) {
        let mut known = self.known_steps.lock().expect("not poisoned");
        let entry = known.entry(workflow_type.to_owned()).or_default();
        *entry = (*entry).max(steps);
    }

    /// Stores a batch, retrying while the store fails. An event the read model refuses
    /// is left out (and logged with the reason) and the rest is stored: one fact that
    /// does not fit must never stop the run from being followed. False only when the
    /// run's start itself is refused (its id is taken): its events belong to no run here.
    async fn commit(&self, events: Vec<SourceEvent>, position: (String, String)) -> bool {
        self.commit_as(events, position, self.capabilities()).await
    }

    /// [`Self::commit`], for runs that can do `capabilities` (not the source's own).
    async fn commit_as(
        &self,
        mut events: Vec<SourceEvent>,
        position: (String, String),
        capabilities: Capabilities,
    ) -> bool {
        let mut backoff = Backoff::new(BACKOFF_FIRST, BACKOFF_CAP);
        loop {
            let batch = Batch {
                engine: self.engine_id.clone(),
                capabilities,
                events: events.clone(),
                positions: vec![position.clone()],
            };
            match self.sink.apply(batch).await {
                Ok(_) => return true,
                Err(ApplyError::Refused { index, refusal, .. }) if index < events.len() => {
                    if matches!(events[index].change, Change::WorkflowStarted(_)) {
                        tracing::error!(engine = %self.engine_id, run = %position.0, %refusal,
                            "a Temporal run's start was refused; the run is not followed");
                        return false;
                    }
                    let event = events.remove(index);
                    tracing::warn!(engine = %self.engine_id, run = %position.0, %refusal, ?event,
                        "a mapped Temporal event was refused and left out; following goes on");
                }
                Err(error) => {
                    tracing::error!(engine = %self.engine_id, %error, "cannot store Temporal events; retrying");
                    backoff.wait().await;
                }
            }
        }
    }
}

/// What Stepline can do with a Temporal run. Pause only when the server allows it.
fn capabilities(can_pause: bool) -> Capabilities {
    Capabilities {
        can_pause,
        can_resume: can_pause,
        can_cancel: true,
        // Cancel is a request: the workflow's own code decides what to roll back.
        compensates_on_cancel: false,
        can_retry_from_step: true,
        can_clone: true,
        can_terminate: true,
        has_logs: false,
        live: LiveMode::Push,
    }
}

/// One run followed: its history long-poll and, while activities are pending, describe.
struct Follower {
    inner: Arc<Inner>,
    id: String,
    workflow_id: String,
    run_id: String,
    mapper: HistoryMapper,
    token: Option<String>,
    /// Activities are pending (running or waiting to retry): describe them.
    pending: bool,
    /// What the last describe said: the run is paused, and how many events its stored
    /// history has.
    described: Option<(bool, u64)>,
    /// The highest event id any history page gave (transient ones included).
    received_up_to: u64,
}

impl Follower {
    async fn run(&mut self) {
        let mut backoff = Backoff::new(BACKOFF_FIRST, BACKOFF_CAP);
        let mut describe_tick = tokio::time::interval(DESCRIBE_EVERY);
        describe_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let inner = self.inner.clone();
            let (workflow_id, run_id, token) = (
                self.workflow_id.clone(),
                self.run_id.clone(),
                self.token.clone(),
            );
            let poll = inner
                .client
                .history(&workflow_id, &run_id, token.as_deref(), true);
            tokio::pin!(poll);
            let page = loop {
                tokio::select! {
                    page = &mut poll => break page,
                    _ = describe_tick.tick(), if self.pending => {
                        if !self.describe().await {
                            return;
                        }
                        // Temporal's long-poll can miss the notification of new events
                        // (it answers only when it expires, many seconds on): once
                        // describe says the history grew, it is read at once.
                        if self.history_grew() {
                            break inner
                                .client
                                .history(&workflow_id, &run_id, token.as_deref(), false)
                                .await;
                        }
                    }
                }
            };
            let page = match page {
                Ok(page) => page,
                Err(ClientError::Refused { status: 404, .. }) => {
                    tracing::warn!(run = %self.id, "Temporal no longer has this run (retention); stopped following");
                    return;
                }
                Err(error) => {
                    self.inner.degraded(&error);
                    backoff.wait().await;
                    continue;
                }
            };
            backoff.reset();
            self.inner.healthy();
            let mut page = page;
            let event_id = |event: &Value| {
                event
                    .get("eventId")
                    .and_then(Value::as_str)
                    .and_then(|id| id.parse::<u64>().ok())
            };
            if let Some(last) = page.events.iter().filter_map(event_id).max() {
                self.received_up_to = self.received_up_to.max(last);
            }
            // Read again from the start (see below): skip what was mapped already.
            let seen = self.mapper.last_event_id();
            page.events
                .retain(|event| event_id(event).is_none_or(|id| id > seen));
            let mut events = match self.mapper.map(&page.events) {
                Ok(events) => events,
                Err(error) => {
                    tracing::error!(run = %self.id, %error, "unreadable Temporal history; stopped following");
                    return;
                }
            };
            // No next token: the run closed — or is paused, which Temporal's long-poll
            // answers alike, at once. A paused run is read again from the start once it
            // moves (see below), until it goes on (and gives a token again) or ends.
            let closed = page.next_page_token.is_none() && self.mapper.closed();
            let paused = page.next_page_token.is_none() && !closed;
            tracing::debug!(run = %self.id, events = page.events.len(), closed, paused, "history page");
            self.complete_start(&mut events);
            if !page.events.is_empty() || closed {
                // What history says is stored at once; what describe adds (attempts of
                // the activities now pending) follows in its own batch.
                let position = self.position(closed);
                if !self.inner.commit(events, position).await {
                    return;
                }
                self.pending = !closed;
                if !closed && !self.describe().await {
                    return;
                }
            }
            if closed {
                self.learn_if_completed().await;
                return;
            }
            if paused {
                // Watched through describe (cheap) rather than by reading the whole
                // history again; read again as soon as it moved (a resume, new events,
                // its end), so a resumed run is followed within one describe period.
                loop {
                    describe_tick.tick().await;
                    if !self.describe().await {
                        return;
                    }
                    if self.moved_since_described() {
                        break;
                    }
                }
            }
            self.token = page.next_page_token;
        }
    }

    /// Gives a new run its ids in Temporal (Stepline's id may carry only a hash of them),
    /// the step count of its type's longest completed run, and the run it came from when
    /// Stepline started it.
    fn complete_start(&self, events: &mut [SourceEvent]) {
        for event in events.iter_mut() {
            if let Change::WorkflowStarted(start) = &mut event.change {
                start.engine_ref = Some(super::engine_ref(&self.workflow_id, &self.run_id));
                start.total_steps = self.inner.known_steps(&start.workflow_type);
                if let Some(origin) = self
                    .inner
                    .origins
                    .lock()
                    .expect("not poisoned")
                    .remove(&self.id)
                {
                    start.trigger_type = Some(origin);
                }
            }
        }
    }

    fn position(&self, closed: bool) -> (String, String) {
        let position = Position {
            workflow_id: self.workflow_id.clone(),
            run_id: self.run_id.clone(),
            event_id: self.mapper.last_event_id(),
            closed,
            attempts: if closed {
                Vec::new()
            } else {
                self.mapper.attempt_state()
            },
            listed_only: false,
        };
        position.stored_for(&self.id)
    }

    /// Describes the run and stores what its pending activities tell; false when the
    /// follower must stop.
    async fn describe(&mut self) -> bool {
        let mut events = Vec::new();
        if !self.describe_into(&mut events).await {
            return false;
        }
        if events.is_empty() {
            return true;
        }
        let position = self.position(false);
        self.inner.commit(events, position).await
    }

    async fn describe_into(&mut self, events: &mut Vec<SourceEvent>) -> bool {
        match self
            .inner
            .client
            .describe(&self.workflow_id, &self.run_id)
            .await
        {
            Ok(description) => {
                let info = |key: &str| {
                    description
                        .pointer(&format!("/workflowExecutionInfo/{key}"))
                        .and_then(Value::as_str)
                };
                self.described = Some((
                    info("status") == Some("WORKFLOW_EXECUTION_STATUS_PAUSED"),
                    info("historyLength")
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(u64::MAX),
                ));
                let pending = description
                    .get("pendingActivities")
                    .and_then(Value::as_array)
                    .is_some_and(|list| !list.is_empty());
                self.pending = pending;
                // Steps only of a run that exists in the store: a first page always
                // starts with the run itself.
                if self.mapper.last_event_id() > 0 {
                    events.extend(self.mapper.pending_activities(&description));
                }
                true
            }
            Err(ClientError::Refused { status: 404, .. }) => false,
            Err(error) => {
                self.inner.degraded(&error);
                self.described = None;
                true
            }
        }
    }

    /// Whether the run is no longer paused, or its history grew, as far as the last
    /// describe tells (an unanswered describe counts as moved: the history read that
    /// follows backs off while the server is away).
    fn moved_since_described(&self) -> bool {
        self.described
            .is_none_or(|(paused, length)| !paused || length > self.mapper.last_event_id())
    }

    /// Whether the last describe counted more stored events than any page gave.
    fn history_grew(&self) -> bool {
        self.described
            .is_some_and(|(_, length)| length != u64::MAX && length > self.received_up_to)
    }

    async fn learn_if_completed(&self) {
        if let Ok(Some(row)) = self.inner.store.workflow_row(&self.id).await {
            if row.status == WorkflowStatus::Completed {
                self.inner
                    .learn_completed(&row.workflow_type, row.total_steps);
            }
        }
    }
}

#[async_trait]
impl Engine for TemporalSource {
    fn id(&self) -> &str {
        &self.inner.engine_id
    }

    async fn command(
        &self,
        workflow_id: &str,
        command: Command,
    ) -> Result<CommandOutcome, CommandError> {
        let inner = &self.inner;
        let (temporal_id, run_id) = inner.temporal_ids(workflow_id)?;
        match command {
            Command::Pause if !inner.capabilities().can_pause => Err(CommandError::Refused(
                "this Temporal server has workflow pause turned off (frontend.WorkflowPauseEnabled)"
                    .into(),
            )),
            Command::Pause => {
                self.workflow_command(workflow_id, "pause", None, WorkflowStatus::Paused,
                    "Paused in Temporal: running activities finish, no new step starts until resumed")
                    .await
            }
            Command::Resume => {
                self.workflow_command(workflow_id, "unpause", None, WorkflowStatus::Running,
                    "Resumed in Temporal")
                    .await
            }
            Command::Cancel { reason } => {
                self.workflow_command(workflow_id, "cancel", reason, WorkflowStatus::Cancelling,
                    "Cancellation requested: the workflow's own code decides what to roll back; its compensations show as they run")
                    .await
            }
            Command::Terminate { reason } => {
                self.workflow_command(workflow_id, "terminate", reason, WorkflowStatus::Terminated,
                    "Terminated in Temporal: stopped at once, nothing rolled back")
                    .await
            }
            Command::Retry { from_step } => {
                let history = self.full_history(&temporal_id, &run_id).await?;
                let mut mapper = HistoryMapper::resuming(
                    workflow_id,
                    inner.config.compensation.clone(),
                    u64::MAX,
                );
                mapper
                    .map(&history)
                    .map_err(|e| CommandError::Unavailable(e.to_string()))?;
                let event = mapper.reset_point(from_step).ok_or_else(|| {
                    CommandError::Refused(match from_step {
                        Some(step) => format!("step {step} is not an activity this run scheduled: Temporal can only reset to the workflow task that scheduled it"),
                        None => "this run has no completed workflow task to reset to".into(),
                    })
                })?;
                let reason = match from_step {
                    Some(step) => format!("retry from step {step}, from Stepline"),
                    None => "retry from the start, from Stepline".into(),
                };
                let new_run = inner
                    .client
                    .reset(&temporal_id, &run_id, event, &reason)
                    .await
                    .map_err(command_error)?;
                let new_id = inner.config.workflow_id(&temporal_id, &new_run);
                inner.started_from(&new_id, format!("retry of {workflow_id}"));
                inner.remember(&new_id, &temporal_id, &new_run);
                self.follow(new_id.clone(), temporal_id, new_run, 0, &[]);
                Ok(CommandOutcome {
                    workflow_id: new_id.clone(),
                    new_status: WorkflowStatus::Running,
                    message: format!(
                        "Temporal reset the run to event {event}: the retry is the new run {new_id}"
                    ),
                })
            }
            Command::Clone { .. } => {
                let history = self.full_history(&temporal_id, &run_id).await?;
                let started = history
                    .first()
                    .and_then(|e| e.get("workflowExecutionStartedEventAttributes"))
                    .ok_or_else(|| {
                        CommandError::Unavailable("the run's history has no start".into())
                    })?;
                let text = |pointer: &str| {
                    started
                        .pointer(pointer)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                let workflow_type = text("/workflowType/name")
                    .ok_or_else(|| CommandError::Unavailable("the run's type is unknown".into()))?;
                let task_queue = text("/taskQueue/name").ok_or_else(|| {
                    CommandError::Unavailable("the run's task queue is unknown".into())
                })?;
                let new_temporal_id = format!(
                    "{}-clone-{}",
                    temporal_id.chars().take(100).collect::<String>(),
                    chrono::Utc::now().timestamp_millis()
                );
                let new_run = inner
                    .client
                    .start(
                        &new_temporal_id,
                        &workflow_type,
                        &task_queue,
                        started.get("input").cloned(),
                    )
                    .await
                    .map_err(command_error)?;
                let new_id = inner.config.workflow_id(&new_temporal_id, &new_run);
                inner.started_from(&new_id, format!("clone of {workflow_id}"));
                inner.remember(&new_id, &new_temporal_id, &new_run);
                self.follow(new_id.clone(), new_temporal_id, new_run, 0, &[]);
                Ok(CommandOutcome {
                    workflow_id: new_id.clone(),
                    new_status: WorkflowStatus::Running,
                    message: format!("Started {new_id}: same type, task queue and input"),
                })
            }
        }
    }
}

impl TemporalSource {
    /// One of Temporal's own workflow commands (`pause`, `unpause`, `cancel`,
    /// `terminate`) on run `id`; `status` and `message` say what follows.
    async fn workflow_command(
        &self,
        id: &str,
        command: &str,
        reason: Option<String>,
        status: WorkflowStatus,
        message: &str,
    ) -> Result<CommandOutcome, CommandError> {
        let (temporal_id, run_id) = self.inner.temporal_ids(id)?;
        let reason = reason.unwrap_or_else(|| format!("{command} from Stepline"));
        self.inner
            .client
            .workflow_command(&temporal_id, &run_id, command, &reason)
            .await
            .map_err(command_error)?;
        Ok(CommandOutcome {
            workflow_id: id.to_owned(),
            new_status: status,
            message: message.to_owned(),
        })
    }

    /// A run's whole history (for a reset point or a clone's input).
    async fn full_history(
        &self,
        workflow_id: &str,
        run_id: &str,
    ) -> Result<Vec<Value>, CommandError> {
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .inner
                .client
                .history(workflow_id, run_id, token.as_deref(), false)
                .await
                .map_err(command_error)?;
            let empty = page.events.is_empty();
            events.extend(page.events);
            match page.next_page_token {
                // A running workflow's history always has a next token: stop at its end.
                Some(next) if !empty => token = Some(next),
                _ => return Ok(events),
            }
        }
    }
}

/// A failed call as the operator sees it: Temporal's refusal (409) or its absence (503).
fn command_error(error: ClientError) -> CommandError {
    match error {
        ClientError::Refused { status, message } if (400..500).contains(&status) => {
            CommandError::Refused(format!("Temporal refused: {message}"))
        }
        ClientError::Refused {
            status: 501,
            message,
        } => CommandError::Refused(format!("Temporal does not support this: {message}")),
        other => CommandError::Unavailable(format!("Temporal is unavailable: {other}")),
    }
}
