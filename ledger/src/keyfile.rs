//! Key files: an Ed25519 signing key stored as PKCS#8 PEM (RFC 8410, `-----BEGIN PRIVATE KEY-----`),
//! written readable by its owner only. Keys are written as PKCS#8 v1, without the optional public
//! key: OpenSSL 3.0 and Python's `cryptography` refuse the v2 form (RFC 5958) that ed25519-dalek
//! writes by default. Both forms are read.

use std::fs;
use std::io::Write;
use std::path::Path;

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, KeypairBytes};

use crate::hex;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write key file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} exists already; refusing to overwrite a key (move it away first)")]
    Exists { path: String },
    #[error(
        "{path} is not an Ed25519 private key in PKCS#8 PEM form (-----BEGIN PRIVATE KEY-----); \
         make one with `varde keys new`"
    )]
    Malformed { path: String },
}

/// Reads a signing key from a PKCS#8 PEM file.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyFileError> {
    let text = fs::read_to_string(path).map_err(|source| KeyFileError::Read {
        path: path.display().to_string(),
        source,
    })?;
    signing_key_from_pem(&text).ok_or_else(|| KeyFileError::Malformed {
        path: path.display().to_string(),
    })
}

/// The signing key in a key file's text (PKCS#8 PEM, v1 or v2), if it holds one.
pub fn signing_key_from_pem(text: &str) -> Option<SigningKey> {
    SigningKey::from_pkcs8_pem(text).ok()
}

/// Writes `key` to a new file at `path` (never overwriting one), readable by its owner only.
pub fn write_signing_key(path: &Path, key: &SigningKey) -> Result<(), KeyFileError> {
    let write_error = |source| KeyFileError::Write {
        path: path.display().to_string(),
        source,
    };
    let pem = signing_key_pem(key)
        .map_err(|error| write_error(std::io::Error::other(error.to_string())))?;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            KeyFileError::Exists {
                path: path.display().to_string(),
            }
        } else {
            write_error(source)
        }
    })?;
    file.write_all(pem.as_bytes()).map_err(write_error)?;
    file.sync_all().map_err(write_error)
}

/// `key` as a key file holds it: PKCS#8 v1 PEM (no public key), zeroised when dropped.
pub fn signing_key_pem(
    key: &SigningKey,
) -> ed25519_dalek::pkcs8::Result<impl std::ops::Deref<Target = String> + use<>> {
    KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    }
    .to_pkcs8_pem(LineEnding::LF)
}

/// The public key in lowercase hex, as genesis files and the CLI show it.
pub fn public_key_hex(key: &SigningKey) -> String {
    hex::encode(key.verifying_key().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("varde-keyfile-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    // A written key reads back identical, and the file is PKCS#8 PEM.
    #[test]
    fn round_trips_through_pem() {
        let dir = scratch_dir("round-trip");
        let path = dir.join("institution.key");
        let key = SigningKey::from_bytes(&[7; 32]);
        write_signing_key(&path, &key).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(read_signing_key(&path).unwrap().to_bytes(), key.to_bytes());
        // Exactly RFC 8410's v1 form: version 0, the Ed25519 OID, the seed; no public key.
        let (_, der) = ed25519_dalek::pkcs8::Document::from_pem(&text).unwrap();
        let mut expected =
            b"\x30\x2e\x02\x01\x00\x30\x05\x06\x03\x2b\x65\x70\x04\x22\x04\x20".to_vec();
        expected.extend_from_slice(&key.to_bytes());
        assert_eq!(der.as_bytes(), expected.as_slice());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    // A v2 key (RFC 5958, with the public key), as other tools may write it, is read too.
    #[test]
    fn reads_version_two_keys() {
        let dir = scratch_dir("v2");
        let path = dir.join("v2.key");
        let key = SigningKey::from_bytes(&[9; 32]);
        fs::write(&path, key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
        assert_eq!(read_signing_key(&path).unwrap().to_bytes(), key.to_bytes());
    }

    // An existing key file is never overwritten; garbage is refused with a clear error.
    #[test]
    fn refuses_overwrite_and_garbage() {
        let dir = scratch_dir("refuse");
        let path = dir.join("institution.key");
        write_signing_key(&path, &SigningKey::from_bytes(&[1; 32])).unwrap();
        let again = write_signing_key(&path, &SigningKey::from_bytes(&[2; 32]));
        assert!(matches!(again, Err(KeyFileError::Exists { .. })));
        fs::write(dir.join("garbage.key"), "not a key").unwrap();
        let garbage = read_signing_key(&dir.join("garbage.key"));
        assert!(matches!(garbage, Err(KeyFileError::Malformed { .. })));
    }
}
