//! Varde's wire types and gRPC service definitions (package `varde.v1`), generated at build time.
//!
//! The `.proto` files and their generated code arrive with the ledger's API; until then this crate
//! only fixes its place at the bottom of the dependency graph (DESIGN.md §8).
