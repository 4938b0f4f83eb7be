//! Every route Stepline serves and what its caller needs: the API's routes (one table,
//! from which the router is built: a route cannot be added without its rule), the pages
//! and the pages' server functions. The authorization test walks this same list.

use crate::auth::Need;
use axum::http::Method;

/// One API route: its method (`None`: any), its path as the router matches it, and what
/// its caller needs.
#[derive(Debug, Clone)]
pub struct Rule {
    pub method: Option<Method>,
    pub path: &'static str,
    pub need: Need,
}

const fn rule(method: Method, path: &'static str, need: Need) -> Rule {
    Rule {
        method: Some(method),
        path,
        need,
    }
}

pub const WORKFLOWS: &str = "/api/platform/orchestration/workflows";
pub const WORKFLOW: &str = "/api/platform/orchestration/workflows/{id}";
pub const WORKFLOW_ACTION: &str = "/api/platform/orchestration/workflows/{id}/{action}";
pub const WORKFLOW_EXPORT: &str = "/api/platform/orchestration/workflows/{id}/export";
pub const WORKFLOW_GANTT: &str = "/api/platform/orchestration/workflows/{id}/gantt.svg";
pub const WORKFLOW_COMMANDS: &str = "/api/platform/orchestration/workflows/{id}/commands";
/// The pushing sources whose engines take commands (admins declare and remove them).
pub const SOURCES: &str = "/api/platform/orchestration/sources";
pub const SOURCE: &str = "/api/platform/orchestration/sources/{source}";
/// An in-house engine pulls its commands, and answers each.
pub const SOURCE_COMMANDS: &str = "/api/platform/orchestration/sources/{source}/commands";
pub const SOURCE_COMMAND: &str = "/api/platform/orchestration/sources/{source}/commands/{command}";
pub const EVENTS: &str = "/api/platform/orchestration/events";
pub const ANALYTICS: &str = "/api/platform/orchestration/analytics";
pub const ENGINES: &str = "/api/platform/orchestration/engines";
/// Which instance of Stepline does what only one may do (the leases), and which answers.
pub const LEASES: &str = "/api/platform/orchestration/leases";
pub const AUDIT: &str = "/api/platform/orchestration/audit";
/// The alert inbox, and operators taking an alert in hand.
pub const ALERTS: &str = "/api/platform/orchestration/alerts";
pub const ALERT_ACKNOWLEDGE: &str = "/api/platform/orchestration/alerts/{id}/acknowledge";
pub const ALERT_MUTE: &str = "/api/platform/orchestration/alerts/{id}/mute";
pub const HEALTH: &str = "/api/health";
/// The probes: the process answers; the instance takes traffic.
pub const LIVEZ: &str = "/livez";
pub const READYZ: &str = "/readyz";
/// The API's OpenAPI document.
pub const OPENAPI: &str = "/api/openapi.json";
/// Prometheus's scrape.
pub const METRICS: &str = "/metrics";
pub const UNKNOWN_API: &str = "/api/{*rest}";
pub const LIVE: &str = "/ws/orchestration";
pub const SIGN_IN: &str = "/api/auth/sign-in";
pub const SIGN_OUT: &str = "/api/auth/sign-out";
pub const ME: &str = "/api/auth/me";
pub const USERS: &str = "/api/auth/users";
pub const USER: &str = "/api/auth/users/{id}";
pub const TOKENS: &str = "/api/auth/tokens";
pub const TOKEN: &str = "/api/auth/tokens/{id}";
/// Single sign-on: to the provider, and back.
pub const SSO_START: &str = "/signin/oidc/{provider}";
pub const SSO_CALLBACK: &str = "/signin/oidc/{provider}/callback";

/// The API's routes.
pub const API: &[Rule] = &[
    rule(Method::GET, WORKFLOWS, Need::Read),
    rule(Method::POST, WORKFLOWS, Need::Operate),
    rule(Method::GET, WORKFLOW, Need::Read),
    rule(Method::POST, WORKFLOW_ACTION, Need::Operate),
    rule(Method::GET, WORKFLOW_EXPORT, Need::Read),
    rule(Method::GET, WORKFLOW_GANTT, Need::Read),
    rule(Method::GET, WORKFLOW_COMMANDS, Need::Read),
    rule(Method::GET, SOURCES, Need::Admin),
    rule(Method::POST, SOURCES, Need::Admin),
    rule(Method::DELETE, SOURCE, Need::Admin),
    rule(Method::GET, SOURCE_COMMANDS, Need::Ingest),
    rule(Method::POST, SOURCE_COMMAND, Need::Ingest),
    rule(Method::POST, EVENTS, Need::Ingest),
    rule(Method::GET, ANALYTICS, Need::Read),
    rule(Method::GET, ENGINES, Need::Read),
    rule(Method::GET, LEASES, Need::Read),
    rule(Method::GET, AUDIT, Need::Operate),
    rule(Method::GET, ALERTS, Need::Read),
    rule(Method::POST, ALERT_ACKNOWLEDGE, Need::Operate),
    rule(Method::POST, ALERT_MUTE, Need::Operate),
    rule(Method::GET, HEALTH, Need::Nobody),
    rule(Method::GET, LIVEZ, Need::Nobody),
    rule(Method::GET, READYZ, Need::Nobody),
    rule(Method::GET, METRICS, Need::Read),
    rule(Method::GET, OPENAPI, Need::Nobody),
    rule(Method::GET, LIVE, Need::Read),
    rule(Method::POST, SIGN_IN, Need::Nobody),
    rule(Method::GET, SIGN_IN_PAGE, Need::Nobody),
    rule(Method::GET, SSO_START, Need::Nobody),
    rule(Method::GET, SSO_CALLBACK, Need::Nobody),
    rule(Method::POST, SIGN_OUT, Need::SignedIn),
    rule(Method::GET, ME, Need::SignedIn),
    rule(Method::GET, USERS, Need::Admin),
    rule(Method::POST, USERS, Need::Admin),
    rule(Method::PATCH, USER, Need::Admin),
    rule(Method::GET, TOKENS, Need::Admin),
    rule(Method::POST, TOKENS, Need::Admin),
    rule(Method::DELETE, TOKEN, Need::Admin),
    // Any other path under /api answers 404 in JSON, to anyone.
    Rule {
        method: None,
        path: UNKNOWN_API,
        need: Need::Nobody,
    },
];

/// The pages' server functions (`/api/<name>`) and what each needs.
pub const SERVER_FUNCTIONS: &[(&str, Need)] = &[
    ("/api/list_workflows", Need::Read),
    ("/api/get_stats", Need::Read),
    ("/api/get_workflow", Need::Read),
    ("/api/act_on_workflow", Need::Operate),
    ("/api/get_analytics", Need::Read),
    ("/api/get_step_norms", Need::Read),
    ("/api/get_audit", Need::Read),
    ("/api/get_engine_commands", Need::Read),
    ("/api/search_audit", Need::Operate),
    ("/api/list_alerts", Need::Read),
    ("/api/count_open_alerts", Need::Read),
    ("/api/acknowledge_alert", Need::Operate),
    ("/api/mute_alert", Need::Operate),
    ("/api/who_am_i", Need::Nobody),
];

/// The audit log's page (operators and admins, as its API).
pub const AUDIT_PAGE: &str = "/orchestration/audit";

/// The page that signs people in, open to everyone.
pub const SIGN_IN_PAGE: &str = "/signin";

/// What a request to `path` (as the router matched it) with `method` needs; `None` for
/// a route no rule covers.
pub fn need_of(method: &Method, path: &str) -> Option<Need> {
    if let Some(rule) = API.iter().find(|rule| {
        rule.path == path && rule.method.as_ref().is_none_or(|allowed| allowed == method)
    }) {
        return Some(rule.need);
    }
    if API.iter().any(|rule| rule.path == path) {
        // A method the route does not take: the router answers 405, to anyone.
        return Some(Need::Nobody);
    }
    if let Some((_, need)) = SERVER_FUNCTIONS.iter().find(|(route, _)| *route == path) {
        return Some(*need);
    }
    if path == AUDIT_PAGE {
        // The audit log, as its API route.
        return (*method == Method::GET).then_some(Need::Operate);
    }
    if path == "/" {
        // Only sends on to the console.
        return Some(Need::Nobody);
    }
    // The app's pages: the console, read by anyone with a role.
    (*method == Method::GET && path.starts_with("/orchestration")).then_some(Need::Read)
}
