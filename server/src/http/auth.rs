//! Signing in and out, who am I, and the two layers every request passes: [`identify`]
//! (who sent it: its session cookie or API token) and [`authorize`] (what its route
//! needs, and for a browser's session, that the request comes from our own pages).

use super::{AppError, AppState};
use crate::auth::password;
use crate::auth::secret::{hash_secret, new_secret};
use crate::auth::{Caller, Denied, Need, Via, SESSION_COOKIE};
use crate::source::now_ms;
use crate::store::identity::NewAuditEntry;
use app::model::identity::{Me, MAX_NAME_LEN};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use std::net::SocketAddr;

/// A session or token is looked at again (its last use recorded) at most this often.
const TOUCH_EVERY_MS: i64 = 60_000;

pub use super::routes::SIGN_IN_PAGE;

/// Finds who sent the request: an `Authorization: Bearer` token (which must work: a
/// wrong one is refused at once) or a session cookie (one that no longer works is as no
/// cookie). What is found rides in the request's extensions as a [`Caller`].
pub async fn identify(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let now = now_ms();
    let caller = match bearer_token(request.headers()) {
        Some(token) => match token_caller(&state, token, now).await {
            Ok(Some(caller)) => Some(caller),
            Ok(None) => {
                return AppError::Unauthorized(
                    "the API token is unknown, revoked or expired".into(),
                )
                .into_response()
            }
            Err(error) => return error.into_response(),
        },
        None => match session_cookie(request.headers()) {
            Some(secret) => match session_caller(&state, secret, now).await {
                Ok(caller) => caller,
                Err(error) => return error.into_response(),
            },
            None => None,
        },
    };
    if let Some(caller) = caller {
        request.extensions_mut().insert(caller);
    }
    next.run(request).await
}

async fn token_caller(state: &AppState, token: &str, now: i64) -> Result<Option<Caller>, AppError> {
    let Some(row) = state.store.token_by_hash(&hash_secret(token)).await? else {
        return Ok(None);
    };
    if !row.is_live(now) {
        return Ok(None);
    }
    if row
        .last_used_ms
        .is_none_or(|used| now - used > TOUCH_EVERY_MS)
    {
        state.store.touch_token(row.id, now).await?;
    }
    Ok(Some(Caller::from_token(&row)))
}

async fn session_caller(
    state: &AppState,
    secret: &str,
    now: i64,
) -> Result<Option<Caller>, AppError> {
    let token_hash = hash_secret(secret);
    let Some(session) = state.store.live_session(&token_hash, now).await? else {
        return Ok(None);
    };
    if now - session.last_seen_ms > TOUCH_EVERY_MS {
        let end = state.auth.settings.session_end(session.created_ms, now);
        state.store.touch_session(&token_hash, now, end).await?;
    }
    Ok(Some(Caller::from_session(&session, &token_hash)))
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
}

/// The value of the cookie `wanted` that the request carries.
pub(super) fn cookie<'h>(headers: &'h HeaderMap, wanted: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == wanted).then_some(value)
        })
}

/// Checks what the matched route needs (see [`need_of`]) against who sent the request,
/// and refuses a browser session's state-changing request that did not come from our own
/// pages (cross-site request forgery). A page asked for by someone not signed in is sent
/// to the sign-in page; an API call gets 401 or 403 in the API's JSON error.
pub async fn authorize(
    matched: Option<MatchedPath>,
    caller: Option<Extension<Caller>>,
    request: Request,
    next: Next,
) -> Response {
    let path = matched.as_ref().map_or("", MatchedPath::as_str);
    let need = need_of(request.method(), path);
    let caller = caller.map(|Extension(caller)| caller);
    if let Err(refused) = cross_site_check(&request, path) {
        return refused.into_response();
    }
    match need.check(caller.as_ref()) {
        Ok(()) => next.run(request).await,
        Err(Denied::NotSignedIn) if is_page(request.method(), path) => {
            let wanted = request
                .uri()
                .path_and_query()
                .map_or("/orchestration", |wanted| wanted.as_str());
            Redirect::to(&format!(
                "{SIGN_IN_PAGE}?next={}",
                urlencoding_component(wanted)
            ))
            .into_response()
        }
        Err(Denied::Missing(what)) if is_page(request.method(), path) => forbidden_page(&what),
        Err(denied) => AppError::from(denied).into_response(),
    }
}

/// A page the signed-in person may not see: 403, in HTML, saying which role is missing.
fn forbidden_page(what: &str) -> Response {
    let html = plain_page(
        "Not allowed",
        &format!(
            r#"<section class="empty">
<h1>Not allowed</h1>
<p class="notice error" role="alert">{}</p>
<p><a href="/orchestration">Back to the workflows</a></p>
</section>"#,
            html_escape::encode_text(what)
        ),
    );
    (
        StatusCode::FORBIDDEN,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::response::Html(html),
    )
        .into_response()
}

/// A page of its own (no app, no script: it works without JavaScript), around `main`.
fn plain_page(title: &str, main: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/pkg/stepline.css">
<title>{title} · Stepline</title>
</head>
<body>
<header class="topbar"><a class="brand" href="/orchestration">Stepline</a></header>
<main>
{main}
</main>
</body>
</html>"#
    )
}

/// Whether a route is one of the app's pages (answered with HTML, so a visitor not
/// signed in is sent to sign in rather than given JSON). Prometheus's scrape is not.
fn is_page(method: &Method, path: &str) -> bool {
    *method == Method::GET
        && !path.starts_with("/api/")
        && !path.starts_with("/ws/")
        && path != super::routes::METRICS
}

/// What each route needs. Every route of the router has a rule here; one without is
/// refused to everyone (and the route-list test fails).
pub fn need_of(method: &Method, path: &str) -> Need {
    super::routes::need_of(method, path).unwrap_or_else(|| {
        tracing::error!(%method, path, "a route without an authorization rule was refused");
        Need::Admin
    })
}

/// A state-changing request sent with a browser's session cookie must come from our own
/// origin (its `Origin`, or failing that its `Referer`, names our host): a form or
/// `fetch` on another site that rides on the visitor's cookie is refused, and so is a
/// sign-in form on another site (which would sign the visitor into someone else's
/// account), and so is another site's page opening the live WebSocket with the cookie
/// (cross-site WebSocket hijacking). A request with an API token carries no ambient
/// authority (no other site can make a browser send it) and passes.
fn cross_site_check(request: &Request, path: &str) -> Result<(), AppError> {
    let reads = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if reads && path != super::routes::LIVE {
        return Ok(());
    }
    let headers = request.headers();
    if bearer_token(headers).is_some() {
        return Ok(());
    }
    let by_cookie = session_cookie(headers).is_some();
    let claimed = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|value| value.to_str().ok());
    // HTTP/2 carries the host in the request's authority, not a Host header.
    let ours = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| {
            request
                .uri()
                .authority()
                .map(|authority| authority.as_str())
        });
    let same_origin = claimed.is_some_and(|claimed| ours.is_some() && host_of(claimed) == ours);
    let guarded = by_cookie || path == super::routes::SIGN_IN;
    // A WebSocket handshake names its page's origin; one with none is not a browser's.
    if !guarded || same_origin || (claimed.is_none() && (!by_cookie || reads)) {
        return Ok(());
    }
    Err(AppError::Forbidden(
        "cross-site request refused: it must come from Stepline's own pages".into(),
    ))
}

/// The `host[:port]` of an origin or URL (`http://127.0.0.1:3000/x` → `127.0.0.1:3000`).
fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|host| !host.is_empty() && *host != "null")
}

/// Percent-encodes `text` for a query value.
pub(super) fn urlencoding_component(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Where to go after signing in: a path of ours, never another site.
pub(super) fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(next) if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') => {
            next
        }
        _ => "/orchestration",
    }
}

/// What the sign-in page is asked with: where to go after, and why the last try failed.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SignInPage {
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// `GET /signin`: the sign-in form, a plain page that works without JavaScript (and
/// loads none: nothing on it needs the app).
#[utoipa::path(
    get,
    path = crate::http::routes::SIGN_IN_PAGE,
    tag = "auth",
    params(SignInPage),
    security(()),
    responses(
        (status = 200, description = "The sign-in page", content_type = "text/html", body = String)
    )
)]
pub async fn sign_in_page(
    State(state): State<AppState>,
    query: Result<axum::extract::Query<SignInPage>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let page = query.map(|query| query.0).unwrap_or_default();
    let next = safe_next(page.next.as_deref());
    sign_in_answer(&state, StatusCode::OK, next, page.error.as_deref())
}

/// The sign-in page with `status`: the password form, a link per sign-in provider, and
/// why the last try failed (escaped: part of it may be a provider's words).
pub(super) fn sign_in_answer(
    state: &AppState,
    status: StatusCode,
    next: &str,
    error: Option<&str>,
) -> Response {
    let escape = |text: &str| html_escape::encode_double_quoted_attribute(text).into_owned();
    let error = error
        .map(|error| {
            let error: String = error.chars().take(300).collect();
            format!(
                r#"<p class="notice error" role="alert">{}</p>"#,
                escape(&error)
            )
        })
        .unwrap_or_default();
    let providers: String = state
        .auth
        .providers
        .listed()
        .into_iter()
        .map(|(name, label)| {
            format!(
                r#"<a class="button sso" href="/signin/oidc/{}?next={}">Sign in with {}</a>"#,
                escape(name),
                escape(&urlencoding_component(next)),
                escape(label)
            )
        })
        .collect();
    let providers = if providers.is_empty() {
        providers
    } else {
        format!(r#"<nav class="sso" aria-label="Single sign-on">{providers}</nav>"#)
    };
    let html = plain_page(
        "Sign in",
        &format!(
            r#"<section class="signin">
<h1>Sign in</h1>
{error}
{providers}
<form method="post" action="{SIGN_IN}">
<input type="hidden" name="next" value="{next}">
<label>Login <input name="login" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form>
</section>"#,
            next = escape(next),
            SIGN_IN = super::routes::SIGN_IN,
        ),
    );
    (
        status,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::response::Html(html),
    )
        .into_response()
}

/// The sign-in request: JSON from a script, or the sign-in page's form.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SignIn {
    login: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /api/auth/sign-in`: checks a local account's password, opens a session and sets
/// its cookie. A form (the sign-in page) is sent on to `next`, or back to the page with
/// the reason; JSON gets who signed in, or the API's error.
#[utoipa::path(
    post,
    path = crate::http::routes::SIGN_IN,
    tag = "auth",
    request_body = SignIn,
    security(()),
    responses(
        (status = 200, description = "Signed in: the session cookie is set; the body says who", body = app::model::identity::Me),
        (status = 303, description = "From the sign-in page's form: on to next, or back to the page with the reason"),
        (status = 429, description = "Too many failed tries: retry-after says when to try again", body = app::model::ErrorBody),
        crate::http::openapi::Invalid,
        crate::http::openapi::Unauthenticated
    )
)]
pub async fn sign_in(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    let request: Result<SignIn, String> = if is_form {
        serde_urlencoded::from_bytes(&body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice(&body).map_err(|e| e.to_string())
    };
    let (request, next) = match request {
        Ok(request) => {
            let next = safe_next(request.next.as_deref()).to_owned();
            (request, next)
        }
        Err(error) => {
            let error = AppError::BadRequest(format!(
                "expected login and password ({{\"login\": ..., \"password\": ...}}): {error}"
            ));
            return answer_sign_in(is_form, "/orchestration", Err(error));
        }
    };
    let peer = peer.map(|Extension(ConnectInfo(addr))| addr);
    let outcome = open_session(&state, &request, peer).await;
    answer_sign_in(is_form, &next, outcome)
}

async fn open_session(
    state: &AppState,
    request: &SignIn,
    peer: Option<SocketAddr>,
) -> Result<(Me, String), AppError> {
    let login = request.login.trim();
    if login.is_empty() || login.len() > MAX_NAME_LEN {
        return Err(AppError::BadRequest(format!(
            "a login is 1 to {MAX_NAME_LEN} characters"
        )));
    }
    let now = now_ms();
    if let Err(wait) = state
        .auth
        .throttle
        .attempt(login, peer.map(|addr| addr.ip()))
    {
        let retry_after_secs = wait.as_secs().max(1);
        audit_sign_in(state, login, "refused", "too many attempts").await;
        return Err(AppError::TooManyRequests {
            message: format!("too many sign-in attempts; try again in {retry_after_secs} s"),
            retry_after_secs,
        });
    }
    let user = state.store.user_by_login(login).await?;
    let verified = match user.as_ref().and_then(|user| user.password_hash.clone()) {
        Some(stored) => password::verify(request.password.clone(), stored).await,
        None => {
            password::verify_nothing(request.password.clone()).await;
            false
        }
    };
    let user = match user {
        Some(user) if verified && !user.disabled => user,
        _ => {
            audit_sign_in(state, login, "refused", "wrong login or password").await;
            return Err(AppError::Unauthorized("wrong login or password".into()));
        }
    };
    let secret = new_secret().map_err(AppError::internal)?;
    let end = state.auth.settings.session_end(now, now);
    state
        .store
        .open_session(&hash_secret(&secret), user.id, "password", &[], now, end)
        .await?;
    audit_sign_in(state, &user.login, "ok", "password").await;
    let me = Me {
        actor: user.login,
        display_name: user.display_name,
        via: "password".into(),
        bindings: user.bindings,
    };
    Ok((me, secret))
}

pub(super) async fn audit_sign_in(state: &AppState, login: &str, outcome: &str, detail: &str) {
    record(
        state,
        NewAuditEntry {
            at_ms: now_ms(),
            actor: login.chars().take(MAX_NAME_LEN).collect(),
            via: "session".into(),
            action: "sign_in".into(),
            outcome: outcome.into(),
            detail: Some(detail.into()),
            ..NewAuditEntry::default()
        },
    )
    .await;
}

/// An audit entry of `action` by `caller`, now, that went well; the caller of this fills
/// in the rest.
pub fn entry_by(caller: &Caller, action: &str) -> NewAuditEntry {
    NewAuditEntry {
        at_ms: now_ms(),
        actor: caller.actor.clone(),
        via: caller.via_name().into(),
        action: action.into(),
        outcome: "ok".into(),
        ..NewAuditEntry::default()
    }
}

/// Appends to the audit log; a failure to is logged (the action itself stands).
pub async fn record(state: &AppState, entry: NewAuditEntry) {
    if let Err(error) = state.store.append_audit(&entry).await {
        tracing::error!(cause = %app::model::error_chain(&error), action = %entry.action, "the audit log could not be written");
    }
}

fn answer_sign_in(is_form: bool, next: &str, outcome: Result<(Me, String), AppError>) -> Response {
    match (is_form, outcome) {
        (false, Ok((me, secret))) => {
            let mut response = Json(me).into_response();
            set_cookie(&mut response, &session_cookie_value(&secret));
            response
        }
        (false, Err(error)) => error.into_response(),
        (true, Ok((_, secret))) => {
            let mut response = Redirect::to(next).into_response();
            set_cookie(&mut response, &session_cookie_value(&secret));
            response
        }
        (true, Err(error)) => {
            let mut response = Redirect::to(&format!(
                "{SIGN_IN_PAGE}?error={}&next={}",
                urlencoding_component(&error.body().message),
                urlencoding_component(next)
            ))
            .into_response();
            if let AppError::TooManyRequests {
                retry_after_secs, ..
            } = error
            {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            response
        }
    }
}

pub(super) fn session_cookie_value(secret: &str) -> String {
    // HttpOnly: scripts never see it; SameSite=Lax: other sites' forms do not carry it
    // (and the Origin check above catches what Lax lets through). Secure is added when
    // served over HTTPS (see [`over_https`]).
    format!("{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax")
}

pub(super) fn set_cookie(response: &mut Response, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// `POST /api/auth/sign-out`: ends the session (its cookie no longer works anywhere)
/// and clears the cookie. A form is sent to the sign-in page.
#[utoipa::path(
    post,
    path = crate::http::routes::SIGN_OUT,
    tag = "auth",
    responses(
        (status = 200, description = "Signed out: the session is ended", body = serde_json::Value),
        crate::http::openapi::Unauthenticated
    )
)]
pub async fn sign_out(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if let Via::Session { token_hash, .. } = &caller.via {
        state.store.revoke_session(token_hash, now_ms()).await?;
        record(&state, entry_by(&caller, "sign_out")).await;
    }
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("text/html"));
    let mut response = if wants_html {
        Redirect::to(SIGN_IN_PAGE).into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    };
    set_cookie(
        &mut response,
        &format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    Ok(response)
}

/// `GET /api/auth/me`: who the request is from, and their roles.
#[utoipa::path(
    get,
    path = crate::http::routes::ME,
    tag = "auth",
    responses(
        (status = 200, description = "Who is calling, and what they may do", body = app::model::identity::Me),
        crate::http::openapi::Unauthenticated
    )
)]
pub async fn me(Extension(caller): Extension<Caller>) -> Json<Me> {
    Json(caller.me())
}

/// Over HTTPS (Stepline serves TLS, or a trusted proxy says the browser used it): every
/// cookie set is `Secure`, and browsers are told to come back only over HTTPS (HSTS).
pub async fn over_https(request: Request, next: Next) -> Response {
    let https = request
        .extensions()
        .get::<super::Https>()
        .is_some_and(|https| https.0);
    let mut response = next.run(request).await;
    if !https {
        return response;
    }
    let headers = response.headers_mut();
    let cookies: Vec<HeaderValue> = headers.remove(header::SET_COOKIE).into_iter().collect();
    for cookie in cookies {
        let secured = cookie
            .to_str()
            .ok()
            .filter(|text| !text.contains("; Secure"))
            .and_then(|text| HeaderValue::from_str(&format!("{text}; Secure")).ok())
            .unwrap_or(cookie);
        headers.append(header::SET_COOKIE, secured);
    }
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_own_paths_are_followed_after_sign_in() {
        assert_eq!(
            safe_next(Some("/orchestration/workflows/wf-1")),
            "/orchestration/workflows/wf-1"
        );
        assert_eq!(safe_next(Some("//evil.example/x")), "/orchestration");
        assert_eq!(safe_next(Some("https://evil.example/")), "/orchestration");
        assert_eq!(safe_next(Some("/\\evil.example")), "/orchestration");
        assert_eq!(safe_next(None), "/orchestration");
    }

    #[test]
    fn an_origin_is_read_as_its_host_and_port() {
        assert_eq!(host_of("http://127.0.0.1:3000"), Some("127.0.0.1:3000"));
        assert_eq!(
            host_of("https://stepline.example/orchestration?x"),
            Some("stepline.example")
        );
        assert_eq!(host_of("null"), None);
        assert_eq!(host_of("http://"), None);
    }

    #[test]
    fn a_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; stepline_session=abc; b=2"),
        );
        assert_eq!(session_cookie(&headers), Some("abc"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer stp_x"),
        );
        assert_eq!(bearer_token(&headers), Some("stp_x"));
    }
}
