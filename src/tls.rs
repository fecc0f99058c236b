//! Direct HTTPS: loads `--tls-cert` / `--tls-key` (PEM) into a rustls server configuration
//! with the ring provider, and says which file is wrong when one is.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;

/// Why the certificate or key cannot be used; each names the file, since the operator's fix
/// is in that file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read TLS certificate {}: {source}", path.display())]
    CertUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS certificate {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("TLS certificate {} is not valid: {detail}", path.display())]
    CertInvalid { path: PathBuf, detail: String },
    #[error("cannot read TLS key {}: {source}", path.display())]
    KeyUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS key {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)", path.display())]
    NoKey { path: PathBuf },
    #[error("TLS key {} is not valid: {detail}", path.display())]
    KeyInvalid { path: PathBuf, detail: String },
    #[error("TLS key {} does not belong to certificate {}", key.display(), cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
}

/// The rustls configuration when `--tls-cert` and `--tls-key` are given (clap makes each
/// require the other), else `None`: serve plain HTTP.
pub fn server_config(config: &Config) -> Result<Option<ServerConfig>, TlsError> {
    match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => load(cert, key).map(Some),
        _ => Ok(None),
    }
}

/// Reads the certificate chain and its private key and checks that they belong together, so
/// a wrong file fails at start-up rather than at the first handshake.
pub fn load(cert_path: &Path, key_path: &Path) -> Result<ServerConfig, TlsError> {
    let certs = read_certs(cert_path)?;
    let key = read_key(key_path)?;
    // The ring provider explicitly, not the process default: the default is chosen by crate
    // features, and aws-lc-rs (which needs cmake) must never be needed.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // Loading the key on its own first tells a bad key apart from a key/certificate mismatch.
    provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| TlsError::KeyInvalid {
            path: key_path.to_owned(),
            detail: e.to_string(),
        })?;
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::CertInvalid {
            path: cert_path.to_owned(),
            detail: e.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
            },
            other => TlsError::CertInvalid {
                path: cert_path.to_owned(),
                detail: other.to_string(),
            },
        })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| match e {
            pem::Error::Io(source) => TlsError::CertUnreadable {
                path: path.to_owned(),
                source,
            },
            other => TlsError::CertInvalid {
                path: path.to_owned(),
                detail: other.to_string(),
            },
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        pem::Error::Io(source) => TlsError::KeyUnreadable {
            path: path.to_owned(),
            source,
        },
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_owned(),
        },
        other => TlsError::KeyInvalid {
            path: path.to_owned(),
            detail: other.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Files {
        dir: tempfile::TempDir,
    }

    impl Files {
        /// A fresh self-signed pair for `localhost`, written as cert.pem / key.pem.
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let pair = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
            std::fs::write(dir.path().join("cert.pem"), pair.cert.pem()).unwrap();
            std::fs::write(dir.path().join("key.pem"), pair.signing_key.serialize_pem()).unwrap();
            Self { dir }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        fn write(&self, name: &str, contents: &str) -> PathBuf {
            std::fs::write(self.path(name), contents).unwrap();
            self.path(name)
        }
    }

    #[test]
    fn a_matching_pair_loads() {
        let f = Files::new();
        load(&f.path("cert.pem"), &f.path("key.pem")).unwrap();
    }

    #[test]
    fn a_missing_file_names_itself() {
        let f = Files::new();
        let e = load(&f.path("nope.pem"), &f.path("key.pem")).unwrap_err();
        assert!(matches!(e, TlsError::CertUnreadable { .. }), "{e:?}");
        assert!(e.to_string().contains("nope.pem"), "{e}");
        let e = load(&f.path("cert.pem"), &f.path("gone.pem")).unwrap_err();
        assert!(matches!(e, TlsError::KeyUnreadable { .. }), "{e:?}");
        assert!(e.to_string().contains("gone.pem"), "{e}");
    }

    #[test]
    fn garbage_is_refused_with_the_file_named() {
        let f = Files::new();
        let junk = f.write("junk.pem", "not a pem file at all\n");
        let e = load(&junk, &f.path("key.pem")).unwrap_err();
        assert!(matches!(e, TlsError::NoCertificate { .. }), "{e:?}");
        assert!(e.to_string().contains("junk.pem"));
        let e = load(&f.path("cert.pem"), &junk).unwrap_err();
        assert!(matches!(e, TlsError::NoKey { .. }), "{e:?}");
        assert!(e.to_string().contains("junk.pem"));

        // Well-formed PEM around bytes that are not a key or a certificate.
        let bad_key = f.write(
            "bad-key.pem",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        );
        let e = load(&f.path("cert.pem"), &bad_key).unwrap_err();
        assert!(matches!(e, TlsError::KeyInvalid { .. }), "{e:?}");
        assert!(e.to_string().contains("bad-key.pem"));
        let bad_cert = f.write(
            "bad-cert.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let e = load(&bad_cert, &f.path("key.pem")).unwrap_err();
        assert!(matches!(e, TlsError::CertInvalid { .. }), "{e:?}");
        assert!(e.to_string().contains("bad-cert.pem"));
    }

    #[test]
    fn a_key_of_another_certificate_is_a_mismatch() {
        let f = Files::new();
        let other = Files::new();
        let e = load(&f.path("cert.pem"), &other.path("key.pem")).unwrap_err();
        assert!(matches!(e, TlsError::Mismatch { .. }), "{e:?}");
    }

    #[test]
    fn no_flags_means_plain_http() {
        let c = Config::for_tests("db".into());
        assert!(server_config(&c).unwrap().is_none());
    }
}
