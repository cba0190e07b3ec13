//! The gRPC API of a real single-validator node on 127.0.0.1:0 over RocksDB.

mod common;

use common::*;
use tonic::Code;
use v1::transaction_body::Action;
use varde_node::demo::{self, DemoKeys};
use varde_proto::v1;

fn rejection(receipt: &Option<v1::Receipt>) -> Option<v1::RejectionReason> {
    match receipt.as_ref()?.outcome.as_ref()? {
        v1::receipt::Outcome::Rejected(rejected) => rejected.reason.try_into().ok(),
        _ => None,
    }
}

// Every action type goes through SubmitAndWait and comes back with an applied receipt.
#[tokio::test]
async fn every_action_type_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let keys = DemoKeys::from_seed(3);
    let node = start_node(dir.path(), &keys).await;
    let mut client = node.ledger().await;
    let hospital = keys.of(demo::HOSPITAL);
    let consent = keys.of(demo::CONSENT_AUTHORITY);
    let municipality = keys.of(demo::MUNICIPALITY);
    let now = now_unix_ms();

    let anchored = commit(&mut client, anchor(&keys, "r-1", 1)).await;
    assert!(is_applied(&anchored.receipt), "anchor: {anchored:?}");
    assert_eq!(anchored.transaction_id.len(), 32);
    let supersede = signed(
        hospital,
        Action::SupersedeRecord(v1::SupersedeRecord {
            custodian_org_number: demo::HOSPITAL.org_number.to_owned(),
            record_id: "r-1".to_owned(),
            category_code: "psychiatry".to_owned(),
            location_uri: "https://ehr.example.invalid/r-1/v2".to_owned(),
            content_sha256: vec![7; 32],
            confidentiality: v1::Confidentiality::Normal as i32,
            created_at_unix_ms: now,
        }),
    );
    assert!(is_applied(&commit(&mut client, supersede).await.receipt));
    let grant = signed(
        consent,
        Action::GrantAccess(v1::GrantAccess {
            issuer_org_number: demo::CONSENT_AUTHORITY.org_number.to_owned(),
            subject_pseudonym: demo::demo_subject(1),
            grantee_org_number: demo::MUNICIPALITY.org_number.to_owned(),
            scope: Some(v1::GrantScope {
                scope: Some(v1::grant_scope::Scope::AllRecords(v1::AllRecords {})),
            }),
            purposes: vec![v1::PurposeOfUse::Treat as i32],
            valid_from_unix_ms: now - 1_000,
            valid_until_unix_ms: now + 3_600_000,
            basis: Some(v1::GrantBasis {
                basis: Some(v1::grant_basis::Basis::PatientConsent(v1::PatientConsent {
                    reference: "consent-1".to_owned(),
                })),
            }),
            ..Default::default()
        }),
    );
    let granted = commit(&mut client, grant).await;
    assert!(is_applied(&granted.receipt));
    let log = signed(
        municipality,
        Action::LogAccess(v1::LogAccess {
            accessor_org_number: demo::MUNICIPALITY.org_number.to_owned(),
            accessor_hpr_number: "1234567".to_owned(),
            record: Some(record(demo::HOSPITAL.org_number, "r-1")),
            purpose: v1::PurposeOfUse::Treat as i32,
            accessed_at_unix_ms: now,
            basis: Some(v1::log_access::Basis::GrantId(
                granted.transaction_id.clone(),
            )),
            ..Default::default()
        }),
    );
    let logged = commit(&mut client, log).await;
    match logged.receipt.as_ref().unwrap().outcome.as_ref().unwrap() {
        v1::receipt::Outcome::Applied(applied) => assert_eq!(
            applied.classification,
            v1::AccessClassification::Authorised as i32
        ),
        other => panic!("log access: {other:?}"),
    }
    let revoke = signed(
        consent,
        Action::RevokeGrant(v1::RevokeGrant {
            issuer_org_number: demo::CONSENT_AUTHORITY.org_number.to_owned(),
            grant_id: granted.transaction_id.clone(),
            reason: "patient withdrew consent".to_owned(),
        }),
    );
    assert!(is_applied(&commit(&mut client, revoke).await.receipt));
    let block = signed(
        consent,
        Action::BlockAccess(v1::BlockAccess {
            issuer_org_number: demo::CONSENT_AUTHORITY.org_number.to_owned(),
            subject_pseudonym: demo::demo_subject(1),
            target: Some(v1::block_access::Target::InstitutionOrgNumber(
                demo::MUNICIPALITY.org_number.to_owned(),
            )),
        }),
    );
    let blocked = commit(&mut client, block).await;
    assert!(is_applied(&blocked.receipt));
    let unblock = signed(
        consent,
        Action::UnblockAccess(v1::UnblockAccess {
            issuer_org_number: demo::CONSENT_AUTHORITY.org_number.to_owned(),
            block_id: blocked.transaction_id,
        }),
    );
    assert!(is_applied(&commit(&mut client, unblock).await.receipt));
    let retract = signed(
        hospital,
        Action::RetractRecord(v1::RetractRecord {
            custodian_org_number: demo::HOSPITAL.org_number.to_owned(),
            record_id: "r-1".to_owned(),
            reason: "deleted at the source".to_owned(),
        }),
    );
    assert!(is_applied(&commit(&mut client, retract).await.receipt));

    let status = node
        .node_client()
        .await
        .status(v1::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.chain_id, CHAIN);
    assert_eq!(status.validator_count, 1);
    assert!(status.height >= 1);
    node.stop().await;
}

// Three transactions in three blocks: each header carries the ledger tree's size and root; the
// consistency proof between the first and the third header's sizes verifies against their roots
// (and fails with a hash changed), and the first transaction's inclusion proof verifies against
// the third header's root. Sizes out of range get INVALID_ARGUMENT.
#[tokio::test]
async fn headers_carry_the_ledger_tree_and_prove_consistency() {
    use varde_ledger::accumulator::{self, ConsistencyProof, InclusionProof};
    let dir = tempfile::tempdir().unwrap();
    let keys = DemoKeys::from_seed(6);
    let node = start_node(dir.path(), &keys).await;
    let mut client = node.ledger().await;
    let hospital = keys.of(demo::HOSPITAL);
    let mut headers = Vec::new();
    let mut ids = Vec::new();
    let mut receipts = Vec::new();
    for index in 0..3u8 {
        let waited = commit(&mut client, anchor(&keys, &format!("tree-{index}"), index)).await;
        receipts.push(waited.receipt.clone().unwrap());
        let height = waited.receipt.as_ref().unwrap().height;
        let block = client
            .get_block(sign!(
                hospital,
                "/varde.v1.Ledger/GetBlock",
                v1::GetBlockRequest { auth: None, height }
            ))
            .await
            .unwrap()
            .into_inner();
        headers.push(block.header.unwrap());
        ids.push(waited.transaction_id);
    }
    let root = |header: &v1::BlockHeader| -> [u8; 32] {
        header.ledger_root.as_slice().try_into().unwrap()
    };
    let (first, last) = (&headers[0], &headers[2]);
    assert!(first.ledger_size >= 1 && last.ledger_size >= first.ledger_size + 2);
    let answer = client
        .get_consistency_proof(sign!(
            hospital,
            "/varde.v1.Ledger/GetConsistencyProof",
            v1::GetConsistencyProofRequest {
                auth: None,
                first_size: first.ledger_size,
                second_size: last.ledger_size,
            }
        ))
        .await
        .unwrap()
        .into_inner();
    let proof = ConsistencyProof {
        first_size: answer.first_size,
        second_size: answer.second_size,
        path: answer
            .path
            .iter()
            .map(|hash| hash.as_slice().try_into().unwrap())
            .collect(),
    };
    assert!(accumulator::verify_consistency(
        &proof,
        &root(first),
        &root(last)
    ));
    let mut tampered = proof.clone();
    tampered.path[0][0] ^= 1;
    assert!(!accumulator::verify_consistency(
        &tampered,
        &root(first),
        &root(last)
    ));
    let inclusion = client
        .get_inclusion_proof(sign!(
            hospital,
            "/varde.v1.Ledger/GetInclusionProof",
            v1::GetInclusionProofRequest {
                auth: None,
                transaction_id: ids[0].clone(),
                tree_size: last.ledger_size,
            }
        ))
        .await
        .unwrap()
        .into_inner();
    let inclusion = InclusionProof {
        leaf_index: inclusion.leaf_index,
        tree_size: inclusion.tree_size,
        audit_path: inclusion
            .audit_path
            .iter()
            .map(|hash| hash.as_slice().try_into().unwrap())
            .collect(),
    };
    // The leaf is the transaction id and its receipt's hash: the proof shows what it did.
    let receipt_hash = varde_ledger::proof::receipt_hash(&receipts[0]);
    let leaf =
        varde_ledger::proof::ledger_leaf(&ids[0].as_slice().try_into().unwrap(), &receipt_hash);
    assert!(accumulator::verify_inclusion(
        &leaf,
        &inclusion,
        &root(last)
    ));
    assert!(!accumulator::verify_inclusion(
        &ids[0],
        &inclusion,
        &root(last)
    ));
    let refused = client
        .get_consistency_proof(sign!(
            hospital,
            "/varde.v1.Ledger/GetConsistencyProof",
            v1::GetConsistencyProofRequest {
                auth: None,
                first_size: last.ledger_size + 1,
                second_size: last.ledger_size,
            }
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
}

// Submit answers with the id at once; GetTransaction then reports it committed with its receipt and
// envelope, GetBlock returns the block and GetInclusionProof verifies against the ledger root.
#[tokio::test]
async fn submitted_transaction_is_found_in_a_block_with_a_proof() {
    let dir = tempfile::tempdir().unwrap();
    let keys = DemoKeys::from_seed(5);
    let node = start_node(dir.path(), &keys).await;
    let mut client = node.ledger().await;
    commit(&mut client, anchor(&keys, "first", 1)).await;
    let transaction = anchor(&keys, "second", 2);
    let id = client
        .submit(v1::SubmitRequest {
            transaction: Some(transaction.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    // Waiting again for the same transaction returns its receipt (SubmitAndWait is retryable).
    let waited = commit(&mut client, transaction.clone()).await;
    assert_eq!(waited.transaction_id, id);
    let hospital = keys.of(demo::HOSPITAL);
    let found = client
        .get_transaction(sign!(
            hospital,
            "/varde.v1.Ledger/GetTransaction",
            v1::GetTransactionRequest {
                auth: None,
                transaction_id: id.clone(),
            }
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.status, v1::TransactionStatus::Committed as i32);
    assert_eq!(found.transaction, Some(transaction.clone()));
    assert!(!found.withheld);
    let receipt = found.receipt.unwrap();
    let block = client
        .get_block(sign!(
            hospital,
            "/varde.v1.Ledger/GetBlock",
            v1::GetBlockRequest {
                auth: None,
                height: receipt.height,
            }
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(block.header.unwrap().height, receipt.height);
    assert!(block.certificate.is_some());
    let in_block = &block.transactions[receipt.index as usize];
    assert_eq!(in_block.transaction_id, id);
    assert_eq!(in_block.transaction, Some(transaction));
    let proof = client
        .get_inclusion_proof(sign!(
            hospital,
            "/varde.v1.Ledger/GetInclusionProof",
            v1::GetInclusionProofRequest {
                auth: None,
                transaction_id: id.clone(),
                tree_size: 0,
            }
        ))
        .await
        .unwrap()
        .into_inner();
    let proof_check = varde_ledger::accumulator::InclusionProof {
        leaf_index: proof.leaf_index,
        tree_size: proof.tree_size,
        audit_path: proof
            .audit_path
            .iter()
            .map(|hash| hash.as_slice().try_into().unwrap())
            .collect(),
    };
    assert_eq!(proof.tree_size, 2);
    let receipt_hash = varde_ledger::proof::receipt_hash(&receipt);
    assert_eq!(proof.receipt_hash, receipt_hash);
    assert!(varde_ledger::accumulator::verify_inclusion(
        &varde_ledger::proof::ledger_leaf(&id.as_slice().try_into().unwrap(), &receipt_hash),
        &proof_check,
        &proof.ledger_root.as_slice().try_into().unwrap()
    ));
    let unknown = client
        .get_transaction(sign!(
            hospital,
            "/varde.v1.Ledger/GetTransaction",
            v1::GetTransactionRequest {
                auth: None,
                transaction_id: vec![9; 32],
            }
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unknown.status, v1::TransactionStatus::Unknown as i32);
    let missing = client
        .get_block(sign!(
            hospital,
            "/varde.v1.Ledger/GetBlock",
            v1::GetBlockRequest {
                auth: None,
                height: 10_000
            }
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    node.stop().await;
}

// Each kind of bad input gets its own status with a message, and the node keeps serving afterwards.
#[tokio::test]
async fn bad_inputs_get_clear_statuses_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let keys = DemoKeys::from_seed(7);
    let node = start_node(dir.path(), &keys).await;
    let mut client = node.ledger().await;
    let submit = |transaction: v1::SignedTransaction| v1::SubmitRequest {
        transaction: Some(transaction),
    };

    // Body bytes that are not a TransactionBody.
    let mut malformed = anchor(&keys, "m", 1);
    malformed.body = vec![0xff, 0xff, 0xff];
    let status = client.submit(submit(malformed)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    let mut bad_signature = anchor(&keys, "s", 1);
    bad_signature.signature[3] ^= 0x10;
    let status = client.submit(submit(bad_signature)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("signature"),
        "{}",
        status.message()
    );

    let stranger = ed25519_dalek::SigningKey::from_bytes(&[200; 32]);
    let unknown_signer = signed(
        &stranger,
        demo::anchor_action(
            demo::HOSPITAL.org_number,
            "u",
            demo::demo_subject(1),
            "x",
            0,
        ),
    );
    let status = client.submit(submit(unknown_signer)).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    let wrong_chain = demo::sign(
        "another-chain",
        keys.of(demo::HOSPITAL),
        &demo::body(
            "another-chain",
            now_unix_ms(),
            demo::anchor_action(
                demo::HOSPITAL.org_number,
                "c",
                demo::demo_subject(1),
                "x",
                0,
            ),
        ),
    );
    let status = client.submit(submit(wrong_chain)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("chain"), "{}", status.message());

    let mut expired_body = demo::body(
        CHAIN,
        now_unix_ms(),
        demo::anchor_action(
            demo::HOSPITAL.org_number,
            "e",
            demo::demo_subject(1),
            "x",
            0,
        ),
    );
    expired_body.expires_at_unix_ms = now_unix_ms() - 60_000;
    let expired = demo::sign(CHAIN, keys.of(demo::HOSPITAL), &expired_body);
    let status = client.submit(submit(expired)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("expired"), "{}", status.message());

    let once = anchor(&keys, "d", 1);
    client.submit(submit(once.clone())).await.unwrap();
    let status = client.submit(submit(once)).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");

    // A valid fødselsnummer in a free-text field; the error does not echo it.
    let national_id = signed(
        keys.of(demo::HOSPITAL),
        demo::anchor_action(
            demo::HOSPITAL.org_number,
            "pasient-31129956715",
            demo::demo_subject(1),
            "x",
            0,
        ),
    );
    let status = client.submit(submit(national_id)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(!status.message().contains("31129956715"));

    // A transaction over the 64 KiB envelope limit, and a request over the gRPC decoding limit.
    let mut large = demo::body(
        CHAIN,
        now_unix_ms(),
        demo::anchor_action(
            demo::HOSPITAL.org_number,
            "l",
            demo::demo_subject(1),
            "x",
            0,
        ),
    );
    large.nonce = vec![1; 100 * 1024];
    let status = client
        .submit(submit(demo::sign(CHAIN, keys.of(demo::HOSPITAL), &large)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    large.nonce = vec![1; 1024 * 1024];
    let status = client
        .submit(submit(demo::sign(CHAIN, keys.of(demo::HOSPITAL), &large)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // A gRPC request whose bytes are not a SubmitRequest at all.
    let status = raw_call(
        &node.endpoint(),
        "/varde.v1.Ledger/Submit",
        vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
    )
    .await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // A log of a read of an unknown record is committed with a rejected receipt.
    let unknown_record = signed(
        keys.of(demo::MUNICIPALITY),
        Action::LogAccess(v1::LogAccess {
            accessor_org_number: demo::MUNICIPALITY.org_number.to_owned(),
            accessor_hpr_number: "1234567".to_owned(),
            record: Some(record(demo::HOSPITAL.org_number, "no-such-record")),
            purpose: v1::PurposeOfUse::Etreat as i32,
            accessed_at_unix_ms: now_unix_ms(),
            basis: Some(v1::log_access::Basis::Emergency(v1::EmergencyAccess {
                justification: "unconscious patient".to_owned(),
            })),
            ..Default::default()
        }),
    );
    let response = commit(&mut client, unknown_record).await;
    assert_eq!(
        rejection(&response.receipt),
        Some(v1::RejectionReason::UnknownRecord)
    );

    // Still serving: a good transaction commits.
    assert!(is_applied(
        &commit(&mut client, anchor(&keys, "after", 2)).await.receipt
    ));
    let metrics = reqwest_metrics(node.node.metrics_address.unwrap()).await;
    assert!(
        metrics.contains("varde_transactions_rejected_total{reason=\"bad_signature\"} 1"),
        "{metrics}"
    );
    node.stop().await;
}

/// Sends `body` as the message of a unary gRPC call and returns the status.
async fn raw_call(endpoint: &str, method: &'static str, body: Vec<u8>) -> tonic::Status {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    grpc.unary::<Vec<u8>, Vec<u8>, RawCodec>(
        tonic::Request::new(body),
        tonic::codegen::http::uri::PathAndQuery::from_static(method),
        RawCodec,
    )
    .await
    .unwrap_err()
}

#[derive(Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        buffer: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(buffer, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        buffer: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        let length = bytes::Buf::remaining(buffer);
        Ok(Some(bytes::Buf::copy_to_bytes(buffer, length).to_vec()))
    }
}

/// GET /metrics over a plain TCP connection.
async fn reqwest_metrics(address: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: node\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

// gRPC health reports SERVING for the server and each Varde service; reflection lists them.
#[tokio::test]
async fn health_is_serving_and_reflection_lists_the_services() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), &DemoKeys::from_seed(9)).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel(&node).await);
    for service in ["", "varde.v1.Ledger", "varde.v1.Query", "varde.v1.Node"] {
        let response = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            response.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service}"
        );
    }
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut reflection = ServerReflectionClient::new(channel(&node).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<String> = list
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    for wanted in ["varde.v1.Ledger", "varde.v1.Query", "varde.v1.Node"] {
        assert!(names.iter().any(|name| name == wanted), "{names:?}");
    }
    node.stop().await;
}

// A node stopped and started again on the same directory keeps every committed transaction and
// goes on committing at the next height.
#[tokio::test]
async fn restart_keeps_every_committed_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let keys = DemoKeys::from_seed(11);
    let node = start_node(dir.path(), &keys).await;
    let mut client = node.ledger().await;
    let mut ids = Vec::new();
    for index in 0..5 {
        let response = commit(&mut client, anchor(&keys, &format!("keep-{index}"), 1)).await;
        assert!(is_applied(&response.receipt));
        ids.push(response.transaction_id);
    }
    let height_before = node
        .node_client()
        .await
        .status(v1::StatusRequest {})
        .await
        .unwrap()
        .into_inner()
        .height;
    node.stop().await;

    let node = start_node(dir.path(), &keys).await;
    let mut client = node.ledger().await;
    for id in &ids {
        let found = client
            .get_transaction(sign!(
                keys.of(demo::AUDITOR),
                "/varde.v1.Ledger/GetTransaction",
                v1::GetTransactionRequest {
                    auth: None,
                    transaction_id: id.clone(),
                }
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(found.status, v1::TransactionStatus::Committed as i32);
    }
    let after = commit(&mut client, anchor(&keys, "after-restart", 2)).await;
    assert!(after.receipt.unwrap().height > height_before);
    node.stop().await;
}

// Queries are signed: a bad signature is UNAUTHENTICATED, a non-member key PERMISSION_DENIED; the
// municipality cannot see the hospital's record without a grant, the custodian and the auditor can.
#[tokio::test]
async fn queries_are_authenticated_and_filtered_by_role_and_grants() {
    let dir = tempfile::tempdir().unwrap();
    let keys = DemoKeys::from_seed(13);
    let node = start_node(dir.path(), &keys).await;
    let mut client = node.ledger().await;
    commit(&mut client, anchor(&keys, "q-1", 1)).await;
    let mut query = node.query().await;
    let method = "/varde.v1.Query/GetRecord";
    let request = |key: &ed25519_dalek::SigningKey| {
        let mut request = v1::GetRecordRequest {
            auth: None,
            record: Some(record(demo::HOSPITAL.org_number, "q-1")),
        };
        request.auth = Some(authenticate(key, method, &request));
        request
    };
    assert!(
        query
            .get_record(request(keys.of(demo::HOSPITAL)))
            .await
            .is_ok()
    );
    assert!(
        query
            .get_record(request(keys.of(demo::AUDITOR)))
            .await
            .is_ok()
    );
    let denied = query
        .get_record(request(keys.of(demo::MUNICIPALITY)))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[201; 32]);
    assert_eq!(
        query
            .get_record(request(&stranger))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let mut forged = request(keys.of(demo::HOSPITAL));
    forged.auth.as_mut().unwrap().signature[0] ^= 1;
    assert_eq!(
        query.get_record(forged).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let unsigned = v1::GetRecordRequest {
        auth: None,
        record: Some(record(demo::HOSPITAL.org_number, "q-1")),
    };
    assert_eq!(
        query.get_record(unsigned).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    // Listing by subject: the municipality sees nothing, the auditor the record.
    let list = |key: &ed25519_dalek::SigningKey| {
        let mut request = v1::ListRecordsRequest {
            filter: Some(v1::list_records_request::Filter::SubjectPseudonym(
                demo::demo_subject(1),
            )),
            ..Default::default()
        };
        request.auth = Some(authenticate(key, "/varde.v1.Query/ListRecords", &request));
        request
    };
    assert!(
        query
            .list_records(list(keys.of(demo::MUNICIPALITY)))
            .await
            .unwrap()
            .into_inner()
            .records
            .is_empty()
    );
    assert_eq!(
        query
            .list_records(list(keys.of(demo::AUDITOR)))
            .await
            .unwrap()
            .into_inner()
            .records
            .len(),
        1
    );

    // CheckAccess, asked by the municipality about itself: denied without a grant.
    let mut check = v1::CheckAccessRequest {
        accessor_org_number: demo::MUNICIPALITY.org_number.to_owned(),
        record: Some(record(demo::HOSPITAL.org_number, "q-1")),
        purpose: v1::PurposeOfUse::Treat as i32,
        ..Default::default()
    };
    check.auth = Some(authenticate(
        keys.of(demo::MUNICIPALITY),
        "/varde.v1.Query/CheckAccess",
        &check,
    ));
    let decision = query.check_access(check).await.unwrap().into_inner();
    assert!(!decision.allowed);
    node.stop().await;
}

// StreamEvents replays committed events from a height and filters by kind.
#[tokio::test]
async fn events_stream_from_a_height_with_filters() {
    let dir = tempfile::tempdir().unwrap();
    let keys = DemoKeys::from_seed(15);
    let node = start_node(dir.path(), &keys).await;
    let mut client = node.ledger().await;
    let first = commit(&mut client, anchor(&keys, "ev-1", 1)).await;
    let mut request = v1::StreamEventsRequest {
        from_height: 1,
        kinds: vec![v1::EventKind::Record as i32],
        ..Default::default()
    };
    request.auth = Some(authenticate(
        keys.of(demo::AUDITOR),
        "/varde.v1.Ledger/StreamEvents",
        &request,
    ));
    let mut stream = client.stream_events(request).await.unwrap().into_inner();
    let event = stream.message().await.unwrap().unwrap();
    assert_eq!(event.transaction_id, first.transaction_id);
    assert_eq!(event.kind, v1::EventKind::Record as i32);
    // A live event after the replay.
    let second = commit(&mut client, anchor(&keys, "ev-2", 2)).await;
    let event = stream.message().await.unwrap().unwrap();
    assert_eq!(event.transaction_id, second.transaction_id);
    node.stop().await;
}

// A validator's double precommit, reported through Submit, is listed by ListMisbehaviour to any
// member with its evidence; a second report is rejected, a foreign page token is
// INVALID_ARGUMENT, and a non-auditor member follows the report in StreamEvents.
#[tokio::test]
async fn reported_misbehaviour_is_listed_publicly() {
    use varde_consensus::{BlockId, Evidence, SignedVote, Vote, VoteKind};
    let dir = tempfile::tempdir().unwrap();
    let keys = DemoKeys::from_seed(17);
    let node = start_node(dir.path(), &keys).await;
    let mut client = node.ledger().await;
    let validator = keys.of(demo::VALIDATOR);
    // The dev network's single validator has index 0.
    let precommit = |block: u8| {
        let vote = Vote {
            kind: VoteKind::Precommit,
            height: 3,
            round: 1,
            block_id: Some(BlockId([block; 32])),
            validator: 0,
        };
        SignedVote::sign(CHAIN, vote, validator)
    };
    let evidence = Evidence::DuplicateVote {
        first: precommit(1),
        second: precommit(2),
    };
    let status = node
        .node_client()
        .await
        .status(v1::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    let report = |nonce: u8| {
        varde_ledger::signing::sign_misbehaviour_report(
            CHAIN,
            validator,
            &evidence,
            status.height + 1_000,
            &[nonce],
        )
        .unwrap()
    };
    let first = commit(&mut client, report(1)).await;
    assert!(is_applied(&first.receipt), "{first:?}");
    let again = commit(&mut client, report(2)).await;
    assert_eq!(
        rejection(&again.receipt),
        Some(v1::RejectionReason::EvidenceAlreadyRecorded)
    );

    let municipality = keys.of(demo::MUNICIPALITY);
    let listed = client
        .list_misbehaviour(sign!(
            municipality,
            "/varde.v1.Ledger/ListMisbehaviour",
            v1::ListMisbehaviourRequest::default()
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.records.len(), 1);
    assert!(listed.next_page_token.is_empty());
    let record = &listed.records[0];
    assert_eq!(
        record.offender_public_key,
        validator.verifying_key().to_bytes().to_vec()
    );
    assert_eq!(
        (record.validator_index, record.height, record.round),
        (0, 3, 1)
    );
    assert_eq!(record.kind, v1::MisbehaviourKind::DuplicatePrecommit as i32);
    assert_eq!(record.reporter_org_number, demo::VALIDATOR.org_number);
    assert_eq!(record.report_transaction_id, first.transaction_id);
    assert_eq!(
        record.evidence,
        Some(varde_ledger::consensus_wire::evidence_to_wire(&evidence))
    );
    assert!(listed.height >= first.receipt.as_ref().unwrap().height);

    let bad_token = client
        .list_misbehaviour(sign!(
            municipality,
            "/varde.v1.Ledger/ListMisbehaviour",
            v1::ListMisbehaviourRequest {
                auth: None,
                page_size: 1,
                page_token: "00".to_owned(),
            }
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_token.code(), Code::InvalidArgument);

    let mut request = v1::StreamEventsRequest {
        from_height: 1,
        kinds: vec![v1::EventKind::Misbehaviour as i32],
        ..Default::default()
    };
    request.auth = Some(authenticate(
        keys.of(demo::MUNICIPALITY),
        "/varde.v1.Ledger/StreamEvents",
        &request,
    ));
    let mut stream = client.stream_events(request).await.unwrap().into_inner();
    let event = stream.message().await.unwrap().unwrap();
    assert_eq!(event.transaction_id, first.transaction_id);
    node.stop().await;
}

async fn channel(node: &TestNode) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(node.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

// The proof bundles the node serves verify with the light client from the genesis file alone:
// a transaction with its receipt (and its body, for a caller that may see it; the receipt's hash
// only, for another member), ledger consistency, certified headers and the validator-set history.
#[tokio::test]
async fn proof_bundles_verify_from_the_genesis_file() {
    use prost::Message;
    use varde_ledger::proof::{LightClient, VerifiedClaim};
    let dir = tempfile::tempdir().unwrap();
    let keys = DemoKeys::from_seed(8);
    let node = start_node(dir.path(), &keys).await;
    let genesis: varde_ledger::membership::Genesis =
        serde_json::from_slice(&std::fs::read(dir.path().join("genesis.json")).unwrap()).unwrap();
    let light = LightClient::from_genesis(&genesis).unwrap();
    let mut client = node.ledger().await;
    let hospital = keys.of(demo::HOSPITAL);
    let municipality = keys.of(demo::MUNICIPALITY);
    let first = commit(&mut client, anchor(&keys, "proven-1", 1)).await;
    let first_height = first.receipt.as_ref().unwrap().height;
    let second = commit(&mut client, anchor(&keys, "proven-2", 2)).await;

    let sets = client
        .get_validator_sets(sign!(
            hospital,
            "/varde.v1.Ledger/GetValidatorSets",
            v1::GetValidatorSetsRequest { auth: None }
        ))
        .await
        .unwrap()
        .into_inner();
    light.check_validator_sets(&sets.sets).unwrap();
    let head = client
        .get_certified_header(sign!(
            hospital,
            "/varde.v1.Ledger/GetCertifiedHeader",
            v1::GetCertifiedHeaderRequest {
                auth: None,
                height: 0,
            }
        ))
        .await
        .unwrap()
        .into_inner();
    let head = light.verify_header(&head).unwrap();
    assert!(head.height >= second.receipt.as_ref().unwrap().height);

    let proof_for = |key: &ed25519_dalek::SigningKey, id: &[u8]| {
        sign!(
            key,
            "/varde.v1.Ledger/GetTransactionProof",
            v1::GetTransactionProofRequest {
                auth: None,
                transaction_id: id.to_vec(),
                height: 0,
            }
        )
    };
    let bundle = client
        .get_transaction_proof(proof_for(hospital, &second.transaction_id))
        .await
        .unwrap()
        .into_inner();
    match light.verify_bundle(&bundle.encode_to_vec()).unwrap() {
        VerifiedClaim::Transaction {
            receipt,
            transaction,
            ..
        } => {
            assert_eq!(receipt, second.receipt);
            assert!(transaction.is_some());
        }
        other => panic!("not a transaction claim: {other:?}"),
    }
    let hidden = client
        .get_transaction_proof(proof_for(municipality, &second.transaction_id))
        .await
        .unwrap()
        .into_inner();
    match light.verify_bundle(&hidden.encode_to_vec()).unwrap() {
        VerifiedClaim::Transaction {
            receipt,
            transaction,
            ..
        } => assert!(receipt.is_none() && transaction.is_none()),
        other => panic!("not a transaction claim: {other:?}"),
    }
    let mut bent = bundle.encode_to_vec();
    let middle = bent.len() / 2;
    bent[middle] ^= 0x10;
    assert!(light.verify_bundle(&bent).is_err());

    let first_size = client
        .get_certified_header(sign!(
            hospital,
            "/varde.v1.Ledger/GetCertifiedHeader",
            v1::GetCertifiedHeaderRequest {
                auth: None,
                height: first_height,
            }
        ))
        .await
        .unwrap()
        .into_inner()
        .header
        .unwrap()
        .ledger_size;
    let consistency = client
        .get_consistency_bundle(sign!(
            hospital,
            "/varde.v1.Ledger/GetConsistencyBundle",
            v1::GetConsistencyBundleRequest {
                auth: None,
                first_size,
                second_height: 0,
            }
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        light.verify_bundle(&consistency.encode_to_vec()).unwrap(),
        VerifiedClaim::Consistency { .. }
    ));

    let unknown = client
        .get_transaction_proof(proof_for(hospital, &[7; 32]))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let beyond = client
        .get_consistency_bundle(sign!(
            hospital,
            "/varde.v1.Ledger/GetConsistencyBundle",
            v1::GetConsistencyBundleRequest {
                auth: None,
                first_size: 1_000,
                second_height: 0,
            }
        ))
        .await
        .unwrap_err();
    assert_eq!(beyond.code(), Code::InvalidArgument);

    // State proofs: the custodian gets its record with its value and an unknown record's
    // absence; another member gets PERMISSION_DENIED for both, so existence does not leak.
    let mut query = node.query().await;
    let state_proof = |key: &ed25519_dalek::SigningKey, record_id: &str| {
        sign!(
            key,
            "/varde.v1.Query/GetStateProof",
            v1::GetStateProofRequest {
                auth: None,
                entry: Some(v1::get_state_proof_request::Entry::Record(record(
                    demo::HOSPITAL.org_number,
                    record_id,
                ))),
            }
        )
    };
    let present = query
        .get_state_proof(state_proof(hospital, "proven-2"))
        .await
        .unwrap()
        .into_inner();
    match light.verify_bundle(&present.encode_to_vec()).unwrap() {
        VerifiedClaim::StateEntry { entry, .. } => assert!(matches!(
            entry.value,
            Some(v1::state_entry::Value::RecordValue(ref pointer)) if pointer.record_id == "proven-2"
        )),
        other => panic!("not a state entry claim: {other:?}"),
    }
    let absent = query
        .get_state_proof(state_proof(hospital, "never-anchored"))
        .await
        .unwrap()
        .into_inner();
    match light.verify_bundle(&absent.encode_to_vec()).unwrap() {
        VerifiedClaim::StateEntry { entry, .. } => assert_eq!(entry.value, None),
        other => panic!("not a state entry claim: {other:?}"),
    }
    for record_id in ["proven-2", "never-anchored"] {
        let refused = query
            .get_state_proof(state_proof(municipality, record_id))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{record_id}");
    }
    let short_id = query
        .get_state_proof(sign!(
            hospital,
            "/varde.v1.Query/GetStateProof",
            v1::GetStateProofRequest {
                auth: None,
                entry: Some(v1::get_state_proof_request::Entry::GrantId(vec![1; 31])),
            }
        ))
        .await
        .unwrap_err();
    assert_eq!(short_id.code(), Code::InvalidArgument);
    let unsigned = query
        .get_state_proof(v1::GetStateProofRequest {
            auth: None,
            entry: Some(v1::get_state_proof_request::Entry::Record(record(
                demo::HOSPITAL.org_number,
                "proven-2",
            ))),
        })
        .await
        .unwrap_err();
    assert_eq!(unsigned.code(), Code::Unauthenticated);
    node.stop().await;
}
