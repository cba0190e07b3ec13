//! The query-signing test vectors in `proto/testdata/query-signing-vectors.json` (varde-query-v2):
//! every field is recomputed from the seed, chain id, method, time, nonce and request, and the
//! signature verifies with the node's verifier. Regenerate the file with
//! `VARDE_REGENERATE_SIGNING_VECTORS=1 cargo test -p varde-ledger --test query_signing_vectors`.

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use varde_ledger::hex;
use varde_ledger::signing::{self, SignedRequest};
use varde_proto::v1;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Vector {
    description: String,
    key_seed_hex: String,
    public_key_hex: String,
    chain_id: String,
    method: String,
    signed_at_unix_ms: i64,
    nonce_hex: String,
    /// The request message encoded with `auth` unset: what is signed.
    request_without_auth_hex: String,
    /// The exact bytes hashed: domain, 0x00, chain id, method, time, nonce, key, request.
    signing_input_hex: String,
    digest_hex: String,
    signature_hex: String,
    /// The request as sent, with `auth` filled in.
    signed_request_hex: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct VectorFile {
    scheme: String,
    vectors: Vec<Vector>,
}

fn vectors_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../proto/testdata/query-signing-vectors.json")
}

fn build<T: SignedRequest>(
    description: &str,
    seed: [u8; 32],
    chain_id: &str,
    method: &str,
    signed_at_unix_ms: i64,
    nonce: &[u8],
    request: &T,
) -> Vector {
    let key = SigningKey::from_bytes(&seed);
    let mut unsigned = request.clone();
    unsigned.set_auth(None);
    let request_bytes = request.unsigned_bytes();
    let public_key = key.verifying_key().to_bytes();
    let mut signing_input = signing::QUERY_DOMAIN.to_vec();
    signing_input.push(0);
    signing_input.extend_from_slice(&(chain_id.len() as u16).to_be_bytes());
    signing_input.extend_from_slice(chain_id.as_bytes());
    signing_input.extend_from_slice(&(method.len() as u16).to_be_bytes());
    signing_input.extend_from_slice(method.as_bytes());
    signing_input.extend_from_slice(&signed_at_unix_ms.to_be_bytes());
    signing_input.push(nonce.len() as u8);
    signing_input.extend_from_slice(nonce);
    signing_input.extend_from_slice(&public_key);
    signing_input.extend_from_slice(&request_bytes);
    let auth =
        signing::sign_query(chain_id, method, &key, signed_at_unix_ms, nonce, &unsigned).unwrap();
    let mut signed_request = unsigned.clone();
    signed_request.set_auth(Some(auth.clone()));
    Vector {
        description: description.to_owned(),
        key_seed_hex: hex::encode(&seed),
        public_key_hex: hex::encode(&public_key),
        chain_id: chain_id.to_owned(),
        method: method.to_owned(),
        signed_at_unix_ms,
        nonce_hex: hex::encode(nonce),
        request_without_auth_hex: hex::encode(&request_bytes),
        signing_input_hex: hex::encode(&signing_input),
        digest_hex: hex::encode(&Sha256::digest(&signing_input)),
        signature_hex: hex::encode(&auth.signature),
        signed_request_hex: hex::encode(&signed_request.encode_to_vec()),
    }
}

fn generate() -> VectorFile {
    // RFC 8032 §7.1 TEST 1's secret key, as in the transaction vectors.
    let rfc_seed: [u8; 32] =
        hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap()
            .try_into()
            .unwrap();
    let patient_log = v1::ListAccessEventsRequest {
        auth: None,
        filter: Some(v1::list_access_events_request::Filter::SubjectPseudonym(
            vec![0x11; 32],
        )),
        page_size: 20,
        page_token: String::new(),
    };
    let check = v1::CheckAccessRequest {
        auth: None,
        accessor_org_number: "123456785".to_owned(),
        accessor_hpr_number: "1234567".to_owned(),
        record: Some(v1::RecordReference {
            custodian_org_number: "974760673".to_owned(),
            record_id: "epikrise-2026-0001".to_owned(),
        }),
        purpose: v1::PurposeOfUse::Treat as i32,
        at_unix_ms: 0,
        with_proof: false,
    };
    VectorFile {
        scheme: "varde-query-v2: digest = SHA-256(\"varde-query-v2\" || 0x00 || u16be(len(chain_id)) || chain_id || u16be(len(method)) || method || i64be(signed_at_unix_ms) || u8(len(nonce)) || nonce || caller_public_key || request encoded without auth); signature = Ed25519(digest)".to_owned(),
        vectors: vec![
            build("the latest block, 16-byte nonce (RFC 8032 test 1 key)", rfc_seed, "varde-dev", "/varde.v1.Ledger/GetBlock", 1_780_000_000_000, &[0x01; 16], &v1::GetBlockRequest { auth: None, height: 0 }),
            build("a patient's access log by subject, 32-byte nonce", [0x07; 32], "varde-dev", "/varde.v1.Query/ListAccessEvents", 1_780_000_123_456, &(0..32).collect::<Vec<u8>>(), &patient_log),
            build("CheckAccess on a non-ASCII chain id, a time before 1970 (two's complement)", [0xa5; 32], "varde-sør-øst", "/varde.v1.Query/CheckAccess", -1, &[0xff; 20], &check),
        ],
    }
}

// Every vector's fields follow from its inputs, its signature verifies with the node's verifier
// over the request without auth, and the file matches what the generator produces.
#[test]
fn query_signing_vectors_recompute_exactly() {
    let generated = generate();
    let path = vectors_path();
    if std::env::var_os("VARDE_REGENERATE_SIGNING_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
    }
    let stored: VectorFile =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(stored.vectors.len(), 3);
    for vector in &stored.vectors {
        let signing_input = hex::decode(&vector.signing_input_hex).unwrap();
        assert_eq!(
            hex::encode(&Sha256::digest(&signing_input)),
            vector.digest_hex,
            "{}",
            vector.description
        );
        let auth = v1::RequestAuthentication {
            caller_public_key: hex::decode(&vector.public_key_hex).unwrap(),
            signed_at_unix_ms: vector.signed_at_unix_ms,
            signature: hex::decode(&vector.signature_hex).unwrap(),
            nonce: hex::decode(&vector.nonce_hex).unwrap(),
        };
        // The signature is over the digest of the written layout, byte for byte.
        let public_key = ed25519_dalek::VerifyingKey::from_bytes(
            &auth.caller_public_key.as_slice().try_into().unwrap(),
        )
        .unwrap();
        let signature = ed25519_dalek::Signature::from_slice(&auth.signature).unwrap();
        public_key
            .verify_strict(&hex::decode(&vector.digest_hex).unwrap(), &signature)
            .unwrap();
        let request = hex::decode(&vector.request_without_auth_hex).unwrap();
        signing::verify_query(&vector.chain_id, &vector.method, &auth, &request)
            .unwrap_or_else(|error| panic!("{}: {error}", vector.description));
        // Another method or a flipped request bit does not verify.
        assert!(
            signing::verify_query(&vector.chain_id, "/varde.v1.Other", &auth, &request).is_err()
        );
        let mut flipped = request.clone();
        flipped.push(0);
        assert!(signing::verify_query(&vector.chain_id, &vector.method, &auth, &flipped).is_err());
    }
    assert_eq!(stored, generated, "the vector file is stale: regenerate it");
}
