//! The home of Varde's benchmark programs:
//! - the criterion micro-benchmarks (`benches/*.rs`, `cargo bench -p varde-benches`): Ed25519,
//!   transaction decoding and mempool admission, execution of each action kind, block commits to
//!   RocksDB, the ledger accumulator and the state tree, CheckAccess among a million grants, and
//!   one consensus height of 4, 7 and 10 engines; BENCHMARKS.md records their figures;
//! - `proof-sizes` (`src/bin/proof_sizes.rs`): the encoded size of each kind of proof bundle on a
//!   ledger of a million transactions, also recorded in BENCHMARKS.md;
//! - [`fixtures`]: the test network, keys, transactions of every kind and certificates they share.
//!
//! Today's load generator is `varde testnet bench` (`varde_testnet::local::load`): closed-loop
//! clients that sign and submit transactions to a local network, beside the chaos run, which drives
//! the same load while it injects faults. BENCHMARKS.md records its figures. The open-loop load
//! generator is not here yet (issue 11).

pub mod fixtures;
