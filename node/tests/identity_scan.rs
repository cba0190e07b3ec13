//! No national identity number reaches a node in any form: a demo node is driven through every
//! transaction type and every refused way of smuggling a number in (an unknown field, the nonce,
//! an overwritten first copy of a field, other Unicode digits, separators, percent-encoding),
//! each refused with INVALID_ARGUMENT; then the data directory's raw bytes, every stored value,
//! every log line the node wrote and its metrics are scanned, and none holds one.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use prost::Message as _;
use tonic::Code;
use v1::transaction_body::Action;
use varde_ledger::identifiers::national_id_kind;
use varde_node::demo::{self, DemoKeys};
use varde_proto::v1;
use varde_storage::{Column, Store};

/// A valid fødselsnummer (check digits under the current rule).
const NATIONAL_ID: &str = "31129956715";

/// Every log line of the node, as formatted by a subscriber installed for this test binary.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Places in `bytes` that hold a national identity number as a run of exactly 11 ASCII digits,
/// or (with `grouped`) as 6 + 5 digits around one space, dot or dash (a longer run of digits,
/// such as a millisecond timestamp, is not shaped like one).
fn identity_numbers(bytes: &[u8]) -> Vec<String> {
    identity_numbers_in(bytes, true)
}

fn identity_numbers_in(bytes: &[u8], grouped: bool) -> Vec<String> {
    let digit = |index: usize| bytes.get(index).is_some_and(u8::is_ascii_digit);
    let mut found = Vec::new();
    for start in 0..bytes.len() {
        if !digit(start) || (start > 0 && digit(start - 1)) {
            continue;
        }
        let run = (start..bytes.len())
            .take_while(|&index| digit(index))
            .count();
        let candidate: Option<[u8; 11]> = if run == 11 {
            bytes[start..start + 11].try_into().ok()
        } else if grouped
            && run == 6
            && matches!(bytes.get(start + 6), Some(b' ' | b'.' | b'-'))
            && (start + 7..start + 12).all(digit)
            && !digit(start + 12)
        {
            let mut joined = [0u8; 11];
            joined[..6].copy_from_slice(&bytes[start..start + 6]);
            joined[6..].copy_from_slice(&bytes[start + 7..start + 12]);
            Some(joined)
        } else {
            None
        };
        if let Some(candidate) = candidate {
            if national_id_kind(&candidate).is_some() {
                found.push(String::from_utf8_lossy(&candidate).into_owned());
            }
        }
    }
    found
}

/// The smuggled payloads as they would appear in bytes, whatever their form.
fn smuggled_forms() -> Vec<Vec<u8>> {
    let fullwidth: String = NATIONAL_ID
        .chars()
        .map(|digit| char::from_u32(0xFF10 + digit.to_digit(10).unwrap()).unwrap())
        .collect();
    let percent: String = NATIONAL_ID
        .bytes()
        .map(|byte| format!("%{byte:02X}"))
        .collect();
    vec![
        NATIONAL_ID.as_bytes().to_vec(),
        fullwidth.into_bytes(),
        percent.into_bytes(),
        "311299\u{a0}56715".as_bytes().to_vec(),
        "311299\u{2013}56715".as_bytes().to_vec(),
    ]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Signs raw body bytes as they are, however they were made.
fn signed_bytes(key: &ed25519_dalek::SigningKey, body: Vec<u8>) -> v1::SignedTransaction {
    varde_client::tx::sign_bytes(CHAIN, key, body).unwrap().0
}

fn anchor_body(record_id: &str, location: &str) -> v1::TransactionBody {
    let mut action = demo::anchor_action(
        demo::HOSPITAL.org_number,
        record_id,
        demo::demo_subject(3),
        "epikrise",
        now_unix_ms(),
    );
    if let Action::AnchorRecord(anchor) = &mut action {
        anchor.location_uri = location.to_owned();
    }
    demo::body(CHAIN, now_unix_ms(), action)
}

/// The refused forms, each a signed transaction whose bytes carry the number.
fn smuggling_attempts(keys: &DemoKeys) -> Vec<(&'static str, v1::SignedTransaction)> {
    let hospital = keys.of(demo::HOSPITAL);
    let honest = || anchor_body("smuggle", "https://ehr.example.invalid/smuggle");
    // An unknown field (number 99, length-delimited) after the known ones.
    let mut unknown_field = honest().encode_to_vec();
    unknown_field.extend_from_slice(&[0x9a, 0x06, 11]);
    unknown_field.extend_from_slice(NATIONAL_ID.as_bytes());
    // The nonce.
    let mut in_nonce = honest();
    in_nonce.nonce = NATIONAL_ID.as_bytes().to_vec();
    // A first copy of chain_id (field 1) that the real one after it overwrites.
    let mut overwritten = vec![0x0a, 11];
    overwritten.extend_from_slice(NATIONAL_ID.as_bytes());
    overwritten.extend_from_slice(&honest().encode_to_vec());
    let forms = smuggled_forms();
    let text = |index: usize| String::from_utf8(forms[index].clone()).unwrap();
    vec![
        ("unknown field", signed_bytes(hospital, unknown_field)),
        ("nonce", signed_bytes(hospital, in_nonce.encode_to_vec())),
        ("overwritten copy", signed_bytes(hospital, overwritten)),
        (
            "fullwidth digits",
            signed_bytes(
                hospital,
                anchor_body(&format!("r-{}", text(1)), "https://ehr.example.invalid/a")
                    .encode_to_vec(),
            ),
        ),
        (
            "percent-encoded",
            signed_bytes(
                hospital,
                anchor_body(
                    "r-percent",
                    &format!("https://ehr.example.invalid/p/{}", text(2)),
                )
                .encode_to_vec(),
            ),
        ),
        (
            "no-break space",
            signed_bytes(
                hospital,
                anchor_body(&format!("r-{}", text(3)), "https://ehr.example.invalid/b")
                    .encode_to_vec(),
            ),
        ),
        (
            "en dash",
            signed_bytes(
                hospital,
                anchor_body(&format!("r-{}", text(4)), "https://ehr.example.invalid/c")
                    .encode_to_vec(),
            ),
        ),
    ]
}

/// Every transaction type, committed (the same sequence as a patient's story).
async fn every_action(
    client: &mut v1::ledger_client::LedgerClient<tonic::transport::Channel>,
    keys: &DemoKeys,
) {
    let now = now_unix_ms();
    let hospital = keys.of(demo::HOSPITAL);
    let consent = keys.of(demo::CONSENT_AUTHORITY);
    let municipality = keys.of(demo::MUNICIPALITY);
    let subject = demo::demo_subject(3);
    let applied = |response: &v1::SubmitAndWaitResponse| {
        assert!(is_applied(&response.receipt), "{response:?}");
        response.transaction_id.clone()
    };
    applied(
        &commit(
            client,
            signed(
                hospital,
                anchor_body("r-1", "https://ehr.example.invalid/r-1")
                    .action
                    .unwrap(),
            ),
        )
        .await,
    );
    applied(
        &commit(
            client,
            signed(
                hospital,
                Action::SupersedeRecord(v1::SupersedeRecord {
                    custodian_org_number: demo::HOSPITAL.org_number.to_owned(),
                    record_id: "r-1".to_owned(),
                    category_code: "epikrise".to_owned(),
                    location_uri: "https://ehr.example.invalid/r-1/v2".to_owned(),
                    content_sha256: vec![7; 32],
                    confidentiality: v1::Confidentiality::Normal as i32,
                    created_at_unix_ms: now,
                }),
            ),
        )
        .await,
    );
    let grant = applied(
        &commit(
            client,
            signed(
                consent,
                Action::GrantAccess(v1::GrantAccess {
                    issuer_org_number: demo::CONSENT_AUTHORITY.org_number.to_owned(),
                    subject_pseudonym: subject.clone(),
                    grantee_org_number: demo::MUNICIPALITY.org_number.to_owned(),
                    scope: Some(v1::GrantScope {
                        scope: Some(v1::grant_scope::Scope::AllRecords(v1::AllRecords {})),
                    }),
                    purposes: vec![v1::PurposeOfUse::Treat as i32],
                    valid_from_unix_ms: now - 1_000,
                    valid_until_unix_ms: now + 3_600_000,
                    basis: Some(v1::GrantBasis {
                        basis: Some(v1::grant_basis::Basis::PatientConsent(v1::PatientConsent {
                            reference: "samtykke-7".to_owned(),
                        })),
                    }),
                    ..Default::default()
                }),
            ),
        )
        .await,
    );
    applied(
        &commit(
            client,
            signed(
                municipality,
                Action::LogAccess(v1::LogAccess {
                    accessor_org_number: demo::MUNICIPALITY.org_number.to_owned(),
                    accessor_hpr_number: "1234567".to_owned(),
                    record: Some(record(demo::HOSPITAL.org_number, "r-1")),
                    purpose: v1::PurposeOfUse::Treat as i32,
                    accessed_at_unix_ms: now,
                    basis: Some(v1::log_access::Basis::GrantId(grant.clone())),
                    ..Default::default()
                }),
            ),
        )
        .await,
    );
    applied(
        &commit(
            client,
            signed(
                consent,
                Action::RevokeGrant(v1::RevokeGrant {
                    issuer_org_number: demo::CONSENT_AUTHORITY.org_number.to_owned(),
                    grant_id: grant,
                    reason: "samtykke trukket".to_owned(),
                }),
            ),
        )
        .await,
    );
    let block = applied(
        &commit(
            client,
            signed(
                consent,
                Action::BlockAccess(v1::BlockAccess {
                    issuer_org_number: demo::CONSENT_AUTHORITY.org_number.to_owned(),
                    subject_pseudonym: subject,
                    target: Some(v1::block_access::Target::HprNumber("7654321".to_owned())),
                }),
            ),
        )
        .await,
    );
    applied(
        &commit(
            client,
            signed(
                consent,
                Action::UnblockAccess(v1::UnblockAccess {
                    issuer_org_number: demo::CONSENT_AUTHORITY.org_number.to_owned(),
                    block_id: block,
                }),
            ),
        )
        .await,
    );
    applied(
        &commit(
            client,
            signed(
                hospital,
                Action::RetractRecord(v1::RetractRecord {
                    custodian_org_number: demo::HOSPITAL.org_number.to_owned(),
                    record_id: "r-1".to_owned(),
                    reason: "slettet i kildesystemet".to_owned(),
                }),
            ),
        )
        .await,
    );
}

/// Every file below `dir`, as bytes.
fn files_below(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files
}

// The whole story and every smuggling form, then a scan of everything the node kept or said.
#[tokio::test]
async fn no_identity_number_is_stored_logged_or_measured() {
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let dir = tempfile::tempdir().unwrap();
    let keys = DemoKeys::from_seed(31);
    let node = start_node(dir.path(), &keys).await;
    let mut client = node.ledger().await;
    every_action(&mut client, &keys).await;
    for (form, transaction) in smuggling_attempts(&keys) {
        let refused = client
            .submit(v1::SubmitRequest {
                transaction: Some(transaction),
            })
            .await
            .expect_err(form);
        assert_eq!(refused.code(), Code::InvalidArgument, "{form}: {refused:?}");
        for smuggled in smuggled_forms() {
            assert!(
                !contains(refused.message().as_bytes(), &smuggled),
                "{form}: the error echoes the number"
            );
        }
    }
    // A last honest transaction, so that everything before it is committed and written.
    commit(&mut client, anchor(&keys, "last", 4)).await;
    let metrics = metrics_text(node.node.metrics_address.unwrap()).await;
    node.stop().await;

    // (place, bytes, whether the 6 + 5 grouped form is looked for too).
    let mut scanned = vec![("metrics".to_owned(), metrics.into_bytes(), true)];
    scanned.push((
        "log".to_owned(),
        std::mem::take(&mut *logs.0.lock().unwrap()),
        true,
    ));
    for (path, bytes) in files_below(dir.path()) {
        // RocksDB's own info log starts each line with the time to the microsecond and the
        // thread id ("10:34:10.408575 29885"), which reads as 6 + 5 digits: there only whole
        // 11-digit runs count (it holds no ledger data: keys and values never go to it).
        let rocksdb_info_log = path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("LOG"));
        scanned.push((path.display().to_string(), bytes, !rocksdb_info_log));
    }
    // Every stored value, decompressed, through the store itself.
    let config = varde_node::config::NodeConfig::new(
        dir.path().join("db"),
        dir.path().join("genesis.json"),
        dir.path().join("keys").join(demo::VALIDATOR.key_file),
        "127.0.0.1:0".parse().unwrap(),
    );
    let genesis = varde_node::node::read_genesis(&config.genesis_path).unwrap();
    let store = varde_node::node::open_store(&config, &genesis).unwrap();
    for column in Column::ALL {
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            let page = store
                .scan_prefix(column, b"", cursor.as_deref(), 1_000)
                .unwrap();
            let full = page.len() == 1_000;
            for (key, value) in &page {
                scanned.push((
                    format!("{column:?} value"),
                    [key.clone(), value.clone()].concat(),
                    true,
                ));
            }
            cursor = page.last().map(|(key, _)| key.clone());
            if !full {
                break;
            }
        }
    }
    assert!(
        scanned.len() > 10,
        "the scan saw the node's files and values"
    );
    let mut problems = Vec::new();
    for (place, bytes, grouped) in &scanned {
        for number in identity_numbers_in(bytes, *grouped) {
            problems.push(format!(
                "{place}: a national identity number ({} digits)",
                number.len()
            ));
        }
        for (index, smuggled) in smuggled_forms().iter().enumerate() {
            if contains(bytes, smuggled) {
                problems.push(format!("{place}: smuggled form {index}"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // The scan can find one: the number itself, and in a 6+5 form, are caught.
    assert_eq!(identity_numbers(b"x31129956715x"), vec![NATIONAL_ID]);
    assert_eq!(identity_numbers(b"fnr 311299-56715."), vec![NATIONAL_ID]);
    assert!(identity_numbers(b"t=1796083199000").is_empty());
}

/// GET /metrics over a plain TCP connection.
async fn metrics_text(address: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}
