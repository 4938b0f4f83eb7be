//! The projector: the single writer of the read model. Engines hand it batches of source
//! events; it applies each batch atomically (all or nothing; or, for an engine that
//! batches many runs' transitions, all or nothing per run), derives progress, SLA and
//! durations once for every engine, and publishes the resulting live events after the
//! commit. A ticker moves SLA statuses on as time passes.

pub mod apply;
pub mod fit;

use crate::alerts::{AlertMoves, Conditions};
use crate::forecast::{forecast, Forecaster};
use crate::live::LiveHub;
use crate::source::{
    now_ms, ApplyError, Batch, Change, Millis, Refusal, SetAside, Sink, SourceEvent,
};
use crate::store::rollup::Rollup;
use crate::store::rows::{StepRow, WorkflowRow};
use crate::store::{Store, StoreError, Writer};
use app::model::alert::Alert;
use app::model::{Capabilities, LiveEvent, WorkflowStatus};
use apply::WorkflowState;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How often SLA statuses are re-derived for time passing.
const SLA_SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How often running runs are forecast again (see `crate::forecast`).
const FORECAST_SWEEP_EVERY: Duration = Duration::from_secs(2);

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
    /// The live events it caused, to publish once it is durable...
    pub live: Vec<LiveEvent>,
    /// ... unless they went to the store's shared log with the change (PostgreSQL, see
    /// `live::shared`), whence every instance's hub reads them.
    pub logged: bool,
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
    /// Starts the projector over `store`, publishing to `hub`, on a thread of its own:
    /// each of its statements' answers wakes it at once, never behind the pages' and
    /// readers' tasks queued on the shared runtime (under 16 busy readers, ingest went
    /// from tens of thousands of events a second to a few thousand when it shared it).
    /// The thread ends when the last handle is dropped.
    pub fn spawn(store: Store, hub: Arc<LiveHub>) -> Self {
        let (requests, inbox) = mpsc::channel(256);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("stepline-projector")
            .build();
        match runtime {
            Ok(runtime) => {
                // Without its thread nothing can be stored: better to stop at start.
                std::thread::Builder::new()
                    .name("stepline-projector".into())
                    .spawn(move || runtime.block_on(run(store, hub, inbox)))
                    .expect("the operating system gives the projector a thread");
            }
            Err(error) => {
                // Without a runtime of its own it shares the caller's.
                tracing::warn!(%error, "the projector runs on the shared runtime");
                tokio::spawn(run(store, hub, inbox));
            }
        }
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
    // Beside the batches, not between them: its writes are short and take turns with theirs.
    let forecasts = tokio::spawn(forecast_again(store.clone(), hub.clone()));
    loop {
        tokio::select! {
            request = inbox.recv() => {
                let Some(Request { batch, atomicity, reply }) = request else { break };
                let engine = batch.engine.clone();
                let events = batch.events.len();
                let transitions = crate::metrics::step_transitions(&batch);
                let started = std::time::Instant::now();
                let result = apply_events(&store, batch, atomicity, now_ms()).await;
                let outcome = match &result {
                    Ok(_) => "applied",
                    Err(ApplyError::Store(_)) => "failed",
                    Err(_) => "refused",
                };
                crate::metrics::projector_batch(outcome, events, started.elapsed());
                if result.is_ok() {
                    crate::metrics::count_step_transitions(transitions);
                }
                let answer = match result {
                    Ok(applied) => {
                        if !applied.logged {
                            hub.publish_of(Some(&engine), applied.live);
                        }
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
                    Ok(crossings) => publish(&store, &hub, crossings),
                    Err(cause) => tracing::error!(%cause, "SLA sweep failed"),
                }
            }
        }
    }
    forecasts.abort();
}

/// Forecasts the running runs again every [`FORECAST_SWEEP_EVERY`], for as long as the
/// projector runs.
async fn forecast_again(store: Store, hub: Arc<LiveHub>) {
    let mut every = tokio::time::interval(FORECAST_SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut forecaster = Forecaster::default();
    loop {
        every.tick().await;
        match forecaster.sweep(&store, now_ms()).await {
            Ok(changes) => publish(&store, &hub, changes),
            Err(cause) => tracing::error!(%cause, "forecast sweep failed"),
        }
    }
}

/// Publishes what a sweep changed, by engine; on PostgreSQL it went to the shared log
/// with the change, and every instance's hub reads it from there.
pub fn publish(store: &Store, hub: &LiveHub, changes: Vec<(String, Vec<LiveEvent>)>) {
    if !store.shares_live_events() {
        for (engine, events) in changes {
            hub.publish_of(Some(&engine), events);
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
        held,
    } = batch;
    let mut writer = store.begin().await?;
    if let Some(held) = &held {
        if !writer.holds_lease(held, now).await? {
            return Err(ApplyError::LeaseLost(held.lease.clone()));
        }
    }
    // Every run the batch names that exists, read at once (a cost per batch, not per
    // event); a run is taken from here the first time an event touches it.
    let mut stored = {
        let mut named: Vec<&str> = events.iter().map(|e| e.workflow_id.as_str()).collect();
        named.sort_unstable();
        named.dedup();
        writer.runs(&named).await?
    };
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
            &mut stored,
            (&engine, capabilities),
            &event,
            now,
            &mut states,
            &mut order,
            &mut out,
        );
        match outcome {
            Ok(()) => {}
            Err(refusal) => match atomicity {
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
    let mut alerting = AlertMoves::default();
    for id in &order {
        let state = states.get_mut(id).expect("every ordered id has a state");
        // A running run's forecast rides on its update, from its type's history as the
        // sweep last read it (nothing is read while the write lock is held; a type not
        // read yet is forecast by the next sweep, which renews every forecast as time
        // passes). Once the run stops running it has none.
        if state.row.status == WorkflowStatus::Running {
            if let Some(history) = store.kept_type_history(&state.row.workflow_type) {
                let forecast = forecast(&state.row, state.steps.values(), &history, now);
                state.row.forecast = Some(forecast);
            }
        } else {
            state.row.forecast = None;
        }
        apply::finish(state, now, &mut out);
        alerting.add(state.alerting_before, &state.row);
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
    }
    // Written a table at a time, many rows to a statement: runs before their steps,
    // steps before the log lines that count against them.
    let runs: Vec<&WorkflowState> = order.iter().map(|id| &states[id]).collect();
    let rows: Vec<_> = runs.iter().map(|state| &state.row).collect();
    writer.save_workflows(&rows).await?;
    let steps: Vec<_> = runs
        .iter()
        .flat_map(|state| {
            state
                .dirty_steps
                .iter()
                .map(|number| (state.row.id.as_str(), &state.steps[number]))
        })
        .collect();
    writer.save_steps(&steps).await?;
    for state in &runs {
        writer.append_logs(&state.row.id, &state.new_logs).await?;
    }
    out.extend(alert_events(writer.move_alerts(&alerting, now).await?));
    if !rollup.is_empty() {
        writer.add_rollup(rollup).await?;
    }
    for (key, position) in &positions {
        writer.save_position(&engine, key, position).await?;
    }
    let logged = writer.record_live(Some(&engine), &out, now).await?;
    writer.commit().await?;
    Ok(Applied {
        live: out,
        logged,
        set_aside,
    })
}

/// Applies one event to its run's state, taking the run from what the batch read of the
/// store the first time the batch touches it.
fn apply_one(
    stored: &mut HashMap<String, (WorkflowRow, Vec<StepRow>)>,
    (engine, capabilities): (&str, Capabilities),
    event: &SourceEvent,
    now: Millis,
    states: &mut HashMap<String, WorkflowState>,
    order: &mut Vec<String>,
    out: &mut Vec<LiveEvent>,
) -> Result<(), Refusal> {
    let id = &event.workflow_id;
    if let Change::WorkflowStarted(start) = &event.change {
        if states.contains_key(id) || stored.contains_key(id) {
            return Err(Refusal::AlreadyExists(id.clone()));
        }
        let state = apply::start(event, start, engine, capabilities, now)?;
        states.insert(id.clone(), state);
        order.push(id.clone());
        return Ok(());
    }
    if !states.contains_key(id) {
        let Some((row, steps)) = stored.remove(id) else {
            return Err(Refusal::UnknownWorkflow(id.clone()));
        };
        if row.engine != engine {
            let refusal = Refusal::Invalid(format!(
                "workflow {id:?} belongs to engine {:?}",
                row.engine
            ));
            // Put back: a later event of the batch about it is refused the same way.
            stored.insert(id.clone(), (row, steps));
            return Err(refusal);
        }
        states.insert(id.clone(), WorkflowState::loaded(row, steps));
        order.push(id.clone());
    }
    let state = states.get_mut(id).expect("inserted above");
    apply::apply(state, event, now, out)
}

/// Moves on the SLA status of runs that crossed 90 % or 100 % of their target since
/// their last change, and returns the live events of the crossings, by engine.
pub async fn sweep_sla(
    store: &Store,
    now: Millis,
) -> Result<Vec<(String, Vec<LiveEvent>)>, StoreError> {
    let mut out: Vec<(String, Vec<LiveEvent>)> = Vec::new();
    // Read first without the write lock: most sweeps find nothing to move.
    if store.sla_candidates(now).await?.is_empty() {
        return Ok(out);
    }
    // Then again under it: another instance's sweep may have moved them meanwhile, and
    // each crossing is said once.
    let mut writer = store.begin().await?;
    let candidates = writer.sla_candidates(now).await?;
    let mut moved = Vec::new();
    let mut alerting = AlertMoves::default();
    for mut row in candidates {
        let alerting_before = Conditions::of(&row);
        let before = row.sla_status;
        row.sla_status = row.sla_at(now);
        if row.sla_status == before {
            continue;
        }
        row.updated_ms = now.max(row.updated_ms + 1);
        let mut events = Vec::new();
        apply::push_sla_crossing(&row, before, now, &mut events);
        events.push(LiveEvent::WorkflowUpdated {
            workflow: Box::new(row.to_wire(now)),
        });
        add_of_engine(&mut out, &row.engine, events);
        alerting.add(alerting_before, &row);
        moved.push(row);
    }
    if moved.is_empty() {
        return Ok(out);
    }
    writer
        .save_workflows(&moved.iter().collect::<Vec<_>>())
        .await?;
    move_alerts(&mut writer, &alerting, now, &mut out).await?;
    // On PostgreSQL the crossings go to the shared log with the change.
    for (engine, events) in &out {
        writer.record_live(Some(engine), events, now).await?;
    }
    writer.commit().await?;
    Ok(out)
}

/// The live events of alerts that changed.
pub fn alert_events(alerts: Vec<Alert>) -> impl Iterator<Item = LiveEvent> {
    alerts.into_iter().map(|alert| LiveEvent::AlertChanged {
        alert: Box::new(alert),
    })
}

/// Fires and resolves what `moves` says in `writer`'s transaction, and adds the live
/// events of the alerts that changed to `out`, by engine.
pub async fn move_alerts(
    writer: &mut Writer,
    moves: &AlertMoves,
    now: Millis,
    out: &mut Vec<(String, Vec<LiveEvent>)>,
) -> Result<(), StoreError> {
    for alert in writer.move_alerts(moves, now).await? {
        let engine = alert.engine.clone();
        add_of_engine(out, &engine, alert_events(vec![alert]).collect());
    }
    Ok(())
}

/// Fires and resolves what `moves` says in a write transaction of its own; the live
/// events of the alerts that changed, by engine, to publish (on PostgreSQL they went to
/// the shared log with the change).
pub async fn commit_alert_moves(
    store: &Store,
    moves: &AlertMoves,
    now: Millis,
) -> Result<Vec<(String, Vec<LiveEvent>)>, StoreError> {
    let mut told = Vec::new();
    if moves.is_empty() {
        return Ok(told);
    }
    let mut writer = store.begin().await?;
    move_alerts(&mut writer, moves, now, &mut told).await?;
    for (engine, events) in &told {
        writer.record_live(Some(engine), events, now).await?;
    }
    writer.commit().await?;
    Ok(told)
}

/// Adds `events` to those of `engine` in `out` (live events are published by engine).
pub fn add_of_engine(
    out: &mut Vec<(String, Vec<LiveEvent>)>,
    engine: &str,
    events: Vec<LiveEvent>,
) {
    match out.iter_mut().find(|(of, _)| of == engine) {
        Some((_, of_engine)) => of_engine.extend(events),
        None => out.push((engine.to_owned(), events)),
    }
}

#[cfg(test)]
mod tests;
