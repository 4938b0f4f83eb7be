//! Single sign-on as routes: `/signin/oidc/{provider}` sends the browser to the provider
//! (the sign-in in flight rides in an HttpOnly cookie), and its callback signs the person
//! in once the provider's answer is verified, with the roles their groups grant.

use super::auth::{
    audit_sign_in, cookie, safe_next, session_cookie_value, set_cookie, sign_in_answer,
};
use super::{AppError, AppState, Https};
use crate::auth::oidc::{Flow, SsoError, Vouched, FLOW_COOKIE, FLOW_TTL};
use crate::auth::secret::{hash_secret, new_secret};
use crate::source::now_ms;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use serde::Deserialize;

/// What the sign-in's first leg is asked with.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Start {
    #[serde(default)]
    next: Option<String>,
}

/// What the provider sends the browser back with (other parameters, such as `iss`, are
/// let be: the ID token's issuer is what is checked).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /signin/oidc/{provider}`: to the provider, with a new state, nonce and PKCE
/// challenge kept in this browser's flow cookie.
#[utoipa::path(
    get,
    operation_id = "start_single_sign_on",
    path = crate::http::routes::SSO_START,
    tag = "auth",
    params(("provider" = String, Path, description = "The provider's name"), Start),
    security(()),
    responses(
        (status = 303, description = "On to the provider's sign-in"),
        crate::http::openapi::Missing
    )
)]
pub async fn start(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    https: Option<Extension<Https>>,
    headers: HeaderMap,
    query: Result<Query<Start>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let next = safe_next(query.ok().and_then(|query| query.0.next).as_deref()).to_owned();
    let begun = match callback_url(https, &headers, &provider) {
        Ok(callback) => state
            .auth
            .providers
            .begin(&provider, &callback, &next)
            .await
            .map_err(refusal),
        Err(error) => Err(error),
    };
    match begun {
        Ok((url, flow)) => {
            let mut response = Redirect::to(&url).into_response();
            set_cookie(
                &mut response,
                &format!(
                    "{FLOW_COOKIE}={}; Path=/signin/oidc; HttpOnly; SameSite=Lax; Max-Age={}",
                    flow.encode(),
                    FLOW_TTL.as_secs()
                ),
            );
            response
        }
        Err(error) => error_page(&state, &next, &error),
    }
}

/// `GET /signin/oidc/{provider}/callback`: the provider's answer, checked against this
/// browser's flow; a session for the person it vouches for if their account may sign in
/// and has a role here.
#[utoipa::path(
    get,
    operation_id = "single_sign_on_callback",
    path = crate::http::routes::SSO_CALLBACK,
    tag = "auth",
    params(("provider" = String, Path, description = "The provider's name"), Callback),
    security(()),
    responses(
        (status = 303, description = "Signed in (to next), or back to the sign-in page with the reason")
    )
)]
pub async fn callback(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    https: Option<Extension<Https>>,
    headers: HeaderMap,
    query: Result<Query<Callback>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let flow = cookie(&headers, FLOW_COOKIE).and_then(Flow::decode);
    let next = flow
        .as_ref()
        .map_or("/orchestration", |flow| flow.next.as_str())
        .to_owned();
    let callback = callback_url(https, &headers, &provider);
    let outcome = match callback {
        Ok(callback) => sign_in(&state, &provider, &callback, flow, query.ok().map(|q| q.0)).await,
        Err(error) => Err(error),
    };
    let mut response = match outcome {
        Ok(secret) => {
            let mut response = Redirect::to(safe_next(Some(&next))).into_response();
            set_cookie(&mut response, &session_cookie_value(&secret));
            response
        }
        Err(error) => error_page(&state, &next, &error),
    };
    // The flow is over either way.
    set_cookie(
        &mut response,
        &format!("{FLOW_COOKIE}=; Path=/signin/oidc; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    response
}

async fn sign_in(
    state: &AppState,
    provider: &str,
    callback: &str,
    flow: Option<Flow>,
    answer: Option<Callback>,
) -> Result<String, AppError> {
    let config = state.auth.providers.config(provider).map_err(refusal)?;
    let via = format!("oidc:{}", config.name);
    let answer = answer.unwrap_or_default();
    if let Some(error) = &answer.error {
        let words = answer.error_description.as_deref().unwrap_or(error);
        let words: String = words.chars().take(200).collect();
        audit_sign_in(
            state,
            &via,
            "refused",
            &format!("the provider refused: {words}"),
        )
        .await;
        return Err(refusal(SsoError::Refused(words)));
    }
    let (Some(code), Some(returned_state)) = (&answer.code, &answer.state) else {
        return Err(refusal(SsoError::NotOurs));
    };
    let vouched = state
        .auth
        .providers
        .finish(provider, callback, flow, returned_state, code)
        .await
        .map_err(refusal)?;
    let Vouched {
        subject,
        login,
        display_name,
        groups,
    } = vouched;
    let now = now_ms();
    let Some(user) = state
        .store
        .provider_account(&config.name, &subject, &login, display_name.as_deref(), now)
        .await?
    else {
        audit_sign_in(
            state,
            &login,
            "refused",
            &format!("{via}: the login belongs to another account"),
        )
        .await;
        return Err(AppError::Conflict(format!(
            "the login {login:?} belongs to another Stepline account: ask an admin to rename one"
        )));
    };
    if user.disabled {
        audit_sign_in(
            state,
            &user.login,
            "refused",
            &format!("{via}: account disabled"),
        )
        .await;
        return Err(AppError::Forbidden("this account is disabled".into()));
    }
    let granted = config.granted(&groups);
    if granted.is_empty() && user.bindings.is_empty() {
        audit_sign_in(state, &user.login, "refused", &format!("{via}: no role")).await;
        return Err(AppError::Forbidden(format!(
            "{} has no role in Stepline: none of their groups is given one; ask an admin",
            user.login
        )));
    }
    let secret = new_secret().map_err(AppError::internal)?;
    let end = state.auth.settings.session_end(now, now);
    state
        .store
        .open_session(&hash_secret(&secret), user.id, &via, &granted, now, end)
        .await?;
    audit_sign_in(state, &user.login, "ok", &via).await;
    Ok(secret)
}

/// This server's callback URL for `provider`, as the browser reached us.
fn callback_url(
    https: Option<Extension<Https>>,
    headers: &HeaderMap,
    provider: &str,
) -> Result<String, AppError> {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| !host.is_empty() && !host.contains(['/', '\\', '@', '?', '#']))
        .ok_or_else(|| AppError::BadRequest("the request names no host".into()))?;
    let scheme = if https.is_some_and(|Extension(Https(https))| https) {
        "https"
    } else {
        "http"
    };
    Ok(format!("{scheme}://{host}/signin/oidc/{provider}/callback"))
}

fn refusal(error: SsoError) -> AppError {
    let message = error.to_string();
    match error {
        SsoError::UnknownProvider(_) => AppError::NotFound(message),
        SsoError::NotOurs => AppError::BadRequest(message),
        SsoError::Refused(_) => AppError::Forbidden(message),
        SsoError::Unavailable(_) => AppError::Unavailable(message),
        SsoError::Unverified(_) => AppError::Unauthorized(message),
    }
}

/// The sign-in page, with why this sign-in failed, at the error's status. A fault of ours
/// is logged with its cause and shown without it.
fn error_page(state: &AppState, next: &str, error: &AppError) -> Response {
    if let AppError::Internal(cause) = error {
        tracing::error!(cause = %app::model::error_chain(cause.as_ref()), "single sign-on failed");
    }
    let mut response = sign_in_answer(state, error.status(), next, Some(&error.body().message));
    if error.status() == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
    }
    response
}
