//! Member institutions, their roles and keys, as fixed by the genesis file. (On-ledger governance
//! of membership is not implemented yet.)

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
    /// Ed25519 public keys, 32 bytes each (hex strings in the genesis file).
    #[serde(with = "crate::hex::key_list")]
    pub public_keys: Vec<[u8; 32]>,
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    #[error("the chain id must be 1 to 128 bytes of printable text")]
    ChainId,
    #[error("institution {org_number} appears twice")]
    DuplicateInstitution { org_number: OrgNumber },
    #[error("a public key is registered twice (second time for institution {org_number})")]
    DuplicateKey { org_number: OrgNumber },
    #[error("institution {org_number} has no public key")]
    NoKey { org_number: OrgNumber },
    #[error("no institution has the validator role")]
    NoValidator,
}

/// Lookup of institutions by organisation number and by key.
#[derive(Debug, Clone)]
pub struct Membership {
    institutions: BTreeMap<OrgNumber, Institution>,
    key_owner: BTreeMap<[u8; 32], OrgNumber>,
}

impl Membership {
    pub fn from_genesis(genesis: &Genesis) -> Result<Self, GenesisError> {
        if genesis.chain_id.is_empty()
            || genesis.chain_id.len() > 128
            || genesis.chain_id.chars().any(char::is_control)
        {
            return Err(GenesisError::ChainId);
        }
        let mut institutions = BTreeMap::new();
        let mut key_owner = BTreeMap::new();
        for institution in &genesis.institutions {
            let org_number = institution.org_number.clone();
            if institution.public_keys.is_empty() {
                return Err(GenesisError::NoKey { org_number });
            }
            for key in &institution.public_keys {
                if key_owner.insert(*key, org_number.clone()).is_some() {
                    return Err(GenesisError::DuplicateKey { org_number });
                }
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
        };
        if membership.validator_keys().is_empty() {
            return Err(GenesisError::NoValidator);
        }
        Ok(membership)
    }

    pub fn institution(&self, org_number: &OrgNumber) -> Option<&Institution> {
        self.institutions.get(org_number)
    }

    /// The institution that owns `public_key`, if any.
    pub fn owner_of_key(&self, public_key: &[u8; 32]) -> Option<&Institution> {
        self.key_owner
            .get(public_key)
            .and_then(|owner| self.institutions.get(owner))
    }

    /// Validators' keys in ascending byte order.
    pub fn validator_keys(&self) -> Vec<[u8; 32]> {
        let mut keys: Vec<[u8; 32]> = self
            .institutions
            .values()
            .filter(|institution| institution.has_role(Role::Validator))
            .flat_map(|institution| institution.public_keys.iter().copied())
            .collect();
        keys.sort();
        keys
    }

    /// SHA-256("varde-validators-v1" || 0x00 || each validator key in ascending byte order).
    pub fn validator_set_hash(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(b"varde-validators-v1\x00");
        for key in self.validator_keys() {
            hasher.update(key);
        }
        hasher.finalize().into()
    }
}
