//! Sync frames: a peer's `SyncRequest` (as the network task decodes it) and a peer's
//! `SyncResponse` (`peer_frames::decode_synced`), whose blocks are decoded (`ledger::decode_block`), as catching up does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use varde_ledger::{consensus_wire, ledger, peer_frames};
use varde_proto::v1;

fuzz_target!(|data: &[u8]| {
    let _ = v1::SyncRequest::decode(data);
    let Ok((blocks, _head_height)) = peer_frames::decode_synced(data) else {
        return;
    };
    for (block, certificate) in blocks {
        assert_eq!(block.id, certificate.block_id);
        let again = consensus_wire::certificate_from_wire(&consensus_wire::certificate_to_wire(
            &certificate,
        ))
        .expect("an encoded certificate decodes");
        assert_eq!(again, certificate);
        if let Ok(decoded) = ledger::decode_block(&block.payload) {
            assert_eq!(decoded.encode_to_vec(), &*block.payload);
        }
    }
});
