//! The calls of the Ledger service: submitting transactions, reading transactions and blocks,
//! proofs, the event stream, recorded misbehaviour and governance proposals.

use std::time::Duration;

use tonic::transport::Channel;
use varde_proto::v1;
use varde_proto::v1::ledger_client::LedgerClient;

use crate::tx::{Expiry, SignedEnvelope};
use crate::{Client, Error};

/// `/varde.v1.Ledger/Submit`.
pub const SUBMIT: &str = "/varde.v1.Ledger/Submit";
/// `/varde.v1.Ledger/SubmitAndWait`.
pub const SUBMIT_AND_WAIT: &str = "/varde.v1.Ledger/SubmitAndWait";
/// `/varde.v1.Ledger/GetTransaction`.
pub const GET_TRANSACTION: &str = "/varde.v1.Ledger/GetTransaction";
/// `/varde.v1.Ledger/GetBlock`.
pub const GET_BLOCK: &str = "/varde.v1.Ledger/GetBlock";
/// `/varde.v1.Ledger/GetInclusionProof`.
pub const GET_INCLUSION_PROOF: &str = "/varde.v1.Ledger/GetInclusionProof";
/// `/varde.v1.Ledger/GetConsistencyProof`.
pub const GET_CONSISTENCY_PROOF: &str = "/varde.v1.Ledger/GetConsistencyProof";
/// `/varde.v1.Ledger/GetCertifiedHeader`.
pub const GET_CERTIFIED_HEADER: &str = "/varde.v1.Ledger/GetCertifiedHeader";
/// `/varde.v1.Ledger/GetValidatorSets`.
pub const GET_VALIDATOR_SETS: &str = "/varde.v1.Ledger/GetValidatorSets";
/// `/varde.v1.Ledger/GetTransactionProof`.
pub const GET_TRANSACTION_PROOF: &str = "/varde.v1.Ledger/GetTransactionProof";
/// `/varde.v1.Ledger/GetConsistencyBundle`.
pub const GET_CONSISTENCY_BUNDLE: &str = "/varde.v1.Ledger/GetConsistencyBundle";
/// `/varde.v1.Ledger/StreamEvents`.
pub const STREAM_EVENTS: &str = "/varde.v1.Ledger/StreamEvents";
/// `/varde.v1.Ledger/ListMisbehaviour`.
pub const LIST_MISBEHAVIOUR: &str = "/varde.v1.Ledger/ListMisbehaviour";
/// `/varde.v1.Ledger/ListProposals`.
pub const LIST_PROPOSALS: &str = "/varde.v1.Ledger/ListProposals";
/// `/varde.v1.Ledger/GetProposal`.
pub const GET_PROPOSAL: &str = "/varde.v1.Ledger/GetProposal";

impl Client {
    fn ledger(&self) -> LedgerClient<Channel> {
        LedgerClient::new(self.channel().clone())
    }

    /// Ledger.Submit: hands a signed transaction to the node's mempool; it commits later (or
    /// expires). Resubmitting the same envelope is safe: the node refuses a duplicate.
    pub async fn submit(
        &self,
        transaction: impl Into<v1::SignedTransaction>,
    ) -> Result<v1::SubmitResponse, Error> {
        let request = v1::SubmitRequest {
            transaction: Some(transaction.into()),
        };
        let answer = self.ledger().submit(request).await;
        self.answer(SUBMIT, answer)
    }

    /// Ledger.SubmitAndWait: submits and waits up to `timeout` (whole milliseconds, at most
    /// what the node allows) for the commit and its receipt.
    pub async fn submit_and_wait(
        &self,
        transaction: impl Into<v1::SignedTransaction>,
        timeout: Duration,
    ) -> Result<v1::SubmitAndWaitResponse, Error> {
        let request = v1::SubmitAndWaitRequest {
            transaction: Some(transaction.into()),
            timeout_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
        };
        let answer = self.ledger().submit_and_wait(request).await;
        self.answer(SUBMIT_AND_WAIT, answer)
    }

    /// Ledger.GetTransaction (signed): a transaction's status, receipt and body, as far as the
    /// caller may see them.
    pub async fn get_transaction(
        &self,
        request: v1::GetTransactionRequest,
    ) -> Result<v1::GetTransactionResponse, Error> {
        let request = self.signed(request)?;
        let answer = self.ledger().get_transaction(request).await;
        self.answer(GET_TRANSACTION, answer)
    }

    /// Ledger.GetCertifiedHeader (signed): a header with its commit certificate (height 0: the
    /// latest), for [`crate::light::LightClient::verify_header`].
    pub async fn get_certified_header(&self, height: u64) -> Result<v1::CertifiedHeader, Error> {
        let request = self.signed(v1::GetCertifiedHeaderRequest { auth: None, height })?;
        let answer = self.ledger().get_certified_header(request).await;
        self.answer(GET_CERTIFIED_HEADER, answer)
    }

    /// Ledger.GetValidatorSets (signed): the validator-set history, for
    /// [`crate::light::LightClient::check_validator_sets`] (or all at once:
    /// [`Client::follow_validator_sets`]).
    pub async fn get_validator_sets(&self) -> Result<Vec<v1::ValidatorSetEntry>, Error> {
        let request = self.signed(v1::GetValidatorSetsRequest { auth: None })?;
        let answer = self.ledger().get_validator_sets(request).await;
        self.answer(GET_VALIDATOR_SETS, answer)
            .map(|response| response.sets)
    }

    /// Ledger.GetTransactionProof (signed): a bundle proving a committed transaction and its
    /// receipt against the header of `height` (0: the latest); check it with
    /// [`crate::light::LightClient::verify_bundle`].
    pub async fn get_transaction_proof(
        &self,
        transaction_id: &[u8],
        height: u64,
    ) -> Result<v1::ProofBundle, Error> {
        let request = self.signed(v1::GetTransactionProofRequest {
            auth: None,
            transaction_id: transaction_id.to_vec(),
            height,
        })?;
        let answer = self.ledger().get_transaction_proof(request).await;
        self.answer(GET_TRANSACTION_PROOF, answer)
    }

    /// Ledger.GetConsistencyBundle (signed): a bundle proving that the ledger of `first_size`
    /// transactions is a prefix of the ledger at `second_height` (0: the latest).
    pub async fn get_consistency_bundle(
        &self,
        first_size: u64,
        second_height: u64,
    ) -> Result<v1::ProofBundle, Error> {
        let request = self.signed(v1::GetConsistencyBundleRequest {
            auth: None,
            first_size,
            second_height,
        })?;
        let answer = self.ledger().get_consistency_bundle(request).await;
        self.answer(GET_CONSISTENCY_BUNDLE, answer)
    }

    /// Ledger.GetBlock (signed): a committed block's header, transactions and certificate.
    pub async fn get_block(
        &self,
        request: v1::GetBlockRequest,
    ) -> Result<v1::GetBlockResponse, Error> {
        let request = self.signed(request)?;
        let answer = self.ledger().get_block(request).await;
        self.answer(GET_BLOCK, answer)
    }

    /// Ledger.GetInclusionProof (signed): the audit path of a transaction in the ledger tree.
    pub async fn get_inclusion_proof(
        &self,
        request: v1::GetInclusionProofRequest,
    ) -> Result<v1::GetInclusionProofResponse, Error> {
        let request = self.signed(request)?;
        let answer = self.ledger().get_inclusion_proof(request).await;
        self.answer(GET_INCLUSION_PROOF, answer)
    }

    /// Ledger.GetConsistencyProof (signed): that the tree of one size is a prefix of another.
    pub async fn get_consistency_proof(
        &self,
        request: v1::GetConsistencyProofRequest,
    ) -> Result<v1::GetConsistencyProofResponse, Error> {
        let request = self.signed(request)?;
        let answer = self.ledger().get_consistency_proof(request).await;
        self.answer(GET_CONSISTENCY_PROOF, answer)
    }

    /// Ledger.StreamEvents (signed): committed events from a height on, filtered; read it with
    /// `message().await`.
    pub async fn stream_events(
        &self,
        request: v1::StreamEventsRequest,
    ) -> Result<tonic::Streaming<v1::LedgerEvent>, Error> {
        let request = self.signed(request)?;
        let answer = self.ledger().stream_events(request).await;
        self.answer(STREAM_EVENTS, answer)
    }

    /// Ledger.ListMisbehaviour (signed): a page of recorded validator misbehaviour.
    pub async fn list_misbehaviour(
        &self,
        request: v1::ListMisbehaviourRequest,
    ) -> Result<v1::ListMisbehaviourResponse, Error> {
        let request = self.signed(request)?;
        let answer = self.ledger().list_misbehaviour(request).await;
        self.answer(LIST_MISBEHAVIOUR, answer)
    }

    /// Ledger.ListProposals (signed): a page of governance proposals in the order they were
    /// proposed, with their approvals and status (EXPIRED judged at the answer's height).
    /// `page_size` 0 means the node's default (50); `page_token` is empty for the first page,
    /// else a previous answer's `next_page_token`.
    pub async fn list_proposals(
        &self,
        page_size: u32,
        page_token: impl Into<String>,
    ) -> Result<v1::ListProposalsResponse, Error> {
        let request = self.signed(v1::ListProposalsRequest {
            auth: None,
            page_size,
            page_token: page_token.into(),
        })?;
        let answer = self.ledger().list_proposals(request).await;
        self.answer(LIST_PROPOSALS, answer)
    }

    /// Ledger.GetProposal (signed): one governance proposal by its id (the transaction id of its
    /// ProposeChange, 32 bytes); NOT_FOUND for an unknown one.
    pub async fn get_proposal(&self, proposal_id: &[u8]) -> Result<v1::GetProposalResponse, Error> {
        let request = self.signed(v1::GetProposalRequest {
            auth: None,
            proposal_id: proposal_id.to_vec(),
        })?;
        let answer = self.ledger().get_proposal(request).await;
        self.answer(GET_PROPOSAL, answer)
    }

    /// An expiry `blocks` heights after the node's current height (Node.Status).
    pub async fn expiry_in_blocks(&self, blocks: u64) -> Result<Expiry, Error> {
        let height = self.status().await?.height;
        Ok(Expiry::At {
            height: height.saturating_add(blocks),
            unix_ms: 0,
        })
    }
}

impl From<SignedEnvelope> for v1::SignedTransaction {
    fn from(envelope: SignedEnvelope) -> Self {
        envelope.transaction
    }
}
