//! A consensus frame from a peer (`peer_frames::decode_consensus`), then the proposed block's payload
//! (`ledger::decode_block`, as the application validates it). Signatures are left to ed25519's
//! own fuzzing: checking them here would only slow the search. Decoded messages must survive a trip back to the wire.
#![no_main]

use libfuzzer_sys::fuzz_target;
use varde_consensus::Message;
use varde_ledger::{consensus_wire, ledger, peer_frames};

fuzz_target!(|data: &[u8]| {
    let Ok(messages) = peer_frames::decode_consensus(data) else {
        return;
    };
    for message in messages {
        let again = consensus_wire::message_from_wire(consensus_wire::message_to_wire(&message))
            .expect("an encoded message decodes");
        assert_eq!(again, message);
        match &message {
            Message::Vote(_) => {}
            Message::Proposal(proposal) => {
                if let Ok(block) = ledger::decode_block(&proposal.block.payload) {
                    assert_eq!(
                        prost::Message::encode_to_vec(&block),
                        &*proposal.block.payload
                    );
                }
            }
        }
    }
});
