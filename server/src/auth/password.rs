//! Local accounts' passwords: Argon2id with a random salt, in the PHC string format, on a
//! blocking thread (a hash takes tens of milliseconds of a core by design).

use app::model::identity::{MAX_PASSWORD_LEN, MIN_PASSWORD_LEN};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("a password must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters long")]
    Length,
    #[error("hashing failed: {0}")]
    Hashing(String),
}

/// Whether `password` may be set: long enough, and not so long that hashing it is a
/// way to burn our processor.
pub fn check_length(password: &str) -> Result<(), PasswordError> {
    let length = password.chars().count();
    if (MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&length)
        && password.len() <= MAX_PASSWORD_LEN * 4
    {
        Ok(())
    } else {
        Err(PasswordError::Length)
    }
}

/// The stored form of a new password.
pub async fn hash(password: String) -> Result<String, PasswordError> {
    check_length(&password)?;
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|error| PasswordError::Hashing(error.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&random)
            .map_err(|error| PasswordError::Hashing(error.to_string()))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|error| PasswordError::Hashing(error.to_string()))
    })
    .await
    .map_err(|error| PasswordError::Hashing(error.to_string()))?
}

/// Whether `password` is the one `stored` was made from. A password of a length no
/// account can have is not even hashed.
pub async fn verify(password: String, stored: String) -> bool {
    if password.is_empty() || password.len() > MAX_PASSWORD_LEN * 4 {
        return false;
    }
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A hash of nothing anyone knows, checked when an account does not exist so that an
/// unknown login takes as long to refuse as a wrong password.
pub async fn verify_nothing(password: String) {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let decoy = match DECOY.get() {
        Some(decoy) => decoy.clone(),
        None => {
            let Ok(made) = hash("decoy-password-never-used".to_owned()).await else {
                return;
            };
            DECOY.get_or_init(|| made).clone()
        }
    };
    verify(password, decoy).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_own_hash_only() {
        let stored = hash("correct horse battery".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse battery".into(), stored.clone()).await);
        assert!(!verify("correct horse batterY".into(), stored.clone()).await);
        assert!(!verify(String::new(), stored.clone()).await);
        assert!(!verify("x".repeat(5_000), stored).await);
        assert!(matches!(
            hash("short".into()).await,
            Err(PasswordError::Length)
        ));
        assert!(!verify("anything".into(), "not a hash".into()).await);
    }
}
