//! Issue 8 end to end: correctly signed transactions that smuggle a national identity number
//! (in an unknown field, in the nonce, in an overwritten first copy of a field, in other Unicode
//! digits, percent-encoded) are refused by a real node's `Ledger.Submit` with INVALID_ARGUMENT,
//! and the refusal does not echo the number; the honest twin is admitted.

mod common;

use common::*;
use prost::Message;
use tonic::Code;
use varde_node::demo::{self, DemoKeys};
use varde_proto::v1;

const NUMBER: &str = "31129956715";

/// One length-delimited field: key, length, bytes.
fn field(number: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

fn anchor_record(record_id: &str) -> v1::AnchorRecord {
    match demo::anchor_action(
        demo::HOSPITAL.org_number,
        record_id,
        demo::demo_subject(1),
        "psychiatry",
        now_unix_ms(),
    ) {
        v1::transaction_body::Action::AnchorRecord(anchor) => anchor,
        _ => unreachable!("anchor_action builds an anchor"),
    }
}

/// The body without its action, encoded: the action (field 10) is the last field.
fn head(nonce: &[u8]) -> Vec<u8> {
    let mut body = demo::body(
        CHAIN,
        now_unix_ms(),
        v1::transaction_body::Action::RetractRecord(Default::default()),
    );
    body.action = None;
    body.nonce = nonce.to_vec();
    body.encode_to_vec()
}

/// A canonical body: head, then the anchor.
fn canonical_body(nonce: &[u8], anchor: &v1::AnchorRecord) -> Vec<u8> {
    let mut body = head(nonce);
    body.extend(field(10, &anchor.encode_to_vec()));
    body
}

fn signed_bytes(keys: &DemoKeys, body: Vec<u8>) -> v1::SignedTransaction {
    varde_client::tx::sign_bytes(CHAIN, keys.of(demo::HOSPITAL), body)
        .unwrap()
        .0
}

// Each smuggling form is INVALID_ARGUMENT through Ledger.Submit; the honest anchor is admitted.
#[tokio::test]
async fn smuggled_identity_numbers_are_invalid_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let keys = DemoKeys::from_seed(23);
    let node = start_node(dir.path(), &keys).await;
    let mut client = node.ledger().await;
    let nonce = [5u8; 16];

    // (form, body, a word the refusal must contain: which check caught it)
    let mut forms: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    // 1. An unknown field of the body.
    let mut body = canonical_body(&nonce, &anchor_record("unknown-field"));
    body.extend(field(99, NUMBER.as_bytes()));
    forms.push(("unknown field", body, "canonical"));
    // 2. The nonce.
    forms.push((
        "nonce",
        canonical_body(NUMBER.as_bytes(), &anchor_record("nonce")),
        "`nonce`",
    ));
    // 3. A first copy of the record id, overwritten by the second.
    let honest = anchor_record("overwritten");
    let mut action = v1::AnchorRecord {
        custodian_org_number: honest.custodian_org_number.clone(),
        ..Default::default()
    }
    .encode_to_vec();
    action.extend(field(2, NUMBER.as_bytes()));
    action.extend(
        v1::AnchorRecord {
            custodian_org_number: String::new(),
            ..honest
        }
        .encode_to_vec(),
    );
    let mut body = head(&nonce);
    body.extend(field(10, &action));
    forms.push(("overwritten first copy", body, "canonical"));
    // 3b. A first copy of the nonce.
    let mut body = head(&[]);
    body.extend(field(4, NUMBER.as_bytes()));
    body.extend(field(4, &nonce));
    body.extend(field(10, &anchor_record("first-nonce").encode_to_vec()));
    forms.push(("overwritten first nonce", body, "canonical"));
    // 4. Other Unicode digits and separators.
    forms.push((
        "fullwidth digits",
        canonical_body(&nonce, &anchor_record("pas-３１１２９９５６７１５")),
        "record_id",
    ));
    forms.push((
        "Arabic-Indic digits with no-break spaces",
        canonical_body(&nonce, &anchor_record("pas-٣١١٢٩٩\u{a0}٥٦٧\u{a0}١٥")),
        "record_id",
    ));
    // 5. Percent-encoded in the location.
    let mut encoded = anchor_record("percent");
    encoded.location_uri =
        "https://ehr.example.invalid/p/%33%31%31%32%39%39%2D%35%36%37%31%35".into();
    forms.push((
        "percent-encoded",
        canonical_body(&nonce, &encoded),
        "location_uri",
    ));

    for (form, body, caught_by) in forms {
        // Every form decodes: prost's view alone would have let it through.
        assert!(
            v1::TransactionBody::decode(body.as_slice()).is_ok(),
            "{form}"
        );
        let status = client
            .submit(v1::SubmitRequest {
                transaction: Some(signed_bytes(&keys, body)),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{form}: {status:?}");
        assert!(status.message().contains(caught_by), "{form}: {status:?}");
        assert!(!status.message().contains("56715"), "{form}: {status:?}");
    }

    let honest = signed_bytes(&keys, canonical_body(&nonce, &anchor_record("honest")));
    let committed = commit(&mut client, honest).await;
    assert!(is_applied(&committed.receipt), "{committed:?}");
    node.stop().await;
}
