//! The engine's lease terms, and what operators ask of it on any instance: done by this
//! instance's driver while it holds the lease, else forwarded through the store to the
//! instance that does, whose answer is waited for.

use super::definition::Definition;
use super::driver::{Driver, Message};
use super::{Limits, ENGINE_ID};
use crate::retry::Backoff;
use crate::source::forward::SharedForwarding;
use crate::source::{
    now_ms, Command, CommandError, CommandOutcome, LeaseKeeper, SharedRecall, SharedSink,
    StartRequest, Term,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// How often the holder looks for forwarded requests, and the asking instance for its
/// answer.
const POLL_EVERY: Duration = Duration::from_millis(25);
/// A forwarded request no holder took by then is given up (no instance holds the lease).
const TAKEN_WITHIN: Duration = Duration::from_secs(10);
/// A taken request not answered by then is no longer waited for.
const ANSWERED_WITHIN: Duration = Duration::from_secs(30);
/// Answers are kept this long for the asking instance, then forgotten (checked this
/// often).
const ANSWERS_KEPT: Duration = Duration::from_secs(3_600);
const FORGET_EVERY: Duration = Duration::from_secs(60);
/// Most forwarded requests taken at once.
const TAKEN_AT_ONCE: i64 = 100;

/// What an operator asks of the engine, as forwarded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum Request {
    Start {
        request: StartRequest,
    },
    Command {
        workflow_id: String,
        command: Command,
    },
}

type Answer = Result<CommandOutcome, CommandError>;

/// What a lease term needs to drive the engine.
pub(super) struct Lead {
    pub definitions: Arc<HashMap<String, Arc<Definition>>>,
    pub limits: Limits,
    pub recall: SharedRecall,
    pub sink: SharedSink,
    pub forwarding: SharedForwarding,
}

/// Drives the engine in each term this instance holds `lease`: a driver that picks up
/// every open run from the store, and takes the requests other instances forward; the
/// driver is offered on `driver` while the term lasts.
pub(super) async fn lead(
    lead: Lead,
    mut lease: LeaseKeeper,
    driver: watch::Sender<Option<mpsc::Sender<Message>>>,
) {
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
    loop {
        let term = lease.next_term(|| {}).await;
        let inbox = loop {
            let spawned = tokio::select! {
                () = term.ended() => break None,
                spawned = Driver::spawn(
                    lead.definitions.clone(),
                    lead.limits,
                    lead.recall.clone(),
                    lead.sink.clone(),
                    term.clone(),
                ) => spawned,
            };
            match spawned {
                Ok(inbox) => break Some(inbox),
                Err(error) => {
                    let cause = app::model::error_chain(&error);
                    tracing::error!(%cause, "the built-in engine cannot pick up its open runs; trying again");
                    backoff.wait().await;
                }
            }
        };
        let Some(inbox) = inbox else {
            continue;
        };
        backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
        tracing::info!("this instance drives the built-in engine's runs");
        driver.send_replace(Some(inbox.clone()));
        tokio::select! {
            () = term.ended() => {}
            () = serve_forwarded(&inbox, &lead.forwarding, &term) => {}
        }
        driver.send_replace(None);
        term.end();
        tracing::warn!("this instance no longer drives the built-in engine's runs: its lease is another instance's");
    }
}

/// Sends the driver `message` and waits for its answer.
pub(super) async fn ask<T>(
    inbox: &mpsc::Sender<Message>,
    message: impl FnOnce(oneshot::Sender<T>) -> Message,
) -> Result<T, CommandError> {
    let (reply, answer) = oneshot::channel();
    let stopped = || {
        CommandError::Unavailable(
            "the built-in engine stopped on this instance (its lease was lost); try again".into(),
        )
    };
    inbox.send(message(reply)).await.map_err(|_| stopped())?;
    answer.await.map_err(|_| stopped())
}

/// Has this instance's driver do `request`.
pub(super) async fn locally(inbox: &mpsc::Sender<Message>, request: Request) -> Answer {
    match request {
        Request::Start { request } => ask(inbox, |reply| Message::Start(request, reply)).await?,
        Request::Command {
            workflow_id,
            command,
        } => ask(inbox, |reply| Message::Command(workflow_id, command, reply)).await?,
    }
}

/// Has the instance holding the lease do `request`: written to the store, then its answer
/// waited for (given up when no holder takes it, or the one that took it does not answer).
pub(super) async fn remotely(forwarding: &SharedForwarding, request: &Request) -> Answer {
    let failed = |error: crate::source::forward::ForwardError| {
        CommandError::Unavailable(format!("the request could not be forwarded: {error}"))
    };
    let text = serde_json::to_string(request).expect("plain data");
    let id = forwarding
        .forward(ENGINE_ID, &text, now_ms())
        .await
        .map_err(failed)?;
    let asked = Instant::now();
    let mut withdrawn_tried = false;
    let mut ticker = tokio::time::interval(POLL_EVERY);
    loop {
        ticker.tick().await;
        if let Some(answer) = forwarding.answer_of(id).await.map_err(failed)? {
            return serde_json::from_str::<Answer>(&answer).unwrap_or_else(|error| {
                Err(CommandError::Unavailable(format!(
                    "the instance running the built-in engine answered unreadably: {error}"
                )))
            });
        }
        if !withdrawn_tried && asked.elapsed() >= TAKEN_WITHIN {
            withdrawn_tried = true;
            let nobody: Answer = Err(CommandError::Unavailable(
                "no instance of Stepline drives the built-in engine now (its lease is free, or its holder does not answer); try again"
                    .into(),
            ));
            let text = serde_json::to_string(&nobody).expect("plain data");
            if forwarding
                .withdraw(id, &text, now_ms())
                .await
                .map_err(failed)?
            {
                return nobody;
            }
        }
        if asked.elapsed() >= ANSWERED_WITHIN {
            return Err(CommandError::Unavailable(
                "the instance driving the built-in engine took the request but has not answered; the run list shows whether it was done"
                    .into(),
            ));
        }
    }
}

/// Takes the requests other instances forward, for as long as `term` lasts, and answers
/// each with what this instance's driver did. Requests a former holder took and never
/// answered are answered first: whether they were done is not known.
async fn serve_forwarded(
    inbox: &mpsc::Sender<Message>,
    forwarding: &SharedForwarding,
    term: &Term,
) {
    let holder = term.held().holder;
    let orphaned: Answer = Err(CommandError::Unavailable(
        "the instance that took this request stopped before answering; the run list shows whether it was done"
            .into(),
    ));
    let orphaned = serde_json::to_string(&orphaned).expect("plain data");
    match forwarding
        .answer_orphans(ENGINE_ID, &holder, &orphaned, now_ms())
        .await
    {
        Ok(0) => {}
        Ok(count) => tracing::warn!(count, "requests taken by a former holder of the built-in engine were answered as not known to be done"),
        Err(error) => tracing::warn!(%error, "cannot answer the requests a former holder left"),
    }
    let mut ticker = tokio::time::interval(POLL_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut forgotten_at: Option<Instant> = None;
    loop {
        ticker.tick().await;
        if forgotten_at.is_none_or(|at| at.elapsed() >= FORGET_EVERY) {
            forgotten_at = Some(Instant::now());
            let before = now_ms() - i64::try_from(ANSWERS_KEPT.as_millis()).unwrap_or(0);
            if let Err(error) = forwarding.forget_answered(before).await {
                tracing::warn!(%error, "cannot forget old forwarded requests");
            }
        }
        match forwarding.any_waiting(ENGINE_ID).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(error) => {
                tracing::warn!(%error, "cannot look for forwarded requests");
                continue;
            }
        }
        let taken = match forwarding
            .take_forwarded(ENGINE_ID, &holder, now_ms(), TAKEN_AT_ONCE)
            .await
        {
            Ok(taken) => taken,
            Err(error) => {
                tracing::warn!(%error, "cannot take forwarded requests");
                continue;
            }
        };
        for forwarded in taken {
            let answer = match serde_json::from_str::<Request>(&forwarded.request) {
                Ok(request) => locally(inbox, request).await,
                Err(error) => Err(CommandError::Refused(format!(
                    "the request could not be read: {error}"
                ))),
            };
            let text = serde_json::to_string(&answer).expect("plain data");
            if let Err(error) = forwarding.answer(forwarded.id, &text, now_ms()).await {
                tracing::warn!(%error, request = forwarded.id, "cannot answer a forwarded request; the asking instance gives up waiting");
            }
        }
    }
}
