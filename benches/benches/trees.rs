//! The ledger accumulator (`accumulator.rs`, RFC 6962 style) and the state tree (`state_tree.rs`,
//! a sparse Merkle tree over the committed entries), each of 10⁶ leaves in a `MemoryStore`, built
//! once outside the timed loops. Timed: appending 1,000 leaves (per leaf), an inclusion proof at
//! the middle of the tree and its check, a consistency proof 500,000 → 10⁶ and its check, the root;
//! in the state tree a proof of a present and of an absent key with their checks, and an update of
//! 1,000 keys (per key). Appends and updates go into a state view that is dropped afterwards.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use varde_ledger::accumulator;
use varde_ledger::state::StateView;
use varde_ledger::state_commitment::{EntryKind, state_key};
use varde_ledger::state_tree::{self, Hash};
use varde_storage::{MemoryStore, Store};

const LEAVES: u64 = 1_000_000;
const CHUNK: u64 = 10_000;

fn leaf(index: u64) -> [u8; 40] {
    let mut leaf = [0x33; 40];
    leaf[..8].copy_from_slice(&index.to_be_bytes());
    leaf
}

fn tree_key(index: u64) -> Hash {
    state_key(EntryKind::Record, &index.to_be_bytes())
}

fn value_hash(index: u64) -> Hash {
    state_key(EntryKind::Grant, &index.to_le_bytes())
}

fn accumulator_benches(c: &mut Criterion) {
    let store = MemoryStore::new();
    for chunk in 0..LEAVES / CHUNK {
        let mut view = StateView::new(&store);
        for index in chunk * CHUNK..(chunk + 1) * CHUNK {
            accumulator::append(&mut view, &leaf(index)).expect("appends");
        }
        store.write(view.into_batch()).expect("writes");
    }
    let view = StateView::new(&store);
    let root = accumulator::root_at(&view, LEAVES).expect("a root");
    let half_root = accumulator::root_at(&view, LEAVES / 2).expect("a root");
    let middle = LEAVES / 2 + 12_345;

    let mut group = c.benchmark_group("accumulator_of_1e6");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("root", |b| {
        b.iter(|| accumulator::root_at(&view, black_box(LEAVES)).expect("a root"))
    });
    group.bench_function("inclusion_proof", |b| {
        b.iter(|| {
            accumulator::inclusion_proof(&view, black_box(middle), LEAVES)
                .expect("reads")
                .expect("a proof")
        })
    });
    let inclusion = accumulator::inclusion_proof(&view, middle, LEAVES)
        .expect("reads")
        .expect("a proof");
    assert!(accumulator::verify_inclusion(
        &leaf(middle),
        &inclusion,
        &root
    ));
    group.bench_function("verify_inclusion", |b| {
        b.iter(|| accumulator::verify_inclusion(&leaf(middle), black_box(&inclusion), &root))
    });
    group.bench_function("consistency_proof_500000", |b| {
        b.iter(|| {
            accumulator::consistency_proof(&view, black_box(LEAVES / 2), LEAVES)
                .expect("reads")
                .expect("a proof")
        })
    });
    let consistency = accumulator::consistency_proof(&view, LEAVES / 2, LEAVES)
        .expect("reads")
        .expect("a proof");
    assert!(accumulator::verify_consistency(
        &consistency,
        &half_root,
        &root
    ));
    group.bench_function("verify_consistency_500000", |b| {
        b.iter(|| accumulator::verify_consistency(black_box(&consistency), &half_root, &root))
    });
    group.throughput(Throughput::Elements(1_000));
    let new_leaves: Vec<[u8; 40]> = (LEAVES..LEAVES + 1_000).map(leaf).collect();
    group.bench_function("append_1000", |b| {
        b.iter_batched(
            || StateView::new(&store),
            |mut view| {
                for new_leaf in &new_leaves {
                    accumulator::append(&mut view, new_leaf).expect("appends");
                }
                view
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn state_tree_benches(c: &mut Criterion) {
    let store = MemoryStore::new();
    for chunk in 0..LEAVES / CHUNK {
        let mut changes: Vec<(Hash, Option<Hash>)> = (chunk * CHUNK..(chunk + 1) * CHUNK)
            .map(|index| (tree_key(index), Some(value_hash(index))))
            .collect();
        changes.sort_unstable_by_key(|(key, _)| *key);
        let mut view = StateView::new(&store);
        state_tree::update(&mut view, &changes).expect("updates");
        store.write(view.into_batch()).expect("writes");
    }
    let view = StateView::new(&store);
    let root = state_tree::root(&view).expect("a root");
    let present = tree_key(777_777);
    let absent = tree_key(LEAVES + 1);

    let mut group = c.benchmark_group("state_tree_of_1e6");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, key, expected) in [
        ("present", present, Some(value_hash(777_777))),
        ("absent", absent, None),
    ] {
        group.bench_function(format!("prove_{name}"), |b| {
            b.iter(|| state_tree::prove(&view, black_box(&key)).expect("proves"))
        });
        let proof = state_tree::prove(&view, &key).expect("proves");
        assert_eq!(
            state_tree::verify(&root, &key, &proof).expect("verifies"),
            expected
        );
        group.bench_function(format!("verify_{name}"), |b| {
            b.iter(|| state_tree::verify(&root, &key, black_box(&proof)).expect("verifies"))
        });
    }
    let mut changes: Vec<(Hash, Option<Hash>)> = (LEAVES..LEAVES + 1_000)
        .map(|index| (tree_key(index), Some(value_hash(index))))
        .collect();
    changes.sort_unstable_by_key(|(key, _)| *key);
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("update_1000_new_keys", |b| {
        b.iter_batched(
            || StateView::new(&store),
            |mut view| {
                state_tree::update(&mut view, &changes).expect("updates");
                view
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, accumulator_benches, state_tree_benches);
criterion_main!(benches);
