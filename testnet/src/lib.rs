//! Varde testnet.
