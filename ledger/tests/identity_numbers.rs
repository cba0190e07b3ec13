//! Issue 8: a correctly signed transaction must not carry a national identity number in any
//! form, because the ledger keeps the body's bytes forever. Each smuggling form is built by hand,
//! signed, and refused at admission with a typed error that does not echo the number; the honest
//! transaction passes.

use ed25519_dalek::SigningKey;
use prost::Message;
use varde_consensus::{BlockId, Evidence, SignedVote, Vote, VoteKind};
use varde_ledger::Ledger;
use varde_ledger::canonical::CanonicalError;
use varde_ledger::identifiers::OrgNumber;
use varde_ledger::ledger::decode_block;
use varde_ledger::membership::{Genesis, Institution, Role};
use varde_ledger::signing;
use varde_ledger::wire::{self, FieldProblem, TransactionError, VerifiedTransaction};
use varde_proto::v1::{self, transaction_body::Action};
use varde_storage::MemoryStore;

const CHAIN: &str = "varde-test";
const HOSPITAL: &str = "974760673";
const T0: i64 = 1_780_000_000_000;
/// A valid fødselsnummer (current rule) and one valid only under the 2032 rule.
const NUMBER: &str = "31129956715";
const NUMBER_2032: &str = "30108299939";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

fn anchor() -> v1::AnchorRecord {
    v1::AnchorRecord {
        custodian_org_number: HOSPITAL.to_owned(),
        record_id: "epikrise-2026-0001".to_owned(),
        subject_pseudonym: vec![0x11; 32],
        category_code: "epikrise".to_owned(),
        location_uri: "https://ehr.example/records/epikrise-2026-0001".to_owned(),
        content_sha256: vec![0xab; 32],
        confidentiality: v1::Confidentiality::Normal as i32,
        created_at_unix_ms: T0,
    }
}

fn body_with(anchor: v1::AnchorRecord) -> v1::TransactionBody {
    v1::TransactionBody {
        chain_id: CHAIN.to_owned(),
        expires_at_height: 50,
        expires_at_unix_ms: 0,
        nonce: vec![7, 7, 7, 7],
        action: Some(Action::AnchorRecord(anchor)),
    }
}

/// The body's fields before the action (chain id, expiry, nonce), encoded: the action (field 10)
/// is the last field, so a canonical body is this followed by the action.
fn head(nonce: &[u8]) -> Vec<u8> {
    v1::TransactionBody {
        action: None,
        nonce: nonce.to_vec(),
        ..body_with(anchor())
    }
    .encode_to_vec()
}

/// One length-delimited field: key, length, bytes.
fn field(number: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

/// A correctly signed envelope around `body`, exactly these bytes.
fn signed(body: Vec<u8>) -> v1::SignedTransaction {
    let parts = signing::sign(CHAIN, &key(), &body).unwrap();
    v1::SignedTransaction {
        body,
        signer_public_key: parts.signer_public_key.to_vec(),
        signature: parts.signature.to_vec(),
    }
}

/// Both admission entry points (bytes, and an envelope decoded by gRPC) give the same answer.
fn admit(envelope: &v1::SignedTransaction) -> Result<VerifiedTransaction, TransactionError> {
    let from_bytes = wire::decode_transaction(CHAIN, &envelope.encode_to_vec());
    let decoded = wire::verify_envelope(CHAIN, envelope.clone());
    assert_eq!(from_bytes, decoded);
    decoded
}

/// Refused with `expected`; neither the message nor the debug form shows the number.
fn refused(envelope: &v1::SignedTransaction, expected: &TransactionError) {
    let error = admit(envelope).unwrap_err();
    assert_eq!(&error, expected);
    for shown in [error.to_string(), format!("{error:?}")] {
        for secret in [NUMBER, NUMBER_2032, "56715", "99939"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}

fn field_refused(envelope: &v1::SignedTransaction, path: &str, problem: FieldProblem) {
    refused(
        envelope,
        &TransactionError::Field(wire::FieldError {
            field: path.to_owned(),
            problem,
        }),
    );
}

fn anchor_where(change: impl FnOnce(&mut v1::AnchorRecord)) -> v1::SignedTransaction {
    let mut anchor = anchor();
    change(&mut anchor);
    signed(body_with(anchor).encode_to_vec())
}

// The honest transaction, and its hand-built twin, pass; they are the same bytes.
#[test]
fn an_honest_anchor_passes() {
    let honest = signed(body_with(anchor()).encode_to_vec());
    let mut by_hand = head(&[7, 7, 7, 7]);
    by_hand.extend(field(10, &anchor().encode_to_vec()));
    assert_eq!(by_hand, honest.body);
    let verified = admit(&honest).unwrap();
    assert_eq!(verified.envelope, honest);
    // The 2032 number's digits in other places that are no identity number pass too.
    assert!(
        admit(&anchor_where(
            |anchor| anchor.record_id = "30.10.2082 kl. 9".into()
        ))
        .is_ok()
    );
}

// Smuggling form 1: an unknown field of the body (or of the action) carries the number.
#[test]
fn an_unknown_field_is_refused() {
    let mut body = body_with(anchor()).encode_to_vec();
    body.extend(field(99, NUMBER.as_bytes()));
    assert_eq!(
        v1::TransactionBody::decode(body.as_slice()).unwrap(),
        body_with(anchor()),
        "prost's view does not show the field"
    );
    refused(&signed(body), &TransactionError::NonCanonicalBody);

    let mut action = anchor().encode_to_vec();
    action.extend(field(42, NUMBER_2032.as_bytes()));
    let mut body = head(&[7, 7, 7, 7]);
    body.extend(field(10, &action));
    refused(&signed(body), &TransactionError::NonCanonicalBody);

    // In field-number order, between the nonce (4) and the action (10).
    let mut body = head(&[7, 7, 7, 7]);
    body.extend(field(5, NUMBER.as_bytes()));
    body.extend(field(10, &anchor().encode_to_vec()));
    refused(&signed(body), &TransactionError::NonCanonicalBody);
}

// Smuggling form 2: the nonce, as ASCII digits (valid or not), in other scripts, or encoded.
#[test]
fn a_number_in_the_nonce_is_refused() {
    for nonce in [
        NUMBER.as_bytes().to_vec(),
        NUMBER_2032.as_bytes().to_vec(),
        b"\x00\x0112345678901\xfe".to_vec(),
    ] {
        let body = v1::TransactionBody {
            nonce,
            ..body_with(anchor())
        };
        field_refused(
            &signed(body.encode_to_vec()),
            "nonce",
            FieldProblem::DigitRun,
        );
    }
    for nonce in [
        "٣١١٢٩٩٥٦٧١٥".as_bytes().to_vec(),
        b"311299 56715".to_vec(),
        b"311299%35%36%37%31%35".to_vec(),
    ] {
        assert!(nonce.len() <= 32);
        let body = v1::TransactionBody {
            nonce,
            ..body_with(anchor())
        };
        field_refused(
            &signed(body.encode_to_vec()),
            "nonce",
            FieldProblem::NationalIdLike,
        );
    }
}

// Every other bytes field refuses 11 ASCII digits as well.
#[test]
fn a_number_in_a_hash_or_pseudonym_is_refused() {
    let with_digits = |prefix: &[u8]| {
        let mut bytes = prefix.to_vec();
        bytes.resize(32, 0xee);
        bytes
    };
    field_refused(
        &anchor_where(|anchor| anchor.subject_pseudonym = with_digits(NUMBER.as_bytes())),
        "anchor_record.subject_pseudonym",
        FieldProblem::DigitRun,
    );
    field_refused(
        &anchor_where(|anchor| anchor.content_sha256 = with_digits(b"\x0012345678901")),
        "anchor_record.content_sha256",
        FieldProblem::DigitRun,
    );
    let revoke = v1::TransactionBody {
        action: Some(Action::RevokeGrant(v1::RevokeGrant {
            issuer_org_number: HOSPITAL.to_owned(),
            grant_id: with_digits(NUMBER_2032.as_bytes()),
            reason: String::new(),
        })),
        ..body_with(anchor())
    };
    field_refused(
        &signed(revoke.encode_to_vec()),
        "revoke_grant.grant_id",
        FieldProblem::DigitRun,
    );
    // Evidence: a validator could sign a vote for a "block id" made of digits.
    let validator = SigningKey::from_bytes(&[9; 32]);
    let vote = |block_id: [u8; 32]| {
        SignedVote::sign(
            CHAIN,
            Vote {
                kind: VoteKind::Precommit,
                height: 3,
                round: 0,
                block_id: Some(BlockId(block_id)),
                validator: 0,
            },
            &validator,
        )
    };
    let evidence = Evidence::DuplicateVote {
        first: vote([0x01; 32]),
        second: vote(with_digits(NUMBER.as_bytes()).try_into().unwrap()),
    };
    let report = signing::sign_misbehaviour_report(CHAIN, &validator, &evidence, 50, &[1]).unwrap();
    field_refused(
        &report,
        "report_misbehaviour.evidence.duplicate_vote.second.vote.block_id",
        FieldProblem::DigitRun,
    );
    let honest = Evidence::DuplicateVote {
        first: vote([0x01; 32]),
        second: vote([0x02; 32]),
    };
    let report = signing::sign_misbehaviour_report(CHAIN, &validator, &honest, 50, &[1]).unwrap();
    assert!(admit(&report).is_ok());
}

// Smuggling form 3: a first copy of a singular field, overwritten by a later copy.
#[test]
fn an_overwritten_first_copy_is_refused() {
    // The nonce twice.
    let mut body = head(&[]);
    body.extend(field(4, NUMBER.as_bytes()));
    body.extend(field(4, &[7, 7, 7, 7]));
    body.extend(field(10, &anchor().encode_to_vec()));
    assert_eq!(
        v1::TransactionBody::decode(body.as_slice()).unwrap(),
        body_with(anchor())
    );
    refused(&signed(body), &TransactionError::NonCanonicalBody);

    // The record id (field 2) twice, inside the action, in field order otherwise.
    let mut action = v1::AnchorRecord {
        custodian_org_number: HOSPITAL.to_owned(),
        ..Default::default()
    }
    .encode_to_vec();
    action.extend(field(2, NUMBER.as_bytes()));
    action.extend(
        v1::AnchorRecord {
            custodian_org_number: String::new(),
            ..anchor()
        }
        .encode_to_vec(),
    );
    let mut body = head(&[7, 7, 7, 7]);
    body.extend(field(10, &action));
    assert_eq!(
        v1::TransactionBody::decode(body.as_slice()).unwrap(),
        body_with(anchor())
    );
    refused(&signed(body), &TransactionError::NonCanonicalBody);

    // The action twice: prost merges the copies, the later fields win.
    let first = v1::AnchorRecord {
        location_uri: format!("https://ehr.example/p/{NUMBER}"),
        ..anchor()
    };
    let mut body = head(&[7, 7, 7, 7]);
    body.extend(field(10, &first.encode_to_vec()));
    body.extend(field(10, &anchor().encode_to_vec()));
    assert_eq!(
        v1::TransactionBody::decode(body.as_slice()).unwrap(),
        body_with(anchor())
    );
    refused(&signed(body), &TransactionError::NonCanonicalBody);

    // Another oneof member first: the anchor wins.
    let retract = v1::RetractRecord {
        custodian_org_number: HOSPITAL.to_owned(),
        record_id: "r".to_owned(),
        reason: NUMBER.to_owned(),
    };
    let mut body = head(&[7, 7, 7, 7]);
    body.extend(field(12, &retract.encode_to_vec()));
    body.extend(field(10, &anchor().encode_to_vec()));
    refused(&signed(body), &TransactionError::NonCanonicalBody);
}

// Other non-canonical forms of an honest body are refused too, and so is a non-canonical envelope
// when it comes as bytes (over gRPC the node re-encodes the envelope, so only its body counts).
#[test]
fn other_non_canonical_forms_are_refused() {
    // expires_at_unix_ms = 0 written out.
    let mut body = head(&[7, 7, 7, 7]);
    body.splice(body.len() - 6..body.len() - 6, [0x18, 0x00]);
    body.extend(field(10, &anchor().encode_to_vec()));
    refused(&signed(body), &TransactionError::NonCanonicalBody);
    // expires_at_height in a padded varint.
    let mut body = head(&[7, 7, 7, 7]);
    let at = body.iter().position(|byte| *byte == 0x10).unwrap();
    body.splice(at + 1..at + 2, [0x32 | 0x80, 0x00]);
    body.extend(field(10, &anchor().encode_to_vec()));
    refused(&signed(body), &TransactionError::NonCanonicalBody);

    let honest = signed(body_with(anchor()).encode_to_vec());
    let mut bytes = honest.encode_to_vec();
    bytes.extend(field(7, NUMBER.as_bytes()));
    assert_eq!(
        wire::decode_transaction(CHAIN, &bytes),
        Err(TransactionError::NonCanonicalEnvelope)
    );
    // What tonic would hand over: the unknown field is gone, the body is honest.
    let decoded = v1::SignedTransaction::decode(bytes.as_slice()).unwrap();
    assert!(wire::verify_envelope(CHAIN, decoded).is_ok());
}

// The number in text fields, written with other Unicode digits or separators.
#[test]
fn unicode_forms_are_refused() {
    for (record_id, what) in [
        ("pas-３１１２９９５６７１５".to_owned(), "fullwidth"),
        ("pas-٣١١٢٩٩٥٦٧١٥".to_owned(), "Arabic-Indic"),
        ("pas-३११२९९५६७१५".to_owned(), "Devanagari"),
        ("pas-𝟑𝟏𝟏𝟐𝟗𝟗𝟓𝟔𝟕𝟏𝟓".to_owned(), "mathematical bold"),
        ("pas-311299\u{a0}56715".to_owned(), "no-break space"),
        (
            "pas-31\u{202f}12\u{202f}99\u{202f}56715".to_owned(),
            "narrow no-break space",
        ),
        (
            "pas-311299\u{2011}567\u{2011}15".to_owned(),
            "non-breaking hyphen",
        ),
        ("pas-311299\u{2013}56715".to_owned(), "en dash"),
        ("pas-311299\u{ff0e}56715".to_owned(), "fullwidth full stop"),
        (
            NUMBER
                .chars()
                .map(|digit| format!("{digit}\u{200b}"))
                .collect(),
            "zero-width space between every digit",
        ),
        (
            "pas-3010\u{ad}82\u{ad}999\u{ad}39".to_owned(),
            "soft hyphen, 2032 rule",
        ),
        ("③①①②⑨⑨⑤⑥⑦①⑤".to_owned(), "circled digits"),
    ] {
        println!("form: {what}");
        field_refused(
            &anchor_where(|anchor| anchor.record_id = record_id.clone()),
            "anchor_record.record_id",
            FieldProblem::NationalIdLike,
        );
    }
    let justification = v1::TransactionBody {
        action: Some(Action::LogAccess(v1::LogAccess {
            accessor_org_number: HOSPITAL.to_owned(),
            accessor_hpr_number: "1234567".to_owned(),
            record: Some(v1::RecordReference {
                custodian_org_number: HOSPITAL.to_owned(),
                record_id: "r".to_owned(),
            }),
            purpose: v1::PurposeOfUse::Etreat as i32,
            accessed_at_unix_ms: T0,
            attestation_sha256: Vec::new(),
            basis: Some(v1::log_access::Basis::Emergency(v1::EmergencyAccess {
                justification: "bevisstløs, fnr 31 12 99 567 15".to_owned(),
            })),
        })),
        ..body_with(anchor())
    };
    field_refused(
        &signed(justification.encode_to_vec()),
        "log_access.emergency.justification",
        FieldProblem::NationalIdLike,
    );
}

// The number percent-encoded (wholly, partly, in either case, with encoded separators, twice) or
// as HTML character references in the location URI.
#[test]
fn percent_encoded_forms_are_refused() {
    for uri in [
        "https://ehr.example/p/%33%31%31%32%39%39%35%36%37%31%35",
        "https://ehr.example/p/311299%35%36%37%31%35",
        "https://ehr.example/p/%ef%bc%93%EF%bc%91%Ef%Bc%91299567%eF%BC%915",
        "https://ehr.example/p?fnr=311299%2056715",
        "https://ehr.example/p?fnr=311299%2d56715",
        "https://ehr.example/p?fnr=31%2E12%2E99%2E567%2E15",
        "https://ehr.example/p?fnr=311299+56715",
        "https://ehr.example/p/%2533%2531%2531%2532%2539%2539%2535%2536%2537%2531%2535",
        "https://ehr.example/p/%EF%BC%93%EF%BC%91%EF%BC%91%EF%BC%92%EF%BC%99%EF%BC%9956715",
        "https://ehr.example/p/&#51;&#49;&#x31;29956715",
        "https://ehr.example/p/%33%30%31%30%38%32%39%39%39%33%39",
    ] {
        field_refused(
            &anchor_where(|anchor| anchor.location_uri = uri.to_owned()),
            "anchor_record.location_uri",
            FieldProblem::NationalIdLike,
        );
    }
}

// A number spread over two adjacent fields' bytes: every field passes alone, the body does not.
#[test]
fn a_number_across_fields_is_refused() {
    // The key of content_sha256 (field 6, length-delimited) is 0x32, the ASCII digit 2. A
    // location URI that ends in ten digits followed by that key spells an 11-digit number.
    let valid_ending_in_2 = (0..1000u32)
        .map(|individual| format!("311299{individual:03}"))
        .find_map(|nine| {
            (0..10).find_map(|k1| {
                let candidate = format!("{nine}{k1}2");
                let digits: [u8; 11] = candidate.as_bytes().try_into().unwrap();
                varde_ledger::identifiers::national_id_kind(&digits).map(|_| candidate)
            })
        })
        .unwrap();
    let uri = format!("https://ehr.example/p/{}", &valid_ending_in_2[..10]);
    let envelope = anchor_where(|anchor| anchor.location_uri = uri.clone());
    assert!(
        envelope
            .body
            .windows(11)
            .any(|window| window == valid_ending_in_2.as_bytes())
    );
    field_refused(&envelope, "body", FieldProblem::NationalIdLike);
}

// A block payload from a peer must be canonical too: its id hashes only the header.
#[test]
fn a_non_canonical_block_payload_is_refused() {
    let genesis = Genesis {
        chain_id: CHAIN.to_owned(),
        genesis_time_unix_ms: T0,
        institutions: vec![Institution {
            org_number: OrgNumber::parse(HOSPITAL).unwrap(),
            name: "Sykehuset".to_owned(),
            roles: vec![Role::Validator, Role::Submitter],
            public_keys: vec![key().verifying_key().to_bytes()],
            validator_key: Some(
                SigningKey::from_bytes(&[0x77; 32])
                    .verifying_key()
                    .to_bytes(),
            ),
        }],
    };
    let ledger = Ledger::open(MemoryStore::new(), genesis).unwrap();
    let executed = ledger
        .execute_block(
            key().verifying_key().to_bytes(),
            T0 + 1,
            vec![signed(body_with(anchor()).encode_to_vec())],
        )
        .unwrap();
    let payload = executed.block.encode_to_vec();
    assert_eq!(decode_block(&payload).unwrap(), executed.block);
    let mut smuggled = payload.clone();
    smuggled.extend(field(9, NUMBER.as_bytes()));
    assert_eq!(
        v1::Block::decode(smuggled.as_slice()).unwrap(),
        executed.block
    );
    assert_eq!(decode_block(&smuggled), Err(CanonicalError::NotCanonical));
    // A block containing a non-canonical body is invalid as a whole.
    let mut body = body_with(anchor()).encode_to_vec();
    body.extend(field(99, NUMBER.as_bytes()));
    assert!(
        ledger
            .execute_block(key().verifying_key().to_bytes(), T0 + 1, vec![signed(body)])
            .is_err()
    );
}
