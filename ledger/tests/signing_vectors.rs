//! The signing test vectors in `proto/testdata/signing-vectors.json`: every field is recomputed from
//! the seed, chain id and body and compared. Regenerate the file with
//! `VARDE_REGENERATE_SIGNING_VECTORS=1 cargo test -p varde-ledger --test signing_vectors`.

use ed25519_dalek::SigningKey;
use prost::Message;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use varde_ledger::{canonical, hex, signing};
use varde_proto::v1;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Vector {
    description: String,
    key_seed_hex: String,
    public_key_hex: String,
    chain_id: String,
    chain_id_utf8_hex: String,
    body_hex: String,
    /// The exact bytes hashed: domain, 0x00, length, chain id, key, body.
    signing_input_hex: String,
    digest_hex: String,
    signature_hex: String,
    transaction_id_hex: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct VectorFile {
    scheme: String,
    vectors: Vec<Vector>,
}

fn vectors_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/testdata/signing-vectors.json")
}

fn anchor_body() -> v1::TransactionBody {
    v1::TransactionBody {
        chain_id: "varde-dev".to_owned(),
        expires_at_height: 1_000,
        expires_at_unix_ms: 0,
        nonce: Vec::new(),
        action: Some(v1::transaction_body::Action::AnchorRecord(
            v1::AnchorRecord {
                custodian_org_number: "974760673".to_owned(),
                record_id: "epikrise-2026-0001".to_owned(),
                subject_pseudonym: vec![0x11; 32],
                category_code: "epikrise".to_owned(),
                location_uri: "https://ehr.hospital.example/records/epikrise-2026-0001".to_owned(),
                content_sha256: Sha256::digest(b"discharge summary").to_vec(),
                confidentiality: v1::Confidentiality::Normal as i32,
                created_at_unix_ms: 1_780_000_000_000,
            },
        )),
    }
}

fn build(description: &str, seed: [u8; 32], chain_id: &str, body: &v1::TransactionBody) -> Vector {
    let signing_key = SigningKey::from_bytes(&seed);
    let body_bytes = body.encode_to_vec();
    let parts = signing::sign(chain_id, &signing_key, &body_bytes).unwrap();
    let mut signing_input = signing::TRANSACTION_DOMAIN.to_vec();
    signing_input.push(0);
    signing_input.extend_from_slice(&(chain_id.len() as u16).to_be_bytes());
    signing_input.extend_from_slice(chain_id.as_bytes());
    signing_input.extend_from_slice(&parts.signer_public_key);
    signing_input.extend_from_slice(&body_bytes);
    let digest = Sha256::digest(&signing_input);
    Vector {
        description: description.to_owned(),
        key_seed_hex: hex::encode(&seed),
        public_key_hex: hex::encode(&parts.signer_public_key),
        chain_id: chain_id.to_owned(),
        chain_id_utf8_hex: hex::encode(chain_id.as_bytes()),
        body_hex: hex::encode(&body_bytes),
        signing_input_hex: hex::encode(&signing_input),
        digest_hex: hex::encode(&digest),
        signature_hex: hex::encode(&parts.signature),
        transaction_id_hex: parts.transaction_id.to_hex(),
    }
}

fn generate() -> VectorFile {
    // RFC 8032 §7.1 TEST 1's secret key, so the public key can be checked against the RFC.
    let rfc_seed: [u8; 32] =
        hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap()
            .try_into()
            .unwrap();
    let mut revoke = v1::TransactionBody {
        chain_id: String::new(),
        expires_at_height: 0,
        expires_at_unix_ms: 1_780_000_600_000,
        nonce: Vec::new(),
        action: Some(v1::transaction_body::Action::RevokeGrant(v1::RevokeGrant {
            issuer_org_number: "983044778".to_owned(),
            grant_id: vec![0x22; 32],
            reason: "samtykke trukket".to_owned(),
        })),
    };
    let empty_chain_body = revoke.clone();
    revoke.chain_id = "varde-sør-øst".to_owned();
    let mut with_nonce = anchor_body();
    with_nonce.nonce = vec![0x01, 0x02, 0x03, 0x04];
    let log_access = v1::TransactionBody {
        chain_id: "varde-dev".to_owned(),
        expires_at_height: 2_000,
        expires_at_unix_ms: 1_780_000_600_000,
        nonce: Vec::new(),
        action: Some(v1::transaction_body::Action::LogAccess(v1::LogAccess {
            accessor_org_number: "123456785".to_owned(),
            accessor_hpr_number: "1234567".to_owned(),
            record: Some(v1::RecordReference {
                custodian_org_number: "974760673".to_owned(),
                record_id: "epikrise-2026-0001".to_owned(),
            }),
            purpose: v1::PurposeOfUse::Etreat as i32,
            accessed_at_unix_ms: 1_780_000_100_000,
            attestation_sha256: Vec::new(),
            basis: Some(v1::log_access::Basis::Emergency(v1::EmergencyAccess {
                justification: "bevisstløs pasient i akuttmottak".to_owned(),
            })),
        })),
    };
    VectorFile {
        scheme: "varde-tx-v1: digest = SHA-256(\"varde-tx-v1\" || 0x00 || u16be(len(chain_id)) || chain_id || public_key || body); signature = Ed25519(digest); transaction id = digest".to_owned(),
        vectors: vec![
            build("anchor a record on chain varde-dev (RFC 8032 test 1 key)", rfc_seed, "varde-dev", &anchor_body()),
            build("the same anchor with a nonce: a different id for the same action", rfc_seed, "varde-dev", &with_nonce),
            build("non-ASCII chain id: length prefix counts UTF-8 bytes (15), not characters (13)", [0x07; 32], "varde-sør-øst", &revoke),
            build("empty chain id: the length prefix is 0x0000 and no chain bytes follow (edge case; real networks use a non-empty id)", [0x07; 32], "", &empty_chain_body),
            build("emergency access log with height and time expiry", [0xa5; 32], "varde-dev", &log_access),
        ],
    }
}

// Every vector's public key, body, signing input, digest, signature and id follow from its seed,
// chain id and body; and the file matches what the generator produces.
#[test]
fn signing_vectors_recompute_exactly() {
    let generated = generate();
    let path = vectors_path();
    if std::env::var_os("VARDE_REGENERATE_SIGNING_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
    }
    let stored: VectorFile =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(stored.vectors.len(), 5);
    for vector in &stored.vectors {
        let seed: [u8; 32] = hex::decode(&vector.key_seed_hex)
            .unwrap()
            .try_into()
            .unwrap();
        let signing_key = SigningKey::from_bytes(&seed);
        let body = hex::decode(&vector.body_hex).unwrap();
        // The body is a real TransactionBody, in its canonical encoding (nodes refuse any other).
        v1::TransactionBody::decode(body.as_slice()).unwrap();
        assert!(
            canonical::decode_canonical::<v1::TransactionBody>(&body).is_ok(),
            "{}",
            vector.description
        );
        let parts = signing::sign(&vector.chain_id, &signing_key, &body).unwrap();
        assert_eq!(
            hex::encode(&parts.signer_public_key),
            vector.public_key_hex,
            "{}",
            vector.description
        );
        assert_eq!(
            hex::encode(vector.chain_id.as_bytes()),
            vector.chain_id_utf8_hex
        );
        let signing_input = hex::decode(&vector.signing_input_hex).unwrap();
        assert_eq!(
            hex::encode(&Sha256::digest(&signing_input)),
            vector.digest_hex
        );
        assert_eq!(parts.transaction_id.to_hex(), vector.digest_hex);
        assert_eq!(vector.transaction_id_hex, vector.digest_hex);
        assert_eq!(
            hex::encode(&parts.signature),
            vector.signature_hex,
            "{}",
            vector.description
        );
        let (id, _) = signing::verify_strict(
            &vector.chain_id,
            &hex::decode(&vector.public_key_hex).unwrap(),
            &hex::decode(&vector.signature_hex).unwrap(),
            &body,
        )
        .unwrap();
        assert_eq!(id.to_hex(), vector.transaction_id_hex);
    }
    assert_eq!(stored, generated, "the vector file is stale: regenerate it");
    // RFC 8032 §7.1 TEST 1's public key.
    assert_eq!(
        stored.vectors[0].public_key_hex,
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    );
    assert_eq!(&stored.vectors[2].chain_id_utf8_hex.len() / 2, 15);
}
