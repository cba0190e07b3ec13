//! Signed requests (scheme `varde-query-v2`, `varde_ledger::signing::sign_query`) and the calls
//! of the Query service.
//!
//! Every method that returns ledger content takes a request signed by a member's key: the
//! signature binds the chain id, the method, the request without its `auth`, the time and a
//! fresh nonce, so a node refuses a replayed or altered request. [`Credentials`] signs; the
//! typed calls of [`Client`] sign for the caller.

use ed25519_dalek::SigningKey;
use prost::Message;
use tonic::transport::Channel;
use varde_ledger::signing::{SignedRequest, SigningError};
use varde_proto::v1;
use varde_proto::v1::query_client::QueryClient;

use crate::{Client, Error};

/// The length of the random nonce of each signed request.
pub const NONCE_BYTES: usize = 16;

/// `/varde.v1.Query/GetRecord`.
pub const GET_RECORD: &str = "/varde.v1.Query/GetRecord";
/// `/varde.v1.Query/ListRecords`.
pub const LIST_RECORDS: &str = "/varde.v1.Query/ListRecords";
/// `/varde.v1.Query/ListGrants`.
pub const LIST_GRANTS: &str = "/varde.v1.Query/ListGrants";
/// `/varde.v1.Query/ListAccessEvents`.
pub const LIST_ACCESS_EVENTS: &str = "/varde.v1.Query/ListAccessEvents";
/// `/varde.v1.Query/ListAccessBlocks`.
pub const LIST_ACCESS_BLOCKS: &str = "/varde.v1.Query/ListAccessBlocks";
/// `/varde.v1.Query/CheckAccess`.
pub const CHECK_ACCESS: &str = "/varde.v1.Query/CheckAccess";
/// `/varde.v1.Query/ExportFhir`.
pub const EXPORT_FHIR: &str = "/varde.v1.Query/ExportFhir";
/// `/varde.v1.Query/GetStateProof`.
pub const GET_STATE_PROOF: &str = "/varde.v1.Query/GetStateProof";
/// The largest ExportFhir answer read: a Bundle at the export's limits (500 resources) takes
/// about 2.5 MiB.
pub const EXPORT_FHIR_ANSWER_BYTES_MAX: usize = 32 * 1024 * 1024;

/// A signed request type and the one gRPC method it is sent to.
pub trait Signed: SignedRequest {
    /// The full gRPC method, which the signature binds.
    const METHOD: &'static str;
}

macro_rules! signed_methods {
    ($($request:ident => $method:expr),* $(,)?) => {$(
        impl Signed for v1::$request {
            const METHOD: &'static str = $method;
        }
    )*};
}

signed_methods!(
    GetTransactionRequest => crate::ledger::GET_TRANSACTION,
    GetBlockRequest => crate::ledger::GET_BLOCK,
    GetInclusionProofRequest => crate::ledger::GET_INCLUSION_PROOF,
    GetConsistencyProofRequest => crate::ledger::GET_CONSISTENCY_PROOF,
    StreamEventsRequest => crate::ledger::STREAM_EVENTS,
    ListMisbehaviourRequest => crate::ledger::LIST_MISBEHAVIOUR,
    ListProposalsRequest => crate::ledger::LIST_PROPOSALS,
    GetProposalRequest => crate::ledger::GET_PROPOSAL,
    GetRecordRequest => GET_RECORD,
    ListRecordsRequest => LIST_RECORDS,
    ListGrantsRequest => LIST_GRANTS,
    ListAccessEventsRequest => LIST_ACCESS_EVENTS,
    ListAccessBlocksRequest => LIST_ACCESS_BLOCKS,
    CheckAccessRequest => CHECK_ACCESS,
    ExportFhirRequest => EXPORT_FHIR,
    GetStateProofRequest => GET_STATE_PROOF,
    GetCertifiedHeaderRequest => crate::ledger::GET_CERTIFIED_HEADER,
    GetValidatorSetsRequest => crate::ledger::GET_VALIDATOR_SETS,
    GetTransactionProofRequest => crate::ledger::GET_TRANSACTION_PROOF,
    GetConsistencyBundleRequest => crate::ledger::GET_CONSISTENCY_BUNDLE,
);

/// A member's key and the chain it signs for.
#[derive(Clone)]
pub struct Credentials {
    chain_id: String,
    key: SigningKey,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key stays out of logs; the public key says whose it is.
        formatter
            .debug_struct("Credentials")
            .field("chain_id", &self.chain_id)
            .field(
                "public_key",
                &varde_ledger::hex::encode(self.key.verifying_key().as_bytes()),
            )
            .finish()
    }
}

impl Credentials {
    /// `key` (a registered key of a member institution) signing for `chain_id`.
    pub fn new(chain_id: impl Into<String>, key: SigningKey) -> Self {
        Self {
            chain_id: chain_id.into(),
            key,
        }
    }

    /// The chain signed for.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// `request` with its `auth` set: signed now, for its method, with a fresh random nonce.
    pub fn sign<R: Signed>(&self, request: R) -> Result<R, SigningError> {
        self.sign_at(request, crate::now_unix_ms())
    }

    /// `request` with its `auth` set: signed at `signed_at_unix_ms` (the node accepts 5
    /// minutes either side of its clock), for its method, with a fresh random nonce.
    pub fn sign_at<R: Signed>(
        &self,
        mut request: R,
        signed_at_unix_ms: i64,
    ) -> Result<R, SigningError> {
        request.set_auth(None);
        let auth = self.authentication_at(R::METHOD, &request, signed_at_unix_ms)?;
        request.set_auth(Some(auth));
        Ok(request)
    }

    /// The `auth` for `request` (encoded without `auth`) sent to `method`, signed now with a
    /// fresh random nonce; for a method named at run time.
    pub fn authentication(
        &self,
        method: &str,
        request: &impl Message,
    ) -> Result<v1::RequestAuthentication, SigningError> {
        self.authentication_at(method, request, crate::now_unix_ms())
    }

    fn authentication_at(
        &self,
        method: &str,
        request: &impl Message,
        signed_at_unix_ms: i64,
    ) -> Result<v1::RequestAuthentication, SigningError> {
        varde_ledger::signing::sign_query(
            &self.chain_id,
            method,
            &self.key,
            signed_at_unix_ms,
            &rand::random::<[u8; NONCE_BYTES]>(),
            request,
        )
    }
}

impl Client {
    fn query(&self) -> QueryClient<Channel> {
        QueryClient::new(self.channel().clone())
    }

    /// Query.GetRecord: one record pointer, if the caller may see it.
    pub async fn get_record(
        &self,
        request: v1::GetRecordRequest,
    ) -> Result<v1::GetRecordResponse, Error> {
        let request = self.signed(request)?;
        let answer = self.query().get_record(request).await;
        self.answer(GET_RECORD, answer)
    }

    /// Query.ListRecords: a page of record pointers of a subject or a custodian.
    pub async fn list_records(
        &self,
        request: v1::ListRecordsRequest,
    ) -> Result<v1::ListRecordsResponse, Error> {
        let request = self.signed(request)?;
        let answer = self.query().list_records(request).await;
        self.answer(LIST_RECORDS, answer)
    }

    /// Query.ListGrants: a page of grants of a subject or to a grantee.
    pub async fn list_grants(
        &self,
        request: v1::ListGrantsRequest,
    ) -> Result<v1::ListGrantsResponse, Error> {
        let request = self.signed(request)?;
        let answer = self.query().list_grants(request).await;
        self.answer(LIST_GRANTS, answer)
    }

    /// Query.ListAccessEvents: a page of reads of a subject's records, of a record, or by an
    /// accessor.
    pub async fn list_access_events(
        &self,
        request: v1::ListAccessEventsRequest,
    ) -> Result<v1::ListAccessEventsResponse, Error> {
        let request = self.signed(request)?;
        let answer = self.query().list_access_events(request).await;
        self.answer(LIST_ACCESS_EVENTS, answer)
    }

    /// Query.ListAccessBlocks: a page of a subject's patient blocks (lifted ones too).
    pub async fn list_access_blocks(
        &self,
        request: v1::ListAccessBlocksRequest,
    ) -> Result<v1::ListAccessBlocksResponse, Error> {
        let request = self.signed(request)?;
        let answer = self.query().list_access_blocks(request).await;
        self.answer(LIST_ACCESS_BLOCKS, answer)
    }

    /// Query.CheckAccess: may this accessor read this record for this purpose, and on which
    /// grant, at which height.
    pub async fn check_access(
        &self,
        request: v1::CheckAccessRequest,
    ) -> Result<v1::CheckAccessResponse, Error> {
        let request = self.signed(request)?;
        let answer = self.query().check_access(request).await;
        self.answer(CHECK_ACCESS, answer)
    }

    /// Query.ExportFhir (signed): a FHIR R4 Bundle of what the caller may list, for a subject or
    /// a height range.
    pub async fn export_fhir(
        &self,
        request: v1::ExportFhirRequest,
    ) -> Result<v1::ExportFhirResponse, Error> {
        let request = self.signed(request)?;
        let answer = self
            .query()
            .max_decoding_message_size(EXPORT_FHIR_ANSWER_BYTES_MAX)
            .export_fhir(request)
            .await;
        self.answer(EXPORT_FHIR, answer)
    }

    /// Query.GetStateProof (signed): a bundle proving one record pointer, grant or patient
    /// block present with its value (or absent) against the latest certified header; check it
    /// with [`crate::light::LightClient::verify_bundle`].
    pub async fn get_state_proof(
        &self,
        entry: v1::get_state_proof_request::Entry,
    ) -> Result<v1::ProofBundle, Error> {
        let request = self.signed(v1::GetStateProofRequest {
            auth: None,
            entry: Some(entry),
        })?;
        let answer = self.query().get_state_proof(request).await;
        self.answer(GET_STATE_PROOF, answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The signature verifies with the ledger's own verifier over the request without auth, is
    // bound to the request type's method, and carries a fresh nonce each time.
    #[test]
    fn signatures_verify_with_the_ledger() {
        let credentials = Credentials::new("varde-test", SigningKey::from_bytes(&[5; 32]));
        let request = v1::CheckAccessRequest {
            accessor_org_number: "983974899".into(),
            record: Some(v1::RecordReference {
                custodian_org_number: "974760673".into(),
                record_id: "R-1".into(),
            }),
            purpose: v1::PurposeOfUse::Treat as i32,
            ..Default::default()
        };
        let signed = credentials.sign_at(request.clone(), 77).unwrap();
        let auth = signed.auth.clone().unwrap();
        assert_eq!(auth.signed_at_unix_ms, 77);
        let bytes = signed.unsigned_bytes();
        assert_eq!(bytes, request.encode_to_vec());
        varde_ledger::signing::verify_query("varde-test", CHECK_ACCESS, &auth, &bytes).unwrap();
        assert!(
            varde_ledger::signing::verify_query("varde-test", GET_RECORD, &auth, &bytes).is_err()
        );
        let again = credentials.sign_at(signed, 77).unwrap();
        assert_ne!(again.auth.unwrap().nonce, auth.nonce);
    }

    // Debug output names the chain and the public key, never the private key.
    #[test]
    fn debug_hides_the_private_key() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let text = format!("{:?}", Credentials::new("varde-test", key.clone()));
        assert!(!text.contains(&varde_ledger::hex::encode(&key.to_bytes())));
        assert!(text.contains("varde-test"));
    }
}
