//! A genesis file, as the node reads it (`serde_json::from_str::<Genesis>`) and opens its ledger
//! on it (`Membership::from_genesis`). An accepted genesis must survive its canonical JSON form
//! (whose hash is the chain identity) unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use varde_ledger::membership::{Genesis, Membership};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(genesis) = serde_json::from_str::<Genesis>(text) else {
        return;
    };
    let canonical = serde_json::to_vec(&genesis).expect("a genesis serialises");
    let again: Genesis = serde_json::from_slice(&canonical).expect("its canonical form decodes");
    assert_eq!(again, genesis);
    if let Ok(membership) = Membership::from_genesis(&genesis) {
        let _ = membership.validator_set_hash();
        for key in membership.validator_keys() {
            assert!(membership.validator_owner_of_key(&key).is_some());
        }
    }
});
