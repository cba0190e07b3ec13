//! Varde's benchmarks: criterion micro-benchmarks and the load generator (see BENCHMARKS.md).
