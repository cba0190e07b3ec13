//! Fixtures shared by the fuzz targets and the seed generator: one chain, its keys and its
//! validator set, so that seeds signed by the generator verify in the targets.

use varde_consensus::{SigningKey, ValidatorSet};
use varde_ledger::identifiers::OrgNumber;
use varde_ledger::membership::{Genesis, Institution, Role};

pub const CHAIN_ID: &str = "varde-fuzz";
pub const GENESIS_TIME_UNIX_MS: i64 = 1_780_000_000_000;
/// Organisation numbers with valid check digits.
pub const HOSPITAL: &str = "974760673";
pub const MUNICIPALITY: &str = "123456785";
pub const CONSENT_AUTHORITY: &str = "983044778";
/// The seed of the submitting key of the hospital; the municipality's is 2, the authority's 3.
pub const HOSPITAL_KEY: u8 = 1;
/// Validator keys are seeds 101 to 104; the fuzzed node is validator 0.
pub const VALIDATOR_KEYS: [u8; 4] = [101, 102, 103, 104];

pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub fn validator_set() -> ValidatorSet {
    ValidatorSet::new(
        VALIDATOR_KEYS
            .iter()
            .map(|seed| key(*seed).verifying_key())
            .collect(),
    )
    .expect("four distinct keys")
}

fn institution(org: &str, roles: Vec<Role>, seed: u8, validator: Option<u8>) -> Institution {
    Institution {
        org_number: OrgNumber::parse(org).expect("a valid organisation number"),
        name: format!("Institusjon {seed}"),
        roles,
        public_keys: vec![key(seed).verifying_key().to_bytes()],
        validator_key: validator.map(|seed| key(seed).verifying_key().to_bytes()),
    }
}

/// A genesis whose members sign the seeds: a hospital (validator and submitter), a municipality
/// and a consent authority.
pub fn genesis() -> Genesis {
    Genesis {
        chain_id: CHAIN_ID.to_owned(),
        genesis_time_unix_ms: GENESIS_TIME_UNIX_MS,
        institutions: vec![
            institution(
                HOSPITAL,
                vec![Role::Validator, Role::Submitter],
                HOSPITAL_KEY,
                Some(VALIDATOR_KEYS[0]),
            ),
            institution(MUNICIPALITY, vec![Role::Submitter], 2, None),
            institution(CONSENT_AUTHORITY, vec![Role::ConsentAuthority], 3, None),
        ],
    }
}
