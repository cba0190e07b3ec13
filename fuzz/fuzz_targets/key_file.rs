//! A key file's text (`keyfile::signing_key_from_pem`, what `read_signing_key` runs). A key that
//! is read must come back from the form the node writes (`keyfile::signing_key_pem`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use varde_ledger::keyfile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(key) = keyfile::signing_key_from_pem(text) else {
        return;
    };
    let written = keyfile::signing_key_pem(&key).expect("a key encodes");
    let again = keyfile::signing_key_from_pem(&written).expect("a written key reads back");
    assert_eq!(again.to_bytes(), key.to_bytes());
});
