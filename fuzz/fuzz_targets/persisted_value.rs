//! Every value the node reads back from its store, decoded as the node decodes it: the first byte
//! picks the kind, the rest is the stored value. Each stored type's decoder (`StoredValue::decode`,
//! behind every `StateView::get_value`) must refuse garbage with an error, never panic, and what
//! it accepts must survive its own encoding; blocks are decoded as the API and sync decode them;
//! certificates as the API and `read_blocks` do; the chain identity as every open checks it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use varde_consensus::{CommitCertificate, SafetyState};
use varde_ledger::domain::{
    AccessBlock, AccessEvent, Expiry, Grant, Misbehaviour, Receipt, RecordPointer,
};
use varde_ledger::membership::Genesis;
use varde_ledger::state::StateError;
use varde_ledger::stored::StoredValue;
use varde_ledger::{Head, ledger};
use varde_proto::v1;
use varde_storage::{
    CHAIN_ID_KEY, ChainIdentity, Column, GENESIS_HASH_KEY, MemoryStore, SCHEMA_VERSION_KEY, Store,
    WriteBatch, check_identity,
};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, value)) = data.split_first() else {
        return;
    };
    match kind % 13 {
        0 => round_trip::<Head>(Column::Meta, value),
        1 => round_trip::<Receipt>(Column::Receipts, value),
        2 => round_trip::<RecordPointer>(Column::Records, value),
        3 => round_trip::<Grant>(Column::Grants, value),
        4 => round_trip::<AccessBlock>(Column::AccessBlocks, value),
        5 => round_trip::<AccessEvent>(Column::AccessEvents, value),
        6 => round_trip::<Expiry>(Column::Meta, value),
        7 => round_trip::<Misbehaviour>(Column::Meta, value),
        8 => round_trip::<Genesis>(Column::Meta, value),
        9 => round_trip::<CommitCertificate>(Column::Certificates, value),
        10 => {
            let _ = v1::Block::decode(value);
            if let Ok(block) = ledger::decode_block(value) {
                assert_eq!(block.encode_to_vec(), value);
            }
        }
        11 => chain_identity(value),
        _ => round_trip::<SafetyState>(Column::ConsensusSafety, value),
    }
});

/// A stored value decodes or is refused as corrupt in its column; what decodes encodes to a value
/// that decodes to the same.
fn round_trip<T: StoredValue + PartialEq + std::fmt::Debug>(column: Column, value: &[u8]) {
    match T::decode(column, value) {
        Ok(decoded) => {
            let again = T::decode(column, &decoded.encode()).expect("its encoding decodes");
            assert_eq!(again, decoded);
        }
        Err(StateError::Corrupt { column: named, .. }) => assert_eq!(named, column),
        Err(other) => panic!("a decoding failure that is not corruption: {other}"),
    }
}

/// The three identity values of a database, split by the first two bytes, checked on open.
fn chain_identity(value: &[u8]) {
    let [first, second, rest @ ..] = value else {
        return;
    };
    let (chain_id, rest) = rest.split_at(usize::from(*first).min(rest.len()));
    let (genesis_hash, schema_version) = rest.split_at(usize::from(*second).min(rest.len()));
    let store = MemoryStore::new();
    let mut batch = WriteBatch::new();
    batch.put(Column::Meta, CHAIN_ID_KEY, chain_id);
    batch.put(Column::Meta, GENESIS_HASH_KEY, genesis_hash);
    batch.put(Column::Meta, SCHEMA_VERSION_KEY, schema_version);
    store.write(batch).expect("the memory store writes");
    let expected = ChainIdentity::new("varde-fuzz", [7; 32]);
    if check_identity(&store, "fuzz", &expected).is_ok() {
        // Only the expected identity passes.
        assert_eq!(chain_id, b"varde-fuzz");
        assert_eq!(genesis_hash, [7; 32]);
    }
}
