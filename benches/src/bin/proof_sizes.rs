//! Proof bundle sizes on a ledger of a million transactions: `cargo run --release -p
//! varde-benches --bin proof-sizes [-- --transactions N --per-block B]`.
//!
//! Builds an in-memory ledger of N record anchors (B per block, each block certified by all four
//! validators of the test genesis of `varde_benches::fixtures`), then fetches a transaction bundle (with and without the
//! receipt and body), consistency bundles, and a CheckAccess bundle, checks each with the light
//! client, and prints their encoded sizes. Signatures of the anchors are made but not verified
//! (the blocks are executed as pre-checked), so the run measures sizes, not speed.

use std::time::Instant;

use prost::Message;
use varde_benches::fixtures::{self, CHAIN, HOSPITAL, HOSPITAL_KEY, T0, anchor, key};
use varde_ledger::Ledger;
use varde_ledger::access::AccessRequest;
use varde_ledger::domain::{Purpose, RecordKey};
use varde_ledger::identifiers::OrgNumber;
use varde_ledger::proof::{self, LightClient};
use varde_ledger::signing;
use varde_ledger::visibility::Viewer;
use varde_proto::v1;
use varde_storage::MemoryStore;

fn argument(name: &str, default: u64) -> u64 {
    let arguments: Vec<String> = std::env::args().collect();
    arguments
        .iter()
        .position(|argument| argument == name)
        .and_then(|at| arguments.get(at + 1))
        .map(|value| {
            value
                .parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

fn main() {
    let transactions = argument("--transactions", 1_000_000);
    let per_block = argument("--per-block", 1_000).max(1);
    let started = Instant::now();
    let ledger = Ledger::open(MemoryStore::new(), fixtures::genesis()).expect("opens");
    let blocks = transactions.div_ceil(per_block);
    let mut middle = None;
    for block in 0..blocks {
        let first = block * per_block;
        let count = per_block.min(transactions - first);
        let envelopes: Vec<_> = (first..first + count).map(anchor).collect();
        let ids = fixtures::commit_prechecked(&ledger, envelopes);
        if block == blocks / 2 {
            middle = ids.first().copied();
        }
    }
    eprintln!(
        "built a ledger of {transactions} transactions in {blocks} blocks in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let light = LightClient::from_genesis(&fixtures::genesis()).expect("genesis");
    let mut rows: Vec<(String, usize)> = Vec::new();
    let mut measure = |what: String, bundle: v1::ProofBundle| {
        let bytes = bundle.encode_to_vec();
        light.verify_bundle(&bytes).expect("the bundle verifies");
        rows.push((what, bytes.len()));
    };
    let id = middle.expect("a middle transaction");
    measure(
        "transaction with receipt and body".to_owned(),
        proof::transaction_bundle(&ledger, &id, 0, true).expect("bundle"),
    );
    measure(
        "transaction, receipt hash only".to_owned(),
        proof::transaction_bundle(&ledger, &id, 0, false).expect("bundle"),
    );
    for first in [
        per_block,
        transactions / 2 / per_block * per_block,
        (transactions / 3) / per_block * per_block,
    ] {
        if first == 0 || first >= transactions {
            continue;
        }
        measure(
            format!("consistency {first} -> {transactions}"),
            proof::consistency_bundle(&ledger, first, 0).expect("bundle"),
        );
    }
    let request = AccessRequest {
        accessor: OrgNumber::parse(HOSPITAL).expect("valid"),
        person: None,
        record: RecordKey {
            custodian: OrgNumber::parse(HOSPITAL).expect("valid"),
            record_id: format!("notat-{}", transactions / 2),
        },
        purpose: Purpose::Treat,
        at_unix_ms: 0,
    };
    let mut question = v1::CheckAccessRequest {
        auth: None,
        accessor_org_number: HOSPITAL.to_owned(),
        accessor_hpr_number: String::new(),
        record: Some(v1::RecordReference {
            custodian_org_number: HOSPITAL.to_owned(),
            record_id: request.record.record_id.clone(),
        }),
        purpose: v1::PurposeOfUse::Treat as i32,
        at_unix_ms: 0,
        with_proof: true,
    };
    question.auth = Some(
        signing::sign_query(
            CHAIN,
            proof::CHECK_ACCESS_METHOD,
            &key(HOSPITAL_KEY),
            T0,
            &[5; 16],
            &question,
        )
        .expect("signs"),
    );
    let membership = ledger.membership();
    let hospital = membership
        .institution(&OrgNumber::parse(HOSPITAL).expect("valid"))
        .expect("a member");
    let viewer = Viewer::new(hospital, T0);
    let (_, bundle) =
        proof::check_access_with_proof(&ledger, &request, None, &question.encode_to_vec(), &viewer)
            .expect("decides");
    measure(
        format!("CheckAccess (custodian's record, among {transactions} records)"),
        bundle.expect("an allowance has a proof"),
    );
    let record_entry = proof::StateEntryKey::Record(request.record.clone());
    measure(
        format!("state entry: a record pointer, among {transactions} records"),
        proof::state_entry_bundle(&ledger, &record_entry, &viewer)
            .expect("proves")
            .expect("the custodian may see its record"),
    );
    let absent_entry = proof::StateEntryKey::Record(RecordKey {
        custodian: request.record.custodian.clone(),
        record_id: "never-anchored".to_owned(),
    });
    measure(
        format!("state entry: an absent record, among {transactions} records"),
        proof::state_entry_bundle(&ledger, &absent_entry, &viewer)
            .expect("proves")
            .expect("the custodian may learn its record's absence"),
    );
    let Some(v1::proof_bundle::Claim::AccessCheck(check)) =
        proof::check_access_with_proof(&ledger, &request, None, &question.encode_to_vec(), &viewer)
            .expect("decides")
            .1
            .and_then(|bundle| bundle.claim)
    else {
        unreachable!("an access check bundle")
    };
    assert!(check.allowed && check.record_value.is_some());
    eprintln!(
        "the record's state proof has {} siblings",
        check.record_proof.map_or(0, |proof| proof.siblings.len())
    );
    println!("| bundle | bytes |");
    println!("| --- | --- |");
    for (what, bytes) in rows {
        println!("| {what} | {bytes} |");
    }
}
