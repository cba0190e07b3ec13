//! How the core reaches the other validators. The node's libp2p network and the simulator's
//! network implement it; a single validator needs none ([`LocalNetwork`]).

use varde_consensus::{Height, Message, SigningKey, ValidatorSet};

/// Outbound side of the validator network. Implementations must not block: queue and return.
pub trait Network {
    /// Sends `messages` to every other validator.
    fn broadcast(&mut self, messages: &[Message]);

    /// Asks peers for committed blocks from `from_height` on; they come back to
    /// [`crate::NodeCore::handle_committed`]. Without peers there is nobody to ask.
    fn request_sync(&mut self, _from_height: Height) {}

    /// The validator set changes at the coming height boundary, and this node signs with
    /// `own_key` from then on: who may connect, and who is sent consensus messages, follow it.
    fn validators_changed(&mut self, _validators: &ValidatorSet, _own_key: &SigningKey) {}
}

impl<N: Network + ?Sized> Network for Box<N> {
    fn broadcast(&mut self, messages: &[Message]) {
        (**self).broadcast(messages);
    }

    fn request_sync(&mut self, from_height: Height) {
        (**self).request_sync(from_height);
    }

    fn validators_changed(&mut self, validators: &ValidatorSet, own_key: &SigningKey) {
        (**self).validators_changed(validators, own_key);
    }
}

/// The network of a single validator: there is nobody to send to.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalNetwork;

impl Network for LocalNetwork {
    fn broadcast(&mut self, _messages: &[Message]) {}
}
