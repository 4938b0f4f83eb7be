//! Discovery: the runs followed before are resumed from their stored positions, then
//! the namespace is watched for new executions (its counts by status, then a listing
//! of what started since the newest one seen), and each is given a follower.

use super::listed;
use super::position::Position;
use super::{capabilities, Inner, TemporalSource, BACKOFF_CAP, BACKOFF_FIRST, START_OVERLAP};
use crate::engines::temporal::client::{ClientError, Execution};
use crate::retry::Backoff;
use crate::source::RecallError;
use app::model::WorkflowStatus;
use std::collections::HashMap;

impl TemporalSource {
    /// Runs discovery for as long as the process lives.
    pub(super) async fn discover(self) {
        let inner = &self.inner;
        let known = match inner.recall.positions(&inner.engine_id).await {
            Ok(known) => known,
            Err(error) => {
                let cause = app::model::error_chain(&error);
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
        if let Err(error) = inner.learn_known_steps().await {
            let cause = app::model::error_chain(&error);
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
}

impl Inner {
    fn knows(&self, workflow_id: &str, run_id: &str) -> bool {
        self.executions
            .lock()
            .expect("not poisoned")
            .contains(&(workflow_id.to_owned(), run_id.to_owned()))
    }

    /// [`Self::probe_pause`] until the server answers (retrying with backoff).
    pub(super) async fn probe_until_answered(&self) {
        let mut backoff = Backoff::new(BACKOFF_FIRST, BACKOFF_CAP);
        while self.probe_pause().await.is_err() {
            backoff.wait().await;
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
    async fn learn_known_steps(&self) -> Result<(), RecallError> {
        let counts = self.recall.longest_completed_runs(&self.engine_id).await?;
        self.known_steps
            .lock()
            .expect("not poisoned")
            .extend(counts);
        Ok(())
    }
}
