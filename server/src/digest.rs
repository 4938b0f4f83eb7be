//! SHA-256 in hex: how secrets are stored, and how an engine's over-long ids are shortened
//! into ours.

use sha2::{Digest, Sha256};

/// The SHA-256 of `text`, in lower-case hex (64 characters).
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_digest_is_sha256_in_lower_case_hex() {
        assert_eq!(
            super::sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
