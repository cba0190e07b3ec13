//! Stateless admission of one signed transaction (`Ledger::decode_transaction` from bytes,
//! `wire::verify_envelope` on a decoded envelope, and the same checks with the signature taken as
//! verified), and the node's mempool admission (`Mempool::admit`: those checks, membership, expiry,
//! duplicates) of 1,000 distinct transactions over a ledger on RocksDB.

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use prost::Message;
use varde_benches::fixtures::{self, T0};
use varde_ledger::Ledger;
use varde_ledger::node_config::MempoolConfig;
use varde_ledger::wire;
use varde_node::mempool::Mempool;
use varde_proto::v1;
use varde_storage::MemoryStore;

fn decode(c: &mut Criterion) {
    let ledger = Ledger::open(MemoryStore::new(), fixtures::genesis()).expect("opens");
    let mut group = c.benchmark_group("admission");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let kinds: [(&str, v1::SignedTransaction); 2] = [
        ("anchor_record", fixtures::anchor(1)),
        ("grant_access", fixtures::grant_of_record(1)),
    ];
    for (kind, envelope) in kinds {
        let bytes = envelope.encode_to_vec();
        group.bench_function(format!("decode_transaction/{kind}"), |b| {
            b.iter(|| {
                ledger
                    .decode_transaction(black_box(&bytes))
                    .expect("a valid transaction")
            })
        });
        group.bench_function(format!("verify_envelope/{kind}"), |b| {
            b.iter_batched(
                || envelope.clone(),
                |envelope| wire::verify_envelope(fixtures::CHAIN, envelope).expect("valid"),
                BatchSize::SmallInput,
            )
        });
        group.bench_function(format!("check_envelope_signature_known/{kind}"), |b| {
            b.iter_batched(
                || envelope.clone(),
                |envelope| wire::check_envelope(fixtures::CHAIN, envelope, true).expect("valid"),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn mempool(c: &mut Criterion) {
    const COUNT: u64 = 1_000;
    let (_directory, ledger) = support::rocksdb_ledger();
    // A few committed blocks, so that the head and the receipt look-ups find a ledger.
    for block in 0..3 {
        fixtures::commit_prechecked(
            &ledger,
            (block * 100..(block + 1) * 100)
                .map(fixtures::anchor)
                .collect(),
        );
    }
    let envelopes: Vec<v1::SignedTransaction> =
        (1_000..1_000 + COUNT).map(fixtures::anchor).collect();
    let mut group = c.benchmark_group("mempool");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(COUNT));
    group.bench_function("admit_1000_anchors_rocksdb", |b| {
        b.iter_batched(
            || Mempool::new(MempoolConfig::default()),
            |mut pool| {
                for envelope in &envelopes {
                    pool.admit(&ledger, envelope, T0 + 10_000)
                        .expect("admitted");
                }
                pool
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, decode, mempool);
criterion_main!(benches);
