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
use varde_ledger::access::AccessRequest;
use varde_ledger::domain::{Purpose, RecordKey};
use varde_ledger::identifiers::OrgNumber;
use varde_ledger::node_config::{GrpcTlsConfig, NetworkConfig, NodeConfig, PeerConfig};
use varde_ledger::proof::{self, LightClient, StateEntryKey};
use varde_ledger::signing::{self, TransactionId};
use varde_ledger::stored::StoredValue;
use varde_ledger::visibility::Viewer;
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

/// Executes and commits the next block of `ledger`, certified by the genesis's one validator (a
/// quorum of the set the light client takes from the genesis); every transaction must apply.
fn commit_certified(
    ledger: &Ledger<MemoryStore>,
    envelopes: Vec<v1::SignedTransaction>,
) -> Vec<TransactionId> {
    let height = ledger
        .head()
        .expect("a head")
        .map_or(1, |head| head.height + 1);
    let time = GENESIS_TIME_UNIX_MS + 2 * HOUR + height as i64 * 1_000;
    let mut executed = ledger
        .execute_block([9; 32], time, envelopes)
        .expect("the block executes");
    let ids = executed
        .receipts
        .iter()
        .map(|receipt| {
            assert!(receipt.is_applied(), "{receipt:?}");
            receipt.transaction_id
        })
        .collect();
    let mut certificate = varde_consensus::CommitCertificate {
        height,
        round: 0,
        block_id: BlockId(executed.block_hash),
        signatures: Vec::new(),
    };
    let precommit = SignedVote::sign(CHAIN_ID, certificate.precommit(0), &key(VALIDATOR_KEYS[0]));
    certificate
        .signatures
        .push(varde_consensus::CommitSignature {
            validator: 0,
            signature: precommit.signature,
        });
    executed.attach_certificate(certificate.encode());
    ledger.commit(executed).expect("commits");
    ids
}

/// The municipality's CheckAccess of its own TREAT access to epikrise-1, signed by its key.
fn signed_check_access() -> (AccessRequest, Vec<u8>) {
    let request = AccessRequest {
        accessor: OrgNumber::parse(MUNICIPALITY).expect("valid"),
        person: None,
        record: RecordKey {
            custodian: OrgNumber::parse(HOSPITAL).expect("valid"),
            record_id: "epikrise-1".to_owned(),
        },
        purpose: Purpose::Treat,
        at_unix_ms: 0,
    };
    let mut question = v1::CheckAccessRequest {
        auth: None,
        accessor_org_number: MUNICIPALITY.to_owned(),
        accessor_hpr_number: String::new(),
        record: Some(record()),
        purpose: v1::PurposeOfUse::Treat as i32,
        at_unix_ms: 0,
        with_proof: true,
    };
    question.auth = Some(
        signing::sign_query(
            CHAIN_ID,
            proof::CHECK_ACCESS_METHOD,
            &key(2),
            GENESIS_TIME_UNIX_MS,
            &[6; 16],
            &question,
        )
        .expect("signs"),
    );
    (request, question.encode_to_vec())
}

/// Proof bundles of every claim kind over a ledger of three certified blocks, each checked by
/// the light client the `proof_bundle` target uses: a transaction with its receipt and body and
/// with its receipt's hash only, the consistency of heights 1 and 3, CheckAccess answers (allowed
/// by a grant; denied by a patient block) and state entries (a record, an absent record, a grant
/// and a patient block).
fn proofs() {
    let light = LightClient::from_genesis(&genesis()).expect("the genesis makes a light client");
    let ledger = Ledger::open(MemoryStore::new(), genesis()).expect("the genesis opens");
    let actions = actions();
    let (anchor, grant, access_block) = (&actions[0], &actions[1], &actions[2]);
    let first = commit_certified(
        &ledger,
        vec![
            envelope(anchor.0, anchor.1.clone(), 10),
            envelope(grant.0, grant.1.clone(), 11),
        ],
    );
    let mut second_anchor = anchor.1.clone();
    if let Action::AnchorRecord(anchor) = &mut second_anchor {
        anchor.record_id = "epikrise-2".to_owned();
    }
    commit_certified(&ledger, vec![envelope(HOSPITAL_KEY, second_anchor, 12)]);
    let mut bundles: Vec<(&str, v1::ProofBundle)> = vec![
        (
            "transaction-revealed",
            proof::transaction_bundle(&ledger, &first[0], 0, true).expect("a transaction bundle"),
        ),
        (
            "transaction-hash-only",
            proof::transaction_bundle(&ledger, &first[1], 0, false).expect("a transaction bundle"),
        ),
    ];
    let membership = ledger.membership();
    let member = |org: &str| {
        membership
            .institution(&OrgNumber::parse(org).expect("valid"))
            .expect("a member")
    };
    let now = GENESIS_TIME_UNIX_MS + 2 * HOUR;
    let authority = Viewer::new(member(CONSENT_AUTHORITY), now);
    let hospital = Viewer::new(member(HOSPITAL), now);
    let (request, question) = signed_check_access();
    let (decision, bundle) =
        proof::check_access_with_proof(&ledger, &request, None, &question, &authority)
            .expect("decides");
    assert!(decision.allowed, "the grant allows the municipality");
    bundles.push(("check-access-allowed", bundle.expect("a proven answer")));
    let present = StateEntryKey::Record(request.record.clone());
    let absent = StateEntryKey::Record(RecordKey {
        custodian: request.record.custodian.clone(),
        record_id: "never-anchored".to_owned(),
    });
    let grant_key = StateEntryKey::Grant(first[1]);
    for (name, key, viewer) in [
        ("state-entry-record", &present, &hospital),
        ("state-entry-absent", &absent, &hospital),
        ("state-entry-grant", &grant_key, &authority),
    ] {
        let bundle = proof::state_entry_bundle(&ledger, key, viewer)
            .expect("proves")
            .expect("the viewer may have the entry");
        bundles.push((name, bundle));
    }
    let blocked = commit_certified(
        &ledger,
        vec![envelope(access_block.0, access_block.1.clone(), 13)],
    );
    let first_size = 2;
    bundles.push((
        "consistency",
        proof::consistency_bundle(&ledger, first_size, 0).expect("a consistency bundle"),
    ));
    let (decision, bundle) =
        proof::check_access_with_proof(&ledger, &request, None, &question, &authority)
            .expect("decides");
    assert!(
        !decision.allowed,
        "the patient block denies the municipality"
    );
    bundles.push(("check-access-blocked", bundle.expect("a proven answer")));
    let block_key = StateEntryKey::AccessBlock(blocked[0]);
    bundles.push((
        "state-entry-block",
        proof::state_entry_bundle(&ledger, &block_key, &authority)
            .expect("proves")
            .expect("the authority may see its block"),
    ));
    for (name, bundle) in bundles {
        let bytes = bundle.encode_to_vec();
        if let Err(error) = light.verify_bundle(&bytes) {
            panic!("the {name} bundle does not verify: {error}");
        }
        write("proof_bundle", name, &bytes);
    }
}

fn main() {
    let envelopes = transactions();
    let (payload, store) = committed(envelopes);
    frames(&payload);
    persisted(&payload, &store);
    queries();
    files();
    proofs();
}
