//! Each peer's share of the consensus driver's inbox. The inbox is one bounded queue for every
//! peer; without a share, one peer streaming messages fills it, and the others' messages are
//! dropped. A peer may hand the driver [`CONSENSUS_MESSAGES_PER_SECOND`] messages a second, in
//! bursts up to [`CONSENSUS_MESSAGES_BURST`]; what is over is dropped and counted, not held
//! against the peer: the engine's rebroadcasts and block sync cover an honest peer's loss.

use std::collections::BTreeMap;

use libp2p::PeerId;
use tokio::time::Instant;

/// Well above what an honest validator sends: per round a proposal, two votes, and every
/// rebroadcast interval its round proof (at most two votes per validator) and its own messages.
pub const CONSENSUS_MESSAGES_PER_SECOND: u32 = 500;
/// The most messages a peer may hand over at once (one batch carries a round proof).
pub const CONSENSUS_MESSAGES_BURST: u32 = 500;

struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

/// A token bucket per peer.
#[derive(Default)]
pub struct PeerBudgets {
    by_peer: BTreeMap<PeerId, Bucket>,
}

impl PeerBudgets {
    /// How many of `wanted` messages `peer` may hand the driver at `now` (taken from its share).
    pub fn take(&mut self, peer: PeerId, wanted: usize, now: Instant) -> usize {
        let burst = f64::from(CONSENSUS_MESSAGES_BURST);
        let bucket = self.by_peer.entry(peer).or_insert(Bucket {
            tokens: burst,
            refilled_at: now,
        });
        let elapsed_seconds = now.duration_since(bucket.refilled_at).as_secs_f64();
        bucket.tokens =
            (bucket.tokens + elapsed_seconds * f64::from(CONSENSUS_MESSAGES_PER_SECOND)).min(burst);
        bucket.refilled_at = now;
        let granted = (bucket.tokens.floor() as usize).min(wanted);
        bucket.tokens -= granted as f64;
        granted
    }

    /// Forgets a disconnected peer.
    pub fn remove(&mut self, peer: &PeerId) {
        self.by_peer.remove(peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    // A peer gets its burst at once, then its rate; another peer's share is its own.
    #[test]
    fn each_peer_gets_its_share() {
        let mut budgets = PeerBudgets::default();
        let (first, second) = (PeerId::random(), PeerId::random());
        let start = Instant::now();
        let burst = CONSENSUS_MESSAGES_BURST as usize;
        assert_eq!(budgets.take(first, burst + 10, start), burst);
        assert_eq!(budgets.take(first, 10, start), 0, "the burst is spent");
        assert_eq!(budgets.take(second, 10, start), 10, "shares are per peer");
        let later = start + Duration::from_millis(100);
        let refill = CONSENSUS_MESSAGES_PER_SECOND as usize / 10;
        assert_eq!(budgets.take(first, burst, later), refill);
    }
}
