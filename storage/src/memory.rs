//! An in-memory [`Store`] for simulation and unit tests.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::RwLock;

use crate::{
    ChainIdentity, Column, Entry, StorageError, Store, WriteBatch, WriteOperation, check_identity,
};

/// How an in-memory store is named in error messages.
const MEMORY_LOCATION: &str = "memory";

/// Every column's entries in one ordered map, keyed by column first so each column is one range.
type Entries = BTreeMap<(Column, Vec<u8>), Vec<u8>>;

/// A [`Store`] held in memory: ordered like the disk store, atomic per batch, lost on drop.
#[derive(Debug, Default)]
pub struct MemoryStore {
    columns: RwLock<Entries>,
}

impl MemoryStore {
    /// An empty store with no chain identity; [`MemoryStore::open`] is the checked way in.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that records `identity`, so that later [`check_identity`] calls on it (a simulated
    /// restart) behave as reopening a [`RocksStore`](crate::RocksStore) does.
    pub fn open(identity: &ChainIdentity) -> Result<Self, StorageError> {
        let store = Self::new();
        store.check_identity(identity)?;
        Ok(store)
    }

    /// Checks that this store belongs to `identity` (recording it if the store is empty), as
    /// [`check_identity`] does.
    pub fn check_identity(&self, identity: &ChainIdentity) -> Result<(), StorageError> {
        check_identity(self, MEMORY_LOCATION, identity)
    }

    fn poisoned(operation: &'static str) -> StorageError {
        StorageError::Io {
            operation,
            detail: "a writer panicked while holding the in-memory store".to_owned(),
        }
    }
}

impl Store for MemoryStore {
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let columns = self.columns.read().map_err(|_| Self::poisoned("get"))?;
        Ok(columns.get(&(column, key.to_vec())).cloned())
    }

    fn scan_prefix(
        &self,
        column: Column,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        let columns = self.columns.read().map_err(|_| Self::poisoned("scan"))?;
        let lower = match start_after {
            Some(cursor) if cursor >= prefix => Bound::Excluded((column, cursor.to_vec())),
            _ => Bound::Included((column, prefix.to_vec())),
        };
        Ok(columns
            .range((lower, Bound::Unbounded))
            .take_while(|((entry_column, key), _)| {
                *entry_column == column && key.starts_with(prefix)
            })
            .take(limit)
            .map(|((_, key), value)| (key.clone(), value.clone()))
            .collect())
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut columns = self.columns.write().map_err(|_| Self::poisoned("write"))?;
        for operation in batch.into_operations() {
            match operation {
                WriteOperation::Put { column, key, value } => {
                    columns.insert((column, key), value);
                }
                WriteOperation::Delete { column, key } => {
                    columns.remove(&(column, key));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A scan returns only the prefix's keys, in order, resuming after the cursor.
    #[test]
    fn scan_respects_prefix_order_and_cursor() {
        let store = MemoryStore::new();
        let mut batch = WriteBatch::new();
        for key in [&b"a1"[..], b"a3", b"a2", b"b1"] {
            batch.put(Column::Records, key.to_vec(), key.to_vec());
        }
        batch.put(Column::Grants, b"a0".to_vec(), b"other column".to_vec());
        store.write(batch).unwrap();

        let keys =
            |entries: Vec<Entry>| entries.into_iter().map(|(key, _)| key).collect::<Vec<_>>();
        let all = store.scan_prefix(Column::Records, b"a", None, 10).unwrap();
        assert_eq!(
            keys(all),
            vec![b"a1".to_vec(), b"a2".to_vec(), b"a3".to_vec()]
        );
        let page = store
            .scan_prefix(Column::Records, b"a", Some(b"a1"), 1)
            .unwrap();
        assert_eq!(keys(page), vec![b"a2".to_vec()]);
    }

    // A delete in a batch removes the key; other columns are untouched.
    #[test]
    fn delete_removes_only_its_key() {
        let store = MemoryStore::new();
        let mut batch = WriteBatch::new();
        batch.put(Column::Records, b"k".to_vec(), b"v".to_vec());
        batch.put(Column::Grants, b"k".to_vec(), b"v".to_vec());
        store.write(batch).unwrap();
        let mut batch = WriteBatch::new();
        batch.delete(Column::Records, b"k".to_vec());
        store.write(batch).unwrap();
        assert_eq!(store.get(Column::Records, b"k").unwrap(), None);
        assert_eq!(
            store.get(Column::Grants, b"k").unwrap(),
            Some(b"v".to_vec())
        );
    }
}
