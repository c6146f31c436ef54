//! Secrets at rest: carrier credentials are sealed with AES-256-GCM (ring, already in the tree
//! through rustls) under one key from config (`--secret-key`, `CALLCENTER_SECRET_KEY`, or the
//! config file's `secret_key`). Without one, the key is made once and kept in
//! `DATA_DIR/secret.key` (mode 0600): enough for one node on SQLite; nodes sharing a
//! PostgreSQL database must all be given the same key.
//!
//! A sealed value is `v1:` + base64(nonce || ciphertext || tag). The associated data names
//! the row the value belongs to, so a sealed token copied into another row does not open.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

const KEY_LEN: usize = 32;
const PREFIX: &str = "v1:";
pub const KEY_FILE: &str = "secret.key";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the secret key must be 32 bytes as 64 hex digits or base64: {0}")]
    BadKey(String),
    #[error("cannot read or create the secret key file {path}: {source}")]
    KeyFile { path: String, source: std::io::Error },
    #[error("a sealed secret cannot be opened: it was sealed with another secret key, or altered")]
    CannotOpen,
    #[error("the system random source failed")]
    Random,
}

/// The configured key as given (hex or base64); `Debug` does not show it.
#[derive(Clone)]
pub struct KeyText(pub String);

impl std::fmt::Debug for KeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyText(***)")
    }
}

/// Seals and opens secrets with the gateway's key.
pub struct SecretBox {
    key: LessSafeKey,
    random: SystemRandom,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

fn parse_key(text: &str) -> Result<[u8; KEY_LEN], SecretError> {
    let text = text.trim();
    let bytes = hex::decode(text)
        .ok()
        .filter(|b| b.len() == KEY_LEN)
        .or_else(|| STANDARD.decode(text).ok().filter(|b| b.len() == KEY_LEN))
        .ok_or_else(|| SecretError::BadKey(format!("got {} characters", text.len())))?;
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(&bytes);
    Ok(key)
}

impl SecretBox {
    pub fn new(key: [u8; KEY_LEN]) -> SecretBox {
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("a 32-byte AES-256 key"));
        SecretBox { key, random: SystemRandom::new() }
    }

    /// The configured key, else the one kept in `data_dir` (made on first use).
    pub fn load(configured: Option<&KeyText>, data_dir: &Path) -> Result<SecretBox, SecretError> {
        match configured.filter(|k| !k.0.trim().is_empty()) {
            Some(text) => Ok(SecretBox::new(parse_key(&text.0)?)),
            None => Ok(SecretBox::new(key_file(&data_dir.join(KEY_FILE))?)),
        }
    }

    /// Seals `plain` for the row named by `context` (e.g. `carrier:<id>`).
    pub fn seal(&self, context: &str, plain: &str) -> Result<String, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| SecretError::Random)?;
        let mut sealed = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut sealed)
            .map_err(|_| SecretError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
    }

    pub fn open(&self, context: &str, sealed: &str) -> Result<String, SecretError> {
        let raw = sealed.strip_prefix(PREFIX).and_then(|b| STANDARD.decode(b).ok()).ok_or(SecretError::CannotOpen)?;
        if raw.len() < NONCE_LEN {
            return Err(SecretError::CannotOpen);
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::CannotOpen)?;
        let mut buffer = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buffer)
            .map_err(|_| SecretError::CannotOpen)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SecretError::CannotOpen)
    }
}

/// Reads the key file, or creates it (owner-only) with a fresh random key.
fn key_file(path: &PathBuf) -> Result<[u8; KEY_LEN], SecretError> {
    let io = |source| SecretError::KeyFile { path: path.display().to_string(), source };
    match std::fs::read_to_string(path) {
        Ok(text) => return parse_key(&text),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        Err(_) => {}
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut key = [0u8; KEY_LEN];
    SystemRandom::new().fill(&mut key).map_err(|_| SecretError::Random)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            use std::io::Write;
            file.write_all(hex::encode(key).as_bytes()).and_then(|_| file.sync_all()).map_err(io)?;
            Ok(key)
        }
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            parse_key(&std::fs::read_to_string(path).map_err(io)?)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_row() {
        let secrets = SecretBox::new([7; KEY_LEN]);
        let sealed = secrets.seal("carrier:a", "token-1").unwrap();
        assert!(!sealed.contains("token-1"));
        assert_eq!(secrets.open("carrier:a", &sealed).unwrap(), "token-1");
        assert!(matches!(secrets.open("carrier:b", &sealed), Err(SecretError::CannotOpen)));
        assert!(matches!(SecretBox::new([8; KEY_LEN]).open("carrier:a", &sealed), Err(SecretError::CannotOpen)));
        assert!(matches!(secrets.open("carrier:a", "v1:AAAA"), Err(SecretError::CannotOpen)));
        // Two seals of one value differ (fresh nonces).
        assert_ne!(sealed, secrets.seal("carrier:a", "token-1").unwrap());
    }

    #[test]
    fn the_key_file_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = SecretBox::load(None, dir.path()).unwrap();
        let sealed = first.seal("x", "y").unwrap();
        let again = SecretBox::load(None, dir.path()).unwrap();
        assert_eq!(again.open("x", &sealed).unwrap(), "y");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the key file is the owner's only");
        }
        assert!(matches!(SecretBox::load(Some(&KeyText("short".into())), dir.path()), Err(SecretError::BadKey(_))));
        let configured = SecretBox::load(Some(&KeyText("ab".repeat(32))), dir.path()).unwrap();
        assert!(configured.open("x", &sealed).is_err());
    }
}
