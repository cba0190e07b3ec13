//! `varde.v1.Ledger`: submissions, and the reads of transactions, blocks, proofs, events and
//! recorded misbehaviour, each through the visibility rule.

use std::time::Duration;

use tonic::{Request, Response, Status};
use varde_ledger::accumulator;
use varde_ledger::proof::{self, BundleError};
use varde_ledger::signing::TransactionId;
use varde_ledger::state::StateView;
use varde_ledger::visibility::Viewer;
use varde_ledger::wire;
use varde_proto::v1;
use varde_storage::Store;

use super::events::EventStream;
use super::{
    Api, SUBMIT_WAIT_DEFAULT, SUBMIT_WAIT_MAX, admission_status, internal, query_status,
    redacted_receipt, transaction_id,
};
use crate::context::now_unix_ms;

impl<S: Store + 'static> Api<S> {
    /// The id a submitted envelope would have (its signing digest), to register a wait before
    /// admission; `None` when it has none (admission then refuses it, with its own words).
    fn submitted_id(&self, transaction: Option<&v1::SignedTransaction>) -> Option<TransactionId> {
        let envelope = transaction?;
        let signer = <[u8; 32]>::try_from(envelope.signer_public_key.as_slice()).ok()?;
        varde_ledger::signing::signing_digest(
            self.context.ledger.chain_id(),
            &signer,
            &envelope.body,
        )
        .ok()
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
}

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
        let transaction = request.transaction;
        let Some(id) = self.submitted_id(transaction.as_ref()) else {
            return match self.admit(transaction) {
                Err(status) => Err(status),
                Ok(_) => Err(internal("admitted a transaction without a signing digest")),
            };
        };
        // Registered before admission, so that a commit right after admission is not missed.
        let mut waiter = self.context.commit_waiters.register(id);
        match self.admit(transaction) {
            Ok(admitted) if admitted == id => {}
            Ok(_) => {
                return Err(internal(
                    "admission gave another id than the signing digest",
                ));
            }
            // A retry of a submitted transaction waits for it (SubmitAndWait is retryable).
            Err(status) if status.code() == tonic::Code::AlreadyExists => {
                if let Some((receipt, _)) = self.committed_transaction(&id)? {
                    return Ok(Response::new(v1::SubmitAndWaitResponse {
                        transaction_id: id.0.to_vec(),
                        receipt: Some(wire::receipt_to_wire(&receipt)),
                    }));
                }
            }
            Err(status) => return Err(status),
        }
        let stopped = self.stopped();
        let wait_for_commit = async {
            tokio::select! {
                _ = stopped => Err(Status::unavailable(
                    "the node is shutting down; query the transaction later with GetTransaction",
                )),
                receipt = waiter.committed() => receipt
                    .map(|receipt| wire::receipt_to_wire(&receipt))
                    .ok_or_else(|| Status::unavailable(
                        "the node is shutting down; query the transaction later with GetTransaction",
                    )),
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
        let request = request.into_inner();
        let caller = self.authenticate("/varde.v1.Ledger/GetTransaction", &request)?;
        let id = transaction_id(&request.transaction_id)?;
        let viewer = Viewer::new(&caller, now_unix_ms());
        if let Some((receipt, envelope)) = self.committed_transaction(&id)? {
            let visible = match &envelope {
                Some(envelope) => self.may_see_envelope(&viewer, envelope, Some(&receipt))?,
                None => false,
            };
            let wire_receipt = wire::receipt_to_wire(&receipt);
            return Ok(Response::new(v1::GetTransactionResponse {
                status: v1::TransactionStatus::Committed as i32,
                receipt: Some(if visible {
                    wire_receipt
                } else {
                    redacted_receipt(wire_receipt)
                }),
                transaction: envelope.filter(|_| visible),
                withheld: !visible,
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
            Some(transaction) => {
                let visible = self.may_see_envelope(&viewer, &transaction, None)?;
                v1::GetTransactionResponse {
                    status: v1::TransactionStatus::Pending as i32,
                    receipt: None,
                    transaction: visible.then_some(transaction),
                    withheld: !visible,
                }
            }
            None => v1::GetTransactionResponse {
                status: v1::TransactionStatus::Unknown as i32,
                receipt: None,
                transaction: None,
                withheld: false,
            },
        }))
    }

    async fn get_block(
        &self,
        request: Request<v1::GetBlockRequest>,
    ) -> Result<Response<v1::GetBlockResponse>, Status> {
        let request = request.into_inner();
        let caller = self.authenticate("/varde.v1.Ledger/GetBlock", &request)?;
        let mut height = request.height;
        if height == 0 {
            height = self.height()?;
            if height == 0 {
                return Err(Status::not_found("no block is committed yet"));
            }
        }
        let block = self.block_at(height)?.ok_or_else(|| {
            Status::not_found(format!("no block at height {height}; the chain is shorter"))
        })?;
        let viewer = Viewer::new(&caller, now_unix_ms());
        let mut transactions = Vec::with_capacity(block.transactions.len());
        for (index, envelope) in block.transactions.into_iter().enumerate() {
            let index = index as u32;
            let receipt = self
                .receipt_at(height, index)?
                .ok_or_else(|| internal(format!("no receipt at height {height} index {index}")))?;
            let visible = self.may_see_envelope(&viewer, &envelope, Some(&receipt))?;
            let wire_receipt = wire::receipt_to_wire(&receipt);
            transactions.push(v1::BlockTransaction {
                transaction_id: receipt.transaction_id.0.to_vec(),
                index,
                receipt: Some(if visible {
                    wire_receipt
                } else {
                    redacted_receipt(wire_receipt)
                }),
                transaction: visible.then_some(envelope),
                withheld: !visible,
            });
        }
        Ok(Response::new(v1::GetBlockResponse {
            header: block.header,
            transactions,
            certificate: self.certificate_at(height)?,
        }))
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<v1::GetInclusionProofRequest>,
    ) -> Result<Response<v1::GetInclusionProofResponse>, Status> {
        let request = request.into_inner();
        self.authenticate("/varde.v1.Ledger/GetInclusionProof", &request)?;
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
        // Leaves are every transaction of every block in order: the leaf index is the tree size
        // after the block before plus the index in the block.
        let before = accumulator::size_at_height(&view, receipt.height - 1)
            .map_err(internal)?
            .ok_or_else(|| internal("the tree size of a committed height is missing"))?;
        let leaf_index = before + u64::from(receipt.index);
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
            receipt_hash: proof::receipt_hash(&wire::receipt_to_wire(&receipt)).to_vec(),
        }))
    }

    async fn get_certified_header(
        &self,
        request: Request<v1::GetCertifiedHeaderRequest>,
    ) -> Result<Response<v1::CertifiedHeader>, Status> {
        let request = request.into_inner();
        self.authenticate("/varde.v1.Ledger/GetCertifiedHeader", &request)?;
        let head = self.height()?;
        let height = if request.height == 0 {
            head
        } else {
            request.height
        };
        if height == 0 {
            return Err(Status::not_found("no block is committed yet"));
        }
        proof::certified_header(&self.context.ledger, height)
            .map_err(bundle_status)?
            .map(Response::new)
            .ok_or_else(|| {
                Status::not_found(format!(
                    "no certified block at height {height}; the chain is at {head}"
                ))
            })
    }

    async fn get_validator_sets(
        &self,
        request: Request<v1::GetValidatorSetsRequest>,
    ) -> Result<Response<v1::GetValidatorSetsResponse>, Status> {
        let request = request.into_inner();
        self.authenticate("/varde.v1.Ledger/GetValidatorSets", &request)?;
        Ok(Response::new(v1::GetValidatorSetsResponse {
            sets: proof::validator_set_history(&self.context.ledger).map_err(internal)?,
        }))
    }

    async fn get_transaction_proof(
        &self,
        request: Request<v1::GetTransactionProofRequest>,
    ) -> Result<Response<v1::ProofBundle>, Status> {
        let request = request.into_inner();
        let caller = self.authenticate("/varde.v1.Ledger/GetTransactionProof", &request)?;
        let id = transaction_id(&request.transaction_id)?;
        let viewer = Viewer::new(&caller, now_unix_ms());
        let Some((receipt, envelope)) = self.committed_transaction(&id)? else {
            return Err(Status::not_found(format!(
                "transaction {id} is not committed"
            )));
        };
        let visible = match &envelope {
            Some(envelope) => self.may_see_envelope(&viewer, envelope, Some(&receipt))?,
            None => false,
        };
        proof::transaction_bundle(&self.context.ledger, &id, request.height, visible)
            .map(Response::new)
            .map_err(bundle_status)
    }

    async fn get_consistency_bundle(
        &self,
        request: Request<v1::GetConsistencyBundleRequest>,
    ) -> Result<Response<v1::ProofBundle>, Status> {
        let request = request.into_inner();
        self.authenticate("/varde.v1.Ledger/GetConsistencyBundle", &request)?;
        proof::consistency_bundle(
            &self.context.ledger,
            request.first_size,
            request.second_height,
        )
        .map(Response::new)
        .map_err(bundle_status)
    }

    async fn get_consistency_proof(
        &self,
        request: Request<v1::GetConsistencyProofRequest>,
    ) -> Result<Response<v1::GetConsistencyProofResponse>, Status> {
        let request = request.into_inner();
        self.authenticate("/varde.v1.Ledger/GetConsistencyProof", &request)?;
        let view = StateView::new(self.context.ledger.store());
        let size = accumulator::size(&view).map_err(internal)?;
        let second_size = if request.second_size == 0 {
            size
        } else {
            request.second_size
        };
        let proof = accumulator::consistency_proof(&view, request.first_size, second_size)
            .map_err(internal)?
            .ok_or_else(|| {
                Status::invalid_argument(format!(
                    "fields `first_size` and `second_size` must satisfy first_size <= second_size <= {size} (the ledger size)"
                ))
            })?;
        let first_root = accumulator::root_at(&view, proof.first_size).map_err(internal)?;
        let second_root = accumulator::root_at(&view, proof.second_size).map_err(internal)?;
        Ok(Response::new(v1::GetConsistencyProofResponse {
            first_size: proof.first_size,
            second_size: proof.second_size,
            path: proof.path.iter().map(|hash| hash.to_vec()).collect(),
            first_root: first_root.to_vec(),
            second_root: second_root.to_vec(),
        }))
    }

    type StreamEventsStream = EventStream;

    async fn stream_events(
        &self,
        request: Request<v1::StreamEventsRequest>,
    ) -> Result<Response<Self::StreamEventsStream>, Status> {
        let request = request.into_inner();
        let caller = self.authenticate("/varde.v1.Ledger/StreamEvents", &request)?;
        let stream = self.event_stream(request, caller)?;
        Ok(Response::new(stream))
    }

    async fn list_misbehaviour(
        &self,
        request: Request<v1::ListMisbehaviourRequest>,
    ) -> Result<Response<v1::ListMisbehaviourResponse>, Status> {
        let request = request.into_inner();
        let method = "/varde.v1.Ledger/ListMisbehaviour";
        let caller = self.authenticate(method, &request)?;
        let height = self.height()?;
        let scope = super::query_service::page_scope(&caller, method, 0, &[]);
        let page = self
            .context
            .ledger
            .list_misbehaviour(self.page_request(request.page_size, &request.page_token, &scope))
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

    async fn list_proposals(
        &self,
        request: Request<v1::ListProposalsRequest>,
    ) -> Result<Response<v1::ListProposalsResponse>, Status> {
        let request = request.into_inner();
        let method = "/varde.v1.Ledger/ListProposals";
        let caller = self.authenticate(method, &request)?;
        let height = self.height()?;
        let scope = super::query_service::page_scope(&caller, method, 0, &[]);
        let page = self
            .context
            .ledger
            .list_proposals(self.page_request(request.page_size, &request.page_token, &scope))
            .map_err(query_status)?;
        Ok(Response::new(v1::ListProposalsResponse {
            proposals: page
                .items
                .iter()
                .map(|proposal| proposal.to_wire_at(height))
                .collect(),
            next_page_token: page.next_page_token,
            height,
        }))
    }

    async fn get_proposal(
        &self,
        request: Request<v1::GetProposalRequest>,
    ) -> Result<Response<v1::GetProposalResponse>, Status> {
        let request = request.into_inner();
        self.authenticate("/varde.v1.Ledger/GetProposal", &request)?;
        let id = <[u8; 32]>::try_from(request.proposal_id.as_slice()).map_err(|_| {
            Status::invalid_argument(format!(
                "proposal_id must be 32 bytes, got {}",
                request.proposal_id.len()
            ))
        })?;
        let height = self.height()?;
        let proposal = self
            .context
            .ledger
            .proposal(&varde_ledger::signing::TransactionId(id))
            .map_err(internal)?
            .ok_or_else(|| Status::not_found("no governance proposal has this id"))?;
        Ok(Response::new(v1::GetProposalResponse {
            proposal: Some(proposal.to_wire_at(height)),
            height,
        }))
    }
}

/// A proof request the ledger cannot answer: the caller's mistake, or the node's.
pub(super) fn bundle_status(error: BundleError) -> Status {
    match error {
        BundleError::NotCommitted(_) | BundleError::NoSuchHeight { .. } => {
            Status::not_found(error.to_string())
        }
        BundleError::CommittedLater { .. }
        | BundleError::NoBlockAtSize { .. }
        | BundleError::SizesOutOfOrder { .. } => Status::invalid_argument(error.to_string()),
        BundleError::Ledger(error) => internal(error),
    }
}
