//! The projector: the single writer of the read model. Engines hand it batches of source
//! events; it applies each batch atomically (all or nothing; or, for an engine that
//! batches many runs' transitions, all or nothing per run), derives progress, SLA and
//! durations once for every engine, and publishes the resulting live events after the
//! commit. A ticker moves SLA statuses on as time passes.

pub mod apply;
pub mod fit;

use crate::live::LiveHub;
use crate::source::{
    now_ms, ApplyError, Batch, Change, Millis, Refusal, SetAside, Sink, SourceEvent,
};
use crate::store::rollup::Rollup;
use crate::store::{Store, StoreError, Writer};
use app::model::{Capabilities, LiveEvent};
use apply::WorkflowState;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How often SLA statuses are re-derived for time passing.
const SLA_SWEEP_EVERY: Duration = Duration::from_secs(1);

impl From<StoreError> for ApplyError {
    fn from(error: StoreError) -> Self {
        Self::Store(Arc::new(error))
    }
}

/// What one refusal spoils: the whole batch, or only the run it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Atomicity {
    /// A pushed batch: one refused event and nothing of it is applied.
    Batch,
    /// An engine's cycle over many runs: a refused event sets its run's events aside,
    /// and every other run's are applied (a problem with one run touches no other).
    PerRun,
}

/// What applying a batch did.
#[derive(Debug, Default)]
pub struct Applied {
    /// The live events it caused, to publish once it is durable.
    pub live: Vec<LiveEvent>,
    /// The runs left out (only with [`Atomicity::PerRun`]).
    pub set_aside: Vec<SetAside>,
}

struct Request {
    batch: Batch,
    atomicity: Atomicity,
    reply: oneshot::Sender<Result<Vec<SetAside>, ApplyError>>,
}

/// How engines and the ingest API reach the projector; cheap to clone.
#[derive(Clone)]
pub struct Projector {
    requests: mpsc::Sender<Request>,
}

impl Projector {
    /// Starts the projector task over `store`, publishing to `hub`.
    pub fn spawn(store: Store, hub: Arc<LiveHub>) -> Self {
        let (requests, inbox) = mpsc::channel(256);
        tokio::spawn(run(store, hub, inbox));
        Self { requests }
    }

    async fn submit(
        &self,
        batch: Batch,
        atomicity: Atomicity,
    ) -> Result<Vec<SetAside>, ApplyError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request {
                batch,
                atomicity,
                reply,
            })
            .await
            .map_err(|_| ApplyError::Stopped)?;
        answer.await.map_err(|_| ApplyError::Stopped)?
    }
}

#[async_trait::async_trait]
impl Sink for Projector {
    async fn apply(&self, batch: Batch) -> Result<usize, ApplyError> {
        let count = batch.events.len();
        self.submit(batch, Atomicity::Batch).await.map(|_| count)
    }

    async fn apply_per_run(&self, batch: Batch) -> Result<Vec<SetAside>, ApplyError> {
        self.submit(batch, Atomicity::PerRun).await
    }
}

async fn run(store: Store, hub: Arc<LiveHub>, mut inbox: mpsc::Receiver<Request>) {
    let mut sweep = tokio::time::interval(SLA_SWEEP_EVERY);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            request = inbox.recv() => {
                let Some(Request { batch, atomicity, reply }) = request else { break };
                let engine = batch.engine.clone();
                let result = apply_events(&store, batch, atomicity, now_ms()).await;
                let answer = match result {
                    Ok(applied) => {
                        hub.publish(applied.live);
                        Ok(applied.set_aside)
                    }
                    Err(error) => {
                        if let ApplyError::Store(cause) = &error {
                            let cause = app::model::error_chain(cause.as_ref());
                            tracing::error!(%cause, %engine, "batch not applied");
                        }
                        Err(error)
                    }
                };
                // The sender may have given up waiting; the batch stands either way.
                let _ = reply.send(answer);
            }
            _ = sweep.tick() => {
                match sweep_sla(&store, now_ms()).await {
                    Ok(events) => hub.publish(events),
                    Err(cause) => tracing::error!(%cause, "SLA sweep failed"),
                }
            }
        }
    }
}

/// Applies a batch in one transaction, all or nothing, and returns the live events it
/// caused.
pub async fn apply_batch(
    store: &Store,
    batch: Batch,
    now: Millis,
) -> Result<Vec<LiveEvent>, ApplyError> {
    apply_events(store, batch, Atomicity::Batch, now)
        .await
        .map(|applied| applied.live)
}

/// Applies a batch in one transaction; a refused event fails it or sets its run aside,
/// as `atomicity` says.
#[tracing::instrument(name = "projector_batch", skip_all, fields(engine = %batch.engine, events = batch.events.len()))]
pub async fn apply_events(
    store: &Store,
    batch: Batch,
    atomicity: Atomicity,
    now: Millis,
) -> Result<Applied, ApplyError> {
    let Batch {
        engine,
        capabilities,
        events,
        positions,
    } = batch;
    let mut writer = store.begin().await?;
    let mut states: HashMap<String, WorkflowState> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let mut set_aside: Vec<SetAside> = Vec::new();
    for (index, event) in events.into_iter().enumerate() {
        if set_aside
            .iter()
            .any(|run| run.workflow_id == event.workflow_id)
        {
            continue;
        }
        let event = fit::fit(event);
        let id = &event.workflow_id;
        let outcome = apply_one(
            &mut writer,
            (&engine, capabilities),
            &event,
            now,
            &mut states,
            &mut order,
            &mut out,
        );
        match outcome.await {
            Ok(()) => {}
            Err(Step::Store(error)) => return Err(error),
            Err(Step::Refused(refusal)) => match atomicity {
                Atomicity::Batch => {
                    return Err(ApplyError::Refused {
                        index,
                        workflow_id: id.clone(),
                        refusal,
                    })
                }
                Atomicity::PerRun => {
                    states.remove(id);
                    order.retain(|kept| kept != id);
                    set_aside.push(SetAside {
                        index,
                        workflow_id: id.clone(),
                        refusal,
                    });
                }
            },
        }
    }
    if !set_aside.is_empty() {
        out.retain(|live| {
            live.workflow_id()
                .is_none_or(|id| set_aside.iter().all(|run| run.workflow_id != id))
        });
    }
    let mut rollup = Rollup::default();
    for id in &order {
        let state = states.get_mut(id).expect("every ordered id has a state");
        apply::finish(state, now, &mut out);
        // Each run counts once, with its latest outcome.
        let outcome_changed = match &state.ended_before {
            Some(before) => {
                before.0.status != state.row.status
                    || before.0.completed_ms != state.row.completed_ms
            }
            None => true,
        };
        if outcome_changed {
            if let Some(before) = &state.ended_before {
                rollup.remove_run(&before.0, &before.1);
            }
            if state.row.status.is_terminal() {
                rollup.add_run(&state.row, state.steps.values());
            }
        }
        writer.save_workflow(&state.row).await?;
        for step_number in &state.dirty_steps {
            writer.save_step(id, &state.steps[step_number]).await?;
        }
        writer.append_logs(id, &state.new_logs).await?;
    }
    if !rollup.is_empty() {
        writer.add_rollup(rollup).await?;
    }
    for (key, position) in &positions {
        writer.save_position(&engine, key, position).await?;
    }
    writer.commit().await?;
    Ok(Applied {
        live: out,
        set_aside,
    })
}

/// Why one event was not applied: the store failed (the whole batch fails), or the event
/// was refused.
enum Step {
    Store(ApplyError),
    Refused(Refusal),
}

impl<E: Into<ApplyError>> From<E> for Step {
    fn from(error: E) -> Self {
        Self::Store(error.into())
    }
}

/// Applies one event to its run's state, loading the run first if the batch has not
/// touched it yet.
async fn apply_one(
    writer: &mut Writer,
    (engine, capabilities): (&str, Capabilities),
    event: &SourceEvent,
    now: Millis,
    states: &mut HashMap<String, WorkflowState>,
    order: &mut Vec<String>,
    out: &mut Vec<LiveEvent>,
) -> Result<(), Step> {
    let id = &event.workflow_id;
    if let Change::WorkflowStarted(start) = &event.change {
        if states.contains_key(id) || writer.workflow(id).await?.is_some() {
            return Err(Step::Refused(Refusal::AlreadyExists(id.clone())));
        }
        let state = apply::start(event, start, engine, capabilities, now).map_err(Step::Refused)?;
        states.insert(id.clone(), state);
        order.push(id.clone());
        return Ok(());
    }
    if !states.contains_key(id) {
        let Some(row) = writer.workflow(id).await? else {
            return Err(Step::Refused(Refusal::UnknownWorkflow(id.clone())));
        };
        if row.engine != engine {
            return Err(Step::Refused(Refusal::Invalid(format!(
                "workflow {id:?} belongs to engine {:?}",
                row.engine
            ))));
        }
        let steps = writer.steps(id).await?;
        states.insert(id.clone(), WorkflowState::loaded(row, steps));
        order.push(id.clone());
    }
    let state = states.get_mut(id).expect("inserted above");
    apply::apply(state, event, now, out).map_err(Step::Refused)
}

/// Moves on the SLA status of runs that crossed 90 % or 100 % of their target since
/// their last change, and returns the live events of the crossings.
pub async fn sweep_sla(store: &Store, now: Millis) -> Result<Vec<LiveEvent>, StoreError> {
    let candidates = store.sla_candidates(now).await?;
    let mut out = Vec::new();
    if candidates.is_empty() {
        return Ok(out);
    }
    let mut writer = store.begin().await?;
    for mut row in candidates {
        let before = row.sla_status;
        row.sla_status = row.sla_at(now);
        if row.sla_status == before {
            continue;
        }
        row.updated_ms = now.max(row.updated_ms + 1);
        writer.save_workflow(&row).await?;
        apply::push_sla_crossing(&row, before, now, &mut out);
        out.push(LiveEvent::WorkflowUpdated {
            workflow: Box::new(row.to_wire(now)),
        });
    }
    writer.commit().await?;
    Ok(out)
}

#[cfg(test)]
mod tests;
