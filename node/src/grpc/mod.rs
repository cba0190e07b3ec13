//! The gRPC surface: `varde.v1.Ledger`, `varde.v1.Query` and `varde.v1.Node`, plus gRPC health and
//! server reflection. Handlers read the ledger directly (reads are consistent per block: the
//! driver writes each block in one atomic batch) and hand submissions to the mempool.
//!
//! Every method that returns ledger content authenticates its caller ([`auth`]) and asks the
//! ledger's visibility rule (`varde_ledger::visibility`) what that caller may see; the rule
//! itself lives in the ledger crate, not here. One module per service:
//! [`ledger_service`], [`query_service`], [`node_service`]; [`events`] serves StreamEvents.

mod auth;
mod events;
mod ledger_service;
mod node_service;
mod query_service;

use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use tonic::Status;
use tonic::codegen::http;
use varde_ledger::domain::Receipt;
use varde_ledger::membership::Institution;
use varde_ledger::page_token::PageTokenKey;
use varde_ledger::signing::{SignedRequest, TransactionId};
use varde_ledger::state::{StateView, keys};
use varde_ledger::visibility::{self, Viewer};
use varde_ledger::wire::{self, FieldError};
use varde_proto::v1;
use varde_storage::{Column, Store};

use crate::context::NodeContext;
use crate::mempool::AdmissionError;

pub use auth::QUERY_CLOCK_SKEW_MAX_MS;

/// The largest gRPC request the node decodes; larger ones get RESOURCE_EXHAUSTED... from the
/// transaction size check (64 KiB) below this, or from tonic above it.
pub const REQUEST_BYTES_MAX: usize = 256 * 1024;
/// SubmitAndWait's cap and default wait.
pub const SUBMIT_WAIT_MAX: Duration = Duration::from_secs(60);
pub const SUBMIT_WAIT_DEFAULT: Duration = Duration::from_secs(30);

/// Gives the statuses that tonic's decoder produces for bad request bytes the codes of the Varde
/// API: an oversized message (tonic: OUT_OF_RANGE) becomes RESOURCE_EXHAUSTED, and bytes that are
/// not the request message (tonic-prost: INTERNAL) become INVALID_ARGUMENT. These errors come back
/// as trailers-only responses, so the status is in the response headers.
pub fn rewrite_decode_statuses<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    let code = headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok());
    let message = headers
        .get("grpc-message")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .replace("%20", " ");
    let replacement = match code {
        Some(11) if message.contains("decoded message length too large") => Some("8"),
        Some(13) if message.starts_with("failed to decode Protobuf message") => Some("3"),
        _ => None,
    };
    if let Some(replacement) = replacement {
        headers.insert("grpc-status", http::HeaderValue::from_static(replacement));
    }
    response
}

fn internal(error: impl std::fmt::Display) -> Status {
    tracing::error!(%error, "request failed inside the node");
    Status::internal(format!("the node failed to read its ledger: {error}"))
}

fn invalid(error: FieldError) -> Status {
    Status::invalid_argument(error.to_string())
}

fn admission_status(error: &AdmissionError) -> Status {
    let message = error.to_string();
    match error {
        AdmissionError::Invalid(varde_ledger::wire::TransactionError::TooLarge { .. })
        | AdmissionError::Full { .. } => Status::resource_exhausted(message),
        AdmissionError::Invalid(_)
        | AdmissionError::Expired { .. }
        | AdmissionError::ExpiryTooFar { .. } => Status::invalid_argument(message),
        AdmissionError::UnknownSigner => Status::permission_denied(message),
        AdmissionError::DuplicatePending { .. } | AdmissionError::AlreadyCommitted { .. } => {
            Status::already_exists(message)
        }
        AdmissionError::Storage(_) => Status::unavailable(message),
    }
}

fn transaction_id(bytes: &[u8]) -> Result<TransactionId, Status> {
    TransactionId::from_slice(bytes).ok_or_else(|| {
        Status::invalid_argument(format!(
            "field `transaction_id` must be 32 bytes, got {}",
            bytes.len()
        ))
    })
}

fn query_status(error: varde_ledger::query::QueryError) -> Status {
    match error {
        varde_ledger::query::QueryError::InvalidPageToken => Status::invalid_argument(
            "field `page_token` is not one this node issued to this caller for this listing; \
             start again with an empty token",
        ),
        other => internal(other),
    }
}

/// A receipt for a caller who may not see the transaction's body: the outcome's code only.
fn redacted_receipt(mut receipt: v1::Receipt) -> v1::Receipt {
    match &mut receipt.outcome {
        Some(v1::receipt::Outcome::Applied(applied)) => applied.classification = 0,
        Some(v1::receipt::Outcome::Rejected(rejected)) => rejected.detail.clear(),
        None => {}
    }
    receipt
}

/// The services, sharing the node context.
pub struct Api<S: Store + 'static> {
    context: Arc<NodeContext<S>>,
    /// Becomes true when the node stops: long calls (SubmitAndWait, StreamEvents) end then, so
    /// that the server's graceful shutdown does not wait on them.
    stopping: tokio::sync::watch::Receiver<bool>,
    authenticator: Arc<auth::Authenticator>,
    page_tokens: Arc<PageTokenKey>,
}

impl<S: Store + 'static> Clone for Api<S> {
    fn clone(&self) -> Self {
        Self {
            context: self.context.clone(),
            stopping: self.stopping.clone(),
            authenticator: self.authenticator.clone(),
            page_tokens: self.page_tokens.clone(),
        }
    }
}

impl<S: Store + 'static> Api<S> {
    /// `page_tokens` seals page tokens; derive it from a secret the node keeps, so that tokens
    /// survive a restart.
    pub fn new(
        context: Arc<NodeContext<S>>,
        stopping: tokio::sync::watch::Receiver<bool>,
        page_tokens: PageTokenKey,
    ) -> Self {
        Self {
            context,
            stopping,
            authenticator: Arc::new(auth::Authenticator::new()),
            page_tokens: Arc::new(page_tokens),
        }
    }

    /// Completes when the node is stopping.
    fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut stopping = self.stopping.clone();
        async move {
            let _ = stopping.wait_for(|stopping| *stopping).await;
        }
    }

    /// Verifies a signed request and returns the calling institution (see [`auth`]).
    fn authenticate(
        &self,
        method: &str,
        request: &impl SignedRequest,
    ) -> Result<Institution, Status> {
        self.authenticator.authenticate(
            &self.context.ledger,
            method,
            request.auth(),
            &request.unsigned_bytes(),
        )
    }

    fn height(&self) -> Result<u64, Status> {
        Ok(self
            .context
            .ledger
            .head()
            .map_err(internal)?
            .map_or(0, |head| head.height))
    }

    /// What `column` stores under a height (blocks, certificates).
    fn stored_at_height(&self, column: Column, height: u64) -> Result<Option<Vec<u8>>, Status> {
        self.context
            .ledger
            .store()
            .get(column, &height.to_be_bytes())
            .map_err(internal)
    }

    fn block_at(&self, height: u64) -> Result<Option<v1::Block>, Status> {
        let Some(bytes) = self.stored_at_height(Column::Blocks, height)? else {
            return Ok(None);
        };
        v1::Block::decode(bytes.as_slice())
            .map(Some)
            .map_err(internal)
    }

    fn certificate_at(&self, height: u64) -> Result<Option<v1::CommitCertificate>, Status> {
        Ok(self
            .context
            .ledger
            .certificate(height)
            .map_err(internal)?
            .map(|certificate| varde_ledger::consensus_wire::certificate_to_wire(&certificate)))
    }

    fn receipt_at(&self, height: u64, index: u32) -> Result<Option<Receipt>, Status> {
        StateView::new(self.context.ledger.store())
            .get_value::<Receipt>(Column::Receipts, &keys::position(height, index))
            .map_err(internal)
    }

    /// A committed transaction's receipt and envelope.
    fn committed_transaction(
        &self,
        id: &TransactionId,
    ) -> Result<Option<(Receipt, Option<v1::SignedTransaction>)>, Status> {
        let Some(receipt) = self.context.ledger.receipt(id).map_err(internal)? else {
            return Ok(None);
        };
        let envelope = self
            .block_at(receipt.height)?
            .and_then(|block| block.transactions.get(receipt.index as usize).cloned());
        Ok(Some((receipt, envelope)))
    }

    /// Whether `viewer` may see the body of `envelope`; `outcome` of `None` for a pending
    /// transaction (seen only by its signer, like a rejected one).
    fn may_see_envelope(
        &self,
        viewer: &Viewer<'_>,
        envelope: &v1::SignedTransaction,
        outcome: Option<&Receipt>,
    ) -> Result<bool, Status> {
        let Ok(wire_body) = v1::TransactionBody::decode(envelope.body.as_slice()) else {
            return Ok(viewer.is_auditor());
        };
        let Ok(body) = wire::decode_body(wire_body) else {
            return Ok(viewer.is_auditor());
        };
        let membership = self.context.ledger.membership();
        let signer = <[u8; 32]>::try_from(envelope.signer_public_key.as_slice())
            .ok()
            .and_then(|key| membership.owner_of_key(&key));
        let outcome = match outcome {
            Some(receipt) if receipt.is_applied() => visibility::Outcome::Applied,
            _ => visibility::Outcome::Rejected,
        };
        visibility::may_see_transaction(
            &StateView::new(self.context.ledger.store()),
            viewer,
            signer,
            &body.action,
            outcome,
        )
        .map_err(internal)
    }
}
