//! Session and API token secrets: 32 random bytes from the operating system, sent as
//! URL-safe base64 and stored only as their SHA-256 (a stolen database opens nothing).

use base64::Engine as _;

/// Prefix of API tokens, so a leaked one is recognised by secret scanners and people.
pub const TOKEN_PREFIX: &str = "stp_";

/// Why no secret could be made.
#[derive(Debug, thiserror::Error)]
#[error("the operating system gave no random bytes: {0}")]
pub struct NoRandomness(String);

/// A new secret: 256 random bits, URL-safe base64 without padding.
pub fn new_secret() -> Result<String, NoRandomness> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| NoRandomness(error.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A new API token's value.
pub fn new_token() -> Result<String, NoRandomness> {
    Ok(format!("{TOKEN_PREFIX}{}", new_secret()?))
}

/// What is stored of a secret: its SHA-256, in hex.
pub fn hash_secret(secret: &str) -> String {
    crate::digest::sha256_hex(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_new_each_time_and_stored_as_their_hash() {
        let (first, second) = (new_secret().unwrap(), new_secret().unwrap());
        assert_ne!(first, second);
        assert_eq!(first.len(), 43);
        assert!(new_token().unwrap().starts_with(TOKEN_PREFIX));
        assert_eq!(hash_secret(&first), hash_secret(&first));
        assert_ne!(hash_secret(&first), hash_secret(&second));
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
