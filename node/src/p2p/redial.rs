//! When to dial a validator again: exponential backoff per peer, reset by a connection.

use std::collections::BTreeMap;
use std::time::Duration;

use libp2p::PeerId;
use tokio::time::Instant;

pub const FIRST_DELAY: Duration = Duration::from_millis(100);
pub const LONGEST_DELAY: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct Redials {
    /// Peers waiting to be dialled: failures so far and when to try next.
    waiting: BTreeMap<PeerId, (u32, Instant)>,
}

impl Redials {
    /// Schedules the next dial of `peer` after a failure or a lost connection.
    pub fn failed(&mut self, peer: PeerId, now: Instant) -> Instant {
        let failures = self.waiting.get(&peer).map_or(0, |(failures, _)| *failures);
        let delay = FIRST_DELAY
            .saturating_mul(1 << failures.min(16))
            .min(LONGEST_DELAY);
        let at = now + delay;
        self.waiting.insert(peer, (failures.saturating_add(1), at));
        at
    }

    /// The peer is connected: nothing to redial, and its backoff starts over.
    pub fn connected(&mut self, peer: &PeerId) {
        self.waiting.remove(peer);
    }

    /// Peers whose time has come; they stay scheduled until they connect or fail again.
    pub fn due(&mut self, now: Instant) -> Vec<PeerId> {
        let due: Vec<PeerId> = self
            .waiting
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(peer, _)| *peer)
            .collect();
        // Not dialled again until the dial's own outcome reschedules it.
        for peer in &due {
            if let Some((_, at)) = self.waiting.get_mut(peer) {
                *at = now + LONGEST_DELAY;
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The delay doubles per failure up to the cap, and a connection resets it.
    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut redials = Redials::default();
        let peer = PeerId::random();
        let now = Instant::now();
        assert_eq!(redials.failed(peer, now), now + FIRST_DELAY);
        assert_eq!(redials.failed(peer, now), now + FIRST_DELAY * 2);
        for _ in 0..10 {
            redials.failed(peer, now);
        }
        assert_eq!(redials.failed(peer, now), now + LONGEST_DELAY);
        redials.connected(&peer);
        assert_eq!(redials.failed(peer, now), now + FIRST_DELAY);
    }

    // A peer is due only once its time has come, and is not handed out twice for one failure.
    #[test]
    fn due_peers_are_handed_out_once() {
        let mut redials = Redials::default();
        let peer = PeerId::random();
        let now = Instant::now();
        redials.failed(peer, now);
        assert!(redials.due(now).is_empty());
        assert_eq!(redials.due(now + FIRST_DELAY), vec![peer]);
        assert!(redials.due(now + FIRST_DELAY).is_empty());
    }
}
