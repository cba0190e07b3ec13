//! The read side of the access model over a real ledger: who sees which record, grant, block,
//! access event and transaction body, what CheckAccess may tell whom, and pages that skip what the
//! caller may not see without coming up short.

use ed25519_dalek::SigningKey;
use prost::Message;
use varde_ledger::access::AccessRequest;
use varde_ledger::domain::{Purpose, RecordKey, RecordPointer, RejectionReason, SubjectPseudonym};
use varde_ledger::identifiers::{HprNumber, OrgNumber};
use varde_ledger::membership::{Genesis, Institution, Role};
use varde_ledger::page_token::PageTokenKey;
use varde_ledger::query::{self, PageRequest, QueryError};
use varde_ledger::signing::{self, TransactionId};
use varde_ledger::state::{StateView, keys};
use varde_ledger::visibility::{self, CheckAccessAnswer, Outcome, Viewer};
use varde_ledger::{Ledger, pseudonym, wire};
use varde_proto::v1::{self, transaction_body::Action};
use varde_storage::{Column, MemoryStore};

const CHAIN: &str = "varde-test";
const HOSPITAL: &str = "974760673";
const MUNICIPALITY: &str = "123456785";
const CONSENT_AUTHORITY: &str = "983044778";
const STRANGER: &str = "100000008";
const AUDITOR: &str = "000000507";
const T0: i64 = 1_780_000_000_000;
const HOUR: i64 = 3_600_000;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn institution(org: &str, roles: Vec<Role>, seed: u8) -> Institution {
    let validator_key = roles
        .contains(&Role::Validator)
        .then(|| key(seed + 100).verifying_key().to_bytes());
    Institution {
        org_number: OrgNumber::parse(org).unwrap(),
        name: format!("Institution {org}"),
        roles,
        public_keys: vec![key(seed).verifying_key().to_bytes()],
        validator_key,
    }
}

fn genesis() -> Genesis {
    Genesis {
        chain_id: CHAIN.to_owned(),
        genesis_time_unix_ms: T0,
        institutions: vec![
            institution(HOSPITAL, vec![Role::Validator, Role::Submitter], 1),
            institution(MUNICIPALITY, vec![Role::Submitter], 2),
            institution(CONSENT_AUTHORITY, vec![Role::ConsentAuthority], 3),
            institution(STRANGER, vec![Role::Submitter], 4),
            institution(AUDITOR, vec![Role::Auditor], 5),
        ],
    }
}

struct World {
    ledger: Ledger<MemoryStore>,
    members: Vec<Institution>,
    nonce: u8,
}

impl World {
    fn new() -> Self {
        let genesis = genesis();
        Self {
            members: genesis.institutions.clone(),
            ledger: Ledger::open(MemoryStore::new(), genesis).unwrap(),
            nonce: 0,
        }
    }

    fn member(&self, org: &str) -> &Institution {
        self.members
            .iter()
            .find(|member| member.org_number.as_str() == org)
            .unwrap()
    }

    /// Commits one block of `(signer seed, action)` at `time`; returns the receipts' ids and
    /// rejections.
    fn commit(
        &mut self,
        time: i64,
        actions: Vec<(u8, Action)>,
    ) -> Vec<(TransactionId, Option<RejectionReason>)> {
        let envelopes = actions
            .into_iter()
            .map(|(seed, action)| {
                self.nonce += 1;
                let body = v1::TransactionBody {
                    chain_id: CHAIN.to_owned(),
                    expires_at_height: 1_000,
                    nonce: vec![self.nonce; 16],
                    action: Some(action),
                    ..Default::default()
                };
                let bytes = body.encode_to_vec();
                let parts = signing::sign(CHAIN, &key(seed), &bytes).unwrap();
                v1::SignedTransaction {
                    body: bytes,
                    signer_public_key: parts.signer_public_key.to_vec(),
                    signature: parts.signature.to_vec(),
                }
            })
            .collect();
        let executed = self.ledger.execute_block([9; 32], time, envelopes).unwrap();
        let receipts = executed
            .receipts
            .iter()
            .map(|receipt| (receipt.transaction_id, receipt.rejection()))
            .collect();
        self.ledger.commit(executed).unwrap();
        receipts
    }

    fn view(&self) -> StateView<'_, MemoryStore> {
        StateView::new(self.ledger.store())
    }

    fn record(&self, record_id: &str) -> RecordPointer {
        self.view()
            .get_value(Column::Records, &keys::record(&record_key(record_id)))
            .unwrap()
            .unwrap()
    }

    fn sees_record(&self, viewer: &Viewer<'_>, record_id: &str) -> bool {
        visibility::may_see_record(&self.view(), viewer, &self.record(record_id)).unwrap()
    }
}

fn subject(national_id: &str) -> SubjectPseudonym {
    SubjectPseudonym(pseudonym::subject_pseudonym(&[0x42; 32], national_id))
}

fn patient() -> SubjectPseudonym {
    subject("31129956715")
}

fn record_key(record_id: &str) -> RecordKey {
    RecordKey {
        custodian: OrgNumber::parse(HOSPITAL).unwrap(),
        record_id: record_id.to_owned(),
    }
}

fn reference(record_id: &str) -> v1::RecordReference {
    v1::RecordReference {
        custodian_org_number: HOSPITAL.to_owned(),
        record_id: record_id.to_owned(),
    }
}

fn anchor(record_id: &str, of: SubjectPseudonym, restricted: bool) -> Action {
    Action::AnchorRecord(v1::AnchorRecord {
        custodian_org_number: HOSPITAL.to_owned(),
        record_id: record_id.to_owned(),
        subject_pseudonym: of.0.to_vec(),
        category_code: "epikrise".to_owned(),
        location_uri: format!("https://ehr.hospital.example/r/{record_id}"),
        content_sha256: vec![7; 32],
        confidentiality: if restricted {
            v1::Confidentiality::Restricted as i32
        } else {
            v1::Confidentiality::Normal as i32
        },
        created_at_unix_ms: T0,
    })
}

fn grant_all(grantee: &str, person: Option<&str>) -> Action {
    Action::GrantAccess(v1::GrantAccess {
        issuer_org_number: CONSENT_AUTHORITY.to_owned(),
        subject_pseudonym: patient().0.to_vec(),
        grantee_org_number: grantee.to_owned(),
        grantee_hpr_number: person.unwrap_or_default().to_owned(),
        scope: Some(v1::GrantScope {
            scope: Some(v1::grant_scope::Scope::AllRecords(v1::AllRecords {})),
        }),
        purposes: vec![v1::PurposeOfUse::Treat as i32],
        valid_from_unix_ms: T0,
        valid_until_unix_ms: T0 + 100 * HOUR,
        basis: Some(v1::GrantBasis {
            basis: Some(v1::grant_basis::Basis::PatientConsent(v1::PatientConsent {
                reference: String::new(),
            })),
        }),
        ..Default::default()
    })
}

fn block(target: v1::block_access::Target) -> Action {
    Action::BlockAccess(v1::BlockAccess {
        issuer_org_number: CONSENT_AUTHORITY.to_owned(),
        subject_pseudonym: patient().0.to_vec(),
        target: Some(target),
    })
}

fn log_read(accessor: &str, record_id: &str, basis: v1::log_access::Basis) -> Action {
    Action::LogAccess(v1::LogAccess {
        accessor_org_number: accessor.to_owned(),
        accessor_hpr_number: "1234567".to_owned(),
        record: Some(reference(record_id)),
        purpose: if matches!(basis, v1::log_access::Basis::Emergency(_)) {
            v1::PurposeOfUse::Etreat as i32
        } else {
            v1::PurposeOfUse::Treat as i32
        },
        accessed_at_unix_ms: T0,
        attestation_sha256: vec![],
        basis: Some(basis),
    })
}

fn domain_action(action: Action) -> varde_ledger::domain::Action {
    let body = v1::TransactionBody {
        expires_at_height: 1,
        action: Some(action),
        ..Default::default()
    };
    wire::decode_body(body).unwrap().action
}

// A grantee sees the records its grant covers while the grant holds, and loses them at once when
// the patient blocks it (or the grant's person); others never see them.
#[test]
fn grants_open_records_and_patient_blocks_close_them() {
    let mut world = World::new();
    world.commit(
        T0,
        vec![
            (1, anchor("r-1", patient(), false)),
            (1, anchor("r-secret", patient(), true)),
            (3, grant_all(MUNICIPALITY, None)),
        ],
    );
    let now = T0 + HOUR;
    let municipality = world.member(MUNICIPALITY).clone();
    let stranger = world.member(STRANGER).clone();
    let hospital = world.member(HOSPITAL).clone();
    let grantee = Viewer::new(&municipality, now);
    assert!(world.sees_record(&grantee, "r-1"));
    // A restricted record opens only with a grant scoped to it.
    assert!(!world.sees_record(&grantee, "r-secret"));
    assert!(!world.sees_record(&Viewer::new(&stranger, now), "r-1"));
    assert!(world.sees_record(&Viewer::new(&hospital, now), "r-secret"));
    // Outside the grant's window the record is hidden again.
    assert!(!world.sees_record(&Viewer::new(&municipality, T0 + 200 * HOUR), "r-1"));
    world.commit(
        T0 + 2 * HOUR,
        vec![(
            3,
            block(v1::block_access::Target::InstitutionOrgNumber(
                MUNICIPALITY.to_owned(),
            )),
        )],
    );
    assert!(!world.sees_record(&grantee, "r-1"));
}

// A block of the person a grant names closes that grant's view too.
#[test]
fn a_blocked_person_closes_the_grant_to_that_person() {
    let mut world = World::new();
    world.commit(
        T0,
        vec![
            (1, anchor("r-1", patient(), false)),
            (3, grant_all(MUNICIPALITY, Some("7654321"))),
        ],
    );
    let municipality = world.member(MUNICIPALITY).clone();
    let viewer = Viewer::new(&municipality, T0 + HOUR);
    assert!(world.sees_record(&viewer, "r-1"));
    world.commit(
        T0 + HOUR,
        vec![(
            3,
            block(v1::block_access::Target::HprNumber("7654321".into())),
        )],
    );
    assert!(!world.sees_record(&viewer, "r-1"));
}

// The consent authority sees a subject's items only when it names that subject; the auditor
// always; an institution without a grant never.
#[test]
fn the_consent_authority_sees_what_it_names() {
    let mut world = World::new();
    let receipts = world.commit(
        T0,
        vec![
            (1, anchor("r-1", patient(), false)),
            (
                2,
                log_read(
                    MUNICIPALITY,
                    "r-1",
                    v1::log_access::Basis::Emergency(v1::EmergencyAccess {
                        justification: "unconscious".into(),
                    }),
                ),
            ),
        ],
    );
    assert!(receipts.iter().all(|(_, rejection)| rejection.is_none()));
    let authority = world.member(CONSENT_AUTHORITY).clone();
    let auditor = world.member(AUDITOR).clone();
    let stranger = world.member(STRANGER).clone();
    let now = T0 + HOUR;
    let unnamed = Viewer::new(&authority, now);
    let named = Viewer::new(&authority, now).naming_subject(patient());
    let other_subject = Viewer::new(&authority, now).naming_subject(subject("30108299939"));
    assert!(!world.sees_record(&unnamed, "r-1"));
    assert!(world.sees_record(&named, "r-1"));
    assert!(!world.sees_record(&other_subject, "r-1"));
    assert!(world.sees_record(&Viewer::new(&auditor, now), "r-1"));

    let tokens = PageTokenKey::derive(b"node");
    let events = |viewer: &Viewer<'_>| {
        query::access_events_by_subject(
            world.ledger.store(),
            &patient(),
            PageRequest {
                page_size: 0,
                page_token: "",
                tokens: &tokens,
                scope: b"scope",
            },
            |_, event| Ok(visibility::may_see_access_event(viewer, event)),
        )
        .unwrap()
        .items
    };
    assert_eq!(events(&named).len(), 1);
    assert_eq!(events(&unnamed).len(), 0);
    assert_eq!(events(&Viewer::new(&stranger, now)).len(), 0);
    // The accessor sees its own read, the custodian reads of its record.
    let municipality = world.member(MUNICIPALITY).clone();
    let hospital = world.member(HOSPITAL).clone();
    assert_eq!(events(&Viewer::new(&municipality, now)).len(), 1);
    assert_eq!(events(&Viewer::new(&hospital, now)).len(), 1);
}

// Transaction bodies: the parties of what was applied, the signer of what was rejected, every
// member for a misbehaviour report.
#[test]
fn transaction_bodies_follow_the_same_rule() {
    let mut world = World::new();
    world.commit(
        T0,
        vec![
            (1, anchor("r-1", patient(), false)),
            (3, grant_all(MUNICIPALITY, None)),
        ],
    );
    let now = T0 + HOUR;
    let view = world.view();
    let sees = |org: &str, action: Action, outcome: Outcome, signer: &str| {
        let caller = world.member(org).clone();
        visibility::may_see_transaction(
            &view,
            &Viewer::new(&caller, now),
            Some(world.member(signer)),
            &domain_action(action),
            outcome,
        )
        .unwrap()
    };
    let anchored = || anchor("r-1", patient(), false);
    assert!(sees(HOSPITAL, anchored(), Outcome::Applied, HOSPITAL));
    assert!(sees(MUNICIPALITY, anchored(), Outcome::Applied, HOSPITAL));
    assert!(!sees(STRANGER, anchored(), Outcome::Applied, HOSPITAL));
    assert!(!sees(
        CONSENT_AUTHORITY,
        anchored(),
        Outcome::Applied,
        HOSPITAL
    ));
    assert!(sees(AUDITOR, anchored(), Outcome::Applied, HOSPITAL));
    // A rejected transaction is its signer's alone: the stranger's bogus anchor is not the
    // hospital's to read, and the stranger does not see the hospital's rejected one.
    assert!(sees(STRANGER, anchored(), Outcome::Rejected, STRANGER));
    assert!(!sees(HOSPITAL, anchored(), Outcome::Rejected, STRANGER));
    assert!(!sees(MUNICIPALITY, anchored(), Outcome::Rejected, HOSPITAL));
    // Grants: issuer and grantee.
    assert!(sees(
        MUNICIPALITY,
        grant_all(MUNICIPALITY, None),
        Outcome::Applied,
        CONSENT_AUTHORITY
    ));
    assert!(!sees(
        STRANGER,
        grant_all(MUNICIPALITY, None),
        Outcome::Applied,
        CONSENT_AUTHORITY
    ));
    // The subject of a read is found through the record it read.
    let read = domain_action(log_read(
        MUNICIPALITY,
        "r-1",
        v1::log_access::Basis::GrantId(vec![1; 32]),
    ));
    assert_eq!(
        visibility::subject_of(&view, &read).unwrap(),
        Some(patient())
    );
}

// CheckAccess: in full for the custodian; for an accessor without sight of the record, one
// denial whether the record exists or not; refused for anyone else.
#[test]
fn check_access_tells_each_caller_only_what_it_may_know() {
    let mut world = World::new();
    world.commit(T0, vec![(1, anchor("r-1", patient(), false))]);
    let now = T0 + HOUR;
    let ask = |caller: &str, accessor: &str, record_id: &str| {
        let caller = world.member(caller).clone();
        let request = AccessRequest {
            accessor: OrgNumber::parse(accessor).unwrap(),
            person: None::<HprNumber>,
            record: record_key(record_id),
            purpose: Purpose::Etreat,
            at_unix_ms: now,
        };
        let answer =
            visibility::check_access_answer(&world.view(), &Viewer::new(&caller, now), &request)
                .unwrap();
        let decision = world.ledger.check_access(request, Some(now)).unwrap();
        (answer, visibility::redact_decision(decision, answer))
    };
    let (answer, existing) = ask(MUNICIPALITY, MUNICIPALITY, "r-1");
    assert_eq!(answer, CheckAccessAnswer::Opaque);
    let (_, missing) = ask(MUNICIPALITY, MUNICIPALITY, "r-unknown");
    assert_eq!(existing.reason, missing.reason);
    assert_eq!(existing.allowed, missing.allowed);
    assert!(!existing.emergency);
    let (answer, full) = ask(HOSPITAL, MUNICIPALITY, "r-1");
    assert_eq!(answer, CheckAccessAnswer::Full);
    assert!(full.allowed && full.emergency);
    assert_eq!(
        ask(STRANGER, MUNICIPALITY, "r-1").0,
        CheckAccessAnswer::Refused
    );
}

// A consent authority's refused record grant says the same for an unknown record as for another
// patient's record.
#[test]
fn refused_grants_do_not_tell_whose_record_it_is() {
    let mut world = World::new();
    world.commit(
        T0,
        vec![(1, anchor("r-other", subject("30108299939"), false))],
    );
    let grant_for = |record_id: &str| {
        let mut action = grant_all(MUNICIPALITY, None);
        if let Action::GrantAccess(grant) = &mut action {
            grant.scope = Some(v1::GrantScope {
                scope: Some(v1::grant_scope::Scope::Record(reference(record_id))),
            });
        }
        action
    };
    let receipts = world.commit(
        T0 + 1,
        vec![(3, grant_for("r-other")), (3, grant_for("r-unknown"))],
    );
    assert_eq!(receipts[0].1, Some(RejectionReason::UnknownRecord));
    assert_eq!(receipts[1].1, Some(RejectionReason::UnknownRecord));
    let detail = |index: usize| {
        let receipt = world.ledger.receipt(&receipts[index].0).unwrap().unwrap();
        format!("{:?}", receipt.outcome)
    };
    assert_eq!(detail(0), detail(1));
}

// A page holds page_size visible items whenever more follow, skipping hidden ones; the token
// continues the listing for its scope only and carries no index key in clear.
#[test]
fn pages_are_full_and_tokens_bound_to_their_listing() {
    let mut world = World::new();
    let mut actions = Vec::new();
    for index in 0..12 {
        // Every third record is restricted: hidden from the municipality's all-records grant.
        actions.push((
            1,
            anchor(&format!("r-{index:02}"), patient(), index % 3 == 0),
        ));
    }
    actions.push((3, grant_all(MUNICIPALITY, None)));
    world.commit(T0, actions);
    let municipality = world.member(MUNICIPALITY).clone();
    let viewer = Viewer::new(&municipality, T0 + HOUR);
    let tokens = PageTokenKey::derive(b"node");
    let page = |token: &str, scope: &[u8]| {
        query::records_by_subject(
            world.ledger.store(),
            &patient(),
            PageRequest {
                page_size: 3,
                page_token: token,
                tokens: &tokens,
                scope,
            },
            |view, record| visibility::may_see_record(view, &viewer, record),
        )
    };
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let result = page(&token, b"municipality").unwrap();
        pages += 1;
        assert!(result.items.len() == 3 || result.next_page_token.is_empty());
        assert!(
            !result
                .next_page_token
                .contains(&varde_ledger::hex::encode(b"records_by"))
        );
        seen.extend(
            result
                .items
                .into_iter()
                .map(|record| record.record.record_id),
        );
        if result.next_page_token.is_empty() {
            break;
        }
        token = result.next_page_token;
    }
    // 8 visible of 12: pages of 3, 3, 2, and no empty page at the end.
    assert_eq!(seen.len(), 8);
    assert_eq!(pages, 3);
    assert!(
        seen.iter()
            .all(|id| !["r-00", "r-03", "r-06", "r-09"].contains(&id.as_str()))
    );
    let first = page("", b"municipality").unwrap();
    assert!(matches!(
        page(&first.next_page_token, b"someone else"),
        Err(QueryError::InvalidPageToken)
    ));
    let forged = varde_ledger::hex::encode(b"records_by_subject/whatever");
    assert!(matches!(
        page(&forged, b"municipality"),
        Err(QueryError::InvalidPageToken)
    ));
}
