//! Errors that say what went wrong and what to try. They name endpoints, methods, status codes
//! and the node's own message, never a field of a transaction or a query (the ledger's field
//! checks name the field, never the value).

use std::fmt;

use tonic::Code;
use varde_ledger::signing::SigningError;
use varde_ledger::wire::FieldError;

use crate::connect::causes;

/// Anything a client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The node could not be reached (or the address is wrong).
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The node answered with an error status, or the call broke off.
    #[error(transparent)]
    Call(#[from] CallError),
    /// A transaction that the ledger's admission rules would refuse; nothing was signed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A signed call on a client made without a key.
    #[error(
        "this call reads ledger content and must be signed: give the client a member key \
         (`Client::with_credentials`)"
    )]
    NoCredentials,
    /// A query that could not be signed (a chain id longer than the scheme allows).
    #[error("cannot sign the query: {0}")]
    QuerySigning(SigningError),
}

/// What to try after a failed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectHint {
    /// The node's certificate is not signed by the trusted CA, or does not name the host.
    UntrustedCertificate,
    /// An `https://` address of a node that seems to serve plaintext.
    ProbablyPlaintext,
    /// An `http://` address of a node that seems to serve TLS.
    ProbablyTls,
}

impl fmt::Display for ConnectHint {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::UntrustedCertificate => {
                "the node's TLS certificate is not signed by the trusted CA certificate or does \
                 not name this host: trust the CA that issued that node's certificate"
            }
            Self::ProbablyPlaintext => "the node may serve plaintext: try http://",
            Self::ProbablyTls => {
                "if the node serves TLS (the default), use https:// with its CA certificate"
            }
        })
    }
}

/// Why a connection to a node was not opened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    /// The address does not parse as a URL.
    #[error(
        "{endpoint} is not a valid URL (e.g. {})",
        crate::connect::DEFAULT_ENDPOINT
    )]
    InvalidUrl {
        /// The address as given.
        endpoint: String,
    },
    /// A URL that is neither `https://` nor `http://`.
    #[error(
        "{endpoint} must start with https:// (or http:// for a node that serves plaintext on \
         loopback), e.g. {}",
        crate::connect::DEFAULT_ENDPOINT
    )]
    UnsupportedScheme {
        /// The address as given.
        endpoint: String,
    },
    /// An `https://` address without a CA certificate to trust.
    #[error(
        "{endpoint} is served over TLS: give the CA certificate that signed the node's \
         certificate (`connect::read_ca_certificate`; `varde dev` writes it to \
         ./varde-dev/tls/ca.pem, `varde testnet up` to ./varde-testnet/tls/ca.pem; an \
         institution's node: its PKI's CA certificate)"
    )]
    CaCertificateMissing {
        /// The address as given.
        endpoint: String,
    },
    /// TLS cannot be configured for this address.
    #[error("{endpoint}: cannot use TLS with this address: {detail}")]
    TlsConfig {
        /// The address as given.
        endpoint: String,
        /// The transport's complaint.
        detail: String,
    },
    /// Nobody answered, or the connection failed.
    #[error("{}", unreachable_text(endpoint, detail, *hint))]
    Unreachable {
        /// The address as given.
        endpoint: String,
        /// The transport's error, with its causes.
        detail: String,
        /// What to try, when the failure says more than "nobody is listening".
        hint: Option<ConnectHint>,
    },
}

fn unreachable_text(endpoint: &str, detail: &str, hint: Option<ConnectHint>) -> String {
    match hint {
        Some(hint) => format!("cannot connect to the node at {endpoint}: {detail}; {hint}"),
        // Nobody answered: the node is not running, or not at this address.
        None => format!("cannot reach the node at {endpoint}: {detail}"),
    }
}

/// A gRPC call that failed: the node's status, or a transport failure on this side.
#[derive(Debug, Clone)]
pub struct CallError {
    /// The node's address.
    pub endpoint: String,
    /// The full gRPC method, e.g. `/varde.v1.Ledger/Submit`.
    pub method: &'static str,
    /// The status the call ended with.
    pub status: tonic::Status,
}

/// What a failed call means for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallErrorKind {
    /// The node was not reached or went away (the transport's error, with its causes, and
    /// what to try).
    Unreachable {
        /// The transport's error.
        detail: String,
        /// What to try.
        hint: Option<ConnectHint>,
    },
    /// A submitted transaction that the node refused to admit (format, signature, expiry,
    /// duplicate, chain): it will never commit as it is.
    Refused,
    /// The caller's key is not one the node accepts for this call.
    Denied,
    /// The node did not answer in time; a submitted transaction may still commit.
    TimedOut,
    /// Any other status.
    Other,
}

impl CallError {
    /// Whether the method submits a transaction.
    pub fn is_submit(&self) -> bool {
        matches!(
            self.method,
            crate::ledger::SUBMIT | crate::ledger::SUBMIT_AND_WAIT
        )
    }

    /// What the failure means, from its status code (and, for a status made on this side from
    /// a broken connection, its source).
    pub fn kind(&self) -> CallErrorKind {
        let status = &self.status;
        // A status made on this side from a failed connection (e.g. plaintext to a TLS node)
        // carries the transport error as its source; the node never answered.
        if let Some(source) = std::error::Error::source(status) {
            if matches!(
                status.code(),
                Code::Unavailable | Code::Unknown | Code::Internal
            ) {
                let detail = format!("{}: {}", status.message(), causes(source));
                return self.unreachable(detail);
            }
        }
        match status.code() {
            Code::Unavailable => self.unreachable(status.message().to_owned()),
            Code::InvalidArgument
            | Code::PermissionDenied
            | Code::AlreadyExists
            | Code::FailedPrecondition
                if self.is_submit() =>
            {
                CallErrorKind::Refused
            }
            Code::Unauthenticated | Code::PermissionDenied => CallErrorKind::Denied,
            Code::DeadlineExceeded => CallErrorKind::TimedOut,
            _ => CallErrorKind::Other,
        }
    }

    fn unreachable(&self, detail: String) -> CallErrorKind {
        let hint = ConnectHint::for_failure(self.endpoint.starts_with("https://"), &detail);
        CallErrorKind::Unreachable { detail, hint }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.status.code();
        let message = self.status.message();
        let method = self.method;
        match self.kind() {
            CallErrorKind::Unreachable { detail, hint } => {
                formatter.write_str(&unreachable_text(&self.endpoint, &detail, hint))
            }
            CallErrorKind::Refused => write!(
                formatter,
                "the node refused the transaction ({code:?}): {message}"
            ),
            CallErrorKind::Denied => write!(
                formatter,
                "the node refused {method} ({code:?}): {message}; check that the key is a \
                 registered key of a member institution whose roles allow this"
            ),
            CallErrorKind::TimedOut => write!(
                formatter,
                "the node did not answer {method} in time ({message}); a submitted transaction \
                 may still commit: look it up by its id"
            ),
            CallErrorKind::Other => write!(
                formatter,
                "the node answered {method} with {code:?}: {message}"
            ),
        }
    }
}

impl std::error::Error for CallError {}

/// A transaction that was not signed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BuildError {
    /// The ledger's admission rules refuse the body (the error names the field, never its value).
    #[error("the ledger would refuse this transaction: {0}")]
    Refused(#[from] FieldError),
    /// The chain id is too long for the signing scheme.
    #[error("cannot sign for chain id {chain_id:?}: {source}")]
    Signing {
        /// The chain id signed for.
        chain_id: String,
        /// Why it cannot be signed.
        source: SigningError,
    },
    /// A time or duration outside what fits the wire's milliseconds.
    #[error("{what} is too large")]
    TooLarge {
        /// What overflowed.
        what: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(method: &'static str, status: tonic::Status) -> CallError {
        CallError {
            endpoint: "http://x".to_owned(),
            method,
            status,
        }
    }

    // Admission refusals of a submit are refusals; the same codes on a query are not.
    #[test]
    fn submit_refusals_are_refusals() {
        let submit = crate::ledger::SUBMIT;
        assert_eq!(
            error(submit, tonic::Status::invalid_argument("bad signature")).kind(),
            CallErrorKind::Refused
        );
        assert_eq!(
            error(submit, tonic::Status::already_exists("duplicate")).kind(),
            CallErrorKind::Refused
        );
        assert_eq!(
            error(
                crate::query::CHECK_ACCESS,
                tonic::Status::permission_denied("no")
            )
            .kind(),
            CallErrorKind::Denied
        );
    }

    // An unavailable node is unreachable, without a hint; the message names the address.
    #[test]
    fn unavailable_says_what_to_do() {
        let failed = error(
            crate::ledger::SUBMIT,
            tonic::Status::unavailable("connection refused"),
        );
        assert!(matches!(
            failed.kind(),
            CallErrorKind::Unreachable { hint: None, .. }
        ));
        let message = failed.to_string();
        assert!(
            message.contains("cannot reach the node at http://x"),
            "{message}"
        );
        assert!(message.ends_with("connection refused"), "{message}");
    }
}
