//! `GET .../alerts` (the inbox, newest first), `POST .../alerts/{id}/acknowledge` and
//! `POST .../alerts/{id}/mute`: operators take alerts in hand, recorded in the audit log
//! and told live to every console that sees the alert's engine.

use super::{AppError, AppState};
use crate::auth::{refusal_on_engine, Caller};
use crate::projector::alert_events;
use crate::source::now_ms;
use crate::store::alerts::mute_scope;
use app::api::ReadModel;
use app::model::alert::{Alert, AlertPage, AlertQuery, MuteRequest, MAX_MUTE_MINUTES};
use app::model::identity::{Grants, Role};
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};

/// `GET .../alerts?state=firing|resolved|all&workflow_id=&before=&limit=`.
#[utoipa::path(
    get,
    operation_id = "list_alerts",
    path = crate::http::routes::ALERTS,
    tag = "alerts",
    params(("state" = Option<String>, Query, description = "firing (the default), resolved or all"), ("workflow_id" = Option<String>, Query, description = "Only this run's"), ("before" = Option<i64>, Query, description = "Older than this alert id (the previous page's next_before)"), ("limit" = Option<u32>, Query, description = "At most this many (50 by default, at most 200)")),
    responses(
        (status = 200, description = "Alerts of the engines the caller may read, newest first, and how many are open", body = app::model::alert::AlertPage),
        crate::http::openapi::Invalid,
        crate::http::openapi::Denied
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<AlertQuery>, QueryRejection>,
) -> Result<Json<AlertPage>, AppError> {
    let Query(query) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    // The pages' reader: the same validation and the same sight as the inbox's page.
    state
        .reader_for(Some(caller))
        .alerts(&query)
        .await
        .map(Json)
        .map_err(super::workflows::read_error)
}

/// `POST .../alerts/{id}/acknowledge`.
#[utoipa::path(
    post,
    operation_id = "acknowledge_alert",
    path = crate::http::routes::ALERT_ACKNOWLEDGE,
    tag = "alerts",
    params(("id" = i64, Path, description = "The alert's id")),
    responses(
        (status = 200, description = "Acknowledged (written to the audit log, told live)", body = app::model::alert::Alert),
        crate::http::openapi::Invalid,
        crate::http::openapi::Denied,
        crate::http::openapi::Missing
    )
)]
pub async fn acknowledge(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Alert>, AppError> {
    let id = alert_id(id)?;
    Ok(Json(acknowledge_as(&state, &caller, id).await?))
}

/// `POST .../alerts/{id}/mute` with `{"minutes": N}` (0 unmutes).
#[utoipa::path(
    post,
    operation_id = "mute_alert",
    path = crate::http::routes::ALERT_MUTE,
    tag = "alerts",
    params(("id" = i64, Path, description = "The alert's id")),
    request_body = app::model::alert::MuteRequest,
    responses(
        (status = 200, description = "The condition is muted for the alert's workflow type (0 minutes unmutes)", body = app::model::alert::Alert),
        crate::http::openapi::Invalid,
        crate::http::openapi::Denied,
        crate::http::openapi::Missing,
        crate::http::openapi::TooLarge
    )
)]
pub async fn mute(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<Alert>, AppError> {
    let id = alert_id(id)?;
    // Read once the caller is known to be allowed: who may not is told so, whatever they sent.
    let request = serde_json::from_slice::<MuteRequest>(&body)
        .map_err(|e| AppError::BadRequest(format!("unreadable body: {e}")));
    Ok(Json(mute_as(&state, &caller, id, request).await?))
}

fn alert_id(id: Result<Path<String>, PathRejection>) -> Result<i64, AppError> {
    let Path(id) = id.map_err(|e| AppError::BadRequest(e.body_text()))?;
    id.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| AppError::NotFound(format!("no alert {:?}", shorten(&id))))
}

fn shorten(text: &str) -> String {
    text.chars().take(40).collect()
}

/// Alert `id`, if `caller` may act on it as an operator.
async fn operated(state: &AppState, caller: &Caller, id: i64) -> Result<Alert, AppError> {
    let alert = state
        .store
        .alert(id, now_ms())
        .await?
        .filter(|alert| caller.sight().sees(&alert.engine))
        .ok_or_else(|| AppError::NotFound(format!("no alert {id}")))?;
    if let Some(refusal) = refusal_on_engine(caller, Role::Operator, &alert.engine) {
        return Err(AppError::Forbidden(refusal));
    }
    Ok(alert)
}

/// Acknowledges alert `id` as `caller` (once: acknowledging it again changes nothing).
pub async fn acknowledge_as(state: &AppState, caller: &Caller, id: i64) -> Result<Alert, AppError> {
    let alert = operated(state, caller, id).await?;
    if !state
        .store
        .acknowledge_alert(id, &caller.actor, now_ms())
        .await?
    {
        return Ok(alert);
    }
    let detail = format!("{} — {}", alert.condition.as_str(), alert.summary);
    taken_in_hand(state, caller, "alert_acknowledged", &alert, detail).await
}

/// Mutes the condition of alert `id` for its workflow type (or engine) for the minutes
/// `request` says, as `caller`; 0 unmutes.
pub async fn mute_as(
    state: &AppState,
    caller: &Caller,
    id: i64,
    request: Result<MuteRequest, AppError>,
) -> Result<Alert, AppError> {
    let alert = operated(state, caller, id).await?;
    let MuteRequest { minutes } = request?;
    if minutes > MAX_MUTE_MINUTES {
        return Err(AppError::BadRequest(format!(
            "minutes may be at most {MAX_MUTE_MINUTES} (a week)"
        )));
    }
    let scope = mute_scope(&alert);
    let until = (minutes > 0).then(|| now_ms() + i64::from(minutes) * 60_000);
    state
        .store
        .mute_alerts(&scope, alert.condition, until, &caller.actor)
        .await?;
    let (action, detail) = match minutes {
        0 => (
            "alert_unmuted",
            format!("{} of {scope}", alert.condition.as_str()),
        ),
        _ => (
            "alert_muted",
            format!("{} of {scope} for {minutes} min", alert.condition.as_str()),
        ),
    };
    taken_in_hand(state, caller, action, &alert, detail).await
}

/// Records what `caller` did to `alert` in the audit log, and tells every console the
/// alert as it now is.
async fn taken_in_hand(
    state: &AppState,
    caller: &Caller,
    action: &str,
    alert: &Alert,
    detail: String,
) -> Result<Alert, AppError> {
    super::auth::record(
        state,
        crate::store::identity::NewAuditEntry {
            workflow_id: alert.workflow_id.clone(),
            detail: Some(detail),
            ..super::auth::entry_by(caller, action)
        },
    )
    .await;
    let now = state
        .store
        .alert(alert.id, now_ms())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no alert {}", alert.id)))?;
    state
        .hub
        .publish_of(Some(&now.engine), alert_events(vec![now.clone()]).collect());
    Ok(now)
}
