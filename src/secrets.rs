//! Secrets on disk and in Postgres: where secret files are found ([`credential_path`])
//! and the key refresh tokens and runtime mailboxes' passwords are sealed with before
//! they reach Postgres ([`SecretKey`]). It imports nothing of the config, so the config can
//! check its `[secrets] key_file` with it.

use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::store::tokens::SealedToken;

/// systemd's `LoadCredential=` puts secrets in `$CREDENTIALS_DIRECTORY`; relative names
/// are looked up there so the unit and the config can name the same credential.
pub fn credential_path(file: &Path) -> PathBuf {
    match std::env::var_os("CREDENTIALS_DIRECTORY") {
        Some(dir) if file.is_relative() => Path::new(&dir).join(file),
        _ => file.to_path_buf(),
    }
}

/// Why the key file cannot be used; the config reports it as `secrets.key_file`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

/// A 256-bit ChaCha20-Poly1305 key from `[secrets] key_file`.
pub struct SecretKey(Key);

impl SecretKey {
    /// Reads the key: 64 hex digits (`openssl rand -hex 32`), surrounding whitespace
    /// ignored. Relative paths resolve in `$CREDENTIALS_DIRECTORY`.
    pub fn load(file: &Path) -> Result<SecretKey, KeyError> {
        let bad = KeyError;
        let path = credential_path(file);
        let raw =
            std::fs::read_to_string(&path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
        let bytes = hex::decode(raw.trim()).map_err(|_| {
            bad(format!("{}: not hex (write 64 hex digits: openssl rand -hex 32)", path.display()))
        })?;
        if bytes.len() != 32 {
            return Err(bad(format!(
                "{}: {} bytes, want 32 (64 hex digits)",
                path.display(),
                bytes.len()
            )));
        }
        Ok(SecretKey(*Key::from_slice(&bytes)))
    }

    /// Encrypts a token under a fresh random nonce.
    pub fn seal(&self, plain: &str) -> SealedToken {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = ChaCha20Poly1305::new(&self.0)
            .encrypt(&nonce, plain.as_bytes())
            .expect("encryption of a short token cannot fail");
        SealedToken { nonce: nonce.to_vec(), ciphertext }
    }

    /// Encrypts a secret bound to `context` (`mailbox:<name>`): it opens only with the same
    /// context, so a row copied to another mailbox cannot be opened there.
    pub fn seal_bound(&self, plain: &str, context: &str) -> SealedToken {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload { msg: plain.as_bytes(), aad: context.as_bytes() };
        let ciphertext = ChaCha20Poly1305::new(&self.0)
            .encrypt(&nonce, payload)
            .expect("encryption of a short secret cannot fail");
        SealedToken { nonce: nonce.to_vec(), ciphertext }
    }

    /// Decrypts what [`Self::seal_bound`] sealed for `context`; `None` with another key,
    /// another context, or an altered row.
    pub fn open_bound(&self, sealed: &SealedToken, context: &str) -> Option<String> {
        if sealed.nonce.len() != 12 {
            return None;
        }
        let payload = Payload { msg: sealed.ciphertext.as_slice(), aad: context.as_bytes() };
        let plain = ChaCha20Poly1305::new(&self.0)
            .decrypt(Nonce::from_slice(&sealed.nonce), payload)
            .ok()?;
        String::from_utf8(plain).ok()
    }

    /// Decrypts a stored token; `None` when it was sealed with another key or altered.
    pub fn open(&self, sealed: &SealedToken) -> Option<String> {
        if sealed.nonce.len() != 12 {
            return None;
        }
        let plain = ChaCha20Poly1305::new(&self.0)
            .decrypt(Nonce::from_slice(&sealed.nonce), sealed.ciphertext.as_slice())
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_other_keys_cannot_open_them() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, format!("{}\n", "11".repeat(32))).unwrap();
        std::fs::write(&b, "22".repeat(32)).unwrap();
        let (ka, kb) = (SecretKey::load(&a).unwrap(), SecretKey::load(&b).unwrap());
        let sealed = ka.seal("1//refresh-token");
        assert!(!sealed.ciphertext.windows(7).any(|w| w == b"refresh"));
        assert_eq!(ka.open(&sealed).as_deref(), Some("1//refresh-token"));
        assert_eq!(kb.open(&sealed), None);
        assert_ne!(ka.seal("x").nonce, ka.seal("x").nonce);
    }

    #[test]
    fn bound_secrets_open_only_in_their_context() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, "33".repeat(32)).unwrap();
        let k = SecretKey::load(&a).unwrap();
        let sealed = k.seal_bound("hunter2", "mailbox:a");
        assert!(!sealed.ciphertext.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(k.open_bound(&sealed, "mailbox:a").as_deref(), Some("hunter2"));
        assert_eq!(k.open_bound(&sealed, "mailbox:b"), None);
        assert_eq!(k.open(&sealed), None);
    }

    #[test]
    fn a_bad_key_file_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        std::fs::write(&short, "abcd").unwrap();
        let as_config = |e: KeyError| crate::config::ConfigError::from(e).to_string();
        let e = as_config(SecretKey::load(&short).err().unwrap());
        assert!(e.contains("secrets.key_file") && e.contains("want 32"), "{e}");
        let e = as_config(SecretKey::load(&dir.path().join("missing")).err().unwrap());
        assert!(e.contains("secrets.key_file"), "{e}");
    }
}
