//! The gRPC surface: `varde.v1.Ledger`, `varde.v1.Query` and `varde.v1.Node`, plus gRPC health and
//! server reflection. Handlers read the ledger directly (reads are consistent per block: the
//! driver writes each block in one atomic batch) and hand submissions to the mempool.
//!
//! # Who may see what (Query and StreamEvents)
//! Every query is signed (`varde-query-v1`); the caller is the member institution that owns the
//! signing key. An unknown or invalid signature is UNAUTHENTICATED; a key of no member is
//! PERMISSION_DENIED. Then:
//! - an **auditor** sees everything;
//! - any other institution sees a **record** when it is the record's custodian or holds a grant
//!   that covers the record now (not revoked, inside its window, in scope);
//! - it sees a **grant** when it is the grant's grantee or issuer;
//! - it sees an **access event** when it is the accessor, or the custodian of the record read;
//! - listings by custodian, grantee or accessor are allowed for that institution itself only;
//!   listings by subject or record return only the visible items (a page may hold fewer items
//!   than asked even when more follow);
//! - **CheckAccess** may be asked by the accessor, the record's custodian, a consent authority
//!   or an auditor;
//! - **StreamEvents** delivers an event when the caller is an auditor, or the transaction's
//!   actor, or is named in it (grantee, blocked institution, custodian of the record read);
//!   misbehaviour reports go to every caller.
//! - **ListMisbehaviour** is open to anyone, unsigned: which validator key equivocated is no
//!   personal data.
//!
//! A record that does not exist is NOT_FOUND only for its custodian and auditors; others get
//! PERMISSION_DENIED, so that existence does not leak.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use tokio::sync::broadcast;
use tokio_stream::Stream;
use tonic::codegen::http;
use tonic::{Request, Response, Status};
use varde_ledger::access::{self, AccessRequest};
use varde_ledger::domain::{AccessEvent, Grant, RecordKey, RecordPointer};
use varde_ledger::identifiers::OrgNumber;
use varde_ledger::membership::{Institution, Role};
use varde_ledger::signing::TransactionId;
use varde_ledger::state::{StateView, keys};
use varde_ledger::wire::{self, FieldError};
use varde_ledger::{accumulator, query};
use varde_proto::v1;
use varde_storage::{Column, Store};

use crate::context::{NodeContext, now_unix_ms};
use crate::events::{CommittedBlock, CommittedTransaction};
use crate::mempool::AdmissionError;

/// The largest gRPC request the node decodes; larger ones get RESOURCE_EXHAUSTED... from the
/// transaction size check (64 KiB) below this, or from tonic above it.
pub const REQUEST_BYTES_MAX: usize = 256 * 1024;
/// SubmitAndWait's cap and default wait.
pub const SUBMIT_WAIT_MAX: Duration = Duration::from_secs(60);
pub const SUBMIT_WAIT_DEFAULT: Duration = Duration::from_secs(30);
/// How far a query signature's time may be from the node's clock.
pub const QUERY_CLOCK_SKEW_MAX_MS: i64 = 5 * 60 * 1_000;

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
        AdmissionError::Invalid(_) | AdmissionError::Expired { .. } => {
            Status::invalid_argument(message)
        }
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

/// The services, sharing the node context.
pub struct Api<S: Store + 'static> {
    context: Arc<NodeContext<S>>,
    /// Becomes true when the node stops: long calls (SubmitAndWait, StreamEvents) end then, so
    /// that the server's graceful shutdown does not wait on them.
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl<S: Store + 'static> Clone for Api<S> {
    fn clone(&self) -> Self {
        Self {
            context: self.context.clone(),
            stopping: self.stopping.clone(),
        }
    }
}

impl<S: Store + 'static> Api<S> {
    pub fn new(context: Arc<NodeContext<S>>, stopping: tokio::sync::watch::Receiver<bool>) -> Self {
        Self { context, stopping }
    }

    /// Completes when the node is stopping.
    fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut stopping = self.stopping.clone();
        async move {
            let _ = stopping.wait_for(|stopping| *stopping).await;
        }
    }

    fn admit(&self, transaction: Option<v1::SignedTransaction>) -> Result<TransactionId, Status> {
        let transaction = transaction
            .ok_or_else(|| Status::invalid_argument("field `transaction` is required"))?;
        match self.context.admit_and_gossip(transaction) {
            Ok(id) => {
                tracing::debug!(transaction = %crate::context::short_hex(&id.0), "admitted");
                Ok(id)
            }
            Err(error) => {
                self.context.metrics.count_rejection(error.reason());
                tracing::debug!(reason = error.reason(), "submission refused");
                Err(admission_status(&error))
            }
        }
    }

    fn block_at(&self, height: u64) -> Result<Option<v1::Block>, Status> {
        let Some(bytes) = self
            .context
            .ledger
            .store()
            .get(Column::Blocks, &height.to_be_bytes())
            .map_err(internal)?
        else {
            return Ok(None);
        };
        v1::Block::decode(bytes.as_slice())
            .map(Some)
            .map_err(internal)
    }

    fn committed_transaction(
        &self,
        id: &TransactionId,
    ) -> Result<Option<(v1::Receipt, Option<v1::SignedTransaction>)>, Status> {
        let Some(receipt) = self.context.ledger.receipt(id).map_err(internal)? else {
            return Ok(None);
        };
        let envelope = self
            .block_at(receipt.height)?
            .and_then(|block| block.transactions.get(receipt.index as usize).cloned());
        Ok(Some((wire::receipt_to_wire(&receipt), envelope)))
    }

    /// Verifies a query's signature and returns the calling institution.
    fn authenticate<T: prost::Message + Clone>(
        &self,
        method: &str,
        request: &T,
        auth: Option<&v1::RequestAuthentication>,
        without_auth: impl FnOnce(&mut T),
    ) -> Result<Institution, Status> {
        let auth = auth.ok_or_else(|| {
            Status::unauthenticated(
                "field `auth` is required: sign the request with a member key (varde-query-v1)",
            )
        })?;
        let skew = (auth.signed_at_unix_ms.saturating_sub(now_unix_ms())).saturating_abs();
        if skew > QUERY_CLOCK_SKEW_MAX_MS {
            return Err(Status::unauthenticated(format!(
                "auth.signed_at_unix_ms is {skew} ms away from the node's clock (at most {QUERY_CLOCK_SKEW_MAX_MS}); sign again with the current time"
            )));
        }
        let mut unsigned = request.clone();
        without_auth(&mut unsigned);
        let verifying_key = varde_ledger::signing::verify_query(
            self.context.ledger.chain_id(),
            method,
            auth.signed_at_unix_ms,
            &auth.caller_public_key,
            &auth.signature,
            &unsigned.encode_to_vec(),
        )
        .map_err(|error| {
            Status::unauthenticated(format!("the request signature does not verify: {error}"))
        })?;
        self.context
            .ledger
            .membership()
            .owner_of_key(&verifying_key.to_bytes())
            .cloned()
            .ok_or_else(|| {
                Status::permission_denied(
                    "the signing key is not registered to any member institution",
                )
            })
    }

    fn height(&self) -> Result<u64, Status> {
        Ok(self
            .context
            .ledger
            .head()
            .map_err(internal)?
            .map_or(0, |head| head.height))
    }

    fn may_see_record(&self, caller: &Institution, record: &RecordPointer) -> Result<bool, Status> {
        if caller.has_role(Role::Auditor) || record.record.custodian == caller.org_number {
            return Ok(true);
        }
        let view = StateView::new(self.context.ledger.store());
        let grants = access::grants_of_subject(&view, &record.subject).map_err(internal)?;
        let now = now_unix_ms();
        Ok(grants.iter().any(|grant| {
            grant.terms.grantee == caller.org_number
                && grant.terms.purposes.iter().any(|purpose| {
                    let request = AccessRequest {
                        accessor: caller.org_number.clone(),
                        person: grant.terms.grantee_person.clone(),
                        record: record.record.clone(),
                        purpose: *purpose,
                        at_unix_ms: now,
                    };
                    access::grant_covers(grant, &request, record).is_ok()
                })
        }))
    }

    fn record(&self, key: &RecordKey) -> Result<Option<RecordPointer>, Status> {
        StateView::new(self.context.ledger.store())
            .get_json::<RecordPointer>(Column::Records, &keys::record(key))
            .map_err(internal)
    }
}

fn may_see_grant(caller: &Institution, grant: &Grant) -> bool {
    caller.has_role(Role::Auditor)
        || grant.terms.grantee == caller.org_number
        || grant.terms.issuer == caller.org_number
}

fn may_see_event(caller: &Institution, event: &AccessEvent) -> bool {
    caller.has_role(Role::Auditor)
        || event.report.accessor == caller.org_number
        || event.report.record.custodian == caller.org_number
}

fn query_status(error: query::QueryError) -> Status {
    match error {
        query::QueryError::InvalidPageToken => Status::invalid_argument(
            "field `page_token` is not one this listing issued; start again with an empty token",
        ),
        other => internal(other),
    }
}

fn require_self(caller: &Institution, org_number: &OrgNumber, what: &str) -> Result<(), Status> {
    if caller.has_role(Role::Auditor) || caller.org_number == *org_number {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "only institution {org_number} itself or an auditor may list {what}"
        )))
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<v1::LedgerEvent, Status>> + Send>>;

#[tonic::async_trait]
impl<S: Store + 'static> v1::ledger_server::Ledger for Api<S> {
    async fn submit(
        &self,
        request: Request<v1::SubmitRequest>,
    ) -> Result<Response<v1::SubmitResponse>, Status> {
        let id = self.admit(request.into_inner().transaction)?;
        Ok(Response::new(v1::SubmitResponse {
            transaction_id: id.0.to_vec(),
        }))
    }

    async fn submit_and_wait(
        &self,
        request: Request<v1::SubmitAndWaitRequest>,
    ) -> Result<Response<v1::SubmitAndWaitResponse>, Status> {
        let request = request.into_inner();
        let wait = match request.timeout_ms {
            0 => SUBMIT_WAIT_DEFAULT,
            milliseconds => Duration::from_millis(u64::from(milliseconds)).min(SUBMIT_WAIT_MAX),
        };
        // Subscribe before admission, so that a commit right after admission is not missed.
        let mut committed = self.context.committed.subscribe();
        let transaction = request.transaction;
        let id = match self.admit(transaction.clone()) {
            Ok(id) => id,
            Err(status) if status.code() == tonic::Code::AlreadyExists => {
                // A retry of a submitted transaction waits for it (SubmitAndWait is retryable).
                let message = status.message().to_owned();
                let refuse = || Status::already_exists(message.clone());
                let envelope = transaction.ok_or_else(refuse)?;
                let signer = <[u8; 32]>::try_from(envelope.signer_public_key.as_slice())
                    .map_err(|_| refuse())?;
                let id = varde_ledger::signing::signing_digest(
                    self.context.ledger.chain_id(),
                    &signer,
                    &envelope.body,
                )
                .map_err(|_| refuse())?;
                if let Some((receipt, _)) = self.committed_transaction(&id)? {
                    return Ok(Response::new(v1::SubmitAndWaitResponse {
                        transaction_id: id.0.to_vec(),
                        receipt: Some(receipt),
                    }));
                }
                id
            }
            Err(status) => return Err(status),
        };
        let wait_for_commit = async {
            loop {
                match committed.recv().await {
                    Ok(block) => {
                        if let Some(transaction) = block
                            .transactions
                            .iter()
                            .find(|transaction| transaction.id == id)
                        {
                            return Ok(wire::receipt_to_wire(&transaction.receipt));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if let Some((receipt, _)) = self.committed_transaction(&id)? {
                            return Ok(receipt);
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(Status::unavailable(
                            "the node is shutting down; query the transaction later",
                        ));
                    }
                }
            }
        };
        let stopped = self.stopped();
        let wait_for_commit = async {
            tokio::select! {
                _ = stopped => Err(Status::unavailable(
                    "the node is shutting down; query the transaction later with GetTransaction",
                )),
                result = wait_for_commit => result,
            }
        };
        match tokio::time::timeout(wait, wait_for_commit).await {
            Ok(result) => Ok(Response::new(v1::SubmitAndWaitResponse {
                transaction_id: id.0.to_vec(),
                receipt: Some(result?),
            })),
            Err(_) => Err(Status::deadline_exceeded(format!(
                "transaction {id} was admitted but not committed within {} ms; it may still commit: follow it with GetTransaction",
                wait.as_millis()
            ))),
        }
    }

    async fn get_transaction(
        &self,
        request: Request<v1::GetTransactionRequest>,
    ) -> Result<Response<v1::GetTransactionResponse>, Status> {
        let id = transaction_id(&request.into_inner().transaction_id)?;
        if let Some((receipt, transaction)) = self.committed_transaction(&id)? {
            return Ok(Response::new(v1::GetTransactionResponse {
                status: v1::TransactionStatus::Committed as i32,
                receipt: Some(receipt),
                transaction,
            }));
        }
        let pending = self
            .context
            .mempool
            .lock()
            .expect("mempool lock")
            .get(&id)
            .cloned();
        Ok(Response::new(match pending {
            Some(transaction) => v1::GetTransactionResponse {
                status: v1::TransactionStatus::Pending as i32,
                receipt: None,
                transaction: Some(transaction),
            },
            None => v1::GetTransactionResponse {
                status: v1::TransactionStatus::Unknown as i32,
                receipt: None,
                transaction: None,
            },
        }))
    }

    async fn get_block(
        &self,
        request: Request<v1::GetBlockRequest>,
    ) -> Result<Response<v1::GetBlockResponse>, Status> {
        let mut height = request.into_inner().height;
        if height == 0 {
            height = self.height()?;
            if height == 0 {
                return Err(Status::not_found("no block is committed yet"));
            }
        }
        let block = self.block_at(height)?.ok_or_else(|| {
            Status::not_found(format!("no block at height {height}; the chain is shorter"))
        })?;
        Ok(Response::new(v1::GetBlockResponse { block: Some(block) }))
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<v1::GetInclusionProofRequest>,
    ) -> Result<Response<v1::GetInclusionProofResponse>, Status> {
        let request = request.into_inner();
        let id = transaction_id(&request.transaction_id)?;
        let receipt = self
            .context
            .ledger
            .receipt(&id)
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("transaction {id} is not committed")))?;
        let store = self.context.ledger.store();
        let view = StateView::new(store);
        let size = accumulator::size(&view).map_err(internal)?;
        // The accumulator holds every transaction of every block in order: the leaf index is the
        // number of transactions in the blocks before this one plus the index in the block.
        let head = self.height()?;
        let mut after = 0u64;
        for height in receipt.height..=head {
            let block = self
                .block_at(height)?
                .ok_or_else(|| internal("a block is missing"))?;
            after += block.transactions.len() as u64;
        }
        let leaf_index = size - after + u64::from(receipt.index);
        let tree_size = if request.tree_size == 0 {
            size
        } else {
            request.tree_size
        };
        let proof = accumulator::inclusion_proof(&view, leaf_index, tree_size)
            .map_err(internal)?
            .ok_or_else(|| {
                Status::invalid_argument(format!(
                    "field `tree_size` must be above the leaf index {leaf_index} and at most the ledger size {size}"
                ))
            })?;
        let root = accumulator::root_at(&view, tree_size).map_err(internal)?;
        Ok(Response::new(v1::GetInclusionProofResponse {
            leaf_index,
            tree_size,
            audit_path: proof.audit_path.iter().map(|hash| hash.to_vec()).collect(),
            ledger_root: root.to_vec(),
        }))
    }

    type StreamEventsStream = EventStream;

    async fn stream_events(
        &self,
        request: Request<v1::StreamEventsRequest>,
    ) -> Result<Response<Self::StreamEventsStream>, Status> {
        let request = request.into_inner();
        let caller = self.authenticate(
            "/varde.v1.Ledger/StreamEvents",
            &request,
            request.auth.as_ref(),
            |unsigned| unsigned.auth = None,
        )?;
        let filter = EventFilter::new(&request, caller)?;
        let mut live = self.context.committed.subscribe();
        let api = self.clone();
        let stopped = self.stopped();
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<v1::LedgerEvent, Status>>(64);
        tokio::spawn(async move {
            tokio::pin!(stopped);
            // Catch up from storage, then follow the live channel; fall back to storage on lag.
            let mut next_height = request.from_height.max(1);
            loop {
                let head = match api.height() {
                    Ok(head) => head,
                    Err(status) => {
                        let _ = sender.send(Err(status)).await;
                        return;
                    }
                };
                while next_height <= head {
                    let events = match api.stored_events(next_height) {
                        Ok(events) => events,
                        Err(status) => {
                            let _ = sender.send(Err(status)).await;
                            return;
                        }
                    };
                    for event in events.into_iter().filter(|event| filter.matches(event)) {
                        if sender.send(Ok(event)).await.is_err() {
                            return;
                        }
                    }
                    next_height += 1;
                }
                // Stop as soon as the client goes away: this task holds the node context.
                let received = tokio::select! {
                    _ = sender.closed() => return,
                    _ = &mut stopped => return,
                    received = live.recv() => received,
                };
                match received {
                    Ok(block) if block.height == next_height => {
                        for event in block_events(&block)
                            .into_iter()
                            .filter(|event| filter.matches(event))
                        {
                            if sender.send(Ok(event)).await.is_err() {
                                return;
                            }
                        }
                        next_height += 1;
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {} // Re-read from storage.
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }

    async fn list_misbehaviour(
        &self,
        request: Request<v1::ListMisbehaviourRequest>,
    ) -> Result<Response<v1::ListMisbehaviourResponse>, Status> {
        let request = request.into_inner();
        let height = self.height()?;
        // The listing caps the page size (query::PAGE_SIZE_MAX); 0 means the default.
        let page = self
            .context
            .ledger
            .list_misbehaviour(request.page_size as usize, &request.page_token)
            .map_err(query_status)?;
        let records = page
            .items
            .iter()
            .map(wire::misbehaviour_to_wire)
            .collect::<Result<Vec<_>, _>>()
            .map_err(internal)?;
        Ok(Response::new(v1::ListMisbehaviourResponse {
            records,
            next_page_token: page.next_page_token,
            height,
        }))
    }
}

impl<S: Store + 'static> Api<S> {
    fn stored_events(&self, height: u64) -> Result<Vec<v1::LedgerEvent>, Status> {
        let Some(block) = self.block_at(height)? else {
            return Ok(Vec::new());
        };
        let mut events = Vec::new();
        for (index, envelope) in block.transactions.into_iter().enumerate() {
            let receipt = StateView::new(self.context.ledger.store())
                .get_json::<varde_ledger::domain::Receipt>(
                    Column::Receipts,
                    &keys::position(height, index as u32),
                )
                .map_err(internal)?;
            let Some(receipt) = receipt else { continue };
            events.push(CommittedTransaction {
                id: receipt.transaction_id,
                index: index as u32,
                envelope,
                receipt,
            });
        }
        Ok(block_events(&CommittedBlock {
            height,
            block_hash: [0; 32],
            transactions: events,
        }))
    }
}

fn event_kind(body: &v1::TransactionBody) -> v1::EventKind {
    use v1::transaction_body::Action;
    match &body.action {
        Some(Action::AnchorRecord(_) | Action::SupersedeRecord(_) | Action::RetractRecord(_)) => {
            v1::EventKind::Record
        }
        Some(Action::GrantAccess(_) | Action::RevokeGrant(_)) => v1::EventKind::Grant,
        Some(Action::BlockAccess(_) | Action::UnblockAccess(_)) => v1::EventKind::Block,
        Some(Action::LogAccess(_)) => v1::EventKind::Access,
        Some(Action::ReportMisbehaviour(_)) => v1::EventKind::Misbehaviour,
        None => v1::EventKind::Unspecified,
    }
}

fn block_events(block: &CommittedBlock) -> Vec<v1::LedgerEvent> {
    block
        .transactions
        .iter()
        .filter_map(|transaction| {
            let body = v1::TransactionBody::decode(transaction.envelope.body.as_slice()).ok()?;
            Some(v1::LedgerEvent {
                height: block.height,
                index: transaction.index,
                transaction_id: transaction.id.0.to_vec(),
                kind: event_kind(&body) as i32,
                body: Some(body),
                receipt: Some(wire::receipt_to_wire(&transaction.receipt)),
            })
        })
        .collect()
}

/// The subject and the institutions a body names (actor, grantee, block target, custodian).
fn named_parties(body: &v1::TransactionBody) -> (Vec<u8>, Vec<String>) {
    use v1::transaction_body::Action;
    match &body.action {
        Some(Action::AnchorRecord(anchor)) => (
            anchor.subject_pseudonym.clone(),
            vec![anchor.custodian_org_number.clone()],
        ),
        Some(Action::SupersedeRecord(record)) => {
            (Vec::new(), vec![record.custodian_org_number.clone()])
        }
        Some(Action::RetractRecord(record)) => {
            (Vec::new(), vec![record.custodian_org_number.clone()])
        }
        Some(Action::GrantAccess(grant)) => {
            let mut parties = vec![
                grant.issuer_org_number.clone(),
                grant.grantee_org_number.clone(),
            ];
            if let Some(v1::grant_scope::Scope::Record(record)) =
                grant.scope.as_ref().and_then(|scope| scope.scope.as_ref())
            {
                parties.push(record.custodian_org_number.clone());
            }
            (grant.subject_pseudonym.clone(), parties)
        }
        Some(Action::RevokeGrant(revoke)) => (Vec::new(), vec![revoke.issuer_org_number.clone()]),
        Some(Action::BlockAccess(block)) => {
            let mut parties = vec![block.issuer_org_number.clone()];
            if let Some(v1::block_access::Target::InstitutionOrgNumber(target)) = &block.target {
                parties.push(target.clone());
            }
            (block.subject_pseudonym.clone(), parties)
        }
        Some(Action::UnblockAccess(unblock)) => {
            (Vec::new(), vec![unblock.issuer_org_number.clone()])
        }
        Some(Action::LogAccess(log)) => {
            let mut parties = vec![log.accessor_org_number.clone()];
            if let Some(record) = &log.record {
                parties.push(record.custodian_org_number.clone());
            }
            (Vec::new(), parties)
        }
        // The reporter is the signer's institution, not named in the body.
        Some(Action::ReportMisbehaviour(_)) | None => (Vec::new(), Vec::new()),
    }
}

struct EventFilter {
    kinds: Vec<i32>,
    subject: Option<Vec<u8>>,
    institution: Option<String>,
    caller: Institution,
}

impl EventFilter {
    fn new(request: &v1::StreamEventsRequest, caller: Institution) -> Result<Self, Status> {
        for kind in &request.kinds {
            if v1::EventKind::try_from(*kind).is_err() {
                return Err(Status::invalid_argument(format!(
                    "field `kinds` has unknown event kind {kind}"
                )));
            }
        }
        let subject = if request.subject_pseudonym.is_empty() {
            None
        } else {
            Some(
                wire::subject("subject_pseudonym", &request.subject_pseudonym)
                    .map_err(invalid)?
                    .0
                    .to_vec(),
            )
        };
        let institution = if request.institution_org_number.is_empty() {
            None
        } else {
            Some(
                wire::org_number("institution_org_number", &request.institution_org_number)
                    .map_err(invalid)?
                    .as_str()
                    .to_owned(),
            )
        };
        Ok(Self {
            kinds: request.kinds.clone(),
            subject,
            institution,
            caller,
        })
    }

    fn matches(&self, event: &v1::LedgerEvent) -> bool {
        if !self.kinds.is_empty() && !self.kinds.contains(&event.kind) {
            return false;
        }
        let Some(body) = &event.body else {
            return false;
        };
        let (subject, parties) = named_parties(body);
        if let Some(wanted) = &self.subject {
            if subject != *wanted {
                return false;
            }
        }
        if let Some(wanted) = &self.institution {
            if !parties.contains(wanted) {
                return false;
            }
        }
        // Misbehaviour reports hold no personal data: every member may follow them.
        event.kind == v1::EventKind::Misbehaviour as i32
            || self.caller.has_role(Role::Auditor)
            || parties
                .iter()
                .any(|party| party == self.caller.org_number.as_str())
    }
}

#[tonic::async_trait]
impl<S: Store + 'static> v1::query_server::Query for Api<S> {
    async fn get_record(
        &self,
        request: Request<v1::GetRecordRequest>,
    ) -> Result<Response<v1::GetRecordResponse>, Status> {
        let request = request.into_inner();
        let caller = self.authenticate(
            "/varde.v1.Query/GetRecord",
            &request,
            request.auth.as_ref(),
            |unsigned| unsigned.auth = None,
        )?;
        let key = wire::record_reference("record", request.record.clone()).map_err(invalid)?;
        let height = self.height()?;
        let may_know = caller.has_role(Role::Auditor) || key.custodian == caller.org_number;
        let Some(record) = self.record(&key)? else {
            return Err(if may_know {
                Status::not_found(format!(
                    "no record `{}` of custodian {}",
                    key.record_id, key.custodian
                ))
            } else {
                Status::permission_denied("this institution may not see that record")
            });
        };
        if !self.may_see_record(&caller, &record)? {
            return Err(Status::permission_denied(
                "this institution may not see that record",
            ));
        }
        Ok(Response::new(v1::GetRecordResponse {
            record: Some(wire::record_to_wire(&record)),
            height,
        }))
    }

    async fn list_records(
        &self,
        request: Request<v1::ListRecordsRequest>,
    ) -> Result<Response<v1::ListRecordsResponse>, Status> {
        use v1::list_records_request::Filter;
        let request = request.into_inner();
        let caller = self.authenticate(
            "/varde.v1.Query/ListRecords",
            &request,
            request.auth.as_ref(),
            |unsigned| unsigned.auth = None,
        )?;
        let height = self.height()?;
        let store = self.context.ledger.store();
        let page_size = request.page_size as usize;
        let page = match &request.filter {
            Some(Filter::SubjectPseudonym(subject)) => {
                let subject = wire::subject("subject_pseudonym", subject).map_err(invalid)?;
                query::records_by_subject(store, &subject, page_size, &request.page_token)
                    .map_err(query_status)?
            }
            Some(Filter::CustodianOrgNumber(custodian)) => {
                let custodian =
                    wire::org_number("custodian_org_number", custodian).map_err(invalid)?;
                require_self(&caller, &custodian, "a custodian's records")?;
                query::records_by_custodian(store, &custodian, page_size, &request.page_token)
                    .map_err(query_status)?
            }
            None => {
                return Err(Status::invalid_argument(
                    "set `subject_pseudonym` or `custodian_org_number`",
                ));
            }
        };
        let mut records = Vec::new();
        for record in &page.items {
            if self.may_see_record(&caller, record)? {
                records.push(wire::record_to_wire(record));
            }
        }
        Ok(Response::new(v1::ListRecordsResponse {
            records,
            next_page_token: page.next_page_token,
            height,
        }))
    }

    async fn list_grants(
        &self,
        request: Request<v1::ListGrantsRequest>,
    ) -> Result<Response<v1::ListGrantsResponse>, Status> {
        use v1::list_grants_request::Filter;
        let request = request.into_inner();
        let caller = self.authenticate(
            "/varde.v1.Query/ListGrants",
            &request,
            request.auth.as_ref(),
            |unsigned| unsigned.auth = None,
        )?;
        let height = self.height()?;
        let store = self.context.ledger.store();
        let page_size = request.page_size as usize;
        let page = match &request.filter {
            Some(Filter::SubjectPseudonym(subject)) => {
                let subject = wire::subject("subject_pseudonym", subject).map_err(invalid)?;
                query::grants_by_subject(store, &subject, page_size, &request.page_token)
                    .map_err(query_status)?
            }
            Some(Filter::GranteeOrgNumber(grantee)) => {
                let grantee = wire::org_number("grantee_org_number", grantee).map_err(invalid)?;
                require_self(&caller, &grantee, "a grantee's grants")?;
                query::grants_by_grantee(store, &grantee, page_size, &request.page_token)
                    .map_err(query_status)?
            }
            None => {
                return Err(Status::invalid_argument(
                    "set `subject_pseudonym` or `grantee_org_number`",
                ));
            }
        };
        Ok(Response::new(v1::ListGrantsResponse {
            grants: page
                .items
                .iter()
                .filter(|grant| may_see_grant(&caller, grant))
                .map(wire::grant_to_wire)
                .collect(),
            next_page_token: page.next_page_token,
            height,
        }))
    }

    async fn list_access_events(
        &self,
        request: Request<v1::ListAccessEventsRequest>,
    ) -> Result<Response<v1::ListAccessEventsResponse>, Status> {
        use v1::list_access_events_request::Filter;
        let request = request.into_inner();
        let caller = self.authenticate(
            "/varde.v1.Query/ListAccessEvents",
            &request,
            request.auth.as_ref(),
            |unsigned| unsigned.auth = None,
        )?;
        let height = self.height()?;
        let store = self.context.ledger.store();
        let page_size = request.page_size as usize;
        let page = match &request.filter {
            Some(Filter::SubjectPseudonym(subject)) => {
                let subject = wire::subject("subject_pseudonym", subject).map_err(invalid)?;
                query::access_events_by_subject(store, &subject, page_size, &request.page_token)
                    .map_err(query_status)?
            }
            Some(Filter::Record(record)) => {
                let key =
                    wire::record_reference("record", Some(record.clone())).map_err(invalid)?;
                query::access_events_by_record(store, &key, page_size, &request.page_token)
                    .map_err(query_status)?
            }
            Some(Filter::AccessorOrgNumber(accessor)) => {
                let accessor =
                    wire::org_number("accessor_org_number", accessor).map_err(invalid)?;
                require_self(&caller, &accessor, "an accessor's reads")?;
                query::access_events_by_accessor(store, &accessor, page_size, &request.page_token)
                    .map_err(query_status)?
            }
            None => {
                return Err(Status::invalid_argument(
                    "set `subject_pseudonym`, `record` or `accessor_org_number`",
                ));
            }
        };
        Ok(Response::new(v1::ListAccessEventsResponse {
            events: page
                .items
                .iter()
                .filter(|event| may_see_event(&caller, event))
                .map(wire::access_event_to_wire)
                .collect(),
            next_page_token: page.next_page_token,
            height,
        }))
    }

    async fn check_access(
        &self,
        request: Request<v1::CheckAccessRequest>,
    ) -> Result<Response<v1::CheckAccessResponse>, Status> {
        let request = request.into_inner();
        let caller = self.authenticate(
            "/varde.v1.Query/CheckAccess",
            &request,
            request.auth.as_ref(),
            |unsigned| unsigned.auth = None,
        )?;
        let accessor = wire::org_number("accessor_org_number", &request.accessor_org_number)
            .map_err(invalid)?;
        let person = if request.accessor_hpr_number.is_empty() {
            None
        } else {
            Some(
                wire::hpr_number("accessor_hpr_number", &request.accessor_hpr_number)
                    .map_err(invalid)?,
            )
        };
        let record = wire::record_reference("record", request.record.clone()).map_err(invalid)?;
        let purpose = wire::purpose("purpose", request.purpose).map_err(invalid)?;
        let allowed_to_ask = caller.has_role(Role::Auditor)
            || caller.has_role(Role::ConsentAuthority)
            || caller.org_number == accessor
            || caller.org_number == record.custodian;
        if !allowed_to_ask {
            return Err(Status::permission_denied(
                "CheckAccess may be asked by the accessor, the record's custodian, a consent authority or an auditor",
            ));
        }
        let decision = self
            .context
            .ledger
            .check_access(
                AccessRequest {
                    accessor,
                    person,
                    record,
                    purpose,
                    at_unix_ms: 0,
                },
                (request.at_unix_ms != 0).then_some(request.at_unix_ms),
            )
            .map_err(internal)?;
        Ok(Response::new(v1::CheckAccessResponse {
            allowed: decision.allowed,
            reason: decision.reason,
            grant_id: decision
                .grant_used
                .map(|id| id.0.to_vec())
                .unwrap_or_default(),
            height: decision.height,
            emergency: decision.emergency,
        }))
    }
}

#[tonic::async_trait]
impl<S: Store + 'static> v1::node_server::Node for Api<S> {
    async fn status(
        &self,
        _request: Request<v1::StatusRequest>,
    ) -> Result<Response<v1::StatusResponse>, Status> {
        let head = self.context.ledger.head().map_err(internal)?;
        let metrics = &self.context.metrics;
        let summary = metrics.summary();
        let height = head.as_ref().map_or(0, |head| head.height);
        let sync_target_height = metrics.sync_target_height.get().max(0) as u64;
        let mempool_transactions = self.context.mempool.lock().expect("mempool lock").len() as u64;
        Ok(Response::new(v1::StatusResponse {
            chain_id: self.context.ledger.chain_id().to_owned(),
            node_public_key: self.context.node_public_key.to_vec(),
            height: head.as_ref().map_or(0, |head| head.height),
            latest_block_hash: head
                .as_ref()
                .map(|head| head.block_hash.to_vec())
                .unwrap_or_default(),
            latest_block_time_unix_ms: head.as_ref().map_or(0, |head| head.time_unix_ms),
            validator_count: self.context.ledger.membership().validator_keys().len() as u32,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            catching_up: sync_target_height > height,
            round: metrics.round.get().max(0) as u32,
            peers: metrics.peers.get().max(0) as u32,
            mempool_transactions,
            sync_target_height,
            rejected_transactions: summary.rejected.into_iter().collect(),
            commit_latency_p50_ms: summary.commit_latency_p50_ms,
            commit_latency_p99_ms: summary.commit_latency_p99_ms,
            blocks_committed: metrics.blocks_committed.get(),
            transactions_committed: metrics.transactions_committed.get(),
            invalid_peer_messages: summary.invalid_peer_messages,
            connections_refused: metrics.connections_refused.get(),
        }))
    }
}
