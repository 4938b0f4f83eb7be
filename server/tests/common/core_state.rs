//! Stepline's core (store, projector, live hub; no engine) on a temporary SQLite file, as
//! the integration tests start it.

/// The core's state, and the folder its database lives in (removed when dropped).
pub async fn on_temporary_file() -> (server::http::AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/stepline.db", dir.path().display());
    let options = leptos::config::LeptosOptions::builder()
        .output_name("stepline")
        .build();
    let state = server::start_core(&url, options, None).await.unwrap().state;
    (state, dir)
}
