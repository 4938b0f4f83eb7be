//! Stepline's core (store, projector, live hub; no engine) on a temporary database (see
//! `database`), as the integration tests start it.

/// The core's state, and the folder its database lives in (removed when dropped).
pub async fn on_temporary_file() -> (server::http::AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let state = in_folder(dir.path()).await;
    (state, dir)
}

/// The core on the database in `dir` (a restart opens it again).
pub async fn in_folder(dir: &std::path::Path) -> server::http::AppState {
    let url = super::database::url_in(dir).await;
    let options = leptos::config::LeptosOptions::builder()
        .output_name("stepline")
        .build();
    server::start_core(&url, options, None).await.unwrap().state
}

/// Shows what the engines log (a refused event, an outage) in a failing test's output.
pub fn show_engine_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            std::env::var("STEPLINE_LOG").unwrap_or_else(|_| "warn,server=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// The sources the tests push events as.
pub const TEST_SOURCES: [&str; 3] = ["billing", "fuzz", "squatter"];

/// A real API token of `state`'s store (stored hashed, as an admin's would be) that may
/// read, act on every run, and push as each of the [`TEST_SOURCES`]: what the tests'
/// client sends.
pub async fn operator_token(state: &server::http::AppState) -> String {
    token_with(
        state,
        "tests",
        &[&["read", "operate"][..], &TEST_SOURCES[..]].concat(),
    )
    .await
}

/// A real API token of `state`'s store with the given scopes (`read`, `operate`,
/// `ingest:<source>`, or a bare source name for `ingest:<source>`).
pub async fn token_with(state: &server::http::AppState, name: &str, scopes: &[&str]) -> String {
    token_with_store(&state.store, name, scopes).await
}

/// A real API token made in `store` (see [`token_with`]).
pub async fn token_with_store(store: &server::store::Store, name: &str, scopes: &[&str]) -> String {
    use app::model::identity::Scope;
    let scopes: Vec<Scope> = scopes
        .iter()
        .map(|scope| {
            Scope::parse(scope)
                .or_else(|| Scope::parse(&format!("ingest:{scope}")))
                .unwrap_or_else(|| panic!("{scope:?} is not a scope"))
        })
        .collect();
    let token = server::auth::secret::new_token().unwrap();
    store
        .create_token(
            name,
            &server::auth::secret::hash_secret(&token),
            &scopes,
            "tests",
            chrono::Utc::now().timestamp_millis(),
            None,
        )
        .await
        .unwrap();
    token
}

/// The core on a temporary file, and a client of it through the router that sends an
/// [`operator_token`].
pub async fn with_client() -> (
    server::http::AppState,
    super::client::Client,
    tempfile::TempDir,
) {
    let (state, dir) = on_temporary_file().await;
    let token = operator_token(&state).await;
    let client = super::client::Client::in_process(server::app(state.clone())).with_token(token);
    (state, client, dir)
}

/// An account made in `state`'s store with `bindings` and, to sign in with, a password's
/// hash; its id.
pub async fn account(
    state: &server::http::AppState,
    login: &str,
    password_hash: Option<&str>,
    bindings: &[app::model::identity::RoleBinding],
) -> i64 {
    state
        .store
        .create_user(
            server::store::identity::NewAccount {
                login,
                display_name: None,
                password_hash,
                provider: "local",
                bindings,
            },
            chrono::Utc::now().timestamp_millis(),
        )
        .await
        .unwrap()
        .unwrap()
}

/// The cookie of a fresh session of account `user` in `state`'s store (an hour long).
pub async fn session_cookie(state: &server::http::AppState, user: i64) -> String {
    let secret = server::auth::secret::new_secret().unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    state
        .store
        .open_session(
            &server::auth::secret::hash_secret(&secret),
            user,
            "password",
            &[],
            now,
            now + 3_600_000,
        )
        .await
        .unwrap();
    format!("stepline_session={secret}")
}

/// Stepline following one engine's `source` in-process, asked through its real router
/// with an operator's token; its database lives in `dir` (removed when dropped).
pub struct Following<S> {
    pub client: super::client::Client,
    pub source: S,
    /// Kept for a restart on the same database.
    pub dir: tempfile::TempDir,
}

impl<S> Following<S> {
    /// Stepline on `state` (which follows `source` already), its database in `dir`.
    pub async fn new(state: &server::http::AppState, source: S, dir: tempfile::TempDir) -> Self {
        Self {
            client: super::client::Client::in_process(server::app(state.clone()))
                .with_token(operator_token(state).await),
            source,
            dir,
        }
    }
}

impl<S> std::ops::Deref for Following<S> {
    type Target = super::client::Client;

    fn deref(&self) -> &Self::Target {
        &self.client
    }
}
