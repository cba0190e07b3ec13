//! Nobody reads what they may not, over a real node: every method that returns ledger content
//! refuses an unsigned request, a replayed signature is refused, and the patient's view works —
//! the consent authority, naming the subject, sees both reads of the patient's record (under a
//! grant, and as an emergency) through queries and the event stream, while an institution with
//! no grant sees neither through any method, page token or stream.

mod common;

use common::*;
use tonic::Code;
use v1::transaction_body::Action;
use varde_node::demo::{self, DemoKeys};
use varde_proto::v1;

/// The patient: a demo pseudonym.
fn patient() -> Vec<u8> {
    demo::demo_subject(42)
}

fn grant_to(grantee: &str, now: i64) -> Action {
    Action::GrantAccess(v1::GrantAccess {
        issuer_org_number: demo::CONSENT_AUTHORITY.org_number.to_owned(),
        subject_pseudonym: patient(),
        grantee_org_number: grantee.to_owned(),
        scope: Some(v1::GrantScope {
            scope: Some(v1::grant_scope::Scope::AllRecords(v1::AllRecords {})),
        }),
        purposes: vec![v1::PurposeOfUse::Treat as i32],
        valid_from_unix_ms: now - 1_000,
        valid_until_unix_ms: now + 3_600_000,
        basis: Some(v1::GrantBasis {
            basis: Some(v1::grant_basis::Basis::PatientConsent(v1::PatientConsent {
                reference: "samtykke-1".to_owned(),
            })),
        }),
        ..Default::default()
    })
}

fn read(accessor: &str, purpose: v1::PurposeOfUse, basis: v1::log_access::Basis) -> Action {
    Action::LogAccess(v1::LogAccess {
        accessor_org_number: accessor.to_owned(),
        accessor_hpr_number: "1234567".to_owned(),
        record: Some(record(demo::HOSPITAL.org_number, "journal-42")),
        purpose: purpose as i32,
        accessed_at_unix_ms: now_unix_ms() - 1_000,
        basis: Some(basis),
        ..Default::default()
    })
}

struct Story {
    node: TestNode,
    keys: DemoKeys,
    /// Transaction ids: anchor, grant, read under the grant, emergency read.
    ids: Vec<Vec<u8>>,
}

/// The hospital anchors the patient's record; the consent authority grants the health trust
/// access; the health trust reads it under the grant and once more as an emergency.
async fn story(dir: &std::path::Path, seed: u8) -> Story {
    let keys = DemoKeys::from_seed(seed);
    let node = start_node(dir, &keys).await;
    let mut client = node.ledger().await;
    let now = now_unix_ms();
    let anchor = signed(
        keys.of(demo::HOSPITAL),
        demo::anchor_action(
            demo::HOSPITAL.org_number,
            "journal-42",
            patient(),
            "psychiatry",
            now,
        ),
    );
    let anchored = commit(&mut client, anchor).await;
    let granted = commit(
        &mut client,
        signed(
            keys.of(demo::CONSENT_AUTHORITY),
            grant_to(demo::HEALTH_TRUST.org_number, now),
        ),
    )
    .await;
    let trust = demo::HEALTH_TRUST.org_number;
    let under_grant = commit(
        &mut client,
        signed(
            keys.of(demo::HEALTH_TRUST),
            read(
                trust,
                v1::PurposeOfUse::Treat,
                v1::log_access::Basis::GrantId(granted.transaction_id.clone()),
            ),
        ),
    )
    .await;
    let emergency = commit(
        &mut client,
        signed(
            keys.of(demo::HEALTH_TRUST),
            read(
                trust,
                v1::PurposeOfUse::Etreat,
                v1::log_access::Basis::Emergency(v1::EmergencyAccess {
                    justification: "bevisstløs i akuttmottaket".to_owned(),
                }),
            ),
        ),
    )
    .await;
    for response in [&anchored, &granted, &under_grant, &emergency] {
        assert!(is_applied(&response.receipt), "{response:?}");
    }
    Story {
        node,
        keys,
        ids: vec![
            anchored.transaction_id,
            granted.transaction_id,
            under_grant.transaction_id,
            emergency.transaction_id,
        ],
    }
}

async fn events_by_subject(story: &Story, caller: demo::DemoInstitution) -> Vec<v1::AccessEvent> {
    let response = story
        .node
        .query()
        .await
        .list_access_events(sign!(
            story.keys.of(caller),
            "/varde.v1.Query/ListAccessEvents",
            v1::ListAccessEventsRequest {
                filter: Some(v1::list_access_events_request::Filter::SubjectPseudonym(
                    patient()
                )),
                ..Default::default()
            }
        ))
        .await
        .unwrap()
        .into_inner();
    response.events
}

/// Every event of a subject-filtered stream with a short lifetime, until the stream ends.
async fn streamed(story: &Story, caller: demo::DemoInstitution) -> Vec<v1::LedgerEvent> {
    let mut stream = story
        .node
        .ledger()
        .await
        .stream_events(sign!(
            story.keys.of(caller),
            "/varde.v1.Ledger/StreamEvents",
            v1::StreamEventsRequest {
                from_height: 1,
                subject_pseudonym: patient(),
                lifetime_seconds: 2,
                ..Default::default()
            }
        ))
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    while let Some(event) = stream.message().await.unwrap() {
        events.push(event);
    }
    events
}

// No credentials, no content: every method that returns ledger content answers UNAUTHENTICATED
// to an unsigned request; Node.Status still answers.
#[tokio::test]
async fn unsigned_reads_are_unauthenticated_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let story = story(dir.path(), 21).await;
    let mut ledger = story.node.ledger().await;
    let mut query = story.node.query().await;
    let id = story.ids[0].clone();
    let mut codes = vec![
        ledger
            .get_transaction(v1::GetTransactionRequest {
                auth: None,
                transaction_id: id.clone(),
            })
            .await
            .map(|_| ()),
        ledger
            .get_block(v1::GetBlockRequest {
                auth: None,
                height: 1,
            })
            .await
            .map(|_| ()),
        ledger
            .get_inclusion_proof(v1::GetInclusionProofRequest {
                auth: None,
                transaction_id: id.clone(),
                tree_size: 0,
            })
            .await
            .map(|_| ()),
        ledger
            .get_consistency_proof(v1::GetConsistencyProofRequest {
                auth: None,
                first_size: 1,
                second_size: 0,
            })
            .await
            .map(|_| ()),
        ledger
            .stream_events(v1::StreamEventsRequest::default())
            .await
            .map(|_| ()),
        ledger
            .list_misbehaviour(v1::ListMisbehaviourRequest::default())
            .await
            .map(|_| ()),
        query
            .get_record(v1::GetRecordRequest {
                auth: None,
                record: Some(record(demo::HOSPITAL.org_number, "journal-42")),
            })
            .await
            .map(|_| ()),
        query
            .list_records(v1::ListRecordsRequest {
                filter: Some(v1::list_records_request::Filter::SubjectPseudonym(patient())),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        query
            .list_grants(v1::ListGrantsRequest {
                filter: Some(v1::list_grants_request::Filter::SubjectPseudonym(patient())),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        query
            .list_access_events(v1::ListAccessEventsRequest {
                filter: Some(v1::list_access_events_request::Filter::SubjectPseudonym(
                    patient(),
                )),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        query
            .list_access_blocks(v1::ListAccessBlocksRequest {
                subject_pseudonym: patient(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        query
            .export_fhir(v1::ExportFhirRequest {
                subject_pseudonym: patient(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        query
            .check_access(v1::CheckAccessRequest {
                accessor_org_number: demo::HEALTH_TRUST.org_number.to_owned(),
                record: Some(record(demo::HOSPITAL.org_number, "journal-42")),
                purpose: v1::PurposeOfUse::Treat as i32,
                ..Default::default()
            })
            .await
            .map(|_| ()),
    ];
    for (index, result) in codes.drain(..).enumerate() {
        assert_eq!(
            result.unwrap_err().code(),
            Code::Unauthenticated,
            "method {index}"
        );
    }
    let status = story
        .node
        .node_client()
        .await
        .status(v1::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(status.height >= 4);
    story.node.stop().await;
}

// A captured signed request cannot be sent again: the node has seen its nonce.
#[tokio::test]
async fn a_replayed_signed_request_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let story = story(dir.path(), 22).await;
    let mut ledger = story.node.ledger().await;
    let request = sign!(
        story.keys.of(demo::HOSPITAL),
        "/varde.v1.Ledger/GetBlock",
        v1::GetBlockRequest {
            auth: None,
            height: 1,
        }
    );
    ledger.get_block(request.clone()).await.unwrap();
    let replayed = ledger.get_block(request).await.unwrap_err();
    assert_eq!(replayed.code(), Code::Unauthenticated);
    assert!(
        replayed.message().contains("nonce"),
        "{}",
        replayed.message()
    );
    story.node.stop().await;
}

// The consent authority, naming the patient, sees both reads with the accessor's name and
// basis, and follows every event about the patient live; the municipality, with no grant, sees
// neither read through queries, blocks, transactions, tokens or the stream.
#[tokio::test]
async fn the_patient_sees_who_read_and_others_see_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let story = story(dir.path(), 23).await;
    let events = events_by_subject(&story, demo::CONSENT_AUTHORITY).await;
    let classifications: Vec<i32> = events.iter().map(|event| event.classification).collect();
    assert_eq!(
        classifications,
        vec![
            v1::AccessClassification::Authorised as i32,
            v1::AccessClassification::Emergency as i32
        ]
    );
    assert!(events[1].flagged);
    assert_eq!(events[0].grant_id, story.ids[1]);
    assert!(
        events
            .iter()
            .all(|event| event.accessor_institution_name == demo::HEALTH_TRUST.name)
    );
    // The reader sees its own reads, the custodian reads of its record; the municipality none.
    assert_eq!(events_by_subject(&story, demo::HEALTH_TRUST).await.len(), 2);
    assert_eq!(events_by_subject(&story, demo::HOSPITAL).await.len(), 2);
    assert!(
        events_by_subject(&story, demo::MUNICIPALITY)
            .await
            .is_empty()
    );

    // The stream by subject: the consent authority gets anchor, grant and both reads; the
    // municipality nothing.
    let for_patient: Vec<Vec<u8>> = streamed(&story, demo::CONSENT_AUTHORITY)
        .await
        .into_iter()
        .map(|event| event.transaction_id)
        .collect();
    assert_eq!(for_patient, story.ids);
    assert!(streamed(&story, demo::MUNICIPALITY).await.is_empty());

    // Blocks and transactions: ids and receipt codes for everyone, bodies for the parties.
    let municipality = story.keys.of(demo::MUNICIPALITY);
    let mut ledger = story.node.ledger().await;
    for id in &story.ids {
        let found = ledger
            .get_transaction(sign!(
                municipality,
                "/varde.v1.Ledger/GetTransaction",
                v1::GetTransactionRequest {
                    auth: None,
                    transaction_id: id.clone(),
                }
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(found.withheld && found.transaction.is_none());
        let receipt = found.receipt.unwrap();
        let block = ledger
            .get_block(sign!(
                municipality,
                "/varde.v1.Ledger/GetBlock",
                v1::GetBlockRequest {
                    auth: None,
                    height: receipt.height,
                }
            ))
            .await
            .unwrap()
            .into_inner();
        let entry = &block.transactions[receipt.index as usize];
        assert_eq!(&entry.transaction_id, id);
        assert!(entry.withheld && entry.transaction.is_none());
        match entry
            .receipt
            .as_ref()
            .and_then(|receipt| receipt.outcome.as_ref())
        {
            Some(v1::receipt::Outcome::Applied(applied)) => {
                assert_eq!(applied.classification, 0, "no classification leaks")
            }
            other => panic!("{other:?}"),
        }
    }
    let trust_view = ledger
        .get_transaction(sign!(
            story.keys.of(demo::HEALTH_TRUST),
            "/varde.v1.Ledger/GetTransaction",
            v1::GetTransactionRequest {
                auth: None,
                transaction_id: story.ids[3].clone(),
            }
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!trust_view.withheld && trust_view.transaction.is_some());

    // CheckAccess by the municipality about itself: the same denial as for a record that does
    // not exist, without emergency availability.
    let mut query = story.node.query().await;
    let check = |record_id: &str| {
        sign!(
            municipality,
            "/varde.v1.Query/CheckAccess",
            v1::CheckAccessRequest {
                accessor_org_number: demo::MUNICIPALITY.org_number.to_owned(),
                record: Some(record(demo::HOSPITAL.org_number, record_id)),
                purpose: v1::PurposeOfUse::Etreat as i32,
                ..Default::default()
            }
        )
    };
    let existing = query
        .check_access(check("journal-42"))
        .await
        .unwrap()
        .into_inner();
    let missing = query
        .check_access(check("no-such-record"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            existing.allowed,
            existing.reason.clone(),
            existing.emergency
        ),
        (missing.allowed, missing.reason.clone(), missing.emergency)
    );
    assert!(!existing.allowed);
    story.node.stop().await;
}

// Page tokens are the issuer's and the caller's: one issued to the consent authority does not
// work for the municipality, and a page is full while more visible items follow.
#[tokio::test]
async fn page_tokens_belong_to_their_caller() {
    let dir = tempfile::tempdir().unwrap();
    let story = story(dir.path(), 24).await;
    let mut query = story.node.query().await;
    let request = |institution: demo::DemoInstitution, token: String| {
        sign!(
            story.keys.of(institution),
            "/varde.v1.Query/ListAccessEvents",
            v1::ListAccessEventsRequest {
                filter: Some(v1::list_access_events_request::Filter::SubjectPseudonym(
                    patient()
                )),
                page_size: 1,
                page_token: token,
                ..Default::default()
            }
        )
    };
    let first = query
        .list_access_events(request(demo::CONSENT_AUTHORITY, String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.events.len(), 1);
    assert!(!first.next_page_token.is_empty());
    let second = query
        .list_access_events(request(
            demo::CONSENT_AUTHORITY,
            first.next_page_token.clone(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.events.len(), 1);
    assert!(second.next_page_token.is_empty());
    let stolen = query
        .list_access_events(request(demo::MUNICIPALITY, first.next_page_token))
        .await
        .unwrap_err();
    assert_eq!(stolen.code(), Code::InvalidArgument);
    story.node.stop().await;
}
