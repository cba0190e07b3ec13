//! `varde-client`: what a health system needs to use a Varde network, without the node or
//! RocksDB.
//!
//! - [`tx`]: typed builders for every action of a transaction body (governance proposals and
//!   approvals among them), with expiry and nonce, checked with the ledger's admission rules and
//!   signed (`varde-tx-v1`) into an envelope;
//! - [`query`]: signed requests (`varde-query-v2`) and the Query service's calls;
//! - [`ledger`] and [`node`]: the Ledger and Node services' calls;
//! - [`connect`]: `https://` trusting one CA certificate (rustls with ring), or `http://`;
//! - [`subject_pseudonym`]: HMAC-SHA256(network pseudonym key, national identity number).
//!
//! - [`light`]: the light client, which starts from the genesis file alone, accepts headers by
//!   their commit certificates and checks proof bundles (a transaction with its receipt, ledger
//!   consistency, a CheckAccess answer with its facts) against them, and follows the validator
//!   sets governance makes; the proof calls are methods of [`Client`] beside the other Ledger
//!   calls.
//!
//! Every call is a method of [`Client`]; errors ([`Error`]) say what to try. The signing schemes
//! themselves live in `varde_ledger::signing`, which the node verifies with; this crate calls
//! them and re-implements nothing.
//!
//! ```no_run
//! use std::time::Duration;
//! use varde_client::tx::{Anchor, Transaction};
//! use varde_client::{Client, connect, v1};
//!
//! # async fn example(key: ed25519_dalek::SigningKey) -> Result<(), Box<dyn std::error::Error>> {
//! let ca = connect::read_ca_certificate("varde-dev/tls/ca.pem".as_ref())?;
//! let client = Client::connect("https://127.0.0.1:50051", Some(&ca))
//!     .await?
//!     .with_key(key.clone())
//!     .await?; // the chain id from Node.Status
//! let subject = varde_client::subject_pseudonym(b"the network's pseudonym key", "31129956715");
//! let anchor = Anchor::new(
//!     "993467049", "journal-1", subject, "psychiatry",
//!     "https://ehr.example/journal-1", [0x5a; 32], varde_client::now_unix_ms(),
//! );
//! let chain_id = client.credentials().map(|credentials| credentials.chain_id()).unwrap_or_default();
//! let envelope = Transaction::new(anchor).sign(chain_id, &key)?;
//! let committed = client.submit_and_wait(envelope, Duration::from_secs(30)).await?;
//! let records = client
//!     .list_records(v1::ListRecordsRequest {
//!         filter: Some(v1::list_records_request::Filter::SubjectPseudonym(subject.to_vec())),
//!         ..Default::default()
//!     })
//!     .await?;
//! # let _ = (committed, records);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod connect;
mod error;
pub mod ledger;
pub mod light;
pub mod node;
pub mod query;
pub mod tx;

use tonic::transport::{Certificate, Channel};

pub use crate::error::{BuildError, CallError, CallErrorKind, ConnectError, ConnectHint, Error};
pub use crate::query::{Credentials, Signed};
pub use ed25519_dalek::SigningKey;
pub use varde_ledger::pseudonym::subject_pseudonym;
pub use varde_ledger::signing::{SigningError, TransactionId};
/// The wire types of `varde.v1` (requests, responses, transaction bodies).
pub use varde_proto::v1;

/// The README's example, compiled with the doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeExample;

/// Milliseconds since the Unix epoch by this machine's clock (0 for a clock before 1970).
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// A connection to one node, with the credentials that sign its read requests (if any).
///
/// Cloning is cheap and shares the connection; calls may run concurrently.
#[derive(Debug, Clone)]
pub struct Client {
    channel: Channel,
    endpoint: String,
    credentials: Option<Credentials>,
}

impl Client {
    /// Connects to `endpoint`: `https://` trusting `ca` (required there), or `http://`.
    pub async fn connect(endpoint: &str, ca: Option<&Certificate>) -> Result<Self, Error> {
        let channel = connect::connect(endpoint, ca).await?;
        Ok(Self::from_channel(channel, endpoint))
    }

    /// A client over a channel opened elsewhere; `endpoint` names the node in errors.
    pub fn from_channel(channel: Channel, endpoint: impl Into<String>) -> Self {
        Self {
            channel,
            endpoint: endpoint.into(),
            credentials: None,
        }
    }

    /// Signs read requests with `credentials`.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Signs read requests with `key` for the node's chain id (asked with Node.Status).
    pub async fn with_key(self, key: SigningKey) -> Result<Self, Error> {
        let chain_id = self.status().await?.chain_id;
        Ok(self.with_credentials(Credentials::new(chain_id, key)))
    }

    /// The channel, for calls through the generated `v1::*_client` stubs.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The node's address as given.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The credentials that sign read requests.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// `request` signed with this client's credentials.
    fn signed<R: Signed>(&self, request: R) -> Result<R, Error> {
        let credentials = self.credentials.as_ref().ok_or(Error::NoCredentials)?;
        credentials.sign(request).map_err(Error::QuerySigning)
    }

    /// The answer of a call to `method`, or the error that says what went wrong.
    fn answer<T>(
        &self,
        method: &'static str,
        answer: Result<tonic::Response<T>, tonic::Status>,
    ) -> Result<T, Error> {
        answer.map(tonic::Response::into_inner).map_err(|status| {
            Error::Call(CallError {
                endpoint: self.endpoint.clone(),
                method,
                status,
            })
        })
    }
}
