//! Databases for tests and benchmarks: a SQLite file in a given folder, or, when
//! `STEPLINE_TEST_POSTGRES_URL` names a PostgreSQL server (as `scripts/test.sh` does for
//! its pass on PostgreSQL), a database of that server named after the folder. The same
//! folder always gives the same database, so a test that restarts Stepline on its folder
//! finds what it stored. The server itself never calls this.

use super::{Store, StoreError};
use sha2::{Digest, Sha256};
use sqlx::Connection;
use std::path::Path;

/// The variable naming the PostgreSQL server the story tests run on: the URL of a database
/// there (`postgres://user@host:port/database`) of a role that may create databases.
pub const POSTGRES_VARIABLE: &str = "STEPLINE_TEST_POSTGRES_URL";

/// Why no scratch database could be had.
#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    #[error("{POSTGRES_VARIABLE}={0} names no database (postgres://user@host:port/database)")]
    NoDatabase(String),
    #[error("{POSTGRES_VARIABLE}: {0}")]
    Server(#[from] sqlx::Error),
}

/// The URL of the database kept for `dir`, created on the PostgreSQL server if need be.
pub async fn url_in(dir: &Path) -> Result<String, ScratchError> {
    let Some(server) = std::env::var(POSTGRES_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
    else {
        return Ok(format!("sqlite://{}/stepline.db", dir.display()));
    };
    // The server's URL names a database last; the folder's takes its place.
    let Some((server_part, _)) = server
        .rsplit_once('/')
        .filter(|(head, _)| head.contains("://") && !head.ends_with('/'))
    else {
        return Err(ScratchError::NoDatabase(server));
    };
    // A name PostgreSQL takes whatever the folder is called (at most 63 bytes).
    let digest = Sha256::digest(dir.display().to_string().as_bytes());
    let name: String = std::iter::once("stepline_test_".to_owned())
        .chain(digest[..12].iter().map(|byte| format!("{byte:02x}")))
        .collect();
    let mut admin = sqlx::PgConnection::connect(&server).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
    }
    Ok(format!("{server_part}/{name}"))
}

/// The store kept for `dir` (see [`url_in`]), opened and migrated.
pub async fn store_in(dir: &Path) -> Result<Store, StoreError> {
    let url = url_in(dir).await.map_err(|error| match error {
        ScratchError::Server(error) => StoreError::Sql(error),
        other => StoreError::UnsupportedUrl(other.to_string()),
    })?;
    Store::open(&url).await
}
