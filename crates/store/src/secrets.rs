//! Invite and host secrets: how they are made, stored and checked.
//!
//! A secret lives only in the link handed to a person; the database keeps its SHA-256. A plain,
//! unsalted hash is enough here because the secrets are 128 random bits, not passwords someone
//! chose: there is no dictionary to try, and guessing is hopeless with or without a slow KDF.
//! A deterministic hash is also what lets [`crate::Store::invite_by_hash`] find an invite by the
//! token a visitor presents. What the hash buys is that a leaked database file (a backup, a
//! copied volume) does not let anyone join or host a session.

use sha2::{Digest, Sha256};

/// A new secret: 128 bits from the thread-local CSPRNG, as 32 lowercase hex characters (safe
/// in URLs and paths without escaping).
#[must_use]
pub fn new_secret() -> String {
    // rand 0.9's `random` draws from `ThreadRng`, a ChaCha CSPRNG seeded from the OS.
    let bytes: [u8; 16] = rand::random();
    to_hex(&bytes)
}

/// The stored form of a secret: its SHA-256 as 64 lowercase hex characters.
#[must_use]
pub fn hash_secret(secret: &str) -> String {
    to_hex(Sha256::digest(secret.as_bytes()).as_slice())
}

/// Whether `candidate` is the secret whose hash is `stored_hash`.
///
/// The comparison takes the same time wherever the hashes first differ, so response timing
/// tells a guesser nothing about how close a guess came.
#[must_use]
pub fn verify_secret(stored_hash: &str, candidate: &str) -> bool {
    constant_time_eq(stored_hash.as_bytes(), hash_secret(candidate).as_bytes())
}

/// Equal-length byte strings compared without an early exit. The length itself is not secret
/// (every hash is 64 characters), so a length mismatch may return at once.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimizer from turning the fold back into a short-circuiting loop.
    std::hint::black_box(diff) == 0
}

/// Lowercase hex; hand-rolled because it is six lines and saves a dependency.
fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_32_lowercase_hex_chars_and_differ() {
        let a = new_secret();
        let b = new_secret();
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
            "{a}"
        );
        assert_ne!(a, b);
    }

    #[test]
    fn hash_is_sha256_hex() {
        // FIPS 180-2 test vector for "abc".
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_right_secret_verifies() {
        let secret = new_secret();
        let stored = hash_secret(&secret);
        assert!(verify_secret(&stored, &secret));
    }

    #[test]
    fn other_secrets_do_not_verify() {
        let secret = new_secret();
        let stored = hash_secret(&secret);
        assert!(!verify_secret(&stored, &new_secret()));
        assert!(!verify_secret(&stored, ""));
        let mut one_char_off = secret.clone();
        let last = one_char_off.pop().expect("secrets are not empty");
        one_char_off.push(if last == '0' { '1' } else { '0' });
        assert!(!verify_secret(&stored, &one_char_off));
        // Presenting the stored hash itself as the secret must not work.
        assert!(!verify_secret(&stored, &stored));
        assert!(!verify_secret("", &secret));
    }
}
