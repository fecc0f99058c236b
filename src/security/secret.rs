//! The server's secret key (docs/behaviour.md §5): from `GATEHOUSE_SECRET_KEY` (hex, ≥ 32 bytes) or
//! from a key file created at first start with 32 random bytes and mode 0600. Every use derives its
//! MAC input with its own label (`redirect:`, `csrf:` …) so tokens of one kind never verify as
//! another.

use std::fs;
use std::io::Write;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

pub const ENV_VAR: &str = "GATEHOUSE_SECRET_KEY";
const MIN_LEN: usize = 32;

#[derive(Clone)]
pub struct SecretKey(Zeroizing<Vec<u8>>);

#[derive(Debug, thiserror::Error)]
pub enum SecretKeyError {
    #[error("{ENV_VAR} must be hex encoding at least 32 bytes")]
    BadEnv,
    #[error("key file {path} must hold at least 32 bytes")]
    ShortFile { path: String },
    #[error("key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl SecretKey {
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        (bytes.len() >= MIN_LEN).then(|| Self(Zeroizing::new(bytes.to_vec())))
    }

    pub fn from_hex(s: &str) -> Result<Self, SecretKeyError> {
        let bytes = Zeroizing::new(hex::decode(s.trim()).map_err(|_| SecretKeyError::BadEnv)?);
        Self::from_bytes(&bytes).ok_or(SecretKeyError::BadEnv)
    }

    /// The environment variable wins; else the file, created when missing.
    pub fn load(env_value: Option<&str>, file: &Path) -> Result<Self, SecretKeyError> {
        if let Some(v) = env_value.filter(|v| !v.is_empty()) {
            return Self::from_hex(v);
        }
        let io = |source| SecretKeyError::Io {
            path: file.display().to_string(),
            source,
        };
        match fs::read(file) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                Self::from_bytes(&bytes).ok_or_else(|| SecretKeyError::ShortFile {
                    path: file.display().to_string(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = Zeroizing::new(vec![0u8; MIN_LEN]);
                rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
                write_new_private(file, &bytes).map_err(io)?;
                tracing::info!(path = %file.display(), "created a new secret key file (mode 0600)");
                Ok(Self(bytes))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// HMAC-SHA256 over `label ‖ message`.
    pub fn mac(&self, label: &str, message: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key");
        mac.update(label.as_bytes());
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    /// What the database stores to tell keys apart (docs/behaviour.md §12): a MAC of a fixed
    /// label, so it reveals nothing about the key, as 16 hex digits.
    pub fn fingerprint(&self) -> String {
        hex::encode(&self.mac("gatehouse key fingerprint", b"")[..8])
    }

    /// Constant-time check of a MAC made by [`Self::mac`].
    pub fn verify(&self, label: &str, message: &[u8], tag: &[u8]) -> bool {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key");
        mac.update(label.as_bytes());
        mac.update(message);
        mac.verify_slice(tag).is_ok()
    }
}

fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_file_with_mode_0600_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let k1 = SecretKey::load(None, &path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(fs::read(&path).unwrap().len(), 32);
        let k2 = SecretKey::load(None, &path).unwrap();
        assert_eq!(k1.mac("x:", b"m"), k2.mac("x:", b"m"));
    }

    #[test]
    fn env_wins_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let hex64 = "11".repeat(32);
        let k = SecretKey::load(Some(&hex64), &path).unwrap();
        assert!(!path.exists(), "no file when the env var is set");
        assert_eq!(
            k.mac("a", b"b"),
            SecretKey::from_hex(&hex64).unwrap().mac("a", b"b")
        );
        assert!(SecretKey::load(Some(&"11".repeat(31)), &path).is_err());
        assert!(SecretKey::load(Some("zz"), &path).is_err());
    }

    #[test]
    fn short_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        fs::write(&path, b"short").unwrap();
        assert!(matches!(
            SecretKey::load(None, &path),
            Err(SecretKeyError::ShortFile { .. })
        ));
    }

    #[test]
    fn labels_separate_uses() {
        let k = SecretKey::from_bytes(&[7u8; 32]).unwrap();
        let tag = k.mac("redirect:", b"/x");
        assert!(k.verify("redirect:", b"/x", &tag));
        assert!(!k.verify("csrf:", b"/x", &tag));
        assert!(!k.verify("redirect:", b"/y", &tag));
        assert!(!k.verify("redirect:", b"/x", &tag[..31]));
    }
}
