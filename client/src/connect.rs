//! Reaching a node: `https://` with one trusted CA certificate (rustls with the ring provider,
//! as the node serves it), or `http://` plaintext for a node configured for it on loopback.
//!
//! Nothing here trusts the system's roots: a Varde network's gRPC certificates come from the
//! members' PKI, and a client trusts exactly the CA it is given.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::error::{ConnectError, ConnectHint};

/// The address of `varde dev`'s node, which serves TLS there.
pub const DEFAULT_ENDPOINT: &str = "https://127.0.0.1:50051";

/// How long opening a connection may take before the node counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a TLS handshake may take (the node gives its clients the same).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A problem with a PEM certificate file: which file (and what it was for) and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum CertificateFileError {
    /// The file could not be read.
    #[error("cannot read the {what} {}", path.display())]
    Read {
        /// What the file is for, e.g. "CA certificate file".
        what: String,
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The file is not PEM.
    #[error("the {what} {} is not valid PEM: {detail}", path.display())]
    NotPem {
        /// What the file is for.
        what: String,
        /// The file.
        path: PathBuf,
        /// The PEM parser's complaint.
        detail: String,
    },
    /// The file is PEM but holds no certificate.
    #[error(
        "the {what} {} holds no certificate (expected PEM `-----BEGIN CERTIFICATE-----` blocks)",
        path.display()
    )]
    NoCertificate {
        /// What the file is for.
        what: String,
        /// The file.
        path: PathBuf,
    },
    /// A certificate that rustls does not accept as a trust anchor.
    #[error(
        "the CA certificate file {} holds a certificate that cannot be trusted: {detail}",
        path.display()
    )]
    Untrustworthy {
        /// The file.
        path: PathBuf,
        /// rustls's complaint.
        detail: String,
    },
}

/// The certificates in the PEM file at `path` (and its bytes), with errors that name the file as
/// `what` ("CA certificate file", or a node's "certificate chain (grpc_tls....)").
pub fn read_certificates(
    path: &Path,
    what: &str,
) -> Result<(Vec<u8>, Vec<CertificateDer<'static>>), CertificateFileError> {
    let pem = std::fs::read(path).map_err(|source| CertificateFileError::Read {
        what: what.to_owned(),
        path: path.to_path_buf(),
        source,
    })?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| CertificateFileError::NotPem {
            what: what.to_owned(),
            path: path.to_path_buf(),
            detail: error.to_string(),
        })?;
    if certificates.is_empty() {
        return Err(CertificateFileError::NoCertificate {
            what: what.to_owned(),
            path: path.to_path_buf(),
        });
    }
    Ok((pem, certificates))
}

/// Reads the certificate authority a client trusts: PEM certificates that rustls accepts as
/// trust anchors.
pub fn read_ca_certificate(path: &Path) -> Result<Certificate, CertificateFileError> {
    let (pem, certificates) = read_certificates(path, "CA certificate file")?;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|error| CertificateFileError::Untrustworthy {
                path: path.to_path_buf(),
                detail: error.to_string(),
            })?;
    }
    Ok(Certificate::from_pem(pem))
}

/// Client TLS that trusts `ca` (and nothing else: no system roots).
pub fn client_tls_config(ca: &Certificate) -> ClientTlsConfig {
    ClientTlsConfig::new()
        .ca_certificate(ca.clone())
        .timeout(HANDSHAKE_TIMEOUT)
}

/// The `https://` URL of a node's gRPC address.
pub fn https_url(address: SocketAddr) -> String {
    format!("https://{address}")
}

/// An endpoint for `https://address` that trusts `ca`.
pub fn tls_endpoint(address: SocketAddr, ca: &Certificate) -> Result<Endpoint, ConnectError> {
    Target::parse(&https_url(address))?.configured(Some(ca))
}

/// Connects to the node at `address` over TLS, trusting `ca`.
pub async fn connect_tls(address: SocketAddr, ca: &Certificate) -> Result<Channel, ConnectError> {
    Target::parse(&https_url(address))?.connect(Some(ca)).await
}

/// Connects to `endpoint` (`https://` trusting `ca`, or `http://`), with errors that say what
/// to try.
pub async fn connect(endpoint: &str, ca: Option<&Certificate>) -> Result<Channel, ConnectError> {
    Target::parse(endpoint)?.connect(ca).await
}

/// An error and its sources on one line (tonic's transport errors say little by themselves).
pub fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        // Wrappers often repeat their inner error's text: say it once.
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A node's gRPC address, checked: a URL whose scheme says whether it is served over TLS.
#[derive(Debug, Clone)]
pub struct Target {
    endpoint: String,
    target: Endpoint,
    tls: bool,
}

impl Target {
    /// Checks `endpoint`: a valid URL starting with `https://` or `http://`.
    pub fn parse(endpoint: &str) -> Result<Self, ConnectError> {
        let target =
            Endpoint::from_shared(endpoint.to_owned()).map_err(|_| ConnectError::InvalidUrl {
                endpoint: endpoint.to_owned(),
            })?;
        let tls = match target.uri().scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(ConnectError::UnsupportedScheme {
                    endpoint: endpoint.to_owned(),
                });
            }
        };
        Ok(Self {
            endpoint: endpoint.to_owned(),
            target,
            tls,
        })
    }

    /// The URL as given.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether the node is reached over TLS (`https://`).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The tonic endpoint, with TLS trusting `ca` for `https://` (a CA is required there and
    /// ignored for `http://`).
    pub fn configured(&self, ca: Option<&Certificate>) -> Result<Endpoint, ConnectError> {
        if !self.tls {
            return Ok(self.target.clone());
        }
        let ca = ca.ok_or_else(|| ConnectError::CaCertificateMissing {
            endpoint: self.endpoint.clone(),
        })?;
        self.target
            .clone()
            .tls_config(client_tls_config(ca))
            .map_err(|error| ConnectError::TlsConfig {
                endpoint: self.endpoint.clone(),
                detail: causes(&error),
            })
    }

    /// Opens a channel within [`CONNECT_TIMEOUT`].
    pub async fn connect(&self, ca: Option<&Certificate>) -> Result<Channel, ConnectError> {
        self.configured(ca)?
            .connect_timeout(CONNECT_TIMEOUT)
            .connect()
            .await
            .map_err(|error| unreachable(&self.endpoint, causes(&error)))
    }
}

/// A node that could not be reached at `endpoint`, with what to try for `detail`.
pub(crate) fn unreachable(endpoint: &str, detail: String) -> ConnectError {
    let hint = ConnectHint::for_failure(endpoint.starts_with("https://"), &detail);
    ConnectError::Unreachable {
        endpoint: endpoint.to_owned(),
        detail,
        hint,
    }
}

impl ConnectHint {
    /// What to try when a connection failed with `error` for a reason other than nobody
    /// listening (that one has no hint: the node is not running, or not at this address).
    pub fn for_failure(tls: bool, error: &str) -> Option<Self> {
        let lowered = error.to_lowercase();
        if lowered.contains("connection refused") || lowered.contains("timed out") {
            return None;
        }
        if tls {
            if lowered.contains("certificate") || lowered.contains("unknownissuer") {
                return Some(Self::UntrustedCertificate);
            }
            if lowered.contains("corrupt message") || lowered.contains("invalidcontenttype") {
                return Some(Self::ProbablyPlaintext);
            }
            return None;
        }
        Some(Self::ProbablyTls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Hints: a TLS certificate problem says the CA is wrong, a plaintext failure suggests https,
    // a refused connection gets no hint.
    #[test]
    fn hints_say_what_to_try() {
        assert_eq!(
            ConnectHint::for_failure(true, "invalid peer certificate: UnknownIssuer"),
            Some(ConnectHint::UntrustedCertificate)
        );
        assert_eq!(
            ConnectHint::for_failure(true, "received corrupt message"),
            Some(ConnectHint::ProbablyPlaintext)
        );
        assert_eq!(
            ConnectHint::for_failure(false, "connection reset by peer"),
            Some(ConnectHint::ProbablyTls)
        );
        assert_eq!(
            ConnectHint::for_failure(false, "Connection refused (os error 111)"),
            None
        );
    }

    // Addresses are checked before anything is opened: a bad URL, another scheme, and https
    // without a CA are each their own error.
    #[test]
    fn targets_are_checked() {
        assert!(matches!(
            Target::parse("not a url"),
            Err(ConnectError::InvalidUrl { .. })
        ));
        assert!(matches!(
            Target::parse("ftp://127.0.0.1:1"),
            Err(ConnectError::UnsupportedScheme { .. })
        ));
        let https = Target::parse(DEFAULT_ENDPOINT).unwrap();
        assert!(https.is_tls());
        assert!(matches!(
            https.configured(None),
            Err(ConnectError::CaCertificateMissing { .. })
        ));
        let http = Target::parse("http://127.0.0.1:1").unwrap();
        assert!(!http.is_tls());
        assert!(http.configured(None).is_ok());
    }

    // A garbage CA file is an error that names the file, never a panic.
    #[test]
    fn bad_ca_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        let message = read_ca_certificate(&garbage).unwrap_err().to_string();
        assert!(message.contains("CA certificate file"), "{message}");
        assert!(message.contains("holds no certificate"), "{message}");
        let missing = read_ca_certificate(&dir.path().join("absent.pem")).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("cannot read the CA certificate file")
        );
        let key = rcgen::KeyPair::generate().unwrap();
        let certificate = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, certificate.pem()).unwrap();
        read_ca_certificate(&good).unwrap();
    }
}
