//! How the consensus driver reaches the other validators. A single validator needs no network
//! ([`LocalNetwork`]); the libp2p network implements the same trait and delivers inbound messages
//! into the driver's [`crate::driver::DriverHandle`].

use varde_consensus::{Height, Message};

/// Outbound side of the validator network. Implementations must not block: queue and return.
pub trait Network: Send + 'static {
    /// Sends `messages` to every other validator.
    fn broadcast(&mut self, messages: &[Message]);

    /// Asks peers for committed blocks from `from_height` on; they arrive as
    /// [`crate::driver::Inbound::Committed`]. Without peers there is nobody to ask.
    fn request_sync(&mut self, _from_height: Height) {}
}

impl Network for Box<dyn Network> {
    fn broadcast(&mut self, messages: &[Message]) {
        (**self).broadcast(messages);
    }

    fn request_sync(&mut self, from_height: Height) {
        (**self).request_sync(from_height);
    }
}

/// The network of a single validator: there is nobody to send to.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalNetwork;

impl Network for LocalNetwork {
    fn broadcast(&mut self, _messages: &[Message]) {}
}
