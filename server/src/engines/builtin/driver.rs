//! The driver: the one task that owns every live run. It collects what happened,
//! decides the next transitions, commits them through the sink, then carries them out.

use super::admission::{queue_key, QueueKey};
use super::definition::Definition;
use super::execute::{self, LogSink};
use super::ids::IdGenerator;
use super::run::{holds_slot, Decisions, Effect, Launch, Run};
use super::{capabilities, Census, Limits, ENGINE_ID};
use crate::source::clock::{to_datetime, Millis};
use crate::source::{
    now_ms, ApplyError, Batch, Command, CommandError, CommandOutcome, RecallError, RunSnapshot,
    SetAside, SharedRecall, SharedSink, StartRequest, Term,
};
use app::model::{Priority, WorkflowStatus};
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

/// What a running step's log says when the server stops under it.
pub(super) const STOPPED_LINE: &str = "Stepline stopped here (the server shut down): this attempt \
     runs again from the start when the engine resumes";

/// Most source events committed in one transaction; more wait for the next one.
const MAX_EVENTS_PER_COMMIT: usize = 4_000;

/// A command that needed the read model, which could not be read.
fn unreadable(error: RecallError) -> CommandError {
    CommandError::Unavailable(app::model::error_chain(&error))
}

type Reply = oneshot::Sender<Result<CommandOutcome, CommandError>>;

pub(super) enum Message {
    Start(StartRequest, Reply),
    Command(String, Command, Reply),
    Census(oneshot::Sender<Census>),
    /// The server shuts down: record where each running step stopped, then stop (answered
    /// with how many steps were running).
    Stop(oneshot::Sender<usize>),
    Log {
        workflow_id: String,
        step_number: u32,
        attempt: u32,
        line: String,
    },
    Finished {
        workflow_id: String,
        step_number: u32,
        attempt: u32,
        result: Result<Option<Value>, String>,
    },
}

/// What one cycle decided and owes: events to commit, then effects and replies.
#[derive(Default)]
pub(super) struct Cycle {
    decisions: Decisions,
    replies: Vec<(Reply, Result<(String, String), CommandError>)>,
    touched: BTreeSet<String>,
    /// Log lines per (run, step), in arrival order, folded into events at commit.
    logs: Vec<(String, u32, Vec<String>)>,
    /// Set by [`Message::Stop`]: the driver stops once this cycle is stored.
    stop: Option<(oneshot::Sender<usize>, usize)>,
}

pub(super) struct Driver {
    definitions: Arc<HashMap<String, Arc<Definition>>>,
    pub(super) limits: Limits,
    /// Every open run (and runs that ended in this cycle, until it commits).
    pub(super) runs: HashMap<String, Run>,
    pub(super) queue: BTreeSet<QueueKey>,
    /// Slots held per type, and in all.
    pub(super) slots: HashMap<String, usize>,
    pub(super) slots_total: usize,
    timers: BinaryHeap<Reverse<(Millis, String)>>,
    executions: HashMap<(String, u32), AbortHandle>,
    sink: SharedSink,
    recall: SharedRecall,
    /// For executions to report back; weak so the engine stops when its handles go.
    inbox: mpsc::WeakSender<Message>,
    http: reqwest::Client,
    ids: IdGenerator,
    /// The lease term this driver drives the runs in: it stops when the term ends, and
    /// its batches are stored only while the term lasts.
    term: Term,
}

impl Driver {
    /// Builds the driver over `definitions` for lease `term`, picks up every run the
    /// store holds open from before, and spawns its task; returns the sender that talks
    /// to it.
    pub(super) async fn spawn(
        definitions: Arc<HashMap<String, Arc<Definition>>>,
        limits: Limits,
        recall: SharedRecall,
        sink: SharedSink,
        term: Term,
    ) -> Result<mpsc::Sender<Message>, RecallError> {
        // One process-wide TLS provider; a second install attempt is harmless.
        crate::engines::install_tls_provider();
        let (inbox, messages) = mpsc::channel(8_192);
        let mut driver = Driver {
            definitions,
            limits,
            runs: HashMap::new(),
            queue: BTreeSet::new(),
            slots: HashMap::new(),
            slots_total: 0,
            timers: BinaryHeap::new(),
            executions: HashMap::new(),
            sink,
            recall,
            inbox: inbox.downgrade(),
            // A redirect is the endpoint's answer (a 3xx fails the step), not an
            // instruction to call somewhere else; see `execute::call` for the timeouts.
            http: reqwest::Client::builder()
                .user_agent(concat!("stepline/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(std::time::Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("the HTTP client has a valid configuration"),
            ids: IdGenerator::default(),
            term,
        };
        driver.recover().await?;
        tokio::spawn(driver.run(messages));
        Ok(inbox)
    }

    /// Loads every open run of this engine from the store and commits what a restart
    /// changes (interrupted attempts), then starts their work.
    async fn recover(&mut self) -> Result<(), RecallError> {
        let open = self.recall.open_runs(ENGINE_ID).await?;
        let now = now_ms();
        let mut cycle = Cycle::default();
        let count = open.len();
        for run in &open {
            self.restore(run, now, &mut cycle);
        }
        if count > 0 {
            tracing::info!(
                runs = count,
                "built-in engine resumed the runs open before the restart"
            );
        }
        self.admit(now, &mut cycle);
        self.commit(cycle).await;
        Ok(())
    }

    /// Puts a run read from the store back in memory, or fails it when its definition
    /// is gone or changed shape.
    fn restore(&mut self, row: &RunSnapshot, now: Millis, cycle: &mut Cycle) {
        let restored = match self.definitions.get(&row.workflow_type) {
            Some(definition) => Run::restore(row, definition.clone(), now, &mut cycle.decisions),
            None => Err(format!(
                "workflow type {:?} is no longer defined, so this run cannot go on",
                row.workflow_type
            )),
        };
        match restored {
            Ok(mut run) => {
                // Interrupted steps run again now; waits go on from where they were.
                run.advance(now, &mut cycle.decisions);
                self.track(&run.id, None, Some(&run));
                cycle.touched.insert(run.id.clone());
                self.runs.insert(run.id.clone(), run);
            }
            Err(problem) if !row.status.is_terminal() => {
                tracing::warn!(workflow = %row.id, %problem, "run cannot resume");
                cycle.decisions.events.push(crate::source::SourceEvent {
                    workflow_id: row.id.clone(),
                    at: to_datetime(now),
                    change: crate::source::Change::WorkflowStatusChanged {
                        status: WorkflowStatus::Failed,
                        reason: Some(problem),
                    },
                });
            }
            Err(_) => {}
        }
    }

    /// Changes one run through `change`, keeping the bookkeeping right.
    pub(super) fn with_run<T>(
        &mut self,
        id: &str,
        cycle: &mut Cycle,
        change: impl FnOnce(&mut Run, &mut Decisions) -> T,
    ) -> Option<T> {
        let mut run = self.runs.remove(id)?;
        let before = (
            run.status,
            queue_key(&run),
            run.definition.workflow_type.clone(),
        );
        let result = change(&mut run, &mut cycle.decisions);
        self.track(id, Some((before.0, before.1, &before.2)), Some(&run));
        cycle.touched.insert(id.to_owned());
        self.runs.insert(id.to_owned(), run);
        Some(result)
    }

    async fn run(mut self, mut messages: mpsc::Receiver<Message>) {
        loop {
            let wake = self.timers.peek().map(|Reverse((at, _))| *at);
            let first = tokio::select! {
                biased;
                () = self.term.ended() => break,
                message = messages.recv() => match message {
                    Some(message) => Some(message),
                    None => break,
                },
                () = sleep_until(wake) => None,
            };
            let now = now_ms();
            let mut cycle = Cycle::default();
            if let Some(message) = first {
                self.handle(message, now, &mut cycle).await;
            }
            while cycle.stop.is_none() && cycle.decisions.events.len() < MAX_EVENTS_PER_COMMIT {
                match messages.try_recv() {
                    Ok(message) => self.handle(message, now, &mut cycle).await,
                    Err(_) => break,
                }
            }
            if let Some((reply, running)) = cycle.stop.take() {
                // Nothing new starts; what happened so far is stored, with where each
                // running step was left.
                self.commit(cycle).await;
                let _ = reply.send(running);
                break;
            }
            self.fire_timers(now, &mut cycle);
            self.admit(now, &mut cycle);
            self.commit(cycle).await;
        }
        for (_, execution) in self.executions.drain() {
            execution.abort();
        }
    }

    async fn handle(&mut self, message: Message, now: Millis, cycle: &mut Cycle) {
        match message {
            Message::Start(request, reply) => {
                let Some(definition) = self.definitions.get(&request.workflow_type).cloned() else {
                    let refused = CommandError::Refused(format!(
                        "no workflow type {:?}",
                        request.workflow_type
                    ));
                    let _ = reply.send(Err(refused));
                    return;
                };
                let id = match self.fresh_id(&definition.workflow_type, now).await {
                    Ok(id) => id,
                    Err(error) => {
                        let _ = reply.send(Err(error));
                        return;
                    }
                };
                let run = Run::create(id.clone(), definition, request, now, &mut cycle.decisions);
                self.track(&id, None, Some(&run));
                self.runs.insert(id.clone(), run);
                cycle.touched.insert(id.clone());
                cycle
                    .replies
                    .push((reply, Ok((id, "Workflow started".to_owned()))));
            }
            Message::Command(id, command, reply) => {
                let outcome = self.command(&id, command, now, cycle).await;
                cycle.replies.push((reply, outcome));
            }
            Message::Stop(reply) => {
                let mut running: Vec<(String, u32)> = self.executions.keys().cloned().collect();
                running.sort();
                for (workflow_id, step_number) in &running {
                    cycle.logs.push((
                        workflow_id.clone(),
                        *step_number,
                        vec![STOPPED_LINE.to_owned()],
                    ));
                }
                cycle.stop = Some((reply, running.len()));
            }
            Message::Census(reply) => {
                let mut census = Census::default();
                for run in self.runs.values() {
                    let counts = match run.status {
                        WorkflowStatus::Pending => &mut census.pending,
                        status if holds_slot(status) => &mut census.running,
                        _ => continue,
                    };
                    *counts
                        .entry(run.definition.workflow_type.clone())
                        .or_default() += 1;
                }
                let _ = reply.send(census);
            }
            Message::Log {
                workflow_id,
                step_number,
                attempt,
                line,
            } => {
                let current = self
                    .runs
                    .get(&workflow_id)
                    .is_some_and(|run| run.attempt_running(step_number) == Some(attempt));
                if !current {
                    return;
                }
                match cycle.logs.iter_mut().find(|(id, step, lines)| {
                    id == &workflow_id
                        && *step == step_number
                        && lines.len() < crate::source::limits::LOG_LINES_PER_EVENT
                }) {
                    Some((_, _, lines)) => lines.push(line),
                    None => cycle.logs.push((workflow_id, step_number, vec![line])),
                }
            }
            Message::Finished {
                workflow_id,
                step_number,
                attempt,
                result,
            } => {
                if self
                    .runs
                    .get(&workflow_id)
                    .and_then(|run| run.attempt_running(step_number))
                    == Some(attempt)
                {
                    self.executions.remove(&(workflow_id.clone(), step_number));
                }
                // Lines logged before the result come first in the history.
                flush_logs(cycle, &workflow_id, step_number, now);
                self.with_run(&workflow_id, cycle, |run, decisions| {
                    run.finish_attempt(step_number, attempt, result, now, decisions)
                });
            }
        }
    }

    async fn command(
        &mut self,
        id: &str,
        command: Command,
        now: Millis,
        cycle: &mut Cycle,
    ) -> Result<(String, String), CommandError> {
        if !self.runs.contains_key(id) {
            // A finished run is not kept in memory: read it back for a retry or clone.
            let row = self
                .recall
                .run(id)
                .await
                .map_err(unreadable)?
                .filter(|row| row.engine == ENGINE_ID)
                .ok_or_else(|| CommandError::UnknownWorkflow(id.to_owned()))?;
            if let Command::Clone { triggered_by } = command {
                return self
                    .clone_run(
                        id,
                        &row.workflow_type,
                        row.input.clone(),
                        row.priority,
                        triggered_by,
                        now,
                        cycle,
                    )
                    .await;
            }
            self.restore(&row, now, cycle);
            if !self.runs.contains_key(id) {
                return Err(CommandError::Refused(format!(
                    "workflow {id:?} cannot be resumed by this engine: its definition changed or is gone"
                )));
            }
        }
        let result =
            match command {
                Command::Pause => self.with_run(id, cycle, |run, d| run.pause(now, d)),
                Command::Resume => self.with_run(id, cycle, |run, d| run.resume(now, d)),
                Command::Cancel { reason } => {
                    self.with_run(id, cycle, |run, d| run.cancel(reason, now, d))
                }
                Command::Retry { from_step } => {
                    self.with_run(id, cycle, |run, d| run.retry(from_step, now, d))
                }
                // Not among its capabilities: its cancel always rolls back.
                Command::Terminate { .. } => return Err(CommandError::Refused(
                    "the built-in engine has no hard stop: cancel stops the run and rolls it back"
                        .into(),
                )),
                Command::Clone { triggered_by } => {
                    let run = &self.runs[id];
                    let (workflow_type, input, priority) = (
                        run.definition.workflow_type.clone(),
                        Some(run.input.clone()),
                        run.priority,
                    );
                    return self
                        .clone_run(
                            id,
                            &workflow_type,
                            input,
                            priority,
                            triggered_by,
                            now,
                            cycle,
                        )
                        .await;
                }
            }
            .expect("the run is in memory");
        result
            .map(|message| (id.to_owned(), message))
            .map_err(CommandError::Refused)
    }

    /// The next run id no run of any engine holds: another engine's (pushed) run may
    /// already have the id we would hand out (ours are predictable), and it stays theirs.
    async fn fresh_id(&mut self, workflow_type: &str, now: Millis) -> Result<String, CommandError> {
        loop {
            let id = self.ids.next(workflow_type, now);
            if self.runs.contains_key(&id) {
                continue;
            }
            let taken = self.recall.run(&id).await.map_err(unreadable)?;
            if taken.is_none() {
                return Ok(id);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn clone_run(
        &mut self,
        original: &str,
        workflow_type: &str,
        input: Option<Value>,
        priority: Priority,
        triggered_by: Option<String>,
        now: Millis,
        cycle: &mut Cycle,
    ) -> Result<(String, String), CommandError> {
        let definition = self
            .definitions
            .get(workflow_type)
            .cloned()
            .ok_or_else(|| {
                CommandError::Refused(format!(
                    "workflow type {workflow_type:?} is no longer defined"
                ))
            })?;
        let id = self.fresh_id(workflow_type, now).await?;
        let request = StartRequest {
            workflow_type: workflow_type.to_owned(),
            input: input.unwrap_or(Value::Null),
            priority: Some(priority),
            triggered_by: triggered_by.or_else(|| Some("operator".into())),
            trigger_type: Some(format!("clone of {original}")),
            tags: Vec::new(),
        };
        let run = Run::create(id.clone(), definition, request, now, &mut cycle.decisions);
        self.track(&id, None, Some(&run));
        self.runs.insert(id.clone(), run);
        cycle.touched.insert(id.clone());
        Ok((id.clone(), format!("Cloned {original} as {id}")))
    }

    fn fire_timers(&mut self, now: Millis, cycle: &mut Cycle) {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Reverse((_, id)) = self.timers.pop().expect("peeked");
            if self.runs.contains_key(&id) {
                self.with_run(&id, cycle, |run, d| run.advance(now, d));
            }
        }
    }

    /// Hands events to the sink, which stores them in one transaction, run by run:
    /// a run whose transition is refused is set aside (returned) and touches no other.
    async fn persist(
        &self,
        events: Vec<crate::source::SourceEvent>,
    ) -> Result<Vec<SetAside>, ApplyError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.sink
            .apply_per_run(Batch {
                engine: ENGINE_ID.into(),
                capabilities: capabilities(),
                events,
                positions: Vec::new(),
                held: Some(self.term.held()),
            })
            .await
    }

    /// Our rules and the projector's disagree about these runs: they are left as stored
    /// (and resumed from there after a restart) rather than driven on from a state the
    /// read model does not have.
    fn set_aside(&mut self, runs: &[SetAside]) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for run in runs {
            tracing::error!(workflow = %run.workflow_id, refusal = %run.refusal, "run set aside: its transition was refused");
            self.forget(&run.workflow_id);
            ids.insert(run.workflow_id.clone());
        }
        ids
    }

    /// Carries out the effects of a stored cycle, but none for a run set aside.
    fn carry_out_all(&mut self, effects: Vec<Effect>, set_aside: &BTreeSet<String>) {
        for effect in effects {
            if !set_aside.contains(effect.workflow_id()) {
                self.carry_out(effect);
            }
        }
    }

    /// Makes the cycle's events durable, then carries out its effects and answers.
    async fn commit(&mut self, mut cycle: Cycle) {
        let buffered: Vec<(String, u32)> = cycle
            .logs
            .iter()
            .map(|(id, step, _)| (id.clone(), *step))
            .collect();
        let now = now_ms();
        for (id, step) in buffered {
            flush_logs(&mut cycle, &id, step, now);
        }
        let Cycle {
            decisions,
            replies,
            touched,
            ..
        } = cycle;
        match self.persist(decisions.events).await {
            Ok(set_aside) => {
                let set_aside = self.set_aside(&set_aside);
                self.carry_out_all(decisions.effects, &set_aside);
                for (reply, outcome) in replies {
                    let answer = outcome.and_then(|(workflow_id, message)| {
                        if set_aside.contains(&workflow_id) {
                            return Err(CommandError::Unavailable(format!(
                                "the change to {workflow_id} could not be stored; see the server log"
                            )));
                        }
                        Ok(CommandOutcome {
                            new_status: self
                                .runs
                                .get(&workflow_id)
                                .map_or(WorkflowStatus::Pending, |run| run.status),
                            workflow_id,
                            message,
                        })
                    });
                    let _ = reply.send(answer);
                }
                self.drop_ended(&touched);
            }
            Err(ApplyError::LeaseLost(_)) => {
                // Another instance drives the runs from what is stored; this driver stops.
                self.term.end();
                for (reply, _) in replies {
                    let _ = reply.send(Err(CommandError::Unavailable(
                        "another instance of Stepline took the built-in engine over; try again"
                            .into(),
                    )));
                }
            }
            Err(error) => {
                tracing::error!(%error, "built-in engine: transitions not stored; reloading the runs involved");
                for (reply, _) in replies {
                    let _ = reply.send(Err(CommandError::Unavailable(format!(
                        "the change could not be stored: {error}"
                    ))));
                }
                self.reload(touched).await;
            }
        }
    }

    /// Ended runs leave memory; a retry or clone reads them back.
    fn drop_ended(&mut self, ids: &BTreeSet<String>) {
        for id in ids {
            if self
                .runs
                .get(id)
                .is_some_and(|run| run.status.is_terminal())
            {
                self.forget(id);
            }
        }
    }

    fn forget(&mut self, id: &str) {
        if let Some(run) = self.runs.remove(id) {
            let key = queue_key(&run);
            self.track(
                id,
                Some((run.status, key, &run.definition.workflow_type)),
                None,
            );
        }
        self.executions.retain(|(run_id, _), execution| {
            let keep = run_id != id;
            if !keep {
                execution.abort();
            }
            keep
        });
    }

    /// After a failed commit, rebuilds the runs involved from the store (the truth)
    /// and stores what that changes, backing off while the store keeps failing. The
    /// engine makes no other progress meanwhile: without its store it cannot.
    async fn reload(&mut self, mut ids: BTreeSet<String>) {
        let mut backoff = crate::retry::Backoff::new(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(10),
        );
        loop {
            let now = now_ms();
            let mut cycle = Cycle::default();
            for id in &ids {
                if !self.runs.contains_key(id) {
                    continue;
                }
                self.forget(id);
                match self.recall.run(id).await {
                    Ok(Some(row)) if !row.status.is_terminal() => {
                        self.restore(&row, now, &mut cycle)
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let cause = app::model::error_chain(&e);
                        tracing::error!(%cause, workflow = %id, "cannot reload run")
                    }
                }
            }
            match self.persist(cycle.decisions.events).await {
                Ok(set_aside) => {
                    let set_aside = self.set_aside(&set_aside);
                    self.carry_out_all(cycle.decisions.effects, &set_aside);
                    return;
                }
                Err(ApplyError::LeaseLost(_)) => {
                    self.term.end();
                    return;
                }
                Err(error) => {
                    tracing::error!(%error, "built-in engine: store still failing");
                    ids = cycle.touched;
                    backoff.wait().await;
                }
            }
        }
    }

    fn carry_out(&mut self, effect: Effect) {
        match effect {
            Effect::Launch(launch) => self.launch(launch),
            Effect::Abort {
                workflow_id,
                step_number,
            } => {
                if let Some(execution) = self.executions.remove(&(workflow_id, step_number)) {
                    execution.abort();
                }
            }
            Effect::WakeAt { workflow_id, at } => self.timers.push(Reverse((at, workflow_id))),
        }
    }

    fn launch(&mut self, launch: Launch) {
        let Some(inbox) = self.inbox.upgrade() else {
            return;
        };
        let http = self.http.clone();
        let key = (launch.workflow_id.clone(), launch.step_number);
        let task = tokio::spawn(async move {
            let (lines, mut received) = mpsc::unbounded_channel();
            let sink = LogSink::new(lines);
            let forward = {
                let inbox = inbox.clone();
                let (workflow_id, step_number, attempt) = (
                    launch.workflow_id.clone(),
                    launch.step_number,
                    launch.attempt,
                );
                async move {
                    while let Some(line) = received.recv().await {
                        let message = Message::Log {
                            workflow_id: workflow_id.clone(),
                            step_number,
                            attempt,
                            line,
                        };
                        if inbox.send(message).await.is_err() {
                            break;
                        }
                    }
                }
            };
            let work = async {
                let result = execute::perform(&launch, &http, &sink).await;
                drop(sink);
                result
            };
            // Every log line is handed over before the result, so it lands first.
            let (result, ()) = tokio::join!(work, forward);
            let _ = inbox
                .send(Message::Finished {
                    workflow_id: launch.workflow_id,
                    step_number: launch.step_number,
                    attempt: launch.attempt,
                    result,
                })
                .await;
        });
        if let Some(previous) = self.executions.insert(key, task.abort_handle()) {
            previous.abort();
        }
    }
}

/// Turns the buffered log lines of one step into events, before what follows them.
fn flush_logs(cycle: &mut Cycle, workflow_id: &str, step_number: u32, now: Millis) {
    let mut kept = Vec::with_capacity(cycle.logs.len());
    for (id, step, lines) in cycle.logs.drain(..) {
        if id == workflow_id && step == step_number {
            cycle.decisions.events.push(crate::source::SourceEvent {
                workflow_id: id,
                at: to_datetime(now),
                change: crate::source::Change::LogLines { step_number, lines },
            });
        } else {
            kept.push((id, step, lines));
        }
    }
    cycle.logs = kept;
}

async fn sleep_until(at: Option<Millis>) {
    match at {
        Some(at) => {
            let wait = (at - now_ms()).max(0) as u64;
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await
        }
        None => std::future::pending().await,
    }
}
