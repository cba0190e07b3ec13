//! Signatures verified once per node: `check_envelope` with `signature_verified` gives the same
//! transaction as full verification, and without it a bad signature is still refused.

use ed25519_dalek::SigningKey;
use prost::Message;
use varde_ledger::signing::{sign_transaction, signing_digest};
use varde_ledger::wire::{TransactionError, check_envelope, verify_envelope};
use varde_proto::v1;

const CHAIN: &str = "varde-test";

fn transaction() -> v1::SignedTransaction {
    let body = v1::TransactionBody {
        chain_id: CHAIN.to_owned(),
        expires_at_height: 10,
        expires_at_unix_ms: 0,
        nonce: vec![1],
        action: Some(v1::transaction_body::Action::RevokeGrant(v1::RevokeGrant {
            issuer_org_number: "983544622".to_owned(),
            grant_id: vec![7; 32],
            reason: "test".to_owned(),
        })),
    };
    sign_transaction(CHAIN, &SigningKey::from_bytes(&[3; 32]), &body).unwrap()
}

// A precheck-skipped envelope yields the same id, signer and body as a verified one.
#[test]
fn prechecked_envelope_matches_full_verification() {
    let envelope = transaction();
    let verified = verify_envelope(CHAIN, envelope.clone()).unwrap();
    let prechecked = check_envelope(CHAIN, envelope.clone(), true).unwrap();
    assert_eq!(prechecked.id, verified.id);
    assert_eq!(prechecked.signer, verified.signer);
    let key: [u8; 32] = envelope.signer_public_key.as_slice().try_into().unwrap();
    assert_eq!(
        signing_digest(CHAIN, &key, &envelope.body).unwrap(),
        verified.id
    );
    assert_eq!(
        prechecked.envelope.encode_to_vec(),
        verified.envelope.encode_to_vec()
    );
}

// Without the precheck a corrupted signature is refused; with it, only the caller's word stands,
// which is why the node marks only envelopes it admitted byte for byte.
#[test]
fn unverified_bad_signature_is_still_refused() {
    let mut envelope = transaction();
    envelope.signature[0] ^= 1;
    assert!(matches!(
        check_envelope(CHAIN, envelope.clone(), false),
        Err(TransactionError::Signature(_))
    ));
    assert!(check_envelope(CHAIN, envelope, true).is_ok());
}
