//! Varde's storage contract.
//!
//! The ledger keeps everything it knows in a handful of column families (ARCHITECTURE.md, "Storage") and commits each
//! block as one atomic, durable [`WriteBatch`]. [`Store`] is that contract; [`RocksStore`] implements it
//! on RocksDB for nodes, [`MemoryStore`] in memory for simulation and unit tests. Both check, when
//! opened, that the database belongs to the expected chain ([`ChainIdentity`], [`check_identity`]).
//! Engine-specific types (RocksDB's errors, options, handles) never appear in this crate's public API.

mod identity;
mod memory;
#[cfg(feature = "rocksdb")]
mod rocks;

use std::fmt;

pub use identity::{
    CHAIN_ID_KEY, ChainIdentity, GENESIS_HASH_KEY, SCHEMA_VERSION, SCHEMA_VERSION_KEY,
    check_identity,
};
pub use memory::MemoryStore;
#[cfg(feature = "rocksdb")]
pub use rocks::RocksStore;

/// The column families of a Varde database. Each holds keys whose encoding the ledger owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Column {
    /// Database identity (chain id, genesis hash, schema version) and other singletons.
    Meta,
    /// Committed blocks by height.
    Blocks,
    /// Commit certificates by height.
    Certificates,
    /// Transaction id to the height and position that committed it.
    TransactionIndex,
    /// Execution receipts by transaction id.
    Receipts,
    /// Nodes of the ledger's Merkle accumulator.
    Accumulator,
    /// Record pointers.
    Records,
    /// Access grants.
    Grants,
    /// Patient blocks of institutions or persons.
    AccessBlocks,
    /// Access events (the audit trail).
    AccessEvents,
    /// Secondary indexes (by subject, grantee, custodian, record, accessor), keyed by index kind first.
    Indexes,
    /// The consensus engine's safety state: what this validator signed and what it is locked on.
    ConsensusSafety,
    /// Nodes of the state tree (a sparse Merkle tree over records, grants and patient blocks).
    StateTree,
}

impl Column {
    /// Every column, in a fixed order.
    pub const ALL: [Column; 13] = [
        Column::Meta,
        Column::Blocks,
        Column::Certificates,
        Column::TransactionIndex,
        Column::Receipts,
        Column::Accumulator,
        Column::Records,
        Column::Grants,
        Column::AccessBlocks,
        Column::AccessEvents,
        Column::Indexes,
        Column::ConsensusSafety,
        Column::StateTree,
    ];

    /// The stable on-disk name of the column family.
    pub fn name(self) -> &'static str {
        match self {
            Column::Meta => "meta",
            Column::Blocks => "blocks",
            Column::Certificates => "certificates",
            Column::TransactionIndex => "transaction_index",
            Column::Receipts => "receipts",
            Column::Accumulator => "accumulator",
            Column::Records => "records",
            Column::Grants => "grants",
            Column::AccessBlocks => "access_blocks",
            Column::AccessEvents => "access_events",
            Column::Indexes => "indexes",
            Column::ConsensusSafety => "consensus_safety",
            Column::StateTree => "state_tree",
        }
    }
}

impl fmt::Display for Column {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// One change inside a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOperation {
    Put {
        column: Column,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        column: Column,
        key: Vec<u8>,
    },
}

/// Changes applied all together or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    operations: Vec<WriteOperation>,
}

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(&mut self, column: Column, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.operations.push(WriteOperation::Put {
            column,
            key: key.into(),
            value: value.into(),
        });
    }

    pub fn delete(&mut self, column: Column, key: impl Into<Vec<u8>>) {
        self.operations.push(WriteOperation::Delete {
            column,
            key: key.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    pub fn len(&self) -> usize {
        self.operations.len()
    }

    pub fn operations(&self) -> &[WriteOperation] {
        &self.operations
    }

    pub fn into_operations(self) -> Vec<WriteOperation> {
        self.operations
    }
}

/// A key and its value, as returned by scans.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Why a store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database belongs to another chain (or another network's genesis).
    #[error(
        "the database at {path} belongs to chain {found}, not {expected}: point the node at its own data directory"
    )]
    ForeignDatabase {
        path: String,
        expected: String,
        found: String,
    },
    /// The database's files are damaged or not a Varde database.
    #[error("the database at {path} is corrupt or not a Varde database: {detail}")]
    Corrupt { path: String, detail: String },
    /// The database was written with a storage schema this build does not read (a newer Varde).
    #[error(
        "the database at {path} has storage schema version {found}, but this build of Varde reads only up to version {supported}: run the Varde release that wrote it, or a newer one"
    )]
    UnsupportedSchema {
        path: String,
        found: u32,
        supported: u32,
    },
    /// Written by an older Varde whose hashes this build does not reproduce.
    #[error(
        "the database at {path} has storage schema version {found}, written by an older Varde whose ledger and state roots this build (version {supported}) computes differently: move the data directory aside and let the node sync from its peers (or start a new test network)"
    )]
    OutdatedSchema {
        path: String,
        found: u32,
        supported: u32,
    },
    /// The underlying engine failed (disk full, permissions, I/O error).
    #[error("storage failed during {operation}: {detail}")]
    Io {
        operation: &'static str,
        detail: String,
    },
}

/// A durable, ordered key-value store with column families and atomic batches.
///
/// Implementations keep keys in lexicographic byte order within a column.
pub trait Store: Send + Sync {
    /// The value stored under `key`, if any.
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// Up to `limit` entries whose key starts with `prefix`, in key order, beginning strictly after
    /// `start_after` when given (the cursor of a paginated listing).
    fn scan_prefix(
        &self,
        column: Column,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError>;

    /// Applies every operation of `batch` atomically. When it returns `Ok`, the batch is durable: it
    /// survives a crash or power loss of the machine.
    fn write(&self, batch: WriteBatch) -> Result<(), StorageError>;
}

/// A shared store is a store: a simulated node's ledger and its restarted successor hold one.
impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        (**self).get(column, key)
    }

    fn scan_prefix(
        &self,
        column: Column,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        (**self).scan_prefix(column, prefix, start_after, limit)
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        (**self).write(batch)
    }
}
