//! What several benchmarks share beyond `varde_benches::fixtures`: a ledger on RocksDB as the node
//! opens it (every batch written atomically and synced).

use tempfile::TempDir;
use varde_benches::fixtures;
use varde_ledger::Ledger;
use varde_storage::{ChainIdentity, RocksStore};

/// A new ledger of the fixtures' genesis on a RocksDB database in a temporary directory (removed
/// when the directory is dropped), opened as `varde_node::node::open_store` does.
pub fn rocksdb_ledger() -> (TempDir, Ledger<RocksStore>) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let genesis = fixtures::genesis();
    let identity = ChainIdentity::new(genesis.chain_id.clone(), genesis.hash());
    let store = RocksStore::open(&directory.path().join("db"), &identity).expect("opens");
    let ledger = Ledger::open(store, genesis).expect("the ledger opens");
    (directory, ledger)
}
