//! Varde's domain state machine: record pointers, access grants and blocks, access events.
//!
//! It validates and executes transactions deterministically over a [`varde_storage::Store`]; see
//! ARCHITECTURE.md ("The domain", "Who sees what") for the rules it enforces and `README.md` beside this crate for the state layout.

pub mod access;
pub mod accumulator;
pub mod canonical;
pub mod consensus_wire;
pub mod domain;
pub mod execution;
pub mod fhir;
pub mod governance;
pub mod hex;
pub mod identifiers;
pub mod keyfile;
pub mod ledger;
pub mod membership;
pub mod node_config;
pub mod page_token;
pub mod peer_frames;
pub mod proof;
pub mod pseudonym;
pub mod query;
pub mod replay;
pub mod signing;
pub mod state;
pub mod state_commitment;
pub mod state_tree;
pub mod stored;
pub mod visibility;
pub mod wire;
pub use ledger::{ExecutedBlock, Head, Ledger, LedgerError};
