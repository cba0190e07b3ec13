//! The home of Varde's criterion micro-benchmarks and of the open-loop load generator; it holds
//! neither yet (issue 11).
//!
//! Today's load generator is `varde testnet bench` (`varde_testnet::local::load`): closed-loop
//! clients that sign and submit transactions to a local network, beside the chaos run, which drives
//! the same load while it injects faults. BENCHMARKS.md records its figures.
