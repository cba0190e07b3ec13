//! Writes the seed corpus (`fuzz/seeds/<target>/`): valid inputs of every kind, made by the same
//! code that makes them in the node, so that each target starts from inputs that pass its
//! decoder. Run from `fuzz/`: `cargo run --release --example make_seeds`.

use std::path::Path;
use std::sync::Arc;

use prost::Message as _;
use varde_consensus::{
    Block, BlockId, Ed25519Verifier, Engine, EngineConfig, Message, Proposal, ProposalMessage,
    SignedProposal, SignedVote, Timeouts, Vote, VoteKind,
};
use varde_fuzz::{
    CHAIN_ID, CONSENT_AUTHORITY, GENESIS_TIME_UNIX_MS, HOSPITAL, HOSPITAL_KEY, MUNICIPALITY,
    VALIDATOR_KEYS, genesis, key, validator_set,
};
use varde_ledger::node_config::{GrpcTlsConfig, NetworkConfig, NodeConfig, PeerConfig};
use varde_ledger::signing;
use varde_ledger::stored::StoredValue;
use varde_ledger::{Ledger, consensus_wire, keyfile};
use varde_proto::v1::{self, transaction_body::Action};
use varde_storage::{Column, MemoryStore, Store};

const HOUR: i64 = 3_600_000;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("seeds").join(target);
    std::fs::create_dir_all(&dir).expect("seed directory");
    std::fs::write(dir.join(name), bytes).expect("seed file");
}

fn subject() -> Vec<u8> {
    vec![0x42; 32]
}

fn record() -> v1::RecordReference {
    v1::RecordReference {
        custodian_org_number: HOSPITAL.to_owned(),
        record_id: "epikrise-1".to_owned(),
    }
}

fn actions() -> Vec<(u8, Action)> {
    vec![
        (
            HOSPITAL_KEY,
            Action::AnchorRecord(v1::AnchorRecord {
                custodian_org_number: HOSPITAL.to_owned(),
                record_id: "epikrise-1".to_owned(),
                subject_pseudonym: subject(),
                category_code: "epikrise".to_owned(),
                location_uri: "https://ehr.hospital.example/r/epikrise-1".to_owned(),
                content_sha256: vec![7; 32],
                confidentiality: v1::Confidentiality::Normal as i32,
                created_at_unix_ms: GENESIS_TIME_UNIX_MS,
            }),
        ),
        (
            3,
            Action::GrantAccess(v1::GrantAccess {
                issuer_org_number: CONSENT_AUTHORITY.to_owned(),
                subject_pseudonym: subject(),
                grantee_org_number: MUNICIPALITY.to_owned(),
                scope: Some(v1::GrantScope {
                    scope: Some(v1::grant_scope::Scope::Record(record())),
                }),
                purposes: vec![v1::PurposeOfUse::Treat as i32],
                valid_from_unix_ms: GENESIS_TIME_UNIX_MS,
                valid_until_unix_ms: GENESIS_TIME_UNIX_MS + 48 * HOUR,
                basis: Some(v1::GrantBasis {
                    basis: Some(v1::grant_basis::Basis::PatientConsent(
                        v1::PatientConsent::default(),
                    )),
                }),
                ..Default::default()
            }),
        ),
        (
            3,
            Action::BlockAccess(v1::BlockAccess {
                issuer_org_number: CONSENT_AUTHORITY.to_owned(),
                subject_pseudonym: subject(),
                target: Some(v1::block_access::Target::InstitutionOrgNumber(
                    MUNICIPALITY.to_owned(),
                )),
            }),
        ),
        (
            2,
            Action::LogAccess(v1::LogAccess {
                accessor_org_number: MUNICIPALITY.to_owned(),
                accessor_hpr_number: "1234567".to_owned(),
                record: Some(record()),
                purpose: v1::PurposeOfUse::Treat as i32,
                accessed_at_unix_ms: GENESIS_TIME_UNIX_MS + HOUR,
                attestation_sha256: Vec::new(),
                basis: Some(v1::log_access::Basis::GrantId(vec![9; 32])),
            }),
        ),
        (
            3,
            Action::RevokeGrant(v1::RevokeGrant {
                issuer_org_number: CONSENT_AUTHORITY.to_owned(),
                grant_id: vec![9; 32],
                reason: "withdrawn".to_owned(),
            }),
        ),
    ]
}

fn envelope(seed: u8, action: Action, nonce: u8) -> v1::SignedTransaction {
    let body = v1::TransactionBody {
        chain_id: CHAIN_ID.to_owned(),
        expires_at_height: 50,
        nonce: vec![nonce],
        action: Some(action),
        ..Default::default()
    };
    let bytes = body.encode_to_vec();
    let parts = signing::sign(CHAIN_ID, &key(seed), &bytes).expect("signs");
    v1::SignedTransaction {
        body: bytes,
        signer_public_key: parts.signer_public_key.to_vec(),
        signature: parts.signature.to_vec(),
    }
}

fn transactions() -> Vec<v1::SignedTransaction> {
    let envelopes: Vec<_> = actions()
        .into_iter()
        .enumerate()
        .map(|(nonce, (seed, action))| envelope(seed, action, nonce as u8))
        .collect();
    for (index, envelope) in envelopes.iter().enumerate() {
        write(
            "transaction_envelope",
            &format!("{index}"),
            &envelope.encode_to_vec(),
        );
        write("transaction_body", &format!("{index}"), &envelope.body);
    }
    let batch = v1::TransactionBatch {
        transactions: envelopes.clone(),
    };
    write("transaction_batch", "all", &batch.encode_to_vec());
    envelopes
}

fn vote(kind: VoteKind, validator: usize, block: Option<BlockId>) -> SignedVote {
    let vote = Vote {
        kind,
        height: 1,
        round: 0,
        block_id: block,
        validator: validator as u32,
    };
    SignedVote::sign(CHAIN_ID, vote, &key(VALIDATOR_KEYS[validator]))
}

/// Executes the transactions into a block, commits it with a certificate, and returns the
/// block's payload and the store holding everything the ledger wrote.
fn committed(envelopes: Vec<v1::SignedTransaction>) -> (Vec<u8>, MemoryStore) {
    let store = MemoryStore::new();
    let ledger = Ledger::open(store, genesis()).expect("the genesis opens");
    let time = GENESIS_TIME_UNIX_MS + 2 * HOUR;
    let mut executed = ledger
        .execute_block([9; 32], time, envelopes)
        .expect("the block executes");
    let payload = executed.block.encode_to_vec();
    let certificate = certificate(BlockId(executed.block_hash));
    executed.attach_certificate(certificate.encode());
    ledger.commit(executed).expect("commits");
    let copy = MemoryStore::new();
    let mut batch = varde_storage::WriteBatch::new();
    for column in Column::ALL {
        for entry in ledger
            .store()
            .scan_prefix(column, &[], None, usize::MAX)
            .unwrap()
        {
            batch.put(column, entry.0, entry.1);
        }
    }
    copy.write(batch).unwrap();
    (payload, copy)
}

fn certificate(block_id: BlockId) -> varde_consensus::CommitCertificate {
    varde_consensus::CommitCertificate {
        height: 1,
        round: 0,
        block_id,
        signatures: (0..3)
            .map(|validator| varde_consensus::CommitSignature {
                validator: validator as u32,
                signature: vote(VoteKind::Precommit, validator, Some(block_id)).signature,
            })
            .collect(),
    }
}

fn frames(payload: &[u8]) {
    let block_id =
        BlockId(varde_ledger::ledger::decode_block(payload).map_or([1; 32], |_| [2; 32]));
    let proposal = SignedProposal::sign(
        CHAIN_ID,
        Proposal {
            height: 1,
            round: 1,
            valid_round: Some(0),
            block_id,
            proposer: 1,
        },
        &key(VALIDATOR_KEYS[1]),
    );
    let messages = [
        Message::Proposal(ProposalMessage {
            signed: proposal.clone(),
            block: Block {
                id: block_id,
                payload: Arc::from(payload),
            },
            proof_of_lock: (0..3)
                .map(|validator| vote(VoteKind::Prevote, validator, Some(block_id)))
                .collect(),
        }),
        Message::Vote(vote(VoteKind::Prevote, 2, Some(block_id))),
        Message::Vote(vote(VoteKind::Precommit, 3, None)),
    ];
    let batch = v1::ConsensusBatch {
        messages: messages
            .iter()
            .map(consensus_wire::message_to_wire)
            .collect(),
    };
    write("consensus_frame", "batch", &batch.encode_to_vec());
    let certificate = certificate(block_id);
    let response = v1::SyncResponse {
        blocks: vec![v1::SyncedBlock {
            block: payload.to_vec(),
            certificate: Some(consensus_wire::certificate_to_wire(&certificate)),
        }],
        head_height: 1,
    };
    write("sync_frame", "response", &response.encode_to_vec());
    let request = v1::SyncRequest {
        from_height: 1,
        max_blocks: 16,
    };
    write("sync_frame", "request", &request.encode_to_vec());
    let state = varde_consensus::SafetyState {
        height: 1,
        round: 1,
        step: varde_consensus::Step::Prevote,
        locked: None,
        valid: None,
        round_proof: vec![vote(VoteKind::Precommit, 1, None)],
        own_proposal: None,
        own_prevote: Some(vote(VoteKind::Prevote, 0, Some(block_id))),
        own_precommit: None,
    };
    let mut seed = vec![0u8];
    seed.extend(state.encode());
    write("safety_state", "prevoted", &seed);
    let mut seed = vec![12u8];
    seed.extend(state.encode());
    write("persisted_value", "safety-prevoted", &seed);
    let mut engine = Engine::new(
        EngineConfig::new(CHAIN_ID, Timeouts::default()).unwrap(),
        key(VALIDATOR_KEYS[0]),
        Arc::new(Ed25519Verifier),
        1,
        validator_set(),
        None,
    )
    .unwrap();
    let _ = engine.start();
    let mut seed = vec![0u8];
    seed.extend(engine.safety_state().encode());
    write("safety_state", "started", &seed);
}

fn persisted(payload: &[u8], store: &MemoryStore) {
    // The target's kinds, by column and key.
    for column in Column::ALL {
        for (index, entry) in store
            .scan_prefix(column, &[], None, usize::MAX)
            .unwrap()
            .iter()
            .enumerate()
        {
            let (key, value) = (&entry.0, &entry.1);
            let kind: u8 = match column {
                Column::Meta if key == b"head" => 0,
                Column::Meta if key == b"genesis" => 8,
                Column::Meta if key.starts_with(b"replay/id/") => 6,
                Column::Meta if key.starts_with(b"misbehaviour/") => 7,
                Column::Receipts => 1,
                Column::Records => 2,
                Column::Grants => 3,
                Column::AccessBlocks => 4,
                Column::AccessEvents => 5,
                Column::Certificates => 9,
                Column::Blocks => 10,
                _ => continue,
            };
            let mut seed = vec![kind];
            seed.extend_from_slice(value);
            write(
                "persisted_value",
                &format!("{}-{index}", column.name()),
                &seed,
            );
        }
    }
    let mut seed = vec![10u8];
    seed.extend_from_slice(payload);
    write("persisted_value", "block", &seed);
    let mut identity = vec![11u8, 10, 32];
    identity.extend_from_slice(b"varde-fuzz");
    identity.extend_from_slice(&[7; 32]);
    identity.extend_from_slice(&varde_storage::SCHEMA_VERSION.to_be_bytes());
    write("persisted_value", "identity", &identity);
}

fn queries() {
    let key = key(HOSPITAL_KEY);
    let sign =
        |method: &str, request: &mut dyn FnMut(Option<v1::RequestAuthentication>) -> Vec<u8>| {
            let unsigned = request(None);
            let digest_request = RawRequest(unsigned);
            let auth = signing::sign_query(
                CHAIN_ID,
                method,
                &key,
                GENESIS_TIME_UNIX_MS,
                &[5; 16],
                &digest_request,
            )
            .expect("signs");
            request(Some(auth))
        };
    let mut seeds: Vec<(u8, Vec<u8>)> = Vec::new();
    seeds.push((
        5,
        sign("/varde.v1.Query/GetRecord", &mut |auth| {
            v1::GetRecordRequest {
                auth,
                record: Some(record()),
            }
            .encode_to_vec()
        }),
    ));
    seeds.push((
        6,
        sign("/varde.v1.Query/ListRecords", &mut |auth| {
            v1::ListRecordsRequest {
                auth,
                filter: Some(v1::list_records_request::Filter::SubjectPseudonym(subject())),
                page_size: 10,
                page_token: String::new(),
            }
            .encode_to_vec()
        }),
    ));
    seeds.push((
        8,
        sign("/varde.v1.Query/ListAccessEvents", &mut |auth| {
            v1::ListAccessEventsRequest {
                auth,
                filter: Some(v1::list_access_events_request::Filter::Record(record())),
                page_size: 10,
                page_token: varde_ledger::page_token::PageTokenKey::derive(
                    b"varde-fuzz page tokens",
                )
                .seal(b"caller|method|filter", b"cursor"),
            }
            .encode_to_vec()
        }),
    ));
    seeds.push((
        10,
        sign("/varde.v1.Query/CheckAccess", &mut |auth| {
            v1::CheckAccessRequest {
                auth,
                accessor_org_number: MUNICIPALITY.to_owned(),
                accessor_hpr_number: "1234567".to_owned(),
                record: Some(record()),
                purpose: v1::PurposeOfUse::Treat as i32,
                at_unix_ms: GENESIS_TIME_UNIX_MS,
                with_proof: false,
            }
            .encode_to_vec()
        }),
    ));
    seeds.push((
        1,
        sign("/varde.v1.Ledger/GetBlock", &mut |auth| {
            v1::GetBlockRequest {
                auth,
                ..Default::default()
            }
            .encode_to_vec()
        }),
    ));
    for (index, (selector, bytes)) in seeds.into_iter().enumerate() {
        let mut seed = vec![selector];
        seed.extend(bytes);
        write("query_request", &format!("{index}"), &seed);
    }
}

/// Bytes that encode as themselves, for signing a request encoded without its `auth`.
#[derive(Clone, PartialEq)]
struct RawRequest(Vec<u8>);

impl std::fmt::Debug for RawRequest {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("RawRequest")
    }
}

impl prost::Message for RawRequest {
    fn encode_raw(&self, buf: &mut impl prost::bytes::BufMut) {
        buf.put_slice(&self.0);
    }
    fn merge_field(
        &mut self,
        _: u32,
        _: prost::encoding::WireType,
        _: &mut impl prost::bytes::Buf,
        _: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        unreachable!("never decoded")
    }
    fn encoded_len(&self) -> usize {
        self.0.len()
    }
    fn clear(&mut self) {
        self.0.clear();
    }
}

fn files() {
    let genesis = genesis();
    write("genesis", "compact", &serde_json::to_vec(&genesis).unwrap());
    write(
        "genesis",
        "pretty",
        &serde_json::to_vec_pretty(&genesis).unwrap(),
    );
    write(
        "key_file",
        "v1",
        keyfile::signing_key_pem(&key(1)).unwrap().as_bytes(),
    );
    write(
        "key_file",
        "v1-other",
        keyfile::signing_key_pem(&key(2)).unwrap().as_bytes(),
    );
    let mut config = NodeConfig::new(
        "data".into(),
        "genesis.json".into(),
        "validator.pem".into(),
        "127.0.0.1:50051".parse().unwrap(),
    );
    config.grpc_tls = Some(GrpcTlsConfig::plaintext());
    write("node_config", "minimal", config.to_toml().as_bytes());
    config.grpc_tls = Some(GrpcTlsConfig::files(
        "tls/chain.pem".into(),
        "tls/key.pem".into(),
    ));
    config.metrics_listen_address = Some("127.0.0.1:9100".parse().unwrap());
    config.network = Some(NetworkConfig {
        listen_address: "0.0.0.0:26656".parse().unwrap(),
        peers: vec![PeerConfig {
            public_key: "ab".repeat(32),
            address: "10.0.0.2:26656".parse().unwrap(),
        }],
        observers: vec!["cd".repeat(32)],
    });
    write("node_config", "network", config.to_toml().as_bytes());
}

fn main() {
    let envelopes = transactions();
    let (payload, store) = committed(envelopes);
    frames(&payload);
    persisted(&payload, &store);
    queries();
    files();
}
