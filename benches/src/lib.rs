//! Varde's benchmarks: criterion micro-benchmarks (see BENCHMARKS.md).
//!
//! The network load generator is `varde testnet bench` (`varde_testnet::local::load`): closed-loop
//! clients that sign and submit transactions to a local network. It lives beside the chaos run,
//! which drives the same load while it injects faults.
