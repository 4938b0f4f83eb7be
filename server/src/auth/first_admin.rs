//! The first start: with no account yet, Stepline makes an `admin` (the admin role on
//! every engine) so the console can be opened at once. Its password is the one given in
//! `STEPLINE_ADMIN_PASSWORD`, or a random one; either way it is written to a file only
//! its owner can read, beside the database, and shown once.

use super::password;
use super::secret::new_secret;
use crate::source::now_ms;
use crate::store::identity::{NewAccount, NewAuditEntry};
use crate::store::{Store, StoreError};
use app::model::identity::{Role, RoleBinding};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The first account's login.
pub const FIRST_ADMIN: &str = "admin";

/// The account made on the first start.
#[derive(Debug)]
pub struct FirstAdmin {
    pub login: String,
    pub password: String,
    /// Where the password was written, if it could be.
    pub file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum FirstAdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the first admin's password: {0}")]
    Password(String),
}

/// Makes the first admin when there is no account; `None` when there are accounts.
/// `given` is a password chosen by whoever deploys (at least 12 characters).
pub async fn ensure_first_admin(
    store: &Store,
    data_dir: Option<&Path>,
    given: Option<String>,
) -> Result<Option<FirstAdmin>, FirstAdminError> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let password = match given {
        Some(given) => given,
        None => new_secret().map_err(|e| FirstAdminError::Password(e.to_string()))?,
    };
    let hash = password::hash(password.clone())
        .await
        .map_err(|e| FirstAdminError::Password(e.to_string()))?;
    let created = store
        .create_user(
            NewAccount {
                login: FIRST_ADMIN,
                display_name: Some("Administrator"),
                password_hash: Some(&hash),
                provider: "local",
                bindings: &[RoleBinding::everywhere(Role::Admin)],
            },
            now_ms(),
        )
        .await?;
    if created.is_none() {
        // Another instance made it first.
        return Ok(None);
    }
    store
        .append_audit(&NewAuditEntry {
            at_ms: now_ms(),
            actor: "stepline".into(),
            via: "system".into(),
            action: "user_created".into(),
            outcome: "ok".into(),
            detail: Some(format!("{FIRST_ADMIN} with admin on *, on the first start")),
            ..NewAuditEntry::default()
        })
        .await?;
    let file = data_dir.and_then(|dir| {
        match write_owner_only(&dir.join("admin-password"), &password) {
            Ok(path) => Some(path),
            Err(error) => {
                tracing::warn!(%error, "the first admin's password could not be written to a file");
                None
            }
        }
    });
    Ok(Some(FirstAdmin {
        login: FIRST_ADMIN.into(),
        password,
        file,
    }))
}

/// Writes `secret` to `path`, readable and writable by its owner only.
fn write_owner_only(path: &Path, secret: &str) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "{secret}")?;
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_start_makes_one_admin_and_writes_its_password_for_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open("sqlite::memory:").await.unwrap();
        let made = ensure_first_admin(&store, Some(dir.path()), None)
            .await
            .unwrap()
            .expect("an admin on the first start");
        let file = made.file.expect("the password file");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap().trim(),
            made.password
        );
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let admin = store.user_by_login("ADMIN").await.unwrap().unwrap();
        assert_eq!(admin.bindings, vec![RoleBinding::everywhere(Role::Admin)]);
        assert!(password::verify(made.password, admin.password_hash.unwrap()).await);
        assert!(ensure_first_admin(&store, Some(dir.path()), None)
            .await
            .unwrap()
            .is_none());
    }
}
