//! Which chain a database belongs to, and the check that every store runs when it is opened.
//!
//! A new database records its [`ChainIdentity`] and the storage schema version in [`Column::Meta`]
//! in one synced batch; every later open compares them. A node pointed at another network's data
//! directory, or at a database written by a newer Varde, stops with a clear error instead of mixing
//! two chains' state.

use std::fmt;

use crate::{Column, StorageError, Store, WriteBatch};

/// The storage schema version this build reads and writes. Raise it when the encoding of any column
/// changes; a database with another version is refused rather than misread. Version 2: the ledger
/// tree's leaves bind receipts and the state root is the state tree's (`Column::StateTree`).
/// Version 3: every stored value, the commit certificates and the consensus safety state are
/// canonical protobuf (`varde.v1`, proto/varde/v1/storage.proto) instead of JSON, and the genesis
/// hash is taken over the genesis's protobuf encoding.
pub const SCHEMA_VERSION: u32 = 3;

/// Key of the chain id (UTF-8) in [`Column::Meta`].
pub const CHAIN_ID_KEY: &[u8] = b"identity/chain_id";
/// Key of the 32-byte genesis hash in [`Column::Meta`].
pub const GENESIS_HASH_KEY: &[u8] = b"identity/genesis_hash";
/// Key of the schema version (4 bytes, big-endian) in [`Column::Meta`].
pub const SCHEMA_VERSION_KEY: &[u8] = b"identity/schema_version";

/// The chain a database belongs to: its chain id and the hash of its genesis.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChainIdentity {
    pub chain_id: String,
    pub genesis_hash: [u8; 32],
}

impl ChainIdentity {
    pub fn new(chain_id: impl Into<String>, genesis_hash: [u8; 32]) -> Self {
        Self {
            chain_id: chain_id.into(),
            genesis_hash,
        }
    }
}

impl fmt::Display for ChainIdentity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{:?} (genesis hash {})",
            self.chain_id,
            hex(&self.genesis_hash)
        )
    }
}

/// Lower-case hexadecimal of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// Checks that `store` belongs to `identity`, recording the identity if the store is empty.
///
/// `location` names the store in error messages (a path, or `"memory"`). Outcomes:
/// - an empty store (no key in any column) gets `identity` and [`SCHEMA_VERSION`], synced;
/// - a store with the same chain id and genesis hash and a supported schema version passes;
/// - another chain id or genesis hash gives [`StorageError::ForeignDatabase`];
/// - a higher schema version gives [`StorageError::UnsupportedSchema`], a lower one
///   [`StorageError::OutdatedSchema`];
/// - a store with data but no identity, or an unreadable identity, gives [`StorageError::Corrupt`].
pub fn check_identity(
    store: &dyn Store,
    location: &str,
    identity: &ChainIdentity,
) -> Result<(), StorageError> {
    let chain_id = store.get(Column::Meta, CHAIN_ID_KEY)?;
    let genesis_hash = store.get(Column::Meta, GENESIS_HASH_KEY)?;
    let schema_version = store.get(Column::Meta, SCHEMA_VERSION_KEY)?;

    let corrupt = |detail: String| StorageError::Corrupt {
        path: location.to_owned(),
        detail,
    };

    let (chain_id, genesis_hash, schema_version) = match (chain_id, genesis_hash, schema_version) {
        (None, None, None) => {
            // Nothing recorded: a new database, or one whose creation was cut short before its identity
            // was written (nothing else is ever written before it). Anything else is not ours.
            if let Some(column) = first_non_empty_column(store)? {
                return Err(corrupt(format!(
                    "it holds data (column {column}) but no chain identity; it was not written by Varde"
                )));
            }
            return record_identity(store, identity);
        }
        (Some(chain_id), Some(genesis_hash), Some(schema_version)) => {
            (chain_id, genesis_hash, schema_version)
        }
        _ => {
            return Err(corrupt(
                "its chain identity is incomplete (chain id, genesis hash and schema version are written together)"
                    .to_owned(),
            ));
        }
    };

    let schema_version: [u8; 4] = schema_version.as_slice().try_into().map_err(|_| {
        corrupt(format!(
            "its schema version is {} bytes long, not 4",
            schema_version.len()
        ))
    })?;
    let schema_version = u32::from_be_bytes(schema_version);
    if schema_version > SCHEMA_VERSION {
        return Err(StorageError::UnsupportedSchema {
            path: location.to_owned(),
            found: schema_version,
            supported: SCHEMA_VERSION,
        });
    }
    if (1..SCHEMA_VERSION).contains(&schema_version) {
        return Err(StorageError::OutdatedSchema {
            path: location.to_owned(),
            found: schema_version,
            supported: SCHEMA_VERSION,
        });
    }
    if schema_version == 0 {
        return Err(corrupt(
            "its schema version is 0, which no Varde writes".to_owned(),
        ));
    }

    let chain_id = String::from_utf8(chain_id)
        .map_err(|_| corrupt("its chain id is not valid UTF-8".to_owned()))?;
    let genesis_hash: [u8; 32] = genesis_hash.as_slice().try_into().map_err(|_| {
        corrupt(format!(
            "its genesis hash is {} bytes long, not 32",
            genesis_hash.len()
        ))
    })?;
    let found = ChainIdentity {
        chain_id,
        genesis_hash,
    };
    if &found != identity {
        return Err(StorageError::ForeignDatabase {
            path: location.to_owned(),
            expected: identity.to_string(),
            found: found.to_string(),
        });
    }
    Ok(())
}

fn first_non_empty_column(store: &dyn Store) -> Result<Option<Column>, StorageError> {
    for column in Column::ALL {
        if !store.scan_prefix(column, b"", None, 1)?.is_empty() {
            return Ok(Some(column));
        }
    }
    Ok(None)
}

fn record_identity(store: &dyn Store, identity: &ChainIdentity) -> Result<(), StorageError> {
    let mut batch = WriteBatch::new();
    batch.put(Column::Meta, CHAIN_ID_KEY, identity.chain_id.as_bytes());
    batch.put(Column::Meta, GENESIS_HASH_KEY, identity.genesis_hash);
    batch.put(
        Column::Meta,
        SCHEMA_VERSION_KEY,
        SCHEMA_VERSION.to_be_bytes(),
    );
    store.write(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Hex encoding is lower case, two digits per byte, zero-padded.
    #[test]
    fn hex_is_lower_case_and_padded() {
        assert_eq!(hex(&[0x00, 0x0a, 0xff, 0x10]), "000aff10");
    }
}
