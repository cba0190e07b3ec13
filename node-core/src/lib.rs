//! Varde's node core: everything a validator does between its network and its storage, without
//! doing any I/O itself.
//!
//! [`NodeCore`] owns the consensus [`Engine`](varde_consensus::Engine) and carries out its outputs
//! in the order persist → send → apply: the safety state goes to a [`SafetyStore`] before any
//! message leaves through the [`Network`], and a decided block is committed by the
//! [`Application`] before the engine moves to the next height. It keeps the executed-block cache,
//! builds and judges blocks through the application, checks a synced block's certificate before
//! the block is executed, reports evidence, and keeps its timers as deadlines. Time comes in as a
//! [`Clock`] with every input; the core reads no clock and starts no task.
//!
//! The node's tokio driver is a thin loop around it, and `varde-sim` runs the very same core with
//! simulated time, network, storage and faults. [`LedgerApplication`] is the application both run:
//! Varde's ledger with its block rules.

mod application;
mod core;
mod ledger_app;
mod network;
mod safety;

pub use application::{Application, BlockPath, Clock};
pub use core::{CoreCounters, CoreError, CoreSettings, NodeCore};
pub use ledger_app::{
    BLOCK_TIME_DRIFT_MAX_MS, BlockLimits, CheckedBlock, CommittedBlock, LedgerAppError,
    LedgerApplication, LedgerHost, ValidatorKeysError, validators_of,
};
pub use network::{LocalNetwork, Network};
pub use safety::{
    SAFETY_STATE_KEY, SafetyStore, SafetyStoreError, read_safety_state, write_safety_state,
};
