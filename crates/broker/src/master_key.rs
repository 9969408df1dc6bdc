//! The server master key: 32 bytes from configuration, or from a key file that is created
//! (owner-only permissions) on first start.

use std::io::Write;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};

/// 32 secret bytes; `Debug` shows nothing.
pub struct MasterKey([u8; 32]);

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("the master key must be 64 hex characters (32 bytes)")]
    Malformed,
    #[error(
        "master key file {0} does not exist; every instance on one database must use the same \
         key, so it is not generated here: write one 64-hex-character key into it on every \
         instance (e.g. `openssl rand -hex 32`)"
    )]
    NotShared(String),
    #[error("master key file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

impl MasterKey {
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn parse(hex_text: &str) -> Result<Self, MasterKeyError> {
        let bytes = hex::decode(hex_text.trim()).map_err(|_| MasterKeyError::Malformed)?;
        Ok(Self(
            bytes.try_into().map_err(|_| MasterKeyError::Malformed)?,
        ))
    }

    /// The configured key, else the key in `file`, else (if `may_generate`) a new key written
    /// to `file` (mode 0600).
    pub fn load(
        configured: Option<&SecretString>,
        file: &Path,
        may_generate: bool,
    ) -> Result<Self, MasterKeyError> {
        if let Some(key) = configured {
            return Self::parse(key.expose_secret());
        }
        let io = |source| MasterKeyError::File {
            path: file.display().to_string(),
            source,
        };
        match std::fs::read_to_string(file) {
            Ok(text) => Self::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !may_generate => {
                Err(MasterKeyError::NotShared(file.display().to_string()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Written whole to a temporary file, then linked into place: a crash leaves no
                // half-written key, and of two processes starting at once one key wins and
                // both use it.
                let key = refreshd_core::random::bytes::<32>();
                let temporary = file.with_extension(format!("tmp{}", std::process::id()));
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create(true).truncate(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut out = options.open(&temporary).map_err(io)?;
                out.write_all(hex::encode(key).as_bytes())
                    .and_then(|()| out.sync_all())
                    .map_err(io)?;
                let linked = std::fs::hard_link(&temporary, file);
                let _ = std::fs::remove_file(&temporary);
                match linked {
                    Ok(()) => {
                        tracing::info!(path = %file.display(), "generated a new master key");
                        Ok(Self(key))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load(None, file, false)
                    }
                    Err(e) => Err(io(e)),
                }
            }
            Err(e) => Err(io(e)),
        }
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_generated_once_with_owner_only_permissions_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("refreshd.key");
        let first = MasterKey::load(None, &file, true).unwrap();
        let again = MasterKey::load(None, &file, true).unwrap();
        assert_eq!(first.bytes(), again.bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_configured_key_wins_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("unused.key");
        let key = SecretString::from("ab".repeat(32));
        assert_eq!(
            MasterKey::load(Some(&key), &file, true).unwrap().bytes(),
            &[0xab; 32]
        );
        assert!(!file.exists());
        let short = SecretString::from("abcd".to_owned());
        assert!(matches!(
            MasterKey::load(Some(&short), &file, true),
            Err(MasterKeyError::Malformed)
        ));
    }
}
