//! The ledger's view of state during execution: the committed [`Store`] with the block's pending
//! changes layered on top, and the key layout of every column (documented in README.md).

use std::collections::BTreeMap;

use varde_storage::{Column, Entry, StorageError, Store, WriteBatch};

use crate::domain::{MisbehaviourKind, MisbehaviourSlot, RecordKey, SubjectPseudonym};
use crate::identifiers::OrgNumber;
use crate::signing::TransactionId;
use crate::stored::StoredValue;

/// The page size used when a scan must see every entry under a prefix.
const SCAN_PAGE: usize = 256;

/// Failures reading or decoding state. A decoding failure means the database is damaged: the
/// ledger stops rather than guess.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("stored value in column {column} does not decode: {detail}")]
    Corrupt { column: Column, detail: String },
}

/// Changes not yet written: `None` deletes the key. Sorted by column, then key.
pub type PendingChanges = BTreeMap<(Column, Vec<u8>), Option<Vec<u8>>>;

/// Reads that see committed state plus pending changes.
pub struct StateView<'a, S: Store + ?Sized> {
    store: &'a S,
    pending: PendingChanges,
}

impl<'a, S: Store + ?Sized> StateView<'a, S> {
    pub fn new(store: &'a S) -> Self {
        Self {
            store,
            pending: BTreeMap::new(),
        }
    }

    pub fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        match self.pending.get(&(column, key.to_vec())) {
            Some(value) => Ok(value.clone()),
            None => Ok(self.store.get(column, key)?),
        }
    }

    /// The value under `key`, decoded and checked ([`StoredValue::decode`]).
    pub fn get_value<T: StoredValue>(
        &self,
        column: Column,
        key: &[u8],
    ) -> Result<Option<T>, StateError> {
        self.get(column, key)?
            .map(|bytes| T::decode(column, &bytes))
            .transpose()
    }

    pub fn put(&mut self, column: Column, key: Vec<u8>, value: Vec<u8>) {
        self.pending.insert((column, key), Some(value));
    }

    /// Writes `value` in its stored encoding ([`StoredValue::encode`]).
    pub fn put_value<T: StoredValue>(&mut self, column: Column, key: Vec<u8>, value: &T) {
        self.put(column, key, value.encode());
    }

    pub fn delete(&mut self, column: Column, key: Vec<u8>) {
        self.pending.insert((column, key), None);
    }

    /// Every entry under `prefix`, committed and pending merged, in key order.
    /// The entries under `prefix` whose keys sort before `bound`, pending writes included. Reads
    /// only up to the bound, so the cost follows what is found, not what the column holds.
    pub fn scan_before(
        &self,
        column: Column,
        prefix: &[u8],
        bound: &[u8],
    ) -> Result<Vec<Entry>, StateError> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut cursor: Option<Vec<u8>> = None;
        'pages: loop {
            let page = self
                .store
                .scan_prefix(column, prefix, cursor.as_deref(), SCAN_PAGE)?;
            let full = page.len() == SCAN_PAGE;
            cursor = page.last().map(|(key, _)| key.clone());
            for (key, value) in page {
                if key.as_slice() >= bound {
                    break 'pages;
                }
                merged.insert(key, value);
            }
            if !full {
                break;
            }
        }
        for ((pending_column, key), value) in self.pending.range((column, prefix.to_vec())..) {
            if *pending_column != column || !key.starts_with(prefix) || key.as_slice() >= bound {
                break;
            }
            match value {
                Some(value) => merged.insert(key.clone(), value.clone()),
                None => merged.remove(key),
            };
        }
        Ok(merged.into_iter().collect())
    }

    pub fn scan_all(&self, column: Column, prefix: &[u8]) -> Result<Vec<Entry>, StateError> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            let page = self
                .store
                .scan_prefix(column, prefix, cursor.as_deref(), SCAN_PAGE)?;
            let full = page.len() == SCAN_PAGE;
            cursor = page.last().map(|(key, _)| key.clone());
            merged.extend(page);
            if !full {
                break;
            }
        }
        for ((pending_column, key), value) in self.pending.range((column, prefix.to_vec())..) {
            if *pending_column != column || !key.starts_with(prefix) {
                break;
            }
            match value {
                Some(value) => merged.insert(key.clone(), value.clone()),
                None => merged.remove(key),
            };
        }
        Ok(merged.into_iter().collect())
    }

    /// The pending changes, sorted by column and key.
    pub fn pending(&self) -> &PendingChanges {
        &self.pending
    }

    /// The pending changes as one batch, in sorted order.
    pub fn into_batch(self) -> WriteBatch {
        let mut batch = WriteBatch::new();
        for ((column, key), value) in self.pending {
            match value {
                Some(value) => batch.put(column, key, value),
                None => batch.delete(column, key),
            }
        }
        batch
    }
}

/// Key layout. Variable-length parts end with 0x00 (text fields never hold control characters),
/// so no key is a prefix of another's different field.
pub mod keys {
    use super::*;

    pub const META_CHAIN_ID: &[u8] = b"chain_id";
    pub const META_GENESIS: &[u8] = b"genesis";
    pub const META_HEAD: &[u8] = b"head";
    pub const META_MISBEHAVIOUR: &[u8] = b"misbehaviour/";
    pub const INDEX_RECORDS_BY_SUBJECT: &[u8] = b"records_by_subject/";
    pub const INDEX_GRANTS_BY_SUBJECT: &[u8] = b"grants_by_subject/";
    pub const INDEX_GRANTS_BY_GRANTEE: &[u8] = b"grants_by_grantee/";
    pub const INDEX_BLOCKS_BY_SUBJECT: &[u8] = b"blocks_by_subject/";
    pub const INDEX_EVENTS_BY_SUBJECT: &[u8] = b"events_by_subject/";
    pub const INDEX_EVENTS_BY_RECORD: &[u8] = b"events_by_record/";
    pub const INDEX_EVENTS_BY_ACCESSOR: &[u8] = b"events_by_accessor/";

    /// Records: custodian || 0x00 || record id.
    pub fn record(record: &RecordKey) -> Vec<u8> {
        let mut key = custodian_prefix(&record.custodian);
        key.extend_from_slice(record.record_id.as_bytes());
        key
    }

    /// The prefix of every record of one custodian in Records.
    pub fn custodian_prefix(custodian: &OrgNumber) -> Vec<u8> {
        let mut key = custodian.as_str().as_bytes().to_vec();
        key.push(0);
        key
    }

    pub fn with_prefix(prefix: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut key = prefix.to_vec();
        for part in parts {
            key.extend_from_slice(part);
        }
        key
    }

    /// Position of a transaction: height (8 bytes BE) || index (4 bytes BE); sorts by time.
    pub fn position(height: u64, index: u32) -> [u8; 12] {
        let mut key = [0u8; 12];
        key[..8].copy_from_slice(&height.to_be_bytes());
        key[8..].copy_from_slice(&index.to_be_bytes());
        key
    }

    /// Recorded misbehaviour in Meta: `misbehaviour/` || height (8 BE) || round (4 BE) ||
    /// validator index (4 BE) || kind (1: prevote, 2: precommit, 3: proposal). One key per slot,
    /// so a second report of the same misbehaviour finds it; sorts by height, then round.
    pub fn misbehaviour(slot: &MisbehaviourSlot) -> Vec<u8> {
        let kind: u8 = match slot.kind {
            MisbehaviourKind::DuplicatePrevote => 1,
            MisbehaviourKind::DuplicatePrecommit => 2,
            MisbehaviourKind::DuplicateProposal => 3,
        };
        with_prefix(
            META_MISBEHAVIOUR,
            &[
                &slot.height.to_be_bytes(),
                &slot.round.to_be_bytes(),
                &slot.validator_index.to_be_bytes(),
                &[kind],
            ],
        )
    }

    pub fn records_by_subject(subject: &SubjectPseudonym, record: &RecordKey) -> Vec<u8> {
        with_prefix(
            INDEX_RECORDS_BY_SUBJECT,
            &[&subject.0, &self::record(record)],
        )
    }

    pub fn grants_by_subject(subject: &SubjectPseudonym, grant: &TransactionId) -> Vec<u8> {
        with_prefix(INDEX_GRANTS_BY_SUBJECT, &[&subject.0, &grant.0])
    }

    pub fn grants_by_grantee(grantee: &OrgNumber, grant: &TransactionId) -> Vec<u8> {
        with_prefix(
            INDEX_GRANTS_BY_GRANTEE,
            &[&custodian_prefix(grantee), &grant.0],
        )
    }

    pub fn blocks_by_subject(subject: &SubjectPseudonym, block: &TransactionId) -> Vec<u8> {
        with_prefix(INDEX_BLOCKS_BY_SUBJECT, &[&subject.0, &block.0])
    }

    pub fn events_by_subject(subject: &SubjectPseudonym, height: u64, index: u32) -> Vec<u8> {
        with_prefix(
            INDEX_EVENTS_BY_SUBJECT,
            &[&subject.0, &position(height, index)],
        )
    }

    pub fn events_by_record(record: &RecordKey, height: u64, index: u32) -> Vec<u8> {
        let mut record_part = self::record(record);
        record_part.push(0);
        with_prefix(
            INDEX_EVENTS_BY_RECORD,
            &[&record_part, &position(height, index)],
        )
    }

    pub fn events_by_accessor(accessor: &OrgNumber, height: u64, index: u32) -> Vec<u8> {
        with_prefix(
            INDEX_EVENTS_BY_ACCESSOR,
            &[&custodian_prefix(accessor), &position(height, index)],
        )
    }
}

#[cfg(test)]
mod tests {
    use varde_storage::MemoryStore;

    use super::*;

    // Pending puts and deletes shadow committed entries in gets and scans.
    #[test]
    fn pending_changes_shadow_the_store() {
        let store = MemoryStore::new();
        let mut batch = WriteBatch::new();
        batch.put(Column::Records, b"a1".to_vec(), b"old".to_vec());
        batch.put(Column::Records, b"a2".to_vec(), b"gone".to_vec());
        store.write(batch).unwrap();
        let mut view = StateView::new(&store);
        view.put(Column::Records, b"a1".to_vec(), b"new".to_vec());
        view.delete(Column::Records, b"a2".to_vec());
        view.put(Column::Records, b"a3".to_vec(), b"added".to_vec());
        view.put(Column::Grants, b"a4".to_vec(), b"other column".to_vec());
        assert_eq!(
            view.get(Column::Records, b"a1").unwrap(),
            Some(b"new".to_vec())
        );
        assert_eq!(view.get(Column::Records, b"a2").unwrap(), None);
        let keys: Vec<Vec<u8>> = view
            .scan_all(Column::Records, b"a")
            .unwrap()
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(keys, vec![b"a1".to_vec(), b"a3".to_vec()]);
    }
}
