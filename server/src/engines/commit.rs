//! How a followed engine (Temporal, Airflow) stores what it mapped: one batch with the
//! engine's position, retried while the store fails, and never stopped by one fact that
//! does not fit.

use crate::retry::Backoff;
use crate::source::{ApplyError, Batch, Change, SharedSink, SourceEvent, Term};
use app::model::Capabilities;
use std::collections::HashSet;
use std::time::Duration;

/// Waits between tries while the store fails: from 250 ms, doubling, up to 5 s.
const STORE_BACKOFF_FIRST: Duration = Duration::from_millis(250);
const STORE_BACKOFF_CAP: Duration = Duration::from_secs(5);

/// The runs a commit could not store whole.
#[derive(Debug, Default)]
pub struct Committed {
    /// Runs whose start was refused (their id is taken): none of their events is stored.
    pub refused_runs: HashSet<String>,
    /// Runs that lost an event the read model refused (the rest of theirs is stored).
    pub runs_missing_events: HashSet<String>,
    /// Nothing was stored: the batch's lease is no longer this instance's (its term has
    /// ended; another instance follows the engine from the stored positions).
    pub lease_lost: bool,
}

/// Stores `events` of `engine` with its `positions` in one batch, under the lease of
/// `term` when there is one (which ends if the lease is lost). An event the read model
/// refuses is left out (logged with the reason) and the rest stored again; a refused start
/// takes its run's other events with it. Retries while the store fails.
pub async fn commit(
    sink: &SharedSink,
    engine: &str,
    capabilities: Capabilities,
    mut events: Vec<SourceEvent>,
    positions: Vec<(String, String)>,
    term: Option<&Term>,
) -> Committed {
    let mut committed = Committed::default();
    let mut backoff = Backoff::new(STORE_BACKOFF_FIRST, STORE_BACKOFF_CAP);
    loop {
        // A term that ended stores nothing more (what it still had in flight would come
        // after the next holder's resumption).
        if term.is_some_and(Term::is_over) {
            committed.lease_lost = true;
            return committed;
        }
        let batch = Batch {
            engine: engine.to_owned(),
            capabilities,
            events: events.clone(),
            positions: positions.clone(),
            held: term.map(Term::held),
        };
        match sink.apply(batch).await {
            Ok(_) => return committed,
            Err(ApplyError::LeaseLost(lease)) => {
                tracing::warn!(%engine, %lease, "a batch was refused: the lease is no longer ours; following stops here");
                if let Some(term) = term {
                    term.end();
                }
                committed.lease_lost = true;
                return committed;
            }
            Err(ApplyError::Refused { index, refusal, .. }) if index < events.len() => {
                let run = events[index].workflow_id.clone();
                if matches!(events[index].change, Change::WorkflowStarted(_)) {
                    tracing::error!(%engine, %run, %refusal,
                        "a followed run's start was refused; the run is not followed");
                    events.retain(|event| event.workflow_id != run);
                    committed.refused_runs.insert(run);
                } else {
                    let event = events.remove(index);
                    tracing::warn!(%engine, %run, %refusal, ?event,
                        "a mapped event was refused and left out; following goes on");
                    committed.runs_missing_events.insert(run);
                }
            }
            Err(error) => {
                tracing::error!(%engine, %error, "cannot store a followed engine's events; retrying");
                backoff.wait().await;
            }
        }
    }
}
