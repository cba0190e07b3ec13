//! Committing an executed block of 1,000 and of 10,000 record anchors to RocksDB: `Ledger::commit`,
//! one atomic write batch synced to disk (the node's store, `RocksStore`, syncs every batch). The
//! block is signed and executed over the database's current head before each timed commit, so
//! the database grows by one block per iteration; only the commit is timed.

mod support;

use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use varde_benches::fixtures::{self, certificate};
use varde_ledger::stored::StoredValue;

fn commit(c: &mut Criterion) {
    let (_directory, ledger) = support::rocksdb_ledger();
    let mut group = c.benchmark_group("commit_rocksdb");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    let mut next_record = 0u64;
    for size in [1_000u64, 10_000] {
        group.throughput(Throughput::Elements(size));
        group.bench_function(format!("block_of_{size}_anchors"), |b| {
            b.iter_batched(
                || {
                    let transactions = (next_record..next_record + size)
                        .map(fixtures::anchor)
                        .collect();
                    next_record += size;
                    let verified = vec![true; size as usize];
                    let mut executed = ledger
                        .execute_block_prechecked(
                            [9; 32],
                            fixtures::next_block_time(&ledger),
                            transactions,
                            &verified,
                        )
                        .expect("executes");
                    let height = executed.head.height;
                    executed.attach_certificate(StoredValue::encode(&certificate(
                        height,
                        executed.block_hash,
                    )));
                    executed
                },
                |executed| ledger.commit(executed).expect("commits"),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, commit);
criterion_main!(benches);
