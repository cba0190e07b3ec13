//! CheckAccess (`Ledger::check_access`) on an in-memory ledger holding 1,001,000 grants: 10 for
//! each of 100,000 patients (one of the 10 to the reader, the others to two other institutions)
//! and 1,000 for one busy patient, with 1,000 of the patients' records and the busy patient's
//! record anchored. The ledger is built once, before the timed loops (blocks of 1,000 grants by the
//! consent authority, executed as pre-checked: signatures are made, not verified).
//!
//! Timed questions: the reader's access by a grant (10 grants of the patient read), a refusal
//! after reading all 10 (a purpose not granted), the custodian's own record (no grant read), an
//! unknown record, and the reader's access to the busy patient's record (1,000 grants read).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use varde_benches::fixtures::{self, HOSPITAL, READER, VALIDATORS, org};
use varde_ledger::Ledger;
use varde_ledger::access::AccessRequest;
use varde_ledger::domain::{Purpose, RecordKey};
use varde_storage::MemoryStore;

const PATIENTS: u32 = 100_000;
const GRANTS_PER_PATIENT: u32 = 10;
const BUSY_PATIENT: u32 = PATIENTS;
const BUSY_GRANTS: u32 = 1_000;
const PER_BLOCK: u32 = 1_000;

/// The grantee of a patient's grant number `k` of `count`: the reader for the last, the third or
/// fourth validator institution otherwise.
fn grantee(k: u32, count: u32) -> &'static str {
    if k == count - 1 {
        READER
    } else {
        VALIDATORS[2 + (k % 2) as usize].0
    }
}

fn build() -> Ledger<MemoryStore> {
    let started = Instant::now();
    let ledger = Ledger::open(MemoryStore::new(), fixtures::genesis()).expect("opens");
    let mut records: Vec<_> = (0..1_000u32)
        .map(|patient| fixtures::anchor_of(u64::from(patient), Some(patient)))
        .collect();
    records.push(fixtures::anchor_of(
        u64::from(BUSY_PATIENT),
        Some(BUSY_PATIENT),
    ));
    fixtures::commit_prechecked(&ledger, records);
    let total = PATIENTS * GRANTS_PER_PATIENT;
    for first in (0..total).step_by(PER_BLOCK as usize) {
        let grants = (first..first + PER_BLOCK)
            .map(|grant| {
                let (patient, k) = (grant / GRANTS_PER_PATIENT, grant % GRANTS_PER_PATIENT);
                fixtures::grant_of_all_records(patient, grantee(k, GRANTS_PER_PATIENT), k)
            })
            .collect();
        fixtures::commit_prechecked(&ledger, grants);
    }
    let busy = (0..BUSY_GRANTS)
        .map(|k| fixtures::grant_of_all_records(BUSY_PATIENT, grantee(k, BUSY_GRANTS), k))
        .collect();
    fixtures::commit_prechecked(&ledger, busy);
    eprintln!(
        "built a ledger of {} grants in {:.0} s",
        total + BUSY_GRANTS,
        started.elapsed().as_secs_f64()
    );
    ledger
}

fn request(accessor: &str, record: u32, purpose: Purpose) -> AccessRequest {
    AccessRequest {
        accessor: org(accessor),
        person: None,
        record: RecordKey {
            custodian: org(HOSPITAL),
            record_id: format!("notat-{record}"),
        },
        purpose,
        at_unix_ms: 0,
    }
}

fn check_access(c: &mut Criterion) {
    let ledger = build();
    let mut group = c.benchmark_group("check_access_among_1e6_grants");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let cases = [
        (
            "allowed_by_grant",
            request(READER, 777, Purpose::Treat),
            true,
        ),
        (
            "denied_after_10_grants",
            request(READER, 777, Purpose::Coc),
            false,
        ),
        (
            "custodians_own_record",
            request(HOSPITAL, 777, Purpose::Treat),
            true,
        ),
        (
            "unknown_record",
            request(READER, 5_000, Purpose::Treat),
            false,
        ),
        (
            "allowed_among_1000_grants",
            request(READER, BUSY_PATIENT, Purpose::Treat),
            true,
        ),
    ];
    for (name, question, allowed) in cases {
        let decision = ledger
            .check_access(question.clone(), None)
            .expect("decides");
        assert_eq!(decision.allowed, allowed, "{name}: {decision:?}");
        group.bench_function(name, |b| {
            b.iter(|| {
                ledger
                    .check_access(black_box(question.clone()), None)
                    .expect("decides")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, check_access);
criterion_main!(benches);
