//! The database a test's Stepline stores into (see `server::store::scratch`): a SQLite file
//! in the test's folder, or a database of its own on the PostgreSQL server that
//! `STEPLINE_TEST_POSTGRES_URL` names.

use std::path::Path;

/// The URL of the database kept for `dir`.
pub async fn url_in(dir: &Path) -> String {
    server::store::scratch::url_in(dir)
        .await
        .unwrap_or_else(|error| panic!("no database for the test: {error}"))
}

/// A store of its own for a test that needs no folder beyond the test's life: the store,
/// and the folder (removed when dropped).
pub async fn fresh_store() -> (server::store::Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = server::store::scratch::store_in(dir.path()).await.unwrap();
    (store, dir)
}
