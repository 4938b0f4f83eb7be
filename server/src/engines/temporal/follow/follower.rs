//! The per-run follower: long-polls one run's history, describes its pending activities,
//! and maps and stores what they tell, batch by batch, until the run closes.

use super::{Inner, TemporalSource, BACKOFF_CAP, BACKOFF_FIRST, DESCRIBE_EVERY};
use crate::engines::temporal::client::ClientError;
use crate::engines::temporal::engine_ref;
use crate::engines::temporal::history::HistoryMapper;
use crate::retry::Backoff;
use crate::source::{Change, SourceEvent};
use app::model::WorkflowStatus;
use serde_json::Value;
use std::sync::Arc;

impl TemporalSource {
    /// Follows a run from after history event `from_event` (with the `attempts` known
    /// beyond it) until it closes.
    pub(super) fn follow(
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
}

impl Inner {
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
}

/// One run followed: its history long-poll and, while activities are pending, describe.
pub(super) struct Follower {
    inner: Arc<Inner>,
    pub(super) id: String,
    pub(super) workflow_id: String,
    pub(super) run_id: String,
    pub(super) mapper: HistoryMapper,
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
                start.engine_ref = Some(engine_ref(&self.workflow_id, &self.run_id));
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
        if let Ok(Some(row)) = self.inner.recall.run(&self.id).await {
            if row.status == WorkflowStatus::Completed {
                self.inner
                    .learn_completed(&row.workflow_type, row.total_steps);
            }
        }
    }
}
