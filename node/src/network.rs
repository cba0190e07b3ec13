//! How the consensus driver reaches the other validators: the core's [`Network`] trait. A single
//! validator needs no network ([`LocalNetwork`]); the libp2p network implements the same trait and
//! delivers inbound messages into the driver's [`crate::driver::DriverHandle`].

pub use varde_node_core::{LocalNetwork, Network};
