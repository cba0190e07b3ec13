//! A proof bundle file, as `varde verify --bundle` checks it: `LightClient::verify_bundle` over
//! the fuzz chain's genesis (one validator, so one precommit certifies a header). Any input may be
//! refused, none may panic; an accepted bundle must be in its canonical encoding (so that a
//! changed seed can only pass by being another canonical bundle, and every field is bound by a
//! signature or a hash), and what it proved must agree with the bundle's own headers.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use varde_fuzz::{CHAIN_ID, genesis};
use varde_ledger::proof::{LightClient, VerifiedClaim, VerifiedHeader};
use varde_proto::v1;

static CLIENT: LazyLock<LightClient> = LazyLock::new(|| {
    LightClient::from_genesis(&genesis()).expect("the fuzz genesis makes a light client")
});

/// A verified header is the bundle's header at its position, certified by its height's set.
fn check_header(verified: &VerifiedHeader, certified: &v1::CertifiedHeader) {
    let header = certified
        .header
        .as_ref()
        .expect("a verified header is present");
    let certificate = certified
        .certificate
        .as_ref()
        .expect("a verified header's certificate is present");
    assert!(verified.height >= 1, "no header below height 1 verifies");
    assert_eq!(verified.height, header.height);
    assert_eq!(certificate.height, header.height);
    assert_eq!(certificate.block_id, verified.block_hash);
    assert_eq!(verified.ledger_size, header.ledger_size);
    assert_eq!(verified.ledger_root.as_slice(), header.ledger_root);
    assert_eq!(verified.state_root.as_slice(), header.state_root);
    let validators = CLIENT.validator_sets()[0].validators.len();
    assert!(
        (1..=validators).contains(&verified.signers),
        "{} signers of a set of {validators}",
        verified.signers
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(claim) = CLIENT.verify_bundle(data) else {
        return;
    };
    let bundle = v1::ProofBundle::decode(data).expect("an accepted bundle decodes");
    assert_eq!(
        bundle.encode_to_vec(),
        data,
        "an accepted bundle is canonical"
    );
    assert_eq!(bundle.chain_id, CHAIN_ID);
    match (&claim, bundle.headers.as_slice()) {
        (
            VerifiedClaim::Transaction {
                header,
                transaction_id,
                leaf_index,
                receipt,
                ..
            },
            [certified],
        ) => {
            check_header(header, certified);
            assert!(*leaf_index < header.ledger_size);
            if let Some(receipt) = receipt {
                assert_eq!(receipt.transaction_id, transaction_id);
                assert!(receipt.height <= header.height);
            }
        }
        (VerifiedClaim::Consistency { first, second }, [first_certified, second_certified]) => {
            check_header(first, first_certified);
            check_header(second, second_certified);
            assert!(first.height <= second.height);
            assert!(first.ledger_size <= second.ledger_size);
        }
        (VerifiedClaim::StateEntry { header, entry }, [certified]) => {
            check_header(header, certified);
            assert!(entry.key.is_some());
        }
        (VerifiedClaim::AccessCheck { header, check, .. }, [certified]) => {
            check_header(header, certified);
            assert!(check.record_proof.is_some());
        }
        (claim, headers) => panic!("a {claim:?} accepted with {} headers", headers.len()),
    }
});
