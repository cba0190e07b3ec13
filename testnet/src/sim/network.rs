//! The simulated network: per-link delays, jitter (which reorders), loss, duplication, long holds
//! and partitions before the global stabilisation time; bounded delays and no loss after it.

use super::rng::SimRng;
use super::scenario::{NetworkProfile, Partition};

pub struct Network {
    profile: NetworkProfile,
    partitions: Vec<Partition>,
    /// Base delay of each directed link, drawn once per run.
    link_delay_ms: Vec<Vec<u64>>,
}

impl Network {
    pub fn new(
        node_count: usize,
        profile: NetworkProfile,
        partitions: Vec<Partition>,
        rng: &mut SimRng,
    ) -> Self {
        let (low, high) = profile.link_delay_ms;
        let link_delay_ms = (0..node_count)
            .map(|_| (0..node_count).map(|_| rng.between(low, high)).collect())
            .collect();
        Self {
            profile,
            partitions,
            link_delay_ms,
        }
    }

    pub fn stabilisation_ms(&self) -> u64 {
        self.profile.stabilisation_ms
    }

    fn partitioned(&self, from: usize, to: usize, now_ms: u64) -> bool {
        self.partitions.iter().any(|partition| {
            (partition.start_ms..partition.end_ms).contains(&now_ms)
                && partition.side_a[from] != partition.side_a[to]
        })
    }

    /// The delays after which copies of one message sent now arrive: none if it is lost, two if
    /// it is duplicated.
    pub fn deliveries(&self, from: usize, to: usize, now_ms: u64, rng: &mut SimRng) -> Vec<u64> {
        let base_ms = self.link_delay_ms[from][to];
        if now_ms >= self.profile.stabilisation_ms {
            let delay_ms = (base_ms + rng.below(self.profile.jitter_ms + 1))
                .min(self.profile.max_delay_after_stabilisation_ms);
            return vec![delay_ms];
        }
        if self.partitioned(from, to, now_ms) || rng.chance(self.profile.loss) {
            return Vec::new();
        }
        let draw = |rng: &mut SimRng| {
            let mut delay_ms = base_ms + rng.below(self.profile.jitter_ms + 1);
            if rng.chance(self.profile.long_delay) {
                delay_ms += rng.below(self.profile.long_delay_ms + 1);
            }
            delay_ms
        };
        let mut delays = vec![draw(rng)];
        if rng.chance(self.profile.duplication) {
            delays.push(draw(rng));
        }
        delays
    }
}
