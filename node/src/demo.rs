//! The demo network of `varde dev`: five institutions with valid organisation numbers and
//! Norwegian names (two health trusts, a municipality, a consent authority, an auditor), one
//! validator, and helpers that build and sign demo transactions.

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use varde_ledger::identifiers::OrgNumber;
use varde_ledger::membership::{Genesis, Institution, Role};
use varde_proto::v1;

/// The chain id of a dev network.
pub const CHAIN_ID: &str = "varde-dev";

/// A demo institution: who it is and where its key lives in the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoInstitution {
    pub name: &'static str,
    pub org_number: &'static str,
    pub roles: &'static [Role],
    /// The key file's name inside `keys/`.
    pub key_file: &'static str,
}

pub const HOSPITAL: DemoInstitution = DemoInstitution {
    name: "Oslo universitetssykehus HF",
    org_number: "993467049",
    roles: &[Role::Submitter],
    key_file: "hospital.pem",
};
pub const MUNICIPALITY: DemoInstitution = DemoInstitution {
    name: "Bergen kommune",
    org_number: "964338531",
    roles: &[Role::Submitter],
    key_file: "municipality.pem",
};
/// A second health trust: a third institution that reads records it does not hold.
pub const HEALTH_TRUST: DemoInstitution = DemoInstitution {
    name: "Helse Bergen HF",
    org_number: "983974724",
    roles: &[Role::Submitter],
    key_file: "health-trust.pem",
};
pub const CONSENT_AUTHORITY: DemoInstitution = DemoInstitution {
    name: "Helsedirektoratet",
    org_number: "983544622",
    roles: &[Role::ConsentAuthority],
    key_file: "consent-authority.pem",
};
pub const AUDITOR: DemoInstitution = DemoInstitution {
    name: "Statens helsetilsyn",
    org_number: "974761394",
    roles: &[Role::Auditor],
    key_file: "auditor.pem",
};
/// The operator of the dev network's single validator; its key is the node's consensus key
/// (`validator_key` in the genesis), which signs only consensus messages and misbehaviour reports.
pub const VALIDATOR: DemoInstitution = DemoInstitution {
    name: "Norsk helsenett SF",
    org_number: "994598759",
    roles: &[Role::Validator],
    key_file: "validator.pem",
};

/// Every demo institution, the validator last.
pub const ALL: [DemoInstitution; 6] = [
    HOSPITAL,
    MUNICIPALITY,
    HEALTH_TRUST,
    CONSENT_AUTHORITY,
    AUDITOR,
    VALIDATOR,
];

/// The keys of a demo network, in the order of [`ALL`].
#[derive(Clone)]
pub struct DemoKeys {
    pub keys: [SigningKey; 6],
}

impl DemoKeys {
    /// Fresh random keys.
    pub fn generate() -> Self {
        Self {
            keys: std::array::from_fn(|_| SigningKey::from_bytes(&rand::random::<[u8; 32]>())),
        }
    }

    /// Fixed keys derived from `seed`, for tests.
    pub fn from_seed(seed: u8) -> Self {
        Self {
            keys: std::array::from_fn(|index| {
                SigningKey::from_bytes(&[seed.wrapping_add(index as u8 * 17); 32])
            }),
        }
    }

    /// Reads the keys from `keys_dir`.
    pub fn read(keys_dir: &Path) -> Result<Self, varde_ledger::keyfile::KeyFileError> {
        let mut keys = Vec::with_capacity(ALL.len());
        for institution in ALL {
            keys.push(varde_ledger::keyfile::read_signing_key(
                &keys_dir.join(institution.key_file),
            )?);
        }
        Ok(Self {
            keys: keys.try_into().expect("one key per demo institution"),
        })
    }

    /// Writes the keys to `keys_dir` (which must not hold them yet); returns their paths.
    pub fn write(
        &self,
        keys_dir: &Path,
    ) -> Result<Vec<PathBuf>, varde_ledger::keyfile::KeyFileError> {
        let mut paths = Vec::new();
        for (institution, key) in ALL.iter().zip(&self.keys) {
            let path = keys_dir.join(institution.key_file);
            varde_ledger::keyfile::write_signing_key(&path, key)?;
            paths.push(path);
        }
        Ok(paths)
    }

    pub fn of(&self, institution: DemoInstitution) -> &SigningKey {
        let index = ALL
            .iter()
            .position(|candidate| *candidate == institution)
            .expect("a demo institution");
        &self.keys[index]
    }

    /// The genesis of a dev network with these keys.
    pub fn genesis(&self, chain_id: &str, genesis_time_unix_ms: i64) -> Genesis {
        Genesis {
            chain_id: chain_id.to_owned(),
            genesis_time_unix_ms,
            institutions: ALL
                .iter()
                .zip(&self.keys)
                .map(|(institution, key)| {
                    let public_key = key.verifying_key().to_bytes();
                    // The validator operator's key is its node's consensus key, not a submitting
                    // key; every other demo key is its institution's submitting key.
                    let validator = institution.roles.contains(&Role::Validator);
                    Institution {
                        org_number: OrgNumber::parse(institution.org_number)
                            .expect("demo organisation numbers are valid"),
                        name: institution.name.to_owned(),
                        roles: institution.roles.to_vec(),
                        public_keys: if validator {
                            Vec::new()
                        } else {
                            vec![public_key]
                        },
                        validator_key: validator.then_some(public_key),
                    }
                })
                .collect(),
        }
    }
}

/// Signs `body` with `key` for `chain_id` into a `SignedTransaction` (`varde_client::tx`).
pub fn sign(chain_id: &str, key: &SigningKey, body: &v1::TransactionBody) -> v1::SignedTransaction {
    varde_client::tx::sign_body(chain_id, key, body.clone())
        .expect("a short chain id")
        .transaction
}

/// A body for `action` that expires after one day of wall-clock time.
pub fn body(
    chain_id: &str,
    now_unix_ms: i64,
    action: v1::transaction_body::Action,
) -> v1::TransactionBody {
    v1::TransactionBody {
        chain_id: chain_id.to_owned(),
        expires_at_height: 0,
        expires_at_unix_ms: now_unix_ms + 3_600_000,
        nonce: rand::random::<[u8; 16]>().to_vec(),
        action: Some(action),
    }
}

/// A demo pseudonym: not derived from any real national id.
pub fn demo_pseudonym(index: u8) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest([b"varde-dev-demo-patient".as_slice(), &[index]].concat()).into()
}

/// [`demo_pseudonym`] as the bytes of a wire field.
pub fn demo_subject(index: u8) -> Vec<u8> {
    demo_pseudonym(index).to_vec()
}

pub fn anchor_action(
    custodian: &str,
    record_id: &str,
    subject: Vec<u8>,
    category: &str,
    now_unix_ms: i64,
) -> v1::transaction_body::Action {
    v1::transaction_body::Action::AnchorRecord(v1::AnchorRecord {
        custodian_org_number: custodian.to_owned(),
        record_id: record_id.to_owned(),
        subject_pseudonym: subject,
        category_code: category.to_owned(),
        location_uri: format!("https://ehr.example.invalid/{custodian}/{record_id}"),
        content_sha256: vec![0x5a; 32],
        confidentiality: v1::Confidentiality::Normal as i32,
        created_at_unix_ms: now_unix_ms,
    })
}

/// Test helpers shared by unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use varde_ledger::Ledger;
    use varde_storage::MemoryStore;

    pub(crate) struct Fixture {
        pub ledger: Ledger<MemoryStore>,
        pub hospital: SigningKey,
        pub municipality: SigningKey,
    }

    impl Fixture {
        pub fn new() -> Self {
            let keys = DemoKeys::from_seed(1);
            let ledger = Ledger::open(MemoryStore::new(), keys.genesis(CHAIN_ID, 0)).unwrap();
            Self {
                ledger,
                hospital: keys.of(HOSPITAL).clone(),
                municipality: keys.of(MUNICIPALITY).clone(),
            }
        }

        pub fn sign(&self, key: &SigningKey, body: v1::TransactionBody) -> v1::SignedTransaction {
            sign(CHAIN_ID, key, &body)
        }
    }

    pub(crate) fn anchor(fixture: &Fixture, record_id: &str) -> v1::TransactionBody {
        anchor_for(fixture, HOSPITAL.org_number, record_id)
    }

    pub(crate) fn anchor_for(
        _fixture: &Fixture,
        custodian: &str,
        record_id: &str,
    ) -> v1::TransactionBody {
        let mut body = body(
            CHAIN_ID,
            0,
            anchor_action(custodian, record_id, demo_subject(1), "psychiatry", 1_000),
        );
        body.expires_at_unix_ms = 0;
        body.expires_at_height = 1_000;
        body
    }
}
