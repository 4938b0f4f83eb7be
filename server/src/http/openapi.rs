//! The REST API's OpenAPI 3.1 document, generated from the handlers' own annotations and
//! the model's own types, served at `/api/openapi.json`. A test keeps it and the route
//! table ([`super::routes::API`]) in step, and CI validates it with a standard validator.

use super::{actions, admin, alerts, auth, commands, gantt, health, ingest, sso, workflows};
use std::collections::BTreeMap;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Stepline API",
        description = "One console for every workflow engine: runs as one read model, operators' actions, the events API for custom engines, alerts, and the live protocol. Every error is `{\"error\": code, \"message\": text}` with a 4xx status for a client's mistake.",
    ),
    paths(
        workflows::list,
        actions::start,
        workflows::detail,
        actions::act,
        actions::export,
        gantt::svg,
        commands::of_run,
        admin::sources,
        admin::declare_source,
        admin::remove_source,
        commands::pull,
        commands::answer,
        ingest::push_events,
        workflows::analytics,
        workflows::engines,
        workflows::leases,
        admin::audit,
        alerts::list,
        alerts::acknowledge,
        alerts::mute,
        health::health,
        health::livez,
        health::readyz,
        health::metrics,
        serve,
        crate::live::ws::handler,
        auth::sign_in,
        auth::sign_in_page,
        sso::start,
        sso::callback,
        auth::sign_out,
        auth::me,
        admin::users,
        admin::create_user,
        admin::update_user,
        admin::tokens,
        admin::create_token,
        admin::revoke_token,
    ),
    components(schemas(
        app::model::ErrorBody,
        app::model::ClientMessage,
        app::model::LiveMessage,
        crate::source::SourceEvent,
    )),
    tags(
        (name = "workflows", description = "Runs of every engine, as one read model"),
        (name = "actions", description = "Starting runs and acting on them, where the engine can"),
        (name = "events", description = "For engine authors: pushing what happens to your runs"),
        (name = "commands", description = "For engine authors: operators' commands to your engine, by webhook or pulled"),
        (name = "sources", description = "Admins declare the pushing sources that take commands"),
        (name = "alerts", description = "The alert inbox"),
        (name = "analytics", description = "Runs that ended, summed up"),
        (name = "audit", description = "Who did what"),
        (name = "auth", description = "Signing in and out"),
        (name = "admin", description = "Accounts and API tokens"),
        (name = "live", description = "Updates pushed over a WebSocket"),
        (name = "operations", description = "Probes, metrics and the instance's state"),
    ),
    modifiers(&Security),
    // Every route needs a caller but those that say otherwise (`security(())`).
    security(("bearer" = []), ("session" = [])),
)]
pub struct ApiDoc;

/// The error answers an operation may give, each with the API's error body: described
/// once here, named in each operation's responses.
macro_rules! error_answers {
    ($($name:ident => $status:literal, $description:literal;)+) => {$(
        #[doc = $description]
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                error_answer($status, $description)
            }
        }
    )+};
}

error_answers! {
    Invalid => "400", "The request is not valid; the message says why";
    Unauthenticated => "401", "Not signed in: no session, no token, or one that no longer works";
    Forbidden => "403", "Signed in without the role or scope this needs";
    Missing => "404", "No such thing";
    Conflicting => "409", "Not possible in the present state; the message says why";
    TooLarge => "413", "The body is larger than allowed";
    Refused => "422", "Refused: the message says which event and why";
    Unavailable => "503", "The engine or the store cannot take it now; try again";
}

/// Not signed in, or without the role or scope: the answers of every route that needs a
/// caller.
pub struct Denied;

impl utoipa::IntoResponses for Denied {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut answers = Unauthenticated::responses();
        answers.append(&mut Forbidden::responses());
        answers
    }
}

/// One error answer: `status`, `description`, and the API's error body.
fn error_answer(status: &str, description: &str) -> BTreeMap<String, RefOr<Response>> {
    let body = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build();
    BTreeMap::from([(
        status.to_owned(),
        ResponseBuilder::new()
            .description(description)
            .content("application/json", body)
            .build()
            .into(),
    )])
}

/// How callers prove who they are: an API token, or the session cookie of a person
/// signed in.
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi
            .components
            .get_or_insert_with(utoipa::openapi::Components::new);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("stp_...")
                    .description(Some("An API token, made by an admin"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SESSION_COOKIE,
                "The session of a person signed in",
            ))),
        );
    }
}

/// The document as JSON (made once).
pub fn document() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serializes")
    })
}

/// `GET /api/openapi.json`.
#[utoipa::path(
    get,
    operation_id = "openapi_document",
    path = crate::http::routes::OPENAPI,
    tag = "operations",
    security(()),
    responses((status = 200, description = "This document", content_type = "application/json", body = serde_json::Value))
)]
pub async fn serve() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document(),
    )
        .into_response()
}
