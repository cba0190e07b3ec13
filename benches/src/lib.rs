//! Varde's benchmark programs:
//!
//! - [`load`]: the load generator behind `varde bench`: open-loop (or closed-loop) load of
//!   signed anchors, grants and access events against a running network, with submit→commit
//!   latency, committed throughput and an exactly-once check;
//! - the criterion micro-benchmarks (`benches/*.rs`, `cargo bench -p varde-benches`): Ed25519,
//!   transaction decoding and mempool admission, execution of each action kind, block commits to
//!   RocksDB, the ledger accumulator and the state tree, CheckAccess among a million grants, and
//!   one consensus height of 4, 7 and 10 engines;
//! - `proof-sizes` (`src/bin/proof_sizes.rs`): the encoded size of each kind of proof bundle on a
//!   ledger of a million transactions;
//! - [`fixtures`]: the test network, keys, transactions of every kind and certificates that the
//!   micro-benchmarks and `proof-sizes` share.
//!
//! BENCHMARKS.md records their figures and the commands that made them.

pub mod fixtures;
pub mod load;
