//! Varde's domain state machine: record pointers, access grants and blocks, access events.
//!
//! It validates and executes transactions deterministically over a [`varde_storage::Store`]; see
//! DESIGN.md §2–3 for the rules it enforces and `README.md` beside this crate for the state layout.

pub mod hex;
pub mod identifiers;
pub mod pseudonym;
pub mod signing;
