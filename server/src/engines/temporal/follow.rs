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
//!
//! Files: the source handle and the state its parts share are here in `follow.rs`;
//! `discovery.rs` finds the executions to follow; `follower.rs` follows one run's history;
//! `commands.rs` takes operators' commands; `position.rs` is where a run's follower is, as
//! stored; `listed.rs` shows the runs only the listing can tell about.

mod commands;
mod discovery;
mod follower;
mod listed;
mod position;

use super::client::{ClientError, TemporalClient};
use super::SourceConfig;
use crate::engines::health::{HealthBoard, Report};
use crate::source::{LeaseKeeper, SharedRecall, SharedSink, SourceEvent, Term};
use app::model::EngineHealth;
use app::model::{Capabilities, LiveMode};
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
    recall: SharedRecall,
    health: HealthBoard,
    capabilities: Mutex<Capabilities>,
    /// Every run known, by Stepline id: its Temporal ids.
    runs: Mutex<HashMap<String, (String, String)>>,
    /// Every execution known, by its Temporal ids (runs stored under an earlier id
    /// scheme are known by these too, so they are not imported twice).
    executions: Mutex<HashSet<(String, String)>>,
    /// Runs with a follower now, and the lease term it follows in (when it was taken).
    followed: Mutex<HashMap<String, crate::source::Millis>>,
    /// The namespace's lease: only the instance that holds it follows the namespace.
    lease: LeaseKeeper,
    /// The lease term this instance follows in now, if it holds the lease.
    term: Mutex<Option<Term>>,
    /// Steps of the longest completed run of each type: the progress total of new runs.
    known_steps: Mutex<HashMap<String, u32>>,
    /// Runs Stepline itself started (a retry's reset, a clone), with what they came
    /// from ("retry of <id>"): their trigger, which links them to the original.
    origins: Mutex<HashMap<String, String>>,
}

impl TemporalSource {
    /// Starts following `config`'s namespace whenever this instance holds `lease`:
    /// resumes the runs followed before, imports what started within `import_since`, then
    /// follows new executions.
    pub async fn start(
        config: SourceConfig,
        recall: SharedRecall,
        sink: SharedSink,
        health: HealthBoard,
        lease: LeaseKeeper,
    ) -> Result<Self, String> {
        let client = TemporalClient::new(&config.url, &config.namespace, config.api_key.clone())?;
        let engine_id = config.engine_id();
        let inner = Arc::new(Inner {
            engine_id: engine_id.clone(),
            client,
            sink,
            recall,
            health,
            capabilities: Mutex::new(capabilities(false)),
            runs: Mutex::new(HashMap::new()),
            executions: Mutex::new(HashSet::new()),
            followed: Mutex::new(HashMap::new()),
            lease,
            term: Mutex::new(None),
            known_steps: Mutex::new(HashMap::new()),
            origins: Mutex::new(HashMap::new()),
            config,
        });
        inner
            .health
            .set(&engine_id, EngineHealth::connecting(&engine_id));
        let source = Self { inner };
        tokio::spawn(source.clone().lead());
        Ok(source)
    }

    /// Follows the namespace in each term this instance holds its lease, from what the
    /// store holds at the term's start (the last holder's positions); in between, only
    /// learns whether the server can pause runs (commands are taken by every instance).
    async fn lead(self) {
        let inner = &self.inner;
        let mut lease = inner.lease.clone();
        let mut probed = false;
        loop {
            let term = tokio::select! {
                term = lease.next_term(|| {
                    inner.health.set(&inner.engine_id, EngineHealth::standby(&inner.engine_id));
                }) => term,
                () = inner.probe_until_answered(), if !probed => {
                    probed = true;
                    continue;
                }
            };
            tracing::info!(engine = %inner.engine_id, "following the Temporal namespace: this instance holds its lease");
            inner
                .health
                .set(&inner.engine_id, EngineHealth::connecting(&inner.engine_id));
            // The term starts from the store, as another instance may have followed the
            // namespace since this one last did (every follower of a term ends with it).
            inner.executions.lock().expect("not poisoned").clear();
            *inner.term.lock().expect("not poisoned") = Some(term.clone());
            tokio::select! {
                () = self.clone().discover() => {}
                () = term.ended() => {}
            }
            tracing::warn!(engine = %inner.engine_id, "no longer following the Temporal namespace: its lease is another instance's");
        }
    }

    /// The engine's id (`temporal:<source>:<namespace>`).
    pub fn engine_id(&self) -> &str {
        &self.inner.engine_id
    }
}

impl Inner {
    /// Runs `watch` for run `id` for the current lease term, unless the run is followed
    /// in it already; the run is no longer followed once `watch` or the term ends. Without
    /// a term, nothing runs: the instance that holds the lease follows the run.
    fn spawn_following(
        self: &Arc<Self>,
        id: String,
        watch: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let Some(term) = self.current_term() else {
            return;
        };
        {
            let mut followed = self.followed.lock().expect("not poisoned");
            if followed.get(&id) == Some(&term.taken_ms()) {
                return;
            }
            followed.insert(id.clone(), term.taken_ms());
        }
        let inner = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                biased;
                () = term.ended() => {}
                () = watch => {}
            }
            let mut followed = inner.followed.lock().expect("not poisoned");
            if followed.get(&id) == Some(&term.taken_ms()) {
                followed.remove(&id);
            }
        });
    }

    /// The lease term this instance follows the namespace in, while it lasts.
    fn current_term(&self) -> Option<Term> {
        self.term
            .lock()
            .expect("not poisoned")
            .clone()
            .filter(|term| !term.is_over())
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

    /// Stores a batch, retrying while the store fails. An event the read model refuses
    /// is left out (and logged with the reason) and the rest is stored: one fact that
    /// does not fit must never stop the run from being followed. False when the run's
    /// start itself is refused (its id is taken: its events belong to no run here), or the
    /// lease term has ended (the follower stops; the next holder resumes the run).
    async fn commit(&self, events: Vec<SourceEvent>, position: (String, String)) -> bool {
        self.commit_as(events, position, self.capabilities()).await
    }

    /// [`Self::commit`], for runs that can do `capabilities` (not the source's own).
    async fn commit_as(
        &self,
        events: Vec<SourceEvent>,
        position: (String, String),
        capabilities: Capabilities,
    ) -> bool {
        let run = position.0.clone();
        let Some(term) = self.current_term() else {
            return false;
        };
        let committed = crate::engines::commit::commit(
            &self.sink,
            &self.engine_id,
            capabilities,
            events,
            vec![position],
            Some(&term),
        )
        .await;
        !committed.refused_runs.contains(&run) && !committed.lease_lost
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
