//! gRPC over TLS (rustls with the ring provider, through tonic): the server's identity from PEM
//! files and the local certificate authorities that `varde dev` and `varde testnet` make for
//! loopback networks. The client side (trusting one CA, connecting) is `varde_client::connect`.
//!
//! Every file problem (missing, unreadable, not PEM, no certificate, a key that does not belong to
//! the certificate) is an error that names the file and the config field; nothing here panics on
//! input.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject as _;
use tonic::transport::{Identity, ServerTlsConfig};
use varde_client::connect::read_certificates;

use crate::config::GrpcTlsConfig;

/// How long a client's TLS handshake may take (a client that never finishes one holds nothing
/// but its own connection); `varde_client` gives its side the same.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The names a local network's node certificates are valid for.
pub const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process's rustls provider (tonic's server asks rustls for the default one).
/// Idempotent; another provider installed earlier stays.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The server side of `[grpc_tls]`: `None` for plaintext, else the identity read from the PEM
/// files and checked (the key must belong to the first certificate of the chain).
pub fn server_tls_config(config: &GrpcTlsConfig) -> anyhow::Result<Option<ServerTlsConfig>> {
    if config.plaintext {
        return Ok(None);
    }
    let (Some(chain_path), Some(key_path)) =
        (&config.certificate_chain_path, &config.private_key_path)
    else {
        bail!(
            "grpc_tls: TLS needs both certificate_chain_path and private_key_path (or plaintext = true on a loopback address)"
        );
    };
    let (chain_pem, chain) = read_certificates(
        chain_path,
        "certificate chain (grpc_tls.certificate_chain_path)",
    )?;
    let key_pem = std::fs::read(key_path).with_context(|| {
        format!(
            "cannot read the private key (grpc_tls.private_key_path) {}",
            key_path.display()
        )
    })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| match error {
        rustls::pki_types::pem::Error::NoItemsFound => anyhow!(
            "the private key (grpc_tls.private_key_path) {} holds no private key (expected a PEM \
             `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block)",
            key_path.display()
        ),
        error => anyhow!(
            "the private key (grpc_tls.private_key_path) {} is not valid PEM: {error}",
            key_path.display()
        ),
    })?;
    rustls::ServerConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .context("the TLS provider offers no protocol version")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| match error {
            rustls::Error::InconsistentKeys(_) => anyhow!(
                "the private key {} does not belong to the first certificate in {} (the \
                 chain must start with this node's own certificate)",
                key_path.display(),
                chain_path.display()
            ),
            error => anyhow!(
                "cannot serve TLS with the certificate chain {} and the key {}: {error}",
                chain_path.display(),
                key_path.display()
            ),
        })?;
    Ok(Some(
        ServerTlsConfig::new()
            .identity(Identity::from_pem(chain_pem, key_pem))
            .timeout(HANDSHAKE_TIMEOUT),
    ))
}

/// A certificate authority made on this machine for a local network. Its private key lives only
/// in memory: once the node certificates are issued nothing else can be signed under it.
pub struct LocalCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    certificate_pem: String,
}

/// A node certificate and its private key, both PEM.
pub struct IssuedCertificate {
    pub certificate_pem: String,
    pub private_key_pem: String,
}

fn validity(params: &mut rcgen::CertificateParams, years: i64) {
    let now = time::OffsetDateTime::now_utc();
    // An hour back, so a clock a little behind still accepts a fresh certificate.
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(365 * years);
}

impl LocalCa {
    /// A new CA named `Varde local CA (label)`, valid for 10 years, that may sign end-entity
    /// certificates only.
    pub fn generate(label: &str) -> anyhow::Result<Self> {
        let key = rcgen::KeyPair::generate().context("cannot generate the CA key")?;
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("Varde local CA ({label})"),
        );
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Varde");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, 10);
        let certificate = params
            .self_signed(&key)
            .context("cannot sign the CA certificate")?;
        Ok(Self {
            certificate_pem: certificate.pem(),
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// A server certificate for `common_name`, valid for [`LOOPBACK_NAMES`] (10 years).
    pub fn issue_loopback_server(&self, common_name: &str) -> anyhow::Result<IssuedCertificate> {
        let key = rcgen::KeyPair::generate().context("cannot generate a node TLS key")?;
        let mut params = rcgen::CertificateParams::new(
            LOOPBACK_NAMES
                .iter()
                .map(|name| (*name).to_owned())
                .collect::<Vec<_>>(),
        )
        .context("invalid certificate names")?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, 10);
        let certificate = params
            .signed_by(&key, &self.issuer)
            .context("cannot sign a node certificate")?;
        Ok(IssuedCertificate {
            certificate_pem: certificate.pem(),
            private_key_pem: key.serialize_pem(),
        })
    }
}

fn write_new(path: &Path, contents: &str, mode: u32) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The TLS files of one node of a local network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTlsFiles {
    /// The CA certificate clients trust.
    pub ca_certificate: PathBuf,
    pub certificate_chain: PathBuf,
    /// Mode 0600.
    pub private_key: PathBuf,
}

impl LocalTlsFiles {
    /// `[grpc_tls]` for these files.
    pub fn config(&self) -> GrpcTlsConfig {
        GrpcTlsConfig::files(self.certificate_chain.clone(), self.private_key.clone())
    }
}

/// Writes a new CA certificate to `ca_path` and, for each `(common name, certificate path, key
/// path)`, a loopback server certificate and its key (0600). Refuses to overwrite any file.
pub fn write_local_pki(
    label: &str,
    ca_path: &Path,
    nodes: &[(String, PathBuf, PathBuf)],
) -> anyhow::Result<()> {
    let ca = LocalCa::generate(label)?;
    for path in std::iter::once(ca_path).chain(
        nodes
            .iter()
            .flat_map(|(_, chain, key)| [chain.as_path(), key.as_path()]),
    ) {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
    }
    write_new(ca_path, ca.certificate_pem(), 0o644)?;
    for (common_name, chain_path, key_path) in nodes {
        let issued = ca.issue_loopback_server(common_name)?;
        write_new(key_path, &issued.private_key_pem, 0o600)?;
        write_new(chain_path, &issued.certificate_pem, 0o644)?;
    }
    Ok(())
}

/// The TLS files of a one-node directory (`varde dev`): `dir/ca.pem`, `dir/node.pem`,
/// `dir/node-key.pem`.
pub fn single_node_files(dir: &Path) -> LocalTlsFiles {
    LocalTlsFiles {
        ca_certificate: dir.join("ca.pem"),
        certificate_chain: dir.join("node.pem"),
        private_key: dir.join("node-key.pem"),
    }
}

/// Makes the files of [`single_node_files`] unless the CA certificate is there already (then
/// they are reused as they are).
pub fn ensure_single_node_pki(dir: &Path, label: &str) -> anyhow::Result<LocalTlsFiles> {
    let files = single_node_files(dir);
    if !files.ca_certificate.exists() {
        write_local_pki(
            label,
            &files.ca_certificate,
            &[(
                format!("Varde node ({label})"),
                files.certificate_chain.clone(),
                files.private_key.clone(),
            )],
        )?;
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A local CA's node certificate and key make a server identity that checks; a client trusts
    // the CA file; the key file is private.
    #[test]
    fn local_pki_files_are_usable() {
        let dir = tempfile::tempdir().unwrap();
        let files = ensure_single_node_pki(dir.path(), "test").unwrap();
        server_tls_config(&files.config()).unwrap().unwrap();
        varde_client::connect::read_ca_certificate(&files.ca_certificate).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&files.private_key)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A second call reuses the files.
        let before = std::fs::read(&files.certificate_chain).unwrap();
        ensure_single_node_pki(dir.path(), "test").unwrap();
        assert_eq!(std::fs::read(&files.certificate_chain).unwrap(), before);
    }

    fn error_of(config: &GrpcTlsConfig) -> String {
        format!("{:#}", server_tls_config(config).expect_err("refused"))
    }

    // Missing, garbage and mismatched files are errors that name the file and the field.
    #[test]
    fn bad_server_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let files = ensure_single_node_pki(dir.path(), "test").unwrap();
        let missing =
            GrpcTlsConfig::files(dir.path().join("absent.pem"), files.private_key.clone());
        let message = error_of(&missing);
        assert!(
            message.contains("cannot read the certificate chain"),
            "{message}"
        );
        assert!(message.contains("absent.pem"), "{message}");

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        let message = error_of(&GrpcTlsConfig::files(
            garbage.clone(),
            files.private_key.clone(),
        ));
        assert!(message.contains("holds no certificate"), "{message}");
        let message = error_of(&GrpcTlsConfig::files(
            files.certificate_chain.clone(),
            garbage.clone(),
        ));
        assert!(message.contains("holds no private key"), "{message}");
        assert!(message.contains("grpc_tls.private_key_path"), "{message}");

        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let message = error_of(&GrpcTlsConfig::files(broken, files.private_key.clone()));
        assert!(
            message.contains("not valid PEM") || message.contains("cannot serve TLS"),
            "{message}"
        );

        let other = ensure_single_node_pki(&dir.path().join("other"), "other").unwrap();
        let message = error_of(&GrpcTlsConfig::files(
            files.certificate_chain.clone(),
            other.private_key.clone(),
        ));
        assert!(
            message.contains("does not belong to the first certificate"),
            "{message}"
        );
    }

    // Plaintext has no server TLS.
    #[test]
    fn plaintext_has_no_identity() {
        assert!(
            server_tls_config(&GrpcTlsConfig::plaintext())
                .unwrap()
                .is_none()
        );
    }
}
