//! Canonical protobuf encodings: bytes that are exactly what prost encodes for the message they
//! decode to.
//!
//! Varde keeps some bytes forever as they were received (a transaction body is signed and stored
//! byte for byte), but validates them through the decoded view. Protobuf lets many byte strings
//! decode to one view: unknown fields are skipped, a repeated singular field keeps its last copy
//! (a message field merges its copies), varints may carry redundant continuation bytes, fields may
//! come in any order, a repeated scalar may be packed or not, and a proto3 default may be written
//! out or left away. Whatever the view does not show would go unchecked onto the ledger. So such
//! bytes are accepted only when `encode(decode(bytes)) == bytes`: prost encodes known fields once,
//! in field-number order, with minimal varints, packed repeated scalars, and proto3 implicit
//! defaults left out (fields with explicit presence — `optional`, oneof members, message fields —
//! are written when set, even to a default). An unknown enum value is kept as its number and
//! written back the same, so it survives this check and is refused by field validation instead.
//!
//! Standard encoders (prost, protobuf-go, protobuf-python, protobuf-java, ...) write known fields
//! in field-number order and leave implicit defaults out, so they produce this encoding for Varde's
//! messages: every oneof of `varde.v1` comes after the plain fields with smaller numbers, so
//! "fields in number order" and "oneofs last" agree. `cli/tests/python_client.rs` submits a body
//! encoded by protobuf-python to a node.

use prost::Message;

/// Why bytes were not accepted as a canonical encoding. Never holds the bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    #[error("{0}")]
    Decode(#[from] prost::DecodeError),
    #[error(
        "the bytes are not the canonical encoding of the message they decode to (unknown, repeated \
         or out-of-order fields, non-minimal varints, unpacked repeated scalars or explicitly \
         encoded defaults)"
    )]
    NotCanonical,
}

/// Decodes `bytes` as `M` and returns it only if re-encoding it gives back exactly `bytes`.
pub fn decode_canonical<M: Message + Default>(bytes: &[u8]) -> Result<M, CanonicalError> {
    let message = M::decode(bytes)?;
    if is_encoding_of(&message, bytes) {
        Ok(message)
    } else {
        Err(CanonicalError::NotCanonical)
    }
}

/// True when `bytes` is exactly prost's encoding of `message`.
pub fn is_encoding_of<M: Message>(message: &M, bytes: &[u8]) -> bool {
    message.encoded_len() == bytes.len() && message.encode_to_vec() == bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use varde_proto::v1;

    fn anchor() -> v1::AnchorRecord {
        v1::AnchorRecord {
            custodian_org_number: "974760673".to_owned(),
            record_id: "r-1".to_owned(),
            subject_pseudonym: vec![0x11; 32],
            category_code: "epikrise".to_owned(),
            location_uri: "https://ehr.example/r-1".to_owned(),
            content_sha256: vec![0x22; 32],
            confidentiality: v1::Confidentiality::Normal as i32,
            created_at_unix_ms: 1_780_000_000_000,
        }
    }

    fn body(action: v1::transaction_body::Action) -> v1::TransactionBody {
        v1::TransactionBody {
            chain_id: "varde-test".to_owned(),
            expires_at_height: 50,
            expires_at_unix_ms: 0,
            nonce: vec![1, 2, 3],
            action: Some(action),
        }
    }

    fn anchor_body() -> v1::TransactionBody {
        body(v1::transaction_body::Action::AnchorRecord(anchor()))
    }

    fn refused(bytes: &[u8]) -> bool {
        // Every form below still decodes: the view alone would have accepted it.
        assert!(v1::TransactionBody::decode(bytes).is_ok());
        decode_canonical::<v1::TransactionBody>(bytes) == Err(CanonicalError::NotCanonical)
    }

    /// A length-delimited field: tag, length, bytes.
    fn field(number: u32, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, &mut out);
        prost::encoding::encode_varint(bytes.len() as u64, &mut out);
        out.extend_from_slice(bytes);
        out
    }

    // What prost encodes comes back unchanged, for every action shape used in the tests.
    #[test]
    fn prost_encodings_are_canonical() {
        let grant = v1::GrantAccess {
            issuer_org_number: "983044778".to_owned(),
            subject_pseudonym: vec![0x11; 32],
            grantee_org_number: "123456785".to_owned(),
            scope: Some(v1::GrantScope {
                scope: Some(v1::grant_scope::Scope::AllRecords(v1::AllRecords {})),
            }),
            purposes: vec![1, 2, 9],
            valid_from_unix_ms: -5,
            valid_until_unix_ms: 10,
            basis: Some(v1::GrantBasis {
                basis: Some(v1::grant_basis::Basis::PatientConsent(v1::PatientConsent {
                    reference: String::new(),
                })),
            }),
            ..Default::default()
        };
        let log = v1::LogAccess {
            accessor_org_number: "123456785".to_owned(),
            accessor_hpr_number: "1234567".to_owned(),
            purpose: 77, // an unknown enum value is kept and written back
            basis: Some(v1::log_access::Basis::GrantId(Vec::new())),
            ..Default::default()
        };
        for body in [
            anchor_body(),
            body(v1::transaction_body::Action::GrantAccess(grant)),
            body(v1::transaction_body::Action::LogAccess(log)),
            v1::TransactionBody::default(),
        ] {
            let bytes = body.encode_to_vec();
            assert_eq!(
                decode_canonical::<v1::TransactionBody>(&bytes).unwrap(),
                body
            );
        }
        // `optional` keeps an explicit zero, and writes it back.
        let proposal = v1::Proposal {
            valid_round: Some(0),
            ..Default::default()
        };
        let bytes = proposal.encode_to_vec();
        assert_eq!(bytes, [0x18, 0x00]);
        assert_eq!(decode_canonical::<v1::Proposal>(&bytes).unwrap(), proposal);
    }

    /// The body's fields before the action (chain id, expiry), encoded.
    fn head(nonce: &[u8]) -> Vec<u8> {
        let mut head = anchor_body();
        head.action = None;
        head.nonce = nonce.to_vec();
        head.encode_to_vec()
    }

    // The body really is its head followed by the action (field 10, the last one).
    #[test]
    fn the_test_bodies_are_head_then_action() {
        let mut bytes = head(&[1, 2, 3]);
        bytes.extend(field(10, &anchor().encode_to_vec()));
        assert_eq!(bytes, anchor_body().encode_to_vec());
        assert!(decode_canonical::<v1::TransactionBody>(&bytes).is_ok());
    }

    // An unknown field, anywhere: at the top, inside the action, or as a varint.
    #[test]
    fn unknown_fields_are_refused() {
        let mut bytes = anchor_body().encode_to_vec();
        bytes.extend(field(99, b"31129956715"));
        assert!(refused(&bytes));

        let mut inner = anchor().encode_to_vec();
        inner.extend(field(15, b"31129956715"));
        let mut bytes = head(&[1, 2, 3]);
        bytes.extend(field(10, &inner));
        assert!(refused(&bytes));

        let mut bytes = head(&[1, 2, 3]);
        bytes.extend([0x28, 0x01]); // field 5, varint 1: not a TransactionBody field
        bytes.extend(field(10, &anchor().encode_to_vec()));
        assert!(refused(&bytes));
    }

    // Two copies of a singular field: prost keeps the last (or merges messages), so the first
    // copy would be stored unseen.
    #[test]
    fn repeated_singular_fields_are_refused() {
        // nonce (field 4) twice: the first copy carries the number, the second overwrites it.
        let mut bytes = head(&[]);
        bytes.extend(field(4, b"31129956715"));
        bytes.extend(field(4, &[1, 2, 3]));
        bytes.extend(field(10, &anchor().encode_to_vec()));
        assert_eq!(
            v1::TransactionBody::decode(bytes.as_slice()).unwrap(),
            anchor_body()
        );
        assert!(refused(&bytes));

        // A string inside the action twice (record_id, field 2, right after field 1).
        let mut inner = v1::AnchorRecord {
            custodian_org_number: anchor().custodian_org_number,
            ..Default::default()
        }
        .encode_to_vec();
        inner.extend(field(2, b"31129956715"));
        inner.extend(
            v1::AnchorRecord {
                custodian_org_number: String::new(),
                ..anchor()
            }
            .encode_to_vec(),
        );
        let mut bytes = head(&[1, 2, 3]);
        bytes.extend(field(10, &inner));
        assert!(refused(&bytes));

        // The action message twice: prost merges the two copies into one.
        let leaky = v1::AnchorRecord {
            location_uri: "https://ehr.example/31129956715".to_owned(),
            ..Default::default()
        };
        let mut bytes = head(&[1, 2, 3]);
        bytes.extend(field(10, &leaky.encode_to_vec()));
        bytes.extend(field(10, &anchor().encode_to_vec()));
        assert_eq!(
            v1::TransactionBody::decode(bytes.as_slice()).unwrap(),
            anchor_body()
        );
        assert!(refused(&bytes));

        // Two members of one oneof: the last wins.
        let retract = v1::RetractRecord {
            custodian_org_number: "974760673".to_owned(),
            record_id: "r-1".to_owned(),
            reason: "31129956715".to_owned(),
        };
        let mut bytes = head(&[1, 2, 3]);
        bytes.extend(field(12, &retract.encode_to_vec()));
        bytes.extend(field(10, &anchor().encode_to_vec()));
        assert!(refused(&bytes));
    }

    // A varint with redundant continuation bytes decodes to the same number.
    #[test]
    fn non_minimal_varints_are_refused() {
        let mut bytes = vec![0x10, 0xb2, 0x80, 0x00]; // expires_at_height = 50 in three bytes
        bytes.extend(field(4, &[1, 2, 3]));
        let body = v1::TransactionBody::decode(bytes.as_slice()).unwrap();
        assert_eq!(body.expires_at_height, 50);
        assert!(refused(&bytes));
        // A length prefix can be padded too.
        let bytes = [0x10, 0x32, 0x22, 0x83, 0x00, 1, 2, 3];
        assert_eq!(
            v1::TransactionBody::decode(bytes.as_slice()).unwrap().nonce,
            vec![1, 2, 3]
        );
        assert!(refused(&bytes));
        // And a key: field 2 as a two-byte key.
        assert!(refused(&[0x90, 0x00, 0x32]));
    }

    // The same fields in another order.
    #[test]
    fn out_of_order_fields_are_refused() {
        let mut bytes = field(4, &[1, 2, 3]);
        bytes.extend([0x10, 0x32]); // expires_at_height after the nonce
        assert_eq!(
            v1::TransactionBody::decode(bytes.as_slice()).unwrap(),
            v1::TransactionBody {
                expires_at_height: 50,
                nonce: vec![1, 2, 3],
                ..Default::default()
            }
        );
        assert!(refused(&bytes));
        // The action before the expiry.
        let mut bytes = field(10, &anchor().encode_to_vec());
        bytes.extend(head(&[1, 2, 3]));
        assert!(refused(&bytes));
    }

    // A proto3 default written out: the view cannot tell it from an absent field.
    #[test]
    fn explicit_defaults_are_refused() {
        let canonical = [0x10, 0x32]; // expires_at_height = 50
        for bytes in [
            vec![0x0a, 0x00, 0x10, 0x32], // chain_id = ""
            vec![0x10, 0x32, 0x18, 0x00], // expires_at_unix_ms = 0
            vec![0x10, 0x32, 0x22, 0x00], // nonce = b""
        ] {
            assert_eq!(
                v1::TransactionBody::decode(bytes.as_slice()).unwrap(),
                v1::TransactionBody::decode(canonical.as_slice()).unwrap()
            );
            assert!(refused(&bytes), "{bytes:?}");
        }
        // Inside the action: confidentiality = UNSPECIFIED (0) written out.
        let mut inner = anchor();
        inner.confidentiality = 0;
        inner.created_at_unix_ms = 0;
        let mut encoded = inner.encode_to_vec();
        encoded.extend([0x38, 0x00]);
        prost::encoding::int64::encode(8, &anchor().created_at_unix_ms, &mut encoded);
        let mut bytes = head(&[1, 2, 3]);
        bytes.extend(field(10, &encoded));
        assert!(refused(&bytes));
    }

    // A repeated enum unpacked (one key per value), or packed in two runs, or packed but empty.
    #[test]
    fn packing_differences_are_refused() {
        let grant = v1::GrantAccess {
            purposes: vec![1, 2],
            ..Default::default()
        };
        assert_eq!(grant.encode_to_vec(), [0x3a, 0x02, 0x01, 0x02]);
        for bytes in [
            vec![0x38, 0x01, 0x38, 0x02],
            vec![0x3a, 0x01, 0x01, 0x3a, 0x01, 0x02],
        ] {
            assert_eq!(
                v1::GrantAccess::decode(bytes.as_slice()).unwrap(),
                grant,
                "{bytes:?}"
            );
            assert_eq!(
                decode_canonical::<v1::GrantAccess>(&bytes),
                Err(CanonicalError::NotCanonical)
            );
        }
        assert_eq!(
            decode_canonical::<v1::GrantAccess>(&[0x3a, 0x00]),
            Err(CanonicalError::NotCanonical)
        );
    }

    // Bytes that do not decode at all are a decode error, not a canonical-form error.
    #[test]
    fn undecodable_bytes_are_a_decode_error() {
        assert!(matches!(
            decode_canonical::<v1::TransactionBody>(&[0xff, 0xff]),
            Err(CanonicalError::Decode(_))
        ));
    }
}
