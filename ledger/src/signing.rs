//! The `varde-tx-v1` signing scheme (specified in `proto/proto/varde/v1/transaction.proto`), the
//! `varde-query-v2` request authentication (`query_service.proto`), and helpers that build signed
//! transactions.
//!
//! signing_digest = SHA-256("varde-tx-v1" || 0x00 || u16be(len chain_id) || chain_id
//!                          || signer public key (32) || body bytes as sent);
//! signature = pure Ed25519 over the digest; transaction id = the digest.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use prost::Message;
use sha2::{Digest, Sha256};
use varde_consensus::Evidence;
use varde_proto::v1;

use crate::{consensus_wire, hex};

/// Domain separator of transaction signatures.
pub const TRANSACTION_DOMAIN: &[u8] = b"varde-tx-v1";
/// Domain separator of query request signatures.
pub const QUERY_DOMAIN: &[u8] = b"varde-query-v2";

/// A transaction id: the 32-byte signing digest.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct TransactionId(pub [u8; 32]);

impl TransactionId {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }
}

impl std::fmt::Debug for TransactionId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "TransactionId({})", self.to_hex())
    }
}

impl std::fmt::Display for TransactionId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.to_hex())
    }
}

/// Why a signature or a signing input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    #[error("the chain id is {length} bytes long; at most 65535 fit the scheme")]
    ChainIdTooLong { length: usize },
    #[error("the signer public key must be 32 bytes, got {length}")]
    PublicKeyLength { length: usize },
    #[error("the signer public key is not a valid Ed25519 point")]
    PublicKeyInvalid,
    #[error("the signature must be 64 bytes, got {length}")]
    SignatureLength { length: usize },
    #[error("the signature does not verify (strict Ed25519) for this chain, key and body")]
    SignatureInvalid,
    #[error("the query nonce must be 16 to 32 bytes, got {length}")]
    NonceLength { length: usize },
}

fn length_prefix(bytes: &[u8]) -> Result<[u8; 2], SigningError> {
    u16::try_from(bytes.len())
        .map(u16::to_be_bytes)
        .map_err(|_| SigningError::ChainIdTooLong {
            length: bytes.len(),
        })
}

/// The signing digest of `body` for `chain_id` and `signer_public_key`; also the transaction id.
pub fn signing_digest(
    chain_id: &str,
    signer_public_key: &[u8; 32],
    body: &[u8],
) -> Result<TransactionId, SigningError> {
    let mut hasher = Sha256::new();
    hasher.update(TRANSACTION_DOMAIN);
    hasher.update([0u8]);
    hasher.update(length_prefix(chain_id.as_bytes())?);
    hasher.update(chain_id.as_bytes());
    hasher.update(signer_public_key);
    hasher.update(body);
    Ok(TransactionId(hasher.finalize().into()))
}

/// A signed transaction's parts: what goes into `SignedTransaction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedParts {
    pub transaction_id: TransactionId,
    pub signer_public_key: [u8; 32],
    pub signature: [u8; 64],
}

/// Signs `body` for `chain_id` with `signing_key`.
pub fn sign(
    chain_id: &str,
    signing_key: &SigningKey,
    body: &[u8],
) -> Result<SignedParts, SigningError> {
    let signer_public_key = signing_key.verifying_key().to_bytes();
    let transaction_id = signing_digest(chain_id, &signer_public_key, body)?;
    let signature = signing_key.sign(transaction_id.as_bytes()).to_bytes();
    Ok(SignedParts {
        transaction_id,
        signer_public_key,
        signature,
    })
}

/// Encodes `body` and signs it for `chain_id` into the envelope a node accepts.
pub fn sign_transaction(
    chain_id: &str,
    signing_key: &SigningKey,
    body: &v1::TransactionBody,
) -> Result<v1::SignedTransaction, SigningError> {
    let body = body.encode_to_vec();
    let parts = sign(chain_id, signing_key, &body)?;
    Ok(v1::SignedTransaction {
        body,
        signer_public_key: parts.signer_public_key.to_vec(),
        signature: parts.signature.to_vec(),
    })
}

/// A `ReportMisbehaviour` transaction for `evidence`, signed with a validator institution's
/// `signing_key`; it may be included up to `expires_at_height`. `nonce` (at most 32 bytes) tells
/// apart reports that would otherwise be identical transactions.
pub fn sign_misbehaviour_report(
    chain_id: &str,
    signing_key: &SigningKey,
    evidence: &Evidence,
    expires_at_height: u64,
    nonce: &[u8],
) -> Result<v1::SignedTransaction, SigningError> {
    let body = v1::TransactionBody {
        chain_id: chain_id.to_owned(),
        expires_at_height,
        expires_at_unix_ms: 0,
        nonce: nonce.to_vec(),
        action: Some(v1::transaction_body::Action::ReportMisbehaviour(
            v1::ReportMisbehaviour {
                evidence: Some(consensus_wire::evidence_to_wire(evidence)),
            },
        )),
    };
    sign_transaction(chain_id, signing_key, &body)
}

/// The id of an envelope (its signing digest), or `None` when its signer key is not 32 bytes or
/// its chain id too long to sign. Does not verify the signature.
pub fn envelope_id(chain_id: &str, envelope: &v1::SignedTransaction) -> Option<TransactionId> {
    let key = <&[u8; 32]>::try_from(envelope.signer_public_key.as_slice()).ok()?;
    signing_digest(chain_id, key, &envelope.body).ok()
}

/// The id and key of a transaction whose signature this node has already verified strictly (at
/// admission, over the same bytes): the checks of [`verify_strict`] but the curve arithmetic.
pub fn id_of_verified(
    chain_id: &str,
    signer_public_key: &[u8],
    body: &[u8],
) -> Result<(TransactionId, VerifyingKey), SigningError> {
    let key_bytes =
        <[u8; 32]>::try_from(signer_public_key).map_err(|_| SigningError::PublicKeyLength {
            length: signer_public_key.len(),
        })?;
    let verifying_key =
        VerifyingKey::from_bytes(&key_bytes).map_err(|_| SigningError::PublicKeyInvalid)?;
    Ok((signing_digest(chain_id, &key_bytes, body)?, verifying_key))
}

/// Verifies a transaction's signature strictly and returns its id and the signer's key.
pub fn verify_strict(
    chain_id: &str,
    signer_public_key: &[u8],
    signature: &[u8],
    body: &[u8],
) -> Result<(TransactionId, VerifyingKey), SigningError> {
    let signature_bytes =
        <[u8; 64]>::try_from(signature).map_err(|_| SigningError::SignatureLength {
            length: signature.len(),
        })?;
    let (transaction_id, verifying_key) = id_of_verified(chain_id, signer_public_key, body)?;
    verifying_key
        .verify_strict(
            transaction_id.as_bytes(),
            &Signature::from_bytes(&signature_bytes),
        )
        .map_err(|_| SigningError::SignatureInvalid)?;
    Ok((transaction_id, verifying_key))
}

/// The shortest and longest nonce of a signed query.
pub const QUERY_NONCE_BYTES_MIN: usize = 16;
pub const QUERY_NONCE_BYTES_MAX: usize = 32;

/// The digest a query caller signs (`varde-query-v2`, see `query_service.proto`). `request_bytes`
/// is the request encoded without its `auth` field.
pub fn query_digest(
    chain_id: &str,
    method: &str,
    signed_at_unix_ms: i64,
    nonce: &[u8],
    caller_public_key: &[u8; 32],
    request_bytes: &[u8],
) -> Result<[u8; 32], SigningError> {
    if !(QUERY_NONCE_BYTES_MIN..=QUERY_NONCE_BYTES_MAX).contains(&nonce.len()) {
        return Err(SigningError::NonceLength {
            length: nonce.len(),
        });
    }
    let mut hasher = Sha256::new();
    hasher.update(QUERY_DOMAIN);
    hasher.update([0u8]);
    hasher.update(length_prefix(chain_id.as_bytes())?);
    hasher.update(chain_id.as_bytes());
    hasher.update(length_prefix(method.as_bytes())?);
    hasher.update(method.as_bytes());
    hasher.update(signed_at_unix_ms.to_be_bytes());
    hasher.update([nonce.len() as u8]);
    hasher.update(nonce);
    hasher.update(caller_public_key);
    hasher.update(request_bytes);
    Ok(hasher.finalize().into())
}

/// Signs `request` (whose `auth` field is unset) for `method` with `key`: the `auth` value to put
/// in it. `nonce` must be fresh for every request (16 to 32 random bytes).
pub fn sign_query(
    chain_id: &str,
    method: &str,
    key: &SigningKey,
    signed_at_unix_ms: i64,
    nonce: &[u8],
    request: &impl Message,
) -> Result<v1::RequestAuthentication, SigningError> {
    let caller_public_key = key.verifying_key().to_bytes();
    let digest = query_digest(
        chain_id,
        method,
        signed_at_unix_ms,
        nonce,
        &caller_public_key,
        &request.encode_to_vec(),
    )?;
    Ok(v1::RequestAuthentication {
        caller_public_key: caller_public_key.to_vec(),
        signed_at_unix_ms,
        signature: key.sign(&digest).to_bytes().to_vec(),
        nonce: nonce.to_vec(),
    })
}

/// A request that carries `auth` (always field 1) and is signed per varde-query-v2.
pub trait SignedRequest: Message + Clone {
    fn auth(&self) -> Option<&v1::RequestAuthentication>;
    fn set_auth(&mut self, auth: Option<v1::RequestAuthentication>);

    /// What is signed: the request encoded with its `auth` left unset.
    fn unsigned_bytes(&self) -> Vec<u8> {
        let mut unsigned = self.clone();
        unsigned.set_auth(None);
        unsigned.encode_to_vec()
    }
}

macro_rules! signed_requests {
    ($($request:ident),* $(,)?) => {$(
        impl SignedRequest for v1::$request {
            fn auth(&self) -> Option<&v1::RequestAuthentication> {
                self.auth.as_ref()
            }
            fn set_auth(&mut self, auth: Option<v1::RequestAuthentication>) {
                self.auth = auth;
            }
        }
    )*};
}

signed_requests!(
    GetTransactionRequest,
    GetBlockRequest,
    GetInclusionProofRequest,
    GetConsistencyProofRequest,
    GetCertifiedHeaderRequest,
    GetValidatorSetsRequest,
    GetTransactionProofRequest,
    GetConsistencyBundleRequest,
    StreamEventsRequest,
    ListMisbehaviourRequest,
    ListProposalsRequest,
    GetProposalRequest,
    GetRecordRequest,
    ListRecordsRequest,
    ListGrantsRequest,
    ListAccessEventsRequest,
    ListAccessBlocksRequest,
    CheckAccessRequest,
    ExportFhirRequest,
    GetStateProofRequest,
);

/// Verifies a query request's signature strictly; `request_bytes` is the request encoded
/// without its `auth` field.
pub fn verify_query(
    chain_id: &str,
    method: &str,
    auth: &v1::RequestAuthentication,
    request_bytes: &[u8],
) -> Result<VerifyingKey, SigningError> {
    let key_bytes = <[u8; 32]>::try_from(auth.caller_public_key.as_slice()).map_err(|_| {
        SigningError::PublicKeyLength {
            length: auth.caller_public_key.len(),
        }
    })?;
    let signature_bytes = <[u8; 64]>::try_from(auth.signature.as_slice()).map_err(|_| {
        SigningError::SignatureLength {
            length: auth.signature.len(),
        }
    })?;
    let verifying_key =
        VerifyingKey::from_bytes(&key_bytes).map_err(|_| SigningError::PublicKeyInvalid)?;
    let digest = query_digest(
        chain_id,
        method,
        auth.signed_at_unix_ms,
        &auth.nonce,
        &key_bytes,
        request_bytes,
    )?;
    verifying_key
        .verify_strict(&digest, &Signature::from_bytes(&signature_bytes))
        .map_err(|_| SigningError::SignatureInvalid)?;
    Ok(verifying_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    // The digest is exactly SHA-256 over the documented concatenation.
    #[test]
    fn digest_matches_the_written_layout() {
        let public_key = key(1).verifying_key().to_bytes();
        let mut expected_input = b"varde-tx-v1\x00\x00\x05chain".to_vec();
        expected_input.extend_from_slice(&public_key);
        expected_input.extend_from_slice(b"body");
        let expected: [u8; 32] = Sha256::digest(&expected_input).into();
        assert_eq!(
            signing_digest("chain", &public_key, b"body").unwrap().0,
            expected
        );
    }

    // A signature verifies for its chain and body, and fails for another chain, body or key.
    #[test]
    fn signature_binds_chain_body_and_key() {
        let parts = sign("varde-a", &key(1), b"body").unwrap();
        let (id, _) = verify_strict(
            "varde-a",
            &parts.signer_public_key,
            &parts.signature,
            b"body",
        )
        .unwrap();
        assert_eq!(id, parts.transaction_id);
        assert_eq!(
            verify_strict(
                "varde-b",
                &parts.signer_public_key,
                &parts.signature,
                b"body"
            ),
            Err(SigningError::SignatureInvalid)
        );
        assert_eq!(
            verify_strict(
                "varde-a",
                &parts.signer_public_key,
                &parts.signature,
                b"bodY"
            ),
            Err(SigningError::SignatureInvalid)
        );
        let other = key(2).verifying_key().to_bytes();
        assert_eq!(
            verify_strict("varde-a", &other, &parts.signature, b"body"),
            Err(SigningError::SignatureInvalid)
        );
    }

    // Wrong lengths and a small-order public key are refused without panicking.
    #[test]
    fn malformed_keys_and_signatures_are_refused() {
        let parts = sign("c", &key(3), b"x").unwrap();
        assert_eq!(
            verify_strict("c", &[0u8; 31], &parts.signature, b"x"),
            Err(SigningError::PublicKeyLength { length: 31 })
        );
        assert_eq!(
            verify_strict("c", &parts.signer_public_key, &[0u8; 63], b"x"),
            Err(SigningError::SignatureLength { length: 63 })
        );
        // The identity point (small order): strict verification refuses it for any signature.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut forged = [0u8; 64];
        forged[0] = 1;
        assert!(verify_strict("c", &identity, &forged, b"x").is_err());
        // A chain id longer than the u16 length prefix allows.
        let long = "x".repeat(70_000);
        assert_eq!(
            signing_digest(&long, &parts.signer_public_key, b"x"),
            Err(SigningError::ChainIdTooLong { length: 70_000 })
        );
    }

    // A query signature verifies for its method, time and nonce, and fails when any changes.
    #[test]
    fn query_signature_binds_method_time_and_nonce() {
        let signing_key = key(4);
        let request = v1::GetBlockRequest {
            auth: None,
            height: 7,
        };
        let nonce = [9u8; 16];
        let method = "/varde.v1.Ledger/GetBlock";
        let auth = sign_query("c", method, &signing_key, 1_000, &nonce, &request).unwrap();
        let bytes = request.encode_to_vec();
        assert!(verify_query("c", method, &auth, &bytes).is_ok());
        assert!(verify_query("c", "/varde.v1.Query/GetRecord", &auth, &bytes).is_err());
        assert!(verify_query("other", method, &auth, &bytes).is_err());
        assert!(verify_query("c", method, &auth, b"other request").is_err());
        let mut later = auth.clone();
        later.signed_at_unix_ms += 1;
        assert!(verify_query("c", method, &later, &bytes).is_err());
        let mut renonced = auth.clone();
        renonced.nonce[0] ^= 1;
        assert!(verify_query("c", method, &renonced, &bytes).is_err());
        let mut short = auth;
        short.nonce.truncate(15);
        assert_eq!(
            verify_query("c", method, &short, &bytes),
            Err(SigningError::NonceLength { length: 15 })
        );
    }
}
