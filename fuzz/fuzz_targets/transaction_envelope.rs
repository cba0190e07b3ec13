//! A submitted `SignedTransaction`: the bytes of `SubmitTransaction` (`wire::decode_transaction`,
//! what `Ledger::decode_transaction` runs) and an envelope that gRPC decoded first
//! (`wire::verify_envelope`, what the mempool runs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use varde_fuzz::CHAIN_ID;
use varde_ledger::wire;
use varde_proto::v1;

fuzz_target!(|data: &[u8]| {
    let accepted = wire::decode_transaction(CHAIN_ID, data);
    if let Ok(verified) = &accepted {
        // Only the canonical encoding is accepted, so it re-encodes to the very bytes.
        assert_eq!(verified.envelope.encode_to_vec(), data);
        assert_eq!(verified.envelope.signer_public_key, verified.signer);
    }
    if let Ok(envelope) = v1::SignedTransaction::decode(data) {
        let verified = wire::verify_envelope(CHAIN_ID, envelope);
        // Canonical bytes get the same verdict on both paths.
        if accepted.is_ok() {
            assert_eq!(verified, accepted);
        }
    }
});
