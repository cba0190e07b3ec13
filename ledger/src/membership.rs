//! Member institutions, their roles and keys: founded by the genesis file, changed from then on by
//! governance on the ledger ([`crate::governance`]), each change at a height boundary.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::Action;
use crate::identifiers::OrgNumber;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Validator,
    Submitter,
    ConsentAuthority,
    Auditor,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Institution {
    pub org_number: OrgNumber,
    pub name: String,
    pub roles: Vec<Role>,
    /// Submitting keys: Ed25519 public keys (32 bytes, hex strings in the genesis file) that sign
    /// the institution's transactions and query requests. Never validators, whatever the roles.
    /// May be empty (or absent) only for an institution whose only role is `validator`.
    #[serde(with = "crate::hex::key_list", default)]
    pub public_keys: Vec<[u8; 32]>,
    /// The consensus key of the institution's validator node: it signs proposals and votes, is the
    /// node's libp2p identity, and may sign misbehaviour reports, nothing else. Required with the
    /// `validator` role and refused without it; one per institution (one validator each).
    #[serde(
        with = "crate::hex::optional_key",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub validator_key: Option<[u8; 32]>,
}

impl Institution {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// The network's founding document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    pub chain_id: String,
    pub genesis_time_unix_ms: i64,
    pub institutions: Vec<Institution>,
}

impl Genesis {
    /// The chain's identity, stored in the database and checked on every open:
    /// SHA-256("varde-genesis-v1" || 0x00 || the canonical `varde.v1.Genesis` encoding,
    /// proto/varde/v1/storage.proto). It follows the genesis file's content and order, never how a
    /// program names the fields of its genesis type.
    pub fn hash(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(b"varde-genesis-v1");
        hasher.update([0u8]);
        hasher.update(crate::stored::StoredValue::encode(self));
        hasher.finalize().into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    #[error("the chain id must be 1 to 128 bytes of printable text")]
    ChainId,
    #[error("institution {org_number} appears twice")]
    DuplicateInstitution { org_number: OrgNumber },
    #[error(
        "a public key is registered twice (second time for institution {org_number}); every \
         submitting key and validator key must be different"
    )]
    DuplicateKey { org_number: OrgNumber },
    #[error(
        "institution {org_number} has no submitting key (public_keys); only an institution whose \
         only role is validator may have none"
    )]
    NoKey { org_number: OrgNumber },
    #[error(
        "institution {org_number} has the validator role but no validator_key: name its node's \
         consensus key in validator_key (its public_keys are submitting keys and never count as \
         validators; a genesis written before validator_key existed must be rewritten)"
    )]
    NoValidatorKey { org_number: OrgNumber },
    #[error(
        "institution {org_number} has a validator_key but not the validator role; add the role or \
         remove the key"
    )]
    ValidatorKeyWithoutRole { org_number: OrgNumber },
    #[error("the validator_key of institution {org_number} is not a valid Ed25519 public key")]
    InvalidValidatorKey { org_number: OrgNumber },
    #[error("no institution has the validator role")]
    NoValidator,
}

/// The read methods a validator key may sign: governance, the validator-set history, certified
/// headers and recorded misbehaviour. Nothing about a patient.
pub const VALIDATOR_KEY_READS: [&str; 5] = [
    "/varde.v1.Ledger/ListProposals",
    "/varde.v1.Ledger/GetProposal",
    "/varde.v1.Ledger/GetValidatorSets",
    "/varde.v1.Ledger/GetCertifiedHeader",
    "/varde.v1.Ledger/ListMisbehaviour",
];

/// Lookup of institutions by organisation number and by key.
///
/// Two kinds of key, kept apart: submitting keys ([`Membership::owner_of_key`]) sign transactions
/// and query requests; validator keys ([`Membership::validator_owner_of_key`],
/// [`Membership::validator_keys`]) make up the consensus validator set and may sign only
/// misbehaviour reports besides consensus messages ([`Membership::signer_for`]).
#[derive(Debug, Clone)]
pub struct Membership {
    institutions: BTreeMap<OrgNumber, Institution>,
    key_owner: BTreeMap<[u8; 32], OrgNumber>,
    validator_key_owner: BTreeMap<[u8; 32], OrgNumber>,
}

impl Membership {
    pub fn from_genesis(genesis: &Genesis) -> Result<Self, GenesisError> {
        if genesis.chain_id.is_empty()
            || genesis.chain_id.len() > 128
            || genesis.chain_id.chars().any(char::is_control)
        {
            return Err(GenesisError::ChainId);
        }
        Self::from_institutions(&genesis.institutions)
    }

    /// The membership of `institutions`, held to the genesis file's rules (every key different,
    /// a validator key exactly with the validator role, at least one validator).
    pub fn from_institutions(list: &[Institution]) -> Result<Self, GenesisError> {
        let mut institutions = BTreeMap::new();
        let mut key_owner = BTreeMap::new();
        let mut validator_key_owner = BTreeMap::new();
        // Every key of either kind, to refuse one used twice across both.
        let mut seen = std::collections::BTreeSet::new();
        for institution in list {
            let org_number = institution.org_number.clone();
            let only_validator = institution
                .roles
                .iter()
                .all(|role| *role == Role::Validator)
                && institution.has_role(Role::Validator);
            if institution.public_keys.is_empty() && !only_validator {
                return Err(GenesisError::NoKey { org_number });
            }
            match (
                institution.has_role(Role::Validator),
                institution.validator_key,
            ) {
                (true, None) => return Err(GenesisError::NoValidatorKey { org_number }),
                (false, Some(_)) => {
                    return Err(GenesisError::ValidatorKeyWithoutRole { org_number });
                }
                (true, Some(key)) => {
                    if varde_consensus::VerifyingKey::from_bytes(&key).is_err() {
                        return Err(GenesisError::InvalidValidatorKey { org_number });
                    }
                    if !seen.insert(key) {
                        return Err(GenesisError::DuplicateKey { org_number });
                    }
                    validator_key_owner.insert(key, org_number.clone());
                }
                (false, None) => {}
            }
            for key in &institution.public_keys {
                if !seen.insert(*key) {
                    return Err(GenesisError::DuplicateKey { org_number });
                }
                key_owner.insert(*key, org_number.clone());
            }
            if institutions
                .insert(org_number.clone(), institution.clone())
                .is_some()
            {
                return Err(GenesisError::DuplicateInstitution { org_number });
            }
        }
        let membership = Self {
            institutions,
            key_owner,
            validator_key_owner,
        };
        if membership.validator_keys().is_empty() {
            return Err(GenesisError::NoValidator);
        }
        Ok(membership)
    }

    /// Every member, in ascending order of organisation number.
    pub fn institutions(&self) -> impl Iterator<Item = &Institution> {
        self.institutions.values()
    }

    pub fn institution(&self, org_number: &OrgNumber) -> Option<&Institution> {
        self.institutions.get(org_number)
    }

    /// The institution whose submitting key (`public_keys`) is `public_key`, if any. A validator
    /// key is not a submitting key: it finds nothing here.
    pub fn owner_of_key(&self, public_key: &[u8; 32]) -> Option<&Institution> {
        self.key_owner
            .get(public_key)
            .and_then(|owner| self.institutions.get(owner))
    }

    /// The validator institution whose consensus key (`validator_key`) is `public_key`, if any.
    pub fn validator_owner_of_key(&self, public_key: &[u8; 32]) -> Option<&Institution> {
        self.validator_key_owner
            .get(public_key)
            .and_then(|owner| self.institutions.get(owner))
    }

    /// The institution a transaction signed by `public_key` acts for, if the key may sign
    /// `action`: a submitting key signs any action; a validator key signs only a misbehaviour
    /// report (the node reports the equivocations it sees with its own key) and governance
    /// (an institution whose only role is validator may have no submitting key).
    pub fn signer_for(&self, public_key: &[u8; 32], action: &Action) -> Option<&Institution> {
        self.owner_of_key(public_key).or_else(|| match action {
            Action::ReportMisbehaviour(_)
            | Action::ProposeChange(_)
            | Action::ApproveChange { .. } => self.validator_owner_of_key(public_key),
            _ => None,
        })
    }

    /// The institution a signed read request of `method` (a gRPC path) acts for: a submitting
    /// key reads anything its roles allow; a validator key reads only what governance and
    /// following the chain need, which holds nothing personal ([`VALIDATOR_KEY_READS`]), so that
    /// an operator whose only key is its node's can see the proposals it votes on.
    pub fn reader_for(&self, public_key: &[u8; 32], method: &str) -> Option<&Institution> {
        self.owner_of_key(public_key).or_else(|| {
            VALIDATOR_KEY_READS
                .contains(&method)
                .then(|| self.validator_owner_of_key(public_key))
                .flatten()
        })
    }

    /// Validators' consensus keys (`validator_key`) in ascending byte order: the consensus
    /// validator set, the peers the network gate lets in as validators, and the quorum's base.
    pub fn validator_keys(&self) -> Vec<[u8; 32]> {
        // A BTreeMap iterates its keys in ascending byte order.
        self.validator_key_owner.keys().copied().collect()
    }

    /// SHA-256("varde-validators-v1" || 0x00 || each validator key in ascending byte order).
    pub fn validator_set_hash(&self) -> [u8; 32] {
        crate::governance::set_hash(&self.validator_keys())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::TransactionId;
    use ed25519_dalek::SigningKey;
    use varde_consensus::{ValidatorSet, VerifyingKey};

    fn key(seed: u8) -> [u8; 32] {
        SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_bytes()
    }

    fn org(text: &str) -> OrgNumber {
        OrgNumber::parse(text).unwrap()
    }

    const ORGS: [&str; 4] = ["974760673", "123456785", "983044778", "100000008"];

    /// Four validator institutions (validator key seed 10 + i), each with `submitting` submitting
    /// keys (seeds 20 + 4i + j), and a submitter.
    fn genesis(submitting: u8) -> Genesis {
        let mut institutions: Vec<Institution> = ORGS
            .iter()
            .enumerate()
            .map(|(index, number)| Institution {
                org_number: org(number),
                name: format!("Helseforetak {index}"),
                roles: if submitting > 0 {
                    vec![Role::Validator, Role::Submitter]
                } else {
                    vec![Role::Validator]
                },
                public_keys: (0..submitting)
                    .map(|j| key(20 + 4 * index as u8 + j))
                    .collect(),
                validator_key: Some(key(10 + index as u8)),
            })
            .collect();
        institutions.push(Institution {
            org_number: org("993467049"),
            name: "Kommunen".into(),
            roles: vec![Role::Submitter],
            public_keys: vec![key(40)],
            validator_key: None,
        });
        Genesis {
            chain_id: "varde-test".into(),
            genesis_time_unix_ms: 0,
            institutions,
        }
    }

    fn quorum_of(membership: &Membership) -> (usize, usize) {
        let set = ValidatorSet::new(
            membership
                .validator_keys()
                .iter()
                .map(|key| VerifyingKey::from_bytes(key).unwrap())
                .collect(),
        )
        .unwrap();
        (set.len(), set.quorum())
    }

    // A validator institution's submitting keys are not validators and do not change the set,
    // its hash or the quorum; its consensus key is a validator but not a submitting key.
    #[test]
    fn submitting_keys_of_a_validator_institution_are_not_validators() {
        let with_submitting = Membership::from_genesis(&genesis(2)).unwrap();
        let without = Membership::from_genesis(&genesis(0)).unwrap();
        let mut expected: Vec<[u8; 32]> = (10..14).map(key).collect();
        expected.sort();
        assert_eq!(with_submitting.validator_keys(), expected);
        assert_eq!(without.validator_keys(), expected);
        assert_eq!(
            with_submitting.validator_set_hash(),
            without.validator_set_hash()
        );
        assert_eq!(quorum_of(&with_submitting), (4, 3));
        assert_eq!(quorum_of(&without), (4, 3));

        let submitting = key(20);
        assert!(!with_submitting.validator_keys().contains(&submitting));
        assert_eq!(
            with_submitting
                .owner_of_key(&submitting)
                .unwrap()
                .org_number,
            org(ORGS[0])
        );
        assert!(
            with_submitting
                .validator_owner_of_key(&submitting)
                .is_none()
        );
        let consensus = key(10);
        assert!(with_submitting.owner_of_key(&consensus).is_none());
        assert_eq!(
            with_submitting
                .validator_owner_of_key(&consensus)
                .unwrap()
                .org_number,
            org(ORGS[0])
        );
    }

    // A consensus key signs the reads of governance and the chain, never a read of patient data;
    // a submitting key signs any read; a key of no member none.
    #[test]
    fn a_consensus_key_reads_only_what_holds_nothing_personal() {
        let membership = Membership::from_genesis(&genesis(0)).unwrap();
        let consensus = key(10);
        for method in VALIDATOR_KEY_READS {
            assert_eq!(
                membership
                    .reader_for(&consensus, method)
                    .unwrap()
                    .org_number,
                org(ORGS[0])
            );
        }
        for method in [
            "/varde.v1.Query/ListRecords",
            "/varde.v1.Ledger/GetTransaction",
            "/varde.v1.Ledger/StreamEvents",
        ] {
            assert!(
                membership.reader_for(&consensus, method).is_none(),
                "{method}"
            );
            assert!(
                membership.reader_for(&key(40), method).is_some(),
                "{method}"
            );
        }
        assert!(
            membership
                .reader_for(&key(99), VALIDATOR_KEY_READS[0])
                .is_none()
        );
    }

    // A consensus key signs no action but a misbehaviour report (tests/misbehaviour.rs) or governance;
    // a submitting key signs any.
    #[test]
    fn a_consensus_key_is_no_submitting_key() {
        let membership = Membership::from_genesis(&genesis(1)).unwrap();
        let action = Action::UnblockAccess {
            issuer: org(ORGS[0]),
            block_id: TransactionId([0; 32]),
        };
        assert!(membership.signer_for(&key(10), &action).is_none());
        assert_eq!(
            membership.signer_for(&key(20), &action).unwrap().org_number,
            org(ORGS[0])
        );
    }

    // Genesis validation: a key twice (within or across kinds), a validator without a consensus
    // key, a consensus key without the role, an institution without any key it can use.
    #[test]
    fn genesis_refusals() {
        let refused = |edit: &dyn Fn(&mut Genesis)| {
            let mut genesis = genesis(1);
            edit(&mut genesis);
            Membership::from_genesis(&genesis).unwrap_err()
        };
        // Another validator's consensus key as a submitting key.
        assert_eq!(
            refused(&|genesis| genesis.institutions[4].public_keys.push(key(11))),
            GenesisError::DuplicateKey {
                org_number: org("993467049")
            }
        );
        // The institution's own consensus key also listed as a submitting key.
        assert_eq!(
            refused(&|genesis| genesis.institutions[0].public_keys.push(key(10))),
            GenesisError::DuplicateKey {
                org_number: org(ORGS[0])
            }
        );
        // Two institutions with one consensus key.
        assert_eq!(
            refused(&|genesis| genesis.institutions[1].validator_key = Some(key(10))),
            GenesisError::DuplicateKey {
                org_number: org(ORGS[1])
            }
        );
        // A submitting key of two institutions.
        assert_eq!(
            refused(&|genesis| genesis.institutions[4].public_keys.push(key(20))),
            GenesisError::DuplicateKey {
                org_number: org("993467049")
            }
        );
        let error = refused(&|genesis| genesis.institutions[2].validator_key = None);
        assert_eq!(
            error,
            GenesisError::NoValidatorKey {
                org_number: org(ORGS[2])
            }
        );
        assert!(error.to_string().contains("validator_key"), "{error}");
        assert_eq!(
            refused(&|genesis| genesis.institutions[4].validator_key = Some(key(50))),
            GenesisError::ValidatorKeyWithoutRole {
                org_number: org("993467049")
            }
        );
        assert_eq!(
            refused(&|genesis| genesis.institutions[3].public_keys.clear()),
            GenesisError::NoKey {
                org_number: org(ORGS[3])
            }
        );
        assert_eq!(
            refused(&|genesis| genesis.institutions[4].public_keys.clear()),
            GenesisError::NoKey {
                org_number: org("993467049")
            }
        );
        assert_eq!(
            refused(&|genesis| {
                for institution in &mut genesis.institutions {
                    institution.roles.retain(|role| *role != Role::Validator);
                    institution.validator_key = None;
                }
            }),
            GenesisError::NoValidator
        );
        // A validator-only institution needs no submitting key.
        assert!(Membership::from_genesis(&genesis(0)).is_ok());
    }

    // In JSON the consensus key is `validator_key` (hex), absent for non-validators; an absent
    // `public_keys` reads as none. A genesis of the old form (node key among public_keys) is
    // refused with a message that names validator_key.
    #[test]
    fn genesis_json_names_the_validator_key() {
        let genesis = genesis(0);
        let json = serde_json::to_value(&genesis).unwrap();
        assert_eq!(json["institutions"][0]["validator_key"], hex_key(10));
        assert_eq!(
            json["institutions"][0]["public_keys"],
            serde_json::json!([])
        );
        assert!(json["institutions"][4].get("validator_key").is_none());
        assert_eq!(
            serde_json::from_value::<Genesis>(json.clone()).unwrap(),
            genesis
        );
        let mut old = json;
        for index in 0..4 {
            let institution = old["institutions"][index].as_object_mut().unwrap();
            let key = institution.remove("validator_key").unwrap();
            institution.insert("public_keys".into(), serde_json::json!([key]));
        }
        let old: Genesis = serde_json::from_value(old).unwrap();
        let error = Membership::from_genesis(&old).unwrap_err();
        assert!(
            matches!(error, GenesisError::NoValidatorKey { .. }),
            "{error}"
        );
        let mut absent = serde_json::to_value(&genesis).unwrap();
        absent["institutions"][0]
            .as_object_mut()
            .unwrap()
            .remove("public_keys");
        assert_eq!(serde_json::from_value::<Genesis>(absent).unwrap(), genesis);
        let mut bad = serde_json::to_value(&genesis).unwrap();
        bad["institutions"][0]["validator_key"] = "abcd".into();
        let error = serde_json::from_value::<Genesis>(bad).unwrap_err();
        assert!(error.to_string().contains("64 hex digits"), "{error}");
    }

    fn hex_key(seed: u8) -> String {
        crate::hex::encode(&key(seed))
    }
}
