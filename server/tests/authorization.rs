//! Who may call what, for every route Stepline serves: the API's routes (the table the
//! router is built from), the pages and the pages' server functions, each asked by an
//! anonymous visitor, a viewer, an operator and an admin (real sessions), a token with
//! the wrong scope and one with the right scopes, and an operator limited to another
//! engine acting on a run. A route with no rule fails here; so does any answer that lets
//! someone through who should not pass, or stops someone who should.

mod common;
use app::model::identity::{Role, RoleBinding};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::core_state;
use http_body_util::BodyExt;
use server::auth::Need;
use server::http::routes::{self, API, SERVER_FUNCTIONS};
use server::http::AppState;
use std::collections::BTreeSet;
use tower::ServiceExt;

const HOST: &str = "stepline.test";
const ORIGIN: &str = "http://stepline.test";

/// Who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asker {
    Anonymous,
    Viewer,
    Operator,
    Admin,
    /// A token that may only push as another source.
    WrongScopeToken,
    /// A token that may read, operate and push as the run's source.
    RightScopeToken,
    /// An operator on another engine only (a viewer everywhere), acting on a run.
    OtherEngineOperator,
}

const ASKERS: [Asker; 7] = [
    Asker::Anonymous,
    Asker::Viewer,
    Asker::Operator,
    Asker::Admin,
    Asker::WrongScopeToken,
    Asker::RightScopeToken,
    Asker::OtherEngineOperator,
];

/// What an asker may do, as the rules say it.
fn passes(asker: Asker, need: Need) -> bool {
    use Asker::*;
    match need {
        Need::Nobody => true,
        Need::SignedIn => asker != Anonymous,
        Need::Read => matches!(
            asker,
            Viewer | Operator | Admin | RightScopeToken | OtherEngineOperator
        ),
        Need::Operate => matches!(
            asker,
            Operator | Admin | RightScopeToken | OtherEngineOperator
        ),
        Need::Admin => asker == Admin,
        Need::Ingest => matches!(asker, WrongScopeToken | RightScopeToken),
    }
}

struct Credentials {
    cookie: Option<String>,
    token: Option<String>,
}

async fn account(state: &AppState, login: &str, bindings: &[RoleBinding]) -> i64 {
    core_state::account(state, login, None, bindings).await
}

/// A fresh session of `user` (sign-out in the matrix ends the one it is sent with).
async fn session(state: &AppState, user: i64) -> String {
    core_state::session_cookie(state, user).await
}

struct World {
    state: AppState,
    router: axum::Router,
    users: [(Asker, i64); 4],
    wrong_token: String,
    right_token: String,
    run: String,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new() -> Self {
        let (state, dir) = core_state::on_temporary_file().await;
        let viewer = account(
            &state,
            "viewer@example.com",
            &[RoleBinding::everywhere(Role::Viewer)],
        )
        .await;
        let operator = account(
            &state,
            "operator@example.com",
            &[RoleBinding::everywhere(Role::Operator)],
        )
        .await;
        let admin = account(
            &state,
            "admin@example.com",
            &[RoleBinding::everywhere(Role::Admin)],
        )
        .await;
        let limited = account(
            &state,
            "limited@example.com",
            &[
                RoleBinding::everywhere(Role::Viewer),
                RoleBinding {
                    role: Role::Operator,
                    engines: "custom:elsewhere".into(),
                },
            ],
        )
        .await;
        let wrong_token = core_state::token_with(&state, "wrong", &["ingest:elsewhere"]).await;
        let right_token =
            core_state::token_with(&state, "right", &["read", "operate", "billing"]).await;
        let router = server::app(state.clone());
        let run = "authz-run".to_owned();
        let push = Request::post(routes::EVENTS)
            .header("authorization", format!("Bearer {right_token}"))
            .header("content-type", "application/json")
            .body(Body::from(
                // Failed, so that it has an alert (the first: number 1).
                serde_json::json!({"source": "billing", "events": [{
                    "type": "workflow_started", "workflow_id": run, "workflow_type": "authz",
                    "at": chrono::Utc::now().to_rfc3339()}, {
                    "type": "workflow_status_changed", "workflow_id": run, "status": "FAILED",
                    "at": chrono::Utc::now().to_rfc3339()}]})
                .to_string(),
            ))
            .unwrap();
        let pushed = router.clone().oneshot(push).await.unwrap();
        assert_eq!(pushed.status(), StatusCode::OK);
        Self {
            state,
            router,
            users: [
                (Asker::Viewer, viewer),
                (Asker::Operator, operator),
                (Asker::Admin, admin),
                (Asker::OtherEngineOperator, limited),
            ],
            wrong_token,
            right_token,
            run,
            _dir: dir,
        }
    }

    async fn credentials(&self, asker: Asker) -> Credentials {
        let user = self.users.iter().find(|(who, _)| *who == asker);
        match (asker, user) {
            (Asker::WrongScopeToken, _) => Credentials {
                cookie: None,
                token: Some(self.wrong_token.clone()),
            },
            (Asker::RightScopeToken, _) => Credentials {
                cookie: None,
                token: Some(self.right_token.clone()),
            },
            (_, Some((_, id))) => Credentials {
                cookie: Some(session(&self.state, *id).await),
                token: None,
            },
            _ => Credentials {
                cookie: None,
                token: None,
            },
        }
    }

    /// A concrete path for a route's pattern.
    fn path(&self, pattern: &str) -> String {
        pattern
            .replace("{id}", &self.run)
            .replace("{action}", "pause")
            .replace("{provider}", "nowhere")
            .replace("{source}", "billing")
            .replace("{command}", "1")
            .replace("{*rest}", "no-such-thing")
            .replace("/api/auth/users/authz-run", "/api/auth/users/1")
            .replace("/alerts/authz-run/", "/alerts/1/")
            .replace("/api/auth/tokens/authz-run", "/api/auth/tokens/999999")
    }

    async fn ask(&self, asker: Asker, method: &Method, path: &str) -> (StatusCode, String) {
        let credentials = self.credentials(asker).await;
        let mut request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header("host", HOST)
            .header("origin", ORIGIN)
            .header("content-type", "application/json");
        if let Some(cookie) = credentials.cookie {
            request = request.header("cookie", cookie);
        }
        if let Some(token) = credentials.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = if path == routes::EVENTS {
            // As the run's own source: only the right token may.
            serde_json::json!({"source": "billing", "events": [{"type": "log_lines",
                "workflow_id": self.run, "at": chrono::Utc::now().to_rfc3339(),
                "step_number": 1, "lines": ["x"]}]})
            .to_string()
        } else if *method == Method::GET || *method == Method::DELETE {
            String::new()
        } else {
            "{}".to_owned()
        };
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let text = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&text).into_owned())
    }
}

/// Every route the app serves: its method, its path pattern, and its rule.
fn every_route() -> Vec<(Method, String, Need)> {
    let mut all = Vec::new();
    for rule in API {
        let methods = match &rule.method {
            Some(method) => vec![method.clone()],
            None => vec![Method::GET, Method::POST],
        };
        for method in methods {
            all.push((method, rule.path.to_owned(), rule.need));
        }
    }
    // The pages, as the router has them.
    let pages = server::page_routes();
    for page in pages {
        let path = page.path().to_owned();
        let need = routes::need_of(&Method::GET, &path)
            .unwrap_or_else(|| panic!("the page {path} has no authorization rule"));
        all.push((Method::GET, path, need));
    }
    // The server functions, as registered.
    let registered: BTreeSet<(String, Method)> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, method)| (path.to_owned(), method))
        .collect();
    for (path, method) in &registered {
        let need = routes::need_of(method, path).unwrap_or_else(|| {
            panic!("the server function {method} {path} has no authorization rule")
        });
        all.push((method.clone(), path.clone(), need));
    }
    for (path, _) in SERVER_FUNCTIONS {
        assert!(
            registered.iter().any(|(registered, _)| registered == path),
            "a rule names the server function {path}, which does not exist"
        );
    }
    all
}

#[tokio::test]
async fn every_route_lets_through_exactly_who_its_rule_says() {
    let world = World::new().await;
    let routes = every_route();
    let mut checked = 0;
    let mut holes = Vec::new();
    for (method, pattern, need) in &routes {
        let path = world.path(pattern);
        for asker in ASKERS {
            let (status, body) = world.ask(asker, method, &path).await;
            checked += 1;
            let per_run_operate = *need == Need::Operate && pattern.contains("{id}");
            let expected_pass = passes(asker, *need)
                && !(asker == Asker::OtherEngineOperator && per_run_operate)
                // A token for another source passes the route, and the handler refuses it.
                && !(asker == Asker::WrongScopeToken && *need == Need::Ingest);
            let refused = matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
                || (status.is_redirection() && asker == Asker::Anonymous);
            if expected_pass == refused || status.is_server_error() {
                holes.push(format!(
                    "{method} {path} as {asker:?}: {status} {body:.200}"
                ));
            }
            if refused && !status.is_redirection() && pattern.starts_with("/orchestration") {
                // A page refused to someone signed in says why in HTML.
                assert!(
                    status == StatusCode::FORBIDDEN && body.starts_with("<!DOCTYPE html>"),
                    "{method} {path} as {asker:?}: {status} {body:.200}"
                );
            } else if refused && !status.is_redirection() {
                let error: serde_json::Value = serde_json::from_str(&body)
                    .unwrap_or_else(|_| panic!("{method} {path} as {asker:?}: not JSON: {body}"));
                let code = error["error"].as_str().unwrap_or_default();
                assert!(
                    code == "unauthorized" || code == "forbidden",
                    "{method} {path} as {asker:?}: {body}"
                );
            }
            if !expected_pass && asker == Asker::Anonymous && status.is_redirection() {
                assert!(
                    pattern.starts_with("/orchestration"),
                    "only pages send a visitor to sign in: {method} {path}"
                );
            }
        }
    }
    // A method no rule names, on any API path, is answered 405 whoever asks: a handler
    // added for a method without its rule would show here.
    for rule in API.iter().filter(|rule| rule.method.is_some()) {
        let path = world.path(rule.path);
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            let named = API.iter().any(|other| {
                other.path == rule.path && other.method.as_ref().is_none_or(|m| *m == method)
            });
            if named {
                continue;
            }
            for asker in [Asker::Anonymous, Asker::Admin] {
                let (status, body) = world.ask(asker, &method, &path).await;
                checked += 1;
                if status != StatusCode::METHOD_NOT_ALLOWED {
                    holes.push(format!(
                        "{method} {path} (no rule) as {asker:?}: {status} {body:.200}"
                    ));
                }
            }
        }
    }
    println!(
        "{} routes × {} askers = {checked} requests, {} holes",
        routes.len(),
        ASKERS.len(),
        holes.len()
    );
    assert!(holes.is_empty(), "{}", holes.join("\n"));
}

#[tokio::test]
async fn a_cross_site_post_with_the_session_cookie_is_refused_as_form_and_as_text() {
    let world = World::new().await;
    let (_, admin) = world.users[2];
    for (path, content_type) in [
        (
            format!("{}/pause", routes::WORKFLOW.replace("{id}", &world.run)),
            "application/x-www-form-urlencoded",
        ),
        (
            format!("{}/pause", routes::WORKFLOW.replace("{id}", &world.run)),
            "text/plain",
        ),
        (
            "/api/act_on_workflow".to_owned(),
            "application/x-www-form-urlencoded",
        ),
        ("/api/act_on_workflow".to_owned(), "text/plain"),
    ] {
        let request = Request::post(&path)
            .header("host", HOST)
            .header("origin", "http://evil.example")
            .header("cookie", session(&world.state, admin).await)
            .header("content-type", content_type)
            .body(Body::from(format!("id={}&action=pause", world.run)))
            .unwrap();
        let response = world.router.clone().oneshot(request).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{path} as {content_type}"
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("cross-site request refused"));
    }
    // No Origin and no Referer with a session cookie: refused too.
    let request = Request::post("/api/auth/sign-out")
        .header("host", HOST)
        .header("cookie", session(&world.state, admin).await)
        .body(Body::empty())
        .unwrap();
    let response = world.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Another site's page opening the live connection with the cookie; ours may.
    for (origin, refused) in [("http://evil.example", true), (ORIGIN, false)] {
        let request = Request::get(routes::LIVE)
            .header("host", HOST)
            .header("origin", origin)
            .header("cookie", session(&world.state, admin).await)
            .body(Body::empty())
            .unwrap();
        let status = world
            .router
            .clone()
            .oneshot(request)
            .await
            .unwrap()
            .status();
        assert_eq!(
            status == StatusCode::FORBIDDEN,
            refused,
            "{origin}: {status}"
        );
    }
}

#[tokio::test]
async fn ingest_needs_a_token_for_its_own_source() {
    let world = World::new().await;
    let body = |source: &str| {
        serde_json::json!({"source": source, "events": [{"type": "workflow_started",
            "workflow_id": format!("from-{source}"), "workflow_type": "t",
            "at": chrono::Utc::now().to_rfc3339()}]})
        .to_string()
    };
    let push = |token: Option<String>, source: &str| {
        let mut request = Request::post(routes::EVENTS).header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        world
            .router
            .clone()
            .oneshot(request.body(Body::from(body(source))).unwrap())
    };
    assert_eq!(
        push(None, "billing").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        push(Some(world.wrong_token.clone()), "billing")
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        push(Some(world.right_token.clone()), "billing")
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        push(Some("stp_not-a-token".into()), "billing")
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn someone_limited_to_some_engines_counts_only_their_runs_today_too() {
    let world = World::new().await;
    let pusher =
        core_state::token_with(&world.state, "pusher", &["ingest:north", "ingest:south"]).await;
    let at = chrono::Utc::now().to_rfc3339();
    // North: one run completed, one failed; south: one completed. All ended today.
    for (source, id, outcome) in [
        ("north", "north-ok", "COMPLETED"),
        ("north", "north-failed", "FAILED"),
        ("south", "south-ok", "COMPLETED"),
    ] {
        let body = serde_json::json!({"source": source, "events": [
            {"type": "workflow_started", "workflow_id": id, "workflow_type": "t", "at": at},
            {"type": "workflow_status_changed", "workflow_id": id, "at": at, "status": outcome}]});
        let pushed = world
            .router
            .clone()
            .oneshot(
                Request::post(routes::EVENTS)
                    .header("authorization", format!("Bearer {pusher}"))
                    .header("content-type", "application/json")
                    .body(Body::from(body.to_string()))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(pushed.status(), StatusCode::OK);
    }
    let north_only = account(
        &world.state,
        "north@example.com",
        &[RoleBinding {
            role: Role::Viewer,
            engines: "custom:north".into(),
        }],
    )
    .await;
    let stats_of = |cookie: String| {
        let router = world.router.clone();
        async move {
            let response = router
                .oneshot(
                    Request::get(routes::WORKFLOWS)
                        .header("host", HOST)
                        .header("cookie", cookie)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
            (list["total"].clone(), list["stats"].clone())
        }
    };
    let (total, stats) = stats_of(session(&world.state, north_only).await).await;
    assert_eq!(total, 2, "north's runs only");
    assert_eq!(stats["completed_today"], 1, "{stats}");
    assert_eq!(stats["failed_today"], 1, "{stats}");
    let viewer = world
        .users
        .iter()
        .find(|(who, _)| *who == Asker::Viewer)
        .unwrap()
        .1;
    let (_, stats) = stats_of(session(&world.state, viewer).await).await;
    assert_eq!(stats["completed_today"], 2, "every engine's: {stats}");
    // North's, and the world's own run (failed, for its alert).
    assert_eq!(stats["failed_today"], 2, "{stats}");
}
