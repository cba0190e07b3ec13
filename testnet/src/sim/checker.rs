//! The invariants checked after every step of a run: agreement, validity, no honest equivocation,
//! evidence only against Byzantine validators, every honest node on the validator set of its
//! height; liveness once the network has stabilised; and at the end, the validator-set history
//! as a light client from the genesis follows it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use std::sync::Arc;

use varde_consensus::{
    BlockId, Decision, Evidence, Height, Message, Round, SignatureVerifier, ValidatorIndex,
    ValidatorSet,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// Two honest validators committed different blocks at one height.
    Agreement {
        height: Height,
        node: usize,
        committed: BlockId,
        earlier: BlockId,
    },
    /// An honest validator committed a block nobody proposed, an invalid one, or one without a
    /// valid certificate.
    Validity {
        height: Height,
        node: usize,
        reason: String,
    },
    /// An honest validator signed two different messages for one slot.
    HonestEquivocation {
        node: usize,
        height: Height,
        round: Round,
        slot: &'static str,
    },
    /// Evidence that names an honest validator, or evidence that does not verify.
    FalseEvidence {
        reporter: usize,
        accused: ValidatorIndex,
    },
    /// The run needed more events than any healthy run does: a storm of messages or timers.
    EventStorm { events: u64 },
    /// An honest validator held more for its peers than its bounds allow.
    Memory {
        node: usize,
        buffered_future_messages: usize,
        executed_blocks: usize,
    },
    /// An honest validator's core stopped with no fault injected.
    CoreStopped { node: usize, error: String },
    /// An honest node decides a height with another set than the one the chain gives that
    /// height, its ledger's validator-set history is not the chain's, or a planned change was not
    /// enacted at its height (`node` is `None`: the chain's own history).
    ValidatorSet {
        node: Option<usize>,
        height: Height,
        reason: String,
    },
    /// A light client that trusts the genesis alone refuses an honest node's validator-set
    /// history, a set change's header, or its last certified header.
    LightClient { node: usize, reason: String },
    /// After stabilisation an honest validator of the last planned set signed no vote of a height
    /// from the last set change on within the liveness bound: it did not join consensus (or
    /// come back to it) when its set took effect.
    Participation { node: usize, since_height: Height },
    /// After stabilisation an honest validator did not commit enough heights in time.
    Liveness {
        node: usize,
        height_at_stabilisation: Height,
        height_reached: Height,
        target: Height,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Agreement {
                height,
                node,
                committed,
                earlier,
            } => write!(
                formatter,
                "agreement: node {node} committed {committed:?} at height {height}, another honest node committed {earlier:?}"
            ),
            Violation::Validity {
                height,
                node,
                reason,
            } => write!(
                formatter,
                "validity: node {node} at height {height}: {reason}"
            ),
            Violation::HonestEquivocation {
                node,
                height,
                round,
                slot,
            } => write!(
                formatter,
                "equivocation: honest node {node} signed two {slot}s at height {height} round {round}"
            ),
            Violation::FalseEvidence { reporter, accused } => write!(
                formatter,
                "false evidence: node {reporter} produced evidence against honest or unproven validator {accused}"
            ),
            Violation::Memory {
                node,
                buffered_future_messages,
                executed_blocks,
            } => write!(
                formatter,
                "memory: honest node {node} held {buffered_future_messages} next-height messages and {executed_blocks} executed blocks"
            ),
            Violation::CoreStopped { node, error } => {
                write!(formatter, "core stopped: honest node {node}: {error}")
            }
            Violation::ValidatorSet {
                node: Some(node),
                height,
                reason,
            } => write!(
                formatter,
                "validator set: honest node {node} at height {height}: {reason}"
            ),
            Violation::ValidatorSet {
                node: None,
                height,
                reason,
            } => write!(formatter, "validator set: at height {height}: {reason}"),
            Violation::LightClient { node, reason } => write!(
                formatter,
                "light client: from the genesis, honest node {node}'s chain is refused: {reason}"
            ),
            Violation::EventStorm { events } => write!(
                formatter,
                "event storm: the run needed {events} events without finishing"
            ),
            Violation::Participation { node, since_height } => write!(
                formatter,
                "participation: honest validator {node} signed no vote from height {since_height} on in time"
            ),
            Violation::Liveness {
                node,
                height_at_stabilisation,
                height_reached,
                target,
            } => write!(
                formatter,
                "liveness: node {node} was at height {height_at_stabilisation} at stabilisation and reached {height_reached}, not {target}, in time"
            ),
        }
    }
}

pub struct Checker {
    chain_id: String,
    /// Real Ed25519 checks behind the run's cache: each distinct signature is verified once.
    verifier: Arc<dyn SignatureVerifier>,
    byzantine: BTreeSet<usize>,
    /// The node that holds each consensus key (a rotated validator holds two).
    key_owner: HashMap<[u8; 32], usize>,
    committed: BTreeMap<Height, BlockId>,
    proposed: BTreeSet<BlockId>,
    /// What each honest validator signed per (node, height, round, slot).
    signed: BTreeMap<(usize, Height, Round, u8), Message>,
    /// Nodes already found deciding with a wrong set, each reported once per height.
    wrong_sets: BTreeSet<(usize, Height)>,
    /// The first violations found (at most [`MAX_VIOLATIONS_KEPT`], then the first of each kind
    /// not among them); `violation_count` counts all.
    pub violations: Vec<Violation>,
    pub violation_count: usize,
}

/// How many violations a run keeps for its report.
pub const MAX_VIOLATIONS_KEPT: usize = 16;

impl Checker {
    pub fn new(
        chain_id: String,
        verifier: Arc<dyn SignatureVerifier>,
        byzantine: BTreeSet<usize>,
        key_owner: HashMap<[u8; 32], usize>,
    ) -> Self {
        Self {
            chain_id,
            verifier,
            byzantine,
            key_owner,
            committed: BTreeMap::new(),
            proposed: BTreeSet::new(),
            signed: BTreeMap::new(),
            wrong_sets: BTreeSet::new(),
            violations: Vec::new(),
            violation_count: 0,
        }
    }

    /// Keeps the first violations, and beyond them the first of each kind, so that a report
    /// full of one kind still shows the others.
    fn violate(&mut self, violation: Violation) {
        self.violation_count += 1;
        let new_kind = !self
            .violations
            .iter()
            .any(|kept| std::mem::discriminant(kept) == std::mem::discriminant(&violation));
        if self.violations.len() < MAX_VIOLATIONS_KEPT || new_kind {
            self.violations.push(violation);
        }
    }

    /// Agreement is the one violation after which a run stops at once: nothing later can mend it.
    pub fn agreement_broken(&self) -> bool {
        self.violations
            .iter()
            .any(|violation| matches!(violation, Violation::Agreement { .. }))
    }

    /// Any validator's application built this block (getValue).
    pub fn record_proposed(&mut self, block_id: BlockId) {
        self.proposed.insert(block_id);
    }

    /// An honest validator sent `message`: if it signed it (`own`, rather than relaying another's
    /// vote), it must not conflict with anything it signed before.
    pub fn record_sent(&mut self, node: usize, message: &Message, own: bool) {
        if !own {
            return;
        }
        let (slot, slot_name) = match message {
            Message::Proposal(_) => (0, "proposal"),
            Message::Vote(signed) => match signed.vote.kind {
                varde_consensus::VoteKind::Prevote => (1, "prevote"),
                varde_consensus::VoteKind::Precommit => (2, "precommit"),
            },
        };
        let key = (node, message.height(), message.round(), slot);
        match self.signed.get(&key) {
            Some(earlier) if earlier != message => {
                self.violate(Violation::HonestEquivocation {
                    node,
                    height: message.height(),
                    round: message.round(),
                    slot: slot_name,
                });
            }
            Some(_) => {}
            None => {
                self.signed.insert(key, message.clone());
            }
        }
    }

    /// Whether no honest validator has committed `height` yet (the referee judges it then).
    pub fn is_new_height(&self, height: Height) -> bool {
        !self.committed.contains_key(&height)
    }

    /// An honest validator committed `decision`; `problems` are the referee's findings, and
    /// `validators` the set the chain gives its height.
    pub fn record_commit(
        &mut self,
        node: usize,
        decision: &Decision,
        problems: Vec<String>,
        validators: &ValidatorSet,
    ) {
        let height = decision.height;
        let block_id = decision.block.id;
        match self.committed.get(&height) {
            Some(&earlier) if earlier != block_id => self.violate(Violation::Agreement {
                height,
                node,
                committed: block_id,
                earlier,
            }),
            Some(_) => {}
            None => {
                self.committed.insert(height, block_id);
            }
        }
        for reason in self
            .validity_problems(decision, validators)
            .into_iter()
            .chain(problems)
        {
            self.violate(Violation::Validity {
                height,
                node,
                reason,
            });
        }
    }

    /// What is wrong with a committed block: never proposed, invalid, or not certified by the
    /// set of its own height.
    fn validity_problems(&self, decision: &Decision, validators: &ValidatorSet) -> Vec<String> {
        let (height, block_id) = (decision.height, decision.block.id);
        let mut problems = Vec::new();
        if !self.proposed.contains(&block_id) {
            problems.push(format!("block {block_id:?} was never proposed"));
        }
        if decision.certificate.block_id != block_id || decision.certificate.height != height {
            problems.push("the certificate is for another block or height".to_owned());
        } else if let Err(error) =
            decision
                .certificate
                .verify(&self.chain_id, validators, &*self.verifier)
        {
            problems.push(format!(
                "the certificate does not verify against the set of its height: {error}"
            ));
        }
        problems
    }

    /// An honest validator reported `evidence`: it must verify against `validators`, the set of
    /// the evidence's height, and name a Byzantine validator of it.
    pub fn record_evidence(
        &mut self,
        reporter: usize,
        evidence: &Evidence,
        validators: &ValidatorSet,
    ) {
        let accused = evidence.validator();
        let verifies = evidence
            .verify(&self.chain_id, validators, &*self.verifier)
            .is_ok();
        let accused_node = validators
            .key(accused)
            .and_then(|key| self.key_owner.get(&key.to_bytes()));
        if !verifies || !accused_node.is_some_and(|node| self.byzantine.contains(node)) {
            self.violate(Violation::FalseEvidence { reporter, accused });
        }
    }

    /// An honest node's core decides `height` with `deciding`, not with `expected`, the set the
    /// chain gives that height.
    pub fn record_wrong_set(
        &mut self,
        node: usize,
        height: Height,
        deciding: &ValidatorSet,
        expected: &ValidatorSet,
    ) {
        let reason = format!(
            "its core decides with {} validators ({}), the chain's set of this height has {} ({})",
            deciding.len(),
            short_hash(&deciding.hash()),
            expected.len(),
            short_hash(&expected.hash())
        );
        self.record_wrong_set_once(node, height, reason);
    }

    /// Reports a node's wrong set (or key) once per height: every later step would repeat it.
    pub fn record_wrong_set_once(&mut self, node: usize, height: Height, reason: String) {
        if self.wrong_sets.insert((node, height)) {
            self.violate(Violation::ValidatorSet {
                node: Some(node),
                height,
                reason,
            });
        }
    }

    pub fn record_set_problem(&mut self, node: Option<usize>, height: Height, reason: String) {
        self.violate(Violation::ValidatorSet {
            node,
            height,
            reason,
        });
    }

    pub fn record_light_client_refusal(&mut self, node: usize, reason: String) {
        self.violate(Violation::LightClient { node, reason });
    }

    pub fn record_memory(&mut self, node: usize, buffered: usize, executed: usize) {
        self.violate(Violation::Memory {
            node,
            buffered_future_messages: buffered,
            executed_blocks: executed,
        });
    }

    pub fn record_core_failure(&mut self, node: usize, error: String) {
        self.violate(Violation::CoreStopped { node, error });
    }

    pub fn record_liveness_failure(&mut self, violation: Violation) {
        self.violate(violation);
    }

    pub fn record_event_storm(&mut self, events: u64) {
        self.violate(Violation::EventStorm { events });
    }
}

fn short_hash(hash: &[u8; 32]) -> String {
    hash[..4].iter().map(|byte| format!("{byte:02x}")).collect()
}
