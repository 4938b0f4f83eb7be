//! The in-house engines' side of operators' commands: an engine behind a firewall pulls
//! its commands (a long poll), any engine answers one (accepted, or refused with its
//! reason), and a run's page reads what was asked of it and how that went.

use super::actions::checked_id;
use super::{AppError, AppState};
use crate::auth::Caller;
use crate::engines::commands::{Delivery, PushEngine, PushEngines, DEFAULT_CONFIRM_WITHIN};
use crate::source::{
    now_ms, to_datetime, Answer, CommandMessage, CommandOutbox, Millis, OutboxCommand, Reply,
};
use app::model::identity::Grants;
use app::model::{carried_out, Action, CommandState, EngineCommand};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// A pulled command not answered within this is handed out again.
const REDELIVER_AFTER_MS: i64 = 30_000;
/// Longest a pull waits for a command.
const LONGEST_PULL: Duration = Duration::from_secs(30);
/// Most commands in one pull.
const PULLED_AT_MOST: i64 = 100;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PullQuery {
    /// Seconds to wait for a command when none is due (default 20, at most 30; 0: answer
    /// at once).
    #[serde(default)]
    wait: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Pulled {
    pub commands: Vec<CommandMessage>,
}

/// A command as the API and the run's page show it: with whether the run's own events
/// show it carried out, and whether the engine is past the time it is given.
pub fn shown(
    command: OutboxCommand,
    run: &crate::store::rows::WorkflowRow,
    confirm_within: Duration,
    now: Millis,
) -> Option<EngineCommand> {
    let action = Action::parse(&command.action)?;
    let state = CommandState::parse(&command.state)?;
    let requested_at = to_datetime(command.requested_ms);
    let done = carried_out(
        action,
        run.status,
        to_datetime(run.updated_ms),
        requested_at,
    );
    let given = i64::try_from(confirm_within.as_millis()).unwrap_or(i64::MAX);
    Some(EngineCommand {
        id: command.id,
        action,
        from_step: command.from_step,
        reason: command.reason,
        requested_by: command.requested_by,
        requested_at,
        state,
        deliveries: command.attempts,
        said: command.said,
        delivered_at: command.delivered_ms.map(to_datetime),
        answered_at: command.answered_ms.map(to_datetime),
        carried_out: done,
        overdue: !done
            && state != CommandState::Refused
            && now.saturating_sub(command.requested_ms) > given,
    })
}

/// The commands asked of `run`, newest first, as shown.
pub async fn of(
    store: &crate::store::Store,
    pushing: &PushEngines,
    run: &crate::store::rows::WorkflowRow,
) -> Result<Vec<EngineCommand>, crate::store::StoreError> {
    let confirm_within = run
        .engine
        .strip_prefix("custom:")
        .and_then(|source| pushing.get(source))
        .map_or(DEFAULT_CONFIRM_WITHIN, |engine| {
            engine.source().confirm_within
        });
    let now = now_ms();
    Ok(store
        .commands_of(&run.id)
        .await?
        .into_iter()
        .filter_map(|command| shown(command, run, confirm_within, now))
        .collect())
}

/// The declared pushing source `source`, if the caller may act as it (its ingest token).
fn engine_of(state: &AppState, caller: &Caller, source: &str) -> Result<Arc<PushEngine>, AppError> {
    if !caller.may_ingest(source) {
        return Err(AppError::Forbidden(format!(
            "{} may not take the commands of {source:?}: a token with the scope ingest:{source} is needed",
            caller.actor
        )));
    }
    state.pushing.get(source).ok_or_else(|| {
        AppError::NotFound(format!(
            "no pushing source {source:?} is declared to take commands"
        ))
    })
}

fn outbox_failed(error: crate::source::OutboxError) -> AppError {
    AppError::internal(error)
}

/// `GET .../sources/{source}/commands?wait=20`: the source's due commands, waiting up to
/// `wait` seconds for one. Each is handed out again if not answered within 30 s.
#[utoipa::path(
    get,
    operation_id = "pull_commands",
    path = crate::http::routes::SOURCE_COMMANDS,
    tag = "commands",
    params(("source" = String, Path, description = "The source's name"), PullQuery),
    responses(
        (status = 200, description = "The source's due commands (none after the wait)", body = Pulled),
        crate::http::openapi::Invalid,
        crate::http::openapi::Denied,
        crate::http::openapi::Missing,
        crate::http::openapi::Conflicting
    ),
    description = "An in-house engine pulls its commands (a long poll); each is handed out again if not answered within 30 s. Needs a token with ingest:<source>."
)]
pub async fn pull(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(source): Path<String>,
    query: Result<Query<PullQuery>, QueryRejection>,
) -> Result<Json<Pulled>, AppError> {
    let Query(query) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let engine = engine_of(&state, &caller, &source)?;
    if !matches!(engine.source().delivery, Delivery::Pull) {
        return Err(AppError::Conflict(format!(
            "source {source:?} gets its commands by webhook, not by pulling them"
        )));
    }
    let wait = Duration::from_secs(query.wait.unwrap_or(20)).min(LONGEST_PULL);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Listening before looking: a command written in between wakes this pull.
        let woken = engine.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let now = now_ms();
        let due = state
            .store
            .due(&source, now, PULLED_AT_MOST)
            .await
            .map_err(outbox_failed)?;
        if !due.is_empty() {
            for command in &due {
                state
                    .store
                    .delivered(command.id, now, now + REDELIVER_AFTER_MS, None)
                    .await
                    .map_err(outbox_failed)?;
                engine.announce(&command.workflow_id, command.id, CommandState::Delivered);
            }
            return Ok(Json(Pulled {
                commands: due.iter().map(OutboxCommand::message).collect(),
            }));
        }
        // Nothing due by the deadline, or the server shuts down: an empty answer (the
        // engine asks again, of another instance or of this one restarted).
        let woken = tokio::select! {
            woken = tokio::time::timeout_at(deadline, woken) => woken.is_ok(),
            () = state.hub.closing() => false,
        };
        if !woken {
            return Ok(Json(Pulled {
                commands: Vec::new(),
            }));
        }
    }
}

/// `POST .../sources/{source}/commands/{id}` `{"accepted": true}` or `{"accepted": false,
/// "reason": "..."}`: the engine's answer, shown to the operator as its own words.
#[utoipa::path(
    post,
    operation_id = "answer_command",
    path = crate::http::routes::SOURCE_COMMAND,
    tag = "commands",
    params(("source" = String, Path, description = "The source's name"), ("command" = i64, Path, description = "The command's id")),
    request_body = crate::source::outbox::Reply,
    responses(
        (status = 200, description = "The answer is recorded", body = serde_json::Value),
        crate::http::openapi::Invalid,
        crate::http::openapi::Denied,
        crate::http::openapi::Missing,
        crate::http::openapi::Conflicting
    )
)]
pub async fn answer(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((source, id)): Path<(String, i64)>,
    reply: Result<Json<Reply>, JsonRejection>,
) -> Result<Json<serde_json::Value>, AppError> {
    let engine = engine_of(&state, &caller, &source)?;
    let Json(reply) = reply.map_err(|e| {
        AppError::BadRequest(format!(
            "expected {{\"accepted\": true}} or {{\"accepted\": false, \"reason\": \"...\"}}: {}",
            e.body_text()
        ))
    })?;
    let recorded = engine
        .answered(id, &Answer::from(reply), now_ms())
        .await
        .map_err(outbox_failed)?;
    if !recorded {
        return Err(AppError::NotFound(format!(
            "no command {id} of {source:?} is waiting for an answer"
        )));
    }
    Ok(Json(serde_json::json!({"status": "recorded"})))
}

/// `GET .../workflows/{id}/commands`: what was asked of the run's engine, newest first.
#[utoipa::path(
    get,
    operation_id = "workflow_commands",
    path = crate::http::routes::WORKFLOW_COMMANDS,
    tag = "commands",
    params(("id" = String, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The commands sent to the run's engine, newest first, with whether each was carried out", body = Vec<app::model::EngineCommand>),
        crate::http::openapi::Denied,
        crate::http::openapi::Missing
    )
)]
pub async fn of_run(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Vec<EngineCommand>>, AppError> {
    checked_id(&id)?;
    let run = state
        .store
        .workflow_row(&id)
        .await?
        .filter(|row| caller.sight().sees(&row.engine))
        .ok_or_else(|| AppError::NotFound(format!("no workflow {id:?}")))?;
    Ok(Json(of(&state.store, &state.pushing, &run).await?))
}
