//! What admins manage (accounts and their role bindings, API tokens, the pushing sources
//! whose engines take commands) and the audit log's search. Every change is written to the audit log with who made it.

use super::auth::{entry_by, record};
use super::{AppError, AppState};
use crate::auth::secret::{hash_secret, new_token};
use crate::auth::{password, Caller};
use crate::engines::commands::{Declaration, DeclaredIn, Delivery, PushEngine};
use crate::source::now_ms;
use crate::store::identity::{NewAccount, NewAuditEntry};
use app::model::identity::{
    is_valid_engine_pattern, AuditPage, AuditQuery, CreatedToken, NewToken, NewUser, RoleBinding,
    TokenInfo, UserChange, UserInfo, MAX_NAME_LEN,
};
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::de::DeserializeOwned;

/// Most scopes or bindings one token or account holds.
const MAX_GRANTS: usize = 64;
/// Longest a token may be made to last.
const MAX_TOKEN_DAYS: u32 = 3_650;

fn body_of<T: DeserializeOwned>(body: &Bytes) -> Result<T, AppError> {
    serde_json::from_slice(body).map_err(|e| AppError::BadRequest(format!("unreadable body: {e}")))
}

fn check_name(what: &str, name: &str) -> Result<(), AppError> {
    if name.trim().is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(AppError::BadRequest(format!(
            "{what} must be 1 to {MAX_NAME_LEN} bytes of printable text"
        )));
    }
    Ok(())
}

fn check_bindings(bindings: &[RoleBinding]) -> Result<(), AppError> {
    if bindings.len() > MAX_GRANTS {
        return Err(AppError::BadRequest(format!(
            "at most {MAX_GRANTS} role bindings"
        )));
    }
    if let Some(bad) = bindings
        .iter()
        .find(|binding| !is_valid_engine_pattern(&binding.engines))
    {
        return Err(AppError::BadRequest(format!(
            "{:?} is not an engine pattern (\"*\", an engine id, or an id prefix ending in \"*\")",
            bad.engines
        )));
    }
    Ok(())
}

async fn audit_change(state: &AppState, caller: &Caller, action: &str, detail: String) {
    record(
        state,
        NewAuditEntry {
            detail: Some(detail),
            ..entry_by(caller, action)
        },
    )
    .await;
}

/// `GET /api/auth/users`.
#[utoipa::path(
    get,
    operation_id = "list_users",
    path = crate::http::routes::USERS,
    tag = "admin",
    responses(
        (status = 200, description = "Every account", body = Vec<app::model::identity::UserInfo>),
        crate::http::openapi::Denied
    )
)]
pub async fn users(State(state): State<AppState>) -> Result<Json<Vec<UserInfo>>, AppError> {
    Ok(Json(
        state
            .store
            .users()
            .await?
            .iter()
            .map(|user| user.to_wire())
            .collect(),
    ))
}

/// `POST /api/auth/users`: a local account with a password and its role bindings.
#[utoipa::path(
    post,
    path = crate::http::routes::USERS,
    tag = "admin",
    request_body = app::model::identity::NewUser,
    responses(
        (status = 201, description = "Created", body = app::model::identity::UserInfo),
        crate::http::openapi::Invalid,
        crate::http::openapi::Denied,
        crate::http::openapi::Conflicting,
        crate::http::openapi::TooLarge
    )
)]
pub async fn create_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<(StatusCode, Json<UserInfo>), AppError> {
    let user: NewUser = body_of(&body)?;
    check_name("login", &user.login)?;
    if let Some(name) = &user.display_name {
        check_name("display_name", name)?;
    }
    check_bindings(&user.bindings)?;
    let hash = password::hash(user.password.clone())
        .await
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let id = state
        .store
        .create_user(
            NewAccount {
                login: user.login.trim(),
                display_name: user.display_name.as_deref(),
                password_hash: Some(&hash),
                provider: "local",
                bindings: &user.bindings,
            },
            now_ms(),
        )
        .await?
        .ok_or_else(|| AppError::Conflict(format!("the login {:?} is taken", user.login)))?;
    let created = state
        .store
        .user(id)
        .await?
        .ok_or_else(|| AppError::internal("a new account could not be read back"))?;
    audit_change(
        &state,
        &caller,
        "user_created",
        format!("{} with {}", created.login, describe(&created.bindings)),
    )
    .await;
    Ok((StatusCode::CREATED, Json(created.to_wire())))
}

/// `PATCH /api/auth/users/{id}`: a new password, new bindings, disabled or enabled. A new
/// password or disabling ends the account's sessions.
#[utoipa::path(
    patch,
    path = crate::http::routes::USER,
    tag = "admin",
    params(("id" = i64, Path, description = "The account's id")),
    request_body = app::model::identity::UserChange,
    responses(
        (status = 200, description = "Changed", body = app::model::identity::UserInfo),
        crate::http::openapi::Invalid,
        crate::http::openapi::Denied,
        crate::http::openapi::Missing,
        crate::http::openapi::TooLarge
    )
)]
pub async fn update_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<UserInfo>, AppError> {
    let id: i64 = id
        .parse()
        .map_err(|_| AppError::BadRequest(format!("{id:?} is not an account id")))?;
    let change: UserChange = body_of(&body)?;
    if let Some(bindings) = &change.bindings {
        check_bindings(bindings)?;
    }
    let hash = match change.password.clone() {
        Some(password) => Some(
            password::hash(password)
                .await
                .map_err(|e| AppError::BadRequest(e.to_string()))?,
        ),
        None => None,
    };
    let found = state
        .store
        .update_user(
            id,
            hash.as_deref(),
            change.bindings.as_deref(),
            change.disabled,
            now_ms(),
        )
        .await?;
    if !found {
        return Err(AppError::NotFound(format!("no account {id}")));
    }
    let user = state
        .store
        .user(id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no account {id}")))?;
    let mut what = Vec::new();
    if change.password.is_some() {
        what.push("password changed".to_owned());
    }
    if let Some(bindings) = &change.bindings {
        what.push(format!("roles now {}", describe(bindings)));
    }
    match change.disabled {
        Some(true) => what.push("disabled".into()),
        Some(false) => what.push("enabled".into()),
        None => {}
    }
    audit_change(
        &state,
        &caller,
        "user_changed",
        format!("{}: {}", user.login, what.join(", ")),
    )
    .await;
    Ok(Json(user.to_wire()))
}

fn describe(bindings: &[RoleBinding]) -> String {
    if bindings.is_empty() {
        return "no role".into();
    }
    bindings
        .iter()
        .map(|binding| format!("{} on {}", binding.role, binding.engines))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `GET /api/auth/tokens`: every token (never its value).
#[utoipa::path(
    get,
    operation_id = "list_tokens",
    path = crate::http::routes::TOKENS,
    tag = "admin",
    responses(
        (status = 200, description = "Every API token (never its secret)", body = Vec<app::model::identity::TokenInfo>),
        crate::http::openapi::Denied
    )
)]
pub async fn tokens(State(state): State<AppState>) -> Result<Json<Vec<TokenInfo>>, AppError> {
    Ok(Json(
        state
            .store
            .tokens()
            .await?
            .iter()
            .map(|token| token.to_wire())
            .collect(),
    ))
}

/// `POST /api/auth/tokens`: a new token; its value is in this answer and nowhere else.
#[utoipa::path(
    post,
    path = crate::http::routes::TOKENS,
    tag = "admin",
    request_body = app::model::identity::NewToken,
    responses(
        (status = 201, description = "Created: the secret is shown this once", body = app::model::identity::CreatedToken),
        crate::http::openapi::Invalid,
        crate::http::openapi::Denied,
        crate::http::openapi::TooLarge
    )
)]
pub async fn create_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedToken>), AppError> {
    let request: NewToken = body_of(&body)?;
    check_name("name", &request.name)?;
    if request.scopes.is_empty() || request.scopes.len() > MAX_GRANTS {
        return Err(AppError::BadRequest(format!(
            "a token needs 1 to {MAX_GRANTS} scopes (read, operate, ingest:<source>)"
        )));
    }
    if request
        .expires_in_days
        .is_some_and(|days| days == 0 || days > MAX_TOKEN_DAYS)
    {
        return Err(AppError::BadRequest(format!(
            "expires_in_days must be 1 to {MAX_TOKEN_DAYS}"
        )));
    }
    let now = now_ms();
    let expires_ms = request
        .expires_in_days
        .map(|days| now + i64::from(days) * 86_400_000);
    let value = new_token().map_err(AppError::internal)?;
    let id = state
        .store
        .create_token(
            &request.name,
            &hash_secret(&value),
            &request.scopes,
            &caller.actor,
            now,
            expires_ms,
        )
        .await?;
    let info = state
        .store
        .token(id)
        .await?
        .ok_or_else(|| AppError::internal("a new token could not be read back"))?
        .to_wire();
    let scopes: Vec<String> = info.scopes.iter().map(ToString::to_string).collect();
    audit_change(
        &state,
        &caller,
        "token_created",
        format!("{} ({})", info.name, scopes.join(", ")),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken { token: value, info }),
    ))
}

/// `DELETE /api/auth/tokens/{id}`: the token stops working at once.
#[utoipa::path(
    delete,
    path = crate::http::routes::TOKEN,
    tag = "admin",
    params(("id" = i64, Path, description = "The token's id")),
    responses(
        (status = 200, description = "Revoked", body = app::model::identity::TokenInfo),
        crate::http::openapi::Invalid,
        crate::http::openapi::Denied,
        crate::http::openapi::Missing
    )
)]
pub async fn revoke_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<TokenInfo>, AppError> {
    let id: i64 = id
        .parse()
        .map_err(|_| AppError::BadRequest(format!("{id:?} is not a token id")))?;
    if !state.store.revoke_token(id, now_ms()).await? {
        return Err(AppError::NotFound(format!("no token {id}")));
    }
    let token = state
        .store
        .token(id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no token {id}")))?;
    audit_change(&state, &caller, "token_revoked", token.name.clone()).await;
    Ok(Json(token.to_wire()))
}

/// `GET .../audit?actor=&workflow_id=&action=&since=&until=&before=&limit=`: the audit
/// log, newest first.
#[utoipa::path(
    get,
    operation_id = "read_audit",
    path = crate::http::routes::AUDIT,
    tag = "audit",
    params(app::model::identity::AuditQuery),
    responses(
        (status = 200, description = "The audit log, newest first", body = app::model::identity::AuditPage),
        crate::http::openapi::Invalid,
        crate::http::openapi::Denied
    )
)]
pub async fn audit(
    State(state): State<AppState>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, AppError> {
    let Query(query) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    if let Some(invalid) = query.invalid() {
        return Err(AppError::BadRequest(invalid));
    }
    Ok(Json(state.store.audit(&query).await?))
}

/// A pushing source as an admin reads it back (no secret: only where it is read from is
/// kept, and not shown).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SourceShown {
    pub name: String,
    pub engine: String,
    pub actions: Vec<&'static str>,
    pub delivery: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub confirm_within: String,
    pub declared_in: DeclaredIn,
}

fn shown(engine: &PushEngine, declared_in: DeclaredIn) -> SourceShown {
    let source = engine.source();
    SourceShown {
        name: source.name.clone(),
        engine: source.engine_id(),
        actions: source.actions(),
        delivery: source.delivery.name(),
        url: match &source.delivery {
            Delivery::Webhook { url, .. } => Some(url.clone()),
            Delivery::Pull => None,
        },
        confirm_within: humantime::format_duration(source.confirm_within).to_string(),
        declared_in,
    }
}

/// `GET /api/platform/orchestration/sources`: the pushing sources whose engines take
/// commands, from the file and from admins.
#[utoipa::path(
    get,
    operation_id = "list_sources",
    path = crate::http::routes::SOURCES,
    tag = "sources",
    responses(
        (status = 200, description = "The pushing sources that take commands", body = Vec<SourceShown>),
        crate::http::openapi::Denied
    )
)]
pub async fn sources(State(state): State<AppState>) -> Json<Vec<SourceShown>> {
    Json(
        state
            .pushing
            .all()
            .iter()
            .map(|(engine, declared_in)| shown(engine, *declared_in))
            .collect(),
    )
}

/// `POST /api/platform/orchestration/sources` with a declaration as in the
/// `--push-sources` file: its engine takes commands from now on, and after restarts.
#[utoipa::path(
    post,
    path = crate::http::routes::SOURCES,
    tag = "sources",
    request_body = crate::engines::commands::Declaration,
    responses(
        (status = 201, description = "Declared: the source takes commands from now on", body = SourceShown),
        crate::http::openapi::Invalid,
        crate::http::openapi::Denied,
        crate::http::openapi::Conflicting,
        crate::http::openapi::TooLarge
    )
)]
pub async fn declare_source(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<(StatusCode, Json<SourceShown>), AppError> {
    let declaration: Declaration = body_of(&body)?;
    let source = declaration
        .source(|name| std::env::var(name).ok())
        .map_err(AppError::BadRequest)?;
    let name = source.name.clone();
    let taken = || AppError::Conflict(format!("a source {name:?} is declared already"));
    // The store's unique name settles two admins declaring at once; the file's sources
    // are only in the registry, which refuses their names.
    let kept = serde_json::to_string(&declaration).map_err(AppError::internal)?;
    if state.pushing.get(&name).is_some()
        || !state
            .store
            .declare_source(&name, &kept, &caller.actor, now_ms())
            .await?
    {
        return Err(taken());
    }
    let Some(engine) = crate::take_commands_from(&state, source, DeclaredIn::Api) else {
        state.store.forget_source(&name).await?;
        return Err(taken());
    };
    audit_change(&state, &caller, "declare_source", kept).await;
    Ok((StatusCode::CREATED, Json(shown(&engine, DeclaredIn::Api))))
}

/// `DELETE /api/platform/orchestration/sources/{source}`: a source an admin declared
/// takes no more commands (those already written stay, undelivered, until it is declared
/// again).
#[utoipa::path(
    delete,
    path = crate::http::routes::SOURCE,
    tag = "sources",
    params(("source" = String, Path, description = "The source's name")),
    responses(
        (status = 200, description = "Removed: it takes no more commands", body = serde_json::Value),
        crate::http::openapi::Denied,
        crate::http::openapi::Missing,
        crate::http::openapi::Conflicting
    )
)]
pub async fn remove_source(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, AppError> {
    let Some(declared_in) = state.pushing.declared_in(&name) else {
        return Err(AppError::NotFound(format!("no pushing source {name:?}")));
    };
    if declared_in == DeclaredIn::File {
        return Err(AppError::Conflict(format!(
            "source {name:?} is declared in the --push-sources file: remove it there"
        )));
    }
    state.store.forget_source(&name).await?;
    crate::stop_taking_commands_from(&state, &name);
    audit_change(&state, &caller, "remove_source", name.clone()).await;
    Ok(Json(
        serde_json::json!({"status": "removed", "source": name}),
    ))
}
