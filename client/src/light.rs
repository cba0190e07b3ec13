//! The light client: it trusts the genesis file alone, accepts a header only with a commit
//! certificate of a quorum of its height's validators, and checks inclusion, consistency and
//! state proofs (a CheckAccess answer with its facts) against accepted headers. The checks are
//! Varde's own (`varde_ledger::proof`), re-exported here so that an integrator needs this crate
//! only: fetch bundles with [`crate::Client::get_transaction_proof`],
//! [`crate::Client::get_consistency_bundle`] or a CheckAccess with `with_proof`, and check them
//! with [`LightClient::verify_bundle`].

pub use varde_ledger::membership::Genesis;
pub use varde_ledger::proof::{LightClient, ProofError, VerifiedClaim, VerifiedHeader};
