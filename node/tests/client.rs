//! `varde-client` end to end against a real node over TLS: every action built with its builders
//! commits, and every call of the Ledger, Query and Node services answers through `Client`.

mod common;

use std::time::Duration;

use common::{CHAIN, start_tls_node};
use varde_client::tx::{
    Anchor, Block, Grant, LogAccess, Retract, Revoke, Scope, Supersede, Transaction, Unblock,
};
use varde_client::{CallErrorKind, Client, Credentials, Error, v1};
use varde_node::demo::{self, DemoKeys};

const WAIT: Duration = Duration::from_secs(20);

/// Signs `action` with `key` for the test chain, submits it and waits; its id once applied.
async fn commit(
    client: &Client,
    key: &varde_client::SigningKey,
    action: v1::transaction_body::Action,
) -> [u8; 32] {
    let envelope = Transaction::new(action).sign(CHAIN, key).unwrap();
    let id = *envelope.transaction_id.as_bytes();
    let response = client.submit_and_wait(envelope, WAIT).await.unwrap();
    assert!(
        matches!(
            response.receipt.and_then(|receipt| receipt.outcome),
            Some(v1::receipt::Outcome::Applied(_))
        ),
        "not applied"
    );
    assert_eq!(response.transaction_id, id);
    id
}

// Anchor, supersede, grant, log access, block, unblock, revoke and retract, built with the
// client's builders, are applied; then each read call (signed by the auditor) answers, an
// unsigned client is told to give a key, and a duplicate submission is a refusal.
#[tokio::test]
async fn every_builder_and_call_works_against_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let keys = DemoKeys::from_seed(6);
    let node = start_tls_node(dir.path(), &keys).await;
    let ca = node.ca.clone().unwrap();
    let client = Client::connect(&node.endpoint(), Some(&ca)).await.unwrap();
    assert_eq!(client.status().await.unwrap().chain_id, CHAIN);

    let hospital = demo::HOSPITAL.org_number;
    let municipality = demo::MUNICIPALITY.org_number;
    let consent = demo::CONSENT_AUTHORITY.org_number;
    let subject = demo::demo_pseudonym(1);
    let now = varde_client::now_unix_ms();
    let anchor = Anchor::new(
        hospital,
        "c-1",
        subject,
        "note",
        "https://ehr.example.invalid/c-1",
        [1; 32],
        now,
    );
    let anchored = commit(&client, keys.of(demo::HOSPITAL), anchor.into()).await;
    let supersede = Supersede::new(
        hospital,
        "c-1",
        "note",
        "https://ehr.example.invalid/c-1/v2",
        [2; 32],
        now,
    );
    commit(&client, keys.of(demo::HOSPITAL), supersede.into()).await;
    let grant = Grant::new(
        consent,
        subject,
        municipality,
        Scope::AllRecords,
        now - 1_000,
        now + 3_600_000,
    )
    .purpose(v1::PurposeOfUse::Treat)
    .consent("consent-c-1");
    let grant_id = commit(&client, keys.of(demo::CONSENT_AUTHORITY), grant.into()).await;
    let read = LogAccess::new(
        municipality,
        "1234567",
        hospital,
        "c-1",
        v1::PurposeOfUse::Treat,
        now,
    )
    .grant(grant_id);
    commit(&client, keys.of(demo::MUNICIPALITY), read.into()).await;
    let block = Block::person(consent, subject, "7654321");
    let block_id = commit(&client, keys.of(demo::CONSENT_AUTHORITY), block.into()).await;
    commit(
        &client,
        keys.of(demo::CONSENT_AUTHORITY),
        Unblock::new(consent, block_id).into(),
    )
    .await;
    commit(
        &client,
        keys.of(demo::CONSENT_AUTHORITY),
        Revoke::new(consent, grant_id).into(),
    )
    .await;

    // Reads without credentials are refused before anything is sent.
    let unsigned = client
        .get_block(v1::GetBlockRequest {
            auth: None,
            height: 1,
        })
        .await;
    assert!(matches!(unsigned, Err(Error::NoCredentials)));

    let auditor = client
        .clone()
        .with_credentials(Credentials::new(CHAIN, keys.of(demo::AUDITOR).clone()));
    let transaction = auditor
        .get_transaction(v1::GetTransactionRequest {
            auth: None,
            transaction_id: anchored.to_vec(),
        })
        .await
        .unwrap();
    assert_eq!(transaction.status, v1::TransactionStatus::Committed as i32);
    let head = auditor.status().await.unwrap();
    let block = auditor
        .get_block(v1::GetBlockRequest {
            auth: None,
            height: head.height,
        })
        .await
        .unwrap();
    let ledger_size = block.header.unwrap().ledger_size;
    let inclusion = auditor
        .get_inclusion_proof(v1::GetInclusionProofRequest {
            auth: None,
            transaction_id: anchored.to_vec(),
            tree_size: 0,
        })
        .await
        .unwrap();
    assert!(inclusion.tree_size >= 1);
    let consistency = auditor
        .get_consistency_proof(v1::GetConsistencyProofRequest {
            auth: None,
            first_size: 1,
            second_size: ledger_size,
        })
        .await
        .unwrap();
    assert_eq!(consistency.second_size, ledger_size);
    let mut events = auditor
        .stream_events(v1::StreamEventsRequest {
            from_height: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(events.message().await.unwrap().is_some());
    auditor
        .list_misbehaviour(v1::ListMisbehaviourRequest::default())
        .await
        .unwrap();
    let record = v1::RecordReference {
        custodian_org_number: hospital.to_owned(),
        record_id: "c-1".to_owned(),
    };
    let got = auditor
        .get_record(v1::GetRecordRequest {
            auth: None,
            record: Some(record.clone()),
        })
        .await
        .unwrap();
    assert_eq!(
        got.record.unwrap().location_uri,
        "https://ehr.example.invalid/c-1/v2"
    );
    let by_subject = |filter| v1::ListRecordsRequest {
        filter: Some(filter),
        ..Default::default()
    };
    let records = auditor
        .list_records(by_subject(
            v1::list_records_request::Filter::SubjectPseudonym(subject.to_vec()),
        ))
        .await
        .unwrap();
    assert_eq!(records.records.len(), 1);
    let grants = auditor
        .list_grants(v1::ListGrantsRequest {
            filter: Some(v1::list_grants_request::Filter::GranteeOrgNumber(
                municipality.to_owned(),
            )),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(grants.grants.len(), 1);
    let events = auditor
        .list_access_events(v1::ListAccessEventsRequest {
            filter: Some(v1::list_access_events_request::Filter::Record(
                record.clone(),
            )),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.events.len(), 1);
    let blocks = auditor
        .list_access_blocks(v1::ListAccessBlocksRequest {
            subject_pseudonym: subject.to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(blocks.blocks[0].lifted);
    let check = auditor
        .check_access(v1::CheckAccessRequest {
            accessor_org_number: municipality.to_owned(),
            record: Some(record),
            purpose: v1::PurposeOfUse::Treat as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!check.allowed, "the grant was revoked");

    // A height-based expiry from the node's height; the same envelope twice is a refusal.
    let expiry = client.expiry_in_blocks(100).await.unwrap();
    let retract = Transaction::new(Retract::new(hospital, "c-1").reason("deleted at the source"))
        .expiry(expiry)
        .sign(CHAIN, keys.of(demo::HOSPITAL))
        .unwrap();
    client.submit_and_wait(retract.clone(), WAIT).await.unwrap();
    let Err(Error::Call(again)) = client.submit(retract).await else {
        panic!("a duplicate is refused");
    };
    assert_eq!(again.kind(), CallErrorKind::Refused, "{again}");
    node.stop().await;
}
