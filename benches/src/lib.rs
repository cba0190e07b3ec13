//! Varde's benchmark programs:
//!
//! - [`load`]: the load generator behind `varde bench`: open-loop (or closed-loop) load of
//!   signed anchors, grants and access events against a running network, with submit→commit
//!   latency, committed throughput and an exactly-once check;
//! - `proof-sizes` (`src/bin/proof_sizes.rs`): the encoded size of each kind of proof bundle on
//!   a ledger of a million transactions.
//!
//! BENCHMARKS.md records their figures and the commands that made them.

pub mod load;
