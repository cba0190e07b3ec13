//! What the core asks of the application that gives blocks their meaning.

use varde_consensus::{Block, Decision, Evidence, Height, SigningKey, ValidatorSet};

/// The time of one input. The core reads no clock: the node passes the machine's, the simulator
/// its virtual (and per node, skewed) one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// A monotonic clock in milliseconds, for timers.
    pub monotonic_ms: u64,
    /// Wall-clock time in Unix milliseconds, for block times.
    pub unix_ms: i64,
}

/// The path by which a block reaches the core, which decides the rules it is held to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockPath {
    /// In a proposal: this node's prevote depends on it, so it meets every rule, its time against
    /// this node's clock included.
    Proposed,
    /// By block sync, with a commit certificate that has verified: a quorum held it to its clocks
    /// and limits already, and refusing a committed block would only leave this node behind.
    Certified,
}

/// The state machine the validators agree on, as the core drives it.
pub trait Application {
    /// A block executed but not committed: what [`Application::commit_block`] writes.
    type Executed;
    /// What [`Application::check_block`] learnt (a decoded block, say), for the execution.
    type Checked;
    type Error: std::error::Error + Send + Sync + 'static;

    /// Builds this node's block for `height` from what waits to be included, and executes it.
    fn build_block(
        &mut self,
        height: Height,
        clock: Clock,
    ) -> Result<(Block, Self::Executed), Self::Error>;

    /// The rules a block must meet before it is worth executing, on `path`: `None` when it fails
    /// one. Cheap; called on every path, before any cached execution is consulted.
    fn check_block(
        &self,
        height: Height,
        block: &Block,
        path: BlockPath,
        clock: Clock,
    ) -> Option<Self::Checked>;

    /// Executes a block that passed [`Application::check_block`]: `None` when it is invalid (its
    /// transactions, or header fields that re-execution does not give).
    fn execute_block(
        &mut self,
        height: Height,
        block: &Block,
        checked: Self::Checked,
    ) -> Result<Option<Self::Executed>, Self::Error>;

    /// Makes a decided block durable with its certificate. Nothing acknowledged is lost: an error
    /// stops the core.
    fn commit_block(
        &mut self,
        decision: &Decision,
        executed: Self::Executed,
        clock: Clock,
    ) -> Result<(), Self::Error>;

    /// Whether transactions wait to be proposed (else a proposer waits a little before it
    /// proposes an empty block).
    fn has_waiting_transactions(&self) -> bool;

    /// A validator equivocated at `height`: the application puts it on record.
    fn report_misbehaviour(&mut self, evidence: &Evidence, height: Height, clock: Clock);

    /// The validator set of the next height, when the block just committed changed it (taken:
    /// asked once per commit). The set of a height is what the blocks before it decided, so
    /// every node that committed them moves to the same set at the same boundary.
    fn take_validator_change(&mut self) -> Option<ValidatorSet> {
        None
    }

    /// This validator signs with `key` from the next height on (its consensus key was rotated).
    fn signing_key_changed(&mut self, _key: &SigningKey) {}
}
