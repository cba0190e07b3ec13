//! The home of Varde's benchmark programs. Today it holds `proof-sizes` (`src/bin/proof_sizes.rs`):
//! the encoded size of each kind of proof bundle on a ledger of a million transactions, recorded
//! in BENCHMARKS.md. The criterion micro-benchmarks and the open-loop load generator are not
//! here yet (issue 11).
//!
//! Today's load generator is `varde testnet bench` (`varde_testnet::local::load`): closed-loop
//! clients that sign and submit transactions to a local network, beside the chaos run, which drives
//! the same load while it injects faults. BENCHMARKS.md records its figures.
