//! Execution of each action kind: a block of 1,000 transactions of one kind executed by
//! `Ledger::execute_block_prechecked` on an in-memory ledger (`MemoryStore`) that holds what the
//! kind needs (records, grants, patient blocks). Signatures count as verified before (as in a node,
//! where admission verified them), except in `anchor_record_verifying_signatures`, which runs
//! `Ledger::execute_block` and so verifies each signature in the block. The block is executed, not
//! committed (its write batch is dropped), so every iteration starts from the same state. Figures are
//! per transaction; each includes the block's share of the state root, accumulator and header.

use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use varde_benches::fixtures::{self, HOSPITAL, T0};
use varde_ledger::Ledger;
use varde_proto::v1;
use varde_storage::MemoryStore;

const BLOCK: u64 = 1_000;

fn execution(c: &mut Criterion) {
    let ledger = Ledger::open(MemoryStore::new(), fixtures::genesis()).expect("opens");
    // Records 0..2,000 (of one patient), grants to the reader of records 0..1,000, and patient
    // blocks of the hospital for subjects 1,000..2,000.
    fixtures::commit_prechecked(&ledger, (0..BLOCK).map(fixtures::anchor).collect());
    fixtures::commit_prechecked(&ledger, (BLOCK..2 * BLOCK).map(fixtures::anchor).collect());
    let grants =
        fixtures::commit_prechecked(&ledger, (0..BLOCK).map(fixtures::grant_of_record).collect());
    let blocks = fixtures::commit_prechecked(
        &ledger,
        (BLOCK as u32..2 * BLOCK as u32)
            .map(|subject| fixtures::block_of(subject, HOSPITAL))
            .collect(),
    );
    let read_at = fixtures::next_block_time(&ledger) - 500;
    assert!(read_at > T0);

    let kinds: Vec<(&str, Vec<v1::SignedTransaction>)> = vec![
        (
            "anchor_record",
            (10 * BLOCK..11 * BLOCK).map(fixtures::anchor).collect(),
        ),
        (
            "supersede_record",
            (0..BLOCK).map(fixtures::supersede).collect(),
        ),
        (
            "retract_record",
            (0..BLOCK).map(fixtures::retract).collect(),
        ),
        (
            "grant_access",
            (BLOCK..2 * BLOCK).map(fixtures::grant_of_record).collect(),
        ),
        (
            "revoke_grant",
            grants.iter().copied().map(fixtures::revoke).collect(),
        ),
        (
            "block_access",
            (0..BLOCK as u32)
                .map(|subject| fixtures::block_of(subject, HOSPITAL))
                .collect(),
        ),
        (
            "unblock_access",
            blocks.iter().copied().map(fixtures::unblock).collect(),
        ),
        (
            "log_access",
            grants
                .iter()
                .enumerate()
                .map(|(record, grant)| fixtures::log_access(record as u64, *grant, read_at))
                .collect(),
        ),
        (
            "report_misbehaviour",
            (1..=BLOCK).map(fixtures::report_double_precommit).collect(),
        ),
    ];

    let mut group = c.benchmark_group("execute_block_of_1000");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(BLOCK));
    let time = fixtures::next_block_time(&ledger);
    for (kind, transactions) in &kinds {
        // Every transaction of the block applies.
        let verified = vec![true; transactions.len()];
        let executed = ledger
            .execute_block_prechecked([9; 32], time, transactions.clone(), &verified)
            .expect("executes");
        for receipt in &executed.receipts {
            assert!(receipt.is_applied(), "{kind}: {receipt:?}");
        }
        group.bench_function(*kind, |b| {
            b.iter_batched(
                || transactions.clone(),
                |transactions| {
                    ledger
                        .execute_block_prechecked([9; 32], time, transactions, &verified)
                        .expect("executes")
                },
                BatchSize::LargeInput,
            )
        });
    }
    let anchors = kinds[0].1.clone();
    group.bench_function("anchor_record_verifying_signatures", |b| {
        b.iter_batched(
            || anchors.clone(),
            |transactions| {
                ledger
                    .execute_block([9; 32], time, transactions)
                    .expect("executes")
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, execution);
criterion_main!(benches);
