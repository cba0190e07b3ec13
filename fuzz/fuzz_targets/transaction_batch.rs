//! A gossiped transactions frame: a `TransactionBatch` whose envelopes each go through
//! `wire::verify_envelope`, as the network task admits them to the mempool.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use varde_fuzz::CHAIN_ID;
use varde_ledger::wire;
use varde_proto::v1;

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = v1::TransactionBatch::decode(data) else {
        return;
    };
    for envelope in batch.transactions {
        let size = envelope.encoded_len();
        if let Ok(verified) = wire::verify_envelope(CHAIN_ID, envelope) {
            assert!(size <= wire::TRANSACTION_BYTES_MAX);
            assert_eq!(verified.envelope.signer_public_key, verified.signer);
        }
    }
});
