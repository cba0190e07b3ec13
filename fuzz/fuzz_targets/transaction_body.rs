//! A transaction body past its signature: `wire::check_envelope` with the signature taken as
//! verified (the mempool's path for its own envelopes), so that every input reaches the body's
//! canonical check and field validation; and the lenient decode the API uses to decide who may
//! see a body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use varde_fuzz::{CHAIN_ID, HOSPITAL_KEY, key};
use varde_ledger::{canonical, identifiers, wire};
use varde_proto::v1;

fuzz_target!(|data: &[u8]| {
    let envelope = v1::SignedTransaction {
        body: data.to_vec(),
        signer_public_key: key(HOSPITAL_KEY).verifying_key().to_bytes().to_vec(),
        signature: vec![0; 64],
    };
    if let Ok(verified) = wire::check_envelope(CHAIN_ID, envelope, true) {
        // Accepted bodies are canonical, name this chain and hold no identity number in clear.
        let wire_body = canonical::decode_canonical::<v1::TransactionBody>(data)
            .expect("an accepted body is canonical");
        assert_eq!(wire_body.encode_to_vec(), data);
        assert!(wire_body.chain_id.is_empty() || wire_body.chain_id == CHAIN_ID);
        assert!(!identifiers::contains_plain_national_id(data));
        assert_eq!(wire::decode_body(wire_body), Ok(verified.body));
    }
    if let Ok(wire_body) = v1::TransactionBody::decode(data) {
        let _ = wire::decode_body(wire_body);
    }
});
