//! Varde's test networks: the deterministic consensus simulator ([`sim`], binary `varde-sim`) and,
//! with the `local` feature, the pieces of a local multi-process network ([`relay`]: the TCP relay
//! that carries every connection between nodes so that tests can partition and delay them).

#[cfg(feature = "local")]
pub mod local;
#[cfg(feature = "local")]
pub mod relay;
pub mod sim;
